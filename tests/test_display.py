"""Results that display themselves: one HTML table path, verdicts coloured, frames."""

import json

import pandas as pd
import pytest

from fairsched.analysis.bounds import check_run
from fairsched.analysis.metrics import max_service_gap, summarize
from fairsched.analysis.verdicts import Verdict
from fairsched.display import Summary, Table, html_table, show, verdict_color
from fairsched.sim import simulate
from fairsched.workload.generators import long_document_qa

RED, GREEN, AMBER = "#cf222e", "#1a7f37", "#9a6700"


@pytest.fixture(scope="module")
def run():
    return simulate(long_document_qa(n_clients=3, questions_per_client=10, rate=4.0, seed=1), "vtc")


@pytest.mark.parametrize("text,colour", [("holds", GREEN), ("VIOLATED", RED), ("published claim violated", AMBER),
                                         ("refuted candidate exceeded", AMBER), ("reproduced", GREEN),
                                         ("not reproduced", RED), ("same direction", AMBER), ("harmful", RED),
                                         ("benign", GREEN), ("confirmed", RED)])
def test_verdict_colours(text, colour):
    assert verdict_color(text)[0] == colour
    assert colour in html_table([{"status": text}])


def test_html_table_escapes_and_limits():
    out = html_table(pd.DataFrame({"a": ["<b>x</b>"] * 5, "status": ["holds"] * 5}), max_rows=2, title="t&t")
    assert "&lt;b&gt;" in out and "t&amp;t" in out and "3 more rows" in out
    assert verdict_color(3.0) is None and verdict_color("some text") is None


def test_show_any_table_and_number_format():
    rows = [{"policy": "vtc", "gap": 80_000.0, "bound": 171_100.4, "n": 12_031, "status": "holds"},
            {"policy": "fcfs", "gap": 2485.0, "bound": None, "n": 3, "status": "VIOLATED"}]
    s = show(rows, title="gaps")
    html = s._repr_html_()
    assert "gaps" in html and GREEN in html and RED in html
    assert "80,000" in html and "171,100" in html and "12,031" in html and "2485" in html and "e+0" not in html
    assert list(s.to_frame().columns) == ["policy", "gap", "bound", "n", "status"]
    kv = show({"regime": "harmful", "x": 0.25}, verdict_columns=("regime",))
    assert RED in kv._repr_html_() and kv.to_frame().shape == (2, 2) and "harmful" in repr(kv)


def test_sim_result_and_summary(run):
    html = run._repr_html_()
    assert "SimResult" in html and "cache hit rate" in html
    assert run.to_frame().shape[0] == len(run.workload) and run.to_pandas().equals(run.to_frame())
    s = summarize(run)
    assert isinstance(s, Summary) and isinstance(s, dict)
    assert json.loads(json.dumps(s)) == dict(s)  # still plain JSON
    assert s.to_frame().loc[0, "max_service_gap"] == s["max_service_gap"]
    assert "max_service_gap" in s._repr_html_()


def test_gap_and_verdicts(run):
    g = max_service_gap(run)
    assert g.gap > 0
    f = g.to_frame()
    assert f.loc[0, "gap"] == g.gap and set(f.loc[0, ["f", "g"]]) == set(g.pair)
    assert "service gap" in g._repr_html_()
    vs = check_run(run, "vtc")
    assert isinstance(vs, Table) and isinstance(vs, list)
    assert len(vs.to_frame()) == len(vs)
    html = vs._repr_html_()
    for v in vs:
        assert v.status in html
    bad = Verdict("vtc", "VTC proved 2X", "instance 0", 10.0, "2X", 20.0, 2.0, "VIOLATED")
    assert RED in bad._repr_html_() and bad.to_frame().loc[0, "status"] == "VIOLATED"


def test_table_of_rows():
    t = Table([{"claim": "1", "verdict": "reproduced"}, {"claim": "2", "verdict": "not reproduced"}])
    html = t._repr_html_()
    assert GREEN in html and RED in html and len(t.to_frame()) == 2
    assert html_table({"regime": "harmful", "a": 1.0}, verdict_columns=("regime",)).count(RED) == 1
