"""Empirical check of the fairness bounds on the toy engine, with measured cost.

:func:`validate_bounds` runs VTC and DLPM on a generated workload whose clients differ in
prefix sharing (long-document QA clients: a long shared document, short new questions;
unique-prompt clients: no sharing), then for each run:

* **tokens**: the maximum service gap between two backlogged clients
  (:func:`fairsched.analysis.metrics.max_service_gap`, service = ``w_p`` x uncached prompt
  tokens + ``w_q`` x output tokens) against the published bounds, ``2U`` for VTC and
  ``2(U + Q^u)`` for DLPM with VTC's ``U = max(w_p L_in, w_q M)``, M the engine instance's
  KV token capacity (``result.meta["kv_capacity_tokens"]``; columns ``bound_tokens``,
  ``ratio_tokens``), and against the bounds proved in ``proofs/`` for this service model,
  ``2X`` and ``2(Q^u + X)`` with ``X`` measured on the run
  (:func:`fairsched.analysis.bounds.check_run`; columns ``X``, ``bound_proved``,
  ``ratio_proved``). Both must hold: the engine reserves prompt + full output at admission
  and ``w_p <= w_q``, so ``2X <= 2U`` (``proofs/admission.md``).
* **seconds**: the same gap with every service-log entry replaced by the engine's measured
  seconds (``meta["svc_seconds"]``). A token bound says nothing about seconds unless
  seconds are proportional to tokens; to "scale the bound by the cost model" the token
  bound is converted at the *worst* rate (seconds per service unit) the fitted model
  assigns to any request of the run, ``kappa_max`` (:func:`seconds_per_unit`), times
  ``1 + e`` with ``e`` the fit's p90 relative residual: ``bound_s = bound_tokens *
  kappa_max * (1 + e)``. Also reported: the same at the run's *mean* modelled rate
  (``bound_s_mean_rate``). A ratio ``gap_s / bound_s_mean_rate`` near or above 1 means
  that token fairness is not time fairness for these clients.

The fitted cost model is either given or fitted on the runs' own measurements (prefill
chunks and decode steps, :func:`fairsched.engine.calibrate.fit_cost_model`).

:func:`request_misranking` and :func:`instance_misranking` measure how often the
token-count indicator (LMetric's ``P_i``: uncached prefill tokens) orders two requests,
or two instances' queued prefill work, opposite to their measured prefill seconds.
"""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Sequence

import numpy as np
import pandas as pd

from fairsched.policies.base import ServiceWeights
from fairsched.sim.cost import CostModel
from fairsched.sim.result import SimResult
from fairsched.workload.generators import long_document_qa, synthetic_unique
from fairsched.workload.request import Workload, make_workload

__all__ = ["bound_tokens", "client_rates", "combine_workloads", "instance_misranking", "request_misranking", "seconds_view",
           "service_gap", "validate_bounds", "validation_workload"]


def combine_workloads(*workloads: Workload, name: str = "combined") -> Workload:
    """Merge workloads from separate generator calls into one (same block size).

    Each generator call numbers its unit ids from 0, so the ``k``-th workload's units are
    shifted by ``k << 40`` (the prefix chain is kept, unrelated prompts never share).
    Client ids must differ between the workloads.

    Raises:
        ValueError: on different block sizes or a client id used by two workloads.
    """
    bs = {w.block_size for w in workloads}
    if len(bs) != 1:
        raise ValueError(f"block sizes differ: {sorted(bs)}")
    seen: set[str] = set()
    rows = []
    for k, w in enumerate(workloads):
        cl = set(w.clients)
        if cl & seen:
            raise ValueError(f"client ids used twice: {sorted(cl & seen)}")
        seen |= cl
        off = k << 40
        rows += [(r.arrival, r.client, tuple(u + off for u in r.prompt), r.input_len, r.output_len) for r in w]
    return make_workload(rows, block_size=bs.pop(), name=name, source="+".join(w.name for w in workloads))


def validation_workload(seed: int = 0, n_doc: int = 2, n_unique: int = 2, requests_per_client: int = 12,
                        doc_tokens=(1500, 2500), question_tokens=(16, 64), unique_tokens=(64, 512),
                        output_tokens=(4, 16), rate: float = 40.0, block_size: int = 16) -> Workload:
    """Clients with different prefix sharing, arriving in a burst so that they stay backlogged.

    ``doc0..``: long-document QA (one long document each, short questions: few new tokens
    after a long cached context). ``user0..``: unique prompts (no sharing). Arrivals are
    Poisson at ``rate`` requests/s per client (about ``requests_per_client`` each).
    """
    docs = long_document_qa(n_clients=n_doc, questions_per_client=requests_per_client, doc_tokens=doc_tokens,
                            question_tokens=question_tokens, output_tokens=output_tokens, rate=rate,
                            seed=seed, block_size=block_size)
    uniq = synthetic_unique(n_clients=n_unique, rates=rate, input_len=unique_tokens, output_len=output_tokens,
                            seed=seed + 1, duration=requests_per_client / rate, block_size=block_size)
    w = combine_workloads(docs, uniq, name=f"engine-validation-seed{seed}")
    w.meta = {"generator": "fairsched.engine.validate.validation_workload", "seed": seed, "n_doc": n_doc,
              "n_unique": n_unique, "requests_per_client": requests_per_client, "rate": rate}
    return w


