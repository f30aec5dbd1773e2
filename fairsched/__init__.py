"""fairsched: is an LLM serving scheduler fair, and when does it break?

Subpackages: ``workload`` (requests, traces, generators), ``cache`` (radix-tree prefix
cache), ``policies`` (queue policies and routers), ``sim`` (cluster simulator),
``engine`` (torch toy engine), ``theory`` (sympy derivations), ``analysis`` (metrics,
bound checks, failure detection, reports).
"""

__version__ = "0.1.0"
