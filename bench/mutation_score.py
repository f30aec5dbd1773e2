"""Mutation score of the theory and bound code: does some test fail when a formula is edited?

A small home-made AST mutation runner (mutmut runs the whole suite per mutant, which does not
fit 2 shared cores), limited to the files of issue 10 item 6:

- ``fairsched/theory/fairness.py`` and ``fairsched/theory/lmetric.py``: every function;
- the bound code of ``fairsched/analysis``: ``service_params.py`` (``measured_x``,
  ``concurrency_k``) and ``verdicts.py`` (``_status``, ``check_run``).

Mutation operators (one change per mutant): ``+`` <-> ``-``, ``*`` <-> ``/``, ``Min`` <-> ``Max``
(names and attributes), comparison flips (``<`` <-> ``>=``, ``<=`` <-> ``>``), integer
constants ``n -> n + 1``. Plus the named mutations of issue 10 (``NAMED``). Each mutant is
written into a scratch copy of the package and the checking tests are run there with ``-x``;
a mutant is *killed* if they fail (or time out). Prints one line per mutant and the score.

    python bench/mutation_score.py [--max-per-file N] [--seed S] [--only-named]
"""

from __future__ import annotations

import argparse
import ast
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = {
    "fairsched/theory/fairness.py": ["tests/test_theory_mutations.py", "tests/test_theory_fairness.py"],
    "fairsched/theory/lmetric.py": ["tests/test_theory_mutations.py", "tests/test_theory_lmetric.py"],
    "fairsched/analysis/service_params.py": ["tests/test_theory_mutations.py", "tests/test_bounds.py"],
    "fairsched/analysis/verdicts.py": ["tests/test_theory_mutations.py", "tests/test_bounds.py"],
}
BOUND_FUNCS = {"measured_x", "concurrency_k", "_status", "check_run"}
NAMED = [  # (file, old, new, what)
    ("fairsched/theory/fairness.py", "return w_p * L_in + k * w_q * O_max", "return w_p * L_in + w_q * O_max",
     "X_expr without k"),
    ("fairsched/theory/lmetric.py", "return sp.Min(limit_ratio(), kappa)", "return sp.Max(limit_ratio(), kappa)",
     "steady_ratio Min -> Max"),
    ("fairsched/theory/lmetric.py", "return S_sym / (O_out * beta_d * (a - b))", "return S_sym / (beta_d * (a - b))",
     "symbolic harm_time (O dropped)"),
    ("fairsched/theory/lmetric.py", "return S_sym / (O_out * beta_d * (kappa - 1)) - (1 if plus_one else 0)",
     "return S_sym / (O_out * beta_d * kappa) - (1 if plus_one else 0)", "harm_load_threshold (kappa-1) -> kappa"),
    ("fairsched/theory/lmetric.py", 'if d["t_star"] is not None and d["t_star"] <= d["t_harm"]:',
     'if d["t_star"] is not None and d["t_star"] >= d["t_harm"]:', "classify_regime t*/t_h flipped"),
    ("fairsched/analysis/service_params.py", "outstanding = np.maximum(adm_out - dec, 0.0)",
     "outstanding = np.maximum(out[rr][last] - 0 * dec, 0.0)", "measured X ignores co-running requests"),
]
BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
CMP = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.LtE: ast.Gt, ast.Gt: ast.LtE}
SWAP = {"Min": "Max", "Max": "Min"}


def _sites(tree: ast.Module, only: set[str] | None):
    """(node, kind) candidates inside the selected top-level functions."""
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef) or (only and fn.name not in only):
            continue
        body = fn.body[1:] if ast.get_docstring(fn) else fn.body
        for stmt in body:
            for n in ast.walk(stmt):
                if isinstance(n, ast.BinOp) and type(n.op) in BIN:
                    yield n, "bin"
                elif isinstance(n, ast.Compare) and len(n.ops) == 1 and type(n.ops[0]) in CMP:
                    yield n, "cmp"
                elif isinstance(n, ast.Attribute) and n.attr in SWAP:
                    yield n, "attr"
                elif isinstance(n, ast.Name) and n.id in SWAP:
                    yield n, "name"
                elif isinstance(n, ast.Constant) and type(n.value) is int and not isinstance(n.value, bool):
                    yield n, "const"


def _mutate(src: str, index: int, only):
    tree = ast.parse(src)
    node, kind = list(_sites(tree, only))[index]
    if kind == "bin":
        node.op = BIN[type(node.op)]()
    elif kind == "cmp":
        node.ops = [CMP[type(node.ops[0])]()]
    elif kind == "attr":
        node.attr = SWAP[node.attr]
    elif kind == "name":
        node.id = SWAP[node.id]
    else:
        node.value += 1
    where = f"line {node.lineno}: {kind}"
    return ast.unparse(tree), where


def _run(scratch: Path, tests: list[str], timeout: float) -> bool:
    """True if the tests fail (mutant killed)."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    env = {"PYTHONPATH": str(scratch), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    try:
        r = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return True
    return r.returncode != 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-per-file", type=int, default=12, help="mechanical mutants sampled per file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only-named", action="store_true")
    ap.add_argument("--timeout", type=float, default=300.0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory() as d:
        scratch = Path(d) / "repo"
        scratch.mkdir()
        for name in ("fairsched", "tests"):
            shutil.copytree(ROOT / name, scratch / name)
        shutil.copy(ROOT / "pyproject.toml", scratch / "pyproject.toml")
        shared = ROOT.parent / "shared"
        if shared.exists():
            (Path(d) / "shared").symlink_to(shared)
        jobs = [(f, old, new, what) for f, old, new, what in NAMED]
        if not a.only_named:
            for f in TESTS:
                src = (ROOT / f).read_text()
                only = BOUND_FUNCS if "/analysis/" in f else None
                n = len(list(_sites(ast.parse(src), only)))
                for i in sorted(rng.sample(range(n), min(a.max_per_file, n))):
                    jobs.append((f, i, only, None))
        killed = total = 0
        for job in jobs:
            f = job[0]
            orig = (ROOT / f).read_text()
            if job[3] is not None:  # named
                assert job[1] in orig, f"named mutation no longer applies: {job[3]}"
                mutated, what = orig.replace(job[1], job[2], 1), f"NAMED {job[3]}"
            else:
                mutated, what = _mutate(orig, job[1], job[2])
            (scratch / f).write_text(mutated)
            t = time.perf_counter()
            k = _run(scratch, TESTS[f], a.timeout)
            (scratch / f).write_text(orig)
            killed += k
            total += 1
            print(f"{'killed ' if k else 'SURVIVED'} {f} {what} ({time.perf_counter() - t:.0f} s)", flush=True)
        print(f"mutation score: {killed}/{total} killed = {killed / max(total, 1):.0%}")


if __name__ == "__main__":
    main()
