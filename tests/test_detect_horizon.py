"""Round-5 corrections of the hotspot model (``proofs/lmetric_harm_validation.md`` §3.2-§3.3):

- the finite-horizon batch: a saturated instance decodes at most the requests that arrived
  since the class's onset, so its iteration is the unique root of a concave balance (sympy,
  hypothesis), and a 3-second burst (family id 18) is no longer called harmful;
- the one-off replication cost is spread over the class's arrivals in the run, and the windows
  are combined as the outcome combines requests (family id 39: least-load predicted near the
  measured 0.137 s, harmful as measured);
- the detector's rows carry the onset and the run's class count, and are re-assessed at the end.
"""

from __future__ import annotations

import math

import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from fairsched.analysis.detect import run_detection
from fairsched.analysis.detect.detector import DetectorConfig
from fairsched.analysis.detect.validation import run_verdict
from fairsched.analysis.detect.window_model import theory_for_window
from fairsched.sim import CostModel
from fairsched.theory.lmetric_run import run_regime
from fairsched.theory.lmetric_steady import horizon_iteration, steady_state_hotspot
from fairsched.workload.hotspot import hotspot_workload

COST = CostModel()


def _balance(flows, d_a, t):
    P = sum(r * f for r, f, _, _ in flows)
    return lambda tau: (d_a + sum(r * c * min(o * tau, t) for r, _, o, c in flows)) / (1 - P) - tau


def test_horizon_iteration_segments_solve_the_balance_in_sympy():
    tau, d_a, r, f, o, c, t = sp.symbols("tau d_a r f o c t", positive=True)
    free = sp.solve(sp.Eq(tau, (d_a + r * c * o * tau) / (1 - r * f)), tau)[0]  # not capped: the steady state
    assert sp.simplify(free - d_a / (1 - r * (f + o * c))) == 0  # d_a / (1 - rho), rho = r (prefill + out step)
    capped = sp.solve(sp.Eq(tau, (d_a + r * c * t) / (1 - r * f)), tau)[0]  # capped: D = r t
    assert sp.simplify(capped - (d_a + r * c * t) / (1 - r * f)) == 0


flow = st.tuples(st.floats(0.1, 60.0), st.floats(1e-3, 0.2), st.integers(1, 256), st.floats(1e-5, 5e-3))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(flows=st.lists(flow, min_size=1, max_size=2), t=st.floats(0.05, 60.0), d_a=st.floats(1e-3, 0.05))
def test_horizon_iteration_is_the_unique_root(flows, t, d_a):
    P = sum(r * f for r, f, _, _ in flows)
    tau = horizon_iteration(flows, d_a, t)
    if P >= 1:
        assert tau is None
        return
    h = _balance(flows, d_a, t)
    assert tau is not None and tau > 0 and abs(h(tau)) <= 1e-9 * max(1.0, tau)
    assert h(tau * (1 - 1e-6)) > 0 > h(tau * (1 + 1e-6))  # h is concave, positive at 0: one crossing
    assert horizon_iteration(flows, d_a, 2 * t) >= tau * (1 - 1e-12)  # the batch only grows with time
    steady = horizon_iteration(flows, d_a)
    if steady is not None:  # rho < 1: never above the steady state, equal once it is reached
        assert tau <= steady * (1 + 1e-9)
        if max(o for _, _, o, _ in flows) * steady <= t:
            assert abs(tau - steady) <= 1e-9 * steady


@settings(max_examples=120, deadline=None, derandomize=True)
@given(x=st.floats(0.01, 0.95), m0=st.integers(1, 16), n=st.integers(2, 32), load=st.floats(0.05, 1.5),
       doc=st.integers(500, 32000), u=st.integers(8, 256), n_hot=st.integers(5, 5000), t=st.floats(0.1, 60.0))
