"""The contracts between an instance and its cluster, and a request in a running batch.

* :class:`Backend`: what an instance (:class:`~fairsched.sim.instance.InstanceBase`) needs of
  its cluster (implemented by :class:`~fairsched.sim.backend.ClusterBackend`);
* :class:`ServingInstance`: what the cluster needs of an instance;
* :class:`Seq`: one request in an instance's running batch (prefill progress, tokens
  generated, KV memory held).

Split out of :mod:`fairsched.sim.instance` (which re-exports the three names).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from fairsched._mypyc import mypyc_attr
from fairsched.cache.radix import RadixCache, _Node
from fairsched.policies.base import InstanceView
from fairsched.sim.config import InstanceConfig
from fairsched.sim.cost import CostModel
from fairsched.workload.request import Request, Workload


class Backend(Protocol):
    """What an instance needs of the cluster it belongs to (implemented by
    :class:`~fairsched.sim.backend.ClusterBackend`): resources, the event queue, and the
    recording hooks, called at the moment each thing happens (``now``, seconds)."""

    instance_cfg: InstanceConfig
    workload: Workload

    def _push(self, t: float, idx: int, gen: int) -> None:
        """Instance ``idx``'s iteration number ``gen`` ends at ``t``: call its ``end_step(t)``
        then, unless its ``gen`` changed meanwhile (the event went stale)."""

    def _on_admit(self, inst: ServingInstance, s: Seq, now: float) -> None:
        """``s`` was admitted into ``inst``'s running batch."""

    def _on_first_token(self, inst: ServingInstance, seqs: list[Seq], now: float) -> None:
        """The prompts of ``seqs`` completed; each emitted its first output token."""

    def _on_decode(self, inst: ServingInstance, seqs: list[Seq], times: StepEnds, seconds: float = 0.0,
                   first: bool = False) -> None:
        """One output token per sequence at each of ``times``."""

    def _on_prefill_done(self, inst: ServingInstance, s: Seq, new_units: int, now: float) -> None:
        """The prompt of ``s`` entered the prefix cache (``new_units`` units added)."""

    def _on_finish(self, inst: ServingInstance, s: Seq, now: float) -> None:
        """``s`` generated its last output token and left the batch."""


class QueueLike(Protocol):
    """What an instance needs of its queue policy: a :class:`~fairsched.policies.base.QueuePolicy`
    or a wrapper around one (``analysis.detect.warmup.WarmupQueue``). A protocol, not the class:
    the compiled build (setup.py) checks the classes of typed arguments."""

    @property
    def pulls(self) -> bool: ...

    def __len__(self) -> int: ...

    def add(self, req: Request, now: float) -> None: ...

    def schedule(self, inst: InstanceView, now: float) -> None: ...

    def on_finish(self, req: Request, now: float) -> None: ...

    def waiting(self) -> Sequence[Request]: ...


class StepEnds(Protocol):
    """End times of the decode steps one event covers, ascending [s]: a list, or one made on
    demand (``sim.simulator.StepTimes``): ``len``, ``[j]`` and ``numpy.asarray``."""

    def __len__(self) -> int: ...

    def __getitem__(self, j: int) -> float: ...


class ServingInstance(Protocol):
    """What the cluster needs of an instance (implemented by :class:`InstanceBase`): its queue
    policy, caches and batch for the ClusterView, a way to hand it a request, its iteration ends."""

    idx: int
    gen: int
    policy: QueueLike
    cache: RadixCache
    prefilling: list[Seq]
    decoding: list[Seq]
    load: int  # waiting + len(prefilling) + len(decoding)
    pending_prefill: int
    pending_prefill_s: float
    prefill_cost: CostModel | None
    est_prefill: dict[int, int]  # rid -> uncached estimate made at routing
    est_prefill_s: dict[int, float]  # rid -> its predicted prefill seconds
    charge: Callable[[str, float, float], None] | None  # the policy's charge, None if it has none (charge_of)

    def routed_cached_tokens(self, req: Request) -> int:
        """Prompt tokens of ``req`` in the cache or in prompts routed here (optimistic)."""

    def enqueue(self, req: Request, now: float, cached: int | None = None) -> None:
        """``req`` was routed here at ``now`` (``cached``: its routed_cached_tokens): queue it, wake."""

    def end_step(self, now: float) -> None:
        """The iteration under way ends at ``now``: apply it and start the next one."""


@mypyc_attr(allow_interpreted_subclasses=True)
class Seq:
    """A request in an instance's running batch."""

    __slots__ = ("req", "units", "matched", "cached", "done", "generated", "reserved", "chunk", "out_units",
                 "node", "ci", "olen", "acc")

    def __init__(self, req: Request, matched: int, cached: int, reserved: int):
        self.req = req
        self.units = len(req.prompt)
        self.matched = matched  # prompt units locked in the cache at admission
        self.cached = cached  # prompt tokens served from the cache
        self.done = cached  # prompt tokens whose KV exists (cached + computed)
        self.generated = 0
        self.reserved = reserved  # private KV memory held outside the cache (memory units)
        self.chunk = 0  # prefill tokens scheduled in the current iteration
        self.out_units = 0  # the part of `reserved` held for output tokens (memory units)
        self.node: _Node | None = None  # cache node where its locked prefix ends (RadixCache.lock_node)
        self.olen, self.ci = req.output_len, -1  # (read every step); client index (set at admission)
        self.acc = -1  # >= 0: output tokens whose decode service was accounted; the rest is deferred
        #               (ClusterBackend: unlogged service of a client not backlogged, see _settle)
