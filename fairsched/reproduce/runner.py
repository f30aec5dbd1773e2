"""Run claims and write what they found: a rich table, ``reproduce.json``, ``reproduce.html``."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fairsched.reproduce.base import (
    NOT_REPRODUCED,
    REPRODUCED,
    SAME_DIRECTION,
    Claim,
    Outcome,
    evaluate_claim,
)

VERDICT_STYLE = {REPRODUCED: "bold green", SAME_DIRECTION: "bold yellow", NOT_REPRODUCED: "bold red"}


def missing_data(claims: Sequence[Claim]) -> list[str]:
    """Trace files the ``claims`` need that are not in ``shared_data_dir()`` (empty: all there)."""
    from fairsched.workload import shared_data_dir

    d = shared_data_dir()
    need = dict.fromkeys(n for c in claims for n in c.needs)
    return [n for n in need if d is None or not (d / n).is_file()]


def run_claim(claim: Claim, *, quick: bool = False, cost=None, out: Path | None = None) -> Outcome:
    """Run one claim and judge it. ``cost``: a CostModel overriding the claim's default."""
    t0 = time.perf_counter()
    result = claim.run(quick, cost, out)
    elapsed = time.perf_counter() - t0
    name = cost.name if cost is not None else "default profile"
    return evaluate_claim(claim, result, elapsed_s=elapsed, quick=quick, cost_model=name)


def run_claims(claims: Sequence[Claim], *, quick: bool = False, cost=None, out: Path | None = None,
               on_start: Callable[[Claim], None] | None = None,
               on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run ``claims`` in order (``on_start`` / ``on_done`` are called around each)."""
    outcomes = []
    for c in claims:
        if on_start is not None:
            on_start(c)
        o = run_claim(c, quick=quick, cost=cost, out=out)
        outcomes.append(o)
        if on_done is not None:
            on_done(o)
    return outcomes


def entries(outcomes: Sequence[Outcome]) -> list[dict]:
    """The list written to ``reproduce.json`` (one entry a claim: ``claim``, ``paper``, ``ours``,
    ``verdict``, ``setup``, ``notes``, ``checks``, ...)."""
    return [o.to_entry() for o in outcomes]


def table(outcomes: Sequence[Outcome], title: str = "fairsched reproduce"):
    """A rich Table: claim, paper's figure, our figure, setup, verdict."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, show_lines=True, expand=False)
    t.add_column("claim", no_wrap=True)
    t.add_column("paper's figure", ratio=3)
    t.add_column("our figure", ratio=3)
    t.add_column("setup", ratio=2)
    t.add_column("verdict", no_wrap=True)
    for o in outcomes:
        t.add_row(f"{o.claim.number}. {escape(o.claim.id)}", escape(o.paper_text), escape(o.ours_text),
                  escape(o.claim.setup), f"[{VERDICT_STYLE[o.verdict]}]{o.verdict}[/]")
    return t


def table_text(outcomes: Sequence[Outcome], width: int = 160) -> str:
    """:func:`table` rendered as plain text (for notebooks and logs)."""
    import io

    from rich.console import Console

    con = Console(width=width, file=io.StringIO(), color_system=None)
    con.print(table(outcomes))
    return con.file.getvalue()


def dataframe(outcomes: Sequence[Outcome]):
    """The table as a pandas DataFrame (claim, paper, ours, setup, verdict, seconds)."""
    import pandas as pd

    return pd.DataFrame([{"claim": f"{o.claim.number}. {o.claim.id}", "paper": o.paper_text, "ours": o.ours_text,
                          "setup": o.claim.setup, "verdict": o.verdict, "seconds": round(o.elapsed_s, 1)}
                         for o in outcomes])


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1500px}
table{border-collapse:collapse;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top}
th{background:#f3f3f3}.reproduced{color:#1a7f37;font-weight:bold}.same{color:#9a6700;font-weight:bold}
.not{color:#cf222e;font-weight:bold}.note{color:#444;font-size:0.9em}"""
_CLS = {REPRODUCED: "reproduced", SAME_DIRECTION: "same", NOT_REPRODUCED: "not"}


def html_page(outcomes: Sequence[Outcome], title: str = "fairsched reproduce") -> str:
    """A self-contained HTML page: the table, then per claim its checks, notes and figure
    (plotly.js embedded once, with the first figure)."""
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_CSS}</style>"
             f"</head><body><h1>{e(title)}</h1>"]
    mode = {o.quick for o in outcomes}
    parts.append(f"<p class='note'>{'quick' if mode == {True} else 'full' if mode == {False} else 'mixed'} mode; "
                 "verdicts: reproduced = within 25% of the paper's number and the same direction (direction-only "
                 "claims: the direction holds); same direction = the effect points the paper's way but the size "
                 "differs; not reproduced otherwise. A claim takes the worst verdict of its checks.</p>")
    parts.append("<table><thead><tr><th>claim</th><th>paper's figure</th><th>our figure</th><th>setup</th>"
                 "<th>verdict</th></tr></thead><tbody>")
    for o in outcomes:
        parts.append(f"<tr><td>{o.claim.number}. {e(o.claim.id)}</td><td>{e(o.paper_text)}</td>"
                     f"<td>{e(o.ours_text)}</td><td>{e(o.claim.setup)}</td>"
                     f"<td class='{_CLS[o.verdict]}'>{e(o.verdict)}</td></tr>")
    parts.append("</tbody></table>")
    first = True
    for o in outcomes:
        c, r = o.claim, o.result
        parts.append(f"<h2>{c.number}. {e(c.title)}</h2><p class='note'>{e(c.source)}. "
                     f"Ran in {o.elapsed_s:.1f} s ({'quick' if o.quick else 'full'}, {e(o.cost_model)}).</p>")
        parts.append("<table><thead><tr><th>check</th><th>paper</th><th>ours</th><th>rule</th><th>verdict</th>"
                     "</tr></thead><tbody>")
        for k in c.checks:
            v = o.verdicts[k.key]
            parts.append(f"<tr><td>{e(k.label)}</td><td>{e(k.paper_text())}</td>"
                         f"<td>{e(k.format(r.values.get(k.key)))}</td><td>{e(k.rule_text())}</td>"
                         f"<td class='{_CLS[v]}'>{e(v)}</td></tr>")
        parts.append("</tbody></table>")
        parts.append(f"<p><b>Metric.</b> {e(c.metric)}</p><p><b>Setup.</b> {e(r.setup or c.setup)}</p>")
        notes = " ".join(x for x in (r.notes.strip(), c.caveats.strip()) if x)
        if notes:
            parts.append(f"<p class='note'><b>Notes.</b> {e(notes)}</p>")
        if r.figure is not None:
            parts.append(r.figure.to_html(full_html=False, include_plotlyjs=first, default_width="100%"))
            first = False
    parts.append("</body></html>")
    return "\n".join(parts)


def write_outputs(outcomes: Sequence[Outcome], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``out_dir/reproduce.html`` and ``out_dir/reproduce.json`` (each atomically; the
    JSON last). Returns their paths."""
    from fairsched.analysis.report import atomic_write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(entries(outcomes), indent=2, allow_nan=False)
    page = atomic_write_text(out_dir / "reproduce.html", html_page(outcomes))
    doc = atomic_write_text(out_dir / "reproduce.json", text)
    return doc, page
