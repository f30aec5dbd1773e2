"""One torch engine instance: :class:`Engine`, an :class:`~fairsched.sim.instance.InstanceBase`
(the simulator's iteration loop and KV bookkeeping, counting memory in whole KV blocks)
that holds physical KV blocks and runs the model to time each iteration.

* one iteration = every decoding sequence's next token, then the next prefill chunk of
  each running sequence still in prefill (admission order, from the token budget), then
  ``policy.schedule(engine, now)`` admitting waiting requests, each with a first chunk;
* admission: the same ``DEFERRED`` rule for prompts being prefilled and the same KV
  admission rule as the simulator (``InstanceConfig.admission``,
  :mod:`fairsched.sim.admission`), here in KV *blocks*: ``units - matched`` prompt blocks
  plus the private output blocks (``ceil(output_len / block_size)`` at admission under
  ``"reserve"``; under ``"peak"`` one at admission, then one more each time the next
  decode step would write past the last), the cached prefix locked in the radix tree,
  LRU eviction of unreferenced blocks to make room;
* a sequence's prompt enters the prefix cache at the end of the iteration that completes
  it, and its first token is emitted then (TTFT); output tokens are never cached.

The iteration is *executed* when it starts (:meth:`Engine._execute`): the model runs every
prefill chunk (one forward per sequence and chunk) and one decode batch (linear layers
batched, attention over length-grouped padded sub-batches); the iteration lasts the
measured time of those forwards (:class:`~fairsched.engine.timing.Timer`), or the cost
model's time with ``clock=CostModel(...)``.
"""

from __future__ import annotations

from array import array
from typing import Protocol

import numpy as np
import torch

from fairsched.engine.kv import PagedKVCache, PrefixKV
from fairsched.engine.model import ToyLlama, prompt_tokens
from fairsched.engine.timing import Timer
from fairsched.policies.base import QueuePolicy
from fairsched.sim.cost import CostModel
from fairsched.sim.instance import Backend, InstanceBase, Seq
from fairsched.workload.request import Request


class EngineBackend(Backend, Protocol):
    """What an engine instance needs of its cluster
    (:class:`~fairsched.engine.cluster.EngineCluster`) beyond :class:`Backend`: the shared
    model and device, the timer and clock, and the measurement logs it appends to."""

    model: ToyLlama
    device: torch.device
    timer: Timer
    cost: CostModel | None  # None: measured durations
    check: bool
    record_logits: bool
    client_idx: dict[str, int]
    _svc_s: array  # measured seconds of each service-log entry
    _chunk_rows: list[list]
    _decode_rows: list[list]


class _Seq(Seq):
    """A request in an engine's running batch (``reserved``: KV blocks)."""

    __slots__ = ("client", "tokens", "slots", "new_blocks", "owned", "priv", "last", "pending", "out",
                 "prefill_s", "decode_s", "n_chunks", "svc_idx", "logits")

    def __init__(self, req: Request, matched: int, cached: int, reserved: int, client: int):
        super().__init__(req, matched, cached, reserved)
        self.client = client
        self.tokens: torch.Tensor | None = None  # prompt token ids
        self.slots: torch.Tensor | None = None  # KV slot of every position (prompt + output)
        self.new_blocks: list[int] = []  # blocks of prompt units matched .. units-1
        self.owned: list[int] = []  # private blocks (output, and prompt blocks not cached)
        self.priv: list[int] = []  # the output blocks, in order (grown under admission="peak")
        self.last = -1  # last generated token id (fed to the next decode step)
        self.pending = -1  # token made by the running iteration, applied at its end (_on_decode)
        self.out: list[int] = []
        self.prefill_s = 0.0
        self.decode_s = 0.0
        self.n_chunks = 0
        self.svc_idx = -1  # index of the admission charge in the service log
        self.logits: list[torch.Tensor] | None = None  # per output token (record_logits)


