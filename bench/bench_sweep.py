"""`fairsched sweep` executors side by side: one 64-point grid on the Mooncake trace run
serially, on 2 local worker processes, and on a local Ray cluster with 2 CPUs, in one run.

    python bench/bench_sweep.py [--limit 1000] [--trace PATH] [--skip-ray]

Grid: routers least-load, vllm-v1, lmetric, sglang-cache-aware x policies fcfs, vtc x
instances 8, 16 x replay speed 0.25, 0.5, 0.75, 1 (64 points), each on the first --limit
requests. Prints the wall time of each executor (Ray's start-up measured apart), the
speed-up over serial, and whether the three tables are the same bytes. Each executor
writes to a fresh directory, so nothing is resumed. The load average before and after is
printed: figures taken on a loaded machine must be reported as such.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from fairsched.sweep import SweepSpec, run_points, write_outputs
from fairsched.workload import shared_data_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=None)
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--skip-ray", action="store_true")
    a = ap.parse_args()
    trace = a.trace or str(shared_data_dir() / "mooncake_conversation.jsonl")
    spec = SweepSpec(trace=[trace], format=["mooncake"], routers=["least-load", "vllm-v1", "lmetric",
                                                                  "sglang-cache-aware"],
                     policies=["fcfs", "vtc"], instances=[8, 16], speed=[0.25, 0.5, 0.75, 1.0], limit=[a.limit])
    points = spec.points()
    print(f"{len(points)} points, first {a.limit} requests of {trace}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the start")
    tables, rows = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        modes = [("serial", {"workers": 1}), ("2 local workers", {"workers": 2})]
        if not a.skip_ray:
            modes.append(("Ray, 2 CPUs", {"use_ray": True, "workers": 2}))
        for name, kw in modes:
            out = Path(tmp) / name.replace(" ", "_").replace(",", "")
            startup = 0.0
            if kw.get("use_ray"):
                import ray

                t = time.perf_counter()
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
                startup = time.perf_counter() - t
            t = time.perf_counter()
            records, counts = run_points(points, out, progress=False, **kw)
            wall = time.perf_counter() - t
            if kw.get("use_ray"):
                ray.shutdown()
            paths = write_outputs(records, out)
            tables[name] = (paths["csv"].read_bytes(), paths["parquet"].read_bytes())
            rows.append((name, wall, startup, counts["errors"]))
            print(f"{name:>16}: {wall:7.1f} s for {counts['run']} points"
                  + (f" (+ {startup:.1f} s Ray start-up)" if startup else "") + f", {counts['errors']} failed",
                  flush=True)
    base = rows[0][1]
    print("\nexecutor          wall s   start-up s   speed-up vs serial   failed")
    for name, wall, startup, err in rows:
        print(f"{name:<16} {wall:8.1f}   {startup:10.1f}   {base / wall:18.2f}x   {err:6d}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min)")
    first = next(iter(tables.values()))
    print("tables identical (CSV and Parquet bytes):", all(t == first for t in tables.values()))
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"CPU time: this process {me.ru_utime + me.ru_stime:.1f} s, its pool workers {kids.ru_utime + kids.ru_stime:.1f} s "
          "(Ray's workers not included); peak RSS of this process "
          f"{me.ru_maxrss / 1024:.0f} MiB, of the largest pool worker {kids.ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
