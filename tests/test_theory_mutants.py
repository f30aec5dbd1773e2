"""Tests written for mutants that survived the mutmut run (``bench/mutation_score.py``): each
compares a formula or construction of :mod:`fairsched.theory` with something independent
(numbers evaluated by hand or by sympy, the simulator, the figures the proofs state)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from fairsched.theory import fairness as F
from fairsched.theory import lmetric as LM
from fairsched.theory import symbols as S
from fairsched.theory import vtc_claims as V
from fairsched.theory._reference import max_backlogged_gap, simulate_vtc
from fairsched.theory.smt import prove, to_z3, z3_vars


# ---------------------------------------------------------------- smt: sympy -> z3 translation
def _z3_value(e, env, vals):
    sub = [(env[s], z3.RealVal(str(v)) if not s.is_integer else z3.IntVal(v)) for s, v in vals.items() if s in env]
    r = z3.simplify(z3.substitute(e, *sub)) if sub else z3.simplify(e)
    if z3.is_bool(r):
        return z3.is_true(r)
    return sp.Rational(r.as_fraction()) if z3.is_rational_value(r) else sp.Integer(r.as_long())


def test_to_z3_agrees_with_sympy_on_numbers():
    """Every construct ``to_z3`` supports, evaluated at several points by sympy and by z3."""
    a, b = sp.symbols("a b", real=True)
    n = sp.Symbol("n", integer=True, positive=True)
    exprs = [a + b, a - 3 * b, a * b, a / b, a**2, a**0, b**-2, sp.Rational(3, 7) * a, sp.Max(a, b), sp.Min(a, b),
             sp.Abs(a - b), sp.harmonic(4) * a, a + n, sp.Float(0.5) * a, sp.Pow(a, 0, evaluate=False) + b,
             sp.Mul(sp.harmonic(3, evaluate=False), a, evaluate=False)]
    rels = [a < b, a <= b, a > b, a >= b, sp.Eq(a, b), sp.Ne(a, b), sp.And(a < b, b > 0), sp.Or(a > b, b < 0),
            sp.Not(a < b), sp.Implies(a > 0, b > 0), sp.true, sp.false]
    for va, vb, vn in [(2, 5, 3), (-3, 1, 1), (4, 4, 2), (sp.Rational(1, 2), -2, 5)]:
        vals = {a: sp.nsimplify(va), b: sp.nsimplify(vb), n: vn}
        for e in exprs:
            env = {}
            z = to_z3(e, env)
            assert _z3_value(z, env, vals) == sp.nsimplify(e.subs(vals).doit()), e
        for r in rels:
            env = {}
            z = to_z3(r, env)
            assert _z3_value(z, env, vals) == bool(r.subs(vals)), r


def test_z3_vars_names_and_sorts():
    env = z3_vars(S.n_clients + S.X)
    assert env[S.n_clients].sort() == z3.IntSort() and env[S.X].sort() == z3.RealSort()
    assert str(env[S.n_clients]) == "n" and str(env[S.X]) == "X"
    assert z3_vars(S.X, {})[S.X].sort() == z3.RealSort()


# ---------------------------------------------------------------- fairness formulas
def _internal_dlpm_inv(q, P, x, qu):
    """The invariant the DLPM step proofs keep (``tests/test_theory_fairness.py::_inv_dlpm``):
    q <= Q^u, q - P >= -X, 0 <= P <= X (P: pending decode charge)."""
    return z3.And(q <= qu, q - P >= -x, P >= 0, P <= x)


def test_library_dlpm_invariants_are_what_the_step_proofs_give():
    """The proved internal invariant implies ``dlpm_deficit_invariant()`` and (with X <= U) the
    published one, and both ends are reachable in it (q = -X with P = 0, q = Q^u): neither
    library invariant may be stronger or weaker."""
    env = {}
    inv, pub = to_z3(F.dlpm_deficit_invariant(), env), to_z3(F.dlpm_deficit_invariant_published(), env)
    q, x, qu, u = (to_z3(s, env) for s in (S.q_def, S.X, S.Q_u, S.U))
    P = z3.Real("P")
    hyp = [x > 0, qu > 0, _internal_dlpm_inv(q, P, x, qu)]
    assert prove(inv, *hyp)[0]
    assert prove(pub, *hyp, x <= u)[0]
    for end in (q == -x, q == qu):  # each end is allowed by the internal invariant
        s = z3.Solver()
        s.add(*hyp, end)
        assert s.check() == z3.sat


def test_longest_output_reading_and_lower_bound_by_hand():
    assert F.evaluate(F.U_longest_output_expr(), w_p=1, w_q=2, L_in=100, O_max=30) == 100
    assert F.evaluate(F.U_longest_output_expr(), w_p=3, w_q=2, L_in=10, O_max=40) == 80
    assert F.evaluate(F.work_conserving_lower_bound(), w_p=1, w_q=2, M=100, L_in=40) == 40 + 2 * 60


def test_adversarial_workload_attains_the_lower_bound_for_L_above_one():
    """The lower-bound workload with L = 48 > 1 prompt tokens (three 16-token blocks, nothing
    cached: distinct prompt units) on the project simulator: the measured gap is exactly
    w_p L + w_q (M - L) = 152."""
    from fairsched.analysis.bounds import simulate_for_check
    from fairsched.analysis.gap import max_service_gap
    from fairsched.sim import InstanceConfig
    wl = F.adversarial_lower_bound_workload(48, 100)
    units = [u for r in wl for u in r.prompt]
    assert len(units) == len(set(units)) == 18 and all(r.arrival == 0 for r in wl) and len(wl) == 6
    assert wl.meta["expected_gap_units"] == {"w_p=1,w_q=2": 152}
    res = simulate_for_check(wl, "vtc", instance=InstanceConfig(kv_capacity_tokens=100))
    want = F.evaluate(F.work_conserving_lower_bound(), w_p=1, w_q=2, M=100, L_in=48)
    assert max_service_gap(res).gap == want == 152
    assert len(F.adversarial_lower_bound_workload(1, 2)) == 6
    for L, M in ((0, 10), (10, 10)):
        with pytest.raises(ValueError, match=f"L={L}, M={M}"):
            F.adversarial_lower_bound_workload(L, M)


def test_params_from_workload_by_hand():
    wl = F.adversarial_lower_bound_workload(40, 100)
    p = F.params_from_workload(wl)
    assert p[S.w_p] == 1 and p[S.w_q] == 2 and p[S.M_kv] == 100
    assert p[S.U] == max(1 * 40, 2 * 100)
    assert p[S.X] == F.evaluate(F.X_expr(1), w_p=1, w_q=2, L_in=40, O_max=60)  # k = 1 by default
    assert F.params_from_workload(wl, 3.0, 1.0)[S.U] == max(3 * 40, 1 * 100)


# ---------------------------------------------------------------- figures the proofs state
def test_lift_counterexample_figures():
    """``vtc_upper_bound.md``: gap 408 with the min-over-backlogged lift, 28 with the watermark."""
    reqs = F.vtc_lift_counterexample_requests()
    assert max_backlogged_gap(simulate_vtc(reqs, lift="min_backlogged"), "f", "g") == 408
    assert max_backlogged_gap(simulate_vtc(reqs, lift="watermark"), "f", "g") == 28


def test_peak_nonbacklogged_figures():
    """``vtc_other_claims.md`` (a): 9,048 over f's backlog, occupancy 999, X 9,169."""
    res = simulate_vtc(V.peak_nonbacklogged_counterexample_requests(), max_running=10**6, kv_capacity=1000,
                       admission="peak")
    assert V.max_gain_over_backlogged(res, "f", "g") == 9048
    assert res.max_occupancy == 999 and res.x_measured == 9169


