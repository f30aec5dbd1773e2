"""The hotspot model's loads as a window sees them: the transient of an infinite-server station
from the class's onset, with the load present at the onset leaving, averaged over the window.

Proof: ``proofs/lmetric_harm_validation.md`` §3.5. Units: requests, requests/s, seconds.

An instance batches every request it holds (continuous batching, no admission limit), so the
number it holds is that of an M/G/inf station whose service time is the request's sojourn
``S`` (:func:`fairsched.theory.lmetric_steady.steady_state_hotspot`'s ``1.5 tau + f + O tau``).
With Poisson arrivals of rate ``r`` from the onset ``t = 0``, the mean number present at ``t``
is ``r int_0^t P(S > s) ds`` (the M/G/inf transient), ``r min(S, t)`` for a fixed ``S``; the
``B_0`` requests present at the onset, stationary before it with a fixed sojourn ``S_0``, have
residual times uniform on ``[0, S_0]``, so ``B_0 max(0, 1 - t/S_0)`` of them remain. The class's
decisions in a window ``[t_a, t_b]`` (Poisson arrivals) see the window's time average (PASTA).
"""

from __future__ import annotations

import functools
import math

__all__ = ["LOAD_FORMS", "PREFILL_SEEN", "jsq_tail", "prefill_seen_share", "transient_load", "window_mean_min",
           "window_mean_residue"]

LOAD_FORMS = ("steady", "transient")  # the station's load: Little's steady r S, or this module's window mean
PREFILL_SEEN = ("mean", "jsq")  # prefills a decoding request sees: its instance's mean rate, or §3.7's share of it


def _check(S: float, a: float, b: float) -> None:
    if not (S >= 0 and 0 <= a <= b and math.isfinite(b)):
        raise ValueError(f"need S >= 0 and 0 <= t_a <= t_b < inf (got S={S}, t_a={a}, t_b={b})")


def window_mean_min(S: float, a: float, b: float) -> float:
    """``(1/(t_b - t_a)) int_(t_a)^(t_b) min(S, t) dt`` [s] (``min(S, t_a)`` if ``t_a = t_b``): the
    window mean of the time a fixed sojourn ``S`` [s] lets a station started empty at 0 fill.
    ``S = inf``: the window's mid time. Raises ValueError: ``S < 0`` or not ``0 <= t_a <= t_b < inf``."""
    _check(S, a, b)
    if b - a <= 1e-12:
        return min(S, a)
    if S >= b:
        return (a + b) / 2
    if S <= a:
        return S
    return ((S * S - a * a) / 2 + S * (b - S)) / (b - a)


def window_mean_residue(S0: float, a: float, b: float, age: float = math.inf) -> float:
    """The window mean over ``[t_a, t_b]`` of the share of the requests present at the onset that
    are still there, arrivals at a constant rate over the ``age`` [s] before the onset (the trace
    starts empty), fixed sojourn ``S_0`` [s]: their ages are uniform on ``[0, A]``, ``A = min(age,
    S_0)``, so ``g(t) = clip((S_0 - t)/A, 0, 1)`` remain (``A = S_0``, stationary before the onset:
    ``max(0, 1 - t/S_0)``; ``age = 0``: all leave at ``S_0``). ``S_0 = 0``: 0. Raises ValueError as
    :func:`window_mean_min`."""
    _check(S0, a, b)
    A = min(max(0.0, age), S0)
    if S0 <= 0 or a >= S0:
        return 0.0
    c = S0 - A  # g = 1 before c, linear to 0 at S0

    def G(t):  # int_0^t g
        t = min(t, S0)
        return t if t <= c else c + (S0 * (t - c) - (t * t - c * c) / 2) / A

    if b - a <= 1e-12:
        return 1.0 if a <= c else (S0 - a) / A
    return (G(b) - G(a)) / (b - a)


def transient_load(flows, a: float, b: float, residue: float = 0.0, residue_sojourn: float = 0.0,
                   residue_age: float = math.inf) -> float:
    """Window-mean requests on an instance [requests] fed since the onset by ``flows`` (one
    ``(rate [req/s], sojourn [s])`` per traffic kind), holding ``residue`` requests at the onset
    that leave with ``residue_sojourn`` [s], having arrived over ``residue_age`` [s] before the
    onset: ``sum_k r_k window_mean_min(S_k) + B_0 window_mean_residue(S_0, age)`` over the window
    ``[a, b]`` [s since the onset]. As ``a -> inf``
    it is Little's ``sum_k r_k S_k``. Raises ValueError: a negative rate or residue, or a bad
    window (:func:`window_mean_min`)."""
    if residue < 0 or any(r < 0 for r, _ in flows):
        raise ValueError(f"rates and the residue must be >= 0 (got {list(flows)}, residue={residue})")
    load = sum(r * window_mean_min(S, a, b) for r, S in flows if r > 0)
    return load + (residue * window_mean_residue(residue_sojourn, a, b, residue_age) if residue > 0 else 0.0)


