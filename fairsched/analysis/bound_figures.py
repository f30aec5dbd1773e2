"""Figures of the bound verdicts (:mod:`fairsched.analysis.verdicts`), with plotly."""

from __future__ import annotations

from fairsched.analysis.verdicts import (
    STATUS_CANDIDATE_VIOLATED,
    STATUS_NA,
    STATUS_PUBLISHED_VIOLATED,
    STATUS_VIOLATED,
    Verdict,
)

__all__ = ["fig_gap_vs_bound"]


def fig_gap_vs_bound(verdicts: list[Verdict]):
    """Horizontal bars: measured worst gap next to each bound (log scale). The measured bar
    takes its run's scheduler colour (:func:`fairsched.analysis.colors.scheduler_colors`,
    the colours of the other charts of the page); its verdict is its pattern, outline and
    label: crossed with a red outline where a proved bound is violated, hatched with an
    amber outline where a published / candidate bound is exceeded. Bounds are grey."""
    import plotly.graph_objects as go

    from fairsched.analysis.colors import scheduler_colors

    vs = [v for v in verdicts if v.bound is not None and v.status != STATUS_NA]
    labels = [f"{v.run}: {v.check} [{v.scope}]" for v in vs]
    colors = scheduler_colors([v.run for v in verdicts])
    bad = {STATUS_VIOLATED: ("x", "#c00", "VIOLATED")}
    bad |= dict.fromkeys((STATUS_PUBLISHED_VIOLATED, STATUS_CANDIDATE_VIOLATED), ("/", "#d90", "exceeded"))
    look = [bad.get(v.status, ("", "rgba(0,0,0,0)", "holds")) for v in vs]
    fig = go.Figure()
    fig.add_trace(go.Bar(y=labels, x=[v.bound for v in vs], name="bound", orientation="h", marker_color="#bbb"))
    fig.add_trace(go.Bar(y=labels, x=[max(v.measured, 1e-9) for v in vs], name="measured worst gap",
                         orientation="h", text=[t for _, _, t in look], textposition="outside",
                         marker={"color": [colors[v.run] for v in vs], "pattern": {"shape": [p for p, _, _ in look]},
                                 "line": {"color": [c for _, c, _ in look], "width": 2}}))
    fig.update_layout(barmode="group", xaxis_type="log", title="measured worst service gap vs. bound [service units]",
                      template="plotly_white", height=max(320, 40 * len(vs) + 120), margin={"l": 420},
                      yaxis={"autorange": "reversed"})
    return fig
