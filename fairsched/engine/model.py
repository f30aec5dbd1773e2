"""A small Llama-style decoder (nanoGPT style) that reads and writes a paged KV cache.

Architecture (Llama 2/3): token embedding, ``n_layers`` pre-norm blocks of RMSNorm ->
grouped-query attention with rotary position embeddings -> RMSNorm -> SwiGLU MLP, a
final RMSNorm and an untied LM head. Weights are random (normal, std 0.02, residual
projections scaled by ``1/sqrt(2 n_layers)`` as in GPT-2), drawn from a fixed seed on the
CPU so that every device gets the same model. Nothing is downloaded.

Two inference entry points share the layer code:

* :meth:`ToyLlama.prefill`: one sequence, ``n`` new tokens at positions ``h .. h+n-1``
  attending over ``h`` cached tokens (read from the paged cache) plus themselves (causal);
* :meth:`ToyLlama.decode`: a batch of sequences, one new token each, padded to the longest
  context with an attention mask.

:meth:`ToyLlama.forward_dense` is a cache-free full forward, the reference of the
logit-equality tests. Prompt units become token ids through :func:`unit_tokens`: a
deterministic hash of the unit id, so equal prefixes give equal tokens.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PRESETS", "ModelConfig", "ToyLlama", "build_model", "get_config", "prompt_tokens",
           "unit_tokens"]


@dataclass(frozen=True)
class ModelConfig:
    """Size of the toy model.

    Attributes:
        vocab_size: token ids are ``0 .. vocab_size-1``.
        d_model: residual width.
        n_layers: transformer blocks.
        n_heads: query heads (``d_model`` must be a multiple).
        n_kv_heads: key/value heads (GQA; ``n_heads`` must be a multiple).
        d_ff: SwiGLU hidden width.
        rope_theta: rotary base.
        max_seq_len: longest sequence (prompt + output) the rotary table covers.
        norm_eps: RMSNorm epsilon.
        seed: weight seed.
        name: preset name.
    """

    vocab_size: int = 4096
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 2
    d_ff: int = 704
    rope_theta: float = 10000.0
    max_seq_len: int = 16384
    norm_eps: float = 1e-5
    seed: int = 0
    name: str = "custom"

    def __post_init__(self):
        if self.d_model % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads}) "
                             f"and n_heads of n_kv_heads ({self.n_kv_heads})")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError("head_dim must be even (rotary embeddings)")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    def n_params(self, embedding: bool = False) -> int:
        """Parameters of the transformer blocks and LM head (plus the embedding if asked)."""
        d, kv, f = self.d_model, self.kv_dim, self.d_ff
        per_layer = d * d * 2 + 2 * d * kv + 3 * d * f + 2 * d
        n = self.n_layers * per_layer + d + d * self.vocab_size
        return n + (self.vocab_size * d if embedding else 0)

    def prefill_flops(self, n: int, h: int = 0, all_logits: bool = False) -> float:
        """Model FLOPs (multiply-add = 2) of prefilling ``n`` tokens after ``h`` cached ones:
        the linear layers (2 x block parameters per token), the LM head (last token only
        unless ``all_logits``) and attention (``4 * n_layers * d_model`` per attended
        (query, key) pair, ``n h + n (n + 1) / 2`` pairs)."""
        d, kv, f = self.d_model, self.kv_dim, self.d_ff
        block = self.n_layers * (2 * d * d + 2 * d * kv + 3 * d * f)
        lm = self.vocab_size * d * (n if all_logits else 1)
        pairs = n * h + n * (n + 1) / 2
        return 2.0 * block * n + 2.0 * lm + 4.0 * self.n_layers * d * pairs

    def decode_flops(self, batch: int, context: int) -> float:
        """Model FLOPs of one decode step of ``batch`` sequences with ``context`` tokens in all."""
        d, kv, f = self.d_model, self.kv_dim, self.d_ff
        block = self.n_layers * (2 * d * d + 2 * d * kv + 3 * d * f)
        return 2.0 * (block + self.vocab_size * d) * batch + 4.0 * self.n_layers * d * context

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, ModelConfig] = {
    # tests: milliseconds per request on one CPU core
    "cpu-tiny": ModelConfig(vocab_size=512, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=176,
                            max_seq_len=8192, name="cpu-tiny"),
    # default: 4M parameters (3M in the blocks, 1M LM head); a 2k-token prefill takes
    # ~0.1-0.2 s on one CPU core, and attention over a long cached context is a large share
    # of it (64 new tokens after 2k cached cost about as much as 256 without)
    "cpu-small": ModelConfig(vocab_size=4096, d_model=256, n_layers=4, n_heads=4, n_kv_heads=2,
                             d_ff=704, max_seq_len=16384, name="cpu-small"),
    # GPUs: 0.21B parameters (bf16), 16 layers of width 1024, GQA 16/4
    "gpu-medium": ModelConfig(vocab_size=32000, d_model=1024, n_layers=16, n_heads=16, n_kv_heads=4,
                              d_ff=2816, max_seq_len=32768, name="gpu-medium"),
}
"""Named model sizes (``get_config`` also accepts a :class:`ModelConfig`)."""


def get_config(preset: str | ModelConfig) -> ModelConfig:
    """The :class:`ModelConfig` of ``preset`` (a name in :data:`PRESETS` or a config).

    Raises:
        ValueError: on an unknown preset name.
    """
    if isinstance(preset, ModelConfig):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown engine preset {preset!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[preset]


# ---------------------------------------------------------------------------- tokens
_MASK64 = (1 << 64) - 1


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def unit_tokens(units, block_size: int, vocab_size: int) -> np.ndarray:
    """Token ids of prompt ``units``: ``block_size`` ids per unit, an int64 array of shape
    ``(len(units), block_size)``.

    With ``block_size == 1`` a unit is a token id already and is taken modulo the
    vocabulary. Otherwise the ids are a hash (splitmix64) of ``(unit, position in the
    block)``: equal units give equal tokens, so prompts that share ``k`` prefix-chained
    units share their first ``k * block_size`` tokens.
    """
    u = np.array([int(x) & _MASK64 for x in units], dtype=np.uint64)
    if block_size == 1:
        return (u % np.uint64(vocab_size)).astype(np.int64)[:, None]
    with np.errstate(over="ignore"):
        x = _splitmix64(u[:, None] * np.uint64(0x100000001B3) + np.arange(block_size, dtype=np.uint64)[None, :])
    return (x % np.uint64(vocab_size)).astype(np.int64)


def prompt_tokens(req, vocab_size: int) -> np.ndarray:
    """The ``req.input_len`` token ids of a request's prompt (see :func:`unit_tokens`)."""
    return unit_tokens(req.prompt, req.block_size, vocab_size).reshape(-1)[: req.input_len]


