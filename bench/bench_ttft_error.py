"""End-to-end error of the calibrated simulator: per-request TTFT against the torch engine.

    python bench/bench_ttft_error.py [--cost data/engine_cpu-small_cost.json] [--policy fcfs --policy vtc]

For each policy: one engine run of ``validation_workload(0)`` (48 requests, ``cpu-small``, its
default instance, measured CPU clock), then :func:`fairsched.engine.calibrate.ttft_error` with the
cost model (p50 / p90 of ``|ttft_sim - ttft_engine| / ttft_engine``, bias = median ratio). Also
the run's level ``kappa`` (its measured compute seconds over the model's prediction of the same
prefill chunks and decode steps) and the error of the model scaled by ``kappa``: what is left once
the machine's drift between calibration and run is taken out (``proofs/cost_model.md``) -- an
oracle, known only after the run -- and the error of the model scaled by the *speed probe*'s
``kappa`` (:func:`fairsched.engine.calibrate.speed_level`: fixed forwards timed right before the
run, known before it). And what separates the two runs: the share of positions at which the
simulator admits requests in the engine's order (``order``: 100% means the same decisions, so the
error is in the forwards' times), and the run's level of prefill chunks and of decode steps
separately (measured / predicted seconds of each).
Run it right after ``fairsched calibrate``; wall-clock figures are the machine's, say if loaded.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def main() -> None:
    from fairsched.engine.calibrate import scale_cost, speed_level, ttft_error
    from fairsched.engine.cluster import DEFAULT_INSTANCE, run_engine
    from fairsched.engine.validate import validation_workload
    from fairsched.sim.cost import CostModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cost", default="data/engine_cpu-small_cost.json")
    ap.add_argument("--policy", action="append", default=None)
    a = ap.parse_args()
    cm = CostModel.load(a.cost)
    w, inst = validation_workload(0), DEFAULT_INSTANCE["cpu-small"]
    for pol in a.policy or ["fcfs", "vtc"]:
        probe = speed_level(cm)
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        eng = run_engine(w, pol, instance=inst)
        cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - r0.ru_utime
        ch, st = eng.meta["prefill_chunks"], eng.meta["decode_steps"]
        pp = sum(cm.prefill_time(int(n), int(h)) for n, h in zip(ch["n"], ch["h"], strict=True))
        pd_ = sum(cm.decode_time(int(b), int(c)) for b, c in zip(st["batch"], st["context"], strict=True))
        kappa = eng.meta["compute_s"] / (pp + pd_)
        e = ttft_error(eng, w, cm, inst, pol)
        order = float(np.mean(np.argsort(np.asarray(eng.admit_t), kind="stable")
                              == np.argsort(np.asarray(e["sim"].admit_t), kind="stable")))
        es = ttft_error(eng, w, scale_cost(cm, kappa), inst, pol)
        ep = ttft_error(eng, w, scale_cost(cm, probe["kappa"]), inst, pol)
        print(f"{pol}: TTFT error p50 {e['p50']:.1%} p90 {e['p90']:.1%} (sim/engine {e['bias']:.3f}); "
              f"probe kappa {probe['kappa']:.3f}, scaled: p50 {ep['p50']:.1%} p90 {ep['p90']:.1%} (sim/engine {ep['bias']:.3f}); "
              f"run level kappa {kappa:.3f} (oracle), scaled: p50 {es['p50']:.1%} p90 {es['p90']:.1%} (sim/engine {es['bias']:.3f}); "
              f"order {order:.0%} same; level prefill {ch['seconds'].sum() / pp:.3f}, decode {st['seconds'].sum() / pd_:.3f}; "
              f"engine {cpu:.2f} s CPU, {time.perf_counter() - t0:.1f} s wall", flush=True)


if __name__ == "__main__":
    main()
