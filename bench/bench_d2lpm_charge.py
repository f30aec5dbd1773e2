"""D2LPM's two routing charges (``proofs/d2lpm_bound.md``): hit-rate cost and the gap of Theorem D.

Part 1 (``--part cost``): DLPM behind the D2LPM router on 4 instances (Q^u = Q^w = the CLI's
default quantum, A100 / Llama-3-8B hardware) with routing charging the uncached prompt
(``charge="uncached"``, default) and the whole prompt (``charge="full"``), both plus the whole
output at routing. Workloads: the DLPM paper's kinds (fairsched generators, default sizes,
seed 0), claim 3's mix (``mixed(seed=0, scale=4, duration=60)``) and the LMSYS trace of
``../shared/data`` (``lmsys_vtc_27clients.jsonl``). Per workload and charge: cache hit rate,
throughput [tok/s], mean TTFT [s], and the largest gap between two clients backlogged at
some instance [service units] next to the gap of clients backlogged at every instance and
its proved bound ``2K(Q^u + X)`` (Theorem A).

Part 2 (``--part rate``): Theorem D's construction on the simulator (2 instances, one running
request each, Q^u = 400, Q^w = 800, g at 13.3 R s), gap of clients backlogged somewhere for
R = 1, 2, 4 under both charges, against the refuted candidate ``2K(Q^u + Q^w + X)``.

Part 3 (``--part variant``): Theorem F's global-deficit variant on the reference model
(``theory/d2lpm.py::d2lpm_global_gap``): a random search (``--runs`` workloads of 1-8 bursts,
2-3 workers, 1-2 slots, random Q^u, Q^w, routing charge; ``--seed``) reporting the largest
gap / ``2(Q^u + X_G)`` and the number of violations, for the variant and for the original
(local deficits); then Theorem D's and issue 10's constructions with both.

Part 4 (``--part pull``): the same variant in the simulator
(:mod:`fairsched.policies.global_dlpm`) against DLPM per instance, both behind the D2LPM
router (default charge), on part 1's workloads and hardware and on Theorem D's construction
(R = 1, 2): hit rate, throughput [tok/s], mean TTFT [s], gap of clients backlogged somewhere,
Theorem F's bound with the measured per-instance X (``2(Q^u + sum_k X_k)``, as
``X_G <= sum_k X_k``), and the number of pulls.

    nice python bench/bench_d2lpm_charge.py [--part cost|rate|variant|pull|all] [--runs N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import resource
import time

from fairsched.analysis.gap import max_service_gap
from fairsched.analysis.metrics import summarize
from fairsched.analysis.service_params import measured_x, simulate_for_check
from fairsched.analysis.verdicts import check_run
from fairsched.policies import ServiceWeights, default_quantum, make_policy_factory, make_router
from fairsched.policies.global_dlpm import global_dlpm_factory
from fairsched.reproduce import common as cm
from fairsched.sim.config import InstanceConfig
from fairsched.theory.d2lpm import CHARGES as REF_CHARGES
from fairsched.theory.d2lpm import (
    d2lpm_global_gap,
    d2lpm_hole_requests,
    d2lpm_rate_requests,
    d2lpm_rate_workload,
)
from fairsched.workload import (
    llm_as_judge,
    load_trace,
    long_document_qa,
    mixed,
    multi_turn_chat,
    shared_data_dir,
    tree_of_thought,
)

CHARGES = ("uncached", "full")


def _gaps(r, params) -> dict:
    v = {x.scope: x for x in check_run(r, "dlpm", params)}
    a, e = v["backlogged anywhere"], v["backlogged at every instance"]
    return {"anywhere": a.measured, "candidate": a.bound, "every": e.measured, "theoremA": e.bound}


def _workloads():
    wls = [("long-doc-QA", long_document_qa(n_clients=8, seed=0)), ("chat", multi_turn_chat(n_clients=8, seed=0)),
           ("ToT", tree_of_thought(n_clients=4, seed=0)), ("judge", llm_as_judge(n_clients=4, seed=0)),
           ("claim3-mix", mixed(seed=0, scale=4.0, duration=60.0))]
    data = shared_data_dir()
    if data is not None and (data / "lmsys_vtc_27clients.jsonl").exists():
        wls.append(("lmsys", load_trace(data / "lmsys_vtc_27clients.jsonl")))
    return wls


def part_cost() -> None:
    w = ServiceWeights()
    cost, inst = cm.hardware(None, cm.A100)
    wls = _workloads()
    print("workload n | charge: hit thr[tok/s] ttft[s] gap_anywhere gap_every/theoremA")
    for name, wl in wls:
        q = default_quantum(wl, w)
        row = [name, len(wl)]
        for charge in CHARGES:
            r = simulate_for_check(wl, make_policy_factory("dlpm", w, quantum=q),
                                   make_router("d2lpm", w, quantum_w=q, charge=charge), 4, inst, cost)
            s, g = summarize(r), _gaps(r, {"quantum": q, "quantum_w": q, "router": "d2lpm"})
            row += ["|", f"{charge}:", f"{s['cache_hit_rate']:.4f}", f"{s['throughput_tok_s']:.0f}",
                    f"{s['ttft_mean_s']:.3f}", f"{g['anywhere']:.0f}", f"{g['every']:.0f}/{g['theoremA']:.0f}"]
        print(*row, flush=True)


def part_rate() -> None:
    w = ServiceWeights()
    print("R | charge: gap_anywhere candidate | gap_every theoremA")
    for R in (1, 2, 4):
        wl = d2lpm_rate_workload(R, 13.3 * R)
        for charge in CHARGES:
            r = simulate_for_check(wl, make_policy_factory("dlpm", w, quantum=400),
                                   make_router("d2lpm", w, quantum_w=800, charge=charge), 2,
                                   InstanceConfig(max_batch_size=1))
            g = _gaps(r, {"quantum": 400, "quantum_w": 800, "router": "d2lpm"})
            print(R, "|", f"{charge}:", f"{g['anywhere']:.0f}", f"{g['candidate']:.0f}", "|", f"{g['every']:.0f}",
                  f"{g['theoremA']:.0f}", flush=True)


def part_variant(runs: int, seed: int) -> None:
    for deficit in ("global", "local"):
        rng = random.Random(seed)
        worst, viol = 0.0, 0
        for _ in range(runs):
            K, slots, q_u = rng.choice([2, 3]), rng.choice([1, 2]), rng.choice([1, 5, 20, 50])
            cls, reqs = "abc"[:rng.choice([2, 3])], []
            for _ in range(rng.randint(1, 8)):
                c, a, n = rng.choice(cls), rng.randint(0, 60), rng.randint(1, 15)
                reqs += [(a, c, rng.randint(0, 30), rng.randint(1, 20), rng.choice("pqrs"))] * n
            r = d2lpm_global_gap(reqs, n_workers=K, q_u=q_u, q_w=rng.choice([10, 100]), max_running=slots,
                                 charge=rng.choice(REF_CHARGES), deficit=deficit)
            worst, viol = max(worst, r["gap"] / r["bound"]), viol + (r["gap"] > r["bound"])
        print(f"random search, deficit={deficit}: {runs} runs, largest gap/bound {worst:.3f}, violations {viol}",
              flush=True)
    print("construction | deficit: gap bound pulls hit_rate")
    cases = [(f"theorem-D R={R}", d2lpm_rate_requests(R), {"q_u": 400, "q_w": 800}) for R in (1, 2, 3)]
    cases += [(f"issue-10 H={H}", d2lpm_hole_requests(H), {"charge": "uncached"}) for H in (1000, 2000)]
    for name, reqs, kw in cases:
        row = [name]
        for deficit in ("global", "local"):
            r = d2lpm_global_gap(reqs, deficit=deficit, **kw)
            row += ["|", f"{deficit}:", f"{r['gap']:.0f}", f"{r['bound']:.0f}", r["pulls"], f"{r['hit_rate']:.4f}"]
        print(*row, flush=True)


def part_pull() -> None:
    w = ServiceWeights()
    cost, inst = cm.hardware(None, cm.A100)
    runs = [(name, wl, default_quantum(wl, w), 4, inst, cost) for name, wl in _workloads()]
    runs += [(f"theorem-D R={R}", d2lpm_rate_workload(R, 13.3 * R), 400.0, 2, InstanceConfig(max_batch_size=1), None)
             for R in (1, 2)]
    print("workload n | policy: hit thr[tok/s] ttft[s] gap_anywhere theoremF_bound pulls")
    for name, wl, q, K, ic, cm_ in runs:
        row = [name, len(wl)]
        for pol in ("dlpm", "dlpm-global"):
            fac = make_policy_factory("dlpm", w, quantum=q) if pol == "dlpm" else global_dlpm_factory(q)
            r = simulate_for_check(wl, fac, make_router("d2lpm", w, quantum_w=q if K == 4 else 2 * q), K, ic, cm_)
            s, gap = summarize(r), max_service_gap(r, per_pair=False).gap
            bound = 2 * (q + sum(measured_x(r).values()))
            pulls = fac.shared.pulls if pol != "dlpm" else 0
            row += ["|", f"{pol}:", f"{s['cache_hit_rate']:.4f}", f"{s['throughput_tok_s']:.0f}",
                    f"{s['ttft_mean_s']:.3f}", f"{gap:.0f}", f"{bound:.0f}", pulls]
        print(*row, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("cost", "rate", "variant", "pull", "all"), default="all")
    ap.add_argument("--runs", type=int, default=2000, help="random workloads of --part variant")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    part = args.part
    t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    if part in ("cost", "all"):
        part_cost()
    if part in ("rate", "all"):
        part_rate()
    if part in ("variant", "all"):
        part_variant(args.runs, args.seed)
    if part in ("pull", "all"):
        part_pull()
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    print(f"wall {time.perf_counter() - t0:.1f} s, CPU {c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime:.1f} s, "
          f"peak RSS {c1.ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
