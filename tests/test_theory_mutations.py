"""Tests that tie each symbolic result to what is measured or derived, so that editing a
formula in ``fairsched.theory`` (or the measured X of ``fairsched.analysis.bounds``) fails a
test. Each test names the mutation of issue 10 item 6 it kills; ``bench/mutation_score.py``
runs a wider, mechanical set of mutations."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from test_theory_lmetric import _route

from fairsched.analysis.bounds import check_run, concurrency_k, measured_x, simulate_for_check
from fairsched.sim import InstanceConfig
from fairsched.theory import lmetric as LM
from fairsched.theory import symbols as S
from fairsched.workload.request import make_workload


def _hot_subs(x, nh, nc, qps, L=None, u=None):
    d = {S.x: x, S.xbar: 1 - x, S.n_hot: nh, S.n_cold: nc, S.QPS: qps}
    if L is not None:
        d.update({S.kappa: sp.Rational(L, u), S.L_c: L, S.u_c: u})
    return d


def test_steady_ratio_expression_matches_discrete_router():
    """Kills ``steady_ratio`` with Min -> Max: one case below kappa, one above."""
    cases = [(0.6, 2, 6, 2048, 512), (0.4, 2, 6, 4096, 256)]
    lims = []
    for x, nh, nc, L, u in cases:
        _, B = _route(x, nh, nc, 200.0, 4, L, u, 200.0)
        ratio = B[:nh].mean() / B[nh:].mean()
        expr = float(LM.steady_ratio().subs(_hot_subs(x, nh, nc, 200.0, L, u)))
        assert ratio == pytest.approx(expr, rel=0.05)
        lims.append(float(LM.limit_ratio().subs(_hot_subs(x, nh, nc, 200.0))) < L / u)
    assert lims == [False, True]  # the two cases take different branches of the min


def test_harm_time_expression_matches_root_found_numbers():
    """Kills edits of the symbolic ``harm_time`` (its numeric twin in ``hotspot_numbers`` is
    checked against a root find in ``test_theory_lmetric.py::test_harm_time_matches_root_find``)."""
    for x, nh, nc, qps, L, u in [(0.5, 2, 14, 100.0, 4096, 256), (0.8, 4, 12, 40.0, 16384, 64)]:
        d = LM.hotspot_numbers(x, nh, nc, qps, 8.0, L, u)
        sub = {**_hot_subs(x, nh, nc, qps), S.O_out: 256, LM.S_sym: d["S"], LM.beta_d: d["beta_d"]}
        assert float(LM.harm_time().subs(sub)) == pytest.approx(d["t_harm"], rel=1e-9)
        sym = LM.harm_time(symbolic_rates=True).subs({**sub, LM.a_sym: d["a"], LM.b_sym: d["b"]})
        assert float(sym) == pytest.approx(d["t_harm"], rel=1e-9)


@pytest.mark.parametrize("plus_one", [False, True])
def test_harm_load_threshold_derived_from_diversion_point(plus_one):
    """Kills ``(kappa - 1) -> kappa``; answers the +1 question: with the P (B + 1) score the
    difference at diversion is (kappa - 1)(B_Mbar + 1), so the threshold is one lower."""
    Bm, Bmb = sp.symbols("B_M B_Mbar", positive=True)
    k, O, bd, Ssym = S.kappa, S.O_out, LM.beta_d, LM.S_sym  # noqa: E741
    div = sp.Eq(Bm + 1, k * (Bmb + 1)) if plus_one else sp.Eq(Bm, k * Bmb)
    diff = sp.solve(div, Bm)[0] - Bmb
    thr = sp.solve(sp.Eq(O * bd * diff, Ssym), Bmb)[0]
    assert sp.simplify(thr - LM.harm_load_threshold(plus_one)) == 0
    d = LM.hotspot_numbers(0.5, 2, 14, 100.0, 8.0, 4096, 256, plus_one=plus_one)
    num = LM.harm_load_threshold(plus_one).subs({k: d["kappa"], O: 256, bd: d["beta_d"], Ssym: d["S"]})
    assert float(num) == pytest.approx(d["harm_load_threshold"], rel=1e-12)


def test_classify_regime_both_branches():
    """Kills the t* / t_h comparison flipped: points where the score diverts first
    ("hotspot") and where harm comes first ("harmful") both exist and are labelled so."""
    seen = set()
    for x in (0.3, 0.5, 0.7, 0.9):
        for frac in (0.0625, 0.125, 0.25):
            for L, u, n_out in ((32768, 8192, 4), (4096, 256, 256), (32768, 512, 16)):
                nh = frac * 16
                d = LM.hotspot_numbers(x, nh, 16 - nh, 100.0, 8.0, L, u, n_out=n_out)
                if d["benign"] or d["t_star"] is None:
                    continue
                want = "hotspot" if d["t_star"] <= d["t_harm"] else "harmful"
                assert LM.classify_regime(x, frac, 16, 100.0, 8.0, L, u, n_out=n_out) == want
                seen.add(want)
    assert seen == {"hotspot", "harmful"}


def _co_running_workload():
    rows, unit = [], 1
    for c in ("f", "f", "f", "g", "g", "g"):
        rows.append((0.0, c, list(range(unit, unit + 16)), 16, 10))
        unit += 16
    return make_workload(rows)


def test_measured_x_counts_a_clients_co_running_requests():
    """Kills "measured X ignoring a client's co-running requests": f's three requests run
    together, so right after they are admitted f owes 3 x 10 decode tokens: X = 16 + 2 * 30."""
    res = simulate_for_check(_co_running_workload(), "vtc", instance=InstanceConfig(kv_capacity_tokens=4096))
    assert concurrency_k(res)[0] == 3
    assert measured_x(res)[0] == pytest.approx(16 + 2 * 30)


def test_checker_k_bound_needs_k():
    """The checker's ``X = w_p L_in + k w_q O_max`` uses the measured k = 3 (a test that needs
    the k of ``X_expr``)."""
    res = simulate_for_check(_co_running_workload(), "vtc", instance=InstanceConfig(kv_capacity_tokens=4096))
    v = {x.check: x for x in check_run(res, "vtc")}["VTC proved 2X (k=3)"]
    assert v.bound == 2 * (16 + 3 * 2 * 10) and v.params["k"] == 3
    assert v.measured <= v.bound
    assert np.isfinite(v.ratio)
