"""Running the detector in the simulator: the detecting LMetric router, the report,
:func:`run_detection` and :func:`detect_and_compare` (baseline vs LMetric vs mitigation).

The model's predictions for one window are :func:`~fairsched.analysis.detect.window_model.theory_for_window`
(the detector's ``assess`` hook, :func:`~fairsched.analysis.detect.backlog.detector_assess`, and the
report, for a window the hook did not assess, call it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from fairsched.analysis.detect.detector import DetectorConfig, HotspotDetector
from fairsched.analysis.detect.window_model import theory_for_window
from fairsched.analysis.prefix_classes import PrefixClasses, prefix_classes
from fairsched.output import jsonable
from fairsched.policies.routers import LMetric

__all__ = ["DECISION_COLUMNS", "DetectOutcome", "DetectingLMetric", "DetectionReport", "detect",
           "detect_and_compare", "run_detection", "ttft_stats"]


class DetectingLMetric(LMetric):
    """LMetric (``P_i (B_i + 1)``) that feeds a :class:`HotspotDetector` with every decision
    and, if the detector's config says ``mitigate``, mitigates the classes it confirms.
    Records ``decisions`` (one dict per routed request).

    **Mitigation by paced replication** (``proofs/lmetric_harm_validation.md`` §5). The
    paper's rule (route the class by load only) makes every instance a new holder at once,
    each paying the whole prefix while the class's next requests wait for it (p99 up 5-20x).
    Instead, while the class has fewer holders than the model's target ``m_safe`` (the
    fewest holders at which they are no busier than the cluster: ``steady_target_holders``
    of the flagged window), one class request at a time seeds the least-loaded non-holder;
    until that copy is prefilled (estimated with the cost model) the new holder is left
    out; every other class request is routed by the product score as usual, which spreads
    the class once the holders exist.

    **With ``warmup=True``** (the simulator must be a
    :class:`~fairsched.analysis.detect.warmup.WarmupSimulator`) no user request seeds: the
    new holder (least loaded non-holder, one warm-up in flight at a time) gets a
    :class:`~fairsched.analysis.detect.warmup.Warmup` job that prefills the class's shared
    prefix, and the class's requests are routed by the product score over the instances
    *not* warming up, so none is sent to a holder before its copy is complete
    (``proofs/lmetric_harm_validation.md`` §5.2). **The shield** (§5.3): while a class is
    mitigated, a request of another class is not routed to an instance where a request of
    a mitigated class is waiting (unless one waits at every instance), so it cannot join
    that request's first-token iteration with its prefill (which raised the class's p99
    by 27 % where the warmed holders also took the other traffic).
    """

    name = "lmetric"

    def __init__(self, detector: HotspotDetector, record: bool = True, cost=None, warmup: bool = False):
        from fairsched.sim import CostModel

        super().__init__()
        self.det = detector
        self.record = record
        self.cost = cost or CostModel()
        self.warmup = warmup
        self.decisions: list[tuple] = []
        self.seeding: dict[int, float] = {}  # new holder -> time its copy of the prefix should be ready [s]

    def _warmed(self, req, cluster, now, holders, loads, qp) -> int:
        """Mitigation by warm-up (class docstring): maybe issue one warm-up, then the
        product score over the instances not warming up."""
        n, c = cluster.n_instances, self.det.class_of[req.rid]
        target = self.det.flagged.get(c, {}).get("target") or n
        warming = {i for i, k in cluster.warming.items() if k}
        if len(holders) < min(n, target) and not warming:
            hold = set(holders)
            i = min((j for j in range(n) if j not in hold), key=lambda j: (loads[j], qp[j], j))
            units = max(1, self.det.pc.classes[c]["shared_tokens"] // req.block_size)
            cluster.warm_up(i, req, min(units, len(req.prompt)), now, c)
            warming.add(i)

        return min(range(n), key=lambda i: (i in warming, *self._key(req, cluster, i)))

    def _mitigated(self, req, cluster, now, holders, loads, qp) -> int:
        if self.warmup:
            return self._warmed(req, cluster, now, holders, loads, qp)
        n = cluster.n_instances
        target = self.det.flagged.get(self.det.class_of[req.rid], {}).get("target") or n
        pending = {i for i, t in self.seeding.items() if t > now}
        if len(holders) < min(n, target) and not pending:
            hold = set(holders)
            cand = [i for i in range(n) if i not in hold]
            i = min(cand, key=lambda j: (loads[j], qp[j], j))
            self.seeding[i] = now + self.cost.prefill_time(qp[i] + req.input_len, 0)
            return i

        return min(range(n), key=lambda i: (i in pending, *self._key(req, cluster, i)))

    def _shielded(self, req, cluster, product) -> int:
        """The shield (class docstring): LMetric's choice for another class's request, unless
        a mitigated-class request waits there; then the best product score among the
        instances where none waits (none such: LMetric's choice)."""
        free = cluster.free_of(self.det.class_of, self.det.mitigated)
        if product in free or not free:
            return product

        return min(free, key=lambda i: self._key(req, cluster, i))

    def _key(self, req, cluster, i) -> tuple:
        """LMetric's order of instance ``i`` for ``req``: ``(P_i (B_i + 1), B_i + 1, i)``."""
        p, b = self.score(req, cluster, i)
        return (p * b, b, i)

    def route(self, req, cluster, now):
        n = cluster.n_instances
        product = super().route(req, cluster, now)
        loads = [cluster.n_waiting(i) + cluster.n_running(i) for i in range(n)]
        qp = [cluster.queued_prefill_tokens(i) for i in range(n)]
        load_choice = min(range(n), key=lambda i: (loads[i], qp[i], i))
        c = self.det.class_of[req.rid]
        base = self.det.pc.base_tokens
        holders = [i for i in range(n) if cluster.cached_tokens(i, req) > base] if c is not None else []
        if self.warmup and holders:  # a copy still being warmed up is not a holder yet
            holders = [i for i in holders if not cluster.warming.get(i)]
        chosen = self._mitigated(req, cluster, now, holders, loads, qp) if c in self.det.mitigated else product
        if self.warmup and self.det.mitigated and c not in self.det.mitigated:
            chosen = self._shielded(req, cluster, product)
        mean_load = sum(loads) / n
        self.det.observe(now, req.rid, holders, chosen, loads, product, load_choice, mean_load,
                         (req.input_len, req.output_len))
        if self.record:
            hold = set(holders)
            lh = [loads[i] for i in holders]
            lo = [loads[i] for i in range(n) if i not in hold]
            self.decisions.append((now, req.rid, c, chosen, product, load_choice, len(holders), loads[chosen],
                                   min(loads), float(np.mean(lh)) if lh else math.nan,
                                   float(np.mean(lo)) if lo else math.nan, c in self.det.mitigated))
        return chosen


DECISION_COLUMNS = ["t", "rid", "klass", "chosen", "product_choice", "load_choice", "n_holders", "load_chosen",
                    "min_load", "load_holders", "load_others", "mitigated"]


# ============================================================================ reports
@dataclass
class DetectionReport:
    """What one detection run found.

    Attributes:
        flagged_classes: one dict per class flagged in phase 1 (JSON-ready): ``klass``,
            ``windows`` (list of ``{window, t0, t1, x, holders, threshold_x, n_class,
            n_total, qps, theory}``), ``x`` and ``holders`` (of its worst window),
            ``phase2_confirmed``, ``confirmed_at`` [s], ``max_run`` (longest run of
            load-worse decisions), ``mitigated`` (whether mitigation was applied).
        windows: all checked (window, class) rows (DataFrame).
        tops: per window, the class with the largest ``x / (|M|/N)`` (``margin``; > 1 means
            violating), whatever its size (DataFrame): how close the workload came.
        decisions: one row per routing decision (DataFrame, :data:`DECISION_COLUMNS`).
        events: flag / confirm / mitigate / clear events.
        config: the :class:`DetectorConfig` as a dict; n_instances: N.
        classes: :meth:`PrefixClasses.summary`.
        warmups: the warm-up prefills the mitigation issued (``run_detection(warmup=True)``;
            :attr:`~fairsched.analysis.detect.warmup.WarmupSimulator.warmups`), their
            ``gpu_s`` summed is the mitigation's GPU overhead [s].
    """

    flagged_classes: list[dict]
    windows: pd.DataFrame
    decisions: pd.DataFrame
    events: list[dict]
    config: dict
    n_instances: int
    classes: dict = field(default_factory=dict)
    tops: pd.DataFrame = field(default_factory=pd.DataFrame)
    warmups: list[dict] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per flagged class: ``klass``, ``x``, ``holders`` (worst window),
        ``state`` (``confirmed`` / ``flagged``), ``confirmed_at`` [s], ``max_run``, ``mitigated``."""
        cols = ["klass", "x", "holders", "state", "confirmed_at", "max_run", "mitigated"]
        rows = [{**{k: f.get(k) for k in cols}, "state": "confirmed" if f.get("phase2_confirmed") else "flagged"}
                for f in self.flagged_classes]
        return pd.DataFrame(rows, columns=cols)

    to_pandas = to_frame

    def _repr_html_(self) -> str:
        from fairsched.display import html_table

        n = len(self.flagged_classes)
        c = self.closest()
        more = "" if c is None else f"; closest to violation: {c.get('klass')} (x / (|M|/N) = {c.get('margin', 0):.3g})"
        if not n:
            return html_table({"flagged classes": 0, "windows checked": self.to_dict()["windows_checked"],
                               "instances": self.n_instances}, title="hotspot detection: nothing flagged" + more)
        return html_table(self.to_frame(), title=f"hotspot detection: {n} class(es) flagged on {self.n_instances} "
                                                 f"instances{more}")

    def closest(self) -> dict | None:
        """The (window, class) with the largest ``x / (|M|/N)`` over the run, any class size."""
        if not len(self.tops):
            return None
        return _clean(self.tops.loc[self.tops.margin.idxmax()].to_dict())

    def to_dict(self) -> dict:
        return {"n_instances": self.n_instances, "config": self.config, "classes": self.classes,
                "flagged_classes": self.flagged_classes, "events": _clean(self.events),
                "windows_checked": int(self.windows.window.nunique()) if len(self.windows) else 0,
                "closest_to_violation": self.closest(), "warmups": _clean(self.warmups)}


_clean = jsonable  # the one JSON cleaner (fairsched.output)


def _report(det: HotspotDetector, router: DetectingLMetric, cost, warmups=()) -> DetectionReport:
    rows = pd.DataFrame(det.rows)
    decisions = pd.DataFrame(router.decisions, columns=DECISION_COLUMNS)
    flagged: list[dict] = []
    names = list(dict.fromkeys(e["klass"] for e in det.events if e["event"] == "flag"))
    for c in names:
        wr = rows[(rows.klass == c) & rows.violates]
        wins = []
        for r in wr.to_dict("records"):
            d = decisions[(decisions.klass == c) & (decisions.t >= r["t0"]) & (decisions.t < r["t1"])
                          & decisions.load_others.notna() & decisions.load_holders.notna()]
            r["observed_ratio"] = float((d.load_holders.mean() + 1) / (d.load_others.mean() + 1)) if len(d) else None
            wins.append(_clean({"window": r["window"], "t0": r["t0"], "t1": r["t1"], "x": r["x"],
                                "holders": r["holders_eval"], "holders_max": r["holders_max"],
                                "threshold_x": r["threshold_x"], "n_class": r["n_class"], "n_total": r["n_total"],
                                "qps": r["qps"], "mitigated": r["mitigated"], "observed_ratio": r["observed_ratio"],
                                "first_diversion_after_s": (r["first_diversion_t"] - r["t0"])
                                if r["first_diversion_t"] is not None and not pd.isna(r["first_diversion_t"]) else None,
                                "theory": r["theory"] if isinstance(r.get("theory"), dict)
                                else theory_for_window(r, det.pc.classes[c], det.N, cost)}))
        worst = max(wins, key=lambda w: w["x"] - w["threshold_x"]) if wins else {}
        flagged.append(_clean({"klass": c, "windows": wins, "x": worst.get("x"), "holders": worst.get("holders"),
                               "n_instances": det.N, "phase2_confirmed": c in det.confirmed,
                               "confirmed_at": det.confirmed.get(c), "max_run": det.max_run.get(c, 0),
                               "mitigated": any(e["event"] == "mitigate" and e["klass"] == c for e in det.events),
                               "class_info": {k: v for k, v in det.pc.classes[c].items() if k != "root"}}))
    return DetectionReport(flagged, rows, decisions, det.events, asdict(det.cfg), det.N, det.pc.summary(),
                           pd.DataFrame(det.tops), list(warmups))


def run_detection(workload, n_instances: int = 16, *, config: DetectorConfig | None = None, policy: str = "fcfs",
                  instance=None, cost=None, classes: PrefixClasses | None = None,
                  preload: dict[str, list[int]] | None = None, progress=None, warmup: bool = True):
    """Simulate ``workload`` under LMetric with the detector (and mitigation if
    ``config.mitigate``). Returns ``(DetectionReport, SimResult)``.

    ``warmup`` (default): mitigate by warm-up prefills and the shield (:class:`DetectingLMetric`,
    run in a :class:`~fairsched.analysis.detect.warmup.WarmupSimulator`; the warm-ups are in the
    report's ``warmups`` and in no user metric); False: paced seeding with user requests
    (round 3's rule, ``proofs/lmetric_harm_validation.md`` §5). Without ``config.mitigate``
    the run is the plain simulator's either way.

    ``preload``: class name -> instances whose cache holds the class's shared prefix at
    t = 0 (for controlled experiments such as :func:`phase_diagram`).
    """
    from fairsched.sim import CostModel, Simulator

    if n_instances < 2:
        raise ValueError("routing needs n_instances >= 2")
    cost = cost or CostModel()
    pc = classes or prefix_classes(workload)
    from fairsched.analysis.detect.backlog import detector_assess
    from fairsched.analysis.detect.warmup import WarmupSimulator

    end = workload.requests[-1].arrival if len(workload) else math.inf  # the run's end: the backlog test's horizon
    det = HotspotDetector(pc, n_instances, config, assess=detector_assess(pc, n_instances, cost, config, end))

    warmup = warmup and det.cfg.mitigate
    router = DetectingLMetric(det, cost=cost, warmup=warmup)
    sim = (WarmupSimulator if warmup else Simulator)(workload, policy, router, n_instances, instance, cost)
    for name, insts in (preload or {}).items():
        rid = pc.class_of.index(name)
        req = workload.requests[rid]
        units = pc.classes[name]["shared_tokens"] // workload.block_size
        for i in insts:
            sim.instances[i].cache.insert(req.prompt[:units], 0.0)
    res = sim.run(progress)
    det.finish(workload.requests[-1].arrival if len(workload) else 0.0)
    return _report(det, router, cost, getattr(sim, "warmups", ())), res


def ttft_stats(res, mask=None) -> dict:
    """TTFT mean / p50 / p99 [s], TPOT mean [s] and e2e mean [s] of a run's finished requests
    (``mask``: boolean per request id; None = all). Values are None when no request finished."""
    df = res.requests_frame()
    if mask is not None:
        df = df[mask]
    v = df.ttft_s.to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    e = df.e2e_s.to_numpy(dtype=float)
    e = e[np.isfinite(e)]
    tp = df.tpot_s.to_numpy(dtype=float)
    tp = tp[np.isfinite(tp)]
    if not v.size:
        return {"n": 0, "ttft_mean_s": None, "ttft_p50_s": None, "ttft_p99_s": None, "tpot_mean_s": None,
                "e2e_mean_s": None}
    return {"n": int(v.size), "ttft_mean_s": float(v.mean()), "ttft_p50_s": float(np.percentile(v, 50)),
            "ttft_p99_s": float(np.percentile(v, 99)), "tpot_mean_s": float(tp.mean()) if tp.size else None,
            "e2e_mean_s": float(e.mean()) if e.size else None}


@dataclass
class DetectOutcome:
    """Result of :func:`detect_and_compare`: the detection report (LMetric without
    mitigation), the mitigated run's report, the three results and a latency table."""

    report: DetectionReport
    mitigated_report: DetectionReport | None
    results: dict
    latency: list[dict]
    classes: PrefixClasses

    def to_frame(self) -> pd.DataFrame:
        """The latency table (router x scope, TTFT statistics) as a DataFrame."""
        return pd.DataFrame(self.latency)

    to_pandas = to_frame

    def _repr_html_(self) -> str:
        from fairsched.display import html_table

        return self.report._repr_html_() + html_table(self.to_frame(), title="TTFT by router and scope")

    def to_dict(self) -> dict:
        d = self.report.to_dict()
        d["mitigation"] = None if self.mitigated_report is None else {
            "events": _clean(self.mitigated_report.events),
            "confirmed": [f["klass"] for f in self.mitigated_report.flagged_classes if f["phase2_confirmed"]],
            "warmups": _clean(self.mitigated_report.warmups),
            "warmup_gpu_s": float(sum(w["gpu_s"] for w in self.mitigated_report.warmups))}
        d["latency"] = _clean(self.latency)
        return d


def detect_and_compare(workload, n_instances: int = 16, *, config: DetectorConfig | None = None,
                       baseline: str = "least-load", policy: str = "fcfs", instance=None, cost=None,
                       progress=None) -> DetectOutcome:
    """Detect on ``workload`` and measure what the condition costs.

    Runs (same instances, cost model and queue policy): ``baseline`` routing; LMetric with
    the detector (no mitigation: what would happen); LMetric with the detector and
    mitigation (identical to the previous run when nothing is confirmed). Latency rows: all requests, the flagged classes'
    requests, and those arriving after the first phase-2 confirmation. ``progress(label, k)``,
    if given, is called as each run advances (``label``: ``baseline``, ``"lmetric"``,
    ``"lmetric+mitigation"``; ``k``: requests arrived so far, up to ``len(workload)``).
    """
    from fairsched.sim import CostModel, simulate

    cfg = config or DetectorConfig()
    cost = cost or CostModel()
    pc = prefix_classes(workload)
    def tick(label):  # progress(label, requests arrived so far) of one of the three runs
        return None if progress is None else (lambda k: progress(label, k))

    base = simulate(workload, policy, baseline, n_instances=n_instances, instance=instance, cost=cost,
                    progress=tick(baseline))
    rep, res = run_detection(workload, n_instances, config=DetectorConfig(**{**asdict(cfg), "mitigate": False}),
                             policy=policy, instance=instance, cost=cost, classes=pc, progress=tick("lmetric"))
    mrep, mres = run_detection(workload, n_instances, config=DetectorConfig(**{**asdict(cfg), "mitigate": True}),
                               policy=policy, instance=instance, cost=cost, classes=pc,
                               progress=tick("lmetric+mitigation"))
    flagged = {f["klass"] for f in rep.flagged_classes}
    cls = np.array([c in flagged for c in pc.class_of], dtype=bool)
    arr = np.array([r.arrival for r in workload.requests])
    t_conf = min([f["confirmed_at"] for f in mrep.flagged_classes if f["confirmed_at"] is not None], default=None)
    late = cls & (arr >= t_conf) if t_conf is not None else np.zeros(len(workload), dtype=bool)
    latency = []
    for label, r in ((baseline, base), ("lmetric", res), ("lmetric+mitigation", mres)):
        for scope, m in (("all requests", None), ("flagged classes", cls), ("flagged, after confirmation", late)):
            if m is not None and not m.any():
                continue
            latency.append({"router": label, "scope": scope, **ttft_stats(r, m)})
    return DetectOutcome(rep, mrep, {baseline: base, "lmetric": res, "lmetric+mitigation": mres}, latency, pc)


def detect(workload, n_instances: int = 16, **kw) -> DetectionReport:
    """Shorthand: :func:`run_detection` without mitigation, report only."""
    return run_detection(workload, n_instances, **kw)[0]

