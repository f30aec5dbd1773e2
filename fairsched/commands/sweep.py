"""``fairsched sweep``: a grid of simulations from a spec file or repeated options, run on a
local process pool (default) or on Ray (``--ray``, ``--ray-address``), into one table and a page.

The grid, its execution and its outputs live in :mod:`fairsched.sweep`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from fairsched.commands import options as opt
from fairsched.commands.common import UserError, console, fail, user_errors
from fairsched.commands.limits import open_out

__all__ = ["sweep"]

_Many = typer.Option  # a repeatable option: one grid axis


def sweep(
    spec: Annotated[Path | None, typer.Option(help="Grid spec, .toml or .yaml (keys as the options below: "
                                              "trace, routers, policies, instances, speed, seeds, ...).")] = None,
    trace: Annotated[list[Path] | None, _Many(help="Trace file (repeatable; default: the built-in workload).")] = None,
    format: Annotated[str | None, typer.Option("--format", help="Trace format: mooncake, vtc or jsonl.")] = None,
    router: Annotated[list[str] | None, _Many(help="Router (repeatable; ignored with one instance).")] = None,
    policy: Annotated[list[str] | None, _Many(help="Queue policy (repeatable).")] = None,
    instances: Annotated[list[int] | None, _Many(help="Instance count (repeatable).")] = None,
    speed: Annotated[list[float] | None, _Many(help="Replay speed / load scale, arrivals divided by it "
                                               "(repeatable).")] = None,
    quantum: Annotated[list[float] | None, _Many(help="DLPM Q^u in service units (repeatable; default U).")] = None,
    quantum_w: Annotated[list[float] | None, _Many(help="D2LPM Q^w in service units (repeatable; default U).")] = None,
    lam: Annotated[list[float] | None, _Many(help="Linear router's KV-miss weight in [0, 1] (repeatable).")] = None,
    profile: Annotated[list[str] | None, _Many(help="Hardware profile (repeatable): a100-llama3-8b, "
                                               "a10g-llama2-7b.")] = None,
    cost_model: Annotated[list[Path] | None, _Many(help="Cost-model JSON (repeatable).")] = None,
    seed: Annotated[list[int] | None, _Many(help="Seed of the built-in workload (repeatable).")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N requests of each trace.")] = None,
    workers: Annotated[int | None, typer.Option(help="Local worker processes (default: CPU count); with --ray and "
                                                "no address, the CPUs of the local Ray cluster.")] = None,
    ray: Annotated[bool, typer.Option("--ray", help="Run on Ray (the cluster extra: pip install -e '.\\[cluster]'): "
                                      "a local cluster, or the one at --ray-address.")] = False,
    ray_address: Annotated[str | None, typer.Option(help="Address of a running Ray cluster (implies --ray).")] = None,
    out: opt.out_dir("sweep.parquet, sweep.csv, sweep.html, timings.csv; .points/ keeps finished points, "
                     "so a rerun skips them") = None,
    force: opt.Force = False,
) -> None:
    """Run a grid of simulations in parallel (locally or on Ray) into one table.

    One row per point, with every configuration field and summary metric, in
    OUT/sweep.parquet and OUT/sweep.csv, plus a trade-off page OUT/sweep.html. Points
    already computed with the same configuration, trace content and package version
    are skipped; a failing point records its error and the sweep goes on.
    """
    from fairsched.sweep import SweepSpec, load_spec, run_points, write_outputs

    with user_errors():
        base = load_spec(spec) if spec is not None else SweepSpec()
        over = {"trace": [str(t) for t in trace] if trace else None, "format": [format] if format else None,
                "routers": router, "policies": policy, "instances": instances, "speed": speed, "quantum": quantum,
                "quantum_w": quantum_w, "lam": lam, "profile": profile,
                "cost_model": [str(c) for c in cost_model] if cost_model else None, "seeds": seed,
                "limit": [limit] if limit is not None else None}
        for k, v in over.items():
            if v:
                setattr(base, k, list(v))
        if spec is None and not router:
            base.routers = ["least-load"]
        base.validate("options" if spec is None else str(spec))
        points = base.points()
        if workers is not None and workers < 1:
            raise UserError(f"--workers must be >= 1, got {workers}")
        n_workers = workers or os.cpu_count() or 1
        use_ray = ray or ray_address is not None
        if use_ray:
            try:
                import ray as _ray  # noqa: F401
            except ImportError:
                raise UserError('--ray needs Ray: pip install -e ".[cluster]"') from None
    with user_errors():
        od = open_out(out, "sweep", force, Path(base.trace[0]) if base.trace[0] else None)
    out = od.path
    where = (f"Ray at {ray_address}" if ray_address else f"a local Ray cluster ({n_workers} CPUs)" if use_ray
             else f"{n_workers} local process(es)")
    console.print(f"[bold]sweep[/bold]: {len(points)} point(s) on {where}; results in {out}")
    t0 = time.perf_counter()
    try:
        with user_errors(f"cannot write to {out}: "):
            out.mkdir(parents=True, exist_ok=True)
            records, counts = run_points(points, out, workers=n_workers, use_ray=use_ray, ray_address=ray_address)
            with od:
                staged = write_outputs(records, od.staging)
            paths = {k: out / v.name for k, v in staged.items()}
    except KeyboardInterrupt:
        fail(f"interrupted; finished points are kept in {out / 'points'} and skipped by a rerun", code=130)
    console.print(f"{counts['run']} point(s) run, {counts['skipped']} already there, {counts['errors']} failed "
                  f"({time.perf_counter() - t0:.1f} s); wrote {paths['parquet']}, {paths['csv']} and {paths['html']}")
