"""Warm-up prefill: a system-issued job that copies a hot prefix into a new holder's cache.

The mitigation of a harmful KV-cache hotspot (``proofs/lmetric_harm_validation.md`` §5)
needs more instances holding the hot class's prefix. Seeding a holder with a *user*
request makes that request pay the whole prefix (8k-32k tokens, 0.65-3.9 s on the A100
cost model, against a class mean TTFT of 0.06-0.41 s: §5.1). A **warm-up** is instead an
internal prefill job (:class:`Warmup`): it computes the prefix's KV on one instance and
leaves it in that instance's prefix cache; it produces no output for anyone.

What a warm-up is, in the simulator (:class:`WarmupSimulator`):

* **Work.** It runs through the instance's normal iteration loop (admission with the KV
  rule, chunked prefill within the token budget, LRU eviction to make room), so its
  prefill time is paid on that instance and delays whatever shares those iterations.
  The seconds of its chunks (``prefill_time(chunk, done)`` summed, the very terms of the
  iteration times) are its GPU time, reported as the mitigation's overhead
  (:attr:`WarmupSimulator.warmups`).
* **Invisible to users.** No arrival, no routing record, no TTFT / TPOT / e2e, no service
  charge (so no queue policy's fairness counter and no client's backlog moves), not
  counted in ``n_finished`` or the decode-token count.
* **Background.** Each instance's queue policy is wrapped (:class:`WarmupQueue`):
  warm-ups are offered to admission *after* the user requests the policy admits in the
  same planning step, and a running warm-up takes no batch slot and only the token
  budget the users' chunks leave in each iteration (:class:`_WarmInstance`). So, as long
  as KV memory does not bind (the warm-up holds its prefix's blocks), every iteration
  admits the same users and gives them the same chunks as it would without the warm-up;
  it is longer by the warm-up's chunk, ``prefill_time(chunk, done)``
  (``proofs/lmetric_harm_validation.md`` §5.2).
* **Cache afterwards.** When its prefill completes the prefix enters the cache (as any
  prompt does) and is unlocked when the job ends: an ordinary LRU entry.

Real systems do the same work by other means: SGLang's HiCache prefetches a request's
KV from host or remote storage before scheduling it (``--hicache-storage-prefetch-policy``
``best_effort`` / ``wait_complete``, docs/advanced_features/hicache_best_practices.md), and
Mooncake moves KV between instances with its transfer engine. Preble (WukLab/preble,
``multi_node/global_scheduler_with_time.py``) replicates a prefix whose TTFT doubled
between the halves of its window by adding a GPU to the prefix's allocation; the next
requests routed there recompute the prefix themselves: the per-request seed that §5.1
measured as the whole p99 excess.
"""

from __future__ import annotations

from dataclasses import dataclass

from fairsched.policies.base import Admission
from fairsched.sim.simulator import Instance, Simulator
from fairsched.workload.request import Request

__all__ = ["WARMUP_CLIENT", "Warmup", "WarmupQueue", "WarmupSimulator"]

WARMUP_CLIENT = "__warmup__"


@dataclass(frozen=True, slots=True)
class Warmup(Request):
    """An internal prefill job (not a user request): ``prompt`` = the prefix units to
    compute, ``input_len`` its tokens, ``output_len = 1`` (the iteration that completes
    the prefill emits one token nobody reads; the job then ends), ``rid < 0`` (never a
    workload index), ``client`` = :data:`WARMUP_CLIENT`, ``arrival`` = when it was issued [s].
    ``klass``: the prefix class it warms (for the report)."""

    klass: str = ""


class WarmupQueue:
    """Wraps one instance's queue policy: user requests go to ``inner``; :class:`Warmup`
    jobs wait in a FIFO of their own and are offered to ``try_admit`` after ``inner``
    has scheduled (a warm-up that does not fit yet waits; it never blocks a user request);
    an admitted one is handed to the instance's background list (its chunk budget refunded).
    Everything else (``charge``, ``backlogged``, ``waiting``, ``n_waiting``, ``name``...) is
    ``inner``'s: warm-ups are never charged, never backlog a client, never finish for the
    policy. ``len`` counts both (the instance stays awake while a warm-up waits)."""

    def __init__(self, inner):
        self.inner = inner
        self.jobs: list[Warmup] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __len__(self) -> int:
        return len(self.inner) + len(self.jobs)

    def add(self, req: Request, now: float) -> None:
        if isinstance(req, Warmup):
            self.jobs.append(req)
        else:
            self.inner.add(req, now)

    def schedule(self, inst, now: float) -> None:
        if len(self.inner):
            self.inner.schedule(inst, now)
        while self.jobs and inst.try_admit(self.jobs[0]) is Admission.ADMITTED:
            self.jobs.pop(0)
            s = inst.prefilling.pop()  # the warm-up just admitted runs in the background:
            inst._budget += s.chunk  # its budget is what the users leave (_WarmInstance._start)
            s.chunk = 0
            inst.bg.append(s)

    def on_finish(self, req: Request, now: float) -> None:
        if not isinstance(req, Warmup):
            self.inner.on_finish(req, now)


