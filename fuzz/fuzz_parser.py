"""Fuzz the expression parser (and its SymPy and autodiff back ends) with atheris.

    pip install atheris sympy
    python fuzz/fuzz_parser.py -max_total_time=600 fuzz/corpus_parser

Every input is decoded as text and parsed. A parsed expression is then built into SymPy,
differentiated, and evaluated by the autodiff engine at a point. The only acceptable
outcomes are results or ExpressionError; floating-point trouble such as overflow or a
domain error in the evaluation is allowed as NaN or inf. Any other exception is a bug.
"""

from __future__ import annotations

import sys
import warnings

import atheris

with atheris.instrument_imports():
    import numpy as np

    from chainrule.symbolic import ExpressionError, jacobian, parse

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
    assert J.shape == (len(e.trees), len(e.variables))


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
