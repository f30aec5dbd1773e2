"""The simulator's fast paths give the very floats of the plain ones, and a run that leaves
requests unfinished is an error (issue 13). Speed itself is measured in bench/bench_scale.py."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairsched.cache.radix import RadixCache, match_all
from fairsched.policies.queue import FCFS
from fairsched.sim import CostModel, UnfinishedError, simulate
from fairsched.workload.request import make_workload


class NeverAdmits(FCFS):
    """Queues every request and admits none: the instance goes idle with work left."""

    def schedule(self, inst, now):
        return None


def _workload(n=6):
    return make_workload([(0.1 * i, f"c{i % 2}", (i, i + 1), 8, 3) for i in range(n)], block_size=4)


def test_unfinished_run_raises_with_the_count():
    with pytest.raises(UnfinishedError, match="6 of 6 requests never finished") as e:
        simulate(_workload(), NeverAdmits)
    assert e.value.n_unfinished == 6 and e.value.result.n_finished == 0
    assert isinstance(e.value, ValueError)  # the CLI reports it as one line, exit 2


def test_unfinished_run_returned_when_allowed():
    res = simulate(_workload(), NeverAdmits, allow_unfinished=True)
    assert res.n_finished == 0 and np.isnan(res.finish_t).all()
    assert simulate(_workload()).n_finished == 6  # a normal run is untouched


@pytest.mark.parametrize("cm", [CostModel(), CostModel(decode_q=3e-11, decode_c=8e-7, decode_e=2e-3)])
def test_vector_decode_run_times_are_the_scalar_floats(cm):
    """StepTimes uses decode_run_times: bit for bit the floats of decode_run_time (the times
    the run's events use), so the service log does not move by one ulp."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        b, ctx, k = int(rng.integers(1, 300)), int(rng.integers(1, 3_000_000)), int(rng.integers(1, 2000))
        t0 = float(rng.uniform(0, 1e5))
        vec = t0 + cm.decode_run_times(b, ctx, k)
        one = np.array([t0 + cm.decode_run_time(b, ctx, m) for m in range(1, k + 1)])
        assert np.array_equal(vec, one)


def _tree_state(t):
    """Everything a RadixCache's later behaviour depends on: nodes (path, ref, last), the
    sizes, and the LRU heap's entries in heap order."""
    nodes, stack = [], [(t.root, ())]
    while stack:
        n, pre = stack.pop()
        pre = pre + n.key
        nodes.append((pre, n.ref, n.last))
        stack.extend((c, pre) for c in n.children.values())
    heap = [(last, uid, id(nd) and nd.key) for last, uid, nd in t._heap]
    return sorted(nodes), t.size, t.locked, t.version, t.evicted, heap


@given(st.lists(st.tuples(st.sampled_from(["ins", "lock", "unlock", "touch", "evict", "clear"]),
                          st.lists(st.integers(0, 3), min_size=1, max_size=6), st.integers(0, 6)),
                max_size=40))
@settings(max_examples=150, deadline=None)
def test_node_handles_do_what_the_walks_do(ops):
    """lock_node / unlock_node / touch_node / insert_lock (the simulator's walk-free hot path)
    leave a tree exactly as lock / unlock / touch / insert + lock leave another, heap included;
    match_all equals match tree by tree."""
    a, b = RadixCache(None, 4), RadixCache(None, 4)
    held: list[tuple[tuple, int, object]] = []  # (prompt, n, node of b)
    for now, (op, p, n) in enumerate(ops):
        p = tuple(p)
        if op == "ins":
            a.insert(p, float(now))
            a.lock(p, len(p))
            held.append((p, len(p), b.insert_lock(p, float(now))))
        elif op == "lock" and a.match(p) >= min(n, len(p)):
            n = min(n, len(p))
            a.lock(p, n)
            held.append((p, n, b.lock_node(p, n)))
        elif op in ("unlock", "touch") and held:
            q, m, node = held[n % len(held)]
            if op == "unlock":
                held.remove((q, m, node))
                a.unlock(q, m)
                b.unlock_node(node)
            else:
                a.touch(q, m, float(now))
                b.touch_node(node, float(now))
        elif op == "evict":
            assert a.evict(n) == b.evict(n)
        elif op == "clear":
            a.clear()
            b.clear()
        assert _tree_state(a) == _tree_state(b)
        assert match_all([a, b, RadixCache(None, 4)], p) == [a.match(p), b.match(p), 0]


def _paths(t):
    """A tree's nodes as (path, ref) and its sizes: what matches and locks depend on."""
    nodes, stack = [], [(t.root, ())]
    while stack:
        n, pre = stack.pop()
        pre = pre + n.key
        nodes.append((pre, n.ref))
        stack.extend((c, pre) for c in n.children.values())
    return sorted(nodes), t.size, t.locked


@given(st.lists(st.tuples(st.sampled_from(["lock", "lock", "unlock", "insert", "evict", "clear"]),
                          st.lists(st.integers(0, 3), min_size=1, max_size=6), st.integers(0, 8)),
                max_size=40))
@settings(max_examples=150, deadline=None)
def test_lru_free_tree_is_the_cleared_tree(ops):
    """RadixCache(lru=False), the instance's trees of routed and in-flight prompts, holds after
    every operation what an LRU tree holds after the same operation and clear() after each
    unlock (what the simulator did): same paths, references, sizes and matches; no heap.
    Unlocked plain inserts stay until evict / clear, which never remove a locked unit."""
    a, b = RadixCache(None, 4), RadixCache(None, 4, lru=False)
    held: list[tuple[object, object]] = []
    for now, (op, p, n) in enumerate(ops):
        p = tuple(p)
        if op == "lock":
            held.append((a.insert_lock(p, float(now)), b.insert_lock(p, float(now))))
        elif op == "unlock" and held:
            na, nb = held.pop(n % len(held))
            a.unlock_node(na)
            a.clear()
            b.unlock_node(nb)
            a_only = _paths(a)
            b.clear()  # (nothing left to drop but plain inserts, cleared from `a` too)
            assert _paths(b) == a_only
        elif op == "insert":
            a.insert(p, float(now))
            b.insert(p, float(now))
        elif op == "evict":
            got = b.evict(n)
            assert got == min(n, b.size + got - b.locked)  # exactly n, or all that was unlocked
            a.evict(a.size)  # both now hold exactly their locked units
            b.evict(b.size)
        elif op == "clear":
            a.clear()
            b.clear()
        if op != "insert":
            assert _paths(a) == _paths(b)
        assert b.locked <= b.size and not b._heap
        assert match_all([a, b], p) == [a.match(p), b.match(p)] and a.match(p) == b.match(p)


@pytest.mark.parametrize("admission", ["reserve", "peak"])
def test_decode_context_counter_is_the_sum(admission, monkeypatch):
    """InstanceBase._ctx() (kept up to date by end_step) equals the sum over the decoding
    sequences of prompt + generated tokens at every iteration boundary."""
    from fairsched.sim.instance import InstanceBase

    seen = []
    plain = InstanceBase.start_step

    def start_step(self, now):
        want = sum(s.req.input_len + s.generated for s in self.decoding)
        assert self._ctx() == want
        seen.append(want)
        return plain(self, now)

    monkeypatch.setattr(InstanceBase, "start_step", start_step)
    rng = np.random.default_rng(1)
    reqs = [(0.05 * i, f"c{i % 5}", tuple(int(u) for u in rng.integers(0, 4, 3)), int(rng.integers(5, 40)),
             int(rng.integers(1, 30))) for i in range(60)]
    res = simulate(make_workload(reqs, block_size=16), "vtc", admission=admission)
    assert res.n_finished == 60 and max(seen) > 0


def test_router_read_handed_to_the_instance_is_what_it_would_compute(monkeypatch):
    """The instance a router picked takes the router's read of its cache (ClusterBackend
    keeps it from instance_state to the enqueue); that read equals the instance's own
    routed_cached_tokens at that moment, for every request."""
    from fairsched.sim.instance import InstanceBase

    plain, handed = InstanceBase.accept, []

    def accept(self, req, now, cached=None):
        if cached is not None:
            assert cached == self.routed_cached_tokens(req)
            handed.append(req.rid)
        return plain(self, req, now, cached)

    monkeypatch.setattr(InstanceBase, "accept", accept)
    rng = np.random.default_rng(2)
    reqs = [(0.02 * i, f"c{i % 7}", (0, i % 7, *(int(u) for u in rng.integers(0, 3, 2))), 60, int(rng.integers(1, 20)))
            for i in range(80)]
    res = simulate(make_workload(reqs, block_size=16), "fcfs", "lmetric", 3)
    assert res.n_finished == 80 and len(handed) == 80


@pytest.mark.parametrize("n_instances", [1, 3])
def test_deferred_decode_accounting_is_exact(n_instances):
    """The compact log's deferred decode accounting (ClusterBackend._settle: token service,
    FCFS, InstanceRecorder) gives the same SimResult, to the last bit, as accounting every
    decode event as it happens: service log, unlogged totals, per-instance X and logs."""
    from array import array

    from fairsched.sim import Simulator
    from fairsched.sim.recorder import InstanceRecorder

    rng = np.random.default_rng(3)
    t = np.cumsum(rng.exponential(0.08, 400))
    reqs = [(float(t[i]), f"c{int(rng.integers(0, 40))}", (0, *(int(u) for u in rng.integers(0, 6, 3))),
             int(rng.integers(20, 200)), int(rng.integers(1, 300))) for i in range(400)]
    w = make_workload(reqs, block_size=16)
    runs, settled = [], []
    for defer in (True, False):
        sim = Simulator(w, "fcfs", "lmetric" if n_instances > 1 else None, n_instances,
                        service_log="backlogged", recorders=(InstanceRecorder(),))
        assert sim._defer
        sim._defer = defer
        plain = sim._settle
        sim._settle = lambda c, only=None, plain=plain, d=defer: (settled.append((d, only is None)), plain(c, only))
        runs.append(sim.run())
    assert (True, True) in settled and (True, False) in settled and all(d for d, _ in settled)
    a, b = (vars(r) for r in runs)
    assert a.keys() == b.keys()
    for k in a:
        if k == "workload":
            continue
        x, y = a[k], b[k]
        if isinstance(x, (array, np.ndarray)):
            x, y = np.asarray(x), np.asarray(y)
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), k
        else:
            assert repr(x) == repr(y), k
    assert runs[0].n_finished == 400 and len(runs[0].svc_t) > 0


