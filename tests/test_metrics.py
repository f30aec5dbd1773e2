"""Metrics: hand-built service/backlog logs with known answers, the interval-boundary
convention, the fast gap against the naive reference (hypothesis), Jain's index, summaries."""

from __future__ import annotations

import json
import math
from array import array

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairsched.analysis import (
    backlog_intervals,
    backlogged_rates,
    cache_hit_rate,
    jain_index,
    latency_stats,
    max_service_gap,
    max_service_gap_naive,
    service_curves,
    summarize,
    throughput_tok_s,
)
from fairsched.sim import SimResult, simulate
from fairsched.workload import default_workload, make_workload


def make_result(clients, svc=(), bl=(), finish_at: float | None = None) -> SimResult:
    """A SimResult with one 1-token request per client and the given logs.

    ``svc``: (t, client_index, amount); ``bl``: (t, client_index, +1/-1).
    """
    w = make_workload([(0.0, c, [i], 10, 2) for i, c in enumerate(clients)])
    r = SimResult.empty(w, list(clients), len(w))
    for t, c, a in sorted(svc, key=lambda e: e[0]):
        r.service(float(t), int(c), float(a))
    for t, c, d in sorted(bl, key=lambda e: e[0]):
        r.backlog(float(t), int(c), int(d))
    if finish_at is not None:
        r.finish_t[:] = finish_at
    return r


def both(r):
    """Fast and naive reports, checked equal on the gap and per-pair values."""
    fast, naive = max_service_gap(r), max_service_gap_naive(r)
    assert fast.gap == pytest.approx(naive.gap, abs=1e-9)
    assert fast.per_pair.keys() == naive.per_pair.keys()
    for k, v in fast.per_pair.items():
        assert v == pytest.approx(naive.per_pair[k], abs=1e-9)
    # same witness too (same tie-breaks: first pair in client order, earliest window/time)
    assert (fast.pair, fast.interval, fast.window, fast.left_closed) == \
        (naive.pair, naive.interval, naive.window, naive.left_closed)
    return fast, naive


def witness_value(r, rep) -> float:
    """Service of pair[0] minus pair[1] over the reported interval, by direct summation."""
    names = list(r.clients)
    f, g = names.index(rep.pair[0]), names.index(rep.pair[1])
    t1, t2 = rep.interval
    tot = 0.0
    for t, c, a in zip(r.svc_t, r.svc_client, r.svc_amount, strict=True):
        inside = (t1 <= t if rep.left_closed else t1 < t) and t <= t2
        if inside and c == f:
            tot += a
        elif inside and c == g:
            tot -= a
    return tot


# ----------------------------------------------------------------------------- hand-built
def test_simple_gap_and_witness():
    # A and B backlogged on [0, 10]; A gets 5 at t=1 and t=2, B gets 4 at t=3.
    r = make_result(["A", "B"], svc=[(1, 0, 5), (2, 0, 5), (3, 1, 4)],
                    bl=[(0, 0, 1), (0, 1, 1), (10, 0, -1), (10, 1, -1)])
    fast, naive = both(r)
    assert fast.gap == 10
    assert fast.pair == ("A", "B") == naive.pair
    assert fast.interval == (0.0, 2.0) == naive.interval
    assert fast.left_closed and naive.left_closed
    assert fast.window == (0.0, 10.0)
    assert witness_value(r, fast) == fast.gap
    assert fast.per_pair == {("A", "B"): 10.0}


def test_pair_is_oriented_towards_the_client_that_got_more():
    r = make_result(["A", "B"], svc=[(1, 1, 7), (2, 0, 1)],
                    bl=[(0, 0, 1), (0, 1, 1), (5, 0, -1), (5, 1, -1)])
    fast, _ = both(r)
    assert fast.gap == 7 and fast.pair == ("B", "A")
    assert witness_value(r, fast) == 7


