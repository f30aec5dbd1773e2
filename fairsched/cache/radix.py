"""Radix-tree prefix cache with reference counts and unit-exact LRU eviction.

The tree stores prompt *units* (token ids, or block hashes that stand for ``block_size``
tokens each; see :mod:`fairsched.workload.request`). Each edge carries a tuple of units;
a node's children are keyed by the first unit of their edge, as in SGLang's radix cache.

Semantics (checked against a naive per-prefix model in ``tests/test_cache.py``):

* ``match(p)`` is the number of leading units of ``p`` present in the tree.
* ``insert(p)`` adds the units of ``p`` that are missing.
* ``lock(p, n)`` / ``unlock(p, n)`` add / remove one reference on the first ``n`` units;
  a unit with a reference is never evicted (an in-use prefix).
* ``evict(n)`` removes exactly ``n`` units (or all evictable ones if fewer), always the
  least recently used *leaf unit* first: a unit is evictable when it is unreferenced and
  no longer prefix in the tree extends it. Within a node all units share one access time,
  so eviction trims a leaf's edge from its tail.
* ``touch(p, n, now)`` marks the first ``n`` units as used at time ``now``.

Sizes are counted in units; ``block_size`` converts to tokens (a partial last block is
counted as a whole block: it occupies a whole KV block).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fairsched._mypyc import mypyc_attr
from fairsched.cache.match import _common, match_all  # noqa: F401  (match_all: re-exported)

if TYPE_CHECKING:
    from fairsched.cache.index import PrefixIndex


@mypyc_attr(native_class=False)
class CacheFullError(RuntimeError):
    """Raised when an insert cannot fit because every evictable unit is referenced."""


class _Node:
    __slots__ = ("key", "children", "parent", "ref", "last", "uid", "x")

    def __init__(self, key: tuple, parent: _Node | None, last: float, uid: int):
        self.key = key  # edge label from parent (tuple of units)
        self.children: dict[int, _Node] = {}
        self.parent = parent
        self.ref = 0
        self.last = last
        self.uid = uid
        # the PrefixIndex node (index._XNode) where this node's path ends; set on every node
        # while the tree is attached (RadixCache.index), None otherwise
        self.x: Any = None


class RadixCache:
    """Prefix cache over prompt units.

    Args:
        capacity_tokens: if given, ``insert`` evicts LRU units to stay within this many
            tokens and raises :class:`CacheFullError` when referenced units prevent it.
            ``None`` (the simulator's choice) leaves capacity to the caller, who calls
            :meth:`evict` itself because KV memory is shared with running requests.
        block_size: tokens per unit.
        lru: keep the LRU order (default). ``False`` suits a tree of locked prompts (the
            prompts routed to an instance, those being prefilled): no LRU heap is kept, and a
            node no lock holds any more leaves the tree at once (:meth:`unlock_node` prunes
            it), which is what :meth:`clear` after every unlock would leave; :meth:`evict`
            then removes unreferenced units in no particular order.
    Raises:
        ValueError: on a non-positive ``block_size`` or negative capacity.
    """

    def __init__(self, capacity_tokens: int | None = None, block_size: int = 1, lru: bool = True):
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        if capacity_tokens is not None and capacity_tokens < 0:
            raise ValueError(f"capacity_tokens must be >= 0, got {capacity_tokens}")
        self.block_size = block_size
        self.lru = lru
        self.capacity_units = None if capacity_tokens is None else capacity_tokens // block_size
        self._uids = itertools.count()
        self.root = _Node((), None, 0.0, next(self._uids))
        self.root.ref = 1  # never evicted
        self.size = 0  # units in the tree
        self.locked = 0  # units in nodes with ref > 0 (excluding root)
        self.version = 0  # bumped whenever the set of cached units changes
        self.evicted = 0  # units evicted so far (for invariant audits)
        self._heap: list[tuple[float, int, _Node]] = []  # candidate LRU leaves (lazy)
        self.index: PrefixIndex | None = None  # the PrefixIndex this tree is attached to
        self.xbit = 0  # its bit

    # ------------------------------------------------------------------ queries
    @property
    def size_tokens(self) -> int:
        """Cached tokens (units times ``block_size``)."""
        return self.size * self.block_size

    @property
    def evictable(self) -> int:
        """Units that :meth:`evict` could remove now."""
        return self.size - self.locked

    def match(self, prompt: Sequence[int]) -> int:
        """Number of leading units of ``prompt`` that are cached. No side effects."""
        return match_all((self,), prompt)[0]

    # ------------------------------------------------------------------ internals
    def _walk(self, prompt: Sequence[int], n: int, now: float | None, node: _Node | None = None,
              i: int = 0) -> tuple[_Node, int]:
        """Walk the first ``n`` units, splitting at the boundary so that it ends on a node.
        Returns the deepest node reached and the units covered (<= n). ``node``, ``i``: start
        there instead of the root, ``node`` ending on the prompt's path at depth ``i`` (its
        ancestors are not touched)."""
        if type(prompt) is not tuple:
            prompt = tuple(prompt)
        if node is None:
            node = self.root
        while i < n:
            child = node.children.get(prompt[i])
            if child is None:
                break
            k = child.key
            lk = len(k)
            if lk <= n - i and prompt[i:i + lk] == k:  # the whole edge (one C compare)
                j = lk
            else:
                j = _common(k, 0, prompt, i, min(lk, n - i))
                if j < lk:
                    child = self._split(child, j)
            if now is not None and child.last < now:
                child.last = now
            i += j
            node = child
            if j < lk:
                break
        return node, i

    def _split(self, node: _Node, j: int) -> _Node:
        """Split ``node``'s edge after ``j`` units; returns the new upper node."""
        parent = node.parent
        assert parent is not None  # (the root is never split: its key is empty)
        upper = _Node(node.key[:j], parent, node.last, next(self._uids))
        upper.ref = node.ref
        parent.children[upper.key[0]] = upper
        node.key = node.key[j:]
        node.parent = upper
        upper.children[node.key[0]] = node
        if self.index is not None:
            upper.x = self.index.up(node.x, len(node.key))
        return upper

    def _touch_path(self, node: _Node, now: float) -> None:
        """Mark ``node`` and its ancestors as used at ``now`` (LRU; a later time is kept)."""
        root = self.root
        while node is not root:
            if node.last < now:
                node.last = now
            up = node.parent
            assert up is not None  # (walks stop at the root, the only node without a parent)
            node = up

    def _push_if_leaf(self, node: _Node) -> None:
        if self.lru and node is not self.root and not node.children and node.ref == 0:
            heapq.heappush(self._heap, (node.last, node.uid, node))

    # ------------------------------------------------------------------ updates
    def insert(self, prompt: Sequence[int], now: float = 0.0) -> int:
        """Insert ``prompt``; returns the number of units added (0 if all were cached).

        Marks the whole path as used at ``now``. With a capacity, evicts LRU units first.
        Raises:
            CacheFullError: with a capacity, when referenced units leave no room.
        """
        return self._insert(prompt, now)[0]

    def insert_lock(self, prompt: Sequence[int], now: float = 0.0) -> _Node:
        """:meth:`insert` then :meth:`lock_node` of the whole prompt, in one walk; returns the
        node where the prompt ends (release with :meth:`unlock_node`).

        Raises:
            CacheFullError: as :meth:`insert`.
        """
        new, node = self._insert(prompt, now)
        if node is not self.root:
            self._ref_path(node, +1)
        return node

    def insert_at(self, held: _Node, depth: int, prompt: Sequence[int], now: float = 0.0) -> int:
        """:meth:`insert`, given ``held``, a node locked by :meth:`lock_node` of the first
        ``depth`` units of ``prompt``: the walk starts there (its path is touched upwards).

        Raises:
            CacheFullError: as :meth:`insert`.
        """
        self._touch_path(held, now)
        return self._insert(prompt, now, held, depth)[0]

    def relock(self, held: _Node, depth: int, prompt: Sequence[int], n: int) -> _Node:
        """:meth:`lock_node` of the first ``n`` units of ``prompt`` then :meth:`unlock_node`
        of ``held`` (locked, ending at ``depth <= n`` on the prompt's path), in one walk from
        ``held``: only the references below it change. Returns the new locked node.

        Raises:
            KeyError: if fewer than ``n`` units of ``prompt`` are cached.
        """
        end, i = self._walk(prompt, n, None, held, depth)
        if i < n:
            raise KeyError(f"lock: only {i} of {n} units cached")
        node = end
        while node is not held:
            if node.ref == 0:
                self.locked += len(node.key)
            node.ref += 1
            up = node.parent
            assert up is not None  # (held is above end)
            node = up
        return end

    def _insert(self, prompt: Sequence[int], now: float, start: _Node | None = None,
                depth: int = 0) -> tuple[int, _Node]:
        """:meth:`insert`; also returns the node where the prompt ends (``start``, ``depth``:
        as :meth:`_walk`)."""
        n = len(prompt)
        node, i = self._walk(prompt, n, now, start, depth)
        new = n - i
        if new == 0:
            return 0, node
        if self.capacity_units is not None:
            over = self.size + new - self.capacity_units
            if over > 0:
                # protect the path we are extending from eviction while we make room
                self._ref_path(node, +1)
                try:
                    if self.evict(over) < over:
                        raise CacheFullError(
                            f"need {over} units, only {self.evictable} evictable (capacity "
                            f"{self.capacity_units} units)")
                finally:
                    self._ref_path(node, -1)
        # (if node was a leaf, its heap entry becomes stale and is skipped)
        leaf = _Node(tuple(prompt[i:]), node, now, next(self._uids))
        node.children[leaf.key[0]] = leaf
        if self.index is not None:
            leaf.x = self.index.extend(node.x, leaf.key, self.xbit)
        self.size += new
        self.version += 1
        if self.lru:  # (_push_if_leaf: a new leaf is unreferenced)
            heapq.heappush(self._heap, (now, leaf.uid, leaf))
        return new, leaf

    def _ref_path(self, node: _Node, d: int) -> None:
        """Add ``d`` (+1 or -1) to the references of ``node`` and its ancestors."""
        root, freed = self.root, 0
        if d > 0:
            while node is not root:
                if not node.ref:
                    freed -= len(node.key)
                node.ref += 1
                up = node.parent
                assert up is not None  # (walks stop at the root)
                node = up
        else:
            while node is not root:
                node.ref -= 1
                parent = node.parent
                assert parent is not None  # (walks stop at the root)
                if not node.ref:
                    freed += len(node.key)
                    if not node.children:
                        if self.lru:  # (_push_if_leaf)
                            heapq.heappush(self._heap, (node.last, node.uid, node))
                        else:  # no LRU order: an unreferenced leaf goes at once
                            self._drop(node)
                node = parent
        self.locked -= freed

    def _drop(self, node: _Node) -> None:
        """Remove the leaf ``node`` (unreferenced) from the tree."""
        if self.index is not None:
            self.index.trim(node.x, len(node.key), self.xbit)
        parent = node.parent
        assert parent is not None  # (a leaf below the root)
        del parent.children[node.key[0]]
        node.parent = None
        self.size -= len(node.key)
        self.evicted += len(node.key)
        self.version += 1

    def lock(self, prompt: Sequence[int], n: int) -> int:
        """Add a reference to the first ``n`` units of ``prompt`` (they must be cached).

        Returns the id (``uid``) of the node where the locked prefix ends; it stays valid
        while the lock is held (see :func:`~fairsched.cache.match.match_tree`).
        Raises:
            KeyError: if fewer than ``n`` units of ``prompt`` are cached.
        """
        return self.lock_node(prompt, n).uid

    def lock_node(self, prompt: Sequence[int], n: int) -> _Node:
        """:meth:`lock`, returning the node where the locked prefix ends (the root if
        ``n <= 0``). While the lock is held that node stays in the tree and keeps ending at
        depth ``n`` (a split keeps the lower part, eviction spares referenced nodes), so
        :meth:`unlock_node` and :meth:`touch_node` can start from it without a walk.

        Raises:
            KeyError: if fewer than ``n`` units of ``prompt`` are cached.
        """
        if n <= 0:
            return self.root
        node, i = self._walk(prompt, n, None)
        if i < n:
            raise KeyError(f"lock: only {i} of {n} units cached")
        self._ref_path(node, +1)
        return node

    def unlock_node(self, node: _Node) -> None:
        """Remove the reference added by the :meth:`lock_node` (or :meth:`insert_lock`) that
        returned ``node``: :meth:`unlock` without the walk.

        Raises:
            KeyError: if ``node`` is not referenced.
        """
        if node is self.root:
            return
        if node.ref <= 0:
            raise KeyError("unlock: prefix is not locked")
        self._ref_path(node, -1)

    def touch_node(self, node: _Node, now: float) -> None:
        """:meth:`touch` of the prefix ending at ``node`` (locked, from :meth:`lock_node`)."""
        self._touch_path(node, now)
        self._push_if_leaf(node)

    def unlock(self, prompt: Sequence[int], n: int) -> None:
        """Remove a reference added by :meth:`lock` with the same ``prompt`` and ``n``.

        Raises:
            KeyError: if the units are not cached or not referenced.
        """
        if n <= 0:
            return
        node, i = self._walk(prompt, n, None)
        if i < n or node.ref <= 0:
            raise KeyError(f"unlock: prefix of {n} units is not locked")
        self._ref_path(node, -1)

    def touch(self, prompt: Sequence[int], n: int, now: float) -> None:
        """Mark the first ``n`` cached units of ``prompt`` as used at ``now`` (LRU)."""
        if n > 0:
            node, _ = self._walk(prompt, n, now)
            self._push_if_leaf(node)

    def evict(self, n: int) -> int:
        """Evict up to ``n`` unreferenced units, least recently used leaf first.

        Returns the number of units evicted (less than ``n`` only if nothing else is
        evictable). Terminates whatever the access times (even NaN): every heap entry
        popped is dropped, evicts units, or is replaced by one with a strictly later time.
        """
        if not self.lru:
            return self._evict_unordered(n)
        done = 0
        heap, index, bit = self._heap, self.index, self.xbit
        # The least entry is read in place and popped only when it leaves: a leaf trimmed
        # in part keeps its key, so it stays the least (heapq pops the same key sequence
        # whatever the layout; equal keys are the same node).
        while done < n and heap:
            last, _, node = heap[0]
            if node.children or node.ref or node.parent is None:
                heapq.heappop(heap)  # not an evictable leaf now; _push_if_leaf queues it when it becomes one
                continue
            if node.last > last:  # touched since it was queued: re-queue at its new time
                heapq.heapreplace(heap, (node.last, node.uid, node))
                continue
            k = len(node.key)
            take = n - done
            if take > k:
                take = k
            done += take
            if index is not None:
                node.x = index.trim(node.x, take, bit)
            if take < k:
                node.key = node.key[:-take]
                break  # (done == n)
            heapq.heappop(heap)
            parent = node.parent
            del parent.children[node.key[0]]
            node.parent = None
            if not parent.children and not parent.ref:  # (_push_if_leaf; the root has a ref)
                heapq.heappush(heap, (parent.last, parent.uid, parent))
        if done:
            self.size -= done
            self.version += 1
            self.evicted += done
        return done

    def _evict_unordered(self, n: int) -> int:
        """:meth:`evict` without an LRU order (``lru=False``): unreferenced leaves, in no
        particular order, until ``n`` units are gone (or none is left); returns how many."""
        done = 0
        stack = [(self.root, False)]  # post-order: a node after its children
        while stack and done < n:
            node, seen = stack.pop()
            if not seen and node.children:
                stack.append((node, True))
                stack.extend((c, False) for c in node.children.values())
                continue
            if node.children or node is self.root or node.ref:
                continue
            take = min(n - done, len(node.key))
            done += take
            if take < len(node.key):
                if self.index is not None:
                    node.x = self.index.trim(node.x, take, self.xbit)
                node.key = node.key[:-take]
                self.size -= take
                self.evicted += take
                self.version += 1
            else:
                self._drop(node)
        return done

    def clear(self) -> None:
        """Drop every unreferenced unit."""
        if self.lru or self.size > self.locked:
            self.evict(self.size)

    def attach_index(self, index, t: int) -> None:
        """Keep :class:`~fairsched.cache.index.PrefixIndex` ``index`` up to date with this
        tree's content as tree ``t`` (bit ``1 << t``), starting with what it holds now."""
        self.index, self.xbit = index, 1 << t
        self.root.x = index.root
        stack = [self.root]
        while stack:
            node = stack.pop()
            for c in node.children.values():
                c.x = index.extend(node.x, c.key, self.xbit)
                stack.append(c)
