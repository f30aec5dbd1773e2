"""What a simulation (or an engine run) produced: per-request timings, the service log
and the backlog log. Metrics live in :mod:`fairsched.analysis.metrics`."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fairsched.workload.request import Workload


@dataclass
class SimResult:
    """Outcome of one run.

    Per-request arrays (index = ``rid``; times in seconds from the workload start, NaN
    if the event never happened): ``instance``, ``admit_t`` (admitted into the batch),
    ``prefill_done_t``, ``first_token_t``, ``finish_t``, ``cached_tokens`` (prompt
    tokens served from the prefix cache).

    Service log (one row per charge, sorted by time once the run is finalized): ``svc_t``
    [s], ``svc_client`` (index into ``clients``), ``svc_amount`` (service units of the run's
    service measure, e.g. ``w_p`` x uncached prefill tokens at admission, ``w_q`` x decode
    tokens at the end of the iteration that made them). ``service_log`` says what it holds:
    ``"full"`` every charge; ``"backlogged"`` (``Simulator(service_log="backlogged")``, for
    runs of millions of requests) every prefill charge and the decode charges of clients
    backlogged at that moment (the only ones the service gap, Jain's index and the bound
    check read: service of a client outside its backlog shifts its ``W`` by a constant in
    every window); the others are added to ``unlogged`` (per client, service units).

    Backlog log: ``bl_t``, ``bl_client``, ``bl_delta`` (+1 when the client gets its first
    waiting request anywhere in the cluster, -1 when its last waiting request is admitted,
    right after that admission's charge), ``bl_pos`` (service entries logged before it).

    Causal order (set by :meth:`finalize`): several things happen at one instant (a client's
    last admission ends its backlog, a refill follows, another client is admitted), so times
    alone cannot say which service happened while a client was backlogged. ``svc_seq`` and
    ``bl_seq`` place every service and backlog event on one integer axis ordered by (time,
    order of logging); ``seq_t[k]`` is the time of position ``k``. The service-gap metric
    works on that axis (``fairsched.analysis.metrics.max_service_gap``).
    """

    workload: Workload
    clients: list[str]
    instance: np.ndarray
    admit_t: np.ndarray
    prefill_done_t: np.ndarray
    first_token_t: np.ndarray
    finish_t: np.ndarray
    cached_tokens: np.ndarray
    svc_t: array = field(default_factory=lambda: array("d"))
    svc_client: array = field(default_factory=lambda: array("l"))
    svc_amount: array = field(default_factory=lambda: array("d"))
    bl_t: array = field(default_factory=lambda: array("d"))
    bl_client: array = field(default_factory=lambda: array("l"))
    bl_delta: array = field(default_factory=lambda: array("l"))
    bl_pos: array = field(default_factory=lambda: array("l"))
    svc_seq: np.ndarray | None = None
    bl_seq: np.ndarray | None = None
    seq_t: np.ndarray | None = None
    decode_tokens: int = 0
    service_log: str = "full"
    unlogged: list = field(default_factory=list)
    policy: str = ""
    router: str = ""
    n_instances: int = 1
    audit: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    # what fairsched.analysis derives once per result, not part of the run's data: name ->
    # (inputs it was computed from, value); "request_arrays" (analysis.columns), "svc_order" /
    # "ibl_order" (analysis.service_params), "gap" (analysis.gap.max_service_gap)
    analysis_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def empty(cls, workload: Workload, clients: list[str], n: int) -> SimResult:
        nan = np.full(n, np.nan)
        return cls(workload, clients, np.full(n, -1, dtype=np.int64), nan.copy(), nan.copy(), nan.copy(),
                   nan.copy(), np.zeros(n, dtype=np.int64), unlogged=[0.0] * len(clients))

    # recording (called by the backend) -------------------------------------------
    def route(self, rid: int, i: int) -> None:
        self.instance[rid] = i

    def admit(self, rid: int, t: float, cached: int) -> None:
        self.admit_t[rid] = t
        self.cached_tokens[rid] = cached

    def prefill_done(self, rid: int, t: float) -> None:
        self.prefill_done_t[rid] = t

    def first_token(self, rid: int, t: float) -> None:
        self.first_token_t[rid] = t

    def finish(self, rid: int, t: float) -> None:
        self.finish_t[rid] = t

    def service(self, t: float, client: int, amount: float) -> None:
        self.svc_t.append(t)
        self.svc_client.append(client)
        self.svc_amount.append(amount)

    def service_steps(self, times, client: int, amount) -> None:
        """Service to ``client`` at each of ``times`` (a list or an array): ``amount`` is one
        number (the same at every step) or an array with one per step."""
        k = len(times)
        if isinstance(times, np.ndarray):
            self.svc_t.frombytes(times.astype(float, copy=False).tobytes())
        else:
            self.svc_t.extend(times)
        self.svc_client.extend(array("l", (client,)) * k)  # (k copies without a list of k objects)
        if isinstance(amount, np.ndarray):
            self.svc_amount.frombytes(amount.astype(float, copy=False).tobytes())
        else:
            self.svc_amount.extend(array("d", (amount,)) * k)

    @property
    def total_service(self) -> float:
        """All service given [service units]: the log plus ``unlogged``."""
        logged = float(np.frombuffer(self.svc_amount).sum()) if len(self.svc_amount) else 0.0
        return logged + float(sum(self.unlogged)) if self.service_log != "full" else logged

    def backlog(self, t: float, client: int, delta: int) -> None:
        self.bl_t.append(t)
        self.bl_client.append(client)
        self.bl_delta.append(delta)
        self.bl_pos.append(len(self.svc_t))

    def finalize(self, backend) -> SimResult:
        """Place the service and backlog logs on the causal axis (:func:`causal_order`),
        sort the service log by time (decode runs log their steps when the run ends,
        after other instances' later events; a stable sort keeps same-time order), let
        the backend's recorders do the same with theirs, and copy run-level facts from
        the backend (policy and router names, sizes)."""
        t = np.frombuffer(self.svc_t) if len(self.svc_t) else np.zeros(0)
        svc_rank, self.bl_seq, self.seq_t = causal_order(t, self.bl_t, self.bl_pos)
        order = None
        if t.size and (np.diff(t) < 0).any():
            order = np.argsort(t, kind="stable")
            self.svc_t = array("d", t[order].tobytes())
            self.svc_client = array("l", np.asarray(self.svc_client)[order].tobytes())
            self.svc_amount = array("d", np.frombuffer(self.svc_amount)[order].tobytes())
            svc_rank = svc_rank[order]
        self.svc_seq = svc_rank
        for r in getattr(backend, "recorders", ()):
            r.finalize(self, t, order)
        self.service_log = "full" if getattr(backend, "full_log", True) else "backlogged"
        self.policy = backend.policy_name
        self.router = backend.router_name
        self.n_instances = backend.n_instances
        self.meta["peak_kv_tokens"] = [getattr(i, "peak_kv", None) for i in getattr(backend, "instances", [])]
        self.meta["kv_capacity_tokens"] = getattr(getattr(backend, "instance_cfg", None), "kv_capacity_tokens", None)
        self.meta["admission"] = getattr(getattr(backend, "instance_cfg", None), "admission", "reserve")
        return self

    # views --------------------------------------------------------------------------
    @property
    def n_finished(self) -> int:
        return int(np.isfinite(self.finish_t).sum())

    def requests_frame(self) -> pd.DataFrame:
        """One row per request: workload columns plus instance, times, ttft_s, tpot_s,
        e2e_s and cached_tokens."""
        df = self.workload.to_frame()
        df["instance"] = self.instance
        df["admit_t"] = self.admit_t
        df["first_token_t"] = self.first_token_t
        df["finish_t"] = self.finish_t
        df["cached_tokens"] = self.cached_tokens
        df["ttft_s"] = df.first_token_t - df.arrival
        df["e2e_s"] = df.finish_t - df.arrival
        gen = df.output_len - 1
        df["tpot_s"] = np.where(gen > 0, (df.finish_t - df.first_token_t) / gen.clip(lower=1), np.nan)
        return df

    def to_frame(self) -> pd.DataFrame:
        """One row per request (:meth:`requests_frame`)."""
        return self.requests_frame()

    to_pandas = to_frame

    def _repr_html_(self) -> str:
        """A compact table in Jupyter: run, size, makespan, hit rate, throughput."""
        from fairsched.analysis.metrics import cache_hit_rate, makespan_s, throughput_tok_s
        from fairsched.display import html_table

        rows = {"policy": self.policy or "-", "router": self.router or "none", "instances": self.n_instances,
                "requests": len(self.workload), "finished": self.n_finished, "clients": len(self.clients),
                "makespan [s]": makespan_s(self), "cache hit rate": cache_hit_rate(self),
                "throughput [tok/s]": throughput_tok_s(self)["throughput_tok_s"]}
        return html_table(rows, title=f"SimResult: {self.workload.name or 'workload'}")

    def service_frame(self) -> pd.DataFrame:
        """The service log as a DataFrame (t, client, amount), time-ordered."""
        return pd.DataFrame({"t": np.frombuffer(self.svc_t), "client": np.asarray(self.svc_client),
                             "amount": np.frombuffer(self.svc_amount)})

    def backlog_frame(self) -> pd.DataFrame:
        """The backlog log as a DataFrame (t, client, delta), time-ordered."""
        return pd.DataFrame({"t": np.frombuffer(self.bl_t), "client": np.asarray(self.bl_client),
                             "delta": np.asarray(self.bl_delta)})


def causal_order(svc_t, ev_t, ev_pos) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One integer axis for a service log and a log of other events (backlog changes),
    ordered by (time, order of logging).

    Args:
        svc_t: service entries' times [s], in logging order, shape ``(n,)``.
        ev_t: the other events' times [s], in logging order (non-decreasing), ``(m,)``.
        ev_pos: for each event, the number of service entries logged before it, ``(m,)``.
    Returns:
        ``(svc_rank, ev_rank, seq_t)``: the position of each service entry and of each
        event on the axis (floats holding integers, ``(n,)`` and ``(m,)``), and the time
        of every position ``(n + m,)``. An event logged after service entry ``p - 1`` and
        before entry ``p`` at the same time comes between them.
    """
    t = np.asarray(svc_t, dtype=float)
    et = np.asarray(ev_t, dtype=float)
    n = t.size
    t_all = np.concatenate([t, et])
    key = np.concatenate([np.arange(n, dtype=float), np.asarray(ev_pos, dtype=float) - 0.5])
    merged = np.lexsort((key, t_all))
    rank = np.empty(t_all.size)
    rank[merged] = np.arange(t_all.size)
    return rank[:n], rank[n:], t_all[merged]