def test_boundary_admission_at_backlog_end_counts():
    """A's backlog ends at t=5 when its last request is admitted and charged 100 at t=5;
    B's backlog starts at t=5. The common window is [5, 5] and the charge at 5 is inside it
    (D(5^-) = 0 vs D(5) = 100). Events just outside the window do not count."""
    r = make_result(["A", "B"], svc=[(4, 0, 1000), (5, 0, 100), (5.5, 0, 999), (6, 1, 3)],
                    bl=[(0, 0, 1), (5, 0, -1), (5, 1, 1), (10, 1, -1)])
    assert backlog_intervals(r) == {"A": [(0.0, 5.0)], "B": [(5.0, 10.0)]}
    fast, naive = both(r)
    assert fast.gap == 100 == naive.gap
    assert fast.window == (5.0, 5.0)
    assert fast.interval == (5.0, 5.0) and fast.left_closed
    assert witness_value(r, fast) == 100


def test_boundary_events_at_window_end_and_start_are_included():
    # event exactly at the end of the common window
    r = make_result(["A", "B"], svc=[(10, 0, 50)], bl=[(0, 0, 1), (0, 1, 1), (10, 0, -1), (10, 1, -1)])
    assert both(r)[0].gap == 50
    # event exactly at the start of the window (B starts at 2): counted; one at 1.999 is not
    r = make_result(["A", "B"], svc=[(1.999, 0, 500), (2, 0, 30)],
                    bl=[(0, 0, 1), (2, 1, 1), (10, 0, -1), (10, 1, -1)])
    fast, _ = both(r)
    assert fast.gap == 30 and fast.interval == (2.0, 2.0) and fast.left_closed


def test_simultaneous_events_are_never_split():
    # A and B both get 30 at t=2: D never changes, whatever the log order at t=2
    r = make_result(["A", "B"], svc=[(2, 0, 30), (2, 1, 30)], bl=[(0, 0, 1), (0, 1, 1), (10, 0, -1), (10, 1, -1)])
    assert both(r)[0].gap == 0


def test_touching_intervals_merge_and_zero_length_intervals_count():
    # A backlogged [0, 3] and [3, 6] = [0, 6]: two gains of 10 add up to 20
    r = make_result(["A", "B"], svc=[(1, 0, 10), (5, 0, 10)],
                    bl=[(0, 0, 1), (0, 1, 1), (3, 0, -1), (3, 0, 1), (6, 0, -1), (6, 1, -1)])
    assert backlog_intervals(r)["A"] == [(0.0, 6.0)]
    assert both(r)[0].gap == 20
    # A backlogged for an instant at t=4 (arrived and admitted at once) while B waits
    r = make_result(["A", "B"], svc=[(4, 0, 70)], bl=[(0, 1, 1), (4, 0, 1), (4, 0, -1), (10, 1, -1)])
    assert backlog_intervals(r)["A"] == [(4.0, 4.0)]
    fast, _ = both(r)
    assert fast.gap == 70 and fast.window == (4.0, 4.0)


def test_no_common_backlog_and_open_backlog():
    r = make_result(["A", "B"], svc=[(1, 0, 10), (6, 1, 10)], bl=[(0, 0, 1), (2, 0, -1), (5, 1, 1), (7, 1, -1)])
    fast, _ = both(r)
    assert fast.gap == 0 and fast.pair is None and fast.per_pair == {}
    # a backlog never closed ends at the last logged time (here the event at 9)
    r = make_result(["A", "B"], svc=[(1, 0, 10), (9, 1, 4)], bl=[(0, 0, 1), (0, 1, 1), (3, 1, -1)])
    assert backlog_intervals(r)["A"] == [(0.0, 9.0)]
    assert both(r)[0].gap == 10


def test_three_clients_pick_the_worst_pair():
    r = make_result(["A", "B", "C"], svc=[(1, 0, 5), (2, 1, 50), (3, 2, 20)],
                    bl=[(0, c, 1) for c in range(3)] + [(10, c, -1) for c in range(3)])
    fast, _ = both(r)
    assert fast.gap == 50 and fast.pair == ("B", "A")
    assert fast.per_pair == {("A", "B"): 50.0, ("A", "C"): 20.0, ("B", "C"): 50.0}


