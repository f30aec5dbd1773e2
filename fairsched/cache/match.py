"""Prefix matching of a prompt against radix trees (:mod:`fairsched.cache.radix`), the
read-only hot path of routing: how many leading units of a prompt each tree holds."""

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
