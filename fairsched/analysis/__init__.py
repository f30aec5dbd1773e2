"""Metrics of a run and the HTML report.

- :mod:`.metrics`: :func:`latency_stats`, :func:`throughput_tok_s`, :func:`cache_hit_rate`,
  :func:`service_curves`, :func:`backlog_intervals`, :func:`max_service_gap` (and the
  reference :func:`max_service_gap_naive`), :func:`jain_index`, :func:`summarize`.
- :mod:`.report`: plotly figures (:func:`fig_latency_cdf`, :func:`fig_service_curves`,
  :func:`fig_hit_rate`, :func:`fig_comparison`) and :func:`write_report` (one
  self-contained ``report.html``). Imported lazily so metrics do not pull in plotly.
"""

from fairsched.analysis.metrics import (
    JAIN_MIN_BACKLOG_FRAC,
    GapReport,
    backlog_intervals,
    backlogged_rates,
    cache_hit_rate,
    jain_index,
    latency_stats,
    makespan_s,
    max_service_gap,
    max_service_gap_naive,
    service_curves,
    summarize,
    throughput_tok_s,
)

__all__ = [
    "JAIN_MIN_BACKLOG_FRAC",
    "GapReport",
    "backlog_intervals",
    "backlogged_rates",
    "cache_hit_rate",
    "jain_index",
    "latency_stats",
    "makespan_s",
    "max_service_gap",
    "max_service_gap_naive",
    "service_curves",
    "summarize",
    "throughput_tok_s",
]
