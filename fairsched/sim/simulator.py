"""Discrete-event simulator of a cluster of continuous-batching instances.

Separation as in Vidur: requests come from a :class:`~fairsched.workload.Workload`, the
scheduling decisions from a :class:`~fairsched.policies.base.Router` and one
:class:`~fairsched.policies.base.QueuePolicy` per instance, and iteration times from a
:class:`~fairsched.sim.cost.CostModel`. This module only moves time forward; the iteration
loop and KV bookkeeping below are :class:`~fairsched.sim.instance.InstanceBase`'s, shared
with the torch engine (:mod:`fairsched.engine.instance`).

One instance iteration (vLLM-v1 / Sarathi style chunked prefill):

1. every decoding sequence takes one token of the per-iteration ``token_budget``;
2. sequences admitted earlier and still in prefill get the next chunk of their prompt,
   in admission order, from what is left of the budget;
3. the queue policy admits waiting requests while the batch (``max_batch_size``), the
   budget and KV memory allow; each new request gets its first chunk;
4. the iteration lasts ``sum(prefill_time(chunk, context)) + decode_time(B, C)``;
   a sequence whose prompt is complete emits its first token at the end of it (TTFT).

KV memory (``kv_capacity_tokens``) is shared by the radix-tree prefix cache and the
running requests. With ``InstanceConfig.admission="reserve"`` (default) admission reserves
the request's uncached prompt blocks plus its output tokens (so no running request is ever
preempted); with ``"peak"`` it admits when the projected peak of the running batch fits
and output memory grows one token per step (:mod:`fairsched.sim.admission`; output
lengths are known in advance, so nothing is preempted either). Admission locks the cached
prefix; LRU unreferenced cache blocks are evicted to make room. When the prefill
completes, the prompt is inserted into the cache (its blocks move from the reservation
into the cache); output tokens are released when the request finishes (they are not
cached).
A request whose uncached prompt overlaps a prompt still being prefilled on the instance
is deferred one iteration (``Admission.DEFERRED``), so no prompt block is computed twice unless it was
evicted in between. Same inputs, same result: nothing here is random.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from fairsched._mypyc import mypyc_attr
from fairsched.cache.radix import RadixCache
from fairsched.policies.base import Router
from fairsched.policies.service import ServiceMeasure, ServiceWeights
from fairsched.sim.backend import ClusterBackend, PolicySpec
from fairsched.sim.config import InstanceConfig
from fairsched.sim.cost import CostModel, run_seconds, run_times
from fairsched.sim.instance import InstanceBase, Seq, ServingInstance
from fairsched.sim.result import SimResult
from fairsched.sim.seq import QueueLike
from fairsched.workload.request import Workload


@mypyc_attr(allow_interpreted_subclasses=True)
class Instance(InstanceBase):
    """One simulated instance (:class:`~fairsched.sim.instance.InstanceBase`, counting KV
    memory in tokens): iteration times come from the cost model, and a run of pure-decode
    iterations is one event (exactly; see :meth:`_start` and :meth:`interrupt`)."""

    __slots__ = ("sim", "_run", "_coef", "_off", "_charged", "_runs")

    def __init__(self, idx: int, sim: Simulator, policy: QueueLike):
        super().__init__(idx, sim, policy, unit=1)
        self.sim = sim
        self.cache = RadixCache(None, self.bs)
        self._run = (0.0, 0, 0, 0.0)  # decode run: (start time, batch size, context tokens, first step [s])
        self._coef = (0.0, 0.0, 0, 0)  # decode run: (decode_c B, decode_q, 2 C B, B^2)
        self._off = 0  # decode run: steps already applied (settled at an arrival, see `enqueue`)
        # the policy is charged for decode (VTC, DLPM, ...): its counters are read at arrivals
        self._charged = self.charge is not None
        self._runs = sim.decode_runs and not self.pulls  # decode runs allowed (see _start)

    def _start(self, now: float) -> float | None:
        self._steps, self._off = 1, 0
        if self._runs and not self.prefilling and self.decoding and not self.waiting:
            # Decode run: nothing can change on this instance before its first sequence
            # finishes or a request arrives here (which truncates the run, see
            # `interrupt`), so k decode steps become one event, exactly. (Not for a policy
            # that pulls other instances' requests: it may admit at any step.)
            k = min([s.olen - s.generated for s in self.decoding])
            b, ctx = len(self.decoding), self._ctx()
            cost = self.sim.cost
            self._run = (now, b, ctx, cost.decode_time(b, ctx))
            self._coef = cost.run_coef(b, ctx)  # (_run_end's terms that do not depend on m)
            self._steps = k
            return self._run_end(k)
        dur = self._model_time(self.sim.cost)
        return now + dur if dur != 0.0 else None

    def _run_end(self, m: int) -> float:
        """End of the m-th step of the current decode run: the context grows by one token
        per sequence per step, so sum_{j<m} decode_time(B, C + j B) in closed form."""
        # = t0 + decode_run_time(b, ctx, m) (b, m >= 1), its run-constant terms kept in `_coef`
        return self._run[0] + run_seconds(m, self._run[3], self._coef)

    def _step_ends(self, k: int, now: float) -> StepTimes:
        return StepTimes(self, k, now, self._off)

    def _first_end(self, now: float) -> tuple[int, float | None]:
        """The smallest run step ``m`` (counted from the run's start, ``_off < m <= _off +
        _steps``) with ``_run_end(m) >= now`` (``_run_end`` increases with m), and its end
        if computed (else None): bisection, narrowed first around m ~ (now - t0) / (first
        step's seconds) (checked, so exact)."""
        lo, hi = self._off + 1, self._off + self._steps
        t0, step = self._run[0], self._run[3]
        end = None  # _run_end(hi), once computed
        if step > 0:
            g = int((now - t0) / step) + 1  # (clamped to lo..hi)
            g = lo if g < lo else (hi if g > hi else g)
            if (e := self._run_end(g)) >= now:
                hi, end = g, e
                if g > lo and self._run_end(g - 1) < now:
                    lo = g
            else:
                lo = g + 1
        if lo > hi:
            lo = hi
        while lo < hi:
            mid = (lo + hi) // 2
            if (e := self._run_end(mid)) < now:
                lo = mid + 1
            else:
                hi, end = mid, e
        return lo, (end if hi == lo else None)

    def interrupt(self, now: float) -> None:
        """A request arrived at ``now`` during a decode run: end the run at the first step
        boundary at or after ``now`` (where the step-by-step simulation would schedule)."""
        if self._steps <= 1:
            return
        m, end = self._first_end(now)
        if m >= self._off + self._steps:
            return
        self._steps = m - self._off
        self.gen += 1
        self.sim._push(end if end is not None else self._run_end(m), self.idx, self.gen)

    def enqueue(self, req, now: float, cached: int | None = None) -> None:
        """As :meth:`InstanceBase.enqueue`; first, if a decode run is under way and the
        policy is charged for decode, the run's steps that ended before ``now`` are applied
        (tokens, service charged and logged at their step times), as the step-by-step
        simulation would have done before this arrival: the policy may read its counters at
        the arrival (VTC's lift). The run's end event applies only the rest (no step twice)."""
        if self._charged and self._steps > 1 and self.busy:
            m, _ = self._first_end(now)
            j = m - 1 - self._off  # steps of the run that ended before now, not yet applied
            if j > 0:  # (j < _steps: the run's event has not ended yet)
                for s in self.decoding:
                    s.generated += j
                self._dctx += j * len(self.decoding)
                times = [self._run_end(self._off + 1)] if j == 1 else \
                    StepTimes(self, j, self._run_end(self._off + j), self._off)
                self.sim._on_decode(self, self.decoding, times, self._decode_dt)
                self._off += j
                self._steps -= j
        super().enqueue(req, now, cached)


class StepTimes:
    """The end times of steps 1..k of an instance's decode run, computed when asked:
    ``len``, ``[0]``, ``[-1]`` (one :meth:`Instance._run_end` each) and ``numpy.asarray``
    (all k at once, :meth:`CostModel.decode_run_times`: the very floats of :meth:`Instance._run_end`
    that the run's events use). Most runs need only the first and the last."""

    __slots__ = ("inst", "k", "end", "off")

    def __init__(self, inst: Instance, k: int, end: float, off: int = 0):
        # steps off+1..off+k of the run; end: the last one's end (the event's time)
        self.inst, self.k, self.end, self.off = inst, k, end, off

    def __len__(self) -> int:
        return self.k

    def __getitem__(self, j: int) -> float:
        if not -self.k <= j < self.k:
            raise IndexError(j)
        m = self.off + j % self.k + 1
        if m == self.off + self.k:
            return self.end
        if m == 1:  # (_run_end(1): t0 + _run_sum(b, ctx, 1, step) is exactly t0 + step)
            return self.inst._run[0] + self.inst._run[3]
        return self.inst._run_end(m)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        inst = self.inst  # (= cost.decode_run_times(b, ctx, off + k)[off:]: the same floats)
        return np.asarray(inst._run[0] + run_times(self.k, inst._run[3], inst._coef, self.off), dtype=dtype or float)


@mypyc_attr(allow_interpreted_subclasses=True)
class Simulator(ClusterBackend):
    """Runs a workload through a cluster and records what happened (:class:`SimResult`).

    Args:
        workload: the requests.
        policy: a queue-policy name (``fcfs``, ``lpm``, ``vtc``, ``lcf``, ``dlpm``), a
            zero-argument factory returning a fresh policy per instance, or (one instance
            only) a policy object.
        router: a :class:`Router` or router name (required when ``n_instances > 1``;
            ignored for one instance).
        n_instances: number of identical instances.
        instance: their resources.
        cost: the iteration-time model.
        weights: the service measure (default :class:`ServiceWeights`, token service
            ``w_p = 1``, ``w_q = 2``): each charge is computed once with it, logged and
            given to the policy.
        audit: also record every admission (rid, instance, matched units, evictions so
            far) in ``SimResult.audit`` for invariant tests.
        decode_runs: collapse runs of pure-decode iterations into one event (exact; off
            only to test that it is exact).
        admission: replaces ``instance.admission`` (``"reserve"`` or ``"peak"``) if given.
        policy_params: keyword arguments for a policy given by name (e.g. ``quantum`` for
            ``dlpm``), as for the engine's cluster.
        recorders: extra recorders that see every event with its instance (e.g.
            :class:`~fairsched.sim.recorder.InstanceRecorder`).
        service_log: ``"full"`` (default: every charge in ``SimResult.svc_*``) or
            ``"backlogged"`` (only what the gap, Jain's index and the bound check read;
            for millions of requests, see :class:`SimResult`).
    Raises:
        ValueError: if a request can never fit an empty instance's KV memory, on an
            unknown policy / router name, or an unknown ``service_log``.
    """

    __slots__ = ("instance_cfg", "cost", "audit", "decode_runs")

    def __init__(self, workload: Workload, policy: PolicySpec = "fcfs", router: Router | str | None = None,
                 n_instances: int = 1, instance: InstanceConfig | None = None, cost: CostModel | None = None,
                 weights: ServiceMeasure | None = None, audit: bool = False, decode_runs: bool = True, *,
                 policy_params: dict | None = None, recorders: tuple = (), service_log: str = "full",
                 admission: str | None = None):
        if service_log not in ("full", "backlogged"):
            raise ValueError(f"service_log must be 'full' or 'backlogged', got {service_log!r}")
        self.full_log = service_log == "full"
        self.instance_cfg = instance or InstanceConfig()
        if admission is not None:
            self.instance_cfg = replace(self.instance_cfg, admission=admission)
        self.cost = cost or CostModel()
        self.service = weights or ServiceWeights()
        cap = self.instance_cfg.kv_capacity_tokens
        for r in workload:
            if len(r.prompt) * workload.block_size + r.output_len > cap:
                raise ValueError(f"request {r.rid}: needs {len(r.prompt) * workload.block_size + r.output_len} "
                                 f"KV tokens, more than kv_capacity_tokens={cap}")
        self.workload = workload
        self.audit = audit
        self.decode_runs = decode_runs
        self._init_cluster(workload, policy, router, n_instances, lambda i, p: Instance(i, self, p), policy_params,
                           recorders)

    def _on_admit(self, inst: ServingInstance, s: Seq, now: float) -> None:
        super()._on_admit(inst, s, now)
        if self.audit:
            self.res.audit.append((now, inst.idx, s.req.rid, s.matched, s.units, inst.cache.evicted))


@mypyc_attr(native_class=False)
class UnfinishedError(ValueError):
    """A run ended with requests that never finished: the instances went idle with requests
    still waiting (a policy that never admits them, a cost model or instance that cannot
    serve them). ``result`` is the partial :class:`SimResult`; ``n_unfinished`` the count."""

    def __init__(self, message: str, result: SimResult, n_unfinished: int):
        super().__init__(message)
        self.result = result
        self.n_unfinished = n_unfinished


def simulate(workload: Workload, policy: PolicySpec = "fcfs", router: Router | str | None = None,
             n_instances: int = 1, instance: InstanceConfig | None = None, cost: CostModel | None = None,
             weights: ServiceMeasure | None = None, audit: bool = False,
             progress: Callable[[int], None] | None = None, decode_runs: bool = True, *,
             policy_params: dict | None = None, recorders: tuple = (), service_log: str = "full",
             service: ServiceMeasure | None = None, admission: str | None = None,
             allow_unfinished: bool = False) -> SimResult:
    """Simulate ``workload`` and return a :class:`SimResult` (see :class:`Simulator`;
    ``progress`` as for :meth:`~fairsched.sim.backend.ClusterBackend.run`). ``service`` is
    ``weights`` under its other name (e.g. ``SecondsService(cost)``, fairness in predicted
    seconds; :mod:`fairsched.policies.seconds`). ``allow_unfinished=True`` returns a run
    that left requests unfinished instead of raising (its metrics then describe only the
    finished requests).

    Raises:
        ValueError: if both ``service`` and ``weights`` are given.
        UnfinishedError: (a ``ValueError``) if some requests never finished and
            ``allow_unfinished`` is False.
    """
    if service is not None:
        if weights is not None:
            raise ValueError("pass the service measure as service= or weights=, not both")
        weights = service
    res = Simulator(workload, policy, router, n_instances, instance, cost, weights, audit,
                    decode_runs, policy_params=policy_params, recorders=recorders,
                    service_log=service_log, admission=admission).run(progress)
    n, done = len(workload), res.n_finished
    if done < n and not allow_unfinished:
        raise UnfinishedError(f"simulate: {n - done:,} of {n:,} requests never finished (policy {res.policy}, "
                              f"router {res.router}); check the policy, cost model and instance resources, "
                              "or pass allow_unfinished=True for the partial result", res, n - done)
    return res
