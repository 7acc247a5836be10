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
    "latex", "evaluate", "check_against_autodiff", "singular_note", "tree_size",
]

MAX_LENGTH = 2000
MAX_NODES = 400
MAX_DEPTH = 40
MAX_EXPONENT = 1000
MAX_DIGITS = 10_000
MAX_DECIMAL_EXPONENT = 1000
# the symbolic budget, checked on the parsed tree before SymPy sees it
MAX_EXP_ARGUMENT = 1000.0        # exp of a constant above this: over 430 digits
MAX_EXP_NESTING = 3              # exp(exp(exp(x))) and no deeper
MAX_SYMPY_DEPTH = 100            # the nesting depth of the SymPy form (sigmoid: 4 levels)
MAX_DERIVATIVE_NODES = 20_000    # the size of a first derivative, written out as a tree
MAX_RESULT_NODES = 10_000        # the size of a derivative of higher order

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
    for t in trees:
        _check_budget(t)
    return Expression(text, trees, variables)


# --------------------------------------------------------------------------- the budget
# Before SymPy is called, one pass over the safe tree estimates what SymPy would build:
# the value of every constant subexpression (in floating point, so e^e^e^e^e is seen to
# be e to the 3.8 millionth before anything computes it to millions of digits), the
# nesting of exponentials, the depth of the SymPy form and the size of the first
# derivative written out as a tree (the product and chain rules copy subexpressions, and
# SymPy's printer and evaluator walk the copies).

# function: (copies of the argument in the derivative, nodes added, depth added)
_GROWTH = {"sigmoid": (2, 5, 4), "tan": (2, 3, 1), "sqrt": (1, 2, 1), "relu": (1, 2, 1),
           "log1p": (1, 2, 2), "expm1": (1, 2, 2), "arcsin": (1, 5, 3), "asin": (1, 5, 3),
           "arccos": (1, 5, 3), "acos": (1, 5, 3), "arctan": (1, 4, 2), "atan": (1, 4, 2)}
_EXPONENTIAL = ("exp", "sinh", "cosh", "expm1")
_FLOAT_FUNCS: dict[str, Callable[[float], float]] = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "log": math.log,
    "ln": math.log, "sqrt": math.sqrt, "tanh": math.tanh, "sinh": math.sinh,
    "cosh": math.cosh, "arctan": math.atan, "atan": math.atan, "arcsin": math.asin,
    "asin": math.asin, "arccos": math.acos, "acos": math.acos, "abs": abs,
    "sigmoid": lambda z: 1 / (1 + math.exp(-z)) if z > -700 else 0.0,
    "relu": lambda z: max(0.0, z), "log1p": math.log1p, "expm1": math.expm1,
}


class _Cost:
    __slots__ = ("size", "dsize", "depth", "nest", "value", "has_var")

    def __init__(self, size: int, dsize: int, depth: int, nest: int, value: float | None,
                 has_var: bool) -> None:
        self.size, self.dsize, self.depth, self.nest = size, dsize, depth, nest
        self.value, self.has_var = value, has_var


def _float_value(f: Callable[..., float], *args: float) -> float | None:
    """A constant's value in floating point: inf when it overflows, None when it is not a
    finite real number (0**-1, log(0), sqrt(-1): SymPy says why later)."""
    try:
        v = f(*args)
    except OverflowError:
        return math.inf
    except (ValueError, ZeroDivisionError, TypeError):
        return None
    if isinstance(v, complex):
        return None
    return float(v)


def _check_budget(t: Any) -> None:
    c = _cost(t)
    if c.depth > MAX_SYMPY_DEPTH:
        raise ExpressionError(f"the expression nests too deeply for symbolic work (about "
                              f"{c.depth} levels once written out; the limit is "
                              f"{MAX_SYMPY_DEPTH})")
    if c.dsize > MAX_DERIVATIVE_NODES:
        raise ExpressionError(f"the derivative would have about {c.dsize:,} terms once "
                              f"written out (the chain and product rules copy nested "
                              f"parts); the limit is {MAX_DERIVATIVE_NODES:,}: nest less")


def _too_big(what: str, v: float) -> ExpressionError:
    shown = "more than 1e308" if math.isinf(v) else f"about {v:.3g}"
    return ExpressionError(f"{what} of a constant that is {shown}: the result is too large "
                           f"to compute, with too many digits (the limit for such an "
                           f"argument is {MAX_EXP_ARGUMENT:g})")


def _exact_integer(t: Any) -> bool:
    """Whole numbers combined by + - * **: SymPy computes these exactly, and the digit
    limit of :func:`_to_sympy` bounds them."""
    if t[0] == "num":
        return not any(c in t[1] for c in ".eE")
    if t[0] == "neg":
        return _exact_integer(t[1])
    return t[0] == "op" and t[1] in ("+", "-", "*", "**") and _exact_integer(t[2]) and \
        _exact_integer(t[3])


