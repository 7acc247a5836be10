"""JAX as an oracle at JAX's kinds of test points, for every function that chainrule.numpy
differentiates.

JAX's own tests (``jax/_src/test_util.py``: ``rand_default``, ``rand_positive``,
``rand_some_zero``, ``rand_some_equal``, ``rand_some_inf_and_nan``; ``lax_autodiff_test``)
draw their points from the edges of each function's domain: zeros, negative values, kinks
and ties, infinities, broadcast shapes, several dtypes. Each case below is written once
against a NumPy-like module ``m`` and the transforms module ``T`` (chainrule or jax: the
same names and semantics), and computed by both, in float64 and float32 (and on integer
inputs, the value only, where the case says so): the value, ``grad`` of the sum, a ``vjp``
with a random cotangent, a ``jvp``, and two second derivatives (a Hessian-vector product
forward over reverse, and reverse over reverse). Gradients must have their input's dtype
and tangents their output's, as in JAX; values follow NumPy's promotion.

JAX's results are stored in tests/data/jax_edges.npz, keyed by each case's source: JAX at
these points takes minutes (one XLA compilation per case), the comparison seconds. A case
that is new or edited has no entry; JAX computes it (under jax.jit) in a child process,
once per session, and the store is rewritten (commit it with the case). Without JAX those
cases are skipped.

The list of functions comes from the registry: every differentiable name of
chainrule.numpy and chainrule.numpy.linalg, and every primitive of the rule table, must be
named by a case here, or ``test_every_function_has_oracle_cases`` fails and names it.

Where JAX itself gives NaN or inf, chainrule must give the same at the same places (the
comparison treats NaN as equal to NaN). Where chainrule deliberately differs (documented in
docs/math.md, "Conventions at the edges"), the case says why: ``nan_ok`` where JAX's
derivative is NaN, ``differs`` where JAX's derivative is an artifact (the values are still
compared).

    python -m pytest tests/test_jax_edges.py     # about 4 s; minutes if the store is stale
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import pathlib
import subprocess
import sys
import warnings
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as onp
import pytest

import chainrule as cr
import chainrule.numpy as np
from chainrule.calculus import numerical_jacobian
from chainrule.calculus import numpy_api as _api
from chainrule.calculus import rules as _rules

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import test_numpy_functions as _composite  # noqa: E402

INF, NAN = onp.inf, onp.nan
DTYPES = ("float64", "float32")
# relative tolerance per dtype; the absolute one is the same times the size of the reference
TOL = {"float64": 1e-9, "float32": 2e-4}


class Case(NamedTuple):
    fn: str                    # the chainrule.numpy name covered ("linalg.det" for linalg)
    label: str                 # the kind of point
    f: Callable[..., Any]      # f(m, *args), m a NumPy-like module
    args: tuple[Any, ...]      # float64 arrays (cast per dtype) or Python constants
    diff: tuple[int, ...] = (0,)  # the arguments differentiated
    ints: bool = False         # also the value on integer inputs
    tol: float = 1.0           # a factor on the tolerance (ill-conditioned linear algebra)
    nan_ok: str = ""           # where JAX's derivative is NaN, chainrule may differ: why
    dtypes: tuple[str, ...] = DTYPES
    second: bool = True        # compare the second derivatives
    differs: str = ""          # where JAX's derivative is not the derivative: why (values only)


def A(*v: Any) -> Any:
    return onp.array(v, dtype=float)


def rnd(shape: tuple[int, ...], lo: float = -2.0, hi: float = 2.0, seed: int = 0) -> Any:
    r = onp.random.default_rng(seed + 7 * len(shape) + sum(shape))
    return r.uniform(lo, hi, size=shape)


CASES: list[Case] = []


def case(fn: str, label: str, f: Callable[..., Any], *args: Any, **kw: Any) -> None:
    CASES.append(Case(fn, label, f, tuple(args), **kw))


# --------------------------------------------------------------------------- points
# the kinds of rand_default, rand_some_zero, rand_small: negative, zero, tiny, ordinary
REALS = A(-3.1, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 2.7)
POS = A(1e-3, 0.1, 0.5, 1.0, 2.0, 7.5)
UNIT = A(-0.99, -0.5, -1e-3, 0.0, 0.3, 0.99)
HALVES = A(-2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5, -0.7, 1.2)   # round's ties
SPECIAL = A(-INF, INF, NAN)                                  # rand_some_inf_and_nan

# unary element-wise functions: name -> (ordinary points, edge points, ints)
UNARY = {
    "negative": (REALS, SPECIAL, True), "positive": (REALS, SPECIAL, True),
    "exp": (REALS, A(-INF, INF, 30.0, -30.0), True), "exp2": (REALS, A(-INF, INF), True),
    "expm1": (REALS, A(-INF, INF), True),
    "log": (POS, A(0.0, -1.0, INF), True), "log2": (POS, A(0.0, -1.0, INF), True),
    "log10": (POS, A(0.0, -1.0, INF), True), "log1p": (UNIT, A(-1.0, -2.0, INF), True),
    "sqrt": (POS, A(0.0, -1.0, INF), True), "cbrt": (REALS, A(-INF, INF), True),
    "reciprocal": (REALS[REALS != 0], A(0.0, -INF, INF), False),
    "square": (REALS, SPECIAL, True),
    "sin": (REALS, A(onp.pi, -onp.pi / 2), True), "cos": (REALS, A(onp.pi, onp.pi / 2), True),
    "tan": (REALS[onp.abs(REALS) < 1.5], A(onp.pi, -1.5), True),
    "arcsin": (UNIT, A(1.0, -1.0, 1.5), False), "arccos": (UNIT, A(1.0, -1.0, 1.5), False),
    "arctan": (REALS, A(-INF, INF), True),
    "arcsinh": (REALS, A(-INF, INF), True), "arccosh": (1.0 + POS, A(1.0, 0.5, INF), True),
    "arctanh": (UNIT, A(1.0, -1.0, 1.5), False),
    "sinh": (REALS, A(-INF, INF), True), "cosh": (REALS, A(-INF, INF), True),
    "tanh": (REALS, A(-INF, INF, 20.0, -20.0), True),
    "abs": (REALS[REALS != 0], SPECIAL, True), "fabs": (REALS[REALS != 0], SPECIAL, True),
    "sign": (REALS, SPECIAL, True),
    "floor": (HALVES, SPECIAL, True), "ceil": (HALVES, SPECIAL, True),
    "rint": (HALVES, SPECIAL, True), "trunc": (HALVES, SPECIAL, True),
    "round": (HALVES, SPECIAL, True), "fix": (HALVES, SPECIAL, True),
    "deg2rad": (REALS, SPECIAL, True), "rad2deg": (REALS, SPECIAL, True),
    "sigmoid": (REALS, A(-INF, INF, 40.0, -40.0, -800.0), False),
    "softplus": (REALS, A(-INF, INF, 40.0, -40.0, 800.0), False),
    "relu": (REALS, A(-INF, INF), False),
    "sinc": (REALS[onp.abs(REALS) != 1e-3], A(1.0, -2.0), False),
    "nan_to_num": (REALS, SPECIAL, False),
    "real": (REALS, SPECIAL, True), "conj": (REALS, SPECIAL, True),
    "imag": (REALS, SPECIAL, True), "angle": (REALS[REALS != 0], A(-INF, INF), True),
}
# at these edges JAX's second derivative is NaN and chainrule's is the one-sided limit
EDGE_NAN = {"arctanh": "at +-1 the second derivative is +-inf (chainrule), NaN (JAX)",
            "angle": "angle of a real value is a constant: chainrule's derivatives are 0"}
for _n, (_pts, _edge, _ints) in UNARY.items():
    _f = (lambda m, x, n=_n: getattr(m, n if m is np or n != "fix" else "trunc")(x))
    case(_n, "points", _f, _pts, ints=_ints)
    case(_n, "edges", _f, _edge, nan_ok=EDGE_NAN.get(_n, ""))
    # a matrix, and a 0-d array
    case(_n, "matrix", _f, _pts[:6].reshape(2, 3))
    case(_n, "0-d", _f, onp.asarray(_pts[-1]))
ABS_AT_0 = ("|x| at 0: chainrule's derivative is 0, the central difference (PyTorch's and "
            "HIPS autograd's, whose suite checks it); JAX takes 1")
for _n in ("abs", "fabs"):
    case(_n, "zero", lambda m, x, n=_n: getattr(m, n)(x), A(0.0, -2.0, 3.0), differs=ABS_AT_0)
case("angle", "zero", lambda m, x: m.angle(x), A(0.0, 1.0), second=False,
     nan_ok="angle of a real value is a constant (0 or pi): derivative 0, also at 0")
case("sinc", "tiny", lambda m, x: m.sinc(x), A(-1e-3, 1e-3, 1e-6), dtypes=("float64",),
     tol=1e5)   # JAX's second derivative at 1e-6 cancels to 1e-5; chainrule uses the series
# (in float32 JAX's second derivative near 0 is noise: the float32 points avoid it)
case("round", "decimals", lambda m, x: m.round(x, 1) + m.around(x, 2) * x, REALS)

# binary element-wise functions: ties at 1, 2, 5 and zeros in both
BX = A(-2.0, -0.5, 0.0, 0.0, 0.7, 1.5, 1.5, 3.0, -1.0)
BY = A(1.3, -0.5, 0.0, 2.0, -0.3, 1.5, 0.4, -2.0, 0.0)
BPX, BPY = onp.abs(BX) + 0.25, onp.abs(BY) + 0.5
BINARY = {  # name -> (x, y, ints)
    "add": (BX, BY, True), "subtract": (BX, BY, True), "multiply": (BX, BY, True),
    "divide": (BX, BY, True), "true_divide": (BX[BY != 0], BY[BY != 0], True),
    "maximum": (BX, BY, True), "minimum": (BX, BY, True),
    "fmax": (BX, BY, True), "fmin": (BX, BY, True),
    "arctan2": (BX, BY, True), "hypot": (BX[[0, 3, 4, 6, 7, 8]], BY[[0, 3, 4, 6, 7, 8]], True),
    "logaddexp": (BX, BY, True), "logaddexp2": (BX, BY, True),
    "mod": (BX[BY != 0], BY[BY != 0], True),
    "remainder": (A(0.45, -1.3, 2.6, 1.4), A(0.7, 0.7, -0.9, 0.7), True),
    "fmod": (BX[BY != 0], BY[BY != 0], True),
    "power": (BPX, BY, False), "pow": (BPX, BY, False),
    "heaviside": (BX, BPY, True),
}
SPECIAL_NAN: dict[str, str] = {}
# at inf and NaN inputs these derivatives of JAX's are artifacts of its formulas
SPECIAL_DIFFERS = {
    "hypot": "JAX: grad NaN but jvp 0 at (inf, 1); chainrule NaN, or 0 in the finite one",
    "logaddexp": "JAX: e^a in the finite a beside +inf; chainrule 0",
    "logaddexp2": "as logaddexp", "mod": "JAX: -inf in y at (inf, 1); chainrule NaN",
    "remainder": "as mod", "heaviside": "JAX: 1 in x1 at x1 = NaN; chainrule 0",
}
for _n, (_x, _y, _ints) in BINARY.items():
    _f = (lambda m, x, y, n=_n: getattr(m, n)(x, y))
    case(_n, "points", _f, _x, _y, diff=(0, 1), ints=_ints)
    # broadcasting: a scalar with a vector, (3, 1) with (1, 4), a Python constant
    case(_n, "scalar-vector", _f, onp.asarray(1.25), onp.abs(rnd((3,))) + 0.5, diff=(0, 1))
    case(_n, "column-row", _f, onp.abs(rnd((3, 1), seed=1)) + 0.5, rnd((1, 4), seed=2),
         diff=(0, 1))
    case(_n, "constant", lambda m, x, n=_n: getattr(m, n)(x, 1.5), onp.abs(rnd((4,))) + 0.1)
    # rand_some_inf_and_nan
    case(_n, "inf and nan", _f, A(INF, -INF, NAN, 1.0, INF, 0.5), A(1.0, INF, 2.0, NAN, INF, -INF),
         diff=(0, 1), nan_ok=SPECIAL_NAN.get(_n, ""), differs=SPECIAL_DIFFERS.get(_n, ""))
case("maximum", "ties", lambda m, x: m.maximum(x, x) + m.maximum(x, 0.0), REALS)
case("minimum", "ties", lambda m, x: m.minimum(x, x) + m.minimum(0.0, x), REALS)
case("divide", "by zero", lambda m, x, y: m.divide(x, y), A(1.0, -1.0, 0.0), A(0.0, 0.0, 0.0),
     diff=(0, 1))
case("power", "zero base", lambda m, x, y: m.power(x, y), A(0.0, 0.0, 0.0, 0.0, 0.0),
     A(0.0, 1.0, 2.0, 3.0, 0.5), diff=(0, 1),
     nan_ok="second derivatives at x = 0 with y = 0 or 0.5 do not exist (log 0, x^-1.5)")
case("power", "negative base", lambda m, x, y: m.power(x, y), A(-1.5, -0.5, -2.0),
     A(2.0, 3.0, 0.0), diff=(0, 1))
case("power", "constant exponents", lambda m, x: m.power(x, 2) + m.power(x, 3.0) + x ** 0.5 *
     0 + m.power(x, onp.arange(3.0)) + x ** -1.0 * 0, A(0.0, 0.0, 0.0))
case("power", "integer exponents", lambda m, x: x ** 2 + x ** 3 + m.power(x, 0), REALS)
case("power", "x ** x", lambda m, x: x ** x, POS)
case("arctan2", "origin", lambda m, x, y: m.arctan2(x, y), A(0.0, 0.0, 1.0, -1.0),
     A(0.0, -1.0, 0.0, 0.0), diff=(0, 1))
case("hypot", "ties", lambda m, x, y: m.hypot(x, y), A(-0.5, 1.5, 2.0), A(-0.5, 1.5, -2.0),
     diff=(0, 1), second=False)   # JAX's second derivative at |x| = |y| is 0: its max/min
case("hypot", "origin", lambda m, x, y: m.hypot(x, y), A(0.0, 0.0, 3.0), A(0.0, 2.0, 0.0),
     diff=(0, 1), differs="hypot is not differentiable at (0, 0): chainrule gives NaN, JAX "
     "0.5 (from the tie of its max and min)")
case("logaddexp", "-inf", lambda m, x, y: m.logaddexp(x, y), A(-INF, -INF, 2.0),
     A(-INF, 1.0, -INF), diff=(0, 1))
case("logaddexp", "+inf", lambda m, x, y: m.logaddexp(x, y), A(INF, 1.0), A(1.0, INF),
     diff=(0, 1), differs="JAX's derivative in the finite argument is exp(x), not 0 "
     "(test_regression_logaddexp_at_inf)")
case("mod", "jumps", lambda m, x, y: m.mod(x, y) + m.fmod(x, y), A(1.4, -1.4, 2.1, 0.0),
     A(0.7, 0.7, -0.7, 0.7), diff=(0, 1), dtypes=("float64",))  # float32: rounding's side
case("heaviside", "zero", lambda m, x, y: m.heaviside(x, y), A(0.0, 0.0, -1.0, 1.0),
     A(0.5, 2.0, 0.5, 0.5), diff=(0, 1))

# reductions, over every axis; ties for max and min, zeros for prod
M = rnd((3, 4))
TIES = A(1.0, 3.0, 3.0, 0.0, 2.0, 2.0, 2.0, 2.0, -1.0, 0.0, 0.0, 5.0).reshape(3, 4)
ZEROS = A(1.5, 0.0, 2.0, -1.0, 0.0, 0.0, 2.0, 3.0, 0.5, -2.0, 1.0, 0.7).reshape(3, 4)
AXES = (None, 0, 1, -1, (0, 1))
STD_ZERO = "issue 14: the derivative of std where the variance is 0 is 0, not JAX's NaN"
REDUCE = {
    "sum": (M, True), "mean": (M, True), "prod": (ZEROS, True), "max": (TIES, True),
    "min": (TIES, True), "amax": (TIES, True), "amin": (TIES, True), "ptp": (TIES, True),
    "var": (M, True), "std": (M, True), "nansum": (M, False), "nanmean": (M, False),
    "logsumexp": (TIES, False),
}
_NAN_MAX = ("where the maximum is NaN, JAX's grad is 0 and its jvp NaN; chainrule's are "
            "both 0")
REDUCE_NAN = {n: _NAN_MAX for n in ("max", "min", "amax", "amin", "ptp")}
REDUCE_DIFFERS: dict[str, str] = {}
for _n, (_x, _ints) in REDUCE.items():
    for _ax in AXES:
        case(_n, f"axis={_ax}", lambda m, x, n=_n, ax=_ax: getattr(m, n)(x, axis=ax), _x,
             ints=_ints and _ax is None)
    case(_n, "keepdims", lambda m, x, n=_n: getattr(m, n)(x, axis=1, keepdims=True), _x)
    case(_n, "ordinary", lambda m, x, n=_n: getattr(m, n)(x, axis=0), M)
    case(_n, "inf and nan", lambda m, x, n=_n: getattr(m, n)(x, axis=1), A(
        1.0, NAN, 2.0, INF, -INF, 0.0, INF, 1.0, INF, -INF, -INF, 2.0).reshape(4, 3),
        nan_ok=REDUCE_NAN.get(_n, ""), differs=REDUCE_DIFFERS.get(_n, ""),
        second=_n != "prod")   # prod's second derivatives at inf: inf * 0, both ways
    case(_n, "0-d", lambda m, x, n=_n: getattr(m, n)(x), onp.asarray(0.7),
         nan_ok=STD_ZERO if _n == "std" else "")
case("prod", "two zeros", lambda m, x: m.prod(x, axis=1), A(0.0, 2.0, 0.0, 1.0, 0.0, 3.0
                                                          ).reshape(2, 3))
case("max", "infinities", lambda m, x: m.max(x, axis=1) + m.min(x, axis=1),
     A(-INF, 1.0, 2.0, INF, 0.0, 0.0).reshape(2, 3))
case("std", "zero variance", lambda m, x: m.std(x, axis=0) + m.std(x[1:], axis=1),
     A(0.3, -1.2, 2.0, 1.0, 1.0, 1.0).reshape(2, 3),
     nan_ok=STD_ZERO)
case("var", "ddof", lambda m, x: m.var(x, axis=1, ddof=1) + m.std(x, ddof=1), M)
case("logsumexp", "infinities", lambda m, x: m.logsumexp(x, axis=1),
     A(-INF, -INF, -INF, -INF, 1.0, 2.0, 2.0, -INF).reshape(2, 4))
case("logsumexp", "weights", lambda m, x: m.logsumexp(x, axis=1, b=onp.arange(1.0, 5.0)), M)
case("nansum", "nan entries", lambda m, x: m.nansum(x, axis=1).sum() + m.nanmean(x, axis=0),
     A(NAN, 1.0, 2.0, NAN, 0.5, -1.0).reshape(2, 3), nan_ok="")
case("softmax", "ties", lambda m, x: m.softmax(x, axis=1), TIES)
case("softmax", "axis 0", lambda m, x: m.softmax(x, axis=0), M)
case("softmax", "infinities", lambda m, x: m.softmax(x), A(-INF, 0.0, 1.0, 1.0))
# size 0 (JAX's shapes include empty ones)
case("sum", "size 0", lambda m, x: m.sum(x, axis=0) + m.prod(x, axis=0) +
     m.mean(x, axis=1).sum(), onp.zeros((0, 3)))
case("concatenate", "size 0", lambda m, a, b: m.concatenate([a, b]) ** 2, onp.zeros(0),
     A(0.3, -1.2, 2.0), diff=(0, 1))
case("matmul", "size 0", lambda m, a, b: m.matmul(a, b), onp.zeros((2, 0)), onp.zeros((0, 3)),
     diff=(0, 1))
case("cumsum", "axes", lambda m, x: m.cumsum(x, axis=0) + m.cumsum(x, axis=1) +
     m.cumsum(x).reshape(3, 4), M, ints=True)
case("cumprod", "zeros", lambda m, x: m.cumprod(x, axis=1) + m.cumprod(x, axis=0), ZEROS,
     ints=True)
case("average", "weights", lambda m, x, w: m.average(x, axis=1, weights=w), M,
     onp.abs(rnd((4,))) + 0.1, diff=(0, 1))
case("average", "plain", lambda m, x: m.average(x) + m.average(x, axis=0), M)
case("sort", "ties", lambda m, x: m.sort(x, axis=1) * onp.arange(1.0, 5.0) + m.sort(
    x, axis=0).sum(), TIES)
case("sort", "ordinary", lambda m, x: m.sort(x) ** 2, REALS)
# partition: the k-th entry in place, the others on the right side of it in no set order,
# so only a function of the two sides (as sets) and of the k-th entry is compared
case("partition", "sides", lambda m, x: m.sum(m.partition(x, 3)[:3] ** 2) + 2.0 * m.partition(
    x, 3)[3] - m.sum(m.partition(x, 3)[4:] ** 3), REALS)
# the complex family on real inputs (complex inputs: tests/test_complex.py, against JAX)
NONZERO = REALS[REALS != 0]     # angle of a real 0: JAX's arctan2(0, 0) has no derivative
case("real", "real input", lambda m, x: m.real(x) * x, REALS)
case("imag", "real input", lambda m, x: m.imag(x) + x ** 2, REALS)
case("conj", "real input", lambda m, x: m.conj(x) * x, REALS)
case("angle", "real input", lambda m, x: m.angle(x) + x ** 2, NONZERO)
case("fft.fft", "real input", lambda m, x: m.real(m.fft.fft(x)) * onp.arange(9.0) + m.imag(
    m.fft.fft(x)) ** 2, REALS)
case("fft.rfft", "real input", lambda m, x: m.real(m.fft.rfft(x)) ** 2 + m.imag(
    m.fft.rfft(x)) ** 2, REALS)
case("fft.irfft", "real input", lambda m, x: m.fft.irfft(x, 16) ** 2, REALS)
# real_if_close of a real array is the array itself (JAX has no real_if_close: its real)
case("real_if_close", "real input", lambda m, x: (
    m.real_if_close(x) if hasattr(m, "real_if_close") else m.real(x)) ** 2, REALS)

# choice: where (broadcast), clip (ties at the bounds), select
case("where", "broadcast", lambda m, x, y: m.where(x > 0, x, y), REALS.reshape(9, 1),
     rnd((1, 3)), diff=(0, 1))
case("where", "constant branch", lambda m, x: m.where(x > 0.5, x ** 2, 0.0), REALS)
case("where", "NaN in the other branch", lambda m, x: m.where(x > 0, m.sqrt(x), 0.0) +
     m.where(x > 0, m.log(m.where(x > 0, x, 1.0)), x), REALS)   # the first is JAX's NaN
case("clip", "at the bounds", lambda m, x: m.clip(x, -1.0, 1.0), REALS, ints=True)
case("clip", "traced bounds", lambda m, x, lo, hi: m.clip(x, lo, hi), REALS, A(-1.0),
     A(0.5), diff=(0, 1, 2))
case("clip", "one bound", lambda m, x: m.clip(x, None, 0.5) + m.clip(x, 0.0, None), REALS)
case("select", "conditions", lambda m, x: m.select([x < 0, x > 1], [x ** 2, m.sin(x)], 0.5),
     REALS)

# products
V3, V4 = rnd((3,)), rnd((4,), seed=3)
M34, M43, M44 = rnd((3, 4), seed=4), rnd((4, 3), seed=5), rnd((4, 4), seed=6)
B234, B243 = rnd((2, 3, 4), seed=7), rnd((2, 4, 3), seed=8)
PRODUCTS = [
    ("matmul", "matrix-matrix", lambda m, a, b: m.matmul(a, b), M34, M43),
    ("matmul", "vector-matrix", lambda m, a, b: m.matmul(a, b), V3, M34),
    ("matmul", "matrix-vector", lambda m, a, b: m.matmul(a, b), M34, V4),
    ("matmul", "vector-vector", lambda m, a, b: m.matmul(a, b), V4, V4 * 2),
    ("matmul", "batch broadcast", lambda m, a, b: m.matmul(a, b), B234, M43),
    ("matmul", "batch-vector", lambda m, a, b: m.matmul(a, b), B234, V4),
    ("matmul", "@", lambda m, a, b: a @ b, rnd((2, 1, 3, 4)), rnd((5, 4, 2))),
    ("linalg.matmul", "batch", lambda m, a, b: m.linalg.matmul(a, b), B234, B243),
    ("dot", "matrix-matrix", lambda m, a, b: m.dot(a, b), M34, M43),
    ("dot", "scalar", lambda m, a, b: m.dot(a, b), onp.asarray(1.5), M34),
    ("dot", "3-d", lambda m, a, b: m.dot(a, b), B234, M43),
    ("dot", "vector", lambda m, a, b: m.dot(a, b), V4, V4 + 1),
    ("vdot", "matrices", lambda m, a, b: m.vdot(a, b), M34, M43.T),
    ("inner", "matrices", lambda m, a, b: m.inner(a, b), M34, M34 + 1),
    ("inner", "scalars", lambda m, a, b: m.inner(a, b), onp.asarray(1.5), onp.asarray(0.3)),
    ("outer", "vectors", lambda m, a, b: m.outer(a, b), V3, V4),
    ("tensordot", "axes=1", lambda m, a, b: m.tensordot(a, b, 1), B234, M43),
    ("tensordot", "axes pairs", lambda m, a, b: m.tensordot(a, b, ((1, 2), (2, 1))), B234,
     B243),
    ("einsum", "matmul", lambda m, a, b: m.einsum("ij,jk->ik", a, b), M34, M43),
    ("einsum", "trace", lambda m, a: m.einsum("ii->", a) + m.einsum("ii->i", a).sum(), M44),
    ("einsum", "batch, implicit", lambda m, a, b: m.einsum("bij,bjk", a, b), B234, B243),
    ("einsum", "outer, broadcast", lambda m, a, b: m.einsum("...i,j->...ij", a, b), B234, V3),
    ("einsum", "square", lambda m, a: m.einsum("i,i,i->", a, a, a), V4),
    ("kron", "matrices", lambda m, a, b: m.kron(a, b), M34[:2, :2], M43[:2]),
    ("cross", "vectors", lambda m, a, b: m.cross(a, b), V3, V3[::-1] + 0.5),
    ("cross", "parallel", lambda m, a, b: m.cross(a, b), V3, 2 * V3),
    ("convolve", "full", lambda m, a, b: m.convolve(a, b), V4, V3),
    ("convolve", "same", lambda m, a, b: m.convolve(a, b, mode="same"), V4, V3),
    ("convolve", "valid", lambda m, a, b: m.convolve(a, b, mode="valid"), V4, V3),
    ("correlate", "valid", lambda m, a, b: m.correlate(a, b), V4, V3),
    ("correlate", "full", lambda m, a, b: m.correlate(a, b, mode="full"), V4, V3),
    ("polyval", "coefficients and x", lambda m, p, x: m.polyval(p, x), V4, V3),
    ("polyval", "at zero", lambda m, p, x: m.polyval(p, x), V4, A(0.0, 0.0)),
]
for _n, _lab, _f, *_a in PRODUCTS:
    case(_n, _lab, _f, *_a, diff=tuple(range(len(_a))), ints=True)

# shapes, indexing, joining and splitting: linear maps, so the points are the shapes
S = rnd((2, 3, 4), seed=9)
LINEAR = [
    ("reshape", "-1", lambda m, x: m.reshape(x, (4, -1)) * onp.arange(6.0), S),
    ("reshape", "method", lambda m, x: x.reshape(6, 4).T, S),
    ("ravel", "3-d", lambda m, x: m.ravel(x) * onp.arange(24.0), S),
    ("transpose", "axes", lambda m, x: m.transpose(x, (2, 0, 1)) + x.T.sum(), S),
    ("permute_dims", "axes", lambda m, x: m.permute_dims(x, (1, 0, 2)), S),
    ("swapaxes", "keywords", lambda m, x: m.swapaxes(x, axis1=0, axis2=2), S),
    ("moveaxis", "several", lambda m, x: m.moveaxis(x, (0, 1), (-1, 0)), S),
    ("rollaxis", "start", lambda m, x: m.rollaxis(x, 2, 1), S),
    ("expand_dims", "tuple", lambda m, x: m.expand_dims(x, (0, -1)), M34),
    ("squeeze", "axis", lambda m, x: m.squeeze(x, axis=1) + m.squeeze(x).sum(),
     rnd((3, 1, 4))),
    ("broadcast_to", "shape", lambda m, x: m.broadcast_to(x, (2, 3, 4)) * S, rnd((3, 1))),
    ("atleast_1d", "0-d", lambda m, x: m.atleast_1d(x) * 2.0, onp.asarray(0.7)),
    ("atleast_2d", "1-d", lambda m, x: m.atleast_2d(x) * onp.arange(3.0), V3),
    ("atleast_3d", "2-d", lambda m, x: m.atleast_3d(x) ** 2, M34),
    ("concatenate", "axis 1", lambda m, a, b: m.concatenate([a, b], axis=1), M34, M43.T),
    ("concatenate", "axis None", lambda m, a, b: m.concatenate([a, b], axis=None), M34, V3),
    ("concat", "axis 0", lambda m, a, b: m.concat([a, b]), M34, M34 * 2),
    ("stack", "axis -1", lambda m, a, b: m.stack([a, b], axis=-1), M34, M34 * 2),
    ("hstack", "vectors", lambda m, a, b: m.hstack([a, b]), V3, V4),
    ("vstack", "vectors", lambda m, a, b: m.vstack([a, b]), V4, V4 * 2),
    ("row_stack", "vectors", lambda m, a, b: (m.row_stack if m is np else m.vstack)([a, b]),
     V4, V4 * 2),
    ("column_stack", "vectors", lambda m, a, b: m.column_stack([a, b]), V3, V3 * 2),
    ("dstack", "matrices", lambda m, a, b: m.dstack([a, b]), M34, M34 * 2),
    ("append", "flat", lambda m, a, b: m.append(a, b), M34, V3),
    ("append", "axis", lambda m, a, b: m.append(a, b, axis=0), M34, V4.reshape(1, 4)),
    ("split", "sections", lambda m, x: m.split(x, 2, axis=2)[1] * m.split(x, [1], 1)[1][:, :1, :2],
     S),
    ("array_split", "uneven", lambda m, x: m.array_split(x, 3, axis=2)[2] ** 2, S),
    ("hsplit", "2", lambda m, x: m.hsplit(x, 2)[1] * 3.0, M34),
    ("vsplit", "indices", lambda m, x: m.vsplit(x, [1])[1] ** 2, M34),
    ("dsplit", "2", lambda m, x: m.dsplit(x, 2)[0] ** 2, S),
    ("flip", "axes", lambda m, x: m.flip(x, (0, 2)) * S + m.flip(x).sum(), S),
    ("fliplr", "matrix", lambda m, x: m.fliplr(x) * M34, M34),
    ("flipud", "matrix", lambda m, x: m.flipud(x) * M34, M34),
    ("rot90", "k=3", lambda m, x: m.rot90(x, 3) + m.rot90(x, axes=(1, 0)), M34),
    ("roll", "negative shift", lambda m, x: m.roll(x, -2, axis=1) * M34 + m.roll(x, 5).sum(),
     M34),
    ("tile", "reps", lambda m, x: m.tile(x, (2, 1, 2)) * onp.arange(4.0), M34[:2, :2]),
    ("repeat", "axis", lambda m, x: m.repeat(x, 2, axis=1) + m.repeat(x, 3).sum(), M34),
    ("diag", "k", lambda m, x: m.diag(x, 1) + m.diag(m.diag(x ** 2)).sum(), V3),
    ("diag", "of a matrix", lambda m, x: m.diag(x, -1), M43),
    ("diagonal", "offset", lambda m, x: m.diagonal(x, 1, 2, 0), S),
    ("trace", "matrix", lambda m, x: m.trace(x) + m.trace(x, -1), M34),
    ("tril", "k", lambda m, x: m.tril(x, -1) + m.triu(x, 1), M34),
    ("triu", "3-d", lambda m, x: m.triu(x ** 2), S),
    ("pad", "constant", lambda m, x: m.pad(x, ((1, 0), (2, 1)), constant_values=1.5), M34),
    ("pad", "reflect", lambda m, x: m.pad(x, 2, mode="reflect") * onp.arange(8.0), V4),
    ("take", "repeated, negative", lambda m, x: m.take(x, onp.array([0, 2, 2, -1]), axis=1),
     M34),
    ("take", "flat", lambda m, x: m.take(x, onp.array([[5, 5], [0, 11]])), M34),
    ("take_along_axis", "argsort", lambda m, x: m.take_along_axis(
        x, onp.argsort(M34, axis=0), axis=0) * M34, M34),
    ("getitem", "slices", lambda m, x: x[1:, ::-2, None] + x[..., 1].sum(), S),
    ("getitem", "repeated indices", lambda m, x: x[onp.array([0, 0, 2]), 1:3] ** 2, M34),
    ("getitem", "mask", lambda m, x: x[M34 > 0] * 2.0, M34),
    ("getitem", "mixed", lambda m, x: x[onp.array([1, 0]), :, onp.array([3, 3])], S),
    ("astype", "float32", lambda m, x: x.astype("float32") * 2.0, V3),
    ("astype", "int", lambda m, x: x * x.astype(m.int32), REALS),
    ("array", "of a list", lambda m, x: m.array([x[0], x[1] ** 2, 3.0]), V3),
    ("asarray", "of a list", lambda m, x: m.asarray([[x[0], 1.0], [x[1], x[2]]]), V3),
    ("asanyarray", "identity", lambda m, x: (m.asanyarray if m is np else m.asarray)(x) * 2.0,
     V3),
    ("ascontiguousarray", "matrix", lambda m, x: (m.ascontiguousarray if m is np else m.asarray)(
        x.T) * M43, M34),
    ("asfortranarray", "matrix", lambda m, x: (m.asfortranarray if m is np else m.asarray)(
        x) * 2.0, M34),
    ("linspace", "traced ends", lambda m, a, b: m.linspace(a, b, 5), onp.asarray(0.3),
     onp.asarray(2.0)),
    ("linspace", "vector ends", lambda m, a, b: m.linspace(a, b, 4, endpoint=False, axis=1),
     V3, V3 + 1),
    ("meshgrid", "xy", lambda m, a, b: m.meshgrid(a, b)[0] * m.meshgrid(a, b)[1], V3, V4),
    ("meshgrid", "ij", lambda m, a, b: m.meshgrid(a, b, indexing="ij")[1] ** 2, V3, V4),
    ("r_", "pieces", lambda m, a, b: m.r_[a, b, 1.0], V3, V4),
    ("c_", "columns", lambda m, a, b: m.c_[a, b], V3, V3 * 2),
    ("diff", "n=2", lambda m, x: m.diff(x, n=2, axis=0) + m.diff(x).sum(), M43),
    ("diff", "prepend", lambda m, x: m.diff(x, prepend=0.5, append=x[-1:]), V4),
    ("gradient", "axes", lambda m, x: m.gradient(x)[1] + m.gradient(x, 0.5, axis=0), M34),
    ("unique", "repeated", lambda m, x: m.unique(x) * onp.arange(1.0, 4.0), A(2.0, 1.0, 2.0,
                                                                                3.0, 1.0)),
    ("unique", "distinct", lambda m, x: m.unique(x) * onp.arange(1.0, 4.0), A(2.0, 1.0, 3.0)),
    ("interp", "at the knots", lambda m, fp: m.interp(A(0.0, 0.5, 1.0, 2.0, 3.0, 4.5),
                                                     A(0.0, 1.0, 2.0, 3.0), fp), V4),
    ("interp", "traced x", lambda m, x: m.interp(x, A(0.0, 1.0, 2.0, 3.0), A(1.0, 3.0, -1.0,
                                                                            0.5)),
     A(0.3, 1.5, 2.9, -1.0, 4.0)),
    ("cov", "rows", lambda m, x: m.cov(x), M34),
    ("cov", "bias", lambda m, x: m.cov(x, bias=True, rowvar=False), M43),
    ("corrcoef", "rows", lambda m, x: m.corrcoef(x), M34),
    ("piecewise", "two pieces", lambda m, x: m.piecewise(x, [x < 0, x >= 0],
                                                         [lambda v: v ** 2, lambda v: 3 * v])
     if m is np else m.where(x < 0, x ** 2, 3 * x), REALS),
]
for _n, _lab, _f, *_a, in LINEAR:
    _kw = {"differs": "JAX's unique has derivative 0; chainrule's follows each value from "
           "its first occurrence, as sort does"} if _n == "unique" else {}
    case(_n, _lab, _f, *_a, diff=tuple(range(len(_a))), **_kw)

# linear algebra: ordinary points, and the singular, repeated and negative ones
SPD = M44 @ M44.T + 4 * onp.eye(4)
SING = A(1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 0.5, -1.0, 2.0).reshape(3, 3)    # rank 2
REPEATED = onp.diag(A(1.0, 1.0, 3.0))
NEGDET = A(0.0, 1.0, 1.0, 0.0).reshape(2, 2) + 0.1
LINALG = [
    ("linalg.det", "ordinary", lambda m, a: m.linalg.det(a), M44, {}),
    ("linalg.det", "singular", lambda m, a: m.linalg.det(a), SING, {}),
    ("linalg.det", "rank 1", lambda m, a: m.linalg.det(a), onp.outer(V3, V3 + 1), {}),
    ("linalg.det", "zero", lambda m, a: m.linalg.det(a), onp.zeros((3, 3)), {}),
    ("linalg.det", "batch", lambda m, a: m.linalg.det(a), rnd((2, 3, 3), seed=11), {}),
    ("linalg.slogdet", "negative", lambda m, a: m.linalg.slogdet(a)[1] +
     m.linalg.slogdet(a)[0], NEGDET, {}),
    ("linalg.inv", "ordinary", lambda m, a: m.linalg.inv(a), M44, {"tol": 10}),
    ("linalg.inv", "batch", lambda m, a: m.linalg.inv(a), rnd((2, 3, 3), seed=12) + 2 *
     onp.eye(3), {}),
    ("linalg.solve", "vector", lambda m, a, b: m.linalg.solve(a, b), M44, V4, {"tol": 10}),
    ("linalg.solve", "matrix", lambda m, a, b: m.linalg.solve(a, b), M44, M43, {"tol": 10}),
    ("linalg.cholesky", "spd", lambda m, a: m.linalg.cholesky(a), SPD, {}),
    ("linalg.eigh", "distinct", lambda m, a: m.linalg.eigh(a)[0] + m.abs(m.linalg.eigh(a)[1]).sum(
        0), SPD, {}),
    ("linalg.eigh", "repeated values", lambda m, a: m.linalg.eigh(a)[0], REPEATED, {}),
    ("linalg.eigvalsh", "spd", lambda m, a: m.linalg.eigvalsh(a), SPD, {}),
    ("linalg.svd", "values", lambda m, a: m.linalg.svd(a, compute_uv=False), M43, {}),
    ("linalg.svd", "vectors", lambda m, a: m.abs(m.linalg.svd(a, full_matrices=False)[0]) +
     m.abs(m.linalg.svd(a, full_matrices=False)[2]).sum(), M43, {"tol": 10}),
    ("linalg.svd", "wide", lambda m, a: m.abs(m.linalg.svd(a, full_matrices=False)[2]), M34,
     {"tol": 10}),
    ("linalg.svdvals", "rank 2", lambda m, a: m.linalg.svdvals(a)[:2], SING, {}),
    ("linalg.qr", "square", lambda m, a: m.linalg.qr(a)[1] + m.linalg.qr(a)[0] ** 3, M44,
     {"tol": 10}),
    ("linalg.qr", "tall", lambda m, a: m.linalg.qr(a)[1].sum() + m.linalg.qr(a)[0] ** 3, M43,
     {"tol": 10}),
    ("linalg.pinv", "tall", lambda m, a: m.linalg.pinv(a), M43, {"tol": 10}),
    ("linalg.pinv", "wide", lambda m, a: m.linalg.pinv(a), M34, {"tol": 10}),
    ("linalg.matrix_power", "powers", lambda m, a: m.linalg.matrix_power(a, 3) +
     m.linalg.matrix_power(a, 0) + m.linalg.matrix_power(a, -2), M44 + 3 * onp.eye(4), {}),
    ("linalg.multi_dot", "three", lambda m, a, b: m.linalg.multi_dot([a, b, a]), M34, M43, {}),
    # (squared, not abs: free of each vector's sign, and smooth at its exact zeros)
    ("linalg.eigh", "repeated vectors", lambda m, a: m.linalg.eigh(a)[1] ** 2, REPEATED, {}),
    # (in float32 the zero singular value is rounding noise, and so is its vector)
    ("linalg.svd", "rank 2 vectors", lambda m, a: m.abs(m.linalg.svd(a)[0]), SING,
     {"dtypes": ("float64",)}),
    ("linalg.pinv", "rank 2", lambda m, a: m.linalg.pinv(a), SING, {}),
    # not here: inv, slogdet's derivative and cholesky at singular (not positive definite)
    # matrices raise NumPy's LinAlgError, as NumPy does; JAX returns inf and NaN. qr's
    # derivatives at a rank-deficient matrix divide by a zero of R in both.
    ("linalg.norm", "vector orders", lambda m, x: m.stack([m.linalg.norm(x, o) for o in (
        None, 1, 2, 3, m.inf, -m.inf, -1, 0.5)]), A(0.4, -1.3, 2.6, 0.7), {}),
    ("linalg.norm", "vector orders, a zero entry", lambda m, x: m.stack([m.linalg.norm(
        x, o) for o in (None, 1, 2, 3, m.inf, -m.inf, -1, 0.5)]), A(0.4, -1.3, 2.6, 0.0),
     {"differs": ABS_AT_0}),
    ("linalg.norm", "vector ties", lambda m, x: m.stack([m.linalg.norm(x, o) for o in (
        m.inf, -m.inf)]), A(0.4, -1.3, 1.3, 0.4), {}),
    ("linalg.norm", "zero vector", lambda m, x: m.linalg.norm(x), A(0.0, 0.0, 0.0), {}),
    ("linalg.norm", "zero matrix", lambda m, x: m.linalg.norm(x, "fro"), onp.zeros((2, 2)), {}),
    ("linalg.norm", "matrix orders", lambda m, x: m.stack([m.linalg.norm(x, o) for o in (
        "fro", "nuc", 1, -1, m.inf, -m.inf, 2, -2)]), M44, {"tol": 10}),
    ("linalg.norm", "axis", lambda m, x: m.linalg.norm(x, axis=1, keepdims=True), M34, {}),
]
for _n, _lab, _f, *_a, _kw in LINALG:
    case(_n, _lab, _f, *_a, diff=tuple(range(len(_a))), **_kw)

# the composite functions of test_numpy_functions (one ordinary point each), in both dtypes
for _name, (_f, _x) in _composite.CASES.items():
    case("composite", _name, _f, _x)

# ------------------------------------------------------------- the registry's names
# differentiable names that are not functions of floats, each with the reason
# differentiable, and checked against an oracle in another file (the name must appear there)
CHECKED_ELSEWHERE = {
    "linalg.eigvals": ("test_complex.py", "complex outputs, against JAX's own eigvals"),
    "linalg.eig": ("test_autograd_suite.py", "JAX does not differentiate eigenvectors: "
                   "phase-free functions of them against central differences"),
}
NOT_DIFFERENTIABLE = {
    "shape": "returns a tuple of ints",
    "broadcast_shapes": "shapes only", "isscalar": "a bool", "iterable": "a bool",
    "isfortran": "a bool",
}
# primitives that chainrule.numpy reaches under another name
PRIMITIVE_VIA = {
    "round": "round", "power_c": "power", "where": "where", "sum": "sum", "mean": "mean",
    "max": "max", "min": "min", "prod": "prod", "logsumexp": "logsumexp",
    "softmax": "softmax", "einsum": "einsum", "reshape": "reshape",
    "broadcast_to": "broadcast_to", "transpose": "transpose", "astype": "astype",
    "concatenate": "concatenate", "getitem": "getitem", "untake": "getitem",
    "cumsum": "cumsum", "cholesky": "linalg.cholesky", "eigh_w": "linalg.eigh",
    "eigh_v": "linalg.eigh", "svd_s": "linalg.svd", "svd_u": "linalg.svd",
    "svd_vh": "linalg.svd", "qr_q": "linalg.qr", "qr_r": "linalg.qr",
    "logabsdet": "linalg.slogdet", "pinv": "linalg.pinv", "inv": "linalg.inv",
    "det": "linalg.det", "abs": "abs", "mod": "mod", "eig_w": "linalg.eig",
    "eig_v": "linalg.eig", "fft": "fft.fft", "rfft": "fft.rfft", "irfft": "fft.irfft",
    "real": "real", "imag": "imag", "conj": "conj", "angle": "angle",
}


def _is_values_only(fn: Any) -> bool:
    return "_values_only" in getattr(fn, "__qualname__", "")


def differentiable_names() -> dict[str, Any]:
    """chainrule.numpy's differentiable names ("linalg.x" for chainrule.numpy.linalg)."""
    out = {n: f for n, f in _api.EXPORTS.items() if not _is_values_only(f)}
    out.update({"linalg." + n: f for n, f in _api.LINALG.items()})
    return out


