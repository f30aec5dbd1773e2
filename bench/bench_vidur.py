"""Simulation speed in requests per second, next to the peer simulator Vidur (issue 13).

    python bench/bench_vidur.py [--requests 10000] [--instances 16] [--router lmetric] [--policy fcfs]

What is measured here: fairsched's simulator on a Mooncake-shaped trace
(``bench_scale.scaled_to_load``: log-normal prompts of mean ~12k tokens, outputs of mean
~343 tokens, 70% offered load before cache hits) of ``--requests`` requests on
``--instances`` instances, A100/Llama-3-8B profile; printed: wall and CPU seconds
(``time.process_time``) and requests per simulated-wall-second (CPU-based too, because
this machine is shared).

What is NOT measured here: Vidur itself. This is a documented comparison, not a run:

- ``pip install vidur`` (0.0.26, the authors' package) installs on this machine's CPU
  Python, but its execution-time predictor downloads the operator profiles from the
  Hugging Face hub when a simulation starts (its scikit-learn execution-time predictor
  calls ``snapshot_download``); the hub cannot be reached from here (package registries
  only), and the repository's own A100 attention profiles (``attention.csv``, one per
  model) are over the 4 MiB the code search keeps (only the MLP profiles are in
  ``../shared/data/vidur_profiles``). A Vidur run
  without its attention profiles would time the simulator on made-up operator times.
- Vidur's paper (Agrawal et al., MLSys'24, arXiv 2405.05465, abstract) gives no
  requests-per-second figure; its only speed claim is that Vidur-Search finds the best
  LLaMA2-70B deployment "in one hour on a CPU machine" (many simulations).
- The one public timing found: a user log in microsoft/vidur issue #41 (2024-10-16),
  "Starting simulation with cluster ... 'num_replicas': 4 ... and 128 requests" at
  22:30:41 and "Simulation ended" at 22:30:43: 128 requests in about 2 s (log stamps of
  one second: between 1 and 3 s), i.e. about 40-130 requests/s, after the predictor was
  trained; not a benchmark (hardware unknown, trace unknown).

So the comparison this script prints is fairsched's measured requests/s against that
order of magnitude, said as such.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

VIDUR_ISSUE_41 = {"requests": 128, "replicas": 4, "seconds_low": 1.0, "seconds_high": 3.0,
                  "source": "github.com/microsoft/vidur/issues/41 (user log, 2024-10-16)"}


def main(argv=None) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_scale import scaled_to_load, workload_args

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workload_args(ap, 10_000)
    a = ap.parse_args(argv)

    from fairsched.sim import InstanceConfig, Simulator

    w = scaled_to_load(a.requests, a.instances, a.load, a.seed)
    sim = Simulator(w, a.policy, a.router, a.instances, InstanceConfig(), service_log="backlogged")
    w0, c0 = time.perf_counter(), time.process_time()
    res = sim.run()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(f"fairsched: {len(w):,} Mooncake-shaped requests, {a.instances} instances, {a.router}/{a.policy}: "
          f"{res.n_finished:,} finished; {wall:.1f} s wall ({len(w) / wall:,.0f} requests/s), "
          f"{cpu:.1f} s CPU ({len(w) / cpu:,.0f} requests per CPU-second)")
    v = VIDUR_ISSUE_41
    lo, hi = v["requests"] / v["seconds_high"], v["requests"] / v["seconds_low"]
    print(f"Vidur (not run here, see the module docstring): {v['requests']} requests on {v['replicas']} replicas in "
          f"{v['seconds_low']:.0f}-{v['seconds_high']:.0f} s = {lo:.0f}-{hi:.0f} requests/s, from {v['source']}; "
          f"fairsched per CPU-second is {len(w) / cpu / hi:.0f}-{len(w) / cpu / lo:.0f}x that (different traces, "
          "hardware and models: an order of magnitude, not a benchmark)")


if __name__ == "__main__":
    main()
