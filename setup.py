"""Build hook for the OPTIONAL compiled build; pyproject.toml holds the package's metadata.

By default (``pip install -e .``, the README's command) this builds pure Python and needs
nothing beyond setuptools. With ``FAIRSCHED_COMPILE=1`` it compiles the simulator's hot
modules (``fairsched._mypyc.HOT``) with mypyc. Non-editable only: a compiled module sits
beside its source, so an editable (or in-place) compiled build would keep running the old
code after the source is edited; such builds are refused. The way (README, "At scale"):

    python -m venv --system-site-packages /tmp/fairsched-compiled
    /tmp/fairsched-compiled/bin/pip install mypy==2.4.1
    FAIRSCHED_COMPILE=1 /tmp/fairsched-compiled/bin/pip install --no-build-isolation --no-deps .

(``--no-build-isolation``: the build uses the environment's pinned mypy; ``--no-deps`` with
``--system-site-packages``: the dependencies already installed are reused.)
"""

import importlib.util
import os
import sys

from setuptools import setup

ext_modules = []
metadata_only = {"egg_info", "dist_info"} & set(sys.argv)  # (pip asks for metadata first)
if os.environ.get("FAIRSCHED_COMPILE") == "1" and not metadata_only:
    if {"develop", "editable_wheel", "--inplace", "-i"} & set(sys.argv):
        sys.exit("FAIRSCHED_COMPILE=1: the compiled build is non-editable (a compiled module would "
                 "shadow later edits of its source): use `pip install --no-build-isolation .`")
    try:
        from mypyc.build import mypycify
    except ImportError:
        sys.exit("FAIRSCHED_COMPILE=1 needs mypy (`pip install mypy==2.4.1`) and "
                 "`pip install --no-build-isolation .`")
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("_mypyc", os.path.join(here, "fairsched", "_mypyc.py"))
    hot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hot)  # (the module list, kept in one place; without importing fairsched)
    ext_modules = mypycify(["--config-file", os.path.join(here, "mypy.ini")]
                           + [m.replace(".", "/") + ".py" for m in hot.HOT], opt_level="3")

setup(ext_modules=ext_modules)
