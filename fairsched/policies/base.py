"""The two scheduling interfaces, shared by every backend (simulator and torch engine).

A :class:`QueuePolicy` owns one instance's *waiting queue*. The backend owns the running
batch and resources; once per iteration it calls :meth:`QueuePolicy.schedule`, and the
policy offers requests in its own order through :meth:`InstanceView.try_admit`, which
admits a request if the batch, the per-iteration token budget and KV memory allow it.
The policy stops at the first request that does not fit (no skipping ahead, so a long
request is never starved by short ones).

A :class:`Router` picks the instance for each arriving request from a :class:`ClusterView`.

Service is measured by one :class:`~fairsched.policies.service.ServiceMeasure` per run
(default :class:`~fairsched.policies.service.ServiceWeights`, VTC's token service
``W = w_p * uncached prefill tokens + w_q * decode tokens``; ``proofs/service_model.md``).
The *backend* computes each charge once (prefill at admission, decode at the end of the
iteration that made the tokens), logs it and hands the amount to :meth:`QueuePolicy.charge`.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import ClassVar, Protocol

from fairsched._mypyc import mypyc_attr
from fairsched.cache.radix import RadixCache
from fairsched.policies.service import ServiceMeasure, ServiceWeights  # noqa: F401 (re-exported)
from fairsched.workload.request import Request


class Admission(enum.Enum):
    """What :meth:`InstanceView.try_admit` did with a request."""

    ADMITTED = "admitted"
    """In the running batch now (and charged by the backend)."""
    DEFERRED = "deferred"
    """Part of its uncached prompt is being prefilled by a running request right now: it
    waits one iteration (so no prompt token is computed twice); the policy goes on with
    the next request."""
    FULL = "full"
    """It does not fit now (batch size, token budget or KV memory): the policy stops."""


_ADMITTED = Admission.ADMITTED  # (a member read through its class costs a descriptor call: read once)


class InstanceView(Protocol):
    """What a queue policy sees of the instance it schedules (implemented by each backend)."""

    cache: RadixCache

    def cached_tokens(self, req: Request) -> int:
        """Prompt tokens of ``req`` found in this instance's prefix cache now."""

    def try_admit(self, req: Request) -> Admission:
        """Admit ``req`` into the running batch if it fits now (see :class:`Admission`); the
        backend charges the policy its prefill service (:meth:`QueuePolicy.charge`)."""


@mypyc_attr(allow_interpreted_subclasses=True)
class QueuePolicy(ABC):
    """Base class of the per-instance queue policies (FCFS, LPM, VTC, DLPM).

    Subclasses keep their waiting requests and implement :meth:`_add`, :meth:`_remove`,
    :meth:`waiting` and :meth:`schedule`; the base class tracks which clients are
    backlogged (have a waiting request) and routes the charging hooks.
    """

    # a subclass's class constants are ClassVars, so that code compiled with mypyc (the optional
    # build, setup.py) sees an interpreted subclass's own value; ``name`` may also be set per
    # instance (VTC without lift is "lcf"): read it as Python does (sim.backend reads it untyped)
    name = "base"
    pulls: ClassVar[bool] = False  # True: scheduled even with an empty queue (it may take other instances' requests)

    def __init__(self):
        self.n_waiting: dict[str, int] = {}
        self._n = 0  # waiting requests (len), kept so that len() is O(1)

    # -- queue bookkeeping -----------------------------------------------------------
    def add(self, req: Request, now: float) -> None:
        """A request arrives at this instance's waiting queue."""
        k = self.n_waiting.get(req.client, 0)
        if k == 0:
            self.on_backlogged(req.client, now)
        self.n_waiting[req.client] = k + 1
        self._n += 1
        self._add(req, now)

    def offer(self, inst: InstanceView, req: Request, now: float) -> Admission:
        """Offer ``req`` to the instance; dequeue it if it was admitted (the backend has
        charged it)."""
        got = inst.try_admit(req)
        if got is _ADMITTED:
            self._admitted(req)
        return got

    def _admitted(self, req: Request) -> None:
        """Bookkeeping after ``try_admit`` accepted ``req``: dequeue it."""
        self._remove(req)
        self._n -= 1
        k = self.n_waiting[req.client] - 1
        if k:
            self.n_waiting[req.client] = k
        else:
            del self.n_waiting[req.client]

    def backlogged(self) -> Iterator[str]:
        """Clients with at least one waiting request."""
        return iter(self.n_waiting)

    def __len__(self) -> int:
        return self._n

    # -- hooks for subclasses --------------------------------------------------------
    def on_backlogged(self, client: str, now: float) -> None:
        """A client with no waiting request gets one (VTC's counter lift lives here)."""

    def charge(self, client: str, service: float, now: float) -> None:
        """The backend gave ``client`` ``service`` units (its prefill at admission, from
        inside ``try_admit``; its decode tokens at the end of each iteration), computed
        once by the run's :class:`~fairsched.policies.service.ServiceMeasure`."""

    def on_finish(self, req: Request, now: float) -> None:
        """``req`` finished (all output tokens generated)."""

    @abstractmethod
    def _add(self, req: Request, now: float) -> None: ...

    @abstractmethod
    def _remove(self, req: Request) -> None: ...

    @abstractmethod
    def waiting(self) -> Sequence[Request]:
        """The waiting requests (any order)."""

    @abstractmethod
    def schedule(self, inst: InstanceView, now: float) -> None:
        """Offer waiting requests to ``inst.try_admit`` in policy order; stop at the
        first one that does not fit."""


