"""Trace loaders: Mooncake, VTC (LMSYS) and the project's generic JSONL schema.

Every loader reads the whole file (or its first ``limit`` records), validates every
record, and only then builds the :class:`~fairsched.workload.request.Workload`: a bad
line raises :class:`~fairsched.workload.errors.TraceError` naming file, line and field,
and nothing is half-loaded. Blank lines are skipped (they still count for line numbers).
Arrival times are converted to seconds.

Formats (one JSON object per line):

``mooncake``
    ``timestamp`` (ms, int, non-decreasing), ``input_length``, ``output_length``
    (tokens, >= 1), ``hash_ids`` (list of int, one per 512-token block, prefix-chained).
    Block size 512. Clients are derived from the blocks, see :func:`load_mooncake`.
``vtc``
    ``timestamp`` (s, number, non-decreasing), ``client`` (str), ``input_length``,
    ``output_length`` (tokens, >= 1). No prefix information: every prompt is unique.
``jsonl`` (generic, written by :func:`save_jsonl`)
    ``arrival_s`` (s, number, non-decreasing), ``client`` (str), ``input_len``,
    ``output_len`` (tokens, >= 1), optional ``prompt`` (list of int prompt units),
    optional ``block_size`` (int >= 1; default 1 if ``prompt`` is given, else 16; the
    effective value must be the same on all lines). No other keys are allowed.

Extra keys are ignored in the two external formats (``mooncake``, ``vtc``) and rejected
in ``jsonl`` (a typo such as ``promt`` would otherwise silently drop the prompt).

Hostile input is stopped before it costs memory or time: only regular files of at most
:data:`MAX_TRACE_BYTES` (a FIFO or ``/dev/zero`` is an error, not a hang), lines of at most
:data:`MAX_LINE_BYTES`, lengths of at most :data:`MAX_REQUEST_TOKENS` tokens, at most
:data:`MAX_TOTAL_UNITS` prompt units, and (``kv_capacity_tokens=``) no request larger than
an instance's KV memory, each rejected at its line before any prompt is built. Timestamps
that imply an implausible rate or duration (:data:`PLAUSIBLE_RATE`,
:data:`PLAUSIBLE_DURATION_S`) raise a :class:`TraceWarning` naming the unit assumed.
"""

from __future__ import annotations

import json
import math
import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

from ..output import atomic_write_text
from .errors import TraceError, TraceWarning
from .request import Request, Workload

__all__ = [
    "FORMATS",
    "MAX_REQUEST_TOKENS",
    "MOONCAKE_BLOCK_SIZE",
    "TraceWarning",
    "load_jsonl",
    "load_mooncake",
    "load_trace",
    "load_vtc",
    "save_jsonl",
    "shared_data_dir",
    "sniff_format",
]

FORMATS = ("mooncake", "vtc", "jsonl")
"""Formats accepted by :func:`load_trace`."""

MOONCAKE_BLOCK_SIZE = 512
"""Tokens per Mooncake ``hash_ids`` block."""

MAX_REQUEST_TOKENS = 10_000_000
"""Largest ``input_length`` / ``output_length`` a loader accepts (tokens; the longest
context windows of 2025 models). Larger values are rejected at their line, before any
prompt is built."""
MAX_TOTAL_UNITS = 100_000_000
"""Most prompt units (sum over requests of ``ceil(input_length / block_size)``) in one
trace: about 4 GB of prompt tuples. Use ``limit`` (``--limit``) for a larger trace."""
MAX_TRACE_BYTES = 2**31
"""Largest trace file read (2 GiB)."""
MAX_LINE_BYTES = 16 * 2**20
"""Longest line read (16 MiB; a Mooncake line with 10M tokens of ``hash_ids`` is ~200 KB)."""
PLAUSIBLE_RATE = (0.05, 1000.0)
"""Mean arrival rates (requests/s) outside which :class:`TraceWarning` says the
timestamps may be in the wrong unit (checked on traces of >= 50 requests)."""
PLAUSIBLE_DURATION_S = 86_400.0
"""Trace durations (s) above which :class:`TraceWarning` is raised (one day)."""


MOONCAKE_CLIENT_RULE = (
    "client = 'c<hash_ids[1]>' (the first block after the shared system-prompt block; "
    "since hash_ids are prefix-chained this is the class of the first 1024 tokens); "
    "'sys-only' if the prompt has a single block"
)

