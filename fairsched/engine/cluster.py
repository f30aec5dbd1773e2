"""The torch toy engine's cluster: a second backend for the scheduling code, with measured time.

:class:`EngineCluster` holds one or more :class:`~fairsched.engine.instance.Engine`
instances on one device and implements :class:`~fairsched.policies.base.ClusterView`, so
the *same* queue policies (FCFS, LPM, VTC, DLPM) and routers drive it as drive the
simulator; the event loop, routing and recording are the simulator's
(:class:`~fairsched.sim.backend.ClusterBackend`), the iteration loop and KV bookkeeping too
(:class:`~fairsched.sim.instance.InstanceBase`). Service: the run's service measure
(default ``w_p`` x uncached prompt tokens at admission, ``w_q`` per output token at the end
of the iteration that made it), computed once by the backend, logged in
:class:`~fairsched.sim.result.SimResult` and charged to the policy.

What differs is time. The iteration is *executed* when it starts: the model runs every
prefill chunk (one forward per sequence and chunk) and one decode batch (linear layers
batched, attention over length-grouped padded sub-batches), and the iteration lasts the
measured time of those forwards (wall time, ``time.perf_counter`` after
``torch.cuda.synchronize``, on GPU; on CPU by default one intra-op thread and the
process's CPU time, which equals the undisturbed wall time but ignores the time other
processes hold the cores: see :class:`~fairsched.engine.timing.Timer`). Its effects (tokens, prompt insertion,
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
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from fairsched.engine.instance import Engine, _Seq
from fairsched.engine.model import ModelConfig, ToyLlama, build_model, default_device
from fairsched.engine.timing import Timer, measured_threads, warm_up
from fairsched.policies.base import Router, ServiceWeights
from fairsched.policies.seconds import SecondsService
from fairsched.policies.service import ServiceMeasure
from fairsched.sim.backend import ClusterBackend, PolicySpec
from fairsched.sim.config import InstanceConfig
from fairsched.sim.cost import CostModel
from fairsched.sim.result import SimResult
from fairsched.workload.request import Workload

__all__ = ["DEFAULT_INSTANCE", "EngineCluster", "run_engine"]

DEFAULT_INSTANCE: dict[str, InstanceConfig] = {
    "cpu-tiny": InstanceConfig(max_batch_size=32, token_budget=1024, kv_capacity_tokens=16384),
    "cpu-small": InstanceConfig(max_batch_size=32, token_budget=2048, kv_capacity_tokens=32768),
    "gpu-medium": InstanceConfig(max_batch_size=64, token_budget=8192, kv_capacity_tokens=131072),
}
"""Default resources per model preset (``kv_capacity_tokens`` sized for the KV bytes)."""


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
        weights: the service measure (default :class:`ServiceWeights`); ``service`` is the
            same argument under its name in :mod:`fairsched.policies.seconds`.
        attribution: a cost model that splits each measured decode step among the clients in
            proportion to its predicted decode charges (``svc_seconds``); default equal shares.
        clock: ``"measured"`` (default) or a :class:`~fairsched.sim.cost.CostModel` whose
            times replace the measured durations (compute still runs and is measured).
        policy_params: keyword arguments for a policy given by name (e.g. ``quantum``).
        admission: replaces ``instance.admission`` (``"reserve"`` or ``"peak"``) if given.
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
                 record_logits: bool = False, timer: str = "auto", service: ServiceMeasure | None = None,
                 attribution: CostModel | None = None, admission: str | None = None):
        if service is not None and weights is not None:
            raise ValueError("pass the service measure as service= or weights=, not both")
        weights = service if service is not None else weights
        # splits measured decode steps among clients (backend) in proportion to the seconds
        # service's decode charges of this cost model (one formula: SecondsService.decode)
        self.attribution = SecondsService(attribution) if attribution is not None else None
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
        if admission is not None:
            self.instance_cfg = replace(self.instance_cfg, admission=admission)
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

    def _on_decode(self, inst: Engine, seqs: list[_Seq], times: list[float], seconds: float = 0.0,
                   first: bool = False) -> None:
        """The iteration that ends now made one token per sequence (first tokens included):
        apply it (``pending`` becomes ``last`` and joins ``out``), then log it."""
        for s in seqs:
            s.last = s.pending
            s.out.append(s.pending)
        super()._on_decode(inst, seqs, times, seconds, first)

    def _decode_split(self, per: dict, n_seqs: int, seconds: float) -> dict:
        """Measured ``seconds`` of a decode step split among the clients of ``per`` (client
        -> [sequences, context tokens, id]): with ``attribution``, in proportion to the
        clients' predicted decode charges ``SecondsService.decode`` at the step's batch (they
        sum to ``t_d(B, C)``, so every client of a step gets the same measured / predicted
        ratio; ``proofs/seconds_bounds.md``); without, equal per sequence (the backend's)."""
        att = self.attribution
        if att is None or not n_seqs:
            return super()._decode_split(per, n_seqs, seconds)
        C = sum(e[1] for e in per.values())
        wt = {c: att.decode(e[0], e[1], batch=n_seqs, batch_context=C) for c, e in per.items()}
        tot = sum(wt.values())
        return {c: seconds * v / tot if tot > 0 else seconds * per[c][0] / n_seqs for c, v in wt.items()}

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


def run_engine(workload: Workload, policy: PolicySpec = "fcfs", router: Router | str | None = None,
               n_instances: int = 1, preset: str | ModelConfig = "cpu-small",
               device: str | torch.device | None = None, *, instance: InstanceConfig | None = None,
               weights: ServiceWeights | None = None, clock: str | CostModel = "measured",
               policy_params: dict | None = None, model: ToyLlama | None = None,
               dtype: torch.dtype | None = None, warmup: bool = True, check: bool = False,
               record_logits: bool = False, timer: str = "auto", threads: int | None = None,
               progress: Callable[[int], None] | None = None, service: ServiceMeasure | None = None,
               attribution: CostModel | None = None, admission: str | None = None) -> SimResult:
    """Serve ``workload`` on the toy engine and return a :class:`~fairsched.sim.result.SimResult`
    (same structure as :func:`fairsched.sim.simulate`; measurements in ``meta``, see the
    module docstring). ``threads`` sets ``torch.set_num_threads`` for the run (default: 1
    on CPU, see :func:`set_threads`; restored afterwards). Other arguments:
    :class:`EngineCluster`."""
    dev = next(model.parameters()).device if model is not None else default_device(device)
    with measured_threads(threads, dev):
        cl = EngineCluster(workload, policy, router, n_instances, preset, device, instance=instance,
                           weights=weights, clock=clock, policy_params=policy_params, model=model,
                           dtype=dtype, warmup=warmup, check=check, record_logits=record_logits,
                           timer=timer, service=service, attribution=attribution, admission=admission)
        return cl.run(progress)
