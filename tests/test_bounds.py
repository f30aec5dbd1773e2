"""The streaming bound checker (fairsched.analysis.bounds) and `fairsched check`.

- the one fast service gap (analysis.gap, streaming) == the naive reference on random logs
  (hypothesis) and on simulator runs (same gap, pair, window, interval, per-pair gaps);
- the proved bounds (VTC 2X, DLPM 2(Q^u + X), per instance) hold on simulated runs of small
  random workloads (hypothesis): the bound test that can fail, X and k taken from the run;
- the published 2U is exceeded, and 2X nearly attained, on the VTC counterexample run
  through the project simulator;
- per-instance bookkeeping (instrumented service log, measured X, k) is consistent;
- degenerate runs and bad input give a verdict or one error line, never a traceback.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fairsched.analysis.bounds import (
    check_run,
    concurrency_k,
    max_gap_from_logs,
    max_service_gap,
    measured_x,
    naive_max_gap,
    simulate_for_check,
    synthetic_log,
)
from fairsched.analysis.gap_reference import max_service_gap_naive
from fairsched.policies import make_policy_factory
from fairsched.sim import InstanceConfig, simulate
from fairsched.theory import fairness as F
from fairsched.workload import default_workload, make_workload, save_jsonl

SET = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


# ---------------------------------------------------------------- random logs
@st.composite
def logs(draw):
    n = draw(st.integers(1, 5))
    n_ev = draw(st.integers(0, 40))
    times = sorted(draw(st.lists(st.integers(0, 25), min_size=n_ev, max_size=n_ev)))
    ev = [(float(t), draw(st.integers(0, n - 1)), float(draw(st.integers(0, 9)))) for t in times]
    bl = []
    for c in range(n):
        pts = sorted(draw(st.lists(st.integers(0, 25), max_size=6)))
        lvl = 0
        for t in pts:  # alternate +1 / -1 (touching and zero-length intervals happen)
            d = 1 if lvl == 0 else -1
            lvl += d
            bl.append((float(t), c, d))
    bl.sort(key=lambda b: (b[0], -b[2]))
    return n, ev, bl


def _cols(ev, bl):
    st_ = [np.array([e[i] for e in ev]) for i in range(3)]
    bl_ = [np.array([b[i] for b in bl]) for i in range(3)]
    return (*st_, *bl_)


@SET
@given(logs())
def test_stream_equals_naive_and_metrics(log):
    n, ev, bl = log
    cols = _cols(ev, bl)
    names = [f"c{i}" for i in range(n)]
    s = max_gap_from_logs(*cols, names=names, per_pair=True)
    v = naive_max_gap(*cols, names=names)
    fake = SimpleNamespace(svc_t=cols[0], svc_client=cols[1].astype(np.int64), svc_amount=cols[2], bl_t=cols[3],
                           bl_client=cols[4].astype(np.int64), bl_delta=cols[5].astype(np.int64), clients=names)
    m = max_service_gap(fake)
    assert s.gap == pytest.approx(v.gap) == pytest.approx(m.gap)
    assert s.per_pair == pytest.approx(v.per_pair)
    assert s.per_pair == pytest.approx(m.per_pair)
    assert s.n_windows == v.n_windows
    # same witness as the reference (same tie-breaking: smaller pair, then earlier window)
    assert (s.pair, s.window, s.interval, s.left_closed) == (v.pair, v.window, v.interval, v.left_closed)
    assert (m.pair, m.window, m.interval, m.left_closed) == (v.pair, v.window, v.interval, v.left_closed)


@st.composite
def many_client_logs(draw):
    """Up to 12 clients, several backlog intervals each, simultaneous events: the pruned
    pass (leaders by decreasing service, per_pair=False) has something to skip."""
    n = draw(st.integers(2, 12))
    n_ev = draw(st.integers(0, 60))
    times = sorted(draw(st.lists(st.integers(0, 40), min_size=n_ev, max_size=n_ev)))
    ev = [(float(t), draw(st.integers(0, n - 1)), float(draw(st.sampled_from([0, 1, 2, 2, 5, 9, 30]))))
          for t in times]
    bl = []
    for c in range(n):
        pts = sorted(draw(st.lists(st.integers(0, 40), max_size=8)))
        for k, t in enumerate(pts):
            bl.append((float(t), c, 1 if k % 2 == 0 else -1))
    bl.sort(key=lambda b: (b[0], -b[2]))
    return n, ev, bl


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(many_client_logs(), st.sampled_from([1, 8, 2_000_000]))
def test_pruned_gap_equals_naive(log, cells):
    """The branch-and-bound pass (proofs/gap_algorithm.md) finds the reference's gap, pair,
    window, interval and number of windows, whatever the batch size."""
    n, ev, bl = log
    cols = _cols(ev, bl)
    s = max_gap_from_logs(*cols, names=[f"c{i}" for i in range(n)], chunk_cells=cells)
    v = naive_max_gap(*cols, names=[f"c{i}" for i in range(n)])
    assert (s.gap, s.pair, s.window, s.interval, s.left_closed, s.n_windows) == \
        (v.gap, v.pair, v.window, v.interval, v.left_closed, v.n_windows)


def test_gap_rejects_negative_service():
    with pytest.raises(ValueError, match="amounts must be >= 0"):
        max_gap_from_logs([0.0], [0], [-1.0], [0.0, 0.0], [0, 1], [1, 1])


def test_gap_with_many_clients_backlogged_at_once_needs_no_pair_matrix():
    """20,000 clients backlogged together (4 * 10^8 cells for a pair matrix): the gap is the
    largest service of one client in the common window (every other client got none)."""
    n = 20_000
    bt = np.r_[np.zeros(n), np.full(n, 10.0)]
    bc = np.r_[np.arange(n), np.arange(n)]
    bd = np.r_[np.ones(n, dtype=np.int64), -np.ones(n, dtype=np.int64)]
    svc_c = np.array([7, 123, 19_999])
    g = max_gap_from_logs([1.0, 2.0, 3.0], svc_c, [5.0, 40.0, 12.0], bt, bc, bd)
    assert g.gap == 40.0 and g.pair == ("123", "0") and g.window == (0.0, 10.0)
    assert g.n_windows == n * (n - 1) // 2


def test_stream_equals_naive_on_synthetic_log():
    cols = synthetic_log(4000, 6, seed=3)
    s, v = max_gap_from_logs(*cols), naive_max_gap(*cols)
    assert s.gap == v.gap and s.pair == v.pair and s.window == v.window and s.interval == v.interval
    assert s.n_windows == v.n_windows


def test_stream_memory_knob_does_not_change_the_answer():
    cols = synthetic_log(20000, 12, seed=1)
    assert max_gap_from_logs(*cols).gap == max_gap_from_logs(*cols, chunk_cells=50).gap


@pytest.mark.parametrize("policy", ["fcfs", "lpm", "vtc", "dlpm"])
def test_stream_equals_naive_on_simulator_runs(policy):
    res = simulate(default_workload(0).head(120), policy)
    s, m = max_service_gap(res, per_pair=True), max_service_gap_naive(res)
    assert (s.gap, s.pair, s.window, s.interval, s.left_closed) == (m.gap, m.pair, m.window, m.interval,
                                                                     m.left_closed)
    assert s.per_pair == pytest.approx(m.per_pair)


def test_empty_and_single_client_logs():
    z = np.zeros(0)
    assert max_gap_from_logs(z, z, z, z, z, z).gap == 0.0
    g = max_gap_from_logs([0.0, 1.0], [0, 0], [5.0, 5.0], [0.0, 2.0], [0, 0], [1, -1])
    assert g.gap == 0.0 and g.pair is None and g.n_windows == 0


# ---------------------------------------------------------------- the bound test that can fail
req_st = st.tuples(st.integers(0, 30), st.sampled_from("abc"), st.integers(1, 80), st.integers(1, 12),
                   st.integers(0, 2))


def _small_workload(reqs, bs=4):
    rows, unit = [], 1000
    for t, c, L, M, shared in reqs:
        units = []
        for k in range(-(-L // bs)):
            if shared and k < 3:  # requests with the same `shared` tag share 3 prompt units
                units.append(100 * shared + k)
            else:
                units.append(unit)
                unit += 1
        rows.append((t * 0.05, c, units, L, M))
    return make_workload(rows, block_size=bs)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(req_st, min_size=2, max_size=30), st.integers(1, 4), st.sampled_from(["vtc", "dlpm"]),
       st.sampled_from([0.5, 16.0, 200.0]), st.sampled_from([16, 64, 4096]), st.integers(1, 2))
def test_proved_bounds_hold_on_simulated_runs(reqs, max_batch, policy, quantum, budget, n_inst):
    """Simulate VTC / DLPM on a random small workload; the measured worst gap (per instance)
    must stay within 2X / 2(Q^u + X), X measured in the run and X <= w_p L_in + k w_q M with
    k from the run. A failure here means the simulator's policy breaks the proof's model."""
    wl = _small_workload(reqs)
    pf = make_policy_factory(policy, **({"quantum": quantum} if policy == "dlpm" else {}))
    res = simulate_for_check(wl, pf, "least-load" if n_inst > 1 else None, n_inst,
                             InstanceConfig(max_batch_size=max_batch, token_budget=budget, kv_capacity_tokens=4000))
    verdicts = check_run(res, policy, {"quantum": quantum})
    if len(wl.clients) < 2:
        assert verdicts[0].status == "not applicable"
        return
    proved = [v for v in verdicts if v.kind == "proved"]
    assert proved and all(v.status.startswith("holds") for v in proved), proved
    # X measured never exceeds its k-bound
    L, M = max(r.input_len for r in wl), max(r.output_len for r in wl)
    ks = concurrency_k(res)
    for j, x in measured_x(res).items():
        assert x <= L + 2 * M * max(ks[j], 1) + 1e-9


def test_longest_output_counterexample_on_the_simulator_attains_2X_within_published_2U():
    """The KV memory holds one request (M = L + O = 150 tokens): the gap reaches 2X = 400, twice
    the longest-output variant's 2 max(w_p L, w_q O) = 200, but within VTC's 2U = 2 w_q M = 600,
    which the checker reports as proved (reserve admission, w_p <= w_q)."""
    rows, unit = [], 1
    for step, c, L, Ot, _ in F.vtc_longest_output_counterexample_requests():
        rows.append((step * 1e-3, c, list(range(unit, unit + L)), L, Ot))
        unit += L
    res = simulate_for_check(make_workload(rows), "vtc", instance=InstanceConfig(kv_capacity_tokens=150))
    v = {x.check: x for x in check_run(res, "vtc")}
    pub = v["VTC published 2U"]
    assert pub.bound == 600 and pub.status == "holds" and pub.kind == "proved" and pub.measured > 390
    assert pub.measured > 2 * make_workload(rows).max_request_cost(1, 2)
    for name in ("VTC proved 2X (k=1)", "VTC proved 2X (X measured)"):
        assert v[name].bound == 400 and v[name].status == "holds" and v[name].ratio > 0.97
    assert set(pub.pair) == {"f", "g"} and pub.pair[0] == "f"


# ---------------------------------------------------------------- per-instance bookkeeping
def test_instrumented_service_log_is_per_instance_consistent():
    wl = default_workload(1).head(250)
    res = simulate_for_check(wl, "dlpm", "d2lpm", 3)
    assert len(res.svc_instance) == len(res.svc_t)
    assert np.all(np.diff(np.asarray(res.svc_t)) >= 0)
    inst, cl = np.asarray(res.svc_instance), np.asarray(res.svc_client)
    idx = {c: i for i, c in enumerate(res.clients)}
    for j in range(3):
        got = np.bincount(cl[inst == j], weights=np.asarray(res.svc_amount)[inst == j], minlength=len(res.clients))
        want = np.zeros(len(res.clients))
        for r in wl:
            if res.instance[r.rid] == j:
                want[idx[r.client]] += (r.input_len - res.cached_tokens[r.rid]) + 2 * r.output_len
        assert np.allclose(got, want)
    # the same run without instrumentation: identical service
    plain = simulate(wl, "dlpm", "d2lpm", 3)
    assert np.array_equal(np.asarray(plain.svc_amount), np.asarray(res.svc_amount))


def test_cluster_verdicts_cover_per_instance_and_global_scopes():
    res = simulate_for_check(default_workload(0).head(300), "vtc", "least-load", 2)
    v = check_run(res, "vtc")
    scopes = {x.scope for x in v}
    assert {"per instance, worst of 2", "backlogged at every instance", "backlogged anywhere"} <= scopes
    assert all(x.status.startswith("holds") or x.status in ("no bound", "published claim violated") for x in v)
    d = [x.to_dict() for x in v]
    json.dumps(d, allow_nan=False)


# ---------------------------------------------------------------- degenerate cases
def test_one_client_not_applicable_and_unbounded_policies():
    wl = make_workload([(0.0, "solo", [1, 2], 20, 5), (0.1, "solo", [3, 4], 20, 5)])
    res = simulate_for_check(wl, "vtc")
    (v,) = check_run(res, "vtc")
    assert v.status == "not applicable" and "client" in v.note
    res = simulate_for_check(default_workload(0).head(120), "fcfs")
    (v,) = check_run(res, "fcfs")
    assert v.status == "no bound" and v.bound is None and v.measured > 0


def test_never_backlogged_together_is_vacuous():
    wl = make_workload([(0.0, "a", [1], 8, 2), (50.0, "b", [2], 8, 2)])
    res = simulate_for_check(wl, "vtc")
    assert all(v.status == "holds (vacuous)" for v in check_run(res, "vtc") if v.kind != "none")


# ---------------------------------------------------------------- CLI
runner = CliRunner()


def _run(*args):
    from fairsched.cli import app

    return runner.invoke(app, [str(a) for a in args])


def test_check_cli_writes_json_and_html(tmp_path):
    out = tmp_path / "o"
    res = _run("check", "--limit", 150, "--policy", "vtc", "--policy", "fcfs", "--out", out)
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "check.json").read_text())
    assert [r["label"] for r in doc["runs"]] == ["vtc", "fcfs"]
    names = [v["check"] for v in doc["verdicts"]]
    assert "VTC proved 2X (X measured)" in names and "VTC published 2U" in names
    assert {v["status"] for v in doc["verdicts"]} <= {"holds", "published claim violated", "no bound"}
    html = (out / "check.html").read_text()
    assert html.count("plotly.js v") == 1 and "Verdicts" in html
    assert "holds" in res.output


def test_check_cli_cluster(tmp_path):
    trace = tmp_path / "t.jsonl"
    save_jsonl(default_workload(2).head(150), trace)
    res = _run("check", "--trace", trace, "--instances", 2, "--policy", "dlpm", "--router", "least-load",
               "--router", "d2lpm", "--quantum", 512, "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "o" / "check.json").read_text())
    assert [r["label"] for r in doc["runs"]] == ["least-load/dlpm", "d2lpm/dlpm"]
    assert any(v["check"].startswith("D2LPM candidate") for v in doc["verdicts"])


def test_check_cli_bad_input(tmp_path):
    trace = tmp_path / "t.jsonl"
    save_jsonl(default_workload(0).head(20), trace)
    r = _run("check", "--trace", trace, "--format", "nope", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "unknown --format" in r.output and "Traceback" not in r.output
    zero = tmp_path / "zero.jsonl"
    zero.write_text('{"timestamp": 0, "client": "a", "input_length": 0, "output_length": 5}\n')
    r = _run("check", "--trace", zero, "--out", tmp_path / "o")
    assert r.exit_code == 2 and "input_length" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o" / "check.json").exists()
    r = _run("check", "--instances", 0, "--out", tmp_path / "o")
    assert r.exit_code == 2


def test_check_cli_one_client_trace(tmp_path):
    one = tmp_path / "one.jsonl"
    one.write_text("".join(f'{{"timestamp": {i}, "client": "solo", "input_length": 30, "output_length": 5}}\n'
                           for i in range(5)))
    r = _run("check", "--trace", one, "--out", tmp_path / "o")
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "o" / "check.json").read_text())
    assert doc["verdicts"] and all(v["status"] == "not applicable" for v in doc["verdicts"])
    assert "not applicable" in r.output
