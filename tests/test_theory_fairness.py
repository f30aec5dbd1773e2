"""Checks of fairsched.theory.fairness: z3 step proofs, counterexamples, randomized searches."""

from __future__ import annotations

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
    """W_f - W_g = (q_f1 - q_f2) - (q_g1 - q_g2) (refills cancel) with all q in [-X, Q]."""
    qf1, qf2, qg1, qg2, R = z3.Ints("qf1 qf2 qg1 qg2 R")
    rng = [z3.And(v >= -X, v <= Q) for v in (qf1, qf2, qg1, qg2)]
    Wf, Wg = qf1 - qf2 + R, qg1 - qg2 + R
    ok, m = _valid(z3.And(Wf - Wg <= 2 * (Q + X), Wg - Wf <= 2 * (Q + X)), *(PARAMS + rng + [R >= 0]))
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


# ---------------------------------------------------------------- counterexamples
def test_vtc_published_2U_refuted_and_2X_attained():
    L, M = 100, 50
    res = simulate_vtc(F.vtc_counterexample_requests(L, M), max_running=1)
    gap = max_backlogged_gap(res, "f", "g")
    U = F.evaluate(F.U_expr(), w_p=1, w_q=2, L_in=L, M=M)
    assert U == 100
    assert gap > F.evaluate(F.vtc_upper_bound_published(), U=U)  # 400 > 200
    assert gap <= F.evaluate(F.vtc_upper_bound(), X=res.x_measured)  # 400 <= 400
    assert gap == 400 == 2 * res.x_measured


def test_vtc_lift_rule_counterexample():
    reqs = F.vtc_lift_counterexample_requests()
    bad = simulate_vtc(reqs, lift="min_backlogged")
    good = simulate_vtc(reqs, lift="watermark")
    assert max_backlogged_gap(bad, "f", "g") > 10 * 2 * bad.x_measured
    assert max_backlogged_gap(good, "f", "g") <= 2 * good.x_measured


def test_dlpm_published_bound_refuted():
    res = simulate_dlpm(F.dlpm_counterexample_requests(), quantum=1.0, max_running=1)
    gap = max_backlogged_gap(res, "f", "g")
    assert gap == 400
    assert gap > F.evaluate(F.dlpm_gap_bound_published(), U=100, Q_u=1)  # 202
    assert gap <= F.evaluate(F.dlpm_gap_bound(), X=res.x_measured, Q_u=1)  # 402


def test_d2lpm_candidate_global_bound_refuted():
    cl, tr, loc, glob = simulate_d2lpm(F.d2lpm_counterexample_requests(), n_workers=2,
                                       q_u=40, q_w=400, max_running=1)
    gap = max_gap_under(cl, tr, lambda k, c: c in glob[k], "f", "g")
    cand = F.evaluate(F.d2lpm_candidate_global_bound(), K=2, Q_u=40, Q_w=400, X=40)
    assert cand == 1920
    assert gap > cand


def test_lower_bound_workload_attains_w_p_L_plus_w_q_M():
    L, M = 64, 40
    wl = F.adversarial_lower_bound_workload(L, M)
    assert wl.meta["kv_capacity_tokens"] == L + M
    assert len(wl) == 6 and wl.max_cost(1, 2) == max(L, 2 * M)
    reqs = [(int(r.arrival), r.client, r.input_len, r.output_len, 0) for r in wl]
    lb = F.evaluate(F.work_conserving_lower_bound(), w_p=1, w_q=2, L_in=L, M=M)
    for res in (simulate_vtc(reqs, max_running=1), simulate_dlpm(reqs, quantum=10.0, max_running=1)):
        assert max_backlogged_gap(res, "f", "g") >= lb >= 2 * M


def test_evaluate_for_workload():
    wl = F.adversarial_lower_bound_workload(100, 50)
    assert F.evaluate(F.vtc_upper_bound(k=1), workload=wl) == 400
    assert F.evaluate(F.dlpm_gap_bound(k=1), workload=wl, Q_u=10) == 420
    assert F.evaluate(F.vtc_upper_bound_published(), workload=wl) == 200
    assert sp.simplify(F.X_expr(1) - (S.w_p * S.L_in + S.w_q * S.M_out)) == 0


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