# --------------------------------------------------------------------------- gaps
def seconds_view(result: SimResult) -> SimResult:
    """A shallow copy of an engine result whose service log holds measured seconds."""
    sec = result.meta["svc_seconds"]
    if len(sec) != len(result.svc_amount):
        raise ValueError("svc_seconds does not match the service log")
    return dataclasses.replace(result, svc_amount=array("d", np.asarray(sec, dtype=float)))


def service_gap(result: SimResult, unit: str = "tokens"):
    """:func:`fairsched.analysis.metrics.max_service_gap` of ``result`` in service units
    (``unit="tokens"``) or measured seconds (``"seconds"``, engine results only)."""
    from fairsched.analysis.metrics import max_service_gap

    if unit == "tokens":
        return max_service_gap(result)
    if unit == "seconds":
        return max_service_gap(seconds_view(result))
    raise ValueError(f"unit must be 'tokens' or 'seconds', got {unit!r}")


def bound_tokens(policy: str, workload: Workload, weights: ServiceWeights | None = None,
                 quantum: float | None = None, *, kv_capacity_tokens: float | None = None) -> float:
    """The published ``2U`` (VTC) or ``2(U + Q^u)`` (DLPM) [service units], with VTC's
    ``U = max(w_p L_in, w_q M)`` (``Workload.max_cost``), M = ``kv_capacity_tokens`` (the
    instance's KV token capacity; default ``workload.meta["kv_capacity_tokens"]``).

    Raises:
        ValueError: for another policy, DLPM without ``quantum``, or M unknown.
    """
    w = weights or ServiceWeights()
    U = workload.max_cost(w.w_p, w.w_q, batch_tokens=kv_capacity_tokens)
    if policy == "vtc":
        return 2.0 * U
    if policy == "dlpm":
        if quantum is None:
            raise ValueError("DLPM bound needs the quantum Q^u")
        return 2.0 * (U + quantum)
    raise ValueError(f"no fairness bound for policy {policy!r}")


def seconds_per_unit(result: SimResult, cost: CostModel, weights: ServiceWeights | None = None) -> dict:
    """Seconds per service unit under the fitted ``cost`` model, per request of the run:
    ``(sum over its prefill chunks of t_prefill(n, h) + output_len x t_token) /
    (w_p x uncached + w_q x output_len)``, with ``t_token`` the median over the run's decode
    steps of ``t_decode(B, C) / B``. Returns the worst request's rate (``kappa_max``), the
    run's overall rate (``kappa_mean``) and the measured overall rate
    (``kappa_measured``: measured seconds / service units)."""
    w = weights or ServiceWeights()
    ch, st, rq = result.meta["prefill_chunks"], result.meta["decode_steps"], result.meta["requests"]
    pre = ch.assign(p=[cost.prefill_time(n, h) for n, h in zip(ch["n"], ch["h"], strict=True)])
    pre = pre.groupby("rid")["p"].sum().reindex(rq["rid"]).fillna(0.0).to_numpy(dtype=float)
    tok_s = float(np.median([cost.decode_time(b, c) / b for b, c in zip(st["batch"], st["context"], strict=True)])
                  ) if len(st) else 0.0
    out = rq["output_tokens"].to_numpy(dtype=float)
    units = w.w_p * rq["new_tokens"].to_numpy(dtype=float) + w.w_q * out
    model_s = pre + out * tok_s
    tok = float(np.sum(np.asarray(result.svc_amount, dtype=float)))
    sec = float(np.sum(result.meta["svc_seconds"]))
    return {"kappa_max": float(np.max(model_s / units)), "kappa_mean": float(model_s.sum() / units.sum()),
            "kappa_measured": sec / tok if tok else float("nan"), "decode_s_per_token": tok_s}


# --------------------------------------------------------------------------- P_i
def _pair_counts(x: np.ndarray, y: np.ndarray, margin: float) -> tuple[int, int]:
    """Pairs with ``x_i < x_j`` (strictly), and those among them with ``y_i > (1 + margin) y_j``."""
    lt = x[:, None] < x[None, :]
    opp = y[:, None] > (1.0 + margin) * y[None, :]
    return int(lt.sum()), int((lt & opp).sum())


