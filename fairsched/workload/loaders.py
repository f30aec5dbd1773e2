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
:data:`~fairsched.workload._records.MAX_TRACE_BYTES` (a FIFO or ``/dev/zero`` is an error, not a hang), lines of at most
:data:`~fairsched.workload._records.MAX_LINE_BYTES`, lengths of at most :data:`MAX_REQUEST_TOKENS` tokens, at most
:data:`~fairsched.workload._records.MAX_TOTAL_UNITS` prompt units, and (``kv_capacity_tokens=``) no request larger than
an instance's KV memory, each rejected at its line before any prompt is built. Timestamps
that imply an implausible rate or duration (:data:`PLAUSIBLE_RATE`,
:data:`PLAUSIBLE_DURATION_S`) raise a :class:`TraceWarning` naming the unit assumed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..output import atomic_write_text
from ._records import (
    _JSONL_DEFAULT_BLOCK,
    _JSONL_KEYS,
    FORMATS,
    MAX_REQUEST_TOKENS,
    MOONCAKE_BLOCK_SIZE,
    MOONCAKE_CLIENT_RULE,
    _Budget,
    _check_limit,
    _check_order,
    _check_timestamps,
    _guess_format,
    _records,
    shared_data_dir,
)
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
            request over ``kv_capacity_tokens``, more than :data:`~fairsched.workload._records.MAX_TOTAL_UNITS` units, a
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
