"""Prefill / decode cost model as sympy expressions, and roofline-derived coefficients.

Prefill of ``n`` new tokens after ``h`` cached ones (proof: ``proofs/cost_model.md``)::

    t_prefill(n, h) = a + b n + c n (h + n / 2)          [seconds]

``b n``: the linear layers (2 * params FLOPs per token); ``c n (h + n/2)``: attention,
``4 * n_layers * d_model`` FLOPs per (query, key) token pair, and a causal prefill of ``n``
tokens after ``h`` cached ones has ``n h + n^2 / 2`` pairs (``n(n+1)/2`` exactly; the ``n/2``
term is absorbed in ``b``); ``a``: one pass over the weights (HBM floor of a forward pass).

Decode step for a batch of ``B`` sequences holding ``C`` context tokens in total::

    t_decode(B, C) = a_d + b_d B + c_d C                  [seconds per step]

``a_d``: stream the weights once; ``b_d``: linear-layer FLOPs per sequence;
``c_d``: read each context token's K and V once. Sums instead of the roofline ``max`` make
both models an upper bound on the roofline time that is within a factor 2 of it.
"""

from __future__ import annotations

import sympy as sp

from .symbols import batch, c_a, c_b, c_c, ctx, d_a, d_b, d_c, h_cached, n_new

# Hardware and model figures (public datasheets / model configs). Units in the names.
HARDWARE = {
    # A100-SXM4-80GB: 312 TFLOP/s dense BF16 tensor, 2039 GB/s HBM2e (NVIDIA datasheet).
    "a100": {"peak_flops": 312e12, "hbm_bytes_per_s": 2.039e12, "hbm_bytes": 80e9},
    # A10G (AWS g5): 24 GB GDDR6, 600 GB/s. AWS publishes no datasheet; 70 TFLOP/s dense FP16
    # tensor is the commonly quoted A10G figure (the datacenter A10 is 125). Assumption.
    "a10g": {"peak_flops": 70e12, "hbm_bytes_per_s": 600e9, "hbm_bytes": 24e9},
}
MODELS = {
    # Llama-3.1-8B: 8.03e9 params, 32 layers, d_model 4096, GQA with 8 KV heads x 128 dims.
    "llama3-8b": {"params": 8.03e9, "n_layers": 32, "d_model": 4096, "kv_dim": 8 * 128,
                  "vocab": 128256, "bytes_per_param": 2},
    # Llama-2-7B: 6.74e9 params, 32 layers, d_model 4096, MHA (32 KV heads x 128 dims).
    "llama2-7b": {"params": 6.74e9, "n_layers": 32, "d_model": 4096, "kv_dim": 32 * 128,
                  "vocab": 32000, "bytes_per_param": 2},
}
PROFILES = {"a100-llama3-8b": ("a100", "llama3-8b"), "a10g-llama2-7b": ("a10g", "llama2-7b"),
            "a100-llama2-7b": ("a100", "llama2-7b")}
# Achievable fractions of peak (assumptions, stated in proofs/cost_model.md): model FLOPs
# utilisation in prefill/linear layers and memory-bandwidth utilisation in decode.
MFU = 0.5
MBU = 0.8
# Fraction of the memory left after the weights that the serving engine gives to the KV cache
# (vLLM's default gpu_memory_utilization is 0.9; activations take part of the rest). Assumption.
KV_MEM_FRACTION = 0.9


def prefill_time_expr() -> sp.Expr:
    """``a + b n + c n (h + n/2)`` in seconds (n new tokens after h cached; a, b, c >= 0)."""
    return c_a + c_b * n_new + c_c * n_new * (h_cached + n_new / 2)


def decode_step_expr() -> sp.Expr:
    """``a_d + b_d B + c_d C`` in seconds per decode step (B sequences, C context tokens)."""
    return d_a + d_b * batch + d_c * ctx


