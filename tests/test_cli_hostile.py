"""Hostile input through the CLI (issue 13 items 2-8) and outputs a user can keep (issue 15
items 3 and 6): exit code 2 with one message naming the option or the file, nothing
half-written, the previous outputs untouched, summary.json the same bytes for the same
inputs. Library-level cases are in ``tests/test_hostile.py``."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from test_hostile import COEFS, no_hang
from typer.testing import CliRunner

from fairsched.cli import app
from fairsched.workload import default_workload, save_jsonl

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def error_line(res) -> str:
    """The one ``error:`` line of a failed command (asserting there is exactly one)."""
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    lines = [x for x in res.output.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, res.output
    return lines[0]


def snapshot(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())} if d.exists() else {}


@pytest.fixture
def trace(tmp_path):
    p = tmp_path / "small.jsonl"
    save_jsonl(default_workload(3).head(40), p)
    return p


# ---------------------------------------------------------------- item 3: ranges validated up front
@pytest.mark.parametrize("option,value", [
    ("--quantum", "1e-320"), ("--quantum", "inf"), ("--quantum", "nan"), ("--quantum", "1e300"),
    ("--quantum-w", "-inf"), ("--lam", "nan"), ("--instances", 10**6), ("--max-batch-size", 0),
    ("--token-budget", 0), ("--kv-capacity", 0), ("--limit", 0), ("--seed", -1),
])
def test_out_of_range_options_are_rejected_naming_the_option(tmp_path, option, value):
    args = ["analyze", "--limit", 20, "--out", tmp_path / "o", option, value]
    if option in ("--instances", "--quantum-w"):
        args += ["--router", "d2lpm"] if option == "--quantum-w" else []
        args += ["--instances", 2] if option == "--quantum-w" else []
    with no_hang(20):
        res = run(*args)
    msg = error_line(res)
    assert option in msg, msg
    assert "InstanceConfig" not in msg and "kv_capacity_tokens" not in msg
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("raw", ["1e300", "Infinity", "NaN", "true"])
def test_bad_cost_coefficient_fails_before_anything_is_written(tmp_path, trace, raw):
    out = tmp_path / "o"
    assert run("analyze", "--trace", trace, "--policy", "fcfs", "--out", out).exit_code == 0
    before = snapshot(out)
    cost = tmp_path / "cost.json"
    text = json.dumps({"coefficients": dict.fromkeys(COEFS, 0.001)}).replace('"prefill_c": 0.001',
                                                                            f'"prefill_c": {raw}')
    cost.write_text(text)
    for cmd in ("analyze", "check"):
        msg = error_line(run(cmd, "--trace", trace, "--cost-model", cost, "--out", out, "--force"))
        assert "cost.json" in msg and "coefficients.prefill_c" in msg, msg
    assert snapshot(out) == before


def test_outputs_are_all_or_nothing(tmp_path, trace, monkeypatch):
    out = tmp_path / "o"
    assert run("analyze", "--trace", trace, "--policy", "fcfs", "--out", out).exit_code == 0
    before = snapshot(out)
    assert {"summary.json", "summary.csv", "report.html", "timing.json"} <= set(before)

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("fairsched.analysis.report.write_report", boom)
    res = run("analyze", "--trace", trace, "--policy", "lpm", "--out", out)
    assert "No space left" in error_line(res)
    assert snapshot(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # staging removed


# ---------------------------------------------------------------- item 2: unfinished requests
@pytest.mark.parametrize("cmd", ["analyze", "check"])
def test_unfinished_requests_are_an_error_not_a_verdict(tmp_path, trace, monkeypatch, cmd):
    from fairsched.sim.simulator import Simulator

    real = Simulator.run

    def lossy(self, *a, **k):
        res = real(self, *a, **k)
        res.finish_t[:3] = np.nan  # as if three requests never finished
        return res

    monkeypatch.setattr(Simulator, "run", lossy)
    res = run(cmd, "--trace", trace, "--policy", "fcfs", "--out", tmp_path / "o")
    msg = error_line(res)
    assert "3 of 40 requests never finished" in msg, msg
    assert "holds" not in res.output
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- items 4, 5: sizes and windows
def test_huge_length_in_vtc_trace_is_rejected_at_its_line(tmp_path):
    p = tmp_path / "huge.jsonl"
    ok = {"timestamp": 0.0, "client": "a", "input_length": 10, "output_length": 5}
    p.write_text("".join(json.dumps(x) + "\n" for x in (ok, ok, {**ok, "input_length": 2**63})))
    with no_hang(10):
        msg = error_line(run("analyze", "--trace", p, "--out", tmp_path / "o"))
    assert "huge.jsonl:3" in msg and "input_length" in msg


def test_request_over_kv_capacity_names_the_trace_line(tmp_path, trace):
    msg = error_line(run("analyze", "--trace", trace, "--kv-capacity", 1000, "--out", tmp_path / "o"))
    assert "small.jsonl:" in msg and "1,000" in msg and "KV" in msg, msg


def test_detect_window_that_gives_too_many_windows_is_rejected(tmp_path, trace):
    for w in ("1e-9", "1e-4"):
        with no_hang(20):
            msg = error_line(run("detect", "--trace", trace, "--instances", 2, "--window", w, "--out", tmp_path / "o"))
        assert "--window" in msg, msg


def test_fifo_and_dev_zero_as_trace(tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    for p in (fifo, "/dev/zero"):
        with no_hang(10):
            msg = error_line(run("analyze", "--trace", p, "--out", tmp_path / "o"))
        assert "not a regular file" in msg and str(p) in msg


# ---------------------------------------------------------------- item 6: timestamp units
def test_implausible_timestamps_are_warned_and_the_run_goes_on(tmp_path):
    p = tmp_path / "ms.jsonl"
    p.write_text("".join(json.dumps({"timestamp": i * 700.0, "client": f"c{i % 3}", "input_length": 20,
                                     "output_length": 3}) + "\n" for i in range(60)))
    res = run("analyze", "--trace", p, "--format", "vtc", "--policy", "fcfs", "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert "warning:" in res.output and "ms.jsonl" in res.output and "seconds" in res.output


# ---------------------------------------------------------------- item 8: same inputs, same bytes
def test_summary_json_is_byte_identical_and_timing_is_apart(tmp_path, trace):
    docs = []
    for k in range(2):
        out = tmp_path / f"o{k}"
        assert run("analyze", "--trace", trace, "--instances", 2, "--router", "rr", "--out", out).exit_code == 0
        docs.append((out / "summary.json").read_bytes())
        timing = json.loads((out / "timing.json").read_text())
        assert set(timing["sim_wall_s"]) == {"rr/fcfs"}
    assert docs[0] == docs[1]
    assert b"wall" not in docs[0]
    out = tmp_path / "c"
    assert run("check", "--trace", trace, "--policy", "fcfs", "--out", out).exit_code == 0
    assert b"wall" not in (out / "check.json").read_bytes()
    assert "runs" in json.loads((out / "timing.json").read_text())


# ---------------------------------------------------------------- issue 15 item 3: outputs to keep
def test_default_output_directory_is_named_after_command_and_trace(tmp_path, trace, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run("analyze", "--trace", trace, "--policy", "fcfs").exit_code == 0
    assert run("check", "--trace", trace, "--policy", "fcfs").exit_code == 0
    assert run("analyze", "--limit", 20, "--policy", "fcfs").exit_code == 0
    root = tmp_path / "fairsched-out"
    assert sorted(p.name for p in root.iterdir()) == ["analyze-default", "analyze-small", "check-small"]
    assert (root / "check-small" / "check.csv").is_file() and (root / "check-small" / "check.json").is_file()


def test_out_refuses_another_commands_directory_unless_forced(tmp_path, trace):
    out = tmp_path / "o"
    assert run("analyze", "--trace", trace, "--policy", "fcfs", "--out", out).exit_code == 0
    before = snapshot(out)
    msg = error_line(run("check", "--trace", trace, "--policy", "fcfs", "--out", out))
    assert "analyze" in msg and "--force" in msg
    assert snapshot(out) == before
    assert run("analyze", "--trace", trace, "--policy", "lpm", "--out", out).exit_code == 0  # same command: fine
    res = run("check", "--trace", trace, "--policy", "fcfs", "--out", out, "--force")
    assert res.exit_code == 0, res.output
    assert (out / "check.json").is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert "--force" in error_line(run("analyze", "--limit", 20, "--out", mine))
    assert (mine / "notes.txt").read_text() == "keep me"


def test_every_json_result_has_a_csv_twin(tmp_path, trace):
    import pandas as pd

    out = tmp_path / "o"
    assert run("analyze", "--trace", trace, "--policy", "fcfs", "--policy", "vtc", "--out", out).exit_code == 0
    df = pd.read_csv(out / "summary.csv")
    doc = json.loads((out / "summary.json").read_text())
    assert list(df["label"]) == [r["label"] for r in doc["runs"]]
    assert df["ttft_mean_s"].tolist() == pytest.approx([r["ttft_mean_s"] for r in doc["runs"]])


def test_calibrate_writes_under_fairsched_out_by_default(tmp_path, monkeypatch):
    import sys
    import types

    from fairsched.sim import CostModel

    mod = types.ModuleType("fairsched.engine.calibrate")
    mod.run_calibration = lambda out, preset, quick, progress=None: CostModel(name=preset).save(out)
    monkeypatch.setitem(sys.modules, "fairsched.engine.calibrate", mod)
    monkeypatch.chdir(tmp_path)
    res = run("calibrate", "--quick")
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "cost.json").exists()
    d = tmp_path / "fairsched-out" / "calibrate-cpu-small"
    assert CostModel.load(d / "cost.json").name == "cpu-small"
    assert "prefill_a" in (d / "cost.csv").read_text()
    assert "--preset" in error_line(run("calibrate", "--preset", "huge"))


# ---------------------------------------------------------------- issue 15 item 6: CLI
def test_version_flags_choices_and_defaults_in_help():
    from fairsched import __version__

    res = run("--version")
    assert res.exit_code == 0 and res.output.strip() == f"fairsched {__version__}"
    env = {"COLUMNS": "300"}

    def flat(args):  # the help text with rich's box and line wrapping removed
        return " ".join(runner.invoke(app, args, env=env).output.replace("│", " ").split())

    h = flat(["analyze", "--help"])
    assert "<bool>" not in h and "--no-force" not in h
    assert "[mooncake|vtc|jsonl]" in h and "[fcfs|lpm|vtc|lcf|dlpm|dlpm-global]" in h and "[a100-llama3-8b|a10g-llama2-7b|" in h
    assert "Default: rr vllm-v1 linear lmetric d2lpm" in h and "Default: fcfs lpm vtc dlpm" in h
    h = flat(["calibrate", "--help"])
    assert "[cpu-tiny|cpu-small|gpu-medium]" in h and "--no-quick" not in h and "<bool>" not in h
    assert "<bool>" not in flat(["reproduce", "--help"])


def test_choices_listed_in_options_match_their_sources():
    from fairsched.commands import options as opt
    from fairsched.engine.model import PRESETS
    from fairsched.policies import POLICY_NAMES, ROUTER_NAMES
    from fairsched.sim.profiles import PROFILES
    from fairsched.workload import FORMATS

    assert opt.PRESETS == tuple(PRESETS) and opt.PROFILES == PROFILES and opt.FORMATS == FORMATS
    assert opt.POLICY_NAMES == POLICY_NAMES and opt.ROUTER_NAMES == ROUTER_NAMES


def test_terminal_explains_the_symbols_it_prints(tmp_path):
    res = run("analyze", "--limit", 20, "--policy", "dlpm", "--out", tmp_path / "o")
    assert res.exit_code == 0
    legend = [x for x in res.output.splitlines() if x.startswith("Q^u/Q^w:")]
    assert len(legend) == 1 and "gap/U" in legend[0] and "backlogged" in legend[0]
