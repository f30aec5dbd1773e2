"""Validation study of the hotspot detector: its verdicts against simulated harm.

A seeded family of generated workloads (:func:`family`) spans the phase diagram: the hot
class's share ``x`` from a quarter to four times its holders' share ``|M|/N`` (``|M|``
instances pre-loaded with its prefix), load 30-95 % of capacity (:func:`capacity_qps`),
shared prefix 1k-32k tokens, N = 4-64 instances, steady or bursty arrivals (the share
jumps from below ``1/N`` to ``x`` for the middle half of the run). For each workload
(:func:`evaluate`):

- **verdict** of the detector (run online on LMetric): the worst regime (``benign`` <
  ``hotspot`` < ``harmful``) that the corrected model
  (:func:`fairsched.theory.lmetric.steady_state_hotspot`) gives over the hot class's
  checked windows; ``benign`` if no window had enough class arrivals to check;
- **outcome** measured in the same simulator, defined in ``proofs/lmetric_harm_validation.md``
  *before* any agreement was looked at: ``harmful`` if LMetric's hot-class mean TTFT exceeds
  least-load's by more than :data:`HARM_REL` and :data:`HARM_ABS_S`; else ``hotspot`` if the
  holders' load over the others' at hot-class decisions exceeds :data:`HOTSPOT_RATIO`; else
  ``benign``;
- latency (hot class and overall, TTFT mean and p99) under LMetric, LMetric with the
  detector's mitigation, least-load and the other routers in :data:`ROUTERS`.

:func:`validate` runs the family serially (2 shared cores: small workloads, short
horizons) and returns a :class:`Validation` (confusion matrix, agreement, disagreements,
mitigation distribution).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairsched.analysis.detect.detector import DetectorConfig
from fairsched.analysis.detect.runner import run_detection, ttft_stats
from fairsched.analysis.prefix_classes import prefix_classes

__all__ = ["HARM_ABS_S", "HARM_REL", "HOTSPOT_RATIO", "LABELS", "ROUTERS", "Validation", "capacity_qps",
           "evaluate", "family", "outcome_label", "validate", "workload_of"]

HARM_REL = 0.10  # LMetric's hot-class mean TTFT above least-load's by more than 10 % ...
HARM_ABS_S = 0.005  # ... and by more than 5 ms (half a decode step: below it is noise)
HOTSPOT_RATIO = 1.25  # holders' (B + 1) over the others' at hot-class decisions (phase diagram's rule)
LABELS = ("benign", "hotspot", "harmful")
ROUTERS = ("least-load", "linear")  # compared with LMetric; "best" = lowest hot-class mean TTFT
SUFFIX = (16, 64)
OUTPUT = (32, 96)
COLD = (1000, 3000)


def _work_s(cost, new: float, cached: float, out: float) -> float:
    """Seconds of instance time one request needs: its prefill plus its share of ``out``
    decode steps (``d_b + d_c * context`` each; the per-step ``d_a`` is shared by the batch).
    ``proofs/lmetric_harm_validation.md`` (iteration model)."""
    return cost.prefill_time(int(new), int(cached)) + out * (cost.decode_b + cost.decode_c * (cached + new + out / 2))


def capacity_qps(n: int, x: float, doc: int, cost) -> float:
    """Arrival rate [req/s] at which N instances are fully busy (utilisation 1) when every
    instance caches the document: ``N / (x w_hit + (1 - x) w_cold)`` with mean lengths."""
    u, o, lc = sum(SUFFIX) / 2, sum(OUTPUT) / 2, sum(COLD) / 2
    w = x * _work_s(cost, u, doc, o) + (1 - x) * _work_s(cost, lc, 0, o)
    return n / w


def family(n: int = 200, seed: int = 0) -> list[dict]:
    """``n`` seeded workload specs (dicts) spanning the phase diagram (module docstring)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        N = int(rng.choice([4, 8, 16, 32, 64]))
        m = int(min(N // 2, max(1, round(2 ** rng.uniform(0, math.log2(max(1, N // 2)))))))
        share = 2 ** rng.uniform(-2, 2)  # x / (|M|/N)
        x = float(min(0.9, share * m / N))
        out.append({"id": k, "n": N, "holders": m, "x": round(x, 4), "x_over_threshold": round(x * N / m, 3),
                    "load": round(float(rng.uniform(0.3, 0.95)), 3),
                    "doc_tokens": int(round(2 ** rng.uniform(10, 15), -1)),
                    "mode": str(rng.choice(["steady", "bursty"])), "seed": int(rng.integers(0, 2**31 - 1))})
    return out


def workload_of(spec: dict, cost=None):
    """The workload of one spec and its horizon [s]: ~15 requests per instance, 6-20 s."""
    from fairsched.sim import CostModel
    from fairsched.workload.hotspot import hotspot_workload

    cost = cost or CostModel()
    N, x = spec["n"], spec["x"]
    qps = spec["load"] * capacity_qps(N, x, spec["doc_tokens"], cost)
    H = float(min(20.0, max(6.0, 15 * N / qps)))
    kw = dict(doc_tokens=spec["doc_tokens"], suffix_tokens=SUFFIX, output_tokens=OUTPUT, cold_input_tokens=COLD,
              seed=spec["seed"], n_cold_clients=max(16, N))
    if spec["mode"] == "steady":
        wl = hotspot_workload(N, qps, x, x_warm=x, warm_s=0.0, burst_s=H, tail_s=0.0, **kw)
    else:
        wl = hotspot_workload(N, qps, x, x_warm=min(x, 0.5 / N), warm_s=H / 4, burst_s=H / 2, tail_s=H / 4, **kw)
    return wl, qps, H


def outcome_label(lm_hot: float | None, ll_hot: float | None, load_ratio: float) -> str:
    """The measured outcome (definition in ``proofs/lmetric_harm_validation.md``)."""
    if lm_hot is not None and ll_hot is not None and lm_hot > ll_hot * (1 + HARM_REL) and lm_hot - ll_hot > HARM_ABS_S:
        return "harmful"
    return "hotspot" if load_ratio > HOTSPOT_RATIO else "benign"


def _verdict(rep) -> tuple[str, dict]:
    """The worst regime the model gives over the hot class's checked windows (benign if none)."""
    f = next((f for f in rep.flagged_classes if f["klass"] == "hot"), None)
    w = rep.windows
    th = w.loc[w.klass == "hot", "theory"].tolist() if len(w) and "theory" in w else []
    regimes = [t.get("regime", "benign") for t in th if isinstance(t, dict)]
    worst = max(regimes, key=LABELS.index) if regimes else "benign"
    ratios = [t.get("steady_ratio") for t in th if isinstance(t, dict) and t.get("steady_ratio") is not None]
    extra = {"flagged": f is not None, "confirmed": bool(f and f["phase2_confirmed"]),
             "predicted_ratio": max(ratios) if ratios else None}
    return worst, extra


def evaluate(spec: dict, cost=None, instance=None, routers=ROUTERS) -> dict:
    """Detector verdict, measured outcome and latencies for one spec (one row)."""
    from fairsched.sim import CostModel, simulate

    cost = cost or CostModel()
    wl, qps, H = workload_of(spec, cost)
    pc = prefix_classes(wl)
    hot = np.array([c == "hot" for c in pc.class_of], dtype=bool)
    cfg = DetectorConfig(window_s=H / 4, top_k=3, min_class_requests=5)
    pre = {"hot": list(range(spec["holders"]))}
    row = {**spec, "qps": qps, "horizon_s": H, "n_requests": len(wl), "n_hot": int(hot.sum())}
    rep, lm = run_detection(wl, spec["n"], config=cfg, cost=cost, instance=instance, classes=pc, preload=pre)
    verdict, extra = _verdict(rep)
    d = rep.decisions
    d = d[(d.klass == "hot") & (d.n_holders > 0) & (d.n_holders < spec["n"])]
    ratio = float((d.load_holders.mean() + 1) / (d.load_others.mean() + 1)) if len(d) else 1.0
    row.update(verdict=verdict, load_ratio=ratio, **extra)
    mcfg = DetectorConfig(window_s=H / 4, top_k=3, min_class_requests=5, mitigate=True)
    mit = lm  # mitigation changes nothing unless the verdict is harmful and phase 2 confirms
    if verdict == "harmful" and extra.get("confirmed"):
        _, mit = run_detection(wl, spec["n"], config=mcfg, cost=cost, instance=instance, classes=pc, preload=pre)
    res = {"lmetric": lm, "mitigated": mit}
    for r in routers:
        res[r] = simulate(wl, "fcfs", r, n_instances=spec["n"], instance=instance, cost=cost)
    for name, r in res.items():
        h, a = ttft_stats(r, hot), ttft_stats(r)
        row.update({f"{name}_hot_mean": h["ttft_mean_s"], f"{name}_hot_p99": h["ttft_p99_s"],
                    f"{name}_all_mean": a["ttft_mean_s"], f"{name}_all_p99": a["ttft_p99_s"]})
    best = min(routers, key=lambda r: row[f"{r}_hot_mean"] if row[f"{r}_hot_mean"] is not None else math.inf)
    row["best_router"] = best
    row["outcome"] = outcome_label(row["lmetric_hot_mean"], row["least-load_hot_mean"], ratio)
    return row


@dataclass
class Validation:
    """Result of :func:`validate`: one row per workload (``frame``)."""

    frame: pd.DataFrame

    def confusion(self) -> pd.DataFrame:
        """Counts: rows = detector verdict, columns = measured outcome."""
        return pd.crosstab(pd.Categorical(self.frame.verdict, LABELS), pd.Categorical(self.frame.outcome, LABELS),
                           rownames=["verdict"], colnames=["outcome"], dropna=False)

    @property
    def agreement(self) -> float:
        """Share of workloads whose verdict equals the measured outcome."""
        return float((self.frame.verdict == self.frame.outcome).mean())

    @property
    def harm_agreement(self) -> float:
        """Share agreeing on the question users ask: harmful or not."""
        f = self.frame
        return float(((f.verdict == "harmful") == (f.outcome == "harmful")).mean())

    def disagreements(self) -> pd.DataFrame:
        cols = ["id", "n", "holders", "x", "x_over_threshold", "load", "doc_tokens", "mode", "verdict", "outcome",
                "load_ratio", "lmetric_hot_mean", "least-load_hot_mean"]
        f = self.frame
        return f.loc[f.verdict != f.outcome, [c for c in cols if c in f]]

    def mitigation(self) -> pd.DataFrame:
        """Per workload: mitigated vs LMetric hot-class p99 change and overall mean change
        (fractions), and the share of LMetric's gap to the best router recovered (harmed
        workloads only)."""
        f = self.frame
        best = np.array([f.loc[i, f"{b}_hot_mean"] for i, b in zip(f.index, f.best_router, strict=True)], dtype=float)
        gap = f.lmetric_hot_mean - best
        rec = np.where((f.outcome == "harmful") & (gap > 0), (f.lmetric_hot_mean - f.mitigated_hot_mean) / gap, np.nan)
        return pd.DataFrame({"id": f.id, "hot_p99_change": f.mitigated_hot_p99 / f.lmetric_hot_p99 - 1,
                             "all_mean_change": f.mitigated_all_mean / f.lmetric_all_mean - 1,
                             "gap_recovered": rec, "outcome": f.outcome})


def validate(n: int = 200, seed: int = 0, *, cost=None, instance=None, progress=None) -> Validation:
    """Run :func:`evaluate` on ``family(n, seed)`` serially; ``progress(k)`` after each."""
    rows = []
    for k, spec in enumerate(family(n, seed)):
        rows.append(evaluate(spec, cost, instance))
        if progress:
            progress(k + 1)
    return Validation(pd.DataFrame(rows))
