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
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd

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


def _arrivals(result) -> np.ndarray:
    return np.fromiter((r.arrival for r in result.workload), dtype=float, count=len(result.workload))


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
    df = result.requests_frame()
    df = df[np.isfinite(df["finish_t"].to_numpy(dtype=float))]
    out: dict[str, float | None] = {}
    for m in ("ttft", "tpot", "e2e"):
        v = df[f"{m}_s"].to_numpy(dtype=float)
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
    inp = np.fromiter((r.input_len for r in result.workload), dtype=float, count=fin.size)
    outp = np.fromiter((r.output_len for r in result.workload), dtype=float, count=fin.size)
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
    inp = np.fromiter((r.input_len for r in result.workload), dtype=float, count=adm.size)
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
    """
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


def _intervals_by_index(result) -> dict[int, np.ndarray]:
    """Client index -> merged closed backlog intervals as an ``(k, 2)`` float array."""
    t, c, d = _bl_arrays(result)
    horizon = _horizon(result)
    out: dict[int, np.ndarray] = {}
    if not t.size:
        return out
    order = np.argsort(c, kind="stable")
    cs, ts, ds = c[order], t[order], d[order]
    cuts = np.flatnonzero(np.diff(cs)) + 1
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, cs.size], strict=True):
        tt, dd = ts[lo:hi], ds[lo:hi]
        after = np.cumsum(dd)
        before = after - dd
        starts = tt[(before <= 0) & (after > 0)]
        ends = tt[(before > 0) & (after <= 0)]
        if ends.size < starts.size:  # still backlogged at the end of the log
            ends = np.r_[ends, max(horizon, float(starts[-1]))]
        if not starts.size:
            continue
        # merge touching / overlapping intervals of this client
        new = np.r_[True, starts[1:] > ends[:-1]]
        s = starts[new]
        e = np.maximum.reduceat(ends, np.flatnonzero(new))
        out[int(cs[lo])] = np.column_stack([s, e])
    return out


def backlog_intervals(result) -> dict[str, list[tuple[float, float]]]:
    """Client id -> sorted list of its closed backlogged intervals ``(start, end)`` [s].

    See the module docstring for the convention (closed intervals, touching ones merged,
    an unfinished backlog ends at the last logged time). Clients that were never
    backlogged are absent.
    """
    names = list(result.clients)
    return {names[i]: [(float(s), float(e)) for s, e in iv] for i, iv in _intervals_by_index(result).items()}


# --------------------------------------------------------------------------- service gap
@dataclass
class GapReport:
    """The maximum service gap between two clients while both are backlogged.

    Attributes:
        gap: the maximum [service units]; 0.0 if no two clients were ever backlogged at
            the same time.
        pair: ``(f, g)`` client ids; ``f`` is the client that received *more* service
            over ``interval`` (None if ``gap`` is 0 and there was no common backlog).
        interval: ``(t1, t2)`` [s], where the gap is attained: ``gap`` is f's service
            minus g's over the events with ``t1 <= t <= t2`` if ``left_closed``, else over
            those with ``t1 < t <= t2``.
        left_closed: whether the events at ``t1`` count (only possible when ``t1`` is the
            start of ``window``, where ``D(start^-)`` is a candidate).
        window: ``(start, end)`` [s], the maximal interval in which both were backlogged
            that contains ``interval``.
        per_pair: ``{(f, g): gap}`` for every pair with a common backlog (``f`` before
            ``g`` in ``result.clients`` order).
    """

    gap: float = 0.0
    pair: tuple[str, str] | None = None
    interval: tuple[float, float] | None = None
    left_closed: bool = False
    window: tuple[float, float] | None = None
    per_pair: dict[tuple[str, str], float] = field(default_factory=dict)


def _in_own_backlog(t: np.ndarray, c: np.ndarray, ivs: dict[int, np.ndarray]) -> np.ndarray:
    """Mask of service events ``(t, c)`` that lie in a (closed) backlog interval of client c.

    Vectorised: intervals sorted by (client, start) get integer keys
    ``client * M + rank(start)`` over the grid of interval boundaries, and one
    ``searchsorted`` finds, for every event, the last interval of its client starting at or
    before it."""
    if not ivs or not t.size:
        return np.zeros(t.size, dtype=bool)
    ks = sorted(ivs)
    ic = np.concatenate([np.full(len(ivs[k]), k, dtype=np.int64) for k in ks])
    st = np.concatenate([ivs[k][:, 0] for k in ks])
    en = np.concatenate([ivs[k][:, 1] for k in ks])
    grid = np.unique(np.concatenate([st, en]))
    m = grid.size + 1
    ikeys = ic * m + np.searchsorted(grid, st, side="right")
    k = np.searchsorted(ikeys, c * m + np.searchsorted(grid, t, side="right"), side="right") - 1
    ok = k >= 0
    ok[ok] = (ic[k[ok]] == c[ok]) & (t[ok] <= en[k[ok]])
    return ok


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(lo[k], hi[k])`` over k (empty where ``hi <= lo``)."""
    n = np.maximum(hi - lo, 0)
    tot = int(n.sum())
    if not tot:
        return np.empty(0, dtype=np.int64)
    return np.arange(tot) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)


