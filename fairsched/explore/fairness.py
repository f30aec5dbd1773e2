"""What :func:`~fairsched.explore.fairness_explorer` computes, as plain functions.

One point of the explorer = one fast simulation of a small workload under VTC, DLPM or
D²LPM, the bound verdicts of :func:`fairsched.analysis.bounds.check_run` on it, and the
proved bound of :mod:`fairsched.theory.fairness` as a sympy expression evaluated on the
workload. Nothing here derives a formula: the bound comes from the theory functions, the
measured gap from the analysis module, the run from the simulator.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import pandas as pd
import sympy as sp

from fairsched.workload.request import Workload

__all__ = ["POLICIES", "FairnessParams", "FairnessPoint", "default_fairness_workload", "fairness_point",
           "proved_bound_expr", "supports_admission", "supports_service"]

POLICIES = {"VTC": "vtc", "DLPM": "dlpm", "D²LPM": "d2lpm"}
"""Explorer label -> policy key (``d2lpm`` = DLPM per worker behind the D²LPM router)."""


def default_fairness_workload(seed: int = 0) -> Workload:
    """The explorer's default: long-document QA, 4 clients x 30 questions (120 requests,
    2-4k-token documents, 2 questions/s per client): a run takes ~0.1 s on one core."""
    from fairsched.workload.generators import long_document_qa

    return long_document_qa(n_clients=4, questions_per_client=30, doc_tokens=(2000, 4000), rate=2.0, seed=seed)


def supports_admission() -> bool:
    """Whether the simulator's :class:`~fairsched.sim.InstanceConfig` has an ``admission``
    rule to choose (the explorer shows the control only then)."""
    from fairsched.sim import InstanceConfig

    return "admission" in {f.name for f in dataclasses.fields(InstanceConfig)}


def supports_service() -> bool:
    """Whether the policies accept a ``service`` measure (tokens / seconds)."""
    import inspect

    from fairsched.policies import make_policy_factory

    return "service" in inspect.signature(make_policy_factory).parameters


@dataclass(frozen=True)
class FairnessParams:
    """One setting of the fairness explorer's controls.

    Attributes:
        policy: ``vtc``, ``dlpm`` or ``d2lpm``.
        quantum: DLPM's per-client quantum ``Q^u`` [service units] (DLPM, D²LPM).
        quantum_w: D²LPM's per-(client, worker) quantum ``Q^w`` [service units].
        w_p, w_q: service weights per prefill / decode token.
        n_instances: instances (D²LPM needs >= 2; VTC / DLPM with several instances are
            routed least-load).
        kv_capacity: KV-cache tokens per instance.
        admission: admission rule passed to ``InstanceConfig`` when it has one (None:
            the simulator's default).
        service: service measure when the policies support one (``tokens`` default).
    """

    policy: str = "dlpm"
    quantum: float = 4096.0
    quantum_w: float = 8192.0
    w_p: float = 1.0
    w_q: float = 2.0
    n_instances: int = 1
    kv_capacity: int = 24_000
    admission: str | None = None
    service: str = "tokens"

    def __post_init__(self):
        if self.policy not in POLICIES.values():
            raise ValueError(f"policy must be one of {sorted(POLICIES.values())}, got {self.policy!r}")
        if self.policy == "d2lpm" and self.n_instances < 2:
            raise ValueError("D²LPM needs n_instances >= 2")
        for k in ("quantum", "quantum_w", "w_p", "w_q"):
            if not getattr(self, k) > 0:
                raise ValueError(f"{k} must be > 0, got {getattr(self, k)}")


@dataclass
class FairnessPoint:
    """What the explorer shows for one :class:`FairnessParams`.

    Attributes:
        params: the setting.
        bound_expr: the proved bound as a sympy expression (symbols of
            :mod:`fairsched.theory.symbols`), with ``X <= w_p L_in + k w_q M``.
        bound: that expression evaluated on the workload [service units] (``L_in``, ``M``
            from the workload, ``k`` the most requests of one client running at once on one
            instance in this run).
        k: that concurrency.
        verdicts: :func:`~fairsched.analysis.bounds.check_run`'s verdicts on the run.
        measured_gap: the measured worst service gap in the proved bound's scope.
        pair: the client pair attaining it (f ahead), or None.
        curves: cumulative service ``W(t)`` of that pair (``client, t, W``).
        hit_rate: cached prompt tokens / prompt tokens.
        throughput_tok_s: (prompt + output tokens) / makespan [tokens/s].
        seconds: wall-clock time of the computation [s].
        result: the :class:`~fairsched.sim.SimResult`.
    """

    params: FairnessParams
    bound_expr: sp.Expr
    bound: float
    k: int
    verdicts: list
    measured_gap: float
    pair: tuple[str, str] | None
    curves: pd.DataFrame
    hit_rate: float | None
    throughput_tok_s: float | None
    seconds: float
    result: object = field(repr=False, default=None)

    def to_frame(self) -> pd.DataFrame:
        """The verdicts as a DataFrame."""
        from fairsched.analysis.bounds import verdict_frame

        return verdict_frame(self.verdicts)

    to_pandas = to_frame

    def _repr_html_(self) -> str:
        from fairsched.display import html_table

        return html_table(self.to_frame()[["check", "scope", "bound", "measured", "ratio", "status"]],
                          title=f"{self.params.policy}: proved bound {self.bound:.6g}, measured gap "
                                f"{self.measured_gap:.6g} service units")


def proved_bound_expr(policy: str, k=None) -> sp.Expr:
    """The proved service-gap bound of ``policy`` from :mod:`fairsched.theory.fairness`
    (``vtc``: ``2X``, ``dlpm``: ``2(Q^u + X)``, ``d2lpm``: ``2K(Q^u + X)`` for clients
    backlogged at every worker); with ``k`` given, ``X`` is replaced by its bound
    ``w_p L_in + k w_q O_max`` (O_max the longest output).

    Raises:
        ValueError: on another policy.
    """
    from fairsched.theory import fairness as F

    fn = {"vtc": F.vtc_upper_bound, "dlpm": F.dlpm_gap_bound, "d2lpm": F.d2lpm_gap_bound_per_worker}.get(policy)
    if fn is None:
        raise ValueError(f"no proved bound for policy {policy!r}")
    return fn(k)


def _simulate(workload: Workload, p: FairnessParams):
    from fairsched.analysis.bounds import simulate_for_check
    from fairsched.policies import ServiceWeights, make_policy_factory, make_router
    from fairsched.sim import InstanceConfig

    w = ServiceWeights(p.w_p, p.w_q)
    kw = {"quantum": p.quantum} if p.policy in ("dlpm", "d2lpm") else {}
    if p.service != "tokens" and supports_service():
        kw["service"] = p.service
    policy = make_policy_factory("vtc" if p.policy == "vtc" else "dlpm", w, **kw)
    router = None
    if p.n_instances > 1:
        router = (make_router("d2lpm", w, quantum_w=p.quantum_w) if p.policy == "d2lpm"
                  else make_router("least-load"))
    inst_kw = {"kv_capacity_tokens": int(p.kv_capacity)}
    if p.admission is not None and supports_admission():
        inst_kw["admission"] = p.admission
    return simulate_for_check(workload, policy, router, n_instances=p.n_instances,
                              instance=InstanceConfig(**inst_kw), weights=w)


def fairness_point(workload: Workload | None = None, params: FairnessParams | None = None, **kw) -> FairnessPoint:
    """Simulate ``workload`` (default :func:`default_fairness_workload`) under ``params``
    (or ``FairnessParams(**kw)``), check the bounds and evaluate the proved one.

    Raises:
        ValueError: bad parameters, or a request that cannot fit ``kv_capacity``.
    """
    from fairsched.analysis.bounds import check_run, concurrency_k
    from fairsched.analysis.metrics import cache_hit_rate, service_curves, throughput_tok_s
    from fairsched.display import Table
    from fairsched.theory.fairness import evaluate

    t0 = time.perf_counter()
    wl = workload if workload is not None else default_fairness_workload()
    p = params or FairnessParams(**kw)
    res = _simulate(wl, p)
    policy = "vtc" if p.policy == "vtc" else "dlpm"
    verdicts = check_run(res, policy, {"quantum": p.quantum, "quantum_w": p.quantum_w, "w_p": p.w_p,
                                       "w_q": p.w_q, "label": p.policy})
    k = max(max(concurrency_k(res).values(), default=1), 1)
    expr = proved_bound_expr(p.policy, k)
    bound = evaluate(expr, workload=wl, w_p=p.w_p, w_q=p.w_q, Q_u=p.quantum, K=p.n_instances, k=k)
    v = _proved_verdict(verdicts, p.policy)
    pair = v.pair if v is not None else None
    if pair is None:  # nothing backlogged together in the proved scope: the worst pair anywhere
        pair = max(verdicts, key=lambda u: u.measured).pair
    curves = service_curves(res, list(pair)) if pair else service_curves(res, [])
    return FairnessPoint(p, expr, float(bound), int(k), Table(verdicts, _verdict_frame), float(v.measured) if v else 0.0,
                         tuple(pair) if pair else None, curves, cache_hit_rate(res),
                         throughput_tok_s(res)["throughput_tok_s"], time.perf_counter() - t0, res)


def _verdict_frame(vs):
    from fairsched.analysis.bounds import verdict_frame

    return verdict_frame(vs)


def _proved_verdict(verdicts, policy: str):
    """The verdict whose scope matches :func:`proved_bound_expr`: the per-instance proved
    bound (one instance, VTC/DLPM) or the per-worker sum (several instances)."""
    proved = [v for v in verdicts if v.kind == "proved"]
    if policy == "d2lpm":
        proved = [v for v in proved if v.scope == "backlogged at every instance"] or proved
    return proved[0] if proved else None
