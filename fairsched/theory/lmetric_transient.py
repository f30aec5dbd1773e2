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

import math

__all__ = ["LOAD_FORMS", "transient_load", "window_mean_min", "window_mean_residue"]

LOAD_FORMS = ("steady", "transient")  # the station's load: Little's steady r S, or this module's window mean


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
