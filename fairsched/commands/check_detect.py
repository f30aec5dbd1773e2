"""``fairsched check`` (fairness bounds on a workload) and ``fairsched detect`` (LMetric's
KV$ hotspot on a workload).

Registered on the app by :func:`register` (called from :mod:`fairsched.cli`). Both follow
the CLI's conventions: options are validated before anything is simulated, user errors
print one red ``error:`` line and exit with code 2, files are written atomically. The
analysis lives in :mod:`fairsched.analysis.bounds` and :mod:`fairsched.analysis.detect`.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from fairsched.commands import options as opt

__all__ = ["check", "detect", "register"]

CHECK_POLICIES_1 = ("vtc", "dlpm", "fcfs", "lpm")
CHECK_POLICIES_N = ("vtc", "dlpm", "fcfs")
CHECK_ROUTERS_N = ("least-load", "d2lpm")

_STATUS_STYLE = {"holds": "green", "holds (vacuous)": "green", "VIOLATED": "bold red",
                 "published claim violated": "yellow", "refuted candidate exceeded": "yellow",
                 "no bound": "dim", "not applicable": "dim"}

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;font-size:0.88em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td.l{text-align:left}.note{color:#555;font-size:0.9em}
.holds{color:#187a2f}.VIOLATED{color:#c00;font-weight:bold}.published{color:#a36b00}"""


# ============================================================================ helpers
def _fmt(v, spec: str = ",.1f") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and v != v:
        return "n/a"
    try:
        return format(v, spec)
    except (TypeError, ValueError):
        return str(v)


def _span(w, digits: int = 2) -> str:
    return "n/a" if not w else f"{w[0]:.{digits}f}-{w[1]:.{digits}f} s"


def _html_table(head: list[str], rows: list[list[str]], left: int = 1, classes: list[str] | None = None) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = []
    for k, r in enumerate(rows):
        cls = f" class='{classes[k]}'" if classes else ""
        cells = "".join(f"<td{' class=l' if i < left else ''}>{html.escape(str(c))}</td>" for i, c in enumerate(r))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _write_page(path: Path, title: str, intro: str, sections: list[tuple[str, object]]) -> Path:
    """One self-contained HTML page: sections are (heading, html string or plotly figure);
    plotly.js is embedded once (first figure)."""
    from fairsched.analysis.report import atomic_write_text

    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p class='note'>{html.escape(intro)}</p>"]
    first = True
    for head, body in sections:
        if head:
            parts.append(f"<h2>{html.escape(head)}</h2>")
        if isinstance(body, str):
            parts.append(body)
        else:
            parts.append(body.to_html(full_html=False, include_plotlyjs=first, default_width="100%"))
            first = False
    parts.append("</body></html>")
    return atomic_write_text(path, "\n".join(parts))


def _prepare_out(out: Path) -> None:
    from fairsched.analysis.report import atomic_write_text
    from fairsched.cli import UserError, user_errors

    with user_errors(f"cannot write to {out}: "):
        if out.exists() and not out.is_dir():
            raise UserError("it exists and is not a directory")
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / ".fairsched-write-test", "").unlink()


def _workload_doc(workload, weights=None) -> dict:
    w_p, w_q = (weights.w_p, weights.w_q) if weights is not None else (1.0, 2.0)
    return {"name": workload.name, "source": str(workload.source), "n_requests": len(workload),
            "n_clients": len(workload.clients), "duration_s": workload.duration,
            "block_size": workload.block_size,
            "max_cost_U": workload.max_cost(w_p, w_q) if len(workload) else None}


