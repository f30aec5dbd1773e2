"""The pieces a reproduced claim is made of, and the verdict rule.

A :class:`Claim` is declarative: what the paper says (``paper_figure``, and one
:class:`Check` per headline number with the paper's value), how we measure it
(``metric``, ``setup``), what is known to differ (``caveats``), and a ``run`` function
that simulates and returns a :class:`ClaimResult` holding *our* value for each check.
:func:`evaluate_claim` applies the verdict rule (:func:`judge`) to every check and
combines them (:func:`combine`) into the claim's verdict.

Verdict rule (one check)
------------------------
Let ``p`` be the paper's value, ``o`` ours, ``n`` the *neutral* value (no effect: 1 for a
ratio, 0 for a change in percent) and ``d`` the direction of the paper's effect
(``sign(p - n)``, or given explicitly when the paper states only a direction, ``p = None``).

- **same direction** holds when ``d * (o - n) > noise`` (our effect points the same way
  and is larger than ``noise``, in the check's unit);
- **close** holds when ``|o - p| <= rel_tol * |p|`` (default ``rel_tol`` 0.25: within 25%
  of the paper's number).

Then: ``reproduced`` if same direction and close (for a direction-only check: if same
direction); ``same direction`` if only the direction holds; ``not reproduced`` otherwise
(or when we have no value). A check without a neutral value (an absolute number with no
direction, e.g. VTC's own service difference) is ``reproduced`` if close, else
``not reproduced``. A claim's verdict is the worst verdict of its checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fairsched.output import jsonable

REPRODUCED = "reproduced"
SAME_DIRECTION = "same direction"
NOT_REPRODUCED = "not reproduced"
VERDICTS = (REPRODUCED, SAME_DIRECTION, NOT_REPRODUCED)
"""Verdicts from best to worst."""

REL_TOL = 0.25
"""Default relative tolerance: our number within 25% of the paper's counts as reproduced."""
NOISE = 0.05
"""Default smallest effect (in the check's unit) that counts as a direction: 5% for ratios."""


def judge(paper: float | None, ours: float | None, *, neutral: float | None = None, direction: int = 0,
          rel_tol: float = REL_TOL, noise: float = NOISE) -> str:
    """Verdict for one number (see the module docstring for the rule).

    Args:
        paper: the paper's value, or None when the paper states only a direction.
        ours: our value (None or NaN: not measured -> ``not reproduced``).
        neutral: the value meaning "no effect" (None: the number has no direction).
        direction: +1 / -1, the paper's direction; required when ``paper`` is None,
            else derived from ``paper - neutral`` (an explicit value must agree).
        rel_tol: relative tolerance of "close".
        noise: smallest effect ``|ours - neutral|`` that counts as a direction.
    Raises:
        ValueError: inconsistent arguments (no paper value and no direction, a direction
            without a neutral value, a direction that contradicts the paper's value).
    """
    if paper is None and (neutral is None or direction not in (1, -1)):
        raise ValueError("a direction-only check needs a neutral value and direction +1 or -1")
    if neutral is None and direction:
        raise ValueError("a direction needs a neutral value")
    if rel_tol < 0 or noise < 0:
        raise ValueError("rel_tol and noise must be >= 0")
    if neutral is not None and paper is not None:
        d = (paper > neutral) - (paper < neutral)
        if d == 0:
            raise ValueError(f"the paper's value {paper} equals the neutral value: no direction")
        if direction and direction != d:
            raise ValueError(f"direction {direction} contradicts paper {paper} vs neutral {neutral}")
        direction = d
    if ours is None or not math.isfinite(ours):
        return NOT_REPRODUCED
    same = None if neutral is None else direction * (ours - neutral) > noise
    if paper is None:
        return REPRODUCED if same else NOT_REPRODUCED
    close = abs(ours - paper) <= rel_tol * abs(paper)
    if same is None:
        return REPRODUCED if close else NOT_REPRODUCED
    if same:
        return REPRODUCED if close else SAME_DIRECTION
    return NOT_REPRODUCED


