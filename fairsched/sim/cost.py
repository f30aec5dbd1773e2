"""Execution-time predictor for one instance iteration (Vidur's separation: the simulator
asks this object how long an iteration takes and nothing else).

Prefill of ``n`` new tokens after ``h`` cached tokens (linear layers + attention over the
whole context; ``fairsched.theory.cost.prefill_time_expr``)::

    t_prefill(n, h) = a + b n + c n (h + n / 2)                       [s]
                      + [h > 0] (e + g (h + n) + w n^2 / 2)

The bracket is what a kernel without a paged, causal attention path pays for reading a
cached context (the toy engine's masked path: a fixed cost, a gather of ``h + n`` keys and
values, the ``n^2 / 2`` masked pairs computed anyway; ``proofs/cost_model.md``). It is 0 in
the GPU profiles (FlashAttention over a paged cache) and fitted by ``fairsched calibrate``.
Two more terms count the work of torch's CPU flash-attention kernel (:func:`flash_counts`;
0 in the GPU profiles)::

                      + p [h = 0] (P(n) - n^2 / 2) + s K(n, h)

``P(n)``: the (query, key) pairs the causal kernel computes (whole 512-key blocks, so ``n^2``
for ``n <= 512``), ``K(n, h)``: the key/value rows its query blocks read.

Decode step of a batch of ``B`` sequences with ``C`` context tokens in total
(``fairsched.theory.cost.decode_step_expr``)::

    t_decode(B, C) = d_a + d_b B + d_c C + d_q C^2                    [s]

``d_q`` (0 in the GPU profiles) is the toy engine's slowdown once the gathered keys and
values leave the CPU caches (fitted by ``fairsched calibrate``; ``proofs/cost_model.md``).
A run of ``m`` decode-only steps has a closed form (:meth:`CostModel.decode_run_time`).

An iteration that mixes prefill chunks and decodes (chunked prefill) takes the sum of the
chunks' prefill times plus one decode step for the decoding sequences.
Defaults: Llama-3-8B on an A100, token-linear terms from measured operator times
(``fairsched.theory.measured``), attention terms from the roofline (``fairsched.theory.cost``);
``fairsched calibrate`` fits them on the torch engine and writes a JSON file that
:meth:`CostModel.load` reads.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np

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


def _s12(m):
    """``S1 = m(m-1)/2`` and ``S2 = (m-1)m(2m-1)/6`` of the decode-run closed form; ``m`` an int
    or an integer array."""
    return m * (m - 1) / 2, (m - 1) * m * (2 * m - 1) / 6


def run_seconds(m, step: float, coef: tuple, s12=None):
    """The closed form of :meth:`CostModel.decode_run_time`, ``m t_d(B, C) + d_c B S1 + d_q (2 C B
    S1 + B^2 S2)`` (``proofs/cost_model.md``), from ``step = t_d(B, C)`` and the run's constant
    terms ``coef = (d_c B, d_q, 2 C B, B^2)`` (:meth:`CostModel.run_coef`); ``m`` an int or an
    integer array, ``s12`` its ``(S1, S2)`` if the caller has them. The one place this formula
    is evaluated (the simulator's decode runs keep ``coef`` for the run: the same floats)."""
    cb, dq, ccb, bb = coef
    if not dq:  # (the d_q term is exactly 0.0 then: adding it changes no bit of the sum)
        return m * step + cb * (m * (m - 1) / 2 if s12 is None else s12[0])
    s1, s2 = _s12(m) if s12 is None else s12
    return m * step + cb * s1 + dq * (ccb * s1 + bb * s2)


_SUMS: list = [np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)]


