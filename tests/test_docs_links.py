"""Docs, notebooks and docstrings cite files that exist (paths like ``proofs/x.md``,
``fairsched/sim/cost.py``, ``notebooks/y.ipynb``, ``bench/z.py``, ``tests/t.py``)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITED = re.compile(r"(?<![\w./-])((?:proofs|fairsched|notebooks|bench|tests|data|\.ci)/[\w./-]*\w)")


def _sources():
    for pattern in ("README.md", "*.md", "proofs/**/*.md", "notebooks/**/*.ipynb", "fairsched/**/*.py",
                    "bench/**/*.py", "tests/**/*.py"):
        yield from (f for f in ROOT.glob(pattern) if f.name != Path(__file__).name)


def cited_paths() -> dict[str, set[str]]:
    """Cited repository path -> the files that cite it."""
    out: dict[str, set[str]] = {}
    for f in set(_sources()):
        text = f.read_text(encoding="utf-8", errors="replace")
        for m in CITED.finditer(text):
            p = m.group(1).rstrip(".")
            if text[m.end():m.end() + 1] in ("*", "{", "<"):  # a pattern, not a file
                continue
            out.setdefault(p, set()).add(str(f.relative_to(ROOT)))
    return out


def test_cited_files_exist():
    missing = {p: sorted(src) for p, src in cited_paths().items() if not (ROOT / p).exists()}
    assert not missing, missing


def test_the_checker_finds_citations():
    assert "proofs/README.md" in cited_paths()
