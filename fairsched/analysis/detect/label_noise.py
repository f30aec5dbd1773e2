"""How far per-trace agreement can go: the label-noise ceiling of the validation study.

A spec's seeded traces are one workload drawn several times; the outcome of each trace
(:func:`~fairsched.analysis.detect.validation.outcome_label`) follows the measured harm
excess and load ratio of that trace, which spread from seed to seed. A model whose verdict
is a function of the spec cannot agree with more traces than the spec's majority outcome
holds, so ``sum over specs of the majority outcome's trace count / traces`` bounds it
(``proofs/lmetric_harm_validation.md`` §13.1). The detector sees each trace's own arrivals
and could in principle beat that bound; it does not on the saved study, and each of its
per-trace misses is classified by how near the trace lies to the line it crossed:
``|measured - line| < the spec's seed-to-seed standard deviation`` of that statistic
("within the spread"), where the line is the harm line (excess 0 s) if either side of the
miss is ``harmful``, else the hotspot line (ratio ``ratio_line``: the study's
:data:`~fairsched.analysis.detect.validation.HOTSPOT_RATIO`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["trace_ceiling"]


def trace_ceiling(frame: pd.DataFrame, *, label: Callable[[float, float], str], ratio_line: float) -> dict:
    """The label-noise ceiling of per-trace agreement and the misses within the seed spread.

    Args:
        frame: one row per spec with ``id``, ``outcome`` (the spec's, may be
            ``indeterminate``), and per trace the lists ``seed_verdict``, ``seed_excess`` [s],
            ``seed_ratio`` (equal lengths, at least one trace).
        label: one trace's outcome from its harm excess [s] and load ratio (the study's
            ``spec_outcome`` of one run); ratio_line: the hotspot line of the load ratio.

    Returns:
        JSON-ready dict: ``traces``, ``model_agree`` (traces whose verdict equals their own
        outcome), ``oracle_agree`` (sum of each spec's majority outcome count), the same three
        over the specs whose outcome is determined (``det_*``), ``misses``, ``misses_within_spread``,
        ``det_misses_within_spread`` and ``miss_rows`` (per miss: id, seed_j, verdict, outcome,
        line, measured, line value, seed std, within).

    Raises:
        ValueError: a row's per-trace lists differ in length or are empty.
    """
    out = dict.fromkeys(("traces", "model_agree", "oracle_agree", "det_traces", "det_model_agree", "det_oracle_agree",
                         "misses", "misses_within_spread", "det_misses_within_spread"), 0)
    rows = []
    for i, o, vs, es, rs in zip(frame.id, frame.outcome, frame.seed_verdict, frame.seed_excess, frame.seed_ratio,
                                strict=True):
        if not len(vs) or not len(vs) == len(es) == len(rs):
            raise ValueError(f"spec {i}: seed_verdict, seed_excess, seed_ratio must be equal, non-empty lists")
        labels = [label(e, r) for e, r in zip(es, rs, strict=True)]
        agree, oracle, det = sum(v == t for v, t in zip(vs, labels, strict=True)), Counter(labels).most_common(1)[0][1], o != "indeterminate"
        for k, n in (("traces", len(vs)), ("model_agree", agree), ("oracle_agree", oracle)):
            out[k] += n
            out["det_" + k] += n if det else 0
        for j, (v, t, e, r) in enumerate(zip(vs, labels, es, rs, strict=True)):
            if v == t:
                continue
            harm = "harmful" in (v, t)
            vals, x, line = (es, e, 0.0) if harm else (rs, r, ratio_line)
            finite = np.asarray([u for u in vals if u is not None and np.isfinite(u)], dtype=float)
            std = float(finite.std(ddof=1)) if finite.size > 1 else float("nan")
            within = bool(abs(x - line) < std)
            out["misses"] += 1
            out["misses_within_spread"] += within
            out["det_misses_within_spread"] += within and det
            rows.append({"id": int(i), "seed_j": j, "verdict": v, "outcome": t, "spec_outcome": o,
                         "line": "harm" if harm else "hotspot", "measured": float(x), "line_value": line,
                         "seed_std": std, "within_spread": within})
    return {**out, "miss_rows": rows}