# ============================================================================ check
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

    from fairsched.analysis.metrics import service_curves

    fig = go.Figure()
    pair = list(verdict.pair) if verdict.pair else []
    df = service_curves(res, clients=pair, max_points=max_points)
    for c in pair:
        d = df[df["client"] == c]
        fig.add_trace(go.Scatter(x=d["t"], y=d["W"], mode="lines", line_shape="hv", name=str(c)))
    if verdict.window:
        s, e = verdict.window
        fig.add_vrect(x0=s, x1=max(e, s + 1e-9), fillcolor="orange", opacity=0.15, line_width=0)
    if verdict.interval:
        a, b = verdict.interval
        fig.add_vrect(x0=a, x1=max(b, a + 1e-9), fillcolor="red", opacity=0.2, line_width=0)
    fig.update_layout(title=f"{label}: worst pair {' vs '.join(map(str, pair))} ({verdict.scope}), gap "
                            f"{verdict.measured:,.0f} (window orange, gap interval red)",
                      xaxis_title="time [s]", yaxis_title="cumulative service [units]", template="plotly_white")
    return fig


def _verdict_table(verdicts: list, title: str):
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    for name in ("check", "scope", "bound", "gap", "ratio", "verdict", "worst pair (ahead > behind)", "window"):
        t.add_column(name, justify="right" if name in ("bound", "gap", "ratio") else "left",
                     no_wrap=name in ("bound", "gap", "ratio", "verdict"))
    for v in verdicts:
        style = _STATUS_STYLE.get(v.status, "")
        t.add_row(escape(v.check), escape(v.scope), _fmt(v.bound, ",.0f"), _fmt(v.measured, ",.0f"),
                  _fmt(v.ratio, ".3f"), f"[{style}]{escape(v.status)}[/{style}]" if style else escape(v.status),
                  escape(" > ".join(map(str, v.pair))) if v.pair else "-", _span(v.window, 1))
    return t


