"""Fairness bounds of VTC, DLPM and D2LPM (statements, sympy forms, evaluators, generators).

Service of client i in (t1, t2]: ``W_i = w_p * (uncached prefill tokens admitted) + w_q *
(decode tokens generated)`` in *service units*; prefill is charged at admission, decode one
token at a time. *Backlogged* = has at least one waiting (not yet admitted) request.

``U = max(w_p L_in, w_q M)`` exactly as VTC (Sheng et al., OSDI'24, Sec. 4) defines it:
``L_in`` the longest prompt, ``M`` the most tokens that fit in a running batch, i.e. the
instance's KV-cache token capacity (``InstanceConfig.kv_capacity_tokens``; the per-iteration
``token_budget`` limits the tokens *computed* per step, not the tokens *held* by the running
batch, and VTC's artifact likewise checks ``max_total_tokens``, not ``batch_max_tokens``).
``U_longest_output = max(w_p L_in, w_q O_max)`` (O_max the longest output) is a different,
smaller quantity, kept under its own name; it is not the published U.

Key quantity (``proofs/vtc_upper_bound.md``)::

    X = max over admissions of (w_p * u_r + w_q * remaining decode tokens of the client's
        running requests right after admitting r)          [service units]
      <= w_p L_in + k w_q O_max              (any admission rule; k: max concurrent requests/client)
      <= w_q M + (w_p - w_q)^+ min(L_in, M)  (reserve admission: prompt + full output reserved)
      <= w_p L_in + w_q (M H_N - N)          (peak admission, N requests running; H_N harmonic)

Results (status in ``proofs/README.md``):
- VTC: ``|W_f - W_g| <= 2 X`` (proved, any admission rule). Under reserve admission
  ``X <= U`` iff ``w_p <= w_q`` or ``L_in >= M`` (:func:`reserve_X_within_U_condition`), so
  the published ``2 U`` is proved there. Under peak admission (VTC's artifact) the published
  ``2 U`` is refuted (:func:`vtc_peak_counterexample_requests`); proved instead ``2 X_peak``.
- Lower bound: any work-conserving non-preemptive scheduler has an instance with gap
  ``>= w_p L + w_q (M - L)`` for every prompt length ``1 <= L < M`` (proved), i.e. about
  ``w_q M`` (:func:`adversarial_lower_bound_workload`).
- DLPM: deficits stay in ``[-X, Q^u]`` and ``|W_f - W_g| <= 2 (Q^u + X)`` (proved); the
  published ``2 (U + Q^u)`` follows under reserve admission with the same condition.
- D2LPM: ``2 K (Q^u + X)`` when both clients are backlogged at every worker (proved); for
  clients backlogged *somewhere* no bound exists (``proofs/d2lpm_bound.md``).
"""

from __future__ import annotations

import sympy as sp

from fairsched.workload.request import Workload, make_workload

from .symbols import (
    D_tau,
    K_workers,
    L_in,
    M_kv,
    O_max,
    Q_u,
    Q_w,
    U,
    X,
    k_conc,
    n_clients,
    n_run,
    q_def,
    rate_a,
    w_p,
    w_q,
)

__all__ = [
    "U_expr", "U_longest_output_expr", "X_expr", "X_reserve_expr", "X_peak_expr",
    "reserve_X_within_U_condition", "vtc_upper_bound", "vtc_upper_bound_published",
    "vtc_upper_bound_peak", "vtc_counter_gap", "work_conserving_lower_bound",
    "adversarial_lower_bound_workload", "vtc_longest_output_counterexample_requests",
    "vtc_peak_counterexample_requests", "vtc_lift_counterexample_requests", "dlpm_deficit_invariant",
    "dlpm_deficit_invariant_published", "dlpm_gap_bound", "dlpm_gap_bound_published",
    "dlpm_longest_output_counterexample_requests", "d2lpm_gap_bound_per_worker",
    "d2lpm_candidate_global_bound", "d2lpm_counterexample_requests", "vtc_latency_bound_published",
    "evaluate", "params_from_workload",
]


