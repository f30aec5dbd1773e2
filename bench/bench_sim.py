"""Simulator speed: one router on the whole Mooncake trace with 16 instances.

    python bench/bench_sim.py [--router lmetric] [--instances 16] [--trace PATH]

Prints wall time per router, simulated requests per second, and the decode-run speed-up
(the same run with pure-decode iterations simulated one by one).
"""

from __future__ import annotations

import argparse
import time

from fairsched.sim import simulate
from fairsched.workload import load_trace, shared_data_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=None)
    ap.add_argument("--router", action="append", default=None)
    ap.add_argument("--instances", type=int, default=16)
    ap.add_argument("--no-compare", action="store_true", help="skip the step-by-step reference run")
    a = ap.parse_args()
    path = a.trace or (shared_data_dir() / "mooncake_conversation.jsonl")
    t = time.perf_counter()
    w = load_trace(path, "mooncake")
    print(f"loaded {len(w)} requests in {time.perf_counter() - t:.2f} s")
    for router in a.router or ["lmetric"]:
        t = time.perf_counter()
        res = simulate(w, "fcfs", router, n_instances=a.instances)
        dt = time.perf_counter() - t
        ttft = res.requests_frame().ttft_s.mean()
        print(f"{router:>20}: {dt:6.2f} s wall ({len(w) / dt:,.0f} req/s), finished {res.n_finished}, "
              f"mean TTFT {ttft:.3f} s")
        if not a.no_compare:
            t = time.perf_counter()
            simulate(w, "fcfs", router, n_instances=a.instances, decode_runs=False)
            ds = time.perf_counter() - t
            print(f"{'step-by-step':>20}: {ds:6.2f} s wall -> decode runs are {ds / dt:.1f}x faster")


if __name__ == "__main__":
    main()