def request_misranking(results: Sequence[SimResult], cost: CostModel | None = None,
                       margins: Sequence[float] = (0.0, 0.25)) -> dict:
    """How often the token count of a request's prefill (uncached prompt tokens, LMetric's
    ``P_i`` for an idle instance) orders two requests opposite to their measured prefill
    seconds. Pairs are formed within each run (same machine state) and pooled.

    Returns ``{"pairs", "misranked" {margin: fraction}, "model_misranked" (the fitted
    model's predictions ``sum_chunks t(n, h)`` instead of token counts, if ``cost``)}``:
    a pair ``(i, j)`` with ``tokens_i < tokens_j`` is misranked at margin ``m`` when
    ``seconds_i > (1 + m) seconds_j``.
    """
    pairs = 0
    mis = dict.fromkeys(margins, 0)
    mpairs, mmis = 0, dict.fromkeys(margins, 0)
    for res in results:
        rq = res.meta["requests"]
        x = rq["new_tokens"].to_numpy(dtype=float)
        y = rq["prefill_s"].to_numpy(dtype=float)
        for m in margins:
            p, k = _pair_counts(x, y, m)
            mis[m] += k
        pairs += _pair_counts(x, y, 0.0)[0]
        if cost is not None:
            ch = res.meta["prefill_chunks"]
            pred = ch.assign(p=[cost.prefill_time(n, h) for n, h in zip(ch["n"], ch["h"], strict=True)])
            pred = pred.groupby("rid")["p"].sum().reindex(rq["rid"]).to_numpy(dtype=float)
            for m in margins:
                p, k = _pair_counts(pred, y, m)
                mmis[m] += k
            mpairs += _pair_counts(pred, y, 0.0)[0]
    out = {"pairs": pairs, "misranked": {m: (mis[m] / pairs if pairs else float("nan")) for m in margins}}
    if cost is not None:
        out["model_pairs"] = mpairs
        out["model_misranked"] = {m: (mmis[m] / mpairs if mpairs else float("nan")) for m in margins}
    return out


def instance_misranking(result: SimResult, margins: Sequence[float] = (0.0, 0.25)) -> dict:
    """For every routing decision of a multi-instance engine run: the prefill work queued
    on each instance (requests routed before, chunks that end after the decision), in
    tokens (``P_i`` minus the new request's own tokens) and in measured seconds. Returns
    the fraction of instance pairs with fewer queued tokens but more queued seconds
    (``(1 + margin)`` times more), over pairs whose token counts differ."""
    ch = result.meta["prefill_chunks"]
    rid = ch["rid"].to_numpy()
    inst = ch["instance"].to_numpy()
    t_end = ch["t_end"].to_numpy(dtype=float)
    n = ch["n"].to_numpy(dtype=float)
    sec = ch["seconds"].to_numpy(dtype=float)
    N = result.n_instances
    pairs, mis = 0, dict.fromkeys(margins, 0)
    for r in result.workload:
        live = (rid < r.rid) & (t_end > r.arrival)
        P = np.bincount(inst[live], weights=n[live], minlength=N)
        S = np.bincount(inst[live], weights=sec[live], minlength=N)
        for m in margins:
            mis[m] += _pair_counts(P, S, m)[1]
        pairs += _pair_counts(P, S, 0.0)[0]
    return {"decisions": len(result.workload), "pairs": pairs,
            "misranked": {m: (mis[m] / pairs if pairs else float("nan")) for m in margins}}


def _proved_bound(result: SimResult, policy: str, quantum: float | None, weights: ServiceWeights) -> dict:
    """The proved bound (``2X`` for VTC, ``2(Q^u + X)`` for DLPM, ``X`` measured on the run:
    the largest prefill charge plus the client's outstanding decode charge right after an
    admission) from :func:`fairsched.analysis.bounds.check_run`; NaN if unavailable."""
    nan = {"X": float("nan"), "bound_proved": float("nan"), "ratio_proved": float("nan"),
           "holds_proved": None}
    try:
        from fairsched.analysis.bounds import check_run
    except ImportError:  # pragma: no cover - the analysis package is optional here
        return nan
    params = {"w_p": weights.w_p, "w_q": weights.w_q, **({"quantum": quantum} if quantum is not None else {})}
    for v in check_run(result, policy, params):
        if v.kind == "proved" and "X measured" in v.check:
            return {"X": v.params.get("X"), "bound_proved": v.bound, "ratio_proved": v.ratio,
                    "holds_proved": v.status == "holds"}
    return nan


