"""LMetric (P_i * B_i routing score): hyper-parameter cancellation, KV$-hotspot dynamics,
harm condition with the prefill cost model, and the token-count blind spot.

Units: P in tokens, B in requests, rates in requests/s, times in seconds. Proofs in
``proofs/lmetric_cancellation.md``, ``proofs/lmetric_hotspot.md``, ``proofs/lmetric_harm.md``,
``proofs/lmetric_blind_spot.md``.

Hotspot fluid model (arrival-only, as in the paper's restated condition): class c (fraction x
of QPS) goes to the |M| holders, the rest to the |Mbar| others, all start at B_0, so
``B_M(t) = B_0 + a t``, ``B_Mbar(t) = B_0 + b t`` with ``a = x QPS/|M|``, ``b = xbar QPS/|Mbar|``.
With a hit on M the score compares ``u_c (B_M + 1)`` with ``L_c (B_Mbar + 1)``, so M wins while
``(B_M + 1)/(B_Mbar + 1) < kappa = L_c/u_c`` (fairsched's +1; the paper's form drops it).
"""

from __future__ import annotations

import math

import sympy as sp

from .cost import default_cost_coefficients
from .symbols import (
    B0,
    B1,
    B2,
    P1,
    P2,
    QPS,
    L_c,
    O_out,
    alpha,
    beta,
    c_b,
    c_c,
    h_cached,
    kappa,
    lam,
    n_cold,
    n_hot,
    t,
    u_c,
    x,
    xbar,
)

__all__ = [
    "product_score", "scaled_product_difference", "log_linear_score", "product_prefers_first",
    "linear_prefers_first", "linear_disagreement_condition", "linear_threshold_lambda",
    "linear_disagreement_interval", "rate_hot", "rate_cold", "batch_ratio", "benign_condition",
    "limit_ratio", "kappa_expr", "t_star", "t_star_exists_condition", "steady_ratio",
    "prefill_saved", "harm_time", "harm_load_threshold", "classify_regime", "hotspot_numbers",
    "blind_spot_threshold", "blind_spot_condition", "same_request_cost_derivative",
    "iteration_time", "request_work", "steady_state_hotspot", "classify_steady", "erlang_b",
    "ordered_hunt_loads", "tie_break_loads", "HARM_ABS_S", "HARM_REL", "HOTSPOT_RATIO", "d_a_sym", "rho_sym",
]

a_sym = sp.Symbol("a", positive=True)  # hot per-instance arrival rate x QPS / |M|
b_sym = sp.Symbol("b", positive=True)  # cold per-instance arrival rate xbar QPS / |Mbar|
S_sym = sp.Symbol("S", positive=True)  # prefill seconds saved by the hit
beta_d = sp.Symbol("beta_d", positive=True)  # decode seconds per step per extra sequence


# --- cancellation ------------------------------------------------------------------------
def product_score(P=P1, B=B1, a=alpha, b=beta) -> sp.Expr:
    """Score ``(a P)(b B)``: a, b > 0 are unit/scale factors of the two indicators."""
    return (a * P) * (b * B)


def scaled_product_difference() -> sp.Expr:
    """``(aP_1)(bB_1) - (aP_2)(bB_2)`` factored: ``a b (P_1 B_1 - P_2 B_2)``; its sign, hence
    the argmin, does not depend on a, b > 0 (proved)."""
    return sp.factor(product_score(P1, B1) - product_score(P2, B2))


def log_linear_score(P=P1, B=B1, a=alpha, b=beta) -> sp.Expr:
    """``log((aP)(bB)) = log P + log B + (log a + log b)``: a linear score with fixed equal
    weights in log space plus an instance-independent constant."""
    return sp.expand_log(sp.log(product_score(P, B, a, b)), force=True)


def product_prefers_first() -> sp.Rel:
    """Instance 1 strictly preferred by the product: ``P_1 B_1 < P_2 B_2``."""
    return sp.StrictLessThan(P1 * B1, P2 * B2)


