"""Measuring the toy engine's device work: :class:`Timer` (wall or process CPU time),
:func:`set_threads` / :func:`measured_threads` (torch intra-op threads for a measured run), :func:`steady_allocator`
(host memory served without page faults) and :func:`warm_up` (untimed first forwards)."""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

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
