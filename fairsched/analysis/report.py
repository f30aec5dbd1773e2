"""Plotly figures of runs and a single self-contained HTML report.

The figure functions return :class:`plotly.graph_objects.Figure` objects, so notebooks
can show them directly; :func:`write_report` puts them on one page. plotly.js is embedded
once (in the first figure) so the report opens without network access.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fairsched.analysis.metrics import GapReport, max_service_gap, service_curves
from fairsched.analysis.page import html_page, html_table
from fairsched.output import atomic_write_text  # re-exported: the one atomic writer

__all__ = [
    "COMPARISON_METRICS",
    "atomic_write_text",
    "fig_comparison",
    "fig_hit_rate",
    "fig_latency_cdf",
    "fig_service_curves",
    "run_label",
    "write_report",
]

MAX_POINTS = 2000
"""Most points per line in any figure (CDFs and service curves are downsampled)."""

COMPARISON_METRICS: tuple[tuple[str, str], ...] = (
    ("ttft_mean_s", "TTFT mean [s]"),
    ("ttft_p99_s", "TTFT p99 [s]"),
    ("tpot_p50_s", "TPOT p50 [s]"),
    ("throughput_tok_s", "throughput [tok/s]"),
    ("cache_hit_rate", "cache hit rate"),
    ("max_service_gap", "max service gap [units]"),
    ("jain_index", "Jain's index"),
)
"""(summary key, axis title) pairs shown by :func:`fig_comparison`."""


def run_label(result) -> str:
    """``policy`` for one instance, ``router/policy`` for a cluster."""
    router = getattr(result, "router", "") or "none"
    return result.policy if router == "none" else f"{router}/{result.policy}"


def _labels(results, labels: Sequence[str] | None) -> list[str]:
    return list(labels) if labels is not None else [run_label(r) for r in results]


def _cdf_points(v: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Sorted values and their empirical CDF, at most ``max_points`` (quantile-spaced)."""
    v = np.sort(v[np.isfinite(v)])
    if not v.size:
        return v, v
    p = np.arange(1, v.size + 1) / v.size
    if v.size > max_points:
        idx = np.unique(np.linspace(0, v.size - 1, max_points).round().astype(np.int64))
        v, p = v[idx], p[idx]
    return v, p


def fig_latency_cdf(results, metric: str = "ttft_s", labels: Sequence[str] | None = None,
                    log_x: bool = True) -> go.Figure:
    """Empirical CDF of a per-request latency over finished requests, one line per run.

    Args:
        results: SimResults.
        metric: a :meth:`SimResult.requests_frame` column: ``ttft_s``, ``tpot_s`` or ``e2e_s``.
        labels: legend names (default :func:`run_label`).
        log_x: logarithmic x axis (latencies span orders of magnitude).
    """
    names = {"ttft_s": "TTFT", "tpot_s": "TPOT", "e2e_s": "end-to-end latency"}
    fig = go.Figure()
    for r, lab in zip(results, _labels(results, labels), strict=True):
        df = r.requests_frame()
        v = df[metric].to_numpy(dtype=float)[np.isfinite(df["finish_t"].to_numpy(dtype=float))]
        if log_x:
            v = v[v > 0]
        x, y = _cdf_points(v)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=lab))
    fig.update_layout(title=f"{names.get(metric, metric)} CDF (finished requests)",
                      xaxis_title=f"{names.get(metric, metric)} [s]", yaxis_title="fraction of requests",
                      xaxis_type="log" if log_x else "linear", template="plotly_white",
                      legend_title="scheduler")
    return fig


def fig_service_curves(result, top: int = 12, max_points: int = MAX_POINTS, label: str | None = None,
                       gap: GapReport | None = None) -> go.Figure:
    """Cumulative service ``W_i(t)`` of the ``top`` clients by total service (step lines).

    A shaded span marks the interval of the run's maximum service gap (``gap``, computed
    with :func:`max_service_gap` if not given).
    """

    amounts = np.bincount(np.asarray(result.svc_client, dtype=np.int64),
                          weights=np.asarray(result.svc_amount, dtype=float),
                          minlength=len(result.clients))
    keep = [result.clients[i] for i in np.argsort(-amounts, kind="stable")[:top] if amounts[i] > 0]
    df = service_curves(result, clients=keep, max_points=max_points)
    fig = go.Figure()
    for c in keep:
        d = df[df["client"] == c]
        fig.add_trace(go.Scatter(x=d["t"].to_numpy(), y=d["W"].to_numpy(), mode="lines",
                                   line_shape="hv", name=str(c)))
    if gap is None:
        gap = max_service_gap(result)
    title = f"service W_i(t), {label or run_label(result)}"
    if gap.pair is not None:
        t1, t2 = gap.interval
        fig.add_vrect(x0=t1, x1=max(t2, t1 + 1e-9), fillcolor="red", opacity=0.15, line_width=0)
        title += f"  (max gap {gap.gap:.0f} between {gap.pair[0]} and {gap.pair[1]} at t={t1:.1f}-{t2:.1f} s)"
    fig.update_layout(title=title, xaxis_title="time [s]", yaxis_title="cumulative service [units]",
                      template="plotly_white", legend_title=f"top {len(keep)} clients")
    return fig


