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
    """Horizontal bars: measured worst gap next to each bound (log scale); red where a
    proved bound is violated, amber where a published / candidate bound is exceeded."""
    import plotly.graph_objects as go

    vs = [v for v in verdicts if v.bound is not None and v.status != STATUS_NA]
    labels = [f"{v.run}: {v.check} [{v.scope}]" for v in vs]
    color = ["#c33" if v.status == STATUS_VIOLATED else
             "#d90" if v.status in (STATUS_PUBLISHED_VIOLATED, STATUS_CANDIDATE_VIOLATED) else "#383" for v in vs]
    fig = go.Figure()
    fig.add_trace(go.Bar(y=labels, x=[v.bound for v in vs], name="bound", orientation="h", marker_color="#9bb"))
    fig.add_trace(go.Bar(y=labels, x=[max(v.measured, 1e-9) for v in vs], name="measured worst gap",
                         orientation="h", marker_color=color))
    fig.update_layout(barmode="group", xaxis_type="log", title="measured worst service gap vs. bound [service units]",
                      template="plotly_white", height=max(320, 40 * len(vs) + 120), margin={"l": 420},
                      yaxis={"autorange": "reversed"})
    return fig
