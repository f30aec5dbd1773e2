"""Execution-time predictor for one instance iteration (Vidur's separation: the simulator
asks this object how long an iteration takes and nothing else).

Prefill of ``n`` new tokens after ``h`` cached tokens (linear layers + attention over the
whole context; ``fairsched.theory.cost.prefill_time_expr``)::

    t_prefill(n, h) = a + b n + c n (h + n / 2)                       [s]

Decode step of a batch of ``B`` sequences with ``C`` context tokens in total
(``fairsched.theory.cost.decode_step_expr``)::

    t_decode(B, C) = d_a + d_b B + d_c C                              [s]

An iteration that mixes prefill chunks and decodes (chunked prefill) takes the sum of the
chunks' prefill times plus one decode step for the decoding sequences.
Defaults come from a roofline of Llama-3.1-8B on an A100 (``fairsched.theory.cost``);
``fairsched calibrate`` fits them on the torch engine and writes a JSON file that
:meth:`CostModel.load` reads.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class CostModel:
    """Coefficients (seconds, per token, per token squared) of the iteration-time model.

    Attributes:
        prefill_a: fixed cost of one prefill chunk [s].
        prefill_b: per new token [s/token].
        prefill_c: per (new token x context token) pair [s/token^2].
        decode_a: fixed cost of one decode step [s].
        decode_b: per sequence in the decode batch [s/seq].
        decode_c: per context token of the decoding sequences [s/token].
        name: label (profile or calibration source).
    """

    # Defaults = fairsched.theory.cost.default_cost_coefficients("a100-llama3-8b"): a
    # roofline of Llama-3.1-8B on an A100 at 50% of peak FLOP/s and 80% of HBM bandwidth
    # (proofs/cost_model.md). Written out so that importing the simulator does not import
    # sympy; tests/test_sim.py checks they equal the derivation.
    prefill_a: float = 0.009845512506130456
    prefill_b: float = 0.00010294871794871795
    prefill_c: float = 3.360820512820513e-09
    decode_a: float = 0.009845512506130456
    decode_b: float = 0.00010294871794871795
    decode_c: float = 8.035311427170181e-08
    name: str = "a100-llama3-8b"

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name != "name" and (not isinstance(v, int | float) or v < 0):
                raise ValueError(f"cost model coefficient {f.name} must be a number >= 0, got {v!r}")

    def prefill_time(self, n: int, h: int) -> float:
        """Seconds to prefill ``n`` new tokens after ``h`` cached ones (0 if ``n == 0``)."""
        if n <= 0:
            return 0.0
        return self.prefill_a + n * (self.prefill_b + self.prefill_c * (h + 0.5 * n))

    def decode_time(self, batch: int, context: int) -> float:
        """Seconds for one decode step of ``batch`` sequences holding ``context`` tokens."""
        if batch <= 0:
            return 0.0
        return self.decode_a + self.decode_b * batch + self.decode_c * context

    # ---------------------------------------------------------------- persistence
    @classmethod
    def from_profile(cls, profile: str = "a100-llama3-8b") -> CostModel:
        """Roofline defaults from ``fairsched.theory.cost.default_cost_coefficients``."""
        from fairsched.theory.cost import default_cost_coefficients

        c = default_cost_coefficients(profile)
        return cls(prefill_a=c["prefill_a_s"], prefill_b=c["prefill_b_s_per_tok"],
                   prefill_c=c["prefill_c_s_per_tok2"], decode_a=c["decode_a_s"],
                   decode_b=c["decode_b_s_per_seq"], decode_c=c["decode_c_s_per_ctx_tok"],
                   name=profile)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CostModel:
        """Read a cost-model JSON (as written by :meth:`save` or ``fairsched calibrate``).

        The file holds ``{"coefficients": {name: value, ...}, ...}`` (extra keys such as
        ``units`` and ``r2`` are kept by the writer and ignored here).
        Raises:
            ValueError: naming the file and the field, on a missing file, bad JSON,
                a missing or negative coefficient.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"{path}: cost model file not found") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        coef = data.get("coefficients") if isinstance(data, dict) else None
        if not isinstance(coef, dict):
            raise ValueError(f"{path}: field 'coefficients' missing or not an object")
        kw = {}
        for f in fields(cls):
            if f.name == "name":
                continue
            if f.name not in coef:
                raise ValueError(f"{path}: field 'coefficients.{f.name}' missing")
            v = coef[f.name]
            if not isinstance(v, int | float) or v < 0:
                raise ValueError(f"{path}: field 'coefficients.{f.name}' must be a number >= 0, got {v!r}")
            kw[f.name] = float(v)
        return cls(**kw, name=str(data.get("name", path.stem)))

    def save(self, path: str | os.PathLike, **extra) -> None:
        """Write the coefficients (and ``extra`` keys such as ``r2``) as JSON, atomically."""
        d = asdict(self)
        name = d.pop("name")
        doc = {"name": name, "coefficients": d, "units": UNITS, **extra}
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent or ".", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a cost model is meant to be shared
        os.replace(tmp, path)


UNITS = {"prefill_a": "s", "prefill_b": "s/token", "prefill_c": "s/token^2",
         "decode_a": "s", "decode_b": "s/sequence", "decode_c": "s/context token"}
