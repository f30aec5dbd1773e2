"""LMetric's KV$-hotspot detector, split in three:

- :mod:`.detector`: the pure online two-phase detector (:class:`HotspotDetector`,
  :class:`DetectorConfig`, :func:`violates`); no simulator, no figures.
- :mod:`.runner`: feeding it from a simulation (:class:`DetectingLMetric`,
  :func:`run_detection`, :func:`detect_and_compare`, :class:`DetectionReport`).
- :mod:`.phase`: the empirical phase diagram; :mod:`.figures`: plotly figures;
  :mod:`.validation`: the validation study (verdicts vs simulated harm);
  :mod:`.study_run`: one study member's run (workload, classes, pre-loaded holders), shared by
  the validation and mitigation studies.
"""

from fairsched.analysis.detect.detector import DetectorConfig, HotspotDetector, violates
from fairsched.analysis.detect.figures import (
    fig_confusion,
    fig_detection_timeline,
    fig_phase_diagram,
)
from fairsched.analysis.detect.phase import phase_diagram
from fairsched.analysis.detect.runner import (
    DECISION_COLUMNS,
    DetectingLMetric,
    DetectionReport,
    DetectOutcome,
    detect,
    detect_and_compare,
    run_detection,
    ttft_stats,
)
from fairsched.analysis.detect.window_model import theory_for_window

__all__ = ["DECISION_COLUMNS", "DetectOutcome", "DetectingLMetric", "DetectionReport", "DetectorConfig",
           "HotspotDetector", "detect", "detect_and_compare", "fig_confusion", "fig_detection_timeline", "fig_phase_diagram",
           "phase_diagram", "run_detection", "theory_for_window", "ttft_stats", "violates"]
