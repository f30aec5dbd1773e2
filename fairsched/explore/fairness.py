"""What :func:`~fairsched.explore.fairness_explorer` computes, as plain functions.

One point of the explorer = one fast simulation of a small workload under VTC, DLPM or
D²LPM, the bound verdicts of :func:`fairsched.analysis.bounds.check_run` on it, and the
proved bound of :mod:`fairsched.theory.fairness` as a sympy expression evaluated on the
workload. Nothing here derives a formula: the bound comes from the theory functions, the
measured gap from the analysis module, the run from the simulator.

Service in seconds (``service="seconds"``): the run charges the cost model's predicted
seconds (:class:`~fairsched.policies.seconds.SecondsService`, ``simulate(service=)``), the
bounds are those of ``proofs/seconds_bounds.md`` Theorem 1 (the same ``2X``, ``2(Q^u + X)``,
``2K(Q^u + X)`` with ``X = X_s`` and ``Q^u`` in seconds) and the verdicts come from
:func:`fairsched.analysis.seconds_check.check_seconds`. The explorer's quanta stay one pair of
sliders in tokens; with seconds service each is read as the prompt tokens of one prefill
with nothing cached and converted by the cost model, ``Q_s = t_pre(Q, 0)``
(:func:`seconds_quantum`), so a slider position means the same prefill work in both
measures (with ``w_p = 1``). ``X_s`` is bounded a priori as ``check_seconds`` does:
``X_s <= t_pre^max(L_in) + k D_max`` (:func:`proved_bound_expr`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import pandas as pd
import sympy as sp

from fairsched.workload.request import Workload

__all__ = ["POLICIES", "FairnessParams", "FairnessPoint", "default_fairness_workload", "fairness_point",
           "proved_bound_expr", "seconds_quantum", "supports_admission"]

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


P_MAX_S = sp.Symbol("t^{max}_{pre}", nonnegative=True)
"""Largest predicted prefill time of one prompt at any split into cached / new tokens [s]
(:func:`fairsched.analysis.seconds_check.prefill_cap_seconds` of the longest prompt)."""
D_MAX_S = sp.Symbol("D_{max}", nonnegative=True)
"""Largest worst-case decode charge of one request [s]
(:meth:`fairsched.policies.seconds.SecondsService.request_decode`)."""


def seconds_quantum(quantum_tokens: float, cost) -> float:
    """A quantum given in tokens, in predicted seconds: ``t_pre(Q, 0)``, the cost model's time
    to prefill ``Q`` prompt tokens with nothing cached [s] (``CostModel.prefill_time``,
    ``proofs/cost_model.md``); ``Q`` rounded to whole tokens.

    Raises:
        ValueError: if ``quantum_tokens`` is not > 0.
    """
    if not quantum_tokens > 0:
        raise ValueError(f"quantum must be > 0 tokens, got {quantum_tokens}")
    return float(cost.prefill_time(max(int(round(quantum_tokens)), 1), 0))


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
        service: ``tokens`` (``w_p``, ``w_q`` weighted tokens) or ``seconds`` (the cost
            model's predicted seconds; ``quantum`` and ``quantum_w`` are then converted by
            :func:`seconds_quantum`, and ``w_p``, ``w_q`` do not enter).
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
        if self.service not in ("tokens", "seconds"):
            raise ValueError(f"service must be 'tokens' or 'seconds', got {self.service!r}")
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
        bound: that expression evaluated on the workload [``unit``] (``L_in``, ``O_max``
            from the workload, ``k`` the most requests of one client running at once on one
            instance in this run; seconds: ``t^max_pre``, ``D_max`` and ``Q^u`` in seconds).
        k: that concurrency.
        verdicts: :func:`~fairsched.analysis.bounds.check_run`'s verdicts on the run.
        measured_gap: the measured worst service gap in the proved bound's scope.
        pair: the client pair attaining it (f ahead), or None.
        curves: cumulative service ``W(t)`` of that pair (``client, t, W``).
        hit_rate: cached prompt tokens / prompt tokens.
        throughput_tok_s: (prompt + output tokens) / makespan [tokens/s].
        seconds: wall-clock time of the computation [s].
        result: the :class:`~fairsched.sim.SimResult`.
        unit: ``"service units"`` (token service) or ``"s"`` (predicted seconds).
        values: the numbers substituted into ``bound_expr`` (symbol name -> value; ``Q_u``
            in ``unit``).
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
    unit: str = "service units"
    values: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The verdicts as a DataFrame."""
        from fairsched.analysis.bounds import verdict_frame

        return verdict_frame(self.verdicts)

    to_pandas = to_frame

    def _repr_html_(self) -> str:
        from fairsched.display import html_table

        return html_table(self.to_frame()[["check", "scope", "bound", "measured", "ratio", "status"]],
                          title=f"{self.params.policy} ({self.params.service}): proved bound {self.bound:.6g}, "
                                f"measured gap {self.measured_gap:.6g} {self.unit}")


