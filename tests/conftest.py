"""Test-suite configuration.

Hypothesis explores new random examples on every local run (a longer search over time).
In CI (``CI`` set, as when ``.ci/run`` runs there) the examples are derandomized: the same
commit always runs the same examples, so a red CI means a real change, not a lucky draw.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
