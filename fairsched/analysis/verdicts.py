"""Bound verdicts: a run's measured service gap against every fairness bound that applies
to its policy, evaluated only through :mod:`fairsched.theory.fairness` (``proofs/README.md``).

- VTC (watermark lift): proved ``2X``; published ``2U`` with VTC's own ``U = max(w_p L_in,
  w_q M)``, M the instance's KV token capacity (``result.meta["kv_capacity_tokens"]``):
  proved under reserve admission when ``w_p <= w_q`` or ``L_in >= M`` (``proofs/admission.md``),
  a claim under peak admission (``result.meta["admission"] == "peak"``), where it is refuted.
- DLPM: proved ``2(Q^u + X)``; published ``2(U + Q^u)``, same status as VTC's ``2U``.
- several instances: each instance's queue policy is checked on its own service and
  its own queue's backlog (the single-instance theorem applies per worker); clients
  backlogged at *every* worker: ``sum_k`` of the per-worker bounds (``proofs/d2lpm_bound.md``
  Theorem A; same argument for VTC); clients backlogged *somewhere*: no bound is known
  (D2LPM's natural candidate ``2K(Q^u + Q^w + X)`` is refuted), the gap is reported; for
  ``dlpm-global`` (one deficit shared by the instances, which pull from each other's
  queues) ``2(Q^u + X_G)`` is proved, with ``X_G <= sum_k X_k`` (Theorem F).
- FCFS, LPM, LCF: no bound (LCF: the lift counterexample); the gap is reported.

``X`` is measured from the run (:func:`~fairsched.analysis.service_params.measured_x`)
and also bounded by ``w_p L_in + k w_q O_max`` (O_max the longest output) with ``k``
(:func:`~fairsched.analysis.service_params.concurrency_k`) the most requests of one client
running at once on one instance. Both bounds are reported. The gap is
:func:`fairsched.analysis.gap.max_service_gap` (per instance: on the instance's own
service and backlog, :mod:`fairsched.analysis.service_params`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from fairsched.analysis.gap import GapReport, in_seconds, max_gap_from_logs, max_service_gap
from fairsched.analysis.service_params import (
    concurrency_k,
    everywhere_backlog_log,
    has_instance_logs,
    instance_backlog_log,
    instance_service,
    measured_x,
    request_arrays,
)

__all__ = ["STATUS_CANDIDATE_VIOLATED", "STATUS_HOLDS", "STATUS_NA", "STATUS_NO_BOUND", "STATUS_PUBLISHED_VIOLATED",
           "STATUS_VACUOUS", "STATUS_VIOLATED", "Verdict", "check_run", "verdict_frame"]

STATUS_HOLDS = "holds"
STATUS_VIOLATED = "VIOLATED"
STATUS_PUBLISHED_VIOLATED = "published claim violated"
STATUS_CANDIDATE_VIOLATED = "refuted candidate exceeded"
STATUS_NO_BOUND = "no bound"
STATUS_NA = "not applicable"
STATUS_VACUOUS = "holds (vacuous)"


@dataclass
class Verdict:
    """One bound checked on one run.

    Attributes:
        run: run label (``policy`` or ``router/policy``).
        check: what is compared, e.g. ``"VTC proved 2X (X measured)"``.
        scope: which clients and which service: ``"instance 0"`` (one instance),
            ``"per instance, worst of K"`` (each instance's own service and queue, the
            instance with the largest gap / bound), ``"backlogged at every instance"`` and
            ``"backlogged anywhere"`` (cluster service).
        bound: the bound [service units] or None (no bound / not applicable).
        bound_expr: the formula with the numbers put in.
        measured: measured worst gap [service units] in that scope.
        ratio: measured / bound (None without a bound).
        status: ``holds``, ``VIOLATED`` (a proved bound failed: a bug or an unmet
            assumption), ``published claim violated`` (a published bound the kit
            does not prove for this run, e.g. under peak admission, is exceeded: a finding, not
            an error), ``refuted candidate exceeded``,
            ``no bound``, ``not applicable``, ``holds (vacuous)``.
        pair, window, interval: where the measured gap is attained (see
            :class:`~fairsched.analysis.gap.GapReport`).
        kind: ``proved``, ``published``, ``candidate`` or ``none``.
        note: anything the reader needs (assumptions, instance of the worst ratio).
    """

    run: str
    check: str
    scope: str
    bound: float | None
    bound_expr: str
    measured: float
    ratio: float | None
    status: str
    kind: str = "proved"
    pair: tuple[str, str] | None = None
    window: tuple[float, float] | None = None
    interval: tuple[float, float] | None = None
    note: str = ""
    params: dict = field(default_factory=dict)

    def to_frame(self):
        """This verdict as a one-row DataFrame (:func:`verdict_frame`)."""
        return verdict_frame([self])

    to_pandas = to_frame

    def _repr_html_(self) -> str:
        from fairsched.display import html_table

        return html_table(self.to_frame()[["run", "check", "scope", "bound", "measured", "ratio", "status"]])

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("pair", "window", "interval"):
            d[k] = list(d[k]) if d[k] is not None else None
        for k in ("bound", "measured", "ratio"):
            v = d[k]
            d[k] = None if v is None or not math.isfinite(v) else float(v)
        return d


def _status(kind: str, measured: float, bound: float | None, vacuous: bool) -> str:
    if bound is None:
        return STATUS_NO_BOUND
    ok = measured <= bound * (1 + 1e-9) + 1e-9
    if vacuous:
        return STATUS_VACUOUS
    if ok:
        return STATUS_HOLDS
    return {"proved": STATUS_VIOLATED, "published": STATUS_PUBLISHED_VIOLATED,
            "candidate": STATUS_CANDIDATE_VIOLATED}.get(kind, STATUS_VIOLATED)


def _verdict(run, check, scope, kind, bound, expr, gap: GapReport, note="", params=None) -> Verdict:
    vacuous = gap.n_windows == 0
    ratio = (gap.gap / bound) if bound not in (None, 0) else (None if bound is None else math.inf)
    if vacuous:
        note = (note + "; " if note else "") + "no two clients were backlogged together in this scope"
    return Verdict(run, check, scope, bound, expr, float(gap.gap), ratio, _status(kind, gap.gap, bound, vacuous),
                   kind, gap.pair, gap.window, gap.interval, note, dict(params or {}))


def instance_gaps(result, K: int) -> dict[int, GapReport]:
    """The service gap of each instance's queue, measured on that instance's own service and
    backlog (the scope of the per-instance bounds; ``proofs/service_model.md``):
    ``{instance: GapReport}``. With one instance, the run's gap. Times in seconds.
    The one place both the token check and the seconds check
    (:mod:`fairsched.analysis.seconds_check`) get these gaps from."""
    if K == 1:
        return {0: max_service_gap(result, per_pair=False)}
    clients = list(result.clients)
    gaps: dict[int, GapReport] = {}
    for j in range(K):
        st, sc, sa = instance_service(result, j, causal=True)
        gaps[j] = in_seconds(max_gap_from_logs(st, sc, sa, *instance_backlog_log(result, j), names=clients),
                             result.inst_seq_t)
    return gaps


def anywhere_gap(result) -> GapReport:
    """The service gap between clients backlogged at *some* instance, on cluster-wide
    service (``everywhere_backlog_log``; the scope of D2LPM's summed bound). Needs the
    per-instance logs of :func:`~fairsched.analysis.service_params.simulate_for_check`."""
    return in_seconds(max_gap_from_logs(result.inst_svc_seq, result.svc_client, result.svc_amount,
                                        *everywhere_backlog_log(result), names=list(result.clients)),
                      result.inst_seq_t)


def check_run(result, policy: str | None = None, params: dict | None = None) -> list[Verdict]:
    """Check every bound that applies to ``result`` (a run of ``policy``).

    Args:
        result: a :class:`~fairsched.sim.result.SimResult`; for several instances one from
            :func:`simulate_for_check` (with ``svc_instance``) gets per-instance checks.
        policy: the queue policy (``vtc``, ``dlpm``, ``lcf``, ``fcfs``, ``lpm``); default
            ``result.policy``.
        params: ``quantum`` (Q^u, DLPM), ``quantum_w`` (Q^w, D2LPM), ``w_p``, ``w_q``
            (service weights, default 1 and 2), ``router`` (default ``result.router``),
            ``label`` (run label).
    Returns:
        A list of :class:`Verdict` (never raises on degenerate runs: one client, nothing
        backlogged together, no bound for the policy).
    """
    from fairsched.theory import fairness as F

    params = dict(params or {})
    policy = policy or result.policy
    router = params.get("router", getattr(result, "router", "none") or "none")
    w_p, w_q = float(params.get("w_p", 1.0)), float(params.get("w_q", 2.0))
    label = params.get("label") or (policy if router in ("none", "") else f"{router}/{policy}")
    K = int(result.n_instances)
    wl = result.workload
    clients = list(result.clients)
    base = {"w_p": w_p, "w_q": w_q}
    if len(wl) == 0 or len(clients) < 2:
        return [Verdict(label, "service gap", "cluster", None, "", 0.0, None, STATUS_NA, "none",
                        note=f"{len(clients)} client(s): a service gap needs two clients")]
    _, _, inp, outp = request_arrays(result)
    L = float(inp.max())
    O_max = float(outp.max())  # longest output [tokens]
    meta = getattr(result, "meta", None) or {}
    M_kv = meta.get("kv_capacity_tokens")  # VTC's M: tokens that fit in the running batch
    admission = meta.get("admission", "reserve")
    U = float(wl.max_cost(w_p, w_q, batch_tokens=M_kv)) if M_kv else None
    from sympy import S as _S

    pub_proved = bool(U is not None and admission == "reserve" and F.reserve_X_within_U_condition().subs(
        {F.w_p: _S(w_p), F.w_q: _S(w_q), F.L_in: _S(L), F.M_kv: _S(M_kv)}))
    Q = params.get("quantum")
    if policy in ("dlpm", "dlpm-global") and Q is None:
        Q = 2048.0
    Qw = params.get("quantum_w")
    if router == "d2lpm" and Qw is None:
        Qw = 8192.0
    ks = concurrency_k(result)
    Xs = measured_x(result, w_p, w_q)
    per_instance = K == 1 or has_instance_logs(result)
    out: list[Verdict] = []
    # dlpm-global (one deficit shared by the instances) is DLPM on one instance; on several its
    # bound is Theorem F's, for the cluster (below)
    bounded = policy in ("vtc", "dlpm") or (policy == "dlpm-global" and K == 1)

    def proved(X: float) -> float:
        if policy == "vtc":
            return F.evaluate(F.vtc_upper_bound(), X=X)
        return F.evaluate(F.dlpm_gap_bound(), X=X, Q_u=Q)

    def proved_expr(X: float, how: str) -> str:
        return (f"2X = 2*{X:g} ({how})" if policy == "vtc" else f"2(Q^u + X) = 2({Q:g} + {X:g}) ({how})")

    def published() -> tuple[float, str]:
        u = f"U = max(w_p L_in, w_q M) = max({w_p:g}*{L:g}, {w_q:g}*{M_kv:g})"
        if policy == "vtc":
            return F.evaluate(F.vtc_upper_bound_published(), U=U), f"2U = 2*{U:g} ({u})"
        return F.evaluate(F.dlpm_gap_bound_published(), U=U, Q_u=Q), f"2(U + Q^u) = 2({U:g} + {Q:g}) ({u})"

    name = {"vtc": "VTC", "dlpm": "DLPM", "dlpm-global": "DLPM"}.get(policy, policy.upper())
    # ---- per instance: the queue policy's own guarantee
    if per_instance:
        gaps = instance_gaps(result, K)
        scope = "instance 0" if K == 1 else f"per instance, worst of {K}"
        if bounded:
            rows = []
            for how in ("k", "measured"):
                best = None
                for j, g in gaps.items():
                    k = max(ks.get(j, 0), 1)
                    X = w_p * L + k * w_q * O_max if how == "k" else Xs.get(j, 0.0)
                    if how == "measured" and X <= 0:
                        continue
                    b = proved(X)
                    r = g.gap / b if b > 0 else 0.0
                    if best is None or r > best[0]:
                        best = (r, j, g, X, b, k)
                if best is None:
                    continue
                _, j, g, X, b, k = best
                what = (f"X = w_p L_in + k w_q O_max, k = {k}" if how == "k" else "X measured")
                short = f"k={k}" if how == "k" else "X measured"
                note = ("" if K == 1 else f"worst ratio on instance {j}") + (
                    "; VTC needs the watermark lift (fairsched's VTC has it)" if policy == "vtc" else "")
                rows.append(_verdict(label, f"{name} proved {'2X' if policy == 'vtc' else '2(Q^u+X)'} ({short})",
                                     scope, "proved", b, proved_expr(X, what), g, note.strip("; "),
                                     {**base, "X": X, "k": k, "Q_u": Q, "instance": j}))
            jw = max(gaps, key=lambda j: gaps[j].gap)
            if U is not None:
                pb, pexpr = published()
                note = (f"proved here for reserve admission with w_p <= w_q or L_in >= M (2X <= 2U; "
                        f"proofs/admission.md); M = {M_kv:,.0f} KV tokens" if pub_proved else
                        f"a claim under {admission} admission: refuted under peak admission (outstanding decode up "
                        f"to M H_N; proofs/admission.md); exceeding it is a finding, not an error; M = {M_kv:,.0f} KV tokens")
                rows.append(_verdict(label, f"{name} published {'2U' if policy == 'vtc' else '2(U+Q^u)'}", scope,
                                     "proved" if pub_proved else "published", pb, pexpr, gaps[jw], note,
                                     {**base, "U": U, "M": M_kv, "Q_u": Q, "instance": jw, "admission": admission}))
            out += rows
        else:
            jw = max(gaps, key=lambda j: gaps[j].gap)
            why = {"lcf": "LCF has no counter lift; the lift counterexample (proofs/vtc_upper_bound.md) "
                          "shows no O(U) bound",
                   "dlpm-global": "one deficit shared by all instances: no per-instance bound (Theorem F "
                                  "bounds clients backlogged somewhere, cluster row)",
                   "fcfs": "FCFS has no fairness guarantee", "lpm": "LPM has no fairness guarantee "
                   "(a client with a cached prefix can starve the others)"}.get(policy, "no bound known")
            out.append(_verdict(label, "service gap", scope, "none", None, "", gaps[jw],
                                why + ("" if K == 1 else f"; worst instance {jw}"), {**base, "instance": jw}))
    # ---- cluster
    if K > 1:
        cluster = max_service_gap(result, per_pair=False)
        if bounded and per_instance:
            g_all = anywhere_gap(result)
            Xsum = sum(max(Xs.get(j, 0.0), 0.0) for j in range(K))
            b = (F.evaluate(F.vtc_upper_bound(), X=Xsum) if policy == "vtc"
                 else F.evaluate(F.d2lpm_gap_bound_per_worker(), K=K, Q_u=Q, X=Xsum / K))
            expr = (f"sum_k 2X_k = 2*{Xsum:g}" if policy == "vtc" else f"2K(Q^u + mean X_k) = 2*{K}({Q:g} + {Xsum / K:g})")
            out.append(_verdict(label, f"{name} per-worker sum", "backlogged at every instance",
                                "proved", b, expr, g_all,
                                "proofs/d2lpm_bound.md Theorem A (sum of the per-worker bounds)",
                                {**base, "K": K, "Q_u": Q, "X_sum": Xsum}))
        if policy == "dlpm-global":
            from fairsched.theory.d2lpm import d2lpm_global_gap_bound

            Xsum = sum(max(Xs.get(j, 0.0), 0.0) for j in range(K))
            b = F.evaluate(d2lpm_global_gap_bound(), Q_u=Q, X=Xsum)
            out.append(_verdict(label, "DLPM shared deficit 2(Q^u + X_G)", "backlogged anywhere", "proved", b,
                                f"2(Q^u + sum_k X_k) = 2({Q:g} + {Xsum:g})", cluster,
                                "proofs/d2lpm_bound.md Theorem F (X_G <= sum_k X_k), any router",
                                {**base, "K": K, "Q_u": Q, "X_sum": Xsum}))
        elif router == "d2lpm" and policy == "dlpm":
            kmax = max(max(ks.values()), 1)
            X = w_p * L + kmax * w_q * O_max
            b = F.evaluate(F.d2lpm_candidate_global_bound(), K=K, Q_u=Q, Q_w=Qw, X=X)
            out.append(_verdict(label, "D2LPM candidate 2K(Qu+Qw+X)", "backlogged anywhere", "candidate",
                                b, f"2*{K}({Q:g} + {Qw:g} + {X:g})", cluster,
                                "refuted candidate (proofs/d2lpm_bound.md): no bound exists for clients "
                                "backlogged somewhere under any routing charge, the router's 'uncached' and "
                                "'full' included (Theorem D); shown for scale", {**base, "K": K, "Q_u": Q, "Q_w": Qw, "X": X}))
        else:
            out.append(_verdict(label, "service gap", "backlogged anywhere", "none", None, "", cluster,
                                "no bound for clients backlogged at some instance (routing decides where work "
                                "waits)", {**base, "K": K}))
    from fairsched.display import Table

    return Table(out, verdict_frame, title=f"bound verdicts: {label}")


def verdict_frame(verdicts: list[Verdict]):
    """The verdicts as a pandas DataFrame (one row each; pair / window as text)."""
    import pandas as pd

    rows = []
    for v in verdicts:
        d = v.to_dict()
        d["pair"] = " > ".join(v.pair) if v.pair else None
        d["window"] = f"{v.window[0]:.2f}-{v.window[1]:.2f} s" if v.window else None
        d["interval"] = f"{v.interval[0]:.2f}-{v.interval[1]:.2f} s" if v.interval else None
        rows.append(d)
    cols = ["run", "check", "scope", "bound", "measured", "ratio", "status", "pair", "window", "interval", "kind",
            "bound_expr", "note"]
    return pd.DataFrame(rows, columns=cols)
