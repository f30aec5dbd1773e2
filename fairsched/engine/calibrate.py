"""Calibrate the simulator's cost model on the toy engine (``fairsched calibrate``).

Measures, with the engine's own forward code (:meth:`ToyLlama.prefill` over a paged KV
cache, :meth:`ToyLlama.decode` over a padded batch):

* prefill time of ``n`` new tokens after ``h`` cached ones over a grid of ``(n, h)``;
* decode step time of ``B`` sequences with ``ctx`` context tokens each (``C = B ctx``).

Each grid point gets about two (prefill) / one (decode) seconds of timings (``GRIDS``: cheap points, the noisiest on a
shared machine, are repeated most; at least 5 / 15 repeats for prefill / decode, at most 61)
after untimed warm-up forwards (with :func:`~fairsched.engine.timing.steady_allocator`: no page
faults) and one discarded first call of every shape, each point's repeats spread evenly over
the whole run in random order (a slow spell of the machine, or a drift of its speed, weighs on
every point alike instead of on the points timed then), on the engine's own clock (:class:`~fairsched.engine.timing.Timer`:
per-thread CPU time with one thread on CPU, ``torch.cuda.synchronize`` + wall clock on CUDA).
The *mean* repeat is fitted (``seconds``), each timing first divided by the machine's speed
while it ran (:func:`~fairsched.engine.timing.speed_factors`, estimated from the other points'
timings around it, normalised to the run's average speed; ``proofs/cost_model.md``, "Speed
drift"); the plain mean ``raw_s``, the median, ``median_s``, the fastest, ``min_s``, and the
spread, IQR / median, are kept too. The mean was chosen by a rule fixed before looking at the
fits (the estimator whose halves of a point's repeats agree best; "Which estimator"), and is the
expected cost of one forward, which is what the engine's TTFTs add up. Then it fits, with cvxpy
(:func:`fairsched.theory.fit.nnls_rel`: non-negative coefficients, least squares on
*relative* errors because times span three orders of magnitude), the engine's cost model
(``proofs/cost_model.md``, "The toy engine's kernels")::

    t_prefill(n, h) = a + b n + c n (h + n / 2) + [h > 0] (e + g (h + n) + w n^2 / 2)
                      + p [h = 0] (P(n) - n^2 / 2) + s K(n, h)
    t_decode(B, C)  = d_a + d_e [B > 1] + d_b B + d_c C + d_q C^2

``c`` is attention over the causal pairs, ``e, g, w`` what the engine's masked path over a
cached context adds (a fixed cost, gathering ``h + n`` keys/values from the paged cache
every layer, and the ``n^2 / 2`` masked-out pairs it computes anyway); ``p, s`` what torch's
CPU flash-attention kernel does beyond those counts (:func:`~fairsched.sim.cost.flash_counts`:
the causal path computes whole 512-key blocks, ``P(n)`` pairs, ``n^2`` for ``n <= 512``; its
query blocks of 32-256 rows each re-read the ``K(n, h)`` key/value rows; ``proofs/cost_model.md``,
"The kernel's counts"); ``d_q`` a decode
step's growth beyond linear in ``C`` (it captured page faults, and fits to 0 since the engine
runs with :func:`~fairsched.engine.timing.steady_allocator`; ``proofs/cost_model.md``); ``d_e``
what a batched step (matrix-matrix products) costs beyond a single sequence's
(matrix-vector): with 41 repeats the residuals of the model without it are +9-11% at B = 1
and -4 to -12% at B = 2..8, and it takes the decode p90 from 13.3% to 5.6% (committed
calibration).

and reports ``R^2`` (on the seconds, not on logs) and the spread of the relative
residuals ``|t_fit - t| / t`` (median, p90, max). The JSON written by
:meth:`~fairsched.sim.cost.CostModel.save` holds the coefficients, units, ``r2``,
``residual_rel_p90``, ``residuals``, the preset, device and the measurements (with every
repeat's seconds, ``timings``: ``bench/bench_timing_noise.py --calibration`` compares the
estimators on them).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fairsched.engine.kv import PagedKVCache
from fairsched.engine.model import ModelConfig, ToyLlama, build_model
from fairsched.engine.timing import Timer, measured_threads, speed_factors, warm_up
from fairsched.theory.fit import nnls_rel

__all__ = ["DECODE_TERMS", "GRIDS", "PREFILL_TERMS", "PROBE", "fit_cost_model", "fit_decode", "fit_prefill", "measure_decode",
           "measure_prefill", "run_calibration", "scale_cost", "speed_level"]

GRIDS = {
    "full": {"n": (16, 32, 64, 128, 256, 512, 1024, 2048), "h": (0, 128, 512, 1024, 2048, 4096),
             "batch": (1, 2, 4, 8, 16, 32), "ctx": (64, 256, 1024, 2048, 4096), "repeats": 5, "decode_repeats": 15,
             "budget_s": 2.0, "decode_budget_s": 1.0, "max_repeats": 61},
    "quick": {"n": (16, 64, 256, 1024), "h": (0, 1024, 3072),
              "batch": (1, 4, 16), "ctx": (128, 1024), "repeats": 3, "decode_repeats": 9},
}
"""Measurement grids: prefill ``n`` x ``h``, decode ``batch`` x per-sequence ``ctx`` (points
with ``batch * ctx`` above the instance's KV capacity are skipped: the engine never runs them),
and the repeats of each point: with ``budget_s`` (prefill) / ``decode_budget_s``, about that many
seconds of timings per point (prefill 2 s: the repeats' noise alone gives a p90 of 4.3-4.5% with
1 s, 3.5-3.7% with 2 s, on the stored repeats of the quiet runs; ``proofs/cost_model.md``, "Repeats"),
at least ``repeats`` (prefill) / ``decode_repeats`` (decode) and at most ``max_repeats``
(:func:`_time_points`); without, exactly those repeats."""


def _tokens(model: ToyLlama, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    dev = next(model.parameters()).device
    return torch.randint(0, model.config.vocab_size, (n,), generator=g).to(dev)


def _time_points(points, run, timer: Timer, repeats: int, budget_s: float | None, max_repeats: int, seed: int,
                 on_step=None, on_plan=None, starts: dict | None = None) -> dict:
    """Time ``run(point)`` for every point; returns ``point -> list of seconds``.

    A first pass over every point, in shuffled order, is timed but not kept: it pays each
    shape's first-call costs and gives its cost ``c_i``. Then point i gets ``R_i`` timings:
    ``repeats`` if ``budget_s`` is None, else ``clip(ceil(budget_s / c_i), repeats,
    max_repeats)`` (about ``budget_s`` seconds of timings per point: cheap points, whose
    timings vary most on a shared machine, get the most repeats). The timings are *stratified
    in time*: repeat ``j`` of point i runs at key ``(j + u_i) / R_i`` (``u_i`` uniform in [0, 1)),
    all timings in key order, so every point's repeats are spread evenly over the whole run
    and a slow spell of the machine, or a slow drift of its speed, weighs on every point alike
    (a common factor, which the relative fit does not see as a shape) instead of on the points
    that happened to be timed then (``proofs/cost_model.md``, "Measuring on a shared machine").
    ``on_plan(k)`` is called once with the number of timings still to come, ``on_step()``
    after each timing; the lists keep each point's timings in time order, and ``starts`` (if
    given) gets each timing's start on the timer's clock, from the first kept timing's."""
    rng = np.random.default_rng(seed)
    first = {}
    for k in rng.permutation(len(points)):
        t0 = timer.now()
        run(points[k])
        first[points[k]] = timer.now() - t0
    if budget_s is None:
        reps = dict.fromkeys(points, repeats)
    else:
        reps = {p: int(min(max(repeats, np.ceil(budget_s / max(first[p], 1e-9))), max_repeats)) for p in points}
    if on_plan is not None:
        on_plan(sum(reps.values()))
    u = rng.random(len(points))
    plan = sorted(((j + u[i]) / reps[p], i) for i, p in enumerate(points) for j in range(reps[p]))
    times: dict = {p: [] for p in points}
    at: dict = {p: [] for p in points}
    origin = None
    for _, i in plan:
        t0 = timer.now()
        origin = t0 if origin is None else origin
        run(points[i])
        times[points[i]].append(timer.now() - t0)
        at[points[i]].append(t0 - origin)
        if on_step is not None:
            on_step()
    if starts is not None:
        starts.update(at)
    return times


