"""The cost model: the engine's richer prefill/decode terms trace to sympy and proofs, the cvxpy
fit recovers them, and the committed calibration of the toy engine explains its measurements."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sympy as sp

from fairsched.engine.calibrate import DECODE_TERMS, PREFILL_TERMS, fit_cost_model
from fairsched.sim.cost import CostModel

ENGINE_COST = Path(__file__).resolve().parents[1] / "data" / "engine_cpu-small_cost.json"


def test_prefill_time_is_the_sympy_engine_model():
    from fairsched.sim.cost import flash_counts
    from fairsched.theory import cost as tc
    from fairsched.theory.symbols import c_a, c_b, c_c, h_cached, n_new

    cm = CostModel(prefill_a=1e-3, prefill_b=2e-5, prefill_c=3e-8, prefill_e=4e-4, prefill_g=5e-7, prefill_w=6e-8,
                   prefill_p=7e-8, prefill_s=9e-7)
    subs = {c_a: cm.prefill_a, c_b: cm.prefill_b, c_c: cm.prefill_c, tc.c_e: cm.prefill_e, tc.c_g: cm.prefill_g,
            tc.c_w: cm.prefill_w, tc.c_p: cm.prefill_p, tc.c_s: cm.prefill_s}
    for n, h in [(1, 0), (64, 0), (600, 0), (2048, 0), (64, 100), (2048, 4096)]:
        pad, keys = flash_counts(n, h)
        e = tc.engine_prefill_time_expr(cached=h > 0).subs({**subs, n_new: n, h_cached: h, tc.pad_pairs: pad,
                                                             tc.keys_read: keys})
        assert cm.prefill_time(n, h) == pytest.approx(float(e), rel=1e-12)
    # without the engine terms it is the roofline model of the GPU profiles
    assert sp.simplify(tc.engine_prefill_time_expr(False).subs({tc.c_p: 0, tc.c_s: 0}) - tc.prefill_time_expr()) == 0


def test_flash_counts_follow_the_kernel_loop():
    """The CPU kernel's counts (proofs/cost_model.md, "The kernel's counts"): the causal path
    computes the whole square up to one 512-key block, 1.5x the causal pairs at n = 1024; with a
    cached context every query block reads all h + n rows; flash_keys_max bounds K over n + h <= L."""
    from fairsched.sim.cost import flash_counts, flash_keys_max, flash_q_block

    assert flash_counts(16, 0) == (128.0, 16)  # one 32-row block, 16 x 16 pairs
    assert flash_counts(512, 0) == (512 * 512 / 2, 8 * 512)  # 8 blocks of 64 rows, all 512 keys
    pad, keys = flash_counts(1024, 0)  # 4 blocks of 256 rows: 512, 512, 1024, 1024 keys
    assert keys == 3072 and pad + 1024 ** 2 / 2 == 256 * 3072
    assert flash_counts(128, 4096) == (0.0, 4 * (4096 + 128))
    for L in (1, 100, 191, 200, 700, 767, 768, 4096):  # (200: the most blocks come from n = 191)
        assert flash_keys_max(L) == max(flash_counts(n, L - n)[1] for n in range(1, L + 1))
    # the kernel's query-block switch points (qSplitSize: 256 rows from 768 queries, 64 from 192)
    assert [flash_q_block(n) for n in (191, 192, 767, 768)] == [32, 64, 64, 256]
    # each term counts alone: a model with only the K/V-row term still pays for the rows
    only_s = CostModel(prefill_s=1e-6)
    assert only_s.prefill_time(128, 4096) == pytest.approx(CostModel().prefill_time(128, 4096) + 1e-6 * 4 * (4096 + 128))
    # prefill_time takes float token counts too (a plotted surface): the counts of the nearest whole ones
    cm = CostModel(prefill_p=1e-7, prefill_s=1e-6)
    assert cm.prefill_time(600.2, np.float64(99.8)) == pytest.approx(cm.prefill_time(600, 100), rel=1e-3)


def test_fit_recovers_the_engine_model():
    """Noise-free times from known coefficients: the cvxpy fit finds them (the fit can fail)."""
    true = CostModel(prefill_a=5e-3, prefill_b=1e-4, prefill_c=9e-8, prefill_e=8e-5, prefill_g=1.6e-6,
                     prefill_w=8e-8, prefill_p=1.2e-7, prefill_s=5e-7, decode_a=4e-3, decode_b=2e-4, decode_c=8e-7, decode_q=3e-11, decode_e=1.5e-3)
    ns, hs = (16, 64, 256, 1024, 2048), (0, 128, 1024, 4096)
    pre = pd.DataFrame([(n, h, true.prefill_time(n, h)) for n in ns for h in hs], columns=["n", "h", "seconds"])
    dec = pd.DataFrame([(b, b * c, true.decode_time(b, b * c)) for b in (1, 2, 4, 16, 32) for c in (64, 512, 1024)],
                       columns=["batch", "context", "seconds"])
    cm, fit = fit_cost_model(pre, dec)
    assert fit["prefill"]["residual_rel_max"] < 1e-3 and fit["decode"]["residual_rel_max"] < 1e-3
    for k in PREFILL_TERMS + DECODE_TERMS:
        assert getattr(cm, k) == pytest.approx(getattr(true, k), rel=0.05, abs=1e-12), k


def test_committed_engine_calibration_explains_its_measurements():
    """data/engine_cpu-small_cost.json (fairsched calibrate, full grid, CPU time): refitting
    its raw measurements gives its coefficients and residuals, and the richer model beats the
    three-term model a + b n + c n (h + n/2) on the same points."""
    from fairsched.theory.fit import nnls_rel

    doc = json.loads(ENGINE_COST.read_text())
    cm = CostModel.load(ENGINE_COST)
    pre = pd.DataFrame(doc["measurements"]["prefill"])
    dec = pd.DataFrame(doc["measurements"]["decode"])
    refit, fit = fit_cost_model(pre, dec)
    for k in PREFILL_TERMS + DECODE_TERMS:
        assert getattr(refit, k) == pytest.approx(getattr(cm, k), rel=1e-3, abs=1e-15), k
    assert fit["prefill"]["residual_rel_p90"] == pytest.approx(doc["residual_rel_p90"]["prefill"], rel=1e-3)
    assert fit["prefill"]["residual_rel_p90"] < 0.10 and fit["decode"]["residual_rel_p90"] < 0.13
    t = pre["seconds"].to_numpy()
    n, h = pre["n"].to_numpy(float), pre["h"].to_numpy(float)
    X3 = np.column_stack([np.ones_like(n), n, n * (h + n / 2)])
    rel3 = np.abs(X3 @ nnls_rel(X3, t) - t) / t
    assert np.percentile(rel3, 90) > 1.5 * fit["prefill"]["residual_rel_p90"]
    # every point the engine's KV capacity allows, none beyond
    assert (dec["context"] <= 32768).all()


def test_old_cost_files_still_load(tmp_path):
    """Files written before the engine terms existed load with those terms 0."""
    p = tmp_path / "old.json"
    p.write_text(json.dumps({"coefficients": {k: 1e-6 for k in ("prefill_a", "prefill_b", "prefill_c", "decode_a",
                                                                   "decode_b", "decode_c")}}))
    cm = CostModel.load(p)
    assert cm.prefill_e == cm.prefill_g == cm.prefill_w == cm.decode_q == 0.0
    assert cm.prefill_time(10, 5) == pytest.approx(1e-6 + 10 * (1e-6 + 1e-6 * 10))


def test_ttft_error_is_zero_when_the_engine_runs_on_the_model_clock():
    """calibrate.ttft_error compares per-request TTFT of the simulator with the engine's: with
    the engine on the cost model's clock (no eviction) the two runs are the same, error 0;
    a cost model twice as slow makes the simulated TTFTs longer."""
    import dataclasses

    from fairsched.engine.calibrate import ttft_error
    from fairsched.engine.cluster import DEFAULT_INSTANCE, run_engine
    from fairsched.engine.model import build_model
    from fairsched.workload import long_document_qa

    w = long_document_qa(n_clients=2, questions_per_client=3, doc_tokens=(200, 300), question_tokens=(10, 30),
                         output_tokens=(2, 4), rate=20.0, seed=1)
    cm = CostModel()
    inst = DEFAULT_INSTANCE["cpu-tiny"]
    eng = run_engine(w, "fcfs", model=build_model("cpu-tiny", "cpu"), clock=cm, instance=inst)
    e = ttft_error(eng, w, cm, inst, "fcfs", decode_runs=False)
    assert e["n"] == len(w) and e["p90"] == pytest.approx(0.0, abs=1e-9) and e["bias"] == pytest.approx(1.0)
    slow = dataclasses.replace(cm, **{k: 2 * getattr(cm, k) for k in PREFILL_TERMS + DECODE_TERMS})
    assert ttft_error(eng, w, slow, inst, "fcfs")["bias"] > 1.2


def test_calibration_timings_are_spread_over_the_whole_run():
    """_time_points stratifies every point's repeats in time: a costly point timed 5 times
    and a cheap one timed 40 times both have their timings spread over the run (mean position
    near the middle, first timing in the first fifth), so a slow spell of the machine cannot
    weigh on the costly points alone (the order before this round timed the 5-repeat points
    in the first passes only)."""
    from fairsched.engine.calibrate import _time_points

    clock = [0.0]
    cost = {"big": 0.25, "small": 0.025, "mid": 0.1}
    order = []

    class FakeTimer:
        def now(self):
            return clock[0]

    def run(p):
        clock[0] += cost[p]
        order.append(p)

    times = _time_points(list(cost), run, FakeTimer(), repeats=5, budget_s=1.0, max_repeats=40, seed=3)
    assert {p: len(v) for p, v in times.items()} == {"big": 5, "small": 40, "mid": 10}
    timed = order[len(cost):]  # after the discarded first pass
    for p, k in (("big", 5), ("small", 40), ("mid", 10)):
        pos = np.array([i for i, q in enumerate(timed) if q == p]) / (len(timed) - 1)
        assert abs(pos.mean() - 0.5) < 0.1 and pos.min() < 1 / k + 0.05 and pos.max() > 1 - 1 / k - 0.05, (p, pos)


_FAULTS = """
import resource, sys, torch
from fairsched.engine.timing import steady_allocator
torch.set_num_threads(1)  # as in a measured run
if sys.argv[1] == "steady" and not steady_allocator():
    print(-1); sys.exit()
