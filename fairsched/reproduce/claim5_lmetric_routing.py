"""Claim 5: LMetric vs vLLM-v1 and a tuned linear score on the Mooncake trace.

Signature and conventions of ``run_*``: :mod:`fairsched.reproduce.common`.
"""

from __future__ import annotations

from pathlib import Path

from fairsched.reproduce import common as cm
from fairsched.reproduce.base import Check, Claim, ClaimResult
from fairsched.reproduce.jobs import SimJob, run_jobs

MOONCAKE_TRACE = "mooncake_conversation.jsonl"
LMETRIC_INSTANCES = 16


def _reductions(r: dict) -> dict:
    """TTFT / TPOT change of LMetric vs vLLM-v1 and vs linear [percent] at one load point."""
    return {"ttft_vs_vllm": cm.pct(r["lmetric"]["ttft_mean_s"], r["vllm-v1"]["ttft_mean_s"]),
            "ttft_vs_linear": cm.pct(r["lmetric"]["ttft_mean_s"], r["linear"]["ttft_mean_s"]),
            "tpot_vs_vllm": cm.pct(r["lmetric"]["tpot_mean_s"], r["vllm-v1"]["tpot_mean_s"]),
            "tpot_vs_linear": cm.pct(r["lmetric"]["tpot_mean_s"], r["linear"]["tpot_mean_s"]),
            "ttft_lmetric_s": r["lmetric"]["ttft_mean_s"], "ttft_vllm_s": r["vllm-v1"]["ttft_mean_s"],
            "ttft_linear_s": r["linear"]["ttft_mean_s"]}


def _where_reached(curve: list[dict]) -> str:
    """Say at which load point (replay speed, instances) each paper TTFT figure is reached, with
    both routers' mean TTFT and the load's utilisation bound there (the why)."""
    out = []
    for key, paper, vs, col in (("ttft_vs_vllm", -92.0, "vLLM-v1", "ttft_vllm_s"),
                                ("ttft_vs_linear", -52.0, "linear", "ttft_linear_s")):
        pts = [c for c in curve if c[key] is not None]
        hit = [c for c in pts if c[key] <= paper]
        best = min(pts, key=lambda c: c[key]) if pts else None

        def at(c, key=key, vs=vs, col=col):
            return (f"{c['speed']:g}x replay on {c['instances']} instances ({c[key]:+.0f}%: mean TTFT LMetric "
                    f"{c['ttft_lmetric_s']:.2f} s, {vs} {c[col]:.2f} s; utilisation >= {c['rho']:.2f})")
        if hit:
            out.append(f"paper's {paper:+.0f}% vs {vs} reached at "
                       + at(min(hit, key=lambda c: (c["speed"] / c["instances"]))))
        elif best is not None:
            out.append(f"paper's {paper:+.0f}% vs {vs} not reached on the load axis (closest: {at(best)})")
    return "; ".join(out) + "." if out else ""


def _utilisation(w, cost, inst, n: int) -> float:
    """Lower bound on the utilisation of ``n`` instances serving ``w``, every router
    (:func:`fairsched.workload.busy_lower_bound` / (arrival span x n); > 1: provably overloaded)."""
    from fairsched.workload import busy_lower_bound

    lb = busy_lower_bound(w, cost, inst)
    return lb["busy_s"] / (max(lb["span_s"], 1e-9) * n)


WHY = ("Why: the reduction is a ratio of mean TTFTs, so it is largest where the baseline is past saturation and "
       "LMetric is not: the cache-blind vLLM-v1 computes the most prefill (lowest hit rate), so its queue grows "
       "first as the replay speeds up, and its mean TTFT then grows with the trace's length, not to a steady value; "
       "once LMetric saturates too (the utilisation bound, for every router, nears 1) the ratio falls back. Below "
       "saturation the gain is the hit rate's alone.")
"""Why the paper's figures are (not) reached where they are; the numbers are in the notes' load axis."""


