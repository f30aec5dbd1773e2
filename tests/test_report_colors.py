"""Colours and notes of the report figures: check's gap figure in the page's scheduler
colours (verdicts as pattern, outline and label), and Jain's n/a always explained."""

from __future__ import annotations

from fairsched.analysis.bound_figures import fig_gap_vs_bound
from fairsched.analysis.colors import scheduler_colors
from fairsched.analysis.report import jain_reason
from fairsched.analysis.verdicts import STATUS_HOLDS, STATUS_VIOLATED, Verdict


def _verdict(run, status, measured):
    return Verdict(run=run, check="proved", scope="instance 0", bound=100.0, bound_expr="100", measured=measured,
                   ratio=measured / 100.0, status=status)


def test_gap_figure_uses_the_scheduler_palette_and_marks_violations():
    vs = [_verdict("vtc", STATUS_HOLDS, 10.0), _verdict("dlpm", STATUS_VIOLATED, 300.0)]
    fig = fig_gap_vs_bound(vs)
    bars = fig.data[1]
    pal = scheduler_colors(["vtc", "dlpm"])
    assert list(bars.marker.color) == [pal["vtc"], pal["dlpm"]]
    assert list(bars.text) == ["holds", "VIOLATED"]
    assert list(bars.marker.pattern.shape) == ["", "x"]
    assert fig.data[0].marker.color not in pal.values()  # bounds are not mistaken for a scheduler


def test_jain_na_is_explained_on_one_instance_and_on_a_cluster():
    assert jain_reason({"jain_index": 0.9, "jain_n_clients": 3}) is None
    one = jain_reason({"jain_index": None, "jain_n_clients": 0, "n_clients": 5, "n_instances": 1})
    assert "no client was backlogged" in one and "Per instance" not in one
    many = jain_reason({"jain_index": 1.0, "jain_n_clients": 1, "n_clients": 5, "n_instances": 4})
    assert "only one client" in many and "Per instance it is undefined too" in many
    assert "one client" in jain_reason({"jain_index": None, "jain_n_clients": 0, "n_clients": 1})


def test_pages_are_the_same_bytes_for_the_same_figures():
    import plotly.graph_objects as go

    from fairsched.analysis.page import html_page

    def page():
        return html_page("t", [("a", go.Figure(go.Bar(x=[1, 2], y=[3, 4]))), ("b", go.Figure(go.Scatter(y=[1])))])

    p = page()
    assert p == page() and 'id="figure-0"' in p and 'id="figure-1"' in p