c_e, c_g, c_w, d_q, d_e = sp.symbols("e g w d_q e_d", nonnegative=True)  # engine terms (proofs/cost_model.md)
c_p, c_s = sp.symbols("p s", nonnegative=True)  # CPU attention kernel's terms (proofs/cost_model.md)
# The kernel's counts (sim.cost.flash_counts, proofs/cost_model.md "The kernel's counts"): pairs the
# causal kernel computes beyond n^2/2 (h = 0), key/value rows its query blocks read. They are step
# functions of (n, h) (ceil over 32/64/256-row query blocks and 512-key blocks), kept as symbols.
pad_pairs, keys_read = sp.symbols("P_pad K_read", nonnegative=True)
multi = sp.Symbol("[B>1]", nonnegative=True)  # 1 for a decode step of two or more sequences, else 0


def engine_prefill_time_expr(cached: bool = True) -> sp.Expr:
    """The toy engine's prefill model: ``prefill_time_expr() + e + g (h + n) + w n^2 / 2 + s K``
    for a chunk after ``h > 0`` cached tokens (``cached``), else ``prefill_time_expr() + p P_pad
    + s K`` (``P_pad``, ``K``: :data:`pad_pairs`, :data:`keys_read`, the counts of
    ``sim.cost.flash_counts``; ``p = s = 0`` off the CPU engine)."""
    base = prefill_time_expr() + c_s * keys_read
    return base + c_e + c_g * (h_cached + n_new) + c_w * n_new ** 2 / 2 if cached else base + c_p * pad_pairs


def engine_decode_step_expr() -> sp.Expr:
    """The toy engine's decode step: ``a_d + e_d [B>1] + b_d B + c_d C + d_q C^2`` (``[B>1]`` is the
    symbol :data:`multi`, 1 for a batch of two or more sequences: matrix-matrix products instead
    of matrix-vector ones; ``CostModel.decode_time``)."""
    return decode_step_expr() + d_e * multi + d_q * ctx ** 2


def decode_run_expr(m: sp.Symbol) -> sp.Expr:
    """Closed form of ``sum_{j<m} t_d(B, C + j B)`` with ``t_d = a_d + e_d [B>1] + b_d B + c_d C +
    d_q C^2``: ``m t_d(B, C) + c_d B m(m-1)/2 + d_q (C B m(m-1) + B^2 (m-1) m (2m-1) / 6)``
    (``CostModel.decode_run_time``; ``test_decode_run_closed_form``)."""
    td = engine_decode_step_expr()
    return (m * td + d_c * batch * m * (m - 1) / 2
            + d_q * (ctx * batch * m * (m - 1) + batch ** 2 * (m - 1) * m * (2 * m - 1) / 6))


def prefill_time(n: float, h: float, coeffs: dict | None = None) -> float:
    """Evaluate the prefill model (seconds) with ``coeffs`` (default A100 / Llama-3.1-8B)."""
    k = coeffs or default_cost_coefficients()
    return k["prefill_a_s"] + k["prefill_b_s_per_tok"] * n + k["prefill_c_s_per_tok2"] * n * (h + n / 2)


def decode_step_time(B: float, C: float, coeffs: dict | None = None) -> float:
    """Evaluate the decode step model (seconds per step)."""
    k = coeffs or default_cost_coefficients()
    return k["decode_a_s"] + k["decode_b_s_per_seq"] * B + k["decode_c_s_per_ctx_tok"] * C


