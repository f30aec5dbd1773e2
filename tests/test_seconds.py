"""Fairness in seconds: the seconds service, the bound in measured seconds (z3, sympy), and
the engine validation (token vs seconds VTC/DLPM on a mixed, backlogged workload)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from fairsched.policies.seconds import SecondsService, make_service
from fairsched.policies.service import ServiceWeights
from fairsched.sim.cost import CostModel
from fairsched.theory import seconds as ts


def test_measured_bound_proved_and_tight_z3():
    r = ts.z3_check_measured_bound()
    assert r["proved"] and r["tight"]
    wit = r["witness"]
    # the witness attains the library's own evaluation of the bound
    b = ts.measured_gap_bound(wit["B_p"], wit["r_lo"], wit["r_hi"], wit["W^p_f"], wit["W^p_g"])
    assert abs(wit["W^m_f"] - wit["W^m_g"]) == pytest.approx(b)


def test_eps_form_and_scale():
    e = ts.measured_gap_bound_eps_expr()
    assert sp.simplify(e - ((1 + ts.eps) * ts.B_p + 2 * ts.eps * sp.Min(ts.Wp_f, ts.Wp_g))) == 0
    # a common factor only scales the bound; a spread makes it grow with the service
    assert ts.measured_gap_bound(2.0, 1.5, 1.5, 1e6, 1e6) == pytest.approx(3.0)
    assert ts.measured_gap_bound(2.0, 0.9, 1.1, 100.0, 50.0) == pytest.approx(2.2 + 0.2 * 50.0)
    with pytest.raises(ValueError):
        ts.measured_gap_bound(1.0, 1.2, 1.1, 1.0, 1.0)


def test_measured_bound_random_bands():
    """Random charges inside a band never break the bound (the library's evaluation)."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        lo = rng.uniform(0.2, 1.5)
        hi = lo * rng.uniform(1.0, 2.0)
        pf, pg = rng.uniform(0, 1, rng.integers(1, 20)), rng.uniform(0, 1, rng.integers(1, 20))
        mf, mg = pf * rng.uniform(lo, hi, pf.size), pg * rng.uniform(lo, hi, pg.size)
        bp = abs(pf.sum() - pg.sum())
        assert abs(mf.sum() - mg.sum()) <= ts.measured_gap_bound(bp, lo, hi, pf.sum(), pg.sum()) + 1e-12


def test_seconds_service_charges_the_cost_model():
    cm = CostModel()
    s = SecondsService(cm, batch_ref=32)
    assert s.prefill(100, 4000) == cm.prefill_time(100, 4000) and s.prefill(0, 50) == 0.0
    per = cm.decode_a / 32 + cm.decode_b
    assert s.decode(3, 9000) == pytest.approx(3 * per + cm.decode_c * 9000)
    np.testing.assert_allclose(s.decode(2, np.array([10, 20])), 2 * per + cm.decode_c * np.array([10, 20]))
    assert s.request_decode(100, 4) == pytest.approx(sum(s.decode(1, 100 + j) for j in range(1, 4)))
    assert s.first_token(3, 500) == 0.0 and not s.batch_aware
    aware = SecondsService(cm)
    assert aware.batch_aware and aware.decode(2, 10, batch=4) == pytest.approx(2 * (cm.decode_a / 4 + cm.decode_b)
                                                                               + cm.decode_c * 10)
    # the worst case (B = 1, C = context_cap) bounds every charge the backend can make
    eng = SecondsService(CostModel(decode_a=4e-3, decode_b=2e-4, decode_c=8e-7, decode_q=3e-11), context_cap=5000)
    assert eng.request_decode(100, 4) == pytest.approx(sum(eng.decode(1, 100 + j, batch=1, batch_context=5000)
                                                           for j in (1, 2, 3)))
    # the charges of a step sum to the predicted step time
    ks, ctxs = (2, 3), (700, 1300)
    step = sum(eng.decode(k, x, batch=5, batch_context=2000) for k, x in zip(ks, ctxs, strict=True))
    assert step == pytest.approx(eng.cost.decode_time(5, 2000))
    assert isinstance(make_service("tokens"), ServiceWeights)
    with pytest.raises(ValueError, match="service"):
        make_service("joules")
    with pytest.raises(ValueError):
        SecondsService(cm, 0)


def test_simulated_seconds_charges_match_the_service():
    """Simulator run with SecondsService: each client's logged service is exactly its
    requests' prefill predictions plus their decode charges (batch_ref fixed), and with the
    actual batch at most the worst case X_s uses."""
    from fairsched.engine.seconds import mixed_workload
    from fairsched.sim import simulate

    w = mixed_workload(0, per_client=3, doc_tokens=(800, 1200))
    cm = CostModel()
    for svc, exact in ((SecondsService(cm, 32), True), (SecondsService(cm), False)):
        r = simulate(w, "vtc", cost=cm, service=svc)
        tot = np.bincount(np.asarray(r.svc_client), weights=np.asarray(r.svc_amount), minlength=len(r.clients))
        exp = dict.fromkeys(r.clients, 0.0)
        for q, c in zip(w, r.cached_tokens, strict=True):
            exp[q.client] += svc.prefill(q.input_len - c, c) + svc.request_decode(q.input_len, q.output_len)
        for i, n in enumerate(r.clients):
            if exact:
                assert tot[i] == pytest.approx(exp[n], rel=1e-9)
            else:
                assert 0 < tot[i] <= exp[n] * (1 + 1e-9)
    with pytest.raises(ValueError, match="not both"):
        simulate(w, "vtc", service=svc, weights=ServiceWeights())


@pytest.fixture(scope="module")
def engine_runs():
    from fairsched.engine.model import build_model
    from fairsched.engine.seconds import mixed_workload, run_fairness_in_seconds

    w = mixed_workload(1, per_client=3, doc_tokens=(500, 800))
    return run_fairness_in_seconds(w, quantum_tokens=256.0, model=build_model("cpu-small", "cpu"))


def test_engine_seconds_gap_within_measured_bound(engine_runs):
    """Token vs seconds VTC/DLPM on the engine (measured CPU time): for the seconds policies
    the predicted-seconds gap is within 2X_s / 2(Q^u + X_s) and every pair's measured-seconds
    gap within r_hi B_p + (r_hi - r_lo) min(W^p_f, W^p_g), the band read off the run."""
    tab = engine_runs["table"].set_index("run")
    assert set(tab.index) == {"vtc-tokens", "vtc-seconds", "dlpm-tokens", "dlpm-seconds"}
    for run in ("vtc-seconds", "dlpm-seconds"):
        ch = engine_runs["checks"][run]
        assert ch["holds_pred"], (run, ch["gap_pred"], ch["bound_pred"])
        assert ch["holds"], ch["pairs"][~ch["pairs"]["holds"]]
        assert len(ch["pairs"]) == 10 and 0 < ch["band"]["r_lo"] <= ch["band"]["r_hi"]
        res = engine_runs["results"][run]
        # the log is in predicted seconds and the measured seconds are the engine's
        assert sum(res.meta["svc_seconds"]) == pytest.approx(res.meta["compute_s"], rel=1e-6)
    # the share deviation in service units is at most the gap over the mean service in the window
    for run, row in tab.iterrows():
        assert row["share_max_dev_units"] <= row["gap_units"] / row["window_mean_client_units"] + 1e-9, run
    # per-client measured prefill and decode seconds are recorded for every run
    cl = engine_runs["clients"]
    assert (cl.groupby("run")["client"].count() == 5).all() and (cl["prefill_s"] > 0).all()
    assert (cl["decode_s"] >= 0).all()


def test_cli_analyze_service_seconds(tmp_path):
    """`analyze --service seconds`: the runs' service (and the gaps) are predicted seconds,
    the default quantum is the seconds analogue; a bad name is one clear error."""
    import json

    from typer.testing import CliRunner

    from fairsched.cli import app
    from fairsched.policies.seconds import default_quantum_seconds
    from fairsched.workload import default_workload, save_jsonl

    trace = tmp_path / "w.jsonl"
    save_jsonl(default_workload(0).head(60), trace)
    runner = CliRunner()
    r = runner.invoke(app, ["analyze", "--trace", str(trace), "--policy", "vtc", "--policy", "dlpm",
                            "--service", "seconds", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert doc["config"]["service"] == "seconds"
    w = default_workload(0).head(60)
    assert doc["config"]["quantum"] == pytest.approx(default_quantum_seconds(w, SecondsService(CostModel())))
    bad = runner.invoke(app, ["analyze", "--trace", str(trace), "--service", "joules", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "--service" in bad.output and "Traceback" not in bad.output


def _brute_x_seconds(res, svc) -> float:
    """X_s straight from its definition (proofs/seconds_bounds.md, Theorem 1, worst-case
    decode), one instance: max over admissions of the prefill charge plus the worst-case
    decode of the client's requests running right after it."""
    best = 0.0
    reqs = list(res.workload)
    for i, r in enumerate(reqs):
        t = res.admit_t[i]
        if not np.isfinite(t):
            continue
        run = sum(svc.request_decode(q.input_len, q.output_len) for k, q in enumerate(reqs)
                  if q.client == r.client and res.admit_t[k] <= t < res.finish_t[k])
        best = max(best, svc.prefill(r.input_len - res.cached_tokens[i], res.cached_tokens[i]) + run)
    return best


def test_check_seconds_verdicts_match_the_simulator():
    """`check --service seconds` verdicts (analysis.seconds_check): the gap each reports is the
    one the quadratic reference measures on the simulator's log of predicted seconds, the bound
    is 2X_s / 2(Q^u + X_s) with X_s from its definition, 'holds' iff gap <= bound; and a run
    that breaks the assumption (FCFS checked as VTC, one request at a time) is VIOLATED."""
    from fairsched.analysis.gap_reference import max_service_gap_naive
    from fairsched.analysis.seconds_check import (
        check_seconds,
        measured_x_seconds,
        prefill_cap_seconds,
    )
    from fairsched.engine.seconds import mixed_workload
    from fairsched.policies.seconds import service_for_run
    from fairsched.sim import InstanceConfig, simulate

    w = mixed_workload(0, per_client=4, doc_tokens=(800, 1200))
    cm = CostModel()
    inst = InstanceConfig(max_batch_size=8)
    svc, q = service_for_run("seconds", w, cm, inst.kv_capacity_tokens)
    assert svc.context_cap == inst.kv_capacity_tokens and q > 0
    for pol in ("vtc", "dlpm"):
        res = simulate(w, pol, instance=inst, cost=cm, service=svc, policy_params={"quantum": q} if pol == "dlpm" else None)
        vs = check_seconds(res, pol, svc, q if pol == "dlpm" else None)
        ref = max_service_gap_naive(res).gap
        x = _brute_x_seconds(res, svc)
        assert measured_x_seconds(res, svc)[0] == pytest.approx(x)
        assert len(vs) == 2 and ref > 0
        for v in vs:
            assert v.measured == pytest.approx(ref) and v.params["unit"] == "s"
            assert (v.status == "holds") == (v.measured <= v.bound)
        bm = next(v for v in vs if "measured" in v.check)
        assert bm.bound == pytest.approx(2 * x if pol == "vtc" else 2 * (q + x))
        bk = next(v for v in vs if "k=" in v.check)
        assert bk.bound >= bm.bound
    # t_pre^max bounds every prefill of a prompt no longer than L
    for n, h in ((1, 0), (100, 900), (1000, 0), (10, 990)):
        assert cm.prefill_time(n, h) <= prefill_cap_seconds(cm, 1000) + 1e-15
    from pathlib import Path

    eng = CostModel.load(Path(__file__).resolve().parents[1] / "data" / "engine_cpu-small_cost.json")
    assert eng.prefill_p > 0 and eng.prefill_s > 0  # the CPU kernel's counts are in the bound too
    for L in (100, 700, 1000):
        cap = prefill_cap_seconds(eng, L)
        assert max(eng.prefill_time(n, L - n) for n in range(1, L + 1)) <= cap + 1e-15
    # the verdict can fail: FCFS, one request at a time, a flood of doc0 first
    one = InstanceConfig(max_batch_size=1)
    from fairsched.workload.request import make_workload

    rows = [(0.0 if c == "a" else 0.001, c, tuple(range(100 * k, 100 * k + 16)), 256, 50)
            for k, c in enumerate(["a"] * 20 + ["b"] * 5)]
    flood = make_workload(rows, block_size=16, name="flood")
    res = simulate(flood, "fcfs", instance=one, cost=cm, service=svc)
    v = check_seconds(res, "vtc", svc)
    bm = next(x for x in v if "measured" in x.check)
    assert bm.measured == pytest.approx(max_service_gap_naive(res).gap)
    assert bm.status == "VIOLATED" and bm.measured > bm.bound


def test_cli_check_service_seconds(tmp_path):
    """`check --service seconds`: verdicts in predicted seconds, written like the token ones,
    equal to check_seconds on the same simulated run; the quantum default is the seconds one."""
    import json

    from typer.testing import CliRunner

    from fairsched.analysis.seconds_check import check_seconds
    from fairsched.analysis.service_params import simulate_for_check
    from fairsched.cli import app
    from fairsched.policies import make_policy_factory
    from fairsched.policies.seconds import service_for_run
    from fairsched.sim import InstanceConfig
    from fairsched.workload import default_workload, save_jsonl

    w = default_workload(0).head(60)
    trace = tmp_path / "w.jsonl"
    save_jsonl(w, trace)
    runner = CliRunner()
    r = runner.invoke(app, ["check", "--trace", str(trace), "--policy", "dlpm", "--service", "seconds",
                            "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "o" / "check.json").read_text())
    assert doc["config"]["service"] == "seconds"
    cm = CostModel(**doc["config"]["cost_model"])
    inst = InstanceConfig(**doc["config"]["instance"])
    svc, q = service_for_run("seconds", w, cm, inst.kv_capacity_tokens)
    assert doc["config"]["quantum"] == pytest.approx(q)
    res = simulate_for_check(w, make_policy_factory("dlpm", ServiceWeights(), quantum=q), None, 1, inst, cm, svc)
    want = check_seconds(res, "dlpm", svc, q, "dlpm")
    got = doc["verdicts"]
    assert [v["check"] for v in got] == [v.check for v in want]
    for g, v in zip(got, want, strict=True):
        assert g["bound"] == pytest.approx(v.bound) and g["measured"] == pytest.approx(v.measured)
        assert g["status"] == v.status
    assert (tmp_path / "o" / "check.csv").exists() and "predicted seconds" in (tmp_path / "o" / "check.html").read_text()
    bad = runner.invoke(app, ["check", "--trace", str(trace), "--service", "joules", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "--service" in bad.output and "Traceback" not in bad.output


def test_seconds_lmetric_scale_cancels_shape_does_not():
    """proofs/seconds_lmetric.md Statements 1-2 on the library's expressions: P^s is homogeneous
    in the coefficients (sympy), theta . phi is the library's t_pre, and non-proportional models
    (tokens, the A100 default, the engine calibration) are separated by a state whose scores the
    library's CostModel.prefill_time reproduces; a scaled model is not."""
    from pathlib import Path

    from fairsched.theory import seconds_lmetric as sl

    assert sl.scale_invariance_check() and sl.prefill_features_expr_check()

    def theta(c):
        return (c.prefill_a, c.prefill_b, c.prefill_c, c.prefill_e, c.prefill_g, c.prefill_w, c.prefill_p, c.prefill_s)

    a100 = CostModel()
    eng = CostModel.load(Path(__file__).resolve().parents[1] / "data" / "engine_cpu-small_cost.json")
    tokens = (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    for t1, t2, m2 in ((tokens, theta(a100), a100), (theta(a100), theta(eng), eng)):
        st = sl.separating_state(t1, t2)
        assert st is not None
        (k, n1, h1), (n2, h2) = st["queue_1"], st["queue_2"]
        assert st["P1"][1] == pytest.approx(k * m2.prefill_time(n1, h1))
        assert st["P2"][1] == pytest.approx(m2.prefill_time(n2, h2))
        assert (st["P1"][0] - st["P2"][0]) * (st["P1"][1] - st["P2"][1]) < 0
    assert sl.separating_state(theta(a100), tuple(3 * x for x in theta(a100))) is None


def test_seconds_lmetric_approximation_z3():
    """Statement 3: the chosen instance's measured score is within r_hi / r_lo of any other's
    (z3 proves it and attains it); random bands never break it."""
    from fairsched.theory import seconds_lmetric as sl

    r = sl.z3_check_approximation()
    assert r["proved"] and r["tight"]
    w = r["witness"]
    assert w["P^m_i"] * (w["B_i"] + 1) == pytest.approx(w["r_hi"] / w["r_lo"] * w["P^m_j"] * (w["B_j"] + 1))
    rng = np.random.default_rng(1)
    for _ in range(300):
        lo = rng.uniform(0.3, 1.2)
        hi = lo * rng.uniform(1.0, 3.0)
        ps = rng.uniform(0.0, 1.0, 4)
        b = rng.integers(0, 8, 4)
        pm = ps * rng.uniform(lo, hi, 4)
        i = int(np.argmin(ps * (b + 1)))
        assert pm[i] * (b[i] + 1) <= hi / lo * (pm * (b + 1)).min() + 1e-12


def test_all_backlogged_window_is_the_longest_interval():
    """A blip at the burst's start (one client's first request admitted at once) must not be
    the window: the longest all-backlogged interval is (fails with the first interval)."""
    from types import SimpleNamespace

    from fairsched.engine.seconds import all_backlogged_window

    # two clients: both backlogged at 0.0-0.005 and 0.01-3.0 s, then one, then none
    r = SimpleNamespace(clients=["a", "b"], bl_t=[0.0, 0.0, 0.005, 0.01, 3.0, 4.0],
                        bl_delta=[1, 1, -1, 1, -1, -1])
    assert all_backlogged_window(r) == (0.01, 3.0)
    assert all_backlogged_window(SimpleNamespace(clients=["a", "b"], bl_t=[0.0, 1.0], bl_delta=[1, -1])) is None