# ---------------------------------------------------------------- LMetric score comparisons
def test_score_relations_agree_with_arithmetic():
    """product / linear preference and the disagreement condition against direct arithmetic,
    for default and non-default scale factors."""
    for p1, b1, p2, b2 in itertools.product((1, 7), (2, 5), (2, 6), (1, 4)):
        vals = {LM.P1: p1, LM.B1: b1, LM.P2: p2, LM.B2: b2}
        assert bool(LM.product_prefers_first().subs(vals)) == (p1 * b1 < p2 * b2)
        assert sp.simplify(LM.scaled_product_difference().subs(vals)
                           - S.alpha * S.beta * (p1 * b1 - p2 * b2)) == 0
        for lam_v, (a, b) in itertools.product((sp.Rational(1, 4), sp.Rational(2, 3)), ((1, 1), (2, 3))):
            lin = lam_v * a * p1 + (1 - lam_v) * b * b1 < lam_v * a * p2 + (1 - lam_v) * b * b2
            rel = (LM.linear_prefers_first(a, b) if (a, b) != (1, 1) else LM.linear_prefers_first())
            assert bool(rel.subs(vals).subs(LM.lam, lam_v)) == lin
            tie = lam_v * a * (p1 - p2) + (1 - lam_v) * b * (b1 - b2) == 0 or p1 * b1 == p2 * b2
            cond = LM.linear_disagreement_condition(a, b) if (a, b) != (1, 1) else LM.linear_disagreement_condition()
            got = bool(cond.subs(vals).subs(LM.lam, lam_v))
            assert got == ((lin != (p1 * b1 < p2 * b2)) and not tie), (p1, b1, p2, b2, lam_v, a, b)


