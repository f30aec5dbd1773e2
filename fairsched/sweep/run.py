"""Running a sweep: one simulation per :class:`~fairsched.sweep.spec.Point`, serially, on a
local process pool, or on a Ray cluster; each finished point is saved at once (one JSON
file per point under ``OUT/.points/``), so an interrupted sweep resumes where it stopped.

A point's key hashes its configuration, the content of its trace (and cost-model file)
and the package version: a point already computed with the same inputs is skipped. A
point that raises records ``status = "error"`` and the message, and the sweep goes on.
Rows are ordered by grid position, and wall-clock times go to a separate file, so the
same grid gives the same table, byte for byte, whichever executor ran it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fairsched.sweep.spec import POINT_FIELDS, Point

__all__ = ["METRICS", "evaluate_point", "file_hash", "point_key", "run_points"]

METRICS = ("n_requests", "n_finished", "n_clients", "makespan_s", "ttft_mean_s", "ttft_p50_s", "ttft_p90_s",
           "ttft_p99_s", "tpot_mean_s", "tpot_p50_s", "tpot_p90_s", "tpot_p99_s", "e2e_mean_s", "e2e_p50_s",
           "e2e_p90_s", "e2e_p99_s", "throughput_tok_s", "output_tok_s", "computed_tok_s", "cache_hit_rate",
           "total_service", "max_service_gap", "max_cost_U", "gap_over_U", "jain_index", "jain_n_clients",
           "quantum_used", "quantum_w_used")
"""Summary metrics, one column each (:func:`fairsched.analysis.summarize`; units in the names:
``_s`` seconds, ``_tok_s`` tokens/s, service in service units)."""


@functools.lru_cache(maxsize=64)
def file_hash(path: str) -> str:
    """SHA-256 of a file's content (hex), cached per process.

    Raises:
        OSError: the file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def point_key(point: Point) -> str:
    """16 hex digits of SHA-256 over the point's configuration, the content hash of its trace
    and cost-model file, and ``fairsched.__version__``.

    Raises:
        OSError: the trace or cost-model file cannot be read.
    """
    from fairsched import __version__

    parts = [point.config_json(), __version__,
             file_hash(point.trace) if point.trace else "builtin",
             file_hash(point.cost_model) if point.cost_model else "-"]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _workload(trace: str | None, fmt: str | None, limit: int | None, seed: int):
    from fairsched.workload import default_workload, load_trace

    if trace is None:
        w = default_workload(seed)
        return w.head(limit) if limit is not None else w
    return load_trace(trace, fmt, **({"limit": limit} if limit is not None else {}))


def evaluate_point(point: Point) -> dict:
    """Simulate one point and return its summary metrics (:data:`METRICS`).

    Raises:
        ValueError, OSError: bad trace, cost model or parameters (the sweep records them).
    """
    from fairsched.analysis import summarize
    from fairsched.policies import ServiceWeights, default_quantum, make_policy_factory, make_router
    from fairsched.sim import CostModel, simulate
    from fairsched.sim.profiles import default_profile, hardware_profile
    from fairsched.workload import sniff_format

    w = _workload(point.trace, point.format, point.limit, point.seed).replayed(point.speed)
    if not len(w):
        raise ValueError("the workload has no requests")
    fmt = point.format or (sniff_format(point.trace) if point.trace else None)
    over = {k: v for k, v in (("max_batch_size", point.max_batch_size), ("token_budget", point.token_budget),
                              ("kv_capacity_tokens", point.kv_capacity)) if v is not None}
    cost, inst = hardware_profile(point.profile or default_profile(fmt), **over)
    if point.cost_model:
        cost = CostModel.load(point.cost_model)
    weights = ServiceWeights()
    q = point.quantum if point.quantum is not None else default_quantum(w, weights)
    qw = point.quantum_w if point.quantum_w is not None else default_quantum(w, weights)
    pf = make_policy_factory(point.policy, weights, **({"quantum": q} if point.policy in ("dlpm", "dlpm-global") else {}))
    router = None
    if point.router != "none":
        params = {"quantum_w": qw} if point.router == "d2lpm" else {}
        if point.router == "linear" and point.lam is not None:
            params["lam"] = point.lam
        router = make_router(point.router, weights, **params)
    res = simulate(w, pf, router=router, n_instances=point.instances, instance=inst, cost=cost, weights=weights)
    s = summarize(res, label=point.label, weights=weights)
    s["quantum_used"] = q if point.policy in ("dlpm", "dlpm-global") else None
    s["quantum_w_used"] = qw if point.router == "d2lpm" else None
    return {k: s.get(k) for k in METRICS}


