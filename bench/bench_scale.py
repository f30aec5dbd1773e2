"""Scale: a million requests on one machine (issue 13), against Vidur's published speed.

    python bench/bench_scale.py [--requests 1000000] [--instances 16] [--router lmetric]
                                [--policy fcfs] [--load 0.7] [--seed 0] [--profile FILE]

1. A Mooncake-shaped trace of ``--requests`` requests is generated (:func:`mooncake_like`:
   conversations with the real trace's *statistics*, see below; nothing of the trace is
   copied), with arrivals scaled so that the offered load is ``--load`` of the cluster's
   capacity before cache hits (``fairsched.workload.load.offered_load``).
2. It is simulated on ``--instances`` instances behind one router with the compact service
   log (``Simulator(..., service_log="backlogged")``), then every summary metric
   (:func:`fairsched.analysis.metrics.summarize`: latency, throughput, hit rate, the
   service gap, Jain's index) and the bound check (:func:`fairsched.analysis.verdicts.check_run`)
   are computed.
3. Printed: wall and CPU seconds of each stage (``time.perf_counter`` /
   ``time.process_time``: on a shared machine CPU time is the steadier figure), peak RSS
   (``resource.getrusage``), simulated requests per second, and the goals (<= 120 s,
   <= 4 GB for 10^6 requests).

Mooncake statistics used (``../shared/data/mooncake_conversation.jsonl``, 12,031 requests;
measured once, see the closing note of issue 13): prompt tokens log-normal (mu 8.74,
sigma 1.20; mean 12,035), output tokens log-normal (mu 5.34, sigma 1.36; mean 343),
1.63 requests per client (geometric), a follow-up shares ~71% of its blocks with the
client's previous prompt, 512-token blocks, every prompt starts with one shared
system-prompt block.

Vidur (Agrawal et al., MLSys'24, "Vidur: A Large-Scale Simulation Framework for LLM
Inference") is the peer simulator; its speed figure is quoted in the closing note.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

from fairsched.workload.request import Request, Workload

BLOCK = 512


def mooncake_like(n_requests: int, seed: int = 0, rate_per_s: float = 3.4) -> Workload:
    """A Mooncake-conversation-shaped workload of ``n_requests`` requests (see the module
    docstring for the statistics), arrivals Poisson at ``rate_per_s`` [requests/s].

    Clients are conversations: a geometric number of turns (mean 1.63); the first prompt's
    length is log-normal; each follow-up keeps ~71% of the previous prompt's blocks as its
    prefix and adds new blocks to reach its own log-normal length. Block 0 is the shared
    system prompt. Deterministic in ``seed``.
    """
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0 / rate_per_s, n_requests))
    inp = np.clip(np.exp(rng.normal(8.74, 1.20, n_requests)), 64, 131_072).astype(np.int64)
    out = np.clip(np.exp(rng.normal(5.34, 1.36, n_requests)), 1, 4096).astype(np.int64)
    keep = rng.beta(5.0, 2.0, n_requests)  # share of the previous prompt kept (mean 0.71)
    # assign requests to conversations: each turn continues an open conversation with
    # probability 1 - 1/1.63, else starts a new one (mean 1.63 turns per client)
    cont = rng.random(n_requests) < (1 - 1 / 1.63)
    reqs: list[Request] = []
    open_: list[int] = []  # conversations that may get another turn (recent ones)
    last: dict[int, tuple[int, ...]] = {}
    nxt = 1  # next fresh block id (0 is the system prompt)
    n_conv = 0
    for i in range(n_requests):
        if cont[i] and open_:
            c = open_[int(rng.integers(max(0, len(open_) - 64), len(open_)))]
            prev = last[c]
            k = max(1, int(len(prev) * keep[i]))
            units_needed = -(-int(inp[i]) // BLOCK)
            prefix = prev[:min(k, units_needed)]
        else:
            c = n_conv
            n_conv += 1
            open_.append(c)
            prefix = (0,)
            units_needed = -(-int(inp[i]) // BLOCK)
        new = units_needed - len(prefix)
        prompt = prefix + tuple(range(nxt, nxt + max(new, 0)))
        nxt += max(new, 0)
        last[c] = prompt
        if len(open_) > 4096:
            del open_[:2048]
        reqs.append(Request(i, float(t[i]), f"c{c}", prompt, int(inp[i]), int(out[i]), BLOCK))
    return Workload(reqs, name=f"mooncake-like-{n_requests}-seed{seed}", block_size=BLOCK,
                    source="bench/bench_scale.py")


def scaled_to_load(n_requests: int, n_instances: int, load: float, seed: int) -> Workload:
    """:func:`mooncake_like` with its arrival rate set so that the offered work (no cache
    hits, ``offered_load``'s ``utilisation_no_cache``) is ``load`` x ``n_instances``."""
    from fairsched.workload.load import offered_load

    probe = mooncake_like(min(n_requests, 5000), seed, rate_per_s=1.0)
    util = offered_load(probe)["utilisation_no_cache"]  # at 1 request/s
    rate = load * n_instances / util
    return mooncake_like(n_requests, seed, rate_per_s=rate)


def many_clients_log(n_clients: int, events_per_client: int = 4, seed: int = 0):
    """A simulator-shaped log of ``n_clients`` clients, each backlogged once (arrival to
    admission, ~Exp(2 s) long, arrivals Poisson over ``n_clients / 200`` seconds) and served
    at its admission (a prefill charge) and ``events_per_client - 1`` times after it (decode
    steps, 2 units each). Returns a result-like object for
    :func:`~fairsched.analysis.gap.max_service_gap` and :func:`~fairsched.analysis.metrics.jain_index`."""
    from types import SimpleNamespace

    rng = np.random.default_rng(seed)
    n, k = n_clients, events_per_client
    start = np.sort(rng.uniform(0, n / 200, n))
    end = start + rng.exponential(2.0, n)
    bt = np.r_[start, end]
    bc = np.r_[np.arange(n), np.arange(n)]
    bd = np.r_[np.ones(n, dtype=np.int64), -np.ones(n, dtype=np.int64)]
    o = np.argsort(bt, kind="stable")
    st = np.r_[end, (end[:, None] + 0.02 * np.arange(1, k)[None, :]).ravel()]
    sc = np.r_[np.arange(n), np.repeat(np.arange(n), k - 1)]
    sa = np.r_[rng.integers(1, 30_000, n).astype(float), np.full(n * (k - 1), 2.0)]
    so = np.argsort(st, kind="stable")
    return SimpleNamespace(svc_t=st[so], svc_client=sc[so], svc_amount=sa[so], bl_t=bt[o], bl_client=bc[o],
                           bl_delta=bd[o], clients=[f"c{i}" for i in range(n)], finish_t=np.array([float(st.max())]),
                           workload=[SimpleNamespace(arrival=0.0)])


def gap_many_clients(n_clients: int) -> None:
    """Time and peak RSS of the service gap and Jain's index on :func:`many_clients_log`."""
    from fairsched.analysis.gap import max_service_gap
    from fairsched.analysis.metrics import jain_index

    t0 = time.perf_counter()
    r = many_clients_log(n_clients)
    print(f"log: {n_clients:,} clients, {r.svc_t.size:,} service events, {r.bl_t.size:,} backlog changes; "
          f"built in {time.perf_counter() - t0:.1f} s; peak RSS {peak_rss_gb():.2f} GB", flush=True)
    t0 = time.perf_counter()
    g = max_service_gap(r, per_pair=False)
    t_gap = time.perf_counter() - t0
    t0 = time.perf_counter()
    j = jain_index(r, 0.0)
    t_j = time.perf_counter() - t0
    print(f"gap {g.gap:,.0f} ({g.n_windows:,} pair windows) in {t_gap:.1f} s; Jain {j:.4f} in {t_j:.1f} s; "
          f"peak RSS {peak_rss_gb():.2f} GB")


class Phase:
    """Wall and CPU seconds of a ``with`` block (``.wall``, ``.cpu``)."""

    def __enter__(self):
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w0, time.process_time() - self.c0

    def __str__(self):
        return f"{self.wall:.1f} s wall, {self.cpu:.1f} s CPU"


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far [GB] (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def workload_args(ap: argparse.ArgumentParser, requests: int) -> None:
    """The options of the scale workload (:func:`scaled_to_load`) and its run, shared with
    ``bench_vidur.py``."""
    ap.add_argument("--requests", type=int, default=requests)
    ap.add_argument("--instances", type=int, default=16)
    ap.add_argument("--router", default="lmetric")
    ap.add_argument("--policy", default="fcfs")
    ap.add_argument("--load", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    workload_args(ap, 1_000_000)
    ap.add_argument("--service-log", default="backlogged", choices=["backlogged", "full"])
    ap.add_argument("--no-check", action="store_true", help="skip the bound check")
    ap.add_argument("--profile", help="write a cProfile of the simulation to this file")
    ap.add_argument("--gap-clients", type=int, help="only: the gap and Jain's index on a log of this many clients")
    a = ap.parse_args(argv)
    if a.gap_clients:
        gap_many_clients(a.gap_clients)
        return

    from fairsched._mypyc import build
    from fairsched.analysis.metrics import summarize
    from fairsched.analysis.verdicts import check_run
    from fairsched.sim import InstanceConfig, Simulator
    from fairsched.sim import simulator as simulator_module
    from fairsched.sim.recorder import InstanceRecorder

    print(f"build: {build()} ({simulator_module.__file__})", flush=True)  # compiled: the mypyc build (README, At scale)

    with Phase() as gen:
        w = scaled_to_load(a.requests, a.instances, a.load, a.seed)
    print(f"workload: {len(w):,} requests, {len(w.clients):,} clients, {w.duration:,.0f} s of arrivals; "
          f"generated in {gen}; peak RSS {peak_rss_gb():.2f} GB", flush=True)
    rec = () if a.no_check else (InstanceRecorder(),)
    sim = Simulator(w, a.policy, a.router, a.instances, InstanceConfig(), service_log=a.service_log,
                    recorders=rec)
    with Phase() as ph_sim:
        if a.profile:
            import cProfile

            prof = cProfile.Profile()
            res = prof.runcall(sim.run)
            prof.dump_stats(a.profile)
        else:
            res = sim.run()
    print(f"simulated in {ph_sim} = {len(w) / ph_sim.wall:,.0f} requests/s ({len(w) / ph_sim.cpu:,.0f} per CPU "
          f"second); {res.n_finished:,} finished; {len(res.svc_t):,} service-log entries kept; "
          f"peak RSS {peak_rss_gb():.2f} GB", flush=True)
    with Phase() as ph_sum:
        s = summarize(res)
    print(f"summary in {ph_sum}: gap {s['max_service_gap']:,.0f}, Jain {s['jain_index']}, "
          f"hit rate {s['cache_hit_rate']:.3f}, TTFT p50 {s['ttft_p50_s']:.3f} s; peak RSS {peak_rss_gb():.2f} GB",
          flush=True)
    phases = [ph_sim, ph_sum]
    if not a.no_check:
        with Phase() as ph_chk:
            vs = check_run(res, a.policy, {"router": a.router})
        phases.append(ph_chk)
        print(f"bound check in {ph_chk}: " + "; ".join(f"{v.check} [{v.scope}] {v.status}" for v in vs))
    total, cpu = sum(p.wall for p in phases), sum(p.cpu for p in phases)
    rss = peak_rss_gb()
    print(f"TOTAL (simulate + summary + check) {total:.1f} s wall, {cpu:.1f} s CPU, peak RSS {rss:.2f} GB "
          f"(goal for 10^6 requests: <= 120 s, <= 4 GB); {len(w) / total:,.0f} requests/s end to end; "
          f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
