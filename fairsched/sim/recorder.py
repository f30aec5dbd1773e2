"""Recorders: extra logs a backend keeps when asked (``Simulator(..., recorders=[...])``).

The backend (:class:`~fairsched.sim.backend.ClusterBackend`) calls every recorder with
each event and the instance it happened on: ``routed(t, c, i)`` (a request of client
index ``c`` was routed to instance ``i``), ``served(i, n)`` (``n`` service-log entries were
just appended for instance ``i``), ``admitted(t, c, i)`` (a request of ``c`` was admitted
on ``i``, right after its charge was logged), and at the end ``finalize(result, svc_t,
order)`` with the unsorted service times and the permutation that sorted them (or None).
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
    """

    def __init__(self):
        self.svc_instance = array("l")
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

    def served(self, i: int, n: int) -> None:
        if n == 1:
            self.svc_instance.append(i)
        else:
            self.svc_instance.extend([i] * n)

    def admitted(self, t: float, c: int, i: int) -> None:
        k = self._wait[(c, i)] - 1
        self._wait[(c, i)] = k
        if k == 0:
            self._log(t, c, i, -1)

    def finalize(self, res, svc_t: np.ndarray, order: np.ndarray | None) -> None:
        svc_rank, ev_rank, seq_t = causal_order(svc_t, self._t, self._pos)
        inst = np.asarray(self.svc_instance, dtype=np.int64)
        if order is not None:
            svc_rank, inst = svc_rank[order], inst[order]
        res.svc_instance, res.inst_svc_seq, res.inst_seq_t = inst, svc_rank, seq_t
        res.ibl_seq, res.ibl_client = ev_rank, np.asarray(self._c, dtype=np.int64)
        res.ibl_instance, res.ibl_delta = np.asarray(self._i, dtype=np.int64), np.asarray(self._d, dtype=np.int64)
