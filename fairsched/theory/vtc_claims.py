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
  units/s] whenever a client waits, a client that becomes backlogged gets its first
  admission within ``((n - 1) 4X + X) / a`` seconds.
"""

from __future__ import annotations

import sympy as sp

from .symbols import U, X, n_clients, rate_a

__all__ = ["nonbacklogged_bound", "nonbacklogged_bound_published", "latency_bound",
           "peak_nonbacklogged_counterexample_requests", "max_gain_over_backlogged"]


def nonbacklogged_bound() -> sp.Expr:
    """``3X`` [service units]: the most a client g can receive beyond a client f that is
    backlogged throughout the interval (proved; ``proofs/vtc_other_claims.md``)."""
    return 3 * X


def nonbacklogged_bound_published() -> sp.Expr:
    """The published ``4U`` [service units] (U with M the KV token capacity)."""
    return 4 * U


def latency_bound() -> sp.Expr:
    """``((n - 1) 4X + X) / a`` seconds from a client becoming backlogged to its first
    admission, if service flows at rate >= a [units/s] while it waits (proved)."""
    return ((n_clients - 1) * 4 * X + X) / rate_a


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
