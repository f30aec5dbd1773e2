"""``fairsched reproduce``: run the source papers' headline comparisons and say which hold.

Registered on the app in :mod:`fairsched.cli`. The claims, their setups and the verdict
rule live in :mod:`fairsched.reproduce`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from fairsched.commands import options as opt
from fairsched.commands.common import UserError, console, err_console, fail, user_errors
from fairsched.commands.limits import open_out


def reproduce(
    claims: Annotated[list[str] | None, typer.Argument(
        help="Claims to run, by id or number (default: all). See --list.", show_default=False)] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Smaller workloads and sweeps: each claim in under a "
                                        "minute.")] = False,
    out: opt.out_dir("reproduce.json, reproduce.csv, reproduce.html", "fairsched-out/reproduce-all "
                     "(or -<claims>)") = None,
    force: opt.Force = False,
    cost_model: Annotated[Path | None, typer.Option(
        help="Cost-model JSON (from `fairsched calibrate`) used by every claim instead of its default hardware "
             "profile.")] = None,
    list_claims: Annotated[bool, typer.Option("--list", help="List the claims and exit.")] = False,
    workers: Annotated[int | None, typer.Option(help="Local worker processes the claims' simulations run on "
                                                "(default: CPU count; 1: in this process); with --ray and no "
                                                "address, the CPUs of the local Ray cluster.")] = None,
    ray: Annotated[bool, typer.Option("--ray", help="Run the simulations on Ray (pip install -e '.\\[cluster]'): a "
                                      "local cluster, or the one at --ray-address.")] = False,
    ray_address: Annotated[str | None, typer.Option(help="Address of a running Ray cluster (implies --ray).")] = None,
) -> None:
    """Reproduce the source papers' headline comparisons (DLPM, D²LPM, VTC, LMetric).

    Prints a table (claim, paper's figure, our figure, setup, verdict) and writes
    OUT/reproduce.json and OUT/reproduce.html (one figure a claim). Verdicts: reproduced
    (within 25% of the paper's number, same direction), same direction, not reproduced.
    Each claim's simulations run as a grid on the sweep executor (a local process pool by
    default, Ray with --ray); the numbers do not depend on where they ran.
    """
    import os

    from rich.markup import escape
    from rich.table import Table

    from fairsched.reproduce import (
        REGISTRY,
        entries,
        get_claims,
        missing_data,
        run_claim,
        table,
        write_outputs,
    )
    from fairsched.reproduce.jobs import using
    from fairsched.sweep import GridRunner

    if list_claims:
        t = Table(title="claims", header_style="bold")
        for col in ("#", "id", "title", "paper's figure"):
            t.add_column(col)
        for c in REGISTRY.values():
            t.add_row(str(c.number), c.id, escape(c.title), escape(c.paper_figure))
        console.print(t)
        return
    # ---- validate everything before running anything
    try:
        chosen = get_claims(claims)
    except KeyError as e:
        fail(str(e.args[0]))
    cost = None
    with user_errors():
        if cost_model is not None:
            from fairsched.sim import CostModel

            cost = CostModel.load(cost_model)  # ValueError names the file and the field
        missing = missing_data(chosen)
        if missing:
            raise UserError(f"trace file(s) {', '.join(missing)} not found; set FAIRSCHED_SHARED_DATA to the "
                            "directory that holds them, or leave out the claims that need them")
        if workers is not None and workers < 1:
            raise UserError(f"--workers must be >= 1, got {workers}")
        use_ray = ray or ray_address is not None
        if use_ray:
            try:
                import ray as _ray  # noqa: F401
            except ImportError:
                raise UserError('--ray needs Ray: pip install -e ".[cluster]"') from None
        n_workers = workers or os.cpu_count() or 1
        od = open_out(out, "reproduce", force, suffix="-".join(c.id for c in chosen) if claims else "all")

    mode = "quick" if quick else "full"
    where = (f"Ray at {ray_address}" if ray_address else f"a local Ray cluster ({n_workers} CPUs)" if use_ray
             else f"{n_workers} local process(es)")
    console.print(f"[bold]reproduce[/bold]: {len(chosen)} claim(s), {mode} mode, "
                  f"cost model {escape(cost.name) if cost is not None else 'of each claim (documented defaults)'}; "
                  f"simulations on {where}")
    outcomes = []
    t_all = time.perf_counter()
    runner = GridRunner(n_workers, use_ray=use_ray, ray_address=ray_address)
    with user_errors(), od:  # all or nothing: claims and outputs write into the staging directory
        try:
            with runner, using(runner):
                for k, c in enumerate(chosen, 1):
                    err_console.print(f"[{k}/{len(chosen)}] {c.id}: {escape(c.title)}")
                    o = run_claim(c, quick=quick, cost=cost, out=od.staging)
                    outcomes.append(o)
                    err_console.print(f"[{k}/{len(chosen)}] {c.id}: {o.verdict} ({o.elapsed_s:.1f} s)")
        except KeyboardInterrupt:
            fail("interrupted; nothing written", code=130)
        elapsed = time.perf_counter() - t_all
        console.print(table(outcomes, title=f"fairsched reproduce ({mode})"))
        write_outputs(outcomes, od.staging)
        od.write_csv("reproduce.csv", entries(outcomes))
        doc, page = od.path / "reproduce.json", od.path / "reproduce.html"
    console.print(f"wrote {escape(str(doc))} and {escape(str(page))} ({elapsed:.1f} s)")
