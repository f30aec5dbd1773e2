"""Claim 3: per-client latency of D²LPM vs Preble (its E2 global scheduler,
:class:`~fairsched.policies.routers.Preble`, with local LPM); SGLang's cache-aware router is
kept as a second baseline.

Signature and conventions of ``run_*``: :mod:`fairsched.reproduce.common`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fairsched.reproduce import common as cm
from fairsched.reproduce.base import Check, Claim, ClaimResult
from fairsched.reproduce.jobs import SimJob, run_jobs


def _d2lpm_configs(quick: bool) -> list[tuple[int, float, float]]:
    """(instances, mixed() rate scale, duration s): the default mix replicated per instance."""
    return [(4, 4.0, 60.0)] if quick else [(4, 4.0, 60.0), (8, 8.0, 45.0)]


def _measure(res) -> dict:
    from fairsched.analysis import cache_hit_rate, jain_index, latency_stats

    return {"e2e_per_client_s": res.requests_frame().groupby("client")["e2e_s"].mean().to_dict(),
            "e2e_mean_s": latency_stats(res)["e2e_mean_s"], "hit_rate": cache_hit_rate(res), "jain": jain_index(res)}


def run_d2lpm_latency(quick: bool, cost=None, out: Path | None = None) -> ClaimResult:
    """Claim 3: per-client latency of D²LPM vs Preble (and SGLang's cache-aware router)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from fairsched.policies import default_quantum, make_router
    from fairsched.workload import mixed

    cost, inst = cm.hardware(cost, cm.A100)
    configs = _d2lpm_configs(quick)
    wls = {n: mixed(seed=0, scale=scale, duration=dur) for n, scale, dur in configs}
    combos = {n: (("Preble + LPM", make_router("preble", cost=cost), "lpm"),
                  ("cache-aware + LPM", make_router("sglang-cache-aware"), "lpm"),
                  ("D²LPM", make_router("d2lpm", quantum_w=default_quantum(wls[n])), "dlpm"))  # Q^w: the CLI's default
              for n, _, _ in configs}
    got = run_jobs({(n, label): SimJob(wls[n], pol, cost, inst, router=router, n_instances=n, measure=_measure)
                    for n, _, _ in configs for label, router, pol in combos[n]}, desc="claim 3: routers x clusters")
    runs = {}
    for n, _, _ in configs:
        w = wls[n]
        per = {label: got[n, label] for label, _, _ in combos[n]}
        base, d2 = per["Preble + LPM"]["e2e_per_client_s"], per["D²LPM"]["e2e_per_client_s"]
        per["speedup_per_client"] = {c: cm.ratio(base[c], d2[c]) for c in w.clients}
        sg = per["cache-aware + LPM"]["e2e_per_client_s"]
        per["speedup_vs_cache_aware"] = {c: cm.ratio(sg[c], d2[c]) for c in w.clients}
        per["n_requests"] = len(w)
        runs[f"{n} instances"] = per
    best_cfg, best_client, best = None, None, -math.inf
    all_sp = []
    for key, per in runs.items():
        for c, v in per["speedup_per_client"].items():
            all_sp.append(v)
            if v is not None and v > best:
                best_cfg, best_client, best = key, c, v
    worse = sorted({c for per in runs.values() for c, v in per["speedup_per_client"].items() if v is not None and v < 1})

    fig = make_subplots(rows=1, cols=len(runs), subplot_titles=[f"{k}: mean latency per client [s]" for k in runs])
    for j, per in enumerate(runs.values(), start=1):
        clients = list(per["speedup_per_client"])
        for label, color in (("Preble + LPM", "#d62728"), ("cache-aware + LPM", "#ff7f0e"), ("D²LPM", "#1f77b4")):
            fig.add_trace(go.Bar(x=clients, y=[per[label]["e2e_per_client_s"][c] for c in clients], name=label,
                                 marker_color=color, showlegend=j == 1), row=1, col=j)
    cm.layout(fig, "Claim 3: D²LPM vs Preble (and SGLang cache-aware), per-client end-to-end latency")

    summary = (f"up to {best:.2f}x lower ({best_client}, {best_cfg}); median over clients "
               f"{float(np.median([v for v in all_sp if v is not None])):.2f}x")
    sg_best = max((v for per in runs.values() for v in per["speedup_vs_cache_aware"].values() if v is not None),
                  default=None)
    notes = ("Per-client mean end-to-end latency under Preble's E2 global scheduler (exploit a cached prefix longer "
             "than the rest, else argmin of window load + prefill time; rebalancing at 2x) with local LPM, divided "
             "by D²LPM's (Q^w = max(w_p L_in, w_q O_max), local DLPM Q^u = max(w_p L_in, w_q O_max)). "
             + "; ".join(f"{k}: mean e2e Preble {p['Preble + LPM']['e2e_mean_s']:.1f} s, SGLang cache-aware "
                         f"{p['cache-aware + LPM']['e2e_mean_s']:.1f} s, D²LPM {p['D²LPM']['e2e_mean_s']:.1f} s; hit rate "
                         f"{p['Preble + LPM']['hit_rate']:.0%} / {p['cache-aware + LPM']['hit_rate']:.0%} / "
                         f"{p['D²LPM']['hit_rate']:.0%}" for k, p in runs.items())
            + (f". Against SGLang's cache-aware router instead: up to {sg_best:.2f}x" if sg_best else "")
            + f". D²LPM is slower for {', '.join(worse) or 'no client'} (its deficits move latency between clients "
            "instead of removing it: the request-weighted means above are close), so 'up to' picks the client that "
            "gains most.")
    setup = ("; ".join(f"{n} instances, mixed(scale={s:g}, {d:g} s) = {runs[f'{n} instances']['n_requests']} requests"
                       for n, s, d in configs) + f"; per instance {cm.hw_text(cost, inst)}")
    return ClaimResult(values={"max_client_speedup": best}, summary=summary, setup=setup, notes=notes,
                       figure=fig, data={"runs": runs})


CLAIM = Claim(
    id="d2lpm-latency", number=3,
    title="D²LPM vs Preble: per-client latency",
    source=f"{cm.DLPM}, abstract and Sec. 6 (distributed)",
    paper_figure="up to 7.18x lower per-client latency than Preble",
    metric="per-client mean end-to-end latency, Preble (E2 router) + LPM divided by D²LPM + DLPM; the largest "
           "ratio over clients and cluster sizes",
    setup="default mix x4 on 4 A100s (+ x8 on 8 in full mode), Q^u = Q^w = max(w_p L_in, w_q O_max)",
    checks=(Check("max_client_speedup", "latency ratio (best client)", paper=7.18, neutral=1.0, fmt="{:.2f}x"),),
    run=run_d2lpm_latency,
    caveats="Preble's global scheduler is re-implemented from the paper and its repository (E2 exploit/explore, "
            "windowed prefill + decode load, rebalancing); not modelled: its eviction-cost term, its TTFT-doubling "
            "prefix autoscaler and its priority-based local scheduler (local LPM instead). The paper's workloads "
            "and GPU counts (1-8) were not recovered.",
)
