"""Round-7 transient loads (``proofs/lmetric_harm_validation.md`` §3.5): a window sees an
M/G/inf station filling since the class's onset, plus the load present at the onset leaving,
averaged over the window; the run's ratio is the outcome's ratio of mean loads.

- the window means are the integrals (sympy, on the library's own functions with exact inputs);
- the formula is the transient of a simulated infinite-server station (Monte Carlo);
- far past every sojourn the transient form is the steady form (hypothesis);
- a simulated workload (family id 171) whose verdict agrees with its measured outcome only with
  the transient form, and rescoring its saved rows gives the live verdict.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from fairsched.theory.lmetric_run import run_regime
from fairsched.theory.lmetric_steady import steady_state_hotspot
from fairsched.theory.lmetric_transient import transient_load, window_mean_min, window_mean_residue

R = sp.Rational


@pytest.mark.parametrize("S,a,b", [(R(3, 2), R(0), R(1)), (R(3, 2), R(1), R(2)), (R(1, 2), R(1), R(3)),
                                   (R(5), R(1, 4), R(7, 4)), (R(2), R(2), R(2))])
def test_window_mean_min_is_the_integral_in_sympy(S, a, b):
    t = sp.Symbol("t", nonnegative=True)
    want = sp.Min(S, a) if a == b else sp.integrate(sp.Min(S, t), (t, a, b)) / (b - a)
    assert sp.simplify(window_mean_min(S, a, b) - want) == 0


@pytest.mark.parametrize("S0,age,a,b", [(R(2), R(5), R(0), R(1)), (R(2), R(1, 2), R(0), R(3)),
                                        (R(2), R(1), R(1, 2), R(7, 4)), (R(3), R(3), R(1), R(4)),
                                        (R(1), R(1, 4), R(2), R(3))])
def test_window_mean_residue_is_the_integral_in_sympy(S0, age, a, b):
    t = sp.Symbol("t", nonnegative=True)
    A = min(age, S0)
    g = sp.Piecewise((1, t <= S0 - A), ((S0 - t) / A, t <= S0), (0, True))  # share still present at t
    assert sp.simplify(window_mean_residue(S0, a, b, age) - sp.integrate(g, (t, a, b)) / (b - a)) == 0
    if age >= S0:  # stationary before the onset: residual times uniform on [0, S0]
        h = sp.Piecewise((1 - t / S0, t <= S0), (0, True))
        assert sp.simplify(window_mean_residue(S0, a, b) - sp.integrate(h, (t, a, b)) / (b - a)) == 0


def test_transient_load_is_the_infinite_server_transient():
    """Poisson arrivals at r0 over [0, t_on), r from the onset t_on; fixed sojourns S0, S; the
    mean count at uniform times of the window [t_on + a, t_on + b], over many runs."""
    rng = np.random.default_rng(7)
    r0, S0, t_on, r, S, a, b = 6.0, 2.0, 1.5, 10.0, 1.2, 0.5, 2.0
    counts = []
    for _ in range(3000):
        pre = rng.uniform(0, t_on, rng.poisson(r0 * t_on))
        post = t_on + rng.uniform(0, b, rng.poisson(r * b))
        ts = t_on + rng.uniform(a, b, 8)
        counts += [int(((pre <= q) & (pre + S0 > q)).sum() + ((post <= q) & (post + S > q)).sum()) for q in ts]
    want = transient_load([(r, S)], a, b, residue=r0 * min(S0, t_on), residue_sojourn=S0, residue_age=t_on)
    assert abs(np.mean(counts) - want) < 0.02 * want  # standard error ~0.3 %
    stationary = transient_load([(r, S)], a, b, residue=r0 * min(S0, t_on), residue_sojourn=S0)
    assert abs(stationary - want) > 0.04 * want  # the residue's age matters here (t_on < S0)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(S=st.floats(0.0, 20.0), a=st.floats(0.0, 30.0), w=st.floats(0.0, 10.0), age=st.floats(0.0, 40.0))
def test_window_means_bounds_and_limits(S, a, w, age):
    b = a + w
    m = window_mean_min(S, a, b)
    assert min(S, a) - 1e-9 <= m <= min(S, b) + 1e-9  # between the window's ends, never above Little's S
    if a >= S:
        assert m == S  # past the sojourn: the steady state
    g = window_mean_residue(S, a, b, age)
    assert -1e-12 <= g <= 1 + 1e-12
    assert g >= window_mean_residue(S, a, b) - 1e-9  # arrived within age < S: it leaves later than a stationary one
    assert window_mean_residue(S, a + 1.0, b + 1.0, age) <= g + 1e-9  # the residue only leaves


@settings(max_examples=100, deadline=None, derandomize=True)
@given(S0=st.floats(0.5, 20.0), age=st.floats(0.0, 40.0), u=st.floats(0.0, 1.5))
def test_a_zero_width_window_is_the_limit_of_narrow_ones(S0, age, u):
    """A window of no width gives the share still there at that instant, the limit of ever
    narrower windows around it (also inside the linear part, where it is (S0 - t) / A)."""
    a = u * S0
    narrow = window_mean_residue(S0, a, a + 1e-7, age)
    assert window_mean_residue(S0, a, a, age) == pytest.approx(narrow, abs=1e-5)
    assert window_mean_min(S0, a, a) == pytest.approx(window_mean_min(S0, a, a + 1e-7), abs=1e-6)


def test_transient_load_errors():
    with pytest.raises(ValueError, match="t_a <= t_b"):
        window_mean_min(1.0, 2.0, 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        transient_load([(-1.0, 1.0)], 0.0, 1.0)
    with pytest.raises(ValueError, match="load_form"):
        steady_state_hotspot(**SPEC, load_form="transient")  # no window
    with pytest.raises(ValueError, match="load_form"):
        steady_state_hotspot(**SPEC, load_form="exact", window=(0.0, 1.0))


SPEC = dict(x_val=0.6, m0=3, n=8, qps=30.0, L=12040.0, u=40.0, out=64.0, L_cold=2000.0, out_cold=64.0, n_hot=1080.0)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(x=st.floats(0.05, 0.95), m0=st.integers(1, 7), qps=st.floats(5.0, 40.0), doc=st.sampled_from([2000, 12000]))
def test_transient_far_past_every_sojourn_is_the_steady_state(x, m0, qps, doc):
    kw = {**SPEC, "x_val": x, "m0": m0, "qps": qps, "L": doc + 40.0}
    s = steady_state_hotspot(**kw)
    if s["ttft_leastload"] == math.inf or s["B_M"] is None or s["B_Mbar"] is None:
        return  # no steady state to compare with
    t = steady_state_hotspot(**kw, load_form="transient", window=(1e4, 1e4 + 1.0), residue=5.0)
    for key in ("holders", "ratio", "B_M", "B_Mbar", "ttft_lmetric", "ttft_leastload"):
        assert t[key] == pytest.approx(s[key], rel=1e-6, abs=1e-9), key
    assert t["regime"] == s["regime"] and t["load_form"] == "transient"


def test_run_ratio_of_transient_windows_is_the_ratio_of_mean_loads():
    w = [{"ratio": 2.0, "B_Mbar": 1.0}, {"ratio": 1.1, "B_Mbar": 9.0}]  # (B_M + 1): 4 and 11; (B_Mbar + 1): 2, 10
    base = dict(ttft_lmetric=0.1, ttft_leastload=0.1, replication_per_holder_s=0.0, holders=2, holders_initial=2,
                n_hot=10.0)
    tr = [({**base, **d, "load_form": "transient"}, 10) for d in w]
    assert run_regime(tr, 8, 20)["ratio"] == pytest.approx((4 + 11) / (2 + 10))  # 1.25: benign, not hotspot
    assert run_regime(tr, 8, 20)["regime"] == "benign"
    sat = [tr[0], ({**tr[1][0], "B_Mbar": None}, 10)]  # every instance saturated: no load to weight by
    assert run_regime(sat, 8, 20)["ratio"] == 2.0  # the largest window's, as §3.3
    st_ = [({**base, **d, "load_form": "steady"}, 10) for d in w]
    assert run_regime(st_, 8, 20) == {**run_regime(st_, 8, 20), "ratio": 2.0, "regime": "hotspot"}  # the largest


def test_transient_form_fixes_a_simulated_burst_and_rescoring_gives_the_live_verdict():
    """Family id 171 (N = 4, 2 holders, x = 0.29 for the middle half of a 6-s bursty run, 85 %
    load): measured benign (R about 1.06 on its own seed); the steady form calls it a hotspot
    (its second window's steady state: R 5.6), the transient form benign as measured."""
    from fairsched.analysis.detect.validation import evaluate, family, rescore_verdict

    row = evaluate(family(200, 0)[171], seeds=1)
    assert row["outcome"] == "benign" and row["load_ratio"] < 1.25
    assert row["verdict"] == rescore_verdict(row) == "benign"  # live = rescored from the saved rows
    assert all(w["span_s"] > 0 and w["t_onset"] is not None for w in row["windows"])
    assert rescore_verdict(row, load_form="steady") == "hotspot"  # fails without the transient loads
