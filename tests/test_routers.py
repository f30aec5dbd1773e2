"""Each router's defining choice, pinned on a hand-made cluster view: inverting SGLang
cache-aware's threshold test, swapping the linear router's lam and 1 - lam, or dropping
the decode term of D²LPM's routing charge each fails a test here."""

import pytest
from _fakes import View  # tests/ is on sys.path under pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fairsched.policies import D2LPM, LMetric, ServiceWeights, VLLMv1
from fairsched.policies.routers import Linear, SGLangCacheAware
from fairsched.workload.request import Request


def req(n_in=100, out=1, client="a", rid=0):
    return Request(rid, 0.0, client, tuple(range(n_in)), n_in, out, 1)


# ------------------------------------------------------------------ SGLang cache_aware
def test_sglang_cache_aware_follows_a_match_above_the_threshold():
    # balanced load; instance 1 holds 90% of the prompt (> 0.3): the match wins, although
    # instance 0 has the smaller cache
    v = View([1, 1, 1], [1, 1, 1], hits=[0, 90, 0], cache=[0, 500, 100])
    assert SGLangCacheAware().route(req(), v, 0) == 1


def test_sglang_cache_aware_below_the_threshold_goes_to_the_smallest_cache():
    # best match 20% (< 0.3): the instance with the most free room (smallest cache), not the match
    v = View([1, 1, 1], [1, 1, 1], hits=[0, 20, 0], cache=[300, 500, 100])
    assert SGLangCacheAware().route(req(), v, 0) == 2
    # the threshold is the parameter: at 0.1 the same 20% match is followed
    assert SGLangCacheAware(cache_threshold=0.1).route(req(), v, 0) == 1


def test_sglang_cache_aware_imbalance_overrides_the_cache():
    # max - min = 99 > 64 and 100 > 1.5 * 1: least loaded, whatever the match
    v = View([100, 1, 50], [0, 0, 0], hits=[100, 0, 0])
    assert SGLangCacheAware().route(req(), v, 0) == 1
    # small absolute imbalance (<= 64): the match is followed
    v = View([10, 1, 5], [0, 0, 0], hits=[100, 0, 0])
    assert SGLangCacheAware().route(req(), v, 0) == 0


# ------------------------------------------------------------------ linear
def test_linear_lam_weighs_the_kv_miss_term():
    # instance 0: idle, nothing cached (miss 1.0, load 0); instance 1: busiest (load 1.0), 90% cached (miss 0.1)
    v = View([0, 4], [0, 0], hits=[0, 90])
    # lam = 0.9 (mostly cache): 0.9*1.0 + 0.1*0 = 0.9 vs 0.9*0.1 + 0.1*1.0 = 0.19 -> instance 1
    assert Linear(lam=0.9).route(req(), v, 0) == 1
    # lam = 0.1 (mostly load): 0.1 vs 0.91 -> instance 0
    assert Linear(lam=0.1).route(req(), v, 0) == 0
    # the endpoints are pure cache and pure load
    assert Linear(lam=1.0).route(req(), v, 0) == 1
    assert Linear(lam=0.0).route(req(), v, 0) == 0


def test_linear_rejects_lam_outside_unit_interval():
    for lam in (-0.1, 1.5):
        with pytest.raises(ValueError, match="lam"):
            Linear(lam=lam)


# ------------------------------------------------------------------ D²LPM
@pytest.mark.parametrize("w_q", [1.0, 2.0, 3.0])
def test_d2lpm_charges_prefill_and_decode_at_routing(w_q):
    """The chosen (client, worker) deficit drops by w_p * uncached + w_q * output_len."""
    d = D2LPM(quantum_w=100.0, weights=ServiceWeights(w_p=1.0, w_q=w_q))
    v = View([0, 0], [0, 0], hits=[0, 0])
    r = req(n_in=10, out=50)
    assert d.route(r, v, 0) == 0  # no positive deficit: shortest queue, one refill round of Q^w
    assert d.refills == 1
    assert d.deficit["a"] == [100.0 - 10 - w_q * 50, 100.0]


def test_d2lpm_decode_charge_pushes_the_client_off_its_cached_worker():
    # request 1 (10 prompt tokens, 50 output) lands on worker 0 and costs 10 + 2*50 = 110 > Q^w = 100:
    # the client's deficit there is negative, so request 2 goes to worker 1 although worker 0 holds
    # its prefix. Without the decode term (cost 10) it would stay on worker 0.
    d = D2LPM(quantum_w=100.0)
    assert d.route(req(n_in=10, out=50), View([0, 0], [0, 0], hits=[0, 0]), 0) == 0
    assert d.route(req(n_in=10, out=50, rid=1), View([0, 0], [1, 0], hits=[10, 0]), 0) == 1


def test_d2lpm_prefers_the_longest_prefix_among_positive_deficits():
    d = D2LPM(quantum_w=1000.0)
    v = View([0, 0, 0], [0, 0, 0], hits=[0, 90, 40])
    assert d.route(req(out=1), v, 0) == 0  # first request: no deficit yet -> shortest queue
    assert d.route(req(out=1, rid=1), v, 0) == 1  # now all positive: the longest cached prefix


# ------------------------------------------------------------------ load scores
def test_vllm_v1_weighs_waiting_four_times_running():
    # scores 4*1+0 = 4, 4*0+5 = 5, 4*0+3 = 3 -> instance 2; with running 4 at instance 2: 4 vs 4 -> index 0
    assert VLLMv1().route(req(), View([1, 0, 0], [0, 5, 3], [0] * 3), 0) == 2
    assert VLLMv1().route(req(), View([1, 0, 0], [0, 5, 4], [0] * 3), 0) == 0


def test_lmetric_multiplies_prefill_by_batch_size():
    # P = queued + uncached: instance 0 P = 100, B+1 = 2 -> 200; instance 1 P = 10, B+1 = 21 -> 210
    v = View([0, 10], [1, 10], hits=[0, 90])
    assert LMetric().route(req(), v, 0) == 0
    # a sum would pick instance 1 (100 + 2 > 10 + 21); a smaller batch there flips the product too
    v = View([0, 8], [1, 10], hits=[0, 90])  # 10 * 19 = 190 < 200
    assert LMetric().route(req(), v, 0) == 1


def _small_or(hi):
    return st.one_of(st.integers(0, 4), st.integers(0, hi))


@given(st.lists(st.tuples(_small_or(2**62), _small_or(2**40), _small_or(2**31)), min_size=1, max_size=8),
       _small_or(2**40))
@example(inst=[(0, 0, 1), (1, 0, 0)], L=1)  # equal products 1 * 2 = 2 * 1: the smaller B_i + 1 wins
@example(inst=[(2**53 + 1, 0, 0), (2**53, 0, 0)], L=0)  # equal as floats only: the lower index wins
@settings(max_examples=200, deadline=None)
def test_lmetric_route_choice_is_the_argmin_of_the_scores_products(inst, L):
    """The route's one-pass choice is the argmin of (P_i (B_i + 1), B_i + 1, i) of _score's
    factors, float for float (huge values included, where rounding could differ; ties drawn
    often by repeating instances)."""
    inst = inst + inst[: len(inst) // 2]
    queued, cached, loads = (list(x) for x in zip(*inst, strict=True))
    keys = [(p * b, b, i) for i, (p, b) in enumerate(map(LMetric._score, queued, [L - c for c in cached], loads))]
    assert LMetric._choose(queued, cached, loads, L) == min(keys)[2]