# --- the prefills a decoding request sees under a load-based router (§3.7) ---------------------------


@functools.lru_cache(maxsize=4096)
def _tail(A: float, n: int) -> tuple[float, ...]:
    kmax = int(A + 12 * math.sqrt(A) + 30)

    def run(q1):  # forward from q_0 = 0, q_1; q_k = 1 - s_k (precise where s_k is near 1)
        q, lg = [0.0, q1], [0.0, n * math.log1p(-q1)]  # lg_k = log s_k^n
        for k in range(1, kmax):
            d = math.exp(lg[k - 1]) * -math.expm1(lg[k] - lg[k - 1])  # s_(k-1)^n - s_k^n
            qn = q[k] + A * d / k
            if qn >= 1:  # s_(k+1) < 0: too little mass at 0 (q_1 too large)
                return -1, q
            if qn < q[k]:  # s rising: too much mass at 0
                return 1, q
            q.append(qn)
            lg.append(n * math.log1p(-qn))
        return 1, q

    lo, hi = -745.0, math.log(1 - 1e-16)  # log q_1
    for _ in range(64):
        mid = (lo + hi) / 2
        if run(math.exp(mid))[0] < 0:
            hi = mid
        else:
            lo = mid
    return tuple(1 - v for v in run(math.exp(lo))[1])


def jsq_tail(A: float, n: int) -> list[float]:
    """``s_k = P(B >= k)``, ``k = 0, 1, ...`` [probability], of the requests an instance holds when
    ``n`` instances each take Poisson arrivals at ``A`` requests per sojourn on average, every
    arrival joins the instance holding the fewest (ties: any), and each request leaves after an
    exponential sojourn (M/M/inf stations). Mean field (``proofs/lmetric_harm_validation.md`` §3.7,
    (J2)): the other ``n - 1`` loads an arrival compares are independent draws of the same law, so
    it joins a load-``k`` instance with probability ``s_k^n - s_(k+1)^n`` and the balance of
    crossings between ``k`` and ``k + 1`` is ``A (s_k^n - s_(k+1)^n) = (k + 1)(s_(k+1) - s_(k+2))``
    (``n = 1``: Poisson(A)); solved by shooting on ``s_1`` (cached).
    Raises ValueError: ``A < 0``, ``n < 1``."""
    if not (A >= 0 and math.isfinite(A)) or n < 1:
        raise ValueError(f"need a finite A >= 0 and n >= 1 (got A={A}, n={n})")
    return [1.0] if A <= 0 else list(_tail(float(A), int(n)))


def prefill_seen_share(A: float, n: int) -> float:
    """The share of its instance's mean prefill rate that a request present on it sees while it
    stays, when ``n`` instances share the traffic by join-the-least-loaded at ``A`` requests each
    (``proofs/lmetric_harm_validation.md`` §3.7): ``kappa = E[B at the joined instance] / E[B]``.
    Claim 1 of §3.7: every arrival's prefill is seen by the requests on the instance it joins, so a
    request sees ``E[B at the joined instance]`` prefills per stay, where arrivals that ignore the
    load (Poisson, PASTA) make it ``E[B] = A``. With :func:`jsq_tail`'s law that is
    ``sum_(k>=1) s_k^n / A``; Claim 2: it equals ``(E[B^2]/A - 1)/A = 1 - (A - Var B)/A^2`` (1 for
    ``n = 1``, Poisson). Where the shooting cannot resolve the law (``P(B = 0)`` below 1e-323:
    ``A`` in the hundreds with ``n >= 60``) the loads are taken at their ``n -> inf`` limit, the two
    integers around ``A`` (variance ``f (1 - f)``, ``f = A - floor A``). 1 for ``A = 0``. Evaluated on a
    0.02-request grid in ``A`` and interpolated linearly (within 1e-3 of the law, tested). Raises ValueError: ``A < 0`` or not finite, ``n < 1``."""
    if not (A >= 0 and math.isfinite(A)) or n < 1:
        raise ValueError(f"need a finite A >= 0 and n >= 1 (got A={A}, n={n})")
    if A <= 0 or n == 1:
        return 1.0
    j, w = divmod(A / _GRID, 1.0)  # linear between the grid's nodes (the law is cached per node)
    return (1 - w) * _share(int(j), int(n)) + w * _share(int(j) + 1, int(n))


_GRID = 0.02  # requests: the grid on which kappa is evaluated (interpolation error < 1e-3, tested)


@functools.lru_cache(maxsize=65536)
def _share(j: int, n: int) -> float:
    A = j * _GRID
    if A <= 0:
        return 0.0  # the limit A -> 0 with n > 1: empty instances take every arrival
    s = _tail(A, n)
    if abs(sum(s[1:]) - A) > 1e-6 * max(1.0, A):  # unresolved law: the two-point limit
        f = A - math.floor(A)
        return 1 - (A - f * (1 - f)) / (A * A)
    return sum(v ** n for v in s[1:]) / A
