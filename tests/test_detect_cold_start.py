"""The least-load run a verdict is compared with starts cold (proofs/lmetric_harm_validation.md §13.2).

The study simulates least-load with no instance holding the hot prefix (``StudyRun.simulate``),
so over the run it pays a document prefill on every one of the N instances, not only on the
N - |M| that LMetric's pre-loaded holders leave. The run verdict charges it all N
(``run_regime(leastload_start="cold")``); rounds 5-8 charged N - |M|.
"""

from __future__ import annotations

import numpy as np

from fairsched.analysis.detect.runner import ttft_stats
from fairsched.analysis.detect.study_run import study_run
from fairsched.analysis.detect.validation import family, harm_excess, run_verdict


def test_a_cold_least_load_pays_every_instance_and_the_verdict_follows_the_trace():
    # family(200, 0) id 23, seed offset 2: N 4, one holder, x 0.9, 81 % load, 5.5k-token prefix, 6 s.
    spec = family(200, 0)[23]
    s = study_run({**spec, "seed": spec["seed"] + 2})
    rep, lm = s.detect()
    ll = s.simulate("least-load")
    hot_ll = s.hot & (ll.cached_tokens < spec["doc_tokens"] - 16)
    assert len(np.unique(ll.instance[hot_ll])) == s.n  # every instance prefilled the document once under least-load
    excess = harm_excess(ttft_stats(lm, s.hot)["ttft_mean_s"], ttft_stats(ll, s.hot)["ttft_mean_s"])
    assert excess < 0  # measured: not harmful (hotspot)
    w = rep.windows
    rows = w[w.klass == "hot"].sort_values("window").to_dict("records")
    assert run_verdict(rows, s.n)["regime"] == "hotspot"  # the cold least-load: agrees with the trace
    assert run_verdict(rows, s.n, leastload_start="holders")["regime"] == "harmful"  # N - |M| replications: a false alarm
