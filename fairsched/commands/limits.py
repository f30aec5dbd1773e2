"""What the CLI accepts, checked before anything is loaded, built or simulated, and where
it writes.

- Option ranges (:data:`LIMITS`, :func:`check_range`, :func:`check_options`): every bound
  is stated here and named by its option in the error (``--max-batch-size``, never an
  internal field).
- :func:`check_windows`: ``detect --window`` may not cut the trace into more than
  :data:`MAX_WINDOWS` windows.
- :func:`require_finished`: a run that leaves requests unfinished is an error, never a
  silent verdict.
- :func:`trace_warnings`: :class:`~fairsched.workload.TraceWarning` (implausible timestamp
  units) printed as one yellow ``warning:`` line each.
- Output directories: :func:`default_out` (``fairsched-out/<command>-<trace>``) and
  :func:`open_out` (all-or-nothing writing through :class:`fairsched.output.OutputDir`,
  refusing another command's directory without ``--force``).
"""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

err_console = Console(stderr=True)


class UserError(ValueError):
    """An option or output directory the CLI refuses (``user_errors`` in
    :mod:`fairsched.commands.common` prints it as one ``error:`` line, exit code 2). This
    module imports nothing from the commands, so ``common`` can import it."""


__all__ = ["LIMITS", "UserError", "MAX_INSTANCES", "MAX_WINDOWS", "OUT_ROOT", "check_options", "check_range",
           "check_windows", "default_out", "open_out", "require_finished", "trace_warnings"]

MAX_INSTANCES = 4096
"""Most ``--instances``: every scheduler combination builds its instances before the first
run, about 2.3 KB each (issue 13: 10^6 instances took 11.6 GB before failing)."""
MAX_WINDOWS = 100_000
"""Most phase-1 windows ``detect`` closes (trace duration / ``--window``)."""
OUT_ROOT = Path("fairsched-out")
"""Parent of the default output directories."""

LIMITS: dict[str, tuple[float, float]] = {
    "--instances": (1, MAX_INSTANCES),
    "--quantum": (1e-3, 1e12),
    "--quantum-w": (1e-3, 1e12),
    "--lam": (0.0, 1.0),
    "--max-batch-size": (1, 1_000_000),
    "--token-budget": (1, 100_000_000),
    "--kv-capacity": (1, 10**12),
    "--limit": (1, 10**9),
    "--seed": (0, 2**32 - 1),
    "--window": (1e-3, 1e9),
    "--top-k": (1, 10_000),
    "--min-class-requests": (1, 10**9),
}
"""Accepted range ``[low, high]`` of each numeric option (service units for the quanta,
tokens, seconds for ``--window``). The quanta: a quantum below 1e-3 service units makes a
deficit-round-robin round count overflow (``--quantum 1e-320``), one above 1e12 exceeds
any workload's service by orders of magnitude."""


def check_range(option: str, value) -> None:
    """Raise :class:`UserError` unless ``value`` is None or a finite number in
    ``LIMITS[option]`` (the message names ``option`` and the range)."""
    if value is None:
        return
    lo, hi = LIMITS[option]
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{option} must be a finite number in [{_num(lo)}, {_num(hi)}], got {value}")
    if not lo <= value <= hi:
        raise UserError(f"{option} must be in [{_num(lo)}, {_num(hi)}], got {_num(value)}")


def _num(x) -> str:
    """``1,000,000`` for whole numbers below 1e15, else ``%g`` (``1e-320`` stays readable)."""
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def check_options(**values) -> None:
    """:func:`check_range` for each ``name=value`` (``max_batch_size`` is ``--max-batch-size``)."""
    for name, value in values.items():
        check_range("--" + name.replace("_", "-"), value)


def check_windows(window: float, duration_s: float) -> None:
    """Raise :class:`UserError` if ``duration_s / window`` exceeds :data:`MAX_WINDOWS`."""
    check_range("--window", window)
    n = duration_s / window
    if n > MAX_WINDOWS:
        raise UserError(f"--window {window:g} s cuts the {duration_s:,.0f} s trace into {n:,.0f} windows; at most "
                        f"{MAX_WINDOWS:,} are allowed (use --window >= {duration_s / MAX_WINDOWS:.3g})")


def require_finished(res, label: str) -> None:
    """Raise :class:`UserError` when run ``label`` left requests unfinished (nothing is
    written and no verdict printed): simulated time stopped advancing or the cost model
    or instance cannot serve the workload."""
    n, done = len(res.workload), int(res.n_finished)
    if done < n:
        raise UserError(f"run {label}: {n - done:,} of {n:,} requests never finished, so no result is "
                        "reported; check --cost-model / --profile and the instance options "
                        "(--max-batch-size, --token-budget, --kv-capacity)")


@contextlib.contextmanager
def trace_warnings() -> Iterator[None]:
    """Print each :class:`~fairsched.workload.TraceWarning` raised inside as one yellow line."""
    from rich.markup import escape

    from fairsched.workload import TraceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TraceWarning)
        try:
            yield
        finally:
            for w in caught:
                if issubclass(w.category, TraceWarning):
                    err_console.print(f"[bold yellow]warning:[/bold yellow] [yellow]{escape(str(w.message))}[/yellow]",
                                      soft_wrap=True)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def default_out(command: str, trace: Path | None = None, suffix: str | None = None) -> Path:
    """``fairsched-out/<command>-<trace stem>`` (``default`` for the built-in workload), or
    ``fairsched-out/<command>-<suffix>`` when the command has no trace (characters other
    than letters, digits, ``.``, ``_`` and ``-`` become ``_``)."""
    tail = Path(trace).stem if trace is not None else (suffix if suffix is not None else "default")
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", tail).strip("._") or "trace"
    return OUT_ROOT / f"{command}-{tail}"


def open_out(out: Path | None, command: str, force: bool, trace: Path | None = None,
             suffix: str | None = None):
    """The :class:`~fairsched.output.OutputDir` of ``--out`` (default :func:`default_out`),
    checked now, before anything is computed.

    Raises:
        UserError: ``--out`` is a file, holds another command's results or files fairsched
            did not write (without ``--force``).
    """
    from fairsched.output import OutputDir, OutputError

    od = OutputDir(out if out is not None else default_out(command, trace, suffix), command, force)
    try:
        od.check()
    except OutputError as e:
        raise UserError(str(e)) from None
    return od
