"""Mitigation of a harmful KV-cache hotspot (issue 11 item 2): paced seeding vs warm-up
prefills, on members of the detector's validation family.

    nice python bench/bench_mitigation.py [--ids 18,24,...] [--all] [--force] [--hotspot] [--no-backlog] [--workers 2] [--out mitigation.csv]

Default ids: the 25 workloads where mitigation acts with the within-window trigger
(``proofs/lmetric_harm_validation.md`` §5.4; ``acted`` = the mitigated run has a mitigate
event); round 5's 22 (§5.3) are ``ACTED_R5``, round 4's 24 (§5.2) ``ACTED_R4``. On the other 178 the mitigated run is LMetric's by construction. ``--all``: the whole
family of 200. ``--hotspot``: also mitigate a confirmed class the model calls ``hotspot``
(``DetectorConfig.mitigate_hotspot``, §5.5; not the library's default); ``--backlog`` (the default, as the
library's): also mitigate a confirmed ``hotspot`` class that passes the backlog test
(``DetectorConfig.mitigate_backlog``, §5.6); ``--no-backlog``: the harm-only rule. Prints per rule the distribution of the hot class's p99 TTFT change and the
overall mean TTFT change vs LMetric, and the share of the gap to the best router
recovered on harmed workloads; wall and CPU time. Definitions: §5.2 of that file.
"""

from __future__ import annotations

import argparse
import resource
import time

import pandas as pd

from fairsched.analysis.detect.mitigation import RULES, mitigation_study, summarize

ACTED_R4 = (18, 24, 68, 91, 101, 122, 128, 142, 146, 148, 151, 152, 172, 173, 174, 188, 9, 26, 54, 63, 64, 139, 140,
            166)
ACTED_R5 = (24, 26, 39, 54, 63, 68, 83, 101, 102, 122, 128, 138, 142, 146, 148, 151, 158, 159, 172, 173, 174, 188)
ACTED_R6 = (9, 24, 26, 39, 45, 54, 63, 68, 83, 101, 102, 122, 128, 138, 139, 140, 142, 146, 148, 151, 159, 172, 173,
            174, 188)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ids", default=",".join(map(str, ACTED_R6)))
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--force", action="store_true", help="mitigate wherever phase 2 confirms, any regime")
    ap.add_argument("--rules", default=",".join(RULES), help="mitigation rules to run (warmup always runs)")
    ap.add_argument("--no-early", action="store_true", help="no within-window trigger (round 5's mitigation)")
    ap.add_argument("--hotspot", action="store_true",
                    help="also mitigate a confirmed class the model calls hotspot (DetectorConfig.mitigate_hotspot)")
    ap.add_argument("--backlog", action=argparse.BooleanOptionalAction, default=True,
                    help="also mitigate a confirmed hotspot class that passes the backlog test (mitigate_backlog, "
                         "section 5.6; the default); --no-backlog: the harm-only rule (the default until round 8)")
    ap.add_argument("--split", action="store_true",
                    help="only the after-event split of the unrecovered gap per id (section 5.5)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="mitigation.csv")
    a = ap.parse_args()
    ids = list(range(200)) if a.all else [int(i) for i in a.ids.split(",")]
    if a.split:
        from fairsched.analysis.detect.mitigation import after_event_split
        from fairsched.analysis.detect.validation import family

        fam = family(200, 0)
        rows = [r for r in (after_event_split(fam[i], hotspot=a.hotspot, backlog=a.backlog) for i in ids) if r is not None]
        print(pd.DataFrame(rows).round(4).to_string(index=False))
        return
    t0 = time.perf_counter()
    f = mitigation_study(ids, workers=a.workers, force=a.force, progress=True, rules=tuple(a.rules.split(",")),
                         early=not a.no_early, hotspot=a.hotspot, backlog=a.backlog)
    wall = time.perf_counter() - t0
    ru = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(r.ru_utime + r.ru_stime for r in ru)
    f.to_csv(a.out, index=False)
    s = summarize(f)
    pd.set_option("display.width", 220)
    pd.set_option("display.max_rows", 500)
    print(s[s.acted].round(3).to_string(index=False))
    for rule, g in s.groupby("rule", sort=False):
        rec = g.gap_recovered.dropna()
        print(f"\n{rule}: acted on {int(g.acted.sum())} of {len(g)}; hot p99 change: max {g.hot_p99_change.max():+.3f}, "
              f"> +10 % on {int((g.hot_p99_change > 0.10).sum())}; overall mean change: max {g.all_mean_change.max():+.4f}, "
              f"raised on {int((g.all_mean_change > 0).sum())}; harmed {len(rec)}: gap recovered min / quartiles / max "
              f"{' / '.join(f'{v:.2f}' for v in rec.quantile([0, .25, .5, .75, 1]))}, >= 0.8 on {int((rec >= 0.8).sum())}")
    print(f"warm-ups: {int(f.warmup_n.sum())} issued, {f.warmup_gpu_s.sum():.2f} GPU s in all")
    print(f"wall {wall:.1f} s, CPU {cpu:.1f} s (self + children)")


if __name__ == "__main__":
    main()
