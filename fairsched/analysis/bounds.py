"""Streaming check of fairness bounds on a run's service log.

The measured quantity is the one of :func:`fairsched.analysis.metrics.max_service_gap`
(same conventions, same numbers; ``tests/test_bounds.py`` checks it): for every pair of
clients ``(f, g)`` and every maximal closed interval ``[s, e]`` in which both are
backlogged, with ``D(t) = W_f(t) - W_g(t)``::

    gap(f, g, [s, e]) = max(V) - min(V),   V = {D(s^-)} U {D(t) : t a service time in [s, e]}

Conventions (see the metrics module docstring): ``W`` is right-continuous and events that
share a time stamp are simultaneous; a client's backlog intervals are closed, touching
ones are merged, zero-length ones kept, and a backlog still open at the end of the logs
ends at the last time stamp of the two logs. On a simulator result the "time stamps" are
positions on the result's *causal axis* (``SimResult.svc_seq`` / ``bl_seq``: time, then
order of logging), as in ``max_service_gap``: a client's last admission ends its backlog
right after that admission's charge, and what follows at the same instant (a refill,
another client's admission) is outside the window. Windows and intervals are reported in
seconds. Per-instance checks use the same construction on an axis of their own
(:class:`~fairsched.sim.recorder.InstanceRecorder`).

:func:`stream_max_gap` is a single pass over the time-ordered logs. Between two backlog
changes the set ``A`` of backlogged clients is fixed; for every ordered pair of ``A`` it
keeps the running max and min of ``D`` since the pair's window opened (two ``|A| x |A|``
matrices). Only a service event of ``f`` changes ``D_fg``, so the values of ``D_fg`` over a
window are ``D(s^-)`` and its values at the times ``f`` or ``g`` is served: a segment of
events is processed in numpy as a (distinct times x ``|A|``) matrix of cumulative service
from which, for each served client, the max / min of ``W_f - W_g`` against every other
client is folded into its matrix row (``ufunc.at``). Cost ``O(E |A| + B |A|)`` for E service events and B backlog
changes; memory ``O(|A|^2 + chunk)``, independent of the number of clients ever seen.
:func:`naive_max_gap` is the quadratic reference straight from the definition.

On top of the gap, :func:`check_run` compares a run with the bounds of
:mod:`fairsched.theory.fairness` that apply to its policy (``proofs/README.md``):

- VTC (watermark lift): proved ``2X``; published ``2U`` with VTC's own ``U = max(w_p L_in,
  w_q M)``, M the instance's KV token capacity (``result.meta["kv_capacity_tokens"]``):
  proved under reserve admission when ``w_p <= w_q`` or ``L_in >= M`` (``proofs/admission.md``),
  a claim under peak admission (``result.meta["admission"] == "peak"``), where it is refuted.
- DLPM: proved ``2(Q^u + X)``; published ``2(U + Q^u)``, same status as VTC's ``2U``.
- several instances: each instance's queue policy is checked on its own service and
  its own queue's backlog (the single-instance theorem applies per worker); clients
  backlogged at *every* worker: ``sum_k`` of the per-worker bounds (``proofs/d2lpm_bound.md``
  Theorem A; same argument for VTC); clients backlogged *somewhere*: no bound is known
  (D2LPM's natural candidate ``2K(Q^u + Q^w + X)`` is refuted), the gap is reported.
- FCFS, LPM, LCF: no bound (LCF: the lift counterexample); the gap is reported.

``X`` is measured from the run (max over admissions of the prefill charge plus the
client's outstanding decode charge right after it, per instance) and also bounded by
``w_p L_in + k w_q O_max`` (O_max the longest output) with ``k`` the most requests of one client running at once on one
instance, read from ``admit_t`` / ``finish_t``. Both bounds are reported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace

import numpy as np

from fairsched.analysis.metrics import GapReport

__all__ = [
    "GapResult",
    "Verdict",
    "check_run",
    "concurrency_k",
    "fig_gap_vs_bound",
    "verdict_frame",
    "everywhere_backlog_log",
    "gap_of_result",
    "instance_backlog_log",
    "measured_X",
    "naive_max_gap",
    "simulate_for_check",
    "stream_max_gap",
    "synthetic_log",
]

STATUS_HOLDS = "holds"
STATUS_VIOLATED = "VIOLATED"
STATUS_PUBLISHED_VIOLATED = "published claim violated"
STATUS_CANDIDATE_VIOLATED = "refuted candidate exceeded"
STATUS_NO_BOUND = "no bound"
STATUS_NA = "not applicable"
STATUS_VACUOUS = "holds (vacuous)"


# ============================================================================ gap
@dataclass
class GapResult(GapReport):
    """:class:`~fairsched.analysis.metrics.GapReport` (gap, pair, interval, left_closed,
    window, per_pair; ``per_pair`` filled only when asked for) plus the streaming checker's
    counters: ``n_events`` service events read, ``n_windows`` pair windows closed."""

    n_events: int = 0
    n_windows: int = 0


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
                # ties: smaller pair (client index order), then earlier window (metrics' choice)
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
                   chunk_cells: int = 2_000_000) -> GapResult:
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
        :class:`GapResult` (same numbers as :func:`fairsched.analysis.metrics.max_service_gap`).
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
    level = np.zeros(n, dtype=np.int64)
    active = np.zeros(n, dtype=bool)
    p = 0
    if bt.size:
        cuts = np.flatnonzero(np.r_[True, bt[1:] != bt[:-1]])
        ends = np.r_[cuts[1:], bt.size]
        lv = level
        for lo, hi in zip(cuts.tolist(), ends.tolist(), strict=True):
            T = float(bt[lo])
            q = int(np.searchsorted(st, T, side="left"))
            if q > p:
                S.segment(st[p:q], sc[p:q], sa[p:q])
                p = q
            started: list[int] = []
            touched: list[int] = []
            for c, d in zip(bc[lo:hi].tolist(), bd[lo:hi].tolist(), strict=True):
                before = int(lv[c])
                lv[c] = before + d
                if before <= 0 < before + d and not active[c]:
                    started.append(c)
                touched.append(c)
            starters = list(dict.fromkeys(started))
            if starters:
                S.open(starters, T)
                active[starters] = True
            q = int(np.searchsorted(st, T, side="right"))
            if q > p:
                S.segment(st[p:q], sc[p:q], sa[p:q])
                p = q
            enders = [c for c in dict.fromkeys(touched) if active[c] and lv[c] <= 0]
            if enders:
                S.close(enders, T)
                active[enders] = False
    if p < st.size:
        S.segment(st[p:], sc[p:], sa[p:])
    rest = S.active_clients()
    if rest:
        S.close(rest, horizon)
    res = GapResult(n_events=int(st.size), n_windows=S.n_windows)
    if S.per_pair is not None:
        res.per_pair = {(names[i], names[j]): g for (i, j), g in sorted(S.per_pair.items())}
    if S.best is not None:
        gap, (i, j), (s, e) = S.best
        res.gap = gap
        res.window = (s, e)
        _witness(res, st, sc, sa, i, j, s, e, names)
    return res


def _witness(res: GapResult, st, sc, sa, f: int, g: int, s: float, e: float, names) -> None:
    """Fill ``pair``, ``interval``, ``left_closed`` of the best window (metrics' rule)."""
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


def naive_max_gap(svc_t, svc_client, svc_amount, bl_t, bl_client, bl_delta, names=None) -> GapResult:
    """Quadratic reference of :func:`stream_max_gap` (for tests and the benchmark): the
    direct summation of :func:`fairsched.analysis.metrics.max_service_gap_naive` on these
    columns, as a :class:`GapResult` (``n_windows`` counted from the same intervals)."""
    from fairsched.analysis.metrics import _intervals_by_index, _windows, max_service_gap_naive

    c, bc = np.asarray(svc_client, dtype=np.int64), np.asarray(bl_client, dtype=np.int64)
    n = int(max(c.max(initial=-1), bc.max(initial=-1), len(names or []) - 1)) + 1
    names = list(names or []) + [str(i) for i in range(len(names or []), n)]
    view = SimpleNamespace(svc_t=np.asarray(svc_t, dtype=float), svc_client=c,
                           svc_amount=np.asarray(svc_amount, dtype=float), bl_t=np.asarray(bl_t, dtype=float),
                           bl_client=bc, bl_delta=np.asarray(bl_delta, dtype=np.int64), clients=names)
    rep = max_service_gap_naive(view)
    return GapResult(gap=rep.gap, pair=rep.pair, interval=rep.interval, left_closed=rep.left_closed,
                     window=rep.window, per_pair=dict(sorted(rep.per_pair.items())), n_events=c.size,
                     n_windows=len(_windows(_intervals_by_index(view))[0]))


def gap_of_result(result, *, per_pair: bool = False) -> GapResult:
    """:func:`stream_max_gap` on a :class:`~fairsched.sim.result.SimResult`'s own logs
    (the cluster-wide backlog: a client is backlogged while it waits anywhere), on the
    result's causal axis (``svc_seq`` / ``bl_seq``) when it has one, exactly as
    :func:`fairsched.analysis.metrics.max_service_gap`; window and interval in seconds."""
    if getattr(result, "svc_seq", None) is not None and getattr(result, "bl_seq", None) is not None:
        g = stream_max_gap(result.svc_seq, result.svc_client, result.svc_amount, result.bl_seq, result.bl_client,
                           result.bl_delta, names=list(result.clients), per_pair=per_pair)
        return _in_seconds(g, result.seq_t)
    return stream_max_gap(result.svc_t, result.svc_client, result.svc_amount, result.bl_t, result.bl_client,
                          result.bl_delta, names=list(result.clients), per_pair=per_pair)


def synthetic_log(n_events: int = 1_000_000, n_clients: int = 64, *, seed: int = 0, step_s: float = 0.02,
                  per_step: int = 16, mean_toggle_steps: float = 120.0):
    """A random service log and backlog log shaped like a simulator's, for benchmarks.

    Service arrives in steps of ``step_s`` seconds: each step serves ``per_step`` (on
    average) random clients, mostly one decode token (``w_q = 2`` units), sometimes a
    prefill charge (1-4096 units); several events share a time stamp. Each client's
    backlog toggles on / off after geometric numbers of steps (mean
    ``mean_toggle_steps``), on step times, with occasional zero-length backlogs.

    Returns ``(svc_t, svc_client, svc_amount, bl_t, bl_client, bl_delta)`` as numpy arrays.
    """
    rng = np.random.default_rng(seed)
    n_steps = max(1, n_events // per_step)
    step = np.sort(rng.integers(0, n_steps, n_events))
    t = step * step_s
    c = rng.integers(0, n_clients, n_events)
    a = np.where(rng.random(n_events) < 0.05, rng.integers(1, 4097, n_events).astype(float), 2.0)
    bt, bc, bd = [], [], []
    for k in range(n_clients):
        gaps = rng.geometric(1.0 / mean_toggle_steps, size=int(2 * n_steps / mean_toggle_steps) + 4)
        pts = np.cumsum(gaps)
        pts = pts[pts < n_steps]
        if rng.random() < 0.5:
            pts = np.r_[0, pts]
        d = np.where(np.arange(pts.size) % 2 == 0, 1, -1)
        zero = (rng.random(pts.size) < 0.02) & (d == -1)  # a zero-length backlog while idle
        ts = np.r_[pts, pts[zero], pts[zero]] * step_s
        ds = np.r_[d, np.ones(int(zero.sum()), dtype=np.int64), -np.ones(int(zero.sum()), dtype=np.int64)]
        bt.append(ts), bc.append(np.full(ts.size, k)), bd.append(ds)
    bt, bc, bd = np.concatenate(bt), np.concatenate(bc), np.concatenate(bd)
    o = np.lexsort((-bd, bt))
    return t, c, a, bt[o], bc[o], bd[o]


# ============================================================================ per-instance logs
def simulate_for_check(workload, policy="fcfs", router=None, n_instances: int = 1, instance=None, cost=None,
                       weights=None, progress=None):
    """:func:`fairsched.sim.simulate` with an :class:`~fairsched.sim.recorder.InstanceRecorder`:
    the result also has the instance of every service event (``result.svc_instance``) and
    each instance's own backlog log, so each worker's service can be checked on its own."""
    from fairsched.sim import simulate
    from fairsched.sim.recorder import InstanceRecorder

    return simulate(workload, policy, router, n_instances, instance, cost, weights, progress=progress,
                    recorders=(InstanceRecorder(),))


def _request_arrays(result):
    wl = result.workload
    n = len(wl)
    arr = np.fromiter((r.arrival for r in wl), dtype=float, count=n)
    cidx = {c: i for i, c in enumerate(result.clients)}
    cl = np.fromiter((cidx[r.client] for r in wl), dtype=np.int64, count=n)
    inp = np.fromiter((r.input_len for r in wl), dtype=float, count=n)
    out = np.fromiter((r.output_len for r in wl), dtype=float, count=n)
    return arr, cl, inp, out


def _instrumented(result) -> bool:
    return getattr(result, "ibl_seq", None) is not None


def instance_backlog_log(result, instance: int):
    """Backlog log of one instance's queue ``(position, client, delta)`` on the
    per-instance causal axis (``result.inst_seq_t[position]`` is its time). Needs a result
    of :func:`simulate_for_check`."""
    m = result.ibl_instance == instance
    o = np.argsort(result.ibl_seq[m], kind="stable")
    return result.ibl_seq[m][o], result.ibl_client[m][o], result.ibl_delta[m][o]


def everywhere_backlog_log(result):
    """Backlog log of "waiting at every instance" ``(position, client, delta)`` on the
    per-instance causal axis: a client counts as backlogged while each of the
    ``n_instances`` queues holds one of its requests (Theorem A's condition). Needs a result
    of :func:`simulate_for_check`."""
    K = int(result.n_instances)
    o = np.argsort(result.ibl_seq, kind="stable")
    cnt: dict[int, int] = {}
    out_t, out_c, out_d = [], [], []
    for tt, cc, dd in zip(result.ibl_seq[o].tolist(), result.ibl_client[o].tolist(), result.ibl_delta[o].tolist(),
                          strict=True):
        k = cnt.get(cc, 0)
        cnt[cc] = k + dd
        if dd > 0 and k + 1 == K:
            out_t.append(tt), out_c.append(cc), out_d.append(1)
        elif dd < 0 and k == K:
            out_t.append(tt), out_c.append(cc), out_d.append(-1)
    return np.asarray(out_t, dtype=float), np.asarray(out_c, dtype=np.int64), np.asarray(out_d, dtype=np.int64)


def _in_seconds(g: GapResult, seq_t) -> GapResult:
    """Map ``window`` and ``interval`` from causal positions to seconds."""
    def f(x):
        return float(seq_t[int(round(x))])

    if g.window is not None:
        g.window = (f(g.window[0]), f(g.window[1]))
    if g.interval is not None:
        g.interval = (f(g.interval[0]), f(g.interval[1]))
    return g


def _instance_service(result, j: int, causal: bool = False):
    """Service log of instance ``j`` ``(t, client, amount)`` sorted by time (stable); with
    ``causal``, ``t`` is the position on the per-instance causal axis instead."""
    t = np.asarray(result.inst_svc_seq if causal else result.svc_t, dtype=float)
    c = np.asarray(result.svc_client, dtype=np.int64)
    a = np.asarray(result.svc_amount, dtype=float)
    if getattr(result, "svc_instance", None) is not None:
        m = np.asarray(result.svc_instance, dtype=np.int64) == j
        t, c, a = t[m], c[m], a[m]
    return _sorted(t, c, a)


def concurrency_k(result) -> dict[int, int]:
    """Instance -> the most requests of one client running at once on it (``k``).

    A request runs on ``[admit_t, finish_t)``; at equal times finishes come first (the
    simulator frees a request before the next admission), so back-to-back requests do not
    overlap."""
    _, cl, _, _ = _request_arrays(result)
    adm = np.asarray(result.admit_t, dtype=float)
    fin = np.asarray(result.finish_t, dtype=float)
    inst = np.asarray(result.instance, dtype=np.int64)
    ok = np.isfinite(adm)
    horizon = float(np.nanmax(np.r_[fin[np.isfinite(fin)], adm[ok], 0.0]))
    fin = np.where(np.isfinite(fin), fin, horizon + 1.0)
    out: dict[int, int] = {j: 0 for j in range(int(result.n_instances))}
    if not ok.any():
        return out
    key = cl[ok] * int(result.n_instances) + inst[ok]
    t = np.r_[adm[ok], fin[ok]]
    k2 = np.r_[key, key]
    d = np.r_[np.ones(int(ok.sum()), dtype=np.int64), -np.ones(int(ok.sum()), dtype=np.int64)]
    o = np.lexsort((d, t, k2))  # by group, then time, finishes (-1) before admissions
    k2, d = k2[o], d[o]
    cuts = np.flatnonzero(np.r_[True, k2[1:] != k2[:-1]])
    run = np.cumsum(d)
    base = np.r_[0, run[cuts[1:] - 1]]
    seg = np.repeat(base, np.diff(np.r_[cuts, k2.size]))
    level = run - seg
    gmax = np.maximum.reduceat(level, cuts)
    for g, v in zip(k2[cuts].tolist(), gmax.tolist(), strict=True):
        j = g % int(result.n_instances)
        out[j] = max(out[j], int(v))
    return out


def measured_X(result, w_p: float = 1.0, w_q: float = 2.0) -> dict[int, float]:
    """Instance -> measured ``X`` [service units]: the max over admissions of
    ``w_p * uncached prompt + w_q * outstanding decode tokens of the client's requests
    running on that instance right after the admission``.

    Outstanding decode = output tokens of the client's requests admitted there so far
    minus the decode tokens it received there so far (service log, per instance when
    ``result.svc_instance`` exists or there is one instance). Several admissions of one
    client at one instant are counted after all of them (an upper estimate). Without a
    per-instance service log (several instances), the outstanding decode is bounded by the
    full outputs of the client's requests running there.
    """
    arr, cl, inp, out = _request_arrays(result)
    adm = np.asarray(result.admit_t, dtype=float)
    fin = np.asarray(result.finish_t, dtype=float)
    cached = np.asarray(result.cached_tokens, dtype=float)
    inst = np.asarray(result.instance, dtype=np.int64)
    K = int(result.n_instances)
    exact = K == 1 or getattr(result, "svc_instance", None) is not None
    ok = np.isfinite(adm)
    res: dict[int, float] = {j: 0.0 for j in range(K)}
    if not ok.any():
        return res
    pre = w_p * (inp - cached)
    for j in range(K):
        mj = ok & (inst == j if K > 1 else True)
        if not mj.any():
            continue
        if exact:
            st, sc, sa = _instance_service(result, j)
            o = np.argsort(sc, kind="stable")  # by client, time order kept
            st, sc, sa = st[o], sc[o], sa[o]
            bounds = np.searchsorted(sc, np.arange(len(result.clients) + 1))
        rid = np.flatnonzero(mj)
        o = np.lexsort((adm[rid], cl[rid]))
        rid = rid[o]
        cls = cl[rid]
        cuts = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]])
        ends = np.r_[cuts[1:], rid.size]
        best = 0.0
        for lo, hi in zip(cuts.tolist(), ends.tolist(), strict=True):
            rr = rid[lo:hi]
            c = int(cls[lo])
            ta = adm[rr]
            # value after all admissions at the same instant
            last = np.r_[ta[1:] != ta[:-1], True]
            umax = np.maximum.reduceat(pre[rr], np.flatnonzero(np.r_[True, ta[1:] != ta[:-1]]))
            if exact:
                ct, ca = st[bounds[c]:bounds[c + 1]], sa[bounds[c]:bounds[c + 1]]
                cw = np.r_[0.0, np.cumsum(ca)]
                W = cw[np.searchsorted(ct, ta[last], side="right")]
                P = np.cumsum(pre[rr])[last]
                adm_out = np.cumsum(out[rr])[last]
                dec = (W - P) / w_q if w_q > 0 else np.zeros_like(W)
                outstanding = np.maximum(adm_out - dec, 0.0)
            else:
                tf = fin[rr]
                tf = np.where(np.isfinite(tf), tf, np.inf)
                outstanding = np.array([out[rr][(ta <= x) & (tf > x)].sum() for x in ta[last]])
            val = umax + w_q * outstanding
            best = max(best, float(val.max()))
        res[j] = best
    return res


