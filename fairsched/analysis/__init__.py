"""Metrics of a run and the HTML report.

- :mod:`.metrics`: :func:`latency_stats`, :func:`throughput_tok_s`, :func:`cache_hit_rate`,
  :func:`service_curves`, :func:`backlog_intervals`, :func:`jain_index`, :func:`summarize`,
  and (from :mod:`.gap`) :func:`max_service_gap` with its reference
  :func:`max_service_gap_naive` (:mod:`.gap_reference`).
- :mod:`.bounds`: the bound checker (:mod:`.gap`, :mod:`.service_params`, :mod:`.verdicts`,
  :mod:`.bound_figures`).
- :mod:`.report`: plotly figures (:func:`fig_latency_cdf`, :func:`fig_service_curves`,
  :func:`fig_hit_rate`, :func:`fig_comparison`) and :func:`write_report` (one
  self-contained ``report.html``). Imported lazily so metrics do not pull in plotly.
"""

from fairsched.analysis.metrics import *  # noqa: F403  (the public names: metrics.__all__)
from fairsched.analysis.metrics import __all__  # noqa: F401
