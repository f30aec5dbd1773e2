"""The LMetric hotspot detector (fairsched.analysis.detect), prefix classes, the hotspot
generators and `fairsched detect`.

- on the generated hotspot workload the detector flags the hot class (phase 1), confirms
  it (phase 2), and the mitigation brings its TTFT back near least-load's;
- on the benign twin (same arrivals, rates and lengths) it stays silent;
- prefix classes follow the documented rule (universal prefix, first divergence,
  singletons left out) and the networkx tree is a tree whose class subtrees hold them;
- the empirical phase diagram agrees with the benign condition away from the boundary;
- `fairsched detect` writes detect.json with ``flagged_classes``; bad input exits 2.
"""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
from typer.testing import CliRunner

from fairsched.analysis.detect import (
    DetectorConfig,
    HotspotDetector,
    detect_and_compare,
    phase_diagram,
    run_detection,
    violates,
)
from fairsched.analysis.prefix_classes import prefix_classes
from fairsched.workload import make_workload, save_jsonl
from fairsched.workload.hotspot import benign_twin, hotspot_workload

SMALL = dict(warm_s=20.0, burst_s=60.0, tail_s=20.0)  # ~3,000 requests, 20 s windows
CFG = DetectorConfig(window_s=20.0)


@pytest.fixture(scope="module")
def hot_outcome():
    return detect_and_compare(hotspot_workload(8, **SMALL), 8, config=CFG)


def _lat(outcome, router, scope):
    return next(r for r in outcome.latency if r["router"] == router and r["scope"] == scope)


def test_detector_fires_on_hotspot(hot_outcome):
    rep = hot_outcome.report
    (f,) = rep.flagged_classes
    assert f["klass"] == "hot" and f["phase2_confirmed"]
    # phase 1: flagged in the burst windows only (20-80 s), share well above the holders' share
    wins = [w["window"] for w in f["windows"]]
    assert set(wins) <= {1, 2, 3} and 1 in wins
    assert f["x"] > 0.7 and f["x"] > 1.4 * f["holders"] / 8
    # phase 2: more than 2|M| consecutive load-worse decisions, confirmed during the burst
    assert f["max_run"] > 2 * 8 and 40.0 <= f["confirmed_at"] < 80.0
    th = f["windows"][0]["theory"]
    assert th["regime"] in ("hotspot", "harmful") and th["limit_ratio"] > 1
    # LMetric keeps the hot class on its holders: their load outgrows the others'
    assert f["windows"][0]["observed_ratio"] > 2


def test_hotspot_hurts_and_mitigation_recovers_ttft(hot_outcome):
    base = _lat(hot_outcome, "least-load", "flagged, after confirmation")
    lm = _lat(hot_outcome, "lmetric", "flagged, after confirmation")
    mit = _lat(hot_outcome, "lmetric+mitigation", "flagged, after confirmation")
    assert lm["ttft_mean_s"] > 2 * base["ttft_mean_s"]  # the hotspot degrades TTFT vs load-only routing
    assert lm["tpot_mean_s"] > 2 * base["tpot_mean_s"]
    assert mit["ttft_mean_s"] < 0.75 * lm["ttft_mean_s"]  # mitigation recovers most of it
    # ... without hurting the tail (warm-up prefills, not load-only routing)
    assert _lat(hot_outcome, "lmetric+mitigation", "flagged classes")["ttft_p99_s"] <= 1.10 * _lat(
        hot_outcome, "lmetric", "flagged classes")["ttft_p99_s"]
    assert _lat(hot_outcome, "lmetric+mitigation", "all requests")["ttft_mean_s"] <= _lat(
        hot_outcome, "lmetric", "all requests")["ttft_mean_s"]
    f = hot_outcome.report.flagged_classes[0]
    assert all(w["theory"]["regime"] == "harmful" for w in f["windows"])  # the model predicts the harm
    assert mit["ttft_p50_s"] < 1.5 * base["ttft_p50_s"]
    assert mit["tpot_mean_s"] < 1.5 * base["tpot_mean_s"]
    ev = [(e["event"], e["klass"]) for e in hot_outcome.mitigated_report.events]
    assert ("mitigate", "hot") in ev and ev[-1] == ("clear", "hot")  # cleared after the burst
    json.dumps(hot_outcome.to_dict(), allow_nan=False)


