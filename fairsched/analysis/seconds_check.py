"""Bound verdicts in predicted seconds (``fairsched check --service seconds``).

When service is the cost model's predicted seconds
(:class:`~fairsched.policies.seconds.SecondsService`), VTC and DLPM keep their proved bounds
with ``X`` in seconds (``proofs/seconds_bounds.md``, Theorem 1)::

    VTC:  |W_f - W_g| <= 2 X_s        DLPM: |W_f - W_g| <= 2 (Q^u + X_s)     [s]

``X_s`` is evaluated two ways, as the token check does with ``X``
(:mod:`fairsched.analysis.verdicts`):

- *measured* (:func:`measured_x_seconds`): per instance, the max over admissions of the
  prefill charge plus the *worst-case* decode charges (``SecondsService.request_decode``:
  batch 1, the instance's KV capacity as context) of every request of the client running
  there right after it. Since each actual decode charge is at most its worst case, this is
  at least the ``X_s`` of Theorem 1, so the bound it gives is valid;
- *a priori* (``k``): ``max_r t_pre^max(L_r) + k max_r request_decode(L_r, O_r)`` with ``k``
  the most requests of one client running at once on the instance
  (:func:`~fairsched.analysis.service_params.concurrency_k`) and
  ``t_pre^max(L) = t_pre(L, 0) + e + g L + w L^2 / 2 + p L^2 / 2 + s K_max(L)`` >= ``t_pre(n, h)``
  for every ``n + h <= L`` (``n (h + n/2) <= (n + h)^2 / 2``; the ``[h > 0]`` terms at their
  largest; the CPU kernel's counts: ``P_pad <= L^2 / 2``, ``K <= K_max(L)``,
  :func:`~fairsched.sim.cost.flash_keys_max`).

Published bounds (VTC's ``2U``) are token statements and are not evaluated in seconds.
Several instances: per instance (each queue on its own service) and, for clients backlogged
at every instance, the sum of the per-worker bounds (``proofs/d2lpm_bound.md`` Theorem A,
which uses only (P1)-(P3') of ``proofs/seconds_bounds.md``); clients backlogged somewhere:
no bound, the gap is reported. The gap is the same :mod:`fairsched.analysis.gap` pass the
token check uses, on the run's log of predicted seconds.
"""

from __future__ import annotations

import numpy as np

from fairsched.analysis.gap import max_service_gap
from fairsched.analysis.service_params import (
    concurrency_k,
    has_instance_logs,
)
from fairsched.analysis.verdicts import (
    STATUS_NA,
    Verdict,
    _verdict,
    anywhere_gap,
    instance_gaps,
    verdict_frame,
)

__all__ = ["check_seconds", "measured_x_seconds", "prefill_cap_seconds"]


def prefill_cap_seconds(cost, L: int) -> float:
    """``t_pre(L, 0) + e + g L + w L^2 / 2 + p L^2 / 2 + s K_max(L)`` [s]: at least
    ``cost.prefill_time(n, h)`` for every ``n + h <= L`` (module docstring)."""
    from dataclasses import replace

    from fairsched.sim.cost import flash_keys_max

    base = replace(cost, prefill_p=0.0, prefill_s=0.0).prefill_time(L, 0)  # t_pre(L, 0) without the kernel's counts
    return float(base + cost.prefill_e + cost.prefill_g * L + (cost.prefill_w + cost.prefill_p) * L * L / 2
                 + cost.prefill_s * flash_keys_max(L))


