"""Fairness in seconds on the torch engine: token vs seconds service, and the bound in
measured seconds (issue 12; ``proofs/seconds_bounds.md``).

:func:`run_fairness_in_seconds` serves one workload with VTC and DLPM under token service
(:class:`~fairsched.policies.service.ServiceWeights`) and under predicted-seconds service
(:class:`~fairsched.policies.seconds.SecondsService`), on the engine's measured clock, and
reports per run: each client's measured prefill and decode seconds, the measured-time shares
of the clients while all are backlogged, the gap in the run's own service units and in
measured seconds, and for the seconds policies the proved bound in predicted seconds
(``2 X_s`` / ``2 (Q^u + X_s)``) and the bound in measured seconds
(``r_hi B_p + (r_hi - r_lo) min(W^p_f, W^p_g)`` per pair, with the band ``[r_lo, r_hi]`` of
measured / predicted read off the run's charges).

Measured seconds of a charge (``SimResult.meta["svc_seconds"]``): a prefill charge gets its
request's measured prefill time; a decode charge the client's share of the measured step,
split in proportion to the predicted charges (``attribution=cost``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairsched.policies.seconds import SecondsService
from fairsched.policies.service import ServiceWeights
from fairsched.sim.cost import CostModel
from fairsched.sim.result import SimResult
from fairsched.theory.seconds import charge_band, measured_gap_bound
from fairsched.workload.request import Workload

__all__ = ["all_backlogged_window", "check_seconds_run", "measured_X_seconds", "mixed_workload",
           "run_fairness_in_seconds", "time_shares"]


def mixed_workload(seed: int = 0, per_client: int = 10, n_doc: int = 2, n_chat: int = 2, n_judge: int = 1,
                   doc_tokens=(1500, 2500), block_size: int = 16, rate: float = 200.0) -> Workload:
    """Long-document QA (``doc*``: one long document, short questions), short chat
    (``user*``: fresh 64-256-token prompts) and LLM-as-judge (``judge*``: a 600-1000-token
    rubric + a 100-300-token answer) clients, ``per_client`` requests each, arriving in a
    burst (``rate`` per client per second) so that all stay backlogged."""
    from fairsched.engine.validate import combine_workloads
    from fairsched.workload.generators import llm_as_judge, long_document_qa, synthetic_unique

    parts = [long_document_qa(n_doc, per_client, doc_tokens, (16, 48), (4, 12), rate, seed, block_size=block_size),
             synthetic_unique(n_chat, rate, (64, 256), (8, 24), seed + 1, duration=per_client / rate,
                              block_size=block_size),
             llm_as_judge(n_judge, per_client, (600, 1000), (100, 300), (4, 12), rate, seed + 2,
                          block_size=block_size)]
    w = combine_workloads(*parts, name=f"fairness-in-seconds-seed{seed}")
    w.meta = {"generator": "fairsched.engine.seconds.mixed_workload", "seed": seed, "per_client": per_client}
    return w


def measured_X_seconds(result: SimResult, service: SecondsService) -> float:
    """``X_s`` of a run (the largest over instances of
    :func:`fairsched.analysis.seconds_check.measured_x_seconds`: prefill charge plus the
    worst-case decode charges of the client's running requests, an upper bound on the
    outstanding ones; ``proofs/seconds_bounds.md``, Theorem 1)."""
    from fairsched.analysis.seconds_check import measured_x_seconds

    return max(measured_x_seconds(result, service).values(), default=0.0)


def all_backlogged_window(result: SimResult) -> tuple[float, float] | None:
    """``(start, end)`` [s] of the longest interval in which every client is backlogged (has a
    waiting request; the first of equally long ones), or None.

    The longest, not the first: on the engine's measured clock a client whose first request
    is admitted at once leaves the backlog for a few ms at the burst's start, so the first
    interval can be that blip (7.6 ms in a 413-request run where the next lasted seconds).
    Any all-backlogged interval lies inside every pair's common backlog, which is all that
    :func:`time_shares`' bound ``max_dev_units <= G / mean_client_units`` uses."""
    n = len(result.clients)
    t = np.asarray(result.bl_t, dtype=float)
    d = np.asarray(result.bl_delta, dtype=np.int64)
    order = np.argsort(t, kind="stable")
    count, start, best = 0, None, None
    for k in order:
        count += int(d[k])
        if start is None and count == n:
            start = float(t[k])
        elif start is not None and count < n:
            if best is None or float(t[k]) - start > best[1] - best[0]:
                best = (start, float(t[k]))
            start = None
    return best


