"""Checks of fairsched.theory.fairness: z3 step proofs, counterexamples, randomized searches."""

from __future__ import annotations

import pytest
import sympy as sp
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairsched.theory import fairness as F
from fairsched.theory import symbols as S
from fairsched.theory._reference import (
    max_backlogged_gap,
    max_gap_under,
    simulate_d2lpm,
    simulate_dlpm,
    simulate_vtc,
)
from fairsched.theory.smt import prove, to_z3


def _valid(claim, *hyps):
    s = z3.Solver()
    s.add(*hyps)
    s.add(z3.Not(claim))
    r = s.check()
    return r == z3.unsat, (s.model() if r == z3.sat else None)


# ---------------------------------------------------------------- DLPM, z3 step checks
def _dlpm_state(tag, n=2):
    q = [z3.Int(f"q{i}{tag}") for i in range(n)]
    P = [z3.Int(f"P{i}{tag}") for i in range(n)]
    b = [z3.Bool(f"b{i}{tag}") for i in range(n)]
    return q, P, b


Q, X, wq = z3.Ints("Q X wq")
PARAMS = [Q > 0, X > 0, wq >= 1]


def _inv_dlpm(q, P, b, backlogged_only_upper=False):
    parts = []
    for i in range(len(q)):
        up = q[i] <= Q
        parts += [z3.Implies(b[i], up) if backlogged_only_upper else up,
                  q[i] - P[i] >= -X, P[i] >= 0, P[i] <= X]
    return z3.And(parts)


def test_dlpm_admission_step_keeps_invariant():
    q, P, b = _dlpm_state("")
    cp, co = z3.Ints("cp co")  # w_p * uncached, w_q * output of the admitted request
    hyp = PARAMS + [_inv_dlpm(q, P, b), b[0], q[0] > 0, cp >= 0, co >= wq, cp + P[0] + co <= X]
    q2 = [q[0] - cp, q[1]]
    P2 = [P[0] + co, P[1]]
    ok, m = _valid(_inv_dlpm(q2, P2, [z3.Bool("any0"), b[1]]), *hyp)
    assert ok, m


def test_dlpm_decode_step_keeps_invariant():
    q, P, b = _dlpm_state("")
    hyp = PARAMS + [_inv_dlpm(q, P, b), P[0] >= wq]
    ok, m = _valid(_inv_dlpm([q[0] - wq, q[1]], [P[0] - wq, P[1]], b), *hyp)
    assert ok, m


def test_dlpm_refill_to_backlogged_keeps_invariant():
    q, P, b = _dlpm_state("", 3)
    hyp = PARAMS + [_inv_dlpm(q, P, b)] + [z3.Implies(b[i], q[i] <= 0) for i in range(3)]
    q2 = [z3.If(b[i], q[i] + Q, q[i]) for i in range(3)]
    ok, m = _valid(_inv_dlpm(q2, P, b), *hyp)
    assert ok, m


def test_dlpm_refill_to_all_breaks_upper_bound():
    """Refill to *all* clients: an idle client with 0 < q <= Q^u exceeds Q^u (z3 finds it)."""
    q, P, b = _dlpm_state("", 2)
    hyp = PARAMS + [_inv_dlpm(q, P, b)] + [z3.Implies(b[i], q[i] <= 0) for i in range(2)]
    ok, model = _valid(_inv_dlpm([q[i] + Q for i in range(2)], P, b), *hyp)
    assert not ok and model is not None


def test_dlpm_refill_to_all_with_clamp_on_return_keeps_backlogged_invariant():
    q, P, b = _dlpm_state("", 2)
    inv = _inv_dlpm(q, P, b, backlogged_only_upper=True)
    hyp_refill = PARAMS + [inv] + [z3.Implies(b[i], q[i] <= 0) for i in range(2)]
    ok, m = _valid(_inv_dlpm([q[i] + Q for i in range(2)], P, b, True), *hyp_refill)
    assert ok, m
    # return of client 0 (was idle): q0 <- min(q0, Q)
    hyp_ret = PARAMS + [inv, z3.Not(b[0])]
    q2 = [z3.If(q[0] < Q, q[0], Q), q[1]]
    ok, m = _valid(_inv_dlpm(q2, P, [True, b[1]], True), *hyp_ret)
    assert ok, m


