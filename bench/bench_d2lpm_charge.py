"""Hit-rate cost of D2LPM's full-charge routing variant (``proofs/d2lpm_bound.md``).

Runs DLPM behind the D2LPM router on 4 instances (Q^u = Q^w = the CLI's default quantum) on
the DLPM paper's workload kinds (fairsched generators, default sizes, seed 0) with routing
charging the uncached prompt (D2LPM) and the full prompt (variant), and prints per workload:
requests, then for each charge rule the cache hit rate, throughput [tok/s], mean TTFT [s] and
the largest gap between two clients backlogged somewhere [service units].

    python bench/bench_d2lpm_charge.py
"""

from __future__ import annotations

from fairsched.analysis.bounds import check_run, simulate_for_check
from fairsched.analysis.metrics import summarize
from fairsched.policies import ServiceWeights, default_quantum, make_policy_factory, make_router
from fairsched.workload.generators import (
    llm_as_judge,
    long_document_qa,
    multi_turn_chat,
    tree_of_thought,
)


def main() -> None:
    w = ServiceWeights()
    print("workload  n  | charge hit thr ttft gap_anywhere | charge hit thr ttft gap_anywhere")
    for name, wl in [("long-doc-QA", long_document_qa(n_clients=8, seed=0)), ("chat", multi_turn_chat(n_clients=8, seed=0)),
                     ("ToT", tree_of_thought(n_clients=4, seed=0)), ("judge", llm_as_judge(n_clients=4, seed=0))]:
        q = default_quantum(wl, w)
        row = [name, len(wl)]
        for charge in ("uncached", "full"):
            r = simulate_for_check(wl, make_policy_factory("dlpm", w, quantum=q),
                                   make_router("d2lpm", w, quantum_w=q, charge=charge), 4)
            s = summarize(r)
            anywhere = [v for v in check_run(r, "dlpm", {"quantum": q, "quantum_w": q, "router": "d2lpm"})
                        if v.scope == "backlogged anywhere"][0]
            row += ["|", charge, f"{s['cache_hit_rate']:.4f}", f"{s['throughput_tok_s']:.0f}", f"{s['ttft_mean_s']:.3f}",
                    f"{anywhere.measured:.0f}"]
        print(*row, flush=True)


if __name__ == "__main__":
    main()
