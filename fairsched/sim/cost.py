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
import math
import os
import stat
from dataclasses import asdict, dataclass, fields
from pathlib import Path

MAX_COEFFICIENT = 1e3
"""Largest coefficient accepted (s, s/token, s/token^2): a thousand seconds per unit is
far beyond any hardware; larger values are typos or overflow bait (1e300)."""
MIN_ITERATION_S = 1e-9
"""Shortest iteration the model may predict: one prefill token and one decode step of
one sequence must each take at least a nanosecond, else simulated time cannot advance."""
MAX_FILE_BYTES = 2**20
"""Largest cost-model file read (1 MiB)."""


def _check_coefficient(name: str, v) -> float:
    """``v`` as a float if it is a finite number in [0, MAX_COEFFICIENT].

    Raises:
        ValueError: ``name must be ...`` (booleans, strings, NaN, infinities, negatives,
            values above :data:`MAX_COEFFICIENT`).
    """
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{name} must be a number, got {v!r}")
    if not math.isfinite(v) or not 0 <= v <= MAX_COEFFICIENT:
        raise ValueError(f"{name} must be a finite number in [0, {MAX_COEFFICIENT:g}], got {v!r}")
    return float(v)


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
            if f.name != "name":
                _check_coefficient(f"cost model coefficient {f.name}", getattr(self, f.name))
        for what, t in (("a prefill iteration of one token (prefill_a + prefill_b + prefill_c/2)",
                         self.prefill_time(1, 0)),
                        ("a decode step of one sequence (decode_a + decode_b + decode_c)",
                         self.decode_time(1, 1))):
            if not t >= MIN_ITERATION_S:
                raise ValueError(f"cost model: {what} takes {t:g} s; every iteration must take at "
                                 f"least {MIN_ITERATION_S:g} s, or simulated time cannot advance")

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
        ``units`` and ``r2`` are kept by the writer and ignored here). Each coefficient is
        a finite number in [0, :data:`MAX_COEFFICIENT`] (not a boolean, not ``NaN`` or
        ``Infinity``), and the model must predict iterations of at least
        :data:`MIN_ITERATION_S`.

        Raises:
            ValueError: naming the file (and the field), on a missing, non-regular
                (FIFO, device), oversized (> :data:`MAX_FILE_BYTES`) or non-UTF-8 file, bad
                JSON, a missing or out-of-range coefficient, or a zero iteration time.
        """
        path = Path(path)
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                raise ValueError(f"{path}: not a regular file; a cost model is a JSON file")
            if st.st_size > MAX_FILE_BYTES:
                raise ValueError(f"{path}: {st.st_size:,} bytes, larger than a cost model can be "
                                 f"({MAX_FILE_BYTES:,})")
            data = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{path}: cost model file not found") from None
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset "
                             f"{e.start}); a cost model is a UTF-8 JSON file") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        except RecursionError:
            raise ValueError(f"{path}: not valid JSON (nested too deeply)") from None
        except OSError as e:
            raise ValueError(f"{path}: cannot read the cost model ({e.strerror or e})") from None
        coef = data.get("coefficients") if isinstance(data, dict) else None
        if not isinstance(coef, dict):
            raise ValueError(f"{path}: field 'coefficients' missing or not an object")
        kw = {}
        for f in fields(cls):
            if f.name == "name":
                continue
            if f.name not in coef:
                raise ValueError(f"{path}: field 'coefficients.{f.name}' missing")
            kw[f.name] = _check_coefficient(f"{path}: field 'coefficients.{f.name}'", coef[f.name])
        name = data.get("name", path.stem)
        try:
            return cls(**kw, name=name if isinstance(name, str) else str(name))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def save(self, path: str | os.PathLike, **extra) -> None:
        """Write the coefficients (and ``extra`` keys such as ``r2``) as JSON, atomically."""
        from fairsched.output import atomic_write_text, dumps

        d = asdict(self)
        name = d.pop("name")
        atomic_write_text(path, dumps({"name": name, "coefficients": d, "units": UNITS, **extra}))


UNITS = {"prefill_a": "s", "prefill_b": "s/token", "prefill_c": "s/token^2",
         "decode_a": "s", "decode_b": "s/sequence", "decode_c": "s/context token"}
