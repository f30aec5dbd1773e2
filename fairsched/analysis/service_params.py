"""The service parameters of a run that the fairness bounds are evaluated with, and the
per-instance logs they are measured on.

- ``k`` (:func:`concurrency_k`): per instance, the most requests of one client running at
  once; the proved bounds use ``X <= w_p L_in + k w_q M`` (``proofs/vtc_upper_bound.md``).
- ``X`` (:func:`measured_x`): per instance, the largest service one client can be owed
  at an admission: the prefill charge plus the client's outstanding decode charge right
  after it (measured from the service log).
- Per-instance logs (:func:`simulate_for_check`, :func:`instance_service`,
  :func:`instance_backlog_log`, :func:`everywhere_backlog_log`): each worker's own service
  and own queue's backlog, recorded by :class:`~fairsched.sim.recorder.InstanceRecorder`.
"""

from __future__ import annotations

import numpy as np

from fairsched.analysis.columns import memo, request_arrays
from fairsched.analysis.gap import _sorted

__all__ = ["concurrency_k", "everywhere_backlog_log", "has_instance_logs", "instance_backlog_log",
           "instance_service", "measured_x", "request_arrays", "simulate_for_check"]


def simulate_for_check(workload, policy="fcfs", router=None, n_instances: int = 1, instance=None, cost=None,
                       weights=None, progress=None, *, service_log: str = "full", policy_params=None):
    """:func:`fairsched.sim.simulate` with an :class:`~fairsched.sim.recorder.InstanceRecorder`:
    the result also has the instance of every service event (``result.svc_instance``),
    each instance's own backlog log and the measured ``X`` per instance, so each worker's
    service can be checked on its own. ``service_log="backlogged"`` keeps only the service
    entries the check reads (millions of requests)."""
    from fairsched.sim import simulate
    from fairsched.sim.recorder import InstanceRecorder

    return simulate(workload, policy, router, n_instances, instance, cost, weights, progress=progress,
                    recorders=(InstanceRecorder(weights),), service_log=service_log, policy_params=policy_params)


def has_instance_logs(result) -> bool:
    """Whether ``result`` has the per-instance logs of :func:`simulate_for_check`."""
    return getattr(result, "ibl_seq", None) is not None


def instance_backlog_log(result, instance: int):
    """Backlog log of one instance's queue ``(position, client, delta)`` on the
    per-instance causal axis (``result.inst_seq_t[position]`` is its time). Needs a result
    of :func:`simulate_for_check`."""
    idx = _by_instance(result, "ibl_order", np.asarray(result.ibl_instance, dtype=np.int64), instance)
    seq = result.ibl_seq[idx]
    o = idx[np.argsort(seq, kind="stable")]
    return result.ibl_seq[o], result.ibl_client[o], result.ibl_delta[o]


def _by_instance(result, name: str, inst: np.ndarray, j: int) -> np.ndarray:
    """Indices (increasing) of the entries of instance ``j`` in ``inst``, from one stable argsort
    kept in ``result.analysis_cache[name]`` (16 instances: one sort instead of 16 scans)."""
    def sort():
        order = np.argsort(inst, kind="stable")  # by instance, log order kept
        return order, np.searchsorted(inst[order], np.arange(int(result.n_instances) + 1))

    order, bounds = memo(result, name, (inst.size,), sort)
    return order[bounds[j]:bounds[j + 1]] if 0 <= j < bounds.size - 1 else order[:0]


