"""Hardware profiles: an iteration-time model and instance resources that belong together.

=======================  =====================================  ==========================
profile                  setup                                  used by default for
=======================  =====================================  ==========================
a100-llama3-8b           A100-80GB, Llama-3.1-8B (DLPM paper)   generated workloads, Mooncake
a10g-llama2-7b           A10G-24GB, Llama-2-7B (VTC paper)      the VTC LMSYS trace
a100-llama2-7b           A100-80GB, Llama-2-7B
<name>-roofline          the same, roofline only
=======================  =====================================  ==========================

The A100 profiles' token-linear coefficients are fitted on measured operator times (Vidur's
A100 profiles, ``fairsched.theory.measured``); their attention terms, and every term of the
A10G profile (no public per-operator measurements found), come from the roofline in
``fairsched.theory.cost`` (MFU 0.5 / MBU 0.8 assumed; ``proofs/cost_model.md``).
``<name>-roofline`` selects the pure roofline of any profile. The VTC trace defaults to the
VTC paper's hardware because its figures (and its queueing) come from that engine: on an
A100 the trace never queues and every policy behaves alike.
"""

from __future__ import annotations

from fairsched.sim.cost import CostModel
from fairsched.sim.simulator import InstanceConfig

PROFILES = ("a100-llama3-8b", "a10g-llama2-7b", "a100-llama2-7b", "a100-llama3-8b-roofline",
            "a10g-llama2-7b-roofline", "a100-llama2-7b-roofline")
FORMAT_PROFILE = {"vtc": "a10g-llama2-7b", "mooncake": "a100-llama3-8b", "jsonl": "a100-llama3-8b"}


def hardware_profile(name: str, **instance_overrides) -> tuple[CostModel, InstanceConfig]:
    """``(CostModel, InstanceConfig)`` of profile ``name``.

    Raises:
        ValueError: on an unknown profile, listing the known ones.
    """
    if name not in PROFILES:
        raise ValueError(f"unknown hardware profile {name!r}; choose from {', '.join(PROFILES)}")
    base = name.removesuffix("-roofline")
    cost = CostModel.from_profile(base, "roofline" if base != name else "auto")
    return cost, InstanceConfig.from_profile(base, **instance_overrides)


def default_profile(trace_format: str | None) -> str:
    """The profile used when none is given: the VTC paper's hardware for its trace."""
    return FORMAT_PROFILE.get(trace_format or "jsonl", "a100-llama3-8b")
