"""The instance layer shared by the two backends (the simulator and the torch engine).

:class:`InstanceBase` is one continuous-batching instance: it implements
:class:`~fairsched.policies.base.InstanceView` for the queue policy and runs the
iteration loop (vLLM-v1 / Sarathi style chunked prefill) that both backends share:

* :meth:`~InstanceBase.enqueue`: a request routed here joins the policy's queue;
* :meth:`~InstanceBase.try_admit`: the ``DEFERRED`` rule for prompts being prefilled, the
  KV admission rule (``InstanceConfig.admission``: ``"reserve"`` the uncached prompt plus
  the whole output, ``"peak"`` the projected peak of the batch, :mod:`fairsched.sim.admission`;
  under both no running request is ever preempted), the cached prefix locked, LRU
  eviction of unreferenced blocks to make room;
* :meth:`~InstanceBase.start_step`: plan the iteration (every decoding sequence takes one
  token of the ``token_budget``; each sequence still in prefill, in admission order, the
  next chunk of its prompt from what is left; then ``policy.schedule(self, now)`` admits
  waiting requests, each with a first chunk); then the subclass starts it (``_start``)
  and says when it ends;
* :meth:`~InstanceBase.end_step`: the iteration's decode tokens, prefill progress, first
  tokens (a completed prompt enters the prefix cache), finished requests, and under
  ``"peak"`` the output memory of the requests still running (``out_lead``, ``_grow``).

The subclasses (:class:`~fairsched.sim.simulator.Instance`,
:class:`~fairsched.engine.instance.Engine`) supply time and physical memory through hooks:
:meth:`~InstanceBase._start` (required), and, where the defaults (a KV cache that is
bookkeeping only: the radix tree alone) do not fit, ``_match``, ``_evict``, ``_new_seq``,
``_insert_prompt``, ``_release``, ``_grow``, ``_step_ends`` and ``interrupt``. Tokens and times are
recorded through the backend's hooks (``_on_admit``, ``_on_decode``, ...).

The contracts: :class:`~fairsched.sim.seq.Backend` (what an instance needs of its cluster)
and :class:`~fairsched.sim.seq.ServingInstance` (what
:class:`~fairsched.sim.backend.ClusterBackend` needs of it), with the running-batch entry
:class:`~fairsched.sim.seq.Seq`, are in :mod:`fairsched.sim.seq` (re-exported here).

KV memory is counted in *units* of ``unit`` tokens: the simulator counts tokens
(``unit = 1``: under ``"reserve"`` a request reserves ``(units - matched) * block_size +
output_len``), the engine whole blocks (``unit = block_size``: ``units - matched`` prompt
blocks and ``ceil(output_len / block_size)`` private blocks; under ``"peak"`` the output
part grows with the tokens generated). ``capacity``, ``reserved`` and every
``Seq.reserved`` are in these units; ``peak_kv`` is in tokens.
"""

from __future__ import annotations

from typing import ClassVar

from fairsched._mypyc import mypyc_attr
from fairsched.cache.radix import RadixCache
from fairsched.policies.base import Admission, QueuePolicy, charge_of
from fairsched.sim.admission import PeakPlan
from fairsched.sim.cost import CostModel
from fairsched.sim.routing import routed_cached_all
from fairsched.sim.seq import Backend, QueueLike, Seq, ServingInstance, StepEnds
from fairsched.workload.request import Request

__all__ = ["Backend", "InstanceBase", "Seq", "ServingInstance", "routed_cached_all"]

# (an Enum member read through its class costs a descriptor call in CPython 3.11: read once)
_FULL, _DEFERRED, _ADMITTED = Admission.FULL, Admission.DEFERRED, Admission.ADMITTED


