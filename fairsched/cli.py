"""The ``fairsched`` command line (typer).

Commands:

- ``fairsched analyze``: the main job. Simulates a workload (the built-in default or a
  trace) under several scheduler combinations and writes ``summary.json`` and
  ``report.html``.
- ``fairsched calibrate``: fits the simulator's cost model on the torch toy engine.

Structure for later commands (``check``, ``detect``, ``reproduce``): one function per
command decorated with ``@app.command()``, heavy imports inside the function, user errors
raised as :class:`UserError` (or ``ValueError`` / ``OSError`` inside a
``with user_errors():`` block), which print one red ``error:`` line and exit with code 2.
Files are written with :func:`atomic_write_text` (temp file, then rename).
Shared option parsing lives in the helpers below (:func:`resolve_run`, which calls
:func:`resolve_workload` and :func:`resolve_hardware`; :func:`check_quanta`), used by
``analyze`` here and by ``check`` / ``detect`` in :mod:`fairsched.commands.check_detect`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fairsched.analysis.report import atomic_write_text
from fairsched.commands import options as opt
from fairsched.commands.check_detect import register as _register_check_detect
from fairsched.commands.reproduce import reproduce as _reproduce_cmd

app = typer.Typer(
    name="fairsched",
    help="Fairness bounds and failure conditions of LLM serving schedulers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

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


@app.callback()
def _main() -> None:
    """Fairness bounds and failure conditions of LLM serving schedulers."""


# ============================================================================ helpers
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


def resolve_workload(trace: Path | None, fmt: str | None, limit: int | None, seed: int):
    """The workload of ``--trace/--format/--limit/--seed`` (default workload if no trace).

    Raises:
        UserError: unknown format, bad limit; TraceError (a ValueError) from the loader.
    """
    from fairsched.workload import FORMATS, default_workload, load_trace

    if limit is not None and limit < 1:
        raise UserError(f"--limit must be >= 1, got {limit}")
    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}; choose from {', '.join(FORMATS)}")
    if trace is None:
        if fmt is not None:
            raise UserError("--format needs --trace")
        w = default_workload(seed)
        return w.head(limit) if limit is not None else w
    return load_trace(trace, fmt, **({"limit": limit} if limit is not None else {}))


def resolve_hardware(cost_model: Path | None, profile: str | None, trace_format: str | None,
                     max_batch_size: int | None, token_budget: int | None, kv_capacity: int | None):
    """``(CostModel, InstanceConfig)`` of ``--profile`` (default: the VTC paper's A10G for
    the VTC trace, else the A100 profile; ``fairsched.sim.profiles``), with ``--cost-model
    FILE`` replacing the cost model and ``--max-batch-size/--token-budget/--kv-capacity``
    replacing instance resources.

    Raises:
        UserError: unknown profile; ValueError (naming the file and field) from a bad
        cost-model file.
    """
    from fairsched.sim import CostModel
    from fairsched.sim.profiles import PROFILES, default_profile, hardware_profile

    name = profile or default_profile(trace_format)
    if name not in PROFILES:
        raise UserError(f"unknown --profile {name!r}; choose from {', '.join(PROFILES)}")
    over = {k: v for k, v in (("max_batch_size", max_batch_size), ("token_budget", token_budget),
                              ("kv_capacity_tokens", kv_capacity)) if v is not None}
    cost, inst = hardware_profile(name, **over)
    if cost_model is not None:
        cost = CostModel.load(cost_model)  # ValueError names the file and the field
    return cost, inst


def resolve_run(trace: Path | None, fmt: str | None, limit: int | None, seed: int, cost_model: Path | None,
                profile: str | None, max_batch_size: int | None, token_budget: int | None,
                kv_capacity: int | None):
    """``(workload, format, CostModel, InstanceConfig)`` of the options every simulating
    command shares: :func:`resolve_workload`, then :func:`resolve_hardware` for the trace's
    format (given or sniffed from its first line; ``None`` for the built-in workload).

    Raises:
        UserError: as those two, or when the workload has no requests.
    """
    from fairsched.workload import sniff_format

    workload = resolve_workload(trace, fmt, limit, seed)
    fmt = fmt or (sniff_format(trace) if trace is not None else None)
    cost, inst = resolve_hardware(cost_model, profile, fmt, max_batch_size, token_budget, kv_capacity)
    if not len(workload):
        raise UserError("the workload has no requests")
    return workload, fmt, cost, inst


def check_quanta(quantum: float | None, quantum_w: float | None) -> None:
    """Validate ``--quantum`` / ``--quantum-w`` (positive when given).

    Raises:
        UserError: naming the option.
    """
    if quantum is not None and not quantum > 0:
        raise UserError(f"--quantum must be > 0, got {quantum}")
    if quantum_w is not None and not quantum_w > 0:
        raise UserError(f"--quantum-w must be > 0, got {quantum_w}")


def scheduler_combos(instances: int, routers: list[str] | None, policies: list[str] | None) -> list[tuple[str, str]]:
    """``(router, policy)`` pairs to run (router ``"none"`` for one instance).

    One instance: the policies (default fcfs, lpm, vtc, dlpm); ``--router`` is an error.
    N > 1: the cross product of routers (default rr, vllm-v1, linear, lmetric, d2lpm) and
    policies (default fcfs); ``d2lpm`` is always paired with ``dlpm``; duplicates dropped.
    Raises:
        UserError: unknown names, or routers with one instance.
    """
    from fairsched.policies import POLICY_NAMES, ROUTER_NAMES

    for p in policies or ():
        if p not in POLICY_NAMES:
            raise UserError(f"unknown policy {p!r}; choose from {', '.join(POLICY_NAMES)}")
    for r in routers or ():
        if r not in ROUTER_NAMES:
            raise UserError(f"unknown router {r!r}; choose from {', '.join(ROUTER_NAMES)}")
    if instances < 1:
        raise UserError(f"--instances must be >= 1, got {instances}")
    if instances == 1:
        if routers:
            raise UserError("--router needs --instances > 1 (one instance has nothing to route)")
        combos = [("none", p) for p in (policies or SINGLE_INSTANCE_POLICIES)]
    else:
        combos = [(r, "dlpm" if r == "d2lpm" else p)
                  for r in (routers or CLUSTER_ROUTERS) for p in (policies or [CLUSTER_POLICY])]
    return list(dict.fromkeys(combos))


def _table(summaries: list[dict], title: str) -> Table:
    """The comparison table printed by ``analyze`` (one row per run)."""
    def f(v, spec):
        return "n/a" if v is None else format(v, spec)

    show_router = any(s["router"] != "none" for s in summaries)
    t = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    cols = (["router"] if show_router else []) + [
        "policy", "finished", "TTFT\nmean s", "TTFT\np50 s", "TTFT\np99 s", "TPOT\np50 s", "thruput\ntok/s",
        "hit\nrate", "max\ngap", "gap\n/U", "Jain", "sim\ns"]
    for name in cols:
        t.add_column(name, justify="left" if name in ("router", "policy") else "right", no_wrap=True)
    for s in summaries:
        t.add_row(*([s["router"]] if show_router else []), s["policy"], f"{s['n_finished']}/{s['n_requests']}",
                  f(s["ttft_mean_s"], ".3f"), f(s["ttft_p50_s"], ".3f"), f(s["ttft_p99_s"], ".3f"),
                  f(s["tpot_p50_s"], ".4f"), f(s["throughput_tok_s"], ",.0f"), f(s["cache_hit_rate"], ".1%"),
                  f(s["max_service_gap"], ",.0f"), f(s.get("gap_over_U"), ".2f"), f(s["jain_index"], ".3f"),
                  f(s.get("sim_wall_s"), ".1f"))
    return t


# ============================================================================ analyze
@app.command()
def analyze(
    trace: opt.Trace = None,
    format: opt.Format = None,
    instances: Annotated[int, typer.Option(help="Number of serving instances.")] = 1,
    router: Annotated[list[str] | None, typer.Option(
        help="Router (repeatable): rr, least-load, vllm-v1, sglang-cache-aware, linear, lmetric, d2lpm.")] = None,
    policy: Annotated[list[str] | None, typer.Option(
        help="Queue policy (repeatable): fcfs, lpm, vtc, lcf, dlpm.")] = None,
    cost_model: opt.CostModelFile = None,
    profile: opt.Profile = None,
    out: opt.out_dir("summary.json, report.html") = Path("fairsched-out"),
    limit: opt.Limit = None,
    quantum: opt.Quantum = None,
    quantum_w: opt.QuantumW = None,
    lam: Annotated[float | None, typer.Option(help="Linear router weight of the KV-miss term, in [0, 1].")] = None,
    max_batch_size: opt.MaxBatchSize = None,
    token_budget: opt.TokenBudget = None,
    kv_capacity: opt.KVCapacity = None,
    seed: opt.Seed = 0,
) -> None:
    """Compare schedulers on a workload: fairness, cache locality, latency.

    Writes OUT/summary.json and OUT/report.html.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fairsched.analysis import summarize
    from fairsched.analysis.report import write_report
    from fairsched.policies import ServiceWeights, default_quantum, make_policy_factory, make_router
    from fairsched.sim import Simulator

    # ---- validate everything before simulating anything
    with user_errors():
        check_quanta(quantum, quantum_w)
        if lam is not None and not 0 <= lam <= 1:
            raise UserError(f"--lam must be in [0, 1], got {lam}")
        combos = scheduler_combos(instances, router, policy)
        workload, _, cost, inst = resolve_run(trace, format, limit, seed, cost_model, profile, max_batch_size,
                                           token_budget, kv_capacity)
    weights = ServiceWeights()
    quantum = quantum if quantum is not None else default_quantum(workload, weights)
    quantum_w = quantum_w if quantum_w is not None else default_quantum(workload, weights)
    sims = []
    with user_errors():
        for r_name, p_name in combos:
            pf = make_policy_factory(p_name, weights, **({"quantum": quantum} if p_name == "dlpm" else {}))
            rparams = {}
            if r_name == "linear" and lam is not None:
                rparams["lam"] = lam
            if r_name == "d2lpm":
                rparams["quantum_w"] = quantum_w
            rt = make_router(r_name, weights, **rparams) if r_name != "none" else None
            sims.append(Simulator(workload, pf, rt, instances, inst, cost, weights))
    with user_errors(f"cannot write to {out}: "):
        if out.exists() and not out.is_dir():
            raise UserError("it exists and is not a directory")
        out.mkdir(parents=True, exist_ok=True)
        probe = atomic_write_text(out / ".fairsched-write-test", "")
        probe.unlink()

    n_clients = len(workload.clients)
    console.print(f"[bold]workload[/bold] {escape(workload.name)}: {len(workload):,} requests, {n_clients} clients, "
                  f"{workload.duration:.0f} s ({escape(str(workload.source or 'generated'))}); "
                  f"{instances} instance(s), cost model {escape(cost.name)}, KV {inst.kv_capacity_tokens:,} tokens; "
                  f"{len(combos)} scheduler combination(s); Q^u {quantum:,.0f}, Q^w {quantum_w:,.0f}")

    # ---- run
    results, summaries = [], []
    t_all = time.perf_counter()
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err_console, transient=False) as prog:
            runs = prog.add_task("runs", total=len(combos))
            for (r_name, p_name), sim in zip(combos, sims, strict=True):
                label = p_name if r_name == "none" else f"{r_name}/{p_name}"
                arr = prog.add_task(f"  {label}: arrivals", total=len(workload))
                t0 = time.perf_counter()
                res = sim.run(progress=lambda k, arr=arr: prog.update(arr, completed=k))
                wall = time.perf_counter() - t0
                s = summarize(res, label=label, weights=weights)
                s["router"], s["policy"] = r_name, p_name
                s["sim_wall_s"] = round(wall, 3)
                results.append(res)
                summaries.append(s)
                prog.update(arr, visible=False)
                prog.advance(runs)
    except KeyboardInterrupt:
        fail("interrupted; nothing written", code=130)
    elapsed = time.perf_counter() - t_all

    console.print(_table(summaries, f"{workload.name}: {instances} instance(s)"))

    # ---- write (each file atomically; the report first, the summary last)
    doc = {
        "workload": {"name": workload.name, "source": str(workload.source), "n_requests": len(workload),
                     "n_clients": n_clients, "duration_s": workload.duration, "block_size": workload.block_size,
                     "max_cost_U": workload.max_cost(weights.w_p, weights.w_q)},
        "config": {"instances": instances, "combos": [list(c) for c in combos],
                   "routers": router or None, "policies": policy or None,
                   "trace": str(trace) if trace else None, "format": format, "limit": limit, "seed": seed,
                   "quantum": quantum, "quantum_w": quantum_w, "lam": lam,
                   "instance": asdict(inst), "cost_model": asdict(cost),
                   "weights": {"w_p": weights.w_p, "w_q": weights.w_q}},
        "runs": summaries,
    }
    with user_errors(f"cannot write to {out}: "):
        text = json.dumps(doc, indent=2, allow_nan=False)
        intro = (f"workload {workload.name}: {len(workload):,} requests from {n_clients} clients over "
                 f"{workload.duration:.0f} s ({workload.source or 'generated'}); {instances} instance(s); "
                 f"cost model {cost.name}; service weights w_p={weights.w_p:g}, w_q={weights.w_q:g}.")
        report = write_report(results, summaries, out, title=f"fairsched analyze: {workload.name}", intro=intro)
        summary = atomic_write_text(out / "summary.json", text)
    console.print(f"wrote {escape(str(summary))} and {escape(str(report))} ({elapsed:.1f} s of simulation)")