def check(
    trace: opt.Trace = None,
    format: opt.Format = None,
    instances: Annotated[int, typer.Option(help="Number of serving instances.")] = 1,
    policy: Annotated[list[str] | None, typer.Option(
        help="Queue policy (repeatable): vtc, dlpm, lcf, fcfs, lpm. Default: vtc dlpm fcfs lpm "
             "(one instance), vtc dlpm fcfs (several).")] = None,
    router: Annotated[list[str] | None, typer.Option(
        help="Router (repeatable, several instances): default least-load and d2lpm (with dlpm).")] = None,
    quantum: opt.Quantum = None,
    quantum_w: opt.QuantumW = None,
    cost_model: opt.CostModelFile = None,
    profile: opt.Profile = None,
    max_batch_size: opt.MaxBatchSize = None,
    token_budget: opt.TokenBudget = None,
    kv_capacity: opt.KVCapacity = None,
    out: opt.out_dir("check.json, check.html") = Path("fairsched-out"),
    limit: opt.Limit = None,
    seed: opt.Seed = 0,
) -> None:
    """Check the fairness bounds (VTC, DLPM, D2LPM) on a workload.

    Simulates each policy, measures the largest service gap between two clients while
    both are backlogged, and compares it with the proved bound (2X, 2(Q^u+X), per worker)
    and the published one (2U, 2(U+Q^u), refuted in this model). Writes OUT/check.json
    and OUT/check.html.
    """
    from rich.markup import escape

    from fairsched.analysis.bounds import (
        STATUS_NA,
        Verdict,
        check_run,
        fig_gap_vs_bound,
        gap_of_result,
        simulate_for_check,
    )
    from fairsched.analysis.report import atomic_write_text, fig_latency_cdf
    from fairsched.cli import (
        UserError,
        check_quanta,
        console,
        resolve_run,
        scheduler_combos,
        user_errors,
    )
    from fairsched.policies import ServiceWeights, default_quantum, make_policy_factory, make_router

    with user_errors():
        check_quanta(quantum, quantum_w)
        if instances < 1:
            raise UserError(f"--instances must be >= 1, got {instances}")
        pols = policy or list(CHECK_POLICIES_1 if instances == 1 else CHECK_POLICIES_N)
        rts = router or (None if instances == 1 else list(CHECK_ROUTERS_N))
        combos = scheduler_combos(instances, rts, pols)
        workload, fmt, cost, inst = resolve_run(trace, format, limit, seed, cost_model, profile, max_batch_size,
                                           token_budget, kv_capacity)
    _prepare_out(out)
    weights = ServiceWeights()
    q_u = quantum if quantum is not None else default_quantum(workload, weights)
    n_clients = len(workload.clients)
    console.print(f"[bold]workload[/bold] {escape(workload.name)}: {len(workload):,} requests, {n_clients} clients, "
                  f"{workload.duration:.0f} s; {instances} instance(s), cost model {escape(cost.name)}; "
                  f"{len(combos)} run(s); Q^u {q_u:,.0f}")
    runs, verdicts, results, labels = [], [], [], []
    t_all = time.perf_counter()
    for r_name, p_name in combos:
        label = p_name if r_name == "none" else f"{r_name}/{p_name}"
        params = {"quantum": q_u if p_name == "dlpm" else None, "w_p": weights.w_p, "w_q": weights.w_q,
                  "router": r_name, "label": label}
        if r_name == "d2lpm":
            params["quantum_w"] = quantum_w if quantum_w is not None else default_quantum(workload, weights)
        if n_clients < 2:
            vs = [Verdict(label, "service gap", "cluster", None, "", 0.0, None, STATUS_NA, "none",
                          note=f"{n_clients} client: a service gap needs two clients; nothing simulated")]
            verdicts += vs
            runs.append({"label": label, "router": r_name, "policy": p_name, "summary": None,
                         "verdicts": [v.to_dict() for v in vs]})
            continue
        t0 = time.perf_counter()
        with user_errors():
            pf = make_policy_factory(p_name, weights, **({"quantum": q_u} if p_name == "dlpm" else {}))
            rt = None
            if r_name != "none":
                rt = make_router(r_name, weights, **({"quantum_w": params["quantum_w"]} if r_name == "d2lpm" else {}))
            res = simulate_for_check(workload, pf, rt, instances, inst, cost, weights)
        sim_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        vs = check_run(res, p_name, params)
        gap = gap_of_result(res)
        chk_s = time.perf_counter() - t0
        summary = _run_summary(res, gap)
        summary.update(sim_wall_s=round(sim_s, 3), check_wall_s=round(chk_s, 3), n_service_events=len(res.svc_t))
        runs.append({"label": label, "router": r_name, "policy": p_name, "summary": summary,
                     "verdicts": [v.to_dict() for v in vs]})
        verdicts += vs
        results.append(res)
        labels.append(label)
    elapsed = time.perf_counter() - t_all
    for r in runs:
        console.print(_verdict_table([v for v in verdicts if v.run == r["label"]], f"[bold]{escape(r['label'])}[/bold]"))
    bad = [v for v in verdicts if v.status == "VIOLATED"]
    pub = [v for v in verdicts if v.status == "published claim violated"]
    notes = []
    if bad:
        notes.append(f"{len(bad)} proved bound(s) VIOLATED: the simulator breaks an assumption of the proof "
                     "(or there is a bug); see the pair and window")
    if pub:
        notes.append(f"{len(pub)} published claim(s) violated: expected, the published bounds are refuted in "
                     "fairsched's charging model (proofs/README.md)")
    for n in notes:
        console.print(f"[bold]note:[/bold] {escape(n)}")
    doc = {"workload": _workload_doc(workload, weights),
           "config": {"instances": instances, "combos": [list(c) for c in combos], "trace": str(trace) if trace else None,
                      "format": fmt, "limit": limit, "seed": seed, "quantum": q_u, "quantum_w": quantum_w,
                      "instance": asdict(inst), "cost_model": asdict(cost),
                      "weights": {"w_p": weights.w_p, "w_q": weights.w_q}},
           "runs": runs, "verdicts": [v.to_dict() for v in verdicts], "notes": notes, "wall_s": round(elapsed, 3)}
    with user_errors(f"cannot write to {out}: "):
        head = ["run", "check", "scope", "bound", "bound formula", "measured gap", "ratio", "verdict", "worst pair",
                "window", "gap interval", "note"]
        rows = [[v.run, v.check, v.scope, _fmt(v.bound, ",.0f"), v.bound_expr, _fmt(v.measured, ",.0f"),
                 _fmt(v.ratio, ".3f"), v.status, " > ".join(map(str, v.pair)) if v.pair else "-", _span(v.window),
                 _span(v.interval), v.note] for v in verdicts]
        css = ["holds" if v.status.startswith("holds") else "VIOLATED" if v.status == "VIOLATED"
               else "published" if "violated" in v.status or "exceeded" in v.status else "" for v in verdicts]
        sections: list[tuple[str, object]] = [("Verdicts", _html_table(head, rows, left=3, classes=css))]
        sections.append(("", "<p class='note'>gap: largest difference in service (w_p x uncached prefill + w_q x "
                             "decode tokens) received by two clients over an interval in which both were backlogged "
                             "(waiting). Proved bounds use X (largest prefill charge + outstanding decode charge of a "
                             "client at an admission; measured, and bounded by w_p L_in + k w_q M); published bounds "
                             "use U = max(w_p L_in, w_q M) and are refuted in this model (proofs/README.md).</p>"))
        if any(v.bound is not None for v in verdicts):
            sections.append(("Gap vs. bound", fig_gap_vs_bound(verdicts)))
        for res, label in zip(results, labels, strict=True):
            vv = [v for v in verdicts if v.run == label and v.pair]
            if vv:
                sections.append((f"Worst pair: {label}", _fig_pair(res, max(vv, key=lambda v: v.measured), label)))
        if results:
            sections.append(("Latency", fig_latency_cdf(results, "ttft_s", labels)))
        page = _write_page(out / "check.html", f"fairsched check: {workload.name}",
                           f"{len(workload):,} requests from {n_clients} clients over {workload.duration:.0f} s; "
                           f"{instances} instance(s); cost model {cost.name}; w_p={weights.w_p:g}, w_q={weights.w_q:g}; "
                           f"DLPM Q^u={q_u:g}.", sections)
        js = atomic_write_text(out / "check.json", json.dumps(doc, indent=2, allow_nan=False))
    console.print(f"wrote {escape(str(js))} and {escape(str(page))} ({elapsed:.1f} s)")


