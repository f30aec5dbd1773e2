"""Claim 1: DLPM vs VTC total-token throughput (and LPM, the locality ceiling).

Signature and conventions of ``run_*``: :mod:`fairsched.reproduce.common`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fairsched.reproduce import common as cm
from fairsched.reproduce.base import Check, Claim, ClaimResult
from fairsched.reproduce.jobs import SimJob, run_jobs


def _dlpm_workloads(quick: bool) -> dict:
    from fairsched.workload import (
        llm_as_judge,
        long_document_qa,
        mixed,
        multi_turn_chat,
        tree_of_thought,
    )

    return {
        "long-doc QA": long_document_qa(questions_per_client=20, **cm.DOC_QA_KW),
        "tree-of-thought": tree_of_thought(n_clients=16, depth=3, branching=3, trees_per_client=2 if quick else 4,
                                           prefix_tokens=(600, 1000), rate=0.5, step_time=0.5, seed=0),
        "LLM-as-judge": llm_as_judge(n_clients=32, requests_per_client=8 if quick else 20,
                                     rubric_tokens=(2000, 4000), answer_tokens=(200, 800),
                                     output_tokens=(8, 64), rate=1.0, seed=0),
        "multi-turn chat": multi_turn_chat(n_clients=64 if quick else 128, turns=8, conversations_per_client=1,
                                           user_tokens=(200, 2000), output_tokens=(50, 400), think_time=1.0,
                                           seed=0),
        "mix": mixed(seed=0, scale=1.0, duration=30.0 if quick else 90.0),
    }


def _measure(res) -> dict:
    from fairsched.analysis import cache_hit_rate, jain_index, max_service_gap, throughput_tok_s

    return {"throughput_tok_s": throughput_tok_s(res)["throughput_tok_s"], "hit_rate": cache_hit_rate(res),
            "jain": jain_index(res), "max_gap": max_service_gap(res).gap}


def _throughput(res) -> float:
    from fairsched.analysis import throughput_tok_s

    return throughput_tok_s(res)["throughput_tok_s"]


def run_dlpm_throughput(quick: bool, cost=None, out: Path | None = None) -> ClaimResult:
    """Claim 1: total token throughput of DLPM vs VTC (and LPM, the locality ceiling)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cost, inst = cm.hardware(cost, cm.A100)
    wls = _dlpm_workloads(quick)
    sweep_q = [2048.0] if quick else [512.0, 2048.0, 8192.0]
    sweep_wl = ["long-doc QA"] if quick else ["long-doc QA", "multi-turn chat"]
    jobs = {(name, p, None): SimJob(w, p, cost, inst, measure=_measure) for name, w in wls.items()
            for p in ("vtc", "dlpm", "lpm")}
    jobs |= {(name, "dlpm", q): SimJob(wls[name], "dlpm", cost, inst, quantum=q, measure=_throughput)
             for name in sweep_wl for q in sweep_q}
    got = run_jobs(jobs, desc="claim 1: workloads x policies, Q^u")
    rows = {}
    for name, w in wls.items():
        r = {"quantum": cm.quantum_u(w)}
        for p in ("vtc", "dlpm", "lpm"):
            r[p] = got[name, p, None]
        r["n_requests"] = len(w)
        r["n_clients"] = len(w.clients)
        r["dlpm_over_vtc"] = cm.ratio(r["dlpm"]["throughput_tok_s"], r["vtc"]["throughput_tok_s"])
        r["lpm_over_vtc"] = cm.ratio(r["lpm"]["throughput_tok_s"], r["vtc"]["throughput_tok_s"])
        rows[name] = r
    sweep: dict[str, dict[float, float | None]] = {}
    for name in sweep_wl:
        vtc = rows[name]["vtc"]["throughput_tok_s"]
        sweep[name] = {rows[name]["quantum"]: rows[name]["dlpm_over_vtc"]}
        for q in sweep_q:
            sweep[name][q] = cm.ratio(got[name, "dlpm", q], vtc)
        sweep[name] = dict(sorted(sweep[name].items()))
    best = max(rows, key=lambda k: rows[k]["dlpm_over_vtc"] or 0.0)
    ratio = rows[best]["dlpm_over_vtc"]
    # how much the headline depends on the memory budget: the best workload at other KV sizes
    kv_sweep = {inst.kv_capacity_tokens: ratio}
    kv_insts = [replace(inst, kv_capacity_tokens=int(inst.kv_capacity_tokens * f))
                for f in ((0.9, 1.1) if quick else (0.75, 0.9, 1.1, 1.25))]
    th = run_jobs({(k.kv_capacity_tokens, p): SimJob(wls[best], p, cost, k, measure=_throughput)
                   for k in kv_insts for p in ("vtc", "dlpm")}, desc="claim 1: KV capacity")
    for k in kv_insts:
        kv_sweep[k.kv_capacity_tokens] = cm.ratio(th[k.kv_capacity_tokens, "dlpm"], th[k.kv_capacity_tokens, "vtc"])
    kv_sweep = dict(sorted(kv_sweep.items()))

    fig = make_subplots(rows=1, cols=3, column_widths=[0.44, 0.28, 0.28],
                        subplot_titles=("throughput / VTC's, per workload (Q^u = max(w_p L_in, w_q O_max))", "DLPM / VTC vs Q^u",
                                        f"DLPM / VTC vs KV capacity ({best})"))
    names = list(rows)
    for p, color in (("vtc", "#888"), ("dlpm", "#1f77b4"), ("lpm", "#ff7f0e")):
        y = [cm.ratio(rows[n][p]["throughput_tok_s"], rows[n]["vtc"]["throughput_tok_s"]) for n in names]
        fig.add_trace(go.Bar(x=names, y=y, name=p.upper(), marker_color=color,
                             text=[f"{v:.2f}x" for v in y], textposition="outside"), row=1, col=1)
    fig.add_hline(y=2.87, line_dash="dash", line_color="red", annotation_text="paper: up to 2.87x", row=1, col=1)
    for name, s in sweep.items():
        fig.add_trace(go.Scatter(x=list(s), y=list(s.values()), mode="lines+markers", name=f"DLPM/VTC, {name}"),
                      row=1, col=2)
    fig.add_hline(y=1.0, line_dash="dot", line_color="#888", row=1, col=2)
    fig.update_xaxes(type="log", title_text="Q^u [service units]", row=1, col=2)
    fig.add_trace(go.Scatter(x=list(kv_sweep), y=list(kv_sweep.values()), mode="lines+markers",
                             name=f"DLPM/VTC vs KV, {best}"), row=1, col=3)
    fig.add_hline(y=2.87, line_dash="dash", line_color="red", row=1, col=3)
    fig.update_xaxes(title_text="KV capacity [tokens]", row=1, col=3)
    fig.update_yaxes(title_text="x VTC", row=1, col=1)
    cm.layout(fig, "Claim 1: DLPM vs VTC throughput (one A100, Llama-3.1-8B roofline)")

    summary = f"up to {ratio:.2f}x ({best}); " + ", ".join(
        f"{n} {rows[n]['dlpm_over_vtc']:.2f}x" for n in names if n != best)
    notes = ("DLPM/VTC total-token throughput with Q^u = max(w_p L_in, w_q O_max) of each workload: " + ", ".join(
        f"{n} {rows[n]['dlpm_over_vtc']:.2f}x (Q^u {rows[n]['quantum']:,.0f}, hit {rows[n]['vtc']['hit_rate']:.0%} -> "
        f"{rows[n]['dlpm']['hit_rate']:.0%}, LPM {rows[n]['lpm_over_vtc']:.2f}x)" for n in names)
        + ". LPM is the locality ceiling DLPM approaches as Q^u grows. The ratio is set by cache pressure (prefixes "
        "larger than KV memory: doc QA, chat) and by Q^u: "
        + "; ".join(f"{n}: " + ", ".join(f"Q^u={q:,.0f} {v:.2f}x" for q, v in s.items()) for n, s in sweep.items())
        + f". It is just as sensitive to the memory budget: {best} at KV " + ", ".join(
            f"{k:,} tokens {v:.2f}x" for k, v in kv_sweep.items()) + " (the profile's KV is "
        f"{inst.kv_capacity_tokens:,}). With Q^u far below a cache miss's cost, a client that just paid a miss waits cost/Q^u refill rounds "
        "while the others' misses evict its prefix, and DLPM can fall below VTC. Workloads whose shared prefixes fit "
        "in KV memory (tree-of-thought, judge, mix here) show ~1x under every policy. Fairness cost, DLPM vs "
        "VTC: max service gap " + ", ".join(
            f"{n} {rows[n]['dlpm']['max_gap']:,.0f} vs {rows[n]['vtc']['max_gap']:,.0f}" for n in names)
        + "; Jain's index " + ", ".join(f"{n} {cm.fmt(rows[n]['dlpm']['jain'])} vs {cm.fmt(rows[n]['vtc']['jain'])}"
                                        for n in names)
        + " (with Q^u = max(w_p L_in, w_q O_max) a client whose prefix is cached is served for a whole quantum, so service rates while "
        "backlogged spread out, while the gap stays within a small factor of VTC's).")
    setup = (f"1 instance, {cm.hw_text(cost, inst)}; DLPM Q^u = max(w_p L_in, w_q O_max); "
             + "; ".join(f"{n}: {rows[n]['n_requests']} requests / {rows[n]['n_clients']} clients" for n in names)
             + "; throughput = (prompt + output tokens) / makespan, arrivals saturate the instance")
    return ClaimResult(values={"max_ratio": ratio}, summary=summary, setup=setup, notes=notes, figure=fig,
                       data={"per_workload": rows, "quantum_sweep": {n: {str(q): v for q, v in s.items()}
                                                                      for n, s in sweep.items()},
                             "kv_sweep": {"workload": best, "ratios": {str(k): v for k, v in kv_sweep.items()}}})