def U_expr() -> sp.Expr:
    """``U = max(w_p L_in, w_q M)`` [service units], M the KV token capacity of the running
    batch (VTC, Sheng et al., OSDI'24, Sec. 4; DLPM, arXiv 2501.14312, reuses it)."""
    return sp.Max(w_p * L_in, w_q * M_kv)


def U_longest_output_expr() -> sp.Expr:
    """``max(w_p L_in, w_q O_max)`` with O_max the longest *output*: the largest charge of one
    prompt or one output. NOT the published U (an earlier misreading); kept for scale."""
    return sp.Max(w_p * L_in, w_q * O_max)


def X_expr(k: int | sp.Expr = k_conc) -> sp.Expr:
    """Upper bound on ``X`` [service units] under any admission rule: ``w_p L_in + k w_q O_max``,
    k = max concurrent running requests of one client on one instance."""
    return w_p * L_in + k * w_q * O_max


def X_reserve_expr() -> sp.Expr:
    """``X <= w_q M + max(w_p - w_q, 0) min(L_in, M)`` [service units] under *reserve*
    admission (a request is admitted only if its prompt and full output fit next to the
    prompts and full outputs of the running ones). Proof: ``proofs/admission.md`` (after an
    admission ``u_r + outstanding decode <= M``, and ``w_p u + w_q (M - u)`` is maximised
    at ``u = 0`` or ``u = min(L_in, M)``)."""
    return w_q * M_kv + sp.Max(w_p - w_q, 0) * sp.Min(L_in, M_kv)


def reserve_X_within_U_condition() -> sp.Boolean:
    """Exact condition for ``X_reserve <= U`` (hence ``2X <= 2U``: the published VTC bound
    and ``2(Q^u + X) <= 2(U + Q^u)`` for DLPM): ``w_p <= w_q`` or ``L_in >= M``.
    ``tests/test_theory_fairness.py::test_reserve_condition_is_exact`` checks the equivalence."""
    return sp.Or(w_p <= w_q, L_in >= M_kv)


