"""Reproduce the source papers' headline comparisons (``fairsched reproduce``).

- :mod:`.base`: :class:`Claim`, :class:`Check`, :class:`ClaimResult`, :class:`Outcome`
  and the verdict rule :func:`judge` / :func:`combine` (thresholds documented there).
- :mod:`.claims`: :data:`REGISTRY` of the six claims, :func:`register`, :func:`get_claims`.
- :mod:`.common` and one module a claim (:mod:`.claim1_dlpm_throughput` ...
  :mod:`.claim6_quantum_tradeoff`): the simulations behind them.
- :mod:`.runner`: :func:`run_claims`, the table, ``reproduce.json`` and ``reproduce.html``.
- :mod:`.rpm`: the VTC paper's requests-per-minute limiter as a workload rewrite.
- :mod:`.vtc_metric`: VTC's windowed "Max Diff" service-difference metric.
"""

from fairsched.reproduce.base import (
    NOT_REPRODUCED,
    REL_TOL,
    REPRODUCED,
    SAME_DIRECTION,
    VERDICTS,
    Check,
    Claim,
    ClaimResult,
    Outcome,
    combine,
    evaluate_claim,
    judge,
)
from fairsched.reproduce.claims import REGISTRY, claim_ids, get_claims, register
from fairsched.reproduce.runner import (
    dataframe,
    entries,
    html_page,
    missing_data,
    run_claim,
    run_claims,
    table,
    table_text,
    write_outputs,
)

__all__ = [
    "NOT_REPRODUCED", "REGISTRY", "REL_TOL", "REPRODUCED", "SAME_DIRECTION", "VERDICTS", "Check", "Claim",
    "ClaimResult", "Outcome", "claim_ids", "combine", "dataframe", "entries", "evaluate_claim", "get_claims",
    "html_page", "judge", "missing_data", "register", "run_claim", "run_claims", "table", "table_text", "write_outputs",
]