class _WarmInstance(Instance):
    """A simulated instance that runs warm-ups in the background and adds up the seconds
    of their prefill chunks.

    Background: while an iteration is planned (:meth:`start_step`: the chunks of the
    prompts in prefill, then the queue policy's admissions) the running warm-ups are out
    of ``prefilling``, so they take no batch slot and no token budget from a user request;
    :meth:`_start` then gives each the budget the users left (possibly 0: it waits) and
    puts it back for the iteration (its chunk is paid in the iteration's time)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.bg: list = []  # warm-up sequences held out of `prefilling` while planning

    def start_step(self, now: float) -> None:
        if self.sim.n_active and self.prefilling:
            self.bg = [s for s in self.prefilling if isinstance(s.req, Warmup)]
            if self.bg:
                self.prefilling = [s for s in self.prefilling if not isinstance(s.req, Warmup)]
        super().start_step(now)

    def _start(self, now: float) -> float | None:
        if self.bg:
            for s in self.bg:
                s.chunk = min(s.req.input_len - s.done, max(0, self._budget))
                self._budget -= s.chunk
            self.prefilling.extend(self.bg)
            self.bg = []
        return super()._start(now)

    def _model_time(self, cost) -> float:
        sim = self.sim
        if sim.n_active:
            for s in self.prefilling:
                if s.chunk and isinstance(s.req, Warmup):
                    sim.warmups[-1 - s.req.rid]["gpu_s"] += cost.prefill_time(s.chunk, s.done)
        return super()._model_time(cost)


class WarmupSimulator(Simulator):
    """A :class:`~fairsched.sim.simulator.Simulator` that can run :class:`Warmup` jobs
    (:meth:`warm_up`), e.g. for a mitigating router. Same arguments as ``Simulator``. While
    no warm-up was issued it makes exactly the same decisions and records as ``Simulator``.

    Attributes:
        warmups: one dict per warm-up issued, in order: ``instance``, ``klass``,
            ``tokens`` (its prompt), ``issued_s``, ``admitted_s``, ``cached_tokens`` (already
            cached at admission), ``ready_s`` (prefill complete: the prefix is in the
            cache; None if never), ``gpu_s`` (seconds of its prefill chunks on that instance).
        warming: instance -> warm-ups issued there and not yet complete.
    """

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.instances = [_WarmInstance(i, self, WarmupQueue(inst.policy)) for i, inst in enumerate(self.instances)]
        self.warmups: list[dict] = []
        self.warming: dict[int, int] = {}
        self.n_active = 0  # warm-ups issued and not finished (0: every hook is Simulator's)

    def warm_up(self, i: int, req: Request, units: int, now: float, klass: str = "") -> Warmup:
        """Issue a warm-up at ``now`` that computes the first ``units`` prompt units of
        ``req`` on instance ``i`` (``units >= 1``; the prompt tokens they cover).

        Raises:
            ValueError: ``i`` outside the cluster or ``units`` outside ``1..len(req.prompt)``.
        """
        if not 0 <= i < self.n_instances:
            raise ValueError(f"warm_up: instance {i} outside 0..{self.n_instances - 1}")
        if not 1 <= units <= len(req.prompt):
            raise ValueError(f"warm_up: units={units} outside 1..{len(req.prompt)}")
        k = len(self.warmups)
        w = Warmup(-1 - k, now, WARMUP_CLIENT, tuple(req.prompt[:units]), req.tokens_in(units), 1, req.block_size,
                   klass)
        self.warmups.append({"instance": i, "klass": klass, "tokens": w.input_len, "issued_s": now,
                             "admitted_s": None, "cached_tokens": None, "ready_s": None, "gpu_s": 0.0})
        self.warming[i] = self.warming.get(i, 0) + 1
        self.n_active += 1
        self.instances[i].enqueue(w, now)
        return w

    def free_of(self, class_of, classes) -> list[int]:
        """Instances where no user request of ``classes`` is waiting (routed, not yet
        admitted); ``class_of``: request id -> class name. Warm-ups are never waiting users.
        The shield of the warm-up mitigation (``proofs/lmetric_harm_validation.md`` §5.3)."""
        return [i for i, inst in enumerate(self.instances)
                if not (inst.waiting and any(class_of[r.rid] in classes for r in inst.policy.waiting()))]

    # ---------------------------------------------------------------- hooks (filters)
    def _on_admit(self, inst, s, now: float) -> None:
        if isinstance(s.req, Warmup):
            rec = self.warmups[-1 - s.req.rid]
            rec["admitted_s"], rec["cached_tokens"] = now, s.cached
            return
        super()._on_admit(inst, s, now)

    def _users(self, seqs: list) -> list:
        return [s for s in seqs if not isinstance(s.req, Warmup)] if self.n_active else seqs

    def _on_first_token(self, inst, seqs: list, now: float) -> None:
        seqs = self._users(seqs)
        if seqs:
            super()._on_first_token(inst, seqs, now)

    def _on_decode(self, inst, seqs: list, times, seconds: float = 0.0, first: bool = False) -> None:
        seqs = self._users(seqs)
        if seqs:
            super()._on_decode(inst, seqs, times, seconds, first)

    def _on_prefill_done(self, inst, s, new_units: int, now: float) -> None:
        if isinstance(s.req, Warmup):
            self.warmups[-1 - s.req.rid]["ready_s"] = now
            self.warming[inst.idx] -= 1
            return
        super()._on_prefill_done(inst, s, new_units, now)

    def _on_finish(self, inst, s, now: float) -> None:
        if isinstance(s.req, Warmup):
            self.n_active -= 1
            return
        super()._on_finish(inst, s, now)
