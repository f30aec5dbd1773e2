"""Bad input to ``fairsched detect`` (with and without ``--validate``) and ``fairsched
reproduce``: one ``error:`` line naming the file and line (and field) or the option, exit
code 2, no traceback, no output directory (issue 11, "Bad input still gets a clear error").
The cases other tests already cover for ``analyze``/``check`` are in
``tests/test_cli_hostile.py`` and ``tests/test_cli_fuzz.py``."""

from __future__ import annotations

import json

import pytest
from test_cli_hostile import error_line
from test_hostile import no_hang
from typer.testing import CliRunner

from fairsched.cli import app
from fairsched.workload import default_workload, save_jsonl

runner = CliRunner()


def run(*args):
    with no_hang(60):
        return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def lines(tmp_path):
    p = tmp_path / "good.jsonl"
    save_jsonl(default_workload(3).head(12), p)
    return p.read_text().splitlines()


def _trace(tmp_path, lines, k, text):
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(lines[:k] + [text] + lines[k + 1:]) + "\n")
    return p


def _field(lines, k, **change):
    rec = json.loads(lines[k])
    for key, v in change.items():
        if v is None:
            del rec[key]
        else:
            rec[key] = v
    return json.dumps(rec)


@pytest.mark.parametrize("case,expect", [
    ("truncated", "bad.jsonl:6: malformed JSON (Expecting value at column 30)"),  # not json's "line 2 column 1"
    ("wrong type", "bad.jsonl:6: field 'input_len': must be an integer (got 'forty')"),
    ("negative time", "bad.jsonl:6: field 'arrival_s': must be >= 0"),
    ("missing field", "bad.jsonl:6: field 'output_len': missing"),
])
def test_detect_names_the_trace_line_and_field(tmp_path, lines, case, expect):
    text = {"truncated": '{"arrival_s": 1.0, "client": ',
            "wrong type": _field(lines, 5, input_len="forty"),
            "negative time": _field(lines, 5, arrival_s=-3.0),
            "missing field": _field(lines, 5, output_len=None)}[case]
    res = run("detect", "--trace", _trace(tmp_path, lines, 5, text), "--instances", 4, "--window", 5,
              "--out", tmp_path / "o")
    assert expect in error_line(res)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content,expect", [("", "empty file (no records)"), ("\n\n", "empty file (no records)")])
def test_detect_on_an_empty_or_missing_trace(tmp_path, content, expect):
    p = tmp_path / "empty.jsonl"
    p.write_text(content)
    assert expect in error_line(run("detect", "--trace", p, "--out", tmp_path / "o"))
    assert "missing.jsonl: file not found" in error_line(run("detect", "--trace", tmp_path / "missing.jsonl",
                                                             "--out", tmp_path / "o"))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,expect", [
    (["--validate", 2, "--seed", -1], "--seed must be in [0, 4,294,967,295], got -1"),  # was numpy's unnamed error
    (["--validate", 2, "--instances", 8, "--window", 30], "--instances, --window: not used by --validate"),
    (["--validate", 2, "--trace", "x.jsonl"], "do not pass --trace"),
    (["--outcome-seeds", 2], "--outcome-seeds: only used with --validate"),
    (["--workers", 0], "--workers: only used with --validate"),  # was silently ignored
    (["--workers", 3, "--ray"], "--workers, --ray: only used with --validate"),
    (["--window", -5], "--window must be in [0.001"),
    (["--min-class-requests", 0], "--min-class-requests must be in [1"),
])
def test_detect_options_named_and_never_silently_ignored(tmp_path, args, expect):
    res = run("detect", *args, "--out", tmp_path / "o")
    assert expect in error_line(res)
    assert not (tmp_path / "o").exists()