# ============================================================================ detect
def _flag_table(report):
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="phase 1 flags (benign iff x <= |M|/N)", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("class", "windows", "x", "|M|", "|M|/N", "phase 2", "confirmed at", "max run", "regime",
                 "t* s", "t_harm s"):
        t.add_column(name, justify="left" if name in ("class", "windows", "phase 2", "regime") else "right")
    for f in report.flagged_classes:
        th = f["windows"][0]["theory"] if f["windows"] else {}
        wins = ", ".join(f"{w['t0']:.0f}-{w['t1']:.0f}" for w in f["windows"])
        t.add_row(escape(str(f["klass"])), wins, _fmt(f["x"], ".3f"), _fmt(f["holders"], ".2f"),
                  _fmt((f["holders"] or 0) / f["n_instances"], ".3f"),
                  "[bold red]confirmed[/bold red]" if f["phase2_confirmed"] else "not confirmed",
                  _fmt(f["confirmed_at"], ".1f"), str(f["max_run"]), str(th.get("regime", "n/a")),
                  _fmt(th.get("t_star_s"), ".2f"), _fmt(th.get("t_harm_s"), ".2f"))
    return t


def _latency_table(rows: list[dict]):
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="simulated latency", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("router", "requests", "n", "TTFT mean s", "TTFT p50 s", "TTFT p99 s", "TPOT mean s", "e2e mean s"):
        t.add_column(name, justify="left" if name in ("router", "requests") else "right")
    for r in rows:
        t.add_row(escape(r["router"]), escape(r["scope"]), str(r["n"]), _fmt(r["ttft_mean_s"], ".3f"),
                  _fmt(r["ttft_p50_s"], ".3f"), _fmt(r["ttft_p99_s"], ".3f"), _fmt(r["tpot_mean_s"], ".4f"),
                  _fmt(r["e2e_mean_s"], ".2f"))
    return t


