"""The ``fairsched`` command line (typer): the app and its commands.

Commands, one module each in :mod:`fairsched.commands`:

- ``fairsched analyze``: the main job. Simulates a workload (the built-in default or a
  trace) under several scheduler combinations and writes ``summary.json`` and
  ``report.html``.
- ``fairsched check``: the fairness bounds (VTC, DLPM, D²LPM) on a workload.
- ``fairsched detect``: LMetric's KV$ hotspot on a workload.
- ``fairsched reproduce``: the source papers' headline comparisons.
- ``fairsched calibrate``: fits the simulator's cost model on the torch toy engine.
- ``fairsched sweep``: a grid of simulations, locally in parallel or on Ray, into one table.

Conventions (:mod:`fairsched.commands.common`): heavy imports inside the command function,
user errors raised as :class:`UserError` (or ``ValueError`` / ``OSError`` inside a
``with user_errors():`` block) print one red ``error:`` line and exit with code 2, options
are validated before anything runs, files are written atomically. The commands import
:mod:`fairsched.commands.common`, never this module, so there is no import cycle.
"""

from __future__ import annotations

from typing import Annotated

import typer

from fairsched.commands.analyze import analyze
from fairsched.commands.calibrate import calibrate
from fairsched.commands.check import check
from fairsched.commands.common import (  # re-exported for callers of the old location
    EXIT_USAGE,
    UserError,
    check_quanta,
    console,
    err_console,
    fail,
    resolve_hardware,
    resolve_run,
    resolve_workload,
    scheduler_combos,
    user_errors,
)
from fairsched.commands.detect import detect
from fairsched.commands.reproduce import reproduce
from fairsched.commands.sweep import sweep

__all__ = ["EXIT_USAGE", "UserError", "app", "check_quanta", "console", "err_console", "fail", "resolve_hardware",
           "resolve_run", "resolve_workload", "scheduler_combos", "user_errors"]

def _flags_as_flags() -> None:
    """typer 0.2x's rich help prints ``<bool>`` after every flag (``--quick <bool>``, ``--help
    <bool>``), as if it took a value: show flags bare (tests/test_cli_hostile.py checks)."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_fairsched", False):
        return

    def display_type_rich(self, ctx):
        return None if getattr(self, "is_flag", False) and self.metavar is None else shown(self, ctx)

    display_type_rich._fairsched = True
    TyperOption.display_type_rich = display_type_rich


_flags_as_flags()

app = typer.Typer(
    name="fairsched",
    help="Fairness bounds and failure conditions of LLM serving schedulers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        from fairsched import __version__

        typer.echo(f"fairsched {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False) -> None:
    """Fairness bounds and failure conditions of LLM serving schedulers."""


app.command("analyze")(analyze)
app.command("calibrate")(calibrate)
app.command("check")(check)
app.command("detect")(detect)
app.command("reproduce")(reproduce)
app.command("sweep")(sweep)


if __name__ == "__main__":  # pragma: no cover
    app()
