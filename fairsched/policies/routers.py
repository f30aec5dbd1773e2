"""Routers for N instances: each decides, at arrival, which instance serves a request.

All read the cluster through :class:`~fairsched.policies.base.ClusterView`: per instance
the waiting and running counts, the prefill tokens still queued, and the tokens of the
request found in its prefix cache (counting prompts already routed there: the optimistic
update, so two back-to-back requests with one prefix see the first one's blocks).
Ties go to the lowest index, so every router is deterministic. LMetric, the router of the
scale benchmark, reads all instances at once (``ClusterView.instance_state``).
"""

from __future__ import annotations

from typing import TypeVar

from fairsched._mypyc import mypyc_attr
from fairsched.policies.base import ClusterView, Router, ServiceWeights
from fairsched.workload.request import Request

_EXACT = 2**53  # integers of smaller magnitude are exact floats


def _argmin(n: int, key) -> int:
    return min(range(n), key=lambda i: (key(i), i))


def _load(c: ClusterView, i: int) -> int:
    return c.n_waiting(i) + c.n_running(i)


class RoundRobin(Router):
    """Instance ``k mod N`` for the k-th request."""

    name = "rr"

    def __init__(self):
        self.k = 0

    def route(self, req, cluster, now: float):
        i = self.k % cluster.n_instances
        self.k += 1
        return i


class LeastLoad(Router):
    """Fewest requests (waiting + running); ties by fewer queued prefill tokens."""

    name = "least-load"

    def route(self, req, cluster, now: float):
        return _argmin(cluster.n_instances, lambda i: (_load(cluster, i), cluster.queued_prefill_tokens(i)))


class VLLMv1(Router):
    """vLLM-v1 / production-stack load score ``4 * waiting + running`` (argmin)."""

    name = "vllm-v1"

    def route(self, req, cluster, now: float):
        return _argmin(cluster.n_instances, lambda i: 4 * cluster.n_waiting(i) + cluster.n_running(i))


class SGLangCacheAware(Router):
    """SGLang router's ``cache_aware`` policy (sgl-router, defaults from its docs).

    If the load is imbalanced (``max - min > balance_abs`` and ``max > balance_rel * min``,
    load = waiting + running) route to the least loaded instance. Otherwise, if the best
    prefix match rate ``cached / input`` exceeds ``cache_threshold``, route to the instance
    with the best match; else to the instance with the smallest cache (most free room).
    """

    name = "sglang-cache-aware"

    def __init__(self, cache_threshold: float = 0.3, balance_abs: int = 64, balance_rel: float = 1.5):
        self.cache_threshold = cache_threshold
        self.balance_abs = balance_abs
        self.balance_rel = balance_rel

    def route(self, req, cluster, now: float):
        n = cluster.n_instances
        loads = [_load(cluster, i) for i in range(n)]
        lo, hi = min(loads), max(loads)
        if hi - lo > self.balance_abs and hi > self.balance_rel * lo:
            return loads.index(lo)
        hits = [cluster.cached_tokens(i, req) for i in range(n)]
        best = max(range(n), key=lambda i: (hits[i], -loads[i], -i))
        if hits[best] / req.input_len > self.cache_threshold:
            return best
        return _argmin(n, lambda i: (cluster.cache_size_tokens(i), loads[i]))


class Linear(Router):
    """A linear score ``lam * kv_miss + (1 - lam) * load`` (argmin), the production
    baseline of LMetric (Sec. 2): ``kv_miss = uncached / input`` and ``load = B_i / max_j B_j``
    (both in [0, 1]; ``B_i`` = waiting + running). The paper tuned ``lam`` to 0.7 (chat)
    and 0.55 (API)."""

    name = "linear"

    def __init__(self, lam: float = 0.7):
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {lam}")
        self.lam = lam

    def route(self, req, cluster, now: float):
        n = cluster.n_instances
        loads = [_load(cluster, i) for i in range(n)]
        top = max(1, max(loads))
        lam = self.lam
        return _argmin(n, lambda i: lam * (req.input_len - cluster.cached_tokens(i, req)) / req.input_len
                       + (1 - lam) * loads[i] / top)


_N = TypeVar("_N", int, float)


def _first_min(s: list[_N], m: _N, loads: list[int]) -> int:
    """The index of the smallest ``m`` of ``s``; on a tie, the smaller ``loads[i] + 1``, then
    the lower index (LMetric's order key, :meth:`LMetric._choose`)."""
    i = s.index(m)  # the first of the smallest
    if s.count(m) > 1:  # a tie: the smaller B_i + 1, then the lower index
        i = min((float(loads[j] + 1), j) for j, v in enumerate(s) if v == m)[1]
    return i


