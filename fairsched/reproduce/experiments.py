"""The six experiments behind :mod:`fairsched.reproduce.claims`.

Each ``run_*`` function has the signature ``run(quick, cost, out) -> ClaimResult``:
``quick`` shrinks the workloads and sweeps (each claim then runs in well under a minute
on two CPU cores), ``cost`` replaces the claim's default cost model when not None (a
model calibrated with ``fairsched calibrate``), ``out`` is unused (claims keep their raw
numbers in ``ClaimResult.data``, which goes into ``reproduce.json``).

Every number comes from :func:`fairsched.sim.simulate` and
:mod:`fairsched.analysis.metrics`; the bounds from :mod:`fairsched.theory.fairness`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from fairsched.reproduce.base import ClaimResult

# ------------------------------------------------------------------------------ shared setup
A100 = "a100-llama3-8b"
A10G = "a10g-llama2-7b"


def quantum_u(workload) -> float:
    """DLPM's ``Q^u`` in claims 1-3 [service units]: ``U = max(w_p L_in, w_q M)`` of the workload.

    ``Q^u = U`` lets a client's largest request through in one refill round, and keeps
    the proved bound ``2 (Q^u + X) <= 2 (U + X)`` within a factor 2 of its ``Q^u -> 0``
    value (``X >= U`` up to the cached part). With ``Q^u`` much below the cost of a cache
    miss, a client that just paid a miss stays ineligible for ``cost / Q^u`` rounds while
    the other clients' misses evict the prefix it has just cached, and DLPM falls back to
    VTC's round robin (claim 1's sweep shows it; the kit's class default is 2048).
    """
    from fairsched.policies import ServiceWeights, default_quantum

    return default_quantum(workload, ServiceWeights(*WEIGHTS))


WEIGHTS = (1.0, 2.0)  # VTC's w_p, w_q


def _hardware(cost, profile: str, **instance_overrides):
    """``(CostModel, InstanceConfig)`` of a hardware profile (``fairsched.sim.profiles``), the
    cost model replaced by ``cost`` when one is given (``--cost-model``)."""
    from fairsched.sim.profiles import hardware_profile

    default_cost, inst = hardware_profile(profile, **instance_overrides)
    return (cost if cost is not None else default_cost), inst


def _hw_text(cost, inst) -> str:
    return (f"cost model {cost.name}, KV {inst.kv_capacity_tokens:,} tokens, batch <= {inst.max_batch_size}, "
            f"token budget {inst.token_budget}")


def _pct(a: float | None, b: float | None) -> float | None:
    """Change of ``a`` relative to ``b`` in percent (None if undefined)."""
    if a is None or b is None or not b:
        return None
    return 100.0 * (a / b - 1.0)


def _f(v, spec: str = ".2f") -> str:
    return "n/a" if v is None else format(v, spec)


def _ratio(a, b) -> float | None:
    if a is None or b is None or not b:
        return None
    return float(a) / float(b)


def measured_x(result, w_p: float = 1.0, w_q: float = 2.0) -> float:
    """An upper bound on the ``X`` of a run (``proofs/vtc_upper_bound.md``).

    ``X`` = max over admissions of ``w_p * (uncached prompt of r) + w_q * (decode tokens
    still to come of r and of its client's other running requests)``. We do not log how
    many tokens a running request has generated at a given instant, so each running
    request is charged its *whole* output: the value returned is >= X, and a bound
    ``2 (Q^u + X)`` evaluated with it is still a valid (slightly looser) bound.
    """
    df = result.requests_frame()
    adm = df["admit_t"].to_numpy(dtype=float)
    fin = df["finish_t"].to_numpy(dtype=float)
    fin = np.where(np.isfinite(fin), fin, np.inf)
    out = df["output_len"].to_numpy(dtype=float)
    unc = (df["input_len"] - df["cached_tokens"]).to_numpy(dtype=float)
    cl = df["client"].to_numpy(dtype=str)
    best = 0.0
    for c in np.unique(cl):
        m = np.flatnonzero((cl == c) & np.isfinite(adm))
        if not m.size:
            continue
        a, f, o, u = adm[m], fin[m], out[m], unc[m]
        for lo in range(0, m.size, 1024):  # chunks keep the matrix small
            aj = a[lo:lo + 1024, None]
            running = (a[None, :] <= aj) & (f[None, :] > aj)
            best = max(best, float((w_p * u[lo:lo + 1024] + w_q * (running * o[None, :]).sum(axis=1)).max()))
    return best


def _gap_without_end_events(result, gap) -> dict:
    """The witness of a :class:`~fairsched.analysis.metrics.GapReport` recomputed without the
    service events at the closing instant ``t2`` (which may have been scheduled, in the same
    step, after the lagging client's backlog ended)."""
    t1, t2 = gap.interval
    svc = result.service_frame()
    names = list(result.clients)

    def w(c, end_inclusive):
        m = (svc["client"] == names.index(c)) & ((svc["t"] >= t1) if gap.left_closed else (svc["t"] > t1))
        m &= (svc["t"] <= t2) if end_inclusive else (svc["t"] < t2)
        return float(svc.loc[m, "amount"].sum())

    f, g = gap.pair
    return {"f": f, "g": g, "t1": t1, "t2": t2, "open_gap": w(f, False) - w(g, False),
            "f_at_end": w(f, True) - w(f, False), "g_at_end": w(g, True) - w(g, False)}


def proved_dlpm_bound(quantum: float, x: float, w_p: float = 1.0, w_q: float = 2.0) -> float:
    """``2 (Q^u + X)`` from :func:`fairsched.theory.fairness.dlpm_gap_bound`."""
    from fairsched.theory.fairness import dlpm_gap_bound, evaluate

    return evaluate(dlpm_gap_bound(), Q_u=quantum, X=x, w_p=w_p, w_q=w_q)


def published_dlpm_bound(quantum: float, u: float) -> float:
    """The published ``2 (U + Q^u)`` (refuted in our model, shown for comparison)."""
    from fairsched.theory.fairness import dlpm_gap_bound_published, evaluate

    return evaluate(dlpm_gap_bound_published(), Q_u=quantum, U=u)


def _simulate(workload, policy: str, cost, instance=None, *, quantum: float | None = None, router=None,
              n_instances: int = 1):
    from fairsched.policies import ServiceWeights, make_policy_factory
    from fairsched.sim import simulate

    weights = ServiceWeights(*WEIGHTS)
    params = {"quantum": quantum if quantum is not None else quantum_u(workload)} if policy == "dlpm" else {}
    return simulate(workload, make_policy_factory(policy, weights, **params), router=router,
                    n_instances=n_instances, instance=instance, cost=cost, weights=weights)


def _layout(fig, title: str, height: int = 420):
    fig.update_layout(title=title, template="plotly_white", height=height, legend_title_text="")
    return fig


# ------------------------------------------------------------------------------ claim 1
DOC_QA_KW = dict(n_clients=32, doc_tokens=(24000, 32000), question_tokens=(30, 120),
                 output_tokens=(16, 256), rate=1.0, seed=0)
"""Long-document QA for claims 1 and 6: 32 clients, one 24-32k-token document each
(LooGLE-like), 1 question/s each. Its documents (~0.9M tokens) are about 2x the
A100 profile's KV capacity (439k tokens), so which client is served decides the hit rate."""


def _dlpm_workloads(quick: bool) -> dict:
    from fairsched.workload import (
        llm_as_judge,
        long_document_qa,
        mixed,
        multi_turn_chat,
        tree_of_thought,
    )

    return {
        "long-doc QA": long_document_qa(questions_per_client=20, **DOC_QA_KW),
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


def run_dlpm_throughput(quick: bool, cost=None, out: Path | None = None) -> ClaimResult:
    """Claim 1: total token throughput of DLPM vs VTC (and LPM, the locality ceiling)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from fairsched.analysis import cache_hit_rate, jain_index, max_service_gap, throughput_tok_s

    cost, inst = _hardware(cost, A100)
    wls = _dlpm_workloads(quick)
    rows = {}
    for name, w in wls.items():
        r = {"quantum": quantum_u(w)}
        for p in ("vtc", "dlpm", "lpm"):
            res = _simulate(w, p, cost, inst)
            r[p] = {"throughput_tok_s": throughput_tok_s(res)["throughput_tok_s"],
                    "hit_rate": cache_hit_rate(res), "jain": jain_index(res), "max_gap": max_service_gap(res).gap}
        r["n_requests"] = len(w)
        r["n_clients"] = len(w.clients)
        r["dlpm_over_vtc"] = _ratio(r["dlpm"]["throughput_tok_s"], r["vtc"]["throughput_tok_s"])
        r["lpm_over_vtc"] = _ratio(r["lpm"]["throughput_tok_s"], r["vtc"]["throughput_tok_s"])
        rows[name] = r
    sweep_q = [2048.0] if quick else [512.0, 2048.0, 8192.0]
    sweep_wl = ["long-doc QA"] if quick else ["long-doc QA", "multi-turn chat"]
    sweep: dict[str, dict[float, float | None]] = {}
    for name in sweep_wl:
        w, vtc = wls[name], rows[name]["vtc"]["throughput_tok_s"]
        sweep[name] = {rows[name]["quantum"]: rows[name]["dlpm_over_vtc"]}
        for q in sweep_q:
            sweep[name][q] = _ratio(throughput_tok_s(_simulate(w, "dlpm", cost, inst, quantum=q))["throughput_tok_s"],
                                    vtc)
        sweep[name] = dict(sorted(sweep[name].items()))
    best = max(rows, key=lambda k: rows[k]["dlpm_over_vtc"] or 0.0)
    ratio = rows[best]["dlpm_over_vtc"]
    # how much the headline depends on the memory budget: the best workload at other KV sizes
    kv_sweep = {inst.kv_capacity_tokens: ratio}
    for f in ((0.9, 1.1) if quick else (0.75, 0.9, 1.1, 1.25)):
        kv_inst = replace(inst, kv_capacity_tokens=int(inst.kv_capacity_tokens * f))
        th = {p: throughput_tok_s(_simulate(wls[best], p, cost, kv_inst))["throughput_tok_s"] for p in ("vtc", "dlpm")}
        kv_sweep[kv_inst.kv_capacity_tokens] = _ratio(th["dlpm"], th["vtc"])
    kv_sweep = dict(sorted(kv_sweep.items()))

    fig = make_subplots(rows=1, cols=3, column_widths=[0.44, 0.28, 0.28],
                        subplot_titles=("throughput / VTC's, per workload (Q^u = U)", "DLPM / VTC vs Q^u",
                                        f"DLPM / VTC vs KV capacity ({best})"))
    names = list(rows)
    for p, color in (("vtc", "#888"), ("dlpm", "#1f77b4"), ("lpm", "#ff7f0e")):
        y = [_ratio(rows[n][p]["throughput_tok_s"], rows[n]["vtc"]["throughput_tok_s"]) for n in names]
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
    _layout(fig, "Claim 1: DLPM vs VTC throughput (one A100, Llama-3.1-8B roofline)")

    summary = f"up to {ratio:.2f}x ({best}); " + ", ".join(
        f"{n} {rows[n]['dlpm_over_vtc']:.2f}x" for n in names if n != best)
    notes = ("DLPM/VTC total-token throughput with Q^u = U of each workload: " + ", ".join(
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
        + "; Jain's index " + ", ".join(f"{n} {_f(rows[n]['dlpm']['jain'])} vs {_f(rows[n]['vtc']['jain'])}"
                                        for n in names)
        + " (with Q^u = U a client whose prefix is cached is served for a whole quantum, so service rates while "
        "backlogged spread out, while the gap stays within a small factor of VTC's).")
    setup = (f"1 instance, {_hw_text(cost, inst)}; DLPM Q^u = U; "
             + "; ".join(f"{n}: {rows[n]['n_requests']} requests / {rows[n]['n_clients']} clients" for n in names)
             + "; throughput = (prompt + output tokens) / makespan, arrivals saturate the instance")
    return ClaimResult(values={"max_ratio": ratio}, summary=summary, setup=setup, notes=notes, figure=fig,
                       data={"per_workload": rows, "quantum_sweep": {n: {str(q): v for q, v in s.items()}
                                                                      for n, s in sweep.items()},
                             "kv_sweep": {"workload": best, "ratios": {str(k): v for k, v in kv_sweep.items()}}})


# ------------------------------------------------------------------------------ claim 2
def run_dlpm_fairness(quick: bool, cost=None, out: Path | None = None) -> ClaimResult:
    """Claim 2: LPM starves low-sharing clients; DLPM stays within its proved bound; Jain."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from fairsched.analysis import summarize
    from fairsched.workload import default_workload, mixed

    cost, inst = _hardware(cost, A100)
    w = mixed(seed=0, scale=1.0, duration=45.0) if quick else default_workload(0)
    low = [c for c in w.clients if c.startswith("user")]  # unique prompts: no prefix sharing
    stats, ttft = {}, {}
    x_dlpm = None
    for p in ("fcfs", "lpm", "vtc", "dlpm"):
        res = _simulate(w, p, cost, inst)
        s = summarize(res, label=p)
        df = res.requests_frame()
        ttft[p] = df.groupby("client")["ttft_s"].mean().to_dict()
        stats[p] = {k: s[k] for k in ("max_service_gap", "jain_index", "throughput_tok_s", "cache_hit_rate",
                                      "ttft_mean_s", "max_cost_U", "gap_pair")}
        stats[p]["low_sharing_ttft_mean_s"] = float(np.mean([ttft[p][c] for c in low]))
        if p == "dlpm":
            x_dlpm = measured_x(res, *WEIGHTS)
    u = stats["dlpm"]["max_cost_U"]
    qu = quantum_u(w)
    bound = proved_dlpm_bound(qu, x_dlpm, *WEIGHTS)
    published = published_dlpm_bound(qu, u)
    gap_l, gap_d = stats["lpm"]["max_service_gap"], stats["dlpm"]["max_service_gap"]
    j_l, j_d = stats["lpm"]["jain_index"], stats["dlpm"]["jain_index"]
    values = {"lpm_over_dlpm_gap": _ratio(gap_l, gap_d), "dlpm_gap_over_bound": _ratio(gap_d, bound),
              "jain_gain": (j_d - j_l) if j_d is not None and j_l is not None else None}

    pols = list(stats)
    fig = make_subplots(rows=1, cols=3, column_widths=[0.3, 0.2, 0.5],
                        subplot_titles=("max service gap [units]", "Jain's index", "mean TTFT per client [s]"))
    fig.add_trace(go.Bar(x=pols, y=[stats[p]["max_service_gap"] for p in pols], name="max gap",
                         marker_color="#1f77b4", showlegend=False), row=1, col=1)
    fig.add_hline(y=bound, line_dash="dash", line_color="green", row=1, col=1,
                  annotation_text=f"proved 2(Q^u+X) = {bound:,.0f}")
    fig.add_hline(y=published, line_dash="dot", line_color="red", row=1, col=1,
                  annotation_text=f"published 2(U+Q^u) = {published:,.0f}", annotation_position="bottom right")
    fig.update_yaxes(type="log", row=1, col=1)
    fig.add_trace(go.Bar(x=pols, y=[stats[p]["jain_index"] for p in pols], marker_color="#2ca02c",
                         showlegend=False), row=1, col=2)
    fig.update_yaxes(range=[0, 1], row=1, col=2)
    clients = w.clients
    for p, color in (("lpm", "#ff7f0e"), ("dlpm", "#1f77b4"), ("vtc", "#888")):
        fig.add_trace(go.Bar(x=clients, y=[ttft[p].get(c) for c in clients], name=p.upper(), marker_color=color),
                      row=1, col=3)
    fig.update_yaxes(type="log", row=1, col=3)
    _layout(fig, f"Claim 2: fairness of DLPM vs LPM ({w.name}, one A100)")

    summary = (f"max gap LPM {gap_l:,.0f} vs DLPM {gap_d:,.0f} ({values['lpm_over_dlpm_gap']:.1f}x); DLPM gap = "
               f"{values['dlpm_gap_over_bound']:.0%} of proved bound {bound:,.0f}; Jain FCFS {stats['fcfs']['jain_index']:.2f}, "
               f"LPM {j_l:.2f}, VTC {stats['vtc']['jain_index']:.2f}, DLPM {j_d:.2f}")
    notes = (f"Low-sharing clients ({', '.join(low)}, unique prompts) wait {stats['lpm']['low_sharing_ttft_mean_s']:.1f} s "
             f"for their first token under LPM vs {stats['dlpm']['low_sharing_ttft_mean_s']:.1f} s under DLPM "
             f"(VTC {stats['vtc']['low_sharing_ttft_mean_s']:.1f} s); LPM's largest gap is between "
             f"{' and '.join(stats['lpm']['gap_pair'] or ['-'])}. Proved bound 2(Q^u + X) with Q^u = U = {qu:,.0f} and X <= {x_dlpm:,.0f} "
             f"measured on the DLPM run (each running request charged its whole output; X is large because a "
             f"client has many requests running at once: U = {u:,.0f}). The published 2(U + Q^u) = {published:,.0f} "
             f"is refuted in our model in general (proofs/dlpm_bound.md); on this run DLPM's gap is "
             f"{'within' if gap_d <= published else 'above'} it. Jain's index of service rates while backlogged, "
             f"clients backlogged < 1% of the makespan left out (fairsched.analysis.jain_index).")
    setup = (f"{w.name}: {len(w)} requests, {len(w.clients)} clients (heavy doc QA, chat, judge, ToT, 4 unique-prompt "
             f"users); 1 instance, {_hw_text(cost, inst)}; DLPM Q^u = U = {qu:,.0f}")
    return ClaimResult(values=values, summary=summary, setup=setup, notes=notes, figure=fig,
                       data={"policies": stats, "ttft_per_client_s": ttft, "X_measured": x_dlpm,
                             "proved_bound": bound, "published_bound": published, "quantum": qu})


# ------------------------------------------------------------------------------ claim 3
def _d2lpm_configs(quick: bool) -> list[tuple[int, float, float]]:
    """(instances, mixed() rate scale, duration s): the default mix replicated per instance."""
    return [(4, 4.0, 60.0)] if quick else [(4, 4.0, 60.0), (8, 8.0, 45.0)]


def run_d2lpm_latency(quick: bool, cost=None, out: Path | None = None) -> ClaimResult:
    """Claim 3: per-client latency of D²LPM vs a Preble-like cache-aware router."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from fairsched.analysis import cache_hit_rate, jain_index, latency_stats
    from fairsched.policies import default_quantum, make_router
    from fairsched.workload import mixed

    cost, inst = _hardware(cost, A100)
    configs = _d2lpm_configs(quick)
    runs = {}
    for n, scale, dur in configs:
        w = mixed(seed=0, scale=scale, duration=dur)
        key = f"{n} instances"
        per = {}
        q_w = default_quantum(w)  # Q^w = U, the CLI's default
        for label, router, pol in (("cache-aware + LPM", make_router("sglang-cache-aware"), "lpm"),
                                   ("D²LPM", make_router("d2lpm", quantum_w=q_w), "dlpm")):
            res = _simulate(w, pol, cost, inst, router=router, n_instances=n)
            df = res.requests_frame()
            per[label] = {"e2e_per_client_s": df.groupby("client")["e2e_s"].mean().to_dict(),
                          "e2e_mean_s": latency_stats(res)["e2e_mean_s"], "hit_rate": cache_hit_rate(res),
                          "jain": jain_index(res)}
        base, d2 = per["cache-aware + LPM"]["e2e_per_client_s"], per["D²LPM"]["e2e_per_client_s"]
        per["speedup_per_client"] = {c: _ratio(base[c], d2[c]) for c in w.clients}
        per["n_requests"] = len(w)
        runs[key] = per
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
        for label, color in (("cache-aware + LPM", "#ff7f0e"), ("D²LPM", "#1f77b4")):
            fig.add_trace(go.Bar(x=clients, y=[per[label]["e2e_per_client_s"][c] for c in clients], name=label,
                                 marker_color=color, showlegend=j == 1), row=1, col=j)
    _layout(fig, "Claim 3: D²LPM vs a Preble-like cache-aware router, per-client end-to-end latency")

    summary = (f"up to {best:.2f}x lower ({best_client}, {best_cfg}); median over clients "
               f"{float(np.median([v for v in all_sp if v is not None])):.2f}x")
    notes = ("Per-client mean end-to-end latency, cache-aware router (SGLang's cache_aware: threshold 0.3, balance "
             "64 / 1.5) with local LPM, divided by D²LPM's (Q^w = U, local DLPM Q^u = U). "
             + "; ".join(f"{k}: mean e2e {p['cache-aware + LPM']['e2e_mean_s']:.1f} s vs {p['D²LPM']['e2e_mean_s']:.1f} s, "
                         f"hit rate {p['cache-aware + LPM']['hit_rate']:.0%} vs {p['D²LPM']['hit_rate']:.0%}"
                         for k, p in runs.items())
            + f". D²LPM is slower for {', '.join(worse) or 'no client'} (its deficits move latency between clients "
            "instead of removing it: the request-weighted means above are close), so 'up to' picks the client that "
            "gains most.")
    setup = ("; ".join(f"{n} instances, mixed(scale={s:g}, {d:g} s) = {runs[f'{n} instances']['n_requests']} requests"
                       for n, s, d in configs) + f"; per instance {_hw_text(cost, inst)}")
    return ClaimResult(values={"max_client_speedup": best}, summary=summary, setup=setup, notes=notes,
                       figure=fig, data={"runs": runs})


# ------------------------------------------------------------------------------ claim 4
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


def _trace_path(name: str) -> Path:
    from fairsched.workload import shared_data_dir

    d = shared_data_dir()
    if d is None or not (d / name).is_file():
        raise FileNotFoundError(f"{name} not found: set FAIRSCHED_SHARED_DATA to the directory holding it "
                                f"(looked in {d})")
    return d / name


def run_vtc_trace(quick: bool, cost=None, out: Path | None = None) -> ClaimResult:
    """Claim 4: VTC's real-trace table (max service difference of VTC, FCFS, LCF, RPM)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from fairsched.analysis import latency_stats, max_service_gap, throughput_tok_s
    from fairsched.reproduce.rpm import rpm_limit
    from fairsched.reproduce.vtc_metric import window_service_diff
    from fairsched.workload import load_trace

    cost, inst = _hardware(cost, A10G, **VTC_INSTANCE)
    w = load_trace(_trace_path(VTC_TRACE), "vtc")
    limits = [RPM_LIMIT] if quick else [RPM_LIMIT, 10, 15, 20, 30]
    runs = {"VTC": (w, "vtc"), "FCFS": (w, "fcfs"), "LCF": (w, "lcf")}
    for lim in limits:
        runs["RPM" if lim == RPM_LIMIT else f"RPM{lim}"] = (rpm_limit(w, lim), "fcfs")
    rows = {}
    for name, (wl, pol) in runs.items():
        res = _simulate(wl, pol, cost, inst)
        wd = window_service_diff(res)
        rows[name] = {"max_diff": wd.max_diff, "avg_diff": wd.avg_diff, "per_tick": wd.per_tick, "ticks": wd.ticks,
                      "max_diff_max_variant": window_service_diff(res, reduce="max").max_diff,
                      "cumulative_gap": max_service_gap(res).gap, "requests": len(wl),
                      "output_tok_s": throughput_tok_s(res)["output_tok_s"],
                      "ttft_mean_s": latency_stats(res)["ttft_mean_s"]}
    vtc = rows["VTC"]["max_diff"]
    values = {"vtc": vtc, "fcfs_over_vtc": _ratio(rows["FCFS"]["max_diff"], vtc),
              "lcf_over_vtc": _ratio(rows["LCF"]["max_diff"], vtc), "rpm_over_vtc": _ratio(rows["RPM"]["max_diff"], vtc)}

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
    _layout(fig, "Claim 4: VTC's real-trace table (27 LMSYS clients, 600 s)")

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
    setup = (f"{VTC_TRACE} ({len(w)} requests, 27 clients, 600 s); 1 instance, {_hw_text(cost, inst)} (the "
             f"artifact's S-LoRA launch: --max_total_token_num 10000; the A10G roofline profile would give "
             f"{_profile_kv(A10G):,}); w_p = 1, w_q = 2")
    return ClaimResult(values=values, summary=summary, setup=setup, notes=notes, figure=fig,
                       data={"paper": VTC_PAPER, "ours": {k: {kk: vv for kk, vv in v.items() if kk != "ticks"}
                                                          for k, v in rows.items()},
                             "ticks_s": rows["VTC"]["ticks"], "rpm_limit": RPM_LIMIT})


# ------------------------------------------------------------------------------ claim 5
MOONCAKE_TRACE = "mooncake_conversation.jsonl"
LMETRIC_INSTANCES = 16


def _with_speed(w, speed: float):
    from fairsched.workload.request import Request, Workload

    if speed == 1.0:
        return w
    reqs = [Request(r.rid, r.arrival / speed, r.client, r.prompt, r.input_len, r.output_len, r.block_size)
            for r in w.requests]
    return Workload(reqs, f"{w.name}-x{speed:g}", w.block_size, w.source, dict(w.meta))


def run_lmetric_routing(quick: bool, cost=None, out: Path | None = None) -> ClaimResult:
    """Claim 5: LMetric vs vLLM-v1 and a tuned linear score on the Mooncake trace, 16 instances."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from fairsched.analysis import cache_hit_rate, latency_stats
    from fairsched.policies import make_router
    from fairsched.workload import load_trace

    cost, inst = _hardware(cost, A100)
    w = load_trace(_trace_path(MOONCAKE_TRACE), "mooncake")
    if quick:
        w = w.head(3000)
    lams = [0.3, 0.5, 0.7, 0.9] if quick else [round(0.1 * k, 1) for k in range(11)]
    speeds = [1.0] if quick else [1.0, 1.5, 2.0]

    def run(wl, name, **kw):
        res = _simulate(wl, "fcfs", cost, inst, router=make_router(name, **kw), n_instances=LMETRIC_INSTANCES)
        ls = latency_stats(res)
        return {k: ls[k] for k in ("ttft_mean_s", "ttft_p50_s", "ttft_p99_s", "tpot_mean_s", "tpot_p50_s")} | {
            "hit_rate": cache_hit_rate(res)}

    loads = {}
    for sp in speeds:
        wl = _with_speed(w, sp)
        r = {"vllm-v1": run(wl, "vllm-v1"), "lmetric": run(wl, "lmetric")}
        if sp == 1.0:
            sweep = {lam: run(wl, "linear", lam=lam) for lam in lams}
            best_lam = min(sweep, key=lambda k: sweep[k]["ttft_mean_s"])
            r["linear"] = sweep[best_lam]
        else:
            r["linear"] = run(wl, "linear", lam=best_lam)
        loads[sp] = r
    base = loads[1.0]
    values = {"ttft_vs_vllm": _pct(base["lmetric"]["ttft_mean_s"], base["vllm-v1"]["ttft_mean_s"]),
              "ttft_vs_linear": _pct(base["lmetric"]["ttft_mean_s"], base["linear"]["ttft_mean_s"]),
              "tpot_vs_vllm": _pct(base["lmetric"]["tpot_mean_s"], base["vllm-v1"]["tpot_mean_s"]),
              "tpot_vs_linear": _pct(base["lmetric"]["tpot_mean_s"], base["linear"]["tpot_mean_s"])}

    fig = make_subplots(rows=1, cols=3, subplot_titles=("mean TTFT [s]", "mean TPOT [ms]",
                                                        "linear score: mean TTFT vs lam"))
    names = ["vllm-v1", f"linear (lam={best_lam:g})", "lmetric"]
    keys = ["vllm-v1", "linear", "lmetric"]
    for sp in speeds:
        lab = f"{sp:g}x trace rate"
        fig.add_trace(go.Bar(x=names, y=[loads[sp][k]["ttft_mean_s"] for k in keys], name=lab), row=1, col=1)
        fig.add_trace(go.Bar(x=names, y=[1000 * loads[sp][k]["tpot_mean_s"] for k in keys], name=lab,
                             showlegend=False), row=1, col=2)
    fig.add_trace(go.Scatter(x=list(sweep), y=[v["ttft_mean_s"] for v in sweep.values()], mode="lines+markers",
                             name="linear (1x)"), row=1, col=3)
    fig.add_hline(y=base["lmetric"]["ttft_mean_s"], line_dash="dash", row=1, col=3, annotation_text="LMetric")
    fig.add_hline(y=base["vllm-v1"]["ttft_mean_s"], line_dash="dot", row=1, col=3, annotation_text="vLLM-v1")
    fig.update_xaxes(title_text="lam (weight of the KV-miss term)", row=1, col=3)
    _layout(fig, f"Claim 5: LMetric routing on the Mooncake conversation trace, {LMETRIC_INSTANCES} instances")

    summary = (f"TTFT {values['ttft_vs_vllm']:+.0f}% / {values['ttft_vs_linear']:+.0f}%, "
               f"TPOT {values['tpot_vs_vllm']:+.0f}% / {values['tpot_vs_linear']:+.0f}% (vs vLLM-v1 / linear "
               f"lam={best_lam:g})")
    worst_lam = max(sweep, key=lambda k: sweep[k]["ttft_mean_s"])
    other = [f"{sp:g}x: TTFT {_pct(r['lmetric']['ttft_mean_s'], r['vllm-v1']['ttft_mean_s']):+.0f}% / "
             f"{_pct(r['lmetric']['ttft_mean_s'], r['linear']['ttft_mean_s']):+.0f}%, TPOT "
             f"{_pct(r['lmetric']['tpot_mean_s'], r['vllm-v1']['tpot_mean_s']):+.0f}% / "
             f"{_pct(r['lmetric']['tpot_mean_s'], r['linear']['tpot_mean_s']):+.0f}%" for sp, r in loads.items() if sp != 1.0]
    notes = (f"Means over finished requests at the trace's recorded arrival rate. The linear score was tuned on this "
             f"trace (lam in {lams[0]:g}..{lams[-1]:g}, best by mean TTFT: lam = {best_lam:g}; the paper's production "
             f"value for chat is 0.7); its mean TTFT ranges from {sweep[best_lam]['ttft_mean_s']:.2f} s (lam = {best_lam:g}) "
             f"to {sweep[worst_lam]['ttft_mean_s']:.2f} s (lam = {worst_lam:g}) over the sweep, the sensitivity the "
             f"product score avoids. p50 TTFT: vLLM-v1 {base['vllm-v1']['ttft_p50_s']:.2f} s, linear {base['linear']['ttft_p50_s']:.2f} s, "
             f"LMetric {base['lmetric']['ttft_p50_s']:.2f} s; hit rate {base['vllm-v1']['hit_rate']:.0%} / "
             f"{base['linear']['hit_rate']:.0%} / {base['lmetric']['hit_rate']:.0%}. The gains grow with load"
             + (": trace replayed faster, " + "; ".join(other) if other else " (full mode replays the trace 1.5x and 2x faster)")
             + ".")
    setup = (f"{MOONCAKE_TRACE} ({len(w)} requests{', first 3000' if quick else ''}, client = prefix class); "
             f"{LMETRIC_INSTANCES} instances, local FCFS, each {_hw_text(cost, inst)}; "
             f"linear lam swept {lams}")
    return ClaimResult(values=values, summary=summary, setup=setup, notes=notes, figure=fig,
                       data={"loads": {str(k): v for k, v in loads.items()},
                             "lam_sweep": {str(k): v for k, v in sweep.items()}, "best_lam": best_lam})


# ------------------------------------------------------------------------------ claim 6
def run_quantum_tradeoff(quick: bool, cost=None, out: Path | None = None) -> ClaimResult:
    """Claim 6: Q^u vs the proved bound, hit rate and throughput (DLPM, long-doc QA)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from fairsched.analysis import cache_hit_rate, jain_index, max_service_gap, throughput_tok_s
    from fairsched.workload import long_document_qa

    cost, inst = _hardware(cost, A100)
    w = long_document_qa(questions_per_client=20, **DOC_QA_KW)
    qs = [256.0, 2048.0, 16384.0, 65536.0] if quick else [128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
                                                           16384.0, 32768.0, 65536.0]
    rows, witness = {}, {}
    for q in qs:
        res = _simulate(w, "dlpm", cost, inst, quantum=q)
        x = measured_x(res, *WEIGHTS)
        gap = max_service_gap(res)
        rows[q] = {"proved_bound": proved_dlpm_bound(q, x, *WEIGHTS), "X_measured": x,
                   "max_gap": gap.gap, "hit_rate": cache_hit_rate(res),
                   "throughput_tok_s": throughput_tok_s(res)["throughput_tok_s"], "jain": jain_index(res)}
        if gap.gap > rows[q]["proved_bound"]:
            witness[q] = _gap_without_end_events(res, gap)
    lo, hi = rows[qs[0]], rows[qs[-1]]
    over = max(r["max_gap"] / r["proved_bound"] for r in rows.values())
    values = {"hit_gain": hi["hit_rate"] - lo["hit_rate"],
              "throughput_gain": _ratio(hi["throughput_tok_s"], lo["throughput_tok_s"])}

    fig = make_subplots(rows=1, cols=2, subplot_titles=("service gap vs Q^u [service units]",
                                                        "trade-off: proved bound vs locality"))
    fig.add_trace(go.Scatter(x=qs, y=[rows[q]["proved_bound"] for q in qs], mode="lines+markers",
                             name="proved bound 2(Q^u + X)"), row=1, col=1)
    fig.add_trace(go.Scatter(x=qs, y=[rows[q]["max_gap"] for q in qs], mode="lines+markers",
                             name="measured max gap"), row=1, col=1)
    fig.update_xaxes(type="log", title_text="Q^u", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=1)
    t0 = rows[qs[0]]["throughput_tok_s"]
    fig.add_trace(go.Scatter(x=[rows[q]["proved_bound"] for q in qs], y=[rows[q]["hit_rate"] for q in qs],
                             mode="lines+markers", name="hit rate", text=[f"Q^u={q:g}" for q in qs]), row=1, col=2)
    fig.add_trace(go.Scatter(x=[rows[q]["proved_bound"] for q in qs], y=[rows[q]["throughput_tok_s"] / t0 for q in qs],
                             mode="lines+markers", name=f"throughput / at Q^u={qs[0]:g}", text=[f"Q^u={q:g}" for q in qs]),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=[rows[q]["proved_bound"] for q in qs], y=[rows[q]["jain"] for q in qs],
                             mode="lines+markers", name="Jain's index", text=[f"Q^u={q:g}" for q in qs]), row=1, col=2)
    fig.update_xaxes(type="log", title_text="proved bound [service units]", row=1, col=2)
    _layout(fig, f"Claim 6: the Q^u trade-off (DLPM, {w.name})")

    summary = (f"Q^u {qs[0]:g} -> {qs[-1]:g}: hit rate {lo['hit_rate']:.0%} -> {hi['hit_rate']:.0%}, throughput "
               f"x{values['throughput_gain']:.2f}, bound {lo['proved_bound']:,.0f} -> {hi['proved_bound']:,.0f}; "
               f"max gap / proved bound <= {over:.0%}")
    notes = ("Per Q^u: " + "; ".join(
        f"{q:g}: bound {r['proved_bound']:,.0f}, gap {r['max_gap']:,.0f}, hit {r['hit_rate']:.0%}, "
        f"{r['throughput_tok_s']:,.0f} tok/s, Jain {r['jain']:.2f}" for q, r in rows.items())
        + "." + "".join(
            f" At Q^u = {q:g} the measured gap exceeds the bound ({rows[q]['max_gap']:,.0f} > "
            f"{rows[q]['proved_bound']:,.0f}); its witness interval ends at the instant {wt['g']}'s last waiting request "
            f"is admitted, and {wt['f']} is charged {wt['f_at_end']:,.0f} units at that same instant. Within one "
            f"scheduling step DLPM can drain {wt['g']}, refill the clients still backlogged and admit {wt['f']}'s "
            f"request; max_service_gap counts every event at the closing instant, but the proof's hypothesis (both "
            f"clients backlogged at every refill) fails for such a refill. Without the events at that instant the "
            f"witness's gap is {wt['open_gap']:,.0f}"
            + (", within the bound." if wt["open_gap"] <= rows[q]["proved_bound"] else ", still above the bound.")
            for q, wt in witness.items())
        + " The bound 2(Q^u + X) (fairsched.theory.fairness.dlpm_gap_bound) uses X measured on each run (an upper "
        "bound, see experiments.measured_x); it grows linearly in Q^u while hit rate and throughput saturate at "
        "LPM's once Q^u covers a client's whole backlog. The paper states this trade-off qualitatively; "
        "the published bound 2(U + Q^u) is refuted in our model and not used.")
    setup = (f"{w.name}: {len(w)} requests, 32 clients x one 24-32k-token document; 1 instance, "
             f"{_hw_text(cost, inst)}; Q^u in {[int(q) for q in qs]}")
    return ClaimResult(values=values, summary=summary, setup=setup, notes=notes, figure=fig,
                       data={"per_quantum": {str(q): r for q, r in rows.items()},
                             "bound_exceeded_witness": {str(q): v for q, v in witness.items()}})
