"""The router's read of the cluster's prefix caches (the routing hot path).

A router asks, at every arrival, how many of the request's prompt tokens each instance
holds: in its prefix cache or in the prompts routed there and not yet prefilled
(``InstanceBase.routed``), whichever matches more (the optimistic view,
:meth:`~fairsched.sim.instance.InstanceBase.routed_cached_tokens`).

:func:`routed_cached_all` walks the prompt in each of the 2N trees; :func:`cluster_index`
attaches them all to one :class:`~fairsched.cache.index.PrefixIndex` whose
:meth:`~fairsched.cache.index.PrefixIndex.match_pairs` gives the same list in one walk
(``ClusterBackend.instance_state``, the LMetric routers' read).
"""

from __future__ import annotations

from collections.abc import Sequence

from fairsched.cache.index import PrefixIndex
from fairsched.cache.radix import match_all
from fairsched.workload.request import Request


def routed_cached_all(instances: Sequence, req: Request, trees: list | None = None) -> list[int]:
    """:meth:`InstanceBase.routed_cached_tokens` of every instance (``instances``: InstanceBase
    objects; not imported here, sim.instance imports this module), in one pass (the router's hot
    path, ``ClusterBackend.instance_state``; ``trees``: the caches then the ``routed`` trees).
    Returns one token count per instance (``min(units * block_size, input_len)``)."""
    n = len(instances)
    trees = trees or [inst.cache for inst in instances] + [inst.routed for inst in instances]
    m = match_all(trees, req.prompt)  # (an empty tree matches nothing)
    bs, L = req.block_size, req.input_len  # Request.tokens_in, inlined
    return [min((a if a >= b else b) * bs, L) for a, b in zip(m[:n], m[n:], strict=True)]


def cluster_index(instances: Sequence) -> PrefixIndex:
    """One :class:`~fairsched.cache.index.PrefixIndex` over the instances' caches (trees
    ``0..N-1``) and ``routed`` trees (``N..2N-1``), kept up to date by the trees from now on;
    ``index.match_pairs(req.prompt, req.block_size, req.input_len)`` then equals
    :func:`routed_cached_all` (tests/test_prefix_index.py)."""
    n = len(instances)
    index = PrefixIndex(2 * n)
    for i, inst in enumerate(instances):
        inst.cache.attach_index(index, i)
        inst.routed.attach_index(index, n + i)
    return index
