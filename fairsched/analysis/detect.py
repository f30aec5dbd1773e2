"""Online detector of LMetric's KV$ hotspot, its mitigation, and the empirical phase diagram.

Follows the two phases restated in ``background.md`` §3 (LMetric, arXiv 2603.15202):

**Phase 1** (per window, default 1 minute, tumbling ``[k W, (k+1) W)``). When a window
closes, its ``top_k`` prefix classes by arrivals (with at least ``min_class_requests``
arrivals) are checked against the benign condition ``x / xbar <= |M| / |Mbar|``, written
``x (N - |M|) <= (1 - x) |M|``: ``x`` the class's share of the window's arrivals, ``|M|``
the mean number of instances holding the class's prefix over its arrivals in the window
(``N`` instances). A class violating it is *flagged*. Classes are those of
:mod:`fairsched.analysis.prefix_classes`; an instance *holds* class c if a class-c
request would find more than the universal prefix in its cache (the router's view, which
counts prompts routed there and not yet prefilled).

**Phase 2** (every routing decision). A class-c request is *load-worse* if it went to a
holder although that instance's load term (``B_i``: waiting + running) was not the
smallest, i.e. it won on the prefill term. Phase 2 confirms a flagged class when more than
``phase2_factor * |M|`` (default ``2 |M|``, |M| at that decision) consecutive class-c
requests were load-worse.

**Mitigation** (optional): a confirmed class is routed by load only (LMetric's
``mitigate`` rule: fewest waiting + running, then fewest queued prefill tokens) until a
window closes in which the class satisfies the benign condition again. For a mitigated
class that check uses ``|M|`` frozen at the moment of flagging: load-only routing spreads
the class over all instances, which would otherwise clear the flag at once and restart
the hotspot in the next window; with the frozen ``|M|`` the flag clears when the class's
*arrival share* falls back.

Everything is online: the detector sees each arrival once, in order, with the cluster
state at that instant, and flags at window ends. Theory for a flagged window
(:func:`fairsched.theory.lmetric.hotspot_numbers`): the time ``t*`` after the onset at
which the score diverts the class, the time ``t_h`` after which routing it to M costs more
decode time than the hit saves, and the regime (benign / hotspot / harmful).

:func:`phase_diagram` sweeps the class's share ``x`` and the holders' share ``|M|/N`` (the
hot prefix pre-loaded on ``|M|`` instances at t = 0) and measures whether a hotspot forms
(holders' mean load over the others', at class-c decisions), next to the theoretical
boundary ``x = |M|/N``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from fairsched.analysis.prefix_classes import PrefixClasses, prefix_classes
from fairsched.policies.routers import LMetric

__all__ = [
    "DetectingLMetric",
    "DetectionReport",
    "DetectorConfig",
    "HotspotDetector",
    "detect",
    "detect_and_compare",
    "fig_detection_timeline",
    "fig_phase_diagram",
    "phase_diagram",
    "run_detection",
]


@dataclass(frozen=True)
class DetectorConfig:
    """Detector knobs.

    Attributes:
        window_s: phase-1 window length [s] (the paper's 1 minute).
        top_k: classes checked per window (most arrivals first).
        min_class_requests: arrivals a class needs in a window to be checked.
        phase2_factor: phase 2 confirms after more than ``phase2_factor * |M|``
            consecutive load-worse class-c decisions (the paper's 2).
        mitigate: route confirmed classes by load only until their window clears.
    """

    window_s: float = 60.0
    top_k: int = 5
    min_class_requests: int = 10
    phase2_factor: float = 2.0
    mitigate: bool = False

    def __post_init__(self):
        if not self.window_s > 0:
            raise ValueError(f"window_s must be > 0, got {self.window_s}")
        if self.top_k < 1 or self.min_class_requests < 1:
            raise ValueError("top_k and min_class_requests must be >= 1")
        if not self.phase2_factor >= 0:
            raise ValueError(f"phase2_factor must be >= 0, got {self.phase2_factor}")


def violates(x: float, holders: float, n: int) -> bool:
    """Benign condition violated: ``x (N - |M|) > (1 - x) |M|`` with at least one holder
    and at least one non-holder (``|M| = 0``: nobody holds the class, no hotspot;
    ``|M| = N``: every instance holds it)."""
    if holders <= 0 or holders >= n:
        return False
    return x * (n - holders) > (1.0 - x) * holders * (1 + 1e-12)


class HotspotDetector:
    """The online two-phase detector (module docstring). Fed by :class:`DetectingLMetric`.

    Args:
        classes: prefix classes of the workload (``class_of`` indexed by request id).
        n_instances: N.
        config: :class:`DetectorConfig`.
    """

    def __init__(self, classes: PrefixClasses, n_instances: int, config: DetectorConfig | None = None):
        self.pc = classes
        self.class_of = classes.class_of
        self.N = int(n_instances)
        self.cfg = config or DetectorConfig()
        self.k = 0
        self._reset_window()
        self.flagged: dict[str, dict] = {}  # class -> {"since": window, "M": holders at flagging}
        self.mitigated: set[str] = set()
        self.run: Counter = Counter()
        self.max_run: Counter = Counter()
        self.confirmed: dict[str, float] = {}  # class -> first confirmation time
        self.episode_confirmed: set[str] = set()  # confirmed in the current flag episode
        self.rows: list[dict] = []  # per closed window, per checked class
        self.tops: list[dict] = []  # per closed window: the class closest to violating (any size)
        self.events: list[dict] = []  # flag / confirm / clear

    def _reset_window(self) -> None:
        self.w_total = 0
        self.w_count: Counter = Counter()
        self.w_hold: defaultdict = defaultdict(float)
        self.w_hold_max: Counter = Counter()
        self.w_load0: float | None = None
        self.w_first_divert: dict[str, float] = {}

    # ------------------------------------------------------------------ windows
    def advance(self, now: float) -> None:
        """Close every window that ends at or before ``now``."""
        while now >= (self.k + 1) * self.cfg.window_s:
            self._close_window()

    def finish(self, now: float | None = None) -> None:
        """Close the current window (end of the trace)."""
        if now is not None:
            self.advance(now)
        if self.w_total:
            self._close_window()

    def _close_window(self) -> None:
        W, N, k = self.cfg.window_s, self.N, self.k
        t0, t1 = k * W, (k + 1) * W
        best = None
        for c, n in self.w_count.items():
            M = self.w_hold[c] / n
            margin = (n / self.w_total) / (M / N) if M > 0 else 0.0
            if best is None or margin > best["margin"]:
                best = {"window": k, "t0": t0, "t1": t1, "klass": c, "n_class": n, "n_total": self.w_total,
                        "x": n / self.w_total, "holders_mean": M, "threshold_x": M / N, "margin": margin}
        if best is not None:
            self.tops.append(best)
        ranked = [(c, n) for c, n in self.w_count.most_common() if n >= self.cfg.min_class_requests]
        ranked = ranked[: self.cfg.top_k]
        bad_now: dict[str, bool] = {}
        for rank, (c, n) in enumerate(ranked):
            x = n / self.w_total
            M = self.w_hold[c] / n
            M_eval = self.flagged[c]["M"] if c in self.mitigated else M
            bad = violates(x, M_eval, N)
            bad_now[c] = bad
            self.rows.append({"window": k, "t0": t0, "t1": t1, "klass": c, "rank": rank, "n_class": n,
                              "n_total": self.w_total, "x": x, "holders_mean": M, "holders_max": self.w_hold_max[c],
                              "holders_eval": M_eval, "threshold_x": M_eval / N, "violates": bad,
                              "mitigated": c in self.mitigated, "qps": self.w_total / W,
                              "load0": self.w_load0, "first_diversion_t": self.w_first_divert.get(c)})
            if bad and c not in self.flagged:
                self.flagged[c] = {"since": k, "M": M}
                self.events.append({"t": t1, "window": k, "klass": c, "event": "flag", "x": x, "holders": M})
        for c in list(self.flagged):
            if bad_now.get(c, False):
                continue
            self.events.append({"t": t1, "window": k, "klass": c, "event": "clear"})
            del self.flagged[c]
            self.mitigated.discard(c)
            self.episode_confirmed.discard(c)
            self.run[c] = 0
        self.k += 1
        self._reset_window()

    # ------------------------------------------------------------------ decisions
    def observe(self, now: float, rid: int, holders: list[int], chosen: int, loads: list[int],
                product_choice: int, load_choice: int, mean_load: float) -> None:
        """One routing decision (``holders`` computed before it)."""
        self.advance(now)
        if self.w_total == 0:
            self.w_load0 = mean_load
        self.w_total += 1
        c = self.class_of[rid]
        if c is None:
            return
        nh = len(holders)
        self.w_count[c] += 1
        self.w_hold[c] += nh
        self.w_hold_max[c] = max(self.w_hold_max[c], nh)
        if nh and product_choice not in holders and c not in self.w_first_divert and c not in self.mitigated:
            self.w_first_divert[c] = now
        worse = nh > 0 and chosen in holders and loads[chosen] > min(loads)
        self.run[c] = self.run[c] + 1 if worse else 0
        self.max_run[c] = max(self.max_run[c], self.run[c])
        if c in self.flagged and c not in self.episode_confirmed and self.run[c] > self.cfg.phase2_factor * nh:
            self.confirmed.setdefault(c, now)
            self.episode_confirmed.add(c)
            self.events.append({"t": now, "window": self.k, "klass": c, "event": "confirm", "run": self.run[c],
                                "holders": nh})
            if self.cfg.mitigate:
                self.mitigated.add(c)
                self.events.append({"t": now, "window": self.k, "klass": c, "event": "mitigate"})


class DetectingLMetric(LMetric):
    """LMetric (``P_i (B_i + 1)``) that feeds a :class:`HotspotDetector` with every decision
    and, if the detector's config says ``mitigate``, routes the classes it mitigates by load
    only. Records ``decisions`` (one dict per routed request)."""

    name = "lmetric"

    def __init__(self, detector: HotspotDetector, record: bool = True):
        super().__init__()
        self.det = detector
        self.record = record
        self.decisions: list[tuple] = []

    def route(self, req, cluster, now):
        n = cluster.n_instances
        product = super().route(req, cluster, now)
        loads = [cluster.n_waiting(i) + cluster.n_running(i) for i in range(n)]
        qp = [cluster.queued_prefill_tokens(i) for i in range(n)]
        load_choice = min(range(n), key=lambda i: (loads[i], qp[i], i))
        c = self.det.class_of[req.rid]
        base = self.det.pc.base_tokens
        holders = [i for i in range(n) if cluster.cached_tokens(i, req) > base] if c is not None else []
        chosen = load_choice if c in self.det.mitigated else product
        mean_load = sum(loads) / n
        self.det.observe(now, req.rid, holders, chosen, loads, product, load_choice, mean_load)
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
    """

    flagged_classes: list[dict]
    windows: pd.DataFrame
    decisions: pd.DataFrame
    events: list[dict]
    config: dict
    n_instances: int
    classes: dict = field(default_factory=dict)
    tops: pd.DataFrame = field(default_factory=pd.DataFrame)

    def closest(self) -> dict | None:
        """The (window, class) with the largest ``x / (|M|/N)`` over the run, any class size."""
        if not len(self.tops):
            return None
        return _clean(self.tops.loc[self.tops.margin.idxmax()].to_dict())

    def to_dict(self) -> dict:
        return {"n_instances": self.n_instances, "config": self.config, "classes": self.classes,
                "flagged_classes": self.flagged_classes, "events": _clean(self.events),
                "windows_checked": int(self.windows.window.nunique()) if len(self.windows) else 0,
                "closest_to_violation": self.closest()}


def _clean(obj):
    """JSON-safe copy: numpy scalars to Python, NaN / inf to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _coeffs(cost) -> dict:
    return {"prefill_b_s_per_tok": cost.prefill_b, "prefill_c_s_per_tok2": cost.prefill_c,
            "decode_b_s_per_seq": cost.decode_b, "decode_c_s_per_ctx_tok": cost.decode_c}


def theory_for_window(row: dict, cls: dict, n: int, cost) -> dict:
    """Predictions of :mod:`fairsched.theory.lmetric` for one flagged window.

    ``L`` = the class's mean prompt, ``u = L - shared_tokens`` (uncached on a holder, >= 1),
    ``O`` = mean output, mean context ``L + O/2``, ``B_0`` = mean instance load at the
    window's first arrival, QPS = the window's arrival rate, cost coefficients of the
    simulator's cost model. ``t_star`` and ``t_harm`` count from the onset of the hotspot.
    """
    from fairsched.theory.lmetric import classify_regime, hotspot_numbers

    M = float(row["holders_eval"])
    L = float(cls["mean_input"])
    u = max(1.0, L - float(cls["shared_tokens"]))
    n_out = float(cls["mean_output"])
    b0 = float(row["load0"] or 0.0)
    kw = dict(n_out=n_out, ctx_mean=L + n_out / 2, coeffs=_coeffs(cost))
    d = hotspot_numbers(row["x"], M, n - M, row["qps"], b0, L, u, **kw)
    regime = classify_regime(row["x"], M / n, n, row["qps"], b0, L, u, **kw)
    return _clean({"a_req_s": d["a"], "b_req_s": d["b"], "kappa": d["kappa"], "limit_ratio": d["limit_ratio"],
                   "t_star_s": d["t_star"], "t_harm_s": d["t_harm"], "prefill_saved_s": d["S"],
                   "regime": regime, "steady_ratio": min(d["limit_ratio"], d["kappa"]),
                   "B0": b0, "L": L, "u": u, "O": n_out})


def _report(det: HotspotDetector, router: DetectingLMetric, cost) -> DetectionReport:
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
                                "theory": theory_for_window(r, det.pc.classes[c], det.N, cost)}))
        worst = max(wins, key=lambda w: w["x"] - w["threshold_x"]) if wins else {}
        flagged.append(_clean({"klass": c, "windows": wins, "x": worst.get("x"), "holders": worst.get("holders"),
                               "n_instances": det.N, "phase2_confirmed": c in det.confirmed,
                               "confirmed_at": det.confirmed.get(c), "max_run": det.max_run.get(c, 0),
                               "mitigated": any(e["event"] == "mitigate" and e["klass"] == c for e in det.events),
                               "class_info": {k: v for k, v in det.pc.classes[c].items() if k != "root"}}))
    return DetectionReport(flagged, rows, decisions, det.events, asdict(det.cfg), det.N, det.pc.summary(),
                           pd.DataFrame(det.tops))


def run_detection(workload, n_instances: int = 16, *, config: DetectorConfig | None = None, policy: str = "fcfs",
                  instance=None, cost=None, classes: PrefixClasses | None = None,
                  preload: dict[str, list[int]] | None = None, progress=None):
    """Simulate ``workload`` under LMetric with the detector (and mitigation if
    ``config.mitigate``). Returns ``(DetectionReport, SimResult)``.

    ``preload``: class name -> instances whose cache holds the class's shared prefix at
    t = 0 (for controlled experiments such as :func:`phase_diagram`).
    """
    from fairsched.sim import CostModel, Simulator

    if n_instances < 2:
        raise ValueError("routing needs n_instances >= 2")
    cost = cost or CostModel()
    pc = classes or prefix_classes(workload)
    det = HotspotDetector(pc, n_instances, config)
    router = DetectingLMetric(det)
    sim = Simulator(workload, policy, router, n_instances, instance, cost)
    for name, insts in (preload or {}).items():
        rid = pc.class_of.index(name)
        req = workload.requests[rid]
        units = pc.classes[name]["shared_tokens"] // workload.block_size
        for i in insts:
            sim.instances[i].cache.insert(req.prompt[:units], 0.0)
    res = sim.run(progress)
    det.finish(workload.requests[-1].arrival if len(workload) else 0.0)
    return _report(det, router, cost), res


def _ttft(res, mask=None) -> dict:
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

    def to_dict(self) -> dict:
        d = self.report.to_dict()
        d["mitigation"] = None if self.mitigated_report is None else {
            "events": _clean(self.mitigated_report.events),
            "confirmed": [f["klass"] for f in self.mitigated_report.flagged_classes if f["phase2_confirmed"]]}
        d["latency"] = _clean(self.latency)
        return d


def detect_and_compare(workload, n_instances: int = 16, *, config: DetectorConfig | None = None,
                       baseline: str = "least-load", policy: str = "fcfs", instance=None, cost=None,
                       progress=None) -> DetectOutcome:
    """Detect on ``workload`` and measure what the condition costs.

    Runs (same instances, cost model and queue policy): ``baseline`` routing; LMetric with
    the detector (no mitigation: what would happen); LMetric with the detector and
    mitigation (identical to the previous run when nothing is confirmed). Latency rows: all requests, the flagged classes'
    requests, and those arriving after the first phase-2 confirmation.
    """
    from fairsched.sim import CostModel, simulate

    cfg = config or DetectorConfig()
    cost = cost or CostModel()
    pc = prefix_classes(workload)
    base = simulate(workload, policy, baseline, n_instances=n_instances, instance=instance, cost=cost)
    rep, res = run_detection(workload, n_instances, config=DetectorConfig(**{**asdict(cfg), "mitigate": False}),
                             policy=policy, instance=instance, cost=cost, classes=pc)
    mrep, mres = run_detection(workload, n_instances, config=DetectorConfig(**{**asdict(cfg), "mitigate": True}),
                               policy=policy, instance=instance, cost=cost, classes=pc)
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
            latency.append({"router": label, "scope": scope, **_ttft(r, m)})
    return DetectOutcome(rep, mrep, {baseline: base, "lmetric": res, "lmetric+mitigation": mres}, latency, pc)


def detect(workload, n_instances: int = 16, **kw) -> DetectionReport:
    """Shorthand: :func:`run_detection` without mitigation, report only."""
    return run_detection(workload, n_instances, **kw)[0]


# ============================================================================ phase diagram
def phase_diagram(xs=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), holders=(1, 2, 3, 4, 5, 6, 7), *,
                  n_instances: int = 8, qps: float = 30.0, duration_s: float = 60.0, doc_tokens: int = 12000,
                  seed: int = 0, ratio_threshold: float = 1.25, instance=None, cost=None,
                  window_s: float | None = None) -> pd.DataFrame:
    """Empirical phase diagram of the hotspot over (x, |M|/N), next to the theory.

    For each share ``x`` and holder count ``|M|`` (1 <= |M| < N): a
    :func:`~fairsched.workload.hotspot.hotspot_workload` with constant share ``x`` for
    ``duration_s`` (no warm-up), the hot document pre-loaded on instances ``0..|M|-1``,
    simulated under LMetric with the detector (windows of ``window_s``, default a third of
    the run). Measured: ``load_ratio`` = ``(mean B_M + 1) / (mean B_Mbar + 1)`` where
    ``B_M`` (``B_Mbar``) is the mean load (waiting + running) of the instances that hold
    (do not hold) the class at a class-c decision, averaged over those decisions (the +1
    as in the score),
    ``hot_on_holders`` = share of class-c requests routed to a holder, the final holder
    count, and whether the detector flagged / confirmed the class. Theory:
    ``theory_benign`` = ``x <= |M|/N`` (the benign condition) and the predicted steady
    ratio ``min(a/b, kappa)`` (1 when benign). ``empirical_hotspot`` = ``load_ratio >
    ratio_threshold``; ``agree`` = the two classifications match.
    """
    from fairsched.workload.hotspot import hotspot_workload

    N = n_instances
    rows = []
    for x in xs:
        wl = hotspot_workload(N, qps, x, x_warm=x, warm_s=0.0, burst_s=duration_s, tail_s=0.0,
                              doc_tokens=doc_tokens, seed=seed)
        pc = prefix_classes(wl)
        if "hot" not in pc.classes:
            continue
        for m in holders:
            if not 1 <= m < N:
                continue
            cfg = DetectorConfig(window_s=window_s or duration_s / 3, top_k=3, min_class_requests=5)
            rep, res = run_detection(wl, N, config=cfg, instance=instance, cost=cost, classes=pc,
                                     preload={"hot": list(range(m))})
            d = rep.decisions
            d = d[(d.klass == "hot") & (d.n_holders > 0) & (d.n_holders < N)]
            ratio = float((d.load_holders.mean() + 1) / (d.load_others.mean() + 1)) if len(d) else math.nan
            hot = rep.decisions[rep.decisions.klass == "hot"]
            cls = pc.classes["hot"]
            kap = cls["mean_input"] / max(1.0, cls["mean_input"] - cls["shared_tokens"])
            a, b = x * qps / m, (1 - x) * qps / (N - m)
            bad = violates(x, m, N)
            flag = next((f for f in rep.flagged_classes if f["klass"] == "hot"), None)
            rows.append({"x": x, "holders": m, "holder_frac": m / N, "theory_benign": not bad,
                         "predicted_ratio": min(a / b, kap) if bad else 1.0, "load_ratio": ratio,
                         "hot_on_initial_holders": float((hot.chosen < m).mean()) if len(hot) else math.nan,
                         "final_holders": int(hot.n_holders.iloc[-1]) if len(hot) else 0,
                         "empirical_hotspot": bool(ratio > ratio_threshold),
                         "flagged": flag is not None, "confirmed": bool(flag and flag["phase2_confirmed"]),
                         "hot_ttft_mean_s": _ttft(res, np.array([c == "hot" for c in pc.class_of]))["ttft_mean_s"]})
    df = pd.DataFrame(rows)
    if len(df):
        df["agree"] = df.theory_benign != df.empirical_hotspot
    return df


def fig_phase_diagram(df: pd.DataFrame, title: str | None = None):
    """Heatmap of the measured load ratio over (x, |M|/N) with the theoretical boundary
    ``x = |M|/N`` (benign below-right... i.e. where x <= |M|/N) and markers where the
    empirical classification disagrees with the theory."""
    import plotly.graph_objects as go

    piv = df.pivot_table(index="holder_frac", columns="x", values="load_ratio")
    fig = go.Figure(go.Heatmap(z=np.log2(piv.to_numpy()), x=piv.columns, y=piv.index, colorscale="RdBu_r", zmid=0,
                               customdata=piv.to_numpy(), hovertemplate="x=%{x}<br>|M|/N=%{y}<br>ratio=%{customdata:.2f}",
                               colorbar={"title": "log2 load ratio<br>holders / others"}))
    lo = min(df.x.min(), df.holder_frac.min())
    hi = max(df.x.max(), df.holder_frac.max())
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line={"color": "black", "dash": "dash"},
                             name="theory: x = |M|/N (benign above)"))
    bad = df[~df.agree]
    if len(bad):
        fig.add_trace(go.Scatter(x=bad.x, y=bad.holder_frac, mode="markers", name="theory and simulation disagree",
                                 marker={"symbol": "x", "size": 12, "color": "black"}))
    conf = df[df.confirmed]
    if len(conf):
        fig.add_trace(go.Scatter(x=conf.x, y=conf.holder_frac, mode="markers", name="detector confirmed",
                                 marker={"symbol": "circle-open", "size": 16, "color": "green"}))
    fig.update_layout(title=title or "LMetric hotspot phase diagram (simulated load ratio vs. benign condition)",
                      xaxis_title="x (class share of arrivals)", yaxis_title="|M| / N (holders' share)",
                      template="plotly_white")
    return fig


def fig_detection_timeline(report: DetectionReport, classes: list[str] | None = None, max_classes: int = 6):
    """Per window, each class's arrival share ``x`` against its threshold ``|M|/N``
    (violation when x is above); flag and confirmation times marked."""
    import plotly.graph_objects as go

    fig = go.Figure()
    w = report.windows
    if not len(w):
        fig.update_layout(title="no class reached the per-window minimum (nothing to check)", template="plotly_white")
        return fig
    if classes is None:
        classes = [f["klass"] for f in report.flagged_classes][:max_classes]
        if not classes:
            classes = list(w.groupby("klass").n_class.sum().sort_values(ascending=False).index[:max_classes])
    for k, c in enumerate(classes):
        d = w[w.klass == c]
        color = f"hsl({int(360 * k / max(1, len(classes)))},60%,45%)"
        mid = (d.t0 + d.t1) / 2
        fig.add_trace(go.Scatter(x=mid, y=d.x, mode="lines+markers", name=f"{c}: x", line={"color": color}))
        fig.add_trace(go.Scatter(x=mid, y=d.threshold_x, mode="lines", name=f"{c}: |M|/N",
                                 line={"color": color, "dash": "dot"}))
    for e in report.events:
        if e["klass"] in classes and e["event"] in ("flag", "confirm"):
            fig.add_vline(x=e["t"], line_dash="dash" if e["event"] == "flag" else "solid",
                          line_color="red" if e["event"] == "confirm" else "orange", opacity=0.5)
    fig.update_layout(title="phase 1: class share x vs. holders' share |M|/N per window "
                            "(orange dashed: flagged; red: phase 2 confirmed)",
                      xaxis_title="time [s]", yaxis_title="share", template="plotly_white")
    return fig
