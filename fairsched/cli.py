"""The ``fairsched`` command line (typer): the app and its commands.

Commands, one module each in :mod:`fairsched.commands`:

- ``fairsched analyze``: the main job. Simulates a workload (the built-in default or a
  trace) under several scheduler combinations and writes ``summary.json`` and
  ``report.html``.
- ``fairsched check``: the fairness bounds (VTC, DLPM, D²LPM) on a workload.
- ``fairsched detect``: LMetric's KV$ hotspot on a workload.
- ``fairsched reproduce``: the source papers' headline comparisons.
- ``fairsched calibrate``: fits the simulator's cost model on the torch toy engine.

Conventions (:mod:`fairsched.commands.common`): heavy imports inside the command function,
user errors raised as :class:`UserError` (or ``ValueError`` / ``OSError`` inside a
``with user_errors():`` block) print one red ``error:`` line and exit with code 2, options
are validated before anything runs, files are written atomically. The commands import
:mod:`fairsched.commands.common`, never this module, so there is no import cycle.
"""

from __future__ import annotations

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

__all__ = ["EXIT_USAGE", "UserError", "app", "check_quanta", "console", "err_console", "fail", "resolve_hardware",
           "resolve_run", "resolve_workload", "scheduler_combos", "user_errors"]

app = typer.Typer(
    name="fairsched",
    help="Fairness bounds and failure conditions of LLM serving schedulers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _main() -> None:
    """Fairness bounds and failure conditions of LLM serving schedulers."""


app.command("analyze")(analyze)
app.command("calibrate")(calibrate)
app.command("check")(check)
app.command("detect")(detect)
app.command("reproduce")(reproduce)


if __name__ == "__main__":  # pragma: no cover
    app()
