"""D²LPM's worker level with one deficit per client shared by all instances (Theorem F).

``proofs/d2lpm_bound.md``, Theorem F: when every instance's DLPM charges and refills *one*
deficit per client (refilled for the clients backlogged at *some* instance, when none of them
is positive) and an instance without a local request of a client with a positive deficit
takes one from another instance's queue, the service gap of two clients backlogged somewhere
is at most ``2 (Q^u + X_G)`` under any router (``X_G`` the cluster-wide X). The original
D²LPM (one :class:`~fairsched.policies.queue.DLPM` per instance) has no such bound
(Theorem D). Reference model: ``fairsched.theory._reference.simulate_d2lpm(deficit="global")``.

Simulator only: a pull moves a waiting request from one instance's queue to another's
(:func:`move`) and admits it there. An instance pulls when it plans an iteration (its own
iteration ends and arrivals), so an idle instance is not woken by another's arrival; the
bound does not need that (it holds for any admission times).
"""

from __future__ import annotations

from collections.abc import Callable

from fairsched.policies.base import Admission
from fairsched.policies.queue import DLPM, refill


class _Shared:
    """The state all instances' policies share: the deficits and the policies themselves."""

    def __init__(self):
        self.deficit: dict[str, float] = {}
        self.policies: list[GlobalDLPM] = []
        self.refills = 0
        self.pulls = 0


class GlobalDLPM(DLPM):
    """DLPM whose deficit is shared by every instance built by the same :func:`global_dlpm_factory`.

    Admission needs the client's shared deficit ``q > 0``; the backend's charges (``w_p`` per
    uncached prefill token at the instance that runs it, ``w_q`` per decode token) lower it;
    when no client backlogged at any instance has ``q > 0`` they all get ``quantum`` (``Q^u``).
    Local requests are scanned in LPM order; if none is eligible, the instance pulls the
    waiting request of an eligible client from another instance, preferring the most tokens
    cached here, then the oldest (smallest rid). A client that becomes backlogged with no
    waiting request anywhere keeps a negative deficit and loses a positive one.
    """

    name = "dlpm-global"
    pulls = True

    def __init__(self, quantum: float = 2048.0, shared: _Shared | None = None):
        super().__init__(quantum)
        self.shared = shared if shared is not None else _Shared()
        self.shared.policies.append(self)
        self.deficit = self.shared.deficit

    def _waiting_elsewhere(self, client: str) -> bool:
        return any(client in p.n_waiting for p in self.shared.policies if p is not self)

    def on_backlogged(self, client, now):
        if not self._waiting_elsewhere(client):
            self.deficit[client] = min(self.deficit.get(client, 0.0), 0.0)

    def schedule(self, inst, now: float) -> None:
        sh, deficit = self.shared, self.deficit
        while True:
            backlogged = {u for p in sh.policies for u in p.n_waiting}
            if not backlogged:
                return
            rounds = refill(deficit, backlogged, self.quantum)
            sh.refills += rounds
            self.refills += rounds
            got = self.admit_eligible(inst, now) if self.n_waiting else Admission.DEFERRED
            if got is Admission.FULL:
                return
            if got is Admission.ADMITTED:
                continue
            pick = self._pick_remote(inst)
            if pick is None:
                return
            move(pick[1], inst, pick[0], now)
            sh.pulls += 1
            if self.offer(inst, pick[0], now) is not Admission.ADMITTED:
                return

    def _pick_remote(self, inst):
        """(request, its instance) of an eligible client waiting at another instance: most
        tokens cached at ``inst``, then the oldest; None if there is none."""
        best, key = None, None
        for other in inst.backend.instances:
            if other is inst or not other.waiting:
                continue
            for req in other.policy.waiting():
                if self.deficit.get(req.client, 0.0) <= 0:
                    continue
                k = (-inst.cached_tokens(req), req.rid)
                if key is None or k < key:
                    best, key = (req, other), k
        return best


def move(origin, target, req, now: float) -> None:
    """Move the waiting ``req`` from instance ``origin``'s queue to ``target``'s: the target
    accepts it first (so its client stays backlogged throughout), then the origin drops its
    queue entry, prefill estimate and routed prompt; the backend's records follow."""
    target.accept(req, now)
    origin.policy._admitted(req)  # dequeue bookkeeping: not admitted, moved
    origin.waiting -= 1
    origin.load -= 1
    origin.pending_prefill -= origin.est_prefill.pop(req.rid)
    if origin.prefill_cost is not None:
        origin.pending_prefill_s -= origin.est_prefill_s.pop(req.rid)
    origin.routed.unlock_node(origin._routed_node.pop(req.rid))  # as when its prefill completes
    be = origin.backend
    c = be.client_idx[req.client]
    be.res.route(req.rid, target.idx)
    for r in be.recorders:
        r.routed(now, c, target.idx)
        r.withdrawn(now, c, origin.idx)


def global_dlpm_factory(quantum: float = 2048.0) -> Callable[[], GlobalDLPM]:
    """A zero-argument factory of :class:`GlobalDLPM` policies that all share one deficit
    table (use one factory per run); its ``shared`` attribute holds that state (``deficit``,
    ``policies``, and the counts ``refills`` and ``pulls``).

    Raises:
        ValueError: if ``quantum <= 0``.
    """
    if quantum <= 0:
        raise ValueError(f"quantum must be > 0, got {quantum}")
    shared = _Shared()

    def factory() -> GlobalDLPM:
        return GlobalDLPM(quantum, shared)

    factory.shared = shared
    return factory
