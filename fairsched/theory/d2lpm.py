"""D2LPM for clients backlogged *somewhere*: the hole, its periodic regime, and the variant.

``proofs/d2lpm_bound.md``. All runs use the stand-alone reference model
:func:`fairsched.theory._reference.simulate_d2lpm` (abstract requests, steps).

- :func:`d2lpm_hole_requests`: the finite construction of issue 10 (2 workers, one running
  request each, prompts L = 20, outputs 10, Q^u = 40, Q^w = 400; f: 5 requests at step 0 then
  one every 5 steps, one prefix; g: ``2H/10 + 50`` requests at step 0 over two prefixes).
- :func:`routing_balance_bound`, :func:`max_routing_imbalance`: the router's per-client balance
  ``Q^w + c_max`` for ``charge="upfront"`` (whole cost at routing), proved, and measured.
- :func:`d2lpm_rate_requests`: the rate construction (``proofs/d2lpm_bound.md``, Theorem D):
  the gap grows linearly in the burst size under *every* routing charge, because a worker
  serving prompt-heavy requests delivers far more service units per step than one serving
  decode-heavy requests, and the cache steers one client's decode-heavy requests to one worker.
- :func:`d2lpm_global_gap_bound`, :func:`d2lpm_global_gap`: the variant with a *global* worker
  deficit (one DLPM deficit per client shared by all workers; a worker with no local request
  of a client with a positive deficit pulls one from another worker's queue): Theorem F,
  ``2 (Q^u + X_G)`` for clients backlogged somewhere under any router, proved.
- :func:`periodic_certificate`: a computer-assisted proof that the gap is unbounded: it finds
  steps ``t1 < t2`` at which the simulator's whole state, up to the number of g's queued
  requests, is the same, with both clients backlogged somewhere throughout and g ahead by
  ``delta > 0`` more at t2 than at t1. The model is deterministic and depends on g's queues
  only through which are non-empty and on the queue-length difference of the two workers
  (shortest-queue ties), both part of the compared state, so the period repeats while g's
  queues last: the gap grows by ``delta`` per ``period`` steps, i.e. linearly in H.
"""

from __future__ import annotations

import sympy as sp

from ._reference import max_gap_under, simulate_d2lpm
from .fairness import dlpm_gap_bound, evaluate
from .symbols import K_workers, L_in, O_max, Q_w, w_p, w_q

__all__ = ["d2lpm_hole_requests", "d2lpm_hole_gap", "periodic_certificate", "routing_balance_bound",
           "max_routing_imbalance", "d2lpm_rate_requests", "d2lpm_rate_gap", "d2lpm_rate_workload", "CHARGES",
           "d2lpm_global_gap_bound", "d2lpm_global_gap"]

# routing charges of the reference model; the router of ``fairsched.policies.routers.D2LPM``
# charges the whole estimated cost at routing: its ``charge="uncached"`` (default) is
# ``"uncached-upfront"`` here, its ``charge="full"`` is ``"upfront"``
CHARGES = ("uncached", "full", "upfront", "uncached-upfront")


