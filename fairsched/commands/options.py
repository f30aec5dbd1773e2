"""Command-line options shared by ``analyze``, ``check`` and ``detect`` (typer types), so
that every command spells, documents and defaults them the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Trace = Annotated[Path | None, typer.Option(help="Trace file (default: the built-in workload).")]
Format = Annotated[str | None, typer.Option(
    "--format", help="Trace format: mooncake, vtc or jsonl (default: guessed from the first line).")]
CostModelFile = Annotated[Path | None, typer.Option(help="Cost-model JSON (from `fairsched calibrate`).")]
Profile = Annotated[str | None, typer.Option(
    "--profile", "--cost-profile",
    help="Hardware profile (cost model + KV capacity): a100-llama3-8b or a10g-llama2-7b. "
         "Default: a10g-llama2-7b for the VTC trace (the VTC paper's hardware), else a100-llama3-8b.")]
MaxBatchSize = Annotated[int | None, typer.Option(help="Per-instance max batch size.")]
TokenBudget = Annotated[int | None, typer.Option(help="Per-iteration token budget.")]
KVCapacity = Annotated[int | None, typer.Option(help="Per-instance KV capacity in tokens.")]
Admission = Annotated[str, typer.Option(
    help="KV admission rule: reserve (prompt + whole output reserved at admission) or peak (the "
         "running batch's projected peak must fit, VTC artifact / S-LoRA).")]
Limit = Annotated[int | None, typer.Option(help="Only the first N requests.")]
Seed = Annotated[int, typer.Option(help="Seed of the built-in workload.")]
Quantum = Annotated[float | None, typer.Option(
    help="DLPM quantum Q^u in service units (default: U of the workload).")]
QuantumW = Annotated[float | None, typer.Option(
    help="D2LPM worker quantum Q^w in service units (default: U of the workload).")]


def out_dir(files: str) -> type:
    """The ``--out`` option, naming the files a command writes there."""
    return Annotated[Path, typer.Option(help=f"Output directory ({files}).")]
