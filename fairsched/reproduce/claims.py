"""The registry of reproduced claims (the six built-in ones are declared as ``CLAIM`` in their
modules, ``claim1_dlpm_throughput`` ... ``claim6_quantum_tradeoff``, next to their experiment).

Add a claim by writing a run function ``run(quick, cost, out) -> ClaimResult`` that
reports a value for each check, and registering a :class:`~fairsched.reproduce.base.Claim`::

    from fairsched.reproduce import Check, Claim, ClaimResult, register

    def run_mine(quick, cost, out):
        ...                                   # simulate, measure
        return ClaimResult(values={"speedup": 1.7}, notes="...", figure=fig)

    register(Claim(id="my-claim", number=7, title="...", source="paper, Table 2",
                   paper_figure="2.0x speedup", metric="...", setup="...",
                   checks=(Check("speedup", "X/Y latency", paper=2.0, neutral=1.0, fmt="{:.2f}x"),),
                   run=run_mine))

The verdict rule and its thresholds are in :mod:`fairsched.reproduce.base`.
"""

from __future__ import annotations

from fairsched.reproduce import (
    claim1_dlpm_throughput,
    claim2_dlpm_fairness,
    claim3_d2lpm_latency,
    claim4_vtc_trace,
    claim5_lmetric_routing,
    claim6_quantum_tradeoff,
)
from fairsched.reproduce.base import Claim

REGISTRY: dict[str, Claim] = {}
"""Claim id -> claim, in registration order."""


def register(claim: Claim, *, replace: bool = False) -> Claim:
    """Add ``claim`` to :data:`REGISTRY` (and return it).

    Raises:
        ValueError: if its id or number is taken (unless ``replace``).
    """
    if not replace:
        if claim.id in REGISTRY:
            raise ValueError(f"claim id {claim.id!r} is already registered")
        if any(c.number == claim.number for c in REGISTRY.values()):
            raise ValueError(f"claim number {claim.number} is already registered")
    REGISTRY[claim.id] = claim
    return claim


def claim_ids() -> list[str]:
    return list(REGISTRY)


def get_claims(names: list[str] | None = None) -> list[Claim]:
    """The claims called ``names`` (ids, or numbers as strings), in the given order; all
    registered claims if ``names`` is empty or None. Duplicates are dropped.

    Raises:
        KeyError: naming every unknown claim and listing the known ids.
    """
    if not names:
        return list(REGISTRY.values())
    by_number = {str(c.number): c for c in REGISTRY.values()}
    out, unknown = [], []
    for n in names:
        c = REGISTRY.get(n.strip().lower()) or by_number.get(n.strip())
        if c is None:
            unknown.append(n)
        elif c not in out:
            out.append(c)
    if unknown:
        known = ", ".join(f"{c.number}={c.id}" for c in REGISTRY.values())
        raise KeyError(f"unknown claim {', '.join(map(repr, unknown))}; known claims: {known}")
    return out


# ---------------------------------------------------------------------------------- the six
for _module in (claim1_dlpm_throughput, claim2_dlpm_fairness, claim3_d2lpm_latency,
                claim4_vtc_trace, claim5_lmetric_routing, claim6_quantum_tradeoff):
    register(_module.CLAIM)