_prompts = st.lists(st.integers(0, 2), min_size=1, max_size=6).map(tuple)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_prompts, st.integers(0, 6)), max_size=4), _prompts, st.integers(0, 6))
def test_prefill_overlap_is_the_tree_of_prompts_being_prefilled(running, p, m):
    """The DEFERRED rule's scan (InstanceBase._overlaps_prefill) answers what the tree of the
    prompts being prefilled with blocks of their own did (it replaced that tree): its match
    of ``p`` is longer than ``p``'s ``m`` usable cached units."""
    from types import SimpleNamespace

    from fairsched.sim.instance import InstanceBase

    m = min(m, len(p))
    seqs = [SimpleNamespace(req=SimpleNamespace(prompt=q), matched=min(k, len(q))) for q, k in running]
    tree = RadixCache(None, 1, lru=False)
    for s in seqs:
        if s.matched < len(s.req.prompt):
            tree.insert_lock(s.req.prompt)
    want = bool(tree.size) and tree.match(p) > m
    assert InstanceBase._overlaps_prefill(SimpleNamespace(prefilling=seqs), p, m) == want


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5000), st.floats(1e-4, 1.0), st.integers(1, 300), st.integers(0, 10**7))
def test_run_seconds_without_dq_is_the_full_closed_form(m, step, b, ctx):
    """With d_q = 0 the closed form skips its d_q term: the same float as with it (0.0 added)."""
    from fairsched.sim.cost import _s12, run_seconds

    cm = CostModel()
    coef = cm.run_coef(b, ctx)
    assert coef[1] == 0.0
    s1, s2 = _s12(m)
    full = m * step + coef[0] * s1 + coef[1] * (coef[2] * s1 + coef[3] * s2)
    assert run_seconds(m, step, coef) == full
    ms = np.arange(1, m + 1)
    s1v, s2v = _s12(ms)
    fullv = ms * step + coef[0] * s1v + coef[1] * (coef[2] * s1v + coef[3] * s2v)
    assert np.array_equal(run_seconds(ms, step, coef, (s1v, s2v)), fullv)