def alloc():
    x = torch.empty(1 << 24)  # 64 MiB of float32
    x.fill_(1.0)
    del x
for _ in range(4):
    alloc()
before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
for _ in range(4):
    alloc()
print(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
"""


def test_steady_allocator_stops_page_faults():
    """engine.timing.steady_allocator (glibc), in a fresh interpreter with one torch thread as
    in a measured run: a 64 MiB tensor allocated, written and freed four times more faults
    < 1,000 pages, against a fresh mapping (16,384 page faults) each time with glibc's
    defaults."""
    import os
    import subprocess
    import sys

    def faults(mode):
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, env=env,
                             timeout=120, check=True)
        return int(out.stdout.split()[-1])

    steady = faults("steady")
    if steady < 0 or not sys.platform.startswith("linux"):
        pytest.skip("glibc mallopt only")
    assert steady < 1000
    assert faults("default") > 4 * 10_000


def test_point_estimate_is_the_mean_repeat():
    """calibrate._summary: the fitted estimate of a point is the mean of its repeats (the
    estimator chosen by the split-half rule, proofs/cost_model.md "Which estimator"), with the
    median, the fastest, the spread and the count kept beside it."""
    from fairsched.engine.calibrate import _summary

    mean, med, fastest, spread, k = _summary([1.0, 2.0, 3.0, 4.0, 10.0])
    assert (mean, med, fastest, k) == (4.0, 3.0, 1.0, 5)
    assert spread == pytest.approx((4.0 - 2.0) / 3.0)


def test_speed_probe_scales_the_model_to_the_machine_now():
    """calibrate.speed_level: the probe's kappa is its measured seconds over the model's
    prediction of the same PROBE shapes, and scale_cost(cm, kappa) predicts exactly the
    measured total; a model twice as slow gets half the kappa on the same timings."""
    from fairsched.engine.calibrate import PROBE, scale_cost, speed_level
    from fairsched.engine.model import build_model

    cm = CostModel(prefill_e=1e-4, prefill_g=1e-7, prefill_w=1e-9, decode_e=1e-4)
    p = speed_level(cm, model=build_model("cpu-tiny", "cpu"))
    shapes = [(n, h) for n in PROBE["n"] for h in PROBE["h"]]
    steps = [(b, b * c) for b in PROBE["batch"] for c in PROBE["ctx"]]
    assert sorted(zip(p["prefill"]["n"], p["prefill"]["h"], strict=True)) == sorted(shapes)
    assert (p["prefill"]["repeats"] == PROBE["repeats"]).all() and (p["decode"]["repeats"] == PROBE["repeats"]).all()
    pred = sum(cm.prefill_time(n, h) for n, h in shapes) + sum(cm.decode_time(b, c) for b, c in steps)
    assert p["predicted_s"] == pytest.approx(pred) and p["kappa"] == pytest.approx(p["measured_s"] / pred)
    s = scale_cost(cm, p["kappa"])
    assert (sum(s.prefill_time(n, h) for n, h in shapes) + sum(s.decode_time(b, c) for b, c in steps)
            == pytest.approx(p["measured_s"]))
    slow = scale_cost(cm, 2.0)
    assert slow.prefill_time(512, 1024) == pytest.approx(2 * cm.prefill_time(512, 1024))
    assert p["measured_s"] / (2 * pred) == pytest.approx(p["kappa"] / 2)