def _frame(times: dict, starts: dict, keys: tuple) -> pd.DataFrame:
    """One row per point: ``keys`` (the point), ``seconds`` (the mean repeat at the run's average
    speed: each timing divided by its :func:`~fairsched.engine.timing.speed_factors` factor),
    ``raw_s`` (the plain mean), ``median_s``, ``min_s``, ``spread``, ``repeats`` (:func:`_summary`,
    of the timings as measured), ``timings`` [s], ``at`` (their starts [s]) and ``speed`` (their
    factors), in time order."""
    pts = list(times)
    ix = np.concatenate([[k] * len(times[p]) for k, p in enumerate(pts)]).astype(int)
    t = np.concatenate([times[p] for p in pts])
    s = speed_factors(ix, t, np.concatenate([starts[p] for p in pts]))[0]
    rows = [(*p, float(np.mean(t[ix == k] / s[ix == k])), *_summary(times[p]), [float(x) for x in times[p]],
             [float(x) for x in starts[p]], [float(x) for x in s[ix == k]]) for k, p in enumerate(pts)]
    return pd.DataFrame(rows, columns=[*keys, "seconds", "raw_s", "median_s", "min_s", "spread", "repeats", "timings",
                                       "at", "speed"])


def _summary(ts: list[float]) -> tuple[float, float, float, float, int]:
    """``(mean, median, fastest, spread, repeats)`` of one point's timings; spread =
    interquartile range / median (the repeat-to-repeat variation). The mean is the estimator
    (:func:`_frame` takes it of the drift-corrected timings; ``proofs/cost_model.md``, "Which
    estimator")."""
    a = np.asarray(ts)
    q1, med, q3 = np.percentile(a, (25, 50, 75))
    return float(a.mean()), float(med), float(a.min()), float((q3 - q1) / med), int(a.size)