def linear_prefers_first(a=1, b=1) -> sp.Rel:
    """Instance 1 strictly preferred by ``lam * a P + (1 - lam) * b B``."""
    return sp.StrictLessThan(lam * a * P1 + (1 - lam) * b * B1, lam * a * P2 + (1 - lam) * b * B2)


def linear_disagreement_condition(a=1, b=1) -> sp.Expr:
    """The linear score (scales a, b) and the product pick different instances of two:
    ``Xor(linear prefers 1, product prefers 1)`` (ties excluded on both sides)."""
    lin, prod = linear_prefers_first(a, b), product_prefers_first()
    eq = sp.Eq(lam * a * (P1 - P2) + (1 - lam) * b * (B1 - B2), 0)
    return sp.And(sp.Xor(lin, prod), sp.Not(eq), sp.Ne(P1 * B1, P2 * B2))


def linear_threshold_lambda(a=1, b=1) -> sp.Expr:
    """``lam_0 = b dB / (b dB - a dP)`` (dP = P_1 - P_2, dB = B_1 - B_2): the linear score
    flips at lam_0; only when dP, dB have opposite signs is lam_0 in (0, 1) and can the
    scores disagree. Depends on a/b, unlike the product."""
    dP, dB = P1 - P2, B1 - B2
    return b * dB / (b * dB - a * dP)


def linear_disagreement_interval(P_1, B_1, P_2, B_2, a=1.0, b=1.0):
    """Numeric: the sub-interval of lam in (0, 1) on which the linear score disagrees with
    the product for this pair, or None. Returns ``(lo, hi)`` (open interval)."""
    dP, dB = P_1 - P_2, B_1 - B_2
    prod = P_1 * B_1 - P_2 * B_2
    if prod == 0:
        return None
    if dP * dB >= 0:  # one instance dominates or ties in an indicator: both agree
        return None
    lam0 = b * dB / (b * dB - a * dP)
    # linear prefers 1 iff lam*(a dP - b dB) + b dB < 0
    slope = a * dP - b * dB
    lin_pref1_when_above = slope < 0  # for lam > lam0
    prod_pref1 = prod < 0
    return (lam0, 1.0) if lin_pref1_when_above != prod_pref1 else (0.0, lam0)


# --- hotspot dynamics --------------------------------------------------------------------
def rate_hot() -> sp.Expr:
    """``a = x QPS / |M|`` requests/s per hot instance."""
    return x * QPS / n_hot


def rate_cold() -> sp.Expr:
    """``b = xbar QPS / |Mbar|`` requests/s per cold instance."""
    return xbar * QPS / n_cold


def batch_ratio(symbolic_rates: bool = False) -> sp.Expr:
    """``B_M(t)/B_Mbar(t) = (B_0 + a t)/(B_0 + b t)`` (dimensionless)."""
    a, b = (a_sym, b_sym) if symbolic_rates else (rate_hot(), rate_cold())
    return (B0 + a * t) / (B0 + b * t)


def benign_condition() -> sp.Rel:
    """``x / xbar <= |M| / |Mbar|``: equivalent to ratio <= 1 for all t >= 0 (proved)."""
    return sp.Le(x / xbar, n_hot / n_cold)


def limit_ratio() -> sp.Expr:
    """``lim_{t->oo} B_M/B_Mbar = a/b = x |Mbar| / (xbar |M|)``."""
    return sp.simplify(rate_hot() / rate_cold())


def kappa_expr() -> sp.Expr:
    """Diversion point ``kappa = L_c / u_c`` (full / uncached prompt tokens)."""
    return L_c / u_c


def t_star(plus_one: bool = False, symbolic_rates: bool = False) -> sp.Expr:
    """``t* = B_0 (kappa - 1) / (a - kappa b)`` seconds: the ratio reaches kappa (with
    ``plus_one``: ``(B_0 + 1)(kappa - 1)/(a - kappa b)``, fairsched's P (B + 1) score)."""
    a, b = (a_sym, b_sym) if symbolic_rates else (rate_hot(), rate_cold())
    b0 = B0 + 1 if plus_one else B0
    return b0 * (kappa - 1) / (a - kappa * b)


