"""Service in predicted seconds: fairness in GPU time instead of tokens.

:class:`SecondsService` is a :class:`~fairsched.policies.service.ServiceMeasure` that charges
an admission the cost model's predicted prefill time of its uncached tokens at its cached
context and each generated token its predicted decode time at its context
(``fairsched.sim.cost.CostModel``; ``proofs/cost_model.md``, ``proofs/seconds_bounds.md``)::

    prefill(n, h)         = t_prefill(n, h)                          [s]
    first token           = 0                                        (made by the prefill)
    decode(k, C_k; B, C)  = k (A(B) / B + b_d) + (c_d + d_q C) C_k     [s],  A(B) = a_d + e_d [B > 1]

for ``k`` tokens of one client made in one decode step of ``B`` sequences holding ``C``
context tokens, the client's ``k`` sequences holding ``C_k`` of them: the clients' charges
of a step sum to its predicted time ``t_d(B, C)`` (the fixed cost ``A(B)`` shared per
sequence, the batch term ``d_q C^2`` per context token). The backend passes ``B`` and
``C``; with ``batch_ref`` set, ``B = batch_ref`` and ``C = 0`` are used instead (a charge
that depends only on the request). A batch-dependent charge is bounded by its worst case,
``A(B) / B <= max(a_d, (a_d + e_d) / 2)`` and ``C = context_cap`` (the instance's KV capacity), which the proofs use for the
outstanding decode charges (:meth:`SecondsService.request_decode`;
``proofs/seconds_bounds.md``).

VTC, DLPM and D2LPM take it unchanged (``service=SecondsService(cost)`` in
:func:`fairsched.sim.simulate` / :func:`fairsched.engine.run_engine`, ``--service seconds`` on
the CLI): their proofs use only non-negative charges, the prefill charge at admission and
decode charges fixed at admission (``fairsched.theory.seconds``). Token service is
:class:`~fairsched.policies.service.ServiceWeights`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fairsched.policies.service import ServiceMeasure, ServiceWeights
from fairsched.sim.cost import CostModel


@dataclass(frozen=True)
class SecondsService(ServiceMeasure):
    """Predicted seconds of prefill and decode work (see the module docstring).

    Attributes:
        cost: the cost model whose predictions are charged.
        batch_ref: sequences sharing a decode step's fixed cost ``a_d`` (>= 1), or None for
            the actual batch.
        context_cap: most context tokens of a decode batch (the KV capacity), for the worst
            case of a batch-dependent charge (``request_decode``).
    Raises:
        ValueError: if ``batch_ref < 1``.
    """

    cost: CostModel
    batch_ref: int | None = None
    context_cap: int = 0
    name = "seconds"
    unit = "predicted seconds"

    def __post_init__(self):
        if self.batch_ref is not None and self.batch_ref < 1:
            raise ValueError(f"SecondsService.batch_ref must be >= 1 or None, got {self.batch_ref}")

    @property
    def batch_aware(self) -> bool:
        """Whether the backend must pass the decode step's batch size."""
        return self.batch_ref is None

    def prefill(self, uncached_tokens: int, cached_tokens: int = 0) -> float:
        """``t_prefill(uncached, cached)`` [s] (0 for a fully cached prompt)."""
        return self.cost.prefill_time(uncached_tokens, cached_tokens)

    def first_token(self, tokens: int = 1, context_tokens: int | np.ndarray = 0, batch: int = 1,
                    batch_context: int = 0) -> float:
        """0: the first output token's logits come with the prefill (already charged)."""
        return 0.0

    def decode(self, tokens: int = 1, context_tokens: int | np.ndarray = 0,
               batch: int | None = None, batch_context: int | np.ndarray = 0) -> float | np.ndarray:
        """``tokens (A(B) / B + b_d) + (c_d + d_q C) context_tokens`` [s] (elementwise on arrays),
        ``B, C`` = ``batch_ref, 0`` if ``batch_ref`` is set, else ``batch`` (default 1) and
        ``batch_context``."""
        c = self.cost
        if self.batch_ref is not None:
            b, big_c = self.batch_ref, 0
        else:
            b, big_c = batch or 1, batch_context
        fixed = c.decode_a + (c.decode_e if b > 1 else 0.0)
        return tokens * (fixed / b + c.decode_b) + (c.decode_c + c.decode_q * big_c) * context_tokens

    def request_decode(self, input_len: int, output_len: int) -> float:
        """Largest possible sum of a request's decode charges [s]: tokens ``j = 1 ..
        output_len - 1`` at context ``input_len + j`` (the KV tokens before them, as
        ``ClusterBackend._on_decode`` counts them), each in a batch of ``batch_ref`` holding no
        other context, or (actual batch) at the largest fixed share ``max_B A(B) / B = max(a_d,
        (a_d + e_d) / 2)`` and ``context_cap`` context tokens."""
        c = self.cost
        if self.batch_ref is not None:
            b = self.batch_ref
            per = (c.decode_a + (c.decode_e if b > 1 else 0.0)) / b + c.decode_b
        else:
            per = max(c.decode_a, (c.decode_a + c.decode_e) / 2) + c.decode_b
        cc = c.decode_c + (0 if self.batch_ref is not None else c.decode_q * self.context_cap)
        m = max(output_len - 1, 0)
        return float(m * per + cc * (m * input_len + m * (m + 1) / 2))


