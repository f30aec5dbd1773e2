"""Fairness in seconds: bounds when service is *predicted* seconds and when it is *measured*.

Service in seconds (``fairsched.policies.seconds.SecondsService``): an admission is charged
the cost model's predicted prefill time of its uncached tokens at its cached context, each
generated token its predicted decode time at its context. The VTC and DLPM proofs
(``proofs/vtc_upper_bound.md``, ``proofs/dlpm_bound.md``) use only that charges are
non-negative, that the prefill charge is made at admission and that a request's decode
charges are fixed once it is admitted; so, with ``X_s`` the largest prefill charge plus
outstanding decode charge after an admission, in predicted seconds::

    VTC:  |W^p_f - W^p_g| <= 2 X_s          DLPM: |W^p_f - W^p_g| <= 2 (Q^u + X_s)

Measured seconds (``proofs/seconds_bounds.md``): if every charge's measured cost ``m_k``
lies in ``[r_lo p_k, r_hi p_k]`` (``0 <= r_lo <= r_hi``) and ``|W^p_f - W^p_g| <= B_p`` on an
interval, then on that interval::

    |W^m_f - W^m_g| <= r_hi B_p + (r_hi - r_lo) min(W^p_f, W^p_g)

and this is tight (:func:`z3_check_measured_bound` proves it and finds an equality case).
With ``r = 1 +- eps`` it reads ``(1 + eps) B_p + 2 eps min(W^p_f, W^p_g)``. A common
factor (a slower machine: ``r_lo = r_hi = s``) only scales the bound; the *spread*
``r_hi - r_lo`` of the model's relative error makes it grow with the service in the
interval, and no bound in measured seconds can stay constant then (adversarial errors
accumulate: the equality case).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

eps = sp.Symbol("epsilon", nonnegative=True)  # relative error of each charge's prediction
r_lo, r_hi = sp.symbols("r_lo r_hi", nonnegative=True)  # band of measured / predicted per charge
B_p = sp.Symbol("B_p", nonnegative=True)  # bound on the predicted-seconds gap, s
Wp_f, Wp_g = sp.symbols("W^p_f W^p_g", nonnegative=True)  # predicted service on the interval, s
Wm_f, Wm_g = sp.symbols("W^m_f W^m_g", nonnegative=True)  # measured service on the interval, s


def measured_gap_bound_expr() -> sp.Expr:
    """``r_hi B_p + (r_hi - r_lo) min(W^p_f, W^p_g)`` [s] (``proofs/seconds_bounds.md``)."""
    return r_hi * B_p + (r_hi - r_lo) * sp.Min(Wp_f, Wp_g)


def measured_gap_bound_eps_expr() -> sp.Expr:
    """The bound with ``r = 1 +- eps``: ``(1 + eps) B_p + 2 eps min(W^p_f, W^p_g)`` [s]."""
    return sp.expand(measured_gap_bound_expr().subs({r_lo: 1 - eps, r_hi: 1 + eps}))


_BOUND_FN = None


def measured_gap_bound(bound_pred: float, lo: float, hi: float, w_pred_f: float, w_pred_g: float) -> float:
    """Evaluate :func:`measured_gap_bound_expr` (floats, seconds) with ``r_lo = lo``,
    ``r_hi = hi``.

    Raises:
        ValueError: if not ``0 <= lo <= hi`` or a service or the bound is negative.
    """
    global _BOUND_FN
    if not 0.0 <= lo <= hi:
        raise ValueError(f"need 0 <= r_lo <= r_hi, got {lo}, {hi}")
    if min(w_pred_f, w_pred_g, bound_pred) < 0:
        raise ValueError("predicted services and bound must be >= 0")
    if _BOUND_FN is None:
        _BOUND_FN = sp.lambdify((B_p, r_lo, r_hi, Wp_f, Wp_g), measured_gap_bound_expr(), "math")
    return float(_BOUND_FN(bound_pred, lo, hi, w_pred_f, w_pred_g))


def z3_check_measured_bound() -> dict:
    """Prove with z3 that the hypotheses imply the bound, and that it is attained.

    Hypotheses (reals): ``0 <= r_lo <= r_hi``, ``W^p >= 0``, ``r_lo W^p <= W^m <= r_hi W^p``
    for f and g (per charge, hence summed), ``|W^p_f - W^p_g| <= B_p``. The bound expression
    is translated from :func:`measured_gap_bound_expr` (the same sympy object the library
    evaluates), so a change there is checked here.

    Returns:
        ``{"proved": bool, "tight": bool, "witness": {name: value}}``.
    """
    import z3

    v = {s: z3.Real(str(s)) for s in (r_lo, r_hi, B_p, Wp_f, Wp_g, Wm_f, Wm_g)}

    def to_z3(e):
        if e.is_Symbol:
            return v[e]
        if e.is_Number:
            return z3.RealVal(str(e))
        if isinstance(e, sp.Add):
            return z3.Sum([to_z3(a) for a in e.args])
        if isinstance(e, sp.Mul):
            out = to_z3(e.args[0])
            for a in e.args[1:]:
                out = out * to_z3(a)
            return out
        if isinstance(e, sp.Min):
            a, b = (to_z3(x) for x in e.args)
            return z3.If(a <= b, a, b)
        raise NotImplementedError(f"no z3 translation for {e!r}")

    bound = to_z3(measured_gap_bound_expr())
    lo, hi, bp = v[r_lo], v[r_hi], v[B_p]
    hyp = [lo >= 0, lo <= hi, bp >= 0]
    for w, m in ((v[Wp_f], v[Wm_f]), (v[Wp_g], v[Wm_g])):
        hyp += [w >= 0, m >= lo * w, m <= hi * w]
    hyp += [v[Wp_f] - v[Wp_g] <= bp, v[Wp_g] - v[Wp_f] <= bp]
    gap = v[Wm_f] - v[Wm_g]
    s = z3.Solver()
    s.add(*hyp, z3.Or(gap > bound, -gap > bound))
    proved = s.check() == z3.unsat
    t = z3.Solver()
    t.add(*hyp, gap == bound, lo < hi, v[Wp_g] > 0, bp > 0)
    tight = t.check() == z3.sat
    wit = {}
    if tight:
        mdl = t.model()
        wit = {str(k): float(mdl.eval(x, model_completion=True).as_fraction()) for k, x in v.items()}
    return {"proved": proved, "tight": tight, "witness": wit}


def charge_band(predicted, measured) -> dict:
    """The band ``[r_lo, r_hi]`` of ``m_k / p_k`` over the charges with ``p_k > 0`` (the
    hypothesis of the measured-seconds bound, read off a run), its median, and ``eps`` =
    ``max |m_k / p_k - 1|`` (the same band centred on 1)."""
    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    ok = p > 0
    r = m[ok] / p[ok]
    if not r.size:
        return {"r_lo": 1.0, "r_hi": 1.0, "r_median": 1.0, "eps": 0.0, "n": 0}
    return {"r_lo": float(r.min()), "r_hi": float(r.max()), "r_median": float(np.median(r)),
            "eps": float(np.abs(r - 1).max()), "n": int(r.size)}
