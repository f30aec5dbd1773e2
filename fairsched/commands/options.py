"""Command-line options shared by the commands (typer types), so that every command spells,
documents and defaults them the same way.

Choice options show their choices as the metavar (``--format [mooncake|vtc|jsonl]``) and
are validated by the command (one ``error:`` line naming the option); numeric options are
range-checked by :mod:`fairsched.commands.limits`; flags are plain flags (``--quick``, no
``--no-quick``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# The names of the choice options, written out so that `fairsched --help` imports neither
# numpy/pandas nor torch; tests/test_cli_hostile.py keeps each equal to its source.
FORMATS = ("mooncake", "vtc", "jsonl")  # fairsched.workload.FORMATS
PROFILES = ("a100-llama3-8b", "a10g-llama2-7b", "a100-llama2-7b", "a100-llama3-8b-roofline",
            "a10g-llama2-7b-roofline", "a100-llama2-7b-roofline")  # fairsched.sim.profiles.PROFILES
POLICY_NAMES = ("fcfs", "lpm", "vtc", "lcf", "dlpm", "dlpm-global")  # fairsched.policies.POLICY_NAMES
ROUTER_NAMES = ("rr", "least-load", "vllm-v1", "sglang-cache-aware", "linear", "lmetric", "lmetric-seconds", "d2lpm",
                "preble")  # ditto
PRESETS = ("cpu-tiny", "cpu-small", "gpu-medium")  # fairsched.engine.model.PRESETS


def choices(names) -> str:
    """``[a|b|c]``: the metavar of a choice option."""
    return "[" + "|".join(names) + "]"


Trace = Annotated[Path | None, typer.Option(help="Trace file (default: the built-in workload).")]
Format = Annotated[str | None, typer.Option(
    "--format", metavar=choices(FORMATS), help="Trace format (default: guessed from the first line).")]
CostModelFile = Annotated[Path | None, typer.Option(help="Cost-model JSON (from `fairsched calibrate`).")]
Profile = Annotated[str | None, typer.Option(
    "--profile", "--cost-profile", metavar=choices(PROFILES),
    help="Hardware profile (cost model + KV capacity); the A100 ones use measured operator times "
         "(Vidur), NAME-roofline the roofline. "
         "Default: a10g-llama2-7b for the VTC trace (the VTC paper's hardware), else a100-llama3-8b.")]
MaxBatchSize = Annotated[int | None, typer.Option(help="Per-instance max batch size (sequences).")]
TokenBudget = Annotated[int | None, typer.Option(help="Per-iteration token budget (tokens).")]
KVCapacity = Annotated[int | None, typer.Option(help="Per-instance KV capacity (tokens).")]
Admission = Annotated[str, typer.Option(
    metavar="[reserve|peak]",
    help="KV admission rule: reserve (prompt + whole output reserved at admission) or peak (the "
         "running batch's projected peak must fit, VTC artifact / S-LoRA).")]
Limit = Annotated[int | None, typer.Option(help="Only the first N requests.")]
Seed = Annotated[int, typer.Option(help="Seed of the built-in workload.")]
Quantum = Annotated[float | None, typer.Option(
    help="DLPM quantum Q^u in service units, the credit each backlogged client gets per round "
         "(default: U of the workload).")]
QuantumW = Annotated[float | None, typer.Option(
    help="D2LPM worker quantum Q^w in service units, the credit per client per instance "
         "(default: U of the workload).")]
D2LPM_CHARGES = ("uncached", "full")  # fairsched.policies.routers.D2LPM(charge=...)
D2LPMCharge = Annotated[str, typer.Option(
    "--d2lpm-charge", metavar=choices(D2LPM_CHARGES),
    help="What the D2LPM router charges a (client, instance) deficit at routing: uncached (uncached "
         "prompt + output, the default) or full (whole prompt + output, cached or not). Neither bounds "
         "the gap of clients backlogged at some instance (proofs/d2lpm_bound.md, Theorem D).")]
Service = Annotated[str, typer.Option(
    metavar="[tokens|seconds]",
    help="Service measure of VTC/DLPM/D2LPM: tokens (w_p=1 per uncached prompt token, w_q=2 per output "
         "token) or seconds (the cost model's predicted prefill and decode seconds: fairness in GPU "
         "time; quanta then in seconds, default the largest predicted time of one prompt or one "
         "request's output).")]
SERVICE_LOGS = ("full", "backlogged")  # fairsched.sim.Simulator(service_log=...)
ServiceLog = Annotated[str, typer.Option(
    "--service-log", metavar=choices(SERVICE_LOGS),
    help="Service log the simulator keeps: full (every charge) or backlogged (only the charges made while "
         "the client is backlogged, the rest summed per client): the same gap, Jain's index and bound "
         "verdicts in a fraction of the memory, for runs of millions of requests; no service-curve figures.")]
Force = Annotated[bool, typer.Option(
    "--force", help="Write into --out even if it holds another command's results or other files.")]

POLICY_METAVAR = choices(POLICY_NAMES)
ROUTER_METAVAR = choices(ROUTER_NAMES)


def out_dir(files: str, default: str = "fairsched-out/<command>-<trace>") -> type:
    """The ``--out`` option, naming the files a command writes there and its default."""
    return Annotated[Path | None, typer.Option(
        help=f"Output directory ({files}). Default: {default}. Written all or nothing; a directory "
             f"holding another command's results needs --force.", show_default=False)]


LEGEND = ("Q^u/Q^w: DLPM/D2LPM quantum per client (per instance); gap: most service one backlogged client "
          "got over another; gap/U: gap over VTC's U")
"""One line explaining the symbols the terminal output uses."""