@mypyc_attr(allow_interpreted_subclasses=True)
class LMetric(Router):
    """LMetric (arXiv 2603.15202): argmin of ``P_i * (B_i + 1)``.

    ``P_i`` = prefill tokens instance i still has queued plus the request's tokens not in
    i's prefix cache (whole blocks); ``B_i`` = its batch size (running + waiting); the +1
    counts the request itself so an idle instance does not score 0. The chosen instance's
    state is updated before the next decision (the simulator enqueues at once and the
    cluster view counts routed prompts as cached). Ties: smaller ``B_i``, then index.
    The product's argmin is invariant to rescaling either factor
    (``fairsched.theory.lmetric``). With ``mitigate`` set to a set of flagged prefix
    classes (client ids), requests of those classes are routed by load only
    (the paper's mitigation; ``fairsched detect`` produces the set).
    """

    name = "lmetric"

    def __init__(self, mitigate: set[str] | None = None):
        self.mitigate = set(mitigate or ())

    @staticmethod
    def _score(queued: int, uncached: int, load: int) -> tuple[float, float]:
        """``(P_i, B_i + 1)`` from instance i's queued prefill tokens, the request's tokens
        not in its cache and its load ``B_i`` (waiting + running)."""
        return float(queued + uncached), float(load + 1)

    @staticmethod
    def _choose(queued: list[int], cached: list[int], loads: list[int], L: int) -> int:
        """The argmin of LMetric's order key ``(P_i (B_i + 1), B_i + 1, i)``, ``P_i`` and
        ``B_i + 1`` the floats :meth:`_score` makes from the uncached tokens ``L - cached_i``
        (the router's hot path; ``tests/test_routers.py`` checks it against the keys). Integer
        products below 2**53 are the floats' products exactly, so they order alike; larger
        ones are taken as floats, rounding included."""
        s = [(q + L - c) * (ld + 1) for q, c, ld in zip(queued, cached, loads, strict=True)]
        m = min(s)
        if not (-_EXACT < m and max(s) < _EXACT):
            f = [float(q + L - c) * float(ld + 1) for q, c, ld in zip(queued, cached, loads, strict=True)]
            return _first_min(f, min(f), loads)
        return _first_min(s, m, loads)

    def score(self, req: Request, cluster: ClusterView, i: int) -> tuple[float, float]:
        """``(P_i, B_i + 1)`` for routing ``req`` to instance ``i``."""
        return self._score(cluster.queued_prefill_tokens(i), req.input_len - cluster.cached_tokens(i, req),
                           _load(cluster, i))

    def route(self, req, cluster, now: float):
        n = cluster.n_instances
        if req.client in self.mitigate:
            return _argmin(n, lambda i: (_load(cluster, i), cluster.queued_prefill_tokens(i)))

        # argmin of (P_i (B_i + 1), B_i + 1, i), the cluster read once (the router's hot path)
        loads, queued, cached = cluster.instance_state(req)
        return self._choose(queued, cached, loads, req.input_len)


@mypyc_attr(allow_interpreted_subclasses=True)
class LMetricSeconds(LMetric):
    """LMetric with ``P`` in predicted prefill seconds (``proofs/seconds_lmetric.md``).

    argmin of ``P^s_i (B_i + 1)``: ``P^s_i`` = the cost model's predicted seconds of the
    prefill instance i still has queued, ``sum t_pre(rest, done)`` over its waiting requests
    (the uncached estimate made at routing) and running ones (the rest at the context already
    computed; ``ClusterView.queued_prefill_seconds``), plus ``t_pre(L - h_i, h_i)`` for the
    request, ``h_i`` its tokens in i's cache (``CostModel.prefill_time``, the model of
    ``proofs/cost_model.md``). ``B_i``, the +1, ties and ``mitigate``: as :class:`LMetric`.

    Proved there: a common speed factor of the cost model cancels (Statement 1); with a token-
    linear model (only ``prefill_b > 0``) it routes as token LMetric; any other cost shape
    routes some state differently (Statement 2); if each queued prompt's measured prefill
    seconds lie within ``[r_lo, r_hi]`` times the prediction, the choice's measured score is
    within ``r_hi / r_lo`` of the best instance's (Statement 3, z3, tight).

    Args:
        cost: the :class:`~fairsched.sim.cost.CostModel` that predicts; default the cluster's
            clock (``cluster.cost``: the simulator's model, the engine's ``clock=`` model).
        mitigate: as :class:`LMetric`.

    Raises:
        ValueError: (at the first routing) no ``cost`` and the cluster has no cost model (the
            engine on its measured clock: pass ``cost=``, e.g. a calibration).
    """

    name = "lmetric-seconds"

    def __init__(self, cost=None, mitigate: set[str] | None = None):
        super().__init__(mitigate)
        self.cost = cost
        self._tracked: ClusterView | None = None  # the cluster whose counters are started
        self._pc = cost

    def route(self, req, cluster, now: float):
        if self._tracked is not cluster:  # first request of a run: start the instances' counters
            self._pc = self.cost if self.cost is not None else getattr(cluster, "cost", None)
            if self._pc is None:
                raise ValueError("router lmetric-seconds needs a cost model: pass cost= "
                                 "(the cluster runs on a measured clock)")
            cluster.track_prefill_seconds(self._pc)
            self._tracked = cluster
        n = cluster.n_instances
        if req.client in self.mitigate:
            return _argmin(n, lambda i: (_load(cluster, i), cluster.queued_prefill_tokens(i)))
        loads, _, cached = cluster.instance_state(req)
        t_pre, L = self._pc.prefill_time, req.input_len
        best, best_key = 0, None
        for i in range(n):
            b = float(loads[i] + 1)
            key = ((cluster.queued_prefill_seconds(i) + t_pre(L - cached[i], cached[i])) * b, b)
            if best_key is None or key < best_key:
                best, best_key = i, key
        return best


