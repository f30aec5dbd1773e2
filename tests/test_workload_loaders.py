"""Trace loaders: the real traces, every malformed case, save/load round trips."""

from __future__ import annotations

import json
import math
import pickle
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairsched.workload import (
    TraceError,
    load_jsonl,
    load_mooncake,
    load_trace,
    load_vtc,
    make_workload,
    save_jsonl,
    shared_data_dir,
    sniff_format,
    synthetic_unique,
)

MOONCAKE = "mooncake_conversation.jsonl"
VTC = "lmsys_vtc_27clients.jsonl"


@pytest.fixture(scope="module")
def data_dir() -> Path:
    d = shared_data_dir()
    if d is None or not (d / MOONCAKE).exists():
        pytest.skip("real traces not found (set FAIRSCHED_SHARED_DATA)")
    return d


def write(tmp_path: Path, lines, name: str = "t.jsonl") -> Path:
    """Write ``lines`` (dicts are JSON-encoded, strings written as is) to a file."""
    p = tmp_path / name
    p.write_text("".join((json.dumps(x) if not isinstance(x, str) else x) + "\n" for x in lines))
    return p


# --------------------------------------------------------------------------- real traces


def test_mooncake_real(data_dir):
    w = load_mooncake(data_dir / MOONCAKE)  # load speed: bench/, not a timed test
    assert len(w) == 12031 and w.block_size == 512
    assert w.meta["hash_ids_adjusted"] == 0
    assert 3500 < w.duration < 3600  # ms converted to s (~59 min)
    assert all(r.prompt[0] == 0 for r in w)
    assert all(r.client == f"c{r.prompt[1]}" for r in w)
    sizes = Counter(r.client for r in w)
    assert len(sizes) == 7373 and sizes.most_common(1) == [("c7402", 43)]
    assert all((len(r.prompt) - 1) * 512 < r.input_len <= len(r.prompt) * 512 for r in w)
    assert [r.rid for r in w] == list(range(len(w)))


def test_vtc_real(data_dir):
    w = load_vtc(data_dir / VTC)
    assert len(w) == 1500 and len(w.clients) == 27 and w.block_size == 16
    assert w.duration <= 600.0
    units = [u for r in w for u in r.prompt]
    assert len(units) == len(set(units))  # every prompt unique
    assert all(len(r.prompt) == math.ceil(r.input_len / 16) for r in w)


def test_real_sniff_and_limit(data_dir):
    assert sniff_format(data_dir / MOONCAKE) == "mooncake"
    assert sniff_format(data_dir / VTC) == "vtc"
    w = load_trace(data_dir / MOONCAKE, limit=100)
    assert len(w) == 100 and w.block_size == 512
    w = load_trace(data_dir / VTC, "vtc", limit=10, block_size=4)
    assert len(w) == 10 and w.block_size == 4


def test_shared_data_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FAIRSCHED_SHARED_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path
    monkeypatch.setenv("FAIRSCHED_SHARED_DATA", str(tmp_path / "nope"))
    assert shared_data_dir() is None


# --------------------------------------------------------------------------- malformed