def test_harm_still_needs_violation_with_a_finite_horizon(x, m0, n, load, doc, u, n_hot, t):
    m0 = min(m0, n - 1)
    d = steady_state_hotspot(x, m0, n, load * n / 0.2, doc + u, u, 64, 2000, 64, n_hot, t_elapsed=t)
    if d["regime"] == "harmful":
        assert x * n > d["holders"] * (1 - 1e-9)
    if x * n <= m0:
        assert d["regime"] != "harmful"


@settings(max_examples=60, deadline=None, derandomize=True)
@given(x=st.floats(0.3, 0.95), m0=st.integers(1, 4), n=st.integers(5, 32), n1=st.integers(32, 500),
       k=st.integers(2, 10))
def test_replication_cost_is_spread_over_the_run(x, m0, n, n1, k):
    # T_LL(n_hot) = base + c1 (N - |M|) / n_hot: the mean over n_hot requests of a cost paid once per new holder
    args = (x, m0, n, 2.0 * n, 12040, 40, 64, 2000, 64)  # below capacity (rho_all <= 0.3)
    a, b = steady_state_hotspot(*args, n1), steady_state_hotspot(*args, k * n1)
    c1 = a["replication_per_holder_s"]
    assert math.isclose(a["ttft_leastload"] - b["ttft_leastload"], c1 * (n - m0) * (1 / n1 - 1 / (k * n1)),
                        rel_tol=1e-9, abs_tol=1e-12)
    # one window over the whole run: run_regime is that window's prediction with n_hot = the run's count
    one = run_regime([(a, 50)], n, k * n1, leastload_start="holders")
    assert math.isclose(one["ttft_leastload"], b["ttft_leastload"], rel_tol=1e-9)
    assert math.isclose(one["ttft_lmetric"], b["ttft_lmetric"], rel_tol=1e-9)
    # §13.2: the compared least-load run starts cold, so it also pays the |M| replications the holders had
    cold = run_regime([(a, 50)], n, k * n1)
    assert math.isclose(cold["ttft_leastload"] - one["ttft_leastload"], c1 * m0 / (k * n1), rel_tol=1e-9)
    assert cold["ttft_lmetric"] == one["ttft_lmetric"]
    # ... and at most one document prefill per class arrival: with one arrival, one replication, not N
    few, few_h = run_regime([(a, 1)], n, 1), run_regime([(a, 1)], n, 1, leastload_start="holders")
    assert math.isclose(few["ttft_leastload"], few_h["ttft_leastload"], rel_tol=1e-9)
    assert math.isclose(few["ttft_leastload"] - one["ttft_leastload"], c1 - c1 * (n - m0) / (k * n1), rel_tol=1e-9)


# family(200, 0) id 39, seed 0 (one holder of 4, x = 0.88, 56 s steady; measured LMetric 0.289 s,
# least-load 0.137 s: harmful on all four seeds). Window rows as the detector records them.
HOT39 = {"mean_input": 26729.44, "shared_tokens": 26688, "mean_output": 127.08}
W39 = [dict(window=0, x=0.8692, holders_eval=1.0, n_class=113, qps=9.2199, load0=0.0, in_other=1747.4, out_other=145.1,
            n_class_cum=113, t_since_onset=7.05, holder_share=[0, 0, 0, 1.0]),
       dict(window=1, x=0.8897, holders_eval=1.9174, n_class=121, qps=9.6454, load0=27.0, in_other=2015.7, out_other=129.7,
            n_class_cum=234, t_since_onset=21.15, holder_share=[0.917, 0, 0, 1.0]),
       dict(window=2, x=0.8889, holders_eval=2.8421, n_class=152, qps=12.1277, load0=51.0, in_other=1887.9,
            out_other=129.4, n_class_cum=386, t_since_onset=35.25, holder_share=[1.0, 0.401, 0.441, 1.0]),
       dict(window=3, x=0.9103, holders_eval=4.0, n_class=142, qps=11.4372, load0=77.75, in_other=2168.4, out_other=140.1,
            n_class_cum=528, t_since_onset=49.12, holder_share=[1.0] * 4)]


