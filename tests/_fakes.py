"""Hand-made stand-ins shared by the router tests."""


class View:
    """A cluster of ``len(waiting)`` instances with fixed counts, prefix hits and cache sizes."""

    def __init__(self, waiting, running, hits, queued=None, cache=None):
        self.n_instances = len(waiting)
        self.w, self.r, self.h = waiting, running, hits
        self.q = queued or [0] * self.n_instances
        self.c = cache or [0] * self.n_instances

    def cached_tokens(self, i, r):
        return self.h[i]

    def n_waiting(self, i):
        return self.w[i]

    def n_running(self, i):
        return self.r[i]

    def queued_prefill_tokens(self, i):
        return self.q[i]

    def cache_size_tokens(self, i):
        return self.c[i]

    def instance_state(self, r):
        n = range(self.n_instances)
        return [self.w[i] + self.r[i] for i in n], list(self.q), [self.h[i] for i in n]
