"""Radix cache vs a naive per-prefix reference model (hypothesis state machine)."""

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fairsched.cache import CacheFullError, RadixCache
from fairsched.cache.match import match_tree, sequences


class NaiveCache:
    """Every cached prefix is a key (tuple) with its last access time and lock count."""

    def __init__(self, capacity=None):
        self.units: dict[tuple, float] = {}
        self.locks: dict[tuple, int] = {}
        self.capacity = capacity

    def match(self, p):
        n = 0
        while n < len(p) and tuple(p[: n + 1]) in self.units:
            n += 1
        return n

    def touch(self, p, n, now):
        for k in range(1, n + 1):
            self.units[tuple(p[:k])] = max(self.units[tuple(p[:k])], now)

    def evictable(self):
        leaves = []
        for u in self.units:
            if self.locks.get(u, 0):
                continue
            if any(len(v) == len(u) + 1 and v[: len(u)] == u for v in self.units):
                continue
            leaves.append(u)
        return leaves

    def evict(self, n):
        done = 0
        while done < n:
            leaves = self.evictable()
            if not leaves:
                break
            u = min(leaves, key=lambda x: self.units[x])
            del self.units[u]
            done += 1
        return done

    def insert(self, p, now):
        m = self.match(p)
        self.touch(p, m, now)  # (the walk marks the cached part used even if the insert fails)
        new = len(p) - m
        if self.capacity is not None and len(self.units) + new > self.capacity:
            # protect the matched path while making room
            for k in range(1, m + 1):
                self.locks[tuple(p[:k])] = self.locks.get(tuple(p[:k]), 0) + 1
            self.evict(len(self.units) + new - self.capacity)
            for k in range(1, m + 1):
                self.locks[tuple(p[:k])] -= 1
            if len(self.units) + new > self.capacity:
                raise CacheFullError
        for k in range(1, len(p) + 1):
            self.units[tuple(p[:k])] = now
        return new


prompts = st.lists(st.integers(0, 3), min_size=1, max_size=8)


def _or_full(insert, *args):
    """What an insert returns, or None where it raises CacheFullError."""
    try:
        return insert(*args)
    except CacheFullError:
        return None


class CacheMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.cap = None
        self.real = RadixCache()
        self.ref = NaiveCache()
        self.now = 0.0
        self.held: list[tuple[tuple, int]] = []

    def tick(self):
        self.now += 1.0
        return self.now

    @rule(cap=st.one_of(st.none(), st.integers(4, 20)))
    @precondition(lambda self: self.now == 0.0)
    def set_capacity(self, cap):
        self.cap = cap
        self.real = RadixCache(capacity_tokens=cap)
        self.ref = NaiveCache(cap)

    @rule(p=prompts)
    def insert(self, p):
        t = self.tick()
        assert _or_full(self.real.insert, p, t) == _or_full(self.ref.insert, p, t)

    @rule(p=prompts)
    def match(self, p):
        assert self.real.match(p) == self.ref.match(p)

    @rule(p=prompts, frac=st.floats(0, 1))
    def touch(self, p, frac):
        n = int(self.ref.match(p) * frac)
        t = self.tick()
        self.real.touch(p, n, t)
        self.ref.touch(p, n, t)

    @rule(p=prompts, frac=st.floats(0, 1))
    def lock(self, p, frac):
        n = int(self.ref.match(p) * frac)
        if n == 0:
            return
        node = self.real.lock_node(p, n)
        for k in range(1, n + 1):
            self.ref.locks[tuple(p[:k])] = self.ref.locks.get(tuple(p[:k]), 0) + 1
        self.held.append((tuple(p), n, node))

    @rule(i=st.integers(0, 10), extra=st.lists(st.integers(0, 3), max_size=4))
    @precondition(lambda self: self.held)
    def insert_at_and_relock(self, i, extra):
        """A prefill completes: its prompt enters the cache from the node locked at admission
        (insert_at) and the lock moves to the whole prompt (relock), as insert + lock + unlock."""
        k = i % len(self.held)
        p, n, node = self.held[k]
        q = p[:n] + tuple(extra)
        t = self.tick()
        a = _or_full(self.real.insert_at, node, n, q, t)
        assert a == _or_full(self.ref.insert, q, t)
        if a is None:
            return
        self.held[k] = (q, len(q), self.real.relock(node, n, q, len(q)))
        for j in range(1, len(q) + 1):
            self.ref.locks[q[:j]] = self.ref.locks.get(q[:j], 0) + 1
        for j in range(1, n + 1):
            self.ref.locks[p[:j]] -= 1

    @rule(i=st.integers(0, 10))
    @precondition(lambda self: self.held)
    def unlock(self, i):
        p, n, _ = self.held.pop(i % len(self.held))
        self.real.unlock(p, n)
        for k in range(1, n + 1):
            self.ref.locks[p[:k]] -= 1

    @rule(n=st.integers(0, 6))
    def evict(self, n):
        assert self.real.evict(n) == self.ref.evict(n)

    @invariant()
    def same_contents(self):
        assert self.real.size == len(self.ref.units)
        got = set()
        for s in sequences(self.real):
            got.update(s[:k] for k in range(1, len(s) + 1))
        assert got == set(self.ref.units)
        locked = sum(1 for u in self.ref.units if self.ref.locks.get(u, 0))
        assert self.real.locked == locked
        if self.cap is not None:
            assert self.real.size <= self.cap

    @invariant()
    def same_access_times(self):
        """Every unit's LRU time is the reference's (a node's units share its ``last``)."""
        stack = [(c, ()) for c in self.real.root.children.values()]
        while stack:
            node, pre = stack.pop()
            for j in range(1, len(node.key) + 1):
                assert self.ref.units[pre + node.key[:j]] == node.last
            stack.extend((c, pre + node.key) for c in node.children.values())


CacheMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestCacheAgainstReference = CacheMachine.TestCase


def test_locked_prefix_survives_eviction():
    c = RadixCache()
    c.insert((1, 2, 3, 4), 1.0)
    c.insert((1, 2, 9), 2.0)
    c.lock((1, 2, 3, 4), 4)
    assert c.evict(100) == 1  # only the unit 9 is evictable
    assert c.match((1, 2, 3, 4)) == 4
    c.unlock((1, 2, 3, 4), 4)
    assert c.evict(100) == 4 and c.size == 0


def test_lru_order_and_block_tokens():
    c = RadixCache(block_size=16)
    c.insert((1, 2), 1.0)
    c.insert((5, 6), 2.0)
    c.touch((1, 2), 2, 3.0)
    assert c.evict(2) == 2
    assert c.match((1, 2)) == 2 and c.match((5, 6)) == 0
    assert c.size_tokens == 32


def test_capacity_raises_when_all_locked():
    c = RadixCache(capacity_tokens=3)
    c.insert((1, 2, 3), 1.0)
    c.lock((1, 2, 3), 3)
    try:
        c.insert((7,), 2.0)
    except CacheFullError:
        pass
    else:
        raise AssertionError("expected CacheFullError")
    assert c.size == 3


@settings(max_examples=300, deadline=None)
@given(cached=st.lists(prompts, max_size=6), queries=st.lists(prompts, min_size=1, max_size=8))
def test_match_tree_equals_per_query_match(cached, queries):
    c = RadixCache()
    for p in cached:
        c.insert(p)
    w = RadixCache()
    ends = []
    for q in queries:
        w.insert(q)
        ends.append(w.lock(q, len(q)))
    got = match_tree(c, w)
    assert [got[u] for u in ends] == [c.match(q) for q in queries]
