"""The backlog test (``DetectorConfig.mitigate_backlog``, ``proofs/lmetric_harm_validation.md`` §5.6).

- it acts only where its own prediction says the warm-ups pay for themselves (``G > C``), never
  with no warm-up to issue;
- on family spec 54 (the harm corner: one holder of 4, the harm-only rule acts at 23.5 s and
  recovers 0.20 of the gap) it starts earlier, on a ``hotspot`` row, and recovers >= 80 % of the
  gap without raising the class's p99 by more than 10 % or the overall mean;
- on the false alarms 95 and 154 (6-s runs; mitigating a confirmed ``hotspot`` raised the
  overall mean on 95 and the class's p99 on both) the hotspot rule acts and the backlog rule
  does not.
"""

from __future__ import annotations

import pytest
from test_warmup import assert_rule_recovers

from fairsched.analysis.detect.backlog import backlog_test
from fairsched.analysis.detect.study_run import study_run
from fairsched.analysis.detect.validation import family
from fairsched.sim import CostModel


def _first_mitigate(rep):
    return next((e for e in rep.events if e["event"] == "mitigate"), None)


def _row(**kw):
    return {"x": 0.7, "qps": 10.0, "t_since_onset": 4.0, "span_s": 8.0, "holders_eval": 1.0, "n_class": 50,
            "violates": True, **kw}


def test_backlog_test_acts_only_when_its_prediction_pays():
    """``backlog_pays`` is exactly ``G > C``; with the target already held (no warm-up to issue) or
    no span, nothing is predicted and it never pays; the benefit is the rent saved by the warm-ups
    ready within the horizon, so a model whose rent does not fall with more holders gives G = 0."""
    cost, cls = CostModel(), {"shared_tokens": 8192}

    def falling(r):  # rent 0.1 s per class request on one holder, none with more
        h = float(r["holders_eval"])
        return {"holders": int(h), "holders_initial": h, "n_hot": 50.0, "replication_per_holder_s": 0.0,
                "ttft_lmetric": 0.2 if h < 2 else 0.1, "ttft_leastload": 0.1}

    th = {"holders": 1, "target_holders": 4}
    b = backlog_test(_row(), cls, 4, cost, th, falling)
    assert b["backlog_pays"] == (b["backlog_benefit"] > b["backlog_cost"]) and b["backlog_benefit"] > 0
    f_L = cost.prefill_time(8192, 0)
    assert b["backlog_warmups"] == min(3, -(-8.0 // f_L))  # those started within the horizon (the age, 8 s)
    assert b["backlog_cost"] == pytest.approx(b["backlog_warmups"] * 0.3 * 10.0 / 3 * f_L ** 2)
    flat = backlog_test(_row(), cls, 4, cost, th, lambda r: {**falling(r), "ttft_lmetric": 0.2})
    assert flat["backlog_benefit"] == 0.0 and not flat["backlog_pays"]
    for t, row in (({"holders": 2, "target_holders": 2}, _row()), (th, _row(span_s=None))):
        assert backlog_test(row, cls, 4, cost, t, falling) == {"backlog_benefit": 0.0, "backlog_cost": 0.0,
                                                              "backlog_pays": False, "backlog_warmups": 0}


def test_backlog_rule_recovers_spec_54_earlier_than_harm_only():
    s = study_run(family(200, 0)[54])
    lm, ll = s.detect()[1], s.simulate("least-load")
    runs = {bl: s.detect(mitigate=True, mitigate_backlog=bl) for bl in (True, False)}
    first = {bl: _first_mitigate(rep) for bl, (rep, _) in runs.items()}
    assert first[True]["t"] < first[False]["t"]
    flag = [e for e in runs[True][0].events if e["event"] == "flag" and e["t"] <= first[True]["t"]]
    assert flag[-1]["regime"] == "hotspot"  # the model called it hotspot; the backlog test let it act
    assert_rule_recovers(s.hot, lm, ll, runs)


@pytest.mark.parametrize("spec_id", [95, 154])
def test_backlog_rule_leaves_false_alarms_alone(spec_id):
    s = study_run(family(200, 0)[spec_id])
    assert _first_mitigate(s.detect(mitigate=True, mitigate_hotspot=True)[0]) is not None
    assert _first_mitigate(s.detect(mitigate=True, mitigate_backlog=True)[0]) is None
