"""The optional compiled build (mypyc; see ``setup.py`` and the README's "At scale").

Pure Python is the default and what the test suite runs; ``FAIRSCHED_COMPILE=1 pip install .``
(non-editable, in a virtual environment of its own) compiles :data:`HOT`, the simulator's hot
modules, to C extensions giving the same results (``tests/test_compiled.py``).

``mypyc_attr`` is ``mypy_extensions.mypyc_attr`` to mypy and mypyc (which read it at compile
time) and a no-op otherwise, so the pure package does not need ``mypy_extensions``. It marks
the compiled classes that interpreted code subclasses (the engine's instance, the warm-up
simulator, ``GlobalDLPM``, the detector's router, tests' policies).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr
else:
    def mypyc_attr(*args, **kwargs):
        """No-op outside mypyc (see the module docstring)."""
        return lambda cls: cls

# the modules the compiled build compiles (fairsched.sim.result stays pure: it is filled
# with attributes its class does not declare)
HOT = ("fairsched.sim.instance", "fairsched.sim.backend", "fairsched.sim.simulator", "fairsched.sim.cost",
       "fairsched.sim.recorder", "fairsched.sim.seq", "fairsched.sim.admission", "fairsched.cache.radix",
       "fairsched.cache.index", "fairsched.cache.match", "fairsched.policies.routers", "fairsched.policies.base",
       "fairsched.policies.queue")


def build() -> str:
    """``"compiled"`` if every module of :data:`HOT` was imported from a C extension (its
    ``__file__`` ends in ``.so`` / ``.pyd``), ``"pure"`` if none was.

    Raises:
        ImportError: a mixed build (some compiled, some not): a stale or partial install.
    """
    kinds = {m: importlib.import_module(m).__file__.endswith((".so", ".pyd")) for m in HOT}
    if all(kinds.values()):
        return "compiled"
    if not any(kinds.values()):
        return "pure"
    raise ImportError("fairsched: partly compiled build (compiled: "
                      f"{', '.join(m for m, c in kinds.items() if c)}); reinstall it (README, At scale)")