def test_log_linear_score_is_linear_in_the_logs():
    e = LM.log_linear_score()
    P, B = LM.P1, LM.B1
    assert sp.expand(e - (sp.log(P) + sp.log(B) + sp.log(S.alpha) + sp.log(S.beta))) == 0


def test_decode_step_time_by_hand():
    from fairsched.theory.cost import decode_step_time
    k = {"decode_a_s": 0.01, "decode_b_s_per_seq": 0.002, "decode_c_s_per_ctx_tok": 1e-6}
    assert decode_step_time(8, 4000, k) == pytest.approx(0.01 + 0.002 * 8 + 1e-6 * 4000)


# ---------------------------------------------------------------- bounds against their proofs
def test_bounds_equal_the_stated_formulas():
    """Published bounds as the papers state them; D2LPM's per-worker bound is the sum of K DLPM
    bounds (Theorem A's proof); X_reserve by hand with w_p > w_q and L_in < M."""
    assert sp.simplify(F.dlpm_gap_bound_published() - 2 * (S.U + S.Q_u)) == 0
    for k in (None, 3):
        assert sp.simplify(F.d2lpm_gap_bound_per_worker(k) - S.K_workers * F.dlpm_gap_bound(k)) == 0
    assert F.evaluate(F.X_reserve_expr(), w_p=3, w_q=1, L_in=10, M=100) == 100 + 2 * 10
    assert F.evaluate(F.X_reserve_expr(), w_p=3, w_q=1, L_in=500, M=100) == 100 + 2 * 100


def test_nonbacklogged_3X_is_what_the_proof_gives_and_no_less():
    """z3 from ``nonbacklogged_bound()``: the proof's facts (vtc_other_claims.md (a), g not
    backlogged at t1, m = m*(t1), c_f = c_f(t2): W_f >= c_f - m - X by (I2) at t1, and
    W_g <= c_f + 2X - m) imply W_g - W_f <= bound, and a model meets it with equality (so the
    proof does not give less, and a looser formula is not what it proves)."""
    env = {}
    bound = to_z3(V.nonbacklogged_bound(), env)
    x = to_z3(S.X, env)
    Wf, Wg, cf, m = (z3.Real(n) for n in ("W_f", "W_g", "c_f", "m"))
    facts = [x > 0, Wf >= cf - m - x, Wg <= cf + 2 * x - m]
    assert prove(Wg - Wf <= bound, *facts)[0]
    s = z3.Solver()
    s.add(*facts, Wf == cf - m - x, Wg == cf + 2 * x - m, Wg - Wf == bound)
    assert s.check() == z3.sat


def _peak_fits_brute_force(running, prompt, output, cap):
    """Occupancy at every future step if nothing else is admitted: request j holds h_j + t
    tokens until its r_j-th token (t = r_j) and then leaves."""
    reqs = [(r, h) for _, r, h in running] + [(output, prompt)]
    return all(sum(h + t for r, h in reqs if r >= t) <= cap for t in range(1, max(r for r, _ in reqs) + 1))


