"""Workloads that provoke, and avoid, LMetric's KV$ hotspot (``background.md`` §3).

:func:`hotspot_workload`: one prefix class ``hot`` (a long shared document plus a short
fresh suffix per request) whose arrival share jumps from ``x_warm`` to ``x`` during a
burst, on top of cold traffic (unique prompts). During the warm-up the class settles on
one or a few instances (its holders M); in the burst its share x is well above the
holders' share ``|M|/N``, so the benign condition ``x/xbar <= |M|/|Mbar|`` is violated,
and the product score keeps sending it to M (a hit saves ``L_c - u_c`` prefill tokens,
``kappa = L_c/u_c`` is large) while M's batch outgrows the others'.

:func:`benign_twin`: the same arrival times, prompt lengths and outputs (same random
stream), but the burst traffic is spread over ``n_classes`` documents (default ``2N``),
each its own prefix class with share ``x / n_classes <= 1/N``: benign for every class.

Arrivals are Poisson at ``qps`` requests/s over ``warm_s + burst_s + tail_s`` seconds; a
request belongs to the hot traffic with probability ``x_warm`` outside the burst and
``x`` inside. Prompt units are minted as in :mod:`fairsched.workload.generators` (block
size ``block_size``), so documents share their full blocks and nothing else is shared.
"""

from __future__ import annotations

import numpy as np

from ._rows import _block_size, _build, _draw, _int, _length, _Minter, _pos, _seed
from .request import Workload

__all__ = ["benign_twin", "hotspot_workload"]


def _frac(name: str, v) -> float:
    v = float(v)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1] (got {v!r})")
    return v


def _rows(*, n_instances, qps, x, x_warm, warm_s, burst_s, tail_s, doc_tokens, suffix_tokens, output_tokens,
          cold_input_tokens, n_cold_clients, seed, block_size, n_classes, class_prefix):
    rng = np.random.default_rng(seed)
    m = _Minter(block_size)
    doc_len = _draw(rng, doc_tokens)  # one draw whatever n_classes: the twins share the random stream
    docs = [m.segment(doc_len) for _ in range(n_classes)]
    end = warm_s + burst_s + tail_s
    rows = []
    t = 0.0
    k_hot = 0
    while True:
        t += float(rng.exponential(1.0 / qps))
        if t >= end:
            break
        share = x if warm_s <= t < warm_s + burst_s else x_warm
        u = float(rng.random())
        suffix = _draw(rng, suffix_tokens)
        cold_len = _draw(rng, cold_input_tokens)
        out = _draw(rng, output_tokens)
        user = int(rng.integers(0, n_cold_clients))
        if u < share:
            d = docs[k_hot % n_classes]
            name = class_prefix if n_classes == 1 else f"{class_prefix}{k_hot % n_classes}"
            k_hot += 1
            units, n = m.units([d, m.segment(suffix)])
            rows.append((t, name, units, n, out))
        else:
            units, n = m.units([m.segment(cold_len)])
            rows.append((t, f"user{user}", units, n, out))
    return rows


def _args(n_instances, qps, x, x_warm, warm_s, burst_s, tail_s, doc_tokens, suffix_tokens, output_tokens,
          cold_input_tokens, n_cold_clients, seed, block_size) -> dict:
    return dict(n_instances=_int("n_instances", n_instances), qps=_pos("qps", qps), x=_frac("x", x),
                x_warm=_frac("x_warm", x_warm), warm_s=float(max(0.0, warm_s)), burst_s=_pos("burst_s", burst_s),
                tail_s=float(max(0.0, tail_s)), doc_tokens=_length("doc_tokens", doc_tokens),
                suffix_tokens=_length("suffix_tokens", suffix_tokens),
                output_tokens=_length("output_tokens", output_tokens),
                cold_input_tokens=_length("cold_input_tokens", cold_input_tokens),
                n_cold_clients=_int("n_cold_clients", n_cold_clients), seed=_seed(seed),
                block_size=_block_size(block_size))


def hotspot_workload(n_instances: int = 8, qps: float = 30.0, x: float = 0.8, *, x_warm: float = 0.05,
                     warm_s: float = 60.0, burst_s: float = 180.0, tail_s: float = 60.0,
                     doc_tokens=12000, suffix_tokens=(16, 64), output_tokens=(64, 192),
                     cold_input_tokens=(500, 2000), n_cold_clients: int = 16, seed: int = 0,
                     block_size: int = 16) -> Workload:
    """One hot prefix class ``hot`` with arrival share ``x`` during a burst (see the module doc).

    ``n_instances`` only sizes the meta data (the threshold share ``|M|/N`` for one
    holder); the workload itself does not depend on it. Defaults: 30 req/s for 300 s
    (~9,000 requests), a 12,000-token document with 16-64-token questions (kappa ~ 300),
    64-192 output tokens, cold prompts of 500-2,000 tokens from 16 users.

    Raises:
        ValueError: a bad argument (the message names it).
    """
    a = _args(n_instances, qps, x, x_warm, warm_s, burst_s, tail_s, doc_tokens, suffix_tokens, output_tokens,
              cold_input_tokens, n_cold_clients, seed, block_size)
    rows = _rows(**a, n_classes=1, class_prefix="hot")
    w = _build(rows, generator="hotspot_workload", block_size=a["block_size"], params=a,
               name=f"hotspot-x{x:g}-qps{qps:g}-seed{seed}")
    w.meta.update(hot_classes=["hot"], burst=(a["warm_s"], a["warm_s"] + a["burst_s"]),
                  threshold_share_one_holder=1.0 / a["n_instances"])
    return w


def benign_twin(n_instances: int = 8, qps: float = 30.0, x: float = 0.8, *, x_warm: float = 0.05,
                warm_s: float = 60.0, burst_s: float = 180.0, tail_s: float = 60.0,
                doc_tokens=12000, suffix_tokens=(16, 64), output_tokens=(64, 192),
                cold_input_tokens=(500, 2000), n_cold_clients: int = 16, seed: int = 0,
                block_size: int = 16, n_classes: int | None = None) -> Workload:
    """:func:`hotspot_workload`'s twin with the same arrivals, lengths and rates, the hot
    traffic spread over ``n_classes`` documents (default ``2 * n_instances``; classes
    ``doc0``, ``doc1``, ..., taken in turn), each with share ``x / n_classes``.

    Raises:
        ValueError: a bad argument, or ``n_classes`` too small for every class to be benign
            with one holder (``x / n_classes > 1 / n_instances``).
    """
    a = _args(n_instances, qps, x, x_warm, warm_s, burst_s, tail_s, doc_tokens, suffix_tokens, output_tokens,
              cold_input_tokens, n_cold_clients, seed, block_size)
    k = _int("n_classes", n_classes if n_classes is not None else 2 * a["n_instances"], 2)
    if a["x"] / k > 1.0 / a["n_instances"]:
        raise ValueError(f"n_classes={k} leaves each class a share {a['x'] / k:.3f} > 1/n_instances="
                         f"{1 / a['n_instances']:.3f}: not benign with one holder")
    rows = _rows(**a, n_classes=k, class_prefix="doc")
    w = _build(rows, generator="benign_twin", block_size=a["block_size"], params={**a, "n_classes": k},
               name=f"benign-twin-x{x:g}-qps{qps:g}-seed{seed}")
    w.meta.update(hot_classes=[f"doc{i}" for i in range(k)], burst=(a["warm_s"], a["warm_s"] + a["burst_s"]),
                  threshold_share_one_holder=1.0 / a["n_instances"])
    return w
