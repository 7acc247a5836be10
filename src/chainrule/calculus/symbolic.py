"""Symbolic derivatives of typed-in expressions, through SymPy, behind a safe parser.

User text is never handed to ``eval``, ``sympify`` or ``parse_expr`` (all of which run
Python). It is parsed by :mod:`ast` into a tree that may hold only numbers, variable
names, + - * / ** (``^`` is read as ``**``), unary minus and calls of a fixed list of
functions; its length, node count, depth and exponents are bounded. The tree is then
built into SymPy objects directly, and, independently, into a function over
``chainrule.numpy`` so that every symbolic result can be checked by the autodiff engine.

>>> from chainrule.symbolic import jacobian
>>> jacobian("2*x + y**3, exp(y) - 13*x", wrt="x y")
Matrix([
[  2, 3*y**2],
[-13, exp(y)]])
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as _np

from .._optional import require

__all__ = [
    "ExpressionError", "Expression", "parse", "jacobian", "gradient", "derivative",
    "latex", "evaluate", "check_against_autodiff",
]

MAX_LENGTH = 2000
MAX_NODES = 400
MAX_DEPTH = 40
MAX_EXPONENT = 1000
MAX_DIGITS = 10_000

FUNCTIONS = ("sin", "cos", "tan", "exp", "log", "ln", "sqrt", "tanh", "sinh", "cosh",
             "arctan", "atan", "arcsin", "asin", "arccos", "acos", "abs", "sigmoid", "relu",
             "log1p", "expm1")
CONSTANTS = ("pi", "e")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,30}$")
_DECIMAL = re.compile(r"^[0-9]*\.?[0-9]*([eE][-+]?[0-9]+)?$")


class ExpressionError(ValueError):
    """A typed-in expression that chainrule refuses to read."""


# --------------------------------------------------------------------------- parsing
# The safe tree: ("num", text) | ("var", name) | ("const", name) | ("neg", a) |
# ("op", "+"|"-"|"*"|"/"|"**", a, b) | ("call", fname, a)

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


class Expression:
    """One or more parsed expressions and the variables they use."""

    def __init__(self, text: str, trees: list[Any], variables: list[str]) -> None:
        self.text = text
        self.trees = trees
        self.variables = variables

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def to_sympy(self) -> list[Any]:
        sp = _sympy()
        symbols = {v: sp.Symbol(v, real=True) for v in self.variables}
        return [_to_sympy(t, symbols, sp) for t in self.trees]

    def to_function(self, wrt: Sequence[str]) -> Callable[[Any], Any]:
        """A function of one vector (the variables ``wrt`` in order) returning the vector
        of expression values, built from chainrule.numpy (so it can be differentiated)."""
        missing = [v for v in self.variables if v not in wrt]
        if missing:
            raise ExpressionError(f"no value for the variable(s) {', '.join(missing)}: add "
                                  f"them to wrt")
        from . import numpy_api as cnp

        def f(v: Any) -> Any:
            env = {name: v[i] for i, name in enumerate(wrt)}
            vals = [_to_numeric(t, env, cnp) for t in self.trees]
            # 0 * v[0] + value: a constant expression still becomes an array entry
            return cnp.stack([cnp.add(cnp.multiply(0.0, v[0]), x) for x in vals])

        return f


def parse(text: str) -> Expression:
    """Parse ``text`` ("2*x + y**3, exp(y) - 13*x") safely into an :class:`Expression`."""
    if not isinstance(text, str):
        raise ExpressionError(f"expected the expression as text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(text)} characters long; the limit is "
                              f"{MAX_LENGTH}")
    if not text.strip():
        raise ExpressionError("the expression is empty: type one like 'x**2 + cos(y)'")
    if "__" in text:
        raise ExpressionError("names with a double underscore are not allowed in expressions")
    try:
        # "^" is power, as in the text; replaced before parsing so it binds like "**"
        node = ast.parse(text.strip().replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        glued = re.search(r"(\d)\s*([A-Za-z_(])", text)
        hint = f"; write products with *, as in {glued.group(1)}*{glued.group(2)}" \
            if glued else ""
        raise ExpressionError(f"cannot read the expression: {exc.msg} at column "
                              f"{exc.offset}{hint}") from None
    except (ValueError, RecursionError, MemoryError):
        raise ExpressionError("the expression is nested too deeply or is malformed") from None
    count = sum(1 for _ in ast.walk(node))
    if count > MAX_NODES:
        raise ExpressionError(f"the expression has {count} parts; the limit is {MAX_NODES}")
    body = node.body
    items = body.elts if isinstance(body, (ast.Tuple, ast.List)) else [body]
    if not items:
        raise ExpressionError("the expression list is empty")
    variables: list[str] = []
    trees = [_convert(n, text, variables, 0) for n in items]
    return Expression(text, trees, variables)


def _convert(n: ast.AST, text: str, variables: list[str], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ExpressionError(f"the expression is nested deeper than {MAX_DEPTH} levels")
    d = depth + 1
    if isinstance(n, ast.Constant):
        if isinstance(n.value, bool) or not isinstance(n.value, (int, float)):
            raise ExpressionError(f"only numbers are allowed as constants, not "
                                  f"{type(n.value).__name__}")
        seg = ast.get_source_segment(text.strip().replace("^", "**"), n) or repr(n.value)
        if len(seg) > 50:
            raise ExpressionError("a number in the expression is longer than 50 characters")
        if isinstance(n.value, int):
            return ("num", str(n.value))      # 0xff, 0b101, 1_000: the value, in decimal
        if not math.isfinite(n.value):
            raise ExpressionError(f"the number {seg} is too large")
        # a plain decimal keeps its digits (0.1 stays exactly 1/10); anything else its value
        return ("num", seg if _DECIMAL.match(seg) else repr(n.value))
    if isinstance(n, ast.Name):
        if n.id in CONSTANTS:
            return ("const", n.id)
        if n.id in FUNCTIONS:
            raise ExpressionError(f"{n.id} is a function: call it, as in {n.id}(x)")
        if not _NAME.match(n.id):
            raise ExpressionError(f"{n.id!r} is not an allowed variable name")
        if n.id not in variables:
            variables.append(n.id)
        return ("var", n.id)
    if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
        a = _convert(n.operand, text, variables, d)
        return ("neg", a) if isinstance(n.op, ast.USub) else a
    if isinstance(n, ast.BinOp) and type(n.op) in _BINOPS:
        return ("op", _BINOPS[type(n.op)], _convert(n.left, text, variables, d),
                _convert(n.right, text, variables, d))
    if isinstance(n, ast.Call):
        if not isinstance(n.func, ast.Name) or n.func.id not in FUNCTIONS:
            what = n.func.id if isinstance(n.func, ast.Name) else "this call"
            raise ExpressionError(f"{what} is not an allowed function; allowed: "
                                  f"{', '.join(FUNCTIONS)}")
        if n.keywords or len(n.args) != 1:
            raise ExpressionError(f"{n.func.id} takes exactly one argument")
        return ("call", n.func.id, _convert(n.args[0], text, variables, d))
    kind = {ast.Attribute: "attribute access", ast.Subscript: "subscripts",
            ast.Lambda: "lambda", ast.Compare: "comparisons", ast.BoolOp: "and/or",
            ast.IfExp: "if-expressions", ast.Starred: "starred arguments"}.get(type(n))
    raise ExpressionError(f"{kind or type(n).__name__} is not allowed in an expression; "
                          f"use numbers, variables, + - * / ** and functions such as sin(x)")


# --------------------------------------------------------------------------- backends


def _sympy() -> Any:
    return require("sympy", "symbolic", "symbolic derivatives need SymPy")


def _digits(x: Any, sp: Any) -> int:
    if isinstance(x, sp.Rational):
        return max(len(str(abs(x.p))), len(str(x.q)))
    return 1


def _to_sympy(t: Any, sym: dict[str, Any], sp: Any) -> Any:
    kind = t[0]
    if kind == "num":
        return sp.Rational(t[1]) if any(c in t[1] for c in ".eE") else sp.Integer(t[1])
    if kind == "var":
        return sym[t[1]]
    if kind == "const":
        return sp.pi if t[1] == "pi" else sp.E
    if kind == "neg":
        return -_to_sympy(t[1], sym, sp)
    if kind == "op":
        a, b = _to_sympy(t[2], sym, sp), _to_sympy(t[3], sym, sp)
        op = t[1]
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if b == 0:
                raise ExpressionError("division by zero in the expression")
            return a / b
        for v in (a, b):
            if v.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
                raise ExpressionError("the expression is undefined (a division by zero or "
                                      "0 to a negative power)")
        if b.is_Number and abs(b) > MAX_EXPONENT:
            raise ExpressionError(f"exponent {b} is too large; the limit is {MAX_EXPONENT}")
        if a.is_Number and b.is_Number and _digits(a, sp) * abs(float(b)) > MAX_DIGITS:
            raise ExpressionError("the expression's numbers grow too large")
        r = a ** b
        if r.has(sp.zoo, sp.nan):
            raise ExpressionError("the expression is undefined (0 to a negative power)")
        return r
    fn = t[1]
    a = _to_sympy(t[2], sym, sp)
    table = {
        "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "exp": sp.exp, "log": sp.log,
        "ln": sp.log, "sqrt": sp.sqrt, "tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh,
        "arctan": sp.atan, "atan": sp.atan, "arcsin": sp.asin, "asin": sp.asin,
        "arccos": sp.acos, "acos": sp.acos, "abs": sp.Abs,
        "sigmoid": lambda z: 1 / (1 + sp.exp(-z)), "relu": lambda z: sp.Max(0, z),
        "log1p": lambda z: sp.log(1 + z), "expm1": lambda z: sp.exp(z) - 1,
    }
    r = table[fn](a)
    if r.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise ExpressionError(f"the expression is undefined ({fn} of {a} is not a finite "
                              f"number)")
    return r


def _to_numeric(t: Any, env: dict[str, Any], cnp: Any) -> Any:
    kind = t[0]
    if kind == "num":
        return float(t[1])
    if kind == "var":
        return env[t[1]]
    if kind == "const":
        return float(_np.pi if t[1] == "pi" else _np.e)
    if kind == "neg":
        return cnp.negative(_to_numeric(t[1], env, cnp))
    if kind == "op":
        a, b = _to_numeric(t[2], env, cnp), _to_numeric(t[3], env, cnp)
        return {"+": cnp.add, "-": cnp.subtract, "*": cnp.multiply, "/": cnp.divide,
                "**": cnp.power}[t[1]](a, b)
    names = {"ln": "log", "atan": "arctan", "asin": "arcsin", "acos": "arccos"}
    fn = getattr(cnp, names.get(t[1], t[1]))
    return fn(_to_numeric(t[2], env, cnp))


def _fold_constants(t: Any, sp: Any) -> tuple[Any, bool]:
    """(the tree with each variable-free subtree beyond a leaf replaced by its exact SymPy
    value, rounded once to a float; whether the tree has a variable). The autodiff side of
    :func:`check_against_autodiff` then computes with the constants the symbolic side
    sees: ``sin(pi)`` is 0 on both, where float pi gives 1.2e-16, whose square root
    (1.1e-8) made the two disagree."""
    kind = t[0]
    if kind in ("num", "const"):
        return t, False
    if kind == "var":
        return t, True
    if kind == "neg":
        a, has = _fold_constants(t[1], sp)
        out = ("neg", a)
    elif kind == "op":
        (a, ha), (b, hb) = _fold_constants(t[2], sp), _fold_constants(t[3], sp)
        out, has = ("op", t[1], a, b), ha or hb
    else:
        a, has = _fold_constants(t[2], sp)
        out = ("call", t[1], a)
    if has:
        return out, True
    try:
        x = float(_to_sympy(t, {}, sp).evalf())
    except (TypeError, ValueError, ExpressionError):
        return out, False                    # not a finite real: left to NumPy
    return (("num", repr(x)) if _np.isfinite(x) else out), False


# --------------------------------------------------------------------------- public API


def _wrt(wrt: str | Sequence[str] | None, expr: Expression) -> list[str]:
    if wrt is None:
        wrt = list(expr.variables)
    names = re.split(r"[\s,]+", wrt.strip()) if isinstance(wrt, str) else list(wrt)
    names = [n for n in names if n]
    for n in names:
        if not isinstance(n, str) or not _NAME.match(n) or n in FUNCTIONS or n in CONSTANTS:
            raise ExpressionError(f"{n!r} is not a valid variable name for wrt")
    if len(set(names)) != len(names):
        raise ExpressionError("a variable is named twice in wrt")
    if not names:
        raise ExpressionError("there is no variable to differentiate with respect to: the "
                              "expression is a constant (name variables with wrt / --wrt)")
    return names


def _symbols(names: list[str]) -> list[Any]:
    sp = _sympy()
    return [sp.Symbol(n, real=True) for n in names]


def jacobian(exprs: str | Expression, wrt: str | Sequence[str] | None = None) -> Any:
    """The Jacobian matrix (text 1.5.2) of comma-separated expressions, as a SymPy Matrix
    with one row per expression and one column per variable in ``wrt``."""
    e = parse(exprs) if isinstance(exprs, str) else exprs
    names = _wrt(wrt, e)
    sp = _sympy()
    F = sp.Matrix(e.to_sympy())
    return F.jacobian(sp.Matrix(_symbols(names)))


def gradient(expr: str | Expression, wrt: str | Sequence[str] | None = None) -> Any:
    """The gradient (text 1.5.1) of one expression, as a SymPy column Matrix."""
    e = parse(expr) if isinstance(expr, str) else expr
    if len(e.trees) != 1:
        raise ExpressionError("gradient needs a single expression; use jacobian for several")
    return jacobian(e, wrt).T


def derivative(expr: str | Expression, wrt: str, order: int = 1) -> Any:
    """The ``order``-th derivative of one expression with respect to one variable."""
    e = parse(expr) if isinstance(expr, str) else expr
    if len(e.trees) != 1:
        raise ExpressionError("derivative needs a single expression")
    if not isinstance(order, int) or not 1 <= order <= 20:
        raise ExpressionError("order must be an integer from 1 to 20")
    (name,) = _wrt(wrt, e)
    sp = _sympy()
    return sp.diff(e.to_sympy()[0], sp.Symbol(name, real=True), order)


def latex(obj: Any) -> str:
    """LaTeX for a SymPy result."""
    return str(_sympy().latex(obj))


def parse_point(text: str | dict[str, float] | None) -> dict[str, float]:
    """``"x=1, y=2"`` -> ``{"x": 1.0, "y": 2.0}`` (numbers only, nothing evaluated)."""
    if text is None:
        return {}
    if isinstance(text, dict):
        return {str(k): float(v) for k, v in text.items()}
    out: dict[str, float] = {}
    for part in [p for p in re.split(r"[,\s]+", text.strip()) if p]:
        if "=" not in part:
            raise ExpressionError(f"cannot read {part!r}: write the point as x=1,y=2")
        k, v = part.split("=", 1)
        if not _NAME.match(k):
            raise ExpressionError(f"{k!r} is not a valid variable name")
        try:
            out[k] = float(v)
        except ValueError:
            raise ExpressionError(f"{v!r} is not a number (in {part!r})") from None
        if not _np.isfinite(out[k]):
            raise ExpressionError(f"the value of {k} must be finite")
    return out


def evaluate(obj: Any, at: dict[str, float]) -> _np.ndarray:
    """A SymPy expression or matrix evaluated at a point, as a float64 array."""
    sp = _sympy()
    subs = {sp.Symbol(k, real=True): sp.Float(v) for k, v in at.items()}
    free = {s.name for s in getattr(obj, "free_symbols", set())} - set(at)
    if free:
        raise ExpressionError(f"no value given for {', '.join(sorted(free))}: add it to the "
                              f"point, as in {sorted(free)[0]}=1")
    val = obj.evalf(subs=subs)
    try:
        return _np.array(val.tolist() if hasattr(val, "tolist") else val, dtype=_np.float64)
    except TypeError:
        raise ExpressionError("the expression is not real-valued at that point") from None


def check_against_autodiff(exprs: str | Expression, wrt: str | Sequence[str] | None,
                           at: dict[str, float]) -> tuple[_np.ndarray, _np.ndarray, float]:
    """Evaluate the symbolic Jacobian at ``at`` and the autodiff Jacobian of the same
    expressions; return ``(symbolic, autodiff, ||difference|| / max(||J||, 1))``."""
    from .transforms import jacrev

    e = parse(exprs) if isinstance(exprs, str) else exprs
    names = _wrt(wrt, e)
    sym = evaluate(jacobian(e, names), at)
    missing = [n for n in names if n not in at]
    if missing:
        raise ExpressionError(f"no value given for {', '.join(missing)}")
    point = _np.array([at[n] for n in names], dtype=_np.float64)
    sp = _sympy()
    folded = Expression(e.text, [_fold_constants(t, sp)[0] for t in e.trees], e.variables)
    with _np.errstate(all="ignore"):
        ad = _np.asarray(jacrev(folded.to_function(names))(point))
    return sym, ad, _relative_difference(sym, ad)


def _relative_difference(sym: _np.ndarray, ad: _np.ndarray) -> float:
    """||sym - ad|| relative to the size of the Jacobian, but never below 1 (an exact zero
    that autodiff computes as 1e-16 agrees). Entries that are the same infinity (or NaN on
    both sides) agree; a non-finite entry on one side only is an infinite difference."""
    sym, ad = _np.broadcast_arrays(_np.asarray(sym, float), _np.asarray(ad, float))
    finite = _np.isfinite(sym) & _np.isfinite(ad)
    same = (sym == ad) | (_np.isnan(sym) & _np.isnan(ad))
    if not _np.all(finite | same):
        return float("inf")
    s, a = sym[finite], ad[finite]
    scale = max(float(_np.linalg.norm(s)), float(_np.linalg.norm(a)), 1.0)
    return float(_np.linalg.norm(s - a)) / scale
