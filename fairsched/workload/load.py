"""The offered work of a workload under a cost model (:func:`offered_load`): the load
estimate in a generator's ``meta["load"]`` and the commands' overload warning."""

from __future__ import annotations

from .request import Workload

__all__ = ["DECODE_BATCH", "busy_lower_bound", "offered_load"]

DECODE_BATCH = 32
"""Requests a decode step serves in the load estimate of ``meta["load"]``."""


def offered_load(w: Workload, cost=None) -> dict:
    """Offered work of ``w``: tokens, and seconds of it under ``cost`` (default: the
    simulator's :class:`~fairsched.sim.cost.CostModel`, Llama-3.1-8B on one A100).

    Prefill seconds are :meth:`CostModel.prefill_time` per request, with nothing cached
    (``prefill_s_no_cache``) or with only blocks never seen before computed (an infinite
    cache, ``prefill_s_ideal_cache``). ``decode_s_batch32`` assumes every decode step serves
    :data:`DECODE_BATCH` requests at the workload's mean context (prompt + half the output).
    Utilisation = seconds of work / span of arrivals (> 1: one instance is overloaded).
    """
    from fairsched.sim.cost import CostModel

    cost = cost or CostModel()
    seen: set[int] = set()
    ideal = 0
    prefill_no = prefill_ideal = 0.0
    for r in w.requests:
        k = 0
        while k < len(r.prompt) and r.prompt[k] in seen:
            k += 1
        cached = r.tokens_in(k)
        ideal += r.input_len - cached
        prefill_no += cost.prefill_time(r.input_len, 0)
        prefill_ideal += cost.prefill_time(r.input_len - cached, cached)
        seen.update(r.prompt)
    inp = sum(r.input_len for r in w.requests)
    out = sum(r.output_len for r in w.requests)
    span = max(w.duration, 1e-9)
    ctx = (inp + out / 2) / max(len(w), 1)
    decode = out / DECODE_BATCH * cost.decode_time(DECODE_BATCH, int(DECODE_BATCH * ctx))
    return {"requests": len(w), "span_s": round(w.duration, 3), "input_tokens": inp,
            "input_tokens_ideal_cache": ideal, "output_tokens": out, "cost_model": cost.name,
            "prefill_s_no_cache": round(prefill_no, 2),
            "prefill_s_ideal_cache": round(prefill_ideal, 2),
            "decode_s_batch32": round(decode, 2),
            "utilisation_no_cache": round((prefill_no + decode) / span, 2),
            "utilisation_ideal_cache": round((prefill_ideal + decode) / span, 2)}


def busy_lower_bound(w: Workload, cost=None, instance=None) -> dict:
    """A lower bound on the seconds of iterations every schedule of ``w`` must run, summed
    over instances, under ``cost`` (default :class:`~fairsched.sim.cost.CostModel`) and
    ``instance`` (an :class:`~fairsched.sim.config.InstanceConfig`; default one), whatever
    the router, queue policy, admission rule and number of instances
    (derivation: ``proofs/overload_bound.md``).

    Prefill (``t_prefill(n, h) = a + b n + c n (h + n/2) + [h > 0](e + g (h + n) + w n^2/2)``
    summed over the chunks of each prompt)::

        P = sum_r a ceil(n_r / T) + b max(D, sum_r n_r) + c sum_r (L_r^2 - h_r^2) / 2
            + sum_{r: L_r > T} (e + g L_r)

    with ``L_r`` the prompt's tokens, ``h_r = min(tokens of the longest prefix r shares with
    another request, L_r - 1)`` (most it can find cached; the last token is always
    recomputed), ``n_r = L_r - h_r``, ``D`` the tokens of the distinct prompt prefixes (each
    computed at least once somewhere) and ``T`` the token budget. Decode (``r`` decodes
    ``m_r = o_r - 1`` steps at contexts ``L_r + 1 .. L_r + m_r``; a step holds at most
    ``B = min(max_batch_size, token_budget)`` sequences; ``(sum x)^2 >= sum x^2``; ``decode_e``,
    paid only by steps of two or more sequences, is not forced and is left out)::

        S = sum_r m_r,   D_dec = d_a ceil(S / B) + d_b S + d_c sum_r sum_j (L_r + j)
                                  + d_q sum_r sum_j (L_r + j)^2

    Returns:
        dict: ``prefill_s``, ``decode_s``, ``busy_s`` (their sum, all instances together),
        ``span_s`` (arrival span), ``distinct_prompt_tokens`` (``D``).
    """
    import math

    from fairsched.sim.config import InstanceConfig
    from fairsched.sim.cost import CostModel

    cost = cost or CostModel()
    inst = instance or InstanceConfig()
    budget = inst.token_budget
    batch = max(1, min(inst.max_batch_size, budget))
    reqs = w.requests
    count: dict[int, int] = {}
    least: dict[int, int] = {}  # tokens of a prefix node's last unit: the fewest any request has
    paths = []
    for r in reqs:
        h, path = 0, []
        for i, u in enumerate(r.prompt):
            h = hash((h, u))
            path.append(h)
            count[h] = count.get(h, 0) + 1
            t = r.tokens_in(i + 1) - r.tokens_in(i)
            least[h] = min(least.get(h, t), t)
        paths.append(path)
    distinct = sum(least.values())
    a = c2 = extra = 0.0
    n_sum = steps = ctx1 = ctx2 = 0
    for r, path in zip(reqs, paths, strict=True):
        k = 0
        while k < len(path) and count[path[k]] > 1:
            k += 1
        L = r.input_len
        hr = min(r.tokens_in(k), L - 1)
        n = L - hr
        a += math.ceil(n / budget)
        n_sum += n
        c2 += (L * L - hr * hr) / 2
        if L > budget:
            extra += cost.prefill_e + cost.prefill_g * L
        m = max(r.output_len - 1, 0)
        steps += m
        ctx1 += m * L + m * (m + 1) // 2
        ctx2 += m * L * L + L * m * (m + 1) + m * (m + 1) * (2 * m + 1) // 6
    prefill = cost.prefill_a * a + cost.prefill_b * max(distinct, n_sum) + cost.prefill_c * c2 + extra
    decode = (cost.decode_a * math.ceil(steps / batch) + cost.decode_b * steps + cost.decode_c * ctx1
              + cost.decode_q * ctx2)
    return {"prefill_s": prefill, "decode_s": decode, "busy_s": prefill + decode, "span_s": w.duration,
            "distinct_prompt_tokens": distinct}
