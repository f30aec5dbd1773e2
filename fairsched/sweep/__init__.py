"""``fairsched sweep``: a grid of simulations (routers x policies x load x instances x
quanta x seeds x traces) run locally in parallel or on a Ray cluster, into one table.

- :mod:`.spec`: :class:`SweepSpec` (from TOML / YAML or keyword lists) and its :class:`Point` s.
- :mod:`.grid`: :class:`GridRunner` / :func:`map_grid`, the one executor (serial, local
  process pool, Ray) every grid of the kit runs on (sweep, reproduce, phase diagrams).
- :mod:`.run`: :func:`run_points`, a sweep's points on that executor, resumable by point key.
- :mod:`.table`: the Parquet / CSV table and the plotly trade-off page.

Example::

    from fairsched.sweep import SweepSpec, run_sweep
    spec = SweepSpec(routers=["lmetric", "vllm-v1"], instances=[4], speed=[1.0, 2.0])
    df = run_sweep(spec, "sweep-out", workers=2)
"""

from __future__ import annotations

from pathlib import Path

from fairsched.sweep.grid import GridRunner, map_grid
from fairsched.sweep.run import METRICS, TABLE_COLUMNS, evaluate_point, point_key, run_points
from fairsched.sweep.spec import GRID_KEYS, Point, SweepSpec, load_spec
from fairsched.sweep.table import fig_tradeoffs, to_frame, write_outputs

__all__ = ["GRID_KEYS", "METRICS", "TABLE_COLUMNS", "GridRunner", "Point", "SweepSpec", "evaluate_point", "fig_tradeoffs",
           "load_spec", "map_grid", "point_key", "run_points", "run_sweep", "to_frame", "write_outputs"]


def run_sweep(spec: SweepSpec, out_dir: str | Path, *, workers: int = 1, use_ray: bool = False,
              ray_address: str | None = None, progress: bool = True):
    """Run ``spec``'s grid (resuming from ``out_dir``), write the outputs, return the table
    as a DataFrame (:func:`to_frame`).

    Raises:
        ValueError: a bad spec. ImportError: ``use_ray`` without Ray. OSError: unwritable ``out_dir``.
    """
    spec.validate()
    records, _ = run_points(spec.points(), out_dir, workers=workers, use_ray=use_ray, ray_address=ray_address,
                            progress=progress)
    write_outputs(records, out_dir)
    return to_frame(records)
