"""Workloads: the request model, trace loaders with validation, and seeded generators.

- :mod:`.request`: :class:`Request`, :class:`Workload`, :func:`make_workload`.
- :mod:`.loaders`: :func:`load_mooncake`, :func:`load_vtc`, :func:`load_jsonl`,
  :func:`load_trace` (format dispatch / sniffing), :func:`save_jsonl`,
  :func:`shared_data_dir` (where the real traces live).
- :mod:`.errors`: :class:`TraceError` (file, line and field of a bad trace record),
  :class:`TraceWarning` (a trace that loads but looks wrong).
- :mod:`.generators`: :func:`long_document_qa`, :func:`multi_turn_chat`,
  :func:`tree_of_thought`, :func:`llm_as_judge`, :func:`synthetic_unique`, :func:`mixed`,
  :func:`default_workload`, and ``GENERATORS`` (name -> function).
"""

from .errors import TraceError, TraceWarning
from .generators import (
    GENERATORS,
    default_workload,
    llm_as_judge,
    long_document_qa,
    mixed,
    multi_turn_chat,
    offered_load,
    synthetic_unique,
    tree_of_thought,
)
from .load import busy_lower_bound
from .loaders import (
    FORMATS,
    load_jsonl,
    load_mooncake,
    load_trace,
    load_vtc,
    save_jsonl,
    shared_data_dir,
    sniff_format,
)
from .request import Request, Workload, make_workload

__all__ = [
    "FORMATS",
    "GENERATORS",
    "Request",
    "TraceError",
    "TraceWarning",
    "Workload",
    "default_workload",
    "llm_as_judge",
    "load_jsonl",
    "load_mooncake",
    "load_trace",
    "load_vtc",
    "long_document_qa",
    "make_workload",
    "mixed",
    "multi_turn_chat",
    "offered_load",
    "busy_lower_bound",
    "save_jsonl",
    "shared_data_dir",
    "sniff_format",
    "synthetic_unique",
    "tree_of_thought",
]
from .hotspot import benign_twin, hotspot_workload  # noqa: E402, F401  (LMetric hotspot generators)
