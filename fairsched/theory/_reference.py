"""Stand-alone reference simulations of VTC, DLPM and D2LPM on abstract requests.

Independent of ``fairsched.sim`` (written concurrently); used only to check the bounds of
:mod:`fairsched.theory.fairness` empirically. The model is exactly the one the proofs assume:

- time advances in *steps*; in each step: (1) requests with ``arrival <= step`` join the
  waiting queue (a client that had no waiting request is *returning*: VTC counter lift /
  DLPM return rule); (2) the scheduler admits waiting requests while fewer than
  ``max_running`` run and the chosen request fits in memory (``admission``, below), charging
  ``w_p * uncached`` at admission; when the chosen request does not fit, admission stops
  for this step (VTC artifact's rule); (3) every running request generates one token
  charged ``w_q``; finished requests leave.
- memory (``kv_capacity`` = M tokens, optional): a running request holds its prompt plus the
  tokens generated so far. ``admission="reserve"``: admit if the prompts plus *full* outputs
  of the running requests and of the new one fit in M. ``admission="peak"`` (VTC artifact /
  S-LoRA ``_can_add_new_req``): sort running + new by remaining output ``r_1 >= r_2 >= ...``,
  held tokens ``c_j``; admit if ``max_i (c_1 + ... + c_i + i r_i) <= M``, the occupancy at
  the moment the i-th request emits its last token. Both keep occupancy <= M at all times
  (``RefResult.max_occupancy``).
- *backlogged* = has at least one waiting (not admitted) request.
- after every event (arrival, admission, refill, token) a snapshot ``(service vector,
  backlogged set before the next event)`` is appended to ``trace``.

An abstract request is ``(arrival_step, client, uncached_prefill_tokens, output_tokens,
lpm_key)``; a larger ``lpm_key`` is a longer prefix match (DLPM scans in that order).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RefResult:
    clients: list
    service_trace: list = field(default_factory=list)  # list of tuples, per client
    backlog_trace: list = field(default_factory=list)  # frozenset of backlogged clients
    x_measured: float = 0.0  # max over admissions of w_p*u + outstanding decode after it
    refills: int = 0
    max_occupancy: int = 0  # most tokens held by running requests (prompt + generated)
    max_outstanding: int = 0  # most outstanding decode tokens of all running requests
    # (step, snapshot index, client, {client: w_q * remaining decode of its running requests},
    # backlogged set before the arrival): one row per arrival of a client that was not backlogged
    returns: list = field(default_factory=list)
    admissions: list = field(default_factory=list)  # (step, snapshot index after it, client)
    step_start: list = field(default_factory=list)  # snapshot index at the start of each step


def fits(running, prompt, output, kv_capacity, admission) -> bool:
    """Whether a request (``prompt``, ``output`` tokens) may join ``running`` (list of
    ``[client, remaining, held]``) under ``admission`` with ``kv_capacity`` tokens (None: no
    memory limit). See the module docstring for the two rules."""
    if kv_capacity is None or admission == "slots":
        return True
    if admission == "reserve":
        return sum(h + r for _, r, h in running) + prompt + output <= kv_capacity
    if admission != "peak":
        raise ValueError(f"admission must be 'slots', 'reserve' or 'peak', got {admission!r}")
    rows = sorted([(r, h) for _, r, h in running] + [(output, prompt)], key=lambda x: -x[0])
    held = 0
    for i, (r, h) in enumerate(rows, 1):
        held += h
        if held + i * r > kv_capacity:
            return False
    return True


def _run(reqs, policy, *, w_p=1.0, w_q=2.0, max_running=1, quantum=1.0, lift="watermark",
         refill_to="backlogged", on_return="keep", max_steps=100000, kv_capacity=None, admission="slots"):
    reqs = sorted(enumerate(reqs), key=lambda kv: (kv[1][0], kv[0]))
    clients = list(dict.fromkeys(r[1] for _, r in reqs))
    S = dict.fromkeys(clients, 0.0)  # cumulative service
    cnt = dict.fromkeys(clients, 0.0)  # VTC counter or DLPM deficit
    waiting, running = [], []  # waiting: (arr_idx, req); running: [client, remaining, held]
    res = RefResult(clients)
    watermark = [0.0]
    pos = 0

    def backlogged():
        return frozenset(r[1] for _, r in waiting)

    def snap():
        res.service_trace.append(tuple(S[c] for c in clients))
        res.backlog_trace.append(backlogged())

    snap()
    step = 0
    while (pos < len(reqs) or waiting or running) and step < max_steps:
        res.step_start.append(len(res.service_trace) - 1)
        while pos < len(reqs) and reqs[pos][1][0] <= step:
            idx, r = reqs[pos]
            c = r[1]
            B = backlogged()
            if c not in B:  # returning client
                D = dict.fromkeys(clients, 0.0)
                for rc, rem, _h in running:
                    D[rc] += w_q * rem
                res.returns.append((step, len(res.service_trace) - 1, c, D, B))
                if policy == "vtc":
                    if lift == "watermark":
                        target = min((cnt[j] for j in B), default=watermark[0])
                        cnt[c] = max(cnt[c], target)
                    elif lift == "min_backlogged" and B:
                        cnt[c] = max(cnt[c], min(cnt[j] for j in B))
                elif policy == "dlpm":
                    if on_return == "zero":
                        cnt[c] = 0.0
                    elif on_return == "clamp":
                        cnt[c] = min(cnt[c], quantum)
            waiting.append((idx, r))
            pos += 1
            snap()
        while len(running) < max_running and waiting:
            B = backlogged()
            if policy == "vtc":
                m = min(cnt[j] for j in B)
                watermark[0] = max(watermark[0], m)  # the minimum while someone is backlogged (before it leaves)
                # smallest counter; ties: earliest arrival (FCFS among tied clients)
                k = min(range(len(waiting)), key=lambda i: (cnt[waiting[i][1][1]] > m, waiting[i][0]))
            else:  # dlpm: LPM order, first request whose client has positive deficit
                while not any(cnt[j] > 0 for j in B):
                    for j in (B if refill_to == "backlogged" else clients):
                        cnt[j] += quantum
                    res.refills += 1
                    snap()
                order = sorted(range(len(waiting)), key=lambda i: (-waiting[i][1][4], waiting[i][0]))
                k = next(i for i in order if cnt[waiting[i][1][1]] > 0)
            if not fits(running, waiting[k][1][2], waiting[k][1][3], kv_capacity, admission):
                break
            _, r = waiting.pop(k)
            c, u, o = r[1], r[2], r[3]
            cnt[c] += w_p * u if policy == "vtc" else -w_p * u
            S[c] += w_p * u
            running.append([c, o, u])
            res.max_occupancy = max(res.max_occupancy, sum(rr[2] for rr in running))
            res.max_outstanding = max(res.max_outstanding, sum(rr[1] for rr in running))
            out = sum(w_q * rr[1] for rr in running if rr[0] == c)
            res.x_measured = max(res.x_measured, w_p * u + out)
            B2 = backlogged()
            if policy == "vtc" and B2:
                watermark[0] = max(watermark[0], min(cnt[j] for j in B2))
            snap()
            res.admissions.append((step, len(res.service_trace) - 1, c))
        for rr in running:
            c = rr[0]
            cnt[c] += w_q if policy == "vtc" else -w_q
            S[c] += w_q
            rr[1] -= 1
            rr[2] += 1
            snap()
        res.max_occupancy = max(res.max_occupancy, sum(rr[2] for rr in running))
        running = [rr for rr in running if rr[1] > 0]
        if policy == "vtc" and backlogged():
            watermark[0] = max(watermark[0], min(cnt[j] for j in backlogged()))
        step += 1
    return res


def simulate_vtc(reqs, **kw) -> RefResult:
    """VTC on abstract requests. ``lift``: ``"watermark"`` (lift a returning client to the
    min counter over backlogged clients, or, if none is backlogged, to the last such min) or
    ``"min_backlogged"`` (only the min over currently backlogged clients; none if empty).
    ``kv_capacity`` / ``admission`` (``"slots"``, ``"reserve"``, ``"peak"``): memory rule."""
    return _run(reqs, "vtc", **kw)


def simulate_dlpm(reqs, *, quantum, **kw) -> RefResult:
    """DLPM on abstract requests. ``refill_to``: ``"backlogged"`` or ``"all"``;
    ``on_return``: ``"keep"``, ``"zero"`` or ``"clamp"`` (min(q, Q^u))."""
    return _run(reqs, "dlpm", quantum=quantum, **kw)


def max_backlogged_gap(res: RefResult, f=None, g=None) -> float:
    """Largest |W_f(t1,t2) - W_g(t1,t2)| over snapshot intervals during which both clients
    stay backlogged before every event (the theorems' hypothesis); max over client pairs if
    ``f``/``g`` are None."""
    cl = res.clients
    pairs = [(f, g)] if f is not None else [(a, b) for i, a in enumerate(cl) for b in cl[i + 1:]]
    best = 0.0
    for a, b in pairs:
        ia, ib = cl.index(a), cl.index(b)
        lo = hi = None
        for s, B in zip(res.service_trace, res.backlog_trace, strict=True):
            d = s[ia] - s[ib]
            if lo is not None:  # this event happened with both backlogged before it
                lo, hi = min(lo, d), max(hi, d)
                best = max(best, hi - lo)
            if a in B and b in B:
                if lo is None:
                    lo = hi = d
            else:
                lo = hi = None
    return best


def simulate_d2lpm(reqs, *, n_workers, q_u, q_w, w_p=1.0, w_q=2.0, max_running=1,
                   max_steps=100000, charge="uncached", on_step=None, deficit="local", stats=None):
    """D2LPM on abstract requests ``(arrival, client, input_tokens, output, prefix_id)``.

    Router: global map prefix_id -> workers that served it (cached there; cached prompt costs
    nothing, otherwise ``input`` tokens are uncached). Per (client, worker) deficit with
    quantum ``q_w``, charged the request's uncached prefill at routing and ``w_q`` per decode
    token as produced; eligible workers: positive deficit; choose longest cached prefix among
    eligible (here: cached or not), ties and no eligible -> shortest queue (waiting+running);
    refill ``q_w`` on all workers of a client when none of its deficits is positive. Each
    worker runs DLPM (quantum ``q_u``, refill to backlogged, keep on return).

    ``charge``: what routing charges the (client, worker) deficit: ``"uncached"`` (D2LPM as
    described: uncached prefill at routing, ``w_q`` per decode token as produced) or ``"full"``
    (the whole prompt ``w_p * input`` whether cached or not, plus ``w_q`` per decode token as
    produced) or ``"upfront"`` (the request's whole cost ``w_p * input + w_q * output`` at
    routing, nothing later; with an output estimate in place of the output in a real system) or
    ``"uncached-upfront"`` (uncached prefill + ``w_q * output`` at routing: what the router of
    :class:`fairsched.policies.routers.D2LPM` charges by default; its ``charge="full"`` is
    ``"upfront"``).
    ``proofs/d2lpm_bound.md``.
    ``deficit``: ``"local"`` (D2LPM: one DLPM deficit per client *per worker*, each worker
    refilling its own backlogged clients) or ``"global"`` (the variant of Theorem F: one
    deficit per client shared by all workers, refilled ``q_u`` for every client backlogged at
    some worker when none of them is positive; a worker with a free slot admits the oldest
    local request of a client with a positive deficit, else *pulls* the waiting request of such
    a client from another worker's queue, preferring one whose prefix it caches, then the
    oldest; the pulled request's uncached tokens are counted at the worker that runs it).
    ``stats`` (a dict, optional) receives ``x_global`` (max over admissions of ``w_p * uncached``
    + ``w_q`` x the client's outstanding decode tokens on *all* workers after it), ``pulls``,
    ``uncached_tokens``, ``input_tokens`` (of admitted requests) and ``refills`` (worker
    deficit refill rounds).
    ``on_step(step, state)``: called after every step with a dict (``S`` services, ``dw``
    router deficits, ``q`` worker deficits, ``waiting`` / ``running`` per worker, ``holders``).

    Returns ``(clients, service_trace, local_backlog_trace, global_backlog_trace)``.
    """
    if deficit not in ("local", "global"):
        raise ValueError(f"deficit must be 'local' or 'global', got {deficit!r}")
    reqs = sorted(enumerate(reqs), key=lambda kv: (kv[1][0], kv[0]))
    clients = list(dict.fromkeys(r[1] for _, r in reqs))
    S = dict.fromkeys(clients, 0.0)
    dw = {(c, k): 0.0 for c in clients for k in range(n_workers)}
    shared = dict.fromkeys(clients, 0.0)  # "global": every worker's view is this one dict
    q = [shared if deficit == "global" else dict.fromkeys(clients, 0.0) for _ in range(n_workers)]
    st = {"x_global": 0.0, "pulls": 0, "uncached_tokens": 0, "input_tokens": 0, "refills": 0}
    waiting = [[] for _ in range(n_workers)]
    running = [[] for _ in range(n_workers)]
    holders: dict = {}
    tr_s, tr_loc, tr_glob = [], [], []
    pos, step = 0, 0

    def snap():
        tr_s.append(tuple(S[c] for c in clients))
        loc = [frozenset(r[1] for _, r, _u in waiting[k]) for k in range(n_workers)]
        tr_loc.append(loc)
        tr_glob.append(frozenset().union(*loc))

    snap()
    while (pos < len(reqs) or any(waiting) or any(running)) and step < max_steps:
        while pos < len(reqs) and reqs[pos][1][0] <= step:
            idx, r = reqs[pos]
            c, inp, pid = r[1], r[2], r[4]
            if not any(dw[c, k] > 0 for k in range(n_workers)):
                for k in range(n_workers):
                    dw[c, k] += q_w
            elig = [k for k in range(n_workers) if dw[c, k] > 0]
            load = [len(waiting[k]) + len(running[k]) for k in range(n_workers)]
            if elig:
                k = min(elig, key=lambda k: (k not in holders.get(pid, ()), load[k], k))
            else:  # no eligible worker: shortest queue
                k = min(range(n_workers), key=lambda k: (load[k], k))
            u = 0 if k in holders.get(pid, ()) else inp
            holders.setdefault(pid, set()).add(k)
            upfront = charge in ("upfront", "uncached-upfront")
            dw[c, k] -= w_p * (inp if charge in ("full", "upfront") else u) + (w_q * r[3] if upfront else 0)
            waiting[k].append((idx, r, u))
            pos += 1
            snap()
        for k in range(n_workers):
            while len(running[k]) < max_running and (waiting[k] if deficit == "local" else any(waiting)):
                src = [k] if deficit == "local" else range(n_workers)
                B = {r[1] for j in src for _, r, _u in waiting[j]}
                while not any(q[k][j] > 0 for j in B):
                    for j in B:
                        q[k][j] += q_u
                    st["refills"] += 1
                order = sorted(range(len(waiting[k])), key=lambda i: waiting[k][i][0])
                i = next((i for i in order if q[k][waiting[k][i][1][1]] > 0), None)
                if i is not None:
                    _, r, u = waiting[k].pop(i)
                else:  # "global" only: pull from another worker (cached prefix first, then oldest)
                    j, i = min(((j, i) for j in range(n_workers) for i, (_, r, _u) in enumerate(waiting[j])
                                if q[k][r[1]] > 0),
                               key=lambda ji: (k not in holders.get(waiting[ji[0]][ji[1]][1][4], ()),
                                               waiting[ji[0]][ji[1]][0]))
                    _, r, _u = waiting[j].pop(i)
                    u = 0 if k in holders.get(r[4], ()) else r[2]
                    holders.setdefault(r[4], set()).add(k)
                    st["pulls"] += 1
                q[k][r[1]] -= w_p * u
                S[r[1]] += w_p * u
                running[k].append([r[1], r[3]])
                st["uncached_tokens"] += u
                st["input_tokens"] += r[2]
                out = sum(rem for kk in range(n_workers) for c_, rem in running[kk] if c_ == r[1])
                st["x_global"] = max(st["x_global"], w_p * u + w_q * out)
                snap()
            for rr in running[k]:
                q[k][rr[0]] -= w_q
                if charge not in ("upfront", "uncached-upfront"):
                    dw[rr[0], k] -= w_q
                S[rr[0]] += w_q
                rr[1] -= 1
                snap()
            running[k] = [rr for rr in running[k] if rr[1] > 0]
        if on_step is not None:
            on_step(step, {"S": S, "dw": dw, "q": q, "waiting": waiting, "running": running, "holders": holders,
                           "n_events": len(tr_s)})
        step += 1
    if stats is not None:
        stats.update(st)
    return clients, tr_s, tr_loc, tr_glob


def max_gap_under(clients, tr_s, backlog_pred, f, g) -> float:
    """Largest |W_f - W_g| over snapshot intervals where ``backlog_pred(k, client)`` holds for
    both clients before every event."""
    ia, ib = clients.index(f), clients.index(g)
    best, lo, hi = 0.0, None, None
    for k, s in enumerate(tr_s):
        d = s[ia] - s[ib]
        if lo is not None:
            lo, hi = min(lo, d), max(hi, d)
            best = max(best, hi - lo)
        if backlog_pred(k, f) and backlog_pred(k, g):
            if lo is None:
                lo = hi = d
        else:
            lo = hi = None
    return best
