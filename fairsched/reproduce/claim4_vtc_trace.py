"""Claim 4: VTC's real-trace table (max service difference of VTC, FCFS, LCF, RPM).

Signature and conventions of ``run_*``: :mod:`fairsched.reproduce.common`.
"""

from __future__ import annotations

from pathlib import Path

from fairsched.reproduce import common as cm
from fairsched.reproduce.base import Check, Claim, ClaimResult
from fairsched.reproduce.jobs import SimJob, run_jobs

VTC_TRACE = "lmsys_vtc_27clients.jsonl"
VTC_PAPER = {"VTC": 368.40, "FCFS": 759.97, "LCF": 750.49, "RPM": 143.86}
RPM_LIMIT = 5
"""RPM limit of the headline row: the VTC paper's table does not say which limit its RPM row
used; the artifact ran 5, 10, 15, 20 and 30 requests/minute. 5 is the first and most
restrictive; the other limits are reported in the notes (full mode)."""
VTC_INSTANCE = dict(max_batch_size=1000, token_budget=4096, kv_capacity_tokens=10_000)
"""S-LoRA on an A10G as launched by VTC's artifact: ``--max_total_token_num 10000`` (KV
memory in tokens), ``running_max_req_size`` 1000; prefill batches of a few thousand tokens."""


def _profile_kv(profile: str) -> int:
    from fairsched.theory.cost import kv_capacity_tokens

    return kv_capacity_tokens(profile)


def _measure(res) -> dict:
    from fairsched.analysis import latency_stats, max_service_gap, throughput_tok_s
    from fairsched.reproduce.vtc_metric import window_service_diff

    wd = window_service_diff(res)
    return {"max_diff": wd.max_diff, "avg_diff": wd.avg_diff, "per_tick": wd.per_tick, "ticks": wd.ticks,
            "max_diff_max_variant": window_service_diff(res, reduce="max").max_diff,
            "cumulative_gap": max_service_gap(res).gap, "requests": None,
            "output_tok_s": throughput_tok_s(res)["output_tok_s"], "ttft_mean_s": latency_stats(res)["ttft_mean_s"]}


