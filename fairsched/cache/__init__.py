"""Prefix caches: the radix tree shared by the simulator and the torch engine, and the
cluster-wide prefix index used by cache-aware routers."""

from fairsched.cache.radix import CacheFullError, RadixCache

__all__ = ["CacheFullError", "RadixCache"]
