"""Round-8 prefills a decoding request sees under a load-based router
(``proofs/lmetric_harm_validation.md`` §3.7): every arrival joins the least-loaded instance, so
the requests present see the prefills of the arrivals that join *their* instance, the
least-loaded one, not the instance's mean rate.

- Claim 1 (Monte Carlo of join-the-least-loaded M/M/inf and M/D/inf stations): the prefills a
  request sees per stay equal the mean load an arrival finds at the instance it joins, and the
  library's mean-field share matches the simulated one;
- Claim 2 and the mean-field law (hypothesis): the balance, its mean, ``n = 1`` (Poisson), the
  ``E[B^2]`` identity, ``0 <= kappa <= 1``;
- the model's form: only sojourns and loads move, never a TTFT; bad values are refused.
"""

from __future__ import annotations

import heapq
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairsched.theory.lmetric_steady import steady_state_hotspot
from fairsched.theory.lmetric_transient import jsq_tail, prefill_seen_share


def _jsq(A: float, n: int, horizon: float, seed: int, deterministic: bool) -> tuple[float, float]:
    """Join-the-least-loaded among ``n`` infinite-server stations, sojourn 1 (exponential or fixed),
    ``A`` arrivals per instance per sojourn. Returns (mean prefills a request sees while present,
    mean load an arrival finds at the instance it joins), both over the requests after a warm-up."""
    rng = random.Random(seed)
    load, seen, leave, t = [0] * n, {}, [], 0.0
    present: list[list[int]] = [[] for _ in range(n)]
    done, found, k = [], [], 0
    while t < horizon:
        t += rng.expovariate(n * A)
        while leave and leave[0][0] <= t:
            _, i, rid = heapq.heappop(leave)
            load[i] -= 1
            present[i].remove(rid)
            if rid in seen:
                done.append(seen.pop(rid))
        low = min(load)
        i = rng.choice([j for j in range(n) if load[j] == low])
        for rid in present[i]:  # its prefill is seen by every request on the instance it joins
            if rid in seen:
                seen[rid] += 1
        if t > 5.0:  # warm-up over
            seen[k] = 0
            found.append(low)
        load[i] += 1
        present[i].append(k)
        heapq.heappush(leave, (t + (1.0 if deterministic else rng.expovariate(1.0)), i, k))
        k += 1
    return sum(done) / len(done), sum(found) / len(found)


@pytest.mark.parametrize("A,n,deterministic", [(2.9, 8, False), (2.9, 8, True), (5.5, 16, False), (1.0, 4, True)])
def test_prefills_seen_are_the_joined_load_in_monte_carlo(A, n, deterministic):
    seen, found = _jsq(A, n, 250.0, 7, deterministic)
    assert seen == pytest.approx(found, rel=0.03)  # Claim 1: the same count, grouped two ways
    assert seen < 0.9 * A  # fewer than the instance's mean rate gives (PASTA: A)
    assert A * prefill_seen_share(A, n) == pytest.approx(seen, abs=0.15)  # the mean field (J2), within 0.15


@settings(max_examples=40, deadline=None)
@given(A=st.floats(0.05, 40.0), n=st.integers(1, 64))
def test_jsq_law_balance_mean_and_identity(A, n):
    s = jsq_tail(A, n)
    assert s[0] == 1.0 and all(a >= b >= 0 for a, b in zip(s[:-1], s[1:], strict=True))
    assert sum(s[1:]) == pytest.approx(A, rel=1e-6)  # Little: the mean is A
    for k in range(len(s) - 2):  # crossings between k and k + 1
        assert A * (s[k] ** n - s[k + 1] ** n) == pytest.approx((k + 1) * (s[k + 1] - s[k + 2]), abs=1e-9)
    kappa = prefill_seen_share(A, n)
    EB2 = sum((2 * k - 1) * v for k, v in enumerate(s) if k > 0)
    assert kappa == pytest.approx((EB2 / A - 1) / A, abs=1e-3)  # Claim 2 (kappa: interpolated on a grid)
    assert 0 <= kappa <= 1 + 1e-9
    if n == 1:
        assert s[3] == pytest.approx(1 - sum(math.exp(-A) * A ** j / math.factorial(j) for j in range(3)), abs=1e-9)
        assert kappa == 1.0


def test_prefill_seen_share_limits_and_errors():
    assert prefill_seen_share(0.0, 8) == 1.0 and prefill_seen_share(3.0, 1) == 1.0
    assert prefill_seen_share(0.3, 16) < 0.05  # empty instances take the arrivals
    assert prefill_seen_share(150.0, 64) == pytest.approx(1 - 1 / 150, abs=1e-3)  # two-point limit: 1 - 1/A
    for bad in ((-1.0, 4), (math.inf, 4), (2.0, 0)):
        with pytest.raises(ValueError):
            jsq_tail(*bad)


SPEC = dict(x_val=0.1, m0=8, n=64, qps=40.0, L=8000, u=200, out=200, L_cold=1500, out_cold=250, n_hot=100)


@pytest.mark.parametrize("form", [dict(), dict(load_form="transient", window=(1.0, 4.0), residue=2.0, residue_age=3.0)])
def test_jsq_moves_sojourns_and_loads_never_a_ttft(form):
    mean, jsq = steady_state_hotspot(**SPEC, **form), steady_state_hotspot(**SPEC, **form, prefill_seen="jsq")
    assert steady_state_hotspot(**SPEC, **form, prefill_seen="mean") == mean  # the default
    assert jsq["ttft_leastload"] == mean["ttft_leastload"]
    assert jsq["B_Mbar"] < mean["B_Mbar"]  # the others' decodes see fewer prefills: shorter stays
    with pytest.raises(ValueError, match="prefill_seen"):
        steady_state_hotspot(**SPEC, prefill_seen="exact")
