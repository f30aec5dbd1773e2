"""The backlog test: mitigate a confirmed ``hotspot`` class when the warm-ups pay for themselves.

``proofs/lmetric_harm_validation.md`` §5.6. The harm test (§3.2) compares the class's TTFT in the
window with least-load's, least-load paying its one-off replication to all N instances spread
over the class's arrivals *so far*; early in a hotspot that term makes LMetric look fine while
its score piles the class onto the holders. This test asks the mitigation's own question: over
the hotspot's expected remaining life, does what the class would stop paying for the holders'
backlog exceed what the warm-ups cost the requests they delay?

At a check (a window row ``row`` of class ``cls`` that the model assessed, ``theory``), with
``age`` [s] the time since the class's onset (the model's clock), ``life`` [s] the time since the
violation began (the start of the flag episode's first violating window: the hotspot's life so far),
``left`` [s] the run's time after the check, ``m`` the holders, ``k`` the warm-ups the mitigation
would issue (to the model's target) and ``f_L`` one warm-up's GPU time (the class's shared prefix,
``cost.prefill_time(shared, 0)``):

- **remaining life** ``R`` of the hotspot: observed at a uniformly random point of its life with a
  scale-free prior on the total, ``P(R > s) = life / (life + s)`` (median ``life``: "it lasts as long
  again"); the run ends after ``left``, so nothing counts after it;
- **rent** ``r(m')`` [s per class request]: the model's class TTFT under LMetric minus under
  least-load, each without its one-off replication term, in the next ``T = min(life, left)``
  seconds (the transient loads of §3.5 carried on at the row's rates), with ``m'`` holders;
- **benefit** ``G = x QPS sum_j (r(m) - r(m + j))^+ E[len_j]`` [request-seconds], the expected
  saving: warm-ups run one at a time, the j-th ready at ``j f_L``, so from then until the next
  (the last: until the run ends) the class has ``m + j`` holders while the hotspot lasts,
  ``E[len_j] = integral of P(R > s) ds`` over that stretch within ``[0, left]``;
- **cost** ``C = lambda_o f_L^2 sum_{i < J} P(R > i f_L)`` [request-seconds], the expected cost
  bound: the i-th warm-up (from 0) starts at ``i f_L`` if the hotspot still lasts (``J``: those
  starting before the run ends), each delays each user event on its instance by at most ``f_L``
  (§5.2, corollary) and the requests arriving there meanwhile number ``lambda_o f_L``
  (``lambda_o``: a non-holder's arrival rate, the other traffic; the class avoids a warming
  instance, Proposition 2).

``backlog_pays`` is ``G > C``. The detector gets these fields from its ``assess`` hook
(:func:`detector_assess`: :func:`assess_with_backlog` when the config mitigates with ``mitigate_backlog``).
"""

from __future__ import annotations

import math

from fairsched.output import jsonable

__all__ = ["assess_with_backlog", "backlog_test", "detector_assess"]


def _rent(st: dict, n: int) -> float | None:
    """Class TTFT [s] under LMetric minus under least-load, without either's one-off replication."""
    lm, ll = st.get("ttft_lmetric"), st.get("ttft_leastload")
    if lm is None or ll is None or not (math.isfinite(lm) and math.isfinite(ll)):
        return None
    per, m, m0, nh = st["replication_per_holder_s"], st["holders"], st["holders_initial"], st["n_hot"]
    return (lm - per * (m - m0) / nh) - (ll - per * (n - m0) / nh)


def _alive(life: float, a: float, b: float) -> float:
    """``∫_a^b P(R > s) ds`` [s] for the hotspot's remaining life ``R`` with ``P(R > s) = life / (life + s)``
    (B1; ``b`` may be ``inf``: then ``inf``)."""
    return life * math.log((life + b) / (life + a)) if b < math.inf else math.inf


