"""Hostile input (issue 13, items 1-8): each case gets a clear error naming the file, line
and field (or the CLI option), never a traceback, a hang or a silent wrong result.

Library-level cases here; the CLI cases are in ``tests/test_cli_hostile.py``. Cases that
used to hang run under :func:`no_hang` (a SIGALRM that turns a hang into a failure).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import warnings

import pytest

from fairsched.cache.radix import RadixCache
from fairsched.sim import CostModel
from fairsched.workload import TraceError, load_trace
from fairsched.workload import _records as R
from fairsched.workload import loaders as L

COEFS = ("prefill_a", "prefill_b", "prefill_c", "decode_a", "decode_b", "decode_c")


@contextlib.contextmanager
def no_hang(seconds: float = 10.0):
    """Fail (instead of hanging the suite) if the block runs longer than ``seconds``."""
    def _alarm(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _cost_file(tmp_path, raw_value: str, field: str = "prefill_a"):
    """A cost.json whose ``field`` is ``raw_value`` written verbatim (e.g. ``NaN``)."""
    coef = {k: 0.001 for k in COEFS}
    text = json.dumps({"coefficients": coef}).replace(f'"{field}": 0.001', f'"{field}": {raw_value}')
    p = tmp_path / "cost.json"
    p.write_text(text)
    return p


# ---------------------------------------------------------------- item 1: NaN & co. in cost.json
@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "true", "1e300", "-1", '"0.1"', "null"])
def test_cost_json_rejects_non_finite_bool_and_absurd_values(tmp_path, raw):
    p = _cost_file(tmp_path, raw, "decode_b")
    with pytest.raises(ValueError) as e:
        CostModel.load(p)
    assert str(p) in str(e.value) and "coefficients.decode_b" in str(e.value), str(e.value)


@pytest.mark.parametrize("value", [math.nan, math.inf, True, 1e300, -1.0])
def test_cost_model_constructor_rejects_the_same(value):
    with pytest.raises(ValueError, match="prefill_b"):
        CostModel(prefill_b=value)


def test_radix_evict_cannot_loop_on_nan_times():
    c = RadixCache(None, 1)
    nan = math.nan
    c.insert((1, 2, 3), nan)
    c.insert((1, 2, 4, 5), nan)
    c.touch((1, 2, 4, 5), 4, nan)
    with no_hang(5):
        assert c.evict(10) == 5
    assert c.size == 0


# ---------------------------------------------------------------- item 2: zero iteration time
@pytest.mark.parametrize("zero", [COEFS, ("prefill_a", "prefill_b", "prefill_c"),
                                  ("decode_a", "decode_b", "decode_c")])
def test_cost_model_with_zero_iteration_time_is_rejected(tmp_path, zero):
    kw = dict.fromkeys(zero, 0.0)
    with pytest.raises(ValueError, match="iteration"):
        CostModel(**kw)
    p = tmp_path / "zero.json"
    coef = {k: (0.0 if k in zero else 0.001) for k in COEFS}
    p.write_text(json.dumps({"coefficients": coef}))
    with pytest.raises(ValueError, match="zero.json"):
        CostModel.load(p)


# ---------------------------------------------------------------- item 4: absurd lengths
def _vtc(tmp_path, lines, name="t.jsonl"):
    p = tmp_path / name
    p.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return p


@pytest.mark.parametrize("n", [L.MAX_REQUEST_TOKENS + 1, 10**10, 2**63])
def test_absurd_lengths_are_rejected_at_load_before_allocation(tmp_path, n):
    ok = {"timestamp": 0.0, "client": "a", "input_length": 10, "output_length": 5}
    p = _vtc(tmp_path, [ok, ok, {**ok, "input_length": n}])
    with no_hang(5), pytest.raises(TraceError) as e:
        load_trace(p, "vtc")
    assert e.value.line == 3 and e.value.field == "input_length"
    assert f"{L.MAX_REQUEST_TOKENS:,}" in str(e.value)
    p = _vtc(tmp_path, [ok, {**ok, "output_length": n}])
    with pytest.raises(TraceError, match="output_length"):
        load_trace(p, "vtc")


def test_request_larger_than_an_instance_names_the_line(tmp_path):
    ok = {"timestamp": 0.0, "client": "a", "input_length": 10, "output_length": 5}
    p = _vtc(tmp_path, [ok, {**ok, "input_length": 5000}, ok])
    assert len(load_trace(p, "vtc")) == 3
    with pytest.raises(TraceError) as e:
        load_trace(p, "vtc", kv_capacity_tokens=4000)
    assert e.value.line == 2 and "4,000" in str(e.value) and "KV" in str(e.value)


def test_total_prompt_units_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "MAX_TOTAL_UNITS", 100)
    ok = {"timestamp": 0.0, "client": "a", "input_length": 16 * 30, "output_length": 5}
    p = _vtc(tmp_path, [ok] * 5)
    with pytest.raises(TraceError, match="--limit"):
        load_trace(p, "vtc")


# ---------------------------------------------------------------- item 5: FIFO, /dev/zero, size
def test_fifo_is_rejected_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    with no_hang(5), pytest.raises(TraceError, match="not a regular file"):
        load_trace(fifo, "vtc")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_is_rejected():
    with no_hang(5), pytest.raises(TraceError, match="not a regular file"):
        load_trace("/dev/zero", "vtc")


def test_trace_size_and_line_length_are_bounded(tmp_path, monkeypatch):
    ok = {"timestamp": 0.0, "client": "a", "input_length": 10, "output_length": 5}
    p = _vtc(tmp_path, [ok] * 50)
    monkeypatch.setattr(R, "MAX_TRACE_BYTES", 100)
    with pytest.raises(TraceError, match="larger than"):
        load_trace(p, "vtc")
    monkeypatch.setattr(R, "MAX_TRACE_BYTES", 10**9)
    monkeypatch.setattr(R, "MAX_LINE_BYTES", 30)
    with pytest.raises(TraceError) as e:
        load_trace(p, "vtc")
    assert e.value.line == 1 and "longer than" in str(e.value)


def test_deeply_nested_json_line_is_a_trace_error(tmp_path):
    p = tmp_path / "deep.jsonl"
    p.write_text("[" * 200_000 + "]" * 200_000 + "\n")
    with pytest.raises(TraceError, match="deep.jsonl:1"):
        load_trace(p, "vtc")


# ---------------------------------------------------------------- item 6: timestamp units
def _timestamps(tmp_path, fmt, times):
    if fmt == "mooncake":
        rows = [{"timestamp": t, "input_length": 600, "output_length": 5, "hash_ids": [0, i + 1]}
                for i, t in enumerate(times)]
    else:
        rows = [{"timestamp": t, "client": f"c{i % 3}", "input_length": 10, "output_length": 5}
                for i, t in enumerate(times)]
    return _vtc(tmp_path, rows, f"{fmt}.jsonl")


@pytest.mark.parametrize("fmt,times,unit", [
    ("mooncake", [i * 0.5 for i in range(200)], "ms"),        # seconds given: 0.1 s, 2,000 req/s
    ("vtc", [i * 500.0 for i in range(200)], "seconds"),      # ms given: 28 hours
])
def test_implausible_timestamp_units_are_warned(tmp_path, fmt, times, unit):
    p = _timestamps(tmp_path, fmt, times)
    with pytest.warns(L.TraceWarning) as rec:
        w = load_trace(p, fmt)
    msg = str(rec[0].message)
    assert str(p) in msg and unit in msg and "timestamp" in msg, msg
    assert len(w) == 200


def test_plausible_and_real_traces_are_not_warned(tmp_path):
    p = _timestamps(tmp_path, "vtc", [i * 0.4 for i in range(200)])
    files = [(p, "vtc")]
    data = L.shared_data_dir()
    if data is not None:
        files += [(data / "lmsys_vtc_27clients.jsonl", "vtc"), (data / "mooncake_conversation.jsonl", "mooncake")]
    with warnings.catch_warnings():
        warnings.simplefilter("error", L.TraceWarning)
        for f, fmt in files:
            if f.exists():
                load_trace(f, fmt)


# ---------------------------------------------------------------- item 7: names in errors
def test_non_utf8_cost_json_names_its_file(tmp_path):
    p = tmp_path / "latin1-cost.json"
    p.write_bytes('{"name": "caf\xe9", "coefficients": {}}'.encode("latin-1"))
    with pytest.raises(ValueError, match="latin1-cost.json.*UTF-8"):
        CostModel.load(p)


def test_cost_json_that_is_not_a_regular_file_is_rejected(tmp_path):
    fifo = tmp_path / "cost.json"
    os.mkfifo(fifo)
    with no_hang(5), pytest.raises(ValueError, match="regular file"):
        CostModel.load(fifo)
