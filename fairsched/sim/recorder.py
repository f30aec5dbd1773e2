"""Recorders: extra logs a backend keeps when asked (``Simulator(..., recorders=[...])``).

The backend (:class:`~fairsched.sim.backend.ClusterBackend`) calls every recorder with
each event and the instance it happened on: ``routed(t, c, i)`` (a request of client
index ``c`` was routed to instance ``i``), ``served(i, n)`` (``n`` service-log entries were
just appended for instance ``i``), ``admitted(t, c, i, amount, output_tokens)`` (a request
of ``c`` was admitted on ``i`` and charged ``amount``, right after its charge was logged),
``decoded(c, i, amount)`` (``c`` got ``amount`` of decode service on ``i``, logged or not),
``withdrawn(t, c, i)`` (a waiting request of ``c`` left ``i``'s queue for another instance's;
only :mod:`fairsched.policies.global_dlpm` moves requests),
and at the end ``finalize(result, svc_t, order)`` with the unsorted service times and the
permutation that sorted them (or None).
"""

from __future__ import annotations

from array import array

import numpy as np

from fairsched.sim.result import causal_order


class InstanceRecorder:
    """Per-instance service and backlog logs for the bound checker
    (:func:`fairsched.analysis.verdicts.check_run`): which instance served every
    service-log entry, and when each client's queue *on that instance* became non-empty /
    empty, on a causal axis of its own.

    Sets on the result (in :meth:`finalize`): ``svc_instance`` (instance of each service
    entry, aligned with ``svc_t``), ``inst_svc_seq`` (each service entry's position on the
    per-instance causal axis), ``ibl_seq`` / ``ibl_client`` / ``ibl_instance`` /
    ``ibl_delta`` (per-instance backlog changes: +1 when a client gets its first waiting
    request in that instance's queue, -1 right after the admission that empties it), and
    ``inst_seq_t`` (time of each position of that axis). Positions order events by (time,
    order of logging), so events at one instant keep the order in which they happened.

    It also measures ``X`` per instance on the fly (``inst_x``, instance -> X, with
    ``inst_x_weights = (w_p, w_q)``): the max over admissions of the prefill charge plus
    the client's outstanding decode service on that instance right after it (several
    admissions of one client at one instant counted after all of them), the quantity of
    :func:`fairsched.analysis.service_params.measured_x`, without needing the full log.

    Args:
        weights: the run's :class:`~fairsched.policies.service.ServiceWeights` (``w_q``
            turns admitted output tokens into owed decode service).
    """

    def __init__(self, weights=None):
        from fairsched.policies.service import ServiceWeights

        w = weights or ServiceWeights()
        # X in token service only (w_q turns output tokens into owed service); other measures
        # (e.g. seconds) get no inst_x and measured_x falls back to the full log
        self.track_x = isinstance(w, ServiceWeights)
        self.w_p, self.w_q = float(getattr(w, "w_p", 1.0)), float(getattr(w, "w_q", 2.0))
        self.svc_instance = array("l")
        self._x: dict[tuple[int, int], list] = {}  # (client, instance) -> [dec, out, group t, group umax]
        self.x_best: dict[int, float] = {}
        self._wait: dict[tuple[int, int], int] = {}  # (client, instance) -> waiting requests
        self._t, self._c, self._i, self._d, self._pos = (array("d"), array("l"), array("l"), array("l"),
                                                         array("l"))

    def _log(self, t: float, c: int, i: int, d: int) -> None:
        self._t.append(t)
        self._c.append(c)
        self._i.append(i)
        self._d.append(d)
        self._pos.append(len(self.svc_instance))

    def routed(self, t: float, c: int, i: int) -> None:
        k = self._wait.get((c, i), 0)
        if k == 0:
            self._log(t, c, i, 1)
        self._wait[(c, i)] = k + 1

    def withdrawn(self, t: float, c: int, i: int) -> None:
        """A waiting request of ``c`` left instance ``i``'s queue without being admitted there
        (moved to another instance: :mod:`fairsched.policies.global_dlpm`)."""
        k = self._wait[(c, i)] - 1
        self._wait[(c, i)] = k
        if k == 0:
            self._log(t, c, i, -1)

    def served(self, i: int, n: int) -> None:
        if n == 1:
            self.svc_instance.append(i)
        else:
            self.svc_instance.extend(array("l", (i,)) * n)

    def admitted(self, t: float, c: int, i: int, amount: float = 0.0, output_tokens: int = 0) -> None:
        key = (c, i)
        k = self._wait[key] - 1
        self._wait[key] = k
        if k == 0:
            self._log(t, c, i, -1)
        if not self.track_x:
            return
        st = self._x.get(key)
        if st is None:
            self._x[key] = [0.0, output_tokens, t, amount]
            return
        if st[2] is not None and st[2] != t:
            self._close(key, st)
        st[1] += output_tokens
        st[3] = amount if st[2] is None else max(st[3], amount)
        st[2] = t

    def decoded(self, c: int, i: int, amount: float) -> None:
        key = (c, i)
        st = self._x.get(key)
        if st is None:
            return
        if st[2] is not None:
            self._close(key, st)
        st[0] += amount
        if st[0] >= self.w_q * st[1]:  # nothing owed: start afresh (keeps the dict small)
            del self._x[key]

    def _close(self, key: tuple[int, int], st: list) -> None:
        """The admissions of ``key`` at one instant are over: X candidate = the largest of
        their prefill charges + the client's outstanding decode service on the instance."""
        w_q = self.w_q
        owed = w_q * max(st[1] - st[0] / w_q, 0.0) if w_q > 0 else 0.0
        v = st[3] + owed
        i = key[1]
        if v > self.x_best.get(i, 0.0):
            self.x_best[i] = v
        st[2] = None

    def finalize(self, res, svc_t: np.ndarray, order: np.ndarray | None) -> None:
        for key, st in list(self._x.items()):
            if st[2] is not None:
                self._close(key, st)
        res.inst_x = dict(sorted(self.x_best.items())) if self.track_x else None  # (by instance)
        res.inst_x_weights = (self.w_p, self.w_q)
        svc_rank, ev_rank, seq_t = causal_order(svc_t, self._t, self._pos)
        inst = np.asarray(self.svc_instance, dtype=np.int64)
        if order is not None:
            svc_rank, inst = svc_rank[order], inst[order]
        res.svc_instance, res.inst_svc_seq, res.inst_seq_t = inst, svc_rank, seq_t
        res.ibl_seq, res.ibl_client = ev_rank, np.asarray(self._c, dtype=np.int64)
        res.ibl_instance, res.ibl_delta = np.asarray(self._i, dtype=np.int64), np.asarray(self._d, dtype=np.int64)