MC = {"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}
VT = {"timestamp": 0.0, "client": "a", "input_length": 10, "output_length": 5}
JS = {"arrival_s": 0.0, "client": "a", "input_len": 10, "output_len": 5}

BAD = [
    # (loader, lines, line, field, text in message)
    ("mooncake", [MC, "{not json"], 2, None, "malformed JSON"),
    ("mooncake", [MC, "[1, 2]"], 2, None, "must be a JSON object"),
    ("mooncake", [MC, VT], 2, "hash_ids", "looks like a 'vtc' record"),
    ("mooncake", [MC, {**MC, "input_length": "600"}], 2, "input_length", "must be an integer"),
    ("mooncake", [MC, {**MC, "input_length": 600.0}], 2, "input_length", "must be an integer"),
    ("mooncake", [MC, {**MC, "output_length": 0}], 2, "output_length", "must be >= 1"),
    ("mooncake", [{**MC, "input_length": -5}], 1, "input_length", "must be >= 1"),
    ("mooncake", [{**MC, "timestamp": -1}], 1, "timestamp", "must be >= 0"),
    ("mooncake", [{**MC, "timestamp": True}], 1, "timestamp", "must be a number"),
    ("mooncake", [{**MC, "timestamp": 4}, {**MC, "timestamp": 3}], 2, "timestamp",
     "must be non-decreasing (got 3 after 4)"),
    ("mooncake", [MC, {**MC, "hash_ids": [0, 1, 2, 3]}], 2, "hash_ids", "off by more than one"),
    ("mooncake", [MC, {**MC, "hash_ids": [0, "1"]}], 2, "hash_ids", "list of integers"),
    ("mooncake", [MC, {**MC, "hash_ids": []}], 2, "hash_ids", "non-empty list"),
    ("vtc", [VT, MC], 2, "client", "looks like a 'mooncake' record"),
    ("vtc", [{**VT, "client": 3}], 1, "client", "non-empty string"),
    ("vtc", [{**VT, "timestamp": "x"}], 1, "timestamp", "must be a number"),
    ("vtc", [{**VT, "timestamp": 4.0}, {**VT, "timestamp": 3.2}], 2, "timestamp",
     "must be non-decreasing (got 3.2 after 4.0)"),
    ("jsonl", [JS, VT], 2, "arrival_s", "looks like a 'vtc' record"),
    ("jsonl", [{**JS, "promt": [1]}], 1, "promt", "unknown field"),
    ("jsonl", [{**JS, "prompt": [1, 2]}], 1, "prompt", "needs ceil(10/1) = 10"),
    ("jsonl", [{**JS, "prompt": 5}], 1, "prompt", "list of integers"),
    ("jsonl", [JS, {**JS, "block_size": 8}], 2, "block_size", "must be the same on all lines"),
    ("jsonl", [JS, {**JS, "prompt": list(range(10))}], 2, "block_size", "same on all lines"),
    ("jsonl", [{**JS, "block_size": 0}], 1, "block_size", "must be >= 1"),
    ("jsonl", ["", "", {**JS, "output_len": -1}], 3, "output_len", "must be >= 1"),
]


@pytest.mark.parametrize("fmt, lines, line, field, text", BAD)
def test_malformed(tmp_path, fmt, lines, line, field, text):
    p = write(tmp_path, lines)
    loader = {"mooncake": load_mooncake, "vtc": load_vtc, "jsonl": load_jsonl}[fmt]
    for load in (loader, lambda path: load_trace(path, fmt)):
        with pytest.raises(TraceError) as ei:
            load(p)
        e = ei.value
        assert (e.path, e.line, e.field) == (str(p), line, field)
        prefix = f"{p}:{line}: " + (f"field {field!r}: " if field else "")
        assert str(e).startswith(prefix), str(e)
        assert text in str(e), str(e)


def test_error_message_format():
    e = TraceError("t.jsonl", 7, "timestamp", "must be non-decreasing (got 3.2 after 4.0)")
    assert str(e) == "t.jsonl:7: field 'timestamp': must be non-decreasing (got 3.2 after 4.0)"
    assert str(TraceError("t.jsonl", None, None, "file not found")) == "t.jsonl: file not found"
    assert isinstance(e, ValueError)
    e2 = pickle.loads(pickle.dumps(e))
    assert (str(e2), e2.path, e2.line, e2.field) == (str(e), e.path, e.line, e.field)


@pytest.mark.parametrize("fmt", ["mooncake", "vtc", "jsonl"])
def test_file_level_errors(tmp_path, fmt):
    for path, text in [(write(tmp_path, ["", "  "]), "empty file"),
                       (tmp_path / "missing.jsonl", "file not found"),
                       (tmp_path, "is a directory")]:
        with pytest.raises(TraceError, match=text) as ei:
            load_trace(path, fmt)
        assert ei.value.line is None and ei.value.path == str(path)


def test_load_trace_format_errors(tmp_path):
    p = write(tmp_path, [MC])
    with pytest.raises(TraceError, match="unknown format 'csv'.*'mooncake', 'vtc', 'jsonl'"):
        load_trace(p, "csv")
    q = write(tmp_path, [{"a": 1}], "q.jsonl")
    with pytest.raises(TraceError, match="cannot tell the format") as ei:
        load_trace(q)
    assert ei.value.line == 1
    assert load_trace(p).block_size == 512
    assert load_trace(write(tmp_path, [VT], "v.jsonl")).clients == ["a"]
    assert load_trace(write(tmp_path, [JS], "j.jsonl")).block_size == 16


@pytest.mark.parametrize("limit", [0, -1, 1.5, "3"])
def test_bad_limit(tmp_path, limit):
    with pytest.raises(ValueError, match="limit"):
        load_jsonl(write(tmp_path, [JS]), limit=limit)


def test_blank_lines_and_limit(tmp_path):
    p = write(tmp_path, ["", JS, "", {**JS, "arrival_s": 1.0}, "{bad"])
    w = load_jsonl(p, limit=2)  # the bad third record is never read
    assert len(w) == 2 and [r.arrival for r in w] == [0.0, 1.0]
    with pytest.raises(TraceError) as ei:
        load_jsonl(p)
    assert ei.value.line == 5


def test_mooncake_conversion_and_off_by_one(tmp_path):
    lines = [
        {"timestamp": 0, "input_length": 1024, "output_length": 3, "hash_ids": [0, 7]},
        {"timestamp": 1500, "input_length": 100, "output_length": 3, "hash_ids": [0]},
        # one surplus trailing id: dropped
        {"timestamp": 2000, "input_length": 1024, "output_length": 3, "hash_ids": [0, 7, 9]},
        # one id short: a fresh id (> every id in the file) is appended
        {"timestamp": 2000, "input_length": 1025, "output_length": 3, "hash_ids": [0, 8]},
    ]
    w = load_mooncake(write(tmp_path, lines))
    assert [r.arrival for r in w] == [0.0, 1.5, 2.0, 2.0]
    assert [r.client for r in w] == ["c7", "sys-only", "c7", "c8"]
    assert w[2].prompt == (0, 7)
    assert w[3].prompt == (0, 8, 10)
    assert w.meta["hash_ids_adjusted"] == 2


def test_vtc_units_unique_and_block_size(tmp_path):
    p = write(tmp_path, [VT, {**VT, "client": "b", "input_length": 33}])
    w = load_vtc(p, block_size=16)
    assert w[0].prompt == (0,) and w[1].prompt == (1, 2, 3)
    with pytest.raises(ValueError, match="block_size"):
        load_vtc(p, block_size=0)


def test_jsonl_defaults(tmp_path):
    w = load_jsonl(write(tmp_path, [{**JS, "prompt": list(range(5, 15))},
                                    {**JS, "input_len": 3, "block_size": 1}]))
    assert w.block_size == 1
    assert w[0].prompt == tuple(range(5, 15))
    assert w[1].prompt == (15, 16, 17)  # fresh ids above every given id
    w = load_jsonl(write(tmp_path, [JS, {**JS, "input_len": 17}], "b.jsonl"))
    assert w.block_size == 16 and w[0].prompt == (0,) and w[1].prompt == (1, 2)


# --------------------------------------------------------------------------- save / load


def test_round_trip_generated(tmp_path):
    w = synthetic_unique(3, [0.5, 1.0, 2.0], seed=4, duration=20.0)
    p = save_jsonl(w, tmp_path / "sub" / "w.jsonl")
    w2 = load_jsonl(p)
    assert w2.requests == w.requests and w2.block_size == w.block_size
    assert w2.name == "w" and w2.source == str(p)
    assert list((tmp_path / "sub").iterdir()) == [p]  # no temp file left behind


def test_save_is_atomic_on_error(tmp_path):
    p = save_jsonl(make_workload([(0.0, "a", [1], 1, 1)]), tmp_path / "w.jsonl")
    before = p.read_text()
    bad = make_workload([(0.0, "a", [1], 1, 1), (math.inf, "b", [2], 1, 1)])
    with pytest.raises(ValueError, match="finite"):
        save_jsonl(bad, p)
    assert p.read_text() == before
    assert [x.name for x in tmp_path.iterdir()] == ["w.jsonl"]


@st.composite
def workloads(draw):
    bs = draw(st.integers(1, 32))
    n = draw(st.integers(1, 12))
    times = sorted(draw(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=n, max_size=n)))
    rows = []
    for t in times:
        inp = draw(st.integers(1, 200))
        units = draw(st.lists(st.integers(-(2**62), 2**62), min_size=-(-inp // bs),
                              max_size=-(-inp // bs)))
        rows.append((t, draw(st.text(min_size=1, max_size=8)), units, inp,
                     draw(st.integers(1, 5000))))
    return make_workload(rows, block_size=bs)


@settings(max_examples=60, deadline=None)
@given(workloads())
def test_round_trip_property(w):
    with tempfile.TemporaryDirectory() as d:
        w2 = load_jsonl(save_jsonl(w, Path(d) / "w.jsonl"))
    assert w2.requests == w.requests
    assert w2.block_size == w.block_size
