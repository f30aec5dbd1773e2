"""Preble's global scheduler (E2 exploit / explore, load window, rebalancing) on its
defining behaviour, with a fake cluster view and in the simulator."""

from __future__ import annotations

import pytest

from fairsched.analysis.metrics import cache_hit_rate
from fairsched.policies.routers import Preble
from fairsched.sim import CostModel, simulate
from fairsched.workload.generators import long_document_qa
from fairsched.workload.request import Request


class View:
    def __init__(self, hits):
        self.h = hits
        self.n_instances = len(hits)

    def cached_tokens(self, i, r):
        return self.h[i]

    def n_waiting(self, i):
        return 0

    def n_running(self, i):
        return 0

    def queued_prefill_tokens(self, i):
        return 0

    def cache_size_tokens(self, i):
        return 0


def req(rid, n=1000, out=10):
    return Request(rid=rid, arrival=0.0, client="c", prompt=tuple(range(n // 16)), input_len=n, output_len=out, block_size=16)


def test_exploit_when_cached_prefix_is_longer_than_the_rest():
    p = Preble()
    # instance 2 caches 600 of 1,000 tokens (> 400 left): exploit, although instance 0 is idle too
    assert p.route(req(0), View([0, 0, 600]), 0.0) == 2 and p.exploits == 1
    # a cached 400 of 1,000 is not enough: explore = argmin(load + prefill time); instance 2 now
    # carries request 0's load, instance 1 caches 400 -> cheapest prefill among the idle ones
    assert p.route(req(1), View([0, 400, 400]), 0.1) == 1 and p.explores == 1


def test_explore_balances_by_load_plus_prefill_cost():
    p, v = Preble(), View([0, 0, 0])
    chosen = [p.route(req(k), v, 0.01 * k) for k in range(6)]
    assert sorted(chosen) == [0, 0, 1, 1, 2, 2]  # equal costs: the load window spreads them
    assert p.load(0, 0.06) > 0
    # the window forgets prefill load after window_s; decode load leaves on finish
    q = Preble(window_s=1.0)
    q.route(req(0), v, 0.0)
    assert q.load(0, 0.5) > q.load(0, 5.0) > 0
    q.on_finish(req(0), 0, 5.0)
    assert q.load(0, 5.0) == 0


def test_rebalancing_moves_an_overloaded_prefix():
    p = Preble(th_bal=2.0)
    v = View([900, 0, 0])  # instance 0 holds the prefix of every request
    chosen = [p.route(req(k), v, 0.0) for k in range(20)]
    assert chosen[0] == 0 and p.rebalances > 0 and set(chosen) > {0}
    # without rebalancing it would exploit instance 0 every time
    q = Preble(th_bal=1e9)
    assert {q.route(req(k), v, 0.0) for k in range(5)} == {0} and q.rebalances == 0


def test_preble_in_the_simulator_keeps_documents_together():
    wl = long_document_qa(n_clients=4, questions_per_client=12, doc_tokens=4000, rate=4.0, seed=1)
    res = {r: simulate(wl, "fcfs", r, n_instances=4, cost=CostModel()) for r in ("preble", "rr")}
    hit = {r: cache_hit_rate(res[r]) for r in res}
    fr = {r: res[r].requests_frame() for r in res}
    assert all(len(f) == len(wl) for f in fr.values())
    assert fr["preble"].ttft_s.mean() < fr["rr"].ttft_s.mean()
    assert hit["preble"] > hit["rr"]


def test_bad_parameters():
    with pytest.raises(ValueError):
        Preble(window_s=0)
    with pytest.raises(ValueError):
        Preble(th_bal=1.0)
