"""Plotly figures of runs and a single self-contained HTML report.

The figure functions return :class:`plotly.graph_objects.Figure` objects, so notebooks
can show them directly; :func:`write_report` puts them on one page. plotly.js is embedded
once (in the first figure) so the report opens without network access.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fairsched.analysis.colors import client_colors, dash, scheduler_colors
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
    "jain_reason",
    "shade_window",
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
                    log_x: bool = True, colors: dict[str, str] | None = None) -> go.Figure:
    """Empirical CDF of a per-request latency over finished requests, one line per run.

    Args:
        results: SimResults.
        metric: a :meth:`SimResult.requests_frame` column: ``ttft_s``, ``tpot_s`` or ``e2e_s``.
        labels: legend names (default :func:`run_label`).
        log_x: logarithmic x axis (latencies span orders of magnitude).
        colors: ``label -> colour`` shared by the page's figures (default
            :func:`~fairsched.analysis.colors.scheduler_colors` of ``labels``).

    Each run has its own colour and dash pattern, so runs whose curves coincide stay
    distinguishable.
    """
    names = {"ttft_s": "TTFT", "tpot_s": "TPOT", "e2e_s": "end-to-end latency"}
    labs = _labels(results, labels)
    colors = colors or scheduler_colors(labs)
    fig = go.Figure()
    for k, (r, lab) in enumerate(zip(results, labs, strict=True)):
        df = r.requests_frame()
        v = df[metric].to_numpy(dtype=float)[np.isfinite(df["finish_t"].to_numpy(dtype=float))]
        if log_x:
            v = v[v > 0]
        x, y = _cdf_points(v)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=lab,
                                 line={"color": colors.get(lab), "dash": dash(k), "width": 2}))
    if not any(len(t.x) for t in fig.data):
        fig.add_annotation(text="no request finished: nothing to draw", showarrow=False, xref="paper",
                           yref="paper", x=0.5, y=0.5)
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
    colors = client_colors(result.clients)
    for k, c in enumerate(keep):
        d = df[df["client"] == c]
        fig.add_trace(go.Scatter(x=d["t"].to_numpy(), y=d["W"].to_numpy(), mode="lines", line_shape="hv",
                                 name=str(c), line={"color": colors[c], "dash": dash(k // 10)}))
    if gap is None:
        gap = max_service_gap(result)
    title = f"service W_i(t), {label or run_label(result)}"
    if gap.pair is not None:
        t1, t2 = gap.interval
        span = float(df["t"].max()) if len(df) else t2
        shade_window(fig, t1, t2, span, color="red")
        at = f"at t={t1:.1f} s" if t2 - t1 < 0.05 else f"at t={t1:.1f}-{t2:.1f} s"
        title += f"  (max gap {gap.gap:.0f} between {gap.pair[0]} and {gap.pair[1]} {at})"
    fig.update_layout(title=title, xaxis_title="time [s]", yaxis_title="cumulative service [units]",
                      template="plotly_white", legend_title=f"top {len(keep)} clients")
    return fig


def shade_window(fig, t0: float, t1: float, span: float, *, color: str = "red", opacity: float = 0.15,
                 min_frac: float = 0.006, **where) -> None:
    """Shade the time window ``[t0, t1]`` [s] of ``fig``, never narrower than ``min_frac`` of the
    time axis ``span`` [s] (a window of one instant would be invisible), with a dashed line at
    ``t0`` when it is that narrow. ``where`` (``row``, ``col``) picks a subplot."""
    w = max(t1 - t0, min_frac * max(span, 1e-9))
    mid = (t0 + t1) / 2
    fig.add_vrect(x0=mid - w / 2, x1=mid + w / 2, fillcolor=color, opacity=opacity, line_width=0, **where)
    if t1 - t0 < min_frac * max(span, 1e-9):
        fig.add_vline(x=t0, line_dash="dash", line_color=color, line_width=1, **where)


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


def fig_hit_rate(summaries: Sequence[dict], colors: dict[str, str] | None = None) -> go.Figure:
    """Prefix-cache hit rate per run (bars, labels above the bars, the scheduler's colour)."""
    labs = [_label_of(s) for s in summaries]
    colors = colors or scheduler_colors(labs)
    vals = [s.get("cache_hit_rate") for s in summaries]
    fig = go.Figure(go.Bar(x=labs, y=[v if v is not None else 0 for v in vals], marker_color=[colors[x] for x in labs],
                           text=[f"{v:.1%}" if v is not None else "n/a" for v in vals], textposition="outside",
                           cliponaxis=False))
    fig.update_layout(title="prefix cache hit rate (cached / prompt tokens)", yaxis_tickformat=".0%",
                      yaxis_range=[0, 1.12], template="plotly_white", uniformtext={"minsize": 9, "mode": "hide"},
                      xaxis_tickangle=-30 if len(labs) > 4 else 0)
    if all(not v for v in vals):
        fig.add_annotation(text="no prefix cache hit in any run: the requests share no prefix (or the cache "
                                "is too small to keep one)", showarrow=False, xref="paper", yref="paper",
                           x=0.5, y=0.6)
    return fig


def fig_comparison(summaries: Sequence[dict], metrics: Sequence[tuple[str, str]] = COMPARISON_METRICS,
                   colors: dict[str, str] | None = None) -> go.Figure:
    """One bar panel per summary metric, one bar per run (each run its scheduler colour;
    a panel whose metric no run has says so)."""
    labs = [_label_of(s) for s in summaries]
    colors = colors or scheduler_colors(labs)
    cols = 4
    rows = -(-len(metrics) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[t for _, t in metrics])
    for k, (key, _) in enumerate(metrics):
        vals = [s.get(key) for s in summaries]
        r, c = k // cols + 1, k % cols + 1
        fig.add_trace(go.Bar(x=labs, y=[v if v is not None else np.nan for v in vals], showlegend=False,
                             marker_color=[colors[x] for x in labs], name=key), row=r, col=c)
        if all(v is None for v in vals):
            fig.add_annotation(text="n/a in every run", showarrow=False, row=r, col=c, xref="x domain",
                               yref="y domain", x=0.5, y=0.5)
    fig.update_xaxes(showticklabels=len(labs) <= 6, tickangle=-30)
    fig.update_layout(title="scheduler comparison (colours as in the legend of the latency CDFs)",
                      template="plotly_white", height=340 * rows)
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
    rows = [[_label_of(s) if k == "label" else "n/a*" if k == "jain_index" and jain_reason(s) else _fmt(s.get(k), f)
             for k, _, f in _TABLE_COLS] for s in summaries]
    notes = "".join(f"<p class='note'>* Jain n/a for {html.escape(_label_of(s))}: {html.escape(jain_reason(s))}</p>"
                    for s in summaries if jain_reason(s))
    return html_table([t for _, t, _ in _TABLE_COLS], rows) + notes


def jain_reason(summary: dict) -> str | None:
    """Why a run's Jain's index is not available (None when it is). On a cluster the
    reason also says why no per-instance index is offered instead: a client waiting on one
    instance is backlogged in the cluster, so on each instance at most as many clients are
    backlogged, for no longer, and a per-instance index is undefined whenever the cluster's is."""
    n = summary.get("jain_n_clients")
    if summary.get("jain_index") is not None and (n is None or n >= 2):
        return None
    if n == 1:
        why = ("only one client was backlogged for 1% of the run or more, so its index (1) compares nothing; "
               "see the max service gap instead")
    elif (summary.get("n_clients") or 0) < 2:
        return "one client: Jain's index compares two or more clients"
    else:
        why = ("no client was backlogged for 1% of the run or more (light load: requests are admitted as they "
               "arrive), so there are no service rates to compare; see the max service gap instead")
    if (summary.get("n_instances") or 1) > 1:
        why += (". Per instance it is undefined too: a client waiting on one instance is backlogged in the "
                "cluster, so no instance has more clients backlogged for longer")
    return why


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
    colors = scheduler_colors([_label_of(s) for s in summaries] + [run_label(r) for r in results])
    figs: list[tuple[str, go.Figure]] = [
        ("Scheduler comparison", fig_comparison(summaries, colors=colors)),
        ("Latency", fig_latency_cdf(results, "ttft_s", labels, colors=colors)),
        ("", fig_latency_cdf(results, "e2e_s", labels, colors=colors)),
        ("Prefix cache", fig_hit_rate(summaries, colors=colors)),
    ]
    full = [k for k, r in enumerate(results) if getattr(r, "service_log", "full") == "full"]  # curves need every charge
    for k in full[:max_service_runs]:
        r = results[k]
        figs.append(("Service curves" if k == full[0] else "",
                     fig_service_curves(r, label=labels[k] if labels else None,
                                        gap=_gap_from_summary(summaries[k]) if labels else None)))
    note = ("<p class='note'>max gap: largest difference in service received by two clients "
            "over an interval in which both were backlogged (service units w_p*uncached prefill + "
            "w_q*decode tokens); U = max(w_p*longest prompt, w_q*M), M the instance's KV token capacity "
            "(VTC's definition). Jain: Jain's index "
            "of the clients' service rates while backlogged.</p>")
    sections = [("Summary", _table_html(summaries)), ("", note), *figs]
    return atomic_write_text(out_dir / "report.html", html_page(title, sections, intro=intro))