def run_vtc_trace(quick: bool, cost=None, out: Path | None = None) -> ClaimResult:
    """Claim 4: VTC's real-trace table (max service difference of VTC, FCFS, LCF, RPM)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from fairsched.reproduce.rpm import rpm_limit
    from fairsched.workload import load_trace

    cost, inst = cm.hardware(cost, cm.A10G, **VTC_INSTANCE)
    w = load_trace(cm.trace_path(VTC_TRACE), "vtc")
    limits = [RPM_LIMIT] if quick else [RPM_LIMIT, 10, 15, 20, 30]
    runs = {"VTC": (w, "vtc"), "FCFS": (w, "fcfs"), "LCF": (w, "lcf")}
    for lim in limits:
        runs["RPM" if lim == RPM_LIMIT else f"RPM{lim}"] = (rpm_limit(w, lim), "fcfs")
    rows = run_jobs({name: SimJob(wl, pol, cost, inst, measure=_measure) for name, (wl, pol) in runs.items()},
                    desc="claim 4: schedulers")
    for name, (wl, _) in runs.items():
        rows[name]["requests"] = len(wl)
    vtc = rows["VTC"]["max_diff"]
    values = {"vtc": vtc, "fcfs_over_vtc": cm.ratio(rows["FCFS"]["max_diff"], vtc),
              "lcf_over_vtc": cm.ratio(rows["LCF"]["max_diff"], vtc), "rpm_over_vtc": cm.ratio(rows["RPM"]["max_diff"], vtc)}

    fig = make_subplots(rows=1, cols=2, column_widths=[0.4, 0.6],
                        subplot_titles=("Max Diff [service units/s]: paper vs ours",
                                        "per-window service difference (60 s windows)"))
    main = ["VTC", "FCFS", "LCF", "RPM"]
    fig.add_trace(go.Bar(x=main, y=[VTC_PAPER[k] for k in main], name="paper (S-LoRA, A10G)", marker_color="#aaa"),
                  row=1, col=1)
    fig.add_trace(go.Bar(x=main, y=[rows[k]["max_diff"] for k in main], name="fairsched sim", marker_color="#1f77b4"),
                  row=1, col=1)
    for k in rows:
        fig.add_trace(go.Scatter(x=[t + 30.0 for t in rows[k]["ticks"]], y=rows[k]["per_tick"], mode="lines+markers",
                                 name=k), row=1, col=2)
    fig.update_xaxes(title_text="window centre [s]", row=1, col=2)
    cm.layout(fig, "Claim 4: VTC's real-trace table (27 LMSYS clients, 600 s)")

    summary = " / ".join(f"{k} {rows[k]['max_diff']:.2f}" for k in main)
    extra = ", ".join(f"{k} {rows[k]['max_diff']:.1f}" for k in rows if k not in main)
    rpm_meta = runs["RPM"][0].meta["rpm"]
    notes = (f"Metric: the artifact's windowed service difference (fairsched.reproduce.vtc_metric, 'Max Diff' of "
             f"plot_revision.py), compared as VTC's value and each baseline's ratio to VTC, since the absolute scale "
             f"follows the engine's speed. Our engine: {rows['VTC']['output_tok_s']:.0f} output tokens/s, mean TTFT "
             f"{rows['VTC']['ttft_mean_s']:.0f} s under VTC (the artifact's VTC run: about 510 tokens/s, mean TTFT 50 s): "
             f"the roofline A10G is slower, so the overload is deeper. RPM = limit of {RPM_LIMIT} requests/min per "
             f"client, over-limit requests dropped as in the artifact ({rpm_meta['offered'] - rpm_meta['accepted']} of "
             f"{rpm_meta['offered']} dropped), then FCFS; RPM is not work-conserving, which is why its difference is "
             f"small." + (f" Other limits: {extra} (with limits >= 20 RPM is no better than FCFS)." if extra else "")
             + " For comparison, the cumulative gap of fairsched.analysis.max_service_gap (service units over an "
             "interval where both clients are backlogged): " + ", ".join(
                 f"{k} {rows[k]['cumulative_gap']:,.0f}" for k in main) + "; the 'max over clients' variant of the "
             "window metric: " + ", ".join(f"{k} {rows[k]['max_diff_max_variant']:.1f}" for k in main) + ".")
    setup = (f"{VTC_TRACE} ({len(w)} requests, 27 clients, 600 s); 1 instance, {cm.hw_text(cost, inst)} (the "
             f"artifact's S-LoRA launch: --max_total_token_num 10000; the A10G roofline profile would give "
             f"{_profile_kv(cm.A10G):,}); w_p = 1, w_q = 2")
    return ClaimResult(values=values, summary=summary, setup=setup, notes=notes, figure=fig,
                       data={"paper": VTC_PAPER, "ours": {k: {kk: vv for kk, vv in v.items() if kk != "ticks"}
                                                          for k, v in rows.items()},
                             "ticks_s": rows["VTC"]["ticks"], "rpm_limit": RPM_LIMIT})


CLAIM = Claim(
    id="vtc-trace", number=4,
    title="VTC's real-trace table: max service difference of VTC, FCFS, LCF, RPM",
    source=f"{cm.VTC}, Sec. 5.3 (artifact: fair_bench/plot/plot_revision.py)",
    paper_figure="Max Diff: VTC 368.40, FCFS 759.97, LCF 750.49, RPM 143.86 (service units/s)",
    metric="the artifact's windowed service difference (60 s windows, sum over clients of the shortfall vs the "
           "best-served client capped by own demand, max over windows); VTC absolute, others as ratio to VTC",
    setup="lmsys_vtc_27clients, 1 A10G (Llama-2-7B roofline), KV 10k tok (S-LoRA), RPM 5/min",
    checks=(
        Check("vtc", "VTC Max Diff", paper=368.40, fmt="{:.1f}"),
        Check("fcfs_over_vtc", "FCFS / VTC", paper=759.97 / 368.40, neutral=1.0, fmt="{:.2f}x"),
        Check("lcf_over_vtc", "LCF / VTC", paper=750.49 / 368.40, neutral=1.0, fmt="{:.2f}x"),
        Check("rpm_over_vtc", "RPM / VTC", paper=143.86 / 368.40, neutral=1.0, fmt="{:.2f}x"),
    ),
    run=run_vtc_trace,
    needs=(VTC_TRACE,),
    caveats="Differences: S-LoRA's scheduler and a real A10G vs our simulator with a roofline cost model (slower "
            "than the real engine here); the artifact's RPM limit for the table row is not stated (we use 5). A "
            "closer number needs a cost model calibrated on S-LoRA / Llama-2-7B on an A10G (--cost-model).",
)
