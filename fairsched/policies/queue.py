"""Queue policies for one instance: FCFS, LPM, VTC (and LCF), DLPM.

Each is a short class over one waiting queue, in the manner of SGLang's
``schedule_policy.py``. All follow :class:`fairsched.policies.base.QueuePolicy`: the
backend calls ``schedule`` once per iteration and the policy offers requests to
``inst.try_admit`` in its order, stopping at the first that does not fit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from fairsched._mypyc import mypyc_attr
from fairsched.cache.match import match_tree
from fairsched.cache.radix import RadixCache
from fairsched.policies.base import Admission, InstanceView, QueuePolicy
from fairsched.workload.request import Request

_FULL = Admission.FULL  # (a member read through its class costs a descriptor call: read once)


@mypyc_attr(allow_interpreted_subclasses=True)
class FCFS(QueuePolicy):
    """First come, first served."""

    name = "fcfs"

    def __init__(self):
        super().__init__()
        self.queue: dict[int, Request] = {}  # insertion ordered = arrival order

    def _add(self, req, now: float):
        self.queue[req.rid] = req

    def _remove(self, req):
        del self.queue[req.rid]

    def waiting(self) -> Sequence[Request]:
        return list(self.queue.values())

    def schedule(self, inst: InstanceView, now: float) -> None:
        for req in list(self.queue.values()):
            if self.offer(inst, req, now) is _FULL:
                return


class _LPMOrder:
    """Waiting requests sorted by cached prefix length (longest first, then arrival).

    The waiting prompts are kept in a radix tree of their own; one simultaneous walk of
    that tree and the instance's cache (:func:`~fairsched.cache.match.match_tree`) gives every
    waiting request's match, comparing each shared prefix once. The order is recomputed
    only when the cache changed (its ``version``) or requests arrived; between those,
    admissions just drop out. ``bench/bench_lpm.py`` compares it with a per-request scan.
    """

    def __init__(self):
        self.reqs: dict[int, Request] = {}
        self.tree: RadixCache | None = None
        self.end: dict[int, int] = {}  # rid -> uid of the node where its prompt ends
        self._order: list[Request] = []
        self._version = -1
        self._dirty = True

    def add(self, req: Request) -> None:
        if self.tree is None:
            self.tree = RadixCache(None, req.block_size)
        self.tree.insert(req.prompt)
        self.end[req.rid] = self.tree.lock(req.prompt, len(req.prompt))
        self.reqs[req.rid] = req
        self._dirty = True

    def remove(self, req: Request) -> None:
        del self.reqs[req.rid]
        del self.end[req.rid]
        t = self.tree
        assert t is not None  # (made by the first add)
        t.unlock(req.prompt, len(req.prompt))
        if t.evictable > t.size // 2:  # drop prompts nobody waits with, amortised
            t.evict(t.evictable)

    def order(self, inst: InstanceView) -> list[Request]:
        cache = inst.cache
        if self._dirty or cache.version != self._version:
            t = self.tree
            got = match_tree(cache, t) if self.reqs and t is not None else {}
            end, bs = self.end, cache.block_size
            # self.reqs is in arrival order, so a stable sort breaks ties by arrival
            if bs == 1:
                self._order = sorted(self.reqs.values(), key=lambda r: -got[end[r.rid]])
            else:
                self._order = sorted(self.reqs.values(),
                                     key=lambda r: -min(got[end[r.rid]] * bs, r.input_len))
            self._version, self._dirty = cache.version, False
        else:
            reqs = self.reqs
            self._order = [r for r in self._order if r.rid in reqs]
        return self._order


@mypyc_attr(allow_interpreted_subclasses=True)
class LPM(QueuePolicy):
    """Longest prefix match: serve the waiting request with the most cached prompt tokens
    on this instance (SGLang's default policy). No fairness: a client whose prompts share
    a cached prefix can starve the others (``tests/test_policies.py`` shows it)."""

    name = "lpm"

    def __init__(self):
        super().__init__()
        self.lpm = _LPMOrder()

    def _add(self, req, now: float):
        self.lpm.add(req)

    def _remove(self, req):
        self.lpm.remove(req)

    def waiting(self) -> Sequence[Request]:
        return list(self.lpm.reqs.values())

    def schedule(self, inst: InstanceView, now: float) -> None:
        for req in self.lpm.order(inst):
            if self.offer(inst, req, now) is _FULL:
                return


@mypyc_attr(allow_interpreted_subclasses=True)
class VTC(QueuePolicy):
    """Virtual token counter (Sheng et al., OSDI'24, Alg. 2).

    Serves the head request of the backlogged client with the smallest counter; the
    counter grows by the service charged (``w_p`` per uncached prefill token at
    admission, ``w_q`` per decode token). With ``lift=True`` a client that becomes
    backlogged again has its counter lifted to ``max(own, min over backlogged clients)``
    (or, when nobody is backlogged, to that minimum as it was when the last backlogged
    client left: the "watermark"), so idle time is not banked. ``lift=False`` is LCF
    (least counter first), the VTC paper's ablation.
    Bound: ``2X`` for two backlogged clients, ``X <= w_p L_in + k w_q M``
    (``proofs/vtc_upper_bound.md``; the published ``2U`` is refuted there). The proof
    assumes the minimum-counter client is always the one admitted; here a client whose
    head request is deferred (its prompt is being prefilled by a running request) is
    skipped for one iteration, which the proof does not cover (no violation was found by
    the hypothesis search in ``tests/test_bounds.py`` with shared prefixes).
    """

    name = "vtc"

    def __init__(self, lift: bool = True):
        super().__init__()
        self.lift = lift
        if not lift:
            self.name = "lcf"
        self.counter: dict[str, float] = {}
        self.queues: dict[str, deque[Request]] = {}
        self._last_min = 0.0

    def on_backlogged(self, client, now: float):
        c = self.counter.get(client, 0.0)
        if self.lift:
            floor = min((self.counter[u] for u in self.n_waiting), default=self._last_min)
            c = max(c, floor)
        self.counter[client] = c

    def charge(self, client, service: float, now: float):
        self.counter[client] = self.counter.get(client, 0.0) + service

    def _add(self, req, now: float):
        self.queues.setdefault(req.client, deque()).append(req)

    def _remove(self, req):
        q = self.queues[req.client]
        q.popleft() if q[0] is req else q.remove(req)

    def waiting(self) -> Sequence[Request]:
        return [r for q in self.queues.values() for r in q]

    def schedule(self, inst: InstanceView, now: float) -> None:
        deferred: set[str] = set()
        while True:
            ready = [u for u in self.n_waiting if u not in deferred]
            if not ready:
                return
            client = min(ready, key=lambda u: (self.counter[u], u))
            self._last_min = min(self.counter[u] for u in self.n_waiting)
            got = self.offer(inst, self.queues[client][0], now)
            if got is Admission.FULL:
                return
            if got is Admission.DEFERRED:
                deferred.add(client)


def refill(deficit: dict, backlogged, quantum: float) -> int:
    """DLPM's refill (Cao et al., arXiv 2501.14312, Alg. 1; ``proofs/dlpm_bound.md``): when
    no backlogged client has a positive deficit, add ``quantum`` (``Q^u``, service units) to
    every backlogged client's deficit, as many rounds as it takes for one to go positive.
    Mutates ``deficit`` (client -> units) for the clients in ``backlogged`` (non-empty);
    returns the number of rounds (0 if some deficit is already positive)."""
    top = max(deficit[u] for u in backlogged)
    if top > 0:
        return 0
    rounds = int(-top // quantum) + 1
    for u in backlogged:
        deficit[u] += rounds * quantum
    return rounds


@mypyc_attr(allow_interpreted_subclasses=True)
class DLPM(LPM):
    """Deficit longest prefix match (Cao et al., arXiv 2501.14312, Alg. 1).

    Deficit round robin around LPM: scan waiting requests in LPM order and admit one only
    if its client's deficit ``q > 0``; admission subtracts ``w_p * uncached prefill`` and
    each decode token ``w_q``. When no backlogged client has ``q > 0``, every backlogged
    client gets ``quantum`` (``Q^u``) added (as many rounds as make one positive). A client
    that becomes backlogged again keeps a negative deficit but loses a positive one
    (``q = min(q, 0)``), so idle time is not banked.

    Bound for two clients backlogged over an interval: ``2(Q^u + X)`` with
    ``X <= w_p L_in + k w_q M`` (``proofs/dlpm_bound.md``). The published ``2(U + Q^u)``
    does not hold when decode is charged per token after admission (counterexample there).

    Args:
        quantum: ``Q^u`` in service units (w_p-weighted tokens), > 0. The CLI uses ``U`` of
            the workload (:func:`fairsched.policies.default_quantum`).
    Raises:
        ValueError: if ``quantum <= 0``.
    """

    name = "dlpm"

    def __init__(self, quantum: float = 2048.0):
        super().__init__()
        if quantum <= 0:
            raise ValueError(f"quantum must be > 0, got {quantum}")
        self.quantum = float(quantum)
        self.deficit: dict[str, float] = {}
        self.refills = 0

    def on_backlogged(self, client, now: float):
        self.deficit[client] = min(self.deficit.get(client, 0.0), 0.0)

    def charge(self, client, service: float, now: float):
        self.deficit[client] = self.deficit.get(client, 0.0) - service

    def schedule(self, inst: InstanceView, now: float) -> None:
        deficit = self.deficit
        while self.n_waiting:
            self.refills += refill(deficit, self.n_waiting, self.quantum)
            if self.admit_eligible(inst, now) is not Admission.ADMITTED:
                return  # full, or every eligible request was deferred this iteration

    def admit_eligible(self, inst: InstanceView, now: float) -> Admission:
        """One pass over the local queue in LPM order, offering the requests of clients with
        a positive deficit. Returns FULL as soon as the instance is full, ADMITTED if some
        request was admitted, else DEFERRED."""
        deficit, progressed = self.deficit, False
        for req in self.lpm.order(inst):
            if deficit[req.client] <= 0:
                continue
            got = self.offer(inst, req, now)
            if got is Admission.FULL:
                return got
            progressed |= got is Admission.ADMITTED
        return Admission.ADMITTED if progressed else Admission.DEFERRED


QUEUE_POLICIES = {"fcfs": FCFS, "lpm": LPM, "vtc": VTC, "lcf": lambda **kw: VTC(lift=False, **kw),
                  "dlpm": DLPM}