def t_star_exists_condition(symbolic_rates: bool = False) -> sp.Rel:
    """For kappa > 1: a finite t* > 0 exists iff ``a > kappa b`` iff limit ratio > kappa."""
    a, b = (a_sym, b_sym) if symbolic_rates else (rate_hot(), rate_cold())
    return sp.StrictGreaterThan(a, kappa * b)


def steady_ratio() -> sp.Expr:
    """Long-run ratio under the product score when not benign: ``min(a/b, kappa)``."""
    return sp.Min(limit_ratio(), kappa)


# --- harm --------------------------------------------------------------------------------
def prefill_saved() -> sp.Expr:
    """Prefill seconds saved by a hit of h = L_c - u_c cached tokens:
    ``t(L_c, 0) - t(u_c, h) = b h + c h^2 / 2`` (independent of a and of u_c; proved)."""
    return c_b * h_cached + c_c * h_cached**2 / 2


def harm_time(symbolic_rates: bool = False) -> sp.Expr:
    """``t_h = S / (O beta_d (a - b))`` s: the time at which a class-c request's extra decode
    time on M, ``O beta_d (B_M - B_Mbar)`` (O output tokens, beta_d = b_d + c_d * mean context
    seconds per step per extra sequence), exceeds the prefill it saves, S. Exists iff a > b."""
    a, b = (a_sym, b_sym) if symbolic_rates else (rate_hot(), rate_cold())
    return S_sym / (O_out * beta_d * (a - b))


def harm_load_threshold(plus_one: bool = False) -> sp.Expr:
    """At the diversion point the hit is harmful iff ``B_Mbar >`` this [requests]: the product
    caps the *ratio*, harm depends on the *difference*. Paper's ``P B`` score: diversion at
    ``B_M = kappa B_Mbar``, difference ``(kappa - 1) B_Mbar``, threshold ``S / (O beta_d
    (kappa - 1))``. fairsched's ``P (B + 1)`` (``plus_one``): diversion at ``B_M + 1 = kappa
    (B_Mbar + 1)``, difference ``(kappa - 1)(B_Mbar + 1)``, threshold one request lower.
    ``tests/test_theory_mutations.py::test_harm_load_threshold_derived_from_diversion_point``."""
    return S_sym / (O_out * beta_d * (kappa - 1)) - (1 if plus_one else 0)


def hotspot_numbers(x_val, n_hot_val, n_cold_val, qps, B0_val, L, u, n_out=256, ctx_mean=2048.0,
                    coeffs=None, plus_one=True) -> dict:
    """All hotspot quantities of the fluid model for concrete numbers
    (``proofs/lmetric_hotspot.md``, ``proofs/lmetric_harm.md``).

    Args:
        x_val: the class's share x of arrivals (fraction in [0, 1]).
        n_hot_val: |M|, instances holding the class's prefix (instances, > 0; may be fractional).
        n_cold_val: |Mbar|, the other instances (instances, > 0).
        qps: cluster arrival rate [requests/s].
        B0_val: batch size B_0 of every instance at t = 0 [requests].
        L: the class request's prompt length L_c [tokens].
        u: its tokens not cached on a holder, u_c [tokens, > 0].
        n_out: output length O [tokens].
        ctx_mean: mean context of a decoding sequence [tokens].
        coeffs: cost coefficients (:func:`fairsched.theory.cost.default_cost_coefficients`,
            seconds per token etc.); default the A100 profile.
        plus_one: use fairsched's ``P (B + 1)`` score (else the paper's ``P B``).

    Returns:
        dict: ``a``, ``b`` [requests/s per instance], ``kappa`` = L/u, ``limit_ratio`` a/b,
        ``benign`` (a <= b), ``t_star`` [s] (None when a <= kappa b), ``t_harm`` [s] (None when
        a <= b), ``S`` prefill saved by the hit [s], ``beta_d`` [s per step per sequence],
        ``harm_load_threshold`` [requests] (:func:`harm_load_threshold`, with ``plus_one``;
        inf when kappa <= 1).

    Raises:
        ZeroDivisionError: ``n_hot_val``, ``n_cold_val`` or ``u`` is 0.
    """
    k = coeffs or default_cost_coefficients()
    a = x_val * qps / n_hot_val
    b = (1 - x_val) * qps / n_cold_val
    kap = L / u
    h = L - u
    S = k["prefill_b_s_per_tok"] * h + k["prefill_c_s_per_tok2"] * h * h / 2
    bd = k["decode_b_s_per_seq"] + k["decode_c_s_per_ctx_tok"] * ctx_mean
    b0 = B0_val + 1 if plus_one else B0_val
    ts = b0 * (kap - 1) / (a - kap * b) if a > kap * b else None
    th = S / (n_out * bd * (a - b)) if a > b else None
    return {"a": a, "b": b, "kappa": kap, "limit_ratio": (a / b) if b > 0 else math.inf,
            "benign": a <= b, "t_star": ts, "t_harm": th, "S": S, "beta_d": bd,
            "harm_load_threshold": (S / (n_out * bd * (kap - 1)) - (1 if plus_one else 0)) if kap > 1 else math.inf}


