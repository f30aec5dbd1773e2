"""Round-6 term of the hotspot model (``proofs/lmetric_harm_validation.md`` §3.4): each holder
runs the class's own Poisson stream, which the score cannot thin, and the other traffic only
tops it up to the others' level, so the holder's load is a Poisson count conditioned on being
at least that level (``holder_stream="poisson"``):

- the chain's stationary law and mean (sympy; hypothesis against scipy's Poisson);
- the floor's fixed point is unique and conserves the other traffic (hypothesis);
- the term changes the ratio only, never a TTFT or a harmful verdict, and raises it;
- on a boundary point of the phase diagram (60 s runs: many sojourns) it predicts the
  simulator's measured ratio, which the fluid form misses.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import poisson

from fairsched.theory.lmetric_steady import (
    floored_poisson_mean,
    steady_state_hotspot,
    unbalanced_holders,
)


def test_floored_chain_is_the_poisson_law_conditioned_on_the_floor_in_sympy():
    a, S, B = sp.symbols("a S B", positive=True)
    pi = lambda b: (a * S) ** b / sp.factorial(b)  # noqa: E731  the candidate law (unnormalised)
    # detailed balance of the chain on {k, k+1, ...}: births a (class arrivals), deaths (B+1)/S
    assert sp.simplify(a * pi(B) - (B + 1) / S * pi(B + 1)) == 0
    A, j = sp.symbols("A j", positive=True)
    for k in (1, 3, 6):  # E[X 1{X >= k}] = A P(X >= k-1): the closed form of the conditioned mean
        lhs = sp.summation(j * A**j / sp.factorial(j), (j, k, sp.oo))
        rhs = A * sp.summation(A**j / sp.factorial(j), (j, k - 1, sp.oo))
        assert sp.simplify(lhs - rhs) == 0


@settings(max_examples=60, deadline=None)
@given(A=st.floats(0.01, 200.0), k=st.integers(1, 250))
def test_floored_poisson_mean_is_the_conditioned_poisson_mean(A, k):
    got, tail = floored_poisson_mean(A, k), poisson.sf(k - 1, A)  # P(X >= k)
    if tail > 1e-250:  # A P(X >= k-1) / P(X >= k)
        assert got == pytest.approx(A * poisson.sf(k - 2, A) / tail, rel=1e-9, abs=1e-9)
    assert got >= max(A, k) - 1e-9
    assert floored_poisson_mean(A, k + 0.5) >= got - 1e-12  # non-decreasing in the floor
    assert floored_poisson_mean(A, k + 0.5) <= floored_poisson_mean(A, k + 1) + 1e-12


def test_floored_poisson_mean_limits_and_errors():
    assert floored_poisson_mean(5.0, 0.0) == 5.0 and floored_poisson_mean(5.0, -3.0) == 5.0  # no floor
    assert floored_poisson_mean(400.0, 10.0) == 400.0  # far above the floor: the class alone
    assert floored_poisson_mean(0.01, 20.0) == pytest.approx(20.0, abs=1e-3)  # far below: the floor
    assert floored_poisson_mean(25.0, 25.0) - 25.0 == pytest.approx(math.sqrt(25.0) * 0.8, rel=0.15)  # ~ sqrt(A)
    with pytest.raises(ValueError, match="A >= 0"):
        floored_poisson_mean(-1.0, 2.0)
    with pytest.raises(ValueError, match="finite"):
        floored_poisson_mean(1.0, math.inf)


@settings(max_examples=60, deadline=None)
@given(A=st.floats(0.1, 60.0), b_m=st.floats(0.0, 60.0), b_o=st.floats(0.0, 60.0), q_m=st.floats(0.0, 5000.0),
       q_o=st.floats(0.0, 5000.0), l_o=st.floats(500.0, 3000.0), m=st.integers(1, 31), extra=st.integers(1, 32))
def test_unbalanced_holders_floor_is_the_fixed_point_and_conserves_other_traffic(A, b_m, b_o, q_m, q_o, l_o, m,
                                                                                  extra):
    n = m + extra
    b_m = max(b_m, A)  # the fluid holder carries at least its class
    B_M, B_O = unbalanced_holders(A, b_m, b_o, q_m, q_o, l_o, m, n)
    kappa = (q_o + l_o) / (q_m + l_o)
    floor = kappa * (B_O + 1) - 1
    assert B_M == pytest.approx(floored_poisson_mean(A, floor), rel=1e-6, abs=1e-6)  # B_M at its floor
    assert B_M >= A - 1e-9
    if B_O > 0:  # what the holders take beyond the fluid state leaves the others
        assert m * (B_M - b_m) == pytest.approx(-(n - m) * (B_O - b_o), rel=1e-6, abs=1e-5)


SPEC = dict(x_val=0.6, m0=5, n=8, qps=30.0, L=12040.0, u=40.0, out=64.0, L_cold=2000.0, out_cold=64.0,
            n_hot=1080.0)


@settings(max_examples=40, deadline=None)
@given(x=st.floats(0.05, 0.95), m0=st.integers(1, 7), load=st.floats(5.0, 40.0), doc=st.sampled_from([2000, 12000]))
def test_poisson_stream_changes_the_ratio_only_and_never_lowers_it(x, m0, load, doc):
    kw = {**SPEC, "x_val": x, "m0": m0, "qps": load, "L": doc + 40.0}
    fl, po = steady_state_hotspot(**kw), steady_state_hotspot(**kw, holder_stream="poisson")
    assert steady_state_hotspot(**kw, holder_stream="fluid") == fl  # the default is the fluid form
    for key in ("holders", "ttft_lmetric", "ttft_leastload", "rho_M", "other_on_holders"):
        assert po[key] == fl[key]
    assert (po["regime"] == "harmful") == (fl["regime"] == "harmful")
    assert po["ratio"] >= fl["ratio"] - 1e-9


def test_poisson_stream_rejects_an_unknown_form():
    with pytest.raises(ValueError, match="holder_stream"):
        steady_state_hotspot(**SPEC, holder_stream="exact")


def test_poisson_stream_predicts_a_boundary_phase_point():
    """x = 0.6 on 5 of 8 holders (x/(|M|/N) = 0.96, holders last in the tie order): the
    simulator measures a hotspot the fluid form misses; the Poisson form predicts it."""
    from fairsched.analysis.detect import phase_diagram

    row = phase_diagram(xs=(0.6,), holders=(5,), holders_at="high").iloc[0]
    assert row.load_ratio > 1.25  # measured (60 s: many sojourns, the stationary law applies)
    assert row.model_ratio < 1.25  # the fluid form: the holders filled to the others' level
    assert row.model_ratio_poisson > 1.25 and bool(row.agree_model_poisson)
    assert abs(row.model_ratio_poisson - row.load_ratio) < 0.1
