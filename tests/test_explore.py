"""The functions behind the explorers' controls (no browser), and the widgets in a bare kernel.

The expected numbers are written out from the papers' formulas (``proofs/``), so a change of
a bound, a region or the cost model in the library makes these tests fail.
"""

import json
import math

import numpy as np
import pytest

from fairsched.analysis.bounds import check_run, concurrency_k
from fairsched.analysis.metrics import max_service_gap, service_curves
from fairsched.explore import (
    FairnessParams,
    HotspotParams,
    blind_spot_region,
    blind_spot_threshold_curve,
    calibration_points,
    decode_surface,
    default_fairness_workload,
    fairness_point,
    hotspot_point,
    hotspot_quick_run,
    hotspot_regions,
    prefill_surface,
    theory_ratio_curve,
)
from fairsched.sim import CostModel


@pytest.fixture(scope="module")
def wl():
    return default_fairness_workload()


def _L_M(wl):
    return max(r.input_len for r in wl), max(r.output_len for r in wl)


# ---------------------------------------------------------------- fairness
@pytest.mark.parametrize("policy,K", [("vtc", 1), ("dlpm", 1), ("dlpm", 2), ("d2lpm", 2)])
def test_fairness_bound_is_the_papers_formula(wl, policy, K):
    """VTC ``2(w_p L + k w_q M)``, DLPM ``2(Q^u + w_p L + k w_q M)``, D²LPM per worker
    ``2K(Q^u + w_p L + k w_q M)`` (proofs/vtc_upper_bound.md, dlpm_bound.md, d2lpm_bound.md)."""
    Q, wp, wq = 3000.0, 1.5, 2.5
    pt = fairness_point(wl, FairnessParams(policy=policy, quantum=Q, w_p=wp, w_q=wq, n_instances=K))
    L, M = _L_M(wl)
    k = max(concurrency_k(pt.result).values())
    assert pt.k == k >= 1
    X = wp * L + k * wq * M
    want = {"vtc": 2 * X, "dlpm": 2 * (Q + X), "d2lpm": 2 * K * (Q + X)}[policy]
    assert pt.bound == pytest.approx(want)


def test_fairness_bound_moves_with_quantum(wl):
    """d bound / d Q^u = 2 for DLPM, 2K for D²LPM, 0 for VTC (same run otherwise)."""
    for policy, K, slope in (("dlpm", 1, 2), ("d2lpm", 3, 6), ("vtc", 1, 0)):
        a = fairness_point(wl, policy=policy, n_instances=K, quantum=2048.0)
        b = fairness_point(wl, policy=policy, n_instances=K, quantum=4096.0)
        if a.k == b.k:
            assert b.bound - a.bound == pytest.approx(slope * 2048.0)


def test_fairness_measured_gap_and_curves_are_the_runs(wl):
    pt = fairness_point(wl, policy="dlpm", n_instances=1, quantum=4096.0)
    gap = max_service_gap(pt.result)
    assert pt.measured_gap == pytest.approx(gap.gap)
    assert pt.pair == gap.pair
    want = service_curves(pt.result, list(gap.pair))
    assert pt.curves.equals(want)
    # one instance: the explorer's bound is check_run's proved (k) verdict
    v = [u for u in check_run(pt.result, "dlpm", {"quantum": 4096.0}) if u.kind == "proved"][0]
    assert v.bound == pytest.approx(pt.bound)
    assert pt.measured_gap <= pt.bound
    assert 0 < pt.hit_rate < 1 and pt.throughput_tok_s > 0


def _t_pre(c, n, h):
    """proofs/cost_model.md: a + n (b + c (h + n/2)), plus e + g (h + n) + w n^2/2 when h > 0."""
    t = c.prefill_a + n * (c.prefill_b + c.prefill_c * (h + n / 2))
    return t + (c.prefill_e + c.prefill_g * (h + n) + c.prefill_w * n * n / 2 if h > 0 else 0.0)


