"""The engine's CUDA path, checked and measured in one run (called by ``bench/gpu_check.sh``).

    python bench/gpu_check.py OUT_DIR [--quick] [--cpu-smoke]

(``--cpu-smoke``: the same steps on CPU with ``cpu-tiny``, to check the script without a GPU.)

1. correctness: ``gpu-medium`` on CUDA (bfloat16): prefill of a prompt in two chunks over
   the paged KV cache gives the same last-token logits as in one (bf16 tolerance), and a
   decode step of a batch matches each sequence decoded alone;
2. calibration: :func:`fairsched.engine.calibrate.run_calibration` on CUDA (clock:
   ``torch.cuda.synchronize`` + wall time), written to ``OUT/engine_gpu-medium_cost.json``;
3. end to end: the engine (VTC and FCFS, ``validation_workload``) against the simulator with
   that calibration (:func:`~fairsched.engine.calibrate.ttft_error`, p50 / p90);
4. fairness in seconds on CUDA (:func:`fairsched.engine.seconds.run_fairness_in_seconds`,
   small): gap, bounds, shares.

Everything goes to ``OUT/gpu_check.json``; each step's failure is recorded and the next runs.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _step(doc: dict, name: str, fn) -> None:
    t0 = time.perf_counter()
    try:
        doc[name] = fn()
        doc[name + "_status"] = "ok"
    except Exception as e:  # noqa: BLE001 - record and go on: one call must bring back everything
        doc[name + "_status"] = f"failed: {e!r}"
        doc[name + "_traceback"] = traceback.format_exc()
    doc[name + "_wall_s"] = round(time.perf_counter() - t0, 2)
    print(f"[{name}] {doc[name + '_status']} ({doc[name + '_wall_s']} s)", flush=True)


def main(argv=None) -> dict:
    import torch

    args = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in args
    out = Path([a for a in args if not a.startswith("--")][0])
    out.mkdir(parents=True, exist_ok=True)
    smoke = "--cpu-smoke" in args
    dev = torch.device("cpu" if smoke else "cuda")
    preset = "cpu-tiny" if smoke else "gpu-medium"
    doc: dict = {"device": "cpu (smoke)" if smoke else torch.cuda.get_device_name(dev), "torch": torch.__version__,
                 "cuda": torch.version.cuda, "quick": quick, "preset": preset}
    from fairsched.engine.model import build_model

    model = build_model(preset, dev)
    cost_file = out / f"engine_{preset}_cost.json"

    def correctness():
        from fairsched.engine.kv import PagedKVCache

        g = torch.Generator().manual_seed(0)
        toks = torch.randint(0, model.config.vocab_size, (1500,), generator=g).to(dev)
        pool = PagedKVCache.for_model(model, 256, 16)
        slots = torch.arange(256 * 16, device=dev)
        with torch.inference_mode():
            whole = model.prefill(toks, pool, slots, 0)[-1].float()
            model.prefill(toks[:1000], pool, slots, 0)
            chunked = model.prefill(toks[1000:], pool, slots, 1000)[-1].float()
            d_prefill = float((whole - chunked).abs().max() / whole.abs().max())
            lens = [1501, 1501]
            nxt = torch.tensor([int(whole.argmax())] * 2, device=dev)
            both = model.decode(nxt, pool, [slots, slots], lens).float()
            one = model.decode(nxt[:1], pool, [slots], lens[:1]).float()
            d_decode = float((both[0] - one[0]).abs().max() / one[0].abs().max())
        ok = d_prefill < 0.05 and d_decode < 0.05
        return {"prefill_chunked_rel_diff": d_prefill, "decode_batch_rel_diff": d_decode, "ok": ok}

    def calibration():
        from fairsched.engine.calibrate import run_calibration

        r = run_calibration(cost_file, model=model, quick=quick)
        return {k: r[k] for k in ("coefficients", "r2", "residual_rel_p90", "fit", "seconds", "timer", "device")}

    def end_to_end():
        from fairsched.engine.calibrate import ttft_error
        from fairsched.engine.cluster import DEFAULT_INSTANCE, run_engine
        from fairsched.engine.validate import validation_workload
        from fairsched.sim.cost import CostModel

        cost = CostModel.load(cost_file)
        inst = DEFAULT_INSTANCE[preset]
        w = validation_workload(0)
        res = {}
        for pol in ("fcfs", "vtc"):
            eng = run_engine(w, pol, model=model, instance=inst)
            e = ttft_error(eng, w, cost, inst, pol)
            e.pop("sim")
            res[pol] = {**e, "engine_compute_s": eng.meta.get("compute_s"), "timer": eng.meta["engine"]["timer"]}
        return res

    def fairness():
        from fairsched.engine.seconds import mixed_workload, run_fairness_in_seconds
        from fairsched.sim.cost import CostModel

        cost = CostModel.load(cost_file)
        r = run_fairness_in_seconds(mixed_workload(0, per_client=4 if quick else 10), cost=cost, model=model)
        return json.loads(r["table"].to_json(orient="records"))

    _step(doc, "correctness", correctness)
    _step(doc, "calibration", calibration)
    if doc["calibration_status"] == "ok":
        _step(doc, "end_to_end", end_to_end)
        _step(doc, "fairness_in_seconds", fairness)
    (out / "gpu_check.json").write_text(json.dumps(doc, indent=1, default=str))
    return doc


if __name__ == "__main__":
    main()