# ============================================================================ verdicts
@dataclass
class Verdict:
    """One bound checked on one run.

    Attributes:
        run: run label (``policy`` or ``router/policy``).
        check: what is compared, e.g. ``"VTC proved 2X (X measured)"``.
        scope: which clients and which service: ``"instance 0"`` (one instance),
            ``"per instance, worst of K"`` (each instance's own service and queue, the
            instance with the largest gap / bound), ``"backlogged at every instance"`` and
            ``"backlogged anywhere"`` (cluster service).
        bound: the bound [service units] or None (no bound / not applicable).
        bound_expr: the formula with the numbers put in.
        measured: measured worst gap [service units] in that scope.
        ratio: measured / bound (None without a bound).
        status: ``holds``, ``VIOLATED`` (a proved bound failed: a bug or an unmet
            assumption), ``published claim violated`` (a refuted published bound is
            exceeded: a finding, not an error), ``refuted candidate exceeded``,
            ``no bound``, ``not applicable``, ``holds (vacuous)``.
        pair, window, interval: where the measured gap is attained (see :class:`GapResult`).
        kind: ``proved``, ``published``, ``candidate`` or ``none``.
        note: anything the reader needs (assumptions, instance of the worst ratio).
    """

    run: str
    check: str
    scope: str
    bound: float | None
    bound_expr: str
    measured: float
    ratio: float | None
    status: str
    kind: str = "proved"
    pair: tuple[str, str] | None = None
    window: tuple[float, float] | None = None
    interval: tuple[float, float] | None = None
    note: str = ""
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("pair", "window", "interval"):
            d[k] = list(d[k]) if d[k] is not None else None
        for k in ("bound", "measured", "ratio"):
            v = d[k]
            d[k] = None if v is None or not math.isfinite(v) else float(v)
        return d