def client_rates(results: dict[str, SimResult]) -> pd.DataFrame:
    """Per policy and client: service units, measured seconds, and seconds per unit. Where
    two backlogged clients have different rates, equal token service means unequal time,
    and the seconds gap grows with the length of the common backlog."""
    frames = []
    for pol, res in results.items():
        rq = res.meta["requests"]
        g = rq.groupby("client")[["service_tokens", "service_s", "new_tokens", "cached_tokens"]].sum()
        g["s_per_unit"] = g["service_s"] / g["service_tokens"]
        frames.append(g.reset_index().assign(policy=pol))
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- driver
def validate_bounds(preset="cpu-small", policies: Sequence[str] = ("vtc", "dlpm"), quantum: float = 512.0,
                    workload: Workload | None = None, cost_model: CostModel | None = None, device=None,
                    model=None, seed: int = 0, n_instances_misrank: int = 2, threads: int | None = None,
                    weights: ServiceWeights | None = None) -> dict:
    """Run ``policies`` on the engine and compare measured gaps with the bounds.

    Args:
        preset, device, model, threads: engine model (see :func:`~fairsched.engine.cluster.run_engine`).
        quantum: DLPM's ``Q^u`` [service units].
        workload: default :func:`validation_workload` (``seed``).
        cost_model: for the seconds bound; default: fitted on the runs' own measurements.
        n_instances_misrank: also run LPM behind the LMetric router on this many instances
            for :func:`instance_misranking` (0 to skip).
    Returns:
        ``{"table": DataFrame (one row per policy), "cost_model", "fit", "client_rates",
        "misranking"
        (requests), "instance_misranking", "results": {policy: SimResult}, "workload"}``.
    """
    from fairsched.engine.calibrate import fit_cost_model
    from fairsched.engine.cluster import run_engine
    from fairsched.engine.model import build_model

    w = workload or validation_workload(seed)
    weights = weights or ServiceWeights()
    if model is None:
        model = build_model(preset, device)
    results = {}
    for pol in policies:
        params = {"quantum": quantum} if pol == "dlpm" else {}
        results[pol] = run_engine(w, pol, model=model, policy_params=params, weights=weights, threads=threads)
    cluster = None
    if n_instances_misrank > 1:
        cluster = run_engine(w, "lpm", router="lmetric", n_instances=n_instances_misrank, model=model,
                             weights=weights, threads=threads)
    fit = None
    if cost_model is None:
        runs = list(results.values()) + ([cluster] if cluster is not None else [])
        pre = pd.concat([r.meta["prefill_chunks"] for r in runs], ignore_index=True)
        dec = pd.concat([r.meta["decode_steps"] for r in runs], ignore_index=True)
        cost_model, fit = fit_cost_model(pre, dec, name=f"engine-run-fit-{model.config.name}")
        err = max(fit["prefill"]["residual_rel_p90"], fit["decode"]["residual_rel_p90"])
    else:
        err = 0.0
    rows = []
    for pol, res in results.items():
        M = res.meta["kv_capacity_tokens"]
        b = bound_tokens(pol, w, weights, quantum if pol == "dlpm" else None, kv_capacity_tokens=M)
        gt = service_gap(res, "tokens")
        gs = service_gap(res, "seconds")
        k = seconds_per_unit(res, cost_model, weights)
        b_s = b * k["kappa_max"] * (1.0 + err)
        b_mean = b * k["kappa_mean"] * (1.0 + err)
        proved = _proved_bound(res, pol, quantum if pol == "dlpm" else None, weights)
        rows.append({"policy": pol, "U": w.max_cost(weights.w_p, weights.w_q, batch_tokens=M), "M": M,
                     "quantum": quantum if pol == "dlpm" else None, "bound_tokens": b,
                     "gap_tokens": gt.gap, "ratio_tokens": gt.gap / b, "holds_tokens": gt.gap <= b + 1e-9,
                     "pair_tokens": gt.pair, **proved, "gap_s": gs.gap, "pair_s": gs.pair,
                     "kappa_max": k["kappa_max"], "kappa_mean": k["kappa_mean"],
                     "kappa_measured": k["kappa_measured"], "fit_error": err,
                     "bound_s": b_s, "ratio_s": gs.gap / b_s if b_s else float("nan"),
                     "bound_s_mean_rate": b_mean, "ratio_s_mean_rate": gs.gap / b_mean if b_mean else float("nan"),
                     "makespan_s": float(np.nanmax(res.finish_t) - w[0].arrival),
                     "compute_s": res.meta["compute_s"],
                     "hit_rate": float(res.cached_tokens.sum() / sum(r.input_len for r in w))})
    table = pd.DataFrame(rows)
    return {"table": table, "cost_model": cost_model, "fit": fit, "client_rates": client_rates(results),
            "misranking": request_misranking(list(results.values()) + ([cluster] if cluster is not None else []), cost_model),
            "instance_misranking": instance_misranking(cluster) if cluster is not None else None,
            "results": results, "cluster": cluster, "workload": w}
