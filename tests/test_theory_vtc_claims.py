"""VTC's claims for a non-backlogged client (4U) and latency (``proofs/vtc_other_claims.md``)."""

from __future__ import annotations

import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairsched.theory import fairness as F
from fairsched.theory import symbols as S
from fairsched.theory import vtc_claims as V
from fairsched.theory._reference import simulate_vtc
from fairsched.theory.smt import prove, to_z3


def test_peak_admission_refutes_4U_reserve_keeps_it():
    vals = {"w_p": 1, "w_q": 2, "L_in": 1, "M": 1000}
    four_u = F.evaluate(V.nonbacklogged_bound_published(), **vals)
    reqs = V.peak_nonbacklogged_counterexample_requests()
    peak = simulate_vtc(reqs, max_running=10**6, kv_capacity=1000, admission="peak")
    gain = V.max_gain_over_backlogged(peak, "f", "g")
    assert four_u == 8000 and gain > four_u  # 9,048 measured
    assert gain <= F.evaluate(V.nonbacklogged_bound(), X=peak.x_measured) and peak.max_occupancy <= 1000
    res = simulate_vtc(reqs, max_running=10**6, kv_capacity=1000, admission="reserve")
    assert V.max_gain_over_backlogged(res, "f", "g") <= F.evaluate(3 * S.U, **vals)


req_st = st.tuples(st.integers(0, 30), st.sampled_from("abc"), st.integers(1, 12), st.integers(1, 8), st.integers(0, 3))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(req_st, min_size=2, max_size=25), st.sampled_from([("slots", 1), ("slots", 3), ("reserve", 30),
                                                                   ("peak", 30)]))
def test_nonbacklogged_gain_within_3X_random(reqs, rule):
    admission, cap = rule
    kw = {"max_running": cap} if admission == "slots" else {"max_running": 10**6, "kv_capacity": cap,
                                                            "admission": admission}
    res = simulate_vtc(reqs, **kw)
    bound = F.evaluate(V.nonbacklogged_bound(), X=res.x_measured)
    for f in res.clients:
        for g in res.clients:
            if f != g:
                assert V.max_gain_over_backlogged(res, f, g) <= bound + 1e-9


def test_published_latency_formula_and_ours():
    """The published ``2(n - 1) U / a`` as stated; ours with X = U is ``(4(n - 1) + 1) U / a``."""
    n, U, a = S.n_clients, S.U, S.rate_a
    assert sp.simplify(F.vtc_latency_bound_published() - 2 * (n - 1) * U / a) == 0
    assert sp.simplify(V.latency_bound().subs(S.X, U) - (4 * (n - 1) + 1) * U / a) == 0
    assert F.evaluate(F.vtc_latency_bound_published(), U=100, n=3, a=50) == 8.0


def test_latency_bound_from_the_3X_theorem_z3():
    """z3 on the library's expression: n = 3 clients; while f waits for its first admission,
    W_f <= X (decode of requests admitted earlier) and W_j <= W_f + 3X (the theorem); service
    at rate >= a for time T gives sum W >= a T; hence T <= latency_bound()."""
    T, Wf, W1, W2 = sp.symbols("T W_f W_1 W_2", real=True)
    env = {}
    bound = to_z3(V.latency_bound().subs(S.n_clients, 3), env)
    x, a = to_z3(S.X, env), to_z3(S.rate_a, env)
    Tz, wf, w1, w2 = (to_z3(v, env) for v in (T, Wf, W1, W2))
    hyps = [x > 0, a > 0, Tz >= 0, wf >= 0, w1 >= 0, w2 >= 0, wf <= x, w1 <= wf + 3 * x, w2 <= wf + 3 * x,
            wf + w1 + w2 >= a * Tz]
    ok, m = prove(Tz <= bound, *hyps)
    assert ok, m
