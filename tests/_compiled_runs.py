"""Seeded simulations whose results tests/test_compiled.py compares between the pure and the
compiled build (run by each build's interpreter in a subprocess).

usage: python tests/_compiled_runs.py DATA_DIR  ->  one JSON line {"build": ..., "runs": {name: hash}}
(DATA_DIR: the real traces, ../shared/data; runs on them are left out if it is missing).
"""

import hashlib
import json
import sys
from array import array
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))  # mooncake_like


def digest(res) -> str:
    """One hash of every field of a SimResult (arrays by bytes and dtype, the rest by repr)."""
    h = hashlib.sha256()
    for k, v in sorted(vars(res).items()):
        if k == "workload":
            continue
        if isinstance(v, array):
            v = np.asarray(v)
        if isinstance(v, np.ndarray):
            h.update(k.encode() + np.ascontiguousarray(v).tobytes() + str(v.dtype).encode())
        elif isinstance(v, dict):
            h.update(k.encode() + repr(sorted((str(a), repr(b)) for a, b in v.items())).encode())
        else:
            h.update(k.encode() + repr(v).encode())
    return h.hexdigest()[:16]


def runs(data: Path):
    from bench_scale import mooncake_like

    from fairsched.analysis.detect import DetectorConfig, run_detection
    from fairsched.policies import make_policy_factory
    from fairsched.policies.global_dlpm import global_dlpm_factory
    from fairsched.sim import InstanceConfig, Simulator, simulate
    from fairsched.sim.profiles import hardware_profile
    from fairsched.sim.recorder import InstanceRecorder
    from fairsched.workload import load_trace
    from fairsched.workload.hotspot import hotspot_workload

    mc3k = mooncake_like(3000, seed=0)
    yield "mc3k-lmetric-fcfs", lambda: Simulator(mc3k, "fcfs", "lmetric", 16, InstanceConfig(), service_log="backlogged",
                                                   recorders=(InstanceRecorder(),)).run()
    mc = mooncake_like(1500, seed=1)
    yield "mc1.5k-d2lpm-dlpm", lambda: simulate(mc, "dlpm", "d2lpm", 4, recorders=(InstanceRecorder(),))
    yield "mc1.5k-preble-fcfs", lambda: simulate(mc, "fcfs", "preble", 4)
    yield "mc1.5k-lmetric-seconds-vtc-peak", lambda: simulate(mc, "vtc", "lmetric-seconds", 4, admission="peak")
    yield "mc1.5k-global-dlpm", lambda: simulate(mc, global_dlpm_factory(2048.0), "lmetric", 4)
    yield "mc1.5k-lcf", lambda: simulate(mc, make_policy_factory("lcf"), "least-load", 4)
    wl = hotspot_workload(8, warm_s=20.0, burst_s=60.0, tail_s=20.0)

    def warmup_mitigation():
        rep, res = run_detection(wl, 8, config=DetectorConfig(window_s=20.0, mitigate=True, early_trigger=True),
                                 warmup=True)
        res.extra_ = (len(rep.warmups), repr(rep.warmups), rep.decisions.to_csv())  # (hashed with the result)
        return res
    yield "hotspot-warmup-mitigation", warmup_mitigation
    trace = data / "lmsys_vtc_27clients.jsonl"
    if trace.exists():
        lm = load_trace(str(trace), "vtc")
        cost, inst = hardware_profile("a10g-llama2-7b")
        for pol in ("vtc", "dlpm"):
            yield f"lmsys-{pol}", lambda pol=pol: simulate(lm, pol, cost=cost, instance=inst,
                                                           recorders=(InstanceRecorder(),))
        yield "lmsys-dlpm-peak", lambda: simulate(lm, "dlpm", cost=cost, instance=inst, admission="peak")


def main() -> None:
    from fairsched._mypyc import build

    out = {name: digest(fn()) for name, fn in runs(Path(sys.argv[1]))}
    print(json.dumps({"build": build(), "runs": out}))


if __name__ == "__main__":
    main()
