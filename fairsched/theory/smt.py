"""sympy -> z3 translation, so that machine checks use the very expressions the library evaluates.

:func:`to_z3` maps a sympy expression or relation built from :mod:`fairsched.theory.symbols`
to a z3 term: symbols become z3 ``Real`` (or ``Int`` for integer symbols) constants named
after them; ``Add``, ``Mul``, integer ``Pow``, ``Max``, ``Min``, ``Abs``, rationals,
relations, ``And`` / ``Or`` / ``Not`` / ``Implies`` are supported; ``harmonic(n)`` only with a
concrete n. Editing a formula in ``fairsched.theory`` therefore changes the obligation the
z3 tests discharge (``tests/test_theory_fairness.py``, ``tests/test_theory_vtc_claims.py``).
"""

from __future__ import annotations

import sympy as sp
import z3

__all__ = ["to_z3", "z3_vars", "prove"]


def z3_vars(expr, env: dict | None = None) -> dict:
    """``env`` extended with a z3 constant for every free symbol of ``expr`` (Int for
    integer symbols, Real otherwise); returns the dict (sympy symbol -> z3 term)."""
    env = {} if env is None else env
    for s in sp.sympify(expr).free_symbols:
        if s not in env:
            env[s] = z3.Int(s.name) if s.is_integer else z3.Real(s.name)
    return env


def _max(a, b):
    return z3.If(a >= b, a, b)


def _min(a, b):
    return z3.If(a <= b, a, b)


def to_z3(expr, env: dict | None = None):
    """The z3 term of the sympy ``expr`` (symbols looked up in / added to ``env``).

    Raises:
        NotImplementedError: on a sympy construct without a translation.
    """
    env = z3_vars(expr, env)
    e = sp.sympify(expr)

    def go(e):
        if isinstance(e, sp.Symbol):
            return env[e]
        if e is sp.true:
            return z3.BoolVal(True)
        if e is sp.false:
            return z3.BoolVal(False)
        if isinstance(e, sp.Integer):
            return z3.IntVal(int(e))
        if isinstance(e, sp.Rational):
            return z3.RealVal(f"{e.p}/{e.q}")
        if isinstance(e, sp.Float):
            return z3.RealVal(str(e))
        if isinstance(e, sp.Add):
            return z3.Sum([go(a) for a in e.args])
        if isinstance(e, sp.Mul):
            return z3.Product([go(a) for a in e.args])
        if isinstance(e, sp.Pow) and e.exp.is_Integer:
            n = int(e.exp)
            base = go(e.base)
            if n >= 0:
                return z3.Product([base] * n) if n else z3.IntVal(1)
            return 1 / z3.Product([base] * (-n))
        if isinstance(e, sp.Max):
            out = go(e.args[0])
            for a in e.args[1:]:
                out = _max(out, go(a))
            return out
        if isinstance(e, sp.Min):
            out = go(e.args[0])
            for a in e.args[1:]:
                out = _min(out, go(a))
            return out
        if isinstance(e, sp.Abs):
            a = go(e.args[0])
            return z3.If(a >= 0, a, -a)
        if isinstance(e, sp.harmonic) and e.args[0].is_Integer:
            return go(sp.harmonic(int(e.args[0])).doit())
        rel = {sp.LessThan: lambda a, b: a <= b, sp.StrictLessThan: lambda a, b: a < b,
               sp.GreaterThan: lambda a, b: a >= b, sp.StrictGreaterThan: lambda a, b: a > b,
               sp.Equality: lambda a, b: a == b, sp.Unequality: lambda a, b: a != b}
        for cls, f in rel.items():
            if isinstance(e, cls):
                return f(go(e.lhs), go(e.rhs))
        if isinstance(e, sp.And):
            return z3.And([go(a) for a in e.args])
        if isinstance(e, sp.Or):
            return z3.Or([go(a) for a in e.args])
        if isinstance(e, sp.Not):
            return z3.Not(go(e.args[0]))
        if isinstance(e, sp.Implies):
            return z3.Implies(go(e.args[0]), go(e.args[1]))
        raise NotImplementedError(f"no z3 translation for {type(e).__name__}: {e}")

    return go(e)


def prove(claim, *hyps, timeout_s: float = 20.0, tries: int = 4) -> tuple[bool, object]:
    """``(True, None)`` if z3 shows ``hyps => claim`` valid, else ``(False, model)``
    (``model`` None when z3 answers unknown).

    Nonlinear integer/real arithmetic is undecidable, and how long z3 searches depends on
    the order of the terms (which follows sympy's set order, so the hash seed): a query
    may run for minutes under one seed and take a second under another. So each try is
    limited to ``timeout_s`` seconds and an unknown answer is retried with another of
    z3's random seeds, ``tries`` times in all; still unknown gives ``(False, None)`` (a
    failed proof, never a hang)."""
    r = z3.unknown
    for seed in range(tries):
        s = z3.Solver()
        s.set("timeout", int(timeout_s * 1000), "random_seed", seed)
        s.add(*hyps)
        s.add(z3.Not(claim))
        r = s.check()
        if r != z3.unknown:
            break
    return r == z3.unsat, (s.model() if r == z3.sat else None)