def _measure(res) -> dict:
    from fairsched.analysis import cache_hit_rate, latency_stats

    ls = latency_stats(res)
    return {k: ls[k] for k in ("ttft_mean_s", "ttft_p50_s", "ttft_p99_s", "tpot_mean_s", "tpot_p50_s")} | {
        "hit_rate": cache_hit_rate(res)}


def run_lmetric_routing(quick: bool, cost=None, out: Path | None = None) -> ClaimResult:
    """Claim 5: LMetric vs vLLM-v1 and a tuned linear score on the Mooncake trace, 16 instances."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from fairsched.analysis.colors import scheduler_colors
    from fairsched.policies import make_router
    from fairsched.workload import load_trace

    cost, inst = cm.hardware(cost, cm.A100)
    w = load_trace(cm.trace_path(MOONCAKE_TRACE), "mooncake")
    if quick:
        w = w.head(3000)
    lams = [0.3, 0.5, 0.7, 0.9] if quick else [round(0.1 * k, 1) for k in range(11)]
    speeds = [1.0] if quick else [1.0, 1.5, 2.0, 2.5, 2.75, 3.0, 4.0]  # 2.5-2.75x: where vLLM-v1 saturates
    instance_axis = [] if quick else [8, 12]  # at 1x: fewer instances = more load per instance

    def job(wl, name, n=LMETRIC_INSTANCES, **kw):
        return SimJob(wl, "fcfs", cost, inst, router=make_router(name, **kw), n_instances=n, measure=_measure)

    wls = {sp: w.replayed(sp) for sp in speeds}
    jobs = {(name, sp, LMETRIC_INSTANCES): job(wls[sp], name) for sp in speeds for name in ("vllm-v1", "lmetric")}
    jobs |= {("lam", lam): job(wls[1.0], "linear", lam=lam) for lam in lams}
    jobs |= {(name, 1.0, n): job(w, name, n) for n in instance_axis for name in ("vllm-v1", "lmetric")}
    got = run_jobs(jobs, desc="claim 5: routers x load, lam")
    sweep = {lam: got["lam", lam] for lam in lams}
    best_lam = min(sweep, key=lambda k: sweep[k]["ttft_mean_s"])
    got |= run_jobs({("linear", sp, LMETRIC_INSTANCES): job(wls[sp], "linear", lam=best_lam) for sp in speeds
                     if sp != 1.0} | {("linear", 1.0, n): job(w, "linear", n, lam=best_lam) for n in instance_axis},
                    desc="claim 5: linear at the best lam")
    loads = {}
    for sp in speeds:
        r = {name: got[name, sp, LMETRIC_INSTANCES] for name in ("vllm-v1", "lmetric")}
        r["linear"] = sweep[best_lam] if sp == 1.0 else got["linear", sp, LMETRIC_INSTANCES]
        loads[sp] = r
    by_n = {n: {name: got[name, 1.0, n] for name in ("vllm-v1", "lmetric", "linear")} for n in instance_axis}
    curve = [{"speed": sp, "instances": LMETRIC_INSTANCES, "rho": _utilisation(wls[sp], cost, inst, LMETRIC_INSTANCES),
              **_reductions(r)} for sp, r in loads.items()]
    curve += [{"speed": 1.0, "instances": n, "rho": _utilisation(w, cost, inst, n), **_reductions(r)}
              for n, r in by_n.items()]
    base = loads[1.0]
    values = {"ttft_vs_vllm": cm.pct(base["lmetric"]["ttft_mean_s"], base["vllm-v1"]["ttft_mean_s"]),
              "ttft_vs_linear": cm.pct(base["lmetric"]["ttft_mean_s"], base["linear"]["ttft_mean_s"]),
              "tpot_vs_vllm": cm.pct(base["lmetric"]["tpot_mean_s"], base["vllm-v1"]["tpot_mean_s"]),
              "tpot_vs_linear": cm.pct(base["lmetric"]["tpot_mean_s"], base["linear"]["tpot_mean_s"])}

    fig = make_subplots(rows=1, cols=4, subplot_titles=("mean TTFT [s]", "mean TPOT [ms]",
                                                        "linear score: mean TTFT vs lam",
                                                        f"LMetric's TTFT change [%], {LMETRIC_INSTANCES} instances"))
    names = ["vllm-v1", f"linear (lam={best_lam:g})", "lmetric"]
    keys = ["vllm-v1", "linear", "lmetric"]
    colors = scheduler_colors([f"{sp:g}x trace rate" for sp in speeds])  # one colour per load (run) in both panels
    for sp in speeds:
        lab = f"{sp:g}x trace rate"
        color = colors[lab]
        fig.add_trace(go.Bar(x=names, y=[loads[sp][k]["ttft_mean_s"] for k in keys], name=lab, marker_color=color),
                      row=1, col=1)
        fig.add_trace(go.Bar(x=names, y=[1000 * loads[sp][k]["tpot_mean_s"] for k in keys], name=lab,
                             marker_color=color, showlegend=False), row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=1)  # 1.2 s at 1x to minutes past saturation
    fig.add_trace(go.Scatter(x=list(sweep), y=[v["ttft_mean_s"] for v in sweep.values()], mode="lines+markers",
                             name="linear (1x)", line_color="#444"), row=1, col=3)
    fig.update_yaxes(type="log", row=1, col=3)  # lam = 1 (KV-miss only) queues everything on a few instances
    fig.add_hline(y=base["lmetric"]["ttft_mean_s"], line_dash="dash", row=1, col=3, annotation_text="LMetric")
    fig.add_hline(y=base["vllm-v1"]["ttft_mean_s"], line_dash="dot", row=1, col=3, annotation_text="vLLM-v1")
    fig.update_xaxes(title_text="lam (weight of the KV-miss term)", row=1, col=3)
    on16 = [c for c in curve if c["instances"] == LMETRIC_INSTANCES]
    for key, vs, paper, color in (("ttft_vs_vllm", "vLLM-v1", -92.0, "#000"), ("ttft_vs_linear", "linear", -52.0, "#999")):
        fig.add_trace(go.Scatter(x=[c["speed"] for c in on16], y=[c[key] for c in on16], mode="lines+markers",
                                 name=f"LMetric vs {vs}", line_color=color), row=1, col=4)
        fig.add_hline(y=paper, line_dash="dot", line_color=color, row=1, col=4, annotation_text=f"paper vs {vs}")
    fig.update_xaxes(title_text="replay speed (x the trace's rate)", row=1, col=4)
    cm.layout(fig, f"Claim 5: LMetric routing on the Mooncake conversation trace, {LMETRIC_INSTANCES} instances")

    summary = (f"TTFT {values['ttft_vs_vllm']:+.0f}% / {values['ttft_vs_linear']:+.0f}%, "
               f"TPOT {values['tpot_vs_vllm']:+.0f}% / {values['tpot_vs_linear']:+.0f}% (vs vLLM-v1 / linear "
               f"lam={best_lam:g})")
    worst_lam = max(sweep, key=lambda k: sweep[k]["ttft_mean_s"])
    other = [f"{sp:g}x: TTFT {cm.pct(r['lmetric']['ttft_mean_s'], r['vllm-v1']['ttft_mean_s']):+.0f}% / "
             f"{cm.pct(r['lmetric']['ttft_mean_s'], r['linear']['ttft_mean_s']):+.0f}%, TPOT "
             f"{cm.pct(r['lmetric']['tpot_mean_s'], r['vllm-v1']['tpot_mean_s']):+.0f}% / "
             f"{cm.pct(r['lmetric']['tpot_mean_s'], r['linear']['tpot_mean_s']):+.0f}%" for sp, r in loads.items() if sp != 1.0]
    reach = _where_reached(curve)
    notes = (f"{reach} Means over finished requests at the trace's recorded arrival rate. The linear score was tuned on this "
             f"trace (lam in {lams[0]:g}..{lams[-1]:g}, best by mean TTFT: lam = {best_lam:g}; the paper's production "
             f"value for chat is 0.7); its mean TTFT ranges from {sweep[best_lam]['ttft_mean_s']:.2f} s (lam = {best_lam:g}) "
             f"to {sweep[worst_lam]['ttft_mean_s']:.2f} s (lam = {worst_lam:g}) over the sweep, the sensitivity the "
             f"product score avoids. p50 TTFT: vLLM-v1 {base['vllm-v1']['ttft_p50_s']:.2f} s, linear {base['linear']['ttft_p50_s']:.2f} s, "
             f"LMetric {base['lmetric']['ttft_p50_s']:.2f} s; hit rate {base['vllm-v1']['hit_rate']:.0%} / "
             f"{base['linear']['hit_rate']:.0%} / {base['lmetric']['hit_rate']:.0%}. "
             + ("Trace replayed faster: " + "; ".join(other) + ". " + WHY if other
                else "Full mode adds the load axis (replay 1.5x-4x, 8 and 12 instances)."))
    setup = (f"{MOONCAKE_TRACE} ({len(w)} requests{', first 3000' if quick else ''}, client = prefix class); "
             f"{LMETRIC_INSTANCES} instances, local FCFS, each {cm.hw_text(cost, inst)}; "
             f"linear lam swept {lams}")
    return ClaimResult(values=values, summary=summary, setup=setup, notes=notes, figure=fig,
                       data={"loads": {str(k): v for k, v in loads.items()}, "load_axis": curve,
                             "instances_axis": {str(k): v for k, v in by_n.items()},
                             "lam_sweep": {str(k): v for k, v in sweep.items()}, "best_lam": best_lam})


CLAIM = Claim(
    id="lmetric-routing", number=5,
    title="LMetric vs vLLM-v1 and a tuned linear score (16 instances, Mooncake)",
    source=f"{cm.LMETRIC}, evaluation",
    paper_figure="TTFT -92% / -52%, TPOT -21% / -20% vs vLLM-v1 / production linear scheduler; linear needs "
                 "lam tuned per workload (0.7 chat, 0.55 API)",
    metric="mean TTFT and mean TPOT of LMetric's P*(B+1) routing vs vLLM-v1 (4 waiting + running) and vs the "
           "linear score with the best lam of a sweep, change in percent",
    setup="mooncake_conversation at recorded rate, 16 A100s, local FCFS, KV 439k tok; full mode adds a load axis "
          "(replay 1.5x-4x on 16, and 8 and 12 instances at 1x)",
    checks=(
        Check("ttft_vs_vllm", "TTFT vs vLLM-v1", paper=-92.0, neutral=0.0, fmt="{:+.0f}%", noise=2.0),
        Check("ttft_vs_linear", "TTFT vs linear", paper=-52.0, neutral=0.0, fmt="{:+.0f}%", noise=2.0),
        Check("tpot_vs_vllm", "TPOT vs vLLM-v1", paper=-21.0, neutral=0.0, fmt="{:+.0f}%", noise=2.0),
        Check("tpot_vs_linear", "TPOT vs linear", paper=-20.0, neutral=0.0, fmt="{:+.0f}%", noise=2.0),
    ),
    run=run_lmetric_routing,
    needs=(MOONCAKE_TRACE,),
    caveats="Differences: the paper's own traces, model, hardware and arrival rates are not ours (one public Mooncake "
            "trace, replayed at its recorded rate; the gain changes with load, see the load axis), the "
            "production linear scheduler's exact features are unknown (ours: normalised KV-miss and load). "
            "A faithful number needs the paper's traces and load level.",
)
