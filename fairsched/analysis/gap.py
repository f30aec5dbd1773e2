"""The service gap: the largest difference in service between two clients while both are
backlogged (:func:`max_gap_from_logs`, :func:`max_service_gap`). It is the fairness quantity the
VTC / DLPM bounds speak about (VTC, Sheng et al. OSDI'24, Thm. 4.1; DLPM, Cao et al. arXiv
2501.14312, Thm. 4.2; the proved forms in ``proofs/``). This is its one implementation; the
quadratic reference straight from the definition is :mod:`fairsched.analysis.gap_reference`.

Definition (conventions in :mod:`fairsched.analysis.metrics`): for every pair of clients
``(f, g)`` and every maximal closed interval ``[s, e]`` in which both are backlogged, with
``D(t) = W_f(t) - W_g(t)``::

    gap(f, g, [s, e]) = max_{s <= t1 < t2 <= e} |(W_f(t2) - W_f(t1)) - (W_g(t2) - W_g(t1))|
                      = max(V) - min(V),   V = {D(s^-)} U {D(t) : t a service time in [s, e]}

``W`` is right-continuous and events that share a time stamp are simultaneous; a client's
backlog intervals are closed, touching ones are merged, zero-length ones kept, and a
backlog still open at the end of the logs ends at the last time stamp of the two logs. The
result is the maximum over pairs and windows; ties go to the first pair in client order,
then the earliest window. On a simulator result (:func:`max_service_gap`) the "time
stamps" are positions on the result's *causal axis* (``SimResult.svc_seq`` / ``bl_seq``,
:func:`fairsched.sim.result.causal_order`). Windows and intervals are reported in seconds.

Algorithm (proof: ``proofs/gap_algorithm.md``; service amounts must be >= 0). The gap is the
largest *lead* ``max_{i <= j} (D(j) - D(i))`` of a client ``f`` (the leader) over a client
``g`` in a common window. A lead of ``f`` is at most ``T_r``, f's service inside its own
backlog interval ``r``; so the leader intervals are taken in decreasing ``T_r`` and the pass
stops at the first one with ``T_r`` below the best lead found (branch and bound): with
10^5 clients a handful of leaders are looked at, not the 10^7-10^8 pair windows. For one
leader ``r`` and one interval ``r'`` of ``g`` overlapping it, in their window, ``D`` only
rises at f's service and only falls at g's, so ``min_{i <= j} D(i)`` only changes at g's
service times ``tau_1 < ... < tau_k``; between two of them the best ``j`` is the last point
(``W_f`` is non-decreasing). With ``u_x(t)`` the service of ``x`` in ``[s, t]``::

    lead = max(u_f(tau_1^-), max_m u_f(next_m^-) - u_g(tau_m) - min(0, min_{l <= m} d_l)),
    d_l = u_f(tau_l) - u_g(tau_l),  next_m = tau_{m+1} (or e, inclusive, for m = k)

all computed in numpy over every (leader, overlapping interval) pair of a batch: cost
``O(sum over looked-at pairs of (1 + g's events in the window))`` after an
``O((E + B) log(E + B))`` set-up (E service events, B backlog changes); memory
``O(E + B + chunk)``, whatever the number of clients or how many are backlogged at once.
The number of pair windows (``n_windows``) is counted, not enumerated. ``per_pair`` looks at
every leader (it reports every pair).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from fairsched.analysis.columns import memo

__all__ = ["GapReport", "backlog_interval_arrays", "max_gap_from_logs", "max_service_gap"]


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
            ``g`` in ``result.clients`` order); filled only when asked for.
        n_events: service events read.
        n_windows: pair windows (maximal common backlogs of two clients).
    """

    gap: float = 0.0
    pair: tuple[str, str] | None = None
    interval: tuple[float, float] | None = None
    left_closed: bool = False
    window: tuple[float, float] | None = None
    per_pair: dict[tuple[str, str], float] = field(default_factory=dict)
    n_events: int = 0
    n_windows: int = 0

    def to_frame(self):
        """One row per client pair (``f``, ``g``, ``gap``) from ``per_pair``, largest first;
        without ``per_pair``, the worst pair only."""
        import pandas as pd

        rows = [{"f": f, "g": g, "gap": v} for (f, g), v in self.per_pair.items()] or (
            [{"f": self.pair[0], "g": self.pair[1], "gap": self.gap}] if self.pair else [])
        return pd.DataFrame(rows, columns=["f", "g", "gap"]).sort_values("gap", ascending=False, ignore_index=True)

    to_pandas = to_frame

    def _repr_html_(self) -> str:
        from fairsched.display import html_table

        rows = {"max service gap [service units]": self.gap, "pair (f ahead)": self.pair,
                "interval [s]": self.interval, "window [s]": self.window, "pair windows": self.n_windows}
        return html_table(rows, title="service gap")