_REQUIRED = {
    "mooncake": ("timestamp", "input_length", "output_length", "hash_ids"),
    "vtc": ("timestamp", "client", "input_length", "output_length"),
    "jsonl": ("arrival_s", "client", "input_len", "output_len"),
}
_JSONL_KEYS = frozenset(_REQUIRED["jsonl"]) | {"prompt", "block_size"}
_JSONL_DEFAULT_BLOCK = {True: 1, False: 16}  # keyed by "prompt given"


def shared_data_dir() -> Path | None:
    """The directory that holds the real traces, or None if there is none.

    Looks at ``$FAIRSCHED_SHARED_DATA`` first (used as is; None if it is set but is not a
    directory), then at ``<repo>/../shared/data`` (the layout of the project workspace).
    """
    env = os.environ.get("FAIRSCHED_SHARED_DATA")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    p = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return p if p.is_dir() else None


# --------------------------------------------------------------------------- reading


def _guess_format(keys) -> str | None:
    """The format whose key set ``keys`` (a record's keys) looks like, or None."""
    keys = set(keys)
    if "hash_ids" in keys:
        return "mooncake"
    if "arrival_s" in keys:
        return "jsonl"
    if "timestamp" in keys and "client" in keys:
        return "vtc"
    return None


class _Rec:
    """One parsed record with its location, and typed field accessors that raise
    :class:`TraceError` naming the file, line and field."""

    __slots__ = ("path", "line", "obj", "fmt")

    def __init__(self, path: str, line: int, obj: dict, fmt: str) -> None:
        self.path, self.line, self.obj, self.fmt = path, line, obj, fmt

    def error(self, field: str | None, reason: str) -> TraceError:
        return TraceError(self.path, self.line, field, reason)

    def get(self, field: str):
        try:
            return self.obj[field]
        except KeyError:
            hint = ""
            guess = _guess_format(self.obj)
            if guess is not None and guess != self.fmt:
                hint = f"; the line looks like a {guess!r} record"
            need = ", ".join(_REQUIRED[self.fmt])
            raise self.error(field, f"missing (a {self.fmt!r} record needs {need}{hint})") from None

    def integer(self, field: str, min_value: int = 1, max_value: int | None = None) -> int:
        v = self.get(field)
        if type(v) is not int:  # rejects bool, float and str
            raise self.error(field, f"must be an integer (got {_short(v)})")
        if v < min_value:
            raise self.error(field, f"must be >= {min_value} (got {v})")
        if max_value is not None and v > max_value:
            raise self.error(field, f"must be at most {max_value:,} (got {_short(v)})")
        return v

    def length(self, field: str) -> int:
        """A token count: an int in [1, MAX_REQUEST_TOKENS]."""
        return self.integer(field, 1, MAX_REQUEST_TOKENS)

    def time(self, field: str) -> float | int:
        v = self.get(field)
        if type(v) not in (int, float):
            raise self.error(field, f"must be a number (got {v!r})")
        if not math.isfinite(v):
            raise self.error(field, f"must be finite (got {v!r})")
        if v < 0:
            raise self.error(field, f"must be >= 0 (got {v})")
        return v

    def string(self, field: str) -> str:
        v = self.get(field)
        if not isinstance(v, str) or not v:
            raise self.error(field, f"must be a non-empty string (got {v!r})")
        return v

    def int_list(self, field: str) -> list[int]:
        v = self.get(field)
        if not isinstance(v, list) or not v:
            raise self.error(field, f"must be a non-empty list of integers (got {_short(v)})")
        for x in v:
            if type(x) is not int:
                raise self.error(field, f"must be a list of integers (got element {x!r})")
        return v


