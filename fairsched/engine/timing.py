"""Measuring the toy engine's device work: :class:`Timer` (wall or process CPU time),
:func:`set_threads` / :func:`measured_threads` (torch intra-op threads for a measured run), :func:`steady_allocator`
(host memory served without page faults), :func:`warm_up` (untimed first forwards) and
:func:`speed_factors` (the machine's speed while each timing ran, from the other points' timings)."""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from fairsched.engine.kv import PagedKVCache
from fairsched.engine.model import ToyLlama


class Timer:
    """Seconds of device work.

    ``mode="wall"``: ``time.perf_counter`` (after ``torch.cuda.synchronize`` on CUDA).
    ``mode="cpu"``: ``time.thread_time``, the CPU seconds of the calling thread (CPU device
    only). With one intra-op thread torch computes in the calling thread, so it equals the
    wall time of an undisturbed run but leaves out the time the thread waits while other
    processes hold the cores, and the CPU time of the process's other threads (a progress
    bar, a notebook kernel's heartbeat); with two threads a descheduled worker stalls the
    other at every barrier, and both clocks become noise. What it keeps is the slowdown of
    the thread's own work by other processes sharing caches and memory bandwidth
    (``proofs/cost_model.md``: 10-25% between repeats of one point on the shared 2-core
    machine).
    ``mode="auto"``: ``"wall"`` on CUDA or with more than one thread, else ``"cpu"``.
    """

    def __init__(self, device: torch.device, mode: str = "auto"):
        if mode == "auto":
            mode = "wall" if device.type == "cuda" or torch.get_num_threads() > 1 else "cpu"
        if mode not in ("wall", "cpu"):
            raise ValueError(f"timer mode must be 'auto', 'wall' or 'cpu', got {mode!r}")
        if mode == "cpu" and device.type != "cpu":
            raise ValueError("timer mode 'cpu' measures CPU time: use it on the CPU device only")
        self.mode = mode
        self.cuda = device.type == "cuda"
        self._clock = time.perf_counter if mode == "wall" else time.thread_time

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return self._clock()


def set_threads(threads: int | None, device: torch.device) -> int:
    """Set torch's intra-op threads for a measured run and return the previous value.

    ``None``: one thread on CPU (reproducible timings with ``Timer("auto")``, see
    :class:`Timer`), unchanged on CUDA.
    """
    old = torch.get_num_threads()
    if threads is None and device.type == "cpu":
        threads = 1
    if threads is not None:
        torch.set_num_threads(threads)
    return old


@contextmanager
def measured_threads(threads: int | None, device: torch.device) -> Iterator[None]:
    """:func:`set_threads` for the ``with`` block; torch's previous thread count is restored
    after it (also on an error)."""
    old = set_threads(threads, device)
    try:
        yield
    finally:
        torch.set_num_threads(old)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>


