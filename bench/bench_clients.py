"""Many clients: the service gap and Jain's index on logs of 10^5-10^6 clients (issue 13).

    python bench/bench_clients.py [--clients 100000 1000000] [--seed 0] [--naive 300]

A simulator-shaped log (:func:`clients_log`): clients with one to a few requests each
(geometric, mean 1.5), Poisson arrivals at 200 requests/s, each request waiting Exp(2 s)
before its admission (so ~400 requests wait at any time and the log holds ~200 x
clients pair windows), a prefill charge (1-30,000 units) at the admission and two to four
decode charges (2 units, 20 ms apart) after it; a client is backlogged while one of its
requests waits, so a client's own decode can fall inside its next backlog.

For each size: wall and CPU seconds (``resource.getrusage``) and the peak RSS of the
gap (:func:`fairsched.analysis.gap.max_service_gap`) and of Jain's index
(:func:`fairsched.analysis.metrics.jain_index`), the number of pair windows (counted, never
listed) and how many leader intervals the gap looked at. ``--naive N``: also the quadratic
reference on the first N clients' log, which must agree (gap, pair, window).
Peak RSS is the process's (the log itself included); the log's own size is printed first.
"""

from __future__ import annotations

import argparse
import resource
import time
from types import SimpleNamespace

import numpy as np


def clients_log(n_clients: int, seed: int = 0, rate: float = 200.0, mean_wait_s: float = 2.0):
    """The log described in the module docstring, as a result-like object (the fields
    :func:`~fairsched.analysis.gap.max_service_gap` and :func:`~fairsched.analysis.metrics.jain_index`
    read). Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    k = rng.geometric(1 / 1.5, n_clients)  # requests per client
    cl = np.repeat(np.arange(n_clients), k)
    n = cl.size
    arr = np.sort(rng.uniform(0, n / rate, n))
    rng.shuffle(cl)  # requests of one client spread over the run
    adm = arr + rng.exponential(mean_wait_s, n)
    steps = rng.integers(2, 5, n)  # decode charges per request
    st = np.r_[adm, np.repeat(adm, steps) + 0.02 * (np.arange(steps.sum()) - np.repeat(np.cumsum(steps) - steps, steps) + 1)]
    sc = np.r_[cl, np.repeat(cl, steps)]
    sa = np.r_[rng.integers(1, 30_001, n).astype(float), np.full(int(steps.sum()), 2.0)]
    o = np.argsort(st, kind="stable")
    bt = np.r_[arr, adm]
    bc = np.r_[cl, cl]
    bd = np.r_[np.ones(n, dtype=np.int64), -np.ones(n, dtype=np.int64)]
    ob = np.lexsort((-bd, bt))
    return SimpleNamespace(svc_t=st[o], svc_client=sc[o], svc_amount=sa[o], bl_t=bt[ob], bl_client=bc[ob],
                           bl_delta=bd[ob], clients=[f"c{i}" for i in range(n_clients)],
                           finish_t=np.array([float(st.max())]), workload=[SimpleNamespace(arrival=0.0)])


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def run(n_clients: int, seed: int) -> dict:
    from fairsched.analysis import gap as G
    from fairsched.analysis.metrics import jain_index

    r, wall, _ = _timed(lambda: clients_log(n_clients, seed))
    size = sum(x.nbytes for x in (r.svc_t, r.svc_client, r.svc_amount, r.bl_t, r.bl_client, r.bl_delta)) / 1e9
    print(f"{n_clients:,} clients: {r.svc_t.size:,} service events, {r.bl_t.size:,} backlog changes "
          f"({size:.2f} GB of arrays), built in {wall:.1f} s; peak RSS {_rss_gb():.2f} GB", flush=True)
    looked = []
    orig = G._Logs.overlapping

    def count(self, lead):  # how many leader intervals the pass looks at
        looked.append(lead.size)
        return orig(self, lead)

    G._Logs.overlapping = count
    try:
        g, gw, gc = _timed(lambda: G.max_service_gap(r, per_pair=False))
    finally:
        G._Logs.overlapping = orig
    rss_gap = _rss_gb()
    j, jw, jc = _timed(lambda: jain_index(r, 0.0))
    print(f"  gap {g.gap:,.0f} ({' > '.join(g.pair)}, window {g.window[0]:.3f}-{g.window[1]:.3f} s): "
          f"{gw:.1f} s wall, {gc:.1f} s CPU; {g.n_windows:,} pair windows counted, {sum(looked):,} leader "
          f"intervals looked at; peak RSS {rss_gap:.2f} GB", flush=True)
    print(f"  Jain's index {j:.4f} over all backlogged clients: {jw:.1f} s wall, {jc:.1f} s CPU; "
          f"peak RSS {_rss_gb():.2f} GB", flush=True)
    return {"clients": n_clients, "gap": g, "gap_wall_s": gw, "gap_cpu_s": gc, "jain": j, "jain_wall_s": jw,
            "jain_cpu_s": jc, "rss_gb": _rss_gb()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--naive", type=int, default=0, help="also check the reference on a log of this many clients")
    a = ap.parse_args(argv)
    if a.naive:
        from fairsched.analysis.gap import max_service_gap
        from fairsched.analysis.gap_reference import max_service_gap_naive

        r = clients_log(a.naive, a.seed)
        f, v = max_service_gap(r, per_pair=False), max_service_gap_naive(r)
        same = (f.gap, f.pair, f.window, f.n_windows) == (v.gap, v.pair, v.window, v.n_windows)
        print(f"reference on {a.naive} clients: gap {v.gap:,.0f}, {v.n_windows:,} windows; same answer: {same}")
    for n in a.clients:
        run(n, a.seed)


if __name__ == "__main__":
    main()
