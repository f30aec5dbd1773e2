"""Per-request columns of a simulation result, read once (numpy arrays, no Python object per
request). A module of its own so that :mod:`fairsched.analysis.metrics` (which
:mod:`fairsched.sim.result` imports) need not import the simulator."""

from __future__ import annotations

import contextlib

import numpy as np

__all__ = ["request_arrays"]


def request_arrays(result) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-request columns of ``result.workload``, read once per result (a million
    ``Request`` objects take seconds to walk): ``(arrival [s], client index into
    ``result.clients`` (int64), input_len, output_len [tokens])``, shape ``(n_requests,)``."""
    wl = result.workload
    key = (id(wl), len(wl), id(result.clients))
    cached = getattr(result, "_request_arrays", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    n = len(wl)
    arr = np.fromiter((r.arrival for r in wl), dtype=float, count=n)
    cidx = {c: i for i, c in enumerate(result.clients)}
    cl = np.fromiter((cidx[r.client] for r in wl), dtype=np.int64, count=n)
    inp = np.fromiter((r.input_len for r in wl), dtype=float, count=n)
    out = np.fromiter((r.output_len for r in wl), dtype=float, count=n)
    cols = (arr, cl, inp, out)
    with contextlib.suppress(AttributeError):
        result._request_arrays = (key, cols)
    return cols