def backlog_test(row: dict, cls: dict, n: int, cost, theory: dict, model, end: float = math.inf) -> dict:
    """The backlog test of one assessed window row (module docstring; ``proofs/lmetric_harm_validation.md`` §5.6).

    Args:
        row: the detector's window row (``x``, ``qps`` [req/s], ``t0``, ``span_s``, ``t_onset``,
            ``t_since_onset``, ``t_hot_since`` [s], ...).
        cls: the class's stats (``shared_tokens``); n: instances N; cost: the cost model.
        theory: the row's ``steady_*`` predictions (``holders``, ``target_holders``, TTFTs, ...).
        model: ``model(row) -> steady dict``: the same model on another row (the future window,
            other holder counts).
        end: the run's end [s] (its last arrival); ``inf``: a run without end (then any
            positive saving pays: the remaining life's law has no finite mean).

    Returns ``{"backlog_benefit": G, "backlog_cost": C [request-seconds], "backlog_pays": bool,
    "backlog_warmups": J}``; nothing pays (0, 0, False) without the window's span, with no
    warm-up to issue, with the run over, or where the model has no TTFT.
    """
    none = {"backlog_benefit": 0.0, "backlog_cost": 0.0, "backlog_pays": False, "backlog_warmups": 0}
    t, span = row.get("t_since_onset"), row.get("span_s")
    m, target = theory.get("holders"), theory.get("target_holders")
    if t is None or span is None or m is None or target is None or target <= m or m >= n:
        return none
    age = float(t) + float(span) / 2  # since the class's onset (the model's clock, §3.5)
    hot, onset = row.get("t_hot_since"), row.get("t_onset")
    life = age - max(0.0, float(hot) - float(onset)) if hot is not None and onset is not None else age
    left = float(end) - float(row.get("t0") or 0.0) - float(span)  # the run's time left after the check
    f_L = cost.prefill_time(int(cls["shared_tokens"]), 0)
    if life <= 0 or left <= 0 or f_L <= 0:
        return none
    T = min(life, left)  # the median remaining life within the run: the rent's window
    fut = {**row, "t_since_onset": age + T / 2, "span_s": T}  # the next T seconds, same rates
    r0 = _rent(model(fut), n)
    if r0 is None:
        return none
    x, qps, k = float(row["x"]), float(row["qps"]), int(target - m)
    G, j = 0.0, 1
    while j <= k and j * f_L < left:
        rj = _rent(model({**fut, "holders_eval": m + j}), n)
        saved = max(0.0, r0 - (rj if rj is not None else r0))
        if saved > 0:
            G += x * qps * saved * _alive(life, j * f_L, left if j == k else min(left, (j + 1) * f_L))
        j += 1
    J = sum(1 for i in range(k) if i * f_L < left)  # the i-th (from 0) starts at i f_L if the hotspot lasts
    C = sum(life / (life + i * f_L) for i in range(J)) * (1 - x) * qps / (n - m) * f_L * f_L
    return {"backlog_benefit": G, "backlog_cost": C, "backlog_pays": bool(G > C), "backlog_warmups": J}


def _steady(theory: dict) -> dict:
    """The corrected model's predictions in :func:`~fairsched.analysis.detect.window_model.theory_for_window`'s
    answer (its ``steady_*`` fields), unprefixed."""
    return {k.removeprefix("steady_"): v for k, v in theory.items() if k.startswith("steady_")}


def assess_with_backlog(row: dict, cls: dict, n: int, cost, end: float = math.inf) -> dict:
    """:func:`~fairsched.analysis.detect.window_model.theory_for_window` of ``row`` (class ``cls``, ``n``
    instances, cost model ``cost``); a violating ``hotspot`` row also gets :func:`backlog_test`'s
    ``backlog_*`` fields, the model on its other rows being the same function's ``steady_*`` fields."""
    from fairsched.analysis.detect.window_model import theory_for_window

    th = theory_for_window(row, cls, n, cost)
    if th["regime"] != "hotspot" or not row.get("violates"):
        return th

    def model(r):
        return _steady(theory_for_window(r, cls, n, cost))

    return {**th, **jsonable(backlog_test(row, cls, n, cost, _steady(th), model, end))}


def detector_assess(classes, n: int, cost, config=None, end: float = math.inf):
    """The detector's ``assess`` hook for a run on ``n`` instances (``classes``: its
    :class:`~fairsched.analysis.prefix_classes.PrefixClasses`): a window row -> its class's
    :func:`assess_with_backlog` where ``config`` (a :class:`~fairsched.analysis.detect.detector.DetectorConfig`,
    None = the default) mitigates with ``mitigate_backlog``, else
    :func:`~fairsched.analysis.detect.window_model.theory_for_window`."""
    from fairsched.analysis.detect.detector import DetectorConfig
    from fairsched.analysis.detect.window_model import theory_for_window

    cfg = config or DetectorConfig()
    if cfg.mitigate and cfg.mitigate_backlog:
        return lambda row: assess_with_backlog(row, classes.classes[row["klass"]], n, cost, end)
    return lambda row: theory_for_window(row, classes.classes[row["klass"]], n, cost)
