"""Interactive exploration in Jupyter: three explorers with live controls.

- :func:`fairness_explorer`: VTC / DLPM / D²LPM, the proved service-gap bound against the
  measured gap of a fast simulation (:mod:`fairsched.explore.fairness`).
- :func:`hotspot_explorer`: LMetric's KV$-hotspot regions, t* and t_harm, and a quick
  LMetric vs. least-load run (:mod:`fairsched.explore.hotspot`).
- :func:`cost_explorer`: prefill / decode cost surfaces, calibration points and the
  P-token blind spot (:mod:`fairsched.explore.cost`).

The computation behind each control is a plain function of those modules (tested without
a browser); :mod:`fairsched.explore.widgets` only wires them to ipywidgets and a plotly
figure (shown in an ipywidgets ``Output``; why not a ``FigureWidget``: that module's
docstring). Importing this package does not import ipywidgets: the explorers do.
"""

from .cost import (
    blind_spot_region,
    blind_spot_threshold_curve,
    calibration_points,
    decode_surface,
    prefill_surface,
)
from .fairness import (
    FairnessParams,
    FairnessPoint,
    default_fairness_workload,
    fairness_point,
    proved_bound_expr,
)
from .hotspot import (
    HotspotParams,
    HotspotRun,
    hotspot_point,
    hotspot_quick_run,
    hotspot_regions,
    theory_ratio_curve,
)


def fairness_explorer(workload=None):
    """See :func:`fairsched.explore.widgets.fairness_explorer`."""
    from .widgets import fairness_explorer as f

    return f(workload)


def hotspot_explorer(simulate: bool = True):
    """See :func:`fairsched.explore.widgets.hotspot_explorer`."""
    from .widgets import hotspot_explorer as f

    return f(simulate)


def cost_explorer(cost_model=None, calibration=None):
    """See :func:`fairsched.explore.widgets.cost_explorer`."""
    from .widgets import cost_explorer as f

    return f(cost_model, calibration)


__all__ = ["FairnessParams", "FairnessPoint", "HotspotParams", "HotspotRun", "blind_spot_region",
           "blind_spot_threshold_curve", "calibration_points", "cost_explorer", "decode_surface",
           "default_fairness_workload", "fairness_explorer", "fairness_point", "hotspot_explorer", "hotspot_point",
           "hotspot_quick_run", "hotspot_regions", "prefill_surface", "proved_bound_expr", "theory_ratio_curve"]