@pytest.mark.parametrize("policy,K", [("vtc", 1), ("dlpm", 1), ("d2lpm", 2)])
def test_fairness_seconds_bound_is_theorem_1(wl, policy, K):
    """Service in predicted seconds (proofs/seconds_bounds.md, Theorem 1): VTC ``2 X_s``, DLPM
    ``2(Q^u_s + X_s)``, D²LPM per worker ``2K(Q^u_s + X_s)`` with ``X_s <= t_pre^max(L) + k D_max``
    (t_pre^max(L) = t_pre(L, 0) + e + g L + w L^2/2; D_max: a request's decode charges at batch 1
    and the KV capacity as context) and ``Q^u_s = t_pre(Q^u, 0)``, all written out here."""
    c = CostModel.from_profile("a10g-llama2-7b")
    c = CostModel(**{**c.__dict__, "prefill_e": 1e-3, "prefill_g": 2e-7, "prefill_w": 1e-10, "decode_q": 1e-12})
    Q, kv = 3000.0, 30_000
    pt = fairness_point(wl, FairnessParams(policy=policy, quantum=Q, n_instances=K, kv_capacity=kv,
                                           service="seconds"), cost=c)
    assert pt.unit == "s" and pt.params.service == "seconds"
    q_s = c.prefill_a + Q * (c.prefill_b + c.prefill_c * Q / 2)
    assert pt.values["Q_u"] == pytest.approx(q_s)
    p_max = max(_t_pre(c, r.input_len, 0) + c.prefill_e + c.prefill_g * r.input_len
                + c.prefill_w * r.input_len ** 2 / 2 for r in wl)

    def decode_worst(L, out_len):
        m = out_len - 1
        return sum(c.decode_a + c.decode_b + (c.decode_c + c.decode_q * kv) * (L + j) for j in range(1, m + 1))

    d_max = max(decode_worst(r.input_len, r.output_len) for r in wl)
    k = max(concurrency_k(pt.result).values())
    assert pt.k == k >= 1
    X = p_max + k * d_max
    want = {"vtc": 2 * X, "dlpm": 2 * (q_s + X), "d2lpm": 2 * K * (q_s + X)}[policy]
    assert pt.bound == pytest.approx(want, rel=1e-9)
    # the run's service log is in predicted seconds: the service of the run is the cost model's
    # predicted time of every charge, at most the makespan times the instances
    assert 0 < float(np.sum(pt.result.svc_amount)) <= K * float(np.nanmax(pt.result.finish_t)) * (1 + 1e-9)
    assert pt.measured_gap <= pt.bound
    if K == 1:  # one instance: the bound is check_seconds' a-priori (k) verdict
        v = [u for u in pt.verdicts if u.kind == "proved"][0]
        assert "X_s" in v.check and v.bound == pytest.approx(pt.bound)


def test_fairness_seconds_changes_the_run(wl):
    tok = fairness_point(wl, policy="dlpm", quantum=4096.0)
    sec = fairness_point(wl, policy="dlpm", quantum=4096.0, service="seconds")
    assert tok.unit == "service units" and sec.unit == "s"
    assert sec.measured_gap < 60 < tok.measured_gap  # seconds of a one-GPU run vs. thousands of tokens
    assert "D_{max}" in str(sec.bound_expr) and "O_max" in str(tok.bound_expr)


def test_fairness_params_validate():
    with pytest.raises(ValueError, match="n_instances"):
        FairnessParams(policy="d2lpm", n_instances=1)
    with pytest.raises(ValueError, match="policy"):
        FairnessParams(policy="lpm")
    with pytest.raises(ValueError, match="quantum"):
        FairnessParams(quantum=0)
    with pytest.raises(ValueError, match="service"):
        FairnessParams(service="joules")


