"""Speed of the service gap (fairsched.analysis.gap.max_gap_from_logs, its one implementation).

    python bench/bench_bounds.py [--events 1000000] [--clients 64] [--small 3000] [--sim]

1. A random service log of ``--events`` events (``synthetic_log``: steps of 20 ms, ~16
   events a step, backlogs toggling every ~120 steps) is checked by the branch-and-bound
   checker; the wall time is printed (target: < 10 s for 1,000,000 events).
2. A small log (``--small`` events, 5 clients, backlogs toggling every ~6 steps) is checked by the branch-and-bound checker and
   the naive all-pairs reference side by side: same gap, same worst pair, window and interval.
3. ``--sim``: the checker on a real simulator log (Mooncake trace, 16 instances, VTC)
   when the shared data directory exists.
"""

from __future__ import annotations

import argparse
import time

from fairsched.analysis.gap import max_gap_from_logs, max_service_gap
from fairsched.analysis.gap_reference import naive_max_gap, synthetic_log


def _row(name, secs, g):
    pair = " > ".join(g.pair) if g.pair else "-"
    win = f"{g.window[0]:.2f}-{g.window[1]:.2f}" if g.window else "-"
    itv = f"{g.interval[0]:.2f}-{g.interval[1]:.2f}" if g.interval else "-"
    print(f"  {name:<28} {secs:8.3f} s   gap {g.gap:12,.1f}   pair {pair:<10} window {win:<16} interval {itv}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sim", action="store_true", help="also check a Mooncake simulator log")
    a = ap.parse_args()

    cols = synthetic_log(a.events, a.clients, seed=a.seed)
    print(f"large log: {cols[0].size:,} service events, {cols[3].size:,} backlog changes, {a.clients} clients")
    t = time.perf_counter()
    g = max_gap_from_logs(*cols)
    dt = time.perf_counter() - t
    _row("branch-and-bound", dt, g)
    print(f"  -> {cols[0].size / dt:,.0f} events/s; {g.n_windows:,} pair windows closed; "
          f"{'OK' if dt < 10 else 'SLOWER THAN'} the 10 s target")

    small = synthetic_log(a.small, 5, seed=a.seed + 1, mean_toggle_steps=6.0)
    print(f"small log: {small[0].size:,} service events, {small[3].size} backlog changes, 5 clients")
    res = {}
    for name, fn in (("branch-and-bound", lambda: max_gap_from_logs(*small, per_pair=True)),
                     ("naive all-pairs", lambda: naive_max_gap(*small))):
        t = time.perf_counter()
        res[name] = fn()
        _row(name, time.perf_counter() - t, res[name])
    s, v = res["branch-and-bound"], res["naive all-pairs"]
    same = s.gap == v.gap and s.pair == v.pair and s.window == v.window and s.interval == v.interval
    pp = max(abs(s.per_pair[k] - v.per_pair[k]) for k in v.per_pair) if v.per_pair else 0.0
    print(f"  -> same answers: {same}; per-pair gaps: {len(v.per_pair)} pairs, max difference {pp:g}")

    if a.sim:
        from fairsched.analysis.service_params import simulate_for_check
        from fairsched.workload import load_trace, shared_data_dir

        d = shared_data_dir()
        if d is None or not (d / "mooncake_conversation.jsonl").exists():
            print("no shared data: skipping the simulator log")
            return
        w = load_trace(d / "mooncake_conversation.jsonl", "mooncake")
        r = simulate_for_check(w, "vtc", "least-load", 16)
        print(f"Mooncake, 16 instances, least-load/vtc: {len(r.svc_t):,} service events, "
              f"{len(r.bl_t):,} backlog changes, {len(r.clients):,} clients")
        t = time.perf_counter()
        g = max_service_gap(r, per_pair=False)
        _row("branch-and-bound (cluster log)", time.perf_counter() - t, g)


if __name__ == "__main__":
    main()