def _cost(t: Any) -> _Cost:
    kind = t[0]
    if kind == "num":
        return _Cost(1, 1, 1, 0, _float_value(float, t[1]), False)
    if kind == "const":
        return _Cost(1, 1, 1, 0, math.pi if t[1] == "pi" else math.e, False)
    if kind == "var":
        return _Cost(1, 1, 1, 0, None, True)
    if kind == "neg":
        a = _cost(t[1])
        return _Cost(a.size + 1, a.dsize + 1, a.depth + 1, a.nest,
                     None if a.value is None else -a.value, a.has_var)
    if kind == "op":
        a, b = _cost(t[2]), _cost(t[3])
        op = t[1]
        size = a.size + b.size + 1
        depth = max(a.depth, b.depth) + 1
        nest = max(a.nest, b.nest)
        has_var = a.has_var or b.has_var
        value = None
        if a.value is not None and b.value is not None:
            fn = {"+": float.__add__, "-": float.__sub__, "*": float.__mul__,
                  "/": float.__truediv__, "**": float.__pow__}[op]
            value = _float_value(fn, a.value, b.value)
        if op in "+-":
            dsize = a.dsize + b.dsize + 1
        elif op == "*":
            dsize = a.dsize + b.dsize + a.size + b.size + 3
        elif op == "/":
            dsize = a.dsize + b.dsize + a.size + 3 * b.size + 5
        else:
            dsize = a.dsize + b.dsize + 2 * (a.size + b.size) + 6
            if b.has_var:
                nest += 1
            elif a.value is not None and b.value is not None and a.value > 0 and \
                    b.value * math.log(a.value) > MAX_EXP_ARGUMENT * math.log(10) and not \
                    (_exact_integer(t[2]) and _exact_integer(t[3])):
                raise _too_big("a power", b.value * math.log(a.value))
        if nest > MAX_EXP_NESTING:
            raise ExpressionError(f"exponentials nest more than {MAX_EXP_NESTING} deep "
                                  f"(each level is e to the power of the one inside: "
                                  f"the values and the derivative outgrow any number)")
        return _Cost(size, dsize, depth, nest, value, has_var)
    fn = t[1]
    a = _cost(t[2])
    copies, extra, deeper = _GROWTH.get(fn, (1, 1, 1))
    nest = a.nest
    if fn in _EXPONENTIAL:
        if a.has_var:
            nest += 1
        elif a.value is not None and abs(a.value) > MAX_EXP_ARGUMENT:
            raise _too_big(fn, a.value)
    if nest > MAX_EXP_NESTING:
        raise ExpressionError(f"exponentials nest more than {MAX_EXP_NESTING} deep (exp of "
                              f"exp of exp ...: the values and the derivative outgrow any "
                              f"number)")
    value = None if a.value is None else _float_value(_FLOAT_FUNCS[fn], a.value)
    size = a.size + extra
    return _Cost(size, copies * size + a.dsize + 2, a.depth + deeper, nest, value,
                 a.has_var)


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
        m = _DECIMAL.match(seg)
        if m and m.group(1) and abs(int(m.group(1)[1:])) > MAX_DECIMAL_EXPONENT:
            raise ExpressionError(f"the number {seg} has a decimal exponent beyond "
                                  f"+-{MAX_DECIMAL_EXPONENT}; exact arithmetic on it would "
                                  f"take too long")
        return ("num", seg if m else repr(n.value))
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
    """The ``order``-th derivative of one expression with respect to one variable, taken
    one order at a time; refused once it outgrows :data:`MAX_RESULT_NODES` terms."""
    e = parse(expr) if isinstance(expr, str) else expr
    if len(e.trees) != 1:
        raise ExpressionError("derivative needs a single expression")
    if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= 20:
        raise ExpressionError("order must be an integer from 1 to 20")
    (name,) = _wrt(wrt, e)
    sp = _sympy()
    x = sp.Symbol(name, real=True)
    d = e.to_sympy()[0]
    last = tree_size(d)
    for k in range(1, order + 1):
        d = sp.diff(d, x)
        n = tree_size(d)
        # each order multiplies the size by about the last ratio: project it to the end
        projected = n * max(n / max(last, 1), 1.0) ** (order - k) if k >= 3 and n >= 500 \
            else n
        if n > MAX_RESULT_NODES or projected > 5 * MAX_RESULT_NODES:
            raise ExpressionError(f"the derivative grows too fast: order {k} has {n:,} terms "
                                  f"written out, so order {order} would have about "
                                  f"{min(projected, 1e30):,.0f} (the limit is "
                                  f"{MAX_RESULT_NODES:,}); ask for a lower order")
        last = n
    return d


