"""Fuzz the CLI with malformed traces and option values (hypothesis): every run ends with
exit code 0, or exit code 2 and a message naming the input (the trace file or the option);
never a traceback, never a hang (SIGALRM), and a failed run leaves the earlier outputs in
``--out`` byte for byte. Few, derandomized examples in CI (``tests/conftest.py``); a longer
search: ``FAIRSCHED_FUZZ_EXAMPLES=300 python -m pytest tests/test_cli_fuzz.py``."""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hostile import no_hang
from typer.testing import CliRunner

from fairsched.cli import app

runner = CliRunner()

HOSTILE = ["NaN", "Infinity", "-Infinity", "-1", "0", "true", "null", '"x"', "[]", "{}", "1e308", "-0.0",
           "9223372036854775808", "10000000000", "1.5", '"\\u0000"', "[1, [2]]"]
FIELDS = ("timestamp", "client", "input_length", "output_length")
GOOD = {"timestamp": 0.0, "client": "a", "input_length": 40, "output_length": 4}


def _line(i: int, field: str | None, raw: str | None) -> str:
    rec = {**GOOD, "timestamp": float(i), "client": "ab"[i % 2]}
    text = json.dumps(rec)
    if field is not None:
        text = text.replace(f'"{field}": {json.dumps(rec[field])}', f'"{field}": {raw}')
    return text


lines = st.builds(_line, st.integers(0, 5), st.one_of(st.none(), st.sampled_from(FIELDS)), st.sampled_from(HOSTILE))
garbage = st.sampled_from(["not json", "{", "[1, 2]", '"str"', "\x00\x01", "{\"timestamp\": }", "[" * 5000,
                           _line(0, None, None).replace("timestamp", "hash_ids")])
trace_text = st.lists(st.one_of(lines, lines, garbage, st.just("")), min_size=0, max_size=5).map(
    lambda ls: "\n".join(ls) + "\n")
raw_bytes = st.sampled_from([b"", b"\xff\xfe\x00", b'{"timestamp": 0, "client": "\xe9", "input_length": 4}\n'])
OPTIONS = {
    "--quantum": ["nan", "inf", "-inf", "1e-320", "0", "-1", "1e300", "abc", "1e-3", "4096"],
    "--instances": ["0", "-3", "1000000", "abc", "1", "2"],
    "--limit": ["0", "-1", "2", "abc"],
    "--max-batch-size": ["0", "-5", "1", "9999999999"],
    "--kv-capacity": ["0", "1", "100", "10000000000000", "nan"],
    "--format": ["nope", "vtc", "mooncake", "jsonl"],
    "--policy": ["fcfs", "nope", ""],
    "--lam": ["nan", "2", "-0.5", "0.5"],
}
options = st.lists(st.sampled_from(sorted(OPTIONS)), max_size=2, unique=True).flatmap(
    lambda names: st.tuples(*[st.tuples(st.just(n), st.sampled_from(OPTIONS[n])) for n in names]))


def _snapshot(out: Path) -> dict:
    return {p.name: p.read_bytes() for p in out.iterdir()}


@functools.cache
def _earlier() -> dict:
    """An output directory holding an earlier analyze run (made once) and its bytes."""
    out = Path(tempfile.mkdtemp(prefix="fairsched-fuzz-")) / "out"
    assert runner.invoke(app, ["analyze", "--limit", "10", "--policy", "fcfs", "--out", str(out)]).exit_code == 0
    return {"out": out, "before": _snapshot(out)}


@settings(max_examples=int(os.environ.get("FAIRSCHED_FUZZ_EXAMPLES", "20")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cmd=st.sampled_from(["analyze", "analyze", "check", "detect"]), text=st.one_of(trace_text, raw_bytes),
       opts=options)
def test_cli_survives_malformed_traces_and_options(cmd, text, opts):
    state = _earlier()
    out, before = state["out"], state["before"]
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        trace = d / "fuzz.jsonl"
        trace.write_bytes(text if isinstance(text, bytes) else text.encode())
        args = [cmd, "--trace", str(trace), "--out", str(out), "--force"]
        if cmd == "detect":
            args += ["--instances", "2"]
        for name, value in opts:
            args += [name, value]
        if ("--policy", "fcfs") not in opts:
            args += ["--policy", "fcfs"]
        with no_hang(60):
            res = runner.invoke(app, args)
        assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.output, res.exception)
        assert "Traceback" not in res.output, (args, res.output)
        assert res.exit_code in (0, 2), (args, res.exit_code, res.output)
        if res.exit_code == 2:
            named = [str(trace), *(n for n, _ in opts), "--policy"]
            assert any(n in res.output for n in named), (args, res.output)
            assert _snapshot(out) == before, args
        else:  # a successful run replaced the earlier outputs: they are the earlier ones now
            state["before"] = _snapshot(out)
