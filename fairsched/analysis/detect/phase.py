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
                  window_s: float | None = None, holders_at: str = "low") -> pd.DataFrame:
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
    ``agree_model`` = it matches ``empirical_hotspot``.

    ``holders_at``: ``"low"`` pre-loads instances ``0..|M|-1``, ``"high"`` the last ``|M|``.
    LMetric breaks ties by the lowest index, so with ``"low"`` idle holders win the other
    traffic's ties: at light load that alone makes the holders busier (a measured hotspot on
    the benign side); the model takes the placement into account (ordered hunting,
    ``proofs/lmetric_harm_validation.md`` §4).

    Raises:
        ValueError: ``holders_at`` not ``"low"`` or ``"high"``.
    """
    if holders_at not in ("low", "high"):
        raise ValueError(f"holders_at must be 'low' or 'high', got {holders_at!r}")
    from fairsched.analysis.detect.runner import _coeffs
    from fairsched.sim import CostModel
    from fairsched.theory.lmetric import steady_state_hotspot
    from fairsched.workload.hotspot import hotspot_workload

    N = n_instances
    rows = []
    for x in xs:
        wl = hotspot_workload(N, qps, x, x_warm=x, warm_s=0.0, burst_s=duration_s, tail_s=0.0,
                              doc_tokens=doc_tokens, seed=seed)
        pc = prefix_classes(wl)
        if "hot" not in pc.classes:
            continue
        cold = [r for r, c in zip(wl.requests, pc.class_of, strict=True) if c != "hot"]
        l_o = float(np.mean([r.input_len for r in cold])) if cold else 1.0
        o_o = float(np.mean([r.output_len for r in cold])) if cold else 1.0
        hc = pc.classes["hot"]
        u_hot = max(1.0, hc["mean_input"] - hc["shared_tokens"])
        q_eff = len(wl) / duration_s
        for m in holders:
            if not 1 <= m < N:
                continue
            cfg = DetectorConfig(window_s=window_s or duration_s / 3, top_k=3, min_class_requests=5)
            rep, res = run_detection(wl, N, config=cfg, instance=instance, cost=cost, classes=pc,
                                     preload={"hot": list(range(m)) if holders_at == "low" else
                                              list(range(N - m, N))})
            d = rep.decisions
            d = d[(d.klass == "hot") & (d.n_holders > 0) & (d.n_holders < N)]
            ratio = float((d.load_holders.mean() + 1) / (d.load_others.mean() + 1)) if len(d) else math.nan
            hot = rep.decisions[rep.decisions.klass == "hot"]
            cls = pc.classes["hot"]
            kap = cls["mean_input"] / max(1.0, cls["mean_input"] - cls["shared_tokens"])
            a, b = x * qps / m, (1 - x) * qps / (N - m)
            bad = violates(x, m, N)
            flag = next((f for f in rep.flagged_classes if f["klass"] == "hot"), None)
            share = [1.0 if (i < m if holders_at == "low" else i >= N - m) else 0.0 for i in range(N)]
            st = steady_state_hotspot(x, m, N, q_eff, hc["mean_input"], u_hot, hc["mean_output"], l_o, o_o,
                                      hc["n_requests"], coeffs=_coeffs(cost or CostModel()), holder_share=share)
            rows.append({"x": x, "holders": m, "holder_frac": m / N, "theory_benign": not bad,
                         "predicted_ratio": min(a / b, kap) if bad else 1.0, "load_ratio": ratio,
                         "hot_on_initial_holders": float(((hot.chosen < m) if holders_at == "low" else
                                                          (hot.chosen >= N - m)).mean()) if len(hot) else math.nan,
                         "final_holders": int(hot.n_holders.iloc[-1]) if len(hot) else 0,
                         "empirical_hotspot": bool(ratio > ratio_threshold),
                         "model_ratio": st["ratio"], "model_regime": st["regime"],
                         "model_hotspot": bool(st["ratio"] > ratio_threshold),
                         "flagged": flag is not None, "confirmed": bool(flag and flag["phase2_confirmed"]),
                         "hot_ttft_mean_s": ttft_stats(res, np.array([c == "hot" for c in pc.class_of]))["ttft_mean_s"]})
    df = pd.DataFrame(rows)
    if len(df):
        df["agree"] = df.theory_benign != df.empirical_hotspot
        df["agree_model"] = df.model_hotspot == df.empirical_hotspot
    return df

