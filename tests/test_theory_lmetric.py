"""Checks of fairsched.theory.lmetric and fairsched.theory.cost against direct computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import z3
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

from fairsched.theory import cost as C
from fairsched.theory import lmetric as LM
from fairsched.theory import symbols as S

RNG = np.random.default_rng(0)


# ---------------------------------------------------------------- cancellation
def test_cancellation_factorisation_and_z3():
    d = LM.scaled_product_difference()
    assert sp.simplify(d - S.alpha * S.beta * (S.P1 * S.B1 - S.P2 * S.B2)) == 0
    a, b, p1, p2, b1, b2 = z3.Reals("a b p1 p2 b1 b2")
    s = z3.Solver()
    s.add(a > 0, b > 0, p1 > 0, p2 > 0, b1 > 0, b2 > 0)
    s.add(z3.Not(((a * p1) * (b * b1) < (a * p2) * (b * b2)) == (p1 * b1 < p2 * b2)))
    assert s.check() == z3.unsat


def test_cancellation_bruteforce_argmin():
    for _ in range(300):
        n = RNG.integers(2, 9)
        P = RNG.integers(1, 5000, n).astype(float)
        B = RNG.integers(1, 64, n).astype(float)
        a, b = 10 ** RNG.uniform(-3, 3, 2)
        assert np.argmin((a * P) * (b * B)) == np.argmin(P * B)
        # log space: equal-weight linear score, same argmin
        assert np.argmin(np.log(P) + np.log(B)) == np.argmin(P * B)
    e = LM.log_linear_score()
    assert sp.simplify(e - (sp.log(S.P1) + sp.log(S.B1) + sp.log(S.alpha) + sp.log(S.beta))) == 0


def test_linear_disagreement_interval_bruteforce():
    lams = np.linspace(0.0005, 0.9995, 1999)
    hits = 0
    for _ in range(300):
        P1, P2 = RNG.integers(1, 4000, 2).astype(float)
        B1, B2 = RNG.integers(1, 40, 2).astype(float)
        a, b = 10 ** RNG.uniform(-2, 2, 2)
        iv = LM.linear_disagreement_interval(P1, B1, P2, B2, a, b)
        prod1 = P1 * B1 < P2 * B2
        lin = lams * a * (P1 - P2) + (1 - lams) * b * (B1 - B2)
        dis = ((lin < 0) != prod1) & (lin != 0) & (P1 * B1 != P2 * B2)
        if iv is None:
            assert not dis.any()
        else:
            lo, hi = iv
            inside = (lams > lo + 1e-9) & (lams < hi - 1e-9)
            edge = (np.abs(lams - lo) < 1e-6) | (np.abs(lams - hi) < 1e-6)
            assert np.all(dis[~edge] == inside[~edge])
            hits += dis.any()
    assert hits > 20
    # symbolic threshold: at lam_0 the linear scores tie
    lam0 = LM.linear_threshold_lambda(S.alpha, S.beta)
    tie = S.alpha * lam0 * (S.P1 - S.P2) + (1 - lam0) * S.beta * (S.B1 - S.B2)
    assert sp.simplify(tie) == 0


def test_linear_disagreement_condition_symbolic_matches_numeric():
    cond = LM.linear_disagreement_condition()
    vals = {S.P1: 100, S.B1: 10, S.P2: 400, S.B2: 2, S.lam: sp.Rational(1, 2)}
    # product: 1000 vs 800 -> prefers 2; linear at 1/2: 55 vs 201 -> prefers 1
    assert bool(cond.subs(vals))
    assert LM.linear_disagreement_interval(100, 10, 400, 2) == pytest.approx((8 / 308, 1.0))


# ---------------------------------------------------------------- hotspot
def test_benign_condition_equivalent_to_ratio_le_1():
    a, b = LM.a_sym, LM.b_sym
    r = LM.batch_ratio(symbolic_rates=True)
    assert sp.simplify(r - 1 - (a - b) * S.t / (S.B0 + b * S.t)) == 0
    for _ in range(500):
        x = RNG.uniform(0.01, 0.99)
        nh = int(RNG.integers(1, 16))
        nc = int(RNG.integers(1, 16))
        benign = bool(LM.benign_condition().subs({S.x: x, S.xbar: 1 - x, S.n_hot: nh, S.n_cold: nc}))
        ts = np.linspace(0, 1000, 201)
        ratio = (5 + x * 100 / nh * ts) / (5 + (1 - x) * 100 / nc * ts)
        assert benign == bool(np.all(ratio <= 1 + 1e-12))
    assert sp.simplify(LM.limit_ratio() - sp.limit(LM.batch_ratio(), S.t, sp.oo)) == 0


def _tstar_num(x, nh, nc, qps, b0, kap, plus_one):
    return float(LM.t_star(plus_one).subs({S.x: x, S.xbar: 1 - x, S.n_hot: nh, S.n_cold: nc,
                                          S.QPS: qps, S.B0: b0, S.kappa: kap}))


def test_t_star_matches_fluid_ode_event():
    checked = 0
    for _ in range(40):
        x = RNG.uniform(0.3, 0.95)
        nh, nc = int(RNG.integers(1, 4)), int(RNG.integers(4, 16))
        qps, b0, kap = RNG.uniform(5, 200), RNG.uniform(1, 30), RNG.uniform(1.5, 8)
        a, b = x * qps / nh, (1 - x) * qps / nc
        exists = bool(LM.t_star_exists_condition().subs({S.x: x, S.xbar: 1 - x, S.n_hot: nh,
                                                         S.n_cold: nc, S.QPS: qps, S.kappa: kap}))
        ev = lambda t, y, kap=kap: y[0] / y[1] - kap  # noqa: E731
        ev.terminal = True
        sol = solve_ivp(lambda t, y, a=a, b=b: [a, b], (0, 1e4), [b0, b0], events=ev, rtol=1e-10, atol=1e-10)
        found = len(sol.t_events[0]) > 0
        if not exists:
            assert not found
        elif _tstar_num(x, nh, nc, qps, b0, kap, False) < 1e4:
            assert sol.t_events[0][0] == pytest.approx(_tstar_num(x, nh, nc, qps, b0, kap, False), rel=1e-6)
            checked += 1
    assert checked > 5


def _route(x, nh, nc, qps, b0, L, u, T):
    """Discrete LMetric router, arrival-only: score P (B + 1), P = r's uncached tokens.
    Class c hits on instances < nh. Returns (first diversion time of class c, B)."""
    B = np.full(nh + nc, float(b0))
    acc, first = 0.0, None
    k = 0
    while k / qps < T:
        tk = k / qps
        acc += x
        is_c = acc >= 1.0
        if is_c:
            acc -= 1.0
            P = np.where(np.arange(nh + nc) < nh, u, L)
        else:
            P = np.full(nh + nc, float(L))
        i = int(np.argmin(P * (B + 1)))
        if is_c and i >= nh and first is None:
            first = tk
        B[i] += 1
        k += 1
    return first, B


@pytest.mark.parametrize("x,nh,nc,qps,b0,L,u", [(0.6, 2, 6, 400.0, 20, 2048, 512),
                                                 (0.8, 1, 7, 400.0, 200, 2048, 512),
                                                 (0.5, 2, 14, 300.0, 50, 4096, 1024)])
def test_t_star_matches_discrete_router(x, nh, nc, qps, b0, L, u):
    """Discreteness: the first diversion compares per-instance minima, which sit within one
    request of the fluid means, so it may differ from t* by (kappa + 1)/(a - kappa b) plus
    an inter-arrival gap or two."""
    kap = L / u
    a, b = x * qps / nh, (1 - x) * qps / nc
    ts = _tstar_num(x, nh, nc, qps, b0, kap, plus_one=True)
    first, _ = _route(x, nh, nc, qps, b0, L, u, 3 * ts)
    assert first is not None
    assert abs(first - ts) <= (kap + 1) / (a - kap * b) + 2 / qps


def test_steady_ratio_min_of_limit_and_kappa():
    for x, nh, nc, L, u in [(0.6, 2, 6, 2048, 512), (0.4, 2, 6, 4096, 256)]:
        _, B = _route(x, nh, nc, 200.0, 4, L, u, 200.0)
        ratio = B[:nh].mean() / B[nh:].mean()
        lim = x * nc / ((1 - x) * nh)
        assert ratio == pytest.approx(min(lim, L / u), rel=0.05)


# ---------------------------------------------------------------- harm
def test_prefill_saved_identity():
    Lc = sp.Symbol("L", positive=True)
    tp = C.prefill_time_expr()
    saved = tp.subs({S.n_new: Lc, S.h_cached: 0}) - tp.subs({S.n_new: Lc - S.h_cached}, simultaneous=True)
    assert sp.simplify(saved - LM.prefill_saved()) == 0


def test_harm_time_matches_root_find():
    k = C.default_cost_coefficients()
    for _ in range(30):
        x = RNG.uniform(0.3, 0.9)
        nh, nc = 2, 14
        qps, b0 = RNG.uniform(10, 200), 8.0
        L = float(RNG.integers(1024, 32768))
        u = float(RNG.integers(16, 512))
        n_out, ctx = 256, 2048.0
        d = LM.hotspot_numbers(x, nh, nc, qps, b0, L, u, n_out=n_out, ctx_mean=ctx)
        if d["benign"]:
            continue
        bd = k["decode_b_s_per_seq"] + k["decode_c_s_per_ctx_tok"] * ctx

        def J(t, d=d, b0=b0, u=u, L=L, bd=bd, n_out=n_out):  # time on M minus time on Mbar
            BM, BMb = b0 + d["a"] * t, b0 + d["b"] * t
            on_m = C.prefill_time(u, L - u) + n_out * (k["decode_a_s"] + bd * (BM + 1))
            on_mb = C.prefill_time(L, 0) + n_out * (k["decode_a_s"] + bd * (BMb + 1))
            return on_m - on_mb

        th = brentq(J, 0.0, 1e7)
        assert th == pytest.approx(d["t_harm"], rel=1e-6)


def test_classify_regime_consistency():
    kw = dict(n_inst=16, qps=100.0, B0_val=8.0, L=4096, u=256)
    assert LM.classify_regime(0.05, 0.5, **kw) == "benign"
    r = LM.classify_regime(0.5, 0.125, **kw)
    assert r in ("hotspot", "harmful")
    d = LM.hotspot_numbers(0.5, 2, 14, 100.0, 8.0, 4096, 256)
    assert (r == "harmful") == (d["t_star"] is None or d["t_harm"] < d["t_star"])


# ---------------------------------------------------------------- blind spot
def test_blind_spot_threshold_bruteforce():
    for prof in C.PROFILES:
        k = C.default_cost_coefficients(prof)
        b, c = k["prefill_b_s_per_tok"], k["prefill_c_s_per_tok2"]
        thr = LM.blind_spot_threshold()
        for _ in range(300):
            n1 = float(RNG.integers(1, 4000))
            n2 = n1 + float(RNG.integers(1, 4000))
            h2 = float(RNG.integers(0, 50000))
            h1 = float(RNG.integers(0, 400000))
            hs = float(thr.subs({sp.Symbol("n_1", positive=True): n1, sp.Symbol("n_2", positive=True): n2,
                                 sp.Symbol("h_2", positive=True): h2, S.c_b: b, S.c_c: c}))
            real_1_dearer = C.prefill_time(n1, h1, k) > C.prefill_time(n2, h2, k)
            if abs(h1 - hs) > 1e-6 * max(1.0, hs):
                assert real_1_dearer == (h1 > hs)


def test_same_request_never_misranked():
    d = LM.same_request_cost_derivative()
    assert sp.simplify(d + S.c_b + S.c_c * S.h_cached) == 0


# ---------------------------------------------------------------- cost model
def test_cost_coefficients_trace_to_roofline():
    k = C.default_cost_coefficients("a100-llama3-8b")
    assert k["prefill_b_s_per_tok"] == pytest.approx(2 * 8.03e9 / (0.5 * 312e12))
    assert k["prefill_c_s_per_tok2"] == pytest.approx(4 * 32 * 4096 / (0.5 * 312e12))
    assert k["prefill_a_s"] == pytest.approx(8.03e9 * 2 / (0.8 * 2.039e12))
    assert k["decode_c_s_per_ctx_tok"] == pytest.approx(2 * 32 * 1024 * 2 / (0.8 * 2.039e12))
    k2 = C.default_cost_coefficients("a10g-llama2-7b")
    assert k2["decode_c_s_per_ctx_tok"] == pytest.approx(2 * 32 * 4096 * 2 / (0.8 * 600e9))
    assert all(v > 0 for v in k2.values()) and set(k) == set(k2)


def test_prefill_model_matches_flop_count_within_roofline():
    """t_model = weight-read + FLOPs/F is between the roofline max and 2x it, and the
    attention term equals the exact causal pair count up to the n/2 absorbed in b."""
    r = C.roofline_terms()
    k = C.default_cost_coefficients()
    pairs = C.attention_pairs_expr()
    assert sp.expand(pairs - S.n_new * (S.h_cached + S.n_new / 2)) == sp.expand(S.n_new / 2)
    for n, h in [(1, 0), (128, 0), (2048, 30000), (8192, 0)]:
        flops = r["linear_flops_per_tok"] * n + r["attn_flops_per_pair"] * n * (h + n / 2)
        roof = max(r["weight_bytes"] / r["bytes_per_s"], flops / r["flops_per_s"])
        tm = C.prefill_time(n, h, k)
        assert roof <= tm <= 2 * roof + 1e-12
    assert math.isclose(C.decode_step_time(1, 0), k["decode_a_s"] + k["decode_b_s_per_seq"])
