"""Paged KV cache whose blocks are shared through the project's radix tree.

:class:`PagedKVCache` is the physical memory: per layer, keys and values for
``n_blocks * block_size`` token *slots* (slot ``s`` lives in block ``s // block_size``),
and a free list of blocks. A sequence addresses its tokens through a slot list (vLLM's
``slot_mapping``), so a partially filled shared block can be followed by private blocks.

:class:`PrefixKV` ties it to :class:`~fairsched.cache.radix.RadixCache` (the simulator's
prefix cache, unchanged): one tree unit = one KV block (the engine's block size is the
workload's ``block_size``). It keeps a map ``(unit, parent block) -> block`` that mirrors
the tree exactly: the root's children have parent ``-1``, and since a parent block stays
in the tree while any child does (the tree is prefix-closed), the key identifies the
cached prefix without hashing. References (``lock``/``unlock``) and LRU order are the
tree's; :meth:`PrefixKV.evict` is the only way units leave the tree, and it frees their
blocks. Invariant (checked by :meth:`PrefixKV.check`): ``len(map) == cache.size`` and
every block is exactly one of free, in the tree, or owned by a running sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fairsched.cache.match import sequences
from fairsched.cache.radix import RadixCache

__all__ = ["PagedKVCache", "PrefixKV"]


class PagedKVCache:
    """Physical KV memory: ``[n_layers, n_kv_heads, n_blocks * block_size, head_dim]`` for
    keys and for values (slot-major per head, so a gather is ready for attention), and a
    free list of block ids.

    Raises:
        ValueError: on non-positive sizes.
    """

    def __init__(self, n_layers: int, n_blocks: int, block_size: int, n_kv_heads: int, head_dim: int,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
        if min(n_layers, n_blocks, block_size, n_kv_heads, head_dim) < 1:
            raise ValueError("PagedKVCache sizes must be >= 1")
        self.n_blocks = n_blocks
        self.block_size = block_size
        shape = (n_layers, n_kv_heads, n_blocks * block_size, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self._free = list(range(n_blocks - 1, -1, -1))  # pop() hands out low ids first

    @classmethod
    def for_model(cls, model, n_blocks: int, block_size: int) -> PagedKVCache:
        c = model.config
        p = next(model.parameters())
        return cls(c.n_layers, n_blocks, block_size, c.n_kv_heads, c.head_dim, p.dtype, p.device)

    @property
    def n_free(self) -> int:
        return len(self._free)

    @property
    def bytes(self) -> int:
        return 2 * self.k.numel() * self.k.element_size()

    def alloc(self, n: int) -> list[int]:
        """``n`` free blocks.

        Raises:
            MemoryError: if fewer than ``n`` blocks are free (a bookkeeping bug: the engine
                reserves before it allocates).
        """
        if n > len(self._free):
            raise MemoryError(f"KV cache: need {n} blocks, {len(self._free)} free")
        out = [self._free.pop() for _ in range(n)]
        return out

    def free(self, blocks: Sequence[int]) -> None:
        self._free.extend(blocks)

    def slots(self, blocks: Sequence[int], n_tokens: int | None = None) -> list[int]:
        """Slot ids of the first ``n_tokens`` tokens stored in ``blocks`` (in order)."""
        bs = self.block_size
        out = [b * bs + j for b in blocks for j in range(bs)]
        return out if n_tokens is None else out[:n_tokens]

    def write(self, layer: int, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store keys/values ``[n, n_kv_heads, head_dim]`` at ``slots`` (``[n]``, long)."""
        self.k[layer].index_copy_(1, slots, k.transpose(0, 1))
        self.v[layer].index_copy_(1, slots, v.transpose(0, 1))

    def gather(self, layer: int, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values at ``slots`` (``[L]``): two ``[n_kv_heads, L, head_dim]`` tensors."""
        return self.k[layer].index_select(1, slots), self.v[layer].index_select(1, slots)


class PrefixKV:
    """Radix-tree prefix cache whose units own KV blocks of a :class:`PagedKVCache`.

    ``cache`` is a plain :class:`RadixCache` (capacity ``None``: the engine decides what
    to evict, as in the simulator); query it freely (``match``, ``size``, ``version``) and
    use ``lock``/``unlock``/``touch`` on it directly. Only :meth:`insert` and
    :meth:`evict` change which units are cached, and they keep the block map in step.
    """

    def __init__(self, pool: PagedKVCache, block_size: int):
        self.pool = pool
        self.cache = RadixCache(None, block_size)
        self._map: dict[tuple[int, int], int] = {}  # (unit, parent block) -> block
        # block -> [key, prompt that inserted it, depth (units incl. this one), children,
        #           tokens it holds (block_size, or fewer for a prompt's partial last block)]
        self._info: dict[int, list] = {}
        self._leaves: set[int] = set()

    def __len__(self) -> int:
        return len(self._map)

    def blocks(self, prompt: Sequence[int], m: int) -> list[int]:
        """Blocks of the first ``m`` units of ``prompt`` (which must be cached)."""
        out, parent, mp = [], -1, self._map
        for k in range(m):
            parent = mp[(prompt[k], parent)]
            out.append(parent)
        return out

    def usable(self, prompt: Sequence[int], m: int, n_tokens: int) -> list[int]:
        """Blocks of the longest prefix of the first ``m`` (cached) units of ``prompt`` whose
        blocks hold every token this prompt needs from them (``n_tokens`` in all).

        Only a workload that uses one unit id both as a partial last block and as a longer
        block makes this shorter than ``m`` (the generators never do): the partial block
        holds fewer tokens than the longer prompt needs, so it is recomputed from there.
        """
        out, parent, mp, info, bs = [], -1, self._map, self._info, self.cache.block_size
        for k in range(m):
            parent = mp[(prompt[k], parent)]
            if info[parent][4] < min(bs, n_tokens - k * bs):
                break
            out.append(parent)
        return out

    def insert(self, prompt: tuple, blocks: Sequence[int | None], now: float, n_tokens: int | None = None
               ) -> list[int]:
        """Insert ``prompt`` (of ``n_tokens`` tokens; default: full blocks) into the tree;
        the units it adds take their KV from ``blocks`` (``blocks[k]`` holds unit ``k``;
        only the added units' entries are read).

        Returns the blocks adopted by the tree (the caller no longer owns them).
        """
        bs = self.cache.block_size
        if n_tokens is None:
            n_tokens = len(prompt) * bs
        cache = self.cache
        i0 = cache.match(prompt)
        added = cache.insert(prompt, now)
        if added == 0:
            return []
        parent = self.blocks(prompt, i0)[-1] if i0 else -1
        adopted = []
        for k in range(i0, len(prompt)):
            b = blocks[k]
            if b is None:
                raise RuntimeError(f"insert: unit {k} has no KV block")
            key = (prompt[k], parent)
            self._map[key] = b
            self._info[b] = [key, prompt, k + 1, 0, min(bs, n_tokens - k * bs)]
            if parent >= 0:
                pi = self._info[parent]
                if pi[3] == 0:
                    self._leaves.discard(parent)
                pi[3] += 1
            parent = b
            adopted.append(b)
        self._leaves.add(parent)
        return adopted

    def evict(self, n: int) -> int:
        """Evict up to ``n`` LRU unreferenced units from the tree and free their blocks.

        Returns the number of units (= blocks) evicted.
        """
        done = self.cache.evict(n)
        if not done:
            return 0
        match = self.cache.match
        info = self._info
        work = list(self._leaves)
        freed: list[int] = []
        while work and len(freed) < done:
            b = work.pop()
            key, prompt, depth, children, _ = info[b]
            if children or match(prompt) >= depth:
                continue
            del self._map[key]
            del info[b]
            self._leaves.discard(b)
            freed.append(b)
            parent = key[1]
            if parent >= 0:
                pi = info[parent]
                pi[3] -= 1
                if pi[3] == 0:
                    self._leaves.add(parent)
                    work.append(parent)
        if len(freed) != done:
            raise RuntimeError(f"KV map out of step with the radix tree: evicted {done} units, "
                               f"found {len(freed)} blocks")
        self.pool.free(freed)
        return done

    def check(self, private_blocks: int = 0) -> None:
        """Assert the invariants (tests): the map mirrors the tree, and free + cached +
        ``private_blocks`` (held by running sequences) == all blocks."""
        cache = self.cache
        assert len(self._map) == cache.size, (len(self._map), cache.size)
        for b, (key, prompt, depth, _, _) in self._info.items():
            assert self._map[key] == b
            assert cache.match(prompt) >= depth
        for seq in sequences(cache):
            self.blocks(seq, len(seq))  # every cached prefix has its blocks
        assert self.pool.n_free + len(self._map) + private_blocks == self.pool.n_blocks, (
            self.pool.n_free, len(self._map), private_blocks, self.pool.n_blocks)
        assert len(set(self.pool._free)) == self.pool.n_free
        assert not set(self.pool._free) & set(self._info)
