"""`fairsched analyze` / `calibrate` through typer's CliRunner: outputs, combos, and bad
input (exit code 2, one message naming the problem, no traceback, nothing written)."""

from __future__ import annotations

import json
import sys
import types

import pytest
from typer.testing import CliRunner

from fairsched.cli import app, scheduler_combos
from fairsched.workload import default_workload, save_jsonl

runner = CliRunner()
REQUIRED = ("router", "policy", "n_requests", "n_finished", "ttft_mean_s", "ttft_p50_s", "ttft_p99_s",
            "tpot_p50_s", "throughput_tok_s", "cache_hit_rate", "max_service_gap", "jain_index")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_analyze_default_workload(tmp_path):
    out = tmp_path / "out"
    res = run("analyze", "--limit", 60, "--out", out)
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "summary.json").read_text())
    assert set(doc) == {"workload", "config", "runs"}
    assert doc["workload"]["n_requests"] == 60 and doc["workload"]["name"].startswith("default")
    assert {"name", "n_requests", "n_clients", "source"} <= set(doc["workload"])
    assert [r["policy"] for r in doc["runs"]] == ["fcfs", "lpm", "vtc", "dlpm"]
    for r in doc["runs"]:
        assert all(k in r for k in REQUIRED)
        assert r["n_finished"] == 60
    html = (out / "report.html").read_text()
    assert html.count("plotly.js v") == 1 and "<script src" not in html  # embedded once, no CDN
    assert html.count("Plotly.newPlot") >= 5
    assert "TTFT" in res.output and "dlpm" in res.output
    assert not list(out.glob("*.tmp")) and [p.name for p in out.glob(".*")] == [".fairsched.json"]
    assert not list(out.parent.glob(".*.tmp"))  # no staging directory left behind


def test_analyze_cluster_trace_and_options(tmp_path):
    trace = tmp_path / "t.jsonl"
    save_jsonl(default_workload(1).head(80), trace)
    out = tmp_path / "o"
    res = run("analyze", "--trace", trace, "--format", "jsonl", "--instances", 2, "--router", "rr",
              "--router", "d2lpm", "--router", "linear", "--policy", "fcfs", "--quantum", 1024,
              "--quantum-w", 4096, "--lam", 0.5, "--max-batch-size", 32, "--kv-capacity", 200000, "--out", out)
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "summary.json").read_text())
    assert [(r["router"], r["policy"]) for r in doc["runs"]] == [("rr", "fcfs"), ("d2lpm", "dlpm"),
                                                                 ("linear", "fcfs")]
    assert all(r["n_instances"] == 2 for r in doc["runs"])
    assert doc["config"]["instance"]["max_batch_size"] == 32 and doc["config"]["quantum"] == 1024
    assert doc["workload"]["source"].endswith("t.jsonl")


def test_scheduler_combos():
    assert scheduler_combos(1, None, None) == [("none", p) for p in ("fcfs", "lpm", "vtc", "dlpm")]
    assert scheduler_combos(4, None, None) == [("rr", "fcfs"), ("vllm-v1", "fcfs"), ("linear", "fcfs"),
                                               ("lmetric", "fcfs"), ("d2lpm", "dlpm")]
    assert scheduler_combos(2, ["d2lpm", "rr"], ["fcfs", "vtc"]) == [("d2lpm", "dlpm"), ("rr", "fcfs"),
                                                                     ("rr", "vtc")]
    assert scheduler_combos(2, None, ["lpm"])[0] == ("rr", "lpm")


def _bad_cases(tmp_path):
    malformed = tmp_path / "bad.jsonl"
    malformed.write_text('{"timestamp": 0.5, "client": "a", "input_length": 10, "output_length": 5}\n'
                         '{"timestamp": 1.0, "client": "a", "input_length": -3, "output_length": 5}\n')
    notjson = tmp_path / "garbage.jsonl"
    notjson.write_text("this is not json\n")
    badcost = tmp_path / "cost.json"
    badcost.write_text('{"coefficients": {"prefill_a": 1}}')
    afile = tmp_path / "afile"
    afile.write_text("x")
    return [
        (["--trace", tmp_path / "missing.jsonl"], "missing.jsonl"),
        (["--trace", malformed, "--format", "nope"], "nope"),
        (["--trace", malformed, "--format", "vtc"], "input_length"),
        (["--trace", notjson, "--format", "vtc"], "garbage.jsonl"),
        (["--trace", malformed, "--format", "mooncake"], "hash_ids"),
        (["--policy", "fifo"], "fifo"),
        (["--instances", 2, "--router", "magic"], "magic"),
        (["--router", "rr"], "--instances"),
        (["--instances", 0], "--instances"),
        (["--cost-model", badcost], "prefill_b"),
        (["--cost-model", tmp_path / "nocost.json"], "nocost.json"),
        (["--cost-profile", "h100-magic"], "h100-magic"),
        (["--limit", 0], "--limit"),
        (["--quantum", -1], "--quantum"),
        (["--lam", 2], "--lam"),
        (["--kv-capacity", 0], "--kv-capacity"),
        (["--kv-capacity", 100], "--kv-capacity"),  # a request cannot fit
        (["--out", afile], "afile"),
    ]


def test_bad_inputs_exit_2_with_a_message(tmp_path):
    for args, needle in _bad_cases(tmp_path):
        out = tmp_path / "never"
        if "--out" not in args:
            args = [*args, "--out", out]
        res = run("analyze", *args)
        assert res.exit_code == 2, (args, res.output)
        assert "Traceback" not in res.output, args
        assert res.exception is None or isinstance(res.exception, SystemExit), args
        msg = res.output.strip()
        assert msg.startswith("error:") and len(msg.splitlines()) == 1, (args, msg)
        assert needle in msg, (args, msg)
        assert not out.exists(), args


def test_typer_usage_errors_exit_2():
    res = run("analyze", "--instances", "many")
    assert res.exit_code == 2 and "Traceback" not in res.output


@pytest.fixture
def fake_calibration(monkeypatch):
    mod = types.ModuleType("fairsched.engine.calibrate")
    calls = {}

    def run_calibration(out, preset, quick, progress=None):
        from fairsched.sim import CostModel

        calls.update(out=out, preset=preset, quick=quick)
        for k in (1, 2, 3):  # the command shows a bar of the timings done / to do
            progress(k, 3)
        CostModel(prefill_b=1.5e-4, name=f"fit-{preset}").save(out, r2={"prefill": 0.991, "decode": 0.973})
        return {"r2": {"prefill": 0.991, "decode": 0.973}}

    mod.run_calibration = run_calibration
    monkeypatch.setitem(sys.modules, "fairsched.engine.calibrate", mod)
    return calls


def test_calibrate_prints_coefficients_and_r2(tmp_path, fake_calibration):
    out = tmp_path / "cost.json"
    res = run("calibrate", "--out", out, "--quick")
    assert res.exit_code == 0, res.output
    assert fake_calibration == {"out": out, "preset": "cpu-small", "quick": True}
    assert "prefill_b" in res.output and "0.0001" in res.output and "0.991" in res.output
    assert "3/3" in res.output  # the progress bar counted the timings
    # the file it wrote is usable by analyze
    res = run("analyze", "--limit", 30, "--policy", "fcfs", "--cost-model", out, "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["config"]["cost_model"]["prefill_b"] == 1.5e-4
