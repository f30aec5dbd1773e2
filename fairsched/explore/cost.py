"""What :func:`~fairsched.explore.cost_explorer` computes, as plain functions.

Cost surfaces evaluate the simulator's own :class:`~fairsched.sim.cost.CostModel` methods
(``prefill_time``, ``decode_time``) on a grid, so the picture is the model the simulator
runs; the P-token blind spot (LMetric's ``P`` ranks an instance cheaper by new tokens while
its prefill costs more, ``proofs/lmetric_blind_spot.md``) is shown two ways that must agree:
the region computed from the cost model and the threshold ``h*`` of
:func:`fairsched.theory.lmetric.blind_spot_threshold`. Units: tokens, sequences, seconds.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import sympy as sp

__all__ = ["blind_spot_region", "blind_spot_threshold_curve", "calibration_points", "decode_surface",
           "prefill_surface"]


def prefill_surface(cost, n_max: int = 4096, h_max: int = 32768, steps: int = 48):
    """Prefill seconds ``cost.prefill_time(n, h)`` on a grid: returns ``(ns, hs, Z)`` with
    ``Z[i, j] = prefill_time(ns[j], hs[i])`` (n new tokens in 1..n_max, h cached in 0..h_max)."""
    ns = np.unique(np.linspace(1, n_max, steps).round().astype(int))
    hs = np.unique(np.linspace(0, h_max, steps).round().astype(int))
    Z = np.array([[cost.prefill_time(int(n), int(h)) for n in ns] for h in hs])
    return ns, hs, Z


def decode_surface(cost, b_max: int = 256, c_max: int = 400_000, steps: int = 48):
    """Decode-step seconds ``cost.decode_time(B, C)``: ``(bs, cs, Z)`` with
    ``Z[i, j] = decode_time(bs[j], cs[i])`` (B sequences in 1..b_max, C context tokens in
    0..c_max)."""
    bs = np.unique(np.linspace(1, b_max, steps).round().astype(int))
    cs = np.unique(np.linspace(0, c_max, steps).round().astype(int))
    Z = np.array([[cost.decode_time(int(b), int(c)) for b in bs] for c in cs])
    return bs, cs, Z


def blind_spot_region(cost, n2: int, h2: int, ns, hs) -> np.ndarray:
    """Boolean ``R[i, j]``: an instance needing ``n1 = ns[j] < n2`` new tokens after
    ``h1 = hs[i]`` cached ones is ranked cheaper by ``P`` (fewer new tokens) than the
    reference instance ``(n2, h2)`` but takes longer to prefill by the cost model."""
    ref = cost.prefill_time(int(n2), int(h2))
    return np.array([[(n < n2) and cost.prefill_time(int(n), int(h)) > ref for n in ns] for h in hs], dtype=bool)


@functools.lru_cache(maxsize=1)
def _threshold_fn():
    from fairsched.theory import symbols as S
    from fairsched.theory.lmetric import blind_spot_threshold

    n1, n2, h2 = sp.symbols("n_1 n_2 h_2", positive=True)
    return sp.lambdify((n1, n2, h2, S.c_b, S.c_c), blind_spot_threshold(general=True), "numpy")


def blind_spot_threshold_curve(cost, n2: int, h2: int, ns) -> np.ndarray:
    """``h*(n1)`` [tokens] from :func:`fairsched.theory.lmetric.blind_spot_threshold` with the
    cost model's ``b``, ``c``: above it (and ``n1 < n2``) the blind spot holds; NaN where
    ``n1 >= n2`` or ``c = 0`` (no attention term, no blind spot)."""
    ns = np.asarray(ns, dtype=float)
    if cost.prefill_c <= 0:
        return np.full(ns.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = _threshold_fn()(ns, float(n2), float(h2), cost.prefill_b, cost.prefill_c)
    return np.where(ns < n2, h, np.nan)


def calibration_points(path) -> tuple[object, pd.DataFrame, pd.DataFrame]:
    """Read a ``cost.json`` written by ``fairsched calibrate``: ``(cost_model, prefill,
    decode)`` where ``prefill`` has columns ``n, h, seconds`` and ``decode`` ``batch,
    context, seconds`` (the measured points; empty frames if the file has none).

    Raises:
        ValueError: naming the file (and field) when it cannot be read as a cost model.
    """
    from fairsched.sim.cost import CostModel

    cm = CostModel.load(path)
    meas = (json.loads(Path(path).read_text()) or {}).get("measurements") or {}

    def frame(key, cols):
        try:
            df = pd.DataFrame(meas.get(key) or {})
        except ValueError as e:
            raise ValueError(f"{path}: field 'measurements.{key}' is not a table ({e})") from None
        if len(df) and not set(cols) <= set(df.columns):
            raise ValueError(f"{path}: field 'measurements.{key}' needs columns {cols}")
        return df[cols] if len(df) else pd.DataFrame(columns=cols)

    return cm, frame("prefill", ["n", "h", "seconds"]), frame("decode", ["batch", "context", "seconds"])