def default_quantum_seconds(workload, service: SecondsService) -> float:
    """The seconds analogue of :func:`fairsched.policies.default_quantum` (``max(w_p L_in,
    w_q O_max)``, VTC's ``U`` without the KV term): the largest predicted time of one prompt
    (no cache) or of one request's output decoded alone, ``max_r max(t_pre(L_r, 0),
    request_decode(L_r, O_r))`` [s], the decode at batch ``batch_ref`` (or 1) and no other
    context (``context_cap`` is ignored: a quantum is a scheduling parameter, not a bound)."""
    from dataclasses import replace

    alone = replace(service, context_cap=0)
    return max((max(alone.prefill(r.input_len, 0), alone.request_decode(r.input_len, r.output_len))
                for r in workload), default=0.0)


def service_for_run(name: str, workload, cost: CostModel, kv_capacity: int = 0, weights: ServiceWeights | None = None):
    """The service measure of a CLI run and its default quantum, one path for ``analyze``
    and ``check``: ``"tokens"`` -> ``(weights, default_quantum(workload, weights))`` (service
    units); ``"seconds"`` -> ``(SecondsService(cost, None, kv_capacity),
    default_quantum_seconds(...))`` [s] (the actual batch; ``kv_capacity``, the instance's KV
    tokens, bounds a decode step's context for the worst-case charge the seconds bounds use).

    Raises:
        ValueError: on another name (the message names ``--service``).
    """
    if name == "tokens":
        from fairsched.policies import default_quantum

        w = weights or ServiceWeights()
        return w, default_quantum(workload, w)
    if name == "seconds":
        svc = SecondsService(cost, None, int(kv_capacity))
        return svc, default_quantum_seconds(workload, svc)
    raise ValueError(f"--service must be 'tokens' or 'seconds', got {name!r}")


def make_service(name: str, cost: CostModel | None = None, batch_ref: int | None = None,
                 w_p: float = 1.0, w_q: float = 2.0) -> ServiceMeasure:
    """``"tokens"`` -> :class:`ServiceWeights` (``w_p``, ``w_q``); ``"seconds"`` ->
    :class:`SecondsService` (``cost``, default :class:`CostModel`; ``batch_ref``).

    Raises:
        ValueError: on another name.
    """
    if name == "tokens":
        return ServiceWeights(w_p, w_q)
    if name == "seconds":
        return SecondsService(cost or CostModel(), batch_ref)
    raise ValueError(f"service must be 'tokens' or 'seconds', got {name!r}")