def test_dlpm_return_rules_keep_invariant():
    q, P, b = _dlpm_state("")
    hyp = PARAMS + [_inv_dlpm(q, P, b), z3.Not(b[0])]
    for q0 in (q[0], z3.IntVal(0), z3.If(q[0] < 0, q[0], 0)):  # keep, zero, min(q, 0)
        ok, m = _valid(_inv_dlpm([q0, q[1]], P, [True, b[1]]), *hyp)
        assert ok, m


def test_dlpm_gap_from_invariant():
    """z3, built from the library's expressions: W_f - W_g = (q_f1 - q_f2) - (q_g1 - q_g2)
    (the R refills cancel) with all four deficits in ``dlpm_deficit_invariant()`` implies
    ``|W_f - W_g| <= dlpm_gap_bound()``; with the published invariant it gives the published gap."""
    qs = sp.symbols("q_f1 q_f2 q_g1 q_g2", real=True)
    R = sp.Symbol("R", nonnegative=True)
    Wf, Wg = qs[0] - qs[1] + R, qs[2] - qs[3] + R
    for inv, bound in ((F.dlpm_deficit_invariant(), F.dlpm_gap_bound()),
                       (F.dlpm_deficit_invariant_published(), F.dlpm_gap_bound_published())):
        env = {}
        hyps = [to_z3(inv.subs(S.q_def, q), env) for q in qs]
        claim = to_z3(sp.Abs(Wf - Wg) <= bound, env)
        ok, m = prove(claim, *hyps, *[v >= 0 for v in env.values() if str(v) not in {q.name for q in qs}])
        assert ok, m


def test_vtc_gap_from_counter_invariant():
    """z3 from ``vtc_counter_gap()`` at t1 and t2 (no lift inside the interval, so W = c(t2) -
    c(t1)) to ``|W_f - W_g| <= vtc_upper_bound()``."""
    cf1, cg1, cf2, cg2 = sp.symbols("c_f1 c_g1 c_f2 c_g2", real=True)
    cf, cg = sp.symbols("c_f c_g", real=True)
    env = {}
    hyps = [to_z3(F.vtc_counter_gap().subs({cf: a, cg: b}, simultaneous=True), env) for a, b in ((cf1, cg1), (cf2, cg2))]
    claim = to_z3(sp.Abs((cf2 - cf1) - (cg2 - cg1)) <= F.vtc_upper_bound(), env)
    ok, m = prove(claim, *hyps, env[S.X] > 0)
    assert ok, m


def test_d2lpm_per_worker_sum_from_dlpm_bound():
    """z3: K = 3 workers, each local gap within ``dlpm_gap_bound()`` => the sum within
    ``d2lpm_gap_bound_per_worker()``."""
    env = {}
    d = [sp.Symbol(f"d{k}", real=True) for k in range(3)]
    hyps = [to_z3(sp.Abs(dk) <= F.dlpm_gap_bound(), env) for dk in d]
    claim = to_z3(sp.Abs(sum(d)) <= F.d2lpm_gap_bound_per_worker().subs(S.K_workers, 3), env)
    ok, m = prove(claim, *hyps, env[S.X] > 0, env[S.Q_u] > 0)
    assert ok, m


def test_reserve_and_peak_X_bounds_from_admission_rules():
    """z3: after an admission of u <= L_in uncached tokens, outstanding decode r_1..r_n of the
    running requests. Reserve (u + sum r <= M) => w_p u + w_q sum r <= X_reserve_expr(). Peak
    (held c_j >= 1, r sorted descending, c_1 + .. + c_i + i r_i <= M for all i) =>
    w_p u + w_q sum r <= X_peak_expr(n), n = 1..4."""
    u = sp.Symbol("u", real=True)  # no sign assumptions: sympy would fold `u >= 0` to True
    for n in range(1, 5):
        r = sp.symbols(f"r1:{n + 1}", real=True)
        c = sp.symbols(f"c1:{n + 1}", real=True)
        env = {}
        base = [to_z3(u <= S.L_in, env)] + [to_z3(v, env) > 0 for v in (S.w_p, S.w_q, S.M_kv)]
        base += [to_z3(u, env) >= 0] + [to_z3(v, env) >= 0 for v in r]
        val = S.w_p * u + S.w_q * sum(r)
        ok, m = prove(to_z3(val <= F.X_reserve_expr(), env), *base, to_z3(u + sum(r) <= S.M_kv, env))
        assert ok, m
        peak = [to_z3(sp.Le(sum(c[:i]) + i * r[i - 1], S.M_kv), env) for i in range(1, n + 1)]
        peak += [to_z3(cj, env) >= 1 for cj in c] + [env[r[i]] >= env[r[i + 1]] for i in range(n - 1)]
        ok, m = prove(to_z3(val <= F.X_peak_expr(n), env), *base, *peak)
        assert ok, m


