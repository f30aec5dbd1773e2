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
    """The published ``2(n - 1) U / a`` as stated; ours is ``(2(n - 1) X + D_tau) / a``, equal to
    the published one when ``X = U`` and ``D_tau = 0``, at most ``(2n - 1) U / a`` under reserve."""
    n, U, a = S.n_clients, S.U, S.rate_a
    assert sp.simplify(F.vtc_latency_bound_published() - 2 * (n - 1) * U / a) == 0
    assert sp.simplify(V.latency_bound().subs({S.X: U, S.D_tau: 0}) - F.vtc_latency_bound_published()) == 0
    assert sp.simplify(V.latency_bound().subs({S.X: U, S.D_tau: U}) - V.latency_bound_reserve()) == 0
    assert F.evaluate(F.vtc_latency_bound_published(), U=100, n=3, a=50) == 8.0


def test_latency_bound_from_per_client_facts_z3():
    """z3 on the library's expression, n = 3 clients (f, 1, 2), each other client in either case
    (admitted while f waits or not; backlogged when f arrives or not). Facts of the proof
    (``vtc_other_claims.md`` (b)): W_f <= D_f <= X; Delta = c_f(s) - m*(tau) <= X - D_f + W_f;
    admitted j: W_j <= Delta + X + [j not backlogged] D_j; otherwise W_j <= D_j <= X;
    D_tau = D_f + sum of D_j over j not backlogged; service at rate >= a for time T."""
    env = {}
    bound = to_z3(V.latency_bound().subs(S.n_clients, 3), env)
    x, a, dtau = to_z3(S.X, env), to_z3(S.rate_a, env), to_z3(S.D_tau, env)
    T, Wf, Df, Dl = (to_z3(sp.Symbol(v, real=True), env) for v in ("T", "W_f", "D_f", "Delta"))
    import z3
    hyps = [x > 0, a > 0, T >= 0, Wf >= 0, Df >= Wf, x >= Df, Dl <= x - Df + Wf]
    total, dsum = Wf, Df
    for j in (1, 2):
        W, D = z3.Real(f"W_{j}"), z3.Real(f"D_{j}")
        adm, bl = z3.Bool(f"adm_{j}"), z3.Bool(f"bl_{j}")
        hyps += [W >= 0, D >= 0, D <= x, z3.Implies(adm, W <= Dl + x + z3.If(bl, 0, D)),
                 z3.Implies(z3.Not(adm), W <= D)]
        total, dsum = total + W, dsum + z3.If(bl, 0, D)
    hyps += [dtau == dsum, total >= a * T]
    ok, m = prove(T <= bound, *hyps)
    assert ok, m
    # the D_tau term is needed: without it the same facts do not give the bound
    ok, _ = prove(T <= to_z3(V.latency_bound().subs({S.n_clients: 3, S.D_tau: 0}), env), *hyps)
    assert not ok




def test_published_latency_refuted_reference_model():
    """VTC's ``2(n - 1) U / a`` with U = max(w_p L_in, w_q M), M the KV capacity, reserve
    admission, rate a = least service per step during the wait: f's second request waits
    294 steps at a = 2 (588 > 2U = 400); the proved bound (2X + D_tau) = 594 is attained up to 4."""
    M = 100
    reqs = V.latency_counterexample_requests(M)
    res = simulate_vtc(reqs, max_running=10**6, kv_capacity=M, admission="reserve")
    assert res.max_occupancy <= M
    w = next(r for r in V.latency_waits(res) if r["client"] == "f" and r["tau"] == 1)
    U = max(1 * 1, 2 * M)
    published = F.evaluate(F.vtc_latency_bound_published(), U=U, n=w["n"], a=w["rate_min"])
    ours = F.evaluate(V.latency_bound(), n=w["n"], X=res.x_measured, D_tau=w["D_tau"], a=w["rate_min"])
    assert w["rate_min"] == 2 and w["wait"] > 1.4 * published  # 294 steps vs 200
    assert w["wait"] <= ours and w["service"] <= ours * w["rate_min"] <= w["service"] + 4
    assert w["wait"] <= F.evaluate(V.latency_bound_reserve(), n=2, U=U, a=w["rate_min"])


def test_published_latency_refuted_on_the_simulator():
    """The same construction on the project simulator (seconds, one A100-profile instance, KV
    capacity 100 tokens, reserve admission): the service delivered while f's second request
    waits exceeds 2(n - 1) U, and its wait exceeds 2(n - 1) U / a for a = the least service
    rate over the wait (service of each instant over the time since the previous one); the
    service stays within 2X + D_tau."""
    import numpy as np

    from fairsched.analysis.bounds import simulate_for_check
    from fairsched.sim import InstanceConfig
    from fairsched.workload import make_workload
    M = 100
    rows, unit = [], 1
    for step, c, L, out, _ in V.latency_counterexample_requests(M):
        rows.append((step * 1e-3, c, list(range(unit, unit + L)), L, out))
        unit += L
    wl = make_workload(rows)
    res = simulate_for_check(wl, "vtc", instance=InstanceConfig(kv_capacity_tokens=M))
    B = wl[3]
    s = res.admit_t[B.rid]
    assert res.admit_t[B.rid] == max(res.admit_t)  # B is admitted last, after both of g's requests
    t, amt = np.asarray(res.svc_t), np.asarray(res.svc_amount)
    inside = (t > B.arrival) & (t < s)
    service = amt[inside].sum()
    U = max(1 * 1, 2 * M)
    assert service > 2 * (2 - 1) * U * 1.4  # 590 measured vs 400
    stamps, idx = np.unique(t[inside], return_inverse=True)
    served = np.bincount(idx, weights=amt[inside])  # service delivered at each instant
    a_min = (served / np.diff(np.concatenate([[B.arrival], stamps]))).min()  # 200.8 units/s measured
    assert (s - B.arrival) > 1.4 * F.evaluate(F.vtc_latency_bound_published(), U=U, n=2, a=a_min)  # 2.93 vs 1.99 s
    # the proved bound: X = 199 (A's cost right after admission), D_tau = f's outstanding decode
    assert service <= 2 * 199 + 2 * (M - 1)


latency_req_st = st.tuples(st.integers(0, 30), st.sampled_from("abc"), st.integers(1, 6), st.integers(1, 12),
                           st.just(0))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(latency_req_st, min_size=2, max_size=20), st.sampled_from(["reserve", "peak"]),
       st.integers(18, 40))
def test_latency_within_proved_bound_random(reqs, admission, cap):
    """Every wait in random runs (reserve and peak admission): service during the wait and
    ``wait * a_min`` stay within ``2(n - 1) X + D_tau`` (X, D_tau measured in the same run).
    KV capacity >= 18 = the largest prompt + output, so every request fits an empty batch."""
    res = simulate_vtc(reqs, max_running=10**6, kv_capacity=cap, admission=admission)
    for w in V.latency_waits(res):
        bound = 2 * (w["n"] - 1) * res.x_measured + w["D_tau"]
        assert w["service"] <= bound + 1e-9
        assert w["wait"] * w["rate_min"] <= bound + 1e-9
