"""Reference implementations and test data for the service gap (:mod:`fairsched.analysis.gap`).

:func:`max_service_gap_naive` and :func:`naive_max_gap` recompute the gap straight from
its definition by direct summation (quadratic: for tests and benchmarks only);
:func:`synthetic_log` makes simulator-shaped random logs for benchmarks.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from fairsched.analysis.gap import GapReport, in_seconds

__all__ = ["max_service_gap_naive", "naive_max_gap", "synthetic_log"]


def max_service_gap_naive(result) -> GapReport:
    """Plain-Python reference for :func:`fairsched.analysis.gap.max_service_gap`
    (quadratic; for tests only).

    Recomputes the backlog intervals, the common windows and every ``D`` value by direct
    summation; same conventions (the causal order ``svc_seq`` / ``bl_seq`` when the result
    has it, its own time stamps otherwise), same ``gap`` and ``per_pair`` values.
    """
    if getattr(result, "svc_seq", None) is None or getattr(result, "bl_seq", None) is None:
        return _max_service_gap_naive(result)
    view = SimpleNamespace(svc_t=result.svc_seq, svc_client=result.svc_client, svc_amount=result.svc_amount,
                           bl_t=result.bl_seq, bl_client=result.bl_client, bl_delta=result.bl_delta,
                           clients=result.clients)
    return in_seconds(_max_service_gap_naive(view), result.seq_t)


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

    rep = GapReport(n_events=len(events))
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
                    rep.n_windows += 1
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


def naive_max_gap(svc_t, svc_client, svc_amount, bl_t, bl_client, bl_delta, names=None) -> GapReport:
    """Quadratic reference of :func:`fairsched.analysis.gap.max_gap_from_logs` (for tests and
    the benchmark): :func:`max_service_gap_naive` on these columns (same arguments)."""

    c, bc = np.asarray(svc_client, dtype=np.int64), np.asarray(bl_client, dtype=np.int64)
    n = int(max(c.max(initial=-1), bc.max(initial=-1), len(names or []) - 1)) + 1
    names = list(names or []) + [str(i) for i in range(len(names or []), n)]
    view = SimpleNamespace(svc_t=np.asarray(svc_t, dtype=float), svc_client=c,
                           svc_amount=np.asarray(svc_amount, dtype=float), bl_t=np.asarray(bl_t, dtype=float),
                           bl_client=bc, bl_delta=np.asarray(bl_delta, dtype=np.int64), clients=names)
    rep = _max_service_gap_naive(view)
    rep.per_pair = dict(sorted(rep.per_pair.items()))
    return rep


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
