"""What :func:`~fairsched.explore.hotspot_explorer` computes, as plain functions.

The LMetric KV$-hotspot quantities come from :mod:`fairsched.theory.lmetric`
(:func:`~fairsched.theory.lmetric.classify_regime`, :func:`~fairsched.theory.lmetric.hotspot_numbers`,
:func:`~fairsched.theory.lmetric.batch_ratio`); the quick run is the simulator with the
``lmetric`` and ``least-load`` routers on a :func:`~fairsched.workload.hotspot.hotspot_workload`
whose hot prefix is pre-loaded on the ``|M|`` holders. Units: tokens, requests/s, seconds.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sympy as sp

__all__ = ["REGIMES", "HotspotParams", "HotspotRun", "clear_caches", "hotspot_point", "hotspot_quick_run",
           "hotspot_regions", "theory_ratio_curve"]

REGIMES = ("benign", "hotspot", "harmful")
"""Region codes 0, 1, 2 of :func:`hotspot_regions` (names of ``classify_regime``)."""


@dataclass(frozen=True)
class HotspotParams:
    """One setting of the hotspot explorer's controls.

    Attributes:
        x: arrival share of the hot prefix class c (0 < x < 1).
        holder_frac: ``|M| / N``, share of instances holding c's prefix (rounded to whole
            instances, at least 1 and at most N - 1, in the quick run).
        qps: total arrival rate [requests/s].
        L: class-c prompt length ``L_c`` [tokens].
        cached_frac: share of c's prompt an M instance has cached: ``u_c = (1 - cached_frac)
            L_c`` uncached tokens, ``kappa = L_c / u_c``.
        n_instances: N.
        B0: initial balanced batch size [requests].
        n_out: mean output tokens of a request.
        n_requests: size of the quick run: about this many arrivals, over ``n_requests / qps``
            seconds. The fluid model's batch ratio depends on time only through ``QPS t``
            (arrivals so far, :func:`~fairsched.theory.lmetric.batch_ratio`), so a fixed
            number of arrivals covers the same stretch of the predicted curve at any load,
            and the run's cost does not grow with the load slider.
        duration_s: length of the quick run [s]; None (default): ``n_requests / qps``.
    """

    x: float = 0.5
    holder_frac: float = 0.25
    qps: float = 30.0
    L: int = 4000
    cached_frac: float = 0.9
    n_instances: int = 8
    B0: float = 4.0
    n_out: int = 128
    n_requests: int = 120
    duration_s: float | None = None

    def __post_init__(self):
        if not 0 < self.x < 1:
            raise ValueError(f"x must be in (0, 1), got {self.x}")
        if not 0 < self.holder_frac < 1:
            raise ValueError(f"holder_frac must be in (0, 1), got {self.holder_frac}")
        if not 0 <= self.cached_frac < 1:
            raise ValueError(f"cached_frac must be in [0, 1), got {self.cached_frac}")
        if self.n_instances < 2:
            raise ValueError(f"n_instances must be >= 2, got {self.n_instances}")
        if self.qps <= 0 or self.L < 2 or self.n_requests < 1 or not (self.duration_s is None or self.duration_s > 0):
            raise ValueError("qps, n_requests and duration_s must be > 0 and L >= 2")

    @property
    def run_s(self) -> float:
        """Length of the quick run [s]: ``duration_s``, or ``n_requests / qps``."""
        return float(self.duration_s) if self.duration_s is not None else self.n_requests / self.qps

    @property
    def u(self) -> float:
        """Uncached class-c tokens on a holder, ``u_c`` (at least 1)."""
        return max(1.0, round(self.L * (1 - self.cached_frac)))

    @property
    def holders(self) -> int:
        """``|M|`` as a whole number of instances, in ``[1, N - 1]``."""
        return int(min(max(round(self.holder_frac * self.n_instances), 1), self.n_instances - 1))


def _theory_kw(p: HotspotParams) -> dict:
    return {"n_out": p.n_out, "ctx_mean": float(p.L)}


def hotspot_point(p: HotspotParams) -> dict:
    """The theory at ``p`` (:func:`~fairsched.theory.lmetric.hotspot_numbers` with
    ``|M| = holder_frac N``): ``a``, ``b`` [requests/s per instance], ``kappa``,
    ``limit_ratio``, ``benign``, ``t_star`` and ``t_harm`` [s] (None where they do not exist),
    plus ``regime`` (:func:`~fairsched.theory.lmetric.classify_regime`)."""
    from fairsched.theory.lmetric import classify_regime, hotspot_numbers

    nh = p.holder_frac * p.n_instances
    d = hotspot_numbers(p.x, nh, p.n_instances - nh, p.qps, p.B0, p.L, p.u, **_theory_kw(p))
    d["regime"] = classify_regime(p.x, p.holder_frac, p.n_instances, p.qps, p.B0, p.L, p.u, **_theory_kw(p))
    return d


def hotspot_regions(p: HotspotParams, n_grid: int = 33) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The phase diagram over (x, |M|/N) at ``p``'s other values: ``(xs, fs, Z)`` with ``Z[i, j]``
    the region code (index into :data:`REGIMES`) of ``classify_regime(xs[j], fs[i], ...)``.
    Cached on the values it depends on (moving ``x`` or ``|M|/N`` only moves the point);
    the arrays are read-only."""
    return _regions(p.n_instances, float(p.qps), float(p.B0), int(p.L), float(p.u), int(p.n_out), int(n_grid))