def tree_size(obj: Any) -> int:
    """The number of nodes of a SymPy expression (or matrix) written out as a tree,
    counted over its shared subexpressions once each, so it is fast even when the
    written-out form is astronomically large."""
    memo: dict[Any, int] = {}

    def size(node: Any) -> int:
        hit = memo.get(node)
        if hit is not None:
            return hit
        n = 1
        stack_args = node.args
        for a in stack_args:
            n += size(a)
        memo[node] = n
        return n

    items = list(obj) if hasattr(obj, "shape") else [obj]
    return sum(size(i) for i in items)


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
    """A SymPy expression or matrix evaluated at a point, as a float64 array.

    The point's numbers are put in bottom-up (``xreplace``), so each part is computed once
    in floating point; an exponential whose argument would overflow double precision
    becomes infinity without being computed to thousands of digits. At a singular point
    an entry is ``inf`` (SymPy's ``zoo`` or ``oo``, as 1/0 and log(0) give) or ``nan``;
    :func:`singular_note` says so in words."""
    sp = _sympy()
    subs = {sp.Symbol(k, real=True): sp.Float(v) for k, v in at.items()}
    free = {s.name for s in getattr(obj, "free_symbols", set())} - set(at)
    if free:
        raise ExpressionError(f"no value given for {', '.join(sorted(free))}: add it to the "
                              f"point, as in {sorted(free)[0]}=1")
    memo: dict[Any, Any] = {}
    try:
        if hasattr(obj, "shape"):
            vals = [[_number_at(obj[i, j], subs, sp, memo) for j in range(obj.shape[1])]
                    for i in range(obj.shape[0])]
        else:
            vals = _number_at(obj, subs, sp, memo)
    except RecursionError:
        raise ExpressionError("the expression nests too deeply to evaluate") from None
    return _np.array(vals, dtype=_np.float64)


def singular_note(values: Any) -> str | None:
    """A note for results that are not finite at the point, or None."""
    v = _np.asarray(values, dtype=float)
    if _np.all(_np.isfinite(v)):
        return None
    return ("note: not finite at this point: inf is an infinite value (a singular point, "
            "such as 1/0, log(0) or sqrt'(0), which SymPy writes zoo, or an overflow "
            "beyond 1e308) and nan an undefined one")


def _number_at(expr: Any, subs: dict[Any, Any], sp: Any, memo: dict[Any, Any]) -> float:
    r = _at(expr, subs, sp, memo)
    if r.has(sp.zoo) or r == sp.oo:
        return _np.inf
    if r == -sp.oo:
        return -_np.inf
    if r.has(sp.nan):
        return _np.nan
    if not r.is_Number:
        r = r.evalf()
    try:
        return float(r)
    except OverflowError:
        return _np.inf if r > 0 else -_np.inf
    except TypeError:
        raise ExpressionError("the expression is not real-valued at that point") from None


_OVERFLOW = 709.0     # exp(709.8) is the largest double


def _at(node: Any, subs: dict[Any, Any], sp: Any, memo: dict[Any, Any]) -> Any:
    """``node`` with the point put in, bottom-up, with overflow as in floating point."""
    hit = memo.get(node)
    if hit is not None:
        return hit
    if node.is_Symbol:
        r = subs.get(node, node)
    elif not node.args:
        r = node.evalf(30) if node.is_NumberSymbol else node   # pi, E: numbers now
    else:
        args = [_at(a, subs, sp, memo) for a in node.args]
        r = _apply(node.func, args, sp)
        if r.is_number and not r.is_Number and not r.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            r = r.evalf(30)      # one operation on numbers: each level stays a number
    memo[node] = r
    return r


def _apply(func: Any, args: list[Any], sp: Any) -> Any:
    def real(v: Any) -> float | None:
        if not v.is_Number or v.has(sp.zoo, sp.nan):
            return None
        try:
            return float(v)
        except (TypeError, OverflowError):
            return None

    if func in (sp.exp, sp.sinh, sp.cosh) and args:
        x = real(args[0])
        if x is not None and abs(x) > _OVERFLOW:
            if x > 0 or func is sp.cosh:
                return sp.oo
            return sp.Integer(0) if func is sp.exp else -sp.oo
    if func is sp.Pow and len(args) == 2:
        b, p = real(args[0]), real(args[1])
        if b is not None and p is not None and b != 0 and \
                abs(p * math.log(abs(b))) > _OVERFLOW and not (args[0].is_Integer and
                                                              args[1].is_Integer):
            big = p * math.log(abs(b)) > 0
            if not big:
                return sp.Integer(0)
            return sp.oo if b > 0 or float(p).is_integer() and p % 2 == 0 else sp.zoo
    return func(*args)


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