def test_peak_admission_rule_matches_brute_force():
    from fairsched.theory._reference import fits
    cases = itertools.product([[], [("a", 5, 1)], [("a", 5, 1), ("b", 2, 9)], [("a", 1, 12), ("b", 9, 1)]],
                              (1, 4), (1, 3, 8), (12, 16, 20, 30))
    for running, prompt, output, cap in cases:
        assert fits(running, prompt, output, cap, "peak") == _peak_fits_brute_force(running, prompt, output, cap)
    assert fits([("a", 5, 1)], 1, 1, None, "peak") and fits([("a", 50, 1)], 1, 1, 10, "slots")
    with pytest.raises(ValueError, match="admission must be"):
        fits([], 1, 1, 10, "lazy")


def test_watermark_is_the_minimum_before_the_last_backlogged_client_is_admitted():
    """``proofs/vtc_upper_bound.md`` (lift rule and Lemma 1): with nobody backlogged, a
    returning client is lifted to the minimum counter at the last time one was backlogged,
    i.e. *before* the admission that emptied the set. Found by hypothesis
    (``test_theory_fairness.py::test_admission_X_bounds_random``): a reference that took the
    watermark only after admissions lifted ``a`` at step 7 to 1 instead of b's 17, and the
    gap reached 49 > 2X = 48. By hand here: f is admitted alone at step 3 with counter
    5 + 2 = 7 (its first request: prompt 5, one token), so g, arriving at step 5 with nobody
    backlogged, starts at 7, not 0. g sends six one-token requests at step 5 (each adds
    1 + 2 = 3), f one at step 6 (its counter 14): g is served at 7 -> 10, 10 -> 13, 13 -> 16,
    then f (14), then g's last three; from 0, g would be served five times before f."""
    reqs = [(0, "f", 5, 1, 0), (3, "f", 5, 1, 0), *[(5, "g", 1, 1, 0)] * 6, (6, "f", 1, 1, 0)]
    res = simulate_vtc(reqs, w_p=1.0, w_q=2.0, max_running=1)
    assert [c for _, _, c in res.admissions] == ["f", "f", "g", "g", "g", "f", "g", "g", "g"]
    reqs = [(0, "b", 1, 1, 0), (0, "b", 4, 5, 0), (6, "b", 1, 10, 0), (11, "b", 8, 6, 0), (22, "a", 7, 1, 0),
            (7, "a", 4, 10, 0), (0, "a", 1, 1, 0), (10, "a", 6, 5, 0), (10, "a", 1, 1, 0)]
    res = simulate_vtc(reqs, w_p=1.0, w_q=2.0, max_running=10**6, kv_capacity=24, admission="reserve")
    assert max_backlogged_gap(res) <= 2 * res.x_measured


def test_classify_regime_counts_holders_and_cold_instances_by_hand(monkeypatch):
    """``proofs/lmetric_hotspot.md``: ``n_h = frac n`` instances hold the class's prefix and the
    other ``n - n_h`` get the rest; benign iff a = x qps / n_h <= b = (1 - x) qps / (n - n_h).
    By hand (qps cancels): n = 4, frac = 1/2, x = 0.4: a = 0.2 qps <= b = 0.3 qps, benign.
    Fractional holders (the fluid model allows them): n = 2, frac = 1/4 (n_h = 0.5), x = 0.3:
    a = 0.6 qps > b = 0.7/1.5 qps = 0.47 qps, not benign; n = 2, frac = 3/4 (n - n_h = 0.5),
    x = 0.7: a = 0.47 qps <= b = 0.6 qps, benign. And at ``t* = t_h`` the score diverts just
    as the hit turns harmful: hotspot (``t* <= t_h``, the docstring's and the proof's rule)."""
    kw = {"qps": 100.0, "B0_val": 8.0, "L": 4000, "u": 400}
    assert LM.classify_regime(0.4, 0.5, 4, **kw) == "benign"
    assert LM.classify_regime(0.3, 0.25, 2, **kw) != "benign"
    assert LM.classify_regime(0.7, 0.75, 2, **kw) == "benign"
    monkeypatch.setattr(LM, "hotspot_numbers", lambda *a, **k: {"benign": False, "t_star": 2.5, "t_harm": 2.5})
    assert LM.classify_regime(0.9, 0.25, 4, **kw) == "hotspot"


