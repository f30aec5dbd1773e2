"""D2LPM for clients backlogged somewhere: the hole grows linearly (periodic certificate), the
full-charge variant does not (``proofs/d2lpm_bound.md``)."""

from __future__ import annotations

import pytest

from fairsched.policies import make_router
from fairsched.theory import fairness as F
from fairsched.theory.d2lpm import d2lpm_hole_gap, periodic_certificate


def test_hole_gap_grows_with_the_horizon_beyond_the_candidate():
    g1, g2 = d2lpm_hole_gap(1000), d2lpm_hole_gap(2000)
    assert g2 > 1.5 * g1
    assert g2 > F.evaluate(F.d2lpm_candidate_global_bound(), K=2, Q_u=40, Q_w=400, X=40)  # 1,920


def test_hole_periodic_certificate_proves_linear_growth():
    """The state repeats with both clients backlogged somewhere throughout and the service
    difference shifted by delta != 0; the same certificate at a longer horizon (the transient
    does not depend on H), so the gap grows by |delta| per period while the queues last."""
    c = periodic_certificate(2000)
    assert c is not None and c["backlogged"] and c["sign_stable"]
    assert abs(c["delta"]) > 0 and c["period"] <= 1000
    assert all(d >= 0 for d in c["g_drop"])
    c2 = periodic_certificate(2600)
    assert (c2["t1"], c2["period"], c2["delta"]) == (c["t1"], c["period"], c["delta"])


def test_full_charge_variant_has_no_drift_on_the_construction():
    c = periodic_certificate(2000, "full")
    assert c is not None and c["backlogged"] and c["delta"] == 0
    assert max(d2lpm_hole_gap(2000, "full"), d2lpm_hole_gap(3000, "full")) < d2lpm_hole_gap(2000) / 4


def test_router_charge_option():
    with pytest.raises(ValueError, match="charge"):
        make_router("d2lpm", quantum_w=100.0, charge="cached")
    assert make_router("d2lpm", quantum_w=100.0, charge="full").charge == "full"
