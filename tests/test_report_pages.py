"""Every report page the kit writes (analyze, check, detect, reproduce, sweep) rendered in a
real headless Chromium (Debian's ``chromium``, driven by playwright): no JavaScript error,
and no empty figure (every plotly figure draws data or says in a sentence why it has none).

Screenshots go to the test's temporary directory, or to ``$FAIRSCHED_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="Debian chromium not installed (.ci/run installs it)")

FIGURES_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
    id: gd.id,
    traces: (gd._fullData || []).length,
    points: (gd._fullData || []).filter(t => t.visible !== false).reduce(
        (n, t) => n + (t._length || (t.x && t.x.length) || (t.y && t.y.length) || 0), 0),
    notes: ((gd.layout && gd.layout.annotations) || []).map(a => a.text || '').join(' '),
    drawn: gd.querySelectorAll('.main-svg').length,
}))"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """One page of each kind, from small runs."""
    from fairsched.cli import app

    root = tmp_path_factory.mktemp("pages")
    run = CliRunner().invoke
    out = {}
    for name, args in (("analyze", ["analyze", "--limit", "200"]),
                       ("analyze-cluster", ["analyze", "--limit", "200", "--instances", "3"]),
                       ("check", ["check", "--limit", "150"]),
                       ("detect", ["detect", "--limit", "300", "--instances", "4"]),
                       ("sweep", ["sweep", "--router", "least-load", "--router", "lmetric", "--instances", "2",
                                  "--instances", "3", "--limit", "120", "--workers", "1"])):
        res = run(app, [*args, "--out", str(root / name)])
        assert res.exit_code == 0, res.output
        out[name] = next((root / name).glob("*.html"))
    out["reproduce"] = _reproduce_page(root / "reproduce")
    return out


def _reproduce_page(d: Path) -> Path:
    """A reproduce page from a cheap user claim (the real claims take minutes)."""
    import plotly.graph_objects as go

    from fairsched.reproduce import Check, Claim, ClaimResult, run_claim, write_outputs

    def run(quick, cost, out):
        fig = go.Figure(go.Bar(x=["a", "b"], y=[1.0, 1.9]))
        return ClaimResult(values={"speedup": 1.9}, notes="toy", figure=fig)

    claim = Claim(id="toy-claim", number=99, title="toy", source="nowhere", paper_figure="2.0x", metric="m",
                  setup="s", run=run, checks=(Check("speedup", "speedup", paper=2.0, neutral=1.0, fmt="{:.1f}x"),))
    _, page = write_outputs([run_claim(claim, quick=True)], d)
    return page


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.mark.parametrize("kind", ["analyze", "analyze-cluster", "check", "detect", "reproduce", "sweep"])
def test_page_renders_without_errors_or_empty_figures(pages, browser, kind, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(180_000)  # a page embeds plotly.js (3.5 MB): slow on a loaded 2-core machine
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(pages[kind].resolve().as_uri(), wait_until="load")
    page.wait_for_function("() => window.Plotly !== undefined")
    figs = page.evaluate(FIGURES_JS)
    shots = Path(os.environ.get("FAIRSCHED_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"{kind}.png"), full_page=True)
    page.close()
    assert not errors, errors
    assert figs, f"{kind}: no figure on the page"
    for f in figs:
        assert f["drawn"] > 0, f"{kind}: figure {f['id']} was not drawn"
        assert f["points"] > 0 or f["notes"].strip(), f"{kind}: figure {f['id']} is empty and says nothing"


def test_an_empty_figure_becomes_a_sentence():
    import plotly.graph_objects as go

    from fairsched.analysis.page import html_page

    empty = go.Figure(layout={"title": {"text": "phase 1 per window"}})
    text = html_page("t", [("A", empty), ("B", go.Figure(go.Bar(x=["a"], y=[1])))])
    assert "phase 1 per window: nothing to draw." in text
    assert text.count("Plotly.newPlot") == 1  # only the figure with data is drawn