def _short(v, n: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def _check_limit(limit: int | None) -> None:
    if limit is not None and (type(limit) is not int or limit < 1):
        raise ValueError(f"limit must be None or an int >= 1 (got {limit!r})")


def _open_trace(spath: str):
    """Open ``spath`` for reading after checking that it is a regular file of at most
    :data:`MAX_TRACE_BYTES` (a FIFO would block, ``/dev/zero`` would never end)."""
    try:
        st = os.stat(spath)
        if stat.S_ISDIR(st.st_mode):
            raise TraceError(spath, None, None, "is a directory, not a trace file")
        if not stat.S_ISREG(st.st_mode):
            raise TraceError(spath, None, None, "not a regular file (a pipe, device or socket); "
                                                "a trace must be a regular file")
        if st.st_size > MAX_TRACE_BYTES:
            raise TraceError(spath, None, None, f"{st.st_size:,} bytes: larger than the "
                                                f"{MAX_TRACE_BYTES:,}-byte maximum of a trace file")
        return open(spath, "rb")
    except FileNotFoundError:
        raise TraceError(spath, None, None, "file not found") from None
    except OSError as e:
        raise TraceError(spath, None, None, f"cannot open: {e.strerror or e}") from None


def _records(path: str | os.PathLike[str], fmt: str, limit: int | None) -> Iterator[_Rec]:
    """Yield the JSON objects of ``path`` (up to ``limit``), skipping blank lines.

    Raises:
        TraceError: missing/unreadable file, not a regular file, a file over
            :data:`MAX_TRACE_BYTES` or a line over :data:`MAX_LINE_BYTES`, a line that is
            not a JSON object, or a file with no records at all (raised after the last line).
    """
    spath = os.fspath(path)
    n = 0
    with _open_trace(spath) as fh:
        for lineno, raw in enumerate(iter(lambda: fh.readline(MAX_LINE_BYTES + 1), b""), start=1):
            if len(raw) > MAX_LINE_BYTES:
                raise TraceError(spath, lineno, None, f"line longer than {MAX_LINE_BYTES:,} bytes")
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
                raise TraceError(spath, lineno, None, f"malformed JSON ({e})") from None
            except RecursionError:
                raise TraceError(spath, lineno, None, "malformed JSON (nested too deeply)") from None
            if not isinstance(obj, dict):
                raise TraceError(spath, lineno, None,
                                 f"must be a JSON object (got {type(obj).__name__})")
            yield _Rec(spath, lineno, obj, fmt)
            n += 1
            if limit is not None and n >= limit:
                return
    if n == 0:
        raise TraceError(spath, None, None, "empty file (no records)")


def _check_order(rec: _Rec, field: str, value, prev) -> None:
    if prev is not None and value < prev:
        raise rec.error(field, f"must be non-decreasing (got {value} after {prev})")


class _Budget:
    """Per-line size checks shared by the loaders: the request must fit one instance's KV
    memory (``kv_capacity_tokens``, if given) and the trace's prompt units must stay within
    :data:`MAX_TOTAL_UNITS`. Both are checked on the line, before any prompt is built."""

    def __init__(self, kv_capacity_tokens: int | None) -> None:
        if kv_capacity_tokens is not None and (type(kv_capacity_tokens) is not int or kv_capacity_tokens < 1):
            raise ValueError(f"kv_capacity_tokens must be None or an int >= 1 (got {kv_capacity_tokens!r})")
        self.kv, self.units = kv_capacity_tokens, 0

    def add(self, rec: _Rec, inp: int, out: int, bs: int) -> None:
        units = -(-inp // bs)
        need = units * bs + out  # the simulator's rule: whole blocks of prompt + the output
        if self.kv is not None and need > self.kv:
            raise rec.error("input_length" if "input_length" in rec.obj else "input_len",
                            f"the request needs {need:,} KV tokens (prompt in {bs}-token blocks + "
                            f"output), more than one instance's KV capacity of {self.kv:,} "
                            f"tokens: no instance could ever hold it")
        self.units += units
        if self.units > MAX_TOTAL_UNITS:
            raise rec.error(None, f"the trace holds more than {MAX_TOTAL_UNITS:,} prompt units "
                                  f"(blocks of {bs} tokens) up to this line; load fewer requests "
                                  f"(--limit / limit=)")


def _check_timestamps(path, n: int, duration: float, assumed: str, other: str,
                      field: str = "timestamp") -> None:
    """Warn (:class:`TraceWarning`) when ``n`` arrivals over ``duration`` seconds imply an
    implausible rate or duration: the timestamps are probably in another unit."""
    rate = n / duration if duration > 0 else math.inf
    lo, hi = PLAUSIBLE_RATE
    odd = duration > PLAUSIBLE_DURATION_S or (n >= 50 and duration > 0 and not lo <= rate <= hi)
    if odd:
        warnings.warn(TraceWarning(
            f"{os.fspath(path)}: field {field!r} read as {assumed}: {n:,} requests over "
            f"{duration:,.6g} s ({rate:,.4g} requests/s); this looks like timestamps in "
            f"{other}. Plausible: {lo:g}-{hi:g} requests/s and at most "
            f"{PLAUSIBLE_DURATION_S / 3600:g} h"), stacklevel=3)


# --------------------------------------------------------------------------- loaders


def load_mooncake(path: str | os.PathLike[str], *, limit: int | None = None,
                  kv_capacity_tokens: int | None = None) -> Workload:
    """Load a Mooncake trace (e.g. ``mooncake_conversation.jsonl``).

    Args:
        path: JSONL file, one object per line with ``timestamp`` (ms from trace start,
            int or float, non-decreasing), ``input_length`` and ``output_length``
            (tokens, ints >= 1) and ``hash_ids`` (non-empty list of int, one per
            512-token block, prefix-chained). Extra keys are ignored.
        limit: read only the first ``limit`` records (None: all).
        kv_capacity_tokens: if given, a request needing more KV tokens (512-token blocks of
            prompt + output) is an error at its line: no instance could ever hold it.

    Returns:
        A workload with ``block_size == 512``; ``arrival = timestamp / 1000`` (s);
        ``prompt = tuple(hash_ids)``. The file has no client field, so the client (prefix
        class) is derived: **client = ``f"c{hash_ids[1]}"``**, the first block after the
        shared system-prompt block 0 (hash ids are prefix-chained, so this names the class
        of the first 1024 prompt tokens); a request with a single block gets the class
        ``"sys-only"``. On ``mooncake_conversation.jsonl`` this gives 7,373 classes for
        12,031 requests; the largest has 43 requests (0.36%); 5,114 classes have a single
        request; 2,259 classes with >= 2 requests hold 6,917 requests (57%); no request
        is ``sys-only`` (the shortest prompt is 891 tokens).
        ``meta`` holds ``format``, ``client_rule``, ``timestamp_unit`` and
        ``hash_ids_adjusted``.

    Length check: ``len(hash_ids)`` must be ``ceil(input_length / 512)``. The real
    trace matches on every line; an off-by-one is tolerated (one trailing id too many
    is dropped; one too few gets a fresh id, larger than every id in the file,
    appended) and counted in ``meta["hash_ids_adjusted"]``. A larger difference is an
    error.

    Raises:
        TraceError: missing, empty, non-regular or oversized file, malformed JSON, a
            missing field, a wrong type, a length < 1 or > :data:`MAX_REQUEST_TOKENS`, a
            request over ``kv_capacity_tokens``, more than :data:`MAX_TOTAL_UNITS` units, a
            negative or decreasing timestamp, ``hash_ids`` inconsistent with
            ``input_length`` by more than one block.
        ValueError: ``limit`` is not None or an int >= 1.

    Warns:
        TraceWarning: timestamps implying an implausible rate or duration (seconds
            given where milliseconds are expected).
    """
    _check_limit(limit)
    budget = _Budget(kv_capacity_tokens)
    bs = MOONCAKE_BLOCK_SIZE
    rows: list[tuple[float, str, list[int], int, int]] = []
    prev = None
    max_id = -1
    for rec in _records(path, "mooncake", limit):
        ts = rec.time("timestamp")
        _check_order(rec, "timestamp", ts, prev)
        prev = ts
        inp = rec.length("input_length")
        out = rec.length("output_length")
        budget.add(rec, inp, out, bs)
        ids = rec.int_list("hash_ids")
        need = -(-inp // bs)
        if abs(len(ids) - need) > 1:
            raise rec.error("hash_ids", f"has {len(ids)} blocks but input_length {inp} needs "
                                        f"ceil({inp}/{bs}) = {need} (off by more than one)")
        client = f"c{ids[1]}" if len(ids) > 1 else "sys-only"
        max_id = max(max_id, max(ids))
        rows.append((ts / 1000.0, client, ids, inp, out))

    adjusted = 0
    reqs = []
    for i, (t, client, ids, inp, out) in enumerate(rows):
        need = -(-inp // bs)
        if len(ids) != need:
            adjusted += 1
            if len(ids) > need:
                ids = ids[:need]
            else:
                max_id += 1
                ids = [*ids, max_id]
        reqs.append(Request(i, t, client, tuple(ids), inp, out, bs))
    meta = {"format": "mooncake", "client_rule": MOONCAKE_CLIENT_RULE, "timestamp_unit": "ms",
            "hash_ids_adjusted": adjusted}
    w = Workload(reqs, name=Path(path).stem, block_size=bs, source=os.fspath(path), meta=meta)
    _check_timestamps(path, len(w), w.duration, "milliseconds (ms)", "seconds")
    return w


def load_vtc(path: str | os.PathLike[str], *, limit: int | None = None,
             block_size: int = 16, kv_capacity_tokens: int | None = None) -> Workload:
    """Load a VTC / LMSYS trace (e.g. ``lmsys_vtc_27clients.jsonl``).

    Args:
        path: JSONL file, one object per line with ``timestamp`` (s, number,
            non-decreasing), ``client`` (non-empty str), ``input_length`` and
            ``output_length`` (tokens, ints >= 1). Extra keys are ignored.
        limit: read only the first ``limit`` records (None: all).
        block_size: tokens per prompt unit (int >= 1).
        kv_capacity_tokens: as for :func:`load_mooncake`.

    Returns:
        A workload with the given ``block_size``. The trace has no prefix information,
        so every prompt is unique: request ``i`` gets ``ceil(input_length / block_size)``
        fresh unit ids from one counter (0, 1, 2, ... in file order); no two requests
        share a unit.

    Raises:
        TraceError: as for :func:`load_mooncake` (file, JSON, fields, types, lengths,
            sizes, timestamps).
        ValueError: bad ``limit`` or ``block_size``.

    Warns:
        TraceWarning: implausible rate or duration (milliseconds given as seconds).
    """
    _check_limit(limit)
    if type(block_size) is not int or block_size < 1:
        raise ValueError(f"block_size must be an int >= 1 (got {block_size!r})")
    budget = _Budget(kv_capacity_tokens)
    rows = []
    prev = None
    for rec in _records(path, "vtc", limit):
        ts = rec.time("timestamp")
        _check_order(rec, "timestamp", ts, prev)
        prev = ts
        client = rec.string("client")
        inp = rec.length("input_length")
        out = rec.length("output_length")
        budget.add(rec, inp, out, block_size)
        rows.append((float(ts), client, inp, out))
    reqs = []
    nxt = 0
    for i, (t, client, inp, out) in enumerate(rows):
        n = -(-inp // block_size)
        reqs.append(Request(i, t, client, tuple(range(nxt, nxt + n)), inp, out, block_size))
        nxt += n
    meta = {"format": "vtc", "timestamp_unit": "s", "prompts": "unique"}
    w = Workload(reqs, name=Path(path).stem, block_size=block_size, source=os.fspath(path),
                 meta=meta)
    _check_timestamps(path, len(w), w.duration, "seconds (s)", "milliseconds")
    return w


def load_jsonl(path: str | os.PathLike[str], *, limit: int | None = None,
               kv_capacity_tokens: int | None = None) -> Workload:
    """Load a trace in the project's generic JSONL schema (the one :func:`save_jsonl` writes).

    Args:
        path: JSONL file, one object per line with ``arrival_s`` (s, number >= 0,
            non-decreasing), ``client`` (non-empty str), ``input_len`` and ``output_len``
            (tokens, ints >= 1), optional ``prompt`` (list of int prompt units with
            ``(len-1)*block_size < input_len <= len*block_size``) and optional
            ``block_size`` (int >= 1). A line's effective block size is its
            ``block_size``, else 1 if it has a ``prompt``, else 16; it must be the same on
            every line. Lines without ``prompt`` get ``ceil(input_len/block_size)`` fresh
            unit ids, all larger than every id given in the file. No other keys allowed.
        limit: read only the first ``limit`` records (None: all).
        kv_capacity_tokens: as for :func:`load_mooncake`.

    Returns:
        A workload named after the file stem with ``source = path`` (name and meta are
        not stored in the file).

    Raises:
        TraceError: file/JSON/field/type/length/timestamp problems as for the other
            loaders, an unknown key, a ``prompt`` whose length does not fit
            ``input_len``, a block size that differs from the first line's.
        ValueError: bad ``limit``.
    """
    _check_limit(limit)
    budget = _Budget(kv_capacity_tokens)
    rows = []
    prev = None
    bs0 = None  # (block_size, line) of the first record
    max_id = -1
    for rec in _records(path, "jsonl", limit):
        t = rec.time("arrival_s")
        _check_order(rec, "arrival_s", t, prev)
        prev = t
        client = rec.string("client")
        inp = rec.length("input_len")
        out = rec.length("output_len")
        for k in rec.obj:
            if k not in _JSONL_KEYS:
                raise rec.error(k, f"unknown field (allowed: {', '.join(sorted(_JSONL_KEYS))})")
        prompt = rec.int_list("prompt") if "prompt" in rec.obj else None
        bs = (rec.integer("block_size", 1, MAX_REQUEST_TOKENS) if "block_size" in rec.obj
              else _JSONL_DEFAULT_BLOCK[prompt is not None])
        if bs0 is None:
            bs0 = (bs, rec.line)
        elif bs != bs0[0]:
            raise rec.error("block_size", f"must be the same on all lines (got {bs}, line "
                                          f"{bs0[1]} has {bs0[0]}; default is 1 with a "
                                          f"prompt, 16 without)")
        if prompt is not None:
            n = len(prompt)
            if not (n - 1) * bs < inp <= n * bs:
                raise rec.error("prompt", f"has {n} units but input_len {inp} with block_size "
                                          f"{bs} needs ceil({inp}/{bs}) = {-(-inp // bs)}")
            max_id = max(max_id, max(prompt))
        budget.add(rec, inp, out, bs)
        rows.append((float(t), client, prompt, inp, out))
    bs = bs0[0]
    reqs = []
    nxt = max_id + 1
    for i, (t, client, prompt, inp, out) in enumerate(rows):
        if prompt is None:
            n = -(-inp // bs)
            units = tuple(range(nxt, nxt + n))
            nxt += n
        else:
            units = tuple(prompt)
        reqs.append(Request(i, t, client, units, inp, out, bs))
    w = Workload(reqs, name=Path(path).stem, block_size=bs, source=os.fspath(path),
                 meta={"format": "jsonl"})
    _check_timestamps(path, len(w), w.duration, "seconds (s)", "milliseconds", "arrival_s")
    return w


def save_jsonl(workload: Workload, path: str | os.PathLike[str]) -> Path:
    """Write ``workload`` in the generic JSONL schema, atomically; returns the path.

    Every line has ``arrival_s``, ``client``, ``input_len``, ``output_len``, ``prompt``
    and ``block_size``, so ``load_jsonl(save_jsonl(w, p))`` gives back the same requests
    (rid, arrival, client, prompt, lengths, block size; floats are written with Python's
    shortest round-trip repr). The workload's name, source and meta are not stored.
    The file is written to a temporary file in the same directory, then renamed over
    ``path``; parent directories are created.

    Raises:
        ValueError: a non-finite arrival or a non-string client (nothing is written).
    """
    out = Path(path)
    lines = []
    for r in workload.requests:
        if not isinstance(r.client, str):
            raise ValueError(f"request {r.rid}: client must be a str (got {r.client!r})")
        rec = {"arrival_s": float(r.arrival), "client": r.client, "input_len": int(r.input_len),
               "output_len": int(r.output_len), "prompt": [int(u) for u in r.prompt],
               "block_size": int(workload.block_size)}
        try:
            lines.append(json.dumps(rec, separators=(",", ":"), allow_nan=False))
        except ValueError:
            raise ValueError(f"request {r.rid}: arrival must be finite (got {r.arrival!r})") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "".join(line + "\n" for line in lines))
    return out


def sniff_format(path: str | os.PathLike[str]) -> str:
    """Guess the format of ``path`` from the keys of its first non-blank line.

    ``hash_ids`` -> ``"mooncake"``; ``arrival_s`` -> ``"jsonl"``; ``timestamp`` and
    ``client`` -> ``"vtc"``.

    Raises:
        TraceError: missing or empty file, malformed first line, or unrecognised keys.
    """
    for rec in _records(path, "jsonl", 1):
        guess = _guess_format(rec.obj)
        if guess is None:
            raise rec.error(None, f"cannot tell the format from the keys {sorted(rec.obj)}; "
                                  f"pass format= one of {', '.join(map(repr, FORMATS))}")
        return guess
    raise AssertionError("unreachable: _records raises on an empty file")  # pragma: no cover


def load_trace(path: str | os.PathLike[str], format: str | None = None, **options) -> Workload:
    """Load ``path`` with the loader for ``format`` (``"mooncake"``, ``"vtc"``, ``"jsonl"``).

    ``format=None`` sniffs the format from the first line (:func:`sniff_format`).
    ``options`` go to the loader (``limit`` and ``kv_capacity_tokens`` for all;
    ``block_size`` for ``vtc``).

    Raises:
        TraceError: an unknown ``format`` (the message lists the allowed ones), or
            anything the chosen loader raises.
        TypeError: an option the chosen loader does not take.
    """
    if format is None:
        format = sniff_format(path)
    loaders = {"mooncake": load_mooncake, "vtc": load_vtc, "jsonl": load_jsonl}
    if format not in loaders:
        raise TraceError(path, None, None, f"unknown format {format!r} "
                                           f"(allowed: {', '.join(map(repr, FORMATS))})")
    return loaders[format](path, **options)
