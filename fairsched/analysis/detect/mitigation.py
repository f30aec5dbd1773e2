"""Mitigation study: the detector's mitigation, by paced seeding and by warm-up prefills,
against LMetric and the best router, on members of the validation family.

Per workload (:func:`evaluate_mitigation`, the spec, detector config and pre-loaded holders
of :func:`fairsched.analysis.detect.validation.evaluate`): LMetric with the detector (the
verdict, whether phase 2 confirmed), then, where mitigation acts (a harmful verdict
confirmed by phase 2, as in the study; or on every flagged-and-confirmed workload with
``force``), LMetric + paced seeding (``proofs/lmetric_harm_validation.md`` §5) and LMetric
+ warm-up prefills with the shield (§5.2-5.3); least-load and linear. Where it does not act the mitigated runs
are LMetric's run (by construction identical). Figures per mitigation rule
(:func:`summarize`): the hot class's p99 TTFT change vs LMetric, the overall mean TTFT change,
the share of LMetric's gap to the best router recovered (outcome harmful only), and the
warm-ups' GPU seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from fairsched.analysis.detect.detector import DetectorConfig
from fairsched.analysis.detect.runner import run_detection, ttft_stats
from fairsched.analysis.prefix_classes import prefix_classes

__all__ = ["RULES", "evaluate_mitigation", "mitigation_study", "summarize"]

RULES = ("paced", "warmup")


def evaluate_mitigation(spec: dict, cost=None, instance=None, force: bool = False, rules=RULES,
                        early: bool = True, hotspot: bool = False) -> dict:
    """One row: ``id``, ``verdict``, ``confirmed``, ``acted``, ``outcome``, ``best_router``, and
    ``{run}_hot_mean`` / ``_hot_p99`` / ``_all_mean`` [s] for runs ``lmetric``, ``paced``,
    ``warmup``, ``least-load``, ``linear``; ``warmup_n`` and ``warmup_gpu_s`` (warm-ups issued,
    their prefill seconds), ``mitigate_t`` [s] and ``early`` (the first mitigate event's time and
    whether the within-window trigger made it). ``acted``: the mitigated run (warm-up rule) has
    a mitigate event; otherwise every mitigated run is LMetric's. ``force``: mitigate wherever
    phase 2 confirms, any regime. ``rules``: the mitigation rules run besides ``warmup`` (the
    others are reported as LMetric's run). ``early``: the detector's ``early_trigger`` (§5.4); ``hotspot``: its ``mitigate_hotspot`` (§5.5)."""
    from fairsched.analysis.detect import validation as V
    from fairsched.sim import CostModel, simulate

    cost = cost or CostModel()
    wl, qps, H = V.workload_of(spec, cost)
    pc = prefix_classes(wl)
    hot = np.array([c == "hot" for c in pc.class_of], dtype=bool)
    pre = {"hot": V.holder_ids(spec)}
    base = dict(window_s=H / 4, top_k=3, min_class_requests=5)
    rep, lm = run_detection(wl, spec["n"], config=DetectorConfig(**base), cost=cost, instance=instance, classes=pc,
                            preload=pre)
    verdict, extra = V._verdict(rep)
    d = rep.decisions
    d = d[(d.klass == "hot") & (d.n_holders > 0) & (d.n_holders < spec["n"])]
    ratio = float((d.load_holders.mean() + 1) / (d.load_others.mean() + 1)) if len(d) else 1.0
    row = {"id": spec["id"], "kind": spec.get("kind"), "n": spec["n"], "verdict": verdict,
           "confirmed": bool(extra.get("confirmed")), "acted": False, "mitigate_t": None, "early": False,
           "load_ratio": ratio, "warmup_n": 0, "warmup_gpu_s": 0.0}
    res = {"lmetric": lm, **dict.fromkeys(RULES, lm)}
    mcfg = DetectorConfig(**base, mitigate=True, mitigate_only_harmful=not force, early_trigger=early,
                          mitigate_hotspot=hotspot)
    for rule in ("warmup", *(r for r in rules if r != "warmup")):  # the warm-up run says whether it acts
        mrep, res[rule] = run_detection(wl, spec["n"], config=mcfg, cost=cost, instance=instance, classes=pc,
                                        preload=pre, warmup=rule == "warmup")
        if rule == "warmup":
            ev = [e for e in mrep.events if e["event"] == "mitigate"]
            if not ev:  # no mitigate event: every mitigated run is LMetric's (WarmupSimulator, §5.2)
                res["warmup"] = lm
                break
            row.update(acted=True, mitigate_t=ev[0]["t"], early=bool(ev[0].get("early")), warmup_n=len(mrep.warmups),
                       warmup_gpu_s=float(sum(w["gpu_s"] for w in mrep.warmups)))
    for r in V.ROUTERS:
        res[r] = simulate(wl, "fcfs", r, n_instances=spec["n"], instance=instance, cost=cost)
    for name, r in res.items():
        h, a = ttft_stats(r, hot), ttft_stats(r)
        row.update({f"{name}_hot_mean": h["ttft_mean_s"], f"{name}_hot_p99": h["ttft_p99_s"],
                    f"{name}_all_mean": a["ttft_mean_s"]})
    row["best_router"] = min(V.ROUTERS, key=lambda r: row[f"{r}_hot_mean"] if row[f"{r}_hot_mean"] is not None
                             else math.inf)
    row["outcome"] = V.outcome_label(row["lmetric_hot_mean"], row["least-load_hot_mean"], ratio)
    return row


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Per workload and rule: ``hot_p99_change``, ``all_mean_change`` (fractions vs LMetric)
    and ``gap_recovered`` (harmful outcome with a positive gap only, else NaN)."""
    f = frame
    best = np.array([f.loc[i, f"{b}_hot_mean"] for i, b in zip(f.index, f.best_router, strict=True)], dtype=float)
    gap = f.lmetric_hot_mean - best
    out = []
    for rule in RULES:
        rec = np.where((f.outcome == "harmful") & (gap > 0), (f.lmetric_hot_mean - f[f"{rule}_hot_mean"]) / gap,
                       np.nan)
        out.append(pd.DataFrame({"id": f.id, "rule": rule, "acted": f.acted, "outcome": f.outcome,
                                 "hot_p99_change": f[f"{rule}_hot_p99"] / f.lmetric_hot_p99 - 1,
                                 "all_mean_change": f[f"{rule}_all_mean"] / f.lmetric_all_mean - 1,
                                 "gap_recovered": rec}))
    return pd.concat(out, ignore_index=True)


def mitigation_study(ids: Sequence[int], n: int = 200, seed: int = 0, *, workers: int = 1, force: bool = False,
                     progress: bool = False, rules=RULES, early: bool = True, hotspot: bool = False) -> pd.DataFrame:
    """:func:`evaluate_mitigation` on members ``ids`` of ``family(n, seed)`` through the sweep
    runner; one row per workload.

    Raises:
        ValueError: an id outside the family.
    """
    from functools import partial

    from fairsched.analysis.detect.validation import family
    from fairsched.sweep import map_grid

    bad = [i for i in ids if not 0 <= i < n]
    if bad:
        raise ValueError(f"ids {bad} are outside the family of {n} workloads")
    fam = family(n, seed)
    rows = map_grid(partial(evaluate_mitigation, force=force, rules=rules, early=early, hotspot=hotspot), [fam[i] for i in ids], workers=workers,
                    progress=progress, desc="mitigation workloads")
    return pd.DataFrame(rows)
