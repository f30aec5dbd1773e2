"""Simulator invariants, searched with hypothesis over small random workloads and configs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairsched.policies import POLICY_NAMES, ROUTER_NAMES
from fairsched.sim import CostModel, InstanceConfig, simulate
from fairsched.workload.request import make_workload


@st.composite
def workloads(draw):
    """Prompts drawn from a few shared prefixes plus private suffixes (block size 4)."""
    n = draw(st.integers(1, 40))
    prefixes = [tuple(range(100 * k, 100 * k + draw(st.integers(1, 6)))) for k in range(3)]
    rows, t, fresh = [], 0.0, 10_000
    for _ in range(n):
        t += draw(st.floats(0, 0.5))
        client = draw(st.sampled_from(["a", "b", "c", "d"]))
        pre = prefixes[draw(st.integers(0, 2))] if draw(st.booleans()) else ()
        k = draw(st.integers(0 if pre else 1, 5))
        suffix = tuple(range(fresh, fresh + k))
        fresh += k
        p = pre + suffix
        rows.append((t, client, p, len(p) * 4 - draw(st.integers(0, 3)), draw(st.integers(1, 12))))
    return make_workload(rows, block_size=4)


configs = st.builds(InstanceConfig, max_batch_size=st.integers(1, 8), token_budget=st.integers(1, 64),
                    kv_capacity_tokens=st.integers(60, 200))


def check_invariants(w, res, cfg):
    n = len(w)
    assert res.n_finished == n, "every request finishes"
    arr = np.array([r.arrival for r in w])
    assert (res.admit_t >= arr - 1e-12).all(), "causality: admitted after arrival"
    assert (res.first_token_t > res.admit_t).all()
    assert (res.finish_t >= res.first_token_t).all()
    assert res.decode_tokens == sum(r.output_len for r in w), "each output token generated once"
    assert max(res.meta["peak_kv_tokens"]) <= cfg.kv_capacity_tokens, "KV use within capacity"
    # no prompt block is computed twice on an instance unless an eviction happened in between
    computed: dict[tuple, int] = {}
    assert len(res.audit) == n, "each request admitted exactly once"
    for _t, inst, rid, matched, units, evicted in res.audit:
        p = w[rid].prompt
        for k in range(matched, units):
            key = (inst, p[: k + 1])
            assert computed.get(key, -1) != evicted, f"request {rid} recomputes block {k} on instance {inst}"
            computed[key] = evicted
    # service log totals match the charges
    cached = res.cached_tokens
    expected = sum(r.input_len - c for r, c in zip(w, cached, strict=True)) + 2 * res.decode_tokens
    assert np.isclose(np.frombuffer(res.svc_t).size and sum(res.svc_amount), expected)


@settings(max_examples=60, deadline=None)
@given(w=workloads(), cfg=configs, policy=st.sampled_from(POLICY_NAMES))
def test_single_instance_invariants(w, cfg, policy):
    res = simulate(w, policy, instance=cfg, audit=True)
    check_invariants(w, res, cfg)


@settings(max_examples=60, deadline=None)
@given(w=workloads(), cfg=configs, router=st.sampled_from(ROUTER_NAMES), n=st.integers(2, 4))
def test_cluster_invariants(w, cfg, router, n):
    res = simulate(w, "dlpm" if router == "d2lpm" else "lpm", router, n_instances=n, instance=cfg, audit=True)
    check_invariants(w, res, cfg)
    assert set(res.instance.tolist()) <= set(range(n))


@settings(max_examples=40, deadline=None)
@given(w=workloads(), cfg=configs, policy=st.sampled_from(POLICY_NAMES))
def test_decode_runs_are_exact(w, cfg, policy):
    """Collapsing pure-decode iterations into one event changes nothing but speed."""
    a = simulate(w, policy, instance=cfg)
    b = simulate(w, policy, instance=cfg, decode_runs=False)
    for f in ("admit_t", "first_token_t", "finish_t"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(a.cached_tokens, b.cached_tokens)
    assert np.isclose(sum(a.svc_amount), sum(b.svc_amount))
    np.testing.assert_allclose(np.sort(np.frombuffer(a.svc_t)), np.sort(np.frombuffer(b.svc_t)), atol=1e-9)


def test_decode_run_steps_are_charged_before_a_mid_run_arrival():
    """VTC's lift reads the counters at an arrival: the steps of a decode run that ended
    before it must be charged by then, as step by step (hypothesis found this; shrunk by
    hand). Client a decodes alone from 0.026 s to 0.075 s (5 steps of ~0.01 s); at 0.05 s
    a and c arrive. Step by step, a's counter holds 3 decode tokens more at the lift, c is
    lifted to it, and rid 1 (a) is admitted before rid 3 (c); charged only at the run's end
    (the bug), c was lifted lower and rid 3 went first."""
    cfg = InstanceConfig(max_batch_size=1, token_budget=1, kv_capacity_tokens=60)
    w = make_workload([(0.0, "a", (0,), 4, 6), (0.05, "a", (1,), 4, 1), (0.05, "c", (2,), 4, 1),
                       (0.05, "c", (3,), 4, 1)], block_size=4)
    a = simulate(w, "vtc", instance=cfg)
    b = simulate(w, "vtc", instance=cfg, decode_runs=False)
    assert np.argsort(b.admit_t).tolist() == [0, 2, 1, 3]
    assert np.argsort(a.admit_t).tolist() == [0, 2, 1, 3]
    np.testing.assert_allclose(a.admit_t, b.admit_t, rtol=1e-12, atol=0)
    assert list(a.svc_amount) == list(b.svc_amount)  # same entries, in the same order
    np.testing.assert_allclose(np.frombuffer(a.svc_t), np.frombuffer(b.svc_t), rtol=1e-12, atol=0)


def test_same_inputs_same_result():
    from fairsched.workload import default_workload

    w = default_workload(0).head(300)
    a = simulate(w, "dlpm")
    b = simulate(w, "dlpm")
    np.testing.assert_array_equal(a.finish_t, b.finish_t)
    assert list(a.svc_amount) == list(b.svc_amount)


def test_prefix_hit_makes_prefill_cheaper():
    """Two requests with one 64-block prefix: the second (after the first finished) hits."""
    p = tuple(range(64))
    w = make_workload([(0.0, "a", p + (1000,), 65 * 16, 1), (10.0, "a", p + (1001,), 65 * 16, 1)],
                      block_size=16)
    res = simulate(w, "fcfs")
    assert res.cached_tokens.tolist() == [0, 64 * 16]
    ttft = res.first_token_t - np.array([0.0, 10.0])
    assert ttft[1] < ttft[0] / 5


def test_request_larger_than_kv_is_rejected():
    w = make_workload([(0.0, "a", (1, 2, 3), 48, 10)], block_size=16)
    with pytest.raises(ValueError, match="request 0"):
        simulate(w, "fcfs", instance=InstanceConfig(kv_capacity_tokens=40))


def test_cost_model_round_trip(tmp_path):
    c = CostModel(prefill_a=1e-3, name="x")
    c.save(tmp_path / "c.json", r2={"prefill": 0.99})
    assert CostModel.load(tmp_path / "c.json").prefill_a == 1e-3
    (tmp_path / "bad.json").write_text('{"coefficients": {"prefill_a": -1}}')
    with pytest.raises(ValueError, match="bad.json.*prefill_a"):
        CostModel.load(tmp_path / "bad.json")


def test_default_cost_model_is_the_measured_a100_profile():
    from dataclasses import astuple

    from fairsched.theory.cost import default_cost_coefficients

    assert astuple(CostModel()) == astuple(CostModel.from_profile("a100-llama3-8b"))
    slow = CostModel.from_profile("a10g-llama2-7b")
    assert slow.prefill_time(1000, 0) > CostModel().prefill_time(1000, 0)
    roof = CostModel.from_profile("a100-llama3-8b", "roofline")
    assert roof.name == "a100-llama3-8b-roofline"
    assert roof.prefill_b == default_cost_coefficients("a100-llama3-8b")["prefill_b_s_per_tok"]
    # attention terms stay the roofline's; the measured token-linear terms differ from it
    assert CostModel().prefill_c == roof.prefill_c and CostModel().decode_c == roof.decode_c
    assert CostModel().prefill_b < roof.prefill_b
    with pytest.raises(KeyError):
        CostModel.from_profile("a10g-llama2-7b", "measured")


def test_measured_profiles_match_vidur_csvs():
    """The committed coefficients are what the derivation gives on the shipped CSVs, and
    each fit explains the measured layer times it was fitted on (p90 relative residual)."""
    import numpy as np

    from fairsched.theory.measured import MEASURED, derive, layer_times
    from fairsched.workload import shared_data_dir

    d = shared_data_dir()
    if d is None or not (d / "vidur_profiles").is_dir():
        pytest.skip("../shared/data/vidur_profiles not present")
    got = derive(d)
    for p, coef in MEASURED.items():
        for k, v in coef.items():
            assert got[p][k] == pytest.approx(v, rel=1e-3), (p, k)
        assert coef["prefill_p90_rel"] < 0.05 and coef["decode_p90_rel"] < 0.15
    # the measured per-token prefill cost, straight from the CSV, against the model
    n, t = layer_times(d / "vidur_profiles" / "a100_llama3_8b" / "mlp.csv")
    t8k = 32 * float(t[n == 8192][0])
    assert CostModel().prefill_b * 8192 == pytest.approx(t8k, rel=0.05)
    assert np.all(np.diff(n) >= 0)


def test_hardware_profiles_trace_to_theory():
    from fairsched.sim.profiles import default_profile, hardware_profile
    from fairsched.theory.cost import kv_capacity_tokens

    cost, inst = hardware_profile("a10g-llama2-7b")
    assert inst.kv_capacity_tokens == kv_capacity_tokens("a10g-llama2-7b") == 18_058
    roof, inst_r = hardware_profile("a100-llama3-8b-roofline")
    assert roof.name == "a100-llama3-8b-roofline" and inst_r.kv_capacity_tokens == 439_041
    assert kv_capacity_tokens("a100-llama3-8b") == 439_041
    assert cost.name == "a10g-llama2-7b" and default_profile("vtc") == "a10g-llama2-7b"
    with pytest.raises(ValueError, match="unknown hardware profile"):
        hardware_profile("tpu")


def test_default_instance_is_the_a100_profile():
    assert InstanceConfig() == InstanceConfig.from_profile("a100-llama3-8b")


def test_service_log_is_time_ordered_after_decode_runs():
    from fairsched.workload import default_workload

    res = simulate(default_workload(0).head(300), "fcfs", "lmetric", n_instances=4)
    t = np.frombuffer(res.svc_t)
    assert t.size and (np.diff(t) >= 0).all()


def test_simulate_takes_policy_params():
    """``simulate(policy_params=...)`` as the engine's cluster: the same run as a factory."""
    from fairsched.policies import make_policy_factory
    from fairsched.workload import default_workload

    w = default_workload(0).head(200)
    slow = CostModel.from_profile("a100-llama3-8b", "roofline")  # slow enough that requests queue
    a = simulate(w, "dlpm", policy_params={"quantum": 64.0}, cost=slow)
    b = simulate(w, make_policy_factory("dlpm", quantum=64.0), cost=slow)
    c = simulate(w, "dlpm", cost=slow)
    assert list(a.svc_amount) == list(b.svc_amount)
    np.testing.assert_array_equal(a.admit_t, b.admit_t)
    assert not np.array_equal(a.admit_t, c.admit_t)  # the quantum reached the policy