def _gap_from_summary(s: dict) -> GapReport | None:
    """The :class:`GapReport` that :func:`~fairsched.analysis.metrics.summarize` flattened."""
    if "max_service_gap" not in s:
        return None
    if not s.get("gap_pair") or not s.get("gap_interval"):
        return GapReport(gap=float(s["max_service_gap"]))
    return GapReport(gap=float(s["max_service_gap"]), pair=tuple(s["gap_pair"]),
                     interval=tuple(s["gap_interval"]), left_closed=bool(s.get("gap_left_closed")),
                     window=tuple(s["gap_window"]) if s.get("gap_window") else None)


def _label_of(s: dict) -> str:
    return str(s.get("label") or (s["policy"] if s.get("router") in (None, "", "none")
                                  else f"{s['router']}/{s['policy']}"))


def fig_hit_rate(summaries: Sequence[dict]) -> go.Figure:
    """Prefix-cache hit rate per run (bars)."""
    labs = [_label_of(s) for s in summaries]
    vals = [s.get("cache_hit_rate") for s in summaries]
    fig = go.Figure(go.Bar(x=labs, y=[v if v is not None else 0 for v in vals],
                           text=[f"{v:.1%}" if v is not None else "n/a" for v in vals], textposition="auto"))
    fig.update_layout(title="prefix cache hit rate (cached / prompt tokens)", yaxis_tickformat=".0%",
                      yaxis_range=[0, 1], template="plotly_white")
    return fig


def fig_comparison(summaries: Sequence[dict], metrics: Sequence[tuple[str, str]] = COMPARISON_METRICS) -> go.Figure:
    """One bar panel per summary metric, one bar per run."""
    labs = [_label_of(s) for s in summaries]
    cols = 4
    rows = -(-len(metrics) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[t for _, t in metrics])
    for k, (key, _) in enumerate(metrics):
        vals = [s.get(key) for s in summaries]
        fig.add_trace(go.Bar(x=labs, y=[v if v is not None else np.nan for v in vals], showlegend=False,
                             marker_color=[f"hsl({int(360 * i / max(1, len(labs)))},55%,55%)"
                                           for i in range(len(labs))]),
                      row=k // cols + 1, col=k % cols + 1)
    fig.update_layout(title="scheduler comparison", template="plotly_white", height=320 * rows)
    return fig


_TABLE_COLS = (("label", "scheduler", "{}"), ("n_finished", "finished", "{}"),
               ("ttft_mean_s", "TTFT mean [s]", "{:.3f}"), ("ttft_p50_s", "TTFT p50 [s]", "{:.3f}"),
               ("ttft_p99_s", "TTFT p99 [s]", "{:.3f}"), ("tpot_p50_s", "TPOT p50 [s]", "{:.4f}"),
               ("e2e_p99_s", "e2e p99 [s]", "{:.2f}"), ("throughput_tok_s", "throughput [tok/s]", "{:,.0f}"),
               ("cache_hit_rate", "hit rate", "{:.1%}"), ("max_service_gap", "max gap", "{:,.0f}"),
               ("gap_over_U", "gap / U", "{:.2f}"), ("jain_index", "Jain", "{:.3f}"))


def _fmt(v, f: str) -> str:
    if v is None:
        return "n/a"
    try:
        return f.format(v)
    except (TypeError, ValueError):
        return str(v)


def _table_html(summaries: Sequence[dict]) -> str:
    rows = [[_label_of(s) if k == "label" else _fmt(s.get(k), f) for k, _, f in _TABLE_COLS] for s in summaries]
    return html_table([t for _, t, _ in _TABLE_COLS], rows)


def write_report(results: Sequence, summaries: Sequence[dict], out_dir: str | os.PathLike, title: str = "fairsched report",
                 *, max_service_runs: int = 6, intro: str = "") -> Path:
    """Write ``out_dir/report.html`` (self-contained: plotly.js embedded once) atomically.

    Contents: a summary table; TTFT and end-to-end latency CDFs of all runs; per-client
    service curves ``W_i(t)`` of the first ``max_service_runs`` runs (top 12 clients by
    service, <= 2,000 points per line); hit-rate bars; a comparison panel of the summary
    metrics. ``summaries[i]`` describes ``results[i]``.

    Returns the path of the report.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = [_label_of(s) for s in summaries] if len(summaries) == len(results) else None
    figs: list[tuple[str, go.Figure]] = [
        ("Scheduler comparison", fig_comparison(summaries)),
        ("Latency", fig_latency_cdf(results, "ttft_s", labels)),
        ("", fig_latency_cdf(results, "e2e_s", labels)),
        ("Prefix cache", fig_hit_rate(summaries)),
    ]
    for k, r in enumerate(list(results)[:max_service_runs]):
        figs.append(("Service curves" if k == 0 else "",
                     fig_service_curves(r, label=labels[k] if labels else None,
                                        gap=_gap_from_summary(summaries[k]) if labels else None)))
    note = ("<p class='note'>max gap: largest difference in service received by two clients "
            "over an interval in which both were backlogged (service units w_p*uncached prefill + "
            "w_q*decode tokens); U = max(w_p*longest prompt, w_q*M), M the instance's KV token capacity "
            "(VTC's definition). Jain: Jain's index "
            "of the clients' service rates while backlogged.</p>")
    sections = [("Summary", _table_html(summaries)), ("", note), *figs]
    return atomic_write_text(out_dir / "report.html", html_page(title, sections, intro=intro))
