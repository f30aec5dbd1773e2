"""Helpers every ``fairsched`` command shares: user-error reporting (:class:`UserError`,
:func:`fail`, :func:`user_errors`), the consoles, option resolution (:func:`resolve_run`,
which calls :func:`resolve_workload` and :func:`resolve_hardware`; :func:`check_quanta`,
:func:`scheduler_combos`), and number formatting (output directories: :mod:`fairsched.commands.limits`).

Commands (:mod:`fairsched.commands.analyze`, ``.check``, ``.detect`` ...) import this
module; :mod:`fairsched.cli` imports the commands. Nothing here imports :mod:`fairsched.cli`,
so there is no import cycle.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:
    console.width = 140  # piped or captured output: do not squeeze the table into 80 columns
err_console = Console(stderr=True)

EXIT_USAGE = 2
"""Exit code for bad input (missing file, bad format, unknown name, bad option value)."""

SINGLE_INSTANCE_POLICIES = ("fcfs", "lpm", "vtc", "dlpm")
"""Default comparison set for ``--instances 1``."""
CLUSTER_ROUTERS = ("rr", "vllm-v1", "linear", "lmetric", "d2lpm")
"""Default routers for ``--instances N > 1`` (local policy ``fcfs``; ``d2lpm`` with ``dlpm``)."""
CLUSTER_POLICY = "fcfs"


class UserError(Exception):
    """A problem with the user's input: reported as one red line, exit code 2."""


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` in red on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/bold red] [red]{escape(message)}[/red]", soft_wrap=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def user_errors(context: str = "") -> Iterator[None]:
    """Turn ``UserError``, ``ValueError`` (incl. ``TraceError``) and ``OSError`` raised inside into
    :func:`fail` (``context`` is prefixed to the message)."""
    try:
        yield
    except (UserError, ValueError, OSError) as e:
        msg = str(e)
        if isinstance(e, OSError) and e.filename and str(e.filename) not in msg:
            msg = f"{e.filename}: {msg}"
        fail(f"{context}{msg}" if context else msg)


def resolve_workload(trace: Path | None, fmt: str | None, limit: int | None, seed: int,
                     kv_capacity_tokens: int | None = None):
    """The workload of ``--trace/--format/--limit/--seed`` (default workload if no trace);
    with ``kv_capacity_tokens``, a request no instance could hold is an error naming its
    trace line (or, for the built-in workload, the request and ``--kv-capacity``).
    Trace warnings (implausible timestamp units) are printed as ``warning:`` lines.

    Raises:
        UserError: unknown format, option out of range; TraceError (a ValueError) from the loader.
    """
    from fairsched.commands.limits import check_options, trace_warnings
    from fairsched.workload import FORMATS, default_workload, load_trace

    check_options(limit=limit, seed=seed)
    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}; choose from {', '.join(FORMATS)}")
    if trace is None:
        if fmt is not None:
            raise UserError("--format needs --trace")
        w = default_workload(seed)
        w = w.head(limit) if limit is not None else w
        for r in w if kv_capacity_tokens is not None else ():
            need = len(r.prompt) * w.block_size + r.output_len
            if need > kv_capacity_tokens:
                raise UserError(f"request {r.rid} of the built-in workload needs {need:,} KV tokens, more than "
                                f"--kv-capacity {kv_capacity_tokens:,}")
        return w
    opts = {"limit": limit} if limit is not None else {}
    if kv_capacity_tokens is not None:
        opts["kv_capacity_tokens"] = kv_capacity_tokens
    with trace_warnings():
        return load_trace(trace, fmt, **opts)


def resolve_hardware(cost_model: Path | None, profile: str | None, trace_format: str | None,
                     max_batch_size: int | None, token_budget: int | None, kv_capacity: int | None,
                     admission: str = "reserve"):
    """``(CostModel, InstanceConfig)`` of ``--profile`` (default: the VTC paper's A10G for
    the VTC trace, else the A100 profile; ``fairsched.sim.profiles``), with ``--cost-model
    FILE`` replacing the cost model, ``--max-batch-size/--token-budget/--kv-capacity``
    replacing instance resources and ``--admission`` the KV admission rule.

    Raises:
        UserError: unknown profile; ValueError (naming the file and field) from a bad
        cost-model file.
    """
    from fairsched.commands.limits import check_options
    from fairsched.sim import CostModel
    from fairsched.sim.admission import ADMISSION_RULES
    from fairsched.sim.profiles import PROFILES, default_profile, hardware_profile

    check_options(max_batch_size=max_batch_size, token_budget=token_budget, kv_capacity=kv_capacity)
    name = profile or default_profile(trace_format)
    if name not in PROFILES:
        raise UserError(f"unknown --profile {name!r}; choose from {', '.join(PROFILES)}")
    if admission not in ADMISSION_RULES:
        raise UserError(f"unknown --admission {admission!r}; choose from {', '.join(ADMISSION_RULES)}")
    over = {k: v for k, v in (("max_batch_size", max_batch_size), ("token_budget", token_budget),
                              ("kv_capacity_tokens", kv_capacity), ("admission", admission)) if v is not None}
    cost, inst = hardware_profile(name, **over)
    if cost_model is not None:
        cost = CostModel.load(cost_model)  # ValueError names the file and the field
    return cost, inst


def resolve_run(trace: Path | None, fmt: str | None, limit: int | None, seed: int, cost_model: Path | None,
                profile: str | None, max_batch_size: int | None, token_budget: int | None,
                kv_capacity: int | None, admission: str = "reserve"):
    """``(workload, format, CostModel, InstanceConfig)`` of the options every simulating
    command shares: :func:`resolve_workload`, then :func:`resolve_hardware` for the trace's
    format (given or sniffed from its first line; ``None`` for the built-in workload).

    The hardware comes first, so that the loader rejects a request larger than an
    instance's KV capacity at its line, before building the workload.

    Raises:
        UserError: as those two, or when the workload has no requests.
    """
    from fairsched.workload import FORMATS, sniff_format

    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}; choose from {', '.join(FORMATS)}")
    sniffed = fmt or (sniff_format(trace) if trace is not None else None)
    cost, inst = resolve_hardware(cost_model, profile, sniffed, max_batch_size, token_budget, kv_capacity, admission)
    workload = resolve_workload(trace, fmt, limit, seed, inst.kv_capacity_tokens)
    fmt = sniffed
    if not len(workload):
        raise UserError("the workload has no requests")
    return workload, fmt, cost, inst


def check_d2lpm_charge(charge: str) -> None:
    """Exit with a clear message (naming ``--d2lpm-charge``) on an unknown D2LPM routing charge."""
    from .options import D2LPM_CHARGES

    if charge not in D2LPM_CHARGES:
        fail(f"--d2lpm-charge must be one of {', '.join(D2LPM_CHARGES)}, got {charge!r}")


def check_quanta(quantum: float | None, quantum_w: float | None) -> None:
    """Validate ``--quantum`` / ``--quantum-w`` (finite, in the range of
    ``fairsched.commands.limits.LIMITS``, when given).

    Raises:
        UserError: naming the option.
    """
    from fairsched.commands.limits import check_options

    check_options(quantum=quantum, quantum_w=quantum_w)


def scheduler_combos(instances: int, routers: list[str] | None, policies: list[str] | None) -> list[tuple[str, str]]:
    """``(router, policy)`` pairs to run (router ``"none"`` for one instance).

    One instance: the policies (default fcfs, lpm, vtc, dlpm); ``--router`` is an error.
    N > 1: the cross product of routers (default rr, vllm-v1, linear, lmetric, d2lpm) and
    policies (default fcfs); ``d2lpm`` is always paired with ``dlpm`` (or ``dlpm-global``, its
    shared-deficit variant, if asked for); duplicates dropped.
    Raises:
        UserError: unknown names, or routers with one instance.
    """
    from fairsched.policies import POLICY_NAMES, ROUTER_NAMES

    for p in policies or ():
        if p not in POLICY_NAMES:
            raise UserError(f"unknown --policy {p!r}; choose from {', '.join(POLICY_NAMES)}")
    for r in routers or ():
        if r not in ROUTER_NAMES:
            raise UserError(f"unknown --router {r!r}; choose from {', '.join(ROUTER_NAMES)}")
    from fairsched.commands.limits import check_options

    check_options(instances=instances)
    if instances == 1:
        if routers:
            raise UserError("--router needs --instances > 1 (one instance has nothing to route)")
        combos = [("none", p) for p in (policies or SINGLE_INSTANCE_POLICIES)]
    else:
        combos = [(r, "dlpm" if r == "d2lpm" and p != "dlpm-global" else p)
                  for r in (routers or CLUSTER_ROUTERS) for p in (policies or [CLUSTER_POLICY])]
    return list(dict.fromkeys(combos))


def progress_bar():
    """The commands' progress display on stderr (description, bar, done/total, elapsed, ETA):
    a :class:`rich.progress.Progress` to use as a context manager."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=err_console, transient=False)


@contextlib.contextmanager
def working(description: str) -> Iterator[None]:
    """A spinner with the elapsed time on stderr while a step with no countable progress runs."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console,
                  transient=False) as prog:
        prog.add_task(description, total=None)
        yield


def warn(message: str) -> None:
    """Print ``warning: message`` in yellow on stderr."""
    err_console.print(f"[bold yellow]warning:[/bold yellow] {escape(message)}", soft_wrap=True)


OVERLOAD_RHO = 1.1
"""Utilisation (proved lower bound on the busy time / (instances x arrival span)) from which
the commands warn: the instances then still hold at least 10% of the span in queued work
at the last arrival (``proofs/overload_bound.md``). Between 1 and this value the overload
is proved but mild (the built-in default workload: 1.05, its queue drains 14 s after the
last arrival of 90 s)."""


def overload_warning(workload, cost, instances: int, instance=None) -> str | None:
    """A warning when the workload provably needs more work than the instances can do over
    its arrival span: utilisation ``rho`` = :func:`fairsched.workload.busy_lower_bound` (a
    lower bound on the seconds of iterations, every router and policy) / (span x
    ``instances``) >= :data:`OVERLOAD_RHO`. Then at the last arrival at least
    ``(rho - 1) x span`` seconds of work per instance are still queued, so the last requests
    finish at least that long after it (what the warning says). None otherwise.

    Args:
        workload: the requests; cost: the CostModel; instances: their number;
        instance: the InstanceConfig (batch size, token budget; None: the default one).
    """
    from fairsched.workload import busy_lower_bound

    span = workload.duration
    if span <= 0:
        return None
    lb = busy_lower_bound(workload, cost, instance)
    rho = lb["busy_s"] / (span * max(instances, 1))
    if rho < OVERLOAD_RHO:
        return None
    return (f"the {instances} instance(s) are overloaded: serving this workload takes at least {rho:.1f}x its "
            f"{span:,.0f} s arrival span under cost model {cost.name} (a lower bound: every prompt token not "
            f"shared with another request is computed, decode at the full batch), so at the last arrival at least "
            f"{(rho - 1) * span:,.0f} s of work per instance is still queued and TTFT grows through the run. Fix: "
            f"more --instances (at least {int(rho * instances) + 1}), a shorter --limit, or a cost model of the "
            f"hardware the trace was recorded on (a CPU calibration from `fairsched calibrate` with a GPU "
            f"profile's KV capacity is slower than the trace assumes; use --profile alone).")


def announce_run(workload, cost, instances: int, details: str, instance=None) -> None:
    """Print the run's header (workload name, requests, clients, span, instances, cost model,
    then ``details``, already escaped rich markup) and warn when the instances are provably
    overloaded (:func:`overload_warning`; ``instance``: the InstanceConfig)."""
    console.print(f"[bold]workload[/bold] {escape(workload.name)}: {len(workload):,} requests, "
                  f"{len(workload.clients)} clients, {workload.duration:.0f} s; {instances} instance(s), "
                  f"cost model {escape(cost.name)}; {details}")
    msg = overload_warning(workload, cost, instances, instance)
    if msg:
        warn(msg)


def fmt_num(v, spec: str = ",.1f") -> str:
    """``format(v, spec)``; ``"n/a"`` for None or NaN, ``str(v)`` when the spec does not apply."""
    if v is None:
        return "n/a"
    if isinstance(v, float) and v != v:
        return "n/a"
    try:
        return format(v, spec)
    except (TypeError, ValueError):
        return str(v)


def fmt_span(w, digits: int = 2) -> str:
    """A time window ``(t0, t1)`` [s] as ``"t0-t1 s"``; ``"n/a"`` when there is none."""
    if not w:
        return "n/a"
    if w[1] - w[0] < 0.5 * 10 ** -digits:
        return f"at {w[0]:.{digits}f} s (one instant)"
    return f"{w[0]:.{digits}f}-{w[1]:.{digits}f} s"


def workload_doc(workload, weights=None, kv_capacity_tokens=None) -> dict:
    """The ``workload`` entry of a command's JSON: name, source, sizes, duration [s] and VTC's
    ``U = max(w_p L_in, w_q M)`` [service units] with M = ``kv_capacity_tokens`` (the
    instance's KV token capacity; None without it; ``weights`` default w_p = 1, w_q = 2)."""
    w_p, w_q = (weights.w_p, weights.w_q) if weights is not None else (1.0, 2.0)
    return {"name": workload.name, "source": str(workload.source), "n_requests": len(workload),
            "n_clients": len(workload.clients), "duration_s": workload.duration,
            "block_size": workload.block_size,
            "max_cost_U": (workload.max_cost(w_p, w_q, batch_tokens=kv_capacity_tokens)
                           if len(workload) and kv_capacity_tokens else None)}