def test_dlpm_published_invariant_refuted_by_z3():
    """One admission from q > 0 of a request with w_p L = w_q M = U leaves q < -U."""
    q0, U = z3.Ints("q0 U")
    s = z3.Solver()
    s.add(U > 0, q0 > 0, q0 <= 1, z3.Not(q0 - 2 * U >= -U))
    assert s.check() == z3.sat


# ---------------------------------------------------------------- VTC, z3 step checks
def _min_over(cs, bs, default):
    expr = default
    # min over backlogged: fold with If; start from "none yet"
    have = z3.BoolVal(False)
    for c, b in zip(cs, bs, strict=True):
        expr = z3.If(b, z3.If(have, z3.If(c < expr, c, expr), c), expr)
        have = z3.Or(have, b)
    return expr


def _wm(m, cs, bs):
    mn = _min_over(cs, bs, m)
    return z3.If(mn > m, mn, m)


def _inv_vtc(c, P, b, m):
    parts = []
    for i in range(len(c)):
        parts += [z3.Implies(b[i], c[i] >= m), c[i] + P[i] <= m + X, P[i] >= 0, P[i] <= X]
    parts.append(z3.Implies(z3.Or(b), z3.Or([z3.And(b[i], c[i] <= m) for i in range(len(c))])))
    return z3.And(parts)


def _vtc_state(tag):
    c = [z3.Int(f"c{i}{tag}") for i in range(3)]
    P = [z3.Int(f"P{i}{tag}") for i in range(3)]
    b = [z3.Bool(f"b{i}{tag}") for i in range(3)]
    return c, P, b, z3.Int(f"m{tag}")


def test_vtc_admission_step_keeps_invariant():
    c, P, b, m = _vtc_state("")
    cp, co = z3.Ints("cp co")
    b0n = z3.Bool("b0n")  # client 0 may leave the backlogged set
    hyp = PARAMS + [_inv_vtc(c, P, b, m), b[0], cp >= 0, co >= 0, cp + P[0] + co <= X]
    hyp += [z3.Implies(b[j], c[0] <= c[j]) for j in (1, 2)]
    c2, P2, b2 = [c[0] + cp, c[1], c[2]], [P[0] + co, P[1], P[2]], [b0n, b[1], b[2]]
    ok, mdl = _valid(_inv_vtc(c2, P2, b2, _wm(m, c2, b2)), *hyp)
    assert ok, mdl


def test_vtc_decode_step_keeps_invariant():
    c, P, b, m = _vtc_state("")
    hyp = PARAMS + [_inv_vtc(c, P, b, m), P[0] >= wq]
    c2, P2 = [c[0] + wq, c[1], c[2]], [P[0] - wq, P[1], P[2]]
    ok, mdl = _valid(_inv_vtc(c2, P2, b, _wm(m, c2, b)), *hyp)
    assert ok, mdl


def test_vtc_watermark_lift_keeps_invariant():
    c, P, b, m = _vtc_state("")
    hyp = PARAMS + [_inv_vtc(c, P, b, m), z3.Not(b[0])]
    target = _min_over(c, [False, b[1], b[2]], m)  # min over backlogged, else watermark
    c2 = [z3.If(c[0] > target, c[0], target), c[1], c[2]]
    b2 = [True, b[1], b[2]]
    ok, mdl = _valid(_inv_vtc(c2, P, b2, _wm(m, c2, b2)), *hyp)
    assert ok, mdl


def test_vtc_invariant_implies_counter_gap():
    c, P, b, m = _vtc_state("")
    ok, mdl = _valid(z3.Implies(z3.And(b[0], b[1]), c[0] - c[1] <= X),
                     *(PARAMS + [_inv_vtc(c, P, b, m)]))
    assert ok, mdl


