"""Mitigation study: the detector's mitigation, by paced seeding and by warm-up prefills,
against LMetric and the best router, on members of the validation family.

Per workload (:func:`evaluate_mitigation`, the study run of
:func:`fairsched.analysis.detect.study_run.study_run`, as in the validation study): LMetric with the detector (the
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

from fairsched.analysis.detect.runner import ttft_stats
from fairsched.analysis.detect.study_run import study_run

__all__ = ["RULES", "after_event_split", "evaluate_mitigation", "mitigation_study", "summarize"]

RULES = ("paced", "warmup")


def evaluate_mitigation(spec: dict, cost=None, instance=None, force: bool = False, rules=RULES,
                        early: bool = True, hotspot: bool = False, backlog: bool = True) -> dict:
    """One row: ``id``, ``verdict``, ``confirmed``, ``acted``, ``outcome``, ``best_router``, and
    ``{run}_hot_mean`` / ``_hot_p99`` / ``_all_mean`` [s] for runs ``lmetric``, ``paced``,
    ``warmup``, ``least-load``, ``linear``; ``warmup_n`` and ``warmup_gpu_s`` (warm-ups issued,
    their prefill seconds), ``mitigate_t`` [s] and ``early`` (the first mitigate event's time and
    whether the within-window trigger made it). ``acted``: the mitigated run (warm-up rule) has
    a mitigate event; otherwise every mitigated run is LMetric's. ``force``: mitigate wherever
    phase 2 confirms, any regime. ``rules``: the mitigation rules run besides ``warmup`` (the
    others are reported as LMetric's run). ``early``: the detector's ``early_trigger`` (§5.4); ``hotspot``: its ``mitigate_hotspot`` (§5.5);
    ``backlog``: its ``mitigate_backlog`` (§5.6)."""
    from fairsched.analysis.detect import validation as V

    s = study_run(spec, cost, instance)
    rep, lm = s.detect()
    verdict, extra = V._verdict(rep)
    ratio = V._load_ratio(rep, s.n)
    row = {"id": spec["id"], "kind": spec.get("kind"), "n": s.n, "verdict": verdict,
           "confirmed": bool(extra.get("confirmed")), "acted": False, "mitigate_t": None, "early": False,
           "load_ratio": ratio, "warmup_n": 0, "warmup_gpu_s": 0.0}
    res = {"lmetric": lm, **dict.fromkeys(RULES, lm)}
    mkw = dict(mitigate=True, mitigate_only_harmful=not force, early_trigger=early, mitigate_hotspot=hotspot,
               mitigate_backlog=backlog)
    for rule in ("warmup", *(r for r in rules if r != "warmup")):  # the warm-up run says whether it acts
        mrep, res[rule] = s.detect(warmup=rule == "warmup", **mkw)
        if rule == "warmup":
            ev = [e for e in mrep.events if e["event"] == "mitigate"]
            if not ev:  # no mitigate event: every mitigated run is LMetric's (WarmupSimulator, §5.2)
                res["warmup"] = lm
                break
            row.update(acted=True, mitigate_t=ev[0]["t"], early=bool(ev[0].get("early")), warmup_n=len(mrep.warmups),
                       warmup_gpu_s=float(sum(w["gpu_s"] for w in mrep.warmups)))
    for r in V.ROUTERS:
        res[r] = s.simulate(r)
    for name, r in res.items():
        h, a = ttft_stats(r, s.hot), ttft_stats(r)
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
                     progress: bool = False, rules=RULES, early: bool = True, hotspot: bool = False,
                     backlog: bool = True) -> pd.DataFrame:
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
    rows = map_grid(partial(evaluate_mitigation, force=force, rules=rules, early=early, hotspot=hotspot, backlog=backlog), [fam[i] for i in ids], workers=workers,
                    progress=progress, desc="mitigation workloads")
    return pd.DataFrame(rows)


def after_event_split(spec: dict, cost=None, hotspot: bool = False, step_s: float = 0.1,
                      backlog: bool = True) -> dict | None:
    """Where the warm-up mitigation's unrecovered gap is (``proofs/lmetric_harm_validation.md``
    §5.5): each hot-class request's TTFT under the mitigated run minus under least-load,
    summed over a group and divided by the class's requests [s], so the parts add up to the
    unrecovered mean gap. Groups: ``before`` (arrived before the first mitigate event),
    and after it ``in_flight`` (some warm-up issued and not ready at its arrival), ``residue``
    (not in flight, arrived before ``drained_s``), ``steady`` (the rest). ``drained_s``: the
    first time on a ``step_s`` grid from the event on when the requests that arrived before the
    event and are still in the system (not finished) are no more than under least-load.
    Also ``event_s``, ``in_system_mitigated`` / ``in_system_leastload`` (those counts at the
    event) and ``unrecovered`` [s]. None if the mitigated run has no mitigate event.
    ``hotspot``, ``backlog``: the detector's ``mitigate_hotspot``, ``mitigate_backlog``."""
    s = study_run(spec, cost)
    hot = s.hot
    rep, mres = s.detect(mitigate=True, mitigate_hotspot=hotspot, mitigate_backlog=backlog)
    ev = [e["t"] for e in rep.events if e["event"] == "mitigate"]
    if not ev:
        return None
    te = ev[0]
    M, L = mres.requests_frame(), s.simulate("least-load").requests_frame()
    arr = M.arrival.to_numpy()
    diff = (M.ttft_s - L.ttft_s).to_numpy()

    def pre_in_system(F, ts):  # requests that arrived before te and have not finished at each t >= te
        fin = np.sort(np.nan_to_num(F.finish_t.to_numpy()[arr < te], nan=np.inf))
        return len(fin) - np.searchsorted(fin, ts, side="right")

    ts = te + step_s * np.arange(int((max(M.finish_t.max(), L.finish_t.max()) - te) / step_s) + 2)
    pm, pl = pre_in_system(M, ts), pre_in_system(L, ts)
    ok = np.flatnonzero(pm <= pl)
    drained = float(ts[ok[0]]) if len(ok) else math.inf
    flight = np.zeros(len(arr), dtype=bool)
    for w in rep.warmups:
        ready = w["ready_s"] if w["ready_s"] is not None else math.inf
        flight |= (arr >= w["issued_s"]) & (arr < ready)
    after = hot & (arr >= te)
    groups = {"before": hot & (arr < te), "in_flight": after & flight, "residue": after & ~flight & (arr < drained),
              "steady": after & ~flight & (arr >= drained)}
    n = int(hot.sum())
    out = {k: float(diff[m].sum() / n) for k, m in groups.items()}
    return {"id": spec["id"], "event_s": te, "in_system_mitigated": int(pm[0]), "in_system_leastload": int(pl[0]),
            "drained_s": drained, "unrecovered": float(diff[hot].sum() / n), **out}
