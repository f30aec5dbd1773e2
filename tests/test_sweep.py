"""``fairsched sweep``: grid specs, one row per point, resuming, failing points, and the same
table byte for byte whether the grid ran serially, on a local pool or on a local Ray."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from fairsched.sweep import SweepSpec, load_spec, point_key, run_points, to_frame, write_outputs
from fairsched.sweep.run import METRICS, TABLE_COLUMNS

runner = CliRunner()
SMALL = SweepSpec(routers=["least-load", "lmetric"], instances=[1, 2], limit=[150])


def _run(spec, out, **kw):
    records, counts = run_points(spec.points(), out, progress=False, **kw)
    paths = write_outputs(records, out)
    return records, counts, paths


# ----------------------------------------------------------------------------- spec
def test_spec_from_toml_and_yaml(tmp_path):
    (tmp_path / "g.toml").write_text('routers = ["lmetric", "d2lpm"]\ninstances = [1, 4]\nspeed = 2.0\n'
                                     'seeds = [0, 1]\n')
    (tmp_path / "g.yaml").write_text("routers: [lmetric, d2lpm]\ninstances: [1, 4]\nspeed: 2.0\nseeds: [0, 1]\n")
    a, b = load_spec(tmp_path / "g.toml"), load_spec(tmp_path / "g.yaml")
    assert a.points() == b.points()
    pts = a.points()
    # one instance: no router, so lmetric and d2lpm collapse into one point per seed; d2lpm runs dlpm
    assert [(p.router, p.policy, p.instances, p.seed) for p in pts] == [
        ("none", "fcfs", 1, 0), ("none", "fcfs", 1, 1), ("lmetric", "fcfs", 4, 0), ("lmetric", "fcfs", 4, 1),
        ("d2lpm", "dlpm", 4, 0), ("d2lpm", "dlpm", 4, 1)]
    assert all(p.speed == 2.0 for p in pts)


@pytest.mark.parametrize("text, match", [
    ("routers = ['nope']", "routers = 'nope': unknown router"),
    ("instances = [0]", "instances = 0: must be an integer >= 1"),
    ("colour = 'red'", "unknown key.*'colour'"),
    ("trace = 'missing.jsonl'", "trace = .*missing.jsonl.*no such file"),
    ("speed = [", "not valid TOML"),
])
def test_bad_spec_names_file_and_key(tmp_path, text, match):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ValueError, match=match) as e:
        load_spec(f)
    assert str(f) in str(e.value)


def test_point_key_follows_config_and_trace_content(tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1]}\n')
    p = SweepSpec(trace=[str(trace)], routers=["lmetric"], instances=[2]).points()[0]
    k = point_key(p)
    assert k == point_key(p) and len(k) == 16
    assert point_key(SweepSpec(trace=[str(trace)], routers=["lmetric"], instances=[3]).points()[0]) != k
    from fairsched.sweep.run import file_hash

    trace.write_text('{"timestamp": 0, "input_length": 11, "output_length": 5, "hash_ids": [1]}\n')
    file_hash.cache_clear()
    assert point_key(p) != k  # same path, new content: recomputed


# ----------------------------------------------------------------------------- runs
def test_table_has_every_field_and_metric_and_matches_a_direct_run(tmp_path):
    from fairsched.analysis import summarize
    from fairsched.sim import simulate
    from fairsched.workload import default_workload

    records, counts, paths = _run(SMALL, tmp_path / "s")
    assert counts == {"total": 3, "skipped": 0, "run": 3, "errors": 0}
    df = pd.read_parquet(paths["parquet"])
    assert list(df.columns) == list(TABLE_COLUMNS) and len(df) == 3
    assert (df["status"] == "ok").all() and df[list(METRICS[:3])].notna().all().all()
    # a row is the summary of the same simulation run by hand
    row = df[(df["router"] == "lmetric")].iloc[0]
    s = summarize(simulate(default_workload(0).head(150), "fcfs", router="lmetric", n_instances=2))
    for m in ("ttft_mean_s", "max_service_gap", "cache_hit_rate", "jain_index", "throughput_tok_s"):
        assert row[m] == pytest.approx(s[m]), m
    csv = pd.read_csv(paths["csv"])
    assert list(csv.columns) == list(TABLE_COLUMNS)
    html = paths["html"].read_text()
    assert html.count("plotly.js v") == 1 and "Plotly.newPlot" in html


def test_resume_skips_computed_points_and_keeps_the_bytes(tmp_path):
    out = tmp_path / "s"
    _, _, paths = _run(SMALL, out)
    first = paths["csv"].read_bytes(), paths["parquet"].read_bytes()
    records, counts, paths = _run(SMALL, out)
    assert counts["run"] == 0 and counts["skipped"] == 3
    assert (paths["csv"].read_bytes(), paths["parquet"].read_bytes()) == first
    # a grown grid runs only the new points
    bigger = SweepSpec(routers=["least-load", "lmetric"], instances=[1, 2], limit=[150], speed=[1.0, 2.0])
    _, counts, _ = _run(bigger, out)
    assert counts == {"total": 6, "skipped": 3, "run": 3, "errors": 0}


def test_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    bad = tmp_path / "cost.json"
    bad.write_text(json.dumps({"name": "broken"}))  # no coefficients
    spec = SweepSpec(routers=["lmetric"], instances=[2], limit=[100], cost_model=[None, str(bad)])
    records, counts, paths = _run(spec, tmp_path / "s")
    assert counts["errors"] == 1 and counts["total"] == 2
    df = to_frame(records)
    err = df[df["status"] == "error"].iloc[0]
    assert "coefficients" in err["error"] and pd.isna(err["ttft_mean_s"])
    assert (df["status"] == "ok").sum() == 1
    assert "Failed points (1)" in paths["html"].read_text()
    # the failed point is retried by the next run (it may have been transient), the good one is not
    _, counts, _ = _run(spec, tmp_path / "s")
    assert counts["run"] == 1 and counts["skipped"] == 1


def test_local_pool_and_ray_give_the_same_table_byte_for_byte(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is in the test extra (pip install -e '.[test]')")
    _, _, serial = _run(SMALL, tmp_path / "serial")
    _, _, pool = _run(SMALL, tmp_path / "pool", workers=2)
    _start_local_ray(ray)
    try:
        _, _, on_ray = _run(SMALL, tmp_path / "ray", use_ray=True)
    finally:
        ray.shutdown()
    for kind in ("csv", "parquet"):
        assert serial[kind].read_bytes() == pool[kind].read_bytes() == on_ray[kind].read_bytes(), kind


def _start_local_ray(ray):
    """``ray.init(num_cpus=2)``; on a loaded machine the raylet can time out waiting for its
    agent to start (a fixed wait inside Ray), so one retry."""
    for attempt in range(2):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            return
        except Exception:  # noqa: BLE001 - Ray raises a bare Exception on a startup timeout
            ray.shutdown()
            if attempt:
                raise


# ----------------------------------------------------------------------------- command line
def test_cli_sweep_from_options_and_spec(tmp_path):
    from fairsched.cli import app

    out = tmp_path / "o"
    res = runner.invoke(app, ["sweep", "--router", "least-load", "--router", "lmetric", "--instances", "2",
                              "--limit", "120", "--workers", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "2 point(s) run" in res.output
    df = pd.read_csv(out / "sweep.csv")
    assert sorted(df["router"]) == ["least-load", "lmetric"]
    spec = tmp_path / "g.toml"
    spec.write_text('routers = ["least-load", "lmetric"]\ninstances = 2\nlimit = 120\n')
    res = runner.invoke(app, ["sweep", "--spec", str(spec), "--workers", "1", "--out", str(out)])
    assert res.exit_code == 0 and "0 point(s) run, 2 already there" in res.output


def test_cli_sweep_bad_input_exits_2(tmp_path):
    from fairsched.cli import app

    res = runner.invoke(app, ["sweep", "--router", "nope", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "unknown router" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["sweep", "--workers", "0", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--workers" in res.output
