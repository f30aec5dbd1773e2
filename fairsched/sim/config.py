"""The resources of one serving instance (:class:`InstanceConfig`), shared by the
simulator and the torch engine."""

from __future__ import annotations

from dataclasses import dataclass

from fairsched.sim.admission import ADMISSION_RULES


@dataclass(frozen=True)
class InstanceConfig:
    """Resources of one serving instance.

    Attributes:
        max_batch_size: most sequences in the running batch.
        token_budget: most tokens (prefill chunks + one per decoding sequence) in one
            iteration; prompts longer than what is left are chunked.
        kv_capacity_tokens: KV-cache slots shared by the prefix cache and running requests.
        admission: KV admission rule, ``"reserve"`` (uncached prompt + whole output
            reserved at admission) or ``"peak"`` (the projected peak of the running batch
            must fit, as in the VTC artifact / S-LoRA); see :mod:`fairsched.sim.admission`.
    Raises:
        ValueError: on a field < 1 or an unknown ``admission``.
    """

    max_batch_size: int = 256
    token_budget: int = 8192
    kv_capacity_tokens: int = 439_041  # = theory.cost.kv_capacity_tokens("a100-llama3-8b")
    admission: str = "reserve"

    @classmethod
    def from_profile(cls, profile: str = "a100-llama3-8b", **overrides) -> InstanceConfig:
        """Resources of a hardware profile (``fairsched.sim.profiles``): KV capacity from
        ``fairsched.theory.cost.kv_capacity_tokens``; ``overrides`` replace fields."""
        from fairsched.theory.cost import kv_capacity_tokens

        return cls(**{"kv_capacity_tokens": kv_capacity_tokens(profile), **overrides})

    def __post_init__(self):
        for k in ("max_batch_size", "token_budget", "kv_capacity_tokens"):
            if getattr(self, k) < 1:
                raise ValueError(f"InstanceConfig.{k} must be >= 1, got {getattr(self, k)}")
        if self.admission not in ADMISSION_RULES:
            raise ValueError(f"InstanceConfig.admission must be one of {', '.join(ADMISSION_RULES)}, "
                             f"got {self.admission!r}")