def _seg_reduce(ufunc, v: np.ndarray, n: np.ndarray, empty: float) -> np.ndarray:
    """``ufunc.reduce`` over consecutive segments of ``v`` with lengths ``n`` (``empty`` for 0)."""
    out = np.full(n.size, empty)
    ne = n > 0
    if ne.any():
        starts = (np.cumsum(n) - n)[ne]
        out[ne] = ufunc.reduceat(v, starts)
    return out


class _ServiceIndex:
    """The service log sorted by (client, time) with integer keys, for vectorised lookups of
    ``W_c(t)`` and of a client's events in a time range, for many (client, time) at once.

    Every time stamp (service and backlog) gets its rank in the sorted unique grid ``G``;
    an event's key is ``client * M + rank`` (exact integers), so one ``searchsorted`` on
    ``keys`` answers "how many events of client c up to time t"."""

    def __init__(self, result, ivs: dict[int, np.ndarray]):
        t, c, a = _svc_arrays(result)
        # Only events inside their own client's backlog can ever be counted: within a window
        # [s, e] of f and g, D(t) - D(s^-) sums f's and g's events in [s, t]. Dropping the
        # others shifts W_c by a constant per window and leaves every range unchanged.
        keep = _in_own_backlog(t, c, ivs)
        t, c, a = t[keep], c[keep], a[keep]
        bt = np.asarray(result.bl_t, dtype=float)
        self.G = np.unique(np.concatenate([t, bt]))
        self.M = self.G.size + 1
        order = np.lexsort((t, c))
        self.t, self.c = t[order], c[order]
        self.keys = self.c * self.M + np.searchsorted(self.G, self.t)
        self.P = np.r_[0.0, np.cumsum(a[order])]
        n_clients = int(self.c.max()) + 1 if self.c.size else 0
        self.first = np.searchsorted(self.keys, np.arange(n_clients + 1) * self.M)  # client c's block
        self.runend = np.searchsorted(self.keys, self.keys, side="right")  # past events at same (c, t)

    def pos(self, c: np.ndarray, x: np.ndarray, inclusive: bool) -> np.ndarray:
        """Index in the sorted log just past client c's events at times ``<= x`` (``< x``)."""
        r = np.searchsorted(self.G, x, side="right" if inclusive else "left")
        return np.searchsorted(self.keys, c * self.M + r, side="left")

    def _first(self, c: np.ndarray) -> np.ndarray:
        return self.first[np.minimum(c, self.first.size - 1)]

    def W(self, c: np.ndarray, x: np.ndarray, inclusive: bool) -> np.ndarray:
        """``W_c(x)`` (``inclusive``) or ``W_c(x^-)``, elementwise."""
        return self.P[self.pos(c, x, inclusive)] - self.P[self._first(c)]

    def D_at_events(self, idx: np.ndarray, other: np.ndarray) -> np.ndarray:
        """``W_own(t) - W_other(t)`` at the events ``idx`` (t = their times, events at t
        included), with one search: the event's own key gives its client and time rank."""
        own = self.c[idx]
        w_own = self.P[self.runend[idx]] - self.P[self._first(own)]
        rank = self.keys[idx] - own * self.M
        w_other = self.P[np.searchsorted(self.keys, other * self.M + rank + 1, side="left")] \
            - self.P[self._first(other)]
        return w_own - w_other


_CHUNK = 2_000_000  # flat (window, event) entries per vectorised batch