# ----------------------------------------------------------------------------- property
@st.composite
def random_logs(draw):
    n = draw(st.integers(2, 4))
    times = st.integers(0, 20)
    svc = draw(st.lists(st.tuples(times, st.integers(0, n - 1), st.integers(1, 50)), max_size=40))
    bl = []
    for c in range(n):
        toggles = sorted(draw(st.lists(times, max_size=6)))
        bl += [(t, c, 1 if k % 2 == 0 else -1) for k, t in enumerate(toggles)]
    return make_result([f"c{i}" for i in range(n)], svc=svc, bl=bl)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_logs())
def test_fast_gap_equals_naive(r):
    fast, naive = both(r)
    if fast.pair is not None:
        assert witness_value(r, fast) == pytest.approx(fast.gap)
        assert witness_value(r, naive) == pytest.approx(naive.gap)
        lo, hi = fast.window
        assert lo <= fast.interval[0] <= fast.interval[1] <= hi


def test_fast_gap_equals_naive_on_a_simulation():
    w = default_workload(0).head(60)
    for policy in ("fcfs", "dlpm"):
        both(simulate(w, policy))


def test_gap_is_fast_on_a_large_log():
    """27 clients, 100k service events, every client backlogged most of the time."""
    rng = np.random.default_rng(0)
    n, m = 27, 100_000
    r = make_result([f"c{i}" for i in range(n)])
    t = np.sort(rng.uniform(0, 600, m)).round(3)
    r.svc_t = array("d", t)
    r.svc_client = array("l", rng.integers(0, n, m).tolist())
    r.svc_amount = array("d", rng.integers(1, 500, m).astype(float))
    bl = []
    for c in range(n):
        edges = np.sort(rng.uniform(0, 600, 40))
        bl += [(x, c, 1 if k % 2 == 0 else -1) for k, x in enumerate(edges)]
    bl.sort()
    r.bl_t = array("d", [b[0] for b in bl])
    r.bl_client = array("l", [b[1] for b in bl])
    r.bl_delta = array("l", [b[2] for b in bl])
    rep = max_service_gap(r)  # its speed is measured in bench/bench_bounds.py, not here
    assert rep.gap > 0 and len(rep.per_pair) == n * (n - 1) // 2


# ----------------------------------------------------------------------------- Jain
def test_jain_equal_and_unequal_rates():
    bl = [(0, 0, 1), (0, 1, 1), (10, 0, -1), (10, 1, -1)]
    r = make_result(["A", "B", "C"], svc=[(5, 0, 100), (5, 1, 100), (5, 2, 999)], bl=bl)
    assert backlogged_rates(r) == {"A": 10.0, "B": 10.0}  # C never backlogged: left out
    assert jain_index(r) == pytest.approx(1.0)
    r = make_result(["A", "B"], svc=[(5, 0, 300), (5, 1, 100)], bl=bl)
    assert jain_index(r) == pytest.approx(40**2 / (2 * (30**2 + 10**2)))  # 0.8
    r = make_result(["A", "B"], svc=[(5, 0, 300)], bl=bl)
    assert jain_index(r) == pytest.approx(0.5)  # one client gets everything: 1/n


def test_jain_leaves_out_briefly_backlogged_clients():
    # C is backlogged for 0.01 s and charged 50 at the end: rate 5000 vs 10 for A and B
    bl = [(0, 0, 1), (0, 1, 1), (10, 0, -1), (10, 1, -1), (3, 2, 1), (3.01, 2, -1)]
    r = make_result(["A", "B", "C"], svc=[(5, 0, 100), (5, 1, 100), (3.01, 2, 50)], bl=bl, finish_at=10.0)
    assert jain_index(r, min_backlog_frac=0) < 0.4
    assert jain_index(r) == pytest.approx(1.0)  # 0.01 s < 1% of the 10 s makespan
    assert jain_index(make_result(["A"])) is None


