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
  ``benign``; decided for the *spec* over :data:`SEEDS` workload seeds (:func:`spec_outcome`:
  the mean of each statistic with a t-interval, ``indeterminate`` when it straddles the line);
- latency (hot class and overall, TTFT mean and p99) under LMetric, LMetric with the
  detector's mitigation, least-load and the other routers in :data:`ROUTERS`.

:func:`validate` runs the family through the sweep runner (serial, local processes or
Ray) and returns a :class:`Validation` (confusion matrix, agreement, disagreements,
mitigation distribution). Holders sit at seeded random indices, or at the lowest or the
highest (LMetric breaks ties by the lowest index; the model accounts for it); 15 % of the
family is drawn from the harm corner (:func:`family`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from fairsched.analysis.detect.detector import no_state
from fairsched.analysis.detect.runner import ttft_stats
from fairsched.analysis.detect.study_run import (  # noqa: F401  (the study's setup, re-exported)
    OUTPUT,
    capacity_qps,
    holder_ids,
    study_config,
    study_run,
    workload_of,
)

__all__ = ["HARM_ABS_S", "HARM_REL", "HOTSPOT_RATIO", "LABELS", "OUTCOMES", "ROUTERS", "SEEDS", "Validation", "capacity_qps",
           "evaluate", "family", "harm_excess", "outcome_label", "spec_outcome", "study_config", "validate", "workload_of"]

HARM_REL = 0.10  # LMetric's hot-class mean TTFT above least-load's by more than 10 % ...
HARM_ABS_S = 0.005  # ... and by more than 5 ms (half a decode step: below it is noise)
HOTSPOT_RATIO = 1.25  # holders' (B + 1) over the others' at hot-class decisions (phase diagram's rule)
LABELS = ("benign", "hotspot", "harmful")
OUTCOMES = (*LABELS, "indeterminate")  # a spec whose seeds do not settle which side of a line it is on
ROUTERS = ("least-load", "linear")  # compared with LMetric; "best" = lowest hot-class mean TTFT


HARM_SHARE = 0.15  # share of the family drawn from the harm corner (long horizon, high load, long prefix)
PLACEMENTS = ("random", "random", "low", "high")  # holders at seeded random indices, and both extremes


def family(n: int = 200, seed: int = 0) -> list[dict]:
    """``n`` seeded workload specs (dicts) spanning the phase diagram (module docstring).

    Each spec: ``id``, ``kind`` (``"phase"``: the phase diagram, 6-20 s; ``"harm"``: the
    corner where LMetric's hot class is clearly worse than least-load's, x = 0.6-0.9 on one
    holder of 4-8 instances at 75-95 % load, an 8k-32k-token prefix, 64-192 output tokens,
    40-60 s), ``n``, ``holders``, ``holder_ids`` (``placement`` ``"random"``: seeded random
    indices; ``"low"`` / ``"high"``: the extremes; LMetric breaks ties by the lowest index),
    ``x``, ``x_over_threshold``, ``load``, ``doc_tokens``, ``output``, ``horizon_s`` (None:
    sized from the rate), ``mode``, ``seed``.
    """
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        harm = bool(rng.random() < HARM_SHARE)
        if harm:
            N, m = int(rng.choice([4, 8])), 1
            x = float(rng.uniform(0.6, 0.9))
            load, doc = float(rng.uniform(0.75, 0.95)), int(round(2 ** rng.uniform(13, 15), -1))
            output, horizon, mode = (64, 192), float(rng.uniform(40, 60)), "steady"
        else:
            N = int(rng.choice([4, 8, 16, 32, 64]))
            m = int(min(N // 2, max(1, round(2 ** rng.uniform(0, math.log2(max(1, N // 2)))))))
            x = float(min(0.9, 2 ** rng.uniform(-2, 2) * m / N))  # x / (|M|/N) from 1/4 to 4
            load, doc = float(rng.uniform(0.3, 0.95)), int(round(2 ** rng.uniform(10, 15), -1))
            output, horizon, mode = OUTPUT, None, str(rng.choice(["steady", "bursty"]))
        placement = str(rng.choice(PLACEMENTS))
        ids = (sorted(int(i) for i in rng.choice(N, m, replace=False)) if placement == "random"
               else list(range(m)) if placement == "low" else list(range(N - m, N)))
        out.append({"id": k, "kind": "harm" if harm else "phase", "n": N, "holders": m, "placement": placement,
                    "holder_ids": ids, "x": round(x, 4), "x_over_threshold": round(x * N / m, 3),
                    "load": round(load, 3), "doc_tokens": doc, "output": list(output),
                    "horizon_s": None if horizon is None else round(horizon, 1), "mode": mode,
                    "seed": int(rng.integers(0, 2**31 - 1))})
    return out


def outcome_label(lm_hot: float | None, ll_hot: float | None, load_ratio: float) -> str:
    """The measured outcome (definition in ``proofs/lmetric_harm_validation.md``)."""
    if lm_hot is not None and ll_hot is not None and lm_hot > ll_hot * (1 + HARM_REL) and lm_hot - ll_hot > HARM_ABS_S:
        return "harmful"
    return "hotspot" if load_ratio > HOTSPOT_RATIO else "benign"


SEEDS = 4  # workload seeds per spec for the measured outcome (proofs/lmetric_harm_validation.md §1.1)
T90 = {2: 6.314, 3: 2.920, 4: 2.353, 5: 2.132, 6: 2.015, 8: 1.895}  # Student t, one-sided 5 % (two-sided 90 %), k-1 dof


def harm_excess(lm_hot: float | None, ll_hot: float | None) -> float:
    """How far one run is past the harm line [s]: ``T_LM - max((1 + HARM_REL) T_LL, T_LL + HARM_ABS_S)``;
    > 0 iff :func:`outcome_label` calls the run harmful (NaN if a mean is missing)."""
    if lm_hot is None or ll_hot is None:
        return math.nan
    return lm_hot - max(ll_hot * (1 + HARM_REL), ll_hot + HARM_ABS_S)


def _side(values: Sequence[float], line: float) -> int:
    """+1 / -1 if the mean of ``values`` is above / below ``line`` with 95 % one-sided
    confidence (Student t on the seeds, the two-sided 90 % interval excludes the line), 0 if
    the interval straddles it. One value: its side (no interval)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not v.size:
        return -1
    m = float(v.mean())
    if v.size == 1:
        return 1 if m > line else -1
    half = T90.get(v.size, 1.645) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return 1 if m - half > line else -1 if m + half <= line else 0


def spec_outcome(excess: Sequence[float], ratios: Sequence[float]) -> str:
    """The measured outcome of a *spec* from its ``k`` seeded runs (``excess``: per run
    :func:`harm_excess` [s]; ``ratios``: per run the load ratio R). ``harmful`` if the mean
    excess is above 0 with 95 % one-sided confidence; ``indeterminate`` if its interval
    straddles 0; otherwise the same test of the mean R against :data:`HOTSPOT_RATIO`
    (``hotspot`` / ``benign`` / ``indeterminate``). With one run it is :func:`outcome_label`.
    Definition and justification: ``proofs/lmetric_harm_validation.md`` §1.1."""
    h = _side(excess, 0.0)
    if h:
        return "harmful" if h > 0 else {1: "hotspot", -1: "benign", 0: "indeterminate"}[_side(ratios, HOTSPOT_RATIO)]
    return "indeterminate"


def run_verdict(rows: Sequence[dict], n: int, leastload_start: str = "cold") -> dict:
    """The model's verdict for a run from one class's checked window rows (time order; each
    with ``theory`` from :func:`~fairsched.analysis.detect.window_model.theory_for_window`,
    ``n_class`` and ``n_class_run``): :func:`fairsched.theory.lmetric_run.run_regime`,
    which combines the windows as the outcome combines requests
    (``proofs/lmetric_harm_validation.md`` §3.3; ``leastload_start``: the compared least-load run's
    holders at the start, ``"cold"`` as the study runs it, §13.2). ``regime`` benign with no row."""
    from fairsched.theory.lmetric_run import run_regime

    rows = [r for r in rows if isinstance(r.get("theory"), dict)]
    st = [({k[7:]: v for k, v in r["theory"].items() if k.startswith("steady_")}, r["n_class"]) for r in rows]
    for (d, _), r, nxt in zip(st, rows, [*rows[1:], None][: len(rows)], strict=True):  # §3.6: a window without a model state
        end = nxt["load0"] if nxt is not None and nxt["window"] == r["window"] + 1 else r.get("load0")  # weighs
        if r.get("load0") is not None and end is not None:  # by the mean load measured at its start and end
            d["load_measured"] = (float(r["load0"]) + float(end)) / 2
    n_run = max([r.get("n_class_run") or 0 for r in rows] + [sum(r["n_class"] for r in rows)])
    return run_regime(st, n, n_run, leastload_start)


def rescore_verdict(row: dict, j: int = 0, cost=None, holder_stream: str = "fluid", load_form: str = "transient",
                    prefill_seen: str = "jsq", leastload_start: str = "cold") -> str:
    """The verdict of seed ``j`` of a saved study row (its ``windows``: :data:`WINDOW_KEYS`,
    ``hot_class``, ``n``) under the library's current model, without simulating: the window
    rows are the model's only inputs (:func:`~fairsched.analysis.detect.window_model.theory_for_window`
    per window, :func:`run_verdict` per run); rows saved without ``span_s`` get it from the row's
    ``horizon_s`` (windows of a quarter of it). Equal to :func:`evaluate`'s verdict of that seed
    (with ``holder_stream="fluid"`` and ``load_form="transient"``, the detector's form;
    ``"poisson"``: §3.4's; ``"steady"``: rounds 3-6's loads, §3.5; ``prefill_seen="mean"``: rounds 7-8's
    decodes, §3.7; ``leastload_start="holders"``: rounds 5-8's least-load, §13.2)."""
    from fairsched.analysis.detect.window_model import theory_for_window
    from fairsched.sim import CostModel

    cost = cost or CostModel()
    ws = sorted((w for w in row["windows"] if w.get("seed_j", 0) == j), key=lambda w: w["window"])
    if row.get("horizon_s") and any(w.get("span_s") is None for w in ws):
        ws = _with_spans(ws, study_config(float(row["horizon_s"])).window_s)
    rows = []
    for w in ws:  # a window after one whose model had no state starts a new transient (§3.6), as the detector does
        if rows and rows[-1]["window"] == w["window"] - 1 and load_form == "transient" and no_state(rows[-1]["theory"], row["n"]):
            w = {**w, "t_onset": float(w["t_onset"]) + float(w["t_since_onset"]) - float(w["span_s"]) / 2,
                 "t_since_onset": float(w["span_s"]) / 2, "load_onset": w["load0"]}
        rows.append({**w, "theory": theory_for_window(w, row["hot_class"], row["n"], cost, holder_stream, load_form,
                                                           prefill_seen=prefill_seen)})
    return run_verdict(rows, row["n"], leastload_start)["regime"]


def _with_spans(ws: list[dict], W: float) -> list[dict]:
    """Rows saved before ``span_s`` / ``load_onset`` existed, with both as the detector records them (windows of ``W`` [s])."""
    out, prev, k0, l0 = [], None, 0, None
    for w in ws:
        k0, l0, prev = (k0, l0, w["window"]) if prev == w["window"] - 1 else (w["window"], w.get("load0"), w["window"])
        k = w["window"]
        out.append({**w, "span_s": 2 * (float(w["t_since_onset"]) - (k - k0) * W), "load_onset": l0,
                    "t_onset": k0 * W})
    return out


def _verdict(rep) -> tuple[str, dict]:
    """The model's verdict for the run (:func:`run_verdict`) over the hot class's checked windows."""
    f = next((f for f in rep.flagged_classes if f["klass"] == "hot"), None)
    w = rep.windows
    rows = w[w.klass == "hot"].sort_values("window").to_dict("records") if len(w) and "theory" in w else []
    v = run_verdict(rows, rep.n_instances)
    extra = {"flagged": f is not None, "confirmed": bool(f and f["phase2_confirmed"]), "predicted_ratio": v["ratio"]}
    return v["regime"], extra


def evaluate(spec: dict, cost=None, instance=None, routers=ROUTERS, seeds: int = SEEDS) -> dict:
    """Detector verdict, measured outcome and latencies for one spec (one row).

    The verdict and the latencies are those of the spec's own seed; the outcome is
    :func:`spec_outcome` over ``seeds`` workload seeds (``seed``, ``seed + 1``, ...: LMetric
    with the detector and least-load on each; ``outcome_seed0`` is the first seed's label).
    ``windows`` keeps every seed's hot-class window rows (:func:`_hot_windows`)."""
    s = study_run(spec, cost, instance)
    row = {**spec, "qps": s.qps, "horizon_s": s.horizon_s, "n_requests": len(s.workload), "n_hot": int(s.hot.sum())}
    rep, lm = s.detect()
    verdict, extra = _verdict(rep)
    ratio = _load_ratio(rep, s.n)
    row.update(verdict=verdict, load_ratio=ratio, **extra)
    mit = lm  # mitigation changes nothing unless the verdict is harmful and phase 2 confirms
    if verdict == "harmful" and extra.get("confirmed"):
        mit = s.detect(mitigate=True)[1]
    res = {"lmetric": lm, "mitigated": mit, **{r: s.simulate(r) for r in routers}}
    for name, r in res.items():
        h, a = ttft_stats(r, s.hot), ttft_stats(r)
        row.update({f"{name}_hot_mean": h["ttft_mean_s"], f"{name}_hot_p99": h["ttft_p99_s"],
                    f"{name}_all_mean": a["ttft_mean_s"], f"{name}_all_p99": a["ttft_p99_s"]})
    best = min(routers, key=lambda r: row[f"{r}_hot_mean"] if row[f"{r}_hot_mean"] is not None else math.inf)
    row["best_router"] = best
    row["outcome_seed0"] = outcome_label(row["lmetric_hot_mean"], row["least-load_hot_mean"], ratio)
    runs = [(harm_excess(row["lmetric_hot_mean"], row["least-load_hot_mean"]), ratio, verdict)]
    windows = [_hot_windows(rep, 0)]
    for j in range(1, seeds):  # the same spec, other workload seeds: LMetric (+ detector) and least-load only
        s_j = study_run({**spec, "seed": spec["seed"] + j}, s.cost, instance)
        rep_j, lm_j = s_j.detect()
        runs.append((harm_excess(ttft_stats(lm_j, s_j.hot)["ttft_mean_s"],
                                 ttft_stats(s_j.simulate("least-load"), s_j.hot)["ttft_mean_s"]),
                     _load_ratio(rep_j, s.n), _verdict(rep_j)[0]))
        windows.append(_hot_windows(rep_j, j))
    row["seed_excess"] = [round(float(e), 6) for e, _, _ in runs]
    row["seed_ratio"] = [round(float(r), 4) for _, r, _ in runs]
    row["seed_verdict"] = [v for _, _, v in runs]
    row["outcome"] = spec_outcome(row["seed_excess"], row["seed_ratio"])
    row["windows"] = [w for ws in windows for w in ws]
    row["hot_class"] = {k: s.classes.classes["hot"][k] for k in ("mean_input", "shared_tokens", "mean_output")} \
        if s.preload else None
    return row


def _load_ratio(rep, n: int) -> float:
    """``(mean B_M + 1) / (mean B_Mbar + 1)`` at hot-class decisions with holders and non-holders (1 if none)."""
    d = rep.decisions
    d = d[(d.klass == "hot") & (d.n_holders > 0) & (d.n_holders < n)]
    return float((d.load_holders.mean() + 1) / (d.load_others.mean() + 1)) if len(d) else 1.0


WINDOW_KEYS = ("window", "x", "holders_eval", "n_class", "qps", "load0", "in_other", "out_other", "n_class_cum",
               "holder_share", "n_class_run", "t_since_onset", "span_s", "load_onset", "t_onset")


def _hot_windows(rep, j: int) -> list[dict]:
    """The hot class's checked window rows (the model's inputs, :data:`WINDOW_KEYS`), tagged
    with the seed offset ``j``: a verdict is a function of these rows only, so another form
    of the model can be scored without rerunning the simulator."""
    w = rep.windows
    return [{"seed_j": j, **{k: r.get(k) for k in WINDOW_KEYS}} for r in w[w.klass == "hot"].to_dict("records")] if len(w) else []


@dataclass
class Validation:
    """Result of :func:`validate`: one row per workload (``frame``)."""

    frame: pd.DataFrame

    def confusion(self) -> pd.DataFrame:
        """Counts: rows = detector verdict, columns = measured outcome."""
        return pd.crosstab(pd.Categorical(self.frame.verdict, LABELS), pd.Categorical(self.frame.outcome, OUTCOMES),
                           rownames=["verdict"], colnames=["outcome"], dropna=False)

    @property
    def agreement(self) -> float:
        """Share of workloads whose verdict equals the measured outcome (an indeterminate
        outcome never agrees)."""
        return float((self.frame.verdict == self.frame.outcome).mean())

    @property
    def determined(self) -> pd.DataFrame:
        """The rows whose outcome is not indeterminate."""
        return self.frame[self.frame.outcome != "indeterminate"]

    @property
    def agreement_determined(self) -> float:
        """Agreement over the workloads whose outcome is determined (NaN if none)."""
        d = self.determined
        return float((d.verdict == d.outcome).mean()) if len(d) else math.nan

    @property
    def harm_agreement(self) -> float:
        """Share agreeing on the question users ask: harmful or not."""
        f = self.frame
        return float(((f.verdict == "harmful") == (f.outcome == "harmful")).mean())

    def disagreements(self) -> pd.DataFrame:
        cols = ["id", "kind", "n", "holders", "placement", "holder_ids", "x", "x_over_threshold", "load", "doc_tokens",
                "mode", "verdict", "outcome", "outcome_seed0", "predicted_ratio", "load_ratio", "seed_ratio",
                "seed_excess", "lmetric_hot_mean", "least-load_hot_mean"]
        f = self.frame
        return f.loc[f.verdict != f.outcome, [c for c in cols if c in f]]

    def traces(self) -> pd.DataFrame:
        """One row per trace (workload seed) of each spec: ``id``, ``seed_j``, the verdict on that
        trace and its own outcome (:func:`spec_outcome` of one run = :func:`outcome_label`, never
        indeterminate): a seeded trace is a workload (``proofs/lmetric_harm_validation.md`` §11.2)."""
        rows = [{"id": i, "seed_j": j, "verdict": v, "outcome": spec_outcome([e], [r])}
                for i, vs, es, rs in zip(self.frame.id, self.frame.seed_verdict, self.frame.seed_excess,
                                         self.frame.seed_ratio, strict=True)
                for j, (v, e, r) in enumerate(zip(vs, es, rs, strict=True))]
        return pd.DataFrame(rows, columns=["id", "seed_j", "verdict", "outcome"])

    def trace_confusion(self) -> pd.DataFrame:
        """:meth:`confusion` over :meth:`traces`."""
        return Validation(self.traces()).confusion().drop(columns="indeterminate")

    def ceiling(self) -> dict:
        """The label-noise ceiling of per-trace agreement and the misses within the seed spread
        (:func:`~fairsched.analysis.detect.label_noise.trace_ceiling`; needs the per-trace columns)."""
        from fairsched.analysis.detect.label_noise import trace_ceiling

        return trace_ceiling(self.frame, label=lambda e, r: spec_outcome([e], [r]), ratio_line=HOTSPOT_RATIO)

    def summary(self) -> dict:
        """JSON-ready: n, agreement, harm agreement, confusion (nested dict), mitigation
        figures (worst hot-class p99 change, worst overall mean change, gap recovered on
        harmed workloads: each value, its minimum and median)."""
        m = self.mitigation()
        rec = m.gap_recovered.dropna()
        conf = self.confusion()
        return {"n": len(self.frame), "agreement": self.agreement, "n_agree": int((self.frame.verdict == self.frame.outcome).sum()),
                "n_determined": len(self.determined), "agreement_determined": self.agreement_determined,
                "harm_agreement": self.harm_agreement, **self._trace_summary(),
                "confusion": {str(r): {str(c): int(conf.loc[r, c]) for c in conf.columns} for r in conf.index},
                "worst_hot_p99_change": float(m.hot_p99_change.max()), "worst_all_mean_change": float(m.all_mean_change.max()),
                "n_harmed": int(len(rec)), "gap_recovered": [round(float(v), 4) for v in rec],
                "gap_recovered_min": float(rec.min()) if len(rec) else None,
                "gap_recovered_median": float(rec.median()) if len(rec) else None}

    def _trace_summary(self) -> dict:  # per trace, next to the spec-level figure (§11.2)
        t = self.traces() if "seed_verdict" in self.frame else None
        a = None if t is None else int((t.verdict == t.outcome).sum())
        if t is None:
            return {}
        c = self.ceiling()  # §13.1: the majority-outcome oracle and the misses within the seed spread
        return {"trace_n": len(t), "trace_n_agree": a, "trace_agreement": a / max(1, len(t)),
                "trace_oracle_agree": c["oracle_agree"], "trace_misses_within_spread": c["misses_within_spread"]}

    def summary_text(self) -> str:
        """The study as plain text: confusion matrix, agreement, disagreements, mitigation."""
        s = self.summary()
        m = self.mitigation()
        return "\n".join([
            "confusion matrix (rows: detector verdict, columns: simulated outcome)", self.confusion().to_string(),
            f"agreement {s['agreement']:.3f} ({s['n_agree']} of {s['n']}); on the {s['n_determined']} determined "
            f"outcomes {s['agreement_determined']:.3f}; harmful-or-not {s['harm_agreement']:.3f}",
            *([f"per trace (each seed's verdict against that seed's own outcome): {s['trace_n_agree']} of "
               f"{s['trace_n']} ({s['trace_agreement']:.3f}); label-noise ceiling {s['trace_oracle_agree']}, "
               f"misses within the seed spread {s['trace_misses_within_spread']}", self.trace_confusion().to_string()]
              if "trace_n" in s else []),
            "", "disagreements", self.disagreements().round(3).to_string(index=False), "",
            "mitigation vs LMetric: hot-class p99 TTFT change (fraction)",
            m.hot_p99_change.describe(percentiles=[0.5, 0.9, 0.99]).round(4).to_string(),
            f"worst hot p99 change {s['worst_hot_p99_change']:+.4f}; worst overall mean change "
            f"{s['worst_all_mean_change']:+.4f}",
            f"harmed workloads: {s['n_harmed']}; gap to the best router recovered: {s['gap_recovered']}"])

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


def validate(n: int = 200, seed: int = 0, *, ids: Sequence[int] | None = None, workers: int = 1,
             use_ray: bool = False, ray_address: str | None = None, progress: bool = False,
             seeds: int = SEEDS) -> Validation:
    """Run :func:`evaluate` (``seeds`` workload seeds per spec) on ``family(n, seed)`` (or its members ``ids``) through the
    sweep runner (:func:`fairsched.sweep.map_grid`: serial, ``workers`` local processes, or
    Ray); the default A100 cost model and instance. Rows in family order.

    Raises:
        ValueError: an id outside the family.
    """
    from fairsched.sweep import map_grid

    fam = family(n, seed)
    if ids is not None:
        bad = [i for i in ids if not 0 <= i < n]
        if bad:
            raise ValueError(f"ids {bad} are outside the family of {n} workloads")
        fam = [fam[i] for i in ids]
    rows = map_grid(partial(evaluate, seeds=seeds), fam, workers=workers, use_ray=use_ray, ray_address=ray_address, progress=progress,
                    desc="validation workloads")
    return Validation(pd.DataFrame(rows))