def test_benign_twin_is_silent():
    wl = benign_twin(8, **SMALL)
    hot = hotspot_workload(8, **SMALL)
    assert [(r.arrival, r.input_len, r.output_len) for r in wl] == [(r.arrival, r.input_len, r.output_len) for r in hot]
    rep, _ = run_detection(wl, 8, config=CFG)
    assert rep.flagged_classes == [] and not any(e["event"] == "confirm" for e in rep.events)
    assert len(rep.windows) > 0  # the doc classes were checked, and were benign
    assert rep.closest()["margin"] < 1


def test_benign_condition_and_detector_bookkeeping():
    assert violates(0.5, 1, 4) and not violates(0.25, 1, 4) and not violates(0.2, 1, 4)
    assert not violates(0.9, 0, 4) and not violates(0.9, 4, 4)
    rows = [(float(i), "a", [1, 2, 10 + i], 40, 4) for i in range(6)]
    rows += [(i + 0.5, f"u{i}", [100 + i], 16, 4) for i in range(6)]
    wl = make_workload(rows, block_size=16)
    pc = prefix_classes(wl)
    assert pc.class_of.count("a") == 6 and pc.class_of.count(None) == 6
    det = HotspotDetector(pc, 3, DetectorConfig(window_s=20.0, min_class_requests=1))
    k = 0
    for r in wl:  # class a: half the traffic, one holder of three (after its first request): violating
        hold = [0] if r.client == "a" and k else []
        k += r.client == "a"
        det.observe(r.arrival, r.rid, hold, 0, [k, 0, 0], 0, 1, k / 3)
    det.finish()
    assert [e["event"] for e in det.events] == ["flag"]
    assert det.max_run["a"] == 5  # load-worse from the second request on


# ---------------------------------------------------------------- prefix classes
def test_prefix_classes_rule_and_tree():
    rows = [(0.0, "x", [0, 1, 2, 3], 64, 4), (1.0, "x", [0, 1, 2, 4], 64, 4), (2.0, "y", [0, 5, 6], 48, 4),
            (3.0, "y", [0, 5, 7], 48, 4), (4.0, "z", [0, 8], 32, 4), (5.0, "x", [0, 1, 9, 10], 64, 4)]
    pc = prefix_classes(make_workload(rows, block_size=16))
    assert pc.base_tokens == 16  # unit 0 is in every prompt: the universal prefix
    assert pc.class_of == ["x", "x", "y", "y", None, "x"]  # z's single request has no class
    assert pc.classes["x"]["shared_tokens"] == 32 and pc.classes["x"]["n_requests"] == 3
    assert pc.classes["y"]["shared_tokens"] == 32
    assert nx.is_tree(pc.tree.to_undirected()) and nx.is_arborescence(pc.tree)
    sub = pc.subtree("x")
    assert sum(d["ends"] for _, d in sub.nodes(data=True)) == 3
    assert pc.tree.nodes[0]["count"] == 6
    df = pc.frame()
    assert list(df.klass) == ["x", "y"]


def test_prefix_classes_without_sharing():
    rows = [(float(i), f"c{i % 3}", [10 * i, 10 * i + 1], 30, 3) for i in range(9)]
    pc = prefix_classes(make_workload(rows, block_size=16))
    assert pc.classes == {} and all(c is None for c in pc.class_of) and pc.base_tokens == 0