def test_hotspot_numbers_by_hand():
    """``proofs/lmetric_hotspot.md`` / ``lmetric_harm.md`` evaluated by hand with simple cost
    coefficients (S = 1e-4 s/token x h, beta_d = 1 ms per step per sequence). x = 0.9 of 100
    req/s on 1 holder and 3 cold instances: a = 90, b = 10/3, kappa = 4000/400 = 10, a > kappa b,
    so t* = (B_0 + 1)(kappa - 1)/(a - kappa b) = 9 x 9 / (170/3) = 243/170 s with the P (B + 1)
    score and 8 x 9 / (170/3) = 216/170 s with the paper's P B; t_h = S / (O beta_d (a - b)) =
    0.36 / (0.256 x 260/3) s. At x = 0.5: a = 50 <= kappa b = 166.7, no t*; at x = 0.25:
    a = b = 25, benign, no t_h."""
    k = {"prefill_b_s_per_tok": 1e-4, "prefill_c_s_per_tok2": 0.0, "decode_b_s_per_seq": 1e-3,
         "decode_c_s_per_ctx_tok": 0.0}
    args = (1, 3, 100.0, 8.0, 4000, 400)
    d = LM.hotspot_numbers(0.9, *args, n_out=256, coeffs=k)
    assert d["a"] == pytest.approx(90.0) and d["b"] == pytest.approx(10 / 3) and d["kappa"] == 10
    assert d["t_star"] == pytest.approx(243 / 170) and not d["benign"]
    assert d["t_harm"] == pytest.approx(0.36 / (0.256 * 260 / 3))
    assert LM.hotspot_numbers(0.9, *args, coeffs=k, plus_one=False)["t_star"] == pytest.approx(216 / 170)
    assert LM.hotspot_numbers(0.5, *args, coeffs=k)["t_star"] is None
    e = LM.hotspot_numbers(0.25, *args, coeffs=k)
    assert e["benign"] and e["t_harm"] is None and e["t_star"] is None


# ------------------------------------------- lmetric_steady: its fast tests, in mutmut's selection
# The tests of theory/lmetric_steady.py live in test_detect_validation.py, which is outside
# [tool.mutmut]'s test selection (changing the selection makes mutmut re-run every mutant).
# The fast ones (about 3 s together) are collected here too, so its mutants get tests.
import test_detect_validation as _dv  # noqa: E402  (tests/ is on sys.path under pytest)

test_steady_iteration_time = _dv.test_iteration_time_solves_the_busy_period_balance
test_steady_harm_needs_violation = _dv.test_harm_needs_violation_at_the_settled_holder_count
test_steady_filled_state = _dv.test_filled_state_equalises_the_other_traffic_score
test_steady_filled_ratio = _dv.test_filled_ratio_uses_the_holders_arrival_mix
test_steady_ordered_hunt = _dv.test_ordered_hunt_conserves_load_and_favours_low_indices
test_steady_tie_break = _dv.test_tie_break_puts_the_benign_hotspot_where_the_holders_sit
test_steady_erlang_b = _dv.test_erlang_b_recursion_is_the_closed_form
test_steady_window_without_holders = _dv.test_theory_for_window_without_holders_or_non_holders


# ------------------------------------- analysis: per-instance logs and check_run, by replay
def _three_instance_run(policy="vtc", router="rr", **kw):
    """4 clients, 48 requests in 48 ms, 3 instances of batch size 3: every client queues at
    every instance for a while (Theorem A's scope is not empty), k is 1 on one instance and 2
    on the others."""
    from fairsched.analysis.bounds import simulate_for_check
    from fairsched.policies import make_policy_factory
    from fairsched.sim import InstanceConfig
    from fairsched.workload import make_workload

    rows, u = [], 1
    for i in range(48):
        L, Omax = 20 + 7 * (i % 5), 3 + (i % 4)
        rows.append((0.001 * i, "abcd"[i % 4], list(range(u, u + L)), L, Omax))
        u += L
    pf = make_policy_factory(policy, **kw)
    return simulate_for_check(make_workload(rows), pf, router, 3,
                              InstanceConfig(max_batch_size=3, kv_capacity_tokens=400))


def _replay_everywhere(res):
    """Theorem A's backlog by replaying the per-instance backlog log in causal order: +1 when
    a client's count of queues holding it reaches K, -1 when it drops from K."""
    K, held, out = int(res.n_instances), {}, []
    for i in sorted(range(len(res.ibl_seq)), key=lambda i: (res.ibl_seq[i], i)):
        c, d = int(res.ibl_client[i]), int(res.ibl_delta[i])
        before = held.get(c, 0)
        held[c] = before + d
        if (d > 0 and before + d == K) or (d < 0 and before == K):
            out.append((float(res.ibl_seq[i]), c, 1 if d > 0 else -1))
    return out