# ---------------------------------------------------------------- hotspot
def test_hotspot_point_numbers():
    """a = x QPS/|M|, b = (1-x) QPS/|Mbar|, kappa = L/u, t* = (B0+1)(kappa-1)/(a - kappa b),
    t_harm = S/(O beta_d (a - b)) (proofs/lmetric_hotspot.md, lmetric_harm.md)."""
    p = HotspotParams(x=0.8, holder_frac=0.25, qps=40, L=2000, cached_frac=0.5, n_instances=8, B0=4, n_out=128)
    d = hotspot_point(p)
    a, b, kap = 0.8 * 40 / 2, 0.2 * 40 / 6, 2000 / 1000
    assert (d["a"], d["b"], d["kappa"]) == pytest.approx((a, b, kap))
    assert d["t_star"] == pytest.approx(5 * (kap - 1) / (a - kap * b))
    from fairsched.theory.cost import default_cost_coefficients

    c = default_cost_coefficients()
    S = c["prefill_b_s_per_tok"] * 1000 + c["prefill_c_s_per_tok2"] * 1000**2 / 2
    bd = c["decode_b_s_per_seq"] + c["decode_c_s_per_ctx_tok"] * 2000
    assert d["t_harm"] == pytest.approx(S / (128 * bd * (a - b)))
    assert d["regime"] == ("hotspot" if d["t_star"] <= d["t_harm"] else "harmful")


def test_hotspot_regions_benign_iff_x_le_holder_share():
    xs, fs, Z = hotspot_regions(HotspotParams(), n_grid=21)
    X, Fh = np.meshgrid(xs, fs)
    assert Z.shape == (21, 21)
    off = np.abs(X - Fh) > 1e-9
    assert ((Z == 0) == (X <= Fh))[off].all()
    assert set(np.unique(Z)) <= {0, 1, 2}


def test_theory_ratio_curve():
    p = HotspotParams(x=0.6, holder_frac=0.25, qps=30, L=4000, cached_frac=0.5, n_instances=8, B0=4)
    t = np.array([0.0, 1.0, 100.0, 1e6])
    r = theory_ratio_curve(p, t)
    a, b = 0.6 * 30 / 2, 0.4 * 30 / 6
    assert r[0] == pytest.approx(1.0)
    assert r[1] == pytest.approx((5 + a) / (5 + b))
    assert r[-1] == pytest.approx(min(a / b, 2.0))


def test_hotspot_quick_run_lmetric_keeps_class_on_holders():
    p = HotspotParams(x=0.6, holder_frac=0.25, qps=30, L=4000, cached_frac=0.9, n_instances=8, duration_s=4.0)
    run = hotspot_quick_run(p, n_grid=20)
    tab = run.table.set_index("router")
    assert tab.loc["lmetric", "hot_on_holders"] > tab.loc["least-load", "hot_on_holders"]
    assert tab.loc["lmetric", "hit_rate"] > tab.loc["least-load", "hit_rate"]
    assert run.ratio["lmetric"].shape == run.t.shape == (20,)
    assert run.ratio["lmetric"][0] == pytest.approx(1.0)



def test_hotspot_quick_run_default_size_is_a_number_of_arrivals():
    """Default run: ``n_requests`` arrivals over ``n_requests / qps`` s at any load (the fluid
    ratio depends on time only through QPS t), and the lmetric default point keeps its
    verdict: the hot class stays on the holders more than under least-load."""
    from fairsched.explore.hotspot import _workload

    for qps in (15.0, 60.0):
        p = HotspotParams(x=0.6, holder_frac=0.25, qps=qps, L=4000, cached_frac=0.9, n_instances=8)
        assert p.run_s == pytest.approx(120 / qps)
        run = hotspot_quick_run(p)
        assert run.t[-1] == pytest.approx(p.run_s)
        wl = _workload(8, qps, 0.6, p.run_s, int(p.L - p.u), int(p.u), p.n_out)
        assert 80 <= len(wl) <= 160  # Poisson arrivals around 120
        tab = run.table.set_index("router")
        assert tab.loc["lmetric", "hot_on_holders"] > tab.loc["least-load", "hot_on_holders"]
        assert hotspot_quick_run(p) is run  # cached per setting
    a = hotspot_regions(HotspotParams(x=0.2))
    b = hotspot_regions(HotspotParams(x=0.7, holder_frac=0.6))
    assert a is b and not a[2].flags.writeable  # the grid does not depend on the point


