"""The cluster layer shared by the two backends (the simulator and the torch engine).

A backend is a set of instances (each an :class:`~fairsched.policies.base.InstanceView`
owning its running batch and prefix cache) behind one router. This base class builds one
queue policy per instance and the router from names or objects, implements
:class:`~fairsched.policies.base.ClusterView` for the router, routes each arrival, and
records what happens into a :class:`~fairsched.sim.result.SimResult`, and runs the one
event loop (:meth:`ClusterBackend.run`: arrivals in order, interleaved with the ends of
instance iterations). Subclasses supply the instances and time:
:class:`~fairsched.sim.simulator.Simulator` from the cost model,
:class:`~fairsched.engine.cluster.EngineCluster` by running the model.

The contracts: an instance is a :class:`~fairsched.sim.instance.ServingInstance` and sees
its cluster as a :class:`~fairsched.sim.instance.Backend`.

Charging: the backend asks the run's one service measure (``self.service``, a
:class:`~fairsched.policies.service.ServiceMeasure`) for each charge once, logs it and
hands the same amount to the instance's queue policy (:meth:`QueuePolicy.charge`).
Hot path (``bench/bench_scale.py``, profiled with py-spy): a router reads every instance in
one :meth:`ClusterBackend.instance_state` call per arrival, and a decode event's measured
seconds are split among its clients only when there are any (the engine's).
Recording: the :class:`~fairsched.sim.result.SimResult` keeps the cluster-wide logs;
optional *recorders* (e.g. :class:`~fairsched.sim.recorder.InstanceRecorder`, the
per-instance logs of the bound checker) get the same events with the instance.
"""

from __future__ import annotations

import gc
import heapq
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import numpy as np

from fairsched._mypyc import mypyc_attr
from fairsched.cache.index import PrefixIndex
from fairsched.policies.base import QueuePolicy, Router
from fairsched.policies.service import ServiceMeasure, ServiceWeights
from fairsched.sim.cost import CostModel
from fairsched.sim.instance import ServingInstance
from fairsched.sim.recorder import InstanceRecorder
from fairsched.sim.result import SimResult
from fairsched.sim.routing import cluster_index
from fairsched.sim.seq import Seq
from fairsched.workload.request import Request, Workload

PolicySpec = str | Callable[[], QueuePolicy] | QueuePolicy


