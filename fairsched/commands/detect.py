"""``fairsched detect``: LMetric's KV$ hotspot on a workload (two-phase detector, mitigation);
the detector itself lives in :mod:`fairsched.analysis.detect`."""

from __future__ import annotations

import html
import inspect
import time
from dataclasses import asdict
from typing import Annotated

import typer

from fairsched.analysis.page import html_page, html_table
from fairsched.commands import options as opt
from fairsched.commands.common import (
    UserError,
    announce_run,
    console,
    fmt_num,
    progress_bar,
    resolve_run,
    user_errors,
    workload_doc,
)
from fairsched.commands.limits import check_options, check_windows, open_out, require_finished

__all__ = ["detect"]


def _validate(n: int, seed: int, workers: int, ray: bool, trace, out, force: bool, seeds: int = 4) -> None:
    """``detect --validate N``: the validation study on the family's first N workloads."""
    from rich.markup import escape

    from fairsched.analysis.detect.validation import validate as run_validation

    with user_errors():
        if trace is not None:
            raise UserError("--validate runs the generated validation family; do not pass --trace with it")
        if not 1 <= n <= 10_000:
            raise UserError(f"--validate must be between 1 and 10000 workloads, got {n}")
        if workers < 1:
            raise UserError(f"--workers must be >= 1, got {workers}")
        if not 1 <= seeds <= 16:
            raise UserError(f"--outcome-seeds must be between 1 and 16, got {seeds}")
        check_options(seed=seed)
        od = open_out(out, "detect", force, None, suffix=f"validate-{n}-seed{seed}")
    console.print(f"validation study: {n} workloads of the family (seed {seed}) on "
                  f"{'Ray' if ray else f'{workers} local process(es)'}")
    t0 = time.perf_counter()
    with user_errors():
        v = run_validation(n, seed, workers=workers, use_ray=ray, progress=True, seeds=seeds)
    elapsed = time.perf_counter() - t0
    console.print(escape(v.summary_text()))
    conf = v.confusion()
    with user_errors(), od:
        js = od.write_json("validation.json", {"n": n, "seed": seed, **v.summary(),
                                               "disagreements": v.disagreements().to_dict("records")})
        od.write_csv("validation_confusion.csv", [{"verdict": r, **{c: int(conf.loc[r, c]) for c in conf.columns}}
                                                  for r in conf.index])
        od.write_csv("validation_disagreements.csv", v.disagreements().to_dict("records"))
        od.write_csv("validation_rows.csv", v.frame.drop(columns=["windows", "hot_class"]).to_dict("records"))
        od.write_json("validation_windows.json", v.frame[["id", "hot_class", "windows"]].to_dict("records"))
        od.write_json("timing.json", {"total_s": round(elapsed, 3), "workers": workers, "ray": ray})
    console.print(f"wrote {escape(str(js))} ({elapsed:.1f} s)")


def _flag_table(report):
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="phase 1 flags (benign iff x <= |M|/N)", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("class", "windows", "x", "|M|", "|M|/N", "phase 2", "confirmed at", "max run", "verdict",
                 "1st window", "t* s", "t_harm s"):
        t.add_column(name, justify="left" if name in ("class", "windows", "phase 2", "verdict", "1st window") else "right")
    for f in report.flagged_classes:
        th = f["windows"][0]["theory"] if f["windows"] else {}
        wins = ", ".join(f"{w['t0']:.0f}-{w['t1']:.0f}" for w in f["windows"])
        t.add_row(escape(str(f["klass"])), wins, fmt_num(f["x"], ".3f"), fmt_num(f["holders"], ".2f"),
                  fmt_num((f["holders"] or 0) / f["n_instances"], ".3f"),
                  "[bold red]confirmed[/bold red]" if f["phase2_confirmed"] else "not confirmed",
                  fmt_num(f["confirmed_at"], ".1f"), str(f["max_run"]), f["verdict"], str(th.get("regime", "n/a")),
                  fmt_num(th.get("t_star_s"), ".2f"), fmt_num(th.get("t_harm_s"), ".2f"))
    return t


