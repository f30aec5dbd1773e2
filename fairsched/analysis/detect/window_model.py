"""The model's predictions for one detector window: :func:`theory_for_window`.

Theory for a flagged window (:func:`fairsched.theory.lmetric.hotspot_numbers`): the time
``t*`` after the onset at which the score diverts the class, the time ``t_h`` after which
routing it to M costs more decode time than the hit saves, and the regime (benign /
hotspot / harmful), from the corrected model (:func:`fairsched.theory.lmetric.steady_state_hotspot`).
Its own module so that the detector's runner (:mod:`~fairsched.analysis.detect.runner`) and the
backlog test (:mod:`~fairsched.analysis.detect.backlog`) both use it without importing each other.
"""

from __future__ import annotations

import math

from fairsched.output import jsonable

__all__ = ["theory_for_window"]


def _coeffs(cost) -> dict:
    return {"prefill_a_s": cost.prefill_a, "prefill_b_s_per_tok": cost.prefill_b,
            "prefill_c_s_per_tok2": cost.prefill_c, "decode_a_s": cost.decode_a,
            "decode_b_s_per_seq": cost.decode_b, "decode_c_s_per_ctx_tok": cost.decode_c}


def theory_for_window(row: dict, cls: dict, n: int, cost, holder_stream: str = "fluid",
                      load_form: str = "transient", prefill_seen: str = "jsq") -> dict:
    """Predictions of :mod:`fairsched.theory.lmetric` for one flagged window.

    ``L`` = the class's mean prompt, ``u = L - shared_tokens`` (uncached on a holder, >= 1),
    ``O`` = mean output, mean context ``L + O/2``, ``B_0`` = mean instance load at the
    window's first arrival, QPS = the window's arrival rate, cost coefficients of the
    simulator's cost model. ``t_star`` and ``t_harm`` count from the onset of the hotspot
    (the arrival-only fluid model; its regime is kept as ``regime_fluid``).

    ``regime`` comes from the corrected steady-state model
    (:func:`fairsched.theory.lmetric.steady_state_hotspot`, ``proofs/lmetric_harm_validation.md``),
    which also needs the window's other traffic (``in_other``, ``out_other``), the class's
    arrivals over the run (``n_class_run``, set at the end of the trace; online: those so far,
    ``n_class_cum``), the time since its onset (``t_since_onset``, the finite-horizon batch) and where the holders sit (``holder_share``, per
    instance: LMetric breaks ties by the lowest index, ``proofs/lmetric_harm_validation.md``
    §4); its predictions are ``steady_*``. ``holder_stream``: the model's form of the holders'
    class stream (``"fluid"``, the detector's; ``"poisson"``, §3.4, to rescore with it).
    ``load_form``: ``"transient"`` (the detector's, §3.5: the loads and iterations the window
    sees since the onset, from the row's ``t_since_onset``, ``span_s`` and ``load_onset``; a row
    without them is assessed in the steady form) or ``"steady"`` (rounds 3-6's form). ``prefill_seen`` (transient form only):
    ``"jsq"`` (the detector's, §3.7: a decode sees the prefills of a least-loaded router) or ``"mean"`` (rounds 7-8).
    """
    from fairsched.theory.lmetric import classify_regime, hotspot_numbers, steady_state_hotspot

    M = float(row["holders_eval"])
    L = float(cls["mean_input"])
    u = max(1.0, L - float(cls["shared_tokens"]))
    n_out = float(cls["mean_output"])
    b0 = float(row["load0"] or 0.0)
    kw = dict(n_out=n_out, ctx_mean=L + n_out / 2, coeffs=_coeffs(cost))
    if 0 < M < n:  # the fluid model needs holders and non-holders
        d = hotspot_numbers(row["x"], M, n - M, row["qps"], b0, L, u, **kw)
        fluid = classify_regime(row["x"], M / n, n, row["qps"], b0, L, u, **kw)
    else:
        d = dict.fromkeys(("a", "b", "kappa", "limit_ratio", "t_star", "t_harm", "S"))
        d["limit_ratio"], d["kappa"], fluid = 1.0, L / u, "benign"
    st = steady_state_hotspot(row["x"], max(1.0, M), n, row["qps"], L, u, n_out, float(row.get("in_other") or 1.0),
                              float(row.get("out_other") or 1.0), float(row.get("n_class_run") or row.get("n_class_cum") or row["n_class"]),
                              coeffs=_coeffs(cost), holder_share=row.get("holder_share"), t_elapsed=row.get("t_since_onset"),
                              holder_stream=holder_stream, **_transient_args(row, load_form, prefill_seen))
    return jsonable({"a_req_s": d["a"], "b_req_s": d["b"], "kappa": d["kappa"], "limit_ratio": d["limit_ratio"],
                   "t_star_s": d["t_star"], "t_harm_s": d["t_harm"], "prefill_saved_s": d["S"],
                   "regime": st["regime"], "regime_fluid": fluid, "fluid_steady_ratio": min(d["limit_ratio"], d["kappa"]),
                   **{f"steady_{k}": v for k, v in st.items() if k != "regime"},
                   "B0": b0, "L": L, "u": u, "O": n_out})


def _transient_args(row: dict, load_form: str, prefill_seen: str = "jsq") -> dict:
    """``steady_state_hotspot``'s ``load_form``, ``window``, ``residue`` (§3.5) and ``prefill_seen`` (§3.7) for a row."""
    t, span = row.get("t_since_onset"), row.get("span_s")
    if load_form != "transient" or t is None or span is None:
        return {}
    a = max(0.0, float(t) - float(span) / 2)
    return {"load_form": "transient", "window": (a, a + float(span)), "residue": float(row.get("load_onset") or 0.0),
            "residue_age": float(row["t_onset"]) if row.get("t_onset") is not None else math.inf, "prefill_seen": prefill_seen}