def classify_regime(x_val, frac_hot, n_inst, qps, B0_val, L, u, **kw) -> str:
    """``"benign"`` (a <= b), ``"hotspot"`` (a > b and the score diverts at t* before the
    hit turns harmful, t* <= t_h), or ``"harmful"`` (a > b and t_h < t* or no t*)."""
    nh = max(frac_hot * n_inst, 1e-9)
    nc = max(n_inst - nh, 1e-9)
    d = hotspot_numbers(x_val, nh, nc, qps, B0_val, L, u, **kw)
    if d["benign"]:
        return "benign"
    if d["t_star"] is not None and d["t_star"] <= d["t_harm"]:
        return "hotspot"
    return "harmful"


# --- blind spot --------------------------------------------------------------------------
def blind_spot_threshold(general: bool = True) -> sp.Expr:
    """For n_1 < n_2 new tokens with h_1, h_2 cached: ``t(n_1, h_1) > t(n_2, h_2)`` (P ranks
    instance 1 cheaper, real cost says dearer) iff ``h_1 > h*`` with
    ``h* = h_2 n_2 / n_1 + (n_2 - n_1)(b + c (n_1 + n_2)/2) / (c n_1)`` (h_2 = 0 if not
    ``general``). Tokens. Proof: ``proofs/lmetric_blind_spot.md``."""
    n1, n2, h2 = sp.symbols("n_1 n_2 h_2", positive=True)
    base = (n2 - n1) * (c_b + c_c * (n1 + n2) / 2) / (c_c * n1)
    return (h2 * n2 / n1 + base) if general else base


def blind_spot_condition() -> sp.Rel:
    """``t(n_1, h_1) > t(n_2, h_2)`` as a relational in n_1, n_2, h_1, h_2, b, c."""
    n1, n2, h1, h2 = sp.symbols("n_1 n_2 h_1 h_2", positive=True)
    tt = lambda n, h: c_b * n + c_c * n * (h + n / 2)  # noqa: E731  (a cancels)
    return sp.StrictGreaterThan(tt(n1, h1), tt(n2, h2))


def same_request_cost_derivative() -> sp.Expr:
    """``d/dh t(L - h, h) = -(b + c h) <= 0``: for one request, more cached tokens is never
    dearer, so P never misranks instances that differ only in how much of r they cache."""
    L = sp.Symbol("L", positive=True)
    from .cost import prefill_time_expr
    from .symbols import n_new
    e = prefill_time_expr().subs(n_new, L - h_cached)
    return sp.simplify(sp.diff(e, h_cached))


# --- corrected model: in lmetric_steady.py (re-exported here) ----------------------------
from .lmetric_steady import (  # noqa: E402
    HARM_ABS_S,
    HARM_REL,
    HOTSPOT_RATIO,
    classify_steady,
    d_a_sym,
    erlang_b,
    iteration_time,
    ordered_hunt_loads,
    request_work,
    rho_sym,
    steady_state_hotspot,
    tie_break_loads,
)
