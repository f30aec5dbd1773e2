"""RPM, the VTC paper's requests-per-minute baseline, as a rewrite of the workload.

VTC's artifact (``slora/server/router/lshare_req_queue.py``, run with ``--enable-abort``)
checks each arriving request against its client's *accepted* requests of the last 60 s:
if there are already ``limit`` of them the request is aborted (dropped, never served);
accepted requests are served first come, first served. The artifact's plots drop aborted
requests before computing any metric.

The decision depends only on arrival times, never on the server's state, so applying it
to the workload before simulating and then running FCFS is *exactly* the same as an
admission limiter inside the scheduler, and needs no simulator hook (a limiter that
*holds* requests instead of dropping them would need a wake-up event when the window
frees a slot; :func:`rpm_limit` with ``mode="delay"`` emulates that one too, by moving
the arrival to the moment the slot frees, which is equivalent for an admission limiter
that releases to a FCFS queue).
"""

from __future__ import annotations

import bisect
from collections import deque

from fairsched.workload.request import Request, Workload

WINDOW_S = 60.0
"""The rate limiter's window [s]."""


def rpm_limit(workload: Workload, limit: int, *, mode: str = "drop", window: float = WINDOW_S) -> Workload:
    """The requests a per-client limit of ``limit`` requests per ``window`` seconds lets through.

    Args:
        workload: the offered requests.
        limit: most accepted requests of one client in any ``window`` s (VTC's artifact
            rejects a request when the client already had ``limit`` accepted requests
            with ``now - t <= window``).
        mode: ``"drop"`` (the artifact's behaviour: rejected requests are gone) or
            ``"delay"`` (a rejected request waits until the window frees a slot; its
            arrival time becomes that moment, so the client's accepted requests never
            exceed ``limit`` per window).
    Returns:
        A new workload (requests renumbered in arrival order; ``meta["rpm"]`` records the
        limit, mode and how many requests were dropped or delayed per client).
    Raises:
        ValueError: ``limit < 1``, ``window <= 0`` or an unknown ``mode``.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if window <= 0:
        raise ValueError(f"window must be > 0, got {window}")
    if mode not in ("drop", "delay"):
        raise ValueError(f"mode must be 'drop' or 'delay', got {mode!r}")
    accepted: dict[str, deque[float]] = {}
    kept: list[tuple[float, Request]] = []
    affected: dict[str, int] = {}
    for r in workload.requests:
        hist = accepted.setdefault(r.client, deque())
        t = r.arrival
        while hist and t - hist[0] > window:
            hist.popleft()
        if len(hist) >= limit:
            affected[r.client] = affected.get(r.client, 0) + 1
            if mode == "drop":
                continue
            # earliest time at which fewer than `limit` accepted requests are within the window;
            # requests of one client stay in arrival order because accepted times only grow
            t = max(t, hist[len(hist) - limit] + window + 1e-9)
            while hist and t - hist[0] > window:
                hist.popleft()
        hist.append(t)
        kept.append((t, r))
    kept.sort(key=lambda x: x[0])  # stable: ties keep the original order
    reqs = [Request(k, t, r.client, r.prompt, r.input_len, r.output_len, r.block_size)
            for k, (t, r) in enumerate(kept)]
    meta = dict(workload.meta)
    meta["rpm"] = {"limit": limit, "mode": mode, "window_s": window,
                   ("dropped" if mode == "drop" else "delayed"): dict(sorted(affected.items())),
                   "offered": len(workload), "accepted": len(reqs) if mode == "drop" else len(workload)}
    return Workload(reqs, f"{workload.name}-rpm{limit}{'' if mode == 'drop' else '-delay'}",
                    workload.block_size, workload.source, meta)


def max_per_window(workload: Workload, window: float = WINDOW_S) -> int:
    """Most requests of one client whose arrivals lie within ``window`` s of each other
    (``t_last - t_first <= window``); what :func:`rpm_limit` bounds by ``limit``."""
    times: dict[str, list[float]] = {}
    for r in workload.requests:
        times.setdefault(r.client, []).append(r.arrival)
    best = 0
    for ts in times.values():
        for i, t in enumerate(ts):
            best = max(best, bisect.bisect_right(ts, t + window) - i)
    return best