def _windows(ivs: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All maximal closed intervals in which two clients are both backlogged.

    Returns ``(f, g, s, e)`` with ``f < g`` client indices, sorted by ``(f, g, s)``. Found by
    an interval join: after sorting all intervals by start, interval i overlaps the later
    intervals whose start is ``<= end_i``; each overlapping pair is seen once.
    """
    if not ivs:
        z = np.empty(0, dtype=np.int64)
        return z, z, np.empty(0), np.empty(0)
    cl = np.concatenate([np.full(len(v), k, dtype=np.int64) for k, v in ivs.items()])
    st = np.concatenate([v[:, 0] for v in ivs.values()])
    en = np.concatenate([v[:, 1] for v in ivs.values()])
    o = np.lexsort((cl, st))
    cl, st, en = cl[o], st[o], en[o]
    hi = np.searchsorted(st, en, side="right")
    i = np.repeat(np.arange(st.size), np.maximum(hi - np.arange(st.size) - 1, 0))
    j = _ranges(np.arange(st.size) + 1, hi)
    keep = cl[i] != cl[j]
    i, j = i[keep], j[keep]
    f, g = np.minimum(cl[i], cl[j]), np.maximum(cl[i], cl[j])
    s, e = st[j], np.minimum(en[i], en[j])  # st[j] >= st[i]
    o = np.lexsort((s, g, f))
    return f[o], g[o], s[o], e[o]


def _window_ranges(ix: _ServiceIndex, f, g, s, e) -> np.ndarray:
    """Range of ``D = W_f - W_g`` over each window (see :func:`max_service_gap`)."""
    d0 = ix.W(f, s, False) - ix.W(g, s, False)  # D(s^-)
    hi_v, lo_v = d0.copy(), d0.copy()
    for who in (f, g):
        lo = ix.pos(who, s, False)
        hi = ix.pos(who, e, True)
        n = hi - lo
        idx = _ranges(lo, hi)
        if not idx.size:
            continue
        w = np.repeat(np.arange(f.size), n)
        d = ix.D_at_events(idx, g[w]) if who is f else -ix.D_at_events(idx, f[w])
        hi_v = np.maximum(hi_v, _seg_reduce(np.maximum, d, n, -np.inf))
        lo_v = np.minimum(lo_v, _seg_reduce(np.minimum, d, n, np.inf))
    return hi_v - lo_v


def _witness(ix: _ServiceIndex, f: int, g: int, s: float, e: float):
    """Where the range of D over window [s, e] is attained: ``(t1, t2, sign, left_closed)``."""
    fa, ga = np.array([f]), np.array([g])
    parts = [ix.t[ix.pos(x, np.array([s]), False)[0]:ix.pos(x, np.array([e]), True)[0]] for x in (fa, ga)]
    T = np.sort(np.concatenate(parts), kind="stable")
    D = ix.W(np.full(T.size, f), T, True) - ix.W(np.full(T.size, g), T, True)
    d0 = ix.W(fa, np.array([s]), False) - ix.W(ga, np.array([s]), False)
    vals, times = np.r_[d0, D], np.r_[s, T]
    imax, imin = int(np.argmax(vals)), int(np.argmin(vals))
    # f gained on g from the earlier extreme to the later one iff the later one is the max
    if imax >= imin:
        return float(times[imin]), float(times[imax]), +1, imin == 0
    return float(times[imax]), float(times[imin]), -1, imax == 0


def _causal(result):
    """``(view, to_time)``: a view of ``result`` whose service and backlog times are the
    causal sequence coordinates of :class:`~fairsched.sim.result.SimResult` (``svc_seq``,
    ``bl_seq``: (time, order of logging), so several events at one instant are ordered as
    they happened), and the map from that axis back to seconds. Results without those
    coordinates (hand-built logs) are used as they are."""
    if getattr(result, "svc_seq", None) is None or getattr(result, "bl_seq", None) is None:
        return result, float
    seq_t = result.seq_t
    view = SimpleNamespace(svc_t=result.svc_seq, svc_client=result.svc_client, svc_amount=result.svc_amount,
                           bl_t=result.bl_seq, bl_client=result.bl_client, bl_delta=result.bl_delta,
                           clients=result.clients, workload=result.workload)
    return view, lambda x: float(seq_t[int(round(x))])


def _in_time(rep: GapReport, to_time) -> GapReport:
    if rep.interval is not None:
        rep.interval = (to_time(rep.interval[0]), to_time(rep.interval[1]))
    if rep.window is not None:
        rep.window = (to_time(rep.window[0]), to_time(rep.window[1]))
    return rep


def max_service_gap(result, per_pair: bool = True) -> GapReport:
    """Maximum service difference between two clients while both are backlogged.

    Works on the causal event order of the run (``SimResult.svc_seq``/``bl_seq``): a
    service event belongs to a window iff it happened after both clients became backlogged
    and before either stopped being backlogged, even when those events share a time stamp
    (a client's last admission ends its backlog; a refill and another admission may follow
    at the same instant and are *not* in the window). ``interval`` and ``window`` are
    reported in seconds.

    For every pair of clients ``(f, g)`` and every maximal closed interval ``[s, e]`` in
    which both are backlogged (intersections of their backlog intervals, see the module
    docstring), with ``D(t) = W_f(t) - W_g(t)``::

        gap(f, g, [s, e]) = max_{s <= t1 < t2 <= e} |(W_f(t2) - W_f(t1)) - (W_g(t2) - W_g(t1))|
                          = max(V) - min(V),  V = {D(s^-)} U {D(t) : t a service time in [s, e]}

    (service in ``[s, e]`` counted in full, events at ``s`` and at ``e`` included). The
    result is the maximum over pairs and intervals; ties go to the first pair in
    ``result.clients`` order, then the earliest window. VTC bounds it by ``2U`` for VTC,
    DLPM by ``2(U + Q^u)``.

    Args:
        per_pair: also fill ``GapReport.per_pair`` (one entry per pair of clients that
            were ever backlogged together; can be large with thousands of clients).

    Cost: vectorised numpy over all windows at once (an interval join finds the windows;
    each service event is looked at once per window that contains it, i.e. once per other
    client backlogged at that moment), ``O((n_events * concurrency + n_windows) log n)``.
    27 clients with 100k events take ~0.15 s; the whole Mooncake trace on 16 instances (7,373
    clients, 4.1M events) ~1 s.
    """
    view, to_time = _causal(result)
    return _in_time(_max_service_gap(view, per_pair), to_time)


def _max_service_gap(result, per_pair: bool) -> GapReport:
    names = list(result.clients)
    ivs = {k: v for k, v in _intervals_by_index(result).items() if k < len(names)}
    f, g, s, e = _windows(ivs)
    rep = GapReport()
    if not f.size:
        return rep
    ix = _ServiceIndex(result, ivs)
    # batch the windows so that the flat (window, event) arrays stay bounded
    fs = (ix.pos(f, e, True) - ix.pos(f, s, False)) + (ix.pos(g, e, True) - ix.pos(g, s, False)) + 1
    cut = np.searchsorted(np.cumsum(fs), np.arange(_CHUNK, int(fs.sum()) + _CHUNK, _CHUNK), side="right")
    bounds = np.unique(np.r_[0, np.minimum(cut, f.size), f.size])
    rng = np.concatenate([_window_ranges(ix, f[a:b], g[a:b], s[a:b], e[a:b])
                          for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a])
    k = int(np.argmax(rng))  # windows are sorted by (f, g, s): the first max is the tie-break
    t1, t2, sign, closed = _witness(ix, int(f[k]), int(g[k]), float(s[k]), float(e[k]))
    rep.gap = float(rng[k])
    pf, pg = (f[k], g[k]) if sign > 0 else (g[k], f[k])
    rep.pair = (names[pf], names[pg])
    rep.interval, rep.window, rep.left_closed = (t1, t2), (float(s[k]), float(e[k])), bool(closed)
    if per_pair:
        new = np.r_[True, (f[1:] != f[:-1]) | (g[1:] != g[:-1])]
        starts = np.flatnonzero(new)
        best = np.maximum.reduceat(rng, starts)
        rep.per_pair = {(names[a], names[b]): float(v) for a, b, v in zip(f[starts], g[starts], best, strict=True)}
    return rep


def max_service_gap_naive(result) -> GapReport:
    """Plain-Python reference for :func:`max_service_gap` (quadratic; for tests only).

    Recomputes the backlog intervals, the common windows and every ``D`` value by direct
    summation; same conventions (the causal order), same ``gap`` and ``per_pair`` values.
    """
    view, to_time = _causal(result)
    return _in_time(_max_service_gap_naive(view), to_time)


def _max_service_gap_naive(result) -> GapReport:
    names = list(result.clients)
    events = sorted(zip(list(result.svc_t), list(result.svc_client), list(result.svc_amount), strict=True),
                    key=lambda e: e[0])
    bl = sorted(zip(list(result.bl_t), list(result.bl_client), list(result.bl_delta), strict=True),
                key=lambda e: e[0])
    horizon = max([e[0] for e in events] + [b[0] for b in bl] + [0.0])
    # backlog intervals by walking the log
    level: dict[int, int] = {}
    open_at: dict[int, float] = {}
    raw: dict[int, list[list[float]]] = {}
    for tb, cb, db in bl:
        old = level.get(cb, 0)
        level[cb] = old + db
        if old <= 0 < level[cb]:
            open_at[cb] = tb
        elif old > 0 >= level[cb]:
            raw.setdefault(cb, []).append([open_at.pop(cb), tb])
    for cb, tb in open_at.items():
        raw.setdefault(cb, []).append([tb, max(horizon, tb)])
    ivs: dict[int, list[list[float]]] = {}
    for cb, lst in raw.items():
        merged: list[list[float]] = []
        for s, e in sorted(lst):
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        ivs[cb] = merged

    def w(ci: int, tt: float, inclusive: bool) -> float:
        return sum(am for te, ce, am in events if ce == ci and (te <= tt if inclusive else te < tt))

    rep = GapReport()
    best = None
    keys = sorted(k for k in ivs if k < len(names))
    for x, f in enumerate(keys):
        for g in keys[x + 1:]:
            pair_best = None
            for sf, ef in ivs[f]:
                for sg, eg in ivs[g]:
                    s, e = max(sf, sg), min(ef, eg)
                    if s > e:
                        continue
                    vals = [(w(f, s, False) - w(g, s, False), s)]
                    for tt in sorted({te for te, ce, _ in events if ce in (f, g) and s <= te <= e}):
                        vals.append((w(f, tt, True) - w(g, tt, True), tt))
                    hi_v = max(v for v, _ in vals)
                    lo_v = min(v for v, _ in vals)
                    gap = hi_v - lo_v
                    if pair_best is None or gap > pair_best[0]:
                        i_hi = next(i for i, (v, _) in enumerate(vals) if v == hi_v)
                        i_lo = next(i for i, (v, _) in enumerate(vals) if v == lo_v)
                        if i_hi >= i_lo:
                            pair_best = (gap, (f, g), (vals[i_lo][1], vals[i_hi][1]), (s, e), i_lo == 0)
                        else:
                            pair_best = (gap, (g, f), (vals[i_hi][1], vals[i_lo][1]), (s, e), i_hi == 0)
            if pair_best is None:
                continue
            rep.per_pair[(names[f], names[g])] = pair_best[0]
            if best is None or pair_best[0] > best[0]:
                best = pair_best
    if best is not None:
        rep.gap = float(best[0])
        rep.pair = (names[best[1][0]], names[best[1][1]])
        rep.interval = (float(best[2][0]), float(best[2][1]))
        rep.window = (float(best[3][0]), float(best[3][1]))
        rep.left_closed = bool(best[4])
    return rep


# --------------------------------------------------------------------------- Jain
def backlogged_rates(result, min_backlog_frac: float = 0.0) -> dict[str, float]:
    """Client id -> service rate while backlogged [service units / s].

    ``x_i = (service of i at times inside its closed backlog intervals) / (total length
    T_i of those intervals)``. Clients never backlogged, backlogged only for zero time, or
    for less than ``min_backlog_frac`` x makespan in total, are absent.
    """
    names = list(result.clients)
    ivs = {k: v for k, v in _intervals_by_index(result).items() if k < len(names)}
    t, c, a = _svc_arrays(result)
    floor = min_backlog_frac * (makespan_s(result) or 0.0)
    inside = _in_own_backlog(t, c, ivs)
    got = np.bincount(c[inside], weights=a[inside], minlength=len(names))
    out: dict[str, float] = {}
    for i, iv in sorted(ivs.items()):
        length = float((iv[:, 1] - iv[:, 0]).sum())
        if length > 0 and length >= floor:
            out[names[i]] = float(got[i] / length)
    return out


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
    out["total_service"] = float(np.asarray(result.svc_amount, dtype=float).sum())
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
    return out
