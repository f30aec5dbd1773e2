"""The simulator's fast paths give the very floats of the plain ones, and a run that leaves
requests unfinished is an error (issue 13). Speed itself is measured in bench/bench_scale.py."""

import numpy as np
import pytest

from fairsched.policies.queue import FCFS
from fairsched.sim import CostModel, UnfinishedError, simulate
from fairsched.workload.request import make_workload


class NeverAdmits(FCFS):
    """Queues every request and admits none: the instance goes idle with work left."""

    def schedule(self, inst, now):
        return None


def _workload(n=6):
    return make_workload([(0.1 * i, f"c{i % 2}", (i, i + 1), 8, 3) for i in range(n)], block_size=4)


def test_unfinished_run_raises_with_the_count():
    with pytest.raises(UnfinishedError, match="6 of 6 requests never finished") as e:
        simulate(_workload(), NeverAdmits)
    assert e.value.n_unfinished == 6 and e.value.result.n_finished == 0
    assert isinstance(e.value, ValueError)  # the CLI reports it as one line, exit 2


def test_unfinished_run_returned_when_allowed():
    res = simulate(_workload(), NeverAdmits, allow_unfinished=True)
    assert res.n_finished == 0 and np.isnan(res.finish_t).all()
    assert simulate(_workload()).n_finished == 6  # a normal run is untouched


@pytest.mark.parametrize("cm", [CostModel(), CostModel(decode_q=3e-11, decode_c=8e-7, decode_e=2e-3)])
def test_vector_decode_run_times_are_the_scalar_floats(cm):
    """StepTimes uses decode_run_times: bit for bit the floats of decode_run_time (the times
    the run's events use), so the service log does not move by one ulp."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        b, ctx, k = int(rng.integers(1, 300)), int(rng.integers(1, 3_000_000)), int(rng.integers(1, 2000))
        t0 = float(rng.uniform(0, 1e5))
        vec = t0 + cm.decode_run_times(b, ctx, k)
        one = np.array([t0 + cm.decode_run_time(b, ctx, m) for m in range(1, k + 1)])
        assert np.array_equal(vec, one)
