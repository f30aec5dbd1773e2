"""The machinery behind :mod:`fairsched.workload.generators`: prompt-unit minting
(:class:`_Minter`), argument validation, arrival processes and the row makers of each
request pattern. Private to the workload package (the generators and :mod:`.hotspot`)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from .request import Workload, make_workload

Length = int | tuple[int, int]
Segment = tuple[int, int]  # (segment id, tokens)
Row = tuple[float, str, tuple[int, ...], int, int]  # make_workload row


class _Minter:
    """Mints fresh ids for one generator call from a single counter.

    ``segment(n)`` gives a new piece of content of ``n`` tokens; ``units(segments)`` gives
    the prefix-chained unit ids of a prompt made of those segments (see module doc).
    """

    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self._next = 0
        self._blocks: dict[tuple[int, tuple[tuple[int, int, int], ...]], int] = {}
        self._first: dict[Segment, tuple] = {}  # first segment -> chain state after it

    def fresh(self) -> int:
        """A new id, never returned before by this minter."""
        self._next += 1
        return self._next - 1

    def segment(self, n_tokens: int) -> Segment:
        """A new piece of content of ``n_tokens`` tokens (>= 0)."""
        return (self.fresh(), n_tokens)

    def _block(self, parent: int, content: tuple[tuple[int, int, int], ...]) -> int:
        key = (parent, content)
        uid = self._blocks.get(key)
        if uid is None:
            uid = self._blocks[key] = self.fresh()
        return uid

    def units(self, segments: Sequence[Segment]) -> tuple[tuple[int, ...], int]:
        """``(prompt units, input_len)`` of the prompt ``segments`` concatenated.

        A block's content is the tuple of ``(segment id, start, end)`` pieces it covers.
        """
        bs = self.block_size
        out: list[int] = []
        parent = -1
        piece: list[tuple[int, int, int]] = []
        fill = 0
        segments = tuple(segments)
        rest = segments
        if len(segments) > 1:  # a shared first segment (a document) is chained once, then resumed
            first = self._first.get(segments[0])
            if first is not None:
                out, parent, piece, fill = list(first[0]), first[1], list(first[2]), first[3]
                rest = segments[1:]
        for k, (sid, length) in enumerate(rest):
            if k == 1 and rest is segments:
                self._first[segments[0]] = (tuple(out), parent, tuple(piece), fill)
            pos = 0
            while pos < length:
                take = min(bs - fill, length - pos)
                piece.append((sid, pos, pos + take))
                pos += take
                fill += take
                if fill == bs:
                    parent = self._block(parent, tuple(piece))
                    out.append(parent)
                    piece, fill = [], 0
        if piece:
            out.append(self._block(parent, tuple(piece)))
        return tuple(out), sum(n for _, n in segments)


# --------------------------------------------------------------------------- validation


def _int(name: str, v, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo} (got {v!r})")
    return int(v)


def _pos(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0 (got {v!r})")
    return float(v)


def _length(name: str, spec, lo: int = 1) -> tuple[int, int]:
    """Normalise a length spec (int or ``(lo, hi)``) to an inclusive range."""
    if isinstance(spec, numbers.Integral) and not isinstance(spec, bool):
        _int(name, spec, lo)
        return (int(spec), int(spec))
    if isinstance(spec, Sequence) and not isinstance(spec, str) and len(spec) == 2:
        a, b = spec
        ok = all(isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in spec)
        if ok and lo <= a <= b:
            return (int(a), int(b))
    raise ValueError(f"{name} must be an int >= {lo} or a pair (lo, hi) with {lo} <= lo <= hi "
                     f"(got {spec!r})")


def _seed(seed) -> int:
    return _int("seed", seed, 0)


def _block_size(bs) -> int:
    return _int("block_size", bs, 1)


# --------------------------------------------------------------------------- helpers


def _draw(rng: np.random.Generator, rng_spec: tuple[int, int]) -> int:
    lo, hi = rng_spec
    return lo if lo == hi else int(rng.integers(lo, hi + 1))


def _poisson(rng: np.random.Generator, rate: float, n: int, start: float = 0.0) -> list[float]:
    """``n`` Poisson arrival times (s) at ``rate`` per second after ``start``."""
    return (start + np.cumsum(rng.exponential(1.0 / rate, n))).tolist()


def _gap(rng: np.random.Generator, mean: float) -> float:
    """A follow-up delay (s): ``mean * (0.5 + Exp(0.5))``, at least ``mean / 2``."""
    return mean * (0.5 + float(rng.exponential(0.5)))


def _build(rows: list[Row], *, generator: str, name: str, block_size: int,
           params: dict) -> Workload:
    w = make_workload(rows, block_size=block_size, name=name,
                      source=f"fairsched.workload.generators.{generator}")
    w.meta = {"generator": generator, **params}
    return w


def _clip(rows: list[Row], horizon: float | None) -> list[Row]:
    return rows if horizon is None else [r for r in rows if r[0] < horizon]


# --------------------------------------------------------------------------- row makers
# Each ``_rows_*`` takes an rng, a minter and already validated arguments, and returns
# make_workload rows; ``horizon`` (s) drops requests arriving at or after it.


def _rows_doc_qa(rng, m: _Minter, clients: Sequence[str], questions: int, doc: tuple[int, int],
                 question: tuple[int, int], output: tuple[int, int], rate: float,
                 horizon: float | None = None) -> list[Row]:
    rows: list[Row] = []
    for c in clients:
        d = m.segment(_draw(rng, doc))
        for t in _poisson(rng, rate, questions):
            units, n = m.units([d, m.segment(_draw(rng, question))])
            rows.append((t, c, units, n, _draw(rng, output)))
    return _clip(rows, horizon)


def _rows_chat(rng, m: _Minter, clients: Sequence[str], conversations: int, turns: int,
               user: tuple[int, int], output: tuple[int, int], think_time: float,
               horizon: float | None = None) -> list[Row]:
    rows: list[Row] = []
    for c in clients:
        t = float(rng.uniform(0.0, think_time))
        for _ in range(conversations):
            history: list[Segment] = []
            for _k in range(turns):
                history.append(m.segment(_draw(rng, user)))
                units, n = m.units(history)
                out = _draw(rng, output)
                rows.append((t, c, units, n, out))
                history.append(m.segment(out))  # the answer becomes part of the next prompt
                t += _gap(rng, think_time)
    return _clip(rows, horizon)


def _rows_tot(rng, m: _Minter, clients: Sequence[str], trees: int, depth: int, branching: int,
              prefix: tuple[int, int], question: tuple[int, int], thought: tuple[int, int],
              output: tuple[int, int], rate: float, step_time: float,
              horizon: float | None = None) -> list[Row]:
    rows: list[Row] = []
    for c in clients:
        shared = [m.segment(_draw(rng, prefix))] if prefix[1] > 0 else []
        for t0 in _poisson(rng, rate, trees):
            level = [(t0, [*shared, m.segment(_draw(rng, question))])]
            for d in range(depth):
                nxt = []
                for t, segs in level:
                    units, n = m.units(segs)
                    rows.append((t, c, units, n, _draw(rng, output)))
                    if d + 1 < depth:
                        nxt += [(t + _gap(rng, step_time), [*segs, m.segment(_draw(rng, thought))])
                                for _ in range(branching)]
                level = nxt
    return _clip(rows, horizon)


def _rows_judge(rng, m: _Minter, clients: Sequence[str], per_client: int, rubric: tuple[int, int],
                answer: tuple[int, int], output: tuple[int, int], rate: float, shared: bool,
                horizon: float | None = None) -> list[Row]:
    rows: list[Row] = []
    common = m.segment(_draw(rng, rubric)) if shared else None
    for c in clients:
        r = common if shared else m.segment(_draw(rng, rubric))
        for t in _poisson(rng, rate, per_client):
            units, n = m.units([r, m.segment(_draw(rng, answer))])
            rows.append((t, c, units, n, _draw(rng, output)))
    return _clip(rows, horizon)


def _rows_unique(rng, m: _Minter, clients: Sequence[str], rates: Sequence[float],
                 inp: tuple[int, int], output: tuple[int, int], duration: float) -> list[Row]:
    rows: list[Row] = []
    for c, rate in zip(clients, rates, strict=True):
        t = float(rng.exponential(1.0 / rate))
        while t < duration:
            units, n = m.units([m.segment(_draw(rng, inp))])
            rows.append((t, c, units, n, _draw(rng, output)))
            t += float(rng.exponential(1.0 / rate))
    return rows