def _instance_logs_by_hand(res, j):
    """Instance j's service (log order, causal positions) and backlog (causal order)."""
    svc = [(float(res.inst_svc_seq[i]), int(res.svc_client[i]), float(res.svc_amount[i]))
           for i in range(len(res.svc_t)) if res.svc_instance[i] == j]
    svc.sort(key=lambda e: e[0])  # stable: ties keep log order
    bl = sorted(((float(res.ibl_seq[i]), int(res.ibl_client[i]), int(res.ibl_delta[i]))
                 for i in range(len(res.ibl_seq)) if res.ibl_instance[i] == j), key=lambda e: e[0])
    return svc, bl


def _cols(rows):
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[], [], []]


def test_per_instance_logs_are_the_run_logs_split_by_instance():
    from fairsched.analysis.service_params import (
        everywhere_backlog_log,
        has_instance_logs,
        instance_backlog_log,
        instance_service,
    )
    from fairsched.sim import simulate

    res = _three_instance_run()
    assert has_instance_logs(res) and not has_instance_logs(simulate(res.workload, "vtc", "rr", 3))
    every = _replay_everywhere(res)
    assert len(every) >= 8 and {c for _, c, d in every if d > 0} == {0, 1, 2, 3}
    assert [list(map(float, x)) for x in everywhere_backlog_log(res)] == [list(map(float, c)) for c in _cols(every)]
    inst = np.asarray(res.svc_instance)
    for j in range(3):
        svc, bl = _instance_logs_by_hand(res, j)
        for got, want in ((instance_service(res, j, causal=True), svc), (instance_backlog_log(res, j), bl)):
            assert [list(map(float, x)) for x in got] == [list(map(float, c)) for c in _cols(want)]
        t, c, a = instance_service(res, j)  # wall-clock times: the log's entries of j, in log order
        assert t.tolist() == np.asarray(res.svc_t)[inst == j].tolist()
        assert c.tolist() == np.asarray(res.svc_client)[inst == j].tolist()
        assert a.tolist() == np.asarray(res.svc_amount)[inst == j].tolist()
    for j in (-1, 3):  # no such instance: empty logs
        assert all(len(x) == 0 for x in instance_service(res, j)) and all(len(x) == 0 for x in instance_backlog_log(res, j))


