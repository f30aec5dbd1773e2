"""``bench/bench_detect_validation.py``: bad options and files give one argparse error naming them,
exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_detect_validation.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, names", [
    (("--n", "0"), "--n must be >= 1"),
    (("--seeds", "-1"), "--seeds must be >= 1"),
    (("--rescore", "--out", "/nonexistent/study.csv"), "--out /nonexistent/study.csv"),
])
def test_bad_options_are_named(args, names):
    p = _run(*args)
    assert p.returncode == 2 and names in p.stderr and "Traceback" not in p.stderr


def test_bad_more_seeds_line_is_named(tmp_path):
    (tmp_path / "s.csv").write_text("id,n,horizon_s,seed_excess,seed_ratio,outcome\n0,4,6.0,[0.0],[1.0],benign\n")
    (tmp_path / "s_windows.json").write_text('[{"id": 0, "hot_class": {}, "windows": []}]')
    more = tmp_path / "more.jsonl"
    more.write_text('{"id": 0, "seed_excess_more": [0.0], "seed_ratio_more": [1.0]}\n{"id": 1}\n')
    p = _run("--rescore", "--out", str(tmp_path / "s.csv"), "--more-seeds", str(more))
    assert p.returncode == 2 and f"--more-seeds {more}, line 2" in p.stderr and "Traceback" not in p.stderr