@functools.lru_cache(maxsize=64)
def _regions(n: int, qps: float, B0: float, L: int, u: float, n_out: int, n_grid: int):
    from fairsched.theory.lmetric import classify_regime

    xs = np.linspace(0.02, 0.98, n_grid)
    fs = np.linspace(0.02, 0.98, n_grid)
    code = {r: k for k, r in enumerate(REGIMES)}
    kw = {"n_out": n_out, "ctx_mean": float(L)}
    Z = np.array([[code[classify_regime(float(x), float(f), n, qps, B0, L, u, **kw)] for x in xs] for f in fs])
    for a in (xs, fs, Z):
        a.flags.writeable = False
    return xs, fs, Z


def clear_caches() -> None:
    """Forget cached region grids, quick runs and workloads (the benchmark times cold updates)."""
    for f in (_regions, _quick_run, _workload):
        f.cache_clear()


@functools.lru_cache(maxsize=1)
def _ratio_fn():
    from fairsched.theory import symbols as S
    from fairsched.theory.lmetric import batch_ratio

    return sp.lambdify((S.B0, S.x, S.xbar, S.QPS, S.n_hot, S.n_cold, S.t), batch_ratio(), "numpy")


def theory_ratio_curve(p: HotspotParams, t: np.ndarray) -> np.ndarray:
    """Predicted ``(B_M + 1) / (B_Mbar + 1)`` at times ``t`` [s] under LMetric: the fluid ratio
    :func:`~fairsched.theory.lmetric.batch_ratio` (with fairsched's +1: ``B_0 -> B_0 + 1``)
    while it is below ``kappa``; held at ``kappa`` after (the score diverts there,
    :func:`~fairsched.theory.lmetric.steady_ratio`)."""
    m = p.holders
    r = _ratio_fn()(p.B0 + 1, p.x, 1 - p.x, p.qps, m, p.n_instances - m, np.asarray(t, dtype=float))
    return np.minimum(np.broadcast_to(r, np.shape(t)), p.L / p.u)