# ---------------------------------------------------------------- counterexamples and U
def test_longest_output_variant_is_no_bound_but_published_2U_holds():
    """The old reading (M = longest output) gives 2U_out = 200 < gap 400; with VTC's own M (the
    batch holds one request, M = L + O = 150 KV tokens) U = 300 and 2U = 600 >= 400 = 2X."""
    L, O = 100, 50  # noqa: E741
    res = simulate_vtc(F.vtc_longest_output_counterexample_requests(L, O), max_running=10,
                       kv_capacity=L + O, admission="reserve")
    gap = max_backlogged_gap(res, "f", "g")
    assert gap == 400 == 2 * res.x_measured
    assert gap > F.evaluate(2 * F.U_longest_output_expr(), w_p=1, w_q=2, L_in=L, O_max=O)  # 200
    U = F.evaluate(F.U_expr(), w_p=1, w_q=2, L_in=L, M=L + O)
    assert U == 300 and gap <= F.evaluate(F.vtc_upper_bound_published(), U=U)  # 600
    assert res.x_measured <= F.evaluate(F.X_reserve_expr(), w_p=1, w_q=2, L_in=L, M=L + O)


def test_dlpm_longest_output_counterexample_within_published():
    res = simulate_dlpm(F.dlpm_longest_output_counterexample_requests(), quantum=1.0, max_running=10,
                        kv_capacity=150, admission="reserve")
    gap = max_backlogged_gap(res, "f", "g")
    assert gap == 400
    assert gap > F.evaluate(2 * (F.U_longest_output_expr() + S.Q_u), w_p=1, w_q=2, L_in=100, O_max=50, Q_u=1)
    assert gap <= F.evaluate(F.dlpm_gap_bound_published(), w_p=1, w_q=2, L_in=100, M=150, Q_u=1)  # 602
    assert gap <= F.evaluate(F.dlpm_gap_bound(), X=res.x_measured, Q_u=1)  # 402


def test_reserve_condition_is_exact():
    """z3 on the library's own expressions: X_reserve <= U  <=>  w_p <= w_q or L_in >= M."""
    env = {}
    cond, xr, u = (to_z3(e, env) for e in (F.reserve_X_within_U_condition(), F.X_reserve_expr(), F.U_expr()))
    ok, m = prove(cond == (xr <= u), *[v > 0 for v in env.values()])
    assert ok, m


def test_reserve_X_bound_is_attained_and_condition_needed():
    """With w_p > w_q and L_in < M an admission reaches w_p L + w_q (M - L) - O(1) > U."""
    M, L = 100, 10
    reqs = [(0, "f", 1, M - L - 2, 0), (1, "f", L, 1, 0), (1, "f", L, 1, 0), (1, "g", 1, 5, 0)]
    res = simulate_vtc(reqs, w_p=3.0, w_q=1.0, max_running=10, kv_capacity=M, admission="reserve")
    U = F.evaluate(F.U_expr(), w_p=3, w_q=1, L_in=L, M=M)
    xr = F.evaluate(F.X_reserve_expr(), w_p=3, w_q=1, L_in=L, M=M)
    assert U < res.x_measured <= xr
    assert res.max_occupancy <= M


mem_req_st = st.tuples(st.integers(0, 30), st.sampled_from("abc"), st.integers(1, 12),
                       st.integers(1, 12), st.integers(0, 3))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(mem_req_st, min_size=2, max_size=25), st.integers(24, 60),
       st.sampled_from([(1.0, 2.0), (1.0, 1.0), (2.0, 1.0)]), st.sampled_from(["reserve", "peak"]))
