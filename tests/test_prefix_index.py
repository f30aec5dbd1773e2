"""The cluster-wide prefix index (fairsched.cache.index) reads every tree's match exactly as
the trees do, whatever sequence of inserts, locks, unlocks, splits and evictions made them
(issue 13: routing walks the prompt once instead of once per tree)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from fairsched.cache.index import PrefixIndex
from fairsched.cache.radix import RadixCache


def _index_paths(ix):
    """Every index node as (path, mask), root excluded."""
    out, stack = [], [(ix.root, ())]
    while stack:
        x, pre = stack.pop()
        for c in x.children.values():
            assert c.parent is x and c.key and c.key[0] in x.children
            out.append((pre + c.key, c.mask, x.mask))
            stack.append((c, pre + c.key))
    return out


def _check(ix, trees, probes):
    """The index's invariants and its answers against the trees'."""
    nodes = _index_paths(ix)
    assert len(nodes) + 1 == ix.nodes
    for path, mask, pmask in nodes:
        assert mask and mask & pmask == mask  # non-empty, nested in the parent's
        for t, tree in enumerate(trees):  # bit t iff tree t holds the whole path
            assert bool(mask >> t & 1) == (tree.match(path) == len(path)), (path, t)
    for tree in trees:  # every tree node ends on an index node
        stack = [(tree.root, ())]
        while stack:
            nd, pre = stack.pop()
            pre = pre + nd.key
            x, xs = nd.x, ()
            while x is not None:
                xs = x.key + xs
                x = x.parent
            assert xs == pre
            stack.extend((c, pre) for c in nd.children.values())
    n = len(trees) // 2
    for p in probes:
        want = [tree.match(p) for tree in trees]
        assert ix.match(p) == want
        bs, limit = 4, 4 * len(p) - 1
        assert ix.match_pairs(p, bs, limit) == [min(max(want[i], want[i + n]) * bs, limit) for i in range(n)]


unit = st.integers(0, 3)
prompt = st.lists(unit, min_size=1, max_size=7).map(tuple)


@given(st.lists(st.tuples(st.sampled_from(["insert", "lock", "unlock", "touch", "evict", "clear"]),
                          st.integers(0, 3), prompt, st.integers(0, 8)), max_size=40),
       st.lists(prompt, min_size=1, max_size=4), st.booleans())
@settings(max_examples=200, deadline=None)
def test_index_reads_every_tree_as_the_tree_does(ops, probes, late):
    """Two instances (trees 0-1: LRU caches, 2-3: lock-only routed trees, as the simulator's);
    after every operation each index node's mask says exactly which trees hold its path, and
    the one-walk matches equal the per-tree walks. ``late``: attached after the first half
    (the index is built from what the trees hold then)."""
    trees = [RadixCache(None, 4), RadixCache(None, 4), RadixCache(None, 4, lru=False), RadixCache(None, 4, lru=False)]
    ix = PrefixIndex(4)
    held = []  # (tree, node)
    start = len(ops) // 2 if late else 0
    for k, (op, t, p, n) in enumerate(ops):
        if k == start:
            for j, tree in enumerate(trees):
                tree.attach_index(ix, j)
        tree = trees[t]
        if op == "insert":
            tree.insert(p, float(k))
        elif op == "lock":
            if tree.lru and tree.match(p) >= min(n, len(p)):
                held.append((tree, tree.lock_node(p, min(n, len(p)))))
            elif not tree.lru:
                held.append((tree, tree.insert_lock(p, float(k))))
        elif op == "unlock" and held:
            tr, nd = held.pop(n % len(held))
            tr.unlock_node(nd)
        elif op == "touch" and held:
            tr, nd = held[n % len(held)]
            tr.touch_node(nd, float(k))
        elif op == "evict":
            tree.evict(n)
        elif op == "clear":
            tree.clear()
        if k >= start:
            _check(ix, trees, probes + [p])


def test_index_of_empty_trees_matches_nothing_and_drops_evicted_paths():
    a, b = RadixCache(None, 1), RadixCache(None, 1)
    ix = PrefixIndex(2)
    a.attach_index(ix, 0)
    b.attach_index(ix, 1)
    assert ix.match((1, 2, 3)) == [0, 0]
    a.insert((1, 2, 3, 4))
    b.insert((1, 2, 9))
    assert ix.match((1, 2, 3, 5)) == [3, 2]
    assert ix.match_pairs((1, 2, 3, 5), 16, 40) == [40]  # max(3, 2) blocks = 48 tokens, capped
    a.evict(4)
    assert ix.match((1, 2, 3, 5)) == [0, 2]
    b.evict(3)
    assert ix.nodes == 1 and not ix.root.children


def test_simulator_routing_read_is_the_per_tree_read(monkeypatch):
    """In a run with evictions, LMetric's cluster read through the index
    (ClusterBackend.instance_state) equals routed_cached_all's walk of every tree, at every
    arrival (the trees are the instances' own, changed by the simulator)."""
    from fairsched.sim import InstanceConfig, simulate
    from fairsched.sim.backend import ClusterBackend
    from fairsched.sim.routing import routed_cached_all
    from fairsched.workload import default_workload

    reads = []
    plain = ClusterBackend.instance_state

    def checked(self, req):
        out = plain(self, req)
        assert out[2] == routed_cached_all(self.instances, req)
        reads.append(out[2])
        return out

    monkeypatch.setattr(ClusterBackend, "instance_state", checked)
    res = simulate(default_workload(0).head(600), "fcfs", "lmetric", 3,
                   InstanceConfig(max_batch_size=8, kv_capacity_tokens=20_000), audit=True)
    assert len(reads) == 600 and sum(len(set(r)) > 1 for r in reads) > 50  # instances differ often
    assert max(a[-1] for a in res.audit) > 0  # the caches did evict
