"""The claims' simulations as grids on the kit's one executor (:mod:`fairsched.sweep.grid`).

A claim lists its runs as :class:`SimJob` s (workload, policy, hardware, router, and a
module-level ``measure`` function that turns the run's result into the numbers the claim
keeps) and hands them to :func:`run_jobs`, which maps them over the current
:class:`~fairsched.sweep.GridRunner`: serial by default, the runner of :func:`using`
otherwise (``fairsched reproduce`` opens a local process pool, or Ray with ``--ray``).
Only the measured numbers travel back, and each job is one deterministic simulation, so
the numbers, verdicts and tables are the same whichever executor ran them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SimJob", "run_jobs", "using"]

_RUNNER = None  # the GridRunner of the enclosing `using` block (None: serial, no progress bar)


@dataclass(frozen=True)
class SimJob:
    """One simulation of a claim (:func:`fairsched.reproduce.common.simulate`'s arguments).

    Attributes:
        workload: the requests (a :class:`~fairsched.workload.Workload`).
        policy: local queue policy name (``fcfs``, ``lpm``, ``vtc``, ``dlpm``, ...).
        cost: the :class:`~fairsched.sim.CostModel`; ``instance`` its InstanceConfig (None: default).
        quantum: DLPM's ``Q^u`` [service units] (None: :func:`~fairsched.reproduce.common.quantum_u`).
        router: a router object (None: one instance); ``n_instances`` instances.
        measure: module-level ``measure(result) -> dict`` of the numbers the claim keeps
            (it runs where the simulation ran; the result itself does not travel).
    """

    workload: Any
    policy: str
    cost: Any
    instance: Any = None
    quantum: float | None = None
    router: Any = None
    n_instances: int = 1
    measure: Callable[[Any], Any] | None = None


def _run_job(job: SimJob):
    from fairsched.reproduce import common as cm

    res = cm.simulate(job.workload, job.policy, job.cost, job.instance, quantum=job.quantum, router=job.router,
                      n_instances=job.n_instances)
    return job.measure(res) if job.measure is not None else res


def run_jobs(jobs: Mapping[Any, SimJob], desc: str = "runs") -> dict:
    """``{key: job.measure(simulate(job))}`` for every job, on the current runner.

    Raises:
        Exception: a job's exception (the runner names the failing job).
    """
    from fairsched.sweep import GridRunner

    keys = list(jobs)
    runner = _RUNNER if _RUNNER is not None else GridRunner(1, progress=False)
    return dict(zip(keys, runner.map(_run_job, [jobs[k] for k in keys], desc=desc), strict=True))


@contextlib.contextmanager
def using(runner) -> Iterator[None]:
    """Run the claims' jobs inside this block on ``runner`` (a :class:`~fairsched.sweep.GridRunner`)."""
    global _RUNNER
    prev, _RUNNER = _RUNNER, runner
    try:
        yield
    finally:
        _RUNNER = prev