@pytest.mark.parametrize("policy", ["fcfs", "dlpm-global"])
@pytest.mark.parametrize("admission", ["reserve", "peak"])
def test_load_counter_is_waiting_plus_running(policy, admission, monkeypatch):
    """InstanceBase.load (kept at accept, _finish and a dlpm-global pull) equals waiting +
    prefilling + decoding at every iteration boundary and every routing read."""
    from fairsched.sim.backend import ClusterBackend
    from fairsched.sim.instance import InstanceBase

    seen = []

    def check(insts):
        for inst in insts:
            assert inst.load == inst.waiting + len(inst.prefilling) + len(inst.decoding) == len(inst.policy) + \
                len(inst.prefilling) + len(inst.decoding)
            seen.append(inst.load)

    plain_step, plain_state = InstanceBase.start_step, ClusterBackend.instance_state

    def start_step(self, now):
        check([self])
        return plain_step(self, now)

    def instance_state(self, req):
        check(self.instances)
        loads, queued, cached = plain_state(self, req)
        assert loads == [i.load for i in self.instances] and queued == [i.pending_prefill for i in self.instances]
        return loads, queued, cached

    monkeypatch.setattr(InstanceBase, "start_step", start_step)
    monkeypatch.setattr(ClusterBackend, "instance_state", instance_state)
    rng = np.random.default_rng(3)
    reqs = [(0.01 * i, f"c{i % 4}", tuple(int(u) for u in rng.integers(0, 3, 3)), int(rng.integers(20, 60)),
            int(rng.integers(1, 25))) for i in range(90)]
    kw = {"policy_params": {"quantum": 40.0}} if policy == "dlpm-global" else {}
    res = simulate(make_workload(reqs, block_size=16), policy, "lmetric", 3, admission=admission, **kw)
    assert res.n_finished == 90 and max(seen) > 3


def test_hot_objects_keep_every_attribute_in_slots():
    """The simulator and its instances hold more attributes than CPython's shared-key instance
    dicts (30), so the hot path reads them from ``__slots__``; an attribute added without its
    slot would land in ``__dict__`` (a dict lookup on every read). After a run, both are empty."""
    from fairsched.sim import Simulator
    from fairsched.sim.recorder import InstanceRecorder

    sim = Simulator(_workload(12), "fcfs", "lmetric", 2, recorders=(InstanceRecorder(),),
                    service_log="backlogged")
    res = sim.run()
    assert res.n_finished == 12
    assert vars(sim) == {} and all(vars(inst) == {} for inst in sim.instances)