def test_reproduce_without_its_trace_names_the_file_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRSCHED_SHARED_DATA", str(tmp_path))  # a directory without the traces
    msg = error_line(run("reproduce", "lmetric-routing", "--quick", "--out", tmp_path / "o"))
    assert "mooncake_conversation.jsonl not found" in msg and "FAIRSCHED_SHARED_DATA" in msg
    bad = tmp_path / "cost.json"
    bad.write_text('{"prefill_a": ')
    assert "cost.json:1: not valid JSON" in error_line(run("reproduce", "3", "--quick", "--cost-model", bad,
                                                            "--out", tmp_path / "o"))
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- issue 11 item 3: edge windows, by the CLI
@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    """A small benign twin of the issue's workload (40% of arrivals on documents, 4 req/s):
    139 requests over 34.6 s, 8 documents on 4 instances."""
    from fairsched.workload import benign_twin

    w = benign_twin(4, qps=4.0, x=0.4, warm_s=10, burst_s=20, tail_s=5, doc_tokens=2000)
    p = tmp_path_factory.mktemp("twin") / "twin.jsonl"
    save_jsonl(w, p)
    return p, w.duration


@pytest.mark.parametrize("window,min_requests", [(60, 10), (8, 1), (7, 2)])
def test_detect_reports_no_window_past_the_trace_or_below_the_minimum(tmp_path, twin, window, min_requests):
    path, duration = twin
    res = run("detect", "--trace", path, "--instances", 4, "--window", window, "--min-class-requests", min_requests,
              "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "o" / "detect.json").read_text())
    near, checked = doc["closest_to_violation"], doc["windows_checked"]
    assert not doc["flagged_classes"]
    if not checked:  # (60 s, 10): no class reaches 10 arrivals: say nothing was checked, not "no class violated"
        assert near is None and "closest to violating" not in res.output
        assert "nothing was checked" in res.output and "nothing was checked" in (tmp_path / "o" / "detect.html").read_text()
        return
    assert f"{checked} windows checked" in res.output or (checked == 1 and "the one window checked" in res.output)
    assert near["n_class"] >= min_requests  # never a window below the per-window minimum
    assert near["t0"] + 0.5 * window <= duration  # never a window the trace covers less than half of
    assert f"window {near['t0']:.0f}-{near['t1']:.0f} s" in res.output and near["margin"] < 1


# ---------------------------------------------------------------- the verdict `detect` prints is the validated one
@pytest.mark.parametrize("n,window,kw", [
    (16, 60, dict(qps=4.0, x=0.4, doc_tokens=16000)),  # the workload: flagged, confirmed, yet not harmed
    (4, 20, dict(qps=15.0, warm_s=20.0, burst_s=60.0, tail_s=20.0)),  # tests/test_detect.py's harmed burst
])
def test_detect_prints_the_run_verdict_and_it_matches_the_simulated_outcome(tmp_path, n, window, kw):
    """The verdict column is the run's verdict (validation.run_verdict over the class's checked
    windows, what the validation study scores), and on the same trace it equals the outcome
    the simulator measures (validation.outcome_label: harm = LMetric's class mean TTFT vs
    least-load's; hotspot = the holders' load ratio at the class's decisions)."""
    from fairsched.analysis.detect import DetectorConfig, detect_and_compare
    from fairsched.analysis.detect.validation import _load_ratio, outcome_label
    from fairsched.workload import hotspot_workload

    w = hotspot_workload(n, **kw)
    trace = tmp_path / "hot.jsonl"
    save_jsonl(w, trace)
    res = run("detect", "--trace", trace, "--instances", n, "--window", window, "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    (f,) = json.loads((tmp_path / "o" / "detect.json").read_text())["flagged_classes"]
    oc = detect_and_compare(w, n, config=DetectorConfig(window_s=float(window)))
    lat = {(r["router"], r["scope"]): r["ttft_mean_s"] for r in oc.latency}
    measured = outcome_label(lat["lmetric", "flagged classes"], lat["least-load", "flagged classes"],
                             _load_ratio(oc.report, n))
    assert f["klass"] == "hot" and f["verdict"] == measured
    row = next(x for x in res.output.splitlines() if x.strip().startswith("hot "))
    assert f" {measured} " in row


def test_detect_says_when_the_window_is_longer_than_the_trace_can_cover(tmp_path, twin):
    path, duration = twin  # 34.6 s: a 100-s window is covered less than half, so it is never checked
    res = run("detect", "--trace", path, "--instances", 4, "--window", 100, "--min-class-requests", 1,
              "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert f"the trace spans {duration:,.1f} s, less than 50% of one --window 100 s window: nothing was checked" in text
    assert f"use --window <= {duration / 0.5:.4g}" in text and "closest to violating" not in text
