"""Validation study of the LMetric hotspot detector (issue 11): verdict vs simulated harm on
a seeded family of generated workloads, confusion matrix, disagreements, and the
distribution of the mitigation's effect.

    nice python bench/bench_detect_validation.py [--n 200] [--seed 0] [--workers 2] [--ray] [--out validation.csv]
    python bench/bench_detect_validation.py --rescore --out validation.csv   # verdicts again, no simulation
    python bench/bench_detect_validation.py --rescore --holder-stream poisson --out validation.csv  # §3.4's form
    python bench/bench_detect_validation.py --rescore --load-form steady --out validation.csv  # rounds 3-6's loads
    python bench/bench_detect_validation.py --rescore --prefill-seen mean --out validation.csv  # rounds 7-8's decodes
    python bench/bench_detect_validation.py --rescore --more-seeds more.jsonl --out validation.csv  # 8-seed outcomes
    python bench/bench_detect_validation.py --rescore --ceiling --out validation.csv  # label-noise ceiling per trace
    python bench/bench_detect_validation.py --rescore --leastload-start holders --out validation.csv  # rounds 5-8's least-load

The same study as ``fairsched detect --validate N`` (which writes JSON + CSV). Points run
through the sweep runner (local process pool, or Ray with ``--ray``). Prints the confusion
matrix (rows: verdict, columns: measured outcome), the agreement, each disagreement, the
mitigation figures, wall and CPU time; writes one row per workload to ``--out`` and every
seed's hot-class window rows (the model's inputs) to ``<out>_windows.json``. ``--rescore``
reads both back and recomputes every verdict with the library's current model
(:func:`~fairsched.analysis.detect.validation.rescore_verdict`) against the saved outcomes;
``--more-seeds`` (JSON lines ``{"id", "seed_excess_more", "seed_ratio_more"}``: more seeds' runs of
the specs whose outcome is indeterminate) also scores them against the outcome over all their seeds.
Definitions: ``proofs/lmetric_harm_validation.md``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import pandas as pd

from fairsched.analysis.detect.validation import (
    SEEDS,
    Validation,
    rescore_verdict,
    spec_outcome,
    validate,
)
from fairsched.output import atomic_write_text, jsonable
from fairsched.theory.lmetric_steady import HOLDER_STREAMS
from fairsched.theory.lmetric_transient import LOAD_FORMS, PREFILL_SEEN


def _list(v) -> list:
    """A saved list column (CSV: its text form)."""
    return v if isinstance(v, list) else json.loads(str(v).replace("None", "null").replace("nan", "NaN").replace("'", '"'))


def _print_ceiling(v: Validation, what: str) -> None:
    """Per trace: the model, the majority-outcome oracle, and the misses within the seed spread."""
    c = v.ceiling()
    print(f"label-noise ceiling ({what}): model {c['model_agree']} / oracle {c['oracle_agree']} of {c['traces']} traces; "
          f"determined specs: model {c['det_model_agree']} / oracle {c['det_oracle_agree']} of {c['det_traces']}; "
          f"misses within the seed spread {c['misses_within_spread']} of {c['misses']} "
          f"({c['det_misses_within_spread']} on determined specs)")
    m = pd.DataFrame(c["miss_rows"])
    if len(m):
        print(m.groupby(["line", "within_spread"]).size().to_string())
        print("misses outside the spread:")
        print(m[~m.within_spread].round(4).to_string(index=False))


def _load_study(out: str, ap) -> tuple[pd.DataFrame, dict]:
    """A saved study: ``out`` (the CSV) and ``<out>_windows.json`` (the model's inputs); a missing or
    unreadable file is an argparse error naming it (no traceback)."""
    win = out.rsplit(".", 1)[0] + "_windows.json"
    try:
        f = pd.read_csv(out)
        with open(win) as fh:
            saved = {r["id"]: r for r in json.load(fh)}
    except (OSError, ValueError, KeyError, TypeError) as e:
        ap.error(f"--out {out}: cannot read the saved study ({out}, {win}): {e}")
    missing = sorted(set(f.id) - set(saved)) if "id" in f else ["the id column"]
    if missing:
        ap.error(f"--out {out}: {win} lacks the windows of {missing[:5]}")
    return f, saved


def _load_more_seeds(path: str, ap) -> dict:
    """``--more-seeds``: JSON lines ``{"id", "seed_excess_more", "seed_ratio_more"}`` by id; a bad
    line is an argparse error naming the file and line."""
    more = {}
    try:
        with open(path) as fh:
            for k, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        r = json.loads(line)
                        more[r["id"]] = r | {k: list(r[k]) for k in ("seed_excess_more", "seed_ratio_more")}
                    except (ValueError, KeyError, TypeError) as e:
                        ap.error(f"--more-seeds {path}, line {k}: {e}")
    except OSError as e:
        ap.error(f"--more-seeds {path}: {e}")
    return more


def _rescore(a, ap) -> None:
    """``--rescore``: the saved study's verdicts again, against its saved (and ``--more-seeds``) outcomes."""
    f, saved = _load_study(a.out, ap)
    more = _load_more_seeds(a.more_seeds, ap) if a.more_seeds else None  # read up front: a bad file fails at once
    f["seed_verdict"] = [[rescore_verdict({**saved[i], "n": n, "horizon_s": h}, j, holder_stream=a.holder_stream,
                                          load_form=a.load_form, prefill_seen=a.prefill_seen,
                                          leastload_start=a.leastload_start)
                          for j in range(len(_list(se)))]
                         for i, n, h, se in zip(f.id, f.n, f.horizon_s, f.seed_excess, strict=True)]
    f["verdict"] = [v[0] for v in f.seed_verdict]
    f["seed_excess"], f["seed_ratio"] = f.seed_excess.map(_list), f.seed_ratio.map(_list)
    v = Validation(f)
    s = v.summary()
    print(v.confusion().to_string())
    print(f"agreement {s['n_agree']} of {s['n']}; on the {s['n_determined']} determined outcomes "
          f"{s['agreement_determined']:.3f}; harmful-or-not {s['harm_agreement']:.3f}")
    print("per trace (each seed's verdict against that seed's own outcome):")
    print(v.trace_confusion().to_string())
    print(f"per-trace agreement {s['trace_n_agree']} of {s['trace_n']} ({s['trace_agreement']:.3f})")
    if a.ceiling:
        _print_ceiling(v, "4-seed outcomes")
    if more is not None:
        f["outcome"] = [spec_outcome(e + more[i]["seed_excess_more"], r + more[i]["seed_ratio_more"])
                        if o == "indeterminate" and i in more else o
                        for i, o, e, r in zip(f.id, f.outcome, f.seed_excess, f.seed_ratio, strict=True)]
        s = Validation(f).summary()
        print(f"with {len(more)} specs' more seeds:")
        print(Validation(f).confusion().to_string())
        print(f"agreement on the {s['n_determined']} determined outcomes {s['n_agree']} ({s['agreement_determined']:.3f})")
        if a.ceiling:
            _print_ceiling(Validation(f), f"outcomes with {len(more)} specs' more seeds")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ray", action="store_true")
    ap.add_argument("--seeds", type=int, default=SEEDS, help="workload seeds per spec for the measured outcome")
    ap.add_argument("--out", default="detect_validation.csv")
    ap.add_argument("--rescore", action="store_true", help="recompute the verdicts of a saved study (no simulation)")
    ap.add_argument("--holder-stream", choices=HOLDER_STREAMS, default="fluid",
                    help="with --rescore: the model's form of the holders' class stream (proof §3.4)")
    ap.add_argument("--load-form", choices=LOAD_FORMS, default="transient",
                    help="with --rescore: the loads a window sees (proof §3.5; steady: rounds 3-6)")
    ap.add_argument("--prefill-seen", choices=PREFILL_SEEN, default="jsq",
                    help="with --rescore: the prefills a decode sees (proof §3.7; mean: rounds 7-8)")
    ap.add_argument("--leastload-start", choices=("cold", "holders"), default="cold",
                    help="with --rescore: the compared least-load run's holders at the start (proof §13.2; holders: rounds 5-8)")
    ap.add_argument("--ceiling", action="store_true",
                    help="with --rescore: the label-noise ceiling of per-trace agreement (proof §13.1)")
    ap.add_argument("--more-seeds", default=None,
                    help="with --rescore: JSON lines of more seeds' outcomes for the indeterminate specs")
    a = ap.parse_args()
    for opt in ("n", "seeds", "workers"):
        if getattr(a, opt) < 1:
            ap.error(f"--{opt} must be >= 1 (got {getattr(a, opt)})")
    if a.rescore:
        _rescore(a, ap)
        return
    t0 = time.perf_counter()
    v = validate(a.n, a.seed, workers=a.workers, use_ray=a.ray, progress=True, seeds=a.seeds)
    wall = time.perf_counter() - t0
    ru = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(r.ru_utime + r.ru_stime for r in ru)
    # both files or neither: the model's inputs (to rescore a form of it) first, the table last
    atomic_write_text(a.out.rsplit(".", 1)[0] + "_windows.json",
                      json.dumps(jsonable(v.frame[["id", "hot_class", "windows"]].to_dict("records"))))
    atomic_write_text(a.out, v.frame.drop(columns=["windows", "hot_class"]).to_csv(index=False))
    pd.set_option("display.width", 220)
    print(v.summary_text())
    print(f"wall {wall:.0f} s, CPU {cpu:.0f} s ({a.workers} workers; 2 shared cores, under contention)")


if __name__ == "__main__":
    main()