def _resolve(name: str) -> Any:
    if "." in name:                  # linalg.x, fft.x
        return functools.reduce(getattr, name.split("."), np)
    if name == "getitem":
        return _api.getitem
    return getattr(np, name)


# --------------------------------------------------------------------------- computing
class _JaxNumpy:
    """jax.numpy with the names that chainrule.numpy adds (JAX keeps them in jax.nn and
    jax.scipy.special)."""

    def __init__(self) -> None:
        import jax
        import jax.numpy as jnp
        import jax.scipy.special as jss

        self._jnp = jnp
        self.relu, self.sigmoid = jax.nn.relu, jax.nn.sigmoid
        self.softplus, self.softmax = jax.nn.softplus, jax.nn.softmax
        self.logsumexp = jss.logsumexp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jnp, name)


def _cast(args: tuple[Any, ...], dt: str) -> list[Any]:
    return [onp.asarray(a, dtype=dt) if isinstance(a, onp.ndarray) else a for a in args]


def _key(c: Case) -> str:
    return f"{c.fn}[{c.label}]"


def compute(c: Case, m: Any, T: Any, dt: str) -> dict[str, list[Any]]:
    """Everything compared, for one case in one dtype, with the module ``m`` and the
    transforms ``T`` (chainrule and chainrule.numpy, or jax and jax.numpy)."""
    args = _cast(c.args, dt)
    f = (lambda *a: c.f(m, *a))
    out: dict[str, list[Any]] = {}
    if dt.startswith("int"):
        out["value"] = [f(*_cast(c.args, "float64"))]
        return out
    nd = tuple(range(len(c.diff)))
    dargs = [args[i] for i in c.diff]

    def fd(*d: Any) -> Any:
        a = list(args)
        for i, v in zip(c.diff, d):
            a[i] = v
        return f(*a)

    val = fd(*dargs)
    r = onp.random.default_rng(zlib.crc32((_key(c) + dt).encode()))
    w = r.normal(size=onp.shape(val)).astype(val.dtype if hasattr(val, "dtype") else dt)
    ts = [r.normal(size=onp.shape(a)).astype(dt) for a in dargs]
    out["value"] = [val]
    out["grad"] = list(T.grad(lambda *d: m.sum(fd(*d)), argnums=nd)(*dargs))
    out["vjp"] = list(T.vjp(fd, *dargs)[1](w))
    out["jvp"] = [T.jvp(fd, tuple(dargs), tuple(ts))[1]]
    if c.second:
        gw = T.grad(lambda *d: m.sum(fd(*d) * w), argnums=nd)
        out["hvp"] = list(T.jvp(gw, tuple(dargs), tuple(ts))[1])
        out["rr"] = list(T.grad(lambda *d: sum(m.sum(g * t) for g, t in zip(gw(*d), ts)),
                                argnums=nd)(*dargs))
    return out