def detect(
    trace: opt.Trace = None,
    format: opt.Format = None,
    instances: Annotated[int, typer.Option(help="Number of serving instances (>= 2).")] = 16,
    window: Annotated[float, typer.Option(help="Phase-1 window (s).")] = 60.0,
    top_k: Annotated[int, typer.Option(help="Classes checked per window.")] = 5,
    min_class_requests: Annotated[int, typer.Option(help="Arrivals a class needs in a window to be checked.")] = 10,
    baseline: Annotated[str, typer.Option(help="Router to compare with (load-only routing).")] = "least-load",
    policy: Annotated[str, typer.Option(help="Queue policy of every instance.")] = "fcfs",
    cost_model: opt.CostModelFile = None,
    profile: opt.Profile = None,
    max_batch_size: opt.MaxBatchSize = None,
    token_budget: opt.TokenBudget = None,
    kv_capacity: opt.KVCapacity = None,
    out: opt.out_dir("detect.json, detect.html") = Path("fairsched-out"),
    limit: opt.Limit = None,
    seed: opt.Seed = 0,
) -> None:
    """Detect LMetric's KV$ hotspot on a workload (two-phase detector, mitigation).

    Phase 1 flags prefix classes whose arrival share x exceeds their holders' share |M|/N
    in a window; phase 2 confirms when more than 2|M| consecutive class requests went to a
    holder that was not the least loaded. Simulates the baseline router, LMetric, and
    LMetric with the mitigation (flagged class routed by load). Writes OUT/detect.json
    (flagged_classes) and OUT/detect.html.
    """
    from rich.markup import escape

    from fairsched.analysis.detect import DetectorConfig, detect_and_compare, fig_detection_timeline
    from fairsched.analysis.report import atomic_write_text, fig_latency_cdf
    from fairsched.cli import (
        UserError,
        console,
        resolve_run,
        user_errors,
    )
    from fairsched.policies import POLICY_NAMES, ROUTER_NAMES

    with user_errors():
        if instances < 2:
            raise UserError(f"detect needs --instances >= 2 (routing between instances), got {instances}")
        if baseline not in ROUTER_NAMES:
            raise UserError(f"unknown --baseline {baseline!r}; choose from {', '.join(ROUTER_NAMES)}")
        if policy not in POLICY_NAMES:
            raise UserError(f"unknown --policy {policy!r}; choose from {', '.join(POLICY_NAMES)}")
        if top_k < 1 or min_class_requests < 1:
            raise UserError("--top-k and --min-class-requests must be >= 1")
        cfg = DetectorConfig(window_s=window, top_k=top_k, min_class_requests=min_class_requests)
        workload, fmt, cost, inst = resolve_run(trace, format, limit, seed, cost_model, profile, max_batch_size,
                                           token_budget, kv_capacity)
    _prepare_out(out)
    console.print(f"[bold]workload[/bold] {escape(workload.name)}: {len(workload):,} requests, "
                  f"{len(workload.clients)} clients, {workload.duration:.0f} s; {instances} instances, "
                  f"cost model {escape(cost.name)}; window {window:g} s")
    t0 = time.perf_counter()
    with user_errors():
        oc = detect_and_compare(workload, instances, config=cfg, baseline=baseline, policy=policy,
                                instance=inst, cost=cost)
    elapsed = time.perf_counter() - t0
    rep = oc.report
    cs = oc.classes.summary()
    console.print(f"prefix classes: {cs['n_classes']:,} with shared prefixes ({cs['requests_in_classes']:,} of "
                  f"{cs['n_requests']:,} requests; largest {cs['largest_class']}); universal prefix "
                  f"{cs['base_tokens']} tokens")
    if rep.flagged_classes:
        console.print(_flag_table(rep))
    else:
        why = ("no request shares a prefix with another: the hotspot condition cannot arise"
               if not cs["n_classes"] else "no class violated the benign condition x <= |M|/N in any window")
        console.print(f"[green]nothing flagged[/green]: {escape(why)}")
    near = rep.closest()
    if near:
        console.print(f"closest to violating: class {escape(str(near['klass']))} in window {near['t0']:.0f}-"
                      f"{near['t1']:.0f} s: x = {near['x']:.4f} ({near['n_class']} of {near['n_total']} arrivals) vs "
                      f"|M|/N = {near['threshold_x']:.4f} (x / (|M|/N) = {near['margin']:.3f}; > 1 violates)")
    console.print(_latency_table(oc.latency))
    doc = {"workload": _workload_doc(workload), "config": {**asdict(cfg), "instances": instances, "baseline": baseline,
                                                          "policy": policy, "trace": str(trace) if trace else None,
                                                          "format": fmt, "limit": limit, "seed": seed,
                                                          "instance": asdict(inst), "cost_model": asdict(cost)},
           **oc.to_dict(), "wall_s": round(elapsed, 3)}
    for f in doc["flagged_classes"]:
        f["M"] = f["holders"]
    with user_errors(f"cannot write to {out}: "):
        sections: list[tuple[str, object]] = []
        head = ["class", "windows", "x", "|M|", "|M|/N", "phase 2", "confirmed at [s]", "max run", "regime",
                "t* [s]", "t_harm [s]", "first diversion after [s]"]
        rows = []
        for f in rep.flagged_classes:
            th = f["windows"][0]["theory"] if f["windows"] else {}
            rows.append([f["klass"], ", ".join(f"{x['t0']:.0f}-{x['t1']:.0f}" for x in f["windows"]),
                         _fmt(f["x"], ".3f"), _fmt(f["holders"], ".2f"), _fmt((f["holders"] or 0) / instances, ".3f"),
                         "confirmed" if f["phase2_confirmed"] else "no", _fmt(f["confirmed_at"], ".1f"),
                         f["max_run"], th.get("regime", "n/a"), _fmt(th.get("t_star_s"), ".2f"),
                         _fmt(th.get("t_harm_s"), ".2f"),
                         _fmt(f["windows"][0].get("first_diversion_after_s") if f["windows"] else None, ".2f")])
        sections.append(("Flagged classes", _html_table(head, rows) if rows else
                         "<p>nothing flagged: no class violated the benign condition x &le; |M|/N in any window.</p>"))
        sections.append(("Phase 1 per window", fig_detection_timeline(rep)))
        lhead = ["router", "requests", "n", "TTFT mean [s]", "TTFT p50 [s]", "TTFT p99 [s]", "TPOT mean [s]",
                 "e2e mean [s]"]
        lrows = [[r["router"], r["scope"], r["n"], _fmt(r["ttft_mean_s"], ".3f"), _fmt(r["ttft_p50_s"], ".3f"),
                  _fmt(r["ttft_p99_s"], ".3f"), _fmt(r["tpot_mean_s"], ".4f"), _fmt(r["e2e_mean_s"], ".2f")]
                 for r in oc.latency]
        sections.append(("Simulated latency with and without mitigation", _html_table(lhead, lrows, left=2)))
        sections.append(("", fig_latency_cdf(list(oc.results.values()), "ttft_s", list(oc.results))))
        page = _write_page(out / "detect.html", f"fairsched detect: {workload.name}",
                           f"{len(workload):,} requests, {instances} instances, cost model {cost.name}; prefix "
                           f"classes: {oc.classes.rule}; phase-1 window {window:g} s, top {top_k} classes, at least "
                           f"{min_class_requests} arrivals.", sections)
        js = atomic_write_text(out / "detect.json", json.dumps(doc, indent=2, allow_nan=False))
    console.print(f"wrote {escape(str(js))} and {escape(str(page))} ({elapsed:.1f} s)")


def register(app: typer.Typer) -> None:
    """Add ``check`` and ``detect`` to the ``fairsched`` app."""
    app.command("check")(check)
    app.command("detect")(detect)
