"""Discrete-event simulator of a cluster of continuous-batching instances.

Separation as in Vidur: requests come from a :class:`~fairsched.workload.Workload`, the
scheduling decisions from a :class:`~fairsched.policies.base.Router` and one
:class:`~fairsched.policies.base.QueuePolicy` per instance, and iteration times from a
:class:`~fairsched.sim.cost.CostModel`. This module only moves time forward.

One instance iteration (vLLM-v1 / Sarathi style chunked prefill):

1. every decoding sequence takes one token of the per-iteration ``token_budget``;
2. sequences admitted earlier and still in prefill get the next chunk of their prompt,
   in admission order, from what is left of the budget;
3. the queue policy admits waiting requests while the batch (``max_batch_size``), the
   budget and KV memory allow; each new request gets its first chunk;
4. the iteration lasts ``sum(prefill_time(chunk, context)) + decode_time(B, C)``;
   a sequence whose prompt is complete emits its first token at the end of it (TTFT).

KV memory (``kv_capacity_tokens``) is shared by the radix-tree prefix cache and the
running requests. Admission reserves the request's uncached prompt blocks plus its output
tokens (so no running request is ever preempted) and locks its cached prefix; LRU
unreferenced cache blocks are evicted to make room. When the prefill completes, the
prompt is inserted into the cache (its blocks move from the reservation into the cache);
output tokens are released when the request finishes (they are not cached).
A request whose uncached prompt overlaps a prompt still being prefilled on the instance
is deferred one iteration (``DEFER``), so no prompt block is computed twice unless it was
evicted in between. Same inputs, same result: nothing here is random.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass

from fairsched.cache.radix import RadixCache
from fairsched.policies.base import DEFER, QueuePolicy, Router, ServiceWeights
from fairsched.sim.backend import ClusterBackend, PolicySpec
from fairsched.sim.cost import CostModel
from fairsched.sim.result import SimResult
from fairsched.workload.request import Request, Workload


@dataclass(frozen=True)
class InstanceConfig:
    """Resources of one serving instance.

    Attributes:
        max_batch_size: most sequences in the running batch.
        token_budget: most tokens (prefill chunks + one per decoding sequence) in one
            iteration; prompts longer than what is left are chunked.
        kv_capacity_tokens: KV-cache slots shared by the prefix cache and running requests.
    """

    max_batch_size: int = 256
    token_budget: int = 8192
    kv_capacity_tokens: int = 439_041  # = theory.cost.kv_capacity_tokens("a100-llama3-8b")

    @classmethod
    def from_profile(cls, profile: str = "a100-llama3-8b", **overrides) -> InstanceConfig:
        """Resources of a hardware profile (``fairsched.sim.profiles``): KV capacity from
        ``fairsched.theory.cost.kv_capacity_tokens``; ``overrides`` replace fields."""
        from fairsched.theory.cost import kv_capacity_tokens

        return cls(**{"kv_capacity_tokens": kv_capacity_tokens(profile), **overrides})

    def __post_init__(self):
        for k in ("max_batch_size", "token_budget", "kv_capacity_tokens"):
            if getattr(self, k) < 1:
                raise ValueError(f"InstanceConfig.{k} must be >= 1, got {getattr(self, k)}")


class _Seq:
    """A request in an instance's running batch."""

    __slots__ = ("req", "units", "matched", "cached", "done", "generated", "reserved", "chunk")

    def __init__(self, req: Request, matched: int, cached: int, reserved: int):
        self.req = req
        self.units = len(req.prompt)
        self.matched = matched  # prompt units locked in the cache at admission
        self.cached = cached  # prompt tokens served from the cache
        self.done = cached  # prompt tokens whose KV exists (cached + computed)
        self.generated = 0
        self.reserved = reserved  # private KV tokens held outside the cache
        self.chunk = 0  # prefill tokens scheduled in the current iteration


