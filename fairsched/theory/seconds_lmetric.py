"""LMetric with ``P`` in predicted prefill seconds: what holds (``proofs/seconds_lmetric.md``).

LMetric routes to ``argmin_i P_i (B_i + 1)`` (arXiv 2603.15202). With ``P^s_i`` the cost
model's predicted seconds of instance i's queued prefill plus the new request's uncached part,

    P^s_i = sum_{q in queue_i + new} t_pre(n_q, h_q) = theta . phi_i,
    theta = (a, b, c, e, g, w, p, s),
    phi_i = sum_q (1, n, n(h + n/2), [h>0], [h>0](h + n), [h>0] n^2/2, [h=0] P_pad(n), K(n, h))

(``theory.cost.engine_prefill_time_expr``; ``CostModel.prefill_time``), three statements:

1. *Speed cancels* (:func:`scale_invariance_check`): ``P^s(s theta) = s P^s(theta)`` for
   ``s > 0`` (sympy, on the library's expression), so by ``lmetric_cancellation.md`` Statement 1
   every decision is the same on a uniformly faster or slower machine.
2. *Shape does not* (:func:`separating_state`): the decision depends on the direction of
   ``theta``; for two non-proportional ``theta, theta'`` some queue state with equal batch sizes
   is routed differently (proof in ``proofs/seconds_lmetric.md``: the feature vectors of
   single prompts span R^8). Token LMetric is ``theta = (0, 1, 0, 0, 0, 0, 0, 0)``.
3. *Measured-seconds guarantee* (:func:`z3_check_approximation`): if each queued prompt's
   measured prefill seconds lie in ``[r_lo, r_hi]`` times its prediction, the chosen instance's
   *measured* score ``P^m (B + 1)`` is at most ``r_hi / r_lo`` times any other instance's
   (z3 over the reals, tight). Token LMetric has the same guarantee with the band of measured
   seconds *per token*, ``[kappa_lo, kappa_hi]``, which a cost model with a non-zero ``a, c, e, g, w``
   makes wide (long cached contexts cost more per new token).
"""

from __future__ import annotations

import itertools

import sympy as sp

from fairsched.theory.cost import c_e, c_g, c_p, c_s, c_w, engine_prefill_time_expr, keys_read
from fairsched.theory.symbols import c_a, c_b, c_c, h_cached, n_new

THETA = (c_a, c_b, c_c, c_e, c_g, c_w, c_p, c_s)
"""The prefill coefficients, in the order of ``calibrate.PREFILL_TERMS``."""

s_scale = sp.Symbol("s", positive=True)
r_lo, r_hi = sp.symbols("r_lo r_hi", positive=True)
Ps_i, Ps_j, Pm_i, Pm_j = sp.symbols("P^s_i P^s_j P^m_i P^m_j", nonnegative=True)
Bi, Bj = sp.symbols("B_i B_j", nonnegative=True)


def approximation_factor_expr() -> sp.Expr:
    """``r_hi / r_lo``: how far from the measured optimum seconds-LMetric's choice can be."""
    return r_hi / r_lo


def scale_invariance_check() -> bool:
    """``t_pre`` (engine form, cached and uncached) with every coefficient times ``s`` equals ``s``
    times ``t_pre``: the predicted ``P^s`` is homogeneous of degree 1 in ``theta`` (sympy)."""
    ok = True
    for cached in (True, False):
        e = engine_prefill_time_expr(cached)
        ok &= sp.simplify(e.subs({t: s_scale * t for t in THETA}, simultaneous=True) - s_scale * e) == 0
    return bool(ok)


def _features(n: int, h: int) -> tuple:
    """``phi(n, h)``: ``t_pre(n, h) = theta . phi`` (:data:`THETA` order; the kernel's counts from
    :func:`~fairsched.sim.cost.flash_counts`)."""
    from fairsched.sim.cost import flash_counts

    k = 1 if h > 0 else 0
    return (1, n, n * (h + n / 2), k, k * (h + n), k * n * n / 2, *flash_counts(n, h))