def _clean(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _run_one(point: Point, key: str) -> dict:
    """The stored record of one point: config, key, status, error, metrics; wall time apart."""
    t0 = time.perf_counter()
    try:
        metrics, status, error = evaluate_point(point), "ok", ""
    except Exception as e:  # noqa: BLE001 - a failing point is recorded, the sweep goes on
        metrics, status, error = dict.fromkeys(METRICS), "error", f"{type(e).__name__}: {e}"
    return {"key": key, **point.to_dict(), "label": point.label, "status": status, "error": error,
            **{k: _clean(v) for k, v in metrics.items()}, "wall_s": round(time.perf_counter() - t0, 3)}


def _save(points_dir: Path, rec: dict) -> None:
    from fairsched.analysis.report import atomic_write_text

    atomic_write_text(points_dir / f"{rec['key']}.json", json.dumps(rec, sort_keys=True, allow_nan=False))


def load_done(points_dir: Path) -> dict[str, dict]:
    """Records already computed (status ``ok``) under ``points_dir``, by key."""
    done = {}
    for f in sorted(points_dir.glob("*.json")) if points_dir.is_dir() else []:
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a damaged record is recomputed
        if rec.get("status") == "ok" and rec.get("key") == f.stem:
            done[f.stem] = rec
    return done


def _run_one_pair(pk: tuple[Point, str]) -> dict:
    return _run_one(*pk)


def _error_record(point: Point, key: str, e: BaseException) -> dict:
    return {"key": key, **point.to_dict(), "label": point.label, "status": "error",
            "error": f"{type(e).__name__}: {e}", **dict.fromkeys(METRICS), "wall_s": None}


def run_points(points: Sequence[Point], out_dir: str | Path, *, workers: int = 1, ray_address: str | None = None,
               use_ray: bool = False, progress: bool = True,
               on_record: Callable[[dict], None] | None = None) -> tuple[list[dict], dict]:
    """Compute every point not yet stored under ``out_dir/points`` and return all records
    in grid order, with counts ``{"total", "skipped", "run", "errors"}``.

    Args:
        points: the grid (:meth:`SweepSpec.points`).
        out_dir: sweep directory; records go to ``out_dir/.points/<key>.json`` (hidden: the
            resume state, not a result).
        workers: local processes (1: in this process); with Ray, CPUs of a local cluster.
        use_ray: run on Ray (``ray_address`` of a running cluster, or a local one).
        progress: a tqdm progress bar with ETA on stderr.
        on_record: called with each new record as it finishes.

    Raises:
        ImportError: ``use_ray`` without Ray installed (``pip install -e ".[cluster]"``).
        OSError: ``out_dir`` cannot be written.
    """
    from tqdm.auto import tqdm

    points_dir = Path(out_dir) / ".points"
    points_dir.mkdir(parents=True, exist_ok=True)
    keys = [point_key(p) for p in points]
    done = load_done(points_dir)
    todo = [(p, k) for p, k in zip(points, keys, strict=True) if k not in done]
    todo = list({k: (p, k) for p, k in todo}.values())
    records = dict(done)
    bar = tqdm(total=len(todo), desc="sweep points", unit="pt", disable=not progress or not todo,
               dynamic_ncols=True)

    def finish(rec):
        _save(points_dir, rec)
        records[rec["key"]] = rec
        bar.update(1)
        if rec["status"] != "ok":
            bar.write(f"point {rec['label']} ({rec['key']}) failed: {rec['error']}")
        if on_record:
            on_record(rec)

    from fairsched.sweep.grid import GridRunner

    try:
        with GridRunner(max(1, workers), use_ray=use_ray, ray_address=ray_address, progress=False) as g:
            for i, rec in g.iter(_run_one_pair, todo):
                finish(_error_record(*todo[i], rec) if isinstance(rec, Exception) else rec)
    finally:
        bar.close()
    ordered = [records[k] for k in dict.fromkeys(keys)]
    n_err = sum(r["status"] != "ok" for r in ordered)
    return ordered, {"total": len(ordered), "skipped": len(ordered) - len(todo), "run": len(todo), "errors": n_err}


TABLE_COLUMNS = ("key", *POINT_FIELDS, "label", "status", "error", *METRICS)
"""Columns of the sweep table, in order (wall-clock times are kept apart)."""
