"""The compact service log (``service_log="backlogged"``) and the on-the-fly X give the same
numbers as the full log: every summary metric, the gap and its witness, Jain's index, the
bound verdicts (issue 13, scale)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from fairsched.analysis.metrics import summarize
from fairsched.analysis.service_params import measured_x, simulate_for_check
from fairsched.analysis.verdicts import check_run
from fairsched.sim import InstanceConfig, simulate
from fairsched.workload import default_workload

CASES = [("vtc", None, 1), ("dlpm", "d2lpm", 3), ("fcfs", "least-load", 2), ("vtc", "lmetric", 4)]


@pytest.mark.parametrize(("policy", "router", "k"), CASES)
def test_backlogged_log_gives_the_same_summary_and_verdicts(policy, router, k):
    w = default_workload(0).head(400)
    inst = InstanceConfig(max_batch_size=8)
    params = {"quantum": 2048.0} if policy == "dlpm" else None
    full = simulate_for_check(w, policy, router, k, inst, policy_params=params)
    small = simulate_for_check(w, policy, router, k, inst, service_log="backlogged", policy_params=params)
    assert small.service_log == "backlogged" and full.service_log == "full"
    assert len(small.svc_t) < len(full.svc_t)  # it does drop entries
    s_full, s_small = summarize(full), summarize(small)
    assert s_full["max_service_gap"] > 0
    assert s_small == s_full
    v_full = [v.to_dict() for v in check_run(full, policy, {"quantum": 2048.0})]
    v_small = [v.to_dict() for v in check_run(small, policy, {"quantum": 2048.0})]
    assert v_small == v_full


@pytest.mark.parametrize(("policy", "router", "k"), CASES)
def test_x_measured_during_the_run_equals_x_from_the_full_log(policy, router, k):
    res = simulate_for_check(default_workload(1).head(300), policy, router, k, InstanceConfig(max_batch_size=6))
    on_the_fly = measured_x(res)
    from_log = copy.copy(res)
    from_log.inst_x = None
    assert on_the_fly == measured_x(from_log)
    assert max(on_the_fly.values()) > 0


def test_backlogged_log_refuses_what_needs_the_full_log():
    res = simulate(default_workload(0).head(100), "vtc", service_log="backlogged")
    from fairsched.analysis.metrics import service_curves

    with pytest.raises(ValueError, match="full service log"):
        service_curves(res)
    with pytest.raises(ValueError, match="full service log"):
        measured_x(res)
    with pytest.raises(ValueError, match="service_log"):
        simulate(default_workload(0).head(10), "vtc", service_log="some")


def test_logged_decode_run_steps_are_the_runs_own_step_times():
    """The times logged for a decode run are Instance._run_end(1..k), whatever the cost
    model's closed form (the last is the event's own time)."""
    from fairsched.sim.simulator import Simulator

    sim = Simulator(default_workload(0).head(60), "fcfs")
    seen = []
    orig = sim.res.service_steps

    def spy(times, client, amount):
        seen.append(list(times))
        orig(times, client, amount)

    sim.res.service_steps = spy
    inst = sim.instances[0]
    old_end = type(inst)._step_ends

    def check(self, k, now):
        assert now == self._run_end(k)  # the event's time: StepTimes[-1] without recomputing
        st = old_end(self, k, now)
        assert np.asarray(st).tolist() == [self._run_end(m) for m in range(1, k + 1)]
        assert [st[j] for j in (0, -1)] == [self._run_end(1), now]
        return st

    type(inst)._step_ends = check
    try:
        sim.run()
    finally:
        type(inst)._step_ends = old_end
    assert seen and all(t == sorted(t) for t in seen)
