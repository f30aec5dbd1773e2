"""The label-noise ceiling of per-trace agreement (proofs/lmetric_harm_validation.md §13.1) on a
table small enough to count by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from fairsched.analysis.detect.label_noise import trace_ceiling
from fairsched.analysis.detect.validation import HOTSPOT_RATIO, Validation, spec_outcome


def _table() -> pd.DataFrame:
    # spec 0: three traces labelled hotspot, hotspot, benign (ratios 1.6, 1.3, 1.2; seed std 0.208);
    # spec 1: harmful, hotspot (excess +10 ms, -10 ms; seed std 14.1 ms), outcome indeterminate.
    return pd.DataFrame([
        {"id": 0, "outcome": "hotspot", "seed_verdict": ["benign", "benign", "hotspot"],
         "seed_excess": [-1.0, -1.0, -1.0], "seed_ratio": [1.6, 1.3, 1.2]},
        {"id": 1, "outcome": "indeterminate", "seed_verdict": ["harmful", "harmful"],
         "seed_excess": [0.01, -0.01], "seed_ratio": [2.0, 2.0]},
    ])


def test_ceiling_counts_the_majority_outcome_and_the_misses_within_the_spread():
    c = Validation(_table()).ceiling()
    assert [spec_outcome([e], [r]) for e, r in zip([-1.0] * 3, [1.6, 1.3, 1.2], strict=True)] == ["hotspot", "hotspot", "benign"]
    assert (c["traces"], c["model_agree"], c["oracle_agree"]) == (5, 1, 3)
    assert (c["det_traces"], c["det_model_agree"], c["det_oracle_agree"]) == (3, 0, 2)
    assert (c["misses"], c["misses_within_spread"], c["det_misses_within_spread"]) == (4, 3, 2)
    m = {(r["id"], r["seed_j"]): r for r in c["miss_rows"]}
    assert set(m) == {(0, 0), (0, 1), (0, 2), (1, 1)}
    assert not m[0, 0]["within_spread"] and m[0, 0]["line"] == "hotspot"  # |1.6 - 1.25| = 0.35 > 0.208
    assert m[0, 1]["within_spread"] and m[0, 2]["within_spread"]  # 0.05 from the line
    assert m[1, 1]["line"] == "harm" and m[1, 1]["within_spread"]  # 10 ms < 14.1 ms
    t = Validation(_table())._trace_summary()  # the study's summary carries both next to the per-trace agreement
    assert (t["trace_n_agree"], t["trace_oracle_agree"], t["trace_misses_within_spread"]) == (1, 3, 3)


def test_ceiling_rejects_a_row_with_unequal_trace_lists():
    t = _table()
    t.at[1, "seed_ratio"] = [2.0]
    with pytest.raises(ValueError, match="spec 1"):
        trace_ceiling(t, label=lambda e, r: spec_outcome([e], [r]), ratio_line=HOTSPOT_RATIO)
