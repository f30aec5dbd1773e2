"""The unit of work: a :class:`Request`, and a :class:`Workload` (an ordered list of them).

A prompt is a tuple of *prompt units*. Each unit stands for ``block_size`` tokens: with
``block_size == 1`` the units are token ids; with ``block_size == 512`` (Mooncake) or
``16`` (the generators) they are prefix-chained block hashes, so two prompts that share
their first ``k`` units share their first ``k * block_size`` tokens. The last unit may be
partial: ``(len(prompt) - 1) * block_size < input_len <= len(prompt) * block_size``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Request:
    """One inference request.

    Attributes:
        rid: request id, unique within a workload (int).
        arrival: arrival time in seconds from the start of the workload.
        client: client id (the fairness unit; for Mooncake, the derived prefix class).
        prompt: prompt units (token ids or block hashes), see the module docstring.
        input_len: prompt length in tokens (>= 1).
        output_len: tokens to generate (>= 1).
        block_size: tokens per prompt unit (1 for token ids).
    """

    rid: int
    arrival: float
    client: str
    prompt: tuple[int, ...]
    input_len: int
    output_len: int
    block_size: int = 1

    def tokens_in(self, units: int) -> int:
        """Tokens covered by the first ``units`` prompt units (the last one may be partial)."""
        return min(units * self.block_size, self.input_len)


@dataclass
class Workload:
    """An arrival-ordered list of requests with a name and provenance.

    Attributes:
        requests: requests sorted by arrival (seconds); ``rid`` equals the list index.
        name: short label used in reports.
        block_size: tokens per prompt unit, shared by all requests.
        source: file path or generator description.
    Raises:
        ValueError: if requests are not sorted by arrival or block sizes differ.
    """

    requests: list[Request]
    name: str = "workload"
    block_size: int = 1
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, r in enumerate(self.requests):
            if r.block_size != self.block_size:
                raise ValueError(f"request {i}: block_size {r.block_size} != workload {self.block_size}")
            if i and r.arrival < self.requests[i - 1].arrival:
                raise ValueError(f"request {i}: arrival {r.arrival} before previous request")

    def __len__(self) -> int:
        return len(self.requests)

    def __iter__(self) -> Iterator[Request]:
        return iter(self.requests)

    def __getitem__(self, i: int) -> Request:
        return self.requests[i]

    @property
    def clients(self) -> list[str]:
        """Client ids in order of first arrival."""
        return list(dict.fromkeys(r.client for r in self.requests))

    @property
    def duration(self) -> float:
        """Seconds from the first to the last arrival."""
        return self.requests[-1].arrival - self.requests[0].arrival if self.requests else 0.0

    def max_cost(self, w_p: float = 1.0, w_q: float = 2.0, *, batch_tokens: float | None = None) -> float:
        """``U = max(w_p * L_input, w_q * M)`` in service units, as VTC defines it (Sheng et al.,
        OSDI'24, Sec. 4; DLPM reuses it): ``L_input`` the longest prompt [tokens], ``M`` the
        most tokens that fit in a running batch = the instance's KV-cache token capacity
        (``InstanceConfig.kv_capacity_tokens``; ``fairsched.theory.fairness`` says why not the
        token budget).

        Args:
            batch_tokens: M [tokens]; default ``self.meta["kv_capacity_tokens"]``.
        Raises:
            ValueError: if M is neither given nor in the workload's meta.
        """
        M = batch_tokens if batch_tokens is not None else self.meta.get("kv_capacity_tokens")
        if M is None:
            raise ValueError("U = max(w_p L_input, w_q M) needs M, the KV token capacity of the running batch: "
                             "pass batch_tokens= (InstanceConfig.kv_capacity_tokens)")
        L = max((r.input_len for r in self.requests), default=0)
        return float(max(w_p * L, w_q * M))

    def max_request_cost(self, w_p: float = 1.0, w_q: float = 2.0) -> float:
        """``max(w_p * L_input, w_q * O_max)`` in service units with ``O_max`` the longest *output*:
        the largest charge of one prompt or of one output (DRR's quantum rule uses it). This is
        NOT the published U (``max_cost``), which takes the batch's KV token capacity."""
        if not self.requests:
            return 0.0
        return max(w_p * max(r.input_len for r in self.requests), w_q * max(r.output_len for r in self.requests))

    def to_frame(self):
        """A pandas DataFrame with one row per request (columns: rid, arrival, client,
        input_len, output_len, n_units)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "rid": [r.rid for r in self.requests],
                "arrival": np.array([r.arrival for r in self.requests], dtype=float),
                "client": [r.client for r in self.requests],
                "input_len": [r.input_len for r in self.requests],
                "output_len": [r.output_len for r in self.requests],
                "n_units": [len(r.prompt) for r in self.requests],
            }
        )

    def head(self, n: int) -> Workload:
        """The first ``n`` requests as a new workload."""
        return Workload(self.requests[:n], self.name, self.block_size, self.source, dict(self.meta))

    def replayed(self, speed: float) -> Workload:
        """The workload replayed ``speed`` times faster (every arrival time [s] divided by
        ``speed``; a load scale: 2.0 offers twice the requests per second).

        Raises:
            ValueError: ``speed`` is not a finite number > 0.
        """
        import math

        if not (isinstance(speed, int | float) and math.isfinite(speed) and speed > 0):
            raise ValueError(f"replay speed must be a finite number > 0, got {speed!r}")
        if speed == 1.0:
            return self
        reqs = [Request(r.rid, r.arrival / speed, r.client, r.prompt, r.input_len, r.output_len, r.block_size)
                for r in self.requests]
        return Workload(reqs, f"{self.name}-x{speed:g}", self.block_size, self.source, dict(self.meta))

    def until(self, seconds: float) -> Workload:
        """The requests that arrive before ``seconds`` as a new workload."""
        return Workload([r for r in self.requests if r.arrival < seconds], self.name, self.block_size,
                        self.source, dict(self.meta))


def make_workload(rows: Sequence[tuple[float, str, Sequence[int], int, int]], *, block_size: int = 1,
                  name: str = "workload", source: str = "") -> Workload:
    """Build a workload from ``(arrival_s, client, prompt_units, input_len, output_len)`` rows.

    Rows are stably sorted by arrival and renumbered so that ``rid`` is the index.
    """
    order = sorted(range(len(rows)), key=lambda i: rows[i][0])
    reqs = [Request(k, float(rows[i][0]), str(rows[i][1]), tuple(rows[i][2]), int(rows[i][3]),
                    int(rows[i][4]), block_size) for k, i in enumerate(order)]
    return Workload(reqs, name=name, block_size=block_size, source=source)
