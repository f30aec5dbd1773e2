"""Fairness bounds of VTC, DLPM and D2LPM (statements, sympy forms, evaluators, generators).

Service of client i in (t1, t2]: ``W_i = w_p * (uncached prefill tokens admitted) + w_q *
(decode tokens generated)`` in *service units*; prefill is charged at admission, decode one
token at a time. *Backlogged* = has at least one waiting (not yet admitted) request.

Key quantity (``proofs/vtc_upper_bound.md``)::

    X = max over admissions of (w_p * u_r + w_q * remaining decode tokens of the client's
        running requests right after admitting r)          [service units]
      <= w_p * L_in + k * w_q * M                           (k: max concurrent requests/client)

With at most one running request per client ``X <= w_p L_in + w_q M <= 2 U``.

Results (status in ``proofs/README.md``):
- VTC: ``|W_f - W_g| <= 2 X`` (proved). The published ``2 U`` with ``U = max(w_p L_in, w_q M)``
  (M the longest output) is refuted: :func:`vtc_counterexample_requests` attains ``4 U = 2 X``.
- Lower bound: any work-conserving non-preemptive scheduler has an instance with gap
  ``>= w_p L_in + w_q M >= w_q M`` (proved; :func:`adversarial_lower_bound_workload`).
- DLPM: deficits stay in ``[-X, Q^u]`` and ``|W_f - W_g| <= 2 (Q^u + X)`` (proved). The
  published invariant ``[-U, Q^u]`` and gap ``2 (U + Q^u)`` are refuted
  (:func:`dlpm_counterexample_requests`, gap ``4U`` with ``Q^u = 1``).
- D2LPM: ``2 K (Q^u + X)`` when both clients are backlogged at every worker (proved); with
  "backlogged anywhere" no bound of the form F(Q^u, Q^w, U, K) was found and the natural
  candidate ``2 K (Q^u + Q^w + X)`` is refuted (:func:`d2lpm_counterexample_requests`).
"""

from __future__ import annotations

import sympy as sp

from fairsched.workload.request import Workload, make_workload

from .symbols import (
    K_workers,
    L_in,
    M_out,
    Q_u,
    Q_w,
    U,
    X,
    k_conc,
    n_clients,
    q_def,
    rate_a,
    w_p,
    w_q,
)

__all__ = [
    "U_expr", "X_expr", "vtc_upper_bound", "vtc_upper_bound_published", "vtc_counter_gap",
    "work_conserving_lower_bound", "adversarial_lower_bound_workload", "vtc_counterexample_requests",
    "vtc_lift_counterexample_requests", "dlpm_deficit_invariant", "dlpm_deficit_invariant_published",
    "dlpm_gap_bound", "dlpm_gap_bound_published", "dlpm_counterexample_requests",
    "d2lpm_gap_bound_per_worker", "d2lpm_candidate_global_bound", "d2lpm_counterexample_requests",
    "vtc_latency_bound_published", "evaluate", "params_from_workload",
]


def U_expr() -> sp.Expr:
    """``U = max(w_p L_in, w_q M)`` [service units] (VTC's per-request cost scale)."""
    return sp.Max(w_p * L_in, w_q * M_out)


def X_expr(k: int | sp.Expr = k_conc) -> sp.Expr:
    """Upper bound on ``X`` [service units]: ``w_p L_in + k w_q M``, k = max concurrent
    running requests of one client (k = 1: ``w_p L_in + w_q M <= 2U``)."""
    return w_p * L_in + k * w_q * M_out


def vtc_counter_gap() -> sp.Rel:
    """VTC invariant (proved, ``proofs/vtc_upper_bound.md``): for clients f, g both backlogged
    at time t, ``|c_f(t) - c_g(t)| <= X``. Needs the watermark lift (see there)."""
    cf, cg = sp.symbols("c_f c_g", real=True)
    return sp.Le(sp.Abs(cf - cg), X)


def vtc_upper_bound(k: int | sp.Expr | None = None) -> sp.Expr:
    """VTC service gap bound ``2 X`` [service units] for two clients backlogged over (t1, t2].

    Statement: under VTC with the watermark counter lift (a returning client is lifted to
    ``max(own, min over backlogged counters)``, or to the last such minimum when no client is
    backlogged), for f, g backlogged throughout (t1, t2], ``|W_f - W_g| <= 2 X``. With
    ``k`` given, returns ``2 (w_p L_in + k w_q M)``. Proof: ``proofs/vtc_upper_bound.md``.
    Checked: ``tests/test_theory_fairness.py`` (z3 step, hypothesis on the reference sim).
    """
    return 2 * (X if k is None else X_expr(k))


def vtc_upper_bound_published() -> sp.Expr:
    """The published VTC bound ``2 U`` (U from longest prompt / longest output). REFUTED in
    the per-token decode charging model: :func:`vtc_counterexample_requests` has gap 4U."""
    return 2 * U