def _members(proto) -> set[str]:
    names = set(getattr(proto, "__annotations__", {}))
    names |= {k for k, v in vars(proto).items() if callable(v) and not k.startswith("__")}
    return names


def test_backends_and_instances_implement_the_contracts():
    """The two protocols are what the code uses: every member exists on both backends'
    instances (``ServingInstance``) and clusters (``Backend``)."""
    from fairsched.engine.cluster import EngineCluster
    from fairsched.engine.instance import Engine
    from fairsched.sim.instance import Backend, ServingInstance
    from fairsched.sim.simulator import Instance, Simulator

    w = make_workload([(0.0, "a", (1, 2), 2, 3)], block_size=1)
    sim = Simulator(w)
    assert _members(ServingInstance) and _members(Backend)
    for inst in (sim.instances[0],):
        missing = {m for m in _members(ServingInstance) if not hasattr(inst, m)}
        assert not missing, missing
    assert not {m for m in _members(Backend) if not hasattr(sim, m)}
    for cls in (Instance, Engine):
        assert all(hasattr(cls, m) for m in ("enqueue", "end_step", "routed_cached_tokens", "try_admit"))
    assert all(hasattr(EngineCluster, m) for m in _members(Backend) if callable(getattr(Backend, m, None)))


def test_decode_run_closed_form():
    """CostModel.decode_run_time = the sympy sum of decode steps (theory.cost.decode_run_expr)
    = the step-by-step sum, with the C^2 term the engine calibration fits."""
    import sympy as sp

    from fairsched.theory.cost import d_e, decode_run_expr, decode_step_expr, multi
    from fairsched.theory.cost import d_q as q_sym
    from fairsched.theory.symbols import batch, ctx, d_a, d_b, d_c

    m, j = sp.symbols("m j", positive=True, integer=True)
    step = (decode_step_expr() + d_e * multi + q_sym * ctx ** 2).subs(ctx, ctx + j * batch)
    assert sp.simplify(sp.summation(step, (j, 0, m - 1)) - decode_run_expr(m)) == 0
    cm = CostModel(decode_a=4e-3, decode_b=2e-4, decode_c=8e-7, decode_q=3e-11, decode_e=1e-3)
    assert cm.decode_time(1, 100) + cm.decode_e == pytest.approx(cm.decode_time(2, 100) - cm.decode_b)
    vals = {d_a: cm.decode_a, d_b: cm.decode_b, d_c: cm.decode_c, q_sym: cm.decode_q, d_e: cm.decode_e, multi: 1,
            batch: 7, ctx: 3000}
    for k in (1, 2, 9, 40):
        direct = sum(cm.decode_time(7, 3000 + i * 7) for i in range(k))
        assert cm.decode_run_time(7, 3000, k) == pytest.approx(direct, rel=1e-12)
        assert float(decode_run_expr(m).subs({**vals, m: k})) == pytest.approx(direct, rel=1e-12)
