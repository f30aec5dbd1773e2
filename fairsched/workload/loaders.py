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
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from .errors import TraceError
from .request import Request, Workload

__all__ = [
    "FORMATS",
    "MOONCAKE_BLOCK_SIZE",
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

    def integer(self, field: str, min_value: int = 1) -> int:
        v = self.get(field)
        if type(v) is not int:  # rejects bool, float and str
            raise self.error(field, f"must be an integer (got {v!r})")
        if v < min_value:
            raise self.error(field, f"must be >= {min_value} (got {v})")
        return v

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


def _records(path: str | os.PathLike[str], fmt: str, limit: int | None) -> Iterator[_Rec]:
    """Yield the JSON objects of ``path`` (up to ``limit``), skipping blank lines.

    Raises:
        TraceError: missing/unreadable file, a line that is not a JSON object, or a file
            with no records at all (raised after the last line).
    """
    spath = os.fspath(path)
    try:
        fh = open(spath, "rb")
    except FileNotFoundError:
        raise TraceError(spath, None, None, "file not found") from None
    except IsADirectoryError:
        raise TraceError(spath, None, None, "is a directory, not a trace file") from None
    except OSError as e:
        raise TraceError(spath, None, None, f"cannot open: {e.strerror or e}") from None
    n = 0
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
                raise TraceError(spath, lineno, None, f"malformed JSON ({e})") from None
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


# --------------------------------------------------------------------------- loaders


def load_mooncake(path: str | os.PathLike[str], *, limit: int | None = None) -> Workload:
    """Load a Mooncake trace (e.g. ``mooncake_conversation.jsonl``).

    Args:
        path: JSONL file, one object per line with ``timestamp`` (ms from trace start,
            int or float, non-decreasing), ``input_length`` and ``output_length``
            (tokens, ints >= 1) and ``hash_ids`` (non-empty list of int, one per
            512-token block, prefix-chained). Extra keys are ignored.
        limit: read only the first ``limit`` records (None: all).

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
        TraceError: missing or empty file, malformed JSON, a missing field, a wrong type,
            a length < 1, a negative or decreasing timestamp, ``hash_ids`` inconsistent
            with ``input_length`` by more than one block.
        ValueError: ``limit`` is not None or an int >= 1.
    """
    _check_limit(limit)
    bs = MOONCAKE_BLOCK_SIZE
    rows: list[tuple[float, str, list[int], int, int]] = []
    prev = None
    max_id = -1
    for rec in _records(path, "mooncake", limit):
        ts = rec.time("timestamp")
        _check_order(rec, "timestamp", ts, prev)
        prev = ts
        inp = rec.integer("input_length")
        out = rec.integer("output_length")
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
    return Workload(reqs, name=Path(path).stem, block_size=bs, source=os.fspath(path), meta=meta)


def load_vtc(path: str | os.PathLike[str], *, limit: int | None = None,
             block_size: int = 16) -> Workload:
    """Load a VTC / LMSYS trace (e.g. ``lmsys_vtc_27clients.jsonl``).

    Args:
        path: JSONL file, one object per line with ``timestamp`` (s, number,
            non-decreasing), ``client`` (non-empty str), ``input_length`` and
            ``output_length`` (tokens, ints >= 1). Extra keys are ignored.
        limit: read only the first ``limit`` records (None: all).
        block_size: tokens per prompt unit (int >= 1).

    Returns:
        A workload with the given ``block_size``. The trace has no prefix information,
        so every prompt is unique: request ``i`` gets ``ceil(input_length / block_size)``
        fresh unit ids from one counter (0, 1, 2, ... in file order); no two requests
        share a unit.

    Raises:
        TraceError: as for :func:`load_mooncake` (file, JSON, fields, types, lengths,
            timestamps).
        ValueError: bad ``limit`` or ``block_size``.
    """
    _check_limit(limit)
    if type(block_size) is not int or block_size < 1:
        raise ValueError(f"block_size must be an int >= 1 (got {block_size!r})")
    rows = []
    prev = None
    for rec in _records(path, "vtc", limit):
        ts = rec.time("timestamp")
        _check_order(rec, "timestamp", ts, prev)
        prev = ts
        client = rec.string("client")
        inp = rec.integer("input_length")
        out = rec.integer("output_length")
        rows.append((float(ts), client, inp, out))
    reqs = []
    nxt = 0
    for i, (t, client, inp, out) in enumerate(rows):
        n = -(-inp // block_size)
        reqs.append(Request(i, t, client, tuple(range(nxt, nxt + n)), inp, out, block_size))
        nxt += n
    meta = {"format": "vtc", "timestamp_unit": "s", "prompts": "unique"}
    return Workload(reqs, name=Path(path).stem, block_size=block_size, source=os.fspath(path),
                    meta=meta)


def load_jsonl(path: str | os.PathLike[str], *, limit: int | None = None) -> Workload:
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
    rows = []
    prev = None
    bs0 = None  # (block_size, line) of the first record
    max_id = -1
    for rec in _records(path, "jsonl", limit):
        t = rec.time("arrival_s")
        _check_order(rec, "arrival_s", t, prev)
        prev = t
        client = rec.string("client")
        inp = rec.integer("input_len")
        out = rec.integer("output_len")
        for k in rec.obj:
            if k not in _JSONL_KEYS:
                raise rec.error(k, f"unknown field (allowed: {', '.join(sorted(_JSONL_KEYS))})")
        prompt = rec.int_list("prompt") if "prompt" in rec.obj else None
        bs = (rec.integer("block_size") if "block_size" in rec.obj
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
    return Workload(reqs, name=Path(path).stem, block_size=bs, source=os.fspath(path),
                    meta={"format": "jsonl"})


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
    # O_EXCL on a random name instead of tempfile.mkstemp: the file gets the usual
    # permissions (0o666 minus umask), not mkstemp's 0o600.
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:12]}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines))
            if lines:
                fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
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
    ``options`` go to the loader (``limit`` for all; ``block_size`` for ``vtc``).

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
