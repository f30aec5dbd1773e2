"""Cost-model coefficients grounded in measured A100 operator times (Vidur's profiles).

Source: Vidur (Agrawal et al., MLSys'24; ``microsoft/vidur``, ``profiling/compute/a100`` under ``data``,
commit of 2024-11-19, MIT licence), shipped beside the project as
``../shared/data/vidur_profiles/<a100_llama3_8b|a100_llama2_7b>/mlp.csv``: one row per
profiled ``num_tokens``, median milliseconds per call of each token-linear operator of one
decoder layer, measured on an A100-80GB (tensor parallelism 1 is used here).

Derivation (``proofs/cost_model.md``, "Measured A100 profiles"):

* per-layer time ``T(n) = sum of the layer operators`` (``input_layernorm, attn_pre_proj,
  attn_rope, attn_post_proj, post_attention_layernorm, mlp_up_proj, mlp_act,
  mlp_down_proj, add``: the sum Vidur's own ``ExecutionTime`` forms for a block), times
  ``n_layers`` (32) for the model; the embedding lookup and the LM head are not in it (as
  in Vidur's ``model_time``) and are added from the roofline (``lm_head_terms``);
* prefill: ``a + b n`` fitted (non-negative, relative least squares, cvxpy) on
  ``512 <= n <= 32768`` (prefill chunk sizes); decode: ``a_d + b_d B`` on ``1 <= n <= 256``
  (decode batch sizes: one token per sequence);
* attention is not in the CSVs: ``c`` (prefill, per token pair) keeps the roofline at 50%
  of peak, within FlashAttention-2's published 50-73% of A100 peak FLOP/s (Dao,
  arXiv 2307.08691, abstract); ``c_d`` (decode, per context token) keeps the roofline at
  80% of HBM bandwidth (no published per-token measurement used: an assumption).

:data:`MEASURED` holds the fitted numbers (committed; ``python -m fairsched.theory.measured``
recomputes them from the CSVs and ``tests/test_sim.py::test_measured_profiles_match_vidur_csvs``
checks the two agree when ``../shared/data`` is present).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .cost import MBU, MFU, PROFILES, default_cost_coefficients, roofline_terms

LAYER_OPS = ("input_layernorm", "attn_pre_proj", "attn_rope", "attn_post_proj", "post_attention_layernorm",
             "mlp_up_proj", "mlp_act", "mlp_down_proj", "add")
"""Vidur operators summed into one decoder layer (Vidur ``ExecutionTime._get_block_execution_time``)."""

VIDUR_DIRS = {"a100-llama3-8b": "a100_llama3_8b", "a100-llama2-7b": "a100_llama2_7b"}
"""Profile -> directory of ``vidur_profiles`` holding its ``mlp.csv``."""

PREFILL_RANGE = (512, 32768)
DECODE_RANGE = (1, 256)
"""``num_tokens`` ranges of the prefill and decode fits (tokens / sequences)."""

# Output of `python -m fairsched.theory.measured` (seconds; fit on the CSV medians, TP = 1).
MEASURED: dict[str, dict[str, float]] = {
    "a100-llama3-8b": {"prefill_a_s": 0.005686460690588347, "prefill_b_s_per_tok": 6.665563496818158e-05,
                       "decode_a_s": 0.009257385007788143, "decode_b_s_per_seq": 4.2628210256688686e-05,
                       "prefill_p90_rel": 0.0396, "decode_p90_rel": 0.1083},
    "a100-llama2-7b": {"prefill_a_s": 0.0017876036651145373, "prefill_b_s_per_tok": 6.43243650724262e-05,
                       "decode_a_s": 0.008310261317985972, "decode_b_s_per_seq": 4.24487671399081e-05,
                       "prefill_p90_rel": 0.0488, "decode_p90_rel": 0.1465},
}


def layer_times(csv: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(num_tokens, seconds)`` of one decoder layer from a Vidur ``mlp.csv`` (TP = 1,
    median of each operator, summed over :data:`LAYER_OPS`), sorted by ``num_tokens``.

    Raises:
        ValueError: naming the file and the missing column.
    """
    import pandas as pd

    df = pd.read_csv(csv)
    cols = [f"time_stats.{op}.median" for op in LAYER_OPS] + ["num_tokens", "num_tensor_parallel_workers"]
    for c in cols:
        if c not in df.columns:
            raise ValueError(f"{csv}: column {c!r} missing")
    df = df[df["num_tensor_parallel_workers"] == 1].sort_values("num_tokens")
    ms = sum(df[f"time_stats.{op}.median"] for op in LAYER_OPS)
    return df["num_tokens"].to_numpy(dtype=float), ms.to_numpy(dtype=float) / 1e3