def roofline_terms(profile: str = "a100-llama3-8b", mfu: float = MFU, mbu: float = MBU) -> dict:
    """The roofline quantities behind :func:`default_cost_coefficients` (for display/tests).

    Returns FLOPs per token (``linear_flops_per_tok = 2 * params``), attention FLOPs per token
    pair (``attn_flops_per_pair = 4 * n_layers * d_model``), bytes of weights and of KV per
    token, and the effective FLOP/s and byte/s (peak times ``mfu`` / ``mbu``).
    """
    hw_name, model_name = PROFILES[profile]
    hw, m = HARDWARE[hw_name], MODELS[model_name]
    return {
        "linear_flops_per_tok": 2.0 * m["params"],
        "attn_flops_per_pair": 4.0 * m["n_layers"] * m["d_model"],
        "weight_bytes": m["params"] * m["bytes_per_param"],
        # K and V, every layer, kv_dim values of bytes_per_param bytes each.
        "kv_bytes_per_tok": 2.0 * m["n_layers"] * m["kv_dim"] * m["bytes_per_param"],
        "flops_per_s": hw["peak_flops"] * mfu,
        "bytes_per_s": hw["hbm_bytes_per_s"] * mbu,
    }


def default_cost_coefficients(profile: str = "a100-llama3-8b", mfu: float = MFU,
                              mbu: float = MBU) -> dict:
    """Cost-model coefficients (floats, SI units) from a roofline of ``profile``.

    Profiles: ``"a100-llama3-8b"`` (A100-SXM4-80GB, Llama-3.1-8B, the DLPM paper's setup) and
    ``"a10g-llama2-7b"`` (A10G 24 GB, Llama-2-7B, the VTC paper's setup).

    Derivation (``proofs/cost_model.md``), with F = peak FLOP/s * mfu and BW = HBM B/s * mbu:
      - ``prefill_a_s = weight_bytes / BW`` (one pass over the weights) [s]
      - ``prefill_b_s_per_tok = 2 * params / F`` [s/token]
      - ``prefill_c_s_per_tok2 = 4 * n_layers * d_model / F`` [s/token^2]
      - ``decode_a_s = weight_bytes / BW`` [s/step]
      - ``decode_b_s_per_seq = 2 * params / F`` [s/(step*sequence)]
      - ``decode_c_s_per_ctx_tok = kv_bytes_per_tok / BW`` [s/(step*context token)]
    Assumptions: mfu = 0.5 and mbu = 0.8 of peak (not measured here); BF16 weights and KV.
    For A100/Llama-3.1-8B: a = 9.85 ms, b = 103 us/token, c = 3.36 ns/token^2,
    a_d = 9.85 ms, b_d = 103 us/seq, c_d = 80.4 ns/context token.
    """
    r = roofline_terms(profile, mfu, mbu)
    a = r["weight_bytes"] / r["bytes_per_s"]
    return {
        "prefill_a_s": a,
        "prefill_b_s_per_tok": r["linear_flops_per_tok"] / r["flops_per_s"],
        "prefill_c_s_per_tok2": r["attn_flops_per_pair"] / r["flops_per_s"],
        "decode_a_s": a,
        "decode_b_s_per_seq": r["linear_flops_per_tok"] / r["flops_per_s"],
        "decode_c_s_per_ctx_tok": r["kv_bytes_per_tok"] / r["bytes_per_s"],
    }


def attention_pairs_expr() -> sp.Expr:
    """Causal (query, key) pairs of a prefill of n tokens after h cached: ``n h + n(n+1)/2``."""
    return n_new * h_cached + n_new * (n_new + 1) / 2


def kv_capacity_tokens(profile: str = "a100-llama3-8b", fraction: float = KV_MEM_FRACTION) -> int:
    """KV-cache slots (tokens) of one instance: ``(hbm_bytes - weight_bytes) * fraction /
    kv_bytes_per_tok`` (``proofs/cost_model.md``, "KV capacity").

    A100-80GB / Llama-3.1-8B: (80e9 - 16.06e9) * 0.9 / 131072 B = 439,041 tokens;
    A10G-24GB / Llama-2-7B: (24e9 - 13.48e9) * 0.9 / 524288 B = 18,058 tokens.
    Raises:
        KeyError: on an unknown profile.
    """
    hw_name, _ = PROFILES[profile]
    r = roofline_terms(profile)
    free = HARDWARE[hw_name]["hbm_bytes"] - r["weight_bytes"]
    return int(free * fraction // r["kv_bytes_per_tok"])
