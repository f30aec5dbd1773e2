"""The sweep's outputs: one table (Parquet and CSV, one row per point with every
configuration field and summary metric), a timings file (wall clock, kept apart so the
table is the same bytes on every executor), and a plotly page of the main trade-offs."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from fairsched.sweep.run import METRICS, TABLE_COLUMNS

__all__ = ["TRADEOFFS", "fig_tradeoffs", "to_frame", "write_outputs"]

TRADEOFFS = (("max_service_gap", "ttft_mean_s", "max service gap [units]", "mean TTFT [s]"),
             ("cache_hit_rate", "ttft_p99_s", "cache hit rate", "p99 TTFT [s]"),
             ("jain_index", "throughput_tok_s", "Jain's index", "throughput [tok/s]"),
             ("speed", "ttft_mean_s", "replay speed (load scale)", "mean TTFT [s]"))
"""(x, y, x title, y title) of the trade-off panels; one colour per scheduler across all."""


def to_frame(records: Sequence[dict]):
    """The sweep table as a pandas DataFrame (columns :data:`~fairsched.sweep.run.TABLE_COLUMNS`)."""
    import pandas as pd

    df = pd.DataFrame([{c: r.get(c) for c in TABLE_COLUMNS} for r in records], columns=list(TABLE_COLUMNS))
    counts = ("n_requests", "n_finished", "n_clients", "jain_n_clients")
    for c in [m for m in METRICS if m not in counts] + ["speed", "quantum", "quantum_w", "lam"]:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    for c in counts:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    for c in ("instances", "seed"):
        df[c] = df[c].astype("int64")
    for c in ("max_batch_size", "token_budget", "kv_capacity", "limit"):
        df[c] = df[c].astype("Int64")
    for c in ("trace", "format", "profile", "cost_model", "router", "policy", "label", "status", "error", "key"):
        df[c] = df[c].astype("string")
    return df


def fig_tradeoffs(df):
    """Scatter panels of :data:`TRADEOFFS` over the successful points; each scheduler
    (router/policy) one colour and one marker, the same in every panel."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from fairsched.analysis.colors import scheduler_colors

    ok = df[df["status"] == "ok"]
    labels = list(dict.fromkeys(ok["label"]))
    colors = scheduler_colors(labels)
    fig = make_subplots(rows=2, cols=2, subplot_titles=[f"{yt} vs {xt}" for _, _, xt, yt in TRADEOFFS],
                        horizontal_spacing=0.1, vertical_spacing=0.14)
    symbols = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "triangle-down")
    for i, lab in enumerate(labels):
        d = ok[ok["label"] == lab]
        hover = [f"{lab}<br>instances {n}, speed {s:g}, seed {sd}" for n, s, sd in
                 zip(d["instances"], d["speed"], d["seed"], strict=True)]
        for k, (x, y, _, _) in enumerate(TRADEOFFS):
            fig.add_trace(go.Scatter(x=d[x], y=d[y], mode="markers", name=lab, legendgroup=lab, showlegend=k == 0,
                                     marker={"color": colors[lab], "symbol": symbols[i % len(symbols)], "size": 9,
                                             "line": {"width": 1, "color": "white"}},
                                     hovertext=hover, hoverinfo="text+x+y"),
                          row=k // 2 + 1, col=k % 2 + 1)
    for k, (_, _, xt, yt) in enumerate(TRADEOFFS):
        fig.update_xaxes(title_text=xt, row=k // 2 + 1, col=k % 2 + 1)
        fig.update_yaxes(title_text=yt, row=k // 2 + 1, col=k % 2 + 1)
    fig.update_layout(template="plotly_white", height=760, legend_title_text="scheduler",
                      title="trade-offs over the grid (one marker per point)")
    return fig


def _atomic_bytes(path: Path, data: bytes) -> Path:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_outputs(records: Sequence[dict], out_dir: str | Path, title: str = "fairsched sweep") -> dict[str, Path]:
    """Write ``sweep.parquet``, ``sweep.csv``, ``timings.csv`` and ``sweep.html`` to
    ``out_dir`` (each atomically). Returns their paths by kind.

    Raises:
        OSError: a file cannot be written.
    """
    import pandas as pd

    from fairsched.analysis.page import html_page, html_table
    from fairsched.analysis.report import atomic_write_text

    out_dir = Path(out_dir)
    df = to_frame(records)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow")
    paths = {"parquet": _atomic_bytes(out_dir / "sweep.parquet", buf.getvalue()),
             "csv": atomic_write_text(out_dir / "sweep.csv", df.to_csv(index=False, lineterminator="\n"))}
    timings = pd.DataFrame({"key": [r["key"] for r in records], "label": [r["label"] for r in records],
                            "wall_s": [r.get("wall_s") for r in records]})
    paths["timings"] = atomic_write_text(out_dir / "timings.csv", timings.to_csv(index=False, lineterminator="\n"))
    n_ok = int((df["status"] == "ok").sum())
    sections: list[tuple[str, object]] = []
    if n_ok:
        sections.append(("Trade-offs", fig_tradeoffs(df)))
    else:
        sections.append(("Trade-offs", "<p class='empty'>No point finished: nothing to draw (see the errors "
                                       "below).</p>"))
    errs = df[df["status"] != "ok"]
    if len(errs):
        sections.append((f"Failed points ({len(errs)})",
                         html_table(["scheduler", "instances", "speed", "seed", "trace", "error"],
                                    [[r.label, r.instances, f"{r.speed:g}", r.seed, "built-in" if pd.isna(r.trace) else r.trace, r.error]
                                     for r in errs.itertuples()], left=1)))
    show = ["label", "instances", "speed", "seed", "ttft_mean_s", "ttft_p99_s", "throughput_tok_s", "cache_hit_rate",
            "max_service_gap", "jain_index"]
    rows = [[("n/a" if v is None or (isinstance(v, float) and v != v) else f"{v:.4g}" if isinstance(v, float) else v)
             for v in r] for r in df.loc[df["status"] == "ok", show].itertuples(index=False)]
    sections.append(("Points", html_table(show, rows, left=1)))
    intro = (f"{len(df)} points, {n_ok} finished, {len(errs)} failed. Full table: sweep.parquet / sweep.csv "
             "(one row per point, every configuration field and summary metric); wall-clock times: timings.csv.")
    paths["html"] = atomic_write_text(out_dir / "sweep.html", html_page(title, sections, intro=intro))
    return paths
