"""The service measure: how much *service* one prefill or one decode step gives a client.

One object answers that question for a whole run. The backend
(:class:`~fairsched.sim.backend.ClusterBackend`) asks it once per charge, logs the
amount and hands the same amount to the queue policy (:meth:`QueuePolicy.charge
<fairsched.policies.base.QueuePolicy.charge>`), so the log the bounds are checked on and
the counters the policy schedules by can never disagree.

:class:`ServiceWeights` is the token service of VTC (Sheng et al., OSDI'24, Sec. 3) and
DLPM (Cao et al., arXiv 2501.14312, Sec. 4): ``W = w_p * uncached prefill tokens + w_q *
decode tokens`` (``proofs/service_model.md``). Another measure (e.g. predicted seconds
from a cost model) is another subclass of :class:`ServiceMeasure`; nothing else changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from numbers import Real

import numpy as np


class ServiceMeasure(ABC):
    """The service of prefill and decode work, in *service units* (the measure's own unit).

    Both methods must be deterministic. :meth:`decode` must accept numpy arrays for
    ``context_tokens`` (elementwise; the backend evaluates the steps of a decode run at
    once) and may return a scalar when the amount does not depend on the context.
    """

    name = "service"
    unit = "service units"
    context_free = False
    """True if :meth:`decode` ignores ``context_tokens`` (the backend then asks once per
    client for a whole run of decode steps)."""

    @abstractmethod
    def prefill(self, uncached_tokens: int, cached_tokens: int = 0) -> float:
        """Service for computing ``uncached_tokens`` prompt tokens of one request whose
        first ``cached_tokens`` prompt tokens came from the prefix cache (charged once, at
        admission)."""

    @abstractmethod
    def decode(self, tokens: int = 1, context_tokens: int | np.ndarray = 0) -> float | np.ndarray:
        """Service for ``tokens`` output tokens made in one iteration (one per sequence)
        whose sequences attend to ``context_tokens`` KV tokens in total (prompt plus
        tokens generated before)."""


@dataclass(frozen=True)
class ServiceWeights(ServiceMeasure):
    """Token service: ``w_p`` per uncached prefill token and ``w_q`` per decode token
    (VTC's defaults 1 and 2; service units are ``w_p``-weighted tokens).

    Raises:
        ValueError: if a weight is negative or not finite.
    """

    w_p: float = 1.0
    w_q: float = 2.0
    name = "tokens"
    unit = "tokens (w_p-weighted)"
    context_free = True

    def __post_init__(self):
        for k in ("w_p", "w_q"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, Real) or not (np.isfinite(v) and v >= 0):
                raise ValueError(f"ServiceWeights.{k} must be a finite number >= 0, got {v!r}")

    def prefill(self, uncached_tokens: int, cached_tokens: int = 0) -> float:
        """``w_p * uncached_tokens`` (cached tokens are free)."""
        return self.w_p * uncached_tokens

    def decode(self, tokens: int = 1, context_tokens: int | np.ndarray = 0) -> float:
        """``w_q * tokens`` (the context does not matter)."""
        return self.w_q * tokens