@functools.lru_cache(maxsize=8)
def _workload(n: int, qps: float, x: float, duration: float, doc: int, suffix: int, n_out: int):
    from fairsched.workload.hotspot import hotspot_workload

    return hotspot_workload(n, qps, x, x_warm=x, warm_s=0.0, burst_s=duration, tail_s=0.0, doc_tokens=doc,
                            suffix_tokens=(suffix, suffix), output_tokens=(n_out // 2, n_out * 3 // 2), seed=0)


@dataclass
class HotspotRun:
    """The quick simulation at one point.

    Attributes:
        t: time grid [s]; ratio: router -> measured ``mean(B_M + 1) / mean(B_Mbar + 1)`` on
            the grid (``B`` = requests routed to the instance, arrived and not finished;
            M = the initial holders).
        table: one row per router: ``router``, ``ttft_mean_s``, ``ttft_p90_s`` (all
            requests), ``hot_ttft_mean_s`` (class c), ``hot_on_holders`` (share of class-c
            requests routed to an initial holder), ``hit_rate``.
        seconds: wall-clock time [s].
    """

    t: np.ndarray
    ratio: dict
    table: pd.DataFrame
    seconds: float


def _load_ratio(res, holders: int, t: np.ndarray) -> np.ndarray:
    arr = np.array([r.arrival for r in res.workload.requests])
    fin = np.where(np.isfinite(res.finish_t), res.finish_t, np.inf)
    inst = np.asarray(res.instance)
    n = res.n_instances
    B = np.zeros((t.size, n))
    for i in range(n):
        on = inst == i
        B[:, i] = (np.searchsorted(np.sort(arr[on]), t, side="right")
                   - np.searchsorted(np.sort(fin[on]), t, side="right"))
    return (B[:, :holders].mean(axis=1) + 1) / (B[:, holders:].mean(axis=1) + 1)


def hotspot_quick_run(p: HotspotParams, n_grid: int = 60) -> HotspotRun:
    """Simulate ``p.run_s`` seconds of a hotspot workload (class share ``x`` from t = 0,
    prompt ``L`` = shared prefix ``cached_frac L`` + unique suffix) under LMetric and under
    least-load routing, FCFS queues, c's prefix pre-loaded on instances ``0..|M|-1``.
    Cached per setting (returning to a setting redraws it at once); ``seconds`` is the time
    of the first computation."""
    return _quick_run(p, int(n_grid))


@functools.lru_cache(maxsize=32)
def _quick_run(p: HotspotParams, n_grid: int) -> HotspotRun:
    from fairsched.analysis.metrics import cache_hit_rate
    from fairsched.sim import Simulator

    t0 = time.perf_counter()
    m = p.holders
    doc = int(p.L - p.u)
    wl = _workload(p.n_instances, float(p.qps), float(p.x), p.run_s, max(doc, 1), int(p.u), int(p.n_out))
    hot = np.array([r.client == "hot" for r in wl.requests])
    grid = np.linspace(0.0, p.run_s, n_grid)
    ratio, rows = {}, []
    for router in ("lmetric", "least-load"):
        sim = Simulator(wl, "fcfs", router, p.n_instances)
        if hot.any() and doc >= wl.block_size:  # the document's full blocks, as the first c request holds them
            req = wl.requests[int(np.argmax(hot))]
            units = doc // wl.block_size
            for i in range(m):
                sim.instances[i].cache.insert(req.prompt[:units], 0.0)
        res = sim.run()
        ttft = res.first_token_t - np.array([r.arrival for r in wl.requests])
        ratio[router] = _load_ratio(res, m, grid)
        rows.append({"router": router, "ttft_mean_s": float(np.nanmean(ttft)),
                     "ttft_p90_s": float(np.nanpercentile(ttft, 90)),
                     "hot_ttft_mean_s": float(np.nanmean(ttft[hot])) if hot.any() else None,
                     "hot_on_holders": float((np.asarray(res.instance)[hot] < m).mean()) if hot.any() else None,
                     "hit_rate": cache_hit_rate(res)})
    return HotspotRun(grid, ratio, pd.DataFrame(rows), time.perf_counter() - t0)
