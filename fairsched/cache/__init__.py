"""Prefix caches: the radix tree (:class:`RadixCache`) shared by the simulator and the torch
engine, one per instance (:mod:`.radix`), its read-only walks (:mod:`.match`), and one
index over many trees (:mod:`.index`).

Cache-aware routers ask through :class:`~fairsched.policies.base.ClusterView`; the backend
answers from each instance's own radix tree and a second tree of the prompts already routed
there but not yet prefilled, every instance at once through one
:class:`~fairsched.cache.index.PrefixIndex` over those trees
(``ClusterBackend.instance_state``).
"""

from fairsched.cache.radix import CacheFullError, RadixCache

__all__ = ["CacheFullError", "RadixCache"]
