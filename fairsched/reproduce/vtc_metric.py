"""The service-difference metric behind VTC's real-trace table ("Max Diff").

Not the same quantity as :func:`fairsched.analysis.metrics.max_service_gap` (the largest
difference in *cumulative* service, in service units, between two clients over an
interval in which both are backlogged). VTC's table (OSDI'24, Sec. 5.3; artifact
``fair_bench/plot/plot_revision.py`` with ``visualize.get_service_diff_over_time``)
measures *rates* over fixed windows, from the responses only:

- ticks ``x_k = (T - warmup) / num_x * k`` for ``k = 1 .. num_x - 1``, each with the
  window ``[x_k + warmup - window/2, x_k + warmup + window/2]`` (T = 600 s, num_x = 20,
  window = 60 s, warmup = 30 s);
- a request's service ``w_p * prompt_len + w_q * output_len`` (its *whole* prompt, no
  cache) is spread uniformly over ``[first token, finish]``; requests that finish before
  1 s or whose decode lasts under 1e-5 s (one output token) are left out;
- ``y_j``: client j's service inside the window / window length (service units / s);
  ``q_j``: the service of client j's requests that *arrived* in the window / window
  length (its demand);
- per tick: ``sum_j min(max_i y_i - y_j, |q_j - y_j|)``, client j's shortfall against the
  best-served client, capped by how far j's service is from its own demand (so a client
  that got what it asked for counts 0);
- "Max Diff" = the maximum over the ticks.

Clients are those with at least one (kept) request. Dropped requests (RPM) are simply not
in the workload, as in the artifact, which removes aborted responses first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

T_S = 600.0
NUM_X = 20
WINDOW_S = 60.0
WARMUP_S = 30.0


@dataclass
class WindowDiff:
    """Result of :func:`window_service_diff`.

    Attributes:
        max_diff: the maximum over ticks [service units / s] (VTC's "Max Diff").
        avg_diff: the mean over ticks (VTC's "Avg Diff").
        ticks: the tick times x_k [s] (windows start at ``x_k + warmup - window/2``).
        per_tick: the per-tick values.
    """

    max_diff: float
    avg_diff: float
    ticks: list[float]
    per_tick: list[float]


def window_service_diff(result, *, T: float = T_S, num_x: int = NUM_X, window: float = WINDOW_S,
                        warmup: float = WARMUP_S, w_p: float = 1.0, w_q: float = 2.0,
                        reduce: str = "sum") -> WindowDiff:
    """VTC's windowed service difference of a run (see the module docstring).

    Args:
        result: a :class:`~fairsched.sim.SimResult` (or anything with ``requests_frame()``).
        T, num_x, window, warmup: the artifact's tick grid (defaults: 600, 20, 60, 30).
        w_p, w_q: the service weights (VTC: 1 and 2).
        reduce: ``"sum"`` over clients (the artifact's ``plot_revision.py``, the table's
            numbers) or ``"max"`` (an earlier variant in ``plot_6.2_work_diff.py``).
    Raises:
        ValueError: ``num_x < 2``, ``window <= 0`` or an unknown ``reduce``.
    """
    if num_x < 2 or window <= 0:
        raise ValueError("need num_x >= 2 and window > 0")
    if reduce not in ("sum", "max"):
        raise ValueError(f"reduce must be 'sum' or 'max', got {reduce!r}")
    df = result.requests_frame()
    ticks = [(T - warmup) / num_x * k for k in range(1, num_x)]
    clients, cidx = np.unique(df["client"].to_numpy(dtype=str), return_inverse=True)
    svc = w_p * df["input_len"].to_numpy(dtype=float) + w_q * df["output_len"].to_numpy(dtype=float)
    arr = df["arrival"].to_numpy(dtype=float)
    start = df["first_token_t"].to_numpy(dtype=float)
    end = df["finish_t"].to_numpy(dtype=float)
    done = np.isfinite(end) & np.isfinite(start)
    ok = done.copy()
    ok[done] = (end[done] >= 1.0) & (end[done] - start[done] >= 1e-5)
    k = len(clients)
    vals = []
    for x in ticks:
        lo, hi = x + warmup - window / 2, x + warmup + window / 2
        inw = (arr >= lo) & (arr <= hi)
        q = np.bincount(cidx[inw], weights=svc[inw], minlength=k) / window
        s, e, a, c = start[ok], end[ok], svc[ok], cidx[ok]
        overlap = np.clip(np.minimum(hi, e) - np.maximum(lo, s), 0.0, None)
        y = np.bincount(c, weights=a * overlap / (e - s), minlength=k) / window
        d = np.minimum(y.max() - y, np.abs(q - y)) if k else np.zeros(0)
        vals.append(float(d.sum() if reduce == "sum" else (d.max() if k else 0.0)))
    return WindowDiff(max(vals), float(np.mean(vals)), ticks, vals)
