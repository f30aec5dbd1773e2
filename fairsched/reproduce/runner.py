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
    dataframe,
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
               on_done: Callable[[Outcome], None] | None = None, workers: int = 1, use_ray: bool = False,
               ray_address: str | None = None, progress: bool = False) -> list[Outcome]:
    """Run ``claims`` in order (``on_start`` / ``on_done`` are called around each); each
    claim's simulations run on a :class:`~fairsched.sweep.GridRunner` of ``workers``
    processes (1: this process) or on Ray (``use_ray``, ``ray_address``), with a progress
    bar per grid if ``progress``. The numbers do not depend on the executor."""
    from fairsched.reproduce.jobs import using
    from fairsched.sweep import GridRunner

    outcomes = []
    with GridRunner(workers, use_ray=use_ray, ray_address=ray_address, progress=progress) as g, using(g):
        for c in claims:
            if on_start is not None:
                on_start(c)
            o = run_claim(c, quick=quick, cost=cost, out=out)
            outcomes.append(o)
            if on_done is not None:
                on_done(o)
    from fairsched.display import Table

    return Table(outcomes, dataframe, title="fairsched reproduce")


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


_CSS = """td{text-align:left;vertical-align:top}.reproduced{color:#1a7f37;font-weight:bold}
.same{color:#9a6700;font-weight:bold}.not{color:#cf222e;font-weight:bold}"""
_CLS = {REPRODUCED: "reproduced", SAME_DIRECTION: "same", NOT_REPRODUCED: "not"}


def html_page(outcomes: Sequence[Outcome], title: str = "fairsched reproduce") -> str:
    """A self-contained HTML page: the table, then per claim its checks, notes and figure
    (plotly.js embedded once, with the first figure; :func:`fairsched.analysis.page.html_page`)."""
    from fairsched.analysis.page import html_page as page
    from fairsched.analysis.page import html_table

    e = html.escape
    mode = {o.quick for o in outcomes}
    intro = (f"{'quick' if mode == {True} else 'full' if mode == {False} else 'mixed'} mode; verdicts: reproduced = "
             "within 25% of the paper's number and the same direction (direction-only claims: the direction holds); "
             "same direction = the effect points the paper's way but the size differs; not reproduced otherwise. A "
             "claim takes the worst verdict of its checks.")
    rows = [[f"{o.claim.number}. {o.claim.id}", o.paper_text, o.ours_text, o.claim.setup, (o.verdict, _CLS[o.verdict])]
            for o in outcomes]
    sections: list[tuple[str, object]] = [
        ("", html_table(["claim", "paper's figure", "our figure", "setup", "verdict"], rows, left=5))]
    for o in outcomes:
        c, r = o.claim, o.result
        checks = [[k.label, k.paper_text(), k.format(r.values.get(k.key)), k.rule_text(),
                   (o.verdicts[k.key], _CLS[o.verdicts[k.key]])] for k in c.checks]
        notes = " ".join(x for x in (r.notes.strip(), c.caveats.strip()) if x)
        body = (f"<p class='note'>{e(c.source)}. Ran in {o.elapsed_s:.1f} s ({'quick' if o.quick else 'full'}, "
                f"{e(o.cost_model)}).</p>" + html_table(["check", "paper", "ours", "rule", "verdict"], checks, left=5)
                + f"<p><b>Metric.</b> {e(c.metric)}</p><p><b>Setup.</b> {e(r.setup or c.setup)}</p>"
                + (f"<p class='note'><b>Notes.</b> {e(notes)}</p>" if notes else ""))
        sections.append((f"{c.number}. {c.title}", body))
        if r.figure is not None:
            sections.append(("", r.figure))
    return page(title, sections, intro=intro, css=_CSS)


def write_outputs(outcomes: Sequence[Outcome], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``out_dir/reproduce.html`` and ``out_dir/reproduce.json`` (each atomically; the
    JSON last). Returns their paths."""
    from fairsched.output import atomic_write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(entries(outcomes), indent=2, allow_nan=False)
    page = atomic_write_text(out_dir / "reproduce.html", html_page(outcomes))
    doc = atomic_write_text(out_dir / "reproduce.json", text)
    return doc, page