def prefill_features_expr_check() -> bool:
    """``theta . phi(n, h)`` equals ``engine_prefill_time_expr`` for symbolic ``n, h > 0`` (so
    :func:`separating_state` scores what the library computes)."""
    phi = (1, n_new, n_new * (h_cached + n_new / 2), 1, h_cached + n_new, n_new ** 2 / 2, 0, keys_read)
    return sp.simplify(sum(t * f for t, f in zip(THETA, phi, strict=True)) - engine_prefill_time_expr(True)) == 0


def separating_state(theta1, theta2, sizes=(16, 64, 256, 1024, 4096), counts=(1, 2, 4, 8, 16, 64)):
    """Two queues with equal batch sizes that LMetric with ``P = theta1 . phi`` and with
    ``theta2 . phi`` route differently, or None if none in the searched family.

    Family: instance 1 holds ``k`` prompts ``(n1, h1)``, instance 2 one prompt ``(n2, h2)``
    (``n, h`` from ``sizes``, ``h`` also 0), the batch sizes made equal by running decode
    sequences (which add no queued prefill). Returns ``{"queue_1": (k, n1, h1), "queue_2": (n2, h2),
    "P1": (P under theta1, theta2) of instance 1, "P2": same for instance 2}``."""
    def dot(t, f):
        return sum(a * b for a, b in zip(t, f, strict=True))

    # coefficients left out at the end are 0 (a 6-tuple: a model without the CPU kernel's terms)
    theta1, theta2 = (tuple(t) + (0,) * (len(THETA) - len(t)) for t in (theta1, theta2))

    hs = (0, *sizes)
    for (n1, h1), (n2, h2), k in itertools.product(itertools.product(sizes, hs), itertools.product(sizes, hs), counts):
        f1 = tuple(k * x for x in _features(n1, h1))
        f2 = _features(n2, h2)
        a1, a2 = dot(theta1, f1), dot(theta1, f2)
        b1, b2 = dot(theta2, f1), dot(theta2, f2)
        if (a1 - a2) * (b1 - b2) < 0:
            return {"queue_1": (k, n1, h1), "queue_2": (n2, h2), "P1": (a1, b1), "P2": (a2, b2)}
    return None


def z3_check_approximation() -> dict:
    """z3 (nonlinear reals): if ``r_lo P^s <= P^m <= r_hi P^s`` for both instances, ``B >= 0`` and
    ``P^s_i (B_i + 1) <= P^s_j (B_j + 1)`` (i chosen), then ``r_lo P^m_i (B_i + 1) <= r_hi P^m_j
    (B_j + 1)``, i.e. i's measured score is within :func:`approximation_factor_expr` of j's;
    and the factor is attained (``r_lo < r_hi``). Returns ``{"proved", "tight", "witness"}``."""
    import z3

    v = {x: z3.Real(str(x)) for x in (r_lo, r_hi, Ps_i, Ps_j, Pm_i, Pm_j, Bi, Bj)}
    lo, hi = v[r_lo], v[r_hi]
    hyp = [lo > 0, lo <= hi, v[Bi] >= 0, v[Bj] >= 0]
    for ps, pm in ((v[Ps_i], v[Pm_i]), (v[Ps_j], v[Pm_j])):
        hyp += [ps >= 0, pm >= lo * ps, pm <= hi * ps]
    si, sj = v[Ps_i] * (v[Bi] + 1), v[Ps_j] * (v[Bj] + 1)
    mi, mj = v[Pm_i] * (v[Bi] + 1), v[Pm_j] * (v[Bj] + 1)
    num, den = sp.fraction(approximation_factor_expr())
    fac_num, fac_den = (v[num] if num.is_Symbol else None), (v[den] if den.is_Symbol else None)
    s = z3.Solver()
    s.add(*hyp, si <= sj, fac_den * mi > fac_num * mj)
    proved = s.check() == z3.unsat
    t = z3.Solver()
    t.add(*hyp, si <= sj, lo < hi, mj > 0, fac_den * mi == fac_num * mj)
    tight = t.check() == z3.sat
    wit = {}
    if tight:
        m = t.model()
        wit = {k: float(m.eval(x, model_completion=True).as_fraction()) for k, x in ((str(a), b) for a, b in v.items())}
    return {"proved": proved, "tight": tight, "witness": wit}