def measure_prefill(model: ToyLlama, ns, hs, repeats: int = 3, seed: int = 0, timer: str = "auto",
                    on_step=None, budget_s: float | None = None, max_repeats: int = 61,
                    on_plan=None) -> pd.DataFrame:
    """Prefill seconds for every ``(n, h)``: columns ``n, h`` and those of :func:`_frame`
    (``seconds``: the mean repeat at the run's average speed). Repeats, order and callbacks:
    :func:`_time_points` (``repeats`` each, or about ``budget_s`` seconds each with at least
    ``repeats`` and at most ``max_repeats``)."""
    dev = next(model.parameters()).device
    timer = Timer(dev, timer)
    bs = 16
    total = max(hs) + max(ns)
    pool = PagedKVCache.for_model(model, -(-total // bs), bs)
    slots = torch.arange(pool.n_blocks * bs, device=dev)
    toks = _tokens(model, total, seed)
    # the KV of positions < h depends only on tokens < h: fill the longest prefix once
    hmax = max(hs)
    for a in range(0, hmax, 2048):
        model.prefill(toks[a:min(a + 2048, hmax)], pool, slots, a)
    points = [(n, h) for n in ns for h in hs]
    starts: dict = {}
    times = _time_points(points, lambda p: model.prefill(toks[p[1]:p[1] + p[0]], pool, slots, p[1]), timer,
                         repeats, budget_s, max_repeats, seed, on_step, on_plan, starts)
    return _frame(times, starts, ("n", "h"))


def measure_decode(model: ToyLlama, batches, ctxs, repeats: int = 3, seed: int = 0,
                   timer: str = "auto", max_context: int | None = None, on_step=None,
                   budget_s: float | None = None, max_repeats: int = 61, on_plan=None) -> pd.DataFrame:
    """Decode-step seconds for every ``(B, ctx)`` with ``B ctx <= max_context``: columns
    ``batch, ctx, context`` (= B ctx) and those of :func:`_frame` (as :func:`measure_prefill`). Every sequence of the
    batch reads the same ``ctx`` slots (the cost does not depend on which slots are read)."""
    dev = next(model.parameters()).device
    timer = Timer(dev, timer)
    bs = 16
    cmax = max(ctxs)
    pool = PagedKVCache.for_model(model, -(-cmax // bs), bs)
    slots = torch.arange(pool.n_blocks * bs, device=dev)
    toks = _tokens(model, cmax, seed)
    for a in range(0, cmax, 2048):
        model.prefill(toks[a:min(a + 2048, cmax)], pool, slots, a)
    points = [(b, c) for b in batches for c in ctxs if max_context is None or b * c <= max_context]
    starts: dict = {}
    times = _time_points(points, lambda p: model.decode(toks[:p[0]], pool, [slots[:p[1]]] * p[0], [p[1]] * p[0]),
                         timer, repeats, budget_s, max_repeats, seed, on_step, on_plan, starts)
    df = _frame(times, starts, ("batch", "ctx"))
    df.insert(2, "context", df["batch"] * df["ctx"])
    return df


def _stats(t: np.ndarray, fit: np.ndarray) -> dict:
    ss_res = float(((t - fit) ** 2).sum())
    ss_tot = float(((t - t.mean()) ** 2).sum())
    rel = np.abs(fit - t) / t
    return {"r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
            "residual_rel_p50": float(np.median(rel)), "residual_rel_p90": float(np.percentile(rel, 90)),
            "residual_rel_max": float(rel.max()), "n_points": int(t.size)}


PREFILL_TERMS = ("prefill_a", "prefill_b", "prefill_c", "prefill_e", "prefill_g", "prefill_w", "prefill_p", "prefill_s")
DECODE_TERMS = ("decode_a", "decode_b", "decode_c", "decode_q", "decode_e")
"""CostModel fields fitted, in the column order of :func:`prefill_features` / :func:`decode_features`."""


def prefill_features(n, h) -> np.ndarray:
    """``[m, 8]`` columns ``1, n, n (h + n/2), [h>0], [h>0] (h + n), [h>0] n^2 / 2, pad, keys``
    (the terms of :meth:`~fairsched.sim.cost.CostModel.prefill_time`, same order as
    :data:`PREFILL_TERMS`; ``pad, keys``: :func:`~fairsched.sim.cost.flash_counts`, the CPU
    attention kernel's extra causal pairs and key/value rows read)."""
    from fairsched.sim.cost import flash_counts

    n = np.asarray(n, dtype=float)
    h = np.asarray(h, dtype=float)
    k = (h > 0).astype(float)
    fc = np.array([flash_counts(int(a), int(b)) for a, b in zip(n, h, strict=True)], dtype=float).reshape(-1, 2)
    return np.column_stack([np.ones_like(n), n, n * (h + n / 2), k, k * (h + n), k * n * n / 2, fc[:, 0], fc[:, 1]])


def decode_features(batch, context) -> np.ndarray:
    """``[m, 5]`` columns ``1, B, C, C^2, [B > 1]`` (:meth:`~fairsched.sim.cost.CostModel.decode_time`,
    same order as :data:`DECODE_TERMS`)."""
    b = np.asarray(batch, dtype=float)
    c = np.asarray(context, dtype=float)
    return np.column_stack([np.ones_like(b), b, c, c * c, (b > 1).astype(float)])


def fit_prefill(df: pd.DataFrame) -> tuple[np.ndarray, dict]:
    """Fit :data:`PREFILL_TERMS` to columns ``n, h, seconds``; returns coefficients and fit stats."""
    t = df["seconds"].to_numpy(dtype=float)
    X = prefill_features(df["n"], df["h"])
    th = nnls_rel(X, t)
    return th, _stats(t, X @ th)


def fit_decode(df: pd.DataFrame) -> tuple[np.ndarray, dict]:
    """Fit :data:`DECODE_TERMS` to columns ``batch, context, seconds``."""
    t = df["seconds"].to_numpy(dtype=float)
    X = decode_features(df["batch"], df["context"])
    th = nnls_rel(X, t)
    return th, _stats(t, X @ th)


def fit_cost_model(prefill: pd.DataFrame, decode: pd.DataFrame, name: str = "engine"):
    """Fit both models; returns ``(CostModel, {"prefill": stats, "decode": stats})``.

    ``prefill`` needs columns ``n, h, seconds`` (e.g. ``meta["prefill_chunks"]`` of an
    engine run, or :func:`measure_prefill`), ``decode`` columns ``batch, context, seconds``.
    """
    from fairsched.sim.cost import CostModel

    p, sp = fit_prefill(prefill)
    d, sd = fit_decode(decode)
    cm = CostModel(**{k: float(v) for k, v in zip(PREFILL_TERMS, p, strict=True)},
                   **{k: float(v) for k, v in zip(DECODE_TERMS, d, strict=True)}, name=name)
    return cm, {"prefill": sp, "decode": sd}


def run_calibration(out: str | Path | None, preset: str | ModelConfig = "cpu-small",
                    device: str | torch.device | None = None, quick: bool = False, *,
                    model: ToyLlama | None = None, repeats: int | None = None, seed: int = 0,
                    threads: int | None = None, timer: str = "auto", progress=None) -> dict:
    """Measure the engine, fit the cost model, and save it as JSON at ``out`` (if given).

    ``quick`` uses the small grid (under a minute on 2 CPU cores for ``cpu-small``).
    ``threads`` and ``timer`` as for :func:`~fairsched.engine.cluster.run_engine` (default
    on CPU: one thread, CPU time), so the model describes the engine's own clock.
    ``progress(done, total)``, if given, is called after each timing (``total``: prefill
    and decode timings of the grid).
    Returns ``{"coefficients", "r2", "residual_rel_p90", "fit", "prefill" (DataFrame),
    "decode" (DataFrame), "cost_model", "seconds", "preset", "device", "path"}``.
    """
    t_start = time.perf_counter()
    if model is None:
        model = build_model(preset, device)
    dev = next(model.parameters()).device
    grid = GRIDS["quick" if quick else "full"]
    reps = repeats or grid["repeats"]
    dreps = repeats or grid["decode_repeats"]
    budget = None if repeats else grid.get("budget_s")  # repeats= given: exactly that many
    dbudget = None if repeats else grid.get("decode_budget_s", budget)
    cap_reps = grid.get("max_repeats", 61)
    cfg = model.config
    ns = [n for n in grid["n"] if n <= cfg.max_seq_len // 2]
    hs = [h for h in grid["h"] if h + max(ns) <= cfg.max_seq_len]
    with measured_threads(threads, dev):
        mode = Timer(dev, timer).mode
        with torch.inference_mode():
            from fairsched.engine.cluster import DEFAULT_INSTANCE

            cap = DEFAULT_INSTANCE.get(cfg.name)
            ctxs = [c for c in grid["ctx"] if c <= cfg.max_seq_len]
            mc = cap.kv_capacity_tokens if cap else None
            n_dec = sum(1 for b in grid["batch"] for c in ctxs if mc is None or b * c <= mc)
            # timings to come: known once each measurement has planned its repeats
            plan = {"prefill": reps * len(ns) * len(hs), "decode": dreps * n_dec}
            done = [0]

            def step():
                done[0] += 1
                progress(done[0], sum(plan.values()))

            def planner(part):
                return lambda k: plan.__setitem__(part, k)

            on_step = step if progress is not None else None
            warm_up(model)
            pre = measure_prefill(model, ns, hs, reps, seed, mode, on_step=on_step, budget_s=budget,
                                  max_repeats=cap_reps, on_plan=planner("prefill"))
            dec = measure_decode(model, grid["batch"], ctxs, dreps, seed, mode, max_context=mc, on_step=on_step,
                                 budget_s=dbudget, max_repeats=cap_reps, on_plan=planner("decode"))
        n_threads = torch.get_num_threads()
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    name = f"engine-{cfg.name}-{dev.type}"
    cm, fit = fit_cost_model(pre, dec, name)
    coef = {k: getattr(cm, k) for k in PREFILL_TERMS + DECODE_TERMS}
    r2 = {k: v["r2"] for k, v in fit.items()}
    p90 = {k: v["residual_rel_p90"] for k, v in fit.items()}
    elapsed = time.perf_counter() - t_start
    if out is not None:
        out = Path(out)
        cm.save(out, r2=r2, residual_rel_p90=p90, residuals=fit, preset=cfg.name, device=str(dev),
                dtype=dtype, threads=n_threads, timer=mode, quick=bool(quick),
                repeats={"prefill": reps, "decode": dreps, "budget_s": budget, "decode_budget_s": dbudget,
                         "max_repeats": cap_reps},
                source="fairsched.engine.calibrate.run_calibration",
                measurements={"prefill": pre.to_dict(orient="list"), "decode": dec.to_dict(orient="list")},
                model=cfg.to_dict(), seconds=elapsed)
    return {"coefficients": coef, "r2": r2, "residual_rel_p90": p90, "fit": fit, "prefill": pre, "decode": dec,
            "cost_model": cm, "seconds": elapsed, "preset": cfg.name, "device": str(dev), "threads": n_threads,
            "timer": mode,
            "path": None if out is None else str(out)}


def ttft_error(engine_result, workload, cost, instance, policy: str = "fcfs", **sim_kw) -> dict:
    """End-to-end error of the calibrated simulator: per-request TTFT of
    :func:`fairsched.sim.simulate` with ``cost`` against the engine's measured TTFT on the same
    ``workload``, ``policy`` and ``instance`` (``SimResult.first_token_t - arrival``).

    Returns ``{"p50", "p90", "max"}`` of ``|ttft_sim - ttft_engine| / ttft_engine`` over the
    requests both finished, plus ``"n"``, ``"bias"`` (median of ``ttft_sim / ttft_engine``)
    and ``"sim"`` (the simulator's SimResult).
    """
    from fairsched.sim import simulate

    sim = simulate(workload, policy, instance=instance, cost=cost, **sim_kw)
    arr = np.array([r.arrival for r in workload])
    te = np.asarray(engine_result.first_token_t, dtype=float) - arr
    ts = np.asarray(sim.first_token_t, dtype=float) - arr
    ok = np.isfinite(te) & np.isfinite(ts) & (te > 0)
    rel = np.abs(ts[ok] - te[ok]) / te[ok]
    return {"p50": float(np.median(rel)), "p90": float(np.percentile(rel, 90)), "max": float(rel.max()),
            "n": int(ok.sum()), "bias": float(np.median(ts[ok] / te[ok])), "sim": sim}


PROBE = {"n": (64, 512), "h": (0, 1024), "batch": (1, 8), "ctx": (256, 1024), "repeats": 5}
"""The speed probe's forwards (:func:`speed_level`): prefill ``n`` x ``h`` and decode ``batch``
x ``ctx``, points of the calibration grid's range, ``repeats`` timings each (about 2 s on
``cpu-small``)."""


def scale_cost(cost, kappa: float):
    """``cost`` (a :class:`~fairsched.sim.cost.CostModel`) with every coefficient times ``kappa``
    (the machine's speed level, :func:`speed_level`): every prediction scales by ``kappa``."""
    import dataclasses

    return dataclasses.replace(cost, **{k: getattr(cost, k) * kappa for k in PREFILL_TERMS + DECODE_TERMS})


def speed_level(cost, model: ToyLlama | None = None, preset: str | ModelConfig = "cpu-small",
                device: str | torch.device | None = None, threads: int | None = None, timer: str = "auto",
                seed: int = 0) -> dict:
    """The machine's speed now, relative to the calibration behind ``cost``: a short probe of
    fixed forwards (:data:`PROBE`; 4 prefill and 4 decode shapes, timed as the calibration times
    its grid, same clock, threads and estimator) right before a run.

    ``kappa = sum(measured seconds) / sum(cost's predicted seconds)`` over the probe's shapes. The
    calibration fits the run-average level of the machine (its timings are stratified in time);
    on a shared machine the level at run time differs by a common factor (other processes'
    use of the shared caches and memory bandwidth), which ``kappa`` estimates;
    :func:`scale_cost` applies it (``proofs/cost_model.md``, "Speed probe"). The model's own
    residual at the probe's shapes enters as a bias (a few % at p50; summing 8 shapes averages it).

    Returns ``{"kappa", "measured_s", "predicted_s", "prefill" (DataFrame), "decode" (DataFrame)}``.
    """
    if model is None:
        model = build_model(preset, device)
    dev = next(model.parameters()).device
    with measured_threads(threads, dev):
        mode = Timer(dev, timer).mode
        with torch.inference_mode():
            warm_up(model)
            pre = measure_prefill(model, PROBE["n"], PROBE["h"], PROBE["repeats"], seed, mode)
            dec = measure_decode(model, PROBE["batch"], PROBE["ctx"], PROBE["repeats"], seed, mode)
    meas = float(pre["seconds"].sum() + dec["seconds"].sum())
    pred = (sum(cost.prefill_time(int(n), int(h)) for n, h in zip(pre["n"], pre["h"], strict=True))
            + sum(cost.decode_time(int(b), int(c)) for b, c in zip(dec["batch"], dec["context"], strict=True)))
    return {"kappa": meas / pred, "measured_s": meas, "predicted_s": float(pred), "prefill": pre, "decode": dec}
