"""Seeded generators: determinism, invariants, sharing structure, argument checks."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairsched.workload import (
    GENERATORS,
    Workload,
    default_workload,
    llm_as_judge,
    load_jsonl,
    long_document_qa,
    mixed,
    multi_turn_chat,
    synthetic_unique,
    tree_of_thought,
)
from fairsched.workload._rows import _Minter

SMALL = {  # fast argument sets for every generator
    "long_document_qa": dict(n_clients=3, questions_per_client=10),
    "multi_turn_chat": dict(n_clients=3, turns=4),
    "tree_of_thought": dict(n_clients=2, depth=3, branching=2, trees_per_client=2),
    "llm_as_judge": dict(n_clients=2, requests_per_client=10),
    "synthetic_unique": dict(n_clients=3, duration=10.0),
    "mixed": dict(scale=0.3, duration=30.0),
    "default": {},
}


def common_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def check_invariants(w: Workload) -> None:
    assert len(w) > 0 and w.name and w.meta["generator"]
    for i, r in enumerate(w):
        assert r.rid == i and r.block_size == w.block_size
        assert r.input_len >= 1 and r.output_len >= 1 and r.arrival >= 0
        assert (len(r.prompt) - 1) * w.block_size < r.input_len <= len(r.prompt) * w.block_size
    assert all(a.arrival <= b.arrival for a, b in zip(w, w.requests[1:], strict=False))


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_deterministic_and_valid(name):
    gen, kw = GENERATORS[name], SMALL[name]
    a, b, c = gen(**kw, seed=1), gen(**kw, seed=1), gen(**kw, seed=2)
    check_invariants(a)
    assert a.requests == b.requests and a.name == b.name and a.meta == b.meta
    assert a.requests != c.requests
    assert a.meta["seed"] == 1 and a.block_size == 16


def test_units_never_shared_across_clients():
    # In mixed every client has its own content: a unit id belongs to exactly one client.
    w = mixed(seed=3, scale=0.5, duration=40.0)
    owner: dict[int, set[str]] = defaultdict(set)
    for r in w:
        for u in r.prompt:
            owner[u].add(r.client)
    assert all(len(s) == 1 for s in owner.values())
    assert len(w.clients) >= 8  # low-rate clients may send nothing in a short window


def test_long_document_qa_shares_document():
    w = long_document_qa(n_clients=3, questions_per_client=20, doc_tokens=1000,
                         question_tokens=(10, 50), seed=0)
    by: dict[str, list] = defaultdict(list)
    for r in w:
        by[r.client].append(r.prompt)
    assert sorted(by) == ["doc0", "doc1", "doc2"] and all(len(v) == 20 for v in by.values())
    for prompts in by.values():
        # exactly the 62 full document blocks (62*16 = 992 <= 1000) are shared
        shared = min(common_prefix(prompts[0], p) for p in prompts[1:])
        assert shared == 1000 // 16
        assert all(len(set(p[62:]) & set(q[62:])) == 0 for p in prompts for q in prompts if p is not q)
    heads = [v[0][0] for v in by.values()]
    assert len(set(heads)) == 3  # different clients share nothing


def test_synthetic_unique_shares_nothing():
    w = synthetic_unique(4, [1.0, 2.0, 0.5, 3.0], input_len=(1, 300), seed=5, duration=15.0)
    units = [u for r in w for u in r.prompt]
    assert len(units) == len(set(units))
    counts = {c: sum(r.client == c for r in w) for c in w.clients}
    assert counts["user3"] > counts["user2"]  # rates honoured (3.0/s vs 0.5/s over 15 s)
    assert w.duration < 15.0


def test_multi_turn_chat_history_prefix():
    w = multi_turn_chat(n_clients=2, turns=4, conversations_per_client=2, seed=3)
    for c in w.clients:
        reqs = [r for r in w if r.client == c]
        assert len(reqs) == 8
        assert all(a.arrival < b.arrival for a, b in zip(reqs, reqs[1:], strict=False))
        for conv in (reqs[:4], reqs[4:]):
            for prev, nxt in zip(conv, conv[1:], strict=False):
                # next prompt = previous prompt + answer + new message
                assert nxt.input_len > prev.input_len + prev.output_len
                assert common_prefix(prev.prompt, nxt.prompt) == prev.input_len // 16
        assert common_prefix(reqs[3].prompt, reqs[4].prompt) == 0  # new conversation


def test_tree_of_thought_structure():
    w = tree_of_thought(n_clients=2, depth=3, branching=2, trees_per_client=3,
                        prefix_tokens=320, seed=7)
    assert len(w) == 2 * 3 * (1 + 2 + 4)
    for c in w.clients:
        reqs = [r for r in w if r.client == c]
        assert min(common_prefix(reqs[0].prompt, r.prompt) for r in reqs) == 320 // 16
        roots = 0
        for r in reqs:
            parents = [p for p in reqs if p.arrival < r.arrival and p.input_len < r.input_len
                       and common_prefix(p.prompt, r.prompt) == p.input_len // 16]
            roots += not parents
        assert roots == 3


def test_llm_as_judge_rubric_sharing():
    own = llm_as_judge(n_clients=2, requests_per_client=5, rubric_tokens=800, seed=1)
    shared = llm_as_judge(n_clients=2, requests_per_client=5, rubric_tokens=800, seed=1,
                          shared_rubric=True)
    for w, cross in ((own, 0), (shared, 800 // 16)):
        a = [r for r in w if r.client == "judge0"]
        b = [r for r in w if r.client == "judge1"]
        assert common_prefix(a[0].prompt, a[1].prompt) == 800 // 16
        assert common_prefix(a[0].prompt, b[0].prompt) == cross


def test_default_workload_size():
    w = default_workload(0)
    assert 600 <= len(w) <= 1500
    assert 60 <= w.duration <= 120
    assert max(r.input_len for r in w) <= 5000 and max(r.output_len for r in w) <= 512
    load = w.meta["load"]
    assert load["utilisation_no_cache"] > 1.0  # overloaded without prefix caching
    assert load["input_tokens_ideal_cache"] < load["input_tokens"]
    assert w.name == "default-seed0"


def test_data_sample_is_current():
    # data/default_sample.jsonl must be what data/README.md says: default_workload(0).head(200)
    p = Path(__file__).resolve().parents[1] / "data" / "default_sample.jsonl"
    if not p.exists():
        pytest.skip("data/default_sample.jsonl not present")
    assert p.stat().st_size < 200_000
    assert load_jsonl(p).requests == default_workload(0).head(200).requests


def test_minter_prefix_semantics():
    m = _Minter(16)
    a, b = m.segment(40), m.segment(10)
    p1, n1 = m.units([a])
    p2, n2 = m.units([a, b])
    assert (n1, n2) == (40, 50) and (len(p1), len(p2)) == (3, 4)
    assert p1[:2] == p2[:2] and p1[2] != p2[2]  # partial block != extended block
    assert m.units([a]) == (p1, n1)  # same content, same ids
    c = m.segment(40)
    assert not set(m.units([c])[0]) & set(p1)  # different content, different ids


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=1, max_size=4),
       st.lists(st.integers(0, 60), min_size=1, max_size=4), st.integers(1, 8))
def test_minter_shares_exactly_the_common_blocks(xs, ys, bs):
    # two prompts built on the same first segments share floor(common tokens / bs) units
    m = _Minter(bs)
    segs = [m.segment(n) for n in xs]
    p, n = m.units(segs)
    q, k = m.units(segs[:-1] + [m.segment(v) for v in ys])
    if n == 0 or k == 0:
        return
    common_tokens = sum(xs[:-1])
    assert len(p) == math.ceil(n / bs) and len(q) == math.ceil(k / bs)
    expected = common_tokens // bs
    if xs[-1] == 0 and sum(ys) == 0:  # identical token sequences
        expected = len(p)
    assert common_prefix(p, q) == expected


BAD_ARGS = [
    (long_document_qa, dict(n_clients=0), "n_clients"),
    (long_document_qa, dict(questions_per_client=1.5), "questions_per_client"),
    (long_document_qa, dict(doc_tokens=(10, 5)), "doc_tokens"),
    (long_document_qa, dict(rate=0), "rate"),
    (long_document_qa, dict(seed=-1), "seed"),
    (long_document_qa, dict(block_size=0), "block_size"),
    (multi_turn_chat, dict(turns=0), "turns"),
    (multi_turn_chat, dict(think_time=float("nan")), "think_time"),
    (tree_of_thought, dict(branching=True), "branching"),
    (tree_of_thought, dict(prefix_tokens=-1), "prefix_tokens"),
    (llm_as_judge, dict(rubric_tokens="long"), "rubric_tokens"),
    (llm_as_judge, dict(shared_rubric=1), "shared_rubric"),
    (synthetic_unique, dict(n_clients=2, rates=[1.0]), "rates"),
    (synthetic_unique, dict(rates=-1.0), "rates"),
    (synthetic_unique, dict(duration=0), "duration"),
    (mixed, dict(scale=0), "scale"),
    (default_workload, dict(seed="a"), "seed"),
]


@pytest.mark.parametrize("gen, kw, param", BAD_ARGS)
def test_bad_arguments(gen, kw, param):
    with pytest.raises(ValueError, match=param):
        gen(**kw)


def test_load_estimate_uses_the_simulators_cost_model():
    """meta["load"] prices prefill with fairsched.sim.cost.CostModel (one cost model in the kit)."""
    from fairsched.sim.cost import CostModel

    w = default_workload(0)
    cost = CostModel()
    load = w.meta["load"]
    assert load["cost_model"] == cost.name
    assert load["prefill_s_no_cache"] == round(sum(cost.prefill_time(r.input_len, 0) for r in w), 2)
    # a slower prefill model raises the estimate in proportion
    slow = CostModel(prefill_a=2 * cost.prefill_a, prefill_b=2 * cost.prefill_b, prefill_c=2 * cost.prefill_c,
                     name="slow")
    from fairsched.workload.generators import offered_load

    assert offered_load(w, slow)["prefill_s_no_cache"] == pytest.approx(2 * load["prefill_s_no_cache"], abs=0.02)
