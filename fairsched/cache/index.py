"""One prefix index over many radix trees: every tree's match of a prompt in one walk.

A router reads, at every arrival, how many leading units of the prompt each instance holds
(its prefix cache, and the prompts routed there: two :class:`~fairsched.cache.radix.RadixCache`
trees per instance). Walking 2N trees costs 2N walks; :class:`PrefixIndex` is a radix tree
over the *union* of their contents whose nodes carry a bitmask (a Python int) of the trees
that hold the node's whole root-to-node path, so one walk of the prompt reads every tree's
match: a tree's match ends where its bit drops out of the path (or inside the last edge).

Invariants, kept by the trees' own updates (:meth:`RadixCache.attach_index` hooks their
insert, split, eviction and drop; a tree never changes otherwise):

* a unit sequence is a path of the index iff some attached tree holds it; every node's mask
  is non-zero and contains its children's masks (each tree's content is prefix-closed);
* every attached tree's node ends on an index node (``_Node.x``), so a tree holds an index
  node's edge wholly or not at all.

Checked against the trees tree by tree under random insert / lock / unlock / evict sequences
(``tests/test_prefix_index.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from fairsched.cache.match import _common


class _XNode:
    __slots__ = ("key", "children", "parent", "mask")

    def __init__(self, key: tuple, parent: _XNode | None, mask: int):
        self.key = key  # edge label from parent (tuple of units)
        self.children: dict[int, _XNode] = {}
        self.parent = parent
        self.mask = mask  # bit t: attached tree t holds the whole root-to-node path


class PrefixIndex:
    """The union of ``n_trees`` radix trees with per-node holder masks (see the module).

    Trees attach with :meth:`RadixCache.attach_index` (tree ``t`` gets bit ``1 << t``).
    """

    def __init__(self, n_trees: int):
        self.n_trees = n_trees
        self.root = _XNode((), None, (1 << n_trees) - 1)  # every tree holds the empty prefix
        self.nodes = 1  # index nodes, root included (for tests)

    # ------------------------------------------------------------- updates (from the trees)
    def _split(self, x: _XNode, j: int) -> _XNode:
        """Split ``x``'s edge after ``j`` units; returns the new upper node (``x`` keeps the
        lower part, so a tree node's ``x`` stays valid)."""
        parent = x.parent
        assert parent is not None  # (the root is never split: its key is empty)
        upper = _XNode(x.key[:j], parent, x.mask)
        parent.children[upper.key[0]] = upper
        x.key = x.key[j:]
        x.parent = upper
        upper.children[x.key[0]] = x
        self.nodes += 1
        return upper

    def up(self, x: _XNode, k: int) -> _XNode:
        """The index node whose path ends ``k`` units above where ``x``'s ends (split there
        if that falls inside an edge)."""
        while k > 0:
            lk = len(x.key)
            if lk > k:
                return self._split(x, lk - k)
            k -= lk
            parent = x.parent
            assert parent is not None  # (k units above x's end lie below the root)
            x = parent
        return x

    def extend(self, x: _XNode, units: tuple, bit: int) -> _XNode:
        """The tree with ``bit`` now also holds the path of ``x`` followed by ``units``;
        returns the index node where that path ends."""
        i, n = 0, len(units)
        while i < n:
            c = x.children.get(units[i])
            if c is None:
                c = _XNode(units[i:], x, bit)
                x.children[units[i]] = c
                self.nodes += 1
                return c
            k = c.key
            lk = len(k)
            j = lk if (lk <= n - i and units[i:i + lk] == k) else _common(k, 0, units, i, min(lk, n - i))
            if j < lk:
                c = self._split(c, j)
            c.mask |= bit
            i += j
            x = c
        return x

    def trim(self, x: _XNode, k: int, bit: int) -> _XNode:
        """The tree with ``bit`` no longer holds the last ``k`` units (``k >= 1``) of the path
        ending at ``x`` (it held no longer path through ``x``); returns the node where its
        path now ends."""
        keep = ~bit
        while True:
            lk = len(x.key)
            if lk > k:  # the new end is inside x's edge
                if x.mask == bit:  # only this tree holds x: shorten it in place
                    x.key = x.key[:lk - k]
                    return x
                upper = self._split(x, lk - k)
                x.mask &= keep  # (non-zero: another tree holds it)
                return upper
            x.mask &= keep
            parent = x.parent
            assert parent is not None  # (the root is held by every tree: never trimmed)
            if not x.mask:  # no tree holds it: neither its children (the masks nest)
                del parent.children[x.key[0]]
                x.parent = None
                self.nodes -= 1
            k -= lk
            x = parent
            if not k:
                return x

    # ------------------------------------------------------------- queries
    def match(self, prompt: Sequence[int]) -> list[int]:
        """:meth:`RadixCache.match` of ``prompt`` in every attached tree, one walk: one unit
        count per tree, in bit order."""
        if type(prompt) is not tuple:
            prompt = tuple(prompt)
        out = [0] * self.n_trees
        for m, d in self._drops(prompt, self.root.mask, 0):
            while m:
                low = m & -m
                out[low.bit_length() - 1] = d
                m ^= low
        return out

    def _drops(self, prompt: tuple, live: int, shift: int) -> list[tuple[int, int]]:
        """Walk ``prompt``: ``[(mask, units matched)]``, each holder of ``live`` (masks folded
        by ``m | m >> shift`` when ``shift``) in exactly one mask."""
        x, i, n = self.root, 0, len(prompt)
        out = []
        while i < n:
            c = x.children.get(prompt[i])
            if c is None:
                break
            m = c.mask
            if shift:
                m |= m >> shift
            m &= live
            if m != live:
                out.append((live ^ m, i))
                if not m:
                    return out
                live = m
            k = c.key
            lk = len(k)
            if lk == 1 or prompt[i:i + lk] == k:
                i += lk
                x = c
                continue
            i += 1 if (i + 1 < n and k[1] != prompt[i + 1]) else _common(k, 0, prompt, i, min(lk, n - i))
            break
        out.append((live, i))
        return out

    def match_pairs(self, prompt: Sequence[int], block_size: int, limit: int) -> list[int]:
        """With trees ``t`` and ``t + N`` attached per instance ``t < N`` (``n_trees = 2N``:
        its cache, its routed prompts), per instance ``min(max(match_t, match_{t+N}) *
        block_size, limit)``: the router's cached tokens (``limit``: the prompt's tokens)."""
        if type(prompt) is not tuple:
            prompt = tuple(prompt)
        h = self.n_trees >> 1
        drops = self._drops(prompt, (1 << h) - 1, h)
        top = 0  # start from the value most instances share, then set the others bit by bit
        if len(drops) > 1:
            top = max(range(len(drops)), key=lambda j: drops[j][0].bit_count())
        v = drops[top][1] * block_size
        out = [v if v < limit else limit] * h
        for j, (m, d) in enumerate(drops):
            if j != top:
                v = d * block_size
                if v > limit:
                    v = limit
                while m:
                    low = m & -m
                    out[low.bit_length() - 1] = v
                    m ^= low
        return out