# ---------------------------------------------------------------------------- layers
class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)


class Block(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        d, kv = c.d_model, c.kv_dim
        self.attn_norm = RMSNorm(d, c.norm_eps)
        self.wqkv = nn.Linear(d, d + 2 * kv, bias=False)  # fused q, k, v projections
        self.wo = nn.Linear(d, d, bias=False)
        self.ffn_norm = RMSNorm(d, c.norm_eps)
        self.w13 = nn.Linear(d, 2 * c.d_ff, bias=False)  # fused gate and up projections
        self.w2 = nn.Linear(c.d_ff, d, bias=False)

    def mlp(self, x):
        g, u = self.w13(self.ffn_norm(x)).chunk(2, dim=-1)
        return self.w2(F.silu(g) * u)


def _rope(x, cos, sin):
    """Rotate ``x`` (``[..., n, heads, head_dim]``) by the per-position ``cos``/``sin``
    (``[n, head_dim / 2]``), rotate-half convention."""
    x1, x2 = x.chunk(2, dim=-1)
    c = cos.unsqueeze(-2)
    s = sin.unsqueeze(-2)
    return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)


_GQA = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 5)


def _sdpa(q, k, v, mask=None, causal=False):
    """``q``: ``[B, H, n, d]``; ``k``, ``v``: ``[B, Hkv, L, d]``. Grouped-query attention
    through SDPA's ``enable_gqa`` (torch >= 2.5; older versions repeat the KV heads)."""
    rep = q.shape[1] // k.shape[1]
    if rep > 1 and _GQA:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=True)
    if rep > 1:
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)