def measured_x_seconds(result, service) -> dict[int, float]:
    """Instance -> measured ``X_s`` [s] (module docstring): max over admissions of
    ``service.prefill(uncached, cached)`` plus ``service.request_decode`` of every request of
    the admitted client running on that instance at the admission (admitted at or before it,
    finishing after it; the admitted request included).

    ``O(n log n)``: per (client, instance), the running worst-case decode is a difference of
    two cumulative sums (admissions, finishes) read at the admission times."""
    wl = result.workload
    K = int(result.n_instances)
    out = {j: 0.0 for j in range(K)}
    adm = np.asarray(result.admit_t, dtype=float)
    ok = np.isfinite(adm)
    if not ok.any():
        return out
    fin = np.asarray(result.finish_t, dtype=float)
    fin = np.where(np.isfinite(fin), fin, np.inf)
    cached = np.asarray(result.cached_tokens, dtype=np.int64)
    L = np.fromiter((r.input_len for r in wl), dtype=np.int64, count=len(wl))
    out_len = np.fromiter((r.output_len for r in wl), dtype=np.int64, count=len(wl))
    cidx = {c: i for i, c in enumerate(result.clients)}
    cl = np.fromiter((cidx[r.client] for r in wl), dtype=np.int64, count=len(wl))
    inst = np.asarray(result.instance, dtype=np.int64) if K > 1 else np.zeros(len(wl), dtype=np.int64)
    idx = np.flatnonzero(ok)
    pre = np.array([service.prefill(int(L[i] - cached[i]), int(cached[i])) for i in idx])
    dec = np.array([service.request_decode(int(L[i]), int(out_len[i])) for i in idx])
    key = cl[idx] * K + inst[idx]
    order = np.lexsort((adm[idx], key))
    key, a, f, pre, dec = key[order], adm[idx][order], fin[idx][order], pre[order], dec[order]
    cuts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    for lo, hi in zip(cuts.tolist(), np.r_[cuts[1:], key.size].tolist(), strict=True):
        ta, tf, dd = a[lo:hi], f[lo:hi], dec[lo:hi]
        fo = np.argsort(tf, kind="stable")
        cum_a = np.r_[0.0, np.cumsum(dd)]
        cum_f = np.r_[0.0, np.cumsum(dd[fo])]
        running = cum_a[np.searchsorted(ta, ta, side="right")] - cum_f[np.searchsorted(tf[fo], ta, side="right")]
        j = int(key[lo] % K)
        out[j] = max(out[j], float((pre[lo:hi] + running).max()))
    return out


