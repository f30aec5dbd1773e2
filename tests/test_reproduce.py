"""`fairsched reproduce`: the claim registry, the verdict rule, the RPM limiter, VTC's window
metric, two quick claims end to end, and the command line (bad input exits 2)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fairsched.reproduce import (
    NOT_REPRODUCED,
    REGISTRY,
    REPRODUCED,
    SAME_DIRECTION,
    VERDICTS,
    Check,
    Claim,
    ClaimResult,
    combine,
    evaluate_claim,
    get_claims,
    judge,
    missing_data,
    register,
    run_claim,
    write_outputs,
)
from fairsched.reproduce.rpm import max_per_window, rpm_limit
from fairsched.reproduce.vtc_metric import window_service_diff
from fairsched.workload import make_workload

runner = CliRunner()
ENTRY_KEYS = {"claim", "paper", "ours", "verdict", "setup", "notes", "checks"}


# ----------------------------------------------------------------------------- registry
def test_registry_has_the_six_claims_well_formed():
    claims = list(REGISTRY.values())
    assert [c.number for c in claims] == [1, 2, 3, 4, 5, 6]
    assert len({c.id for c in claims}) == 6
    for c in claims:
        assert c.title and c.source and c.paper_figure and c.metric and c.setup and callable(c.run)
        assert c.checks and len({k.key for k in c.checks}) == len(c.checks)
        for k in c.checks:
            assert k.paper is not None or k.direction in (1, -1)
            assert k.rule_text() and k.paper_text()
            assert k.verdict(None) == NOT_REPRODUCED
    # a check's published number is the one its claim quotes (one place each, in claims.py)
    for c in claims:
        for k in c.checks:
            if k.paper is not None and not k.key.endswith("_over_vtc"):
                assert f"{abs(k.paper):g}" in c.paper_figure, (c.id, k.key)


def test_get_claims_by_id_and_number_and_unknown():
    assert [c.id for c in get_claims(["4", "dlpm-fairness", "4"])] == ["vtc-trace", "dlpm-fairness"]
    assert len(get_claims(None)) == len(get_claims([])) == len(REGISTRY)
    with pytest.raises(KeyError, match="unknown claim 'nope'.*1=dlpm-throughput"):
        get_claims(["nope"])


def test_register_rejects_duplicates_and_bad_claims():
    c = REGISTRY["dlpm-fairness"]
    with pytest.raises(ValueError, match="already registered"):
        register(c)
    with pytest.raises(ValueError, match="lower-case"):
        Claim(id="Bad Id", number=99, title="t", source="s", paper_figure="p", metric="m", setup="s",
              checks=c.checks, run=c.run)
    with pytest.raises(ValueError, match="at least one check"):
        Claim(id="empty", number=99, title="t", source="s", paper_figure="p", metric="m", setup="s",
              checks=(), run=c.run)


def test_a_user_claim_runs_through_the_same_machinery(monkeypatch, tmp_path):
    reg = dict(REGISTRY)
    monkeypatch.setattr("fairsched.reproduce.claims.REGISTRY", reg)

    def run(quick, cost, out):
        return ClaimResult(values={"speedup": 1.9 if quick else 2.0}, notes="toy")

    mine = register(Claim(id="my-claim", number=7, title="toy", source="nowhere", paper_figure="2.0x",
                          metric="m", setup="s", run=run,
                          checks=(Check("speedup", "speedup", paper=2.0, neutral=1.0, fmt="{:.1f}x"),)))
    assert reg["my-claim"] is mine
    o = run_claim(mine, quick=True)
    assert o.verdict == REPRODUCED and o.ours_text == "speedup 1.9x"
    bad = Claim(id="bad", number=8, title="t", source="s", paper_figure="p", metric="m", setup="s",
                run=lambda q, c, o: ClaimResult(values={}), checks=mine.checks)
    with pytest.raises(ValueError, match="no value for"):
        run_claim(bad)


# ----------------------------------------------------------------------------- verdicts
@pytest.mark.parametrize("paper, ours, neutral, expected", [
    (2.87, 2.87, 1.0, REPRODUCED),
    (2.87, 2.87 * 1.249, 1.0, REPRODUCED),       # inside the edge of the 25% band
    (2.87, 2.87 * 0.74, 1.0, SAME_DIRECTION),    # just outside it, still > 1
    (2.87, 5.0, 1.0, SAME_DIRECTION),            # much larger effect
    (2.87, 1.04, 1.0, NOT_REPRODUCED),           # inside the noise band around 1
    (2.87, 0.8, 1.0, NOT_REPRODUCED),            # opposite direction
    (-92.0, -80.0, 0.0, REPRODUCED),
    (-92.0, -34.0, 0.0, SAME_DIRECTION),
    (-21.0, +5.0, 0.0, NOT_REPRODUCED),
    (0.39, 0.41, 1.0, REPRODUCED),               # a reduction expressed as a ratio
    (0.39, 1.2, 1.0, NOT_REPRODUCED),
    (368.4, 355.5, None, REPRODUCED),            # absolute number, no direction
    (368.4, 500.0, None, NOT_REPRODUCED),
    (2.87, None, 1.0, NOT_REPRODUCED),
    (2.87, float("nan"), 1.0, NOT_REPRODUCED),
])
def test_judge(paper, ours, neutral, expected):
    assert judge(paper, ours, neutral=neutral) == expected


def test_judge_direction_only_and_noise():
    assert judge(None, 3.0, neutral=1.0, direction=+1) == REPRODUCED
    assert judge(None, 1.01, neutral=1.0, direction=+1) == NOT_REPRODUCED  # within noise 0.05
    assert judge(None, 1.01, neutral=1.0, direction=+1, noise=0.0) == REPRODUCED
    assert judge(None, 0.99, neutral=1.0, direction=-1, noise=0.0) == REPRODUCED  # a bound that holds
    assert judge(None, 1.03, neutral=1.0, direction=-1, noise=0.0) == NOT_REPRODUCED  # a bound that fails
    assert judge(2.0, 1.6, neutral=1.0, rel_tol=0.1) == SAME_DIRECTION
    with pytest.raises(ValueError):
        judge(None, 1.0)  # no paper value and no direction
    with pytest.raises(ValueError):
        judge(2.0, 1.0, neutral=1.0, direction=-1)  # contradicts the paper
    with pytest.raises(ValueError):
        judge(1.0, 1.0, neutral=1.0)  # the paper reports no effect
    with pytest.raises(ValueError):
        Check("x", "x", paper=None, neutral=1.0)


def test_combine_takes_the_worst():
    assert combine([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert combine([REPRODUCED, SAME_DIRECTION]) == SAME_DIRECTION
    assert combine([SAME_DIRECTION, NOT_REPRODUCED, REPRODUCED]) == NOT_REPRODUCED
    assert combine([]) == NOT_REPRODUCED
    with pytest.raises(ValueError):
        combine(["maybe"])


# ----------------------------------------------------------------------------- RPM, window metric
def _burst(n_a: int, n_b: int, step: float = 1.0):
    rows = [(i * step, "a", (1000 + i,), 10, 5) for i in range(n_a)]
    rows += [(i * step + 0.5, "b", (2000 + i,), 10, 5) for i in range(n_b)]
    return make_workload(rows, block_size=16)


def test_rpm_drop_matches_the_artifact_rule():
    w = _burst(130, 3)  # a: one request a second for 130 s; b: three
    out = rpm_limit(w, 20)
    a = [r.arrival for r in out if r.client == "a"]
    # 20 accepted in [0, 19]; t=20..60 rejected (20 accepted within <= 60 s), t=60 still sees t=0
    assert a[:20] == [float(i) for i in range(20)] and a[20] == 61.0
    assert sum(r.client == "b" for r in out) == 3
    assert max_per_window(out) <= 20
    assert out.meta["rpm"]["dropped"]["a"] == 130 - len(a)
    assert [r.rid for r in out] == list(range(len(out)))


def test_rpm_delay_keeps_every_request_within_the_limit():
    w = _burst(50, 5, step=0.1)
    out = rpm_limit(w, 7, mode="delay")
    assert len(out) == len(w)
    assert max_per_window(out, 60.0 - 1e-6) <= 7
    arrivals = [r.arrival for r in out]
    assert arrivals == sorted(arrivals)
    with pytest.raises(ValueError):
        rpm_limit(w, 0)
    with pytest.raises(ValueError):
        rpm_limit(w, 3, mode="hold")


class _Frame:
    def __init__(self, rows):
        self.df = pd.DataFrame(rows, columns=["client", "arrival", "first_token_t", "finish_t", "input_len",
                                              "output_len"])

    def requests_frame(self):
        return self.df


def test_window_metric_by_hand():
    # a: served at a constant rate over the whole trace; b: asks for 1200 units at t=100, never served
    res = _Frame([("a", 0.0, 0.0, 600.0, 200, 500),       # 1200 units spread over 600 s: 2 units/s
                  ("b", 100.0, np.nan, np.nan, 1000, 100)])  # demand 1200 units, no service
    wd = window_service_diff(res)
    assert len(wd.ticks) == 19 and wd.ticks[0] == pytest.approx(28.5)
    # window k covers [28.5 k, 28.5 k + 60]; b's demand 1200/60 = 20 units/s is inside for k = 2, 3
    # there b's shortfall is min(y_a - y_b, |q_b - y_b|) = min(2, 20) = 2; a contributes 0
    assert wd.per_tick[1] == pytest.approx(2.0) and wd.per_tick[2] == pytest.approx(2.0)
    assert wd.per_tick[0] == 0.0 and wd.max_diff == pytest.approx(2.0)
    assert window_service_diff(res, reduce="max").max_diff == pytest.approx(2.0)


# ----------------------------------------------------------------------------- claims end to end
def _check_outcome(o):
    assert o.verdict in VERDICTS
    assert set(o.verdicts) == {k.key for k in o.claim.checks}
    for k in o.claim.checks:
        v = o.result.values[k.key]
        assert v is None or math.isfinite(v)
    e = o.to_entry()
    assert ENTRY_KEYS <= set(e)
    json.dumps(e, allow_nan=False)
    assert o.result.figure is not None and len(o.result.figure.data) > 0
    assert o.elapsed_s > 0


def _verdicts_follow_values(o):
    """Each verdict is the rule applied to the computed value, not a stored answer."""
    for k in o.claim.checks:
        assert o.verdicts[k.key] == k.verdict(o.result.values[k.key])


def test_quick_fairness_claim():
    from fairsched.analysis import max_service_gap
    from fairsched.reproduce.common import A100, hardware, quantum_u, simulate, x_upper_bound
    from fairsched.theory.fairness import dlpm_gap_bound, evaluate
    from fairsched.workload import mixed

    o = run_claim(REGISTRY["dlpm-fairness"], quick=True)
    _check_outcome(o)
    _verdicts_follow_values(o)
    v, d = o.result.values, o.result.data
    pol = d["policies"]
    # the values are the ratios of the measured gaps and Jain indices the claim reports
    assert v["lpm_over_dlpm_gap"] == pytest.approx(pol["lpm"]["max_service_gap"] / pol["dlpm"]["max_service_gap"])
    assert v["jain_gain"] == pytest.approx(pol["dlpm"]["jain_index"] - pol["lpm"]["jain_index"])
    assert v["dlpm_gap_over_bound"] == pytest.approx(pol["dlpm"]["max_service_gap"] / d["proved_bound"])
    # the bound is 2(Q^u + X) of fairsched.theory, with X measured on the DLPM run
    assert d["proved_bound"] == pytest.approx(evaluate(dlpm_gap_bound(), Q_u=d["quantum"], X=d["X_upper_bound"],
                                                       w_p=1.0, w_q=2.0))
    # an independent DLPM run of the same workload measures the same gap and X
    w = mixed(seed=0, scale=1.5, duration=45.0)
    cost, inst = hardware(None, A100)
    res = simulate(w, "dlpm", cost, inst)
    assert d["quantum"] == quantum_u(w) == w.max_request_cost(1.0, 2.0)
    assert max_service_gap(res).gap == pytest.approx(pol["dlpm"]["max_service_gap"])
    assert x_upper_bound(res) == pytest.approx(d["X_upper_bound"])
    assert v["lpm_over_dlpm_gap"] > 1 and v["dlpm_gap_over_bound"] < 1  # LPM is unfair; DLPM within its bound
    assert o.verdict == REPRODUCED


@pytest.mark.skipif(bool(missing_data([REGISTRY["vtc-trace"]])), reason="VTC trace not available")
def test_quick_vtc_trace_claim_and_outputs(tmp_path):
    o = run_claim(REGISTRY["vtc-trace"], quick=True)
    _check_outcome(o)
    _verdicts_follow_values(o)
    rows, v = o.result.data["ours"], o.result.values
    assert v["vtc"] == rows["VTC"]["max_diff"]
    for k in ("FCFS", "LCF", "RPM"):
        assert v[f"{k.lower()}_over_vtc"] == pytest.approx(rows[k]["max_diff"] / rows["VTC"]["max_diff"])
    # an independent FCFS run of the trace on the claim's hardware gives the same window metric
    from fairsched.reproduce.claim4_vtc_trace import VTC_INSTANCE, VTC_TRACE
    from fairsched.reproduce.common import A10G, hardware, trace_path
    from fairsched.sim import simulate
    from fairsched.workload import load_trace

    cost, inst = hardware(None, A10G, **VTC_INSTANCE)
    w = load_trace(trace_path(VTC_TRACE), "vtc")
    res = simulate(w, "fcfs", instance=inst, cost=cost)
    assert window_service_diff(res).max_diff == pytest.approx(rows["FCFS"]["max_diff"])
    assert rows["RPM"]["requests"] == len(rpm_limit(w, 5)) < rows["VTC"]["requests"] == len(w)  # RPM drops requests
    assert rows["VTC"]["max_diff"] < rows["FCFS"]["max_diff"]  # VTC is fairer than FCFS
    doc, page = write_outputs([o], tmp_path)
    entries = json.loads(doc.read_text())
    assert [e["claim"] for e in entries] == ["vtc-trace"] and ENTRY_KEYS <= set(entries[0])
    html = page.read_text()
    assert html.count("plotly.js v") == 1 and "Plotly.newPlot" in html and "vtc-trace" in html


def test_evaluate_claim_needs_every_value():
    c = REGISTRY["vtc-trace"]
    with pytest.raises(ValueError, match="no value"):
        evaluate_claim(c, ClaimResult(values={"vtc": 1.0}))


# ----------------------------------------------------------------------------- command line
def _app():
    from fairsched.cli import app

    return app


def test_cli_unknown_claim_exits_2(tmp_path):
    res = runner.invoke(_app(), ["reproduce", "no-such-claim", "--quick", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "unknown claim 'no-such-claim'" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_cli_bad_workers_exits_2(tmp_path):
    res = runner.invoke(_app(), ["reproduce", "2", "--quick", "--workers", "0", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--workers" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_cli_bad_cost_model_exits_2(tmp_path):
    bad = tmp_path / "cost.json"
    bad.write_text("{}")
    res = runner.invoke(_app(), ["reproduce", "2", "--quick", "--cost-model", str(bad), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "coefficients" in res.output


def test_cli_runs_a_quick_claim(tmp_path):
    from fairsched.sim import CostModel

    cost = tmp_path / "cost.json"
    CostModel.from_profile("a100-llama3-8b").save(cost)
    res = runner.invoke(_app(), ["reproduce", "dlpm-fairness", "--quick", "--out", str(tmp_path / "o"),
                                 "--cost-model", str(cost), "--workers", "2"])
    assert res.exit_code == 0, res.output
    entries = json.loads((tmp_path / "o" / "reproduce.json").read_text())
    assert len(entries) == 1 and entries[0]["claim"] == "dlpm-fairness"
    assert entries[0]["verdict"] in VERDICTS and entries[0]["cost_model"] == "a100-llama3-8b"
    assert (tmp_path / "o" / "reproduce.html").is_file()
    assert "dlpm-fairness" in res.output and "2 local process(es)" in res.output


def test_cli_list():
    res = runner.invoke(_app(), ["reproduce", "--list"])
    assert res.exit_code == 0 and all(c in res.output for c in REGISTRY)


def test_claims_give_the_same_numbers_on_a_process_pool():
    """Each claim's simulations run as a grid on the sweep executor: a pool of 2 processes
    gives the very entries of the serial run (times apart)."""
    from fairsched.reproduce import entries, run_claims

    claim = [REGISTRY["dlpm-fairness"]]

    def strip(outcomes):
        e = entries(outcomes)
        for x in e:
            x.pop("elapsed_s")
        return json.dumps(e, sort_keys=True)

    assert strip(run_claims(claim, quick=True, workers=2)) == strip(run_claims(claim, quick=True))
