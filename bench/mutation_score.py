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

``run`` passes its patterns to ``mutmut run --max-children 2`` (all mutants without one;
with a pattern mutmut re-runs the matching mutants even when they have a result, without one
it only runs those it has none for). Run it with ``CI=1`` (hypothesis derandomized, as in CI:
a mutant is judged on the same examples as the clean run). The figures, the command that
produced them and the equivalent mutants are in ``proofs/mutation.md``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("killed", "timeout", "survived", "no tests", "not run", "other")


def _status(code) -> str:
    """mutmut's own reading of a mutant's exit code (``mutmut.stats.status_by_exit_code``):
    ``killed`` (a test failed), ``timeout`` (counted as killed: the mutant made a test run past
    its time limit), ``survived``, ``no tests`` (no selected test calls the function),
    ``not run`` (not checked yet), ``other`` (suspicious, segfault, skipped, ...)."""
    from mutmut.stats import status_by_exit_code

    st = status_by_exit_code[code]
    return "not run" if st == "not checked" else st if st in COLUMNS else "other"


def score(root: Path = ROOT) -> dict[str, Counter]:
    """Per mutated module: counts of each of :data:`COLUMNS`, read from mutmut's
    ``mutants/**/*.py.meta``.

    Raises:
        FileNotFoundError: when ``mutants/`` does not exist (run mutmut first).
    """
    base = root / "mutants"
    if not base.is_dir():
        raise FileNotFoundError(f"{base}: no mutmut results (run `python bench/mutation_score.py run`)")
    out: dict[str, Counter] = {}
    for meta in sorted(base.glob("fairsched/**/*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if codes:
            out[str(meta.relative_to(base))[: -len(".meta")]] = Counter(_status(c) for c in codes.values())
    return out


def _row(name: str, c: Counter) -> str:
    ran = c["killed"] + c["timeout"] + c["survived"]
    rate = f"{(c['killed'] + c['timeout']) / ran:.1%}" if ran else "-"
    return f"{name:40s} " + " ".join(f"{c[k]:8d}" for k in COLUMNS) + f"  {rate:>9s}"


def main(argv: list[str]) -> int:
    if argv[:1] == ["run"]:
        return subprocess.call(["mutmut", "run", "--max-children", "2", *argv[1:]], cwd=ROOT)
    if argv[:1] != ["score"]:
        print(__doc__)
        return 2
    tot = Counter()
    print(f"{'module':40s} " + " ".join(f"{k:>8s}" for k in COLUMNS) + "  kill rate")
    for mod, c in score().items():
        tot += c
        print(_row(mod, c))
    print(_row("total", tot))
    print("kill rate = (killed + timeout) / (killed + timeout + survived): of the mutants run that a selected "
          "test calls")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