def _runs(c: Case) -> list[str]:
    return list(c.dtypes) + (["int64"] if c.ints else [])


def _digest(h: Any, obj: Any, f_globals: dict[str, Any]) -> None:
    """Feed a case's definition into the hash ``h``: the source of its function (so the
    keys do not depend on the Python version), its default arguments, and the global arrays
    it reads."""
    if hasattr(obj, "__code__"):
        h.update(_source(obj.__code__))
        _digest(h, obj.__defaults__, obj.__globals__)
        for n in sorted(_names(obj.__code__)):
            if isinstance(obj.__globals__.get(n), onp.ndarray):
                _digest(h, obj.__globals__[n], obj.__globals__)
    elif isinstance(obj, onp.ndarray):
        h.update(str(obj.dtype).encode() + repr(obj.shape).encode() + obj.tobytes())
    elif isinstance(obj, (tuple, list)):
        for k in obj:
            _digest(h, k, f_globals)
    else:
        h.update(repr(obj).encode())


@functools.cache
def _source(code: Any) -> bytes:
    try:
        return inspect.getsource(code).encode()
    except (OSError, TypeError):
        return code.co_code


def _names(code: Any) -> set[str]:
    """The global names a code object and the functions nested in it read."""
    out = set(code.co_names)
    for k in code.co_consts:
        if hasattr(k, "co_names"):
            out |= _names(k)
    return out