# ----------------------------------------------------------------------------- others
def test_latency_throughput_hit_rate_and_curves():
    w = default_workload(0).head(80)
    r = simulate(w, "lpm")
    lat = latency_stats(r)
    df = r.requests_frame()
    assert lat["ttft_mean_s"] == pytest.approx(df.ttft_s.mean())
    assert lat["e2e_p50_s"] == pytest.approx(df.e2e_s.median())
    assert lat["ttft_p50_s"] <= lat["ttft_p90_s"] <= lat["ttft_p99_s"]
    span = df.finish_t.max() - df.arrival.min()
    tp = throughput_tok_s(r)
    assert tp["throughput_tok_s"] == pytest.approx((df.input_len + df.output_len).sum() / span)
    assert tp["output_tok_s"] == pytest.approx(df.output_len.sum() / span)
    assert cache_hit_rate(r) == pytest.approx(df.cached_tokens.sum() / df.input_len.sum())
    curves = service_curves(r)
    assert set(curves.columns) == {"client", "t", "W"}
    final = curves.groupby("client")["W"].max()
    svc = r.service_frame().groupby("client")["amount"].sum()
    assert final.sum() == pytest.approx(svc.sum())
    small = service_curves(r, clients=[r.clients[0]], max_points=10)
    assert len(small) <= 10 and set(small.client) == {r.clients[0]}
    assert (np.diff(small.W.to_numpy()) >= 0).all()


def test_summarize_keys_and_json():
    r = simulate(default_workload(0).head(80), "vtc")
    s = summarize(r)
    for k in ("router", "policy", "n_requests", "n_finished", "ttft_mean_s", "ttft_p50_s", "ttft_p99_s",
              "tpot_p50_s", "throughput_tok_s", "cache_hit_rate", "max_service_gap", "jain_index",
              "ttft_p90_s", "e2e_mean_s", "e2e_p99_s", "makespan_s", "n_instances", "gap_pair",
              "gap_interval", "gap_window", "max_cost_U"):
        assert k in s, k
    assert s["policy"] == "vtc" and s["router"] == "none" and s["n_finished"] == s["n_requests"] == 80
    assert s["max_service_gap"] == max_service_gap(r).gap
    json.dumps(s, allow_nan=False)  # no NaN anywhere
    # an empty run: no NaN either
    empty = make_result(["A"])
    s = summarize(empty)
    assert s["ttft_mean_s"] is None and s["throughput_tok_s"] is None and s["max_service_gap"] == 0
    json.dumps(s, allow_nan=False)
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in s.values())


def test_events_after_a_backlog_ends_at_the_same_instant_are_not_in_the_window():
    """DLPM drains client a (its last admission ends a's backlog), refills and admits b,
    all at t = 1. Only a's charge happened while both were backlogged: gap 10, not 110
    (what a time-only convention would count; found by `fairsched reproduce` claim 6)."""
    from types import SimpleNamespace

    from fairsched.sim.result import SimResult
    from fairsched.workload.request import make_workload

    w = make_workload([(0.0, "a", (1,), 1, 1), (0.0, "b", (2,), 1, 1)])
    r = SimResult.empty(w, ["a", "b"], 2)
    r.backlog(0.0, 0, +1)
    r.backlog(0.0, 1, +1)
    r.service(1.0, 0, 10.0)  # a's last waiting request admitted ...
    r.backlog(1.0, 0, -1)  # ... which ends a's backlog
    r.service(1.0, 1, 100.0)  # then b is admitted after a refill
    r.backlog(1.0, 1, -1)
    r.finalize(SimpleNamespace(policy_name="dlpm", router_name="none", n_instances=1))
    for fn in (max_service_gap, max_service_gap_naive):
        rep = fn(r)
        assert rep.gap == 10.0 and rep.pair == ("a", "b")
        assert rep.window == (0.0, 1.0)