def combine(verdicts: Sequence[str]) -> str:
    """The worst of ``verdicts`` (``not reproduced`` for an empty list)."""
    if not verdicts:
        return NOT_REPRODUCED
    for v in verdicts:
        if v not in VERDICTS:
            raise ValueError(f"unknown verdict {v!r}")
    return max(verdicts, key=VERDICTS.index)


@dataclass(frozen=True)
class Check:
    """One headline number of a claim and how to judge ours against it.

    Attributes:
        key: the name under which the run function reports our value
            (``ClaimResult.values[key]``).
        label: what the number is, for people ("DLPM/VTC throughput").
        paper: the paper's value; None if the paper states only a direction.
        neutral: the value of "no effect" (1 for ratios, 0 for changes); None for an
            absolute number that has no direction.
        direction: +1 / -1 for a direction-only check (else derived from ``paper``).
        fmt: format of the numbers in tables (``str.format`` spec, e.g. ``"{:.2f}x"``).
        rel_tol, noise: see :func:`judge`.
    """

    key: str
    label: str
    paper: float | None
    neutral: float | None = None
    direction: int = 0
    fmt: str = "{:.3g}"
    rel_tol: float = REL_TOL
    noise: float = NOISE

    def __post_init__(self):
        judge(self.paper, self.neutral if self.neutral is not None else self.paper, neutral=self.neutral,
              direction=self.direction, rel_tol=self.rel_tol, noise=self.noise)  # validates

    def effective_direction(self) -> int:
        """+1 / -1: the way the paper's effect points (0 for a number without direction)."""
        if self.neutral is None:
            return 0
        if self.paper is None:
            return self.direction
        return 1 if self.paper > self.neutral else -1

    def verdict(self, ours: float | None) -> str:
        return judge(self.paper, ours, neutral=self.neutral, direction=self.direction,
                     rel_tol=self.rel_tol, noise=self.noise)

    def format(self, v: float | None) -> str:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "n/a"
        return self.fmt.format(v)

    def paper_text(self) -> str:
        if self.paper is not None:
            return self.format(self.paper)
        sign = ">" if self.direction > 0 else "<"
        return f"{sign} {self.format(self.neutral)}"

    def rule_text(self) -> str:
        """The thresholds, in words (for the notes and the JSON)."""
        if self.paper is None:
            return f"reproduced iff ours {'>' if self.direction > 0 else '<'} {self.neutral:g}" + (
                f" by more than {self.noise:g}" if self.noise else "")
        close = f"within {self.rel_tol:.0%} of {self.format(self.paper)}"
        if self.neutral is None:
            return f"reproduced iff {close}"
        side = "above" if self.paper > self.neutral else "below"
        return (f"reproduced iff {close} and {side} {self.neutral:g} by more than {self.noise:g}; "
                f"same direction iff only the latter")


@dataclass
class ClaimResult:
    """What a claim's run function returns.

    Attributes:
        values: our value for each :attr:`Check.key` (None where it could not be measured).
        summary: our figure in words (default: built from the checks).
        setup: the concrete setup that ran (workload sizes, instance, cost model).
        notes: what the numbers show and why they differ from the paper.
        figure: one plotly figure for the HTML page (or None).
        data: raw numbers behind the figure (JSON-serialisable), saved in reproduce.json.
    """

    values: dict[str, float | None]
    summary: str = ""
    setup: str = ""
    notes: str = ""
    figure: Any = None
    data: dict = field(default_factory=dict)


RunFn = Callable[[bool, Any, "Path | None"], ClaimResult]
"""``run(quick, cost, out)``: ``cost`` is a :class:`~fairsched.sim.CostModel` that overrides
the claim's default profile (None: the documented default), ``out`` a directory the
claim may write extra files to (None: none)."""