_HASHES: dict[int, str] = {}


def _entry(c: Case, dt: str) -> str:
    """The key of one case in one dtype in the stored references; it changes with the
    case's definition, so an edited case is computed again."""
    if id(c) not in _HASHES:
        h = hashlib.sha1()
        _digest(h, (c.f, c.args, c.diff, c.second, compute), {})
        _HASHES[id(c)] = h.hexdigest()[:10]
    return f"{_key(c)}/{dt}/{_HASHES[id(c)]}"


def jax_references(path: str, want: list[str]) -> None:
    """JAX's results for the entries ``want`` (keys of ``_entry``), merged into the store
    at ``path``. Each case runs under jax.jit (one compilation, not one per operation),
    or eagerly where jit cannot trace it. Run in a child process."""
    import jax

    jax.config.update("jax_enable_x64", True)
    jm = _JaxNumpy()
    store = _load(path)
    todo = set(want)
    arrays = {k: v for k, v in store.items() if k.rsplit("/", 2)[0] in todo}
    for c in CASES:
        for dt in _runs(c):
            e = _entry(c, dt)
            if e not in todo:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if dt.startswith("int"):
                        res = compute(c, jm, jax, dt)
                    else:
                        try:
                            res = jax.jit(lambda *a, c=c, dt=dt: compute(
                                c._replace(args=a), jm, jax, dt))(*_cast(c.args, dt))
                        except Exception:  # noqa: BLE001 (values JAX needs concrete)
                            res = compute(c, jm, jax, dt)
            except Exception as err:  # noqa: BLE001 (recorded, and the test says so)
                arrays[f"{e}/error/0"] = onp.array(f"{type(err).__name__}: {err}"[:300])
                continue
            for kind, vals in res.items():
                for i, v in enumerate(vals):
                    arrays[f"{e}/{kind}/{i}"] = onp.asarray(v)
    arrays["__jax__"] = onp.array(jax.__version__)
    current = set(_all_entries())
    keep = {k: v for k, v in store.items() if k.rsplit("/", 2)[0] in current}
    keep.update(arrays)
    _save(path, keep)