def fit_affine(n: np.ndarray, t: np.ndarray) -> tuple[float, float, float]:
    """``(a, b, p90)``: ``t ~ a + b n`` with ``a, b >= 0`` minimising the squared relative
    error (cvxpy), and the p90 of ``|fit - t| / t``."""
    from fairsched.theory.fit import nnls_rel

    X = np.column_stack([np.ones_like(n), n])
    a, b = nnls_rel(X, t)
    rel = np.abs(X @ np.array([a, b]) - t) / t
    return float(a), float(b), float(np.percentile(rel, 90))


def lm_head_terms(profile: str, mfu: float = MFU, mbu: float = MBU) -> dict[str, float]:
    """Roofline of what Vidur's layer profile leaves out: reading the LM-head weights
    (``V d`` parameters; the embedding lookup reads only the tokens' rows) once per pass [s]
    and the LM head's ``2 V d`` FLOPs per sequence (the last token of a prefill chunk; every
    sequence of a decode step) [s]."""
    from .cost import MODELS

    _, model = PROFILES[profile]
    m = MODELS[model]
    head_params = m["vocab"] * m["d_model"]
    r = roofline_terms(profile, mfu, mbu)
    return {"bytes_s": head_params * m["bytes_per_param"] / r["bytes_per_s"],
            "flops_s_per_seq": 2.0 * head_params / r["flops_per_s"]}


def derive(data_dir: str | Path) -> dict[str, dict[str, float]]:
    """Recompute :data:`MEASURED` from ``<data_dir>/vidur_profiles/*/mlp.csv``."""
    from .cost import MODELS

    out = {}
    for profile, sub in VIDUR_DIRS.items():
        n, t = layer_times(Path(data_dir) / "vidur_profiles" / sub / "mlp.csv")
        t = t * MODELS[PROFILES[profile][1]]["n_layers"]
        lo, hi = PREFILL_RANGE
        m = (n >= lo) & (n <= hi)
        pa, pb, pp = fit_affine(n[m], t[m])
        lo, hi = DECODE_RANGE
        m = (n >= lo) & (n <= hi)
        da, db, dp = fit_affine(n[m], t[m])
        out[profile] = {"prefill_a_s": pa, "prefill_b_s_per_tok": pb, "decode_a_s": da, "decode_b_s_per_seq": db,
                        "prefill_p90_rel": round(pp, 4), "decode_p90_rel": round(dp, 4)}
    return out


def measured_cost_coefficients(profile: str) -> dict[str, float]:
    """Coefficients (keys of :func:`~fairsched.theory.cost.default_cost_coefficients`) of a
    measured profile: token-linear terms from :data:`MEASURED` plus :func:`lm_head_terms`,
    attention terms (``prefill_c``, ``decode_c``) from the roofline.

    Raises:
        KeyError: for a profile without measurements (see :data:`MEASURED`).
    """
    meas = MEASURED[profile]
    roof = default_cost_coefficients(profile)
    head = lm_head_terms(profile)
    return {
        "prefill_a_s": meas["prefill_a_s"] + head["bytes_s"] + head["flops_s_per_seq"],
        "prefill_b_s_per_tok": meas["prefill_b_s_per_tok"],
        "prefill_c_s_per_tok2": roof["prefill_c_s_per_tok2"],
        "decode_a_s": meas["decode_a_s"] + head["bytes_s"],
        "decode_b_s_per_seq": meas["decode_b_s_per_seq"] + head["flops_s_per_seq"],
        "decode_c_s_per_ctx_tok": roof["decode_c_s_per_ctx_tok"],
    }


def roofline_vs_measured(profile: str) -> dict[str, float]:
    """Ratio roofline / measured of each token-linear coefficient (> 1: the roofline is slower)."""
    roof = default_cost_coefficients(profile)
    meas = measured_cost_coefficients(profile)
    return {k: roof[k] / meas[k] for k in ("prefill_a_s", "prefill_b_s_per_tok", "decode_a_s", "decode_b_s_per_seq")}


if __name__ == "__main__":  # pragma: no cover - regenerates MEASURED
    import json
    import sys

    from fairsched.workload import shared_data_dir

    d = Path(sys.argv[1]) if len(sys.argv) > 1 else shared_data_dir()
    if d is None:
        sys.exit("no shared data directory: pass it as the first argument")
    print(json.dumps(derive(d), indent=2))
    for p in VIDUR_DIRS:
        print(p, "roofline / measured:", {k: round(v, 3) for k, v in roofline_vs_measured(p).items()})
