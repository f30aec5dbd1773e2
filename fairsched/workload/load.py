"""The offered work of a workload under a cost model (:func:`offered_load`): the load
estimate in a generator's ``meta["load"]`` and the commands' overload warning."""

from __future__ import annotations

from .request import Workload

__all__ = ["DECODE_BATCH", "offered_load"]

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
