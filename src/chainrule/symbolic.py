"""Symbolic derivatives of typed-in expressions (optional extra ``chainrule[symbolic]``).

>>> from chainrule.symbolic import gradient
>>> gradient("x**2 + cos(y)", wrt="x y")
Matrix([
[    2*x],
[-sin(y)]])
"""
# ruff: noqa: F401

from .calculus.symbolic import (
    Expression,
    ExpressionError,
    check_against_autodiff,
    derivative,
    evaluate,
    gradient,
    jacobian,
    latex,
    parse,
    parse_point,
    singular_note,
    tree_size,
)