class Instance:
    """One serving instance; implements :class:`~fairsched.policies.base.InstanceView`."""

    def __init__(self, idx: int, sim: Simulator, policy: QueuePolicy):
        self.idx = idx
        self.sim = sim
        self.cfg = sim.instance_cfg
        self.policy = policy
        bs = sim.workload.block_size
        self.bs = bs
        self.cache = RadixCache(None, bs)
        self.inflight = RadixCache(None, bs)  # prompts being prefilled now (locked)
        self.routed = RadixCache(None, bs)  # prompts routed here, not yet prefilled (locked)
        self.prefilling: list[_Seq] = []
        self.decoding: list[_Seq] = []
        self.reserved = 0  # KV tokens reserved by running requests outside the cache
        self.pending_prefill = 0  # prefill tokens still to compute for waiting + running
        self.est_prefill: dict[int, int] = {}  # rid -> uncached estimate made at routing
        self.peak_kv = 0  # most KV tokens in use (cache + reservations) at any time
        self.busy = False
        self.gen = 0  # event generation: a truncated decode run makes older events stale
        self._steps = 1  # decode steps covered by the current event
        self._run = (0.0, 0, 0)  # decode run: (start time, batch size, context tokens)
        self._budget = 0
        self._now = 0.0

    # ------------------------------------------------------------- InstanceView
    def cached_tokens(self, req: Request) -> int:
        return req.tokens_in(self.cache.match(req.prompt))

    def try_admit(self, req: Request) -> int | None:
        if self._budget <= 0 or len(self.prefilling) + len(self.decoding) >= self.cfg.max_batch_size:
            return None
        cache, p, bs = self.cache, req.prompt, self.bs
        m = cache.match(p)
        if self.inflight.size and self.inflight.match(p) > m:
            return DEFER
        need = (len(p) - m) * bs + req.output_len
        cache.lock(p, m)
        free = self.cfg.kv_capacity_tokens - cache.size_tokens - self.reserved
        if need > free:
            short = -(-(need - free) // bs)
            if cache.evict(short) < short:
                cache.unlock(p, m)
                return None
        now = self._now
        cache.touch(p, m, now)
        cached = min(req.tokens_in(m), req.input_len - 1)  # the last token is always recomputed
        s = _Seq(req, m, cached, need)
        self.reserved += need
        self.peak_kv = max(self.peak_kv, cache.size_tokens + self.reserved)
        if m < len(p):
            self.inflight.insert(p, now)
            self.inflight.lock(p, len(p))
        new = req.input_len - cached
        self.pending_prefill += new - self.est_prefill.pop(req.rid, new)
        s.chunk = min(new, self._budget)
        self._budget -= s.chunk
        self.prefilling.append(s)
        self.sim._on_admit(self, s, now)
        return cached

    # ------------------------------------------------------------- iteration
    def start_step(self, now: float) -> None:
        """Plan and start one iteration at ``now`` (or go idle if there is nothing to do)."""
        self._now = now
        budget = self.cfg.token_budget - len(self.decoding)
        for s in self.prefilling:
            left = s.req.input_len - s.done
            s.chunk = min(left, budget) if budget > 0 else 0
            budget -= s.chunk
        self._budget = budget
        if len(self.policy):
            self.policy.schedule(self, now)
        cost = self.sim.cost
        self._steps = 1
        if self.sim.decode_runs and not self.prefilling and self.decoding and not len(self.policy):
            # Decode run: nothing can change on this instance before its first sequence
            # finishes or a request arrives here (which truncates the run, see
            # `interrupt`), so k decode steps become one event, exactly.
            k = min(s.req.output_len - s.generated for s in self.decoding)
            self._run = (now, len(self.decoding), self._ctx())
            self._steps = k
            end = self._run_end(k)
        else:
            dur = 0.0
            for s in self.prefilling:
                if s.chunk:
                    dur += cost.prefill_time(s.chunk, s.done)
            if self.decoding:
                dur += cost.decode_time(len(self.decoding), self._ctx())
            if dur == 0.0:
                self.busy = False
                return
            end = now + dur
        self.busy = True
        self.gen += 1
        self.sim._push(end, self.idx, self.gen)

    def _ctx(self) -> int:
        return sum(s.req.input_len + s.generated for s in self.decoding)

    def _run_end(self, m: int) -> float:
        """End of the m-th step of the current decode run: the context grows by one token
        per sequence per step, so sum_{j<m} decode_time(B, C + j B) in closed form."""
        t0, b, ctx = self._run
        c = self.sim.cost
        return t0 + m * c.decode_time(b, ctx) + c.decode_c * b * m * (m - 1) / 2

    def interrupt(self, now: float) -> None:
        """A request arrived at ``now`` during a decode run: end the run at the first step
        boundary at or after ``now`` (where the step-by-step simulation would schedule)."""
        if self._steps <= 1:
            return
        t0, b, ctx = self._run
        c = self.sim.cost
        # smallest m >= 1 with _run_end(m) >= now: solve the quadratic, then fix rounding
        a2 = c.decode_c * b / 2
        a1 = c.decode_time(b, ctx) - a2
        dt = now - t0
        m = int(dt / a1) if a2 == 0 else int((-a1 + math.sqrt(a1 * a1 + 4 * a2 * dt)) / (2 * a2))
        m = max(1, m - 1)
        while m < self._steps and self._run_end(m) < now:
            m += 1
        if m >= self._steps:
            return
        self._steps = m
        self.gen += 1
        self.sim._push(self._run_end(m), self.idx, self.gen)

    def end_step(self, now: float) -> None:
        """Apply the iteration that ends at ``now``; then start the next one."""
        sim = self.sim
        finished: list[_Seq] = []
        if self.decoding:
            k = self._steps
            for s in self.decoding:
                s.generated += k
                if s.generated == s.req.output_len:
                    finished.append(s)
            if k == 1:
                sim._on_decode(self, self.decoding, [now])
            else:
                sim._on_decode(self, self.decoding, [self._run_end(m) for m in range(1, k + 1)])
        still: list[_Seq] = []
        first: list[_Seq] = []
        for s in self.prefilling:
            if s.chunk:
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
        if first:
            sim._on_first_token(self, first, now)
            self.decoding.extend(s for s in first if s.req.output_len > 1)
        if finished:
            done = set(map(id, finished))
            self.decoding = [s for s in self.decoding if id(s) not in done]
            for s in finished:
                self._finish(s, now)
        self.start_step(now)

    def _prefill_complete(self, s: _Seq, now: float) -> None:
        p, cache = s.req.prompt, self.cache
        if s.matched < s.units:
            self.inflight.unlock(p, s.units)
            self.inflight.clear()
        self.routed.unlock(p, s.units)
        self.routed.clear()
        new = cache.insert(p, now)
        # the prompt's blocks are now in the cache: keep them locked while we run
        cache.lock(p, s.units)
        cache.unlock(p, s.matched)
        self.reserved -= new * self.bs
        s.reserved -= new * self.bs
        self.peak_kv = max(self.peak_kv, cache.size_tokens + self.reserved)
        self.sim._on_prefill_done(self, s, new, now)

    def _finish(self, s: _Seq, now: float) -> None:
        self.cache.unlock(s.req.prompt, s.units)
        self.reserved -= s.reserved
        self.policy.on_finish(s.req, now)
        self.sim._on_finish(self, s, now)


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
        weights: the service weights used for the service log (the policies charge with
            their own ``weights``; pass the same object to keep them equal).
        audit: also record every admission (rid, instance, matched units, evictions so
            far) in ``SimResult.audit`` for invariant tests.
        decode_runs: collapse runs of pure-decode iterations into one event (exact; off
            only to test that it is exact).
    Raises:
        ValueError: if a request can never fit an empty instance's KV memory, or on an
            unknown policy / router name.
    """

    def __init__(self, workload: Workload, policy: PolicySpec = "fcfs", router: Router | str | None = None,
                 n_instances: int = 1, instance: InstanceConfig | None = None, cost: CostModel | None = None,
                 weights: ServiceWeights | None = None, audit: bool = False, decode_runs: bool = True):
        self.instance_cfg = instance or InstanceConfig()
        self.cost = cost or CostModel()
        self.weights = weights or ServiceWeights()
        cap = self.instance_cfg.kv_capacity_tokens
        for r in workload:
            if len(r.prompt) * workload.block_size + r.output_len > cap:
                raise ValueError(f"request {r.rid}: needs {len(r.prompt) * workload.block_size + r.output_len} "
                                 f"KV tokens, more than kv_capacity_tokens={cap}")
        self.workload = workload
        self.audit = audit
        self.decode_runs = decode_runs
        self._heap: list[tuple[float, int, int, int]] = []
        self._seq = 0
        self._init_cluster(workload, policy, router, n_instances, lambda i, p: Instance(i, self, p))

    def _push(self, t: float, idx: int, gen: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, idx, gen))

    def run(self, progress: Callable[[int], None] | None = None) -> SimResult:
        """Simulate until every request has finished; returns the :class:`SimResult`.

        ``progress``, if given, is called with the number of requests that arrived so far
        (every ~1% of the workload)."""
        reqs = self.workload.requests
        n, k = len(reqs), 0
        tick = max(1, n // 100)
        heap = self._heap
        while k < n or heap:
            if k < n and (not heap or reqs[k].arrival <= heap[0][0]):
                self._arrive(reqs[k])
                k += 1
                if progress is not None and k % tick == 0:
                    progress(k)
                continue
            t, _, idx, gen = heapq.heappop(heap)
            inst = self.instances[idx]
            if gen == inst.gen:
                inst.end_step(t)
        if progress is not None:
            progress(n)
        return self.res.finalize(self)

    def _on_admit(self, inst: Instance, s: _Seq, now: float) -> None:
        super()._on_admit(inst, s, now)
        if self.audit:
            self.res.audit.append((now, inst.idx, s.req.rid, s.matched, s.units, inst.cache.evicted))


def simulate(workload: Workload, policy: PolicySpec = "fcfs", router: Router | str | None = None,
             n_instances: int = 1, instance: InstanceConfig | None = None, cost: CostModel | None = None,
             weights: ServiceWeights | None = None, audit: bool = False,
             progress: Callable[[int], None] | None = None, decode_runs: bool = True) -> SimResult:
    """Simulate ``workload`` and return a :class:`SimResult` (see :class:`Simulator`)."""
    return Simulator(workload, policy, router, n_instances, instance, cost, weights, audit,
                     decode_runs).run(progress)
