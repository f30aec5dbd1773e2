"""Prefix matching against radix trees (:mod:`fairsched.cache.radix`), the read-only walks:
how many leading units of a prompt each tree holds (the hot path of routing), how many
units of every path of a tree of queries one tree holds (LPM's queue order), and every
sequence a tree holds (tests and debugging)."""

from __future__ import annotations

from collections.abc import Sequence


def _common(a: Sequence[int], ai: int, b: Sequence[int], bi: int, lim: int) -> int:
    """Length of the common prefix of ``a[ai:]`` and ``b[bi:]``, at most ``lim``, given
    that the first units match. Galloping slice compares run in C, so a mismatch deep in a
    long edge costs O(log n) Python steps instead of a per-unit loop."""
    lo, step = 1, 16
    while lo < lim:
        hi = min(lim, lo + step)
        if a[ai + lo:ai + hi] == b[bi + lo:bi + hi]:
            lo, step = hi, step * 2
            continue
        while hi - lo > 16:  # the first mismatch is in [lo, hi): bisect
            mid = (lo + hi) // 2
            if a[ai + lo:ai + mid] == b[bi + lo:bi + mid]:
                lo = mid
            else:
                hi = mid
        while a[ai + lo] == b[bi + lo]:
            lo += 1
        return lo
    return lim


def match_all(trees: Sequence, prompt: Sequence[int]) -> list[int]:
    """:meth:`RadixCache.match` of one ``prompt`` in each of ``trees`` (RadixCache objects), in
    one call (a router reads two trees per instance at every arrival). Returns one unit count
    per tree."""
    if type(prompt) is not tuple:
        prompt = tuple(prompt)
    n = len(prompt)
    out = []
    for tree in trees:
        node, i = tree.root, 0
        while i < n:
            child = node.children.get(prompt[i])
            if child is None:
                break
            k = child.key
            lk = len(k)
            if lk == 1 or prompt[i:i + lk] == k:  # (one unit: its key is the unit just looked up)
                i += lk
                node = child
                continue
            if lk > 1 and i + 1 < n and k[1] != prompt[i + 1]:  # (often: diverges at once)
                i += 1
            else:
                i += _common(k, 0, prompt, i, min(lk, n - i))
            break
        out.append(i)
    return out


def match_tree(cache, other) -> dict[int, int]:
    """Cached units of ``cache`` along every path of ``other`` (both ``RadixCache`` objects),
    in one simultaneous walk.

    ``other`` is a tree of *queries* (e.g. the prompts waiting in a queue). Returns
    ``{uid of a node of other: units of its root-to-node path cached in cache}``. A prefix
    shared by many queries is compared once, not once per query; queries that diverged
    from ``cache`` inherit their ancestor's value without any comparison.
    """
    out: dict[int, int] = {}
    dead: list = []  # (node of other, matched) of subtrees that left the cache: one value each
    # (node of other, node here, units of that node's edge consumed, matched)
    stack = [(other.root, cache.root, 0, 0)]
    while stack:
        wnode, cnode, coff, matched = stack.pop()
        out[wnode.uid] = matched
        for child in wnode.children.values():
            e, i, n = child.key, 0, len(child.key)
            c, off = cnode, coff
            while i < n:
                k = c.key
                if off == len(k):
                    c = c.children.get(e[i])
                    if c is None:
                        break
                    k, off = c.key, 0
                elif k[off] != e[i]:
                    break
                lim = len(k) - off
                if n - i < lim:
                    lim = n - i
                j = _common(k, off, e, i, lim)
                i += j
                off += j
                if j < lim:
                    break
            if i == n:
                stack.append((child, c, off, matched + i))
            else:
                dead.append((child, matched + i))
    while dead:
        node, m = dead.pop()
        out[node.uid] = m
        dead.extend((ch, m) for ch in node.children.values())
    return out


def sequences(cache) -> list[tuple]:
    """All root-to-leaf unit sequences of ``cache`` (a ``RadixCache``; for tests and
    debugging; O(size))."""
    out: list[tuple] = []
    stack: list[tuple] = [(cache.root, ())]  # (node, units above it)
    while stack:
        node, pre = stack.pop()
        pre = pre + node.key
        if not node.children and node is not cache.root:
            out.append(pre)
        stack.extend((c, pre) for c in node.children.values())
    return out
