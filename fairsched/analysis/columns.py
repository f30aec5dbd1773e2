"""Per-request columns of a simulation result, read once (numpy arrays, no Python object per
request), and the per-result cache the analysis keeps them in (:func:`memo`). A module of its
own so that :mod:`fairsched.analysis.metrics` (which :mod:`fairsched.sim.result` imports) need
not import the simulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

__all__ = ["memo", "request_arrays"]

T = TypeVar("T")


def _same(a: tuple, b: tuple) -> bool:
    """Same inputs: the same objects (``is``), ints and bools equal."""
    return len(a) == len(b) and all(x == y if isinstance(x, int) else x is y for x, y in zip(a, b, strict=True))


def memo(result, name: str, inputs: tuple, compute: Callable[[], T]) -> T:
    """``compute()``, kept in ``result.analysis_cache[name]`` with the ``inputs`` it was computed
    from and returned again while ``result`` holds the same inputs (the same objects, compared
    with ``is``; sizes with ``==``). Without an ``analysis_cache`` (hand-built logs) nothing is
    kept. The cache holds its inputs, so an input cannot be freed and another object take its
    place unnoticed."""
    cache = getattr(result, "analysis_cache", None)
    if cache is None:
        return compute()
    hit = cache.get(name)
    if hit is not None and _same(hit[0], inputs):
        return hit[1]
    value = compute()
    cache[name] = (inputs, value)
    return value


def request_arrays(result) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-request columns of ``result.workload``, read once per result (a million
    ``Request`` objects take seconds to walk): ``(arrival [s], client index into
    ``result.clients`` (int64), input_len, output_len [tokens])``, shape ``(n_requests,)``."""
    wl = result.workload

    def read():
        n = len(wl)
        arr = np.fromiter((r.arrival for r in wl), dtype=float, count=n)
        cidx = {c: i for i, c in enumerate(result.clients)}
        cl = np.fromiter((cidx[r.client] for r in wl), dtype=np.int64, count=n)
        inp = np.fromiter((r.input_len for r in wl), dtype=float, count=n)
        out = np.fromiter((r.output_len for r in wl), dtype=float, count=n)
        return arr, cl, inp, out

    return memo(result, "request_arrays", (wl, len(wl), result.clients), read)