def check_seconds(result, policy: str | None = None, service=None, quantum: float | None = None,
                  label: str | None = None):
    """Check the seconds bounds of ``proofs/seconds_bounds.md`` (Theorem 1) on a run whose
    service log is in predicted seconds.

    Args:
        result: a :class:`~fairsched.sim.result.SimResult` run with ``service`` (several
            instances: one from :func:`~fairsched.analysis.service_params.simulate_for_check`
            for the per-instance rows).
        policy: ``vtc``, ``dlpm`` (bounded) or another (gap only); default ``result.policy``.
        service: the run's :class:`~fairsched.policies.seconds.SecondsService`; its
            ``context_cap`` must be the instance's KV capacity (or ``batch_ref`` set) for the
            worst-case decode charge to bound the actual ones.
        quantum: DLPM's ``Q^u`` [s] (required for ``dlpm``).
        label: the run's label (default: policy, or router/policy).
    Returns:
        A :class:`~fairsched.display.Table` of :class:`~fairsched.analysis.verdicts.Verdict`
        (bounds and gaps in predicted seconds).
    Raises:
        ValueError: for ``dlpm`` without ``quantum``, or without ``service``.
    """
    from fairsched.display import Table
    from fairsched.theory import fairness as F

    if service is None:
        raise ValueError("check_seconds needs the run's SecondsService")
    policy = policy or result.policy
    router = getattr(result, "router", "none") or "none"
    label = label or (policy if router in ("none", "") else f"{router}/{policy}")
    if policy == "dlpm" and quantum is None:
        raise ValueError("check_seconds: DLPM needs its quantum Q^u in seconds")
    K = int(result.n_instances)
    wl = result.workload
    clients = list(result.clients)
    if len(wl) == 0 or len(clients) < 2:
        return Table([Verdict(label, "service gap", "cluster", None, "", 0.0, None, STATUS_NA, "none",
                              note=f"{len(clients)} client(s): a service gap needs two clients")], verdict_frame)
    cost = service.cost
    pmax = max(prefill_cap_seconds(cost, r.input_len) for r in wl)
    dmax = max(service.request_decode(r.input_len, r.output_len) for r in wl)
    ks = concurrency_k(result)
    Xs = measured_x_seconds(result, service)
    bounded = policy in ("vtc", "dlpm")
    name = {"vtc": "VTC", "dlpm": "DLPM"}.get(policy, policy.upper())
    form = "2X_s" if policy == "vtc" else "2(Q^u+X_s)"
    base = {"service": "seconds", "unit": "s", "Q_u": quantum}

    def proved(X: float) -> float:
        if policy == "vtc":
            return F.evaluate(F.vtc_upper_bound(), X=X)
        return F.evaluate(F.dlpm_gap_bound(), X=X, Q_u=quantum)

    def expr(X: float, how: str) -> str:
        return f"2X_s = 2*{X:.4g} s ({how})" if policy == "vtc" else f"2(Q^u + X_s) = 2({quantum:.4g} + {X:.4g}) s ({how})"

    out: list[Verdict] = []
    if K == 1 or has_instance_logs(result):
        gaps = instance_gaps(result, K)
        scope = "instance 0" if K == 1 else f"per instance, worst of {K}"
        if bounded:
            for how in ("k", "measured"):
                cands = []
                for j, g in gaps.items():
                    k = max(ks.get(j, 0), 1)
                    X = pmax + k * dmax if how == "k" else Xs.get(j, 0.0)
                    if X > 0:
                        b = proved(X)
                        cands.append((g.gap / b if b > 0 else 0.0, j, g, X, b, k))
                if not cands:
                    continue
                _, j, g, X, b, k = max(cands, key=lambda c: c[0])
                what = (f"X_s = t_pre^max(L_in) + k D_max = {pmax:.4g} + {k}*{dmax:.4g} s" if how == "k"
                        else "X_s measured")
                note = ("" if K == 1 else f"worst ratio on instance {j}; ") + "service in predicted seconds"
                out.append(_verdict(label, f"{name} proved {form} ({'k=' + str(k) if how == 'k' else 'X_s measured'})",
                                    scope, "proved", b, expr(X, what), g, note, {**base, "X": X, "k": k, "instance": j}))
        else:
            jw = max(gaps, key=lambda j: gaps[j].gap)
            out.append(_verdict(label, "service gap", scope, "none", None, "", gaps[jw],
                                f"{policy.upper()} has no fairness guarantee (service in predicted seconds)",
                                {**base, "instance": jw}))
    if K > 1:
        if bounded and has_instance_logs(result):
            g_all = anywhere_gap(result)
            Xsum = sum(max(Xs.get(j, 0.0), 0.0) for j in range(K))
            b = (F.evaluate(F.vtc_upper_bound(), X=Xsum) if policy == "vtc"
                 else F.evaluate(F.d2lpm_gap_bound_per_worker(), K=K, Q_u=quantum, X=Xsum / K))
            e = (f"sum_k 2X_s,k = 2*{Xsum:.4g} s" if policy == "vtc"
                 else f"2K(Q^u + mean X_s,k) = 2*{K}({quantum:.4g} + {Xsum / K:.4g}) s")
            out.append(_verdict(label, f"{name} per-worker sum", "backlogged at every instance", "proved", b, e,
                                g_all, "proofs/d2lpm_bound.md Theorem A; service in predicted seconds",
                                {**base, "K": K, "X_sum": Xsum}))
        out.append(_verdict(label, "service gap", "backlogged anywhere", "none", None, "",
                            max_service_gap(result, per_pair=False),
                            "no bound for clients backlogged at some instance; service in predicted seconds",
                            {**base, "K": K}))
    return Table(out, verdict_frame, title=f"bound verdicts in predicted seconds: {label}")