def test_check_run_verdicts_equal_the_bounds_and_gaps_recomputed_by_hand():
    """Each verdict of a 3-instance VTC run against the naive gap on hand-split logs and the
    bound formulas (2X per instance, worst ratio; sum_k 2X_k at every instance; none anywhere)."""
    from fairsched.analysis.bounds import check_run, concurrency_k, measured_x
    from fairsched.analysis.gap_reference import max_service_gap_naive, naive_max_gap

    res = _three_instance_run()
    L, Omax = max(r.input_len for r in res.workload), max(r.output_len for r in res.workload)
    ks, Xs = concurrency_k(res), measured_x(res)
    gaps = {j: naive_max_gap(*_cols(_instance_logs_by_hand(res, j)[0]), *_cols(_instance_logs_by_hand(res, j)[1]))
            for j in range(3)}
    assert len({g.gap for g in gaps.values()}) > 1  # the instances differ: picking the worst matters
    v = {x.check: x for x in check_run(res)}  # the policy is the run's
    assert {x.run for x in v.values()} == {"rr/vtc"}
    assert sorted(ks.values()) == [1, 2, 2]
    for name, X in (("VTC proved 2X (k=2)", {j: L + max(ks[j], 1) * 2 * Omax for j in range(3)}),
                    ("VTC proved 2X (X measured)", Xs)):
        j = max(range(3), key=lambda j: gaps[j].gap / (2 * X[j]))
        assert (v[name].bound, v[name].measured, v[name].params["instance"]) == (2 * X[j], gaps[j].gap, j)
        assert v[name].status == "holds" and v[name].ratio == pytest.approx(gaps[j].gap / (2 * X[j]))
        assert v[name].scope == "per instance, worst of 3"
    jw = max(range(3), key=lambda j: gaps[j].gap)
    pub = v["VTC published 2U"]
    assert (pub.bound, pub.measured, pub.params["instance"]) == (2 * max(L, 2 * 400), gaps[jw].gap, jw)
    every = _replay_everywhere(res)
    g_all = naive_max_gap(res.inst_svc_seq, res.svc_client, res.svc_amount, *_cols(every)).gap
    s = v["VTC per-worker sum"]
    assert g_all > 0 and (s.bound, s.measured) == (pytest.approx(2 * sum(Xs.values())), g_all)
    assert set(s.pair) <= set(res.clients)  # the verdict names the clients
    a = v["service gap"]
    assert (a.scope, a.bound, a.status) == ("backlogged anywhere", None, "no bound")
    assert a.measured == max_service_gap_naive(res).gap
    # the service weights come from params: the k-form of X is w_p L + k w_q Omax
    w = {x.check: x for x in check_run(res, "vtc", {"w_p": 3.0, "w_q": 0.5, "label": "mine"})}
    assert {x.run for x in w.values()} == {"mine"}
    k = w["VTC proved 2X (k=2)"]
    assert k.bound == 2 * (3.0 * L + ks[k.params["instance"]] * 0.5 * Omax)
    assert (k.params["w_p"], k.params["w_q"]) == (3.0, 0.5)
    xm = w["VTC proved 2X (X measured)"]
    assert xm.bound == 2 * measured_x(res, 3.0, 0.5)[xm.params["instance"]]
    assert w["VTC published 2U"].bound == 2 * max(3.0 * L, 0.5 * 400)


def test_check_run_reads_the_router_from_the_run():
    """A D2LPM run checked without params["router"]: the router is the run's, so the refuted
    candidate 2K(Q^u + Q^w + X) is shown with the default quanta."""
    from fairsched.analysis.bounds import check_run, concurrency_k

    res = _three_instance_run("dlpm", "d2lpm", quantum=64.0)
    L, Omax = max(r.input_len for r in res.workload), max(r.output_len for r in res.workload)
    v = {x.check: x for x in check_run(res, "dlpm", {"quantum": 64.0})}
    cand = v["D2LPM candidate 2K(Qu+Qw+X)"]
    X = L + max(max(concurrency_k(res).values()), 1) * 2 * Omax
    assert cand.run == "d2lpm/dlpm" and cand.bound == 2 * 3 * (64.0 + 8192.0 + X)
    other = check_run(res, "dlpm", {"quantum": 64.0, "router": "least-load"})  # params["router"] wins
    assert {x.run for x in other} == {"least-load/dlpm"} and not any(x.kind == "candidate" for x in other)
    d = cand.to_dict()
    assert d["pair"] == list(cand.pair) and d["window"] == list(cand.window) and len(d["pair"]) == 2


def _bound_formula_value(expr: str) -> float:
    """The value of the formula a verdict prints, e.g. ``2(Q^u + X) = 2(2048 + 60) (...)``."""
    from sympy.parsing.sympy_parser import (
        implicit_multiplication,
        parse_expr,
        standard_transformations,
    )

    text = expr.split(" = ", 1)[1].split(" (", 1)[0]
    return float(parse_expr(text, transformations=(*standard_transformations, implicit_multiplication)))