def _status(kind: str, measured: float, bound: float | None, vacuous: bool) -> str:
    if bound is None:
        return STATUS_NO_BOUND
    ok = measured <= bound * (1 + 1e-9) + 1e-9
    if vacuous:
        return STATUS_VACUOUS
    if ok:
        return STATUS_HOLDS
    return {"proved": STATUS_VIOLATED, "published": STATUS_PUBLISHED_VIOLATED,
            "candidate": STATUS_CANDIDATE_VIOLATED}.get(kind, STATUS_VIOLATED)


def _verdict(run, check, scope, kind, bound, expr, gap: GapResult, note="", params=None) -> Verdict:
    vacuous = gap.n_windows == 0
    ratio = (gap.gap / bound) if bound not in (None, 0) else (None if bound is None else math.inf)
    if vacuous:
        note = (note + "; " if note else "") + "no two clients were backlogged together in this scope"
    return Verdict(run, check, scope, bound, expr, float(gap.gap), ratio, _status(kind, gap.gap, bound, vacuous),
                   kind, gap.pair, gap.window, gap.interval, note, dict(params or {}))


def check_run(result, policy: str | None = None, params: dict | None = None) -> list[Verdict]:
    """Check every bound that applies to ``result`` (a run of ``policy``).

    Args:
        result: a :class:`~fairsched.sim.result.SimResult`; for several instances one from
            :func:`simulate_for_check` (with ``svc_instance``) gets per-instance checks.
        policy: the queue policy (``vtc``, ``dlpm``, ``lcf``, ``fcfs``, ``lpm``); default
            ``result.policy``.
        params: ``quantum`` (Q^u, DLPM), ``quantum_w`` (Q^w, D2LPM), ``w_p``, ``w_q``
            (service weights, default 1 and 2), ``router`` (default ``result.router``),
            ``label`` (run label).
    Returns:
        A list of :class:`Verdict` (never raises on degenerate runs: one client, nothing
        backlogged together, no bound for the policy).
    """
    from fairsched.theory import fairness as F

    params = dict(params or {})
    policy = policy or result.policy
    router = params.get("router", getattr(result, "router", "none") or "none")
    w_p, w_q = float(params.get("w_p", 1.0)), float(params.get("w_q", 2.0))
    label = params.get("label") or (policy if router in ("none", "") else f"{router}/{policy}")
    K = int(result.n_instances)
    wl = result.workload
    clients = list(result.clients)
    base = {"w_p": w_p, "w_q": w_q}
    if len(wl) == 0 or len(clients) < 2:
        return [Verdict(label, "service gap", "cluster", None, "", 0.0, None, STATUS_NA, "none",
                        note=f"{len(clients)} client(s): a service gap needs two clients")]
    L = float(max(r.input_len for r in wl))
    O_max = float(max(r.output_len for r in wl))  # longest output [tokens]
    meta = getattr(result, "meta", None) or {}
    M_kv = meta.get("kv_capacity_tokens")  # VTC's M: tokens that fit in the running batch
    admission = meta.get("admission", "reserve")
    U = float(wl.max_cost(w_p, w_q, batch_tokens=M_kv)) if M_kv else None
    from sympy import S as _S

    pub_proved = bool(U is not None and admission == "reserve" and F.reserve_X_within_U_condition().subs(
        {F.w_p: _S(w_p), F.w_q: _S(w_q), F.L_in: _S(L), F.M_kv: _S(M_kv)}))
    Q = params.get("quantum")
    if policy == "dlpm" and Q is None:
        Q = 2048.0
    Qw = params.get("quantum_w")
    if router == "d2lpm" and Qw is None:
        Qw = 8192.0
    ks = concurrency_k(result)
    Xs = measured_X(result, w_p, w_q)
    per_instance = K == 1 or _instrumented(result)
    out: list[Verdict] = []
    bounded = policy in ("vtc", "dlpm")

    def proved(X: float) -> float:
        if policy == "vtc":
            return F.evaluate(F.vtc_upper_bound(), X=X)
        return F.evaluate(F.dlpm_gap_bound(), X=X, Q_u=Q)

    def proved_expr(X: float, how: str) -> str:
        return (f"2X = 2*{X:g} ({how})" if policy == "vtc" else f"2(Q^u + X) = 2({Q:g} + {X:g}) ({how})")

    def published() -> tuple[float, str]:
        u = f"U = max(w_p L_in, w_q M) = max({w_p:g}*{L:g}, {w_q:g}*{M_kv:g})"
        if policy == "vtc":
            return F.evaluate(F.vtc_upper_bound_published(), U=U), f"2U = 2*{U:g} ({u})"
        return F.evaluate(F.dlpm_gap_bound_published(), U=U, Q_u=Q), f"2(U + Q^u) = 2({U:g} + {Q:g}) ({u})"

    name = {"vtc": "VTC", "dlpm": "DLPM"}.get(policy, policy.upper())
    # ---- per instance: the queue policy's own guarantee
    if per_instance:
        gaps: dict[int, GapResult] = {}
        if K == 1:
            gaps[0] = gap_of_result(result)
        for j in range(K if K > 1 else 0):
            st, sc, sa = _instance_service(result, j, causal=True)
            gaps[j] = _in_seconds(stream_max_gap(st, sc, sa, *instance_backlog_log(result, j), names=clients),
                                  result.inst_seq_t)
        scope = "instance 0" if K == 1 else f"per instance, worst of {K}"
        if bounded:
            rows = []
            for how in ("k", "measured"):
                best = None
                for j, g in gaps.items():
                    k = max(ks.get(j, 0), 1)
                    X = w_p * L + k * w_q * O_max if how == "k" else Xs.get(j, 0.0)
                    if how == "measured" and X <= 0:
                        continue
                    b = proved(X)
                    r = g.gap / b if b > 0 else 0.0
                    if best is None or r > best[0]:
                        best = (r, j, g, X, b, k)
                if best is None:
                    continue
                _, j, g, X, b, k = best
                what = (f"X = w_p L_in + k w_q O_max, k = {k}" if how == "k" else "X measured")
                short = f"k={k}" if how == "k" else "X measured"
                note = ("" if K == 1 else f"worst ratio on instance {j}") + (
                    "; VTC needs the watermark lift (fairsched's VTC has it)" if policy == "vtc" else "")
                rows.append(_verdict(label, f"{name} proved {'2X' if policy == 'vtc' else '2(Q^u+X)'} ({short})",
                                     scope, "proved", b, proved_expr(X, what), g, note.strip("; "),
                                     {**base, "X": X, "k": k, "Q_u": Q, "instance": j}))
            jw = max(gaps, key=lambda j: gaps[j].gap)
            if U is not None:
                pb, pexpr = published()
                note = (f"proved here for reserve admission with w_p <= w_q or L_in >= M (2X <= 2U; "
                        f"proofs/admission.md); M = {M_kv:,.0f} KV tokens" if pub_proved else
                        f"a claim under {admission} admission: refuted under peak admission (outstanding decode up "
                        f"to M H_N; proofs/admission.md); exceeding it is a finding, not an error; M = {M_kv:,.0f} KV tokens")
                rows.append(_verdict(label, f"{name} published {'2U' if policy == 'vtc' else '2(U+Q^u)'}", scope,
                                     "proved" if pub_proved else "published", pb, pexpr, gaps[jw], note,
                                     {**base, "U": U, "M": M_kv, "Q_u": Q, "instance": jw, "admission": admission}))
            out += rows
        else:
            jw = max(gaps, key=lambda j: gaps[j].gap)
            why = {"lcf": "LCF has no counter lift; the lift counterexample (proofs/vtc_upper_bound.md) "
                          "shows no O(U) bound",
                   "fcfs": "FCFS has no fairness guarantee", "lpm": "LPM has no fairness guarantee "
                   "(a client with a cached prefix can starve the others)"}.get(policy, "no bound known")
            out.append(_verdict(label, "service gap", scope, "none", None, "", gaps[jw],
                                why + ("" if K == 1 else f"; worst instance {jw}"), {**base, "instance": jw}))
    # ---- cluster
    if K > 1:
        cluster = gap_of_result(result)
        if bounded and per_instance:
            g_all = _in_seconds(stream_max_gap(result.inst_svc_seq, result.svc_client, result.svc_amount,
                                               *everywhere_backlog_log(result), names=clients), result.inst_seq_t)
            Xsum = sum(max(Xs.get(j, 0.0), 0.0) for j in range(K))
            b = (F.evaluate(F.vtc_upper_bound(), X=Xsum) if policy == "vtc"
                 else F.evaluate(F.d2lpm_gap_bound_per_worker(), K=K, Q_u=Q, X=Xsum / K))
            expr = (f"sum_k 2X_k = 2*{Xsum:g}" if policy == "vtc" else f"2K(Q^u + mean X_k) = 2*{K}({Q:g} + {Xsum / K:g})")
            out.append(_verdict(label, f"{name} per-worker sum", "backlogged at every instance",
                                "proved", b, expr, g_all,
                                "proofs/d2lpm_bound.md Theorem A (sum of the per-worker bounds)",
                                {**base, "K": K, "Q_u": Q, "X_sum": Xsum}))
        if router == "d2lpm" and policy == "dlpm":
            kmax = max(max(ks.values()), 1)
            X = w_p * L + kmax * w_q * O_max
            b = F.evaluate(F.d2lpm_candidate_global_bound(), K=K, Q_u=Q, Q_w=Qw, X=X)
            out.append(_verdict(label, "D2LPM candidate 2K(Qu+Qw+X)", "backlogged anywhere", "candidate",
                                b, f"2*{K}({Q:g} + {Qw:g} + {X:g})", cluster,
                                "refuted candidate (proofs/d2lpm_bound.md): no bound is known for clients "
                                "backlogged somewhere; shown for scale", {**base, "K": K, "Q_u": Q, "Q_w": Qw, "X": X}))
        else:
            out.append(_verdict(label, "service gap", "backlogged anywhere", "none", None, "", cluster,
                                "no bound for clients backlogged at some instance (routing decides where work "
                                "waits)", {**base, "K": K}))
    return out


