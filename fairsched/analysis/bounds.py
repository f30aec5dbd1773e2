"""Fairness bounds on a run: one import for the bound checker's parts.

- :mod:`fairsched.analysis.gap`: the service gap, exact, pruned by each leader's service (``proofs/gap_algorithm.md``)
  (:func:`max_gap_from_logs`, :func:`max_service_gap`);
- :mod:`fairsched.analysis.gap_reference`: its quadratic reference (:func:`naive_max_gap`)
  and benchmark logs (:func:`synthetic_log`);
- :mod:`fairsched.analysis.service_params`: the parameters the bounds are evaluated with
  (:func:`concurrency_k`, :func:`measured_x`) and the per-instance logs
  (:func:`simulate_for_check`, :func:`instance_backlog_log`, :func:`everywhere_backlog_log`);
- :mod:`fairsched.analysis.verdicts`: :func:`check_run` (every bound that applies, as
  :class:`Verdict` rows) and :func:`verdict_frame`;
- :mod:`fairsched.analysis.bound_figures`: :func:`fig_gap_vs_bound`.
"""

from fairsched.analysis.bound_figures import fig_gap_vs_bound
from fairsched.analysis.gap import GapReport, max_gap_from_logs, max_service_gap
from fairsched.analysis.gap_reference import naive_max_gap, synthetic_log
from fairsched.analysis.service_params import (
    concurrency_k,
    everywhere_backlog_log,
    instance_backlog_log,
    measured_x,
    simulate_for_check,
)
from fairsched.analysis.verdicts import (
    STATUS_CANDIDATE_VIOLATED,
    STATUS_HOLDS,
    STATUS_NA,
    STATUS_NO_BOUND,
    STATUS_PUBLISHED_VIOLATED,
    STATUS_VACUOUS,
    STATUS_VIOLATED,
    Verdict,
    check_run,
    verdict_frame,
)

__all__ = ["STATUS_CANDIDATE_VIOLATED", "STATUS_HOLDS", "STATUS_NA", "STATUS_NO_BOUND", "STATUS_PUBLISHED_VIOLATED",
           "STATUS_VACUOUS", "STATUS_VIOLATED", "GapReport", "Verdict", "check_run", "concurrency_k",
           "everywhere_backlog_log", "fig_gap_vs_bound", "instance_backlog_log", "max_gap_from_logs", "max_service_gap",
           "measured_x", "naive_max_gap", "simulate_for_check", "synthetic_log", "verdict_frame"]