def X_peak_expr(n: int | sp.Expr = n_run) -> sp.Expr:
    """``X <= w_p L_in + w_q (M H_n - n)`` [service units] under *peak* admission (VTC
    artifact / S-LoRA: admit while the projected peak ``max_i (sum_{j<=i} c_j + i r_i)`` of
    the running batch sorted by remaining output ``r_1 >= r_2 >= ...`` fits in M), with at
    most ``n`` requests running and every running request holding >= 1 token. ``H_n`` the
    n-th harmonic number. Proof: ``proofs/admission.md``."""
    return w_p * L_in + w_q * (M_kv * sp.harmonic(n) - n)


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
    ``k`` given, returns ``2 (w_p L_in + k w_q O_max)``. Proof: ``proofs/vtc_upper_bound.md``.
    Checked: ``tests/test_theory_fairness.py`` (z3 step, hypothesis on the reference sim).
    """
    return 2 * (X if k is None else X_expr(k))


def vtc_upper_bound_published() -> sp.Expr:
    """The published VTC bound ``2 U`` [service units], ``U = max(w_p L_in, w_q M)`` with M the
    batch's KV token capacity (:func:`U_expr`). Proved here under reserve admission when
    :func:`reserve_X_within_U_condition` holds; refuted under peak admission
    (:func:`vtc_peak_counterexample_requests`). ``proofs/admission.md``."""
    return 2 * U


def vtc_upper_bound_peak(n: int | sp.Expr = n_run) -> sp.Expr:
    """VTC gap bound under peak admission ``2 X_peak = 2 (w_p L_in + w_q (M H_n - n))``
    [service units] (proved: the 2X theorem with :func:`X_peak_expr`)."""
    return 2 * X_peak_expr(n)


def work_conserving_lower_bound(L: int | sp.Expr = L_in) -> sp.Expr:
    """Lower bound [service units] on the worst-case service gap of ANY work-conserving,
    non-preemptive scheduler on an instance holding M KV tokens: ``w_p L + w_q (M - L)`` for
    every prompt length ``1 <= L < M`` (the request of prompt L and output M - L fills the
    memory); with L = 1 it is ``w_q M - (w_q - w_p)``, the published ``w_q M`` up to one
    token. Attained by :func:`adversarial_lower_bound_workload`. Proof: ``proofs/lower_bound.md``."""
    return w_p * L + w_q * (M_kv - L)


def adversarial_lower_bound_workload(L: int, M: int, *, n_per_client: int = 3,
                                     block_size: int = 16, clients=("f", "g")) -> Workload:
    """The symmetric adversarial workload of ``proofs/lower_bound.md``.

    Two clients each send ``n_per_client`` identical requests (``L`` prompt tokens, ``M - L``
    output tokens, unique prompt units so nothing is cached) at t = 0; ``meta
    ["kv_capacity_tokens"] = M``. On an instance holding exactly M KV tokens any
    work-conserving scheduler admits one of them, say f's, and cannot admit g's until it
    finishes: over the first request's lifetime ``W_f - W_g = w_p L + w_q (M - L)`` while
    both stay backlogged.

    Raises:
        ValueError: unless ``1 <= L < M``.
    """
    if not 1 <= L < M:
        raise ValueError(f"need 1 <= L < M, got L={L}, M={M}")
    rows, unit = [], 1
    n_units = -(-L // block_size)
    for _ in range(n_per_client):
        for c in clients:
            rows.append((0.0, c, tuple(range(unit, unit + n_units)), L, M - L))
            unit += n_units
    wl = make_workload(rows, block_size=block_size, name=f"adversarial-lb-L{L}-M{M}",
                       source="fairsched.theory.fairness.adversarial_lower_bound_workload")
    wl.meta["kv_capacity_tokens"] = M
    wl.meta["expected_gap_units"] = {"w_p=1,w_q=2": L + 2 * (M - L)}
    return wl


def vtc_longest_output_counterexample_requests(L: int = 100, O: int = 50):  # noqa: E741
    """Abstract requests ``(arrival_step, client, uncached, output, lpm_key)`` on which VTC
    (one running request, FCFS among tied counters) yields ``|W_f - W_g| = 2(w_p L + w_q O)``.
    With ``w_p L = w_q O`` that is 4x the *longest-output* variant ``U_longest_output`` (so
    ``2 U_longest_output`` is no bound), but it does NOT refute the published 2U: one slot
    holds ``M = L + O`` tokens, ``U = w_q M`` and ``2U >= 2X``. ``proofs/vtc_upper_bound.md``."""
    return [(0, "g", L, O, 0), (0, "f", L, O, 0), (0, "f", L, O, 0), (0, "f", L, O, 0),
            (1, "g", L, O, 0), (1, "g", L, O, 0)]


def vtc_peak_counterexample_requests(M: int = 1000, n_f: int = 20, o_keep: int = 900,
                                     n_g: int = 3, o_g: int = 600):
    """Requests on which VTC with *peak* admission (KV capacity ``M``) exceeds the published
    ``2U``: f sends at step 0 ``n_f`` requests with prompt 1 and outputs
    ``floor((M - 1) / i) - 1`` (i = 1..n_f; together they just fit under the projected peak,
    with ``~M H_{n_f}`` outstanding decode tokens) plus one with output ``o_keep`` that cannot
    be admitted and keeps f backlogged; g sends ``n_g`` requests (prompt 1, output ``o_g``) at
    step 1 and waits for memory while f's batch decodes. ``proofs/admission.md``."""
    reqs = [(0, "f", 1, (M - 1) // i - 1, 0) for i in range(1, n_f + 1)]
    reqs.append((0, "f", 1, o_keep, 0))
    reqs += [(1, "g", 1, o_g, 0) for _ in range(n_g)]
    return reqs


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
    """The published sketch ``q in [-U, Q^u]`` (U with M the KV token capacity). Follows from
    :func:`dlpm_deficit_invariant` whenever ``X <= U`` (reserve admission and
    :func:`reserve_X_within_U_condition`); not in general (peak admission: ``X`` up to
    :func:`X_peak_expr`)."""
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
    """Published ``2 (U + Q^u)`` [service units], U with M the KV token capacity. Proved under
    reserve admission when :func:`reserve_X_within_U_condition` holds (``2(Q^u + X) <=
    2(Q^u + U)``); under peak admission the VTC counterexample applies to DLPM too."""
    return 2 * (U + Q_u)


def dlpm_longest_output_counterexample_requests(L: int = 100, O: int = 50):  # noqa: E741
    """Requests on which DLPM (Q^u = 1, one running request) yields ``|W_f - W_g| = 2(w_p L +
    w_q O)`` (= 400 for the defaults): above ``2(U_longest_output + Q^u) = 202`` but within
    the published ``2(U + Q^u) = 602`` (one slot: M = L + O = 150). LPM keys: g's first
    request matches best, then f's, then g's others."""
    return [(0, "g", L, O, 10), (0, "f", L, O, 5), (0, "f", L, O, 5), (0, "f", L, O, 5),
            (0, "g", L, O, 0), (0, "g", L, O, 0)]


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
                         k: int = 1, kv_capacity_tokens: float | None = None) -> dict:
    """Symbol values from a workload: ``L_in`` (longest prompt; an upper bound on uncached
    prefill), ``O_max`` (longest output), ``M`` (KV token capacity: ``kv_capacity_tokens`` or
    ``wl.meta["kv_capacity_tokens"]``; left out when neither is known), ``U =
    wl.max_cost(w_p, w_q, batch_tokens=M)`` and ``X <= w_p L_in + k w_q O_max``."""
    L = max(r.input_len for r in wl.requests)
    Omax = max(r.output_len for r in wl.requests)
    out = {w_p: w_p_val, w_q: w_q_val, L_in: L, O_max: Omax, X: w_p_val * L + k * w_q_val * Omax}
    M = kv_capacity_tokens if kv_capacity_tokens is not None else wl.meta.get("kv_capacity_tokens")
    if M is not None:
        out[M_kv] = M
        out[U] = wl.max_cost(w_p_val, w_q_val, batch_tokens=M)
    return out


def evaluate(expr, values: dict | None = None, *, workload: Workload | None = None, **kw) -> float:
    """Evaluate a bound for concrete numbers. ``values`` maps symbols (or their names) to
    numbers; with ``workload`` the workload's L_in, O_max, M (``kv_capacity_tokens=`` or the
    workload's meta), U, X (k from ``kw``, default 1) and w_p, w_q are filled in first.
    Keyword names: w_p, w_q, Q_u, Q_w, K, k, X, U, L_in, M (KV token capacity), O_max, N_run,
    n (clients), a (service rate), D_tau.

    Raises:
        TypeError: if a symbol is left without a value (the result is not a number).
    """
    subs = {}
    if workload is not None:
        subs.update(params_from_workload(workload, kw.get("w_p", 1.0), kw.get("w_q", 2.0),
                                         kw.get("k", 1), kw.get("kv_capacity_tokens")))
    names = {"w_p": w_p, "w_q": w_q, "Q_u": Q_u, "Q_w": Q_w, "K": K_workers, "k": k_conc,
             "X": X, "U": U, "L_in": L_in, "M": M_kv, "O_max": O_max, "N_run": n_run,
             "n": n_clients, "a": rate_a, "D_tau": D_tau}
    for key, v in kw.items():
        if key in names:
            subs[names[key]] = v
    for key, v in (values or {}).items():
        subs[names.get(key, key) if isinstance(key, str) else key] = v
    e = sp.sympify(expr).subs(subs)
    if U in e.free_symbols and {w_p, w_q, L_in, M_kv} <= set(subs):
        e = e.subs(U, U_expr().subs(subs))
    return float(e)