def steady_allocator() -> bool:
    """Make the process's host allocator serve every tensor from its heap and keep freed
    memory (glibc ``mallopt``: mmap threshold 1 GiB, trim threshold 2 GiB); returns whether
    it applied (glibc on Linux only; elsewhere nothing changes).

    Why: with glibc's defaults an allocation above the *dynamic* mmap threshold (128 KiB,
    rising to at most 32 MiB as such blocks are freed) is a fresh ``mmap``, and every page of
    it is a page fault when first written: the same forward then costs more or less depending
    on the allocations before it. Measured (``cpu-small``, one thread, 2026-12-02, loaded): a
    decode step of ``B = 8, ctx = 4096`` took 146.5 ms of CPU time, 74.2 of them in the
    kernel for 20,448 page faults, against 83.9 ms and no fault with this setting; a
    prefill of ``n = 2048`` after ``h = 2048`` 1469 vs 1259 ms (``proofs/cost_model.md``,
    "Page faults"). A serving engine keeps its buffers (a caching allocator); this is the CPU
    engine's equivalent, so its cost is a function of the batch's shape. The setting is
    process-wide and not undone: freed memory stays with the process (peak RSS is unchanged)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1))


def warm_up(model: ToyLlama) -> None:
    """A few untimed forwards (prefill with and without a cached prefix, a decode batch)
    so that first-call costs (allocator, kernel selection) stay out of the measurements;
    first :func:`steady_allocator`, so that page faults stay out of them too."""
    steady_allocator()
    dev = next(model.parameters()).device
    bs = 16
    pool = PagedKVCache.for_model(model, 24, bs)
    slots = torch.arange(24 * bs, device=dev)
    g = torch.Generator().manual_seed(0)
    toks = torch.randint(0, model.config.vocab_size, (256,), generator=g).to(dev)
    for _ in range(2):
        model.prefill(toks[:160], pool, slots, 0)
        model.prefill(toks[160:], pool, slots, 160)
        model.decode(toks[:3], pool, [slots[:200], slots[:200], slots[:40]], [200, 150, 40])
    if dev.type == "cuda":
        torch.cuda.synchronize()


DRIFT_BANDWIDTHS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
"""Candidate half-widths [s of the timer's clock] of :func:`speed_factors`' window; it keeps the
one that predicts the timings best (cross-validated)."""


def _window_mean(r: np.ndarray, point: np.ndarray, start: np.ndarray, sec: np.ndarray, bw: float) -> np.ndarray:
    """For each timing j (sorted by ``start``): the mean of ``r`` over the *other points'*
    timings whose midpoint lies in ``[start_j - w_j, start_j + sec_j + w_j]``, ``w_j = max(bw,
    sec_j)`` (a long forward is compared with the speed over its own span and as much again on
    each side); 0 where there is none."""
    from scipy.sparse import csr_matrix

    mid = start + sec / 2
    w = np.maximum(bw, sec)
    lo = np.searchsorted(mid, start - w, "left")
    hi = np.searchsorted(mid, start + sec + w, "right")
    lens = hi - lo
    rows = np.repeat(np.arange(r.size), lens)
    cols = lo[rows] + np.arange(rows.size) - np.repeat(np.cumsum(lens) - lens, lens)
    keep = point[rows] != point[cols]
    W = csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(r.size, r.size))
    cnt = np.asarray(W.sum(axis=1)).ravel()
    return np.where(cnt > 0, (W @ r) / np.maximum(cnt, 1), 0.0)


def speed_factors(point, seconds, start, classes: int = 4, iters: int = 50) -> tuple[np.ndarray, dict]:
    """The machine's speed while each timing ran, as a factor ``s_j`` (``t_j / s_j`` is the
    timing at the run's average speed), estimated from the timings themselves.

    Model (``proofs/cost_model.md``, "Speed drift"): ``log t_j = m_point(j) + g(t) + e_j``, a
    point's own cost times a common factor ``exp g`` shared by every forward run at that moment
    (measured on the shared 2-core machine: the log-deviations of *different* points' timings
    less than 0.1 s apart correlate at 0.5-0.8, and a 2-s slice's mean moves by up to 20%).
    ``g`` at timing j is the mean log-deviation of the other points' timings in a window around
    it (:func:`_window_mean`), fitted by backfitting (point means and ``g`` in turn, ``iters``
    at most); the half-width is the one of :data:`DRIFT_BANDWIDTHS` with the smallest
    cross-validated error ``mean (r_j - g_j)^2`` (``g_j`` never uses timing j's own point), and
    none if none beats ``g = 0``. Then, per class of points by mean cost (``classes``
    quantile classes: a long forward's speed is seen less well by the forwards around it),
    ``g`` is shrunk by the regression slope ``beta = clip(sum r g / sum g^2, 0, 1)`` (the best
    linear predictor of the class's deviations). ``s = exp(g)`` normalised so that its
    time-weighted mean, ``sum t s / sum t``, is 1: the corrected costs keep the run's average
    speed level.

    Args:
        point: the point (grid index) of each timing, shape ``[N]``.
        seconds: each timing [s], shape ``[N]``, all > 0.
        start: when each started [s, any origin, the timer's clock], shape ``[N]``.
    Returns:
        ``(s, info)``: factors, shape ``[N]`` in the input's order (all 1 if no window helps),
        and ``{"bandwidth" [s] or None, "beta" (per class), "cv_gain"}`` (``cv_gain``: the
        cross-validated error over the uncorrected one).
    Raises:
        ValueError: if the shapes differ or some ``seconds <= 0``.
    """
    point = np.unique(np.asarray(point), return_inverse=True)[1]
    t = np.asarray(seconds, dtype=float)
    st = np.asarray(start, dtype=float)
    if not (point.shape == t.shape == st.shape) or t.ndim != 1:
        raise ValueError(f"speed_factors: point {point.shape}, seconds {t.shape}, start {st.shape} differ")
    if not (t > 0).all():
        raise ValueError("speed_factors: every timing must be > 0")
    o = np.argsort(st, kind="stable")
    idx, t, st = point[o], t[o], st[o]
    lt, P = np.log(t), int(idx.max()) + 1 if t.size else 0
    cnt = np.bincount(idx, None, P)
    best = None
    for bw in DRIFT_BANDWIDTHS:
        g = np.zeros_like(lt)
        for _ in range(iters):
            r = lt - (np.bincount(idx, lt - g, P) / cnt)[idx]
            g_new = _window_mean(r, idx, st, t, bw)
            done = np.max(np.abs(g_new - g), initial=0.0) < 1e-7
            g = g_new
            if done:
                break
        cv = float(np.mean((r - g) ** 2)) if t.size else 0.0
        if best is None or cv < best[0]:
            best = (cv, bw, g, r)
    cv, bw, g, r = best
    r0 = float(np.mean(r ** 2)) if t.size else 0.0
    ones = np.ones(t.size)
    if not cv < r0:
        return ones, {"bandwidth": None, "beta": [], "cv_gain": 1.0}
    mean_t = np.bincount(idx, t, P) / cnt
    cls = np.searchsorted(np.quantile(mean_t, np.linspace(0, 1, classes + 1)[1:-1]), mean_t[idx], "right")
    beta = np.zeros(classes)
    for c in range(classes):
        den = float(np.sum(g[cls == c] ** 2))
        beta[c] = np.clip(np.sum(r[cls == c] * g[cls == c]) / den, 0.0, 1.0) if den > 0 else 0.0
    s = np.exp(g * beta[cls])
    s *= np.sum(t / s) / np.sum(t)
    out = np.empty_like(s)
    out[o] = s
    return out, {"bandwidth": bw, "beta": [float(b) for b in beta], "cv_gain": cv / r0}