@dataclass(frozen=True)
class Claim:
    """A published headline result and how fairsched reproduces it.

    Attributes:
        id: short identifier used on the command line (``dlpm-throughput``).
        number: position in the issue's list (1-6); also accepted on the command line.
        title: one line.
        source: the paper (and section / table when known).
        paper_figure: what the paper reports, in words, with its numbers.
        metric: what we measure and how (the definitions behind the checks).
        setup: the default setup, in words (the run reports the concrete one).
        checks: the headline numbers (at least one).
        run: the experiment (see :data:`RunFn`).
        caveats: what differs from the paper's setup and what a faithful reproduction
            would need (appended to the notes).
        needs: trace files (names in ``fairsched.workload.shared_data_dir()``) the run reads.
    """

    id: str
    number: int
    title: str
    source: str
    paper_figure: str
    metric: str
    setup: str
    checks: tuple[Check, ...]
    run: RunFn
    caveats: str = ""
    needs: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.id or not self.id.replace("-", "").isalnum() or self.id != self.id.lower():
            raise ValueError(f"claim id {self.id!r}: use lower-case letters, digits and '-'")
        if not self.checks:
            raise ValueError(f"claim {self.id}: needs at least one check")
        keys = [c.key for c in self.checks]
        if len(set(keys)) != len(keys):
            raise ValueError(f"claim {self.id}: duplicate check keys {keys}")


@dataclass
class Outcome:
    """A claim after its run: the checks judged, the claim's verdict, the run time."""

    claim: Claim
    result: ClaimResult
    verdicts: dict[str, str]
    verdict: str
    elapsed_s: float
    quick: bool
    cost_model: str

    @property
    def ours_text(self) -> str:
        if self.result.summary:
            return self.result.summary
        return "; ".join(f"{c.label} {c.format(self.result.values.get(c.key))}" for c in self.claim.checks)

    @property
    def paper_text(self) -> str:
        return self.claim.paper_figure

    def to_frame(self):
        """One row: claim, paper, ours, setup, verdict, seconds (as :func:`dataframe`)."""
        return dataframe([self])

    to_pandas = to_frame

    def _repr_html_(self) -> str:
        from fairsched.display import html_table

        return html_table(self.to_frame())

    def to_entry(self) -> dict:
        """The claim's entry in ``reproduce.json``."""
        c, r = self.claim, self.result
        return {
            "claim": c.id,
            "number": c.number,
            "title": c.title,
            "source": c.source,
            "paper": c.paper_figure,
            "ours": self.ours_text,
            "verdict": self.verdict,
            "setup": r.setup or c.setup,
            "metric": c.metric,
            "notes": " ".join(x for x in (r.notes.strip(), c.caveats.strip()) if x),
            "checks": [{"key": k.key, "label": k.label, "paper": k.paper, "ours": _num(r.values.get(k.key)),
                        "neutral": k.neutral, "direction": k.effective_direction() or None, "rule": k.rule_text(),
                        "verdict": self.verdicts[k.key]} for k in c.checks],
            "quick": self.quick,
            "cost_model": self.cost_model,
            "elapsed_s": round(self.elapsed_s, 2),
            "data": _jsonable(r.data),
        }


def evaluate_claim(claim: Claim, result: ClaimResult, *, elapsed_s: float = 0.0, quick: bool = False,
                   cost_model: str = "") -> Outcome:
    """Judge every check of ``claim`` against ``result.values``.

    Raises:
        ValueError: if the run did not report a value (not even None) for some check.
    """
    missing = [c.key for c in claim.checks if c.key not in result.values]
    if missing:
        raise ValueError(f"claim {claim.id}: run reported no value for {missing}")
    verdicts = {c.key: c.verdict(_num(result.values[c.key])) for c in claim.checks}
    return Outcome(claim, result, verdicts, combine(list(verdicts.values())), elapsed_s, quick, cost_model)


def _num(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


_jsonable = jsonable  # the one JSON cleaner (fairsched.output)


def dataframe(outcomes: Sequence[Outcome]):
    """The table as a pandas DataFrame (claim, paper, ours, setup, verdict, seconds)."""
    import pandas as pd

    return pd.DataFrame([{"claim": f"{o.claim.number}. {o.claim.id}", "paper": o.paper_text, "ours": o.ours_text,
                          "setup": o.claim.setup, "verdict": o.verdict, "seconds": round(o.elapsed_s, 1)}
                         for o in outcomes])
