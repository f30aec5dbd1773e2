"""Fairness in seconds: bounds when service is *predicted* seconds and when it is *measured*.

Service in seconds (``fairsched.policies.seconds.SecondsService``): an admission is charged
the cost model's predicted prefill time of its uncached tokens at its cached context, each
generated token its predicted decode time at its context. The VTC and DLPM proofs
(``proofs/vtc_upper_bound.md``, ``proofs/dlpm_bound.md``) use only that charges are
non-negative, that the prefill charge is made at admission and that a request's decode
charges are fixed once it is admitted; so, with ``X_s`` the largest prefill charge plus
outstanding decode charge after an admission, in predicted seconds::

    VTC:  |W^p_f - W^p_g| <= 2 X_s          DLPM: |W^p_f - W^p_g| <= 2 (Q^u + X_s)

Measured seconds (``proofs/seconds_bounds.md``): if every charge's measured cost ``m_k`` lies
in ``[(1 - eps) p_k, (1 + eps) p_k]`` (``0 <= eps < 1``) and ``|W^p_f - W^p_g| <= B_p`` on an
interval, then on that interval::

    |W^m_f - W^m_g| <= (1 + eps) B_p + 2 eps min(W^p_f, W^p_g)

and this is tight (:func:`z3_check_measured_bound` proves it and finds the equality case).
The ``eps`` term grows with the service in the interval: with model error, no bound in
measured seconds can stay constant on a long interval (adversarial errors accumulate).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

eps = sp.Symbol("epsilon", nonnegative=True)  # relative error of each charge's prediction
B_p = sp.Symbol("B_p", nonnegative=True)  # bound on the predicted-seconds gap, s
Wp_f, Wp_g = sp.symbols("W^p_f W^p_g", nonnegative=True)  # predicted service on the interval, s
Wm_f, Wm_g = sp.symbols("W^m_f W^m_g", nonnegative=True)  # measured service on the interval, s


def measured_gap_bound_expr() -> sp.Expr:
    """``(1 + eps) B_p + 2 eps min(W^p_f, W^p_g)`` [s] (``proofs/seconds_bounds.md``)."""
    return (1 + eps) * B_p + 2 * eps * sp.Min(Wp_f, Wp_g)


def measured_gap_bound(bound_pred: float, eps_: float, w_pred_f: float, w_pred_g: float) -> float:
    """Evaluate :func:`measured_gap_bound_expr` (floats, seconds).

    Raises:
        ValueError: if ``eps_`` is not in ``[0, 1)`` or a service is negative.
    """
    if not 0.0 <= eps_ < 1.0:
        raise ValueError(f"eps must be in [0, 1), got {eps_}")
    if min(w_pred_f, w_pred_g, bound_pred) < 0:
        raise ValueError("predicted services and bound must be >= 0")
    f = sp.lambdify((B_p, eps, Wp_f, Wp_g), measured_gap_bound_expr(), "math")
    return float(f(bound_pred, eps_, w_pred_f, w_pred_g))


def z3_check_measured_bound() -> dict:
    """Prove with z3 that the hypotheses imply the bound, and that it is attained.

    Hypotheses (reals): ``0 <= eps < 1``, ``W^p >= 0``, ``(1 - eps) W^p <= W^m <= (1 + eps) W^p``
    for f and g (per charge, hence summed), ``|W^p_f - W^p_g| <= B_p``. The bound expression
    is translated from :func:`measured_gap_bound_expr` (the same sympy object the library
    evaluates), so a change there is checked here.

    Returns:
        ``{"proved": bool, "tight": bool, "witness": {name: value}}``.
    """
    import z3

    v = {s: z3.Real(str(s)) for s in (eps, B_p, Wp_f, Wp_g, Wm_f, Wm_g)}

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
    e, bp = v[eps], v[B_p]
    hyp = [e >= 0, e < 1, bp >= 0]
    for w, m in ((v[Wp_f], v[Wm_f]), (v[Wp_g], v[Wm_g])):
        hyp += [w >= 0, m >= (1 - e) * w, m <= (1 + e) * w]
    hyp += [v[Wp_f] - v[Wp_g] <= bp, v[Wp_g] - v[Wp_f] <= bp]
    gap = v[Wm_f] - v[Wm_g]
    s = z3.Solver()
    s.add(*hyp, z3.Or(gap > bound, -gap > bound))
    proved = s.check() == z3.unsat
    t = z3.Solver()
    t.add(*hyp, gap == bound, e > 0, v[Wp_g] > 0, bp > 0)
    tight = t.check() == z3.sat
    wit = {}
    if tight:
        mdl = t.model()
        wit = {str(k): float(mdl.eval(x, model_completion=True).as_fraction()) for k, x in v.items()}
    return {"proved": proved, "tight": tight, "witness": wit}


def charge_errors(result, service) -> dict:
    """Relative error of every charge of an engine run: ``m_k / p_k - 1`` with ``p_k`` the
    logged (predicted) service and ``m_k`` its measured seconds (``meta["svc_seconds"]``).

    Only meaningful when the run's service is in seconds. Returns ``{"eps": max |m/p - 1|,
    "p50", "p90", "prefill_eps", "decode_eps", "errors" (array)}``; charges with ``p_k = 0``
    (a first token: its logits come with the prefill) are skipped.
    """
    p = np.asarray(result.svc_amount, dtype=float)
    m = np.asarray(result.meta["svc_seconds"], dtype=float)
    kind = np.asarray(result.meta.get("svc_kind", np.zeros(len(p), dtype=int)))
    ok = p > 0
    r = m[ok] / p[ok] - 1.0
    k = kind[ok]
    a = np.abs(r)

    def mx(x):
        return float(x.max()) if x.size else 0.0

    return {"eps": mx(a), "p50": float(np.median(a)) if a.size else 0.0,
            "p90": float(np.percentile(a, 90)) if a.size else 0.0,
            "prefill_eps": mx(a[k == 1]), "decode_eps": mx(a[k == 2]), "errors": r}
