"""The one grid executor (:mod:`fairsched.sweep.grid`): results in point order whatever
runs them, errors raised with the point named (or returned), bad settings refused."""

from __future__ import annotations

import pytest

from fairsched.sweep import GridRunner, map_grid


def _square_or_fail(x: int) -> int:
    if x == 3:
        raise ValueError("three is bad")
    return x * x


def _pid(_x: int) -> int:
    import os

    return os.getpid()


def test_serial_and_pool_give_the_same_list_in_point_order():
    pts = list(range(7)) + [10, 11]
    pts.remove(3)
    serial = map_grid(_square_or_fail, pts, progress=False)
    assert serial == [p * p for p in pts]
    with GridRunner(2, progress=False) as g:
        assert g.map(_square_or_fail, pts) == serial
        assert g.map(_square_or_fail, list(reversed(pts))) == list(reversed(serial))  # the pool is reused
        import os

        assert os.getpid() not in set(g.map(_pid, range(4)))  # the points really ran elsewhere


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_point_is_raised_with_its_index_or_returned(workers):
    with pytest.raises(ValueError, match="three is bad") as e:
        map_grid(_square_or_fail, [1, 2, 3, 4], workers=workers, progress=False, desc="g")
    assert any("point 2 of 4" in n for n in e.value.__notes__)
    got = map_grid(_square_or_fail, [1, 3], workers=workers, progress=False, errors="return")
    assert got[0] == 1 and isinstance(got[1], ValueError)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="workers"):
        GridRunner(0)
    with pytest.raises(ValueError, match="errors"):
        map_grid(_square_or_fail, [1], errors="ignore")
    assert map_grid(_square_or_fail, [], workers=2) == []


class _FakeRay:
    """Ray's API as GridRunner uses it (init, remote, wait, get, cancel, shutdown), finishing
    tasks in reverse order and wrapping errors as Ray does (``.cause``); the real Ray runs in
    tests/test_sweep.py."""

    class TaskError(Exception):
        def __init__(self, cause):
            super().__init__(f"task failed: {cause}")
            self.cause = cause

    def __init__(self):
        self.up, self.inits, self.cancelled = False, [], []

    def is_initialized(self):
        return self.up

    def init(self, **kw):
        self.up = True
        self.inits.append(kw)

    def shutdown(self):
        self.up = False

    def remote(self, **opts):
        def wrap(fn):
            class R:
                @staticmethod
                def remote(p):
                    try:
                        return ("ok", fn(p))
                    except Exception as e:  # noqa: BLE001
                        return ("err", e)
            return R
        return wrap

    def wait(self, refs, num_returns=1):
        return refs[-num_returns:], refs[:-num_returns]

    def get(self, ref):
        if ref[0] == "err":
            raise self.TaskError(ref[1])
        return ref[1]

    def cancel(self, ref, force=False):
        self.cancelled.append(ref)


def test_ray_path_keeps_point_order_and_raises_the_task_error(monkeypatch):
    import sys

    fake = _FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    with GridRunner(2, use_ray=True, progress=False) as g:
        assert g.map(_square_or_fail, [1, 2, 4, 5]) == [1, 4, 16, 25]
        assert fake.inits == [{"num_cpus": 2, "include_dashboard": False, "log_to_driver": False}]
        with pytest.raises(ValueError, match="three is bad"):  # the task's own exception, not Ray's wrapper
            g.map(_square_or_fail, [1, 3, 4])
        got = g.map(_square_or_fail, [3, 2], errors="return")
        assert isinstance(got[0], ValueError) and got[1] == 4
    assert not fake.up  # the runner started this Ray, so it shut it down
