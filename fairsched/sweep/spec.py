"""A sweep's grid: :class:`SweepSpec` (from a TOML / YAML file or from keyword lists) and
its expansion into :class:`Point` s, one simulation each.

Grid keys (each a value or a list of values; the grid is their cross product):

- ``trace``: trace file paths (``null`` / absent: the built-in workload); ``format``.
- ``routers``, ``policies``: names (:data:`fairsched.policies.ROUTER_NAMES`, ``POLICY_NAMES``).
- ``instances``: instance counts; with one instance the router is ``none``.
- ``speed``: replay speed (load scale): arrivals [s] divided by it.
- ``quantum`` (DLPM ``Q^u``), ``quantum_w`` (D²LPM ``Q^w``) [service units]; absent: ``U``
  of the workload. ``lam``: the linear router's KV-miss weight.
- ``profile`` (hardware profile) or ``cost_model`` (a cost-model JSON file);
  ``max_batch_size``, ``token_budget``, ``kv_capacity`` [tokens] override the profile.
- ``seeds``: seeds of the built-in workload; ``limit``: only the first N requests.

``d2lpm`` is always paired with the ``dlpm`` policy (as ``fairsched analyze`` does) and
duplicate points are dropped, keeping the grid order.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

__all__ = ["GRID_KEYS", "Point", "SweepSpec", "load_spec"]

GRID_KEYS = ("trace", "format", "routers", "policies", "instances", "speed", "quantum", "quantum_w", "lam",
             "profile", "cost_model", "max_batch_size", "token_budget", "kv_capacity", "seeds", "limit")
"""The keys a spec file may hold."""


@dataclass(frozen=True)
class Point:
    """One simulation of a sweep (every field is a column of the result table)."""

    trace: str | None = None
    format: str | None = None
    router: str = "none"
    policy: str = "fcfs"
    instances: int = 1
    speed: float = 1.0
    quantum: float | None = None
    quantum_w: float | None = None
    lam: float | None = None
    profile: str | None = None
    cost_model: str | None = None
    max_batch_size: int | None = None
    token_budget: int | None = None
    kv_capacity: int | None = None
    seed: int = 0
    limit: int | None = None

    @property
    def label(self) -> str:
        """``policy`` for one instance, ``router/policy`` for a cluster."""
        return self.policy if self.router == "none" else f"{self.router}/{self.policy}"

    def to_dict(self) -> dict:
        return asdict(self)

    def config_json(self) -> str:
        """Canonical JSON of the configuration (sorted keys), the basis of the point's key."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


POINT_FIELDS = tuple(f.name for f in fields(Point))


def _as_list(v) -> list:
    return list(v) if isinstance(v, list | tuple) else [v]


