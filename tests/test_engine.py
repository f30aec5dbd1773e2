"""Torch toy engine: logits with prefix reuse equal a full recompute, KV bookkeeping,
the serving loop against the simulator, determinism (model ``cpu-tiny``: fast)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fairsched.engine import DEFAULT_INSTANCE, PagedKVCache, build_model, run_engine
from fairsched.engine.model import prompt_tokens, unit_tokens
from fairsched.sim import CostModel, InstanceConfig, simulate
from fairsched.workload.request import make_workload

ATOL = 1e-4  # float32


@pytest.fixture(scope="module")
def model():
    return build_model("cpu-tiny", "cpu")


def dense_logits(model, req, out):
    """Full recompute of prompt + generated tokens: logits of every output position."""
    toks = torch.cat([torch.from_numpy(prompt_tokens(req, model.config.vocab_size)),
                      torch.tensor(out[:-1], dtype=torch.long)])
    return model.forward_dense(toks)[req.input_len - 1:]


def test_unit_tokens_are_a_function_of_the_unit():
    a = unit_tokens([5, 9, 5], 16, 512)
    assert a.shape == (3, 16) and (a >= 0).all() and (a < 512).all()
    assert (a[0] == a[2]).all() and not (a[0] == a[1]).all()
    assert (unit_tokens([3, 700], 1, 512)[:, 0] == [3, 700 % 512]).all()
    assert unit_tokens([2**70 + 1, -3], 16, 512).shape == (2, 16)  # any int


@pytest.mark.parametrize("h,n", [(0, 40), (16, 16), (37, 50), (48, 1), (100, 77)])
def test_prefill_over_cached_prefix_matches_dense(model, h, n):
    """Positions h..h+n-1 computed over h cached tokens (any alignment with the 16-token
    blocks) give the logits of a full forward."""
    g = torch.Generator().manual_seed(h + n)
    toks = torch.randint(0, model.config.vocab_size, (h + n,), generator=g)
    pool = PagedKVCache.for_model(model, 16, 16)
    # scattered, non-contiguous slots: blocks in reverse order
    slots = torch.tensor(pool.slots(list(range(15, -1, -1))))
    if h:
        model.prefill(toks[:h], pool, slots, 0)
    got = model.prefill(toks[h:], pool, slots, h, all_logits=True)
    ref = model.forward_dense(toks)[h:]
    torch.testing.assert_close(got, ref, atol=ATOL, rtol=0)


def _prefix_workload(late: float = 5.0):
    A = (1, 2, 3, 4, 5)
    rows = [(0.0, "a", A, 5 * 16 - 7, 5),  # partial last block
            (0.0, "b", A[:3] + (10, 11), 5 * 16, 6),  # shares 3 blocks with A
            (0.0, "a", A, 5 * 16 - 7, 4),  # same prompt: all cached, last token recomputed
            (0.0, "c", tuple(range(20, 28)), 8 * 16 - 3, 6),
            (0.0, "b", A[:3] + (10, 12, 13), 6 * 16 - 1, 3),
            (late, "a", A, 5 * 16 - 7, 4),
            (late, "c", tuple(range(20, 27)) + (28,), 8 * 16, 3)]
    return make_workload(rows, block_size=16)


@pytest.mark.parametrize("cap_blocks", [256, 14])
def test_engine_logits_equal_full_recompute(model, cap_blocks):
    """Every output token's logits, computed by the serving loop with shared prefix blocks,
    prefill chunks that straddle blocks (budget 23) and padded decode batches, equal a
    full recompute; with 14 blocks of KV memory, prefixes are evicted and recomputed."""
    w = _prefix_workload()
    cfg = InstanceConfig(max_batch_size=4, token_budget=23, kv_capacity_tokens=cap_blocks * 16)
    res = run_engine(w, "fcfs", model=model, instance=cfg, record_logits=True, check=True)
    assert res.n_finished == len(w)
    for r in w:
        out = res.meta["outputs"][r.rid]
        assert len(out) == r.output_len
        ref = dense_logits(model, r, out)
        torch.testing.assert_close(res.meta["logits"][r.rid], ref, atol=ATOL, rtol=0)
        assert ref.argmax(-1).tolist() == out  # greedy
    cached = res.cached_tokens
    assert cached[1] == 48 and cached[2] == 72  # 3 shared blocks; all but the last token
    evicted = res.meta["engine"]["evicted_blocks"][0]
    if cap_blocks == 256:
        assert evicted == 0 and cached[5] == 72 and cached[6] == 112
    else:
        assert evicted > 0 and cached[5] < 72 and cached[6] < 112  # recomputed after eviction


def test_recompute_after_eviction_reuses_freed_blocks(model):
    """Blocks freed by eviction are handed to new prompts; the evicted prefix, asked for
    again, is recomputed into other blocks and still gives the right logits."""
    rows = [(0.0, "a", tuple(range(100, 106)), 96, 3)]
    rows += [(1.0 + k, f"x{k}", tuple(range(200 + 10 * k, 206 + 10 * k)), 96, 3) for k in range(3)]
    rows += [(10.0, "a", tuple(range(100, 106)) + (999,), 100, 4)]
    w = make_workload(rows, block_size=16)
    cfg = InstanceConfig(max_batch_size=2, token_budget=64, kv_capacity_tokens=9 * 16)
    res = run_engine(w, "fcfs", model=model, instance=cfg, record_logits=True, check=True)
    assert res.meta["engine"]["evicted_blocks"][0] >= 6
    assert res.cached_tokens[-1] == 0  # "a"'s prefix was evicted: computed again
    for r in w:
        ref = dense_logits(model, r, res.meta["outputs"][r.rid])
        torch.testing.assert_close(res.meta["logits"][r.rid], ref, atol=ATOL, rtol=0)


@st.composite
def workloads(draw):
    """Prompts from a few shared prefixes plus private suffixes (block size 4)."""
    n = draw(st.integers(1, 14))
    prefixes = [tuple(range(100 * k, 100 * k + draw(st.integers(1, 5)))) for k in range(3)]
    rows, t, fresh = [], 0.0, 10_000
    for _ in range(n):
        t += draw(st.floats(0, 0.01))
        pre = prefixes[draw(st.integers(0, 2))] if draw(st.booleans()) else ()
        k = draw(st.integers(0 if pre else 1, 4))
        p = pre + tuple(range(fresh, fresh + k))
        fresh += k
        rows.append((t, draw(st.sampled_from("abc")), p, len(p) * 4 - draw(st.integers(0, 3)),
                     draw(st.integers(1, 6))))
    return make_workload(rows, block_size=4)


@settings(max_examples=25, deadline=None)
@given(w=workloads(), policy=st.sampled_from(["fcfs", "lpm", "vtc", "dlpm"]), n=st.integers(1, 2),
       cfg=st.builds(InstanceConfig, max_batch_size=st.integers(1, 6), token_budget=st.integers(1, 40),
                     kv_capacity_tokens=st.integers(48, 160)))
def test_kv_bookkeeping_and_outputs_under_memory_pressure(model, w, policy, n, cfg):
    """Random workloads, small KV memory, one or two instances: the block map mirrors the
    tree and every block is free, cached or owned after each iteration (``check=True``);
    every output token's logits equal a full recompute's; every request finishes once.
    (Prompts here may use one unit both as a partial and as a full block, which the
    generators never do: the engine then recomputes from the partial block.)"""
    res = run_engine(w, policy, "lmetric" if n > 1 else None, n, model=model, instance=cfg, check=True,
                     record_logits=True, policy_params={"quantum": 16.0} if policy == "dlpm" else None)
    assert (res.meta["finish_count"] == 1).all()
    for r in w:
        ref = dense_logits(model, r, res.meta["outputs"][r.rid])
        torch.testing.assert_close(res.meta["logits"][r.rid], ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("policy", ["fcfs", "lpm", "vtc", "dlpm"])
def test_engine_run_records_a_simresult(model, policy):
    from fairsched.workload.generators import long_document_qa

    w = long_document_qa(n_clients=3, questions_per_client=5, doc_tokens=(200, 400), question_tokens=(10, 40),
                         output_tokens=(2, 8), rate=20.0, seed=1)
    res = run_engine(w, policy, model=model)
    n = len(w)
    assert (res.meta["finish_count"] == 1).all() and res.n_finished == n
    assert sorted(res.meta["admit_order"]) == list(range(n))
    arr = np.array([r.arrival for r in w])
    assert (res.admit_t >= arr).all() and (res.first_token_t > res.admit_t).all()
    assert (res.finish_t >= res.first_token_t).all()
    assert res.decode_tokens == sum(r.output_len for r in w)
    assert res.policy == policy and res.n_instances == 1
    # service log: w_p x uncached at admission + w_q per output token
    total = sum(r.input_len - c for r, c in zip(w, res.cached_tokens, strict=True)) + 2 * res.decode_tokens
    assert np.isclose(sum(res.svc_amount), total)
    # measured seconds: one amount per service entry, adding up to the measured compute
    sec = res.meta["svc_seconds"]
    assert len(sec) == len(res.svc_amount) and (sec >= 0).all()
    assert np.isclose(sec.sum(), res.meta["compute_s"])
    rq = res.meta["requests"]
    assert (rq.prefill_s > 0).all() and (rq.new_tokens == rq.input_len - rq.cached_tokens).all()
    assert res.cached_tokens.sum() > 0  # questions reuse their document
    ch = res.meta["prefill_chunks"]
    assert ch.groupby("rid").n.sum().tolist() == rq.new_tokens.tolist()
    # the engine clock advances by the measured iteration times (and jumps over idle time)
    assert np.nanmax(res.finish_t) - w[0].arrival >= res.meta["compute_s"] - 1e-9
    assert res.meta["engine"]["timer"] == "cpu" and res.meta["engine"]["threads"] == 1


@pytest.mark.parametrize("policy,router,n", [("fcfs", None, 1), ("lpm", None, 1), ("vtc", None, 1),
                                             ("dlpm", None, 1), ("lpm", "lmetric", 2), ("dlpm", "d2lpm", 3),
                                             ("fcfs", "rr", 2)])
def test_engine_with_model_clock_reproduces_the_simulator(model, policy, router, n):
    """Same scheduling code, same iteration semantics: with the cost model as its clock
    (and no eviction) the engine's SimResult equals the simulator's."""
    from fairsched.workload.generators import long_document_qa

    w = long_document_qa(n_clients=3, questions_per_client=5, doc_tokens=(200, 400), question_tokens=(10, 40),
                         output_tokens=(2, 8), rate=20.0, seed=2)
    cm = CostModel()
    cfg = DEFAULT_INSTANCE["cpu-tiny"]
    a = run_engine(w, policy, router, n, model=model, clock=cm, instance=cfg)
    b = simulate(w, policy, router, n, instance=cfg, cost=cm, decode_runs=False)
    for f in ("instance", "admit_t", "prefill_done_t", "first_token_t", "finish_t", "cached_tokens"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    for f in ("svc_t", "svc_client", "svc_amount", "bl_t", "bl_client", "bl_delta"):
        assert list(getattr(a, f)) == list(getattr(b, f)), f
    assert (a.policy, a.router, a.n_instances) == (b.policy, b.router, b.n_instances)


@pytest.mark.parametrize("policy", ["fcfs", "vtc", "dlpm"])
def test_admission_order_is_reproducible(model, policy):
    """With every request arrived before the first iteration ends, ordering does not depend
    on measured durations: two runs admit in the same order (per instance with a router)."""
    from fairsched.workload.generators import long_document_qa

    w = long_document_qa(n_clients=3, questions_per_client=6, doc_tokens=(100, 300), question_tokens=(10, 40),
                         output_tokens=(2, 6), rate=1e6, seed=3)
    assert w.duration < 1e-3
    a = run_engine(w, policy, model=model)
    b = run_engine(w, policy, model=model)
    assert a.meta["admit_order"] == b.meta["admit_order"]
    assert np.array_equal(a.cached_tokens, b.cached_tokens)
    assert a.meta["outputs"] == b.meta["outputs"]
    c = run_engine(w, policy, "lmetric", 2, model=model)
    d = run_engine(w, policy, "lmetric", 2, model=model)
    assert np.array_equal(c.instance, d.instance)
    for i in range(2):
        assert [r for r in c.meta["admit_order"] if c.instance[r] == i] == \
            [r for r in d.meta["admit_order"] if d.instance[r] == i]


def test_engine_rejects_requests_that_cannot_fit(model):
    w = make_workload([(0.0, "a", tuple(range(10)), 160, 4)], block_size=16)
    with pytest.raises(ValueError, match="KV blocks"):
        run_engine(w, model=model, instance=InstanceConfig(kv_capacity_tokens=160))
    with pytest.raises(ValueError, match="router"):
        run_engine(w, "fcfs", None, 2, model=model)
    with pytest.raises(ValueError, match="clock"):
        run_engine(w, model=model, clock="virtual")
