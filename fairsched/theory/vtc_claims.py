"""VTC's two other claims: a client that is not backlogged, and the latency bound.

``proofs/vtc_other_claims.md``. Published (VTC, Sheng et al., OSDI'24, Sec. 4, as restated in
``../shared/docs/background.md``): ``4U`` for a client that is not backlogged versus one that
is; latency ``2(n - 1) U / a`` (n clients, a the service rate).

Proved here (same model and watermark lift as ``vtc_upper_bound.md``):

- :func:`nonbacklogged_bound`: if f is backlogged throughout (t1, t2] and g is any client,
  ``W_g - W_f <= 3X`` [service units]; with ``X <= U`` (reserve admission and
  ``w_p <= w_q`` or ``L_in >= M``, ``admission.md``) this is ``3U <= 4U``: the published
  claim holds there. Under peak admission it is refuted
  (:func:`peak_nonbacklogged_counterexample_requests`).
- :func:`latency_bound`: if the instance delivers service at rate at least ``a`` [service
  units/s] while a client f waits, f's first admission after it becomes backlogged comes
  within ``(2(n - 1) X + D_tau) / a`` seconds, ``D_tau`` the outstanding decode (times
  ``w_q``) at that moment of f's running requests and of the clients not backlogged then.
  With ``D_tau = 0`` this is the published ``2(n - 1) U / a`` (when ``X <= U``); in general
  the published constant is refuted (:func:`latency_counterexample_requests`: f's earlier
  request still decodes when f's next one arrives); under reserve admission the proved
  bound is at most ``(2n - 1) U / a`` (:func:`latency_bound_reserve`).
"""

from __future__ import annotations

import sympy as sp

from .symbols import D_tau, U, X, n_clients, rate_a

__all__ = ["nonbacklogged_bound", "nonbacklogged_bound_published", "latency_bound", "latency_bound_reserve",
           "latency_counterexample_requests", "latency_waits",
           "peak_nonbacklogged_counterexample_requests", "max_gain_over_backlogged"]


def nonbacklogged_bound() -> sp.Expr:
    """``3X`` [service units]: the most a client g can receive beyond a client f that is
    backlogged throughout the interval (proved; ``proofs/vtc_other_claims.md``)."""
    return 3 * X


def nonbacklogged_bound_published() -> sp.Expr:
    """The published ``4U`` [service units] (U with M the KV token capacity)."""
    return 4 * U


def latency_bound() -> sp.Expr:
    """``(2 (n - 1) X + D_tau) / a`` [s]: from the moment client f becomes backlogged to f's
    first admission, if service flows at rate >= ``a`` [service units/s] while f waits
    (proved, ``proofs/vtc_other_claims.md`` (b)). ``n`` clients; ``D_tau`` [service units]:
    ``w_q`` x outstanding decode tokens, at that moment, of f's running requests and of the
    running requests of clients that are not backlogged then (``symbols.D_tau``)."""
    return (2 * (n_clients - 1) * X + D_tau) / rate_a


def latency_bound_reserve() -> sp.Expr:
    """``(2n - 1) U / a`` [s]: :func:`latency_bound` under reserve admission with ``w_p <= w_q``
    or ``L_in >= M`` (then ``X <= U`` and ``D_tau <= w_q M <= U``, ``admission.md``)."""
    return (2 * n_clients - 1) * U / rate_a


def latency_counterexample_requests(M: int = 100):
    """One instance, KV capacity ``M`` tokens, reserve admission. f's request A (prompt 1,
    output ``M - 1``: it fills the memory) runs from step 0 while g's two requests (prompt 1,
    output ``M - 2``) wait; f's request B (prompt 1, output ``M - 1``) arrives at step 1, while
    A still decodes. B waits for A's decode, then for both of g's requests (after A, g's
    counter is behind f's by A's cost, and after g's first request still by 2): about
    ``3 (M - 1)`` steps at a service rate of ``w_q`` per step, so ``wait * a`` is about
    ``3 w_q M = 3U`` against the published ``2(n - 1) U = 2U`` (n = 2). No counter ties.
    Abstract requests ``(arrival_step, client, prompt, output, lpm_key)``."""
    return [(0, "f", 1, M - 1, 0), (0, "g", 1, M - 2, 0), (0, "g", 1, M - 2, 0), (1, "f", 1, M - 1, 0)]


def latency_waits(res) -> list[dict]:
    """Every wait of the latency theorem in a reference run (``RefResult`` of
    :func:`fairsched.theory._reference.simulate_vtc`): for each arrival of a client f that
    was not backlogged (step tau), up to f's next admission (step s). Rows: ``client``,
    ``tau``, ``s`` [steps], ``wait`` = s - tau [steps], ``service`` (all clients' service from
    the arrival to f's admission [units]), ``rate_min`` (least service delivered in one of the
    steps tau .. s-1 [units/step]; the theorem's ``a`` for this wait), ``D_tau`` [units]
    (``symbols.D_tau`` measured), ``n`` (clients of the run). Waits that never end are skipped."""
    rows = []
    tr, start = res.service_trace, res.step_start + [len(res.service_trace) - 1]
    for tau, idx, f, D, B in res.returns:
        adm = next(((s, j) for s, j, c in res.admissions if c == f and j > idx), None)
        if adm is None:
            continue
        s, j = adm
        per_step = [sum(tr[start[t + 1]]) - sum(tr[start[t]]) for t in range(tau, s)]
        d_tau = D[f] + sum(v for c, v in D.items() if c != f and c not in B)
        rows.append({"client": f, "tau": tau, "s": s, "wait": s - tau, "service": sum(tr[j - 1]) - sum(tr[idx]),
                     "rate_min": min(per_step, default=0.0), "D_tau": d_tau, "n": len(res.clients)})
    return rows


def peak_nonbacklogged_counterexample_requests(M: int = 1000, n_g: int = 60, o_f: int = 600):
    """g sends at step 0 ``n_g`` requests (prompt 1, outputs ``floor((M - 1)/i) - 1``) that peak
    admission admits together, so g is never backlogged; f sends one request (prompt 1, output
    ``o_f``) at step 1 that does not fit and waits, backlogged, while g's batch decodes about
    ``M H_{n_g}`` tokens. Abstract requests for :mod:`fairsched.theory._reference`."""
    reqs = [(0, "g", 1, (M - 1) // i - 1, 0) for i in range(1, n_g + 1)]
    return reqs + [(1, "f", 1, o_f, 0)]


def max_gain_over_backlogged(res, f: str, g: str) -> float:
    """Largest ``W_g(t1, t2) - W_f(t1, t2)`` over snapshot intervals during which f stays
    backlogged (g arbitrary), on a :class:`~fairsched.theory._reference.RefResult`."""
    i_f, i_g = res.clients.index(f), res.clients.index(g)
    best, lo = 0.0, None
    for s, B in zip(res.service_trace, res.backlog_trace, strict=True):
        d = s[i_g] - s[i_f]
        if lo is not None:
            best = max(best, d - lo)
            lo = min(lo, d)
        if f in B:
            lo = d if lo is None else lo
        else:
            lo = None
    return best