def time_shares(result: SimResult) -> dict:
    """Measured seconds each client received while all were backlogged, as shares of their
    sum: ``{"window": (s, e), "shares": {client: share}, "max_dev": max |n share - 1|,
    "max_dev_units": the same for the run's own service units (predicted seconds or tokens),
    "mean_client_s", "mean_client_units": mean measured seconds / service units per client in
    the window}``.

    Why a deviation: the window is inside every pair's common backlog, so each pair's
    difference over it is at most the run's gap ``G`` (itself at most the bound), and
    ``max_dev_units <= G / mean_client_units``: the share goal needs a window long against the
    gap (``proofs/seconds_bounds.md``, "Shares")."""
    win = all_backlogged_window(result)
    names = list(result.clients)
    if win is None:
        return {"window": None, "shares": {}, "max_dev": float("nan"), "max_dev_units": float("nan"),
                "mean_client_s": float("nan"), "mean_client_units": float("nan")}
    t = np.asarray(result.svc_t, dtype=float)
    c = np.asarray(result.svc_client, dtype=np.int64)
    m = (t >= win[0]) & (t <= win[1])

    def dev(w):
        per = np.bincount(c[m], weights=np.asarray(w, dtype=float)[m], minlength=len(names))
        tot = per.sum()
        sh = per / tot if tot else np.full(len(names), np.nan)
        return per, sh, float(np.max(np.abs(sh * len(names) - 1.0))) if tot else float("nan")

    per, sh, d = dev(result.meta["svc_seconds"])
    per_u, _, du = dev(result.svc_amount)
    return {"window": win, "shares": {names[i]: float(sh[i]) for i in range(len(names))}, "max_dev": d,
            "max_dev_units": du, "mean_client_s": float(per.mean()), "mean_client_units": float(per_u.mean())}


def check_seconds_run(result: SimResult, policy: str, service: SecondsService, quantum: float | None = None) -> dict:
    """The bounds of ``proofs/seconds_bounds.md`` on a seconds-service engine run.

    Returns ``{"X_s", "bound_pred", "gap_pred", "band" (charge_band), "pairs" (DataFrame:
    f, g, gap_measured, bound_measured, holds), "holds" (all pairs), "gap_measured",
    "bound_measured" (at the pair of the largest measured gap), "ratio"}`` (seconds).
    """
    import sympy as sp

    from fairsched.analysis.metrics import max_service_gap
    from fairsched.engine.validate import seconds_view
    from fairsched.theory import fairness as tf
    from fairsched.theory.symbols import Q_u, X

    X_s = measured_X_seconds(result, service)
    expr = tf.vtc_upper_bound() if policy == "vtc" else tf.dlpm_gap_bound()
    bp = float(expr.subs({X: X_s, Q_u: quantum or 0.0}))
    gp = max_service_gap(result)
    gm = max_service_gap(seconds_view(result))
    band = charge_band(result.svc_amount, result.meta["svc_seconds"])
    c = np.asarray(result.svc_client, dtype=np.int64)
    tot = np.bincount(c, weights=np.asarray(result.svc_amount, dtype=float), minlength=len(result.clients))
    idx = {n: i for i, n in enumerate(result.clients)}
    rows = []
    for (f, g), gap in (gm.per_pair or {}).items():
        b = measured_gap_bound(bp, band["r_lo"], band["r_hi"], tot[idx[f]], tot[idx[g]])
        rows.append({"f": f, "g": g, "gap_measured": gap, "bound_measured": b, "holds": gap <= b + 1e-12})
    pairs = pd.DataFrame(rows, columns=["f", "g", "gap_measured", "bound_measured", "holds"])
    top = pairs.loc[pairs["gap_measured"].idxmax()] if len(pairs) else None
    return {"X_s": X_s, "bound_pred": bp, "gap_pred": gp.gap, "holds_pred": gp.gap <= bp + 1e-12,
            "band": band, "pairs": pairs, "holds": bool(pairs["holds"].all()) if len(pairs) else True,
            "gap_measured": float(top["gap_measured"]) if top is not None else 0.0,
            "bound_measured": float(top["bound_measured"]) if top is not None else float("nan"),
            "ratio": float(top["gap_measured"] / top["bound_measured"]) if top is not None else 0.0,
            "expr": sp.srepr(expr)}


def _client_seconds(result: SimResult) -> pd.DataFrame:
    rq = result.meta["requests"].assign(client=[r.client for r in result.workload])
    pre = rq.groupby("client")["prefill_s"].sum()
    c = np.asarray(result.svc_client, dtype=np.int64)
    tot = np.bincount(c, weights=np.asarray(result.meta["svc_seconds"], dtype=float), minlength=len(result.clients))
    out = pd.DataFrame({"client": list(result.clients), "measured_s": tot})
    out["prefill_s"] = out["client"].map(pre).fillna(0.0)
    out["decode_s"] = out["measured_s"] - out["prefill_s"]
    return out