class Engine(InstanceBase):
    """One serving instance on the shared model; implements
    :class:`~fairsched.policies.base.InstanceView` (``cache``, ``cached_tokens``,
    ``try_admit``). Built by :class:`~fairsched.engine.cluster.EngineCluster`.

    The iteration loop and the KV bookkeeping are :class:`~fairsched.sim.instance.InstanceBase`'s,
    counting memory in whole KV blocks (``unit = block_size``); this class adds the
    physical blocks (allocated at admission, and under ``admission="peak"`` as outputs
    grow; adopted by the tree when the prompt completes; freed at the end) and runs the
    model to time each iteration."""

    out_lead = 1  # a request holds the slot its next decode step writes (see InstanceBase)

    def __init__(self, idx: int, cluster: EngineBackend, policy: QueuePolicy):
        super().__init__(idx, cluster, policy, unit=cluster.workload.block_size)
        self.cluster = cluster
        self.model = cluster.model
        self.pool = PagedKVCache.for_model(self.model, self.capacity, self.bs)  # capacity: blocks
        self.kv = PrefixKV(self.pool, self.bs)
        self.cache = self.kv.cache

    # ------------------------------------------------------------- admission and KV blocks
    def _match(self, req: Request) -> int:
        """Cached units of ``req`` whose KV blocks it can use (``cache.match`` for any
        well-formed workload, see :meth:`PrefixKV.usable`)."""
        m = self.cache.match(req.prompt)
        return len(self.kv.usable(req.prompt, m, req.input_len)) if m else 0

    def _evict(self, n: int) -> int:
        """Evict up to ``n`` LRU unreferenced blocks and return them to the pool."""
        return self.kv.evict(n)

    def _new_seq(self, req: Request, matched: int, cached: int, reserved: int, out_units: int) -> _Seq:
        """The running-batch entry, with its blocks allocated (``reserved``: blocks)."""
        s = _Seq(req, matched, cached, reserved, self.cluster.client_idx[req.client])
        s.out_units = out_units
        self._setup(s)
        return s

    def _setup(self, s: _Seq) -> None:
        """Allocate the sequence's prompt blocks and first ``out_units`` output blocks and
        build its slot list (positions in output blocks not allocated yet point at the first
        prompt slot: a valid index for the masked padding of a decode batch, never written)."""
        req, bs, pool, dev = s.req, self.bs, self.pool, self.cluster.device
        shared = self.kv.blocks(req.prompt, s.matched)
        s.new_blocks = pool.alloc(s.units - s.matched)
        off = np.arange(bs)
        prompt_slots = (np.asarray(shared + s.new_blocks, dtype=np.int64)[:, None] * bs + off).ravel()
        L = req.input_len
        slots = np.full(L + req.output_len - 1, prompt_slots[0], dtype=np.int64)
        slots[:L] = prompt_slots[:L]
        s.slots = torch.from_numpy(slots).to(dev)
        s.tokens = torch.from_numpy(prompt_tokens(req, self.model.config.vocab_size)).to(dev)
        self._grow(s, s.out_units)

    def _grow(self, s: _Seq, units: int) -> None:
        """Allocate ``units`` more output blocks for ``s`` and point their positions at them:
        output slot ``j`` holds position ``L + j - 1`` (the ``j``-th token fed back); slot 0
        holds the recomputed last prompt token of a fully cached prompt (so it does not
        overwrite a shared block)."""
        bs, req = self.bs, s.req
        first = len(s.priv) * bs
        blocks = self.pool.alloc(units)
        s.priv.extend(blocks)
        s.owned.extend(blocks)
        new = (np.asarray(blocks, dtype=np.int64)[:, None] * bs + np.arange(bs)).ravel()
        L, n = req.input_len, len(s.slots)
        if first == 0:
            if s.cached < s.matched * bs and s.cached < L:
                s.slots[L - 1] = int(new[0])
            new, first = new[1:], 1
        a, b = L + first - 1, min(L + first - 1 + len(new), n)
        if a < b:
            s.slots[a:b] = torch.from_numpy(new[: b - a]).to(s.slots.device)

    # ------------------------------------------------------------- iteration
    def _start(self, now: float) -> float | None:
        """Execute the planned iteration now (:meth:`_execute`) and return its end on the
        engine clock; its chunk and decode rows end then."""
        if not self.decoding and not any(s.chunk for s in self.prefilling):
            return None
        cl = self.cluster
        k0, j0 = len(cl._chunk_rows), len(cl._decode_rows)
        end = now + self._execute(now)
        for row in cl._chunk_rows[k0:]:
            row[-1] = end
        for row in cl._decode_rows[j0:]:
            row[-1] = end
        return end

    def _execute(self, now: float) -> float:
        """Run the iteration's forwards; returns its duration on the engine clock."""
        cl = self.cluster
        model, pool, timer = self.model, self.pool, cl.timer
        measured = 0.0
        if self.decoding:
            B = len(self.decoding)
            ctx = self._ctx()
            t0 = timer.now()
            lens = [s.req.input_len + s.generated for s in self.decoding]
            toks = torch.tensor([s.last for s in self.decoding], device=cl.device)
            logits = model.decode(toks, pool, [s.slots for s in self.decoding], lens)
            nxt = logits.argmax(-1).tolist()
            dt = timer.now() - t0
            for b, (s, tok) in enumerate(zip(self.decoding, nxt, strict=True)):
                s.pending = tok
                s.decode_s += dt / B
                if cl.record_logits:
                    s.logits.append(logits[b].cpu())
            measured += dt
            cl._decode_rows.append([self.idx, now, B, ctx, dt, now])
            self._decode_dt = dt
        for s in self.prefilling:
            if not s.chunk:
                continue
            a, b = s.done, s.done + s.chunk
            t0 = timer.now()
            logits = model.prefill(s.tokens[a:b], pool, s.slots, a)
            if b == s.req.input_len:
                s.pending = int(logits[-1].argmax())
            dt = timer.now() - t0
            if cl.record_logits and b == s.req.input_len:
                s.logits = [logits[-1].cpu()]
            s.prefill_s += dt
            s.n_chunks += 1
            measured += dt
            cl._svc_s[s.svc_idx] += dt
            cl._chunk_rows.append([s.req.rid, s.client, self.idx, now, s.chunk, a, dt, now])
        return measured if cl.cost is None else self._model_time(cl.cost)

    def _insert_prompt(self, s: _Seq, now: float) -> int:
        """Insert the prompt into the tree, which adopts the blocks of the units it adds; a
        block it does not adopt (its unit was computed twice) stays private to ``s``."""
        adopted = self.kv.insert(s.req.prompt, [None] * s.matched + s.new_blocks, now, s.req.input_len)
        keep = set(adopted)
        s.owned.extend(b for b in s.new_blocks if b not in keep)
        s.new_blocks = []
        return len(adopted)

    def _release(self, s: _Seq) -> None:
        """Return the sequence's private blocks (one per reserved unit) to the pool."""
        if s.reserved != len(s.owned):
            raise RuntimeError(f"request {s.req.rid}: {s.reserved} blocks reserved, {len(s.owned)} owned")
        self.pool.free(s.owned)
        s.owned = []

    def end_step(self, now: float) -> None:
        super().end_step(now)
        if self.cluster.check:
            self.check()

    def check(self) -> None:
        """Assert the KV bookkeeping invariants (tests)."""
        private = sum(len(s.owned) + len(s.new_blocks) for s in self.prefilling + self.decoding)
        assert private == self.reserved, (private, self.reserved)
        self.kv.check(private)
