"""``fairsched calibrate``: fit the simulator's cost model on the torch toy engine."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fairsched.commands import options as opt
from fairsched.commands.common import UserError, console, fail, progress_bar, user_errors
from fairsched.commands.limits import OUT_ROOT

__all__ = ["calibrate"]


def calibrate(
    out: Annotated[Path | None, typer.Option(
        help="Where to write the cost-model JSON (and its CSV twin next to it, .csv). "
             "Default: fairsched-out/calibrate-<preset>/cost.json.", show_default=False)] = None,
    preset: Annotated[str, typer.Option(metavar=opt.choices(opt.PRESETS), help="Toy-engine model preset.")] = "cpu-small",
    quick: Annotated[bool, typer.Option("--quick", help="Fewer measurements (a smoke run).")] = False,
) -> None:
    """Fit the simulator's cost model on the torch toy engine; write it to OUT."""
    with user_errors():
        if preset not in opt.PRESETS:
            raise UserError(f"unknown --preset {preset!r}; choose from {', '.join(opt.PRESETS)}")
        out = out if out is not None else OUT_ROOT / f"calibrate-{preset}" / "cost.json"
        if out.is_dir():
            raise UserError(f"--out {out} is a directory; give the cost-model file's path (e.g. {out / 'cost.json'})")
        out.parent.mkdir(parents=True, exist_ok=True)
    try:
        from fairsched.engine.calibrate import run_calibration
    except ImportError as e:
        fail(f"calibration is not available in this install ({e})", code=1)
    with user_errors(), progress_bar() as prog:
        console.print(f"calibrating: timing prefill and decode on the {preset} toy engine "
                      f"({'quick' if quick else 'full'} grid)")
        bar = prog.add_task(f"timings ({preset})", total=None)
        res = run_calibration(out=out, preset=preset, quick=quick,
                              progress=lambda k, n: prog.update(bar, completed=k, total=n))
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
    if coef:
        from fairsched.output import atomic_write_text, records_csv

        with user_errors():
            atomic_write_text(out.with_suffix(".csv"), records_csv(
                [{"coefficient": k, "value": v, "unit": units.get(k, "")} for k, v in coef.items()]))
    for key, label, spec in (("r2", "R²", ".4f"), ("residual_rel_p90", "p90 relative residual", ".1%")):
        v = doc.get(key)
        if isinstance(v, dict):
            console.print(f"{label}: " + ", ".join(f"{k} {x:{spec}}" if isinstance(x, int | float) else f"{k} {x}"
                                                   for k, x in v.items()))
        elif isinstance(v, int | float):
            console.print(f"{label}: {v:{spec}}")
    if isinstance(doc.get("seconds"), int | float):
        console.print(f"calibration took {doc['seconds']:.1f} s")
