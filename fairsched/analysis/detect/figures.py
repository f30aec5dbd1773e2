"""Figures of the detector (plotly, imported lazily): detection timeline and phase diagram."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairsched.analysis.detect.runner import DetectionReport

__all__ = ["fig_confusion", "fig_detection_timeline", "fig_phase_diagram"]



def fig_phase_diagram(df: pd.DataFrame, title: str | None = None):
    """Heatmap of the measured load ratio over (x, |M|/N) with the theoretical boundary
    ``x = |M|/N`` (benign below-right... i.e. where x <= |M|/N) and markers where the
    empirical classification disagrees with the theory."""
    import plotly.graph_objects as go

    piv = df.pivot_table(index="holder_frac", columns="x", values="load_ratio")
    fig = go.Figure(go.Heatmap(z=np.log2(piv.to_numpy()), x=piv.columns, y=piv.index, colorscale="RdBu_r", zmid=0,
                               customdata=piv.to_numpy(), hovertemplate="x=%{x}<br>|M|/N=%{y}<br>ratio=%{customdata:.2f}",
                               colorbar={"title": "log2 load ratio<br>holders / others"}))
    lo = min(df.x.min(), df.holder_frac.min())
    hi = max(df.x.max(), df.holder_frac.max())
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line={"color": "black", "dash": "dash"},
                             name="theory: x = |M|/N (benign above)"))
    bad = df[~df.agree]
    if len(bad):
        fig.add_trace(go.Scatter(x=bad.x, y=bad.holder_frac, mode="markers", name="theory and simulation disagree",
                                 marker={"symbol": "x", "size": 12, "color": "black"}))
    conf = df[df.confirmed]
    if len(conf):
        fig.add_trace(go.Scatter(x=conf.x, y=conf.holder_frac, mode="markers", name="detector confirmed",
                                 marker={"symbol": "circle-open", "size": 16, "color": "green"}))
    fig.update_layout(title=title or "LMetric hotspot phase diagram (simulated load ratio vs. benign condition)",
                      xaxis_title="x (class share of arrivals)", yaxis_title="|M| / N (holders' share)",
                      template="plotly_white")
    return fig


def fig_detection_timeline(report: DetectionReport, classes: list[str] | None = None, max_classes: int = 6):
    """Per window, each class's arrival share ``x`` against its threshold ``|M|/N``
    (violation when x is above); flag and confirmation times marked."""
    import plotly.graph_objects as go

    fig = go.Figure()
    w = report.windows
    if not len(w):
        fig.update_layout(title="no class reached the per-window minimum (nothing to check)", template="plotly_white")
        return fig
    if classes is None:
        classes = [f["klass"] for f in report.flagged_classes][:max_classes]
        if not classes:
            classes = list(w.groupby("klass").n_class.sum().sort_values(ascending=False).index[:max_classes])
    for k, c in enumerate(classes):
        d = w[w.klass == c]
        color = f"hsl({int(360 * k / max(1, len(classes)))},60%,45%)"
        mid = (d.t0 + d.t1) / 2
        fig.add_trace(go.Scatter(x=mid, y=d.x, mode="lines+markers", name=f"{c}: x", line={"color": color}))
        fig.add_trace(go.Scatter(x=mid, y=d.threshold_x, mode="lines", name=f"{c}: |M|/N",
                                 line={"color": color, "dash": "dot"}))
    for e in report.events:
        if e["klass"] in classes and e["event"] in ("flag", "confirm"):
            fig.add_vline(x=e["t"], line_dash="dash" if e["event"] == "flag" else "solid",
                          line_color="red" if e["event"] == "confirm" else "orange", opacity=0.5)
    fig.update_layout(title="phase 1: class share x vs. holders' share |M|/N per window "
                            "(orange dashed: flagged; red: phase 2 confirmed)",
                      xaxis_title="time [s]", yaxis_title="share", template="plotly_white")
    return fig


def fig_confusion(validation, title: str | None = None):
    """The validation study's confusion matrix (rows: detector verdict, columns: measured
    outcome; counts) next to where the verdicts agree over the family (class share over
    the one-holder threshold vs load; crosses: disagreements).

    Args:
        validation: a :class:`~fairsched.analysis.detect.validation.Validation`.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cm = validation.confusion()
    f = validation.frame
    fig = make_subplots(rows=1, cols=2, subplot_titles=("verdict vs simulated outcome (counts)",
                                                        "where they agree: x / (|M|/N) vs load"))
    fig.add_trace(go.Heatmap(z=cm.to_numpy(), x=[f"outcome: {c}" for c in cm.columns],
                             y=[f"verdict: {r}" for r in cm.index], text=cm.to_numpy(), texttemplate="%{text}",
                             colorscale="Blues", showscale=False), row=1, col=1)
    ok = f.verdict == f.outcome
    for mask, name, sym in ((ok, "agree", "circle"), (~ok, "disagree", "x")):
        d = f[mask]
        fig.add_trace(go.Scatter(x=d.x_over_threshold, y=d.load, mode="markers", name=name,
                                 marker={"symbol": sym, "size": 9 if sym == "x" else 6},
                                 text=[f"id {i}: N={n}, D={dt}, {m}; {v} vs {o}" for i, n, dt, m, v, o in
                                       zip(d.id, d.n, d.doc_tokens, d["mode"], d.verdict, d.outcome, strict=True)]),
                      row=1, col=2)
    fig.add_vline(x=1.0, line_dash="dash", row=1, col=2)
    fig.update_xaxes(type="log", title_text="x / (|M|/N) (1 = benign boundary)", row=1, col=2)
    fig.update_yaxes(title_text="load (share of capacity)", row=1, col=2)
    fig.update_layout(title=title or f"Detector validation: {validation.agreement:.0%} agreement over {len(f)} "
                                     f"workloads (harmful-or-not: {validation.harm_agreement:.0%})",
                      template="plotly_white")
    return fig