class D2LPM(Router):
    """D²LPM's global scheduler (Cao et al., arXiv 2501.14312, Sec. 5).

    Each (client, worker) pair has a deficit with quantum ``Q^w``. A request goes to the
    worker with the longest cached prefix among the workers where its client's deficit is
    positive; ties go to the shortest queue (waiting + running). If the client has no
    positive worker deficit, the request goes to the shortest queue and the client's
    deficits are refilled by ``Q^w`` each (as many rounds as make one positive). Routing
    charges the chosen pair the request's estimated service
    ``w_p * uncached + w_q * output_len``. Each worker runs :class:`~fairsched.policies.queue.DLPM`
    locally (with ``Q^u``). Bound: ``proofs/d2lpm_bound.md``.

    ``charge="full"`` charges the whole prompt, ``w_p * input_len + w_q * output_len``, cached
    or not (cached work is not cheaper at routing; costs hit rate, measured in
    ``proofs/d2lpm_bound.md``). Both charge the whole output at routing (the reference model's
    ``"uncached-upfront"`` and ``"upfront"``): each client's routed cost stays balanced across
    workers within ``Q^w + c_max`` (proved), but neither bounds the service gap of clients
    backlogged at some worker (Theorem D there).

    ``quantum_w`` should be at least the cost of one request, or a client's next request
    is pushed off the worker that holds its prefix; the CLI uses ``U`` of the workload
    (:func:`fairsched.policies.default_quantum`), the class default 8192 suits prompts of a
    few thousand tokens.
    """

    name = "d2lpm"

    def __init__(self, quantum_w: float = 8192.0, weights: ServiceWeights | None = None, charge: str = "uncached"):
        if quantum_w <= 0:
            raise ValueError(f"quantum_w must be > 0, got {quantum_w}")
        if charge not in ("uncached", "full"):
            raise ValueError(f"charge must be 'uncached' or 'full', got {charge!r}")
        self.charge = charge
        self.quantum_w = float(quantum_w)
        self.weights = weights or ServiceWeights()
        self.deficit: dict[str, list[float]] = {}
        self.refills = 0

    def route(self, req, cluster, now: float):
        n = cluster.n_instances
        q = self.deficit.setdefault(req.client, [0.0] * n)
        eligible = [i for i in range(n) if q[i] > 0]
        if eligible:
            hits = {i: cluster.cached_tokens(i, req) for i in eligible}
            best = max(hits.values())
            tied = [i for i in eligible if hits[i] == best]
            i = min(tied, key=lambda j: (_load(cluster, j), j))
        else:
            i = _argmin(n, lambda j: _load(cluster, j))
            rounds = int(-max(q) // self.quantum_w) + 1
            for j in range(n):
                q[j] += rounds * self.quantum_w
            self.refills += rounds
        uncached = req.input_len if self.charge == "full" else req.input_len - cluster.cached_tokens(i, req)
        q[i] -= self.weights.prefill(uncached) + self.weights.decode(req.output_len)
        return i


class Preble(Router):
    """Preble's global scheduler (Srivatsa et al., arXiv 2407.00023, Sec. 4; repository
    WukLab/preble, ``multi_node/global_scheduler*.py``), re-derived here.

    **E2 (exploit / explore).** Let ``h_i`` be the request's prompt tokens cached on
    instance i. *Exploit*: if the longest cached prefix is longer than what is left to
    compute (``max_i h_i > L - max_i h_i``), the request goes to an instance holding that
    prefix (among several, the one with the smallest load ``W_i``). *Explore* otherwise:
    argmin of ``W_i + P_i``, ``P_i`` = the seconds to prefill the request's uncached
    tokens on i (``cost.prefill_time(L - h_i, h_i)``).

    **Load accounting.** ``W_i`` = prefill seconds of the requests routed to i in the last
    ``window_s`` (the paper's 3-minute window; each counted with its uncached tokens at
    routing time) + decode seconds of the requests still running there (output tokens x a
    per-token step time from the cost model).

    **Rebalancing (post-assignment load adjustment).** If exploiting would put the request
    on an instance whose load exceeds ``th_bal`` times the lightest instance's, and moving
    pays (the explore choice's ``W + P`` is lower, so the shift covers recomputing the
    prefix), the prefix is shifted: the request is explored instead (it then seeds the
    prefix on a lighter instance, as Preble's load shifting does for a prefix subtree).

    Not modelled: the eviction cost ``M_i`` (its cache-full term; our instances evict
    through their own LRU), the per-prefix TTFT-doubling autoscaler, the local scheduler
    (use the queue policy, e.g. ``lpm``). Ties go to the lowest index.

    Args:
        cost: :class:`~fairsched.sim.cost.CostModel` used for the time estimates.
        window_s: load window [s] (> 0). th_bal: rebalancing ratio (> 1).

    Raises:
        ValueError: ``window_s <= 0`` or ``th_bal <= 1``.
    """

    name = "preble"

    def __init__(self, cost=None, window_s: float = 180.0, th_bal: float = 2.0):
        from collections import deque

        from fairsched.sim.cost import CostModel

        if not window_s > 0 or not th_bal > 1:
            raise ValueError(f"need window_s > 0 and th_bal > 1, got {window_s}, {th_bal}")
        self.cost = cost or CostModel()
        self.window_s, self.th_bal = float(window_s), float(th_bal)
        self._deque = deque
        self.recent: list = []  # per instance: deque of (t, prefill seconds)
        self.prefill_sum: list[float] = []
        self.decode: list[dict] = []  # per instance: rid -> decode seconds (running)
        self.exploits = self.explores = self.rebalances = 0

    def _init(self, n: int) -> None:
        self.recent = [self._deque() for _ in range(n)]
        self.prefill_sum = [0.0] * n
        self.decode = [{} for _ in range(n)]

    def load(self, i: int, now: float) -> float:
        """``W_i`` [s] at ``now`` (window of prefill seconds + running decode seconds)."""
        q = self.recent[i]
        while q and q[0][0] < now - self.window_s:
            self.prefill_sum[i] -= q.popleft()[1]
        return max(0.0, self.prefill_sum[i]) + sum(self.decode[i].values())

    def route(self, req, cluster, now: float):
        n = cluster.n_instances
        if len(self.recent) != n:
            self._init(n)
        L = req.input_len
        hits = [cluster.cached_tokens(i, req) for i in range(n)]
        W = [self.load(i, now) for i in range(n)]
        P = [self.cost.prefill_time(L - h, h) for h in hits]
        best = max(hits)
        choice = None
        if best > L - best:
            holders = [i for i in range(n) if hits[i] == best]
            choice = min(holders, key=lambda i: (W[i], i))
            alt = _argmin(n, lambda i: W[i] + P[i])
            if W[choice] > self.th_bal * min(W) and W[choice] + P[choice] > W[alt] + P[alt]:
                choice = None
                self.rebalances += 1
            else:
                self.exploits += 1
        if choice is None:
            choice = _argmin(n, lambda i: W[i] + P[i])
            self.explores += 1
        self.recent[choice].append((now, P[choice]))
        self.prefill_sum[choice] += P[choice]
        ctx = L + req.output_len / 2  # the batch shares the step's fixed cost: per sequence b_d + c_d ctx
        self.decode[choice][req.rid] = req.output_len * (self.cost.decode_b + self.cost.decode_c * ctx)
        return choice

    def on_finish(self, req, instance, now: float):
        if instance < len(self.decode):
            self.decode[instance].pop(req.rid, None)


ROUTERS = {"rr": RoundRobin, "least-load": LeastLoad, "vllm-v1": VLLMv1,
           "sglang-cache-aware": SGLangCacheAware, "linear": Linear, "lmetric": LMetric,
           "lmetric-seconds": LMetricSeconds, "d2lpm": D2LPM,
           "preble": Preble}
