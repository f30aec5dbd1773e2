"""Torch toy engine: a small Llama-style model serving real batches with a paged KV cache
shared through the radix tree, driven by the same policies and routers as the simulator,
with measured per-request cost.

- :mod:`.model`: :class:`ToyLlama` (RMSNorm, RoPE, GQA, SwiGLU; seeded random weights),
  presets ``cpu-tiny``, ``cpu-small``, ``gpu-medium``.
- :mod:`.kv`: :class:`PagedKVCache` (blocks, free list) and :class:`PrefixKV` (radix tree
  units -> blocks, reference counts and LRU eviction through the tree).
- :mod:`.instance`: :class:`Engine`, one instance (an ``InstanceView``) holding KV
  blocks and running the model.
- :mod:`.cluster`: :class:`EngineCluster` (a ``ClusterView``) and :func:`run_engine` ->
  :class:`~fairsched.sim.result.SimResult` with the measurements.
- :mod:`.timing`: :class:`Timer`, :func:`set_threads`, :func:`warm_up`.
- :mod:`.calibrate`: :func:`run_calibration` (fits the simulator's cost model).
- :mod:`.validate`: :func:`validate_bounds` (fairness bounds against measured service).
"""

from fairsched.engine.cluster import DEFAULT_INSTANCE, EngineCluster, run_engine
from fairsched.engine.instance import Engine
from fairsched.engine.kv import PagedKVCache, PrefixKV
from fairsched.engine.model import PRESETS, ModelConfig, ToyLlama, build_model, get_config
from fairsched.engine.timing import Timer


def run_calibration(*args, **kwargs):
    """See :func:`fairsched.engine.calibrate.run_calibration` (imported lazily: cvxpy)."""
    from fairsched.engine.calibrate import run_calibration as _run

    return _run(*args, **kwargs)


__all__ = ["DEFAULT_INSTANCE", "PRESETS", "Engine", "EngineCluster", "ModelConfig", "PagedKVCache", "PrefixKV",
           "Timer", "ToyLlama", "build_model", "get_config", "run_calibration", "run_engine"]