@mypyc_attr(allow_interpreted_subclasses=True)
class ClusterBackend:
    """Policies, router, ClusterView, arrivals, charging and recording for N instances.

    Call :meth:`_init_cluster` from the subclass constructor once ``self.service`` (the
    service measure) is set.
    """

    # slots: read on every event (as InstanceBase's); __dict__ keeps a subclass's own attributes
    __slots__ = ("__dict__", "workload", "n_instances", "policy_name", "client_idx", "res", "recorders",
                 "_waiting_per_client", "_backlog_end", "full_log", "_context_free", "_batch_aware", "_token_path",
                 "_first_fn", "_heap", "_seq", "_state", "_index", "_decode_memo", "_deferred", "_defer",
                 "instances", "router", "router_name", "service")

    service: ServiceMeasure

    def _init_cluster(self, workload: Workload, policy: PolicySpec, router: Router | str | None,
                      n_instances: int, make_instance: Callable[[int, QueuePolicy], ServingInstance],
                      policy_params: dict | None = None, recorders: Sequence = ()) -> None:
        """Build the policies (one per instance), the instances and the router.

        ``recorders``: objects with ``routed(t, c, i)``, ``served(i, n)``,
        ``admitted(t, c, i, amount, output_tokens)``, ``decoded(c, i, amount)`` and
        ``finalize(result, svc_t, order)`` that see every event with its instance (see
        :mod:`fairsched.sim.recorder`). ``self.full_log`` (default True) keeps every
        service entry; False keeps only those of clients backlogged then (see
        :class:`~fairsched.sim.result.SimResult`).

        Raises:
            ValueError: on ``n_instances < 1``, a policy object with several instances, a
                missing router for several instances, or an unknown name.
        """
        from fairsched.policies import make_policies, make_router

        policies = make_policies(policy, n_instances, policy_params)
        if n_instances > 1 and router is None:
            raise ValueError("a router is required when n_instances > 1")
        self.workload = workload
        self.n_instances = n_instances
        first: Any = policies[0]  # (untyped: a subclass's class attribute, as Python reads it; QueuePolicy)
        self.policy_name = first.name
        clients = workload.clients
        self.client_idx = {c: i for i, c in enumerate(clients)}
        self.res = SimResult.empty(workload, clients, len(workload))
        self.recorders = list(recorders)
        self._waiting_per_client = [0] * len(clients)
        self._backlog_end = [-math.inf] * len(clients)  # when each client's last backlog ended
        self.full_log = getattr(self, "full_log", True)
        self._context_free = bool(getattr(self.service, "context_free", False))
        self._batch_aware = bool(getattr(self.service, "batch_aware", False))
        self._token_path = self._context_free and not self._batch_aware  # (_on_decode_tokens)
        self._first_fn = getattr(self.service, "first_token", None)  # prices first tokens apart, if any
        self._heap: list[tuple[float, int, int, int]] = []  # (t, seq, instance, gen)
        self._seq = 0
        self._state: tuple = (None, None)  # (request, routed_cached_all) of the last instance_state
        self._index: PrefixIndex | None = None  # PrefixIndex over the instances' trees (sim.routing.cluster_index)
        self._decode_memo: dict[int, float] = {}  # n -> service.decode(n) (context-free measures)
        # deferred decode accounting (see _settle): client index -> {sequence: instance} (in deferral order)
        self._deferred: dict[int, dict] = {}
        w_q = getattr(self.service, "w_q", 0.0)
        self._defer = (not self.full_log and type(self.service) is ServiceWeights and float(w_q).is_integer()
                       and all(type(r) is InstanceRecorder for r in self.recorders)
                       and type(self)._on_decode is ClusterBackend._on_decode
                       and type(self)._on_finish is ClusterBackend._on_finish)
        self.instances: list[ServingInstance] = [make_instance(i, p) for i, p in enumerate(policies)]
        self.router = make_router(router, self.service) if isinstance(router, str) else router
        self.router_name = self.router.name if (self.router is not None and n_instances > 1) else "none"

    # ------------------------------------------------------------- event loop
    def _push(self, t: float, idx: int, gen: int) -> None:
        """Instance ``idx``'s iteration ``gen`` ends at ``t`` (stale if its ``gen`` moved on)."""
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, idx, gen))

    def run(self, progress: Callable[[int], None] | None = None) -> SimResult:
        """Run until every request has finished; returns the :class:`SimResult`.

        ``progress``, if given, is called with the number of requests that arrived so far
        (every ~1% of the workload, and at the end)."""
        # The loop allocates and frees many small objects and makes no reference cycles (a
        # 20,000-request run leaves none to collect): the cyclic collector's scans are waste.
        was = gc.isenabled()
        gc.disable()
        try:
            self._loop(progress)
        finally:
            if was:
                gc.enable()
        for c in list(self._deferred):  # (requests left unfinished: allow_unfinished)
            self._settle(c)
        return self.res.finalize(self)

    def _loop(self, progress: Callable[[int], None] | None) -> None:
        """The event loop: each arrival (at its time, before an iteration that ends at the
        same instant) goes to :meth:`_arrive`; each iteration end to its instance's
        ``end_step``, which plans and starts the next iteration."""
        reqs = self.workload.requests
        n, k = len(reqs), 0
        tick = max(1, n // 100)
        heap, instances = self._heap, self.instances
        while k < n or heap:
            if k < n and (not heap or reqs[k].arrival <= heap[0][0]):
                self._arrive(reqs[k])
                k += 1
                if progress is not None and k % tick == 0:
                    progress(k)
                continue
            t, _, idx, gen = heapq.heappop(heap)
            inst = instances[idx]
            if gen == inst.gen:
                inst.end_step(t)
        if progress is not None:
            progress(n)

    # ------------------------------------------------------------- ClusterView
    def cached_tokens(self, i: int, req: Request) -> int:
        return self.instances[i].routed_cached_tokens(req)

    def n_waiting(self, i: int) -> int:
        return len(self.instances[i].policy)

    def n_running(self, i: int) -> int:
        inst = self.instances[i]
        return len(inst.prefilling) + len(inst.decoding)

    def queued_prefill_tokens(self, i: int) -> int:
        return self.instances[i].pending_prefill

    def cache_size_tokens(self, i: int) -> int:
        return self.instances[i].cache.size_tokens

    def queued_prefill_seconds(self, i: int) -> float:
        return self.instances[i].pending_prefill_s

    def track_prefill_seconds(self, cost: CostModel) -> None:
        for inst in self.instances:
            if inst.prefill_cost is not None:
                if inst.prefill_cost is not cost:
                    raise RuntimeError("track_prefill_seconds: another cost model is already tracked")
                continue
            # work queued before: its routing estimates (waiting) and rests (running), priced now
            est = {r.rid: cost.prefill_time(e, r.input_len - e) for r in inst.policy.waiting()
                   if (e := inst.est_prefill.get(r.rid)) is not None}
            inst.est_prefill_s = est
            inst.pending_prefill_s = sum(est.values()) + sum(
                cost.prefill_time(s.req.input_len - s.done, s.done) for s in inst.prefilling)
            inst.prefill_cost = cost

    def instance_state(self, req: Request) -> tuple[list[int], list[int], list[int]]:
        insts = self.instances
        loads = [inst.load for inst in insts]  # (= waiting + len(prefilling) + len(decoding), kept by them)
        if self._index is None:  # (each instance keeps its two trees for the whole run)
            self._index = cluster_index(insts)
        cached = self._index.match_pairs(req.prompt, req.block_size, req.input_len)  # = routed_cached_all
        self._state = (req, cached)  # nothing changes before the enqueue: it reuses `cached`
        return loads, [inst.pending_prefill for inst in insts], cached

    # ------------------------------------------------------------- arrivals
    def _arrive(self, req: Request) -> None:
        """Route ``req`` at its arrival time, record it, and hand it to the instance
        (:meth:`~fairsched.sim.instance.ServingInstance.enqueue`)."""
        now = req.arrival
        if self.n_instances == 1:
            i = 0
        else:
            router = self.router
            assert router is not None  # (a cluster of several instances has one)
            i = router.route(req, self, now)
            if not 0 <= i < self.n_instances:
                raise RuntimeError(f"router {self.router_name} returned instance {i}")
        c = self.client_idx[req.client]
        if self._waiting_per_client[c] == 0:
            if c in self._deferred:
                self._settle(c)
            self.res.backlog(now, c, +1)
        self._waiting_per_client[c] += 1
        self.res.route(req.rid, i)
        for r in self.recorders:
            r.routed(now, c, i)
        st = self._state  # the router's read of the cluster for this request, if it made one
        self.instances[i].enqueue(req, now, st[1][i] if st[0] is req else None)

    # ------------------------------------------------------------- charging and recording
    def _service(self, t: float, c: int, amount: float, seconds: float = 0.0) -> None:
        """One service-log entry (``seconds``: measured cost, engine only)."""
        self.res.service(t, c, amount)

    def _on_admit(self, inst, s, now: float) -> None:
        """``s`` was admitted at ``now``: its prefill charge (computed here, once) is logged
        and given to the policy, then the client's backlog may end."""
        req = s.req
        c = s.ci = self.client_idx[req.client]
        i = inst.idx
        self.res.admit(req.rid, now, s.cached)
        amount = self.service.prefill(req.input_len - s.cached, s.cached)
        # the charge first: it is service received while the client was backlogged
        self._service(now, c, amount)
        if inst.charge is not None:
            inst.charge(req.client, amount, now)
        for r in self.recorders:
            r.served(i, 1)
            r.admitted(now, c, i, amount, req.output_len)
        self._waiting_per_client[c] -= 1
        if self._waiting_per_client[c] == 0:
            self.res.backlog(now, c, -1)
            self._backlog_end[c] = now

    def _on_first_token(self, inst, seqs: list, now: float) -> None:
        for s in seqs:
            self.res.first_token(s.req.rid, now)
        self._on_decode(inst, seqs, [now], first=True)

    def _on_decode(self, inst, seqs: list, times, seconds: float = 0.0, first: bool = False) -> None:
        """One output token per sequence at each of ``times`` (iteration ends, ascending;
        more than one for a run of decode-only iterations). Per client and iteration, the
        service measure is asked once (the client's tokens and their total context); the
        amounts are logged and their sum is charged to the policy (``seconds``: the
        measured step time, engine). Without ``full_log``, the entries of a client that was
        not backlogged at any of ``times`` are not logged, only added to its total. ``first``: the
        tokens are first tokens (made by the prefill; a measure may price them with ``first_token``)."""
        k, now = len(times), float(times[-1])
        if self._token_path and not seconds and not (first and self._first_fn is not None):
            self._on_decode_tokens(inst, seqs, times, k, now)  # (token service: the fast path)
            return
        ci, measure = self.client_idx, self.service
        # the measure's decode (or first_token); scalar arguments give a scalar amount
        first_fn = self._first_fn if first else None
        fn: Callable[..., Any] = measure.decode if first_fn is None else first_fn
        per: dict[int, list] = {}  # client index -> [sequences, context tokens, client id]
        for s in seqs:
            r = s.req
            c = ci[r.client]
            e = per.get(c)
            if e is None:
                per[c] = [1, r.input_len + s.generated - k, r.client]  # KV tokens before this token
            else:
                e[0] += 1
                e[1] += r.input_len + s.generated - k
        i, res, recs = inst.idx, self.res, self.recorders
        # measured seconds (engine) are split among the clients; none: every share is 0
        split = self._decode_split(per, len(seqs), seconds) if seconds else None
        # a measure may price the first token (made by the prefill) apart, and may want the
        # batch size (SecondsService: the step's fixed cost is shared by its sequences)
        kw = ({"batch": len(seqs), "batch_context": sum(e[1] for e in per.values())}
              if self._batch_aware else None)
        charge = inst.charge  # (None: the default charge does nothing, skip the call; charge_of)
        full, waiting, ended, unlogged = self.full_log, self._waiting_per_client, self._backlog_end, res.unlogged
        t_first = -math.inf if full else times[0]  # (not read when full)
        ts = None  # the k step times as an array, made once if some entry is logged
        for c, (n, ctx, client) in per.items():
            log = full or waiting[c] > 0 or ended[c] >= t_first
            if k == 1:
                total = fn(n, ctx, **kw) if kw else fn(n, ctx)
                if log:
                    self._service(now, c, total, split[c] if split else 0.0)
            elif self._context_free:
                step = cast(float, measure.decode(n, ctx, **kw) if kw else measure.decode(n, ctx))  # (scalar ctx)
                total = step * k
                if log:
                    ts = np.asarray(times, dtype=float) if ts is None else ts
                    res.service_steps(ts, c, step)
            else:
                ctxs = ctx + n * np.arange(k)  # context grows
                steps = np.asarray(measure.decode(n, ctxs, **kw) if kw else measure.decode(n, ctxs), dtype=float)
                total = float(steps.sum())
                if log:
                    ts = np.asarray(times, dtype=float) if ts is None else ts
                    res.service_steps(ts, c, steps)
            if not log:
                unlogged[c] += total
            if charge is not None:
                charge(client, total, now)
            for rec in recs:
                if log:
                    rec.served(i, k)
                rec.decoded(c, i, total)
        res.decode_tokens += len(seqs) * k

    def _on_decode_tokens(self, inst, seqs: list, times, k: int, now: float) -> None:
        """:meth:`_on_decode` for a context-free measure without batch terms or measured
        seconds (token service): a client's ``n`` tokens a step are worth ``decode(n)``
        whatever the context, asked once per ``n`` for the run; the same entries, totals and
        calls in the same order as the general path, except that the service of a client
        that is not logged is deferred when the run allows it (see :meth:`_settle`)."""
        per: dict[int, int] = {}  # client index -> sequences
        for s in seqs:
            if s.acc >= 0:
                continue  # deferred (accounted by _settle)
            c = s.ci  # (set at admission: saves a lookup in the dict of every client)
            if c < 0:
                c = s.ci = self.client_idx[s.req.client]
            per[c] = per.get(c, 0) + 1
        if not per:  # every sequence deferred
            self.res.decode_tokens += len(seqs) * k
            return
        i, res, recs, memo = inst.idx, self.res, self.recorders, self._decode_memo
        charge = inst.charge
        full, waiting, ended, unlogged = self.full_log, self._waiting_per_client, self._backlog_end, res.unlogged
        t_first = -math.inf if full else times[0]  # (not read when full)
        ts = None  # the k step times as an array, made once if some entry is logged
        defer = self._defer and charge is None
        cold = None  # clients whose service from now on is deferred
        for c, n in per.items():
            log = full or waiting[c] > 0 or ended[c] >= t_first
            if not log and defer:
                cold = [c] if cold is None else cold + [c]
                continue
            step = memo.get(n)
            if step is None:
                step = memo[n] = cast(float, self.service.decode(n, 0))  # (a scalar context: a scalar)
            total = step if k == 1 else step * k
            if not log:
                unlogged[c] += total
            elif k == 1:
                self._service(now, c, total, 0.0)
            else:
                ts = np.asarray(times, dtype=float) if ts is None else ts
                res.service_steps(ts, c, step)
            if charge is not None:
                charge(res.clients[c], total, now)
            for rec in recs:
                if log:
                    rec.served(i, k)
                rec.decoded(c, i, total)
        if cold is not None:
            deferred = self._deferred
            for s in seqs:
                if s.acc < 0 and s.ci in cold:
                    s.acc = s.generated - k  # this event's tokens are deferred too
                    deferred.setdefault(s.ci, {})[s] = i
        res.decode_tokens += len(seqs) * k

    def _settle(self, c: int, only=None) -> None:
        """Account the deferred decode service of client ``c`` (of its sequence ``only``, if
        given): ``w_q`` per output token not yet accounted, added to ``unlogged`` and handed
        to the recorders' ``decoded``.

        Deferral (``self._defer``: the compact log, token service with an integer ``w_q``, a
        policy that is not charged for decode (FCFS, LPM), only :class:`InstanceRecorder`):
        once a decode event finds a client neither backlogged nor just out of its backlog,
        every later event would too until the client's next request arrives (its backlog
        then starts: settled first) or the sequence finishes (settled then). Between those,
        the per-event path would only add integers to ``unlogged[c]`` (exact in any order,
        below 2^53) and call ``InstanceRecorder.decoded(c, i, .)``, whose state for ``(c, i)``
        changes only with an admission of ``c`` on ``i``, which needs a backlog; so one
        call with the sum leaves the same state. Same results to the last bit
        (``tests/test_sim_speed.py::test_deferred_decode_accounting_is_exact``), with one
        step per sequence and event skipped."""
        entries: Iterable[tuple[Seq, int]]  # (sequence, instance)
        if only is None:
            entries = self._deferred.pop(c).items()
        else:  # (one sequence: the others keep their order)
            rest = self._deferred[c]
            entries = ((only, rest.pop(only)),)
            if not rest:
                del self._deferred[c]
        service = self.service
        assert isinstance(service, ServiceWeights)  # (deferral needs token service: _defer)
        w, unlogged, recs = service.w_q, self.res.unlogged, self.recorders
        for s, i in entries:
            amount = w * (s.generated - s.acc)
            s.acc = -1
            unlogged[c] += amount
            for rec in recs:
                rec.decoded(c, i, amount)

    def _decode_split(self, per: dict, n_seqs: int, seconds: float) -> dict:
        """Measured ``seconds`` of a decode step (``n_seqs`` sequences) split among the clients of
        ``per`` (client -> [sequences, context tokens, id]), equal per sequence (the engine may
        split otherwise: :meth:`EngineCluster._decode_split <fairsched.engine.cluster.EngineCluster._decode_split>`)."""
        return {c: seconds * e[0] / n_seqs if n_seqs else 0.0 for c, e in per.items()}

    def _on_prefill_done(self, inst, s, new_units: int, now: float) -> None:
        self.res.prefill_done(s.req.rid, now)

    def _on_finish(self, inst, s, now: float) -> None:
        if s.acc >= 0:
            self._settle(s.ci, s)
        self.res.finish(s.req.rid, now)
        if self.router is not None and self.n_instances > 1:
            self.router.on_finish(s.req, inst.idx, now)
