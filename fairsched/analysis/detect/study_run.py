"""The study run of one member of the detector's validation family, built in one place.

A spec (a dict of :func:`fairsched.analysis.detect.validation.family`) becomes a
:class:`StudyRun` (:func:`study_run`): its workload (:func:`workload_of`: the rate from
:func:`capacity_qps` times the spec's load, the horizon, steady or bursty arrivals), its
prefix classes, the hot class's mask, the instances pre-loaded with the hot prefix
(:func:`holder_ids`) and the study's detector settings (:func:`study_config`). The
validation study (``validation.evaluate``), the mitigation study
(``mitigation.evaluate_mitigation``) and the after-event split (``mitigation.after_event_split``)
all simulate this same run (``proofs/lmetric_harm_validation.md`` §1 and §5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fairsched.analysis.detect.detector import DetectorConfig
from fairsched.analysis.detect.runner import run_detection
from fairsched.analysis.prefix_classes import PrefixClasses, prefix_classes

__all__ = ["COLD", "OUTPUT", "SUFFIX", "StudyRun", "capacity_qps", "holder_ids", "study_config", "study_run",
           "workload_of"]

SUFFIX = (16, 64)  # the hot class's private suffix [tokens], uniform range
OUTPUT = (32, 96)  # output length [tokens], uniform range (phase specs; harm specs carry their own)
COLD = (1000, 3000)  # other clients' prompt length [tokens], uniform range


def _work_s(cost, new: float, cached: float, out: float) -> float:
    """Seconds of instance time one request needs: its prefill plus its share of ``out``
    decode steps (``d_b + d_c * context`` each; the per-step ``d_a`` is shared by the batch).
    ``proofs/lmetric_harm_validation.md`` (iteration model)."""
    return cost.prefill_time(int(new), int(cached)) + out * (cost.decode_b + cost.decode_c * (cached + new + out / 2))


def capacity_qps(n: int, x: float, doc: int, cost, output=OUTPUT) -> float:
    """Arrival rate [req/s] at which N instances are fully busy (utilisation 1) when every
    instance caches the document: ``N / (x w_hit + (1 - x) w_cold)`` with mean lengths
    (``output``: the output-length range [tokens])."""
    u, o, lc = sum(SUFFIX) / 2, sum(output) / 2, sum(COLD) / 2
    w = x * _work_s(cost, u, doc, o) + (1 - x) * _work_s(cost, lc, 0, o)
    return n / w


def workload_of(spec: dict, cost=None):
    """The workload of one spec and its horizon [s]: ``spec["horizon_s"]`` or ~15 requests
    per instance, 6-20 s. Returns ``(workload, qps [req/s], horizon [s])``."""
    from fairsched.sim import CostModel
    from fairsched.workload.hotspot import hotspot_workload

    cost = cost or CostModel()
    N, x = spec["n"], spec["x"]
    output = tuple(spec.get("output") or OUTPUT)
    qps = spec["load"] * capacity_qps(N, x, spec["doc_tokens"], cost, output)
    H = float(spec.get("horizon_s") or min(20.0, max(6.0, 15 * N / qps)))
    kw = dict(doc_tokens=spec["doc_tokens"], suffix_tokens=SUFFIX, output_tokens=output, cold_input_tokens=COLD,
              seed=spec["seed"], n_cold_clients=max(16, N))
    if spec["mode"] == "steady":
        wl = hotspot_workload(N, qps, x, x_warm=x, warm_s=0.0, burst_s=H, tail_s=0.0, **kw)
    else:
        wl = hotspot_workload(N, qps, x, x_warm=min(x, 0.5 / N), warm_s=H / 4, burst_s=H / 2, tail_s=H / 4, **kw)
    return wl, qps, H


def holder_ids(spec: dict) -> list[int]:
    """Instances pre-loaded with the hot prefix: ``spec["holder_ids"]`` if given, else the
    lowest ``holders`` indices (``placement`` ``"low"``, the default) or the highest (``"high"``)."""
    if spec.get("holder_ids") is not None:
        return [int(i) for i in spec["holder_ids"]]
    n, m = spec["n"], spec["holders"]
    return list(range(n - m, n)) if spec.get("placement") == "high" else list(range(m))


def study_config(H: float, **kw) -> DetectorConfig:
    """The study's detector: windows of a quarter of the horizon ``H`` [s], top 3 classes of >= 5 arrivals (``kw``: more fields)."""
    return DetectorConfig(window_s=H / 4, top_k=3, min_class_requests=5, **kw)


@dataclass(frozen=True)
class StudyRun:
    """One spec's run, ready to simulate.

    Attributes:
        spec: the family member (``n``: instances).
        workload: its :class:`~fairsched.workload.request.Workload`.
        qps: its arrival rate [req/s]; horizon_s: its horizon H [s].
        classes: its prefix classes; hot: boolean per request id, True for the ``"hot"`` class.
        preload: ``{"hot": holder ids}``, or None when the trace has no hot class (a short trace may lack it).
        cost: the cost model; instance: the instance config (None: the default).
    """

    spec: dict
    workload: object
    qps: float
    horizon_s: float
    classes: PrefixClasses
    hot: np.ndarray
    preload: dict[str, list[int]] | None
    cost: object
    instance: object = None

    @property
    def n(self) -> int:
        """Instances N."""
        return int(self.spec["n"])

    def config(self, **kw) -> DetectorConfig:
        """:func:`study_config` of this run's horizon (``kw``: more fields, e.g. ``mitigate=True``)."""
        return study_config(self.horizon_s, **kw)

    def detect(self, warmup: bool = True, **kw):
        """LMetric with the detector (``kw``: :class:`DetectorConfig` fields besides the study's;
        ``warmup``: as in :func:`~fairsched.analysis.detect.runner.run_detection`), on the
        pre-loaded holders. Returns ``(DetectionReport, SimResult)``."""
        return run_detection(self.workload, self.n, config=self.config(**kw), cost=self.cost, instance=self.instance,
                             classes=self.classes, preload=self.preload, warmup=warmup)

    def simulate(self, router: str):
        """The same workload under a plain ``router`` (FCFS, no holders pre-loaded: a plain
        router's cache warms by itself). Returns the ``SimResult``."""
        from fairsched.sim import simulate

        return simulate(self.workload, "fcfs", router, n_instances=self.n, instance=self.instance, cost=self.cost)


def study_run(spec: dict, cost=None, instance=None) -> StudyRun:
    """The :class:`StudyRun` of ``spec`` (``cost``: the cost model, None = the default A100 one;
    ``instance``: the instance config)."""
    from fairsched.sim import CostModel

    cost = cost or CostModel()
    wl, qps, H = workload_of(spec, cost)
    pc = prefix_classes(wl)
    hot = np.array([c == "hot" for c in pc.class_of], dtype=bool)
    pre = {"hot": holder_ids(spec)} if "hot" in pc.classes else None
    return StudyRun(spec, wl, qps, H, pc, hot, pre, cost, instance)
