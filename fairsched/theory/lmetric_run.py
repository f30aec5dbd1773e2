"""The regime of a *run* from the corrected model's windows (``proofs/lmetric_harm_validation.md``
§3.3, §3.5-§3.6, §13.2): the windows combined as the measured outcome combines requests.

Units: seconds, requests. The window predictions come from
:func:`fairsched.theory.lmetric_steady.steady_state_hotspot`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .lmetric_steady import HARM_ABS_S, HARM_REL, HOTSPOT_RATIO

__all__ = ["run_regime"]


def run_regime(windows: Sequence[tuple[dict, float]], n: int, n_run: float, leastload_start: str = "cold") -> dict:
    """The regime of a *run* from the model's windows (``proofs/lmetric_harm_validation.md`` §3.3).

    Args:
        windows: per checked window in time order, ``(steady_state_hotspot(...) dict, class arrivals in it)``.
        n: instances N; n_run: the class's arrivals over the run.

    The outcome it predicts is a run statistic (the class's mean TTFT over its requests), so the
    windows are combined as the outcome combines requests: each window's TTFT without its
    one-off replication term, weighted by its class arrivals, plus the run's replications once
    (LMetric: from the first window's holders to the most it settles at; least-load: to all N from none, as
    the run it is compared with starts cold, §13.2, at most one per class arrival; ``leastload_start="holders"``:
    from the first window's holders, rounds 5-8), each spread over ``n_run``. Harmful / hotspot thresholds as :func:`~fairsched.theory.lmetric_steady.steady_state_hotspot`;
    hotspot if any window's ratio exceeds :data:`HOTSPOT_RATIO`; with transient windows (§3.5) if
    the ratio of the class-arrival-weighted mean loads ``sum_w p_w R_w (B_Mbar,w + 1) / sum_w p_w
    (B_Mbar,w + 1)`` does (the outcome's own ``R``, over the windows with non-holders; a window with
    no ``B_Mbar``, every instance saturated, weighs by its measured mean load ``load_measured``
    [requests], §3.6; the largest ratio if it has none either).
    Returns ``{"regime", "ttft_lmetric", "ttft_leastload", "ratio"}`` ([s]; ratio: as tested); benign with no window.
    """
    tot = sum(w for _, w in windows)
    if not windows or tot <= 0:
        return {"regime": "benign", "ttft_lmetric": None, "ttft_leastload": None, "ratio": None}
    def inf(v):  # JSON rows carry an infinite TTFT (overloaded cluster) as None
        return math.inf if v is None else float(v)

    p = [({**d, "ttft_lmetric": inf(d["ttft_lmetric"]), "ttft_leastload": inf(d["ttft_leastload"])}, w / tot)
         for d, w in windows]
    c1 = sum(q * d["replication_per_holder_s"] for d, q in p)
    lm = sum(q * (d["ttft_lmetric"] - d["replication_per_holder_s"] * (d["holders"] - d["holders_initial"]) / d["n_hot"])
             for d, q in p)
    ll = sum(q * (d["ttft_leastload"] - d["replication_per_holder_s"] * (n - d["holders_initial"]) / d["n_hot"])
             for d, q in p)
    m_first = windows[0][0]["holders_initial"]
    m_last = max(m_first, max(d["holders"] for d, _ in windows))
    lm += c1 * (m_last - m_first) / max(1.0, n_run)
    ll += c1 * min(n - (m_first if leastload_start == "holders" else 0), max(1.0, n_run)) / max(1.0, n_run)  # §13.2
    split = [(d, q) for d, q in p if d["holders"] < n]  # R counts decisions with holders and non-holders only
    def other_load(d):  # §3.6: a window without the others' state weighs by the load measured over it
        return d["B_Mbar"] if d.get("B_Mbar") is not None else d.get("load_measured")

    if split and all(d.get("load_form") == "transient" and other_load(d) is not None for d, _ in split):
        den = [q * (1.0 + other_load(d)) for d, q in split]  # §3.5: R as the outcome measures it, the ratio of the
        ratio = sum(dn * d["ratio"] for dn, (d, _) in zip(den, split, strict=True)) / sum(den)  # decisions' mean loads
    else:
        ratio = max(d["ratio"] for d, _ in windows)
    if math.isfinite(ll) and lm > ll * (1 + HARM_REL) and lm - ll > HARM_ABS_S:
        regime = "harmful"
    else:
        regime = "hotspot" if ratio > HOTSPOT_RATIO else "benign"
    return {"regime": regime, "ttft_lmetric": lm, "ttft_leastload": ll, "ratio": ratio}