def d2lpm_hole_requests(H: int, L: int = 20, O: int = 10, every: int = 5, burst: int = 5):  # noqa: E741
    """Abstract requests ``(arrival_step, client, input_tokens, output_tokens, prefix_id)`` of the
    construction with horizon ``H`` steps (see the module docstring)."""
    reqs = [(0, "f", L, O, "pf") for _ in range(burst)]
    reqs += [(every * j, "f", L, O, "pf") for j in range(1, H // every)]
    reqs += [(0, "g", L, O, f"pg{i % 2}") for i in range(2 * H // O + 50)]
    return reqs


def _run(H: int, charge: str, on_step=None, L: int = 20):  # noqa: E741
    return simulate_d2lpm(d2lpm_hole_requests(H, L=L), n_workers=2, q_u=40, q_w=400, max_running=1,
                          charge=charge, on_step=on_step)


def d2lpm_hole_gap(H: int, charge: str = "uncached", L: int = 20) -> float:  # noqa: E741
    """Largest ``|W_f - W_g|`` [service units, w_p = 1, w_q = 2] over intervals in which f and
    g are both backlogged at some worker, on the construction with horizon ``H`` and prompts of
    ``L`` tokens."""
    cl, tr, _, glob = _run(H, charge, L=L)
    return max_gap_under(cl, tr, lambda k, c: c in glob[k], "f", "g")


SAT = 100  # queue-length differences beyond this are compared by sign only (see the proof)


def _key(step: int, st: dict, every: int, routing: set) -> tuple:
    """The state up to queue lengths: per worker and client, whether it has waiting requests
    and which kinds (prefix, uncached tokens); the clients in order of their oldest waiting
    request (the DLPM scan order); running requests; worker deficits; router deficits of
    clients still routing; the queue-length difference, saturated at +-SAT; cache holders."""
    waiting, running = st["waiting"], st["running"]
    per_worker = []
    for k in range(len(waiting)):
        kinds: dict = {}
        order: list = []
        for _, r, u in waiting[k]:
            kinds.setdefault(r[1], set()).add((r[4], u))
            if r[1] not in order:
                order.append(r[1])
        per_worker.append((tuple(order), tuple(sorted((c, frozenset(v)) for c, v in kinds.items())),
                           tuple((c, rem) for c, rem in running[k]), tuple(sorted(st["q"][k].items()))))
    load = [len(waiting[k]) + len(running[k]) for k in range(len(waiting))]
    dw = tuple(sorted((ck, v) for ck, v in st["dw"].items() if ck[0] in routing))
    return (step % every, tuple(per_worker), dw, max(-SAT, min(SAT, load[0] - load[1])),
            tuple(sorted((p, tuple(sorted(w))) for p, w in st["holders"].items())))


def periodic_certificate(H: int = 2000, charge: str = "uncached", every: int = 5,
                         L: int = 20) -> dict | None:  # noqa: E741
    """Find a repeated state of the construction (see the module docstring).

    Returns:
        None if no state repeats before the horizon, else a dict: ``t1``, ``period`` [steps],
        ``delta`` (increase of ``W_g - W_f`` over one period [service units]),
        ``backlogged`` (both clients backlogged somewhere at every event of the period),
        ``g_drop`` (g's queued requests consumed per period, per worker).
    """
    seen: dict = {}
    marks: dict = {}
    found: list = []
    last = {}
    for arr, c, *_ in d2lpm_hole_requests(H, L=L):
        last[c] = max(last.get(c, 0), arr)

    def on_step(step, st):
        if found or step >= H - 10:
            return
        # a router deficit matters only for requests still to be routed
        k = _key(step, st, every, {c for c, t in last.items() if t > step})
        load = [len(w) + len(r) for w, r in zip(st["waiting"], st["running"], strict=True)]
        marks[step] = (st["n_events"], st["S"]["g"] - st["S"]["f"],
                       [sum(1 for _, r, _u in w if r[1] == "g") for w in st["waiting"]], load[0] - load[1])
        if k in seen:
            found.append((seen[k], step))
        else:
            seen[k] = step

    cl, tr, _, glob = _run(H, charge, on_step, L=L)
    if not found:
        return None
    t1, t2 = found[0]
    (e1, d1, g1, _), (e2, d2, g2, _) = marks[t1], marks[t2]
    backlogged = all({"f", "g"} <= glob[i] for i in range(e1, e2))
    diffs = [marks[t][3] for t in range(t1, t2 + 1)]
    # saturated difference: every comparison inside the period must have the same outcome
    # again, so |diff| must stay >= 1 with one sign (or the diff must be exact, below SAT)
    sat_ok = all(abs(x) < SAT for x in diffs) or all(x > 0 for x in diffs) or all(x < 0 for x in diffs)
    return {"t1": t1, "period": t2 - t1, "delta": d2 - d1, "backlogged": backlogged, "sign_stable": sat_ok,
            "g_drop": [a - b for a, b in zip(g1, g2, strict=True)],
            "queue_diff_change": diffs[-1] - diffs[0]}


def routing_balance_bound() -> sp.Expr:
    """``Q^w + w_p L_in + w_q O_max`` [service units]: with ``charge="upfront"`` (each request's
    whole cost ``w_p * input + w_q * output`` charged at routing, ``c_max = w_p L_in + w_q O_max``
    the largest) and ``Q^w >= c_max``, the full cost a client has routed to any worker exceeds
    what it has routed to any other worker by less than this (proved: the router deficits stay
    in ``(-c_max, Q^w]`` and are refilled together, ``proofs/d2lpm_bound.md``)."""
    return Q_w + w_p * L_in + w_q * O_max


def max_routing_imbalance(reqs, *, n_workers: int = 2, q_u: float = 40, q_w: float = 400,
                          max_running: int = 1, charge: str = "upfront") -> float:
    """Largest ``|d_{i,k} - d_{i,k'}|`` [service units] over clients, worker pairs and step ends of
    a reference D2LPM run on abstract requests ``reqs``; with ``charge="upfront"`` this is the
    routed-cost imbalance that :func:`routing_balance_bound` bounds."""
    best = [0.0]

    def on_step(step, st):
        dw = st["dw"]
        for (c, _k), v in dw.items():
            for k2 in range(n_workers):
                best[0] = max(best[0], abs(v - dw[c, k2]))

    simulate_d2lpm(reqs, n_workers=n_workers, q_u=q_u, q_w=q_w, max_running=max_running, charge=charge,
                   on_step=on_step)
    return best[0]


def d2lpm_rate_requests(R: int, c: int = 400):
    """Abstract requests of the rate construction with burst size ``R`` (``proofs/d2lpm_bound.md``,
    Theorem D; run with 2 workers, one running request each, ``Q^u = c``, ``Q^w = 2c``, w_p = 1,
    w_q = 2). Two kinds of request, both of cost ``c`` [service units] under every charge:
    *slow* (0-token prompt, ``c/2`` output tokens: ``c/2`` steps) and *fast* (fresh prefix of
    ``c - 2`` prompt tokens, 1 output token: 1 step). Step 0: a 1-token seed of g (prefix ``pg``,
    lands on worker 0) and of f (``pf``, worker 1); f sends ``R`` rounds of (2 slow on ``pf``,
    2 fast) then ``199 R`` rounds of 4 fast. Step ``t1 = 400 R + 2``: g sends ``R`` rounds of
    (2 slow on ``pg``, 2 fast). Each round spends ``Q^w`` at each worker, slow requests go to
    the worker caching their prefix, fast ones to the other (the only eligible one)."""
    if R < 1 or c < 4 or c % 2:
        raise ValueError(f"need R >= 1 and an even c >= 4, got R={R}, c={c}")
    n_out, P = c // 2, c - 2
    out = [(0, "g", 0, 1, "pg"), (0, "f", 0, 1, "pf")]
    fresh = iter(range(10**9))
    for _ in range(R):
        out += [(0, "f", 0, n_out, "pf")] * 2 + [(0, "f", P, 1, f"x{next(fresh)}") for _ in range(2)]
    out += [(0, "f", P, 1, f"x{next(fresh)}") for _ in range(4 * 199 * R)]
    t1 = 2 * R + 2 * 199 * R + 2
    for _ in range(R):
        out += [(t1, "g", 0, n_out, "pg")] * 2 + [(t1, "g", P, 1, f"x{next(fresh)}") for _ in range(2)]
    return out


def d2lpm_rate_gap(R: int, charge: str = "uncached-upfront", c: int = 400) -> float:
    """Largest ``|W_f - W_g|`` [service units] over intervals in which f and g are both
    backlogged at some worker, on :func:`d2lpm_rate_requests` (2 workers, one running request
    each, ``Q^u = c``, ``Q^w = 2c``) under the routing ``charge`` (one of :data:`CHARGES`)."""
    if charge not in CHARGES:
        raise ValueError(f"charge must be one of {CHARGES}, got {charge!r}")
    cl, tr, _, glob = simulate_d2lpm(d2lpm_rate_requests(R, c), n_workers=2, q_u=c, q_w=2 * c, max_running=1,
                                     charge=charge)
    return max_gap_under(cl, tr, lambda k, cl_: cl_ in glob[k], "f", "g")


def d2lpm_rate_workload(R: int, t1_s: float, c: int = 400):
    """:func:`d2lpm_rate_requests` as a simulator :class:`~fairsched.workload.Workload`: the same
    requests (an empty prompt becomes the 1-token prompt of its prefix, a fresh prefix fresh
    tokens), f's at 0 s and g's at ``t1_s`` seconds. Run it on 2 instances with one running
    request each (``max_batch_size=1``); ``t1_s`` should be when instance 0 has served f's share
    (about ``13.3 R`` s under the default cost model)."""
    from fairsched.workload import Request, Workload

    tok = iter(range(1000, 10**9))
    seeds = {"pg": (1,), "pf": (2,)}
    reqs = []
    for i, (step, cl, inp, out, pid) in enumerate(d2lpm_rate_requests(R, c)):
        prompt = seeds[pid] if pid in seeds else tuple(next(tok) for _ in range(inp))
        reqs.append(Request(i, 0.0 if step == 0 else float(t1_s), cl, prompt, len(prompt), out))
    return Workload(reqs, name=f"d2lpm-rate-R{R}", source="fairsched.theory.d2lpm.d2lpm_rate_workload")


def d2lpm_global_gap_bound(k: int | sp.Expr | None = None) -> sp.Expr:
    """Theorem F (``proofs/d2lpm_bound.md``): ``2 (Q^u + X_G)`` [service units] for D2LPM with a
    *global* worker deficit (``simulate_d2lpm(deficit="global")``), for f, g backlogged *at some
    worker* at every refill event in (t1, t2], under any router (any charge, any ``Q^w``).

    ``X_G`` [service units] is the cluster-wide X: the largest ``w_p * uncached + w_q *
    outstanding decode tokens`` of one client *on all workers* right after one of its admissions
    (the symbol ``X`` when ``k`` is None). With ``k`` (most running requests of one client on one
    worker) given, ``X_G <= w_p L_in + K k w_q O_max``, i.e. ``X_expr(K k)``. Proof: the variant
    is DLPM on the union of the workers' queues with the union of their slots as its running
    set, so :func:`fairsched.theory.fairness.dlpm_gap_bound` applies with the cluster's ``X``.
    """
    return dlpm_gap_bound(None if k is None else K_workers * k)


def d2lpm_global_gap(reqs, *, n_workers: int = 2, q_u: float = 40, q_w: float = 400, max_running: int = 1,
                     charge: str = "uncached-upfront", deficit: str = "global") -> dict:
    """Run the reference D2LPM on abstract requests ``reqs`` and measure Theorem F's quantities.

    Returns:
        dict: ``gap`` (largest ``|W_f - W_g|`` [service units] over client pairs and intervals in
        which both are backlogged at some worker), ``bound`` (:func:`d2lpm_global_gap_bound`
        with the measured ``X_G``), ``x_global`` [service units], ``pulls`` (requests a worker
        took from another worker's queue), ``hit_rate`` (cached / input prompt tokens of
        admitted requests; 0 without prompt tokens), ``refills``.
    Raises:
        ValueError: on an unknown ``charge`` or ``deficit``.
    """
    if charge not in CHARGES:
        raise ValueError(f"charge must be one of {CHARGES}, got {charge!r}")
    st: dict = {}
    cl, tr, _, glob = simulate_d2lpm(reqs, n_workers=n_workers, q_u=q_u, q_w=q_w, max_running=max_running,
                                     charge=charge, deficit=deficit, stats=st)
    gap = max((max_gap_under(cl, tr, lambda e, c: c in glob[e], f, g) for i, f in enumerate(cl) for g in cl[i + 1:]),
              default=0.0)
    bound = evaluate(d2lpm_global_gap_bound(), Q_u=q_u, X=st["x_global"])
    hit = 1 - st["uncached_tokens"] / st["input_tokens"] if st["input_tokens"] else 0.0
    return {"gap": gap, "bound": bound, "x_global": st["x_global"], "pulls": st["pulls"], "hit_rate": hit,
            "refills": st["refills"]}
