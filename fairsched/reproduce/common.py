"""Shared setup of the six reproduced claims (:mod:`fairsched.reproduce.claims`): hardware
profiles, the simulation call, the measured ``X`` and the DLPM bounds, trace lookup, figure
layout. One module a claim holds its experiment (``claim1_dlpm_throughput`` ...
``claim6_quantum_tradeoff``).

Every number comes from :func:`fairsched.sim.simulate` and
:mod:`fairsched.analysis.metrics`; the bounds from :mod:`fairsched.theory.fairness`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DLPM = "Cao et al., Locality-aware Fair Scheduling in LLM Serving (DLPM), arXiv 2501.14312"
VTC = "Sheng et al., Fairness in Serving Large Language Models (VTC), OSDI'24"
LMETRIC = "LMetric, arXiv 2603.15202 (OSDI'26)"
"""The source papers, as the claims cite them."""

A100 = "a100-llama3-8b"
A10G = "a10g-llama2-7b"


def quantum_u(workload) -> float:
    """DLPM's ``Q^u`` in claims 1-3 [service units]: ``max(w_p L_in, w_q O_max)`` of the workload
    (``Workload.max_request_cost``, O_max the longest output; not VTC's U, which takes the KV
    capacity).

    This quantum lets a client's largest request through in one refill round, and keeps
    the proved bound ``2 (Q^u + X)`` within a factor 2 of its ``Q^u -> 0`` value (``X`` is
    at least this quantity up to the cached part). With ``Q^u`` much below the cost of a cache
    miss, a client that just paid a miss stays ineligible for ``cost / Q^u`` rounds while
    the other clients' misses evict the prefix it has just cached, and DLPM falls back to
    VTC's round robin (claim 1's sweep shows it; the kit's class default is 2048).
    """
    from fairsched.policies import ServiceWeights, default_quantum

    return default_quantum(workload, ServiceWeights(*WEIGHTS))


WEIGHTS = (1.0, 2.0)  # VTC's w_p, w_q


def hardware(cost, profile: str, **instance_overrides):
    """``(CostModel, InstanceConfig)`` of a hardware profile (``fairsched.sim.profiles``), the
    cost model replaced by ``cost`` when one is given (``--cost-model``)."""
    from fairsched.sim.profiles import hardware_profile

    default_cost, inst = hardware_profile(profile, **instance_overrides)
    return (cost if cost is not None else default_cost), inst


def hw_text(cost, inst) -> str:
    return (f"cost model {cost.name}, KV {inst.kv_capacity_tokens:,} tokens, batch <= {inst.max_batch_size}, "
            f"token budget {inst.token_budget}")


def pct(a: float | None, b: float | None) -> float | None:
    """Change of ``a`` relative to ``b`` in percent (None if undefined)."""
    if a is None or b is None or not b:
        return None
    return 100.0 * (a / b - 1.0)


def fmt(v, spec: str = ".2f") -> str:
    return "n/a" if v is None else format(v, spec)


def ratio(a, b) -> float | None:
    if a is None or b is None or not b:
        return None
    return float(a) / float(b)


def x_upper_bound(result, w_p: float = 1.0, w_q: float = 2.0) -> float:
    """An upper bound on the ``X`` of a run (``proofs/vtc_upper_bound.md``), from the
    requests' whole outputs (the measured ``X`` per instance is
    :func:`fairsched.analysis.service_params.measured_x`).

    ``X`` = max over admissions of ``w_p * (uncached prompt of r) + w_q * (decode tokens
    still to come of r and of its client's other running requests)``. We do not log how
    many tokens a running request has generated at a given instant, so each running
    request is charged its *whole* output: the value returned is >= X, and a bound
    ``2 (Q^u + X)`` evaluated with it is still a valid (slightly looser) bound.
    """
    df = result.requests_frame()
    adm = df["admit_t"].to_numpy(dtype=float)
    fin = df["finish_t"].to_numpy(dtype=float)
    fin = np.where(np.isfinite(fin), fin, np.inf)
    out = df["output_len"].to_numpy(dtype=float)
    unc = (df["input_len"] - df["cached_tokens"]).to_numpy(dtype=float)
    cl = df["client"].to_numpy(dtype=str)
    best = 0.0
    for c in np.unique(cl):
        m = np.flatnonzero((cl == c) & np.isfinite(adm))
        if not m.size:
            continue
        a, f, o, u = adm[m], fin[m], out[m], unc[m]
        for lo in range(0, m.size, 1024):  # chunks keep the matrix small
            aj = a[lo:lo + 1024, None]
            running = (a[None, :] <= aj) & (f[None, :] > aj)
            best = max(best, float((w_p * u[lo:lo + 1024] + w_q * (running * o[None, :]).sum(axis=1)).max()))
    return best


def gap_without_end_events(result, gap) -> dict:
    """The witness of a :class:`~fairsched.analysis.metrics.GapReport` recomputed without the
    service events at the closing instant ``t2`` (which may have been scheduled, in the same
    step, after the lagging client's backlog ended)."""
    t1, t2 = gap.interval
    svc = result.service_frame()
    names = list(result.clients)

    def w(c, end_inclusive):
        m = (svc["client"] == names.index(c)) & ((svc["t"] >= t1) if gap.left_closed else (svc["t"] > t1))
        m &= (svc["t"] <= t2) if end_inclusive else (svc["t"] < t2)
        return float(svc.loc[m, "amount"].sum())

    f, g = gap.pair
    return {"f": f, "g": g, "t1": t1, "t2": t2, "open_gap": w(f, False) - w(g, False),
            "f_at_end": w(f, True) - w(f, False), "g_at_end": w(g, True) - w(g, False)}


def proved_dlpm_bound(quantum: float, x: float, w_p: float = 1.0, w_q: float = 2.0) -> float:
    """``2 (Q^u + X)`` from :func:`fairsched.theory.fairness.dlpm_gap_bound`."""
    from fairsched.theory.fairness import dlpm_gap_bound, evaluate

    return evaluate(dlpm_gap_bound(), Q_u=quantum, X=x, w_p=w_p, w_q=w_q)


def published_dlpm_bound(quantum: float, u: float) -> float:
    """The published ``2 (U + Q^u)``, ``u`` = VTC's U with M = the KV token capacity (proved
    under reserve admission with w_p <= w_q: ``proofs/admission.md``)."""
    from fairsched.theory.fairness import dlpm_gap_bound_published, evaluate

    return evaluate(dlpm_gap_bound_published(), Q_u=quantum, U=u)


def simulate(workload, policy: str, cost, instance=None, *, quantum: float | None = None, router=None,
              n_instances: int = 1):
    from fairsched.policies import ServiceWeights, make_policy_factory
    from fairsched.sim import simulate

    weights = ServiceWeights(*WEIGHTS)
    params = {"quantum": quantum if quantum is not None else quantum_u(workload)} if policy == "dlpm" else {}
    return simulate(workload, make_policy_factory(policy, weights, **params), router=router,
                    n_instances=n_instances, instance=instance, cost=cost, weights=weights)


def layout(fig, title: str, height: int = 420):
    fig.update_layout(title=title, template="plotly_white", height=height, legend_title_text="")
    return fig


DOC_QA_KW = dict(n_clients=32, doc_tokens=(24000, 32000), question_tokens=(30, 120),
                 output_tokens=(16, 256), rate=1.0, seed=0)
"""Long-document QA for claims 1 and 6: 32 clients, one 24-32k-token document each
(LooGLE-like), 1 question/s each. Its documents (~0.9M tokens) are about 2x the
A100 profile's KV capacity (439k tokens), so which client is served decides the hit rate."""



def trace_path(name: str) -> Path:
    from fairsched.workload import shared_data_dir

    d = shared_data_dir()
    if d is None or not (d / name).is_file():
        raise FileNotFoundError(f"{name} not found: set FAIRSCHED_SHARED_DATA to the directory holding it "
                                f"(looked in {d})")
    return d / name