def work_conserving_lower_bound(include_prefill: bool = True) -> sp.Expr:
    """Lower bound [service units] on the worst-case service gap of ANY work-conserving,
    non-preemptive scheduler: ``w_p L_in + w_q M`` (interval starting at the admission), or
    the published ``w_q M`` (interval starting after the prefill) if ``include_prefill`` is
    False. Attained by :func:`adversarial_lower_bound_workload` on an engine whose KV memory
    holds one request of L_in + M tokens. Proof: ``proofs/lower_bound.md``."""
    return w_p * L_in + w_q * M_out if include_prefill else w_q * M_out


def adversarial_lower_bound_workload(L: int, M: int, *, n_per_client: int = 3,
                                     block_size: int = 16, clients=("f", "g")) -> Workload:
    """The symmetric adversarial workload of ``proofs/lower_bound.md``.

    Two clients each send ``n_per_client`` identical requests (``L`` prompt tokens, ``M``
    output tokens, unique prompt units so nothing is cached) at t = 0. On an engine whose KV
    memory fits exactly one request (``L + M`` tokens) any work-conserving scheduler admits
    one of them, say f's, and cannot admit g's until it finishes: over the first request's
    lifetime ``W_f - W_g = w_p L + w_q M`` while both stay backlogged.
    """
    rows, unit = [], 1
    n_units = -(-L // block_size)
    for _ in range(n_per_client):
        for c in clients:
            rows.append((0.0, c, tuple(range(unit, unit + n_units)), L, M))
            unit += n_units
    wl = make_workload(rows, block_size=block_size, name=f"adversarial-lb-L{L}-M{M}",
                       source="fairsched.theory.fairness.adversarial_lower_bound_workload")
    wl.meta["kv_capacity_tokens"] = L + M
    wl.meta["expected_gap_units"] = {"w_p=1,w_q=2": L + 2 * M}
    return wl


def vtc_counterexample_requests(L: int = 100, M: int = 50):
    """Abstract requests ``(arrival_step, client, uncached, output, lpm_key)`` on which VTC
    (one running request, FCFS among tied counters) yields ``|W_f - W_g| = 2(w_p L + w_q M)``
    = 4U when ``w_p L = w_q M = U``: g's request runs (f waits), then f's two requests run
    back to back while g waits. Refutes the published ``2U``. ``proofs/vtc_upper_bound.md``."""
    return [(0, "g", L, M, 0), (0, "f", L, M, 0), (0, "f", L, M, 0), (0, "f", L, M, 0),
            (1, "g", L, M, 0), (1, "g", L, M, 0)]


def vtc_lift_counterexample_requests(L: int = 10, M: int = 5, n_first: int = 20):
    """Requests on which the lift rule "max(own, min over *currently* backlogged)" (no lift
    when nobody is backlogged) breaks any O(U) bound: f is served ``n_first`` requests alone,
    goes idle, g arrives alone (counter 0, not lifted), then f returns; g is then served
    ~n_first requests while f, backlogged, waits. The watermark lift prevents this."""
    D = M + 1
    reqs = [(0, "f", L, M, 0) for _ in range(n_first)]
    t_g = n_first * D + 2
    reqs += [(t_g, "g", L, M, 0) for _ in range(3 * n_first)]
    reqs += [(t_g + 1, "f", L, M, 0) for _ in range(3 * n_first)]
    return reqs


def dlpm_deficit_invariant() -> sp.Rel:
    """DLPM invariant (proved): every client's deficit stays in ``[-X, Q^u]`` at all times,
    under refill-to-backlogged (or refill-to-all with ``min(q, Q^u)`` on return, for
    backlogged clients). z3 step check in ``tests/test_theory_fairness.py``."""
    return sp.And(-X <= q_def, q_def <= Q_u)


def dlpm_deficit_invariant_published() -> sp.Rel:
    """The published sketch ``q in [-U, Q^u]``; REFUTED (one request of cost w_p L + w_q M
    admitted at q = eps > 0 ends at eps - 2U when w_p L = w_q M = U)."""
    return sp.And(-U <= q_def, q_def <= Q_u)


def dlpm_gap_bound(k: int | sp.Expr | None = None) -> sp.Expr:
    """DLPM service gap bound ``2 (Q^u + X)`` [service units].

    Statement: f, g are in the backlogged set at every refill event in (t1, t2] (e.g. both
    backlogged throughout) and neither gets a deficit reset in (t1, t2]; refills add ``Q^u``
    to backlogged clients only (or to all, with ``q <- min(q, Q^u)`` on return); admission
    needs ``q > 0`` (any scan order: LPM order is irrelevant to the bound). Then
    ``|W_f - W_g| <= 2 (Q^u + X)``. Proof: ``proofs/dlpm_bound.md``.
    """
    return 2 * (Q_u + (X if k is None else X_expr(k)))


def dlpm_gap_bound_published() -> sp.Expr:
    """Published ``2 (U + Q^u)``; REFUTED: :func:`dlpm_counterexample_requests` gives 4U
    with Q^u = 1 (> 2U + 2)."""
    return 2 * (U + Q_u)


def dlpm_counterexample_requests(L: int = 100, M: int = 50):
    """Requests on which DLPM (Q^u = 1, one running request) yields ``|W_f - W_g| = 4U``
    (= 400 for the defaults, against the published 2(U + Q^u) = 202). LPM keys: g's first
    request matches best, then f's, then g's others."""
    return [(0, "g", L, M, 10), (0, "f", L, M, 5), (0, "f", L, M, 5), (0, "f", L, M, 5),
            (0, "g", L, M, 0), (0, "g", L, M, 0)]


def d2lpm_gap_bound_per_worker(k: int | sp.Expr | None = None) -> sp.Expr:
    """D2LPM gap ``2 K (Q^u + X)`` [service units] for f, g that are backlogged *at every
    worker* at every local refill event in (t1, t2] (proved; ``proofs/d2lpm_bound.md``).
    It does not depend on Q^w: routing only decides where work waits."""
    return 2 * K_workers * (Q_u + (X if k is None else X_expr(k)))


def d2lpm_candidate_global_bound() -> sp.Expr:
    """Candidate ``2 K (Q^u + Q^w + X)`` for clients backlogged *somewhere*; REFUTED by
    :func:`d2lpm_counterexample_requests` (gap 2422 > 1920 with K=2, Q^u=40, Q^w=400, X=40)."""
    return 2 * K_workers * (Q_u + Q_w + X)


def d2lpm_counterexample_requests(n_chunks: int = 32, period: int = 110, L: int = 20, M: int = 10):
    """Requests ``(arrival, client, input, output, prefix_id)`` for
    :func:`fairsched.theory._reference.simulate_d2lpm` (K=2, Q^u=40, Q^w=400): f sends chunks
    of 10 requests sharing a fresh prefix every ``period`` steps, so prefix locality keeps a
    chunk on one worker while g is queued on both; f, backlogged somewhere, gets about half
    of one worker while g gets the rest."""
    reqs = [(j * period, "f", L, M, f"pf{j}") for j in range(n_chunks) for _ in range(10)]
    reqs += [(0, "g", L, M, f"pg{i % 2}") for i in range(n_chunks * 40)]
    return reqs


def vtc_latency_bound_published() -> sp.Expr:
    """Published VTC latency bound ``2 (n - 1) U / a`` seconds. NOT proved here (claim)."""
    return 2 * (n_clients - 1) * U / rate_a


def params_from_workload(wl: Workload, w_p_val: float = 1.0, w_q_val: float = 2.0,
                         k: int = 1) -> dict:
    """Symbol values from a workload: ``L_in`` (longest prompt; an upper bound on uncached
    prefill), ``M`` (longest output), ``U = wl.max_cost(w_p, w_q)``, and ``X <= w_p L_in +
    k w_q M`` (k = max concurrent running requests of one client, engine-dependent)."""
    L = max(r.input_len for r in wl.requests)
    M = max(r.output_len for r in wl.requests)
    return {w_p: w_p_val, w_q: w_q_val, L_in: L, M_out: M, U: wl.max_cost(w_p_val, w_q_val),
            X: w_p_val * L + k * w_q_val * M}


def evaluate(expr, values: dict | None = None, *, workload: Workload | None = None, **kw) -> float:
    """Evaluate a bound for concrete numbers. ``values`` maps symbols (or their names) to
    numbers; with ``workload`` the workload's L_in, M, U, X (k from ``kw``, default 1) and
    w_p, w_q are filled in first. Keyword names: w_p, w_q, Q_u, Q_w, K, k, X, U, L_in, M."""
    subs = {}
    if workload is not None:
        subs.update(params_from_workload(workload, kw.get("w_p", 1.0), kw.get("w_q", 2.0),
                                         kw.get("k", 1)))
    names = {"w_p": w_p, "w_q": w_q, "Q_u": Q_u, "Q_w": Q_w, "K": K_workers, "k": k_conc,
             "X": X, "U": U, "L_in": L_in, "M": M_out, "n": n_clients, "a": rate_a}
    for key, v in kw.items():
        if key in names:
            subs[names[key]] = v
    for key, v in (values or {}).items():
        subs[names.get(key, key) if isinstance(key, str) else key] = v
    e = sp.sympify(expr).subs(subs)
    if U in sp.sympify(expr).free_symbols and U not in subs and {w_p, w_q, L_in, M_out} <= set(subs):
        e = e.subs(U, U_expr().subs(subs))
    return float(e)
