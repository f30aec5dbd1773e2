"""The calibration's speed-drift correction (engine.timing.speed_factors, used by
calibrate._frame): a slow spell shared by every forward run at that moment is measured from the
other points' timings and divided out (proofs/cost_model.md, "Speed drift")."""

import json
from pathlib import Path

import numpy as np
import pytest

from fairsched.engine.calibrate import GRIDS, PREFILL_TERMS, _frame, _time_points, prefill_features
from fairsched.engine.timing import speed_factors

_COST = json.loads((Path(__file__).resolve().parents[1] / "data/engine_cpu-small_cost.json").read_text())
THETA = np.array([_COST["coefficients"][k] for k in PREFILL_TERMS])  # the committed engine model [s]


def _run_with_spells(seed: int, window: float = 0.5, slow: float = 1.5, share: float = 0.25):
    """The calibration's prefill grid timed by _time_points on a fake clock: each forward does
    its model cost of work with 2% noise, at 1/slow speed in the fake clock's slow windows
    (``share`` of the ``window``-second windows; a forward across a boundary pays each window's
    speed for its part). Returns (true cost per point, the measured frame)."""
    pts = [(n, h) for n in GRIDS["full"]["n"] for h in GRIDS["full"]["h"]]
    mu = prefill_features([p[0] for p in pts], [p[1] for p in pts]) @ THETA
    true = dict(zip(pts, mu, strict=True))
    rng = np.random.default_rng(seed)
    spell = rng.random(100_000) < share
    clock = [0.0]

    class FakeTimer:
        def now(self):
            return clock[0]

    def run(p):
        work = true[p] * np.exp(0.02 * rng.standard_normal())
        while work > 1e-15:
            k = int(clock[0] / window)
            f = slow if spell[k] else 1.0
            dt = min(work * f, (k + 1) * window - clock[0] + 1e-12)
            clock[0] += dt
            work -= dt / f

    starts: dict = {}
    times = _time_points(pts, run, FakeTimer(), 5, 2.0, 61, seed, starts=starts)
    return mu, _frame(times, starts, ("n", "h"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_drift_correction_recovers_the_points_cost_under_slow_spells(seed):
    """Slow spells (a quarter of the 0.5-s windows 1.5x slow) shared by all points: the
    corrected point estimates (``seconds``) are closer to the true costs (up to the run's common
    level) than the plain means (``raw_s``): p90 error below 0.85x, and the run's level kept
    (total corrected time = total measured time)."""
    mu, df = _run_with_spells(seed)

    def p90(col):
        q = df[col].to_numpy() / mu
        return np.percentile(np.abs(q / np.exp(np.mean(np.log(q))) - 1), 90)

    assert p90("seconds") < 0.85 * p90("raw_s"), (p90("seconds"), p90("raw_s"))
    t = np.concatenate(df["timings"].to_list())
    s = np.concatenate(df["speed"].to_list())
    assert np.sum(t / s) == pytest.approx(np.sum(t))


def test_speed_factors_without_drift_or_with_one_point_change_nothing():
    """No shared component (independent noise only) gives factors near 1 (the correction may
    not invent a drift: the cross-validated window must beat g = 0, and beta shrinks the rest);
    a single point has no other points to compare with: all 1. Bad input raises."""
    rng = np.random.default_rng(0)
    point = rng.integers(0, 20, 2000)
    sec = np.exp(0.1 * rng.standard_normal(2000)) * (1 + point) * 1e-3
    start = np.concatenate([[0], np.cumsum(sec)[:-1]])
    s, info = speed_factors(point, sec, start)
    assert np.percentile(np.abs(np.log(s)), 90) < 0.03
    s1, info1 = speed_factors(np.zeros(5, int), np.full(5, 0.01), np.arange(5) * 0.01)
    assert (s1 == 1).all() and info1["bandwidth"] is None
    with pytest.raises(ValueError, match="> 0"):
        speed_factors([0, 1], [0.1, 0.0], [0, 1])
    with pytest.raises(ValueError, match="differ"):
        speed_factors([0, 1], [0.1], [0, 1])