def _run_verdicts(rep) -> None:
    """Set ``f["verdict"]`` of each flagged class: the model's verdict for the run over all the
    class's checked windows (:func:`~fairsched.analysis.detect.validation.run_verdict`), the
    verdict the validation study scores against the simulated outcome; a window's own
    ``theory.regime`` is that window's alone."""
    from fairsched.analysis.detect.validation import run_verdict

    w = rep.windows
    for f in rep.flagged_classes:
        rows = w[w.klass == f["klass"]].sort_values("window").to_dict("records") if len(w) and "theory" in w else []
        f["verdict"] = run_verdict(rows, rep.n_instances)["regime"] if rows else "n/a"


def _latency_table(rows: list[dict]):
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="simulated latency", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("router", "requests", "n", "TTFT mean s", "TTFT p50 s", "TTFT p99 s", "TPOT mean s", "e2e mean s"):
        t.add_column(name, justify="left" if name in ("router", "requests") else "right")
    for r in rows:
        t.add_row(escape(r["router"]), escape(r["scope"]), str(r["n"]), fmt_num(r["ttft_mean_s"], ".3f"),
                  fmt_num(r["ttft_p50_s"], ".3f"), fmt_num(r["ttft_p99_s"], ".3f"), fmt_num(r["tpot_mean_s"], ".4f"),
                  fmt_num(r["e2e_mean_s"], ".2f"))
    return t


