"""`--service-log full|backlogged` on analyze and check: the compact log gives the same
summary and the same verdicts; a bad value is one error line naming the option."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fairsched.cli import app
from fairsched.commands.options import SERVICE_LOGS
from fairsched.sim import simulate
from fairsched.workload import default_workload

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_choices_are_the_simulators():
    w = default_workload(0).head(5)
    for name in SERVICE_LOGS:
        assert simulate(w, "vtc", service_log=name).service_log == name


@pytest.mark.parametrize(("command", "doc_name"), [("analyze", "summary.json"), ("check", "check.json")])
def test_backlogged_log_gives_the_same_results(tmp_path, command, doc_name):
    docs = {}
    for log in SERVICE_LOGS:
        out = tmp_path / log
        res = run(command, "--limit", 150, "--instances", 2, "--router", "least-load", "--policy", "vtc",
                  "--service-log", log, "--out", out)
        assert res.exit_code == 0, res.output
        docs[log] = json.loads((out / doc_name).read_text())
        assert docs[log]["config"]["service_log"] == log
    full, small = docs["full"], docs["backlogged"]
    if command == "analyze":
        assert full["runs"] == small["runs"] and full["runs"][0]["max_service_gap"] > 0
        assert "Service curves" in (tmp_path / "full" / "report.html").read_text()
        assert "Service curves" not in (tmp_path / "backlogged" / "report.html").read_text()
    else:
        assert full["verdicts"] == small["verdicts"] and full["verdicts"]
        assert [r["summary"]["n_service_events"] for r in small["runs"]] < \
            [r["summary"]["n_service_events"] for r in full["runs"]]


@pytest.mark.parametrize("command", ["analyze", "check"])
def test_bad_service_log_names_the_option(tmp_path, command):
    res = run(command, "--limit", 20, "--service-log", "some", "--out", tmp_path / "o")
    assert res.exit_code == 2
    assert "--service-log" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_help_lists_the_option():
    for command in ("analyze", "check"):
        assert "--service-log" in run(command, "--help").output