def _run_sums(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``m = 1..k`` with ``S1``, ``S2`` (:func:`_s12`), each shape ``(k,)``, sliced from arrays
    kept for the longest run asked so far (a decode run asks for them at every logged event)."""
    if k > len(_SUMS[0]):
        m = np.arange(1, max(k, 2 * len(_SUMS[0])) + 1)
        _SUMS[:] = [m, *_s12(m)]
    m, s1, s2 = _SUMS
    return m[:k], s1[:k], s2[:k]


def run_times(k: int, step: float, coef: tuple, off: int = 0) -> np.ndarray:
    """:func:`run_seconds` for ``m = off + 1 .. off + k``, shape ``(k,)`` [s]: the end times of a
    decode run's steps ``off + 1 ..`` after its start (``step``, ``coef`` as :func:`run_seconds`),
    the same floats as the slice ``[off:]`` of the run's first ``off + k``."""
    m, s1, s2 = _run_sums(off + k)
    return run_seconds(m[off:], step, coef, (s1[off:], s2[off:]))


FLASH_KV_BLOCK = 512
"""Key block of torch's CPU flash-attention kernel (``kvSplitSize``, ``aten/src/ATen/native/cpu/
FlashAttentionKernel.cpp``, torch 2.x)."""


def flash_q_block(n: int) -> int:
    """Query block of torch's CPU flash-attention kernel for ``n`` queries (``qSplitSize``):
    256 rows for ``n >= 768``, 64 for ``n >= 192``, else 32."""
    return 256 if n >= 768 else (64 if n >= 192 else 32)


@lru_cache(maxsize=65536)
def flash_counts(n: int, h: int) -> tuple[float, int]:
    """What torch's CPU flash-attention kernel does for a prefill of ``n`` new tokens after ``h``
    cached ones (``proofs/cost_model.md``, "The kernel's counts"): ``(pad, keys)``.

    The kernel walks query blocks of ``q = flash_q_block(n)`` rows; a block starting at row ``m``
    reads keys ``0..num_keys`` (``num_keys = min(m + q, n)`` on the causal path, ``h = 0``; all
    ``h + n`` with the engine's explicit mask, ``h > 0``) in key blocks of ``min(512, h + n -
    start)`` rows, i.e. ``min(h + n, ceil(num_keys / 512) 512)`` keys. ``keys``: the sum of
    those over the query blocks (key/value rows streamed); ``pad``: for ``h = 0``, the pairs the
    causal kernel computes beyond the ``n^2 / 2`` of the model's ``c`` term (``n^2 / 2`` for
    ``n <= 512``: the whole square), 0 for ``h > 0`` (the masked pairs are the ``w`` term).
    ``n >= 1``, ``h >= 0`` [tokens, token pairs]."""
    q, kv = flash_q_block(n), h + n
    pairs = keys = 0
    for m in range(0, n, q):
        qb = min(q, n - m)
        k = kv if h > 0 else min(kv, -(-min(m + qb, kv) // FLASH_KV_BLOCK) * FLASH_KV_BLOCK)
        keys += k
        pairs += qb * k
    return (pairs - 0.5 * n * n if h == 0 else 0.0), keys


def flash_keys_max(L: int) -> int:
    """``max K(n, h)`` over ``n >= 1, h >= 0, n + h <= L`` (:func:`flash_counts`): ``L`` times the
    most query blocks an ``n <= L`` has (``K(n, h) <= ceil(n / q(n)) L``, attained at ``h = L - n``)."""
    cands = [n for n in (min(L, 191), min(L, 767), L) if n >= 1]
    return max((-(-n // flash_q_block(n))) for n in cands) * L if L >= 1 else 0


@dataclass(frozen=True)
class CostModel:
    """Coefficients (seconds, per token, per token squared) of the iteration-time model.

    Attributes:
        prefill_a: fixed cost of one prefill chunk [s].
        prefill_b: per new token [s/token].
        prefill_c: per (new token x context token) pair [s/token^2].
        prefill_e: fixed extra cost of a chunk with a cached context (h > 0) [s].
        prefill_g: per context token (h + n) read when h > 0 [s/token].
        prefill_w: per masked-out pair (n^2 / 2 of them) computed when h > 0 [s/token^2].
        prefill_p: per pair the CPU causal kernel computes beyond the ``n^2 / 2`` causal ones
            when h = 0 (:func:`flash_counts`) [s/token^2].
        prefill_s: per key/value row read by a query block of the CPU kernel
            (:func:`flash_counts`) [s/token].
        decode_a: fixed cost of one decode step [s].
        decode_b: per sequence in the decode batch [s/seq].
        decode_c: per context token of the decoding sequences [s/token].
        decode_q: per squared context token of the decode batch [s/token^2].
        decode_e: extra fixed cost of a step of two or more sequences [s] (the toy engine on
            CPU: matrix-matrix instead of matrix-vector products; 0 on the GPU profiles).
        name: label (profile or calibration source).
    """

    # Defaults = CostModel.from_profile("a100-llama3-8b"): Llama-3-8B on an A100-80GB, the
    # token-linear terms fitted on Vidur's measured operator times, attention from the
    # roofline (fairsched.theory.measured, proofs/cost_model.md). Written out so that importing
    # the simulator does not import sympy; tests/test_sim.py checks they equal the derivation.
    prefill_a: float = 0.006337306338898002
    prefill_b: float = 6.665563496818158e-05
    prefill_c: float = 3.360820512820513e-09
    decode_a: float = 0.009901495571790105
    decode_b: float = 4.936329456438099e-05
    decode_c: float = 8.035311427170181e-08
    name: str = "a100-llama3-8b"
    prefill_e: float = 0.0
    prefill_g: float = 0.0
    prefill_w: float = 0.0
    prefill_p: float = 0.0
    prefill_s: float = 0.0
    decode_q: float = 0.0
    decode_e: float = 0.0

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
        t = self.prefill_a + n * (self.prefill_b + self.prefill_c * (h + 0.5 * n))
        if h > 0:
            t += self.prefill_e + self.prefill_g * (h + n) + self.prefill_w * 0.5 * n * n
        if self.prefill_p or self.prefill_s:
            pad, keys = flash_counts(round(n), round(h))  # counts of whole tokens (n, h may be floats)
            t += self.prefill_p * pad + self.prefill_s * keys
        return t

    def decode_time(self, batch: int, context: int) -> float:
        """Seconds for one decode step of ``batch`` sequences holding ``context`` tokens."""
        if batch <= 0:
            return 0.0
        return (self.decode_a + (self.decode_e if batch > 1 else 0.0) + self.decode_b * batch
                + context * (self.decode_c + self.decode_q * context))

    def decode_run_time(self, batch: int, context: int, m: int, step: float | None = None) -> float:
        """Seconds of ``m`` consecutive decode steps of the same ``batch`` sequences, the
        context growing by ``batch`` tokens a step: ``sum_{j<m} decode_time(B, C + j B)`` =
        ``m t_d(B, C) + d_c B S1 + d_q (2 C B S1 + B^2 S2)`` with ``S1 = m(m-1)/2``,
        ``S2 = (m-1)m(2m-1)/6`` (``proofs/cost_model.md``). ``step``: ``decode_time(batch,
        context)`` if the caller has it (a decode run evaluates this for many ``m``)."""
        if batch <= 0 or m <= 0:
            return 0.0
        return self._run_sum(batch, context, m, step)

    def decode_run_times(self, batch: int, context: int, k: int) -> np.ndarray:
        """:meth:`decode_run_time` for ``m = 1..k`` at once, shape ``(k,)`` [s]: the same
        expression element-wise (so the same floats as ``k`` scalar calls); ``batch >= 1``."""
        return run_times(k, self.decode_time(batch, context), self.run_coef(batch, context))

    def run_coef(self, batch: int, context: int) -> tuple[float, float, int, int]:
        """The terms of :func:`run_seconds` that do not depend on ``m``: ``(d_c B, d_q, 2 C B, B^2)``."""
        return self.decode_c * batch, self.decode_q, 2 * context * batch, batch * batch

    def _run_sum(self, batch: int, context: int, m, step: float | None = None):
        """The closed form of :meth:`decode_run_time` (:func:`run_seconds`); ``m`` an int or an
        integer array."""
        return run_seconds(m, self.decode_time(batch, context) if step is None else step, self.run_coef(batch, context))

    # ---------------------------------------------------------------- persistence
    @classmethod
    def from_profile(cls, profile: str = "a100-llama3-8b", source: str = "auto") -> CostModel:
        """Coefficients of a hardware profile.

        ``source="measured"``: token-linear terms fitted on measured A100 operator times
        (``fairsched.theory.measured``, Vidur's profiles), attention terms from the roofline;
        ``"roofline"``: ``fairsched.theory.cost.default_cost_coefficients`` (MFU 0.5 / MBU 0.8
        assumed); ``"auto"`` (default): measured where measurements exist, else roofline.
        Raises:
            KeyError: on an unknown profile, or ``"measured"`` for one without measurements.
            ValueError: on an unknown ``source``.
        """
        from fairsched.theory.cost import default_cost_coefficients
        from fairsched.theory.measured import MEASURED, measured_cost_coefficients

        if source not in ("auto", "measured", "roofline"):
            raise ValueError(f"cost-model source must be 'auto', 'measured' or 'roofline', got {source!r}")
        measured = source == "measured" or (source == "auto" and profile in MEASURED)
        c = measured_cost_coefficients(profile) if measured else default_cost_coefficients(profile)
        return cls(prefill_a=c["prefill_a_s"], prefill_b=c["prefill_b_s_per_tok"],
                   prefill_c=c["prefill_c_s_per_tok2"], decode_a=c["decode_a_s"],
                   decode_b=c["decode_b_s_per_seq"], decode_c=c["decode_c_s_per_ctx_tok"],
                   name=f"{profile}-roofline" if source == "roofline" else profile)

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
            if f.name not in coef and f.name in OPTIONAL:
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


OPTIONAL = ("prefill_e", "prefill_g", "prefill_w", "prefill_p", "prefill_s", "decode_q", "decode_e")
"""Coefficients a cost-model file may leave out (0: files written before they existed)."""

UNITS = {"prefill_a": "s", "prefill_b": "s/token", "prefill_c": "s/token^2", "prefill_e": "s",
         "prefill_g": "s/token", "prefill_w": "s/token^2", "prefill_p": "s/token^2", "prefill_s": "s/token",
         "decode_a": "s", "decode_b": "s/sequence", "decode_c": "s/context token",
         "decode_q": "s/context token^2", "decode_e": "s"}