def test_prefix_classes_token_ids_repeat_at_other_positions():
    rows = [(0.0, "a", [5, 7, 1], 3, 2), (1.0, "a", [5, 7, 2], 3, 2), (2.0, "b", [6, 7, 3], 3, 2),
            (3.0, "b", [6, 7, 4], 3, 2)]
    pc = prefix_classes(make_workload(rows, block_size=1))
    assert pc.class_of == ["a", "a", "b", "b"] and pc.classes["b"]["shared_tokens"] == 2


# ---------------------------------------------------------------- phase diagram
def test_phase_diagram_agrees_away_from_the_boundary():
    df = phase_diagram(xs=(0.15, 0.85), holders=(1, 6), n_instances=8, duration_s=30.0)
    assert len(df) == 4
    far = df[(df.x - df.holder_frac).abs() > 0.3]  # (0.15, 6/8) benign, (0.85, 1/8) violating
    assert len(far) == 2 and far.agree.all()
    hot = df[(df.x == 0.85) & (df.holders == 1)].iloc[0]
    assert not hot.theory_benign and hot.empirical_hotspot and hot.load_ratio > 2 and hot.flagged
    cool = df[(df.x == 0.15) & (df.holders == 6)].iloc[0]
    assert cool.theory_benign and not cool.empirical_hotspot and not cool.flagged


def test_generators_validate():
    with pytest.raises(ValueError, match="x"):
        hotspot_workload(x=1.5)
    with pytest.raises(ValueError, match="n_classes"):
        benign_twin(8, x=0.8, n_classes=2)
    w = hotspot_workload(4, qps=5.0, **SMALL)
    assert w.meta["hot_classes"] == ["hot"] and w.meta["burst"] == (20.0, 80.0)
    arr = np.array([r.arrival for r in w])
    hot = np.array([r.client == "hot" for r in w])
    assert hot[(arr >= 20) & (arr < 80)].mean() > 0.6 > 0.2 > hot[arr < 20].mean()


# ---------------------------------------------------------------- CLI
runner = CliRunner()


def _run(*args):
    from fairsched.cli import app

    return runner.invoke(app, [str(a) for a in args])


def test_detect_cli_hotspot_and_benign(tmp_path):
    for gen, flagged in ((hotspot_workload, True), (benign_twin, False)):
        trace = tmp_path / f"{gen.__name__}.jsonl"
        save_jsonl(gen(4, qps=15.0, **SMALL), trace)
        out = tmp_path / gen.__name__
        r = _run("detect", "--trace", trace, "--instances", 4, "--window", 20, "--out", out)
        assert r.exit_code == 0, r.output
        doc = json.loads((out / "detect.json").read_text())
        assert isinstance(doc["flagged_classes"], list) and bool(doc["flagged_classes"]) == flagged
        for f in doc["flagged_classes"]:
            assert {"klass", "windows", "x", "M", "phase2_confirmed"} <= set(f)
            assert f["windows"] and {"t0", "t1", "x", "holders", "theory"} <= set(f["windows"][0])
        assert {r["router"] for r in doc["latency"]} == {"least-load", "lmetric", "lmetric+mitigation"}
        assert (out / "detect.html").read_text().count("plotly.js v") == 1
        assert ("confirmed" in r.output) == flagged
        n = len(gen(4, qps=15.0, **SMALL))  # a progress bar per run, counting arrived requests
        assert all(f"{name} on 4 instances" in r.output for name in ("least-load", "lmetric", "lmetric+mitigation"))
        assert f"{n}/{n}" in r.output


def test_detect_cli_bad_input(tmp_path):
    r = _run("detect", "--instances", 1, "--out", tmp_path / "o")
    assert r.exit_code == 2 and "--instances" in r.output and "Traceback" not in r.output
    missing = tmp_path / "nope.jsonl"
    r = _run("detect", "--trace", missing, "--out", tmp_path / "o")
    assert r.exit_code == 2 and "nope.jsonl" in r.output
    r = _run("detect", "--baseline", "magic", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "magic" in r.output
