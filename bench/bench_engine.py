"""Toy-engine benchmark: prefill MFU-like ratio and the speed-up of prefix reuse.

    python bench/bench_engine.py [--quick] [--preset NAME] [--device cpu|cuda]
                                 [--threads N ...] [--json out.json]

Measured in one run, on one device and dtype (CUDA and ``gpu-medium`` in bfloat16 when
available, else CPU, ``cpu-small``, float32):

1. dense matmul throughput: ``torch.matmul`` of two square matrices, FLOP/s = 2 N^3 / t;
2. prefill throughput of the engine's forward (``ToyLlama.prefill`` over the paged KV
   cache) with nothing cached: model FLOPs (``ModelConfig.prefill_flops``) / time, and its
   ratio to (1): a model-FLOPs-utilisation ratio against the machine's own matmul;
3. prefix reuse: prefill time of a prompt of ``L`` tokens with 90% of it cached (``n =
   0.1 L`` new tokens after ``h = 0.9 L`` cached) vs none cached, the speed-up and the
   FLOP ratio it would have if time followed FLOPs;
4. the same through the serving loop (``run_engine``): a request after one that left
   90% of its prompt in the prefix cache, measured prefill seconds vs a cold one.

Every time is the fastest of ``repeats`` interleaved runs. On CPU each thread setting is
measured separately; with one thread the clock is the thread's CPU time (robust to other
processes on a shared machine, see ``fairsched.engine.timing.Timer``), with more it is
wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fairsched.engine.cluster import run_engine  # noqa: E402
from fairsched.engine.kv import PagedKVCache  # noqa: E402
from fairsched.engine.model import build_model  # noqa: E402
from fairsched.engine.timing import Timer, set_threads, warm_up  # noqa: E402
from fairsched.workload.request import make_workload  # noqa: E402


def best_of(fns: dict, repeats: int, timer: Timer) -> dict:
    """Fastest time of each callable over ``repeats`` interleaved rounds."""
    out = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = timer.now()
            f()
            out[k] = min(out[k], timer.now() - t0)
    return out


def matmul_flops(dev: torch.device, dtype: torch.dtype, n: int, repeats: int, timer: Timer) -> float:
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    torch.matmul(a, b)
    t = best_of({"mm": lambda: torch.matmul(a, b)}, repeats, timer)["mm"]
    return 2.0 * n**3 / t


def bench_config(model, lengths: list[int], repeats: int, timer: Timer, mm_n: int) -> dict:
    dev = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    cfg = model.config
    mm = matmul_flops(dev, dtype, mm_n, repeats, timer)
    bs = 16
    L_max = max(lengths)
    pool = PagedKVCache.for_model(model, -(-L_max // bs), bs)
    slots = torch.arange(pool.n_blocks * bs, device=dev)
    g = torch.Generator().manual_seed(0)
    toks = torch.randint(0, cfg.vocab_size, (L_max,), generator=g).to(dev)
    rows = []
    with torch.inference_mode():
        warm_up(model)
        for L in lengths:
            h = int(round(0.9 * L / bs)) * bs  # whole cached blocks
            model.prefill(toks[:L], pool, slots, 0)  # the cached prefix's KV (and a warm-up)
            t = best_of({"cold": lambda L=L: model.prefill(toks[:L], pool, slots, 0),
                         "warm": lambda L=L, h=h: model.prefill(toks[h:L], pool, slots, h)}, repeats, timer)
            f_cold = cfg.prefill_flops(L, 0)
            f_warm = cfg.prefill_flops(L - h, h)
            rows.append({"L": L, "cached": h, "cold_s": t["cold"], "warm_s": t["warm"],
                         "prefill_flop_s": f_cold / t["cold"], "mfu_vs_matmul": f_cold / t["cold"] / mm,
                         "reuse_speedup": t["cold"] / t["warm"], "flop_ratio": f_cold / f_warm})
    return {"matmul_flop_s": mm, "matmul_n": mm_n, "rows": rows}


def bench_serving(model, L: int, pairs: int, bs: int = 16) -> dict:
    """Cold prompts and 90%-cached prompts through ``run_engine`` (one at a time)."""
    units = -(-L // bs)
    shared = int(round(0.9 * units))
    rows, t, nxt = [], 0.0, 1_000_000
    for k in range(pairs):
        base = tuple(range(nxt, nxt + shared))
        nxt += shared
        for _ in range(2):  # same shared prefix, fresh tails: the second one finds 90% cached
            tail = tuple(range(nxt, nxt + units - shared))
            nxt += units - shared
            rows.append((t, f"c{k}", base + tail, L, 1))
            t += 1000.0  # far apart: each request runs alone
    w = make_workload(rows, block_size=bs)
    res = run_engine(w, "fcfs", model=model, threads=torch.get_num_threads())
    rq = res.meta["requests"]
    cold = rq[rq.cached_tokens == 0].prefill_s.to_numpy()
    warm = rq[rq.cached_tokens > 0].prefill_s.to_numpy()
    return {"L": L, "pairs": pairs, "cold_s_median": float(sorted(cold)[len(cold) // 2]),
            "warm_s_median": float(sorted(warm)[len(warm) // 2]),
            "speedup_median": float(sorted(cold)[len(cold) // 2] / sorted(warm)[len(warm) // 2]),
            "cached_fraction": float(rq.cached_tokens.max() / L), "timer": res.meta["engine"]["timer"]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one thread setting (seconds)")
    ap.add_argument("--preset", default=None, help="model preset (default: gpu-medium on CUDA, else cpu-small)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--threads", type=int, nargs="*", default=None,
                    help="CPU intra-op thread counts to measure (default: 1 and all cores; --quick: 1)")
    ap.add_argument("--json", default=None, help="also write the results here")
    a = ap.parse_args(argv)
    dev = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    preset = a.preset or ("gpu-medium" if dev.type == "cuda" else "cpu-small")
    t_start = time.perf_counter()
    model = build_model(preset, dev)
    dtype = next(model.parameters()).dtype
    if dev.type == "cuda":
        settings = [None]
        lengths = [1024, 4096] if a.quick else [1024, 4096, 16384]
        mm_n, repeats = (4096, 5) if a.quick else (8192, 10)
    else:
        import os

        settings = a.threads or ([1] if a.quick else sorted({1, os.cpu_count() or 1}))
        lengths = [512, 2048] if a.quick else [512, 2048, 4096]
        mm_n, repeats = (1024, 3) if a.quick else (2048, 5)
    print(f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}), preset {preset}, "
          f"dtype {str(dtype).replace('torch.', '')}, {model.config.n_params() / 1e6:.1f}M parameters")
    out = {"device": str(dev), "preset": preset, "dtype": str(dtype), "settings": []}
    for th in settings:
        old = set_threads(th, dev)
        try:
            timer = Timer(dev)
            r = bench_config(model, lengths, repeats, timer, mm_n)
            serve = bench_serving(model, 1024 if a.quick else 2048, 3 if a.quick else 5)
        finally:
            torch.set_num_threads(old)
        r.update(threads=th if th is not None else torch.get_num_threads(), timer=timer.mode, serving=serve)
        out["settings"].append(r)
        print(f"\n threads {r['threads']}, clock {timer.mode}: matmul {mm_n}^3 {r['matmul_flop_s'] / 1e9:.1f} GFLOP/s")
        print(f"  {'L':>6} {'cold [ms]':>10} {'90% cached [ms]':>16} {'prefill GFLOP/s':>16} {'MFU vs matmul':>14} "
              f"{'reuse speed-up':>15} {'FLOP ratio':>11}")
        for x in r["rows"]:
            print(f"  {x['L']:>6} {x['cold_s'] * 1e3:>10.2f} {x['warm_s'] * 1e3:>16.2f} "
                  f"{x['prefill_flop_s'] / 1e9:>16.1f} {x['mfu_vs_matmul']:>14.3f} {x['reuse_speedup']:>15.2f} "
                  f"{x['flop_ratio']:>11.2f}")
        print(f"  serving loop, L={serve['L']}: cold {serve['cold_s_median'] * 1e3:.2f} ms, "
              f"{serve['cached_fraction']:.0%} cached {serve['warm_s_median'] * 1e3:.2f} ms, "
              f"speed-up {serve['speedup_median']:.2f} (median of {serve['pairs']})")
    out["seconds"] = time.perf_counter() - t_start
    print(f"\ntotal {out['seconds']:.1f} s")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
