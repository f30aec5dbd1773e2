"""``fairsched check``: the fairness bounds (VTC, DLPM, D²LPM) on a workload, measured by
:mod:`fairsched.analysis.bounds` and drawn on one page."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated

import typer

from fairsched.analysis.page import html_page, html_table
from fairsched.commands import options as opt
from fairsched.commands.common import (
    announce_run,
    check_d2lpm_charge,
    check_quanta,
    console,
    fail,
    fmt_num,
    fmt_span,
    progress_bar,
    resolve_run,
    scheduler_combos,
    user_errors,
    workload_doc,
)
from fairsched.commands.limits import open_out, require_finished

__all__ = ["check"]

CHECK_POLICIES_1 = ("vtc", "dlpm", "fcfs", "lpm")
CHECK_POLICIES_N = ("vtc", "dlpm", "fcfs")
CHECK_ROUTERS_N = ("least-load", "d2lpm")

_STATUS_STYLE = {"holds": "green", "holds (vacuous)": "green", "VIOLATED": "bold red",
                 "published claim violated": "yellow", "refuted candidate exceeded": "yellow",
                 "no bound": "dim", "not applicable": "dim"}

_CSS = """.holds{color:#187a2f}.VIOLATED{color:#c00;font-weight:bold}.published{color:#a36b00}"""


def _run_summary(res, gap) -> dict:
    from fairsched.analysis.metrics import cache_hit_rate, jain_index, latency_stats

    s = {"n_requests": len(res.workload), "n_finished": int(res.n_finished)}
    s.update(latency_stats(res))
    s["cache_hit_rate"] = cache_hit_rate(res)
    s["jain_index"] = jain_index(res)
    s["max_service_gap"] = gap.gap
    s["gap_pair"] = list(gap.pair) if gap.pair else None
    s["gap_window"] = list(gap.window) if gap.window else None
    return s


def _fig_pair(res, verdict, label: str, max_points: int = 2000):
    """Service curves of the worst pair of a verdict, with its window shaded."""
    import plotly.graph_objects as go

    from fairsched.analysis.colors import client_colors, dash
    from fairsched.analysis.metrics import service_curves
    from fairsched.analysis.report import shade_window

    fig = go.Figure()
    pair = list(verdict.pair) if verdict.pair else []
    df = service_curves(res, clients=pair, max_points=max_points)
    colors = client_colors(res.clients)
    for k, c in enumerate(pair):
        d = df[df["client"] == c]
        fig.add_trace(go.Scatter(x=d["t"], y=d["W"], mode="lines", line_shape="hv", name=str(c),
                                 line={"color": colors[c], "dash": dash(k)}))
    span = float(df["t"].max()) if len(df) else 1.0
    if verdict.window:
        shade_window(fig, *verdict.window, span, color="orange")
    if verdict.interval:
        shade_window(fig, *verdict.interval, span, color="red", opacity=0.2)
    fig.update_layout(title=f"{label}: worst pair {' vs '.join(map(str, pair))} ({verdict.scope}), gap "
                            f"{verdict.measured:,.0f} (window orange, gap interval red)",
                      xaxis_title="time [s]", yaxis_title="cumulative service [units]", template="plotly_white")
    return fig


def _num(unit: str) -> str:
    """Number format of bounds and gaps: whole service units, or seconds to 4 figures."""
    return ".4g" if unit == "s" else ",.0f"


def _verdict_table(verdicts: list, title: str, unit: str = ""):
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    for name in ("check", "scope", "bound", "gap", "ratio", "verdict", "worst pair (ahead > behind)", "window"):
        t.add_column(name, justify="right" if name in ("bound", "gap", "ratio") else "left",
                     no_wrap=name in ("bound", "gap", "ratio", "verdict"))
    for v in verdicts:
        style = _STATUS_STYLE.get(v.status, "")
        t.add_row(escape(v.check), escape(v.scope), fmt_num(v.bound, _num(unit)), fmt_num(v.measured, _num(unit)),
                  fmt_num(v.ratio, ".3f"), f"[{style}]{escape(v.status)}[/{style}]" if style else escape(v.status),
                  escape(" > ".join(map(str, v.pair))) if v.pair else "-", fmt_span(v.window, 1))
    return t


def check(
    trace: opt.Trace = None,
    format: opt.Format = None,
    instances: Annotated[int, typer.Option(help="Number of serving instances.")] = 1,
    policy: Annotated[list[str] | None, typer.Option(
        metavar=opt.POLICY_METAVAR, show_default=False,
        help="Queue policy (repeatable). Default: vtc dlpm fcfs lpm (one instance), vtc dlpm fcfs (several).")] = None,
    router: Annotated[list[str] | None, typer.Option(
        metavar=opt.ROUTER_METAVAR, show_default=False,
        help="Router (repeatable, several instances). Default: least-load d2lpm (d2lpm with dlpm).")] = None,
    quantum: opt.Quantum = None,
    quantum_w: opt.QuantumW = None,
    d2lpm_charge: opt.D2LPMCharge = "uncached",
    cost_model: opt.CostModelFile = None,
    profile: opt.Profile = None,
    max_batch_size: opt.MaxBatchSize = None,
    token_budget: opt.TokenBudget = None,
    kv_capacity: opt.KVCapacity = None,
    admission: opt.Admission = "reserve",
    out: opt.out_dir("check.json, check.csv, check.html, timing.json", "fairsched-out/check-<trace>") = None,
    force: opt.Force = False,
    limit: opt.Limit = None,
    seed: opt.Seed = 0,
    service: opt.Service = "tokens",
    service_log: opt.ServiceLog = "full",
) -> None:
    """Check the fairness bounds (VTC, DLPM, D2LPM) on a workload.

    Simulates each policy, measures the largest service gap between two clients while
    both are backlogged, and compares it with the proved bound (2X, 2(Q^u+X), per worker)
    and the published one (2U, 2(U+Q^u), U = max(w_p L_in, w_q M) with M the KV token capacity:
    proved for reserve admission with w_p <= w_q, refuted for peak admission). With --service seconds
    the service is the cost model's predicted seconds and the proved bounds 2X_s, 2(Q^u+X_s) are in
    seconds (proofs/seconds_bounds.md). Writes OUT/check.json and OUT/check.html.
    """
    from rich.markup import escape

    from fairsched.analysis.bounds import (
        STATUS_NA,
        Verdict,
        check_run,
        fig_gap_vs_bound,
        max_service_gap,
        simulate_for_check,
    )
    from fairsched.analysis.report import fig_latency_cdf
    from fairsched.policies import ServiceWeights, make_policy_factory, make_router

    with user_errors():
        check_quanta(quantum, quantum_w)
        check_d2lpm_charge(d2lpm_charge)
        if service not in ("tokens", "seconds"):
            raise ValueError(f"--service must be 'tokens' or 'seconds', got {service!r}")
        if service_log not in opt.SERVICE_LOGS:
            raise ValueError(f"--service-log must be 'full' or 'backlogged', got {service_log!r}")
        pols = policy or list(CHECK_POLICIES_1 if instances == 1 else CHECK_POLICIES_N)
        rts = router or (None if instances == 1 else list(CHECK_ROUTERS_N))
        combos = scheduler_combos(instances, rts, pols)
        od = open_out(out, "check", force, trace)
        workload, fmt, cost, inst = resolve_run(trace, format, limit, seed, cost_model, profile, max_batch_size,
                                           token_budget, kv_capacity, admission)
    weights = ServiceWeights()
    with user_errors():
        from fairsched.policies.seconds import service_for_run

        measure, q0 = service_for_run(service, workload, cost, inst.kv_capacity_tokens, weights)
    q_u = quantum if quantum is not None else q0
    unit = "s" if service == "seconds" else ""
    n_clients = len(workload.clients)
    announce_run(workload, cost, instances, f"{len(combos)} run(s); Q^u {q_u:{_num(unit)}}{unit}", inst)
    runs, verdicts, results, labels, timing = [], [], [], [], {}
    t_all = time.perf_counter()
    try:
        with progress_bar() as prog:
            runs_task = prog.add_task("runs", total=len(combos))
            for r_name, p_name in combos:
                label = p_name if r_name == "none" else f"{r_name}/{p_name}"
                params = {"quantum": q_u if p_name in ("dlpm", "dlpm-global") else None, "w_p": weights.w_p, "w_q": weights.w_q,
                          "router": r_name, "label": label}
                if r_name == "d2lpm":
                    params["quantum_w"] = quantum_w if quantum_w is not None else q0
                if n_clients < 2:
                    vs = [Verdict(label, "service gap", "cluster", None, "", 0.0, None, STATUS_NA, "none",
                                  note=f"{n_clients} client: a service gap needs two clients; nothing simulated")]
                    verdicts += vs
                    runs.append({"label": label, "router": r_name, "policy": p_name, "summary": None,
                                 "verdicts": [v.to_dict() for v in vs]})
                    prog.advance(runs_task)
                    continue
                t0 = time.perf_counter()
                with user_errors():
                    pf = make_policy_factory(p_name, weights, **({"quantum": q_u} if p_name in ("dlpm", "dlpm-global") else {}))
                    rt = None
                    if r_name != "none":
                        rt = make_router(r_name, measure, **({"quantum_w": params["quantum_w"], "charge": d2lpm_charge}
                                                            if r_name == "d2lpm" else {}))
                    arr = prog.add_task(f"  {label}: arrivals", total=len(workload))
                    res = simulate_for_check(workload, pf, rt, instances, inst, cost, measure,
                                             progress=lambda k, arr=arr: prog.update(arr, completed=k),
                                             service_log=service_log)
                    prog.update(arr, description=f"  {label}: checking bounds")
                    require_finished(res, label)
                sim_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                if service == "seconds":
                    from fairsched.analysis.seconds_check import check_seconds

                    vs = check_seconds(res, p_name, measure, params["quantum"], label)
                else:
                    vs = check_run(res, p_name, params)
                gap = max_service_gap(res, per_pair=False)
                chk_s = time.perf_counter() - t0
                summary = _run_summary(res, gap)
                summary["n_service_events"] = len(res.svc_t)
                timing[label] = {"sim_wall_s": round(sim_s, 3), "check_wall_s": round(chk_s, 3)}
                runs.append({"label": label, "router": r_name, "policy": p_name, "summary": summary,
                             "verdicts": [v.to_dict() for v in vs]})
                verdicts += vs
                results.append(res)
                labels.append(label)
                prog.update(arr, visible=False)
                prog.advance(runs_task)
    except KeyboardInterrupt:
        fail("interrupted; nothing written", code=130)
    elapsed = time.perf_counter() - t_all
    for r in runs:
        console.print(_verdict_table([v for v in verdicts if v.run == r["label"]], f"[bold]{escape(r['label'])}[/bold]",
                                     unit))
    bad = [v for v in verdicts if v.status == "VIOLATED"]
    pub = [v for v in verdicts if v.status == "published claim violated"]
    notes = []
    if bad:
        notes.append(f"{len(bad)} proved bound(s) VIOLATED: the simulator breaks an assumption of the proof "
                     "(or there is a bug); see the pair and window")
    if pub:
        notes.append(f"{len(pub)} published claim(s) exceeded: possible only where the checker does not prove "
                     "them (peak admission, or w_p > w_q with L_in < M; proofs/admission.md)")
    for n in notes:
        console.print(f"[bold]note:[/bold] {escape(n)}")
    console.print(f"[dim]{escape(opt.LEGEND)}[/dim]")
    doc = {"workload": workload_doc(workload, weights, inst.kv_capacity_tokens),
           "config": {"instances": instances, "combos": [list(c) for c in combos], "trace": str(trace) if trace else None,
                      "format": fmt, "limit": limit, "seed": seed, "quantum": q_u, "quantum_w": quantum_w,
                      "instance": asdict(inst), "cost_model": asdict(cost),
                      "weights": {"w_p": weights.w_p, "w_q": weights.w_q}, "service": service,
                      "service_log": service_log, "d2lpm_charge": d2lpm_charge},
           "runs": runs, "verdicts": [v.to_dict() for v in verdicts], "notes": notes}
    with user_errors(), od:
        head = ["run", "check", "scope", "bound", "bound formula", "measured gap", "ratio", "verdict", "worst pair",
                "window", "gap interval", "note"]
        rows = [[v.run, v.check, v.scope, fmt_num(v.bound, _num(unit)), v.bound_expr, fmt_num(v.measured, _num(unit)),
                 fmt_num(v.ratio, ".3f"), v.status, " > ".join(map(str, v.pair)) if v.pair else "-", fmt_span(v.window),
                 fmt_span(v.interval), v.note] for v in verdicts]
        css = ["holds" if v.status.startswith("holds") else "VIOLATED" if v.status == "VIOLATED"
               else "published" if "violated" in v.status or "exceeded" in v.status else "" for v in verdicts]
        sections: list[tuple[str, object]] = [("Verdicts", html_table(head, rows, left=3, row_classes=css))]
        what = ("predicted seconds of prefill and decode" if service == "seconds"
                else "w_p x uncached prefill + w_q x decode tokens")
        how = ("Proved bounds use X_s (largest prefill charge + worst-case outstanding decode charges of a "
               "client at an admission, in predicted seconds; measured, and bounded by t_pre^max(L_in) + k D_max, "
               "D_max the largest predicted decode of one request); Q^u in seconds; the published token bounds "
               "(VTC's U) are not evaluated in seconds (proofs/seconds_bounds.md)." if service == "seconds" else
               "Proved bounds use X (largest prefill charge + outstanding decode charge of a "
               "client at an admission; measured, and bounded by w_p L_in + k w_q O_max, O_max the "
               "longest output); published bounds use VTC's U = max(w_p L_in, w_q M), M the instance's "
               "KV token capacity: proved for reserve admission with w_p <= w_q or L_in >= M, refuted "
               "for peak admission (proofs/admission.md).")
        sections.append(("", f"<p class='note'>gap: largest difference in service ({what}) received by two clients "
                             f"over an interval in which both were backlogged (waiting). {how}</p>"))
        if any(v.bound is not None for v in verdicts):
            sections.append(("Gap vs. bound", fig_gap_vs_bound(verdicts)))
        for res, label in zip(results, labels, strict=True):
            vv = [v for v in verdicts if v.run == label and v.pair]
            if vv and res.service_log == "full":  # service curves need every charge
                sections.append((f"Worst pair: {label}", _fig_pair(res, max(vv, key=lambda v: v.measured), label)))
        if results:
            sections.append(("Latency", fig_latency_cdf(results, "ttft_s", labels)))
        intro = (f"{len(workload):,} requests from {n_clients} clients over {workload.duration:.0f} s; "
                 f"{instances} instance(s); cost model {cost.name}; " + (
                     f"service in predicted seconds; DLPM Q^u={q_u:.4g} s." if service == "seconds" else
                     f"w_p={weights.w_p:g}, w_q={weights.w_q:g}; DLPM Q^u={q_u:g}."))
        page = od.write_text("check.html", html_page(f"fairsched check: {workload.name}", sections,
                                                     intro=intro, css=_CSS))
        js = od.write_json("check.json", doc)
        od.write_csv("check.csv", doc["verdicts"])
        od.write_json("timing.json", {"runs": timing, "total_s": round(elapsed, 3)})
    console.print(f"wrote {escape(str(js))} and {escape(str(page))} ({elapsed:.1f} s)")