def test_admission_X_bounds_random(reqs, M, weights, admission):
    """Reserve: X <= X_reserve, and the gap <= 2U where the condition holds. Peak: X <=
    X_peak(N) with N the most requests running. Both: occupancy <= M, gap <= 2X."""
    wp, wq = weights
    res = simulate_vtc(reqs, w_p=wp, w_q=wq, max_running=10**6, kv_capacity=M, admission=admission)
    L = max(r[2] for r in reqs)
    vals = {"w_p": wp, "w_q": wq, "L_in": L, "M": M}
    gap = max_backlogged_gap(res)
    assert res.max_occupancy <= M
    assert gap <= 2 * res.x_measured + 1e-9
    if admission == "reserve":
        assert res.x_measured <= F.evaluate(F.X_reserve_expr(), **vals) + 1e-9
        if F.reserve_X_within_U_condition().subs({S.w_p: wp, S.w_q: wq, S.L_in: L, S.M_kv: M}):
            assert gap <= F.evaluate(F.vtc_upper_bound_published(), **vals) + 1e-9
    else:
        assert res.x_measured <= F.evaluate(F.X_peak_expr(), N_run=M // 2, **vals) + 1e-9


def test_vtc_peak_admission_refutes_published_2U():
    """Issue 10's construction: occupancy never exceeds M = 1000, yet the gap (7,086 here;
    ~7,046 reported from outside) exceeds 2U = 4,000; it stays within 2X and X within X_peak."""
    M = 1000
    res = simulate_vtc(F.vtc_peak_counterexample_requests(M), max_running=10**6, kv_capacity=M, admission="peak")
    gap = max_backlogged_gap(res, "f", "g")
    vals = {"w_p": 1, "w_q": 2, "L_in": 1, "M": M}
    assert res.max_occupancy <= M
    assert gap > 1.7 * F.evaluate(F.vtc_upper_bound_published(), **vals)  # 7,086 > 4,000
    assert gap <= F.evaluate(F.vtc_upper_bound(), X=res.x_measured)
    assert res.x_measured <= F.evaluate(F.X_peak_expr(), N_run=20, **vals)  # 20 f requests ran
    assert res.max_outstanding > 3.5 * M  # ~ M H_20 - 20 = 3,578
    rres = simulate_vtc(F.vtc_peak_counterexample_requests(M), max_running=10**6, kv_capacity=M,
                        admission="reserve")
    assert max_backlogged_gap(rres, "f", "g") <= F.evaluate(F.vtc_upper_bound_published(), **vals)


def test_peak_gap_grows_like_harmonic_number():
    """gap / (w_q M) grows with the number of f's small requests (H_n), so no c * U bound."""
    M = 600
    ratios = []
    for n in (2, 6, 18):
        reqs = F.vtc_peak_counterexample_requests(M, n_f=n, o_keep=M - 100, o_g=M // 2)
        res = simulate_vtc(reqs, max_running=10**6, kv_capacity=M, admission="peak")
        ratios.append(max_backlogged_gap(res, "f", "g") / (2 * M))
    assert ratios[0] < ratios[1] < ratios[2] and ratios[2] > 2.5


def test_vtc_lift_rule_counterexample():
    reqs = F.vtc_lift_counterexample_requests()
    bad = simulate_vtc(reqs, lift="min_backlogged")
    good = simulate_vtc(reqs, lift="watermark")
    assert max_backlogged_gap(bad, "f", "g") > 10 * 2 * bad.x_measured
    assert max_backlogged_gap(good, "f", "g") <= 2 * good.x_measured


def test_X_needs_k_when_a_client_runs_several_requests():
    """k = 3 requests of f run at once: X exceeds the k = 1 form, stays within k = 3."""
    reqs = [(0, "f", 4, 6, 0)] * 3 + [(0, "g", 4, 6, 0)] * 3 + [(1, "f", 4, 6, 0), (1, "g", 4, 6, 0)]
    res = simulate_vtc(reqs, max_running=6)
    vals = {"w_p": 1, "w_q": 2, "L_in": 4, "O_max": 6}
    assert res.x_measured > F.evaluate(F.X_expr(1), **vals)
    assert res.x_measured <= F.evaluate(F.X_expr(3), **vals)
    assert max_backlogged_gap(res) <= F.evaluate(F.vtc_upper_bound(k=3), **vals)


def test_lower_bound_workload_attains_w_p_L_plus_w_q_M_minus_L():
    L, M = 24, 104
    wl = F.adversarial_lower_bound_workload(L, M)
    assert wl.meta["kv_capacity_tokens"] == M
    assert len(wl) == 6 and wl.max_cost(1, 2) == max(L, 2 * M) and wl.max_request_cost(1, 2) == 2 * (M - L)
    reqs = [(int(r.arrival), r.client, r.input_len, r.output_len, 0) for r in wl]
    lb = F.evaluate(F.work_conserving_lower_bound(L), w_p=1, w_q=2, M=M)
    for res in (simulate_vtc(reqs, max_running=10, kv_capacity=M, admission="reserve"),
                simulate_dlpm(reqs, quantum=10.0, max_running=10, kv_capacity=M, admission="peak")):
        assert max_backlogged_gap(res, "f", "g") >= lb >= 2 * M - 2 * L
    assert F.evaluate(F.work_conserving_lower_bound(1), w_p=1, w_q=2, M=M) == 2 * M - 1


def test_evaluate_for_workload():
    wl = F.adversarial_lower_bound_workload(100, 150)
    assert F.evaluate(F.vtc_upper_bound(k=1), workload=wl) == 2 * (100 + 2 * 50)
    assert F.evaluate(F.vtc_upper_bound(), workload=wl, k=2) == 2 * (100 + 2 * 2 * 50)  # X from the workload
    assert F.evaluate(F.dlpm_gap_bound(k=1), workload=wl, Q_u=10) == 420
    assert F.evaluate(F.vtc_upper_bound_published(), workload=wl) == 600  # M = 150 from meta
    assert F.evaluate(F.vtc_upper_bound_published(), workload=wl, kv_capacity_tokens=1000) == 4000
    assert sp.simplify(F.X_expr(1) - (S.w_p * S.L_in + S.w_q * S.O_max)) == 0
    wl.meta.pop("kv_capacity_tokens")
    with pytest.raises(ValueError, match="KV token capacity"):
        wl.max_cost(1, 2)


def test_d2lpm_candidate_global_bound_refuted():
    cl, tr, loc, glob = simulate_d2lpm(F.d2lpm_counterexample_requests(), n_workers=2,
                                       q_u=40, q_w=400, max_running=1)
    gap = max_gap_under(cl, tr, lambda k, c: c in glob[k], "f", "g")
    cand = F.evaluate(F.d2lpm_candidate_global_bound(), K=2, Q_u=40, Q_w=400, X=40)
    assert cand == 1920
    assert gap > cand


# ---------------------------------------------------------------- randomized searches
req_st = st.tuples(st.integers(0, 30), st.sampled_from("abc"), st.integers(0, 12),
                   st.integers(1, 6), st.integers(0, 3))
SET = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@SET
@given(st.lists(req_st, min_size=2, max_size=25), st.integers(1, 3))
def test_vtc_bound_random(reqs, mr):
    res = simulate_vtc(reqs, max_running=mr)
    assert max_backlogged_gap(res) <= 2 * res.x_measured + 1e-9


@SET
@given(st.lists(req_st, min_size=2, max_size=25), st.integers(1, 3), st.sampled_from([0.5, 3.0, 20.0]),
       st.sampled_from([("backlogged", "keep"), ("backlogged", "zero"), ("all", "clamp")]))
def test_dlpm_bound_random(reqs, mr, quantum, rule):
    res = simulate_dlpm(reqs, quantum=quantum, max_running=mr, refill_to=rule[0], on_return=rule[1])
    assert max_backlogged_gap(res) <= 2 * (quantum + res.x_measured) + 1e-9


d2_st = st.tuples(st.integers(0, 20), st.sampled_from("ab"), st.integers(1, 10),
                  st.integers(1, 5), st.integers(0, 3))


@SET
@given(st.lists(d2_st, min_size=2, max_size=25), st.sampled_from([2.0, 15.0]), st.sampled_from([5.0, 40.0]))
def test_d2lpm_per_worker_bound_random(reqs, q_u, q_w):
    K, mr = 2, 2
    cl, tr, loc, _ = simulate_d2lpm(reqs, n_workers=K, q_u=q_u, q_w=q_w, max_running=mr)
    if len(cl) < 2:
        return
    L = max(r[2] for r in reqs)
    M = max(r[3] for r in reqs)
    X = L + mr * 2 * M
    gap = max_gap_under(cl, tr, lambda k, c: all(c in b for b in loc[k]), cl[0], cl[1])
    assert gap <= F.evaluate(F.d2lpm_gap_bound_per_worker(), K=K, Q_u=q_u, X=X) + 1e-9