def proved_bound_expr(policy: str, k=None, service: str = "tokens") -> sp.Expr:
    """The proved service-gap bound of ``policy`` from :mod:`fairsched.theory.fairness`
    (``vtc``: ``2X``, ``dlpm``: ``2(Q^u + X)``, ``d2lpm``: ``2K(Q^u + X)`` for clients
    backlogged at every worker); with ``k`` given, ``X`` is replaced by its bound: tokens
    ``w_p L_in + k w_q O_max`` (O_max the longest output); seconds ``t^max_pre + k D_max``
    [s] (``proofs/seconds_bounds.md`` Theorem 1, the a-priori ``X_s`` of
    :mod:`fairsched.analysis.seconds_check`; symbols :data:`P_MAX_S`, :data:`D_MAX_S`).

    Raises:
        ValueError: on another policy or service.
    """
    from fairsched.theory import fairness as F
    from fairsched.theory.symbols import X

    fn = {"vtc": F.vtc_upper_bound, "dlpm": F.dlpm_gap_bound, "d2lpm": F.d2lpm_gap_bound_per_worker}.get(policy)
    if fn is None:
        raise ValueError(f"no proved bound for policy {policy!r}")
    if service == "tokens":
        return fn(k)
    if service != "seconds":
        raise ValueError(f"service must be 'tokens' or 'seconds', got {service!r}")
    return fn() if k is None else fn().subs(X, P_MAX_S + k * D_MAX_S)


def _simulate(workload: Workload, p: FairnessParams, cost, measure, quanta: tuple[float, float]):
    from fairsched.analysis.bounds import simulate_for_check
    from fairsched.policies import ServiceWeights, make_policy_factory, make_router
    from fairsched.sim import InstanceConfig

    w = ServiceWeights(p.w_p, p.w_q)
    q_u, q_w = quanta
    policy = make_policy_factory("vtc" if p.policy == "vtc" else "dlpm", w,
                                 **({"quantum": q_u} if p.policy in ("dlpm", "d2lpm") else {}))
    router = None
    if p.n_instances > 1:
        router = (make_router("d2lpm", measure, quantum_w=q_w) if p.policy == "d2lpm"
                  else make_router("least-load"))
    inst_kw = {"kv_capacity_tokens": int(p.kv_capacity)}
    if p.admission is not None and supports_admission():
        inst_kw["admission"] = p.admission
    return simulate_for_check(workload, policy, router, n_instances=p.n_instances,
                              instance=InstanceConfig(**inst_kw), cost=cost, weights=measure)


def fairness_point(workload: Workload | None = None, params: FairnessParams | None = None, cost=None,
                   **kw) -> FairnessPoint:
    """Simulate ``workload`` (default :func:`default_fairness_workload`) under ``params``
    (or ``FairnessParams(**kw)``), check the bounds and evaluate the proved one.

    ``cost`` (a :class:`~fairsched.sim.CostModel`, default ``CostModel()``) times the run and,
    with ``service="seconds"``, is the model whose predicted seconds are the service (see the
    module docstring for the quanta and ``X_s``).

    Raises:
        ValueError: bad parameters, or a request that cannot fit ``kv_capacity``.
    """
    from fairsched.analysis.bounds import check_run, concurrency_k
    from fairsched.analysis.metrics import cache_hit_rate, service_curves, throughput_tok_s
    from fairsched.display import Table
    from fairsched.policies import ServiceWeights
    from fairsched.sim import CostModel
    from fairsched.theory.fairness import evaluate

    t0 = time.perf_counter()
    wl = workload if workload is not None else default_fairness_workload()
    p = params or FairnessParams(**kw)
    cost = cost if cost is not None else CostModel()
    policy = "vtc" if p.policy == "vtc" else "dlpm"
    if p.service == "seconds":
        from fairsched.analysis.seconds_check import check_seconds, prefill_cap_seconds
        from fairsched.policies.seconds import SecondsService

        measure = SecondsService(cost, None, int(p.kv_capacity))  # as `fairsched check --service seconds`
        quanta = (seconds_quantum(p.quantum, cost), seconds_quantum(p.quantum_w, cost))
        res = _simulate(wl, p, cost, measure, quanta)
        verdicts = check_seconds(res, policy, measure, quanta[0] if policy == "dlpm" else None, p.policy)
        values = {"t^{max}_{pre}": max(prefill_cap_seconds(cost, r.input_len) for r in wl),
                  "D_{max}": max(measure.request_decode(r.input_len, r.output_len) for r in wl)}
        unit = "s"
    else:
        quanta = (p.quantum, p.quantum_w)
        res = _simulate(wl, p, cost, ServiceWeights(p.w_p, p.w_q), quanta)
        verdicts = check_run(res, policy, {"quantum": p.quantum, "quantum_w": p.quantum_w, "w_p": p.w_p,
                                           "w_q": p.w_q, "label": p.policy})
        values, unit = {}, "service units"
    k = max(max(concurrency_k(res).values(), default=1), 1)
    expr = proved_bound_expr(p.policy, k, p.service)
    values.update({"Q_u": quanta[0], "K": p.n_instances, "k": k})
    if p.service == "tokens":
        bound = evaluate(expr, workload=wl, w_p=p.w_p, w_q=p.w_q, **values)
    else:
        bound = evaluate(expr, {P_MAX_S: values["t^{max}_{pre}"], D_MAX_S: values["D_{max}"]},
                         Q_u=quanta[0], K=p.n_instances, k=k)
    v = _proved_verdict(verdicts, p.policy)
    pair = v.pair if v is not None else None
    if pair is None:  # nothing backlogged together in the proved scope: the worst pair anywhere
        pair = max(verdicts, key=lambda u: u.measured).pair
    curves = service_curves(res, list(pair)) if pair else service_curves(res, [])
    return FairnessPoint(p, expr, float(bound), int(k), Table(verdicts, _verdict_frame), float(v.measured) if v else 0.0,
                         tuple(pair) if pair else None, curves, cache_hit_rate(res),
                         throughput_tok_s(res)["throughput_tok_s"], time.perf_counter() - t0, res, unit, values)


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