@mypyc_attr(allow_interpreted_subclasses=True)
class InstanceBase:
    """One serving instance; implements :class:`~fairsched.policies.base.InstanceView`.

    Args:
        idx: its index in ``backend.instances``.
        backend: the cluster (see :class:`Backend`).
        policy: its queue policy.
        unit: tokens per KV memory unit (1: exact tokens; ``block_size``: whole blocks).

    The subclass sets ``cache`` (the prefix cache, a :class:`RadixCache` with the
    workload's block size) in its constructor.
    """

    # slots: the hot path reads these on every event (an instance has more attributes than CPython's
    # shared-key instance dicts hold, 30, so without slots every read is a dict lookup); __dict__
    # keeps a subclass's own attributes
    __slots__ = ("__dict__", "idx", "backend", "cfg", "policy", "charge", "_policy_finish", "bs", "unit",
                 "block_units", "capacity", "max_batch", "token_budget", "pulls", "routed", "prefilling",
                 "decoding", "_dctx", "reserved", "pending_prefill", "waiting", "load", "_routed_node", "est_prefill",
                 "prefill_cost", "pending_prefill_s", "est_prefill_s", "peak_kv", "busy", "gen", "_steps",
                 "_decode_dt", "_budget", "_now", "peak_rule", "_plan", "cache")

    cache: RadixCache
    out_lead: ClassVar[int] = 0  # (a ClassVar: a subclass's value is seen by the compiled build, setup.py)
    """Under ``admission="peak"``, a request that generated ``g`` of its ``o`` output tokens
    holds ``ceil(min(g + out_lead, o) / unit)`` output units: the simulator counts the
    tokens generated (0), the engine also the slot the next decode step writes (1)."""

    def __init__(self, idx: int, backend: Backend, policy: QueueLike, unit: int):
        self.idx = idx
        self.backend = backend
        self.cfg = backend.instance_cfg
        self.policy = policy
        # the policy's charge / on_finish if its class has its own (None: the default does
        # nothing, and the hot path skips the call; charge_of)
        self.charge = charge_of(policy)
        self._policy_finish = policy.on_finish if type(policy).on_finish is not QueuePolicy.on_finish else None
        bs = backend.workload.block_size
        self.bs = bs
        self.unit = unit
        self.block_units = bs // unit  # memory units of one KV block
        self.capacity = self.cfg.kv_capacity_tokens // unit  # KV memory in units
        self.max_batch, self.token_budget = self.cfg.max_batch_size, self.cfg.token_budget  # (read every step)
        self.pulls = policy.pulls  # (the policy takes other instances' requests: scheduled every step)
        # prompts routed here and not yet prefilled (dropped when unlocked)
        self.routed = RadixCache(None, bs, lru=False)
        self.prefilling: list[Seq] = []
        self.decoding: list[Seq] = []
        self._dctx = 0  # sum of input_len + generated over `decoding` (kept by end_step)
        self.reserved = 0  # memory units reserved by running requests outside the cache
        self.pending_prefill = 0  # prefill tokens still to compute for waiting + running
        self.waiting = 0  # requests in the policy's queue (= len(policy), read without a call)
        # waiting + prefilling + decoding (the routers' load B_i), kept where it changes: +1 at
        # accept, -1 at _finish (an admission or a completed prompt moves a request within it)
        self.load = 0
        self._routed_node: dict = {}  # rid -> node of `routed` where its locked prompt ends
        self.est_prefill: dict[int, int] = {}  # rid -> uncached estimate made at routing
        # seconds-LMetric's counter (kept only once a router sets prefill_cost): predicted
        # seconds t_pre(rest, done) of the same queued prefill (proofs/seconds_lmetric.md)
        self.prefill_cost: CostModel | None = None
        self.pending_prefill_s = 0.0
        self.est_prefill_s: dict[int, float] = {}  # rid -> t_pre of the routing estimate [s]
        self.peak_kv = 0  # most KV tokens in use (cache + reservations) at any time
        self.busy = False
        self.gen = 0  # event generation: events pushed with an older one are stale
        self._steps = 1  # decode steps covered by the current event (> 1: decode run)
        self._decode_dt = 0.0  # measured seconds of the iteration's decode step (engine)
        self._budget = 0  # token budget left for admissions in the iteration being planned
        self._now = 0.0
        self.peak_rule = self.cfg.admission == "peak"
        self._plan: PeakPlan | None = None  # peak rule: the planned iteration's projection

    # ------------------------------------------------------------- from the cluster
    def routed_cached_tokens(self, req: Request) -> int:
        """Prompt tokens of ``req`` in the prefix cache or in prompts routed here and not
        yet prefilled, whichever matches more (the router's optimistic view)."""
        return routed_cached_all((self,), req)[0]

    def enqueue(self, req: Request, now: float, cached: int | None = None) -> None:
        """``req`` was routed here at ``now``: :meth:`accept`, then start an iteration if idle."""
        self.accept(req, now, cached)
        self.interrupt(now) if self.busy else self.start_step(now)

    def accept(self, req: Request, now: float, cached: int | None = None) -> None:
        """Count ``req``'s prefill estimate (uncached tokens, optimistic) in ``pending_prefill``,
        hold its prompt in ``routed``, add it to the policy's queue. ``cached``: its
        :meth:`routed_cached_tokens` if the caller has it (the router just read it)."""
        if cached is None:
            cached = self.routed_cached_tokens(req)
        last = req.input_len - 1
        est = req.input_len - (cached if cached < last else last)  # (min, without the call)
        self.est_prefill[req.rid] = est
        self.pending_prefill += est
        if self.prefill_cost is not None:
            e = self.est_prefill_s[req.rid] = self.prefill_cost.prefill_time(est, req.input_len - est)
            self.pending_prefill_s += e
        self._routed_node[req.rid] = self.routed.insert_lock(req.prompt, now)
        self.waiting += 1
        self.load += 1
        self.policy.add(req, now)

    # ------------------------------------------------------------- InstanceView
    def cached_tokens(self, req: Request) -> int:
        return req.tokens_in(self._match(req))

    def try_admit(self, req: Request) -> Admission:
        if self._budget <= 0 or len(self.prefilling) + len(self.decoding) >= self.max_batch:
            return _FULL
        cache, p = self.cache, req.prompt
        m = self._match(req)
        if self.prefilling and self._overlaps_prefill(p, m):
            return _DEFERRED
        bu, u, o = self.block_units, self.unit, req.output_len
        cached = m * req.block_size  # (tokens_in(m)); the last token is always recomputed:
        if cached >= req.input_len:
            cached = req.input_len - 1
        new = req.input_len - cached
        prompt = (len(p) - m) * bu
        node = cache.lock_node(p, m)
        plan: PeakPlan | None = None  # (peak rule)
        if self.peak_rule:
            out = -(-self.out_lead // u)
            completes = new <= self._budget  # its first token comes with the next step's
            plan = self._plan
            if plan is None:
                plan = self._plan = PeakPlan(self.decoding, self.prefilling, u, bu)
            if plan.need(len(p), o, completes) > self.capacity:
                cache.unlock_node(node)
                return _FULL
        else:
            out = -(-o // u)
        over = prompt + out - (self.capacity - cache.size * bu - self.reserved)
        if over > 0:
            short = -(-over // bu)  # blocks to evict
            if self._evict(short) < short:
                cache.unlock_node(node)
                return _FULL
        need = prompt + out
        now = self._now
        cache.touch_node(node, now)
        s = self._new_seq(req, m, cached, need, out)
        s.node = node
        self.waiting -= 1
        self.reserved += need
        if plan is not None:
            plan.add(len(p), o, completes)
        self._note_peak()
        self.pending_prefill += new - self.est_prefill.pop(req.rid, new)
        if self.prefill_cost is not None:
            e = self.prefill_cost.prefill_time(new, cached)
            self.pending_prefill_s += e - self.est_prefill_s.pop(req.rid, e)
        s.chunk = new if new < self._budget else self._budget
        self._budget -= s.chunk
        self.prefilling.append(s)
        self.backend._on_admit(self, s, now)
        return _ADMITTED

    def _overlaps_prefill(self, p: tuple, m: int) -> bool:
        """Whether a prompt being prefilled here, with blocks of its own to compute, shares more
        than the ``m`` usable cached units of the prompt ``p`` (its next block would be computed
        twice): some such prompt ``q`` with ``q[:m + 1] == p[:m + 1]``. (The longest common
        prefix with those prompts compared with ``m``, without a tree of them: there are few.)"""
        if m >= len(p):
            return False
        b = p[m]
        for s in self.prefilling:
            q = s.req.prompt
            if s.matched < len(q) > m and q[m] == b and q[:m] == p[:m]:
                return True
        return False

    def _grow_outputs(self, seqs: list[Seq]) -> None:
        """Peak rule: ``seqs`` (still running) generated tokens; each now holds
        ``ceil(min(generated + out_lead, o) / unit)`` output units. Cache blocks no running
        request holds are evicted first if the memory is needed (:meth:`_grow` then
        allocates)."""
        u, lead = self.unit, self.out_lead
        grow = [(s, d) for s in seqs if (d := -(-min(s.generated + lead, s.req.output_len) // u) - s.out_units) > 0]
        total = sum(d for _, d in grow)
        over = self.cache.size * self.block_units + self.reserved + total - self.capacity
        if over > 0:
            self._evict(-(-over // self.block_units))
        if self.cache.size * self.block_units + self.reserved + total > self.capacity:
            raise RuntimeError(f"instance {self.idx}: KV memory over capacity under admission='peak' "
                               "(the projection assumes output lengths known at admission)")
        for s, d in grow:
            s.out_units += d
            s.reserved += d
            self.reserved += d
            self._grow(s, d)
        self._note_peak()

    def _note_peak(self) -> None:
        """Raise ``peak_kv`` (tokens) to the KV memory in use now: cache + reservations."""
        kv = (self.cache.size * self.block_units + self.reserved) * self.unit
        if kv > self.peak_kv:
            self.peak_kv = kv

    # ------------------------------------------------------------- iteration
    def start_step(self, now: float) -> None:
        """Plan one iteration at ``now`` and start it (or go idle if there is nothing to do)."""
        self._now = now
        self._plan = None
        budget = self.token_budget - len(self.decoding)
        for s in self.prefilling:
            left = s.req.input_len - s.done
            s.chunk = (left if left < budget else budget) if budget > 0 else 0
            budget -= s.chunk
        self._budget = budget
        if self.waiting or self.pulls:
            self.policy.schedule(self, now)
        end = self._start(now)
        if end is None:
            self.busy = False
            return
        self.busy = True
        self.gen += 1
        self.backend._push(end, self.idx, self.gen)

    def _ctx(self) -> int:
        """KV tokens the decoding sequences attend to (prompt + generated; kept by end_step)."""
        return self._dctx

    def _model_time(self, cost: CostModel) -> float:
        """The planned iteration's duration under ``cost``: ``sum(prefill_time(chunk,
        done)) + decode_time(B, C)`` [s]."""
        dur = 0.0
        for s in self.prefilling:
            if s.chunk:
                dur += cost.prefill_time(s.chunk, s.done)
        if self.decoding:
            dur += cost.decode_time(len(self.decoding), self._ctx())
        return dur

    def end_step(self, now: float) -> None:
        """Apply the iteration that ends at ``now``; then start the next one."""
        backend = self.backend
        finished: list[Seq] = []
        if self.decoding:
            k = self._steps
            for s in self.decoding:
                s.generated += k
                if s.generated == s.olen:
                    finished.append(s)
            self._dctx += k * len(self.decoding)
            times = [now] if k == 1 else self._step_ends(k, now)
            backend._on_decode(self, self.decoding, times, self._decode_dt)
        first: list[Seq] = []
        if self.prefilling:
            self._prefill_progress(now, first, finished)
        if self.prefill_cost is not None and not self.pending_prefill:
            self.pending_prefill_s = 0.0  # nothing queued: drop the float drift
        if first:
            backend._on_first_token(self, first, now)
            for s in first:
                if s.req.output_len > 1:
                    self.decoding.append(s)
                    self._dctx += s.req.input_len + 1
        if finished:  # (a finished sequence generated its whole output; the others did not)
            self.decoding = [s for s in self.decoding if s.generated != s.olen]
            for s in finished:
                if s.req.output_len > 1:  # (it was decoding)
                    self._dctx -= s.req.input_len + s.generated
                self._finish(s, now)
        if self.peak_rule:  # after the releases: a finished request's last token needs no KV
            self._grow_outputs(self.decoding)
        self.start_step(now)

    def _prefill_progress(self, now: float, first: list[Seq], finished: list[Seq]) -> None:
        """end_step's prefill part: each prefilling sequence's chunk is done; a completed
        prompt enters the cache and emits its first token (appended to ``first``, and to
        ``finished`` if that was its only output token)."""
        still: list[Seq] = []
        pc = self.prefill_cost
        for s in self.prefilling:
            if s.chunk:
                if pc is not None:  # the rest re-priced at its longer context
                    n, d = s.req.input_len - s.done, s.done
                    self.pending_prefill_s += pc.prefill_time(n - s.chunk, d + s.chunk) - pc.prefill_time(n, d)
                s.done += s.chunk
                self.pending_prefill -= s.chunk
                s.chunk = 0
            if s.done < s.req.input_len:
                still.append(s)
                continue
            self._prefill_complete(s, now)
            s.generated = 1
            first.append(s)
            if s.req.output_len == 1:
                finished.append(s)
        self.prefilling = still

    def _prefill_complete(self, s: Seq, now: float) -> None:
        """The prompt of ``s`` is complete: it enters the prefix cache (its new blocks move
        from the reservation into the cache) and stays locked while ``s`` runs."""
        p, cache = s.req.prompt, self.cache
        self.routed.unlock_node(self._routed_node.pop(s.req.rid))
        new = self._insert_prompt(s, now)
        # the prompt's blocks are now in the cache: keep them locked while we run
        held = s.node
        assert held is not None  # (locked at admission)
        s.node = cache.relock(held, s.matched, p, s.units)
        moved = new * self.block_units
        self.reserved -= moved
        s.reserved -= moved
        self._note_peak()
        self.backend._on_prefill_done(self, s, new, now)

    def _finish(self, s: Seq, now: float) -> None:
        self.load -= 1
        node = s.node
        assert node is not None  # (locked at admission)
        self.cache.unlock_node(node)
        self.reserved -= s.reserved
        self._release(s)
        if self._policy_finish is not None:
            self._policy_finish(s.req, now)
        self.backend._on_finish(self, s, now)

    # ------------------------------------------------------------- hooks
    def _start(self, now: float) -> float | None:
        """Start the planned iteration (``prefilling`` with their ``chunk``, ``decoding``);
        return the time it ends, or ``None`` if there is nothing to do (idle)."""
        raise NotImplementedError

    def _step_ends(self, k: int, now: float) -> StepEnds:
        """End times of the ``k > 1`` decode steps covered by the event ending at ``now``
        (the last of them; only a subclass that sets ``_steps > 1`` needs it)."""
        raise NotImplementedError

    def interrupt(self, now: float) -> None:
        """A request arrived at ``now`` while an iteration is under way. Default: it waits
        for the iteration boundary (nothing to shorten)."""

    def _match(self, req: Request) -> int:
        """Units of ``req``'s prompt found in the cache that it can use."""
        return self.cache.match(req.prompt)

    def _evict(self, n: int) -> int:
        """Evict up to ``n`` LRU unreferenced blocks from the cache; returns how many."""
        return self.cache.evict(n)

    def _new_seq(self, req: Request, matched: int, cached: int, reserved: int, out_units: int) -> Seq:
        """The running-batch entry of a request being admitted (``reserved`` in memory
        units, ``out_units`` of them for output tokens)."""
        s = Seq(req, matched, cached, reserved)
        s.out_units = out_units
        return s

    def _grow(self, s: Seq, units: int) -> None:
        """Peak rule: ``s`` holds ``units`` more output memory units (already counted in
        ``reserved``). Default: nothing physical to allocate."""

    def _insert_prompt(self, s: Seq, now: float) -> int:
        """Insert the completed prompt of ``s`` into the cache; returns the blocks added."""
        node = s.node
        assert node is not None  # (locked at admission)
        return self.cache.insert_at(node, s.matched, s.req.prompt, now)

    def _release(self, s: Seq) -> None:
        """``s`` finished and its reservation was returned. Default: nothing else to free."""
