"""The pure online two-phase detector of LMetric's KV$ hotspot (no simulator, no figures).

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
state at that instant, and flags at window ends. :mod:`.runner` feeds it from a
simulation; :mod:`.figures` draws it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from fairsched.analysis.prefix_classes import PrefixClasses

__all__ = ["DetectorConfig", "HotspotDetector", "violates"]

Z95 = 1.6449  # one-sided 95 % normal quantile: the within-window trigger's bound on a class's share


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
        mitigate_only_harmful: mitigate only a class whose flagged window the model
            (the detector's ``assess`` hook) calls ``harmful`` (at confirmation, or at the
            first later window of the same flag episode that it calls harmful), or
            ``hotspot`` with ``mitigate_hotspot``; a ``benign`` class keeps LMetric
            (mitigation costs a warm-up per new holder, ``proofs/lmetric_harm_validation.md``
            §5). False: any regime.
        mitigate_hotspot: with ``mitigate_only_harmful``, also mitigate a confirmed class the
            model calls ``hotspot`` (its holders busier than the others): the backlog the
            score builds on the holders before harm is established is what the class pays
            after a later start (``proofs/lmetric_harm_validation.md`` §5.5).
        mitigate_backlog: with ``mitigate_only_harmful``, also mitigate a confirmed ``hotspot``
            class whose row passes the backlog test (``backlog_pays``: the class's expected
            saving over the hotspot's remaining life within the run exceeds the warm-ups'
            expected cost; :mod:`~fairsched.analysis.detect.backlog`,
            ``proofs/lmetric_harm_validation.md`` §5.6). On by default (round 9: over the
            validation family it never raised the class's p99 by > 10 % nor the overall mean).
        min_window_coverage: a window is checked only if the trace covers at least this
            share of it (the last, partial window of a trace is otherwise skipped).
        early_trigger: with ``mitigate``, also check the current window *so far* at each
            decision of a class that phase 2 confirms (or whose load-worse run is past
            phase 2's line), and mitigate at once if it violates and the model calls it
            harmful; a mitigated class whose closed window the model calls ``benign``
            stops being mitigated (``proofs/lmetric_harm_validation.md`` §5.4).
    """

    window_s: float = 60.0
    top_k: int = 5
    min_class_requests: int = 10
    phase2_factor: float = 2.0
    mitigate: bool = False
    mitigate_only_harmful: bool = True
    mitigate_hotspot: bool = False
    mitigate_backlog: bool = True
    min_window_coverage: float = 0.5
    early_trigger: bool = True

    def __post_init__(self):
        if not self.window_s > 0:
            raise ValueError(f"window_s must be > 0, got {self.window_s}")
        if self.top_k < 1 or self.min_class_requests < 1:
            raise ValueError("top_k and min_class_requests must be >= 1")
        if not self.phase2_factor >= 0:
            raise ValueError(f"phase2_factor must be >= 0, got {self.phase2_factor}")
        if not 0.0 < self.min_window_coverage <= 1.0:
            raise ValueError(f"min_window_coverage must be in (0, 1], got {self.min_window_coverage}")


def violates(x: float, holders: float, n: int) -> bool:
    """Benign condition violated: ``x (N - |M|) > (1 - x) |M|`` with at least one holder
    and at least one non-holder (``|M| = 0``: nobody holds the class, no hotspot;
    ``|M| = N``: every instance holds it)."""
    if holders <= 0 or holders >= n:
        return False
    return x * (n - holders) > (1.0 - x) * holders * (1 + 1e-12)


def no_state(theory: dict | None, n: int) -> bool:
    """Whether a checked window's model has no state for the others (``steady_B_Mbar`` None while
    some instance does not hold the class: every instance saturated, prefill alone at or over
    capacity, so §3.5's infinite-server transient (T1) does not hold through it). The class's
    next window then starts a new transient, from the load the detector measures at its start
    (``proofs/lmetric_harm_validation.md`` §3.6)."""
    t = theory or {}
    return "steady_B_Mbar" in t and t["steady_B_Mbar"] is None and (t.get("steady_holders") or 0) < n


