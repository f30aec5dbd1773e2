"""Explorer update latency at the default size (goal: under 1 s per update on 2 cores).

    python bench/bench_explore.py [--repeats 3] [--warm]

For each explorer: build it (not timed: imports and the first figure), then move each of
its controls through a few values, one at a time, as a person dragging a slider would;
each move is one synchronous update in the kernel (simulation, theory, figure), timed from
setting the control's value to its return. Before every move the explorers' caches are
cleared (``fairsched.explore.hotspot.clear_caches``), so every update computes from scratch;
``--warm`` keeps them (a move back to an earlier setting is then a cache hit). Prints per
control and per explorer the median and the worst update [ms], wall-clock and CPU time of
this process (``time.process_time``), the share of updates over 1 s wall, and the load
average. Wall-clock figures on a shared machine move with the load; CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

MOVES = {
    "fairness": {"quantum": [2048.0, 8192.0, 32768.0], "w_q": [1.0, 3.0], "n_instances": [2, 4],
                 "kv_capacity": [12000, 48000], "policy": ["VTC", "D²LPM", "DLPM"], "service": ["seconds"]},
    "hotspot": {"x": [0.3, 0.7], "holder_frac": [0.1, 0.5], "qps": [15.0, 60.0], "L": [2000, 8000],
                "cached_frac": [0.5, 0.95], "n_instances": [4, 16]},
    "cost": {"n2": [512, 2048], "h2": [4096, 0], "n_max": [4096, 2048], "h_max": [65536, 32768],
             "b_max": [512, 256]},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1, help="passes over the moves")
    ap.add_argument("--warm", action="store_true", help="keep the caches between moves")
    a = ap.parse_args()
    from fairsched.explore import cost_explorer, fairness_explorer, hotspot_explorer
    from fairsched.explore.hotspot import clear_caches

    print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs); caches "
          f"{'kept' if a.warm else 'cleared before every move'}")
    makers = {"fairness": fairness_explorer, "hotspot": hotspot_explorer, "cost": cost_explorer}
    worst_all = 0.0
    for name, make in makers.items():
        t = time.perf_counter()
        ex = make()
        print(f"{name}: built in {time.perf_counter() - t:.2f} s (first update {ex.last_update_s * 1e3:.0f} ms)")
        times: list[float] = []
        cpus: list[float] = []
        for ctl, values in MOVES[name].items():
            w = ex.controls[ctl]
            start = w.value
            ts, cs = [], []
            for _ in range(a.repeats):
                for v in [*values, start]:
                    if not a.warm:
                        clear_caches()
                    t, c = time.perf_counter(), time.process_time()
                    w.value = v
                    ts.append(time.perf_counter() - t)
                    cs.append(time.process_time() - c)
                    if ex.error:
                        raise SystemExit(f"{name}.{ctl}={v!r}: {ex.error}")
            times += ts
            cpus += cs
            print(f"  {ctl:>12}: median {statistics.median(ts) * 1e3:6.0f} ms, worst {max(ts) * 1e3:6.0f} ms; "
                  f"CPU median {statistics.median(cs) * 1e3:6.0f} ms, worst {max(cs) * 1e3:6.0f} ms ({len(ts)} updates)")
        over = sum(x > 1.0 for x in times)
        worst_all = max(worst_all, max(times))
        print(f"  {'all':>12}: median {statistics.median(times) * 1e3:6.0f} ms, worst {max(times) * 1e3:6.0f} ms, "
              f"{over}/{len(times)} over 1 s; CPU median {statistics.median(cpus) * 1e3:6.0f} ms, "
              f"worst {max(cpus) * 1e3:6.0f} ms")
    print(f"worst update over all explorers: {worst_all * 1e3:.0f} ms; load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