def test_check_run_on_one_instance_and_on_degenerate_runs():
    from fairsched.analysis.bounds import check_run, concurrency_k
    from fairsched.sim import InstanceConfig, simulate
    from fairsched.workload import make_workload

    rows = [(0.0, c, list(range(100 * i + 1, 100 * i + 31)), 30, 4) for i, c in enumerate("abab")]
    wl = make_workload(rows)
    res = simulate(wl, "dlpm", None, 1, InstanceConfig(max_batch_size=1, kv_capacity_tokens=300))
    v = {x.check: x for x in check_run(res)}  # no quantum given: DLPM's default Q^u = 2048
    k = max(concurrency_k(res)[0], 1)
    p = v[f"DLPM proved 2(Q^u+X) (k={k})"]
    assert p.run == "dlpm" and p.scope == "instance 0" and p.bound == 2 * (2048 + 30 + k * 2 * 4)
    assert (p.params["w_p"], p.params["w_q"], p.params["Q_u"]) == (1.0, 2.0, 2048.0)
    pub = v["DLPM published 2(U+Q^u)"]
    assert pub.bound == 2 * (max(30, 2 * 300) + 2048)
    for x in v.values():  # the printed formula gives the bound
        assert _bound_formula_value(x.bound_expr) == pytest.approx(x.bound)
    assert "max(1*30, 2*300)" in pub.bound_expr
    # several instances without the per-instance logs: only the cluster-wide gap
    two = simulate(wl, "vtc", "rr", 2, InstanceConfig(max_batch_size=1, kv_capacity_tokens=300))
    assert [(x.check, x.scope, x.bound) for x in check_run(two)] == [("service gap", "backlogged anywhere", None)]
    # one client: nothing to measure, no bound, no formula
    solo = simulate(make_workload(rows[:1]), "vtc")
    (n,) = check_run(solo)
    assert (n.run, n.check, n.scope, n.kind, n.bound, n.bound_expr, n.measured, n.ratio) == (
        "vtc", "service gap", "cluster", "none", None, "", 0.0, None)


# ------------------------------------------------- lmetric_steady: request work, stations, Erlang B
_K = {"prefill_a_s": 0.003, "prefill_b_s_per_tok": 7e-5, "prefill_c_s_per_tok2": 1.3e-8, "decode_a_s": 0.011,
      "decode_b_s_per_seq": 2e-4, "decode_c_s_per_ctx_tok": 3e-7}


def test_request_work_is_the_prefill_model_plus_the_decode_shares_integrated():
    """request_work = theory.cost's prefill time + the integral over the output of one
    sequence's share of a decode step, d t_d / dB + d t_d / dC * context (sympy)."""
    from fairsched.theory import cost
    from fairsched.theory import lmetric_steady as ST

    s = sp.Symbol("s", nonnegative=True)
    td = cost.decode_step_expr()
    sub = {cost.d_b: _K["decode_b_s_per_seq"], cost.d_c: _K["decode_c_s_per_ctx_tok"]}
    for new, cached, out in ((1, 0, 1), (300, 0, 0), (700, 1200, 40), (0, 2000, 64), (5, 9, 300)):
        share = (sp.diff(td, cost.batch) + sp.diff(td, cost.ctx) * (cached + new + s)).subs(sub)
        want = (cost.prefill_time(new, cached, _K) if new > 0 else 0.0) + float(sp.integrate(share, (s, 0, out)))
        assert ST.request_work(new, cached, out, _K) == pytest.approx(want, rel=1e-12)
        assert ST._prefill(new, cached, _K) == pytest.approx(cost.prefill_time(new, cached, _K) if new > 0 else 0.0)


def test_erlang_b_rejects_a_negative_argument():
    from fairsched.theory import lmetric_steady as ST

    for s, A in ((-1, 2.0), (2, -0.5)):
        with pytest.raises(ValueError):
            ST.erlang_b(s, A)
    assert ST.erlang_b(0, 0.0) == 1.0 and ST.erlang_b(3, 0.0) == 0.0  # no traffic: none lost (B(0, A) = 1)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), max_size=40))
def test_everywhere_backlog_log_is_the_replay_also_when_the_run_ends_backlogged(K, moves):
    """Random per-instance backlog logs (each queue alternates +1 / -1 for a client and may end
    holding it, as a run cut at a horizon does) against the plain replay."""
    from types import SimpleNamespace

    from fairsched.analysis.service_params import everywhere_backlog_log

    held, seq, cl, dl, inst = set(), [], [], [], []
    for pos, (c, j) in enumerate(moves):
        j %= K
        seq.append(pos)
        cl.append(c)
        inst.append(j)
        dl.append(-1 if (c, j) in held else 1)
        held ^= {(c, j)}
    res = SimpleNamespace(n_instances=K, ibl_seq=np.array(seq, dtype=np.int64), ibl_client=np.array(cl, dtype=np.int64),
                          ibl_delta=np.array(dl, dtype=np.int64), ibl_instance=np.array(inst, dtype=np.int64))
    got = everywhere_backlog_log(res)
    assert [list(map(float, x)) for x in got] == [list(map(float, c)) for c in _cols(_replay_everywhere(res))]
