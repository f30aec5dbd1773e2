"""The optional compiled build (``setup.py``, ``FAIRSCHED_COMPILE=1``: mypyc) gives the pure
build's results, hash for hash.

The compiled package is built once per run (non-editable, ``pip install --target`` a
temporary directory, put first on ``PYTHONPATH``), or taken from ``FAIRSCHED_COMPILED_PYTHON``
(the interpreter of a virtual environment it is installed in; README, At scale). The seeded simulations of ``tests/_compiled_runs.py``
(LMetric/FCFS Mooncake-shaped 3k, D²LPM, Preble, seconds-LMetric with VTC and the peak rule,
global DLPM, LCF, the warm-up mitigation run, and VTC/DLPM on the LMSYS trace) run in both
builds in subprocesses. Skipped, with the reason, without mypy, ``wheel`` or a C compiler.
Tests that monkeypatch the simulator's internals run in the pure suite only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RUNS = ROOT / "tests" / "_compiled_runs.py"
BUILD = "FAIRSCHED_COMPILE=1 pip install --no-build-isolation --no-deps . (README, At scale)"

pytestmark = pytest.mark.slow


def _env(pythonpath: Path | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> tuple[str, Path | None, Path]:
    """(interpreter of the compiled build, its PYTHONPATH, an empty working directory)."""
    cwd = tmp_path_factory.mktemp("compiled_cwd")
    python = os.environ.get("FAIRSCHED_COMPILED_PYTHON")
    if python:
        return python, None, cwd
    else:
        for mod, why in (("mypy", "mypy (pip install mypy==2.4.1)"), ("wheel", "wheel (pip install wheel)")):
            if importlib.util.find_spec(mod) is None:
                pytest.skip(f"compiled build: {why} is not installed and FAIRSCHED_COMPILED_PYTHON is not set")
        if not (shutil.which("cc") or shutil.which("gcc")):
            pytest.skip("compiled build: no C compiler (cc/gcc) and FAIRSCHED_COMPILED_PYTHON is not set")
        target = tmp_path_factory.mktemp("compiled_build")
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
                            "--target", str(target), str(ROOT)],
                           env={**_env(None), "FAIRSCHED_COMPILE": "1"}, capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, f"compiled build failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        return sys.executable, target, cwd


def test_compiled_build_is_this_checkout(compiled):
    """Every source file of the compiled install is this checkout's (else the build is stale:
    the comparison below would not be of this code), and the hot modules are C extensions."""
    python, path, cwd = compiled
    out = subprocess.run([python, "-c", "import fairsched, os; print(os.path.dirname(fairsched.__file__))"],
                         cwd=cwd, env=_env(path), capture_output=True, text=True, timeout=300, check=True)
    pkg = Path(out.stdout.strip())
    assert pkg.resolve() != (ROOT / "fairsched").resolve(), "the compiled interpreter imports the checkout"
    stale = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "fairsched").rglob("*.py"))
             if not (pkg / p.relative_to(ROOT / "fairsched")).is_file()
             or (pkg / p.relative_to(ROOT / "fairsched")).read_bytes() != p.read_bytes()]
    assert not stale, f"compiled build at {pkg} is stale ({', '.join(stale[:5])}...): rebuild it: {BUILD}"
    out = subprocess.run([python, "-c", "from fairsched._mypyc import build; print(build())"], cwd=cwd,
                         env=_env(path), capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "compiled", out.stderr[-2000:]


def _runs(python: str, cwd: Path, pythonpath: Path | None) -> dict:
    r = subprocess.run([python, str(RUNS), str(DATA)], cwd=cwd, env=_env(pythonpath), capture_output=True,
                       text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_compiled_gives_the_pure_results(compiled):
    python, path, cwd = compiled
    pure = _runs(sys.executable, cwd, ROOT)
    comp = _runs(python, cwd, path)
    assert (pure["build"], comp["build"]) == ("pure", "compiled")
    assert {"mc3k-lmetric-fcfs", "mc1.5k-global-dlpm", "hotspot-warmup-mitigation"} <= set(pure["runs"])
    diff = {k: (v, comp["runs"].get(k)) for k, v in pure["runs"].items() if comp["runs"].get(k) != v}
    assert not diff and set(comp["runs"]) == set(pure["runs"]), f"compiled results differ (pure, compiled): {diff}"