# ============================================================================ calibrate
@app.command()
def calibrate(
    out: Annotated[Path, typer.Option(help="Where to write the cost-model JSON.")] = Path("cost.json"),
    preset: Annotated[str, typer.Option(help="Toy-engine model preset.")] = "cpu-small",
    quick: Annotated[bool, typer.Option(help="Fewer measurements (a smoke run).")] = False,
) -> None:
    """Fit the simulator's cost model on the torch toy engine; write it to OUT."""
    try:
        from fairsched.engine.calibrate import run_calibration
    except ImportError as e:
        fail(f"calibration is not available in this install ({e})", code=1)
    with user_errors():
        res = run_calibration(out=out, preset=preset, quick=quick)
    doc: dict = {}
    if out.is_file():
        with contextlib.suppress(ValueError, OSError):
            doc = json.loads(out.read_text())
    if isinstance(res, dict):
        doc = {**res, **doc}
    elif res is not None and hasattr(res, "__dataclass_fields__"):
        doc.setdefault("coefficients", {k: v for k, v in asdict(res).items() if k != "name"})
    coef = doc.get("coefficients") or {}
    units = doc.get("units") or {}
    t = Table(title=f"cost model {doc.get('name', preset)} -> {out}", header_style="bold")
    t.add_column("coefficient")
    t.add_column("value", justify="right")
    t.add_column("unit")
    for k, v in coef.items():
        t.add_row(k, f"{v:.4g}" if isinstance(v, int | float) else str(v), str(units.get(k, "")))
    console.print(t)
    for key, label, spec in (("r2", "R²", ".4f"), ("residual_rel_p90", "p90 relative residual", ".1%")):
        v = doc.get(key)
        if isinstance(v, dict):
            console.print(f"{label}: " + ", ".join(f"{k} {x:{spec}}" if isinstance(x, int | float) else f"{k} {x}"
                                                   for k, x in v.items()))
        elif isinstance(v, int | float):
            console.print(f"{label}: {v:{spec}}")
    if isinstance(doc.get("seconds"), int | float):
        console.print(f"calibration took {doc['seconds']:.1f} s")


# ============================================================================ later commands
# `check`, `detect` and `reproduce` (other issues) go here, one @app.command() each,
# following the pattern above: validate inside `with user_errors():`, import heavy
# modules inside the function, write files with atomic_write_text.


app.command("reproduce")(_reproduce_cmd)  # fairsched/commands/reproduce.py
_register_check_detect(app)  # check, detect: fairsched/commands/check_detect.py


if __name__ == "__main__":  # pragma: no cover
    app()
