"""Reading and checking trace records for :mod:`fairsched.workload.loaders`: the formats'
constants and limits, one record a line with its file and line number, and the checks every
loader shares (file type and size, order, budgets, plausible timestamp units).

Errors raise :class:`~fairsched.workload.errors.TraceError` naming file, line and field;
implausible units warn with :class:`~fairsched.workload.errors.TraceWarning`.
"""

from __future__ import annotations

import json
import math
import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

from .errors import TraceError, TraceWarning

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


def _json_error(raw: bytes) -> str:
    """What is wrong with the malformed JSON line ``raw`` and at which column of it (json's own
    "line 2 column 1" would count the line's newline)."""
    try:
        json.loads(raw.rstrip(b"\r\n"))
    except json.JSONDecodeError as e:
        return f"{e.msg} at column {e.colno}"
    return "malformed"  # pragma: no cover (raw failed to parse with its newline, so it fails without)


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
            except json.JSONDecodeError:
                raise TraceError(spath, lineno, None, f"malformed JSON ({_json_error(raw)})") from None
            except ValueError as e:  # UnicodeDecodeError
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
