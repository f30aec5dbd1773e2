"""Which clock and which estimator make the engine's prefill timings reproducible?

    python bench/bench_timing_noise.py [--repeats 15] [--raw raw.json] [--load raw.json]
    python bench/bench_timing_noise.py --calibration cost.json [--calibration other.json ...] [--drift]

Times the calibration's prefill grid (``cpu-small``, one thread) ``--repeats`` times in shuffled
interleaved passes after a warm-up, reading both clocks around every call: the thread's CPU time
(``time.thread_time``, the engine's CPU clock) and the wall clock (``time.perf_counter``). Then,
per clock and per estimator of a point's cost (fastest, 10th / 25th percentile, median, mean):

* split-half spread: the estimator on the even passes vs on the odd ones, ``|a - b| / mean``
  over the points (p50, p90): how reproducible the estimate is;
* fit residual: ``|fit - t| / t`` of the cost model (``calibrate.fit_prefill``) on the estimates;
* systematic share: the correlation, over the points, of the residuals of the model fitted on
  each half alone; noise gives 0, a shape the model lacks gives 1.

Prints one table per clock and the autocorrelation of the timings' log-deviations in time order
(lag 1, 2, 5, 10 calls). ``--raw`` saves the timings; ``--load`` analyses saved ones instead.

``--calibration``: the same comparison on the repeats a calibration stored (``fairsched
calibrate``'s JSON, ``measurements.*.timings``), prefill and decode, plus the held-out error (the
model fitted on one half of every point's repeats, scored on the other half), and the *rule* that
chose ``calibrate``'s estimator, fixed before looking at any fit: the smallest split-half p90
pooled over every point of every file given (``proofs/cost_model.md``, "Which estimator").

``--calibration F --drift``: does the machine's speed drift *within* the run (``proofs/cost_model.md``,
"Speed drift")? Per part: the timings in time order (their stored starts ``at``, or, for files
written before ``at`` was kept, ``calibrate._time_points``' plan rebuilt from seed 0 and the stored
repeats), the lag-1 autocorrelation of their log-deviations from their point's mean (consecutive
timings are different points) against a null that shuffles each point's deviations in time, the
correlation of different points' deviations by time apart, what ``engine.timing.speed_factors``
chooses and removes, and per-point standard error, fit p50 / p90 / max, R^2 and left-out-point p90
with the plain mean (``raw``) and the drift-corrected mean (``corrected``).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

GRID_N = (16, 32, 64, 128, 256, 512, 1024, 2048)
GRID_H = (0, 128, 512, 1024, 2048, 4096)
ESTIMATORS = {"min": np.min, "q10": lambda a: np.quantile(a, 0.10), "q25": lambda a: np.quantile(a, 0.25),
              "median": np.median, "IQ mean": lambda a: np.sort(a)[len(a) // 4:len(a) - len(a) // 4].mean(),
              "mean": np.mean}


def measure(repeats: int, seed: int = 0) -> dict:
    """``{"points": [[n, h], ...], "order": [point index per call], "cpu": [...], "wall": [...]}``."""
    import torch

    from fairsched.engine.calibrate import _tokens
    from fairsched.engine.kv import PagedKVCache
    from fairsched.engine.model import build_model
    from fairsched.engine.timing import warm_up

    torch.set_num_threads(1)
    model = build_model("cpu-small", "cpu")
    points = [(n, h) for n in GRID_N for h in GRID_H]
    order, cpu, wall = [], [], []
    with torch.inference_mode():
        warm_up(model)
        bs, total = 16, max(GRID_H) + max(GRID_N)
        pool = PagedKVCache.for_model(model, -(-total // bs), bs)
        slots = torch.arange(pool.n_blocks * bs)
        toks = _tokens(model, total, seed)
        for a in range(0, max(GRID_H), 2048):
            model.prefill(toks[a:min(a + 2048, max(GRID_H))], pool, slots, a)
        for n, h in points:  # first calls of every shape, not kept
            model.prefill(toks[h:h + n], pool, slots, h)
        rng = np.random.default_rng(seed)
        for _ in range(repeats):
            for k in rng.permutation(len(points)):
                n, h = points[k]
                w0, c0 = time.perf_counter(), time.thread_time()
                model.prefill(toks[h:h + n], pool, slots, h)
                c1, w1 = time.thread_time(), time.perf_counter()
                order.append(int(k))
                cpu.append(c1 - c0)
                wall.append(w1 - w0)
    return {"points": [list(p) for p in points], "order": order, "cpu": cpu, "wall": wall}


def analyse(raw: dict) -> dict:
    """The tables described in the module docstring, as ``{clock: {estimator: {...}}}``."""
    from fairsched.engine.calibrate import prefill_features
    from fairsched.theory.fit import nnls_rel

    pts = raw["points"]
    n = np.array([p[0] for p in pts], dtype=float)
    h = np.array([p[1] for p in pts], dtype=float)
    X = prefill_features(n, h)
    order = np.asarray(raw["order"])
    out: dict = {}
    for clock in ("cpu", "wall"):
        t = np.asarray(raw[clock])
        per = [t[order == k] for k in range(len(pts))]
        med = np.array([np.median(a) for a in per])
        dev = np.log(t / med[order])
        rows = {"_cv": float(np.median([a.std() / a.mean() for a in per])),
                "_autocorr": {lag: float(np.corrcoef(dev[:-lag], dev[lag:])[0, 1]) for lag in (1, 2, 5, 10)}}
        for name, f in ESTIMATORS.items():
            full = np.array([f(a) for a in per])
            ha = np.array([f(a[0::2]) for a in per])
            hb = np.array([f(a[1::2]) for a in per])
            split = np.abs(ha - hb) / ((ha + hb) / 2)

            def resid(y):
                return (X @ nnls_rel(X, y) - y) / y

            r = np.abs(resid(full))
            rows[name] = {"split_p50": float(np.median(split)), "split_p90": float(np.percentile(split, 90)),
                          "fit_p50": float(np.median(r)), "fit_p90": float(np.percentile(r, 90)),
                          "systematic": float(np.corrcoef(resid(ha), resid(hb))[0, 1])}
        out[clock] = rows
    return out


def analyse_calibrations(paths: list[str]) -> dict:
    """Per estimator: ``{"pooled_split_p90", (file, part): {"split_p50", "split_p90", "fit_p50",
    "fit_p90", "heldout_p90"}}`` from the stored repeats of calibration files (split-half:
    ``|a / b - 1|`` of the estimator on a point's even vs odd repeats)."""
    from fairsched.engine.calibrate import decode_features, prefill_features
    from fairsched.theory.fit import nnls_rel

    out: dict = {e: {} for e in ESTIMATORS}
    pooled: dict = {e: [] for e in ESTIMATORS}
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        for part, feat, cols in (("prefill", prefill_features, ("n", "h")), ("decode", decode_features, ("batch", "context"))):
            m = doc["measurements"][part]
            X = feat(np.asarray(m[cols[0]], float), np.asarray(m[cols[1]], float))
            per = [np.asarray(t, float) for t in m["timings"]]
            for e, f in ESTIMATORS.items():
                full, ha, hb = (np.array([f(a[s]) for a in per]) for s in (slice(None), slice(0, None, 2), slice(1, None, 2)))
                split = np.abs(ha / hb - 1)
                r = np.abs(X @ nnls_rel(X, full) / full - 1)
                ho = np.abs(np.r_[X @ nnls_rel(X, ha) / hb, X @ nnls_rel(X, hb) / ha] - 1)
                pooled[e].append(split)
                out[e][(path, part)] = {"split_p50": float(np.median(split)), "split_p90": float(np.percentile(split, 90)),
                                        "fit_p50": float(np.median(r)), "fit_p90": float(np.percentile(r, 90)),
                                        "heldout_p90": float(np.percentile(ho, 90))}
    for e in ESTIMATORS:
        out[e]["pooled_split_p90"] = float(np.percentile(np.concatenate(pooled[e]), 90))
    return out


def _time_order(m: dict, keys: tuple, seed: int = 0):
    """``(point, seconds, start)`` arrays of a stored part, the timings in time order."""
    pts = list(zip(m[keys[0]], m[keys[1]], strict=True))
    if "at" in m:
        ix = np.concatenate([[k] * len(ts) for k, ts in enumerate(m["timings"])]).astype(int)
        t, at = np.concatenate(m["timings"]), np.concatenate(m["at"])
        o = np.argsort(at, kind="stable")
        return ix[o], t[o], at[o]
    rng = np.random.default_rng(seed)  # calibrate._time_points' plan
    rng.permutation(len(pts))
    u = rng.random(len(pts))
    plan = sorted(((j + u[i]) / r, i) for i, r in enumerate(m["repeats"]) for j in range(r))
    nxt = [0] * len(pts)
    ix, t = [], []
    for _, i in plan:
        ix.append(i)
        t.append(m["timings"][i][nxt[i]])
        nxt[i] += 1
    t = np.asarray(t, float)
    return np.asarray(ix), t, np.r_[0.0, np.cumsum(t)[:-1]]


def analyse_drift(path: str) -> dict:
    """``{part: {...}}``: the figures ``--drift`` prints (module docstring)."""
    from fairsched.engine.calibrate import decode_features, prefill_features
    from fairsched.engine.timing import speed_factors
    from fairsched.theory.fit import nnls_rel

    with open(path) as f:
        doc = json.load(f)
    rng = np.random.default_rng(1)
    out = {}
    for part, feat, keys in (("prefill", prefill_features, ("n", "h")), ("decode", decode_features, ("batch", "ctx"))):
        m = doc["measurements"][part]
        ix, t, at = _time_order(m, keys)
        P = len(m["timings"])
        lt = np.log(t)
        r = lt - (np.bincount(ix, lt, P) / np.bincount(ix, None, P))[ix]

        def ac1(x):
            return float(np.corrcoef(x[:-1], x[1:])[0, 1])

        null = []
        for _ in range(100):
            x = r.copy()
            for k in range(P):
                sel = np.flatnonzero(ix == k)
                x[sel] = rng.permutation(x[sel])
            null.append(ac1(x))
        mid = at + t / 2
        a, b = np.triu_indices(t.size, 1)
        other = ix[a] != ix[b]
        lag, prod = np.abs(mid[a] - mid[b])[other], (r[a] * r[b])[other]
        bins = (0, 0.1, 0.25, 0.5, 1, 2, 4)
        by_lag = {f"{lo}-{hi}s": float(prod[(lag >= lo) & (lag < hi)].mean() / r.var())
                  for lo, hi in zip(bins[:-1], bins[1:], strict=True)}
        s, info = speed_factors(ix, t, at)
        k0, k1 = (np.asarray(m[k], float) for k in keys)
        X = feat(k0, k0 * k1) if part == "decode" else feat(k0, k1)  # decode: batch, context = batch * ctx
        res = {"ac1": ac1(r), "ac1_null_p95": float(np.percentile(null, 95)), "by_lag": by_lag, **info}
        for name, tt in (("raw", t), ("corrected", t / s)):
            y = np.bincount(ix, tt, P) / np.bincount(ix, None, P)
            se = np.array([tt[ix == k].std(ddof=1) / np.sqrt((ix == k).sum()) for k in range(P)]) / y
            fit = X @ nnls_rel(X, y)
            rel = np.abs(fit - y) / y
            loo = [abs(X[k] @ nnls_rel(np.delete(X, k, 0), np.delete(y, k)) / y[k] - 1) for k in range(P)]
            res[name] = {"se_p50": float(np.median(se)), "se_p90": float(np.percentile(se, 90)),
                         "p50": float(np.median(rel)), "p90": float(np.percentile(rel, 90)), "max": float(rel.max()),
                         "r2": float(1 - np.sum((fit - y) ** 2) / np.sum((y - y.mean()) ** 2)),
                         "loo_p90": float(np.percentile(loo, 90))}
        out[part] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--raw", default=None, help="save the timings here (JSON)")
    ap.add_argument("--load", default=None, help="analyse these saved timings instead of measuring")
    ap.add_argument("--calibration", action="append", default=None,
                    help="compare the estimators on a calibration's stored repeats (repeatable)")
    ap.add_argument("--drift", action="store_true", help="with --calibration: the within-run speed drift")
    a = ap.parse_args()
    if a.calibration and a.drift:
        for path in a.calibration:
            for part, r in analyse_drift(path).items():
                beta = ", ".join(f"{b:.2f}" for b in r["beta"])
                print(f"{path} {part}: lag-1 autocorrelation {r['ac1']:+.2f} (null p95 {r['ac1_null_p95']:+.2f}); "
                      "by time apart " + " ".join(f"{k} {v:+.2f}" for k, v in r["by_lag"].items())
                      + f"; window {r['bandwidth']} s, beta [{beta}], log variance left {100 * r['cv_gain']:.0f}%")
                for name in ("raw", "corrected"):
                    q = r[name]
                    print(f"  {name:9s} SE p50/p90 {100 * q['se_p50']:.2f}/{100 * q['se_p90']:.2f}%  fit p50/p90/max "
                          f"{100 * q['p50']:.1f}/{100 * q['p90']:.1f}/{100 * q['max']:.1f}%  R2 {q['r2']:.4f}  "
                          f"left-out p90 {100 * q['loo_p90']:.1f}%")
        return
    if a.calibration:
        res = analyse_calibrations(a.calibration)
        best = min(ESTIMATORS, key=lambda e: res[e]["pooled_split_p90"])
        print("estimator  pooled split-half p90 | per file and part: split p50/p90, fit p50/p90, held-out p90 (%)")
        for e in ESTIMATORS:
            cells = "; ".join(f"{p.split('/')[-1]} {part}: {100 * r['split_p50']:.1f}/{100 * r['split_p90']:.1f}, "
                              f"{100 * r['fit_p50']:.1f}/{100 * r['fit_p90']:.1f}, {100 * r['heldout_p90']:.1f}"
                              for (p, part), r in ((k, v) for k, v in res[e].items() if k != "pooled_split_p90"))
            print(f"{e:9s} {100 * res[e]['pooled_split_p90']:5.2f}%{'  <- rule' if e == best else ''} | {cells}")
        return
    if a.load:
        with open(a.load) as f:
            raw = json.load(f)
    else:
        raw = measure(a.repeats)
        if a.raw:
            with open(a.raw, "w") as f:
                json.dump(raw, f)
    for clock, rows in analyse(raw).items():
        print(f"clock {clock}: median CV of a point {rows['_cv']:.3f}; autocorrelation in time order "
              + ", ".join(f"lag {k} {v:.2f}" for k, v in rows["_autocorr"].items()))
        print(f"  {'estimator':9s} split-half p50 / p90   fit residual p50 / p90   systematic")
        for name in ESTIMATORS:
            r = rows[name]
            print(f"  {name:9s} {r['split_p50']:7.3f} / {r['split_p90']:.3f}      {r['fit_p50']:7.3f} / {r['fit_p90']:.3f}"
                  f"          {r['systematic']:.2f}")


if __name__ == "__main__":
    main()