def everywhere_backlog_log(result):
    """Backlog log of "waiting at every instance" ``(position, client, delta)`` on the
    per-instance causal axis: a client counts as backlogged while each of the
    ``n_instances`` queues holds one of its requests (Theorem A's condition). Needs a result
    of :func:`simulate_for_check`."""
    K = int(result.n_instances)
    o = np.argsort(result.ibl_seq, kind="stable")
    t = np.asarray(result.ibl_seq, dtype=float)[o]
    c = np.asarray(result.ibl_client, dtype=np.int64)[o]
    d = np.asarray(result.ibl_delta, dtype=np.int64)[o]
    if not t.size:
        return t, c, d
    by = np.argsort(c, kind="stable")  # per client, time order kept
    cs, ds = c[by], d[by]
    first = np.r_[True, cs[1:] != cs[:-1]]
    cum = np.cumsum(ds)
    seg = np.maximum.accumulate(np.where(first, np.arange(cs.size), 0))
    before = np.empty(t.size, dtype=np.int64)
    before[by] = cum - (cum - ds)[seg] - ds  # the client's count of queues holding it, before each change
    up, down = (d > 0) & (before + 1 == K), (d < 0) & (before == K)
    keep = up | down
    return t[keep], c[keep], np.where(up[keep], 1, -1).astype(np.int64)


def instance_service(result, j: int, causal: bool = False):
    """Service log of instance ``j`` ``(t, client, amount)`` sorted by time (stable); with
    ``causal``, ``t`` is the position on the per-instance causal axis instead (needs a
    result of :func:`simulate_for_check`; with one instance, the whole log)."""
    t = np.asarray(result.inst_svc_seq if causal else result.svc_t, dtype=float)
    c = np.asarray(result.svc_client, dtype=np.int64)
    a = np.asarray(result.svc_amount, dtype=float)
    if getattr(result, "svc_instance", None) is not None:
        idx = _by_instance(result, "svc_order", np.asarray(result.svc_instance, dtype=np.int64), j)
        t, c, a = t[idx], c[idx], a[idx]
    return _sorted(t, c, a)


def concurrency_k(result) -> dict[int, int]:
    """Instance -> the most requests of one client running at once on it (``k``).

    A request runs on ``[admit_t, finish_t)``; at equal times finishes come first (the
    simulator frees a request before the next admission), so back-to-back requests do not
    overlap."""
    _, cl, _, _ = request_arrays(result)
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
    best = np.zeros(int(result.n_instances), dtype=np.int64)
    np.maximum.at(best, k2[cuts] % int(result.n_instances), np.maximum.reduceat(level, cuts))
    return {j: int(v) for j, v in enumerate(best.tolist())}


def measured_x(result, w_p: float = 1.0, w_q: float = 2.0) -> dict[int, float]:
    """Instance -> measured ``X`` [service units] (a measurement, not a bound; for an
    upper bound from the requests' whole outputs see
    :func:`fairsched.reproduce.common.x_upper_bound`): the max over admissions of
    ``w_p * uncached prompt + w_q * outstanding decode tokens of the client's requests
    running on that instance right after the admission``.

    Outstanding decode = output tokens of the client's requests admitted there so far
    minus the decode tokens it received there so far (service log, per instance when
    ``result.svc_instance`` exists or there is one instance). Several admissions of one
    client at one instant are counted after all of them (an upper estimate). Without a
    per-instance service log (several instances), the outstanding decode is bounded by the
    full outputs of the client's requests running there. A result of
    :func:`simulate_for_check` carries the value measured during the run
    (``result.inst_x``, by :class:`~fairsched.sim.recorder.InstanceRecorder`); it is used
    when the weights are the run's, and is the only source for a run without the full
    service log.

    Raises:
        ValueError: for a run without the full service log (``service_log="backlogged"``)
            and without ``inst_x`` for these weights.
    """
    K = int(result.n_instances)
    if getattr(result, "inst_x", None) is not None and tuple(result.inst_x_weights) == (float(w_p), float(w_q)):
        return {j: float(result.inst_x.get(j, 0.0)) for j in range(K)}
    if getattr(result, "service_log", "full") != "full":
        raise ValueError("measured X needs the full service log or the run's InstanceRecorder with the same weights")
    arr, cl, inp, out = request_arrays(result)
    adm = np.asarray(result.admit_t, dtype=float)
    fin = np.asarray(result.finish_t, dtype=float)
    cached = np.asarray(result.cached_tokens, dtype=float)
    inst = np.asarray(result.instance, dtype=np.int64)
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
            st, sc, sa = instance_service(result, j)
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