class ToyLlama(nn.Module):
    """The decoder. Build it with :func:`build_model` (seeded weights, device, dtype)."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.config = c
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.norm = RMSNorm(c.d_model, c.norm_eps)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        inv = 1.0 / (c.rope_theta ** (torch.arange(0, c.head_dim, 2, dtype=torch.float64) / c.head_dim))
        ang = torch.arange(c.max_seq_len, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("rope_cos", ang.cos().float(), persistent=False)
        self.register_buffer("rope_sin", ang.sin().float(), persistent=False)

    def _init_weights(self, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        proj_std = 0.02 / math.sqrt(2 * self.config.n_layers)
        for name, p in self.named_parameters():
            if "norm" in name:
                continue
            std = proj_std if name.endswith(("wo.weight", "w2.weight")) else 0.02
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * std)
        with torch.no_grad():
            self.tok_emb.weight.mul_(50.0)  # embeddings of order one, as after training

    # ------------------------------------------------------------------ pieces
    def _qkv(self, layer: Block, x, pos):
        c = self.config
        n = x.shape[:-1]
        qkv = layer.wqkv(layer.attn_norm(x))
        q, k, v = qkv.split([c.d_model, c.kv_dim, c.kv_dim], dim=-1)
        q = q.view(*n, c.n_heads, c.head_dim)
        k = k.view(*n, c.n_kv_heads, c.head_dim)
        v = v.view(*n, c.n_kv_heads, c.head_dim)
        cos = self.rope_cos[pos].to(x.dtype)
        sin = self.rope_sin[pos].to(x.dtype)
        return _rope(q, cos, sin), _rope(k, cos, sin), v

    def _check_len(self, total: int) -> None:
        if total > self.config.max_seq_len:
            raise ValueError(f"sequence of {total} tokens exceeds max_seq_len={self.config.max_seq_len}")

    # ------------------------------------------------------------------ entry points
    @torch.inference_mode()
    def forward_dense(self, tokens: torch.Tensor) -> torch.Tensor:
        """Full causal forward of one sequence without any cache: logits ``[n, vocab]``."""
        n = tokens.shape[0]
        self._check_len(n)
        pos = torch.arange(n, device=tokens.device)
        x = self.tok_emb(tokens)
        for layer in self.layers:
            q, k, v = self._qkv(layer, x, pos)
            o = _sdpa(q.transpose(0, 1)[None], k.transpose(0, 1)[None], v.transpose(0, 1)[None], causal=True)
            x = x + layer.wo(o[0].transpose(0, 1).reshape(n, -1))
            x = x + layer.mlp(x)
        return self.lm_head(self.norm(x)).float()

    @torch.inference_mode()
    def prefill(self, tokens: torch.Tensor, kv, slots: torch.Tensor, start: int,
                all_logits: bool = False) -> torch.Tensor:
        """Prefill ``tokens`` (``[n]``) at positions ``start .. start+n-1`` of one sequence.

        ``slots`` (``[>= start+n]``, long) are the KV-cache slots of the sequence's
        positions: ``slots[:start]`` must already hold the cached keys/values; the new
        ones are written to ``slots[start:start+n]``. Returns float32 logits of the last
        token (``[1, vocab]``), or of every new token if ``all_logits``.
        """
        n = tokens.shape[0]
        total = start + n
        self._check_len(total)
        dev = tokens.device
        pos = torch.arange(start, total, device=dev)
        write = slots[start:total]
        ctx = slots[:total]
        mask = None
        if start:
            mask = torch.arange(total, device=dev)[None, :] <= pos[:, None]  # [n, total]
        x = self.tok_emb(tokens)
        for li, layer in enumerate(self.layers):
            q, k, v = self._qkv(layer, x, pos)
            kv.write(li, write, k, v)
            if start:
                K, V = kv.gather(li, ctx)  # [Hkv, start+n, hd]
            else:
                K, V = k.transpose(0, 1), v.transpose(0, 1)
            o = _sdpa(q.transpose(0, 1)[None], K[None], V[None], mask=mask, causal=not start)
            x = x + layer.wo(o[0].transpose(0, 1).reshape(n, -1))
            x = x + layer.mlp(x)
        if not all_logits:
            x = x[-1:]
        return self.lm_head(self.norm(x)).float()

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor, kv, slots: list[torch.Tensor], lens: list[int],
               pad_slack: float = 0.25) -> torch.Tensor:
        """One decode step for ``B`` sequences.

        ``tokens`` (``[B]``): the last generated token of each sequence, at position
        ``lens[b] - 1``; ``slots[b]`` (long, length ``>= lens[b]``): sequence ``b``'s KV
        slots; ``lens``: context lengths including the new token, whose keys/values go to
        ``slots[b][lens[b] - 1]``. The linear layers run on the whole batch; attention runs
        on groups of sequences of similar length (sorted, padded to the group's longest
        with a mask, at most ``pad_slack`` padding per group) so that its cost follows the
        total context rather than ``B x`` the longest. Returns logits ``[B, vocab]``.
        """
        B = len(lens)
        self._check_len(max(lens))
        c = self.config
        dev = tokens.device
        pos = torch.tensor([n - 1 for n in lens], device=dev)
        write = torch.stack([slots[b][lens[b] - 1] for b in range(B)])
        groups = []
        for g in _length_groups(lens, pad_slack):
            L = lens[g[0]]
            sm = torch.stack([slots[b][:L] if slots[b].shape[0] >= L
                              else torch.cat([slots[b], slots[b][:1].expand(L - slots[b].shape[0])]) for b in g])
            glens = torch.tensor([lens[b] for b in g], device=dev)
            mask = None
            if min(lens[b] for b in g) < L:
                mask = (torch.arange(L, device=dev)[None, :] < glens[:, None])[:, None, None, :]
            groups.append((torch.tensor(g, device=dev), sm.reshape(-1), len(g), L, mask))
        x = self.tok_emb(tokens)  # [B, d]
        o = x.new_empty(B, c.n_heads, c.head_dim)
        for li, layer in enumerate(self.layers):
            q, k, v = self._qkv(layer, x, pos)  # [B, H, hd], [B, Hkv, hd]
            kv.write(li, write, k, v)
            for idx, flat, b, L, mask in groups:
                K, V = kv.gather(li, flat)  # [Hkv, b*L, hd]
                K = K.view(c.n_kv_heads, b, L, c.head_dim).transpose(0, 1)
                V = V.view(c.n_kv_heads, b, L, c.head_dim).transpose(0, 1)
                o[idx] = _sdpa(q[idx][:, :, None, :], K, V, mask=mask)[:, :, 0, :]
            x = x + layer.wo(o.reshape(B, -1))
            x = x + layer.mlp(x)
        return self.lm_head(self.norm(x)).float()


def _length_groups(lens: list[int], slack: float) -> list[list[int]]:
    """Indices grouped by length, longest first; a group grows while its padded size
    ``len(group) * longest`` stays within ``(1 + slack)`` of its real total."""
    order = sorted(range(len(lens)), key=lambda b: -lens[b])
    groups: list[list[int]] = []
    for b in order:
        if groups:
            g = groups[-1]
            if (len(g) + 1) * lens[g[0]] <= (1.0 + slack) * (sum(lens[i] for i in g) + lens[b]):
                g.append(b)
                continue
        groups.append([b])
    return groups


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device, dtype: torch.dtype | None = None) -> torch.dtype:
    """float32 on CPU, bfloat16 on CUDA (unless ``dtype`` is given)."""
    if dtype is not None:
        return dtype
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def build_model(preset: str | ModelConfig = "cpu-small", device: str | torch.device | None = None,
                dtype: torch.dtype | None = None, seed: int | None = None) -> ToyLlama:
    """A :class:`ToyLlama` with seeded random weights on ``device`` (default: CUDA if
    available) in ``dtype`` (default: float32 on CPU, bfloat16 on CUDA), in eval mode."""
    c = get_config(preset)
    if seed is not None:
        c = replace(c, seed=seed)
    dev = default_device(device)
    m = ToyLlama(c)
    m._init_weights(c.seed)
    m = m.to(device=dev, dtype=default_dtype(dev, dtype))
    m.rope_cos = m.rope_cos.float()
    m.rope_sin = m.rope_sin.float()
    return m.eval()