def verdict_frame(verdicts: list[Verdict]):
    """The verdicts as a pandas DataFrame (one row each; pair / window as text)."""
    import pandas as pd

    rows = []
    for v in verdicts:
        d = v.to_dict()
        d["pair"] = " > ".join(v.pair) if v.pair else None
        d["window"] = f"{v.window[0]:.2f}-{v.window[1]:.2f} s" if v.window else None
        d["interval"] = f"{v.interval[0]:.2f}-{v.interval[1]:.2f} s" if v.interval else None
        rows.append(d)
    cols = ["run", "check", "scope", "bound", "measured", "ratio", "status", "pair", "window", "interval", "kind",
            "bound_expr", "note"]
    return pd.DataFrame(rows, columns=cols)


def fig_gap_vs_bound(verdicts: list[Verdict]):
    """Horizontal bars: measured worst gap next to each bound (log scale); red where a
    proved bound is violated, amber where a published / candidate bound is exceeded."""
    import plotly.graph_objects as go

    vs = [v for v in verdicts if v.bound is not None and v.status != STATUS_NA]
    labels = [f"{v.run}: {v.check} [{v.scope}]" for v in vs]
    color = ["#c33" if v.status == STATUS_VIOLATED else
             "#d90" if v.status in (STATUS_PUBLISHED_VIOLATED, STATUS_CANDIDATE_VIOLATED) else "#383" for v in vs]
    fig = go.Figure()
    fig.add_trace(go.Bar(y=labels, x=[v.bound for v in vs], name="bound", orientation="h", marker_color="#9bb"))
    fig.add_trace(go.Bar(y=labels, x=[max(v.measured, 1e-9) for v in vs], name="measured worst gap",
                         orientation="h", marker_color=color))
    fig.update_layout(barmode="group", xaxis_type="log", title="measured worst service gap vs. bound [service units]",
                      template="plotly_white", height=max(320, 40 * len(vs) + 120), margin={"l": 420},
                      yaxis={"autorange": "reversed"})
    return fig