# ---------------------------------------------------------------- cost
def test_cost_surfaces_are_the_cost_model():
    cm = CostModel()
    ns, hs, Z = prefill_surface(cm, 1024, 8192, steps=9)
    n, h = ns[3], hs[5]
    assert Z[5, 3] == pytest.approx(cm.prefill_a + cm.prefill_b * n + cm.prefill_c * n * (h + n / 2))
    bs, cs, D = decode_surface(cm, 64, 100_000, steps=7)
    assert D[2, 4] == pytest.approx(cm.decode_a + cm.decode_b * bs[4] + cm.decode_c * cs[2])


@pytest.mark.parametrize("n2,h2", [(1024, 0), (2048, 4096)])
def test_blind_spot_region_matches_theory_threshold(n2, h2):
    """The region computed from the cost model is exactly {n1 < n2, h1 > h*(n1)} with h* from
    fairsched.theory.lmetric.blind_spot_threshold (proofs/lmetric_blind_spot.md)."""
    cm = CostModel()
    ns, hs, _ = prefill_surface(cm, 4096, 65536, steps=40)
    R = blind_spot_region(cm, n2, h2, ns, hs)
    hstar = blind_spot_threshold_curve(cm, n2, h2, ns)
    want = (ns[None, :] < n2) & (hs[:, None] > hstar[None, :])
    close = np.abs(hs[:, None] - hstar[None, :]) < 1e-6 * (1 + np.abs(hstar[None, :]))
    assert R.any()
    assert (R == want)[~close].all()
    # n1 = n2 / 2, h2 = 0: h* = (n2 - n1)(b + c (n1 + n2) / 2) / (c n1) = b / c + 0.75 n2
    if h2 == 0:
        assert blind_spot_threshold_curve(cm, n2, 0, [n2 / 2])[0] == pytest.approx(
            cm.prefill_b / cm.prefill_c + 0.75 * n2)


def test_calibration_points(tmp_path):
    cm = CostModel(name="t")
    p = tmp_path / "cost.json"
    cm.save(p, measurements={"prefill": {"n": [16, 64], "h": [0, 256], "seconds": [0.01, 0.02], "median_s": [0, 0]},
                             "decode": {"batch": [1, 4], "ctx": [64, 64], "context": [64, 256],
                                        "seconds": [0.001, 0.002]}})
    got, pre, dec = calibration_points(p)
    assert got == cm
    assert list(pre.n) == [16, 64] and list(dec.context) == [64, 256]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"coefficients": {}}))
    with pytest.raises(ValueError, match="bad.json"):
        calibration_points(bad)


# ---------------------------------------------------------------- widgets (no front end)
def test_explorers_update_on_control_change(tmp_path):
    from fairsched.explore import cost_explorer, fairness_explorer, hotspot_explorer

    f = fairness_explorer()
    t0 = f.figure.layout.title.text
    f.controls["quantum"].value = 2 ** 15
    assert f.error is None and f.figure.layout.title.text != t0
    assert f"{f.point.bound:,.0f}" in f.figure.layout.title.text
    f.controls["policy"].value = "D²LPM"
    assert f.point.params.n_instances == 2 and not f.controls["quantum_w"].disabled
    f.controls["service"].value = "seconds"
    assert f.error is None and f.point.unit == "s" and " s" in f.figure.layout.title.text
    assert f.controls["w_p"].disabled and "t_pre" in f.math.value
    f.controls["service"].value = "tokens"
    f.controls["kv_capacity"].min = 1000
    f.controls["kv_capacity"].value = 1000  # no request fits: a message, no exception
    assert f.error and "kv_capacity" in f.error and "cannot compute" in f.status.value

    h = hotspot_explorer(simulate=False)
    h.controls["x"].value = 0.1
    assert "benign" in h.figure.layout.title.text
    assert list(h.figure.data[2].x) == [0.1]

    c = cost_explorer()
    before = np.array(c.figure.data[1].z, dtype=float)
    c.controls["n2"].value = 2048
    after = np.array(c.figure.data[1].z, dtype=float)
    assert np.isfinite(after).sum() > np.isfinite(before).sum()
    assert not math.isnan(c.last_update_s)
