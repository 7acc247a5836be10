"""Fuzz the expression parser (and its SymPy and autodiff back ends) with atheris.

    pip install atheris sympy
    python fuzz/fuzz_parser.py -max_total_time=600 fuzz/corpus_parser

Every input is decoded as text and parsed. A parsed expression is then built into SymPy,
differentiated, and evaluated by the autodiff engine at a point, and the symbolic Jacobian
is evaluated at 0, 0.7 and 30 (singular points and overflows give inf or nan). Each input
must finish within -timeout: the symbolic budget refuses what would not. The only acceptable
outcomes are results or ExpressionError; floating-point trouble such as overflow or a
domain error in the evaluation is allowed as NaN or inf. Any other exception is a bug.
"""

from __future__ import annotations

import sys
import warnings

import atheris

with atheris.instrument_imports():
    import numpy as np

    from chainrule.symbolic import ExpressionError, evaluate, jacobian, parse

warnings.simplefilter("ignore")


def one(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(400)
    try:
        e = parse(text)
        J = jacobian(e)
    except ExpressionError:
        return
    if e.variables:
        from chainrule.calculus import jacrev

        f = e.to_function(e.variables)
        with np.errstate(all="ignore"):
            jacrev(f)(np.full(len(e.variables), 0.7))
        for x in (0.0, 0.7, 30.0):  # singular points and overflow: inf/nan, or refused
            try:
                v = evaluate(J, {name: x for name in e.variables})
            except ExpressionError:
                continue
            assert v.shape == J.shape
    assert J.shape == (len(e.trees), len(e.variables))


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
