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
