"""LPM ordering of a 10,000-request queue with 4,096-token prompts (token-level units):
`fairsched.policies.queue._LPMOrder` (waiting prompts in their own radix tree, matched
against the cache in one simultaneous walk, `fairsched.cache.match.match_tree`) vs the naive
per-request scan (each request walks the cached prefixes one token at a time, as a
per-token prefix matcher such as SGLang's `_key_match` does), side by side in one run, on
two queues:

* ``docqa``: long-document QA, the case LPM exists for: 64 documents of 3,900 tokens, each
  cached down to a random cut in [2,048, 3,900]; each request = a document + a unique
  196-token question.
* ``random``: requests keep a uniformly random prefix of a document, then diverge.

    python bench/bench_lpm.py [--queue 10000] [--prompt 4096] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fairsched.cache import RadixCache
from fairsched.policies.queue import _LPMOrder
from fairsched.workload.request import Request


def build(queue: int, prompt: int, n_docs: int, seed: int, scenario: str):
    rng = np.random.default_rng(seed)
    question = 196 if scenario == "docqa" else 0
    doc_len = prompt - question
    docs = [tuple(int(x) for x in rng.integers(0, 32_000, doc_len)) for _ in range(n_docs)]
    cache = RadixCache(None, 1)
    trie: dict = {}  # naive: one dict level per token
    for d in docs:
        lo = doc_len // 2 if scenario == "docqa" else doc_len // 4
        cut = int(rng.integers(lo, doc_len + 1))
        cache.insert(d[:cut], 0.0)
        node = trie
        for tok in d[:cut]:
            node = node.setdefault(tok, {})
    reqs = []
    for i in range(queue):
        d = docs[int(rng.integers(n_docs))]
        keep = doc_len if scenario == "docqa" else int(rng.integers(0, doc_len))
        p = d[:keep] + tuple(int(x) for x in rng.integers(32_000, 64_000, prompt - keep))
        reqs.append(Request(i, 0.0, f"c{i % 27}", p, prompt, 1, 1))
    return cache, trie, reqs


class _Inst:
    def __init__(self, cache):
        self.cache = cache

    def cached_tokens(self, r):
        return r.tokens_in(self.cache.match(r.prompt))


def naive_order(trie: dict, reqs: list[Request]) -> list[Request]:
    def match(p):
        node, n = trie, 0
        for tok in p:
            node = node.get(tok)
            if node is None:
                break
            n += 1
        return n

    return sorted(reqs, key=lambda r: (-match(r.prompt), r.rid))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queue", type=int, default=10_000)
    ap.add_argument("--prompt", type=int, default=4096)
    ap.add_argument("--docs", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    print(f"LPM ordering, queue={a.queue}, prompt={a.prompt} tokens (token-level units)")
    for scenario in ("docqa", "random"):
        cache, trie, reqs = build(a.queue, a.prompt, a.docs, 0, scenario)
        inst = _Inst(cache)
        lpm = _LPMOrder()
        t = time.perf_counter()
        for r in reqs:
            lpm.add(r)
        add_t = time.perf_counter() - t
        fast_t, naive_t = [], []
        for _ in range(a.repeat):
            lpm._dirty = True
            t = time.perf_counter()
            fast = lpm.order(inst)
            fast_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            naive = naive_order(trie, reqs)
            naive_t.append(time.perf_counter() - t)
            assert [r.rid for r in fast] == [r.rid for r in naive], "orders differ"
        f, n = min(fast_t), min(naive_t)
        mean_match = sum(inst.cached_tokens(r) for r in reqs) / len(reqs)
        print(f"[{scenario}] cache={cache.size} tokens, mean match={mean_match:.0f} tokens")
        print(f"  shared walk  : {f * 1e3:8.1f} ms per ordering "
              f"(+ {add_t * 1e6 / len(reqs):.0f} us per request once, at arrival)")
        print(f"  naive scan   : {n * 1e3:8.1f} ms per ordering")
        print(f"  speed-up     : {n / f:8.1f}x (same order: yes)")


if __name__ == "__main__":
    main()