def _all_entries() -> list[str]:
    return [_entry(c, dt) for c in CASES for dt in _runs(c)]


def _save(path: Any, arrays: dict[str, Any]) -> None:
    """One flat float64 array and a JSON index (key -> offset, shape, dtype, or the text of
    an error): a few hundred kB, where one .npz member per array is megabytes."""
    index: dict[str, Any] = {}
    chunks, off = [], 0
    for k in sorted(arrays):
        v = onp.asarray(arrays[k])
        if v.dtype.kind in "fiub":
            index[k] = [off, list(v.shape), str(v.dtype)]
            chunks.append(v.astype(float).ravel())
            off += v.size
        else:
            index[k] = str(v)
    data = onp.concatenate(chunks) if chunks else onp.zeros(0)
    onp.savez_compressed(path, data=data,
                         index=onp.frombuffer(json.dumps(index).encode(), onp.uint8))


def _load(path: Any) -> dict[str, Any]:
    if not pathlib.Path(path).exists():
        return {}
    with onp.load(path) as z:
        data, index = z["data"], json.loads(z["index"].tobytes())
    out: dict[str, Any] = {}
    for k, e in index.items():
        if isinstance(e, str):
            out[k] = onp.array(e)
        else:
            off, shape, dt = e
            out[k] = data[off:off + int(onp.prod(shape))].reshape(shape).astype(dt)
    return out


