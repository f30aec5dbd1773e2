"""The service gap: the largest difference in service between two clients while both are
backlogged, computed in one streaming pass (:func:`stream_max_gap`) over a run's service
and backlog logs. It is the fairness quantity the VTC / DLPM bounds speak about (VTC,
Sheng et al. OSDI'24, Thm. 4.1; DLPM, Cao et al. arXiv 2501.14312, Thm. 4.2; the proved
forms in ``proofs/``). This is its one implementation; the quadratic reference straight
from the definition is :mod:`fairsched.analysis.gap_reference` (tests, benchmarks).

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
stamps" are positions on the result's *causal axis* (``SimResult.svc_seq`` / ``bl_seq``:
time, then order of logging, :func:`fairsched.sim.result.causal_order`): a client's last
admission ends its backlog right after that admission's charge, and what follows at the
same instant (a refill, another client's admission) is outside the window. Windows and
intervals are reported in seconds.

Algorithm: between two backlog changes the set ``A`` of backlogged clients is fixed; for
every ordered pair of ``A`` the pass keeps the running max and min of ``D`` since the pair's
window opened (two ``|A| x |A|`` matrices). Only a service event of ``f`` changes ``D_fg``,
so the values of ``D_fg`` over a window are ``D(s^-)`` and its values at the times ``f`` or
``g`` is served: a segment of events is processed in numpy as a (distinct times x ``|A|``)
matrix of cumulative service from which, for each served client, the max / min of
``W_f - W_g`` against every other client is folded into its matrix row (``ufunc.at``).
Service of a client that is not backlogged only moves its ``W`` (one add). Cost
``O(E |A| + B |A|)`` for E service events and B backlog changes; memory
``O(n_clients + |A|^2 + chunk)``.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field

import numpy as np

__all__ = ["GapReport", "max_service_gap", "stream_max_gap"]


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
        n_windows: pair windows (maximal common backlogs of two clients) closed.
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


class _Stream:
    """State of :func:`stream_max_gap` (see the module docstring).

    Backlogged clients own a slot of the ``cap x cap`` matrices ``MX`` / ``MN``: for slots
    ``(p, q)`` of clients ``(f, g)``, the max / min of ``W_f - W_g`` over the times ``f``
    was served since the pair's window opened (and ``D(s^-)`` at the opening). Entries of
    free slots are garbage and are overwritten when a window opens.
    """

    def __init__(self, n: int, chunk_cells: int):
        self.n = n
        self.W = np.zeros(n)
        self.col = np.full(n, -1, dtype=np.int64)  # client -> slot (or -1)
        cap = 8
        self.owner = np.full(cap, -1, dtype=np.int64)  # slot -> client (or -1)
        self.free: list[int] = list(range(cap - 1, -1, -1))
        self.MX = np.zeros((cap, cap))
        self.MN = np.zeros((cap, cap))
        self.start = np.zeros(n)
        self.n_active = 0
        self.chunk_cells = chunk_cells
        self.best: tuple | None = None  # (gap, (i, j) with i < j, (s, e))
        self.per_pair: dict[tuple[int, int], float] | None = None
        self.n_windows = 0

    def _grow(self) -> None:
        old = self.MX.shape[0]
        cap = 2 * old
        for name in ("MX", "MN"):
            new = np.zeros((cap, cap))
            new[:old, :old] = getattr(self, name)
            setattr(self, name, new)
        self.owner = np.r_[self.owner, np.full(old, -1, dtype=np.int64)]
        self.free.extend(range(cap - 1, old - 1, -1))

    def _slots(self) -> np.ndarray:
        return np.flatnonzero(self.owner >= 0)

    # -- service ---------------------------------------------------------------
    def segment(self, t: np.ndarray, c: np.ndarray, a: np.ndarray) -> None:
        """Apply service events (time-ordered) with the current backlogged set."""
        if not t.size:
            return
        if self.n_active >= 2:
            s = self.col[c]
            m = s >= 0
            if m.any():
                self._pairs(t[m], s[m], a[m])
        np.add.at(self.W, c, a)

    def _pairs(self, t: np.ndarray, s: np.ndarray, a: np.ndarray) -> None:
        cap = self.owner.size
        newrow = np.empty(t.size, dtype=bool)
        newrow[0] = True
        np.not_equal(t[1:], t[:-1], out=newrow[1:])
        r = np.cumsum(newrow) - 1
        R = int(r[-1]) + 1
        Wcur = self.W[np.maximum(self.owner, 0)]
        per = max(1, self.chunk_cells // cap)
        lo = 0
        for r0 in range(0, R, per):
            r1 = min(R, r0 + per)
            hi = t.size if r1 == R else int(np.searchsorted(r, r1, side="left"))
            rr, ss = r[lo:hi] - r0, s[lo:hi]
            inc = np.zeros((r1 - r0, cap))
            np.add.at(inc, (rr, ss), a[lo:hi])
            Wm = np.cumsum(inc, axis=0)
            Wm += Wcur
            E = Wm[rr, ss][:, None] - Wm[rr]
            np.maximum.at(self.MX, ss, E)
            np.minimum.at(self.MN, ss, E)
            Wcur = Wm[-1]
            lo = hi

    # -- windows ---------------------------------------------------------------
    def open(self, starters: list[int], now: float) -> None:
        for c in starters:
            if not self.free:
                self._grow()
            p = self.free.pop()
            self.owner[p] = c
            self.col[c] = p
            self.start[c] = now
        self.n_active += len(starters)
        if self.n_active < 2:
            return
        S = self._slots()
        Wa = self.W[self.owner[S]]
        rows = self.col[np.asarray(starters, dtype=np.int64)]
        d = self.W[self.owner[rows]][:, None] - Wa[None, :]
        self.MX[rows[:, None], S] = d
        self.MN[rows[:, None], S] = d
        self.MX[S[:, None], rows] = -d.T
        self.MN[S[:, None], rows] = -d.T

    def close(self, enders: list[int], now: float) -> None:
        if self.n_active >= 2:
            S = self._slots()
            alive = np.ones(S.size, dtype=bool)
            for e in enders:
                pe = self.col[e]
                alive &= S != pe
                So = S[alive]
                if not So.size:
                    continue
                other = self.owner[So]
                gaps = (np.maximum(self.MX[pe, So], -self.MN[So, pe])
                        - np.minimum(self.MN[pe, So], -self.MX[So, pe]))
                self.n_windows += other.size
                if self.per_pair is not None:
                    for g, j in zip(gaps.tolist(), other.tolist(), strict=True):
                        key = (e, j) if e < j else (j, e)
                        if g > self.per_pair.get(key, -1.0):
                            self.per_pair[key] = g
                top = float(gaps.max())
                if self.best is not None and top < self.best[0]:
                    continue
                # ties: smaller pair (client index order), then earlier window
                cand = [(min(e, int(j)), max(e, int(j)), float(max(self.start[e], self.start[j])))
                        for j in other[gaps == top].tolist()]
                i0, j0, ws = min(cand)
                self._offer(top, (i0, j0), (ws, now))
        for e in enders:
            p = self.col[e]
            self.owner[p] = -1
            self.col[e] = -1
            self.free.append(int(p))
        self.n_active -= len(enders)

    def _offer(self, gap: float, pair: tuple[int, int], window: tuple[float, float]) -> None:
        b = self.best
        if b is None or gap > b[0] or (gap == b[0] and (pair, window[0]) < (b[1], b[2][0])):
            self.best = (gap, pair, window)

    def active_clients(self) -> list[int]:
        return self.owner[self._slots()].tolist()


def stream_max_gap(svc_t, svc_client, svc_amount, bl_t, bl_client, bl_delta, names=None, *,
                   n_clients: int | None = None, per_pair: bool = False,
                   chunk_cells: int = 2_000_000) -> GapReport:
    """Largest service gap between two backlogged clients, in one streaming pass.

    Args:
        svc_t, svc_client, svc_amount: service log (times [s], client indices, service
            units); sorted by time here if needed (stable).
        bl_t, bl_client, bl_delta: backlog log (+1 / -1 changes of a client's waiting
            count, or any +-k whose running sum is the count; a client is backlogged while
            the sum is > 0).
        names: client names by index (default ``str(index)``).
        n_clients: number of clients (default: from ``names`` or the largest index + 1).
        per_pair: also return ``{(f, g): gap}`` for every pair with a common window.
        chunk_cells: most matrix cells held per processing chunk (memory knob).
    Returns:
        :class:`GapReport` (same numbers as the reference
        :func:`fairsched.analysis.gap_reference.naive_max_gap`).
    """
    st, sc, sa = _sorted(svc_t, np.asarray(svc_client, dtype=np.int64), np.asarray(svc_amount, dtype=float))
    bt, bc, bd = _sorted(bl_t, np.asarray(bl_client, dtype=np.int64), np.asarray(bl_delta, dtype=np.int64))
    n = n_clients if n_clients is not None else (len(names) if names is not None else 0)
    for arr in (sc, bc):
        if arr.size:
            n = max(n, int(arr.max()) + 1)
            if int(arr.min()) < 0:
                raise ValueError("client indices must be >= 0")
    names = list(names) if names is not None else [str(i) for i in range(n)]
    names += [str(i) for i in range(len(names), n)]
    horizon = max(float(st[-1]) if st.size else 0.0, float(bt[-1]) if bt.size else 0.0)
    S = _Stream(n, chunk_cells)
    if per_pair:
        S.per_pair = {}
    level = [0] * n  # each client's waiting count (Python lists: one item at a time)
    active = [False] * n
    p = 0
    if bt.size:
        cuts = np.flatnonzero(np.r_[True, bt[1:] != bt[:-1]])
        ends = np.r_[cuts[1:], bt.size].tolist()
        times = bt[cuts]
        q_left = np.searchsorted(st, times, side="left").tolist()  # service before each instant
        q_right = np.searchsorted(st, times, side="right").tolist()  # ... and at it
        bcl, bdl = bc.tolist(), bd.tolist()
        for g, (lo, T) in enumerate(zip(cuts.tolist(), times.tolist(), strict=True)):
            hi = ends[g]
            q = q_left[g]
            if q > p:
                S.segment(st[p:q], sc[p:q], sa[p:q])
                p = q
            started: list[int] = []
            touched: list[int] = []
            for c, d in zip(bcl[lo:hi], bdl[lo:hi], strict=True):
                before = level[c]
                level[c] = before + d
                if before <= 0 < before + d and not active[c]:
                    started.append(c)
                touched.append(c)
            starters = list(dict.fromkeys(started))
            if starters:
                S.open(starters, T)
                for c in starters:
                    active[c] = True
            q = q_right[g]
            if q > p:
                S.segment(st[p:q], sc[p:q], sa[p:q])
                p = q
            enders = [c for c in dict.fromkeys(touched) if active[c] and level[c] <= 0]
            if enders:
                S.close(enders, T)
                for c in enders:
                    active[c] = False
    if p < st.size:
        S.segment(st[p:], sc[p:], sa[p:])
    rest = S.active_clients()
    if rest:
        S.close(rest, horizon)
    res = GapReport(n_events=int(st.size), n_windows=S.n_windows)
    if S.per_pair is not None:
        res.per_pair = {(names[i], names[j]): g for (i, j), g in sorted(S.per_pair.items())}
    if S.best is not None:
        gap, (i, j), (s, e) = S.best
        res.gap = gap
        res.window = (s, e)
        _witness(res, st, sc, sa, i, j, s, e, names)
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
    """:func:`stream_max_gap` on a run's own logs (the cluster-wide backlog: a client is
    backlogged while it waits anywhere), on the result's causal axis (``svc_seq`` /
    ``bl_seq``) when it has one; ``window`` and ``interval`` in seconds.

    Args:
        result: a :class:`~fairsched.sim.result.SimResult` (or anything with its ``svc_*``,
            ``bl_*`` and ``clients``; hand-built logs without ``svc_seq`` are used on their
            own time stamps).
        per_pair: also fill ``GapReport.per_pair`` (one entry per pair of clients ever
            backlogged together; can be large with thousands of clients).
    """
    key = (id(result.svc_amount), len(result.svc_amount), id(getattr(result, "svc_seq", None)),
           id(getattr(result, "bl_seq", None)), bool(per_pair))
    cache = getattr(result, "_gap_cache", None)  # (key, report) of the last call on these logs
    if cache is not None and cache[0] == key:
        return copy.deepcopy(cache[1])
    names = list(result.clients)
    if getattr(result, "svc_seq", None) is not None and getattr(result, "bl_seq", None) is not None:
        g = stream_max_gap(result.svc_seq, result.svc_client, result.svc_amount, result.bl_seq, result.bl_client,
                           result.bl_delta, names=names, per_pair=per_pair)
        g = in_seconds(g, result.seq_t)
    else:
        g = stream_max_gap(result.svc_t, result.svc_client, result.svc_amount, result.bl_t, result.bl_client,
                           result.bl_delta, names=names, per_pair=per_pair)
    if getattr(result, "svc_seq", None) is not None:  # a finalized SimResult: remember it (summary, then check)
        with contextlib.suppress(AttributeError):
            result._gap_cache = (key, copy.deepcopy(g))
    return g


def in_seconds(g: GapReport, seq_t) -> GapReport:
    """Map ``window`` and ``interval`` from causal positions to seconds."""
    def f(x):
        return float(seq_t[int(round(x))])

    if g.window is not None:
        g.window = (f(g.window[0]), f(g.window[1]))
    if g.interval is not None:
        g.interval = (f(g.interval[0]), f(g.interval[1]))
    return g