class HotspotDetector:
    """The online two-phase detector (module docstring). Fed by :class:`DetectingLMetric`.

    Args:
        classes: prefix classes of the workload (``class_of`` indexed by request id).
        n_instances: N.
        config: :class:`DetectorConfig`.
        assess: optional ``assess(row) -> dict`` called on each checked (window, class) row
            (its keys, plus ``in_other``/``out_other``: mean prompt/output tokens of the
            window's other arrivals, ``n_class_cum``: the class's arrivals so far,
            ``t_onset`` / ``t_since_onset`` [s]: the start of the class's current run of
            consecutive checked windows (its onset; a window after one whose assessment has no
            state for the others, :func:`no_state`, starts a new one, §3.6) and the time from it to the middle of
            the window's covered span (its mean arrival), ``span_s`` [s] that span, ``load_onset``
            [requests] the mean instance load at the onset window's first arrival (§3.5's residue),
            and ``holder_share``: per instance, the share of the window's class arrivals at
            which it held the class); must
            return ``{"regime": ...}`` and may add more (kept in ``row["theory"]``). The
            runner passes the corrected model (:func:`~fairsched.theory.lmetric.steady_state_hotspot`).
            At :meth:`finish` every row gets ``n_class_run`` (the class's arrivals over the
            whole trace) and is assessed again with it (the online regime is kept as
            ``regime_online``): the verdict speaks for the run's mean TTFT, over which a
            one-off replication cost is spread (``proofs/lmetric_harm_validation.md`` §3.2).

    Edge windows: a (window, class) is checked, and can be "closest to violating", only
    with at least ``min_class_requests`` arrivals of the class and when the trace covers
    at least ``min_window_coverage`` of the window (the window's rate is then counted over
    the covered part).
    """

    def __init__(self, classes: PrefixClasses, n_instances: int, config: DetectorConfig | None = None,
                 assess=None):
        self.assess = assess
        self.cum: Counter = Counter()
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
        self.onset: dict[str, float] = {}  # class -> start of its current run of consecutive checked windows [s]
        self.last_checked: dict[str, int] = {}  # class -> last window in which it was checked
        self.onset_load: dict[str, float | None] = {}  # class -> mean instance load at its onset window's start
        self.no_state: dict[str, bool] = {}  # class -> its last checked window's model had no state (§3.6)

    def _reset_window(self) -> None:
        self.w_total = 0
        self.w_count: Counter = Counter()
        self.w_hold: defaultdict = defaultdict(float)
        self.w_hold_max: Counter = Counter()
        self.w_hold_idx: defaultdict = defaultdict(Counter)  # class -> instance -> class arrivals it held
        self.w_load0: float | None = None
        self.w_first_divert: dict[str, float] = {}
        self.w_other_in = 0.0
        self.w_other_out = 0.0
        self.w_cls_tok: defaultdict = defaultdict(lambda: (0, 0))

    # ------------------------------------------------------------------ windows
    def advance(self, now: float) -> None:
        """Close every window that ends at or before ``now``."""
        while now >= (self.k + 1) * self.cfg.window_s:
            self._close_window()

    def finish(self, now: float | None = None) -> None:
        """Close the current window at the end of the trace (``now``: the trace's end, e.g.
        its last arrival; the window is checked only if the trace covers enough of it)."""
        if now is not None:
            self.advance(now)
        if self.w_total:
            end = now if now is not None else (self.k + 1) * self.cfg.window_s
            self._close_window(end)
        for row in self.rows:  # the run's mean TTFT spreads one-off costs over the run's arrivals (§3.2)
            row["n_class_run"] = self.cum[row["klass"]]
            if self.assess is not None:
                row.setdefault("regime_online", row["theory"].get("regime"))
                row["theory"] = self.assess({k: v for k, v in row.items() if k != "theory"})

    def _window_row(self, c: str, rank: int, n: int, span: float, onset: float | None = None) -> dict:
        """The checked row of class ``c`` (``n`` arrivals, ``rank`` by arrivals) in the current
        window, of which ``span`` [s] is covered; ``onset``: the class's onset (default its
        recorded one). Assessed (``theory``) if the detector has ``assess``."""
        W, N, k = self.cfg.window_s, self.N, self.k
        t0 = k * W
        onset = self.onset[c] if onset is None else onset
        x = n / self.w_total
        M = self.w_hold[c] / n
        M_eval = self.flagged[c]["M"] if c in self.mitigated else M
        row = {"window": k, "t0": t0, "t1": (k + 1) * W, "klass": c, "rank": rank, "n_class": n,
               "n_total": self.w_total, "x": x, "holders_mean": M, "holders_max": self.w_hold_max[c],
               "holders_eval": M_eval, "threshold_x": M_eval / N, "violates": violates(x, M_eval, N),
               "mitigated": c in self.mitigated, "qps": self.w_total / span,
               "load0": self.w_load0, "first_diversion_t": self.w_first_divert.get(c),
               "t_onset": onset, "t_since_onset": t0 + span / 2 - onset, "span_s": span,
               "t_hot_since": self.flagged[c]["since"] * W if c in self.flagged else t0,  # the violation's start (§5.6)
               "load_onset": self.onset_load.get(c, self.w_load0) if onset < t0 else self.w_load0}
        n_other = self.w_total - n
        ci, co = self.w_cls_tok[c]
        row.update(in_other=(self.w_other_in - ci) / n_other if n_other else 0.0,
                   out_other=(self.w_other_out - co) / n_other if n_other else 0.0, n_class_cum=self.cum[c])
        if self.assess is not None:  # every checked class: the corrected model's regime
            hold = self.w_hold_idx[c]  # where the holders sit matters: ties go to the lowest index
            row["holder_share"] = [hold[i] / n for i in range(N)]  # kept: a verdict is a function of the row
            row["theory"] = self.assess(dict(row))
        return row

    def _close_window(self, end: float | None = None) -> None:
        W, N, k = self.cfg.window_s, self.N, self.k
        t0, t1 = k * W, (k + 1) * W
        span = W if end is None else min(W, max(0.0, end - t0))
        if span < self.cfg.min_window_coverage * W:  # past the end of the trace: no verdict
            self.k += 1
            self._reset_window()
            return
        best = None
        big = [(c, n) for c, n in self.w_count.items() if n >= self.cfg.min_class_requests]
        for c, n in big:
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
            if self.last_checked.get(c) != k - 1 or self.no_state.get(c):  # a new run of checked windows, or
                # the last one saturated every instance (§3.6): the class's onset
                self.onset[c] = t0
                self.onset_load[c] = self.w_load0  # the mean instance load then (§3.5's residue)
            self.last_checked[c] = k
            row = self._window_row(c, rank, n, span)
            self.no_state[c] = no_state(row.get("theory"), N)
            self.rows.append(row)
            x, M, bad = row["x"], row["holders_mean"], row["violates"]
            bad_now[c] = bad
            regime = row.get("theory", {}).get("regime", "harmful")
            if bad and c not in self.flagged:
                self.flagged[c] = {"since": k, "M": M, "regime": regime, "theory": row.get("theory"),
                                   "target": row.get("theory", {}).get("steady_target_holders")}
                self.events.append({"t": t1, "window": k, "klass": c, "event": "flag", "x": x, "holders": M,
                                    "regime": regime})
            elif bad and c in self.mitigated and self.cfg.early_trigger and regime == "benign":
                self.mitigated.discard(c)  # the window, closed, is benign: stop (§5.4)
                self.events.append({"t": t1, "window": k, "klass": c, "event": "unmitigate", "regime": regime})
            elif bad and c not in self.mitigated:
                self.flagged[c].update(regime=regime, theory=row.get("theory"))
                if c in self.episode_confirmed and self._may_mitigate(regime, row.get("theory")):  # confirmed earlier, harmful now
                    self.mitigated.add(c)
                    self.events.append({"t": t1, "window": k, "klass": c, "event": "mitigate"})
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

    def _may_mitigate(self, regime: str, theory: dict | None = None) -> bool:
        pays = self.cfg.mitigate_backlog and bool((theory or {}).get("backlog_pays"))  # §5.6
        return self.cfg.mitigate and (regime == "harmful" or not self.cfg.mitigate_only_harmful
                                      or (regime == "hotspot" and (self.cfg.mitigate_hotspot or pays)))

    # ------------------------------------------------------------------ decisions
    def observe(self, now: float, rid: int, holders: list[int], chosen: int, loads: list[int],
                product_choice: int, load_choice: int, mean_load: float, tokens: tuple[int, int] = (0, 0)) -> None:
        """One routing decision (``holders`` computed before it; ``tokens``: the request's
        prompt and output lengths)."""
        self.advance(now)
        if self.w_total == 0:
            self.w_load0 = mean_load
        self.w_total += 1
        c = self.class_of[rid]
        self.w_other_in += tokens[0]
        self.w_other_out += tokens[1]
        if c is None:
            return
        self.w_cls_tok[c] = (self.w_cls_tok[c][0] + tokens[0], self.w_cls_tok[c][1] + tokens[1])
        self.cum[c] += 1
        nh = len(holders)
        self.w_count[c] += 1
        self.w_hold[c] += nh
        self.w_hold_max[c] = max(self.w_hold_max[c], nh)
        self.w_hold_idx[c].update(holders)
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
            if self._may_mitigate(self.flagged[c].get("regime", "harmful"), self.flagged[c].get("theory")):
                self.mitigated.add(c)
                self.events.append({"t": now, "window": self.k, "klass": c, "event": "mitigate"})
        if self.cfg.mitigate and self.cfg.early_trigger and c not in self.mitigated and (
                c in self.episode_confirmed or self.run[c] > self.cfg.phase2_factor * nh):
            self._early(c, now)

    def _early(self, c: str, now: float) -> None:
        """The within-window trigger (``DetectorConfig.early_trigger``,
        ``proofs/lmetric_harm_validation.md`` §5.4): class ``c``'s row of the current window
        so far (checked as at the window's close: at least ``min_class_requests`` arrivals,
        among the ``top_k``, at least ``min_window_coverage`` of the window covered, rate over
        that span); if it violates and the model calls it harmful, also with the class's share
        ``x`` at its one-sided 95 % lower bound ``x - Z95 sqrt(x (1 - x) / n_total)`` (the
        share of a part-window is an estimate from fewer arrivals), ``c`` is flagged (if not yet, ``|M|`` frozen at this row),
        confirmed and mitigated now, with that row's target holders."""
        n, k, W = self.w_count[c], self.k, self.cfg.window_s
        ranked = [d for d, m in self.w_count.most_common(self.cfg.top_k) if m >= self.cfg.min_class_requests]
        if c not in ranked or now - k * W < self.cfg.min_window_coverage * W:  # too little of it to check yet
            return
        onset = self.onset[c] if self.last_checked.get(c) == k - 1 else k * W
        row = self._window_row(c, ranked.index(c), n, now - k * W, onset)
        regime = row.get("theory", {}).get("regime", "harmful")
        if not (row["violates"] and self._may_mitigate(regime, row.get("theory"))):
            return
        x_lo = row["x"] - Z95 * math.sqrt(row["x"] * (1 - row["x"]) / row["n_total"])  # the share, 95 % lower bound
        low = {**{key: v for key, v in row.items() if key != "theory"}, "x": x_lo}
        if not violates(x_lo, row["holders_eval"], self.N):
            return
        lt = self.assess(low) if self.assess else {}
        if not self._may_mitigate(lt.get("regime", "harmful"), lt):
            return
        if c not in self.flagged:
            self.flagged[c] = {"since": k, "M": row["holders_mean"], "regime": regime, "theory": row.get("theory")}
            self.events.append({"t": now, "window": k, "klass": c, "event": "flag", "x": row["x"],
                                "holders": row["holders_mean"], "regime": regime, "early": True})
        self.flagged[c]["target"] = row.get("theory", {}).get("steady_target_holders")
        if c not in self.episode_confirmed:
            self.confirmed.setdefault(c, now)
            self.episode_confirmed.add(c)
            self.events.append({"t": now, "window": k, "klass": c, "event": "confirm", "run": self.run[c],
                                "holders": self.w_hold[c] / n, "early": True})
        self.mitigated.add(c)
        self.events.append({"t": now, "window": k, "klass": c, "event": "mitigate", "regime": regime, "early": True})

