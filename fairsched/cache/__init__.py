"""Prefix caches: the radix tree (:class:`RadixCache`) shared by the simulator and the torch
engine, one per instance.

There is no cluster-wide prefix index: cache-aware routers ask each instance through
:class:`~fairsched.policies.base.ClusterView` (``cached_tokens(i, req)``), which the
backend answers from that instance's own radix tree and a second tree of the prompts
already routed there but not yet prefilled.
"""

from fairsched.cache.radix import CacheFullError, RadixCache

__all__ = ["CacheFullError", "RadixCache"]