def detect(
    trace: opt.Trace = None,
    format: opt.Format = None,
    instances: Annotated[int, typer.Option(help="Number of serving instances (>= 2).")] = 16,
    window: Annotated[float, typer.Option(
        help="Phase-1 window (s); at most 100,000 windows over the trace.")] = 60.0,
    top_k: Annotated[int, typer.Option(help="Classes checked per window.")] = 5,
    min_class_requests: Annotated[int, typer.Option(help="Arrivals a class needs in a window to be checked.")] = 10,
    baseline: Annotated[str, typer.Option(metavar=opt.ROUTER_METAVAR,
                                          help="Router to compare with (load-only routing).")] = "least-load",
    policy: Annotated[str, typer.Option(metavar=opt.POLICY_METAVAR, help="Queue policy of every instance.")] = "fcfs",
    cost_model: opt.CostModelFile = None,
    profile: opt.Profile = None,
    max_batch_size: opt.MaxBatchSize = None,
    token_budget: opt.TokenBudget = None,
    kv_capacity: opt.KVCapacity = None,
    out: opt.out_dir("detect.json, detect_flagged.csv, detect_latency.csv, detect.html, timing.json",
                     "fairsched-out/detect-<trace>") = None,
    force: opt.Force = False,
    limit: opt.Limit = None,
    seed: opt.Seed = 0,
    validate: Annotated[int | None, typer.Option(
        help="Instead of a trace: run the first N workloads of the seeded validation family (--seed; "
             "the benchmark is N = 200) and compare each verdict with the simulated harm. Writes "
             "validation.json, validation_confusion.csv, validation_disagreements.csv, validation_rows.csv, "
             "validation_windows.json (every run's hot-class window rows: the model's inputs).",
        show_default=False)] = None,
    outcome_seeds: Annotated[int, typer.Option(
        help="With --validate: workload seeds per workload for the measured outcome (1-16; mean with a 90 % "
             "t-interval, 'indeterminate' when it straddles a line).")] = 4,
    workers: Annotated[int, typer.Option(help="With --validate: local worker processes.")] = 1,
    ray: Annotated[bool, typer.Option("--ray", help="With --validate: run the workloads on Ray.")] = False,
) -> None:
    """Detect LMetric's KV$ hotspot on a workload (two-phase detector, mitigation).

    Phase 1 flags prefix classes whose arrival share x exceeds their holders' share |M|/N
    in a window; phase 2 confirms when more than 2|M| consecutive class requests went to a
    holder that was not the least loaded. Simulates the baseline router, LMetric, and
    LMetric with the mitigation (a confirmed class that the model calls harmful, or whose
    warm-ups pay for themselves by the backlog test, gets new holders warmed by
    warm-up prefills, never routed to a cold one). Writes OUT/detect.json
    (flagged_classes; mitigation.warmups and their GPU seconds) and OUT/detect.html.
    """
    from rich.markup import escape

    from fairsched.analysis.detect import DetectorConfig, detect_and_compare, fig_detection_timeline
    from fairsched.analysis.report import fig_latency_cdf
    from fairsched.policies import POLICY_NAMES, ROUTER_NAMES

    with user_errors():  # an option the chosen mode ignores is an error, never silently dropped
        ignored = (dict(instances=instances, window=window, top_k=top_k, min_class_requests=min_class_requests,
                        baseline=baseline, policy=policy, format=format, cost_model=cost_model, profile=profile,
                        max_batch_size=max_batch_size, token_budget=token_budget, kv_capacity=kv_capacity,
                        limit=limit)
                   if validate is not None else dict(outcome_seeds=outcome_seeds, workers=workers, ray=ray))
        defaults = inspect.signature(detect).parameters  # set off its default = given (the one copy of the defaults)
        given = [f"--{k.replace('_', '-')}" for k, v in ignored.items() if v != defaults[k].default]
        if given:
            raise UserError(f"{', '.join(given)}: "
                            + ("not used by --validate (the family fixes each workload's setup)" if validate is not None
                               else "only used with --validate"))
    if validate is not None:
        return _validate(validate, seed, workers, ray, trace, out, force, outcome_seeds)
    with user_errors():
        if instances < 2:
            raise UserError(f"detect needs --instances >= 2 (routing between instances), got {instances}")
        if baseline not in ROUTER_NAMES:
            raise UserError(f"unknown --baseline {baseline!r}; choose from {', '.join(ROUTER_NAMES)}")
        if policy not in POLICY_NAMES:
            raise UserError(f"unknown --policy {policy!r}; choose from {', '.join(POLICY_NAMES)}")
        check_options(instances=instances, window=window, top_k=top_k, min_class_requests=min_class_requests)
        cfg = DetectorConfig(window_s=window, top_k=top_k, min_class_requests=min_class_requests)
        od = open_out(out, "detect", force, trace)
        workload, fmt, cost, inst = resolve_run(trace, format, limit, seed, cost_model, profile, max_batch_size,
                                           token_budget, kv_capacity)
        check_windows(window, workload.duration)
    announce_run(workload, cost, instances, f"window {window:g} s", inst)
    t0 = time.perf_counter()
    with user_errors(), progress_bar() as prog:
        bars = {name: prog.add_task(f"{name} on {instances} instances", total=len(workload))
                for name in (baseline, "lmetric", "lmetric+mitigation")}
        oc = detect_and_compare(workload, instances, config=cfg, baseline=baseline, policy=policy,
                                instance=inst, cost=cost, progress=lambda name, k: prog.update(bars[name], completed=k))
        for name, res in oc.results.items():
            require_finished(res, name)
    elapsed = time.perf_counter() - t0
    rep = oc.report
    _run_verdicts(rep)
    cs = oc.classes.summary()
    console.print(f"prefix classes: {cs['n_classes']:,} with shared prefixes ({cs['requests_in_classes']:,} of "
                  f"{cs['n_requests']:,} requests; largest {cs['largest_class']}); universal prefix "
                  f"{cs['base_tokens']} tokens")
    checked = int(rep.windows.window.nunique()) if len(rep.windows) else 0
    cover = cfg.min_window_coverage
    unchecked = (f"the trace spans {workload.duration:,.1f} s, less than {cover:.0%} of one --window {window:g} s "
                 f"window: nothing was checked (use --window <= {workload.duration / cover:.4g})"
                 if workload.duration < cover * window else
                 f"no class had --min-class-requests {min_class_requests} arrivals in a --window {window:g} s window "
                 "the trace covers: nothing was checked (lower --min-class-requests or widen --window)")
    where = "the one window checked" if checked == 1 else f"any of the {checked} windows checked"
    if rep.flagged_classes:
        console.print(_flag_table(rep))
    else:
        why = ("no request shares a prefix with another: the hotspot condition cannot arise" if not cs["n_classes"]
               else unchecked if not checked
               else f"no class violated the benign condition x <= |M|/N in {where}")
        console.print(f"[green]nothing flagged[/green]: {escape(why)}")
    near = rep.closest()
    if near:
        console.print(f"closest to violating: class {escape(str(near['klass']))} in window {near['t0']:.0f}-"
                      f"{near['t1']:.0f} s: x = {near['x']:.4f} ({near['n_class']} of {near['n_total']} arrivals) vs "
                      f"|M|/N = {near['threshold_x']:.4f} (x / (|M|/N) = {near['margin']:.3f}; > 1 violates)")
    console.print(_latency_table(oc.latency))
    doc = {"workload": workload_doc(workload, None, inst.kv_capacity_tokens), "config": {**asdict(cfg), "instances": instances, "baseline": baseline,
                                                          "policy": policy, "trace": str(trace) if trace else None,
                                                          "format": fmt, "limit": limit, "seed": seed,
                                                          "instance": asdict(inst), "cost_model": asdict(cost)},
           **oc.to_dict()}
    for f in doc["flagged_classes"]:
        f["M"] = f["holders"]
    with user_errors(), od:
        sections: list[tuple[str, object]] = []
        head = ["class", "windows", "x", "|M|", "|M|/N", "phase 2", "confirmed at [s]", "max run", "verdict (run)",
                "1st window", "t* [s]", "t_harm [s]", "first diversion after [s]"]
        rows = []
        for f in rep.flagged_classes:
            th = f["windows"][0]["theory"] if f["windows"] else {}
            rows.append([f["klass"], ", ".join(f"{x['t0']:.0f}-{x['t1']:.0f}" for x in f["windows"]),
                         fmt_num(f["x"], ".3f"), fmt_num(f["holders"], ".2f"), fmt_num((f["holders"] or 0) / instances, ".3f"),
                         "confirmed" if f["phase2_confirmed"] else "no", fmt_num(f["confirmed_at"], ".1f"),
                         f["max_run"], f["verdict"], th.get("regime", "n/a"), fmt_num(th.get("t_star_s"), ".2f"),
                         fmt_num(th.get("t_harm_s"), ".2f"),
                         fmt_num(f["windows"][0].get("first_diversion_after_s") if f["windows"] else None, ".2f")])
        if rows:
            flagged = html_table(head, rows)
        elif not cs["n_classes"]:
            flagged = ("<p class='empty'>Nothing flagged: no request shares a prefix with another, so the hotspot "
                       "condition cannot arise.</p>")
        elif not checked:
            flagged = f"<p class='empty'>Nothing flagged: {html.escape(unchecked)}.</p>"
        else:
            flagged = f"<p class='empty'>Nothing flagged: no class violated the benign condition x &le; |M|/N in {where}.</p>"
            if near:
                flagged += (f"<p class='note'>Closest to violating: class {html.escape(str(near['klass']))} in "
                            f"window {near['t0']:.0f}-{near['t1']:.0f} s, x = {near['x']:.4f} ({near['n_class']} of "
                            f"{near['n_total']} arrivals) vs |M|/N = {near['threshold_x']:.4f} (ratio "
                            f"{near['margin']:.3f}; above 1 would be flagged).</p>")
        sections.append(("Flagged classes", flagged))
        sections.append(("Phase 1 per window", fig_detection_timeline(rep)))
        lhead = ["router", "requests", "n", "TTFT mean [s]", "TTFT p50 [s]", "TTFT p99 [s]", "TPOT mean [s]",
                 "e2e mean [s]"]
        lrows = [[r["router"], r["scope"], r["n"], fmt_num(r["ttft_mean_s"], ".3f"), fmt_num(r["ttft_p50_s"], ".3f"),
                  fmt_num(r["ttft_p99_s"], ".3f"), fmt_num(r["tpot_mean_s"], ".4f"), fmt_num(r["e2e_mean_s"], ".2f")]
                 for r in oc.latency]
        sections.append(("Simulated latency with and without mitigation", html_table(lhead, lrows, left=2)))
        sections.append(("", fig_latency_cdf(list(oc.results.values()), "ttft_s", list(oc.results))))
        intro = (f"{len(workload):,} requests, {instances} instances, cost model {cost.name}; prefix classes: "
                 f"{oc.classes.rule}; phase-1 window {window:g} s, top {top_k} classes, at least "
                 f"{min_class_requests} arrivals.")
        page = od.write_text("detect.html", html_page(f"fairsched detect: {workload.name}", sections, intro=intro))
        js = od.write_json("detect.json", doc)
        od.write_csv("detect_flagged.csv", doc["flagged_classes"])
        od.write_csv("detect_latency.csv", oc.latency)
        od.write_json("timing.json", {"total_s": round(elapsed, 3)})
    console.print(f"wrote {escape(str(js))} and {escape(str(page))} ({elapsed:.1f} s)")