@dataclass
class SweepSpec:
    """A grid of points; every field is a list of values (see the module docstring)."""

    trace: list = field(default_factory=lambda: [None])
    format: list = field(default_factory=lambda: [None])
    routers: list = field(default_factory=lambda: ["least-load"])
    policies: list = field(default_factory=lambda: ["fcfs"])
    instances: list = field(default_factory=lambda: [1])
    speed: list = field(default_factory=lambda: [1.0])
    quantum: list = field(default_factory=lambda: [None])
    quantum_w: list = field(default_factory=lambda: [None])
    lam: list = field(default_factory=lambda: [None])
    profile: list = field(default_factory=lambda: [None])
    cost_model: list = field(default_factory=lambda: [None])
    max_batch_size: list = field(default_factory=lambda: [None])
    token_budget: list = field(default_factory=lambda: [None])
    kv_capacity: list = field(default_factory=lambda: [None])
    seeds: list = field(default_factory=lambda: [0])
    limit: list = field(default_factory=lambda: [None])

    @classmethod
    def from_dict(cls, d: dict, source: str = "spec") -> SweepSpec:
        """A spec from a mapping of grid keys to values or lists.

        Raises:
            ValueError: an unknown key or a bad value, naming the key and ``source``.
        """
        unknown = sorted(set(d) - set(GRID_KEYS))
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))}; "
                             f"allowed: {', '.join(GRID_KEYS)}")
        spec = cls(**{k: _as_list(v) for k, v in d.items() if v is not None or k in ("trace",)})
        spec.validate(source)
        return spec

    def validate(self, source: str = "spec") -> None:
        """Check names and ranges before anything runs.

        Raises:
            ValueError: naming the key, the bad value and ``source``.
        """
        from fairsched.policies import POLICY_NAMES, ROUTER_NAMES
        from fairsched.sim.profiles import PROFILES
        from fairsched.workload import FORMATS

        def bad(key, v, why):
            raise ValueError(f"{source}: {key} = {v!r}: {why}")

        for key in GRID_KEYS:
            if not getattr(self, key):
                bad(key, [], "needs at least one value")
        for v in self.routers:
            if v not in ROUTER_NAMES:
                bad("routers", v, f"unknown router; choose from {', '.join(ROUTER_NAMES)}")
        for v in self.policies:
            if v not in POLICY_NAMES:
                bad("policies", v, f"unknown policy; choose from {', '.join(POLICY_NAMES)}")
        for v in self.format:
            if v is not None and v not in FORMATS:
                bad("format", v, f"unknown format; choose from {', '.join(FORMATS)}")
        for v in self.profile:
            if v is not None and v not in PROFILES:
                bad("profile", v, f"unknown profile; choose from {', '.join(PROFILES)}")
        for key in ("instances", "max_batch_size", "token_budget", "kv_capacity", "limit"):
            for v in getattr(self, key):
                if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                    bad(key, v, "must be an integer >= 1")
        for key in ("speed", "quantum", "quantum_w"):
            for v in getattr(self, key):
                if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not v > 0):
                    bad(key, v, "must be a number > 0")
        for v in self.lam:
            if v is not None and not (isinstance(v, int | float) and 0 <= v <= 1):
                bad("lam", v, "must be in [0, 1]")
        for v in self.seeds:
            if isinstance(v, bool) or not isinstance(v, int):
                bad("seeds", v, "must be an integer")
        for key in ("trace", "cost_model"):
            for v in getattr(self, key):
                if v is not None and not Path(v).is_file():
                    bad(key, v, "no such file")

    def points(self) -> list[Point]:
        """The grid's points, in the cross-product order of :data:`GRID_KEYS`, duplicates dropped."""
        out: dict[Point, None] = {}
        for (trace, fmt, router, policy, n, speed, q, qw, lam, prof, cm, mbs, tb, kv, seed,
             limit) in itertools.product(*(getattr(self, k) for k in GRID_KEYS)):
            if n == 1:
                router = "none"
            if router == "d2lpm" and policy != "dlpm-global":
                policy = "dlpm"
            p = Point(trace=None if trace is None else str(trace), format=fmt, router=router, policy=policy,
                      instances=int(n), speed=float(speed), quantum=None if q is None else float(q),
                      quantum_w=None if qw is None else float(qw) if router == "d2lpm" else None,
                      lam=None if lam is None else float(lam) if router == "linear" else None,
                      profile=prof, cost_model=None if cm is None else str(cm), max_batch_size=mbs,
                      token_budget=tb, kv_capacity=kv, seed=int(seed), limit=limit)
            if policy not in ("dlpm", "dlpm-global"):
                p = Point(**{**p.to_dict(), "quantum": None})
            out.setdefault(p, None)
        return list(out)


def load_spec(path: str | Path) -> SweepSpec:
    """Read a spec from a ``.toml`` or ``.yaml`` / ``.yml`` file (grid keys at the top level).

    Relative ``trace`` and ``cost_model`` paths are taken relative to the spec file.

    Raises:
        ValueError: unreadable or malformed file, unknown key, bad value (naming the file).
        OSError: the file cannot be read.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        import tomllib

        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML: {e}") from None
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            d = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML: {e}") from None
    else:
        raise ValueError(f"{path}: a sweep spec is a .toml, .yaml or .yml file")
    if not isinstance(d, dict):
        raise ValueError(f"{path}: the top level must be a mapping of grid keys")
    for key in ("trace", "cost_model"):
        if d.get(key) is not None:
            d[key] = [None if v is None else str((path.parent / v) if not Path(v).is_absolute() else v)
                      for v in _as_list(d[key])]
    return SweepSpec.from_dict(d, source=str(path))