def charge_of(policy) -> Callable[[str, float, float], None] | None:
    """``policy.charge`` if its class overrides :meth:`QueuePolicy.charge` (VTC, DLPM, ...), else
    None: the default does nothing (FCFS, LPM), so a backend skips the call on its hot path and
    knows the policy reads no service counters."""
    return policy.charge if getattr(type(policy), "charge", None) is not QueuePolicy.charge else None


class ClusterView(Protocol):
    """What a router sees of the cluster (implemented by each backend)."""

    n_instances: int

    def cached_tokens(self, i: int, req: Request) -> int:
        """Prompt tokens of ``req`` in instance ``i``'s prefix cache, counting prompts
        already routed there but not yet prefilled (optimistic)."""

    def n_waiting(self, i: int) -> int:
        """Requests waiting in instance ``i``'s queue (routed, not yet admitted)."""

    def n_running(self, i: int) -> int:
        """Requests in instance ``i``'s running batch."""

    def cache_size_tokens(self, i: int) -> int:
        """Tokens held in instance ``i``'s prefix cache."""

    def queued_prefill_tokens(self, i: int) -> int:
        """Prefill tokens instance ``i`` still has to compute for waiting and running
        requests (uncached tokens as estimated at routing)."""

    def queued_prefill_seconds(self, i: int) -> float:
        """The same queued prefill in predicted seconds [s]: ``sum t_pre(rest, done)`` over
        the waiting and running requests under the cost model given to
        :meth:`track_prefill_seconds` (0.0 until then; seconds-LMetric)."""

    def track_prefill_seconds(self, cost) -> None:
        """Keep :meth:`queued_prefill_seconds` under ``cost`` (a
        :class:`~fairsched.sim.cost.CostModel`) from now on (work already queued is priced
        at once; a second call with the same model does nothing).

        Raises:
            RuntimeError: another cost model is already tracked."""

    def instance_state(self, req: Request) -> tuple[list[int], list[int], list[int]]:
        """All instances at once (a router's hot path, one call per arrival): per instance
        ``n_waiting + n_running``, ``queued_prefill_tokens`` and ``cached_tokens(i, req)``."""


@mypyc_attr(allow_interpreted_subclasses=True)
class Router(ABC):
    """Base class of the cluster routers. ``route`` returns an instance index."""

    name: ClassVar[str] = "base"  # (a ClassVar: see QueuePolicy)

    @abstractmethod
    def route(self, req: Request, cluster: ClusterView, now: float) -> int:
        """Choose the instance for ``req`` (0 <= index < ``cluster.n_instances``)."""

    def on_finish(self, req: Request, instance: int, now: float) -> None:
        """``req`` finished on ``instance`` (for routers that keep their own state)."""