def test_replication_over_the_run_predicts_least_load_on_id_39():
    so_far = theory_for_window(W39[0], HOT39, 4, COST)  # round 4: spread over the 113 arrivals so far
    run = theory_for_window({**W39[0], "n_class_run": 528}, HOT39, 4, COST)
    assert so_far["steady_ttft_leastload"] > 0.3  # 0.37 s against 0.137 s measured
    assert 0.10 < run["steady_ttft_leastload"] < 0.2
    rows = [{**w, "n_class_run": 528} for w in W39]
    rows = [{**w, "theory": theory_for_window(w, HOT39, 4, COST)} for w in rows]
    v = run_verdict(rows, 4)
    assert v["regime"] == "harmful" and v["ttft_lmetric"] > 1.1 * v["ttft_leastload"]


# family id 18, seed 0, window 1 (N = 64, 28 holders, x = 0.89 in a 3 s burst, a 20k-token document;
# measured: LMetric 0.096 s, least-load 1.19 s, R 5.7: hotspot)
HOT18 = {"mean_input": 20259.4, "shared_tokens": 20208, "mean_output": 63.66}
W18 = dict(window=1, x=0.8916, holders_eval=28.0, n_class=551, qps=412.0, load0=9.83, in_other=2083.4, out_other=63.9,
           n_class_cum=554, n_class_run=1133, holder_share=[0.0] * 64)


def test_finite_horizon_batch_in_a_short_burst():
    steady = theory_for_window(W18, HOT18, 64, COST)  # round 4: the holders saturate and replicate
    assert steady["regime"] == "harmful" and steady["steady_holders"] > 28
    burst = theory_for_window({**W18, "t_since_onset": 0.75}, HOT18, 64, COST)
    assert burst["steady_holders"] == 28 and burst["regime"] == "hotspot"
    assert burst["steady_ttft_lmetric"] < 0.15  # measured 0.096 s (the steady state said 1.23 s)


def test_detector_rows_carry_the_onset_and_the_run_count():
    wl = hotspot_workload(4, 20.0, 0.8, x_warm=0.8, warm_s=0.0, burst_s=8.0, tail_s=0.0, doc_tokens=2000,
                          output_tokens=(16, 32), seed=3)
    cfg = DetectorConfig(window_s=2.0, top_k=3, min_class_requests=5)
    rep, _ = run_detection(wl, 4, config=cfg, preload={"hot": [0]})
    w = rep.windows[rep.windows.klass == "hot"].sort_values("window")
    n_hot = sum(1 for r in wl.requests if r.client == "hot")
    assert len(w) >= 3 and (w.n_class_run == n_hot).all()
    assert (w.t_onset == 0.0).all()  # checked from the first window on: the onset is the trace's start
    full = w[w.window < w.window.max()]
    assert ((full.t_since_onset - (full.window * 2.0 + 1.0)).abs() < 1e-9).all()  # the window's middle
    assert all(isinstance(t, dict) and t["regime"] in ("benign", "hotspot", "harmful") for t in w.theory)
    assert w.regime_online.notna().all()
    assert all(t["steady_n_hot"] == n_hot for t in w.theory)  # re-assessed with the run's count


def test_rescoring_the_saved_windows_gives_the_live_verdict():
    # the study's verdicts can be recomputed from its saved window rows (bench --rescore): the same
    # function of the same rows as the live run (detector re-assessment at the end + run_verdict)
    from fairsched.analysis.detect.validation import evaluate, family, rescore_verdict

    spec = family(200, 0)[116]  # hotspot on a holder pair of 4 instances at 91 % load: the finite horizon acts
    row = evaluate(spec, seeds=1)  # (round 6 used id 23; the transient form of §3.5 calls its seed 0 harmful, a miss)
    assert row["windows"] and all(w["n_class_run"] == row["n_hot"] for w in row["windows"])
    assert rescore_verdict(row) == row["verdict"] == row["outcome"] == "hotspot"
    assert rescore_verdict(row, load_form="steady") == "benign"  # §3.5: the steady loads miss it
