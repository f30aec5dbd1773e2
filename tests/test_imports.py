"""The package's import graph (module-level and function-level imports alike) has no cycle,
in particular none between the command line and its commands."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1] / "fairsched"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> nx.DiGraph:
    """Edges ``a -> b``: module ``a`` imports fairsched module ``b`` anywhere in its body."""
    mods = {_module(p): p for p in ROOT.rglob("*.py")}
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from pkg import mod`` imports the submodule; ``from pkg import name`` the package
                subs = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t for t in subs if t in mods]
                if len(targets) < len(subs):
                    targets.append(node.module)
            for t in targets:
                if t in mods and t != name:
                    g.add_edge(name, t)
    return g


def test_no_import_cycle():
    g = import_graph()
    scope = [m for m in g if m == "fairsched.cli" or m.startswith("fairsched.commands")]
    cycles = list(nx.simple_cycles(g))
    assert not cycles, cycles
    # the commands never reach back to the app
    assert not any(nx.has_path(g, m, "fairsched.cli") for m in scope if m != "fairsched.cli")


def test_import_graph_sees_imports():
    """The checker itself: it finds the app's imports of its commands."""
    g = import_graph()
    assert g.has_edge("fairsched.cli", "fairsched.commands.check")
    assert g.has_edge("fairsched.commands.check", "fairsched.commands.common")
