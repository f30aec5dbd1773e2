"""Non-negative least squares on relative errors (cvxpy): the fit behind every cost model.

Times span orders of magnitude (a 16-token prefill vs a 2k-token one), so the residual
that matters is relative: minimise ``sum_i ((X theta)_i / t_i - 1)^2`` over ``theta >= 0``
(``proofs/cost_model.md``, "Fit"). Columns are rescaled to unit maximum before solving
(the problem is the same; the solver's tolerances are not).
"""

from __future__ import annotations

import numpy as np


def nnls_rel(X: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``theta >= 0`` minimising ``||(X theta - t) / t||^2``.

    Args:
        X: features, shape ``[m, k]``.
        t: measured times, shape ``[m]``, all > 0 [s].
    Returns:
        ``theta``, shape ``[k]`` (units: seconds per unit of each feature).
    Raises:
        ValueError: if some ``t <= 0`` or shapes disagree.
        RuntimeError: if the solver returns no solution.
    """
    import cvxpy as cp

    X = np.asarray(X, dtype=float)
    t = np.asarray(t, dtype=float)
    if X.ndim != 2 or t.shape != (X.shape[0],):
        raise ValueError(f"nnls_rel: X {X.shape} and t {t.shape} do not match")
    if not (t > 0).all():
        raise ValueError("nnls_rel: every measured time must be > 0")
    scale = np.abs(X).max(axis=0)
    scale[scale == 0] = 1.0
    Xs = X / scale / t[:, None]
    th = cp.Variable(X.shape[1], nonneg=True)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(Xs @ th - 1.0)))
    try:
        prob.solve(solver=cp.CLARABEL)
    except Exception:  # pragma: no cover - solver availability differs between installs
        prob.solve()
    if th.value is None:
        raise RuntimeError(f"cost-model fit failed: {prob.status}")
    return np.maximum(np.asarray(th.value, dtype=float), 0.0) / scale