STORE = pathlib.Path(__file__).parent / "data" / "jax_edges.npz"


@pytest.fixture(scope="module")
def jax_ref() -> Any:
    """JAX's results, stored in tests/data/jax_edges.npz (JAX at this many points takes
    minutes; the store keeps the suite fast and JAX out of it). Entries missing from the
    store (a new or edited case) are computed by JAX, in a child process, and saved."""
    store = _load(STORE)
    have = {k.rsplit("/", 2)[0] for k in store}
    missing = [e for e in _all_entries() if e not in have]
    if missing:
        try:
            import jax  # noqa: F401
        except ImportError:
            return store
        STORE.parent.mkdir(exist_ok=True)
        code = (f"import sys; sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r}); "
                f"import test_jax_edges as T; T.jax_references({str(STORE)!r}, "
                f"{missing!r})")
        subprocess.run([sys.executable, "-c", code], check=True, timeout=1800)
        store = _load(STORE)
    return store


# --------------------------------------------------------------------------- the tests
def test_every_function_has_oracle_cases() -> None:
    """Generated from the registry: a new differentiable name or primitive without a case
    here fails, and the message names it."""
    covered = {id(_resolve(c.fn)) for c in CASES if c.fn != "composite"}
    missing = sorted(n for n, f in differentiable_names().items()
                     if id(f) not in covered and n not in NOT_DIFFERENTIABLE
                     and n not in CHECKED_ELSEWHERE)
    here = pathlib.Path(__file__).parent
    for n, (where, _) in CHECKED_ELSEWHERE.items():
        assert f"np.{n}(" in (here / where).read_text(), f"{n} is not checked in {where}"
    assert not missing, f"no JAX oracle cases in tests/test_jax_edges.py for: {missing}"
    names = {c.fn for c in CASES}
    lacking = sorted(
        n for n, p in _rules.PRIMITIVES.items()
        if not (p.public and (n in names or getattr(p.numpy, "__name__", None) in names))
        and PRIMITIVE_VIA.get(n) not in names and PRIMITIVE_VIA.get(n) not in
        CHECKED_ELSEWHERE)
    assert not lacking, f"primitives without JAX oracle cases: {lacking}"


