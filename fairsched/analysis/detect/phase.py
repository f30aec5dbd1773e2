"""The empirical phase diagram of the hotspot over (x, |M|/N), next to the benign condition."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fairsched.analysis.detect.detector import DetectorConfig, violates
from fairsched.analysis.detect.runner import run_detection, ttft_stats
from fairsched.analysis.prefix_classes import prefix_classes

__all__ = ["phase_diagram"]


# ============================================================================ phase diagram
def phase_diagram(xs=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), holders=(1, 2, 3, 4, 5, 6, 7), *,
                  n_instances: int = 8, qps: float = 30.0, duration_s: float = 60.0, doc_tokens: int = 12000,
                  seed: int = 0, ratio_threshold: float = 1.25, instance=None, cost=None,
                  window_s: float | None = None, holders_at: str = "low", workers: int = 1,
                  use_ray: bool = False, progress: bool = False) -> pd.DataFrame:
    """Empirical phase diagram of the hotspot over (x, |M|/N), next to the theory.

    For each share ``x`` and holder count ``|M|`` (1 <= |M| < N): a
    :func:`~fairsched.workload.hotspot.hotspot_workload` with constant share ``x`` for
    ``duration_s`` (no warm-up), the hot document pre-loaded on instances ``0..|M|-1``,
    simulated under LMetric with the detector (windows of ``window_s``, default a third of
    the run). Measured: ``load_ratio`` = ``(mean B_M + 1) / (mean B_Mbar + 1)`` where
    ``B_M`` (``B_Mbar``) is the mean load (waiting + running) of the instances that hold
    (do not hold) the class at a class-c decision, averaged over those decisions (the +1
    as in the score),
    ``hot_on_holders`` = share of class-c requests routed to a holder, the final holder
    count, and whether the detector flagged / confirmed the class. Theory:
    ``theory_benign`` = ``x <= |M|/N`` (the benign condition) and the predicted steady
    ratio ``min(a/b, kappa)`` (1 when benign). ``empirical_hotspot`` = ``load_ratio >
    ratio_threshold``; ``agree`` = the two classifications match.

    Corrected model (:func:`~fairsched.theory.lmetric.steady_state_hotspot`,
    ``proofs/lmetric_harm_validation.md``): ``model_ratio`` (its predicted
    ``(B_M + 1)/(B_Mbar + 1)``, with completions, queued prefill and replication),
    ``model_regime``, ``model_hotspot`` = ``model_ratio > ratio_threshold`` and
    ``agree_model`` = it matches ``empirical_hotspot``; ``model_ratio_poisson`` and
    ``agree_model_poisson``: the same with each holder's class stream as a Poisson count topped
    up by the other traffic (``holder_stream="poisson"``, §3.4; these runs last many sojourns,
    which that form's stationary law needs). Both use the detector's loads: the transient from
    the run's start averaged over the whole run (§3.5; these runs last many sojourns, so its calls
    equal the steady state's, §11.4).

    ``holders_at``: ``"low"`` pre-loads instances ``0..|M|-1``, ``"high"`` the last ``|M|``.
    LMetric breaks ties by the lowest index, so with ``"low"`` idle holders win the other
    traffic's ties: at light load that alone makes the holders busier (a measured hotspot on
    the benign side); the model takes the placement into account (ordered hunting,
    ``proofs/lmetric_harm_validation.md`` §4).

    The grid runs through the sweep executor (:func:`fairsched.sweep.map_grid`): ``workers``
    local processes, or Ray (``use_ray``); the same rows whichever runs it.

    Raises:
        ValueError: ``holders_at`` not ``"low"`` or ``"high"``.
    """
    if holders_at not in ("low", "high"):
        raise ValueError(f"holders_at must be 'low' or 'high', got {holders_at!r}")
    from fairsched.sweep import map_grid

    common = dict(n_instances=n_instances, qps=qps, duration_s=duration_s, doc_tokens=doc_tokens, seed=seed,
                  ratio_threshold=ratio_threshold, instance=instance, cost=cost, window_s=window_s,
                  holders_at=holders_at)
    points = [{**common, "x": x, "m": m} for x in xs for m in holders if 1 <= m < n_instances]
    rows = [r for r in map_grid(_phase_point, points, workers=workers, use_ray=use_ray, progress=progress,
                                desc="phase diagram") if r is not None]
    df = pd.DataFrame(rows)
    if len(df):
        df["agree"] = df.theory_benign != df.empirical_hotspot
        df["agree_model"] = df.model_hotspot == df.empirical_hotspot
        df["agree_model_poisson"] = (df.model_ratio_poisson > ratio_threshold) == df.empirical_hotspot
    return df


def _phase_point(p: dict) -> dict | None:
    """One (x, |M|) point of :func:`phase_diagram` (None: the workload has no hot class)."""
    from fairsched.analysis.detect.window_model import _coeffs
    from fairsched.sim import CostModel
    from fairsched.theory.lmetric import steady_state_hotspot
    from fairsched.workload.hotspot import hotspot_workload

    N, x, m, qps, duration_s = p["n_instances"], p["x"], p["m"], p["qps"], p["duration_s"]
    cost, holders_at, window_s = p["cost"], p["holders_at"], p["window_s"]
    wl = hotspot_workload(N, qps, x, x_warm=x, warm_s=0.0, burst_s=duration_s, tail_s=0.0,
                          doc_tokens=p["doc_tokens"], seed=p["seed"])
    pc = prefix_classes(wl)
    if "hot" not in pc.classes:
        return None
    cold = [r for r, c in zip(wl.requests, pc.class_of, strict=True) if c != "hot"]
    l_o = float(np.mean([r.input_len for r in cold])) if cold else 1.0
    o_o = float(np.mean([r.output_len for r in cold])) if cold else 1.0
    hc = pc.classes["hot"]
    u_hot = max(1.0, hc["mean_input"] - hc["shared_tokens"])
    q_eff = len(wl) / duration_s
    cfg = DetectorConfig(window_s=window_s or duration_s / 3, top_k=3, min_class_requests=5)
    ids = list(range(m)) if holders_at == "low" else list(range(N - m, N))
    rep, res = run_detection(wl, N, config=cfg, instance=p["instance"], cost=cost, classes=pc, preload={"hot": ids})
    d = rep.decisions
    d = d[(d.klass == "hot") & (d.n_holders > 0) & (d.n_holders < N)]
    ratio = float((d.load_holders.mean() + 1) / (d.load_others.mean() + 1)) if len(d) else math.nan
    hot = rep.decisions[rep.decisions.klass == "hot"]
    kap = hc["mean_input"] / u_hot
    a, b = x * qps / m, (1 - x) * qps / (N - m)
    bad = violates(x, m, N)
    flag = next((f for f in rep.flagged_classes if f["klass"] == "hot"), None)
    share = [1.0 if i in ids else 0.0 for i in range(N)]
    args = (x, m, N, q_eff, hc["mean_input"], u_hot, hc["mean_output"], l_o, o_o, hc["n_requests"])
    kw = dict(coeffs=_coeffs(cost or CostModel()), holder_share=share, load_form="transient",
              window=(0.0, duration_s), prefill_seen="jsq")  # the detector's form over the whole run (§3.5, §3.7)
    st = steady_state_hotspot(*args, **kw)
    return {"x": x, "holders": m, "holder_frac": m / N, "theory_benign": not bad,
            "predicted_ratio": min(a / b, kap) if bad else 1.0, "load_ratio": ratio,
            "hot_on_initial_holders": float(hot.chosen.isin(ids).mean()) if len(hot) else math.nan,
            "final_holders": int(hot.n_holders.iloc[-1]) if len(hot) else 0,
            "empirical_hotspot": bool(ratio > p["ratio_threshold"]),
            "model_ratio": st["ratio"], "model_regime": st["regime"],
            "model_ratio_poisson": steady_state_hotspot(*args, **kw, holder_stream="poisson")["ratio"],
            "model_hotspot": bool(st["ratio"] > p["ratio_threshold"]),
            "flagged": flag is not None, "confirmed": bool(flag and flag["phase2_confirmed"]),
            "hot_ttft_mean_s": ttft_stats(res, np.array([c == "hot" for c in pc.class_of]))["ttft_mean_s"]}
