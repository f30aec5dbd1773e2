"""``fairsched analyze``: the main job. Simulates a workload (the built-in default or a
trace) under several scheduler combinations and writes ``summary.json`` and ``report.html``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from fairsched.analysis.report import jain_reason
from fairsched.commands import options as opt
from fairsched.commands.common import (
    CLUSTER_POLICY,
    CLUSTER_ROUTERS,
    SINGLE_INSTANCE_POLICIES,
    announce_run,
    check_d2lpm_charge,
    check_quanta,
    console,
    fail,
    progress_bar,
    resolve_run,
    scheduler_combos,
    user_errors,
    workload_doc,
)
from fairsched.commands.limits import check_options, open_out, require_finished

__all__ = ["analyze"]


def _table(summaries: list[dict], title: str, wall: dict[str, float]) -> Table:
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
                  f(s["max_service_gap"], ",.0f"), f(s.get("gap_over_U"), ".2f"),
                  "n/a*" if jain_reason(s) else f(s["jain_index"], ".3f"),
                  f(wall.get(s["label"]), ".1f"))
    return t


def analyze(
    trace: opt.Trace = None,
    format: opt.Format = None,
    instances: Annotated[int, typer.Option(help="Number of serving instances.")] = 1,
    router: Annotated[list[str] | None, typer.Option(
        metavar=opt.ROUTER_METAVAR, show_default=False,
        help=f"Router (repeatable; needs --instances > 1). Default: {' '.join(CLUSTER_ROUTERS)} "
             "(d2lpm always with dlpm).")] = None,
    policy: Annotated[list[str] | None, typer.Option(
        metavar=opt.POLICY_METAVAR, show_default=False,
        help=f"Queue policy (repeatable). Default: {' '.join(SINGLE_INSTANCE_POLICIES)} with one instance, "
             f"{CLUSTER_POLICY} with several.")] = None,
    cost_model: opt.CostModelFile = None,
    profile: opt.Profile = None,
    out: opt.out_dir("summary.json/.csv, report.html, timing.json",
                     "fairsched-out/analyze-<trace>") = None,
    force: opt.Force = False,
    limit: opt.Limit = None,
    quantum: opt.Quantum = None,
    quantum_w: opt.QuantumW = None,
    d2lpm_charge: opt.D2LPMCharge = "uncached",
    lam: Annotated[float | None, typer.Option(help="Linear router weight of the KV-miss term, in [0, 1].")] = None,
    max_batch_size: opt.MaxBatchSize = None,
    token_budget: opt.TokenBudget = None,
    kv_capacity: opt.KVCapacity = None,
    admission: opt.Admission = "reserve",
    seed: opt.Seed = 0,
    service: opt.Service = "tokens",
    service_log: opt.ServiceLog = "full",
) -> None:
    """Compare schedulers on a workload: fairness, cache locality, latency.

    Writes OUT/summary.json (and summary.csv, one row per run), OUT/report.html and
    OUT/timing.json (wall-clock seconds, kept apart so that summary.json is the same bytes
    for the same inputs).
    """
    from fairsched.analysis import summarize
    from fairsched.analysis.report import write_report
    from fairsched.policies import ServiceWeights, make_policy_factory, make_router
    from fairsched.sim import Simulator

    # ---- validate everything before simulating anything
    with user_errors():
        check_quanta(quantum, quantum_w)
        check_d2lpm_charge(d2lpm_charge)
        check_options(lam=lam)
        combos = scheduler_combos(instances, router, policy)
        od = open_out(out, "analyze", force, trace)
        workload, _, cost, inst = resolve_run(trace, format, limit, seed, cost_model, profile, max_batch_size,
                                           token_budget, kv_capacity, admission)
    weights = ServiceWeights()
    if service not in ("tokens", "seconds"):
        fail(f"--service must be 'tokens' or 'seconds', got {service!r}")
    if service_log not in opt.SERVICE_LOGS:
        fail(f"--service-log must be 'full' or 'backlogged', got {service_log!r}")
    from fairsched.policies.seconds import service_for_run

    measure, q0 = service_for_run(service, workload, cost, inst.kv_capacity_tokens, weights)
    quantum = quantum if quantum is not None else q0
    quantum_w = quantum_w if quantum_w is not None else q0
    sims = []
    with user_errors():
        for r_name, p_name in combos:
            pf = make_policy_factory(p_name, weights, **({"quantum": quantum} if p_name in ("dlpm", "dlpm-global") else {}))
            rparams = {}
            if r_name == "linear" and lam is not None:
                rparams["lam"] = lam
            if r_name == "d2lpm":
                rparams.update(quantum_w=quantum_w, charge=d2lpm_charge)
            rt = make_router(r_name, measure, **rparams) if r_name != "none" else None
            sims.append(Simulator(workload, pf, rt, instances, inst, cost, measure, service_log=service_log))

    n_clients = len(workload.clients)
    announce_run(workload, cost, instances,
                 f"source {escape(str(workload.source or 'generated'))}, KV {inst.kv_capacity_tokens:,} tokens; "
                 f"{len(combos)} scheduler combination(s); Q^u {quantum:,.0f}, Q^w {quantum_w:,.0f}", inst)

    # ---- run
    results, summaries, wall_s = [], [], {}
    t_all = time.perf_counter()
    try:
        with progress_bar() as prog:
            runs = prog.add_task("runs", total=len(combos))
            for (r_name, p_name), sim in zip(combos, sims, strict=True):
                label = p_name if r_name == "none" else f"{r_name}/{p_name}"
                arr = prog.add_task(f"  {label}: arrivals", total=len(workload))
                t0 = time.perf_counter()
                res = sim.run(progress=lambda k, arr=arr: prog.update(arr, completed=k))
                wall_s[label] = round(time.perf_counter() - t0, 3)
                with user_errors():
                    require_finished(res, label)
                s = summarize(res, label=label, weights=weights)
                s["router"], s["policy"] = r_name, p_name
                results.append(res)
                summaries.append(s)
                prog.update(arr, visible=False)
                prog.advance(runs)
    except KeyboardInterrupt:
        fail("interrupted; nothing written", code=130)
    elapsed = time.perf_counter() - t_all

    console.print(_table(summaries, f"{workload.name}: {instances} instance(s)", wall_s))
    for s in summaries:
        if jain_reason(s):
            console.print(f"* Jain n/a for {escape(s['label'])}: {escape(jain_reason(s))}")
    console.print(f"[dim]{escape(opt.LEGEND)}[/dim]")

    # ---- write (all or nothing: staged, then moved into OUT)
    doc = {
        "workload": workload_doc(workload, weights, inst.kv_capacity_tokens),
        "config": {"instances": instances, "combos": [list(c) for c in combos],
                   "routers": router or None, "policies": policy or None,
                   "trace": str(trace) if trace else None, "format": format, "limit": limit, "seed": seed,
                   "quantum": quantum, "quantum_w": quantum_w, "d2lpm_charge": d2lpm_charge, "lam": lam,
                   "instance": asdict(inst), "cost_model": asdict(cost),
                   "weights": {"w_p": weights.w_p, "w_q": weights.w_q}, "service": service,
                   "service_log": service_log},
        "runs": summaries,
    }
    with user_errors(), od:
        intro = (f"workload {workload.name}: {len(workload):,} requests from {n_clients} clients over "
                 f"{workload.duration:.0f} s ({workload.source or 'generated'}); {instances} instance(s); "
                 f"cost model {cost.name}; " + (f"service weights w_p={weights.w_p:g}, w_q={weights.w_q:g}."
                                                  if service == "tokens" else "service in predicted seconds."))
        write_report(results, summaries, od.staging, title=f"fairsched analyze: {workload.name}", intro=intro)
        report = od.path / "report.html"
        summary = od.write_json("summary.json", doc)
        od.write_csv("summary.csv", summaries)
        od.write_json("timing.json", {"sim_wall_s": wall_s, "total_s": round(elapsed, 3)})
    console.print(f"wrote {escape(str(summary))} and {escape(str(report))} ({elapsed:.1f} s of simulation)")
