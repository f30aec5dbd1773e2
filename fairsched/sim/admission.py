"""KV-memory admission rules shared by the simulator and the torch engine.

An instance admits a waiting request only if the KV memory it will need fits
(``InstanceConfig.admission``):

* ``"reserve"``: the request reserves its uncached prompt plus its whole output at
  admission, so the memory in use never exceeds what was reserved (no preemption ever).
* ``"peak"``: the rule of the VTC artifact and S-LoRA (lightllm lineage,
  ``ReqQueue._can_add_new_req``): admit if the *projected peak* of the running batch, the
  request included, fits in ``M``. Each running request j holds a fixed part ``b_j``
  (its prompt) plus its output tokens, which grow by one per decode step, and releases
  both when it finishes after ``r_j`` more tokens. With the requests sorted by remaining
  output ``r_1 >= r_2 >= ...`` the total peaks at the step where one of them finishes,
  ``r_i``, when exactly requests ``1..i`` still run:

      peak = max_i sum_{j <= i} (b_j + h_j + r_i) = max_i (cumsum(b + h)_i + i r_i)

  (``h_j``: output tokens held now; :func:`projected_peak`). The artifact's entries are
  ``(input + generated, max_output - generated - 1)`` for a running request and
  ``(input + 1, max_output - 1)`` for the candidate, and it admits if ``peak < M``; here
  every generated token's KV is counted (so a running request's entry is one token higher
  than the artifact's, the candidate's the same: ``(input, 0, output)``), and the rule
  admits if ``peak <= M``, the capacity being ``M`` tokens.

Why ``peak`` never exceeds the capacity (the invariant ``tests/test_admission.py``
searches for violations of): memory in use = cache blocks held by running requests +
cache blocks nobody holds + private prompt blocks + output tokens. The second part is
evicted (LRU) whenever memory is needed, at admission or when outputs grow; the rest is at
most ``sum_j (b_j + outputs_j)`` with ``b_j`` = the request's prompt blocks plus private
copies (a shared prefix counted once per holder: an upper bound). That sum follows the
projection made at the last admission as long as (1) output lengths are known at
admission, as in the simulator and the engine, which read ``Request.output_len`` (a real
server projects with the client's ``max_tokens`` instead, also an upper bound, and
finishes early at most), and (2) every request counted as growing decodes in lockstep from
the next step: a request whose prompt will not complete in the iteration being planned
(chunked prefill) would start later and could end above the projection, so it is counted
with its whole output, as if it never finished. Each admission checks the projection of
the state with the candidate, so between admissions memory stays below ``M``. Should the
memory in use ever exceed the capacity (a broken assumption), the instance raises
``RuntimeError`` rather than run over capacity or preempt silently.
"""

from __future__ import annotations

import numpy as np

ADMISSION_RULES = ("reserve", "peak")
"""The KV admission rules (see the module docstring)."""


def projected_peak(base: list[int], held: list[int], remaining: list[int], unit: int = 1) -> int:
    """Most KV memory units a batch will hold at once if nothing else is admitted (the
    VTC artifact's ``_can_add_new_req`` projection).

    Args:
        base: per request, memory units that do not grow and are released when it
            finishes (its prompt).
        held: per request, output tokens whose KV it holds before the next step grows it
            by one token (tokens generated so far; 0 for a prompt completing in the next
            step).
        remaining: per request, output tokens still to generate (>= 1), same order.
        unit: tokens per memory unit (the engine counts whole blocks, rounding each
            request's output up).
    Returns:
        ``max_i sum_{j: r_j >= r_i} (base_j + ceil((held_j + r_i) / unit))`` in memory
        units (0 for an empty batch): for ``unit = 1``, with the requests sorted by
        remaining output (longest first), ``max_i (cumsum(base + held)_i + i * r_i)``.
    """
    n = len(remaining)
    if n == 0:
        return 0
    b = np.asarray(base, dtype=np.int64)
    h = np.asarray(held, dtype=np.int64)
    r = np.asarray(remaining, dtype=np.int64)
    if unit == 1:
        o = np.argsort(-r, kind="stable")
        return int((np.cumsum(b[o] + h[o]) + np.arange(1, n + 1) * r[o]).max())
    grow = b[None, :] + -(-(h[None, :] + r[:, None]) // unit)  # [i, j]: request j's units at step r_i
    return int((grow * (r[None, :] >= r[:, None])).sum(axis=1).max())


class PeakPlan:
    """The peak rule's projection for the iteration being planned on one instance.

    Args:
        decoding: the decoding sequences (``generated`` tokens so far).
        prefilling: the sequences still in prefill, with this iteration's ``chunk``.
        unit: tokens per memory unit; block_units: memory units of one KV block.

    Each running request holds its prompt (``units`` blocks, locked in the prefix cache
    or private until inserted; plus private copies of blocks computed twice) and its
    output tokens, and releases them when it finishes (a shared prefix block is counted
    once per request holding it: an upper bound). Cache blocks no running request holds
    are not counted: they are evicted when memory is needed. A request whose prompt does
    not complete in this iteration starts decoding later than the projection assumes: it
    is counted with its whole output, as if it never finished (``fixed``).
    """

    def __init__(self, decoding: list, prefilling: list, unit: int, block_units: int):
        self.unit, self.bu = unit, block_units
        self.fixed, self.base, self.held, self.rem = 0, [], [], []
        for s in decoding:
            self.base.append(s.units * block_units + s.reserved - s.out_units)
            self.held.append(s.generated)
            self.rem.append(s.req.output_len - s.generated)
        for s in prefilling:
            self.add(s.units, s.req.output_len, s.done + s.chunk >= s.req.input_len)

    def need(self, units: int, o: int, completes: bool) -> int:
        """Most memory units outside the unheld cache that the batch plus a candidate
        (``units`` prompt blocks, ``o`` output tokens, its prompt completing in this
        iteration or not) will hold at once if nothing else is admitted."""
        p = units * self.bu
        if completes:
            return self.fixed + projected_peak(self.base + [p], self.held + [0], self.rem + [o], self.unit)
        return self.fixed + p + -(-o // self.unit) + projected_peak(self.base, self.held, self.rem, self.unit)

    def add(self, units: int, o: int, completes: bool) -> None:
        """The candidate of :meth:`need` was admitted."""
        if completes:
            self.base.append(units * self.bu)
            self.held.append(0)
            self.rem.append(o)
        else:
            self.fixed += units * self.bu + -(-o // self.unit)
