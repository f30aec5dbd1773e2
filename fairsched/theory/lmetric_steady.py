"""The corrected LMetric hotspot model: steady state with completions, queued prefill, the
``+1``, replication to new holders, and the routers' lowest-index tie-break.

Proofs: ``proofs/lmetric_harm_validation.md`` (§2-§3: iterations, replication, the fixed
point; §4: the tie-break). Units: tokens, requests, requests/s, seconds; offered load in
Erlangs (requests in the system on average).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import sympy as sp

from .cost import default_cost_coefficients
from .lmetric_transient import LOAD_FORMS, PREFILL_SEEN, transient_load, window_mean_min
from .lmetric_transient import prefill_seen_share as seen_share

__all__ = ["HARM_ABS_S", "HARM_REL", "HOLDER_STREAMS", "HOTSPOT_RATIO", "classify_steady", "d_a_sym", "erlang_b",
           "floored_poisson_mean", "horizon_iteration", "iteration_time", "ordered_hunt_loads", "unbalanced_holders", "request_work", "rho_sym", "steady_state_hotspot", "tie_break_loads"]

rho_sym = sp.Symbol("rho", nonnegative=True)  # utilisation: instance-seconds of work per second
d_a_sym = sp.Symbol("d_a", positive=True)  # fixed cost of one iteration [s]
HARM_REL = 0.10  # proofs/lmetric_harm_validation.md §1: harmful = > 10 % and > 5 ms more mean TTFT
HARM_ABS_S = 0.005
HOTSPOT_RATIO = 1.25
HOLDER_STREAMS = ("fluid", "poisson")  # the holders' class stream: its mean (§3) or its Poisson count (§3.4)


def iteration_time() -> sp.Expr:
    """Mean iteration length ``tau = d_a / (1 - rho)`` [s] of an instance kept busy at
    utilisation ``rho < 1`` (``rho`` = arrival rate x per-request work, :func:`request_work`):
    over a busy period of length T with n iterations, ``T = n d_a + rho T``
    (``proofs/lmetric_harm_validation.md`` §2)."""
    return d_a_sym / (1 - rho_sym)


def request_work(new, cached, out, k) -> float:
    """Instance-seconds one request needs besides the per-iteration fixed cost: its prefill
    ``a + b n + c n (h + n/2)`` plus ``out`` decode shares ``b_d + c_d (h + n + out/2)``
    (``k``: cost coefficients as in :func:`fairsched.theory.cost.default_cost_coefficients`)."""
    pre = 0.0 if new <= 0 else k["prefill_a_s"] + new * (k["prefill_b_s_per_tok"]
                                                       + k["prefill_c_s_per_tok2"] * (cached + new / 2))
    return pre + out * (k["decode_b_s_per_seq"] + k["decode_c_s_per_ctx_tok"] * (cached + new + out / 2))


def _prefill(new, cached, k) -> float:
    return request_work(new, cached, 0, k)


def horizon_iteration(flows, d_a: float, t_elapsed: float | None = None) -> float | None:
    """Mean iteration length ``tau`` [s] of an instance fed by ``flows`` (one tuple per
    traffic kind: ``(rate [req/s], prefill_s, out [tokens], step_s)``, ``prefill_s`` its
    prefill time, ``step_s`` its decode cost per sequence per iteration), ``t_elapsed``
    seconds after the onset of these rates on an empty instance
    (``proofs/lmetric_harm_validation.md`` §3.2).

    One iteration runs the fixed cost, one decode step of every decoding sequence and the
    prefill of the arrivals during it: ``tau = d_a + sum_k D_k step_k + tau sum_k rate_k prefill_k``.
    In the steady state ``D_k = rate_k out_k tau`` (Little over the ``out_k`` decode
    iterations), which gives ``d_a / (1 - rho)``; a sequence decoding at time ``t`` arrived
    after the onset, so ``D_k <= rate_k t`` (the finite-horizon batch), and
    ``tau = (d_a + sum_k step_k rate_k min(out_k tau, t)) / (1 - P)``, ``P = sum_k rate_k prefill_k``.
    The right-hand side is concave, increasing and bounded in ``tau``, so the root is unique;
    it is found exactly segment by segment (the classes capped first are those with the
    longest decode ``out_k``). ``t_elapsed`` None: the steady state.

    Returns None where no finite ``tau`` exists (steady: ``rho >= 1``; finite horizon: ``P >= 1``).
    """
    flows = [f for f in flows if f[0] > 0]
    P = sum(r * f for r, f, _, _ in flows)
    rho = P + sum(r * o * c for r, _, o, c in flows)
    if t_elapsed is None or not math.isfinite(t_elapsed):
        return None if rho >= 1 else d_a / (1 - rho)
    if P >= 1:
        return None
    t = max(0.0, float(t_elapsed))
    order = sorted((f for f in flows if f[2] * f[3] > 0), key=lambda f: -f[2])  # capped first: longest decode
    for j in range(len(order) + 1):  # capped: order[:j]; tau between their breakpoints t/out
        capped, free = order[:j], order[j:]
        den = 1 - P - sum(r * o * c for r, _, o, c in free)
        if den <= 0:
            continue
        tau = (d_a + sum(r * c * t for r, _, _, c in capped)) / den
        lo = t / capped[-1][2] if capped else 0.0
        hi = t / free[0][2] if free else math.inf
        if lo - 1e-12 <= tau <= hi + 1e-12:
            return tau
    return None  # not reached: the last segment (all capped) has den = 1 - P > 0


# --- the holders' own stream: a Poisson count held at the others' level (§3.4) --------------
def floored_poisson_mean(A: float, floor: float) -> float:
    """Mean requests on a holder whose class stream alone holds ``X ~ Poisson(A)`` (``A``
    [Erlangs] = class rate x sojourn) and which the other traffic tops up whenever it falls
    below ``floor`` [requests] (``proofs/lmetric_harm_validation.md`` §3.4): the chain is ``X``
    conditioned on ``X >= k``, ``E[X | X >= k] = k + sum_j j t_j / sum_j t_j`` with ``t_0 = 1``,
    ``t_j = t_(j-1) A/(k + j)`` (= ``A P(X >= k-1)/P(X >= k)``). A fractional floor mixes
    ``k = floor(floor)`` and ``k + 1`` by its fractional part. ``floor <= 0``: ``A``. The
    result is at least ``max(A, floor)`` and non-decreasing in both arguments.
    Raises ValueError: ``A < 0`` or ``floor`` not finite."""
    if A < 0 or not math.isfinite(floor):
        raise ValueError(f"floored_poisson_mean needs A >= 0 and a finite floor (got A={A}, floor={floor})")

    def at(k: int) -> float:
        if k <= 0 or A > k + 10 * math.sqrt(A) + 10:  # P(X < k) < 1e-20: the floor never binds
            return float(A)
        t, s0, s1, j = 1.0, 1.0, 0.0, 0
        while j < A - k + 12 * math.sqrt(A) + 30 or t > 1e-16 * s0:
            j += 1
            t *= A / (k + j)
            s0, s1 = s0 + t, s1 + j * t
        return k + s1 / s0

    k0 = math.floor(floor)
    f = floor - k0
    return (1 - f) * at(k0) + f * at(k0 + 1) if f > 0 else at(k0)


def unbalanced_holders(A_c: float, B_m: float, B_o: float, Q_m: float, Q_o: float, L_cold: float, m: int,
                       n: int) -> tuple[float, float]:
    """Mean loads ``(B_M, B_Mbar)`` [requests] when each of the ``m`` holders runs the class's
    own Poisson stream (``A_c`` Erlangs per holder) and the other traffic tops a holder up to the
    floor where its score equals the others' (``proofs/lmetric_harm_validation.md`` §3.4):
    ``floor + 1 = kappa (B_Mbar + 1)``, ``kappa = (Q_o + L_cold)/(Q_m + L_cold)``;
    ``B_M = floored_poisson_mean(A_c, floor)``; what the holders take beyond the fluid state
    (``B_m``, ``B_o``) leaves the ``n - m`` others. ``floor = F(floor)`` with ``F``
    non-increasing, so the root is unique (bisection on ``[-1, F(-1)]``)."""
    kappa = (Q_o + L_cold) / (Q_m + L_cold)

    def F(ell):
        b_o = max(0.0, B_o - m * (floored_poisson_mean(A_c, ell) - B_m) / (n - m))
        return kappa * (b_o + 1) - 1, b_o

    lo, hi = -1.0, F(-1.0)[0]
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid < F(mid)[0] else (lo, mid)
    return floored_poisson_mean(A_c, hi), F(hi)[1]


# --- the tie-break: ordered hunting (§4) ---------------------------------------------------
def erlang_b(s: int, A: float) -> float:
    """Erlang's loss probability ``B(s, A)`` of ``s`` servers offered ``A`` Erlangs:
    ``B(0, A) = 1``, ``B(s, A) = A B(s-1, A) / (s + A B(s-1, A))`` (insensitive to the
    holding-time distribution). Raises ValueError: ``s < 0`` or ``A < 0``."""
    if s < 0 or A < 0:
        raise ValueError(f"erlang_b needs s >= 0 and A >= 0 (got s={s}, A={A})")
    b = 1.0
    for j in range(1, int(s) + 1):
        b = A * b / (j + A * b)
    return b


def ordered_hunt_loads(A: float, n: int) -> list[float]:
    """Mean requests on each of ``n`` instances (index order) when Poisson arrivals of ``A``
    Erlangs take the first free *slot* in the order ``(level 1: instances 0..n-1), (level 2:
    0..n-1), ...``: join-the-shortest-queue with ties to the lowest index, as every fairsched
    router breaks them. Slot ``s`` (1-based) is busy with probability ``A (B(s-1, A) - B(s, A))``
    (the first ``s`` slots form an Erlang loss system that overflows to the rest), so instance
    ``i`` holds ``b_i = sum_l A (B(l n + i, A) - B(l n + i + 1, A))``; ``sum_i b_i = A``.
    ``proofs/lmetric_harm_validation.md`` §4. Returns a list of ``n`` floats [requests]."""
    if n < 1:
        raise ValueError(f"ordered_hunt_loads needs n >= 1 (got {n})")
    A = max(0.0, float(A))
    loads = [0.0] * n
    if A == 0.0:
        return loads
    b_prev, s = 1.0, 0
    s_max = A + 12.0 * math.sqrt(A) + 2 * n + 30  # beyond it B(s, A) < 1e-12 of A
    while s < s_max:
        s += 1
        b = A * b_prev / (s + A * b_prev)
        loads[(s - 1) % n] += A * (b_prev - b)
        b_prev = b
    return loads


def tie_break_loads(A: float, n: int, holder_share: Sequence[float], hot_per_holder: float) -> tuple[float, float]:
    """Mean load ``(B_M, B_Mbar)`` [requests] of the holders and of the other instances when
    the whole traffic (``A`` Erlangs) joins the shortest queue with ties to the lowest index
    (:func:`ordered_hunt_loads`) and the class (``hot_per_holder`` Erlangs on each holder)
    can only go to its holders. ``holder_share[i]`` in [0, 1]: the share of the time instance
    ``i`` holds the class. A holder the order leaves below the class's own load carries that
    load; the excess is taken from the last other instances in the order (they receive the
    traffic the holders now keep). ``proofs/lmetric_harm_validation.md`` §4."""
    w = [min(1.0, max(0.0, float(v))) for v in holder_share]
    if len(w) != n:
        raise ValueError(f"holder_share has {len(w)} entries for n = {n} instances")
    b = ordered_hunt_loads(A, n)
    bb = [bi + wi * max(0.0, hot_per_holder - bi) for bi, wi in zip(b, w, strict=True)]
    excess = sum(bb) - sum(b)
    for i in reversed(range(n)):  # the last instances in the order give the excess back
        take = min(excess, (1 - w[i]) * bb[i])
        bb[i] -= take
        excess -= take
        if excess <= 0:
            break
    m, o = sum(w), n - sum(w)
    b_m = sum(wi * bi for wi, bi in zip(w, bb, strict=True)) / m if m > 0 else 0.0
    b_o = sum((1 - wi) * bi for wi, bi in zip(w, bb, strict=True)) / o if o > 0 else 0.0
    return b_m, b_o


def steady_state_hotspot(x_val, m0, n, qps, L, u, out, L_cold, out_cold, n_hot, coeffs=None,
                         holder_share: Sequence[float] | None = None, t_elapsed: float | None = None,
                         holder_stream: str = "fluid", load_form: str = "steady",
                         window: tuple[float, float] | None = None, residue: float = 0.0,
                         residue_age: float = math.inf, prefill_seen: str = "mean") -> dict:
    """The corrected hotspot model (``proofs/lmetric_harm_validation.md`` §2-§4).

    Args:
        x_val: class share of arrivals; m0: holders |M| (instances caching its prefix);
        n: instances N; qps: arrival rate [req/s]; L, u: class prompt and its uncached part
        on a holder [tokens]; out: class output [tokens]; L_cold, out_cold: mean prompt and
        output of the other traffic [tokens]; n_hot: class arrivals over which the one-off
        replication cost is spread; coeffs: cost coefficients (A100 roofline by default);
        holder_share: per instance (index order, ``n`` values in [0, 1]) the share of the
        time it holds the class's prefix, for the tie-break (§4); None = placement unknown,
        no tie-break term; t_elapsed: seconds since the class's onset (the
        finite-horizon batch, §3.2: no instance decodes more requests than arrived since
        then; None = the steady state); holder_stream: ``"fluid"`` (the detector's form: each
        holder carries the class's mean) or ``"poisson"`` (§3.4: its Poisson count, topped up
        by the other traffic to the others' level; changes the ratio, never a TTFT);
        load_form: ``"steady"`` (each instance's load is Little's ``r S``) or ``"transient"``
        (§3.5: the window mean of ``r min(S, t)`` since the onset plus the ``residue``
        [requests per instance] present at the onset, leaving within the other traffic's
        sojourn, and every instance's iteration the finite-horizon batch at ``t_elapsed``, §3.2);
        window: ``(t_a, t_b)`` [s since the onset], the window's covered span, needed with
        ``"transient"`` (``t_elapsed`` None: its middle); residue_age: seconds over which the
        residue arrived (the onset's time: the trace starts empty); prefill_seen: ``"mean"`` (a decode
        sees its instance's mean prefill rate) or ``"jsq"`` (§3.7: ``lmetric_transient.prefill_seen_share``
        of it, holders and others each balanced among themselves; sojourns and loads, never a TTFT).

    Returns a dict: ``holders`` m* (after LMetric's own replication), ``rho_M``,
    ``rho_Mbar``, ``rho_all``, ``ratio`` (predicted ``(B_M + 1)/(B_Mbar + 1)``),
    ``ttft_lmetric``, ``ttft_leastload`` (predicted class mean TTFT [s]), ``regime``,
    ``tie_ratio`` (the tie-break's factor on the filled ratio, 1 without ``holder_share``), and
    ``target_holders``: the fewest holders at which they are no busier than the cluster
    (``x QPS w_hit / m <= rho_all``), the mitigation's target; ``other_on_holders`` [req/s per
    holder]: the other traffic the holders take in the filled state (0: concentrated), and the
    state's ``B_M``, ``B_Mbar`` [requests], ``Q_M``, ``Q_Mbar`` [queued prefill tokens] (None
    where no steady state exists).

    The filled state (§3.1) solves the other traffic's equal-score condition
    ``(Q_M + L_o)(B_M + 1) = (Q_Mbar + L_o)(B_Mbar + 1)`` for the other rate on a holder, with
    the holders' arrival mix (class + other) in ``B_M`` and ``Q_M``; the difference of the
    two sides is increasing in that rate, so bisection finds the unique root.
    """
    if holder_stream not in HOLDER_STREAMS:
        raise ValueError(f"holder_stream must be one of {HOLDER_STREAMS}, got {holder_stream!r}")
    if load_form not in LOAD_FORMS or (load_form == "transient" and window is None):
        raise ValueError(f"load_form must be one of {LOAD_FORMS} (transient: with a window), got {load_form!r}")
    if prefill_seen not in PREFILL_SEEN:
        raise ValueError(f"prefill_seen must be one of {PREFILL_SEEN}, got {prefill_seen!r}")
    if load_form == "transient" and t_elapsed is None:
        t_elapsed = (window[0] + window[1]) / 2
    k = coeffs or default_cost_coefficients()
    xb = 1 - x_val
    w_hit = request_work(u, L - u, out, k)
    w_cold = request_work(L_cold, 0, out_cold, k)
    f_u, f_L = _prefill(u, L - u, k), _prefill(L, 0, k)
    f_o = _prefill(L_cold, 0, k)
    c_hot = k["decode_b_s_per_seq"] + k["decode_c_s_per_ctx_tok"] * (L + out / 2)  # one decode step [s]
    c_cold = k["decode_b_s_per_seq"] + k["decode_c_s_per_ctx_tok"] * (L_cold + out_cold / 2)

    def iteration(a_c, o, seen=1.0):  # (tau, capped) of an instance with class rate a_c and other rate o (§2,
        # §3.2): the steady state where it exists (rho < 1), else the finite-horizon batch; tau None: no state;
        # seen < 1: the iteration a decoding request sees, with that share of the prefills (§3.7)
        flows = [(a_c, seen * f_u, out, c_hot), (o, seen * f_o, out_cold, c_cold)]
        if load_form == "transient":  # §3.5: the batch the window sees, every instance
            return horizon_iteration(flows, k["decode_a_s"], t_elapsed), True
        tau = horizon_iteration(flows, k["decode_a_s"])
        return (tau, False) if tau is not None else (horizon_iteration(flows, k["decode_a_s"], t_elapsed), True)

    def sojourn(tau, f, o, capped, tau_d=None):  # time a request stays; saturated: at most the time since the
        # onset (§3.2); tau_d: the iteration its decode sees (§3.7; None: tau)
        s = 1.5 * tau + f + o * (tau if tau_d is None else tau_d)
        return min(s, max(0.0, t_elapsed)) if capped else s

    rho_all = qps / n * (x_val * w_hit + xb * w_cold)
    tau_all = iteration(x_val * qps / n, xb * qps / n)[0]
    if tau_all is None:  # the cluster itself is overloaded: no router keeps up
        tau_all = math.inf
    lam_hot_inst = x_val * qps / n

    def miss_cost(instances):  # one doc prefill per new holder + class arrivals that wait for it
        return instances * (f_L - f_u) * (1 + lam_hot_inst * f_L / 2)

    ttft_ll = 1.5 * tau_all + f_u + miss_cost(n - m0) / max(1.0, n_hot)

    def station(a_c, o, group=1):  # an instance with class rate a_c and other rate o, balanced by the score
        # among `group` instances: (B, Q, tau) or None if saturated
        tau, capped = iteration(a_c, o)
        if tau is None:
            return None
        tau_d, B = tau, None
        for _ in range(4 if prefill_seen == "jsq" and group > 1 else 1):  # §3.7: B -> kappa(B) -> tau_d -> B
            if B is not None:
                tau_d = iteration(a_c, o, seen_share(B, group))[0]
            if load_form == "transient":  # §3.5: the M/G/inf transient since the onset, window mean
                s_o = sojourn(tau, f_o, out_cold, False, tau_d)
                B = transient_load([(a_c, sojourn(tau, f_u, out, False, tau_d)), (o, s_o)], *window, residue, s_o, residue_age)
            else:  # Little (capped: arrivals)
                B = a_c * sojourn(tau, f_u, out, capped, tau_d) + o * sojourn(tau, f_o, out_cold, capped, tau_d)
        return B, tau * (a_c * u + o * L_cold), tau  # queued prefill: tokens arriving within one iteration

    def fill(m):  # §3.1: the other traffic joins the holders until its score is equal on both sides
        a_c, o_tot = x_val * qps / m, xb * qps
        o_max = o_tot / m if m < n else 0.0

        def gap(o):  # cold request's score on a holder minus on a non-holder; > 0: it avoids the holders
            hm = station(a_c, o, m)
            ho = station(0.0, (o_tot - m * o) / (n - m), n - m) if m < n else (0.0, 0.0, 0.0)
            if hm is None:
                return math.inf, hm, ho
            if ho is None:
                return -math.inf, hm, ho
            return (hm[1] + L_cold) * (hm[0] + 1) - (ho[1] + L_cold) * (ho[0] + 1), hm, ho

        g0 = gap(0.0)
        if g0[0] >= 0 or m >= n:
            return 0.0, g0[1], g0[2]
        lo, hi = 0.0, o_max
        for _ in range(60):  # bisection: gap is increasing in o (holders busier, others less busy)
            mid = (lo + hi) / 2
            if gap(mid)[0] < 0:
                lo = mid
            else:
                hi = mid
        return lo, *gap(lo)[1:]  # gap(lo) < 0: the holders are not saturated there

    def tie_ratio(m):  # §4: lowest-index ties where the class fits in its holders' share (x <= m/N)
        if holder_share is None or not math.isfinite(tau_all) or x_val * n > m:
            return 1.0
        t_hot = 1.5 * tau_all + f_u + out * tau_all
        t_cold = 1.5 * tau_all + _prefill(L_cold, 0, k) + out_cold * tau_all
        A = qps * (x_val * t_hot + xb * t_cold)
        b_m, b_o = tie_break_loads(A, n, holder_share, x_val * qps * t_hot / max(m, 1e-9))
        return (b_m + 1) / (b_o + 1)

    m = max(1, int(m0))
    rho_m = rho_o = rho_all
    o, hm, ho = 0.0, None, None
    while True:
        if m >= n:  # every instance holds the class
            ratio, ttft_lm = 1.0, 1.5 * tau_all + f_u
            break
        o, hm, ho = fill(m)
        if hm is None:  # the class alone saturates its holders: it replicates
            m += 1
            continue
        B_m, Q_m, tau_m = hm
        if ho is None:  # every instance is saturated (the cluster is overloaded): queues dominate the score,
            h = min(1.0, x_val * n / m)  # (Q_M (B_M + 1) = Q_o (B_o + 1)), the limit of the filled ratio
            ratio, ttft_lm = L_cold / (h * u + (1 - h) * L_cold), 1.5 * tau_all + f_u
            break
        B_o, Q_o, tau_o = ho
        if x_val * n > m and (Q_m + u) * (B_m + 1) > (Q_o + L) * (B_o + 1):  # the product diverts the class:
            # it replicates (on the benign side, x <= m/N, the class fits in its holders' share and stays, §3)
            m += 1
            continue
        a_c, b = x_val * qps / m, (xb * qps - m * o) / (n - m)
        if holder_stream == "poisson":  # §3.4: the class's own Poisson count on each holder
            tau_c, capped = iteration(a_c, o)
            A_c = (a_c * window_mean_min(sojourn(tau_c, f_u, out, False), *window) if load_form == "transient"
                   else a_c * sojourn(tau_c, f_u, out, capped))  # §3.5: M/G/inf from empty, Poisson of the transient mean
            B_m, B_o = unbalanced_holders(A_c, B_m, B_o, Q_m, Q_o, L_cold, m, n)
            hm, ho = (B_m, *hm[1:]), (B_o, *ho[1:])
        ratio = (B_m + 1) / (B_o + 1)
        rho_m, rho_o = a_c * w_hit + o * w_cold, b * w_cold
        if o > 0:  # filled: the holders share the cluster's traffic (§3.1), the class's TTFT as in §3
            ttft_lm = 1.5 * tau_all + f_u
            if x_val * n <= m:  # the benign side: ties to the lowest index (§4)
                ratio *= tie_ratio(m)
        else:  # concentrated: the holders serve the class alone
            ttft_lm = 1.5 * tau_m + f_u
        break
    ttft_lm += miss_cost(m - m0) / max(1.0, n_hot)
    if math.isfinite(ttft_ll) and ttft_lm > ttft_ll * (1 + HARM_REL) and ttft_lm - ttft_ll > HARM_ABS_S:
        regime = "harmful"
    else:
        regime = "hotspot" if ratio > HOTSPOT_RATIO else "benign"
    # fewest holders no busier than the cluster: x QPS w_hit / m <= rho_all (the mitigation's target)
    target = n if rho_all <= 0 else min(n, max(int(m0), math.ceil(x_val * qps * w_hit / rho_all - 1e-9)))
    return {"holders": m, "target_holders": target, "rho_M": rho_m, "rho_Mbar": rho_o, "rho_all": rho_all, "ratio": ratio,
            "ttft_lmetric": ttft_lm, "ttft_leastload": ttft_ll, "regime": regime, "tie_ratio": tie_ratio(m),
            "other_on_holders": o, "B_M": hm[0] if hm else None, "B_Mbar": ho[0] if ho else None,
            "Q_M": hm[1] if hm else None, "Q_Mbar": ho[1] if ho else None,
            "holders_initial": m0, "n_hot": max(1.0, n_hot), "replication_per_holder_s": miss_cost(1),
            "load_form": load_form}


def classify_steady(*args, **kw) -> str:
    """The regime of :func:`steady_state_hotspot` (``"benign"``, ``"hotspot"``, ``"harmful"``)."""
    return steady_state_hotspot(*args, **kw)["regime"]
