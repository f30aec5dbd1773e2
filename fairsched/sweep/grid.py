"""The one grid executor of fairsched: map a function over a list of points, serially, on a
local process pool or on a Ray cluster, with a progress bar (tqdm, ETA), results in the
order of the points. ``fairsched sweep`` (:func:`fairsched.sweep.run_points`),
``fairsched reproduce`` and any other grid (a phase diagram) run through it.

API (small on purpose)::

    from fairsched.sweep import GridRunner, map_grid

    results = map_grid(fn, points, workers=2)            # one call, one pool
    with GridRunner(workers=2, use_ray=False) as g:     # several grids, one pool / Ray
        a = g.map(fn, points_a, desc="phase A")
        b = g.map(fn, points_b, desc="phase B")

- ``fn``: a function of one argument, importable by name (a module-level function, not a
  lambda or closure: it is pickled to the workers); it returns a picklable value.
- ``points``: any picklable objects (dataclasses, tuples, dicts); each is sent to one task.
- ``workers``: 1 runs in this process (no pickling, easiest to debug); N > 1 a pool of N
  processes; with ``use_ray`` the CPUs of a local Ray cluster (or ``ray_address``).
- Errors: by default the first exception of a point is raised again in the caller (the
  rest of that grid is cancelled) with the failing point's index in its notes;
  ``errors="return"`` puts the exception object in that point's place instead.
- Results do not depend on the executor: each point runs in isolation, so the same
  deterministic ``fn`` gives the same list serially, on a pool, and on Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["GridRunner", "map_grid"]


class GridRunner:
    """An executor kept open across several grids (one process pool or one Ray session).

    Args:
        workers: processes (>= 1; 1 = in this process); with Ray and no address, the
            local cluster's CPUs.
        use_ray: run tasks on Ray (``pip install -e ".[cluster]"``).
        ray_address: a running Ray cluster's address (implies ``use_ray``).
        progress: show a tqdm bar with ETA on stderr for each :meth:`map`.

    Raises:
        ValueError: ``workers`` < 1.
    """

    def __init__(self, workers: int = 1, *, use_ray: bool = False, ray_address: str | None = None,
                 progress: bool = True):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = workers
        self.use_ray = use_ray or ray_address is not None
        self.ray_address = ray_address
        self.progress = progress
        self._pool = None
        self._ray_started = False

    def __enter__(self) -> GridRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Shut the pool down (and Ray, if this runner started it)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._ray_started:
            import ray

            ray.shutdown()
            self._ray_started = False

    def iter(self, fn: Callable[[Any], Any], points: Sequence) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, result)`` as points finish (any order); a point that raised
        yields ``(index, exception)``. Closing the iterator early cancels what is left.

        Raises:
            ImportError: Ray requested but not installed.
        """
        points = list(points)
        if not points:
            return
        if self.use_ray:
            yield from self._iter_ray(fn, points)
        elif self.workers == 1:
            for i, p in enumerate(points):
                try:
                    r = fn(p)
                except Exception as e:  # noqa: BLE001 - handed to the caller
                    r = e
                yield i, r
        else:
            yield from self._iter_pool(fn, points)

    def _iter_pool(self, fn, points):
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers)
        futs = {self._pool.submit(fn, p): i for i, p in enumerate(points)}
        try:
            for f in as_completed(futs):
                try:
                    r = f.result()
                except Exception as e:  # noqa: BLE001 - incl. a worker killed (BrokenProcessPool)
                    r = e
                yield futs[f], r
        finally:
            for f in futs:
                f.cancel()

    def _iter_ray(self, fn, points):
        import ray

        if not ray.is_initialized():
            if self.ray_address:
                ray.init(address=self.ray_address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)
            self._ray_started = True
        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        pending = {remote.remote(p): i for i, p in enumerate(points)}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    i = pending.pop(ref)
                    try:
                        r = ray.get(ref)
                    except Exception as e:  # noqa: BLE001 - a task error or a lost worker
                        r = getattr(e, "cause", None) if isinstance(getattr(e, "cause", None), Exception) else e
                    yield i, r
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def map(self, fn: Callable[[Any], Any], points: Sequence, *, desc: str = "grid", errors: str = "raise") -> list:
        """``[fn(p) for p in points]``, computed on this runner, with a progress bar.

        Args:
            fn: module-level function of one point (see the module docstring).
            points: the grid.
            desc: the progress bar's label.
            errors: ``"raise"`` (default) or ``"return"`` (the exception in the point's place).

        Raises:
            Exception: the first point's exception (``errors="raise"``), with a note naming
                the point's index. ValueError: an unknown ``errors``.
        """
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
        from tqdm.auto import tqdm

        points = list(points)
        out: list = [None] * len(points)
        with tqdm(total=len(points), desc=desc, unit="pt", dynamic_ncols=True,
                  disable=not self.progress or not points) as bar:
            it = self.iter(fn, points)
            try:
                for i, r in it:
                    if isinstance(r, Exception) and errors == "raise":
                        r.add_note(f"(grid {desc!r}, point {i} of {len(points)}: {points[i]!r:.300})")
                        raise r
                    out[i] = r
                    bar.update(1)
            finally:
                it.close()
        return out


def map_grid(fn: Callable[[Any], Any], points: Sequence, *, workers: int = 1, use_ray: bool = False,
             ray_address: str | None = None, progress: bool = True, desc: str = "grid",
             errors: str = "raise") -> list:
    """``[fn(p) for p in points]`` on a fresh :class:`GridRunner` (closed afterwards).

    Raises:
        as :meth:`GridRunner.map`; ValueError: ``workers`` < 1; ImportError: Ray missing.
    """
    with GridRunner(workers, use_ray=use_ray, ray_address=ray_address, progress=progress) as g:
        return g.map(fn, points, desc=desc, errors=errors)
