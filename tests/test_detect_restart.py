"""Round-8 restart of the transient (``proofs/lmetric_harm_validation.md`` §3.6): a window whose
model has no state for the others (every instance saturated: the infinite-server transient of
§3.5 does not hold through it) ends the class's transient; the next window starts a new one from
the load the detector measures at its start, and the run's pooled ratio weighs the saturated
window by the load measured over it.

- the condition and the pooled weight on hand-made rows;
- a simulated burst (family id 165) whose verdict agrees with its measured outcome only with the
  restart, and rescoring its saved rows gives the live verdict (also from rows saved without it).
"""

from __future__ import annotations

import pytest

from fairsched.analysis.detect.detector import no_state
from fairsched.theory.lmetric_run import run_regime


def test_no_state_is_every_instance_saturated_with_some_non_holder():
    assert no_state({"steady_B_Mbar": None, "steady_holders": 2}, 8)  # others saturated, non-holders exist
    assert not no_state({"steady_B_Mbar": 3.0, "steady_holders": 2}, 8)  # a state
    assert not no_state({"steady_B_Mbar": None, "steady_holders": 8}, 8)  # every instance holds: no others
    assert not no_state({}, 8) and not no_state(None, 8)  # not assessed


def test_a_window_without_state_is_pooled_by_its_measured_load():
    base = dict(ttft_lmetric=0.1, ttft_leastload=0.1, replication_per_holder_s=0.0, holders=2, holders_initial=2,
                n_hot=10.0, load_form="transient")
    sat = ({**base, "ratio": 2.0, "B_Mbar": None, "load_measured": 3.0}, 10)  # (B_Mbar + 1) = 4, B_M + 1 = 8
    ok = ({**base, "ratio": 1.1, "B_Mbar": 9.0}, 30)  # 10 and 11
    r = run_regime([sat, ok], 8, 40)
    assert r["ratio"] == pytest.approx((10 * 8 + 30 * 11) / (10 * 4 + 30 * 10))  # 1.205: benign
    assert r["regime"] == "benign"
    no_load = ({**sat[0], "load_measured": None}, 10)
    assert run_regime([no_load, ok], 8, 40)["ratio"] == 2.0  # nothing to weigh by: the largest window's (§3.3)


def test_restart_fixes_a_simulated_burst_and_rescoring_gives_the_live_verdict(monkeypatch):
    """Family id 165 (N = 4, 2 holders, bursty: a cold-only warm phase at 2.6x capacity, then x = 0.9):
    measured benign (R 1.06 on its own seed). The warm window saturates every instance in the model;
    without the restart the burst window's transient starts empty at the run's onset (others 10
    requests against 25 measured) and calls it a hotspot (R 2.8)."""
    import fairsched.analysis.detect.validation as V

    row = V.evaluate(V.family(200, 0)[165], seeds=1)
    assert row["outcome"] == "benign" and row["load_ratio"] < 1.25
    ws = sorted(row["windows"], key=lambda w: w["window"])
    assert ws[1]["t_onset"] > ws[0]["t_onset"] and ws[1]["load_onset"] == ws[1]["load0"]  # restarted live
    assert row["verdict"] == V.rescore_verdict(row) == "benign"  # live = rescored from the saved rows
    one = [{**w, "t_onset": ws[0]["t_onset"], "load_onset": ws[0]["load_onset"],  # one run from its onset, as
            "t_since_onset": w["t_onset"] + w["t_since_onset"] - ws[0]["t_onset"]} for w in ws]  # saved before
    assert V.rescore_verdict({**row, "windows": one}) == "benign"  # the rescoring restarts it the same way
    monkeypatch.setattr(V, "no_state", lambda theory, n: False)
    assert V.rescore_verdict({**row, "windows": one}) == "hotspot"  # fails without the restart
