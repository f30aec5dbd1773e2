"""Scheduling policies: per-instance queue policies and cluster routers, one interface
each (:mod:`fairsched.policies.base`), used by the simulator and the torch engine alike."""

from __future__ import annotations

from collections.abc import Callable

from fairsched.policies.base import (
    Admission,
    ClusterView,
    InstanceView,
    QueuePolicy,
    Router,
    ServiceMeasure,
    ServiceWeights,
)
from fairsched.policies.queue import DLPM, FCFS, LPM, QUEUE_POLICIES, VTC
from fairsched.policies.routers import (
    D2LPM,
    ROUTERS,
    LeastLoad,
    Linear,
    LMetric,
    LMetricSeconds,
    RoundRobin,
    SGLangCacheAware,
    VLLMv1,
)

# "dlpm-global": DLPM with one deficit per client shared by all instances, which pull from
# each other's queues (fairsched.policies.global_dlpm; proofs/d2lpm_bound.md, Theorem F)
POLICY_NAMES = (*QUEUE_POLICIES, "dlpm-global")
ROUTER_NAMES = tuple(ROUTERS)


def default_quantum(workload, weights: ServiceWeights | None = None) -> float:
    """The quantum the CLI uses for DLPM (``Q^u``) and D²LPM (``Q^w``) when none is given:
    ``max(w_p L_in, w_q O_max)`` of the workload (``Workload.max_request_cost``; O_max the
    longest output; not VTC's U, which takes the KV capacity), the largest charge of one
    prompt or one output. Deficit round robin's rule (Shreedhar & Varghese, SIGCOMM'95):
    with a quantum at least the largest cost, one refill round always lets a backlogged
    client be served, and a client is not pushed off the worker that holds its prefix by
    a single request. Measured on the Mooncake trace (16 instances): D²LPM with
    ``Q^w = 8192`` keeps a 7.0% hit rate, with ``Q^w`` = this quantity 24.7%.
    """
    w = weights or ServiceWeights()
    return float(workload.max_request_cost(w.w_p, w.w_q))


def make_policy_factory(name: str, weights: ServiceMeasure | None = None, **params) -> Callable[[], QueuePolicy]:
    """A zero-argument factory of fresh queue policies called ``name``.

    ``params`` go to the policy (e.g. ``quantum`` for ``dlpm``). ``dlpm-global``: every policy
    of one factory shares one deficit table (:func:`~fairsched.policies.global_dlpm.global_dlpm_factory`;
    use one factory per run). ``weights`` is not used:
    policies are charged by the backend with the run's service measure (kept so that
    existing callers need not change).
    Raises:
        ValueError: on an unknown name, listing the known ones.
    """
    if name == "dlpm-global":  # one shared deficit table per factory (per run)
        from fairsched.policies.global_dlpm import global_dlpm_factory
        return global_dlpm_factory(**params)
    if name not in QUEUE_POLICIES:
        raise ValueError(f"unknown policy {name!r}; choose from {', '.join(POLICY_NAMES)}")
    cls = QUEUE_POLICIES[name]
    return lambda: cls(**params)


def make_policies(policy: str | Callable[[], QueuePolicy] | QueuePolicy, n_instances: int,
                  params: dict | None = None) -> list[QueuePolicy]:
    """One queue policy per instance (for :meth:`ClusterBackend._init_cluster
    <fairsched.sim.backend.ClusterBackend._init_cluster>`): ``policy`` is a name (built by
    :func:`make_policy_factory` with ``params``), a zero-argument factory, or, for one
    instance, a policy object (used as is).

    Raises:
        ValueError: on ``n_instances < 1``, a policy object with several instances, or an
            unknown name.
    """
    if n_instances < 1:
        raise ValueError(f"n_instances must be >= 1, got {n_instances}")
    if isinstance(policy, QueuePolicy):
        if n_instances != 1:
            raise ValueError("pass a policy name or factory when n_instances > 1")
        return [policy]
    factory = make_policy_factory(policy, **(params or {})) if isinstance(policy, str) else policy
    return [factory() for _ in range(n_instances)]


def make_router(name: str, weights: ServiceMeasure | None = None, **params) -> Router:
    """A router called ``name`` (``params`` go to its constructor, e.g. ``lam``).

    Raises:
        ValueError: on an unknown name, listing the known ones.
    """
    if name not in ROUTERS:
        raise ValueError(f"unknown router {name!r}; choose from {', '.join(ROUTER_NAMES)}")
    cls = ROUTERS[name]
    if cls is D2LPM:
        params.setdefault("weights", weights)
    return cls(**params)


__all__ = ["D2LPM", "DLPM", "FCFS", "LPM", "VTC", "Admission", "ClusterView", "InstanceView", "LMetric", "LMetricSeconds",
           "LeastLoad", "Linear", "POLICY_NAMES", "QueuePolicy", "ROUTER_NAMES", "RoundRobin", "Router",
           "SGLangCacheAware", "ServiceMeasure", "ServiceWeights", "VLLMv1", "default_quantum", "make_policy_factory", "make_router"]
