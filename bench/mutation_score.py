"""Mutation score of the theory and bound code, with mutmut (3.x): does a test fail when a
formula is edited?

Configuration: ``[tool.mutmut]`` in ``pyproject.toml``: the mutated files are
``fairsched/theory/*`` and the bound code of ``fairsched/analysis`` (``gap.py``,
``service_params.py``, ``verdicts.py``, ``bounds.py``); the tests are the theory, admission and
bound tests. mutmut copies the package to ``mutants/`` (git-ignored), records which tests call
each function, and runs for each mutant only those tests (``-x``); a mutant is *killed* when one
fails or times out. ``no tests``: no selected test calls the function (the code is checked by
other tests, e.g. ``theory/cost.py`` by ``tests/test_cost_model.py``, or not at all).

    pip install mutmut                       # 3.x
    nice python bench/mutation_score.py run 'fairsched.theory.fairness*' ...   # mutmut run
    python bench/mutation_score.py score      # kill rate per module from mutants/**/*.meta
    mutmut results                            # survivors; `mutmut show NAME` prints the diff

``run`` passes its patterns to ``mutmut run --max-children 2`` (all mutants without one).
A full run of every mutant took longer than this project's 2 shared cores allow in one
session; the figures in the closing note say which modules were run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KILLED = {1, 3, 24, -24, 36, 152, 255}  # mutmut exit codes: test failure, pytest error, timeout
NO_TESTS = {5, 33}


def score(root: Path = ROOT) -> dict[str, Counter]:
    """Per mutated module: counts of ``killed``, ``survived``, ``no tests``, ``not checked``,
    ``other`` read from mutmut's ``mutants/**/*.py.meta``.

    Raises:
        FileNotFoundError: when ``mutants/`` does not exist (run mutmut first).
    """
    base = root / "mutants"
    if not base.is_dir():
        raise FileNotFoundError(f"{base}: no mutmut results (run `python bench/mutation_score.py run`)")
    out: dict[str, Counter] = {}
    for meta in sorted(base.glob("fairsched/**/*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        c = Counter()
        for code in codes.values():
            c["killed" if code in KILLED else "survived" if code == 0 else "no tests" if code in NO_TESTS
              else "not checked" if code is None else "other"] += 1
        out[str(meta.relative_to(base))[: -len(".meta")]] = c
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["run"]:
        return subprocess.call(["mutmut", "run", "--max-children", "2", *argv[1:]], cwd=ROOT)
    if argv[:1] != ["score"]:
        print(__doc__)
        return 2
    tot = Counter()
    print(f"{'module':44s} {'killed':>7s} {'survived':>8s} {'no tests':>8s} {'unrun':>6s}  kill rate (run, with tests)")
    for mod, c in score().items():
        tot += c
        ran = c["killed"] + c["survived"]
        rate = f"{c['killed'] / ran:.1%}" if ran else "-"
        print(f"{mod:44s} {c['killed']:7d} {c['survived']:8d} {c['no tests']:8d} {c['not checked']:6d}  {rate}")
    ran = tot["killed"] + tot["survived"]
    print(f"{'total':44s} {tot['killed']:7d} {tot['survived']:8d} {tot['no tests']:8d} {tot['not checked']:6d}  "
          f"{tot['killed'] / ran:.1%}" if ran else "")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
