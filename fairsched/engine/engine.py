"""The torch toy engine: a second backend for the scheduling code, with measured time.

:class:`Engine` is one serving instance and implements
:class:`~fairsched.policies.base.InstanceView`; :class:`EngineCluster` holds one or more
of them on one device and implements :class:`~fairsched.policies.base.ClusterView`, so
the *same* queue policies (FCFS, LPM, VTC, DLPM) and routers drive it as drive the
simulator. It runs the simulator's own iteration loop and KV bookkeeping
(:class:`~fairsched.sim.instance.InstanceBase`, shared with :mod:`fairsched.sim.simulator`):

* one iteration = every decoding sequence's next token, then the next prefill chunk of
  each running sequence still in prefill (admission order, from the token budget), then
  ``policy.schedule(engine, now)`` admitting waiting requests, each with a first chunk;
* admission: the same ``DEFERRED`` rule for prompts being prefilled, the same reservation
  of the uncached prompt plus the output (here in KV *blocks*: ``units - matched`` prompt
  blocks and ``ceil(output_len / block_size)`` private blocks), the cached prefix locked
  in the radix tree, LRU eviction of unreferenced blocks to make room;
* a sequence's prompt enters the prefix cache at the end of the iteration that completes
  it, and its first token is emitted then (TTFT); output tokens are never cached;
* service: the run's service measure (default ``w_p`` x uncached prompt tokens at
  admission, ``w_q`` per output token at the end of the iteration that made it),
  computed once by the backend, logged in :class:`~fairsched.sim.result.SimResult` and
  charged to the policy.

What differs is time. The iteration is *executed* when it starts: the model runs every
prefill chunk (one forward per sequence and chunk) and one decode batch (linear layers
batched, attention over length-grouped padded sub-batches), and the iteration lasts the
measured time of those forwards (wall time, ``time.perf_counter`` after
``torch.cuda.synchronize``, on GPU; on CPU by default one intra-op thread and the
process's CPU time, which equals the undisturbed wall time but ignores the time other
processes hold the cores: see :class:`Timer`). Its effects (tokens, prompt insertion,
charges) apply at its end. The engine keeps a virtual clock: an iteration that
starts at ``t`` and measures ``d`` seconds ends at ``t + d``; arrivals are replayed on that
clock (an arrival at ``a`` joins the queue at the first iteration boundary ``>= a``; an
idle instance jumps to the next arrival). Several instances share one device but each has
its own timeline (a discrete-event loop over their iteration ends), as if each had its
own device; they run one after the other in real time.

Ordering is reproducible when it does not depend on durations (e.g. every request has
arrived before the first iteration ends); otherwise measured durations decide which
arrivals an iteration sees, as on a real server. ``clock=CostModel(...)`` replaces the
measured durations by the model's, which makes a run deterministic and, for a cluster that
never evicts, identical to :func:`fairsched.sim.simulate` with the same model
(``tests/test_engine.py`` checks it).

``SimResult.meta`` of an engine run:

* ``requests`` (DataFrame, one row per request): ``input_len, cached_tokens, new_tokens,
  n_chunks, prefill_s`` (measured, sum of its chunks), ``output_tokens, decode_s`` (its
  equal shares of the decode steps), ``service_tokens, service_s``;
* ``prefill_chunks``: ``rid, client, instance, t, t_end, n, h, seconds`` per chunk (``n``
  new tokens after ``h`` with KV); ``decode_steps``: ``instance, t, t_end, batch, context,
  seconds``;
* ``svc_seconds``: the measured seconds of every service-log entry, aligned with
  ``svc_t``/``svc_amount`` (a prefill charge gets the request's total measured prefill
  time, a decode charge its sequences' shares of the step, a first token 0: its logits
  come with the prefill);
* ``admit_order``, ``finish_count``, ``outputs`` (generated token ids), ``logits`` (with
  ``record_logits``), ``engine`` (preset, device, dtype, threads, timer, clock, sizes,
  evicted blocks), ``compute_s``, ``wall_s``; and the simulator's ``peak_kv_tokens``.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from fairsched.engine.kv import PagedKVCache, PrefixKV
from fairsched.engine.model import (
    ModelConfig,
    ToyLlama,
    build_model,
    default_device,
    prompt_tokens,
)
from fairsched.policies.base import QueuePolicy, Router, ServiceWeights
from fairsched.policies.service import ServiceMeasure
from fairsched.sim.backend import ClusterBackend, PolicySpec
from fairsched.sim.cost import CostModel
from fairsched.sim.instance import InstanceBase, Seq
from fairsched.sim.result import SimResult
from fairsched.sim.simulator import InstanceConfig
from fairsched.workload.request import Request, Workload

__all__ = ["DEFAULT_INSTANCE", "Engine", "EngineCluster", "Timer", "run_engine", "set_threads"]

DEFAULT_INSTANCE: dict[str, InstanceConfig] = {
    "cpu-tiny": InstanceConfig(max_batch_size=32, token_budget=1024, kv_capacity_tokens=16384),
    "cpu-small": InstanceConfig(max_batch_size=32, token_budget=2048, kv_capacity_tokens=32768),
    "gpu-medium": InstanceConfig(max_batch_size=64, token_budget=8192, kv_capacity_tokens=131072),
}
"""Default resources per model preset (``kv_capacity_tokens`` sized for the KV bytes)."""


class Timer:
    """Seconds of device work.

    ``mode="wall"``: ``time.perf_counter`` (after ``torch.cuda.synchronize`` on CUDA).
    ``mode="cpu"``: ``time.process_time``, the CPU seconds of this process (CPU device
    only). With one intra-op thread it equals the wall time of an undisturbed run but
    leaves out the time the process waits while other processes hold the cores, so
    measurements stay reproducible on a shared machine (with two threads a descheduled
    worker stalls the other at every barrier, and both clocks become noise).
    ``mode="auto"``: ``"wall"`` on CUDA or with more than one thread, else ``"cpu"``.
    """

    def __init__(self, device: torch.device, mode: str = "auto"):
        if mode == "auto":
            mode = "wall" if device.type == "cuda" or torch.get_num_threads() > 1 else "cpu"
        if mode not in ("wall", "cpu"):
            raise ValueError(f"timer mode must be 'auto', 'wall' or 'cpu', got {mode!r}")
        if mode == "cpu" and device.type != "cpu":
            raise ValueError("timer mode 'cpu' measures CPU time: use it on the CPU device only")
        self.mode = mode
        self.cuda = device.type == "cuda"
        self._clock = time.perf_counter if mode == "wall" else time.process_time

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return self._clock()


def set_threads(threads: int | None, device: torch.device) -> int:
    """Set torch's intra-op threads for a measured run and return the previous value.

    ``None``: one thread on CPU (reproducible timings with ``Timer("auto")``, see
    :class:`Timer`), unchanged on CUDA.
    """
    old = torch.get_num_threads()
    if threads is None and device.type == "cpu":
        threads = 1
    if threads is not None:
        torch.set_num_threads(threads)
    return old


class _Seq(Seq):
    """A request in an engine's running batch (``reserved``: KV blocks)."""

    __slots__ = ("client", "tokens", "slots", "new_blocks", "owned", "last", "pending", "out", "prefill_s",
                 "decode_s", "n_chunks", "svc_idx", "logits")

    def __init__(self, req: Request, matched: int, cached: int, reserved: int, client: int):
        super().__init__(req, matched, cached, reserved)
        self.client = client
        self.tokens: torch.Tensor | None = None  # prompt token ids
        self.slots: torch.Tensor | None = None  # KV slot of every position (prompt + output)
        self.new_blocks: list[int] = []  # blocks of prompt units matched .. units-1
        self.owned: list[int] = []  # private blocks (output, and prompt blocks not cached)
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
    ``try_admit``). Built by :class:`EngineCluster`.

    The iteration loop and the KV bookkeeping are :class:`~fairsched.sim.instance.InstanceBase`'s,
    counting memory in whole KV blocks (``unit = block_size``); this class adds the
    physical blocks (allocated at admission, adopted by the tree when the prompt completes,
    freed at the end) and runs the model to time each iteration."""

    def __init__(self, idx: int, cluster: EngineCluster, policy: QueuePolicy):
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
        """Allocate the sequence's blocks and build its slot list."""
        req, bs, pool, dev = s.req, self.bs, self.pool, self.cluster.device
        shared = self.kv.blocks(req.prompt, s.matched)
        s.new_blocks = pool.alloc(s.units - s.matched)
        priv = pool.alloc(-(-req.output_len // bs))
        s.owned = list(priv)
        off = np.arange(bs)
        prompt_slots = (np.asarray(shared + s.new_blocks, dtype=np.int64)[:, None] * bs + off).ravel()
        priv_slots = (np.asarray(priv, dtype=np.int64)[:, None] * bs + off).ravel()
        L = req.input_len
        slots = np.empty(L + req.output_len - 1, dtype=np.int64)
        slots[:L] = prompt_slots[:L]
        if s.cached < s.matched * bs and s.cached < L:
            # fully cached prompt: the recomputed last token must not overwrite a shared block
            slots[L - 1] = priv_slots[0]
        slots[L:] = priv_slots[1:req.output_len]
        s.slots = torch.from_numpy(slots).to(dev)
        s.tokens = torch.from_numpy(prompt_tokens(req, self.model.config.vocab_size)).to(dev)

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


class EngineCluster(ClusterBackend):
    """One or more :class:`Engine` instances sharing one model on one device; implements
    :class:`~fairsched.policies.base.ClusterView` and runs a workload (:meth:`run`).

    Args:
        workload: the requests (its ``block_size`` is the KV block size).
        policy: queue-policy name, zero-argument factory, or (one instance) a policy object.
        router: router or router name (required when ``n_instances > 1``).
        n_instances: engine instances.
        preset: model preset name or :class:`~fairsched.engine.model.ModelConfig`.
        device: torch device (default: CUDA if available, else CPU).
        instance: resources per instance (default: ``DEFAULT_INSTANCE[preset]``).
        weights: the service measure (default :class:`ServiceWeights`).
        clock: ``"measured"`` (default) or a :class:`~fairsched.sim.cost.CostModel` whose
            times replace the measured durations (compute still runs and is measured).
        policy_params: keyword arguments for a policy given by name (e.g. ``quantum``).
        model: a model built by :func:`~fairsched.engine.model.build_model` to reuse.
        dtype: model dtype (default float32 on CPU, bfloat16 on CUDA).
        warmup: run a few untimed forwards first (first calls are slow).
        check: assert the KV invariants after every iteration (slow; tests).
        timer: ``"auto"``, ``"wall"`` or ``"cpu"`` (see :class:`Timer`).
        record_logits: keep every output token's logits (``meta["logits"]``: rid ->
            ``[output_len, vocab]`` float32 CPU tensor; tests).
    Raises:
        ValueError: if a request cannot fit an empty instance or exceeds the model's
            ``max_seq_len``; unknown names.
    """

    def __init__(self, workload: Workload, policy: PolicySpec = "fcfs", router: Router | str | None = None,
                 n_instances: int = 1, preset: str | ModelConfig = "cpu-small",
                 device: str | torch.device | None = None, *, instance: InstanceConfig | None = None,
                 weights: ServiceMeasure | None = None, clock: str | CostModel = "measured",
                 policy_params: dict | None = None, model: ToyLlama | None = None,
                 dtype: torch.dtype | None = None, warmup: bool = True, check: bool = False,
                 record_logits: bool = False, timer: str = "auto"):
        if model is None:
            model = build_model(preset, device, dtype)
        self.model = model
        self.config = model.config
        self.device = next(model.parameters()).device
        self.timer = Timer(self.device, timer)
        if isinstance(clock, CostModel):
            self.cost: CostModel | None = clock
        elif clock == "measured":
            self.cost = None
        else:
            raise ValueError(f"clock must be 'measured' or a CostModel, got {clock!r}")
        self.workload = workload
        name = self.config.name
        self.instance_cfg = instance or DEFAULT_INSTANCE.get(name, DEFAULT_INSTANCE["cpu-small"])
        if self.instance_cfg.admission != "reserve":
            raise NotImplementedError("the engine supports admission='reserve' only so far")
        self.service = weights or ServiceWeights()
        bs = workload.block_size
        n_blocks = self.instance_cfg.kv_capacity_tokens // bs
        for r in workload:
            nb = len(r.prompt) + -(-r.output_len // bs)
            if nb > n_blocks:
                raise ValueError(f"request {r.rid}: needs {nb} KV blocks of {bs} tokens, more than the "
                                 f"{n_blocks} of kv_capacity_tokens={self.instance_cfg.kv_capacity_tokens}")
            if r.input_len + r.output_len > self.config.max_seq_len:
                raise ValueError(f"request {r.rid}: {r.input_len + r.output_len} tokens exceed the model's "
                                 f"max_seq_len={self.config.max_seq_len}")
        self._init_cluster(workload, policy, router, n_instances, lambda i, p: Engine(i, self, p), policy_params)
        self.check = check
        self.record_logits = record_logits
        n = len(workload)
        self._svc_s = array("d")  # measured seconds of each service-log entry
        self._chunk_rows: list[list] = []
        self._decode_rows: list[list] = []
        self._seqs: dict[int, _Seq] = {}
        self._admit_order: list[int] = []
        self._finished = np.zeros(n, dtype=np.int64)
        if warmup:
            warm_up(model)

    def run(self, progress: Callable[[int], None] | None = None) -> SimResult:
        """Serve the workload until every request has finished (the cluster's event loop,
        :meth:`~fairsched.sim.backend.ClusterBackend.run`); returns the
        :class:`~fairsched.sim.result.SimResult` (engine measurements in ``meta``)."""
        wall0 = time.perf_counter()
        with torch.inference_mode():
            self._loop(progress)
        self.res.finalize(self)
        self._record_meta(time.perf_counter() - wall0)
        return self.res

    # ------------------------------------------------------------- recording hooks
    def _service(self, t: float, c: int, amount: float, seconds: float = 0.0) -> None:
        self.res.service(t, c, amount)
        self._svc_s.append(seconds)

    def _on_admit(self, inst: Engine, s: _Seq, now: float) -> None:
        super()._on_admit(inst, s, now)
        s.svc_idx = len(self._svc_s) - 1  # its prefill seconds are filled in as chunks run
        self._seqs[s.req.rid] = s
        self._admit_order.append(s.req.rid)

    def _on_decode(self, inst: Engine, seqs: list[_Seq], times: list[float], seconds: float = 0.0) -> None:
        """The iteration that ends now made one token per sequence (first tokens included):
        apply it (``pending`` becomes ``last`` and joins ``out``), then log it."""
        for s in seqs:
            s.last = s.pending
            s.out.append(s.pending)
        super()._on_decode(inst, seqs, times, seconds)

    def _on_finish(self, inst: Engine, s: _Seq, now: float) -> None:
        super()._on_finish(inst, s, now)
        self._finished[s.req.rid] += 1

    # ------------------------------------------------------------- measurements
    def _record_meta(self, wall_s: float) -> None:
        res, meta = self.res, self.res.meta
        names = res.clients
        chunks = pd.DataFrame(self._chunk_rows, columns=["rid", "client", "instance", "t", "n", "h", "seconds",
                                                         "t_end"])
        chunks["client"] = [names[c] for c in chunks["client"]]
        steps = pd.DataFrame(self._decode_rows, columns=["instance", "t", "batch", "context", "seconds", "t_end"])
        rows = []
        for rid, s in sorted(self._seqs.items()):
            r = s.req
            svc = self.service.prefill(r.input_len - s.cached, s.cached) + self.service.decode(s.generated)
            rows.append((rid, r.client, int(res.instance[rid]), r.input_len, s.cached, r.input_len - s.cached,
                         s.n_chunks, s.prefill_s, s.generated, s.decode_s, svc, s.prefill_s + s.decode_s))
        reqs = pd.DataFrame(rows, columns=["rid", "client", "instance", "input_len", "cached_tokens",
                                           "new_tokens", "n_chunks", "prefill_s", "output_tokens",
                                           "decode_s", "service_tokens", "service_s"])
        meta["engine"] = {"preset": self.config.name, "device": str(self.device),
                          "dtype": str(next(self.model.parameters()).dtype).replace("torch.", ""),
                          "threads": torch.get_num_threads(), "timer": self.timer.mode, "clock": "measured" if self.cost is None
                          else f"model:{self.cost.name}", "model": self.config.to_dict(),
                          "instance": {"max_batch_size": self.instance_cfg.max_batch_size,
                                       "token_budget": self.instance_cfg.token_budget,
                                       "kv_capacity_tokens": self.instance_cfg.kv_capacity_tokens},
                          "block_size": self.workload.block_size,
                          "evicted_blocks": [i.cache.evicted for i in self.instances]}
        meta["prefill_chunks"] = chunks
        meta["decode_steps"] = steps
        meta["requests"] = reqs
        meta["svc_seconds"] = np.frombuffer(self._svc_s, dtype=float).copy()
        meta["finish_count"] = self._finished.copy()
        meta["admit_order"] = list(self._admit_order)
        meta["outputs"] = {rid: list(s.out) for rid, s in self._seqs.items()}
        if self.record_logits:
            meta["logits"] = {rid: torch.stack(s.logits) for rid, s in self._seqs.items()}
        meta["wall_s"] = wall_s
        meta["compute_s"] = float(chunks["seconds"].sum() + steps["seconds"].sum())


def warm_up(model: ToyLlama) -> None:
    """A few untimed forwards (prefill with and without a cached prefix, a decode batch)
    so that first-call costs (allocator, kernel selection) stay out of the measurements."""
    dev = next(model.parameters()).device
    bs = 16
    pool = PagedKVCache.for_model(model, 24, bs)
    slots = torch.arange(24 * bs, device=dev)
    g = torch.Generator().manual_seed(0)
    toks = torch.randint(0, model.config.vocab_size, (256,), generator=g).to(dev)
    for _ in range(2):
        model.prefill(toks[:160], pool, slots, 0)
        model.prefill(toks[160:], pool, slots, 160)
        model.decode(toks[:3], pool, [slots[:200], slots[:200], slots[:40]], [200, 150, 40])
    if dev.type == "cuda":
        torch.cuda.synchronize()


def run_engine(workload: Workload, policy: PolicySpec = "fcfs", router: Router | str | None = None,
               n_instances: int = 1, preset: str | ModelConfig = "cpu-small",
               device: str | torch.device | None = None, *, instance: InstanceConfig | None = None,
               weights: ServiceWeights | None = None, clock: str | CostModel = "measured",
               policy_params: dict | None = None, model: ToyLlama | None = None,
               dtype: torch.dtype | None = None, warmup: bool = True, check: bool = False,
               record_logits: bool = False, timer: str = "auto", threads: int | None = None, progress: Callable[[int], None] | None = None) -> SimResult:
    """Serve ``workload`` on the toy engine and return a :class:`~fairsched.sim.result.SimResult`
    (same structure as :func:`fairsched.sim.simulate`; measurements in ``meta``, see the
    module docstring). ``threads`` sets ``torch.set_num_threads`` for the run (default: 1
    on CPU, see :func:`set_threads`; restored afterwards). Other arguments:
    :class:`EngineCluster`."""
    dev = next(model.parameters()).device if model is not None else default_device(device)
    old = set_threads(threads, dev)
    try:
        cl = EngineCluster(workload, policy, router, n_instances, preset, device, instance=instance,
                           weights=weights, clock=clock, policy_params=policy_params, model=model,
                           dtype=dtype, warmup=warmup, check=check, record_logits=record_logits,
                           timer=timer)
        return cl.run(progress)
    finally:
        torch.set_num_threads(old)