def run_fairness_in_seconds(workload: Workload | None = None, cost: CostModel | None = None, *,
                            policies=("vtc", "dlpm"), services=("tokens", "seconds"), quantum_tokens: float = 512.0,
                            model=None, preset: str = "cpu-small", instance=None, batch_ref: int | None = None,
                            threads: int | None = None) -> dict:
    """Run every (policy, service) on the engine (measured clock) and evaluate.

    Args:
        workload: default :func:`mixed_workload`.
        cost: the cost model of the seconds service and of the decode attribution (default:
            the committed CPU calibration ``data/engine_cpu-small_cost.json``).
        quantum_tokens: DLPM's ``Q^u`` under token service; under seconds service ``Q^u``
            is this times the workload's predicted seconds per token-service unit.
        batch_ref: the seconds service's ``B_ref`` (default None: the actual batch size).
    Returns:
        ``{"table": DataFrame (one row per run), "clients": DataFrame (per run and client:
        measured, prefill and decode seconds, share), "checks": {run: check_seconds_run},
        "results": {run: SimResult}, "cost", "workload"}``.
    """
    from pathlib import Path

    from fairsched.engine.cluster import DEFAULT_INSTANCE, run_engine
    from fairsched.engine.model import build_model

    w = workload or mixed_workload()
    if cost is None:
        cost = CostModel.load(Path(__file__).resolve().parents[2] / "data" / "engine_cpu-small_cost.json")
    if model is None:
        model = build_model(preset, "cpu")
    inst = instance or DEFAULT_INSTANCE.get(model.config.name, DEFAULT_INSTANCE["cpu-small"])
    sec = SecondsService(cost, batch_ref, inst.kv_capacity_tokens)
    tok = ServiceWeights()
    pred = sum(sec.prefill(r.input_len, 0) + sec.request_decode(r.input_len, r.output_len) for r in w)
    units = sum(tok.prefill(r.input_len) + tok.decode(r.output_len) for r in w)
    q_sec = quantum_tokens * pred / units
    rows, cl_rows, checks, results = [], [], {}, {}
    for pol in policies:
        for svc_name in services:
            svc = sec if svc_name == "seconds" else tok
            q = (q_sec if svc_name == "seconds" else quantum_tokens) if pol == "dlpm" else None
            res = run_engine(w, pol, model=model, instance=inst, service=svc, attribution=cost, threads=threads,
                             policy_params={"quantum": q} if q is not None else None)
            run = f"{pol}-{svc_name}"
            results[run] = res
            sh = time_shares(res)
            cs = _client_seconds(res).assign(run=run, share=lambda d, s=sh: d["client"].map(s["shares"]))
            cl_rows.append(cs)
            row = {"run": run, "policy": pol, "service": svc_name, "quantum": q, "share_max_dev": sh["max_dev"],
                   "share_max_dev_units": sh["max_dev_units"], "window_mean_client_s": sh["mean_client_s"],
                   "window_mean_client_units": sh["mean_client_units"],
                   "window_s": (sh["window"][1] - sh["window"][0]) if sh["window"] else float("nan"),
                   "makespan_s": float(np.nanmax(res.finish_t) - w[0].arrival),
                   "compute_s": res.meta["compute_s"],
                   "throughput_rps": len(w) / float(np.nanmax(res.finish_t) - w[0].arrival),
                   "hit_rate": float(np.sum(res.cached_tokens) / sum(r.input_len for r in w))}
            from fairsched.analysis.metrics import max_service_gap
            from fairsched.engine.validate import seconds_view

            row["gap_units"] = max_service_gap(res).gap
            row["gap_measured_s"] = max_service_gap(seconds_view(res)).gap
            if svc_name == "seconds":
                ch = check_seconds_run(res, pol, sec, q)
                checks[run] = ch
                row.update(X_s=ch["X_s"], bound_pred_s=ch["bound_pred"], holds_pred=ch["holds_pred"],
                           r_lo=ch["band"]["r_lo"], r_hi=ch["band"]["r_hi"], r_median=ch["band"]["r_median"],
                           gap_top_pair_s=ch["gap_measured"], bound_measured_s=ch["bound_measured"],
                           ratio_measured=ch["ratio"], holds_measured=ch["holds"])
            rows.append(row)
    return {"table": pd.DataFrame(rows), "clients": pd.concat(cl_rows, ignore_index=True), "checks": checks,
            "results": results, "cost": cost, "workload": w}
