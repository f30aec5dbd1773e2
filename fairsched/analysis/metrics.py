"""Metrics of one run (a :class:`~fairsched.sim.result.SimResult` or anything with the same
arrays): latency, throughput, cache hit rate, per-client service curves, the maximum
service gap between backlogged clients, and Jain's fairness index.

Units: times in seconds from the workload start; service in *service units*
(``w_p`` x uncached prefill tokens + ``w_q`` x decode tokens, VTC's measure, see
:mod:`fairsched.policies.base`); throughput in tokens per second.

Conventions shared by the fairness metrics
------------------------------------------
``W_i(t)``
    Cumulative service of client ``i`` up to *and including* every service event at time
    ``t`` (a right-continuous step function). ``W_i(t^-)`` excludes the events at ``t``.
    Events that share a time stamp are simultaneous: ``W_i`` is only ever evaluated after
    all or none of them, never in between.

Backlogged intervals
    From the backlog log: client ``i`` is backlogged on the *closed* interval
    ``[start, end]`` where ``start`` is the time its waiting count went from 0 to > 0 and
    ``end`` the time it went back to 0 (the instant its last waiting request was
    admitted). A zero-length interval ``[t, t]`` (arrived and admitted at once) is kept.
    Two intervals of one client that touch (``next.start <= end``) are merged: the client
    was backlogged at every instant in between. A backlog still open at the end of the log
    ends at the last time stamp of the logs.

Service inside a closed interval ``[s, e]``
    Every service event with ``s <= t <= e`` counts: ``W(e) - W(s^-)``. This is the
    choice that matches how the simulator logs an admission: the backlog of a client
    ends at the very instant its last waiting request is admitted, and that admission's
    prefill charge is logged at the same instant. The admission is a scheduling decision
    taken while the client was still backlogged, so its charge belongs to the interval
    (VTC's counter is charged at that decision too). Symmetrically, a request admitted at
    the instant its client became backlogged is inside ``[s, s]``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fairsched.analysis.columns import request_arrays
from fairsched.analysis.gap import GapReport, backlog_interval_arrays, max_service_gap
from fairsched.analysis.gap_reference import max_service_gap_naive

__all__ = [
    "JAIN_MIN_BACKLOG_FRAC",
    "GapReport",
    "backlog_intervals",
    "backlogged_rates",
    "cache_hit_rate",
    "jain_index",
    "latency_stats",
    "makespan_s",
    "max_service_gap",
    "max_service_gap_naive",
    "service_curves",
    "summarize",
    "throughput_tok_s",
]

_QUANTILES = (50, 90, 99)


# --------------------------------------------------------------------------- helpers
def _none_if_nan(x) -> float | None:
    """``float(x)``, or None for NaN/inf/None (keeps summaries JSON-serialisable)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _svc_arrays(result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The service log as numpy arrays ``(t, client, amount)``, sorted by time (stable)."""
    t = np.asarray(result.svc_t, dtype=float)
    c = np.asarray(result.svc_client, dtype=np.int64)
    a = np.asarray(result.svc_amount, dtype=float)
    if t.size > 1 and np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t, c, a = t[order], c[order], a[order]
    return t, c, a


def _bl_arrays(result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.asarray(result.bl_t, dtype=float)
    c = np.asarray(result.bl_client, dtype=np.int64)
    d = np.asarray(result.bl_delta, dtype=np.int64)
    if t.size > 1 and np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t, c, d = t[order], c[order], d[order]
    return t, c, d


def _horizon(result) -> float:
    """Last time stamp in the service and backlog logs (0 if both are empty)."""
    ends = [float(np.max(x)) for x in (np.asarray(result.svc_t, float), np.asarray(result.bl_t, float))
            if x.size]
    return max(ends) if ends else 0.0


def _finished_mask(result) -> np.ndarray:
    return np.isfinite(np.asarray(result.finish_t, dtype=float))


# --------------------------------------------------------------------------- latency
def latency_stats(result) -> dict[str, float | None]:
    """TTFT, TPOT and end-to-end latency statistics over *finished* requests [s].

    Definitions (per request, from :meth:`SimResult.requests_frame`):

    - ``ttft``: first token time - arrival;
    - ``tpot``: (finish - first token) / (output_len - 1), only for output_len > 1;
    - ``e2e``: finish - arrival.

    Returns ``{f"{m}_{s}_s": value}`` for ``m`` in ttft, tpot, e2e and ``s`` in mean,
    p50, p90, p99 (linear-interpolated percentiles); None where there is no data.
    """
    arr, _, _, outp = request_arrays(result)
    fin = np.asarray(result.finish_t, dtype=float)
    first = np.asarray(result.first_token_t, dtype=float)
    done = np.isfinite(fin)
    gen = outp - 1
    cols = {"ttft": first - arr, "e2e": fin - arr,
            "tpot": np.where(gen > 0, (fin - first) / np.maximum(gen, 1), np.nan)}
    out: dict[str, float | None] = {}
    for m in ("ttft", "tpot", "e2e"):
        v = cols[m][done]
        v = v[np.isfinite(v)]
        out[f"{m}_mean_s"] = _none_if_nan(v.mean()) if v.size else None
        for q, p in zip(_QUANTILES, np.percentile(v, _QUANTILES) if v.size else [None] * 3, strict=True):
            out[f"{m}_p{q}_s"] = _none_if_nan(p)
    return out


def makespan_s(result) -> float | None:
    """Seconds from the first arrival to the last finish (None if nothing finished)."""
    fin = np.asarray(result.finish_t, dtype=float)
    fin = fin[np.isfinite(fin)]
    if not fin.size or not len(result.workload):
        return None
    return float(fin.max() - result.workload[0].arrival)


def throughput_tok_s(result) -> dict[str, float | None]:
    """Token throughput over the makespan (first arrival to last finish) [tokens/s].

    Returns a dict:

    - ``throughput_tok_s``: (prompt tokens + output tokens) of finished requests / makespan
      (vLLM's "total token throughput"; cached prompt tokens count, they were served);
    - ``output_tok_s``: output tokens of finished requests / makespan;
    - ``computed_tok_s``: (uncached prompt tokens + output tokens) of finished requests /
      makespan, the tokens the engine actually computed.

    Values are None if nothing finished or the makespan is 0.
    """
    span = makespan_s(result)
    fin = _finished_mask(result)
    keys = ("throughput_tok_s", "output_tok_s", "computed_tok_s")
    if not span or span <= 0:
        return dict.fromkeys(keys)
    _, _, inp, outp = request_arrays(result)
    cached = np.asarray(result.cached_tokens, dtype=float)
    return {
        "throughput_tok_s": float((inp[fin] + outp[fin]).sum() / span),
        "output_tok_s": float(outp[fin].sum() / span),
        "computed_tok_s": float((inp[fin] - cached[fin] + outp[fin]).sum() / span),
    }


def cache_hit_rate(result) -> float | None:
    """Cached prompt tokens / prompt tokens, over admitted requests (None if none).

    A prompt token is *cached* if it was served from the instance's prefix cache at
    admission (``SimResult.cached_tokens``; the last prompt token is always recomputed,
    so the rate is below 1 even for a repeated prompt).
    """
    adm = np.isfinite(np.asarray(result.admit_t, dtype=float))
    if not adm.any():
        return None
    inp = request_arrays(result)[2]
    total = inp[adm].sum()
    return float(np.asarray(result.cached_tokens, dtype=float)[adm].sum() / total) if total > 0 else None


# --------------------------------------------------------------------------- service
def service_curves(result, clients: list[str] | None = None, max_points: int | None = None) -> pd.DataFrame:
    """Cumulative service ``W_i(t)`` per client, long format, for plots.

    Columns: ``client`` (id), ``t`` [s], ``W`` [service units]. Each client's curve starts
    with ``W = 0`` at the first arrival of the workload and has one point per distinct
    service time (the value after all events at that time; draw it as a step function,
    ``line_shape="hv"``).

    Args:
        clients: only these client ids (default: all clients that received service).
        max_points: at most this many points per client (evenly spaced over its events;
            the first and the last point are kept).
    Raises:
        ValueError: on a result without the full service log (``service_log != "full"``).
    """
    if getattr(result, "service_log", "full") != "full":
        raise ValueError("service curves need the full service log: simulate with service_log='full'")
    t, c, a = _svc_arrays(result)
    names = list(result.clients)
    t0 = result.workload[0].arrival if len(result.workload) else 0.0
    want = None if clients is None else {names.index(x) for x in clients if x in names}
    frames = []
    order = np.argsort(c, kind="stable")
    cs, ts, as_ = c[order], t[order], a[order]
    cuts = np.flatnonzero(np.diff(cs)) + 1
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, cs.size], strict=True):
        if hi <= lo:
            continue
        ci = int(cs[lo])
        if want is not None and ci not in want:
            continue
        tt, ww = ts[lo:hi], np.cumsum(as_[lo:hi])
        last = np.r_[tt[1:] != tt[:-1], True]
        tt, ww = np.r_[t0, tt[last]], np.r_[0.0, ww[last]]
        if max_points is not None and tt.size > max_points:
            idx = np.unique(np.linspace(0, tt.size - 1, max(2, max_points)).round().astype(np.int64))
            tt, ww = tt[idx], ww[idx]
        frames.append(pd.DataFrame({"client": names[ci], "t": tt, "W": ww}))
    if not frames:
        return pd.DataFrame({"client": pd.Series(dtype=str), "t": pd.Series(dtype=float),
                             "W": pd.Series(dtype=float)})
    return pd.concat(frames, ignore_index=True)


def _intervals(result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All clients' merged closed backlog intervals, vectorised: ``(client, start, end)``
    arrays sorted by (client, start) (:func:`fairsched.analysis.gap.backlog_interval_arrays`)."""
    return backlog_interval_arrays(*_bl_arrays(result), _horizon(result))


def _intervals_by_index(result) -> dict[int, np.ndarray]:
    """Client index -> merged closed backlog intervals as an ``(k, 2)`` float array."""
    ic, st, en = _intervals(result)
    if not ic.size:
        return {}
    cuts = np.flatnonzero(np.r_[True, ic[1:] != ic[:-1]])
    ends = np.r_[cuts[1:], ic.size]
    return {int(ic[a]): np.column_stack([st[a:b], en[a:b]]) for a, b in zip(cuts.tolist(), ends.tolist(), strict=True)}


def backlog_intervals(result) -> dict[str, list[tuple[float, float]]]:
    """Client id -> sorted list of its closed backlogged intervals ``(start, end)`` [s].

    See the module docstring for the convention (closed intervals, touching ones merged,
    an unfinished backlog ends at the last logged time). Clients that were never
    backlogged are absent.
    """
    names = list(result.clients)
    return {names[i]: [(float(s), float(e)) for s, e in iv] for i, iv in _intervals_by_index(result).items()}


# --------------------------------------------------------------------------- service gap
def _in_own_backlog(t: np.ndarray, c: np.ndarray, ic: np.ndarray, st: np.ndarray, en: np.ndarray) -> np.ndarray:
    """Mask of service events ``(t, c)`` that lie in a (closed) backlog interval of client c
    (intervals ``(ic, st, en)`` sorted by client, then start, as :func:`_intervals` gives).

    Vectorised: intervals get integer keys ``client * M + rank(start)`` over the grid of
    interval boundaries, and one ``searchsorted`` finds, for every event, the last interval
    of its client starting at or before it."""
    if not ic.size or not t.size:
        return np.zeros(t.size, dtype=bool)
    grid = np.unique(np.concatenate([st, en]))
    m = grid.size + 1
    ikeys = ic * m + np.searchsorted(grid, st, side="right")
    k = np.searchsorted(ikeys, c * m + np.searchsorted(grid, t, side="right"), side="right") - 1
    ok = k >= 0
    ok[ok] = (ic[k[ok]] == c[ok]) & (t[ok] <= en[k[ok]])
    return ok


# --------------------------------------------------------------------------- Jain
def backlogged_rates(result, min_backlog_frac: float = 0.0) -> dict[str, float]:
    """Client id -> service rate while backlogged [service units / s].

    ``x_i = (service of i at times inside its closed backlog intervals) / (total length
    T_i of those intervals)``. Clients never backlogged, backlogged only for zero time, or
    for less than ``min_backlog_frac`` x makespan in total, are absent.
    """
    names = list(result.clients)
    ic, st, en = _intervals(result)
    keep = ic < len(names)
    ic, st, en = ic[keep], st[keep], en[keep]
    t, c, a = _svc_arrays(result)
    floor = min_backlog_frac * (makespan_s(result) or 0.0)
    inside = _in_own_backlog(t, c, ic, st, en)
    got = np.bincount(c[inside], weights=a[inside], minlength=len(names))
    # T_i per client: one or two intervals at once (exact), more with numpy's own sum
    span = en - st
    cuts = np.flatnonzero(np.r_[True, ic[1:] != ic[:-1]]) if ic.size else np.empty(0, dtype=np.int64)
    n = np.diff(np.r_[cuts, ic.size])
    length = span[cuts].copy()
    two = n == 2
    length[two] += span[cuts[two] + 1]
    for k in np.flatnonzero(n > 2).tolist():
        length[k] = span[cuts[k]:cuts[k] + n[k]].sum()
    ok = (length > 0) & (length >= floor)
    who = ic[cuts][ok]
    return {names[i]: float(x) for i, x in zip(who.tolist(), (got[who] / length[ok]).tolist(), strict=True)}


JAIN_MIN_BACKLOG_FRAC = 0.01
"""Default of :func:`jain_index`'s ``min_backlog_frac`` (see there for why)."""


def jain_index(result, min_backlog_frac: float = JAIN_MIN_BACKLOG_FRAC) -> float | None:
    """Jain's fairness index of the clients' service rates while backlogged.

    ``J = (sum x_i)^2 / (n * sum x_i^2)`` with ``x_i`` from :func:`backlogged_rates`:
    service received inside client i's (closed) backlogged intervals divided by their
    total length ``T_i``, over the ``n`` clients with ``T_i > 0``. ``J`` is 1 when all rates
    are equal and ``1/n`` when one client gets everything.

    Clients with ``T_i < min_backlog_frac * makespan`` (default 1%) are left out: a client
    that is backlogged only briefly is charged a whole admission (up to ``U`` service
    units) at the end of each interval, so its estimate ``x_i ~ U / T_i`` measures the
    interval length, not its share (on the VTC trace under VTC, two clients backlogged for
    0.02 s and 0 s had "rates" 100x the others' and pulled J from 0.83 to 0.09). Pass
    ``min_backlog_frac=0`` for the unfiltered definition.

    Returns None if no client qualifies or all rates are 0.
    """
    return _jain(backlogged_rates(result, min_backlog_frac).values())


def _jain(values) -> float | None:
    x = np.fromiter(values, dtype=float)
    if not x.size or not (x**2).sum() > 0:
        return None
    return float(x.sum() ** 2 / (x.size * (x**2).sum()))


# --------------------------------------------------------------------------- summary
def summarize(result, label: str | None = None, weights=None) -> dict:
    """All metrics of one run as a flat, JSON-serialisable dict (None instead of NaN).

    Keys: ``label``, ``router``, ``policy``, ``n_instances``, ``n_requests``,
    ``n_finished``, ``n_clients``, ``makespan_s``; ``ttft|tpot|e2e`` x
    ``mean|p50|p90|p99`` with suffix ``_s``; ``throughput_tok_s``, ``output_tok_s``,
    ``computed_tok_s``; ``cache_hit_rate``; ``total_service``; ``max_service_gap``,
    ``gap_pair`` ([f, g], f ahead), ``gap_interval`` ([t1, t2]), ``gap_left_closed``,
    ``gap_window`` (see :class:`GapReport`);
    ``max_cost_U`` (VTC's ``U = max(w_p L_input, w_q M)``, M the instance's KV token
    capacity ``result.meta["kv_capacity_tokens"]``, None when unknown; ``weights`` default
    VTC's 1 and 2) and ``gap_over_U``; ``jain_index`` and ``jain_n_clients`` (clients it covers).
    """
    w_p, w_q = (weights.w_p, weights.w_q) if weights is not None else (1.0, 2.0)
    gap = max_service_gap(result, per_pair=False)
    M = (getattr(result, "meta", None) or {}).get("kv_capacity_tokens")
    u = float(result.workload.max_cost(w_p, w_q, batch_tokens=M)) if len(result.workload) and M else None
    router = result.router or "none"
    policy = result.policy or ""
    out = {
        "label": label or (policy if router in ("", "none") else f"{router}/{policy}"),
        "router": router,
        "policy": policy,
        "n_instances": int(result.n_instances),
        "n_requests": len(result.workload),
        "n_finished": int(result.n_finished),
        "n_clients": len(result.clients),
        "makespan_s": _none_if_nan(makespan_s(result)),
    }
    out.update(latency_stats(result))
    out.update(throughput_tok_s(result))
    out["cache_hit_rate"] = _none_if_nan(cache_hit_rate(result))
    out["total_service"] = (float(result.total_service) if hasattr(result, "total_service")
                            else float(np.asarray(result.svc_amount, dtype=float).sum()))
    out["max_service_gap"] = float(gap.gap)
    out["gap_pair"] = list(gap.pair) if gap.pair else None
    out["gap_interval"] = [_none_if_nan(x) for x in gap.interval] if gap.interval else None
    out["gap_left_closed"] = bool(gap.left_closed)
    out["gap_window"] = [_none_if_nan(x) for x in gap.window] if gap.window else None
    out["max_cost_U"] = u
    out["gap_over_U"] = float(gap.gap / u) if u else None
    rates = backlogged_rates(result, JAIN_MIN_BACKLOG_FRAC)
    out["jain_index"] = _none_if_nan(_jain(rates.values()))
    out["jain_n_clients"] = len(rates)
    from fairsched.display import Summary

    return Summary(out)