def _sorted(t, *cols):
    """``t`` and ``cols`` sorted by ``t`` (stable), copied only if needed."""
    t = np.asarray(t, dtype=float)
    cols = [np.asarray(c) for c in cols]
    if t.size > 1 and np.any(np.diff(t) < 0):
        o = np.argsort(t, kind="stable")
        return (t[o], *[c[o] for c in cols])
    return (t, *cols)


def backlog_interval_arrays(bt, bc, bd, horizon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All clients' merged closed backlog intervals ``(client, start, end)``, sorted by
    (client, start), from a backlog log sorted by time (``bc`` int64, ``bd`` the +-k
    changes of the waiting count; backlogged while the count is > 0). Touching intervals
    of one client are merged, zero-length ones kept, one still open ends at ``horizon``.
    O(B log B) time and memory, whatever the number of clients."""
    z = np.empty(0, dtype=np.int64)
    if not bt.size:
        return z, np.empty(0), np.empty(0)
    order = np.argsort(bc, kind="stable")  # by client, time order kept
    cs, ts, ds = bc[order], bt[order], bd[order]
    first = np.r_[True, cs[1:] != cs[:-1]]
    cum = np.cumsum(ds)
    seg = np.maximum.accumulate(np.where(first, np.arange(cs.size), 0))  # index of the client's first event
    after = cum - (cum - ds)[seg]  # the client's waiting count after each event
    before = after - ds
    sm = (before <= 0) & (after > 0)
    em = (before > 0) & (after <= 0)
    sc, st = cs[sm], ts[sm]
    ec, et = cs[em], ts[em]
    if not st.size:
        return z, np.empty(0), np.empty(0)
    # starts and ends alternate: a client with one more start is still backlogged at the end
    top = int(cs.max()) + 1
    n_open = np.bincount(sc, minlength=top) - np.bincount(ec, minlength=top)
    still = np.r_[sc[1:] != sc[:-1], True] & (n_open[sc] > 0)
    ec = np.r_[ec, sc[still]]
    et = np.r_[et, np.maximum(horizon, st[still])]
    o = np.argsort(ec, kind="stable")  # the closing ends come last within their client
    et = et[o]
    new = np.r_[True, (sc[1:] != sc[:-1]) | (st[1:] > et[:-1])]  # merge touching intervals of one client
    return sc[new], st[new], np.maximum.reduceat(et, np.flatnonzero(new))


def _ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ``arange(lo[k], hi[k])`` and, for each element, its ``k``."""
    n = np.maximum(hi - lo, 0)
    k = np.repeat(np.arange(lo.size), n)
    start = np.r_[0, np.cumsum(n)[:-1]] if n.size else n
    return lo[k] + (np.arange(k.size) - start[k]), k


class _Logs:
    """Set-up shared by every batch: intervals, the in-backlog service table, the overlap index.

    Table rows are the service events that lie in their own client's backlog interval,
    summed per (interval, time stamp) and sorted by (interval, time); ``key`` = interval x
    ``M`` + rank of the time among the table's time stamps, ``Cp`` the prefix sums of amounts.
    """

    def __init__(self, st, sc, sa, bt, bc, bd, horizon):
        self.ic, self.s, self.e = backlog_interval_arrays(bt, bc, bd, horizon)
        ni = self.ic.size
        # interval of each service event (the one of its own client containing it), or -1
        grid = np.unique(np.r_[self.s, self.e])
        m = grid.size + 1
        ikey = self.ic * m + np.searchsorted(grid, self.s, side="right")
        k = np.searchsorted(ikey, sc * m + np.searchsorted(grid, st, side="right"), side="right") - 1
        ok = k >= 0
        ok[ok] = (self.ic[k[ok]] == sc[ok]) & (st[ok] <= self.e[k[ok]])
        iid, t, a = k[ok], st[ok], sa[ok]
        o = np.argsort(iid, kind="stable")  # (interval, time)
        iid, t, a = iid[o], t[o], a[o]
        cut = np.flatnonzero(np.r_[True, (iid[1:] != iid[:-1]) | (t[1:] != t[:-1])]) if iid.size else iid
        self.iid, self.t = iid[cut], t[cut]
        self.a = np.add.reduceat(a, cut) if a.size else a
        self.uniq = np.unique(self.t)
        self.M = self.uniq.size + 1
        self.rank = np.searchsorted(self.uniq, self.t)
        self.key = self.iid * self.M + self.rank
        self.Cp = np.r_[0.0, np.cumsum(self.a)]
        self.T = np.bincount(self.iid, weights=self.a, minlength=ni)  # service inside each interval
        # pair windows: intervals r, q of different clients with s_q <= e_r and e_q >= s_r
        ss, es = np.sort(self.s), np.sort(self.e)
        self.n_over = (np.searchsorted(ss, self.e, side="right") - np.searchsorted(es, self.s, side="left") - 1)
        # overlap index: intervals bucketed by length (powers of two), each bucket sorted by start
        length = self.e - self.s
        b = np.floor(np.log2(length + 1.0)).astype(np.int64) if ni else np.zeros(0, dtype=np.int64)
        self.buckets = []
        for v in np.unique(b).tolist():
            idx = np.flatnonzero(b == v)
            idx = idx[np.argsort(self.s[idx], kind="stable")]
            self.buckets.append((self.s[idx], idx, float(length[idx].max())))

    def pos(self, r: np.ndarray, x: np.ndarray, side: str) -> np.ndarray:
        """Table row of interval ``r``'s first entry at time >= x (``left``) or > x (``right``)."""
        return np.searchsorted(self.key, r * self.M + np.searchsorted(self.uniq, x, side=side))

    def overlapping(self, lead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All ``(leader, other)`` interval pairs with a common point (other != leader)."""
        a, b = self.s[lead], self.e[lead]
        out_l, out_r = [], []
        for starts, idx, span in self.buckets:
            pos, k = _ranges(np.searchsorted(starts, a - span, side="left"), np.searchsorted(starts, b, side="right"))
            q = idx[pos]
            keep = (self.e[q] >= a[k]) & (q != lead[k])
            out_l.append(lead[k[keep]]), out_r.append(q[keep])
        return np.concatenate(out_l), np.concatenate(out_r)

    def leads(self, L: np.ndarray, R: np.ndarray, cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For pairs of overlapping intervals: the most the leader's client got over the
        other's in their window (see the module docstring), and the window ``(s, e)``;
        at most about ``cells`` pairs + service entries at once."""
        s, e = np.maximum(self.s[L], self.s[R]), np.minimum(self.e[L], self.e[R])
        lo, hi = self.pos(R, s, "left"), self.pos(R, e, "right")
        work = np.cumsum(1 + hi - lo)
        out = np.empty(L.size)
        a = 0
        while a < L.size:
            b = max(a + 1, int(np.searchsorted(work, (work[a - 1] if a else 0) + cells, side="right")))
            out[a:b] = self._leads(L[a:b], s[a:b], e[a:b], lo[a:b], hi[a:b])
            a = b
        return out, s, e

    def _leads(self, L, s, e, lo, hi) -> np.ndarray:
        import pandas as pd

        base_f = self.Cp[self.pos(L, s, "left")]
        uf_end = self.Cp[self.pos(L, e, "right")] - base_f
        ev, p = _ranges(lo, hi)  # g's entries in each window, grouped by pair
        lead = uf_end.copy()  # pairs without g service: f's whole service in the window
        if ev.size:
            ug = self.Cp[ev + 1] - self.Cp[lo][p]
            fk = L[p] * self.M + self.rank[ev]
            uf_minus = self.Cp[np.searchsorted(self.key, fk)] - base_f[p]
            d = self.Cp[np.searchsorted(self.key, fk + 1)] - base_f[p] - ug
            cm = np.minimum(pd.Series(d).groupby(p, sort=False).cummin().to_numpy(), 0.0)
            last = np.r_[p[1:] != p[:-1], True]
            end = np.where(last, uf_end[p], np.r_[uf_minus[1:], 0.0])
            first = np.r_[True, last[:-1]]
            lead[p[first]] = uf_minus[first]  # before g's first service in the window
            np.maximum.at(lead, p, end - ug - cm)
        return lead


def max_gap_from_logs(svc_t, svc_client, svc_amount, bl_t, bl_client, bl_delta, names=None, *,
                      n_clients: int | None = None, per_pair: bool = False,
                      chunk_cells: int = 2_000_000) -> GapReport:
    """Largest service gap between two backlogged clients (module docstring: the algorithm).

    Args:
        svc_t, svc_client, svc_amount: service log (times [s], client indices, service
            units >= 0); sorted by time here if needed (stable).
        bl_t, bl_client, bl_delta: backlog log (+1 / -1 changes of a client's waiting
            count, or any +-k whose running sum is the count; a client is backlogged while
            the sum is > 0).
        names: client names by index (default ``str(index)``).
        n_clients: number of clients (default: from ``names`` or the largest index + 1).
        per_pair: also return ``{(f, g): gap}`` for every pair with a common window.
        chunk_cells: most interval pairs looked at in one numpy batch (memory knob).
    Returns:
        :class:`GapReport` (same numbers as the reference
        :func:`fairsched.analysis.gap_reference.naive_max_gap`).
    Raises:
        ValueError: a negative client index or service amount.
    """
    st, sc, sa = _sorted(svc_t, np.asarray(svc_client, dtype=np.int64), np.asarray(svc_amount, dtype=float))
    bt, bc, bd = _sorted(bl_t, np.asarray(bl_client, dtype=np.int64), np.asarray(bl_delta, dtype=np.int64))
    n = n_clients if n_clients is not None else (len(names) if names is not None else 0)
    for arr in (sc, bc):
        if arr.size:
            n = max(n, int(arr.max()) + 1)
            if int(arr.min()) < 0:
                raise ValueError("client indices must be >= 0")
    if sa.size and float(sa.min()) < 0:
        raise ValueError("service amounts must be >= 0")
    names = list(names) if names is not None else [str(i) for i in range(n)]
    names += [str(i) for i in range(len(names), n)]
    horizon = max(float(st[-1]) if st.size else 0.0, float(bt[-1]) if bt.size else 0.0)
    lg = _Logs(st, sc, sa, bt, bc, bd, horizon)
    res = GapReport(n_events=int(st.size), n_windows=int(lg.n_over.sum()) // 2)
    if not res.n_windows:
        return res
    # leaders by decreasing T (ties: any order), batched by the number of pairs they bring
    order = np.argsort(-lg.T, kind="stable")
    work = np.cumsum(np.maximum(lg.n_over[order], 1))
    best, key, pp = -np.inf, None, []
    i, budget = 0, 1024  # batches grow: the first leaders usually settle the bound
    while i < order.size:
        if not per_pair and lg.T[order[i]] < best:
            break  # no later leader can lead by more than its own T (module docstring)
        j = max(i + 1, int(np.searchsorted(work, (work[i - 1] if i else 0) + budget, side="right")))
        budget = min(2 * budget, max(chunk_cells // 4, 1))
        lead_ids = order[i:j]
        if not per_pair:
            lead_ids = lead_ids[lg.T[lead_ids] >= best]
        i = j
        L, R = lg.overlapping(lead_ids)
        if not L.size:
            continue
        v, s, e = lg.leads(L, R, chunk_cells)
        cf, cg = lg.ic[L], lg.ic[R]
        lo, hi = np.minimum(cf, cg), np.maximum(cf, cg)
        if per_pair:
            pp.append((lo * n + hi, v))
        top = float(v.max())
        if top < best:
            continue
        w = np.flatnonzero(v == top)
        k = w[np.lexsort((s[w], hi[w], lo[w]))[0]]  # ties: smaller pair, then earlier window
        cand = (int(lo[k]), int(hi[k]), float(s[k]))
        if top > best or cand < key[0]:
            best, key = top, (cand, float(e[k]))
    if per_pair and pp:
        kk, vv = np.concatenate([x[0] for x in pp]), np.concatenate([x[1] for x in pp])
        o = np.lexsort((-vv, kk))
        kk, vv = kk[o], vv[o]
        firsts = np.r_[True, kk[1:] != kk[:-1]]
        res.per_pair = {(names[q // n], names[q % n]): float(g)
                        for q, g in zip(kk[firsts].tolist(), vv[firsts].tolist(), strict=True)}
    (f, g, s), e = key
    res.gap = best
    res.window = (s, e)
    _witness(res, st, sc, sa, f, g, s, e, names)
    return res


def _witness(res: GapReport, st, sc, sa, f: int, g: int, s: float, e: float, names) -> None:
    """Fill ``pair``, ``interval``, ``left_closed`` of the best window: f is the client ahead over ``interval``."""
    mf, mg = sc == f, sc == g
    before = st < s
    d0 = float(sa[mf & before].sum() - sa[mg & before].sum())
    inside = (st >= s) & (st <= e) & (mf | mg)
    tt = st[inside]
    amt = np.where(sc[inside] == f, sa[inside], -sa[inside])
    if tt.size:
        D = d0 + np.cumsum(amt)
        last = np.r_[tt[1:] != tt[:-1], True]
        vals = np.r_[d0, D[last]]
        times = np.r_[s, tt[last]]
    else:
        vals, times = np.array([d0]), np.array([s])
    imax, imin = int(np.argmax(vals)), int(np.argmin(vals))
    if imax >= imin:
        res.pair = (names[f], names[g])
        res.interval = (float(times[imin]), float(times[imax]))
        res.left_closed = imin == 0
    else:
        res.pair = (names[g], names[f])
        res.interval = (float(times[imax]), float(times[imin]))
        res.left_closed = imax == 0


def max_service_gap(result, per_pair: bool = True) -> GapReport:
    """:func:`max_gap_from_logs` on a run's own logs (the cluster-wide backlog: a client is
    backlogged while it waits anywhere), on the result's causal axis (``svc_seq`` /
    ``bl_seq``) when it has one; ``window`` and ``interval`` in seconds.

    Args:
        result: a :class:`~fairsched.sim.result.SimResult` (or anything with its ``svc_*``,
            ``bl_*`` and ``clients``; hand-built logs without ``svc_seq`` are used on their
            own time stamps).
        per_pair: also fill ``GapReport.per_pair`` (one entry per pair of clients ever
            backlogged together; can be large with thousands of clients).
    """
    def compute() -> GapReport:
        names = list(result.clients)
        if getattr(result, "svc_seq", None) is not None and getattr(result, "bl_seq", None) is not None:
            g = max_gap_from_logs(result.svc_seq, result.svc_client, result.svc_amount, result.bl_seq,
                                  result.bl_client, result.bl_delta, names=names, per_pair=per_pair)
            return in_seconds(g, result.seq_t)
        return max_gap_from_logs(result.svc_t, result.svc_client, result.svc_amount, result.bl_t, result.bl_client,
                                 result.bl_delta, names=names, per_pair=per_pair)

    if getattr(result, "svc_seq", None) is None:  # not a finalized SimResult: its logs may still grow
        return compute()
    inputs = (result.svc_amount, len(result.svc_amount), result.svc_seq, getattr(result, "bl_seq", None),
              bool(per_pair))
    return copy.deepcopy(memo(result, "gap", inputs, compute))  # the caller may edit its report


def in_seconds(g: GapReport, seq_t) -> GapReport:
    """Map ``window`` and ``interval`` from causal positions to seconds."""
    def f(x):
        return float(seq_t[int(round(x))])

    if g.window is not None:
        g.window = (f(g.window[0]), f(g.window[1]))
    if g.interval is not None:
        g.interval = (f(g.interval[0]), f(g.interval[1]))
    return g