CLAIM = Claim(
    id="dlpm-throughput", number=1,
    title="DLPM keeps LPM's locality: throughput vs VTC",
    source=f"{cm.DLPM}, abstract and Sec. 6",
    paper_figure="up to 2.87x the throughput of VTC (LooGLE doc QA, ToT, LLM-as-judge, multi-turn chat, mix)",
    metric="total token throughput (prompt + output tokens / makespan) of DLPM over VTC's, best of five "
           "saturating workloads",
    setup="1 A100 (Llama-3.1-8B roofline), KV 439k tok, Q^u = max(w_p L_in, w_q O_max); doc QA, ToT, judge, chat, mix",
    checks=(Check("max_ratio", "DLPM/VTC throughput (best workload)", paper=2.87, neutral=1.0, fmt="{:.2f}x"),),
    run=run_dlpm_throughput,
    caveats="Differences from the paper: a simulator with a roofline cost model (MFU 0.5, MBU 0.8 assumed) instead "
            "of SGLang on real GPUs; synthetic workloads shaped like LooGLE / GSM8K-ToT / judge / Chatbot Arena, not "
            "the datasets; the paper's Q^u, client counts and KV size were not recovered. The ratio is a function of "
            "cache pressure and Q^u (see the sweep), so a faithful number needs the paper's exact workload sizes, "
            "memory budget and Q^u, or a run of SGLang itself.",
)