def _close(got: Any, ref: Any, dt: str, c: Case, what: str, dtype: Any = None) -> None:
    """``got`` equals JAX's ``ref`` within the tolerance of ``dt``, and has the dtype
    ``dtype`` (the values follow NumPy's promotion, not JAX's; the derivatives follow
    JAX's rule: a gradient has its input's dtype, a tangent its output's)."""
    got = onp.asarray(got)
    ref = onp.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, JAX {ref.shape}"
    if dtype is not None:
        assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {dtype}"
    got, ref = got.astype(float), ref.astype(float)
    if c.nan_ok and what != "value":
        got = onp.where(onp.isnan(ref), NAN, got)
    rtol = TOL["float64" if dt == "int64" else dt] * c.tol
    fin = onp.abs(ref[onp.isfinite(ref)])
    atol = rtol * max(1.0, float(fin.max()) if fin.size else 1.0)
    onp.testing.assert_allclose(got, ref, rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("c", CASES, ids=_key)
def test_agrees_with_jax(c: Case, jax_ref: Any) -> None:
    for dt in _runs(c):
        k = _entry(c, dt)
        if f"{k}/value/0" not in jax_ref and f"{k}/error/0" not in jax_ref:
            pytest.skip("no JAX reference for this case (JAX is not installed)")
        if f"{k}/error/0" in jax_ref:
            pytest.fail(f"JAX raised on this case ({dt}): {jax_ref[k + '/error/0']}")
        with warnings.catch_warnings(), onp.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            ours = compute(c, np, cr, dt)
        vdt = onp.asarray(ours["value"][0]).dtype
        for kind, vals in ours.items():
            if c.differs and kind != "value":
                continue
            for i, v in enumerate(vals):
                want = None if kind == "value" or dt == "int64" else \
                    vdt if kind == "jvp" else onp.dtype(dt)
                _close(v, jax_ref[f"{k}/{kind}/{i}"], dt, c, f"{k} {kind}[{i}]", want)


# ----------------------------------------------- regressions found by the oracle (no JAX)
def test_regression_prod_second_derivative_at_zeros() -> None:
    """The Hessian of prod at exact zeros raised TracerError; JAX gives it (with two zeros
    the only nonzero entry is the pair of zeros: the product of the others)."""
    x = A(0.0, 0.0, 2.0, 3.0)
    h = cr.hessian(np.prod)(x)
    want = onp.zeros((4, 4))
    want[0, 1] = want[1, 0] = 6.0
    onp.testing.assert_allclose(h, want)
    x = A(1.5, 0.0, 2.0, -1.0)
    g = cr.grad(lambda x: np.sum(np.prod(x.reshape(2, 2), axis=1) ** 2))
    onp.testing.assert_allclose(cr.jacfwd(g)(x), cr.jacrev(g)(x), atol=1e-12)
    onp.testing.assert_allclose(cr.jacrev(g)(x), numerical_jacobian(g, x), atol=1e-6)


def test_regression_einsum_repeated_index() -> None:
    """einsum with an index repeated within one operand (a trace, a diagonal) raised
    TracerError; NumPy and JAX take the diagonal."""
    x = rnd((3, 3))
    onp.testing.assert_allclose(np.einsum("ii", x), onp.trace(x))
    onp.testing.assert_allclose(cr.grad(lambda x: np.einsum("ii->", x))(x), onp.eye(3))
    onp.testing.assert_allclose(cr.jacrev(lambda x: np.einsum("ii->i", x))(x),
                                numerical_jacobian(lambda x: np.einsum("ii->i", x), x),
                                atol=1e-8)
    t = rnd((2, 2, 3))
    onp.testing.assert_allclose(np.einsum("iij->j", t), onp.einsum("iij->j", t))


def test_regression_det_higher_derivatives_at_singular_matrices() -> None:
    """Second derivatives of det at a singular matrix raised TracerError; JAX gives them
    (here d^2 det / dA_11 dA_22 = A_00 at a rank-1 matrix, and the third derivative of
    det at 0 is the Levi-Civita symbol)."""
    a = onp.zeros((3, 3))
    a[0, 0] = 1.0
    h = cr.hessian(np.linalg.det)(a).reshape(9, 9)
    assert h[4, 8] == 1.0 and h[0, 4] == 0.0
    t = cr.jacrev(cr.jacrev(cr.grad(np.linalg.det)))(onp.zeros((3, 3))).reshape(9, 9, 9)
    assert t[0, 4, 8] == 1.0 and t[0, 5, 7] == -1.0
    g = cr.grad(lambda a: np.sum(np.linalg.det(a)))
    b = onp.stack([SING, onp.eye(3)])
    onp.testing.assert_allclose(cr.jacfwd(g)(b), numerical_jacobian(g, b), atol=1e-6)


def test_regression_float32_derivatives_stay_float32() -> None:
    """A rule that met a Python float (x / 1.5, maximum(x, 0.0)) gave float64 gradients and
    tangents for float32 inputs; JAX keeps the input's dtype."""
    x = onp.array([0.5, -1.0], onp.float32)
    for f in (lambda x: x / 1.5, lambda x: np.maximum(x, 0.0), lambda x: np.arctan2(x, 1.5),
              lambda x: np.power(x, 3.0), lambda x: np.var(x)):
        assert cr.grad(lambda x, f=f: np.sum(f(x)))(x).dtype == onp.float32
        assert cr.jvp(f, (x,), (x,))[1].dtype == onp.float32
        assert cr.vjp(f, x)[1](onp.ones_like(f(x)))[0].dtype == onp.float32
    assert type(cr.grad(lambda x: x / 1.5)(onp.float32(2.0))) is onp.float32


def test_regression_sinc_second_derivative_at_zero() -> None:
    """sinc''(0) = -pi^2/3; chainrule gave 0 (its value at 0 was a constant 1)."""
    onp.testing.assert_allclose(cr.hessian(np.sinc)(0.0), -onp.pi ** 2 / 3)
    onp.testing.assert_allclose(cr.grad(np.sinc)(0.0), 0.0)


def test_regression_fmax_fmin_ignore_nan() -> None:
    """fmax and fmin of traced values propagated NaN (they were maximum and minimum);
    NumPy's ignore it. At a tie the derivative goes to the second argument, as JAX's."""
    a, b = A(NAN, 1.0, 2.0), A(1.0, NAN, 2.0)
    onp.testing.assert_array_equal(np.fmax(a, b), onp.fmax(a, b))
    onp.testing.assert_array_equal(
        cr.jvp(lambda a: np.fmin(a, b), (a,), (onp.ones(3),))[0], onp.fmin(a, b))
    ga, gb = cr.grad(lambda a, b: np.sum(np.fmax(a, b)), argnums=(0, 1))(a, b)
    onp.testing.assert_array_equal(ga, [0.0, 1.0, 0.0])
    onp.testing.assert_array_equal(gb, [1.0, 0.0, 1.0])


def test_regression_heaviside_derivative_in_its_second_argument() -> None:
    """heaviside(x1, x2) is x2 where x1 = 0: its derivative there is 1 (chainrule gave 0)."""
    g = cr.grad(lambda h: np.sum(np.heaviside(A(0.0, 1.0, -1.0), h)))(A(0.5, 0.5, 0.5))
    onp.testing.assert_array_equal(g, [1.0, 0.0, 0.0])


def test_regression_logaddexp_at_inf() -> None:
    """logaddexp(inf, 1): the derivative is 1 in the infinite argument and 0 in the other
    (chainrule gave NaN for the first; JAX gives e for the second)."""
    g = cr.grad(lambda x, y: np.sum(np.logaddexp(x, y)), argnums=(0, 1))(A(INF, 1.0),
                                                                        A(1.0, INF))
    onp.testing.assert_array_equal(g[0], [1.0, 0.0])
    onp.testing.assert_array_equal(g[1], [0.0, 1.0])


def test_jax_conventions_at_kinks() -> None:
    """Where the derivative does not exist chainrule gives JAX's value, but for |x| at 0
    (docs/math.md, "Conventions at the edges")."""
    d = cr.grad(lambda x: np.sum(np.abs(x)))(A(0.0, -0.0, NAN, -1.0, 2.0))
    # |x|' at 0 is 0 (the central difference, PyTorch and autograd; JAX takes 1), at NaN -1
    onp.testing.assert_array_equal(d, [0.0, 0.0, -1.0, -1.0, 1.0])
    with onp.errstate(all="ignore"):
        gy = cr.grad(lambda y: np.sum(np.power(A(-2.0, 0.0, 2.0), y)))(A(2.0, 2.0, 2.0))
        assert onp.isnan(gy[0]) and gy[1] == 0.0                        # log of x < 0
        assert cr.hessian(np.cbrt)(0.0) == -INF
    assert cr.grad(lambda x: np.maximum(x, 1.0))(1.0) == 0.5            # ties split
    assert cr.grad(lambda x: np.clip(x, -1.0, 1.0))(1.0) == 0.5


def test_regression_std_of_nan_is_nan() -> None:
    """std of a traced row with a NaN or inf entry gave 0 (its zero-variance guard took NaN
    for 0); NumPy and JAX give NaN. Where the variance is 0 the derivative stays 0."""
    x = A(1.0, NAN, 2.0, 1.0, 1.0, 1.0, 1.0, INF, 0.0).reshape(3, 3)
    with onp.errstate(all="ignore"):
        v, t = cr.jvp(lambda x: np.std(x, axis=1), (x,), (onp.ones_like(x),))
        onp.testing.assert_array_equal(v, onp.std(x, axis=1))
        g = cr.grad(lambda x: np.sum(np.std(x, axis=1)))(x)
    onp.testing.assert_array_equal(g[1], 0.0)


def test_regression_max_at_nan() -> None:
    """Where the maximum is NaN it is attained nowhere: the derivative is 0 there, as JAX's
    grad (chainrule gave 0 / 0)."""
    x = A(1.0, NAN, 2.0, 3.0, 1.0, 3.0).reshape(2, 3)
    g = cr.grad(lambda x: np.sum(np.max(x, axis=1)))(x)
    onp.testing.assert_array_equal(g, [[0.0, 0.0, 0.0], [0.5, 0.0, 0.5]])


@pytest.mark.parametrize("c", [c for c in CASES if "float32" in c.dtypes], ids=_key)
def test_traced_values_keep_the_plain_dtype(c: Case) -> None:
    """In float32, a function's value on traced inputs has the dtype of its value on plain
    ones (NumPy's promotion): tracing must not turn float32 into float64."""
    args = _cast(c.args, "float32")
    with warnings.catch_warnings(), onp.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        plain = onp.asarray(c.f(np, *args))

        def fd(*d: Any) -> Any:
            a = list(args)
            for i, v in zip(c.diff, d):
                a[i] = v
            return c.f(np, *a)

        traced = onp.asarray(cr.jvp(fd, tuple(args[i] for i in c.diff),
                                    tuple(args[i] for i in c.diff))[0])
    assert traced.dtype == plain.dtype
