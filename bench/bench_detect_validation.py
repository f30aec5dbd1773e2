"""Validation study of the LMetric hotspot detector (issue 11): verdict vs simulated harm on
a seeded family of generated workloads, confusion matrix, disagreements, and the
distribution of the mitigation's effect.

    nice python bench/bench_detect_validation.py [--n 200] [--seed 0] [--out validation.csv]

Serial on purpose (2 shared cores). Prints the confusion matrix (rows: verdict, columns:
measured outcome), the agreement, each disagreement, and the mitigation figures; writes
one row per workload to ``--out``. Definitions: ``proofs/lmetric_harm_validation.md``.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from fairsched.analysis.detect.validation import Validation, evaluate, family


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="detect_validation.csv")
    a = ap.parse_args()
    t0 = time.perf_counter()
    rows = []
    for spec in family(a.n, a.seed):
        rows.append(evaluate(spec))
        r = rows[-1]
        print(f"{r['id']:4d} N={r['n']:3d} |M|={r['holders']:2d} x/thr={r['x_over_threshold']:.2f} "
              f"load={r['load']:.2f} D={r['doc_tokens']:5d} {r['mode']:6s} verdict={r['verdict']:8s} "
              f"outcome={r['outcome']:8s} ({time.perf_counter() - t0:.0f} s)", flush=True)
    v = Validation(pd.DataFrame(rows))
    v.frame.to_csv(a.out, index=False)
    pd.set_option("display.width", 200)
    print("\nconfusion matrix (rows: detector verdict, columns: simulated outcome)")
    print(v.confusion().to_string())
    print(f"agreement {v.agreement:.3f} ({int((v.frame.verdict == v.frame.outcome).sum())} of {len(v.frame)}); "
          f"harmful-or-not agreement {v.harm_agreement:.3f}")
    print("\ndisagreements")
    print(v.disagreements().round(3).to_string(index=False))
    m = v.mitigation()
    print("\nmitigation vs LMetric: hot-class p99 TTFT change (fraction)")
    print(m.hot_p99_change.describe(percentiles=[0.5, 0.9, 0.99]).round(4).to_string())
    print(f"worst hot p99 change {m.hot_p99_change.max():+.4f}; worst overall mean change {m.all_mean_change.max():+.4f}")
    rec = m.gap_recovered.dropna()
    print(f"harmed workloads: {len(rec)}; gap recovered: {rec.round(3).tolist()}")
    print(f"wall {time.perf_counter() - t0:.0f} s (2 shared cores, under contention)")


if __name__ == "__main__":
    main()
