"""The table of derivative rules: every primitive, its forward, its VJP and its JVP.

Grouped under the reference text's headings. Read a row as

    name       forward (NumPy)          derivative
    exp        np.exp(x)                d ans / dx = ans            (3.2.1: diagonal Jacobian)

For element-wise operations the Jacobian is diagonal (text 3.2.1), so the VJP is
``g * f'(x)`` and the JVP ``f'(x) * t``: one derivative function gives both. Binary
element-wise operations broadcast (scalar expansion, text 3.2.3); broadcasting is undone
in exactly one place, :func:`unbroadcast`, whose sum is the text's 3.2.4 ("the derivative
of a sum is a row of ones").

Conventions for batching: a cotangent ``g`` may carry leading batch axes beyond
``ans.shape`` and a tangent ``t`` leading batch axes beyond ``x.shape``; every rule below
keeps them in front. Rules are written with primitives, so they are differentiable again.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as _np

from . import batching as B
from .core import (
    Deferred,
    Primitive,
    Tracer,
    TracerError,
    dtype_of,
    getval,
    shape_of,
    transpose_linear,
)
from .core import value_ndim as _ndim
from .core import value_shape as _shape

# Registry: name -> Primitive, in the order of this file (used by the generated tests).
PRIMITIVES: dict[str, Primitive] = {}


def _prim(name: str, impl: Any, section: str, numpy: Any = None,
          public: bool = False, batch: Any = None) -> Primitive:
    """Register a primitive. ``numpy``: the NumPy function it implements with NumPy's own
    signature (a ufunc ``impl`` is that function unless told otherwise); ``public``:
    exported by chainrule.numpy under ``name``; ``batch``: its batching rule for vmap
    (batching.py; element-wise primitives get theirs from ``_unary`` and ``_binary``).
    Everything else follows from this one registration: chainrule.numpy's name, the
    dispatch of NumPy's calls on traced values, and the generated tests."""
    if numpy is None and isinstance(impl, _np.ufunc):
        numpy = impl
    p = Primitive(name, impl, section, numpy, public)
    p.batch = batch
    PRIMITIVES[name] = p
    return p


def float_dtype(x: Any) -> _np.dtype:
    dt = dtype_of(x)
    return dt if dt.kind in "fc" else _np.dtype(_np.float64)


# --------------------------------------------------------------------------- helpers


def unbroadcast(g: Any, shape: tuple[int, ...], nb: int) -> Any:
    """Undo NumPy broadcasting (text 3.2.3, scalar expansion): sum ``g`` (batch axes
    ``nb`` in front) back to ``batch + shape``. The VJP of an expansion is a sum (3.2.4)."""
    gs = _shape(g)
    extra = len(gs) - nb - len(shape)
    if extra > 0:
        g = sum_(g, tuple(a - len(gs) for a in range(nb, nb + extra)), False)
    ones = tuple(i - len(shape) for i, s in enumerate(shape) if s == 1 and gs[nb + extra + i] != 1)
    if ones:
        g = sum_(g, ones, True)
    return g


def align(t: Any, x: Any, out_ndim: int) -> Any:
    """Reshape a tangent ``t`` (batch axes in front of ``x.shape``) so that it broadcasts
    against an operation's result of ``out_ndim`` dimensions."""
    xs = _shape(x)
    nt = _ndim(t) - len(xs)
    if nt == 0 or out_ndim == len(xs):
        return t
    ts = _shape(t)
    return reshape(t, ts[:nt] + (1,) * (out_ndim - len(xs)) + xs)


def take_batched(v: Any, idx: tuple[Any, ...], core_ndim: int) -> Any:
    """``v[idx]`` where ``idx`` addresses the last ``core_ndim`` axes of ``v`` and the
    leading ones are batch axes (moved to the back, indexed, moved to the front)."""
    lead = _ndim(v) - core_ndim
    if lead == 0:
        return getitem(v, idx)
    nd = _ndim(v)
    v = transpose(v, tuple(range(lead, nd)) + tuple(range(lead)))
    r = getitem(v, idx)
    rn = _ndim(r)
    return transpose(r, tuple(range(rn - lead, rn)) + tuple(range(rn - lead)))


def _is_ones(g: Any) -> bool:
    """A cotangent that is a broadcast 1 (the start of every gradient, after a sum)."""
    return (isinstance(g, _np.ndarray) and g.ndim > 0 and g.size > 0
            and not any(g.strides) and g.flat[0] == 1)


def _times(g: Any, d: Any, fresh: bool = False) -> Any:
    """``g * d``, skipping the product when ``g`` is a broadcast 1 (the sweep never writes
    into its arrays, and ``backward`` copies a result that could alias one), and writing
    into ``d`` when the rule has just made it (``fresh``) and nothing is being traced."""
    if isinstance(d, _np.ndarray) and d.shape == _np.shape(g) and \
            d.dtype == _np.result_type(g, d):
        if _is_ones(g):
            return d
        if fresh and isinstance(g, _np.ndarray) and d.flags.owndata and d.flags.writeable:
            return _np.multiply(d, g, out=d)
    return multiply(g, d)


# ===================================================================== 3.2.1 element-wise
# f applied to each entry: the Jacobian is diag(f'(x)).


def _unary(name: str, fwd: Any, deriv: Any, section: str = "3.2.1 element-wise",
           fresh: bool = True, numpy: Any = None) -> Primitive:
    """``fresh``: ``deriv`` returns a new array (not ``ans`` or ``x`` themselves)."""
    p = _prim(name, fwd, section, numpy, public=True, batch=B.elementwise)
    p.vjps[0] = lambda g, ans, x: _times(g, deriv(ans, x), fresh)
    p.jvps[0] = lambda t, ans, x: multiply(t, deriv(ans, x))
    p.diag_factor = lambda i, ans, x: deriv(ans, x)
    return p


def _sigmoid_impl(x: Any) -> Any:
    x = _np.asarray(x)
    # exp of a non-positive number only: never overflows
    e = _np.exp(-_np.abs(x))
    return _np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(float_dtype(x), copy=False)


def _softplus_impl(x: Any) -> Any:
    return _np.logaddexp(0.0, x)


def _relu_impl(x: Any) -> Any:
    return _np.maximum(x, 0)


def _step(x: Any) -> Any:
    """1 where x > 0, else 0, in x's dtype (a constant: its derivative is zero)."""
    v = getval(x)
    return (v > 0).astype(float_dtype(v))


negative = _unary("negative", _np.negative, lambda ans, x: -1.0)
negative.vjps[0] = lambda g, ans, x: negative(g)
negative.jvps[0] = lambda t, ans, x: negative(t)
negative.diag_factor = lambda i, ans, x: -1.0
exp = _unary("exp", _np.exp, lambda ans, x: ans, fresh=False)
log = _unary("log", _np.log, lambda ans, x: reciprocal(x))
log1p = _unary("log1p", _np.log1p, lambda ans, x: reciprocal(add(x, 1.0)))
expm1 = _unary("expm1", _np.expm1, lambda ans, x: add(ans, 1.0))
sqrt = _unary("sqrt", _np.sqrt, lambda ans, x: divide(0.5, ans))
reciprocal = _unary("reciprocal", lambda x: _np.true_divide(1.0, x),
                    lambda ans, x: negative(multiply(ans, ans)), numpy=_np.reciprocal)
sin = _unary("sin", _np.sin, lambda ans, x: cos(x))
cos = _unary("cos", _np.cos, lambda ans, x: negative(sin(x)))
tan = _unary("tan", _np.tan, lambda ans, x: add(1.0, multiply(ans, ans)))
arcsin = _unary("arcsin", _np.arcsin,
                lambda ans, x: reciprocal(sqrt(subtract(1.0, multiply(x, x)))))
arccos = _unary("arccos", _np.arccos,
                lambda ans, x: negative(reciprocal(sqrt(subtract(1.0, multiply(x, x))))))
arctan = _unary("arctan", _np.arctan, lambda ans, x: reciprocal(add(1.0, multiply(x, x))))
arcsinh = _unary("arcsinh", _np.arcsinh,
                 lambda ans, x: reciprocal(sqrt(add(multiply(x, x), 1.0))))
arccosh = _unary("arccosh", _np.arccosh,
                 lambda ans, x: reciprocal(sqrt(subtract(multiply(x, x), 1.0))))
arctanh = _unary("arctanh", _np.arctanh,
                 lambda ans, x: reciprocal(subtract(1.0, multiply(x, x))))
log2 = _unary("log2", _np.log2, lambda ans, x: reciprocal(multiply(x, float(_np.log(2.0)))))
log10 = _unary("log10", _np.log10,
               lambda ans, x: reciprocal(multiply(x, float(_np.log(10.0)))))
exp2 = _unary("exp2", _np.exp2, lambda ans, x: multiply(ans, float(_np.log(2.0))))
cbrt = _unary("cbrt", _np.cbrt, lambda ans, x: multiply(1.0 / 3.0, power(ans, -2.0)))
sinh = _unary("sinh", _np.sinh, lambda ans, x: cosh(x))
cosh = _unary("cosh", _np.cosh, lambda ans, x: sinh(x))
tanh = _unary("tanh", _np.tanh, lambda ans, x: subtract(1.0, multiply(ans, ans)))


def _abs_slope(x: Any) -> Any:
    """d|x|/dx: 1 where x > 0, -1 where x < 0 (and at NaN, as JAX); 0 at 0, the central
    difference there (PyTorch's and autograd's choice; JAX takes 1). A constant."""
    v = getval(x)
    if isinstance(v, Tracer):       # a batch (vmap): the same on all its values
        return B.on_values(_abs_slope, v)
    a = _np.asarray(v)
    return _np.where(a > 0, 1.0, _np.where(a == 0, 0.0, -1.0)).astype(float_dtype(v))


abs_ = _unary("abs", _np.abs, lambda ans, x: _abs_deriv(ans, x))
# |z| is real: of a complex tangent, the real part (JAX's pairing, docs/math.md)
abs_.jvps[0] = lambda t, ans, x: _re(multiply(t, _abs_deriv(ans, x)))


def _abs_deriv(ans: Any, x: Any) -> Any:
    """sign(x) for real x; conj(z) / |z| for complex z (0 at z = 0), whose real part
    against a tangent is d|z| (JAX's convention, docs/math.md)."""
    if not is_complex(x):
        return _abs_slope(x)
    av = getval(ans)
    if not B.any_value(av == 0):
        return divide(conj(x), ans)
    return where(av == 0, 0.0, divide(conj(x), where(av == 0, 1.0, ans)))


sign = _unary("sign", _np.sign, lambda ans, x: 0.0 * ans)
sign.vjps[0] = lambda g, ans, x: multiply(g, 0.0)  # flat almost everywhere: a true zero
sign.jvps[0] = lambda t, ans, x: multiply(t, 0.0)


def _zero_unary(name: str, fwd: Any) -> Primitive:
    """A piecewise-constant function (floor, ceil, round...): its derivative is zero
    wherever it exists, and zero is what JAX gives at the jumps too."""
    p = _prim(name, fwd, "3.2.1 element-wise (piecewise constant)", public=True,
              batch=B.elementwise)
    p.vjps[0] = lambda g, ans, x: multiply(g, 0.0)
    p.jvps[0] = lambda t, ans, x: multiply(t, 0.0)
    p.diag_factor = lambda i, ans, x: 0.0
    return p


floor = _zero_unary("floor", _np.floor)
ceil = _zero_unary("ceil", _np.ceil)
rint = _zero_unary("rint", _np.rint)
trunc = _zero_unary("trunc", _np.trunc)


def _round_impl(x: Any, decimals: int = 0) -> Any:
    return _np.round(x, decimals)


round_ = _prim("round", _round_impl, "3.2.1 element-wise (piecewise constant)",
               batch=B.elementwise)
round_.vjps[0] = lambda g, ans, x, decimals: multiply(g, 0.0)
round_.jvps[0] = lambda t, ans, x, decimals: multiply(t, 0.0)

# ---- activations (text 2.1: a = sigma(z)); numerically stable forwards
sigmoid = _unary("sigmoid", _sigmoid_impl, lambda ans, x: multiply(ans, subtract(1.0, ans)),
                 "2.1 activations")
relu = _unary("relu", _relu_impl, lambda ans, x: _step(x), "2.1 activations (3.3: ReLU')")
softplus = _unary("softplus", _softplus_impl, lambda ans, x: sigmoid(x), "2.1 activations")


# =========================================== 3.2.1-3.2.3 binary element-wise, Hadamard, expansion
# F(v, w) = f(v) o g(w): two diagonal Jacobians; broadcasting is scalar expansion, undone by
# unbroadcast. dF/dv and dF/dw are given as functions (ans, v, w) -> partial derivative,
# or None for the identity (addition).


def _binary(name: str, fwd: Any, dx: Any, dy: Any, section: str,
            fresh_dx: bool = False) -> Primitive:
    p = _prim(name, fwd, section, public=True, batch=B.elementwise)

    def vjp_x(g: Any, ans: Any, x: Any, y: Any) -> Any:
        nb = _ndim(g) - _ndim(ans)
        return unbroadcast(g if dx is None else _times(g, dx(ans, x, y), fresh_dx),
                           _shape(x), nb)

    def vjp_y(g: Any, ans: Any, x: Any, y: Any) -> Any:
        nb = _ndim(g) - _ndim(ans)
        return unbroadcast(g if dy is None else _times(g, dy(ans, x, y)), _shape(y), nb)

    def jvp_x(t: Any, ans: Any, x: Any, y: Any) -> Any:
        t = align(t, x, _ndim(ans))
        return _full_b(t if dx is None else multiply(t, dx(ans, x, y)), ans, t)

    def jvp_y(t: Any, ans: Any, x: Any, y: Any) -> Any:
        t = align(t, y, _ndim(ans))
        return _full_b(t if dy is None else multiply(t, dy(ans, x, y)), ans, t)

    p.vjps[0], p.vjps[1] = vjp_x, vjp_y
    p.jvps[0], p.jvps[1] = jvp_x, jvp_y
    p.diag_factor = lambda i, ans, x, y: (dx, dy)[i] and (dx, dy)[i](ans, x, y)
    return p


def _full_b(r: Any, ans: Any, t: Any) -> Any:
    """Broadcast a tangent contribution ``r`` to ``batch + ans.shape``; the batch is the
    leading axes of the aligned tangent ``t`` beyond ``ans.ndim``."""
    nt = max(0, _ndim(t) - _ndim(ans))
    want = _shape(t)[:nt] + _shape(ans)
    return r if _shape(r) == want else broadcast_to(r, want)


def _tie(x: Any, y: Any, greater: bool) -> Any:
    """d max(x, y)/dx: 1 where x wins, 1/2 at a tie, 0 elsewhere (a constant)."""
    xv, yv = getval(x), getval(y)
    win = (xv > yv) if greater else (xv < yv)
    dt = _np.result_type(float_dtype(xv), float_dtype(yv))
    return win.astype(dt) + 0.5 * (xv == yv).astype(dt)


def _pow_dx(ans: Any, x: Any, y: Any) -> Any:
    yv = getval(y)
    if y is yv and not isinstance(yv, Tracer) and _np.ndim(yv) == 0 and yv == 2:
        return multiply(2.0, x)
    return multiply(y, power(x, subtract(y, 1)))


def _pow_dy(ans: Any, x: Any, y: Any) -> Any:
    # x^y log x, with log 1 for x = 0 (JAX's rule): NaN for x < 0, where x^y is not
    # differentiable in y
    return multiply(ans, log(where(getval(x) == 0, 1.0, x)))


add = _binary("add", _np.add, None, None, "3.2.1 element-wise addition")
subtract = _binary("subtract", _np.subtract, None, lambda ans, x, y: -1.0,
                   "3.2.1 element-wise subtraction")
subtract.vjps[1] = lambda g, ans, x, y: negative(
    unbroadcast(g, _shape(y), _ndim(g) - _ndim(ans)))
multiply = _binary("multiply", _np.multiply, lambda ans, x, y: y, lambda ans, x, y: x,
                   "3.2.2 Hadamard product")
# a batch of outer products (per-example dC/dW) is one einsum; else element-wise
multiply.batch = lambda prim, vals, dims: (
    (o, 0) if (o := B.outer_product(vals, dims)) is not None else B.elementwise(prim, vals, dims))
divide = _binary("divide", _np.true_divide, lambda ans, x, y: reciprocal(y),
                 lambda ans, x, y: negative(divide(ans, y)), "3.2.1 element-wise division")
power = _binary("power", _np.power, _pow_dx, _pow_dy, "3.2.1 element-wise power",
                fresh_dx=True)
def _pow_c_dx(x: Any, y: Any) -> Any:
    """d x^y / dx for a constant y with zeros in it: 0 where y = 0 (also at x = 0)."""
    zero = _np.asarray(y) == 0
    return where(zero, 0.0, multiply(y, power_c(x, _np.where(zero, 1.0, y - 1))))


# x ** y for a constant exponent y that has zeros (polynomial features): chainrule.numpy's
# power chooses it; the exponent is not differentiated
power_c = _prim("power_c", lambda x, y: _np.power(x, y), "3.2.1 element-wise power",
                batch=B.elementwise)
power_c.nondiff.add(1)
power_c.vjps[0] = lambda g, ans, x, y: unbroadcast(multiply(g, _pow_c_dx(x, y)), _shape(x),
                                                   _ndim(g) - _ndim(ans))
power_c.jvps[0] = lambda t, ans, x, y: _full_b(
    multiply(align(t, x, _ndim(ans)), _pow_c_dx(x, y)), ans, align(t, x, _ndim(ans)))


maximum = _binary("maximum", _np.maximum, lambda ans, x, y: _tie(x, y, True),
                  lambda ans, x, y: _tie(y, x, True), "3.2.1 element-wise maximum")
minimum = _binary("minimum", _np.minimum, lambda ans, x, y: _tie(x, y, False),
                  lambda ans, x, y: _tie(y, x, False), "3.2.1 element-wise minimum")
arctan2 = _binary("arctan2", _np.arctan2,
                  lambda ans, x, y: divide(y, add(multiply(x, x), multiply(y, y))),
                  lambda ans, x, y: divide(negative(x), add(multiply(x, x), multiply(y, y))),
                  "3.2.1 element-wise")
hypot = _binary("hypot", _np.hypot, lambda ans, x, y: divide(x, ans),
                lambda ans, x, y: divide(y, ans), "3.2.1 element-wise")
def _lae_d(ans: Any, x: Any) -> Any:
    """d logaddexp / dx = exp(x - ans); 1 where x is the result itself, +inf (as JAX)."""
    same = B.as_value((getval(x) == getval(ans)) & (getval(ans) == _np.inf))
    if not B.any_value(same):
        return exp(subtract(x, ans))
    return where(same, 1.0, exp(subtract(x, where(same, 0.0, ans))))


logaddexp = _binary("logaddexp", _np.logaddexp,
                    lambda ans, x, y: _lae_d(ans, x),
                    lambda ans, x, y: _lae_d(ans, y), "3.2.1 element-wise")

# x mod y = x - floor(x / y) y (NumPy's sign convention: the result takes y's sign);
# fmod truncates instead. d/dx = 1, d/dy = -floor(x / y) (or -trunc(x / y)) away from jumps.
mod = _binary("mod", _np.mod, None, lambda ans, x, y: negative(_np.floor_divide(getval(x),
                                                                                 getval(y))),
              "3.2.1 element-wise remainder")
fmod = _binary("fmod", _np.fmod, None, lambda ans, x, y: negative(_np.trunc(
    _np.true_divide(getval(x), getval(y)))), "3.2.1 element-wise remainder")


def _where_impl(cond: Any, x: Any, y: Any) -> Any:
    return _np.where(cond, x, y)


where = _prim("where", _where_impl, "3.2.1 element-wise choice", batch=B.elementwise)
where.nondiff.add(0)
where.vjps[1] = lambda g, ans, c, x, y: unbroadcast(where(c, g, 0.0), _shape(x),
                                                    _ndim(g) - _ndim(ans))
where.vjps[2] = lambda g, ans, c, x, y: unbroadcast(where(c, 0.0, g), _shape(y),
                                                    _ndim(g) - _ndim(ans))
where.jvps[1] = lambda t, ans, c, x, y: _full_b(
    where(c, align(t, x, _ndim(ans)), 0.0), ans, align(t, x, _ndim(ans)))
where.jvps[2] = lambda t, ans, c, x, y: _full_b(
    where(c, 0.0, align(t, y, _ndim(ans))), ans, align(t, y, _ndim(ans)))


# ===================================================================== 3.2.4 sums and reductions
# axis is always a tuple of negative axes (normalised in numpy_api), so the same axes
# address a batched cotangent or tangent.


def _kd_shape(x: Any, axis: tuple[int, ...]) -> tuple[int, ...]:
    s = list(_shape(x))
    for a in axis:
        s[a] = 1
    return tuple(s)


def _expand_back(g: Any, ans: Any, x: Any, axis: tuple[int, ...]) -> Any:
    """Broadcast a reduction's cotangent back over the reduced axes (the row of ones)."""
    nb = _ndim(g) - _ndim(ans)
    lead = _shape(g)[:nb]
    return broadcast_to(reshape(g, lead + _kd_shape(x, axis)), lead + _shape(x))


def _count(x: Any, axis: tuple[int, ...]) -> int:
    s = _shape(x)
    return math.prod(s[a] for a in axis)


def _sum_impl(x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    return _np.sum(x, axis=axis, keepdims=keepdims)


def _mean_impl(x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    return _np.mean(x, axis=axis, keepdims=keepdims)


sum_ = _prim("sum", _sum_impl, "3.2.4 sum: the derivative is a row of ones",
             batch=B.with_axis)
sum_.vjps[0] = lambda g, ans, x, axis, keepdims: _expand_back(g, ans, x, axis)
sum_.jvps[0] = lambda t, ans, x, axis, keepdims: sum_(t, axis, keepdims)

mean = _prim("mean", _mean_impl, "3.2.4 sum (scaled by 1/m)", batch=B.with_axis)
mean.vjps[0] = lambda g, ans, x, axis, keepdims: divide(_expand_back(g, ans, x, axis),
                                                        float(_count(x, axis)))
mean.jvps[0] = lambda t, ans, x, axis, keepdims: mean(t, axis, keepdims)


# --------------------------------------------------------------------------- deferred
# Results that reverse mode computes only when read (core.Deferred): the rules below read
# nothing but the shapes of these results, so grad never forms the value it throws away.


def _plain(v: Any) -> bool:
    return not isinstance(v, Tracer)


def _meta_dtype(v: Any) -> Any:
    return v.dtype if isinstance(v, Deferred) else v


def _lazy_elementwise(vals: list[Any], params: dict[str, Any]) -> Any:
    if params or not all(_plain(v) for v in vals):
        return None
    # one shape besides scalars needs no call to broadcast_shapes (3 us)
    shapes = {v.shape if type(v) is Deferred else shape_of(v) for v in vals} - {()}
    try:
        if len(shapes) <= 1:
            shape = shapes.pop() if shapes else ()
        else:
            shape = _np.broadcast_shapes(*(_np.shape(v) for v in vals))
        dt = _np.result_type(*(_meta_dtype(v) for v in vals))
    except (ValueError, TypeError):
        return None          # computed now, so that NumPy raises its own error
    return (shape, dt) if dt.kind == "f" else None


def _lazy_reduction(vals: list[Any], params: dict[str, Any]) -> Any:
    if params or len(vals) != 3 or not all(_plain(v) for v in vals):
        return None
    x, axis, keepdims = vals
    dt = _np.result_type(_meta_dtype(x))
    if dt.kind != "f":
        return None
    shape = _np.shape(x)
    nd = len(shape)
    red = {a % nd for a in axis} if nd else set()
    if keepdims:
        out = tuple(1 if i in red else k for i, k in enumerate(shape))
    else:
        out = tuple(k for i, k in enumerate(shape) if i not in red)
    return out, dt


for _p in (add, subtract, negative):
    _p.lazy, _p.lazy_args = _lazy_elementwise, True
multiply.lazy = _lazy_elementwise      # its rules read both factors: they are computed
for _p in (sum_, mean):
    _p.lazy, _p.lazy_args = _lazy_reduction, True

# rules that read only the shape of their own result (Primitive.ans_free)
for _p in (sin, cos, sinh, cosh, negative, sum_, mean):
    _p.ans_free = frozenset({0})
for _p in (add, subtract, multiply):
    _p.ans_free = frozenset({0, 1})
power.ans_free = frozenset({0})          # d x^y / dy reads the result; d/dx does not


def _extreme_weights(ans: Any, x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    """Where the max (or min) is attained, split equally between ties (a constant)."""
    xv = getval(x)
    av = getval(ans)
    if not keepdims:
        av = _np.reshape(av, _kd_shape(xv, axis))
    hit = (xv == av).astype(float_dtype(xv))
    # a NaN maximum is attained nowhere: weights 0 there (as JAX), not 0 / 0
    return hit / _np.maximum(_np.sum(hit, axis=axis, keepdims=True), 1)


def _max_impl(x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    return _np.max(x, axis=axis, keepdims=keepdims)


def _min_impl(x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    return _np.min(x, axis=axis, keepdims=keepdims)


for _name, _impl in (("max", _max_impl), ("min", _min_impl)):
    _p = _prim(_name, _impl, "3.2.4 reductions", batch=B.with_axis)
    _p.vjps[0] = lambda g, ans, x, axis, keepdims: multiply(
        _expand_back(g, ans, x, axis), _extreme_weights(ans, x, axis, keepdims))
    _p.jvps[0] = lambda t, ans, x, axis, keepdims: sum_(
        multiply(t, _extreme_weights(ans, x, axis, keepdims)), axis, keepdims)
max_, min_ = PRIMITIVES["max"], PRIMITIVES["min"]


def _prod_impl(x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    return _np.prod(x, axis=axis, keepdims=keepdims)


def _prod_others(ans: Any, x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    """d prod / dx_i = product of all the other entries of x along the reduced axes."""
    xv = getval(x)
    if not B.any_value(xv == 0):
        akd = ans if keepdims else reshape(ans, _kd_shape(x, axis))
        return divide(akd, x)
    nd = xv.ndim
    ax = tuple(a % nd for a in axis)
    keep = tuple(i for i in range(nd) if i not in ax)
    if x is not xv:
        # higher derivatives: the others' product as a masked product, prod_j where(j == i,
        # 1, x_j), made of primitives (O(n^2) work, exact at zeros)
        moved = transpose(x, keep + ax)
        ms = _shape(moved)
        n = int(_np.prod(ms[len(keep):], dtype=int))
        flat = reshape(moved, ms[: len(keep)] + (1, n))
        others = prod(where(_np.eye(n, dtype=bool), 1.0, flat), (-1,), False)
        return transpose(reshape(others, ms), tuple(int(i) for i in _np.argsort(keep + ax)))
    if isinstance(xv, Tracer):      # a batch (vmap): the same formula on all its values
        return B.on_values(lambda v: _prod_others(None, v, axis, keepdims), xv)
    moved = _np.transpose(xv, keep + ax)
    flat = moved.reshape(moved.shape[: len(keep)] + (-1,))
    ones = _np.ones(flat.shape[:-1] + (1,), flat.dtype)
    left = _np.cumprod(_np.concatenate([ones, flat[..., :-1]], -1), -1)
    right = _np.cumprod(_np.concatenate([ones, flat[..., :0:-1]], -1), -1)[..., ::-1]
    others = (left * right).reshape(moved.shape)
    return _np.transpose(others, _np.argsort(keep + ax))


prod = _prim("prod", _prod_impl, "3.2.4 reductions", batch=B.with_axis)
prod.vjps[0] = lambda g, ans, x, axis, keepdims: multiply(
    _expand_back(g, ans, x, axis), _prod_others(ans, x, axis, keepdims))
prod.jvps[0] = lambda t, ans, x, axis, keepdims: sum_(
    multiply(t, _prod_others(ans, x, axis, keepdims)), axis, keepdims)


def _logsumexp_impl(x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    x = _np.asarray(x)
    m = _np.max(x, axis=axis, keepdims=True)
    m = _np.where(_np.isfinite(m), m, 0)
    r = _np.log(_np.sum(_np.exp(x - m), axis=axis, keepdims=True)) + m
    return r if keepdims else _np.squeeze(r, axis=axis)


def _softmax_impl(x: Any, axis: int) -> Any:
    x = _np.asarray(x)
    e = _np.exp(x - _np.max(x, axis=axis, keepdims=True))
    e /= _np.sum(e, axis=axis, keepdims=True)
    return e


def _softmax_of(ans: Any, x: Any, axis: tuple[int, ...], keepdims: bool) -> Any:
    akd = ans if keepdims else reshape(ans, _kd_shape(x, axis))
    return exp(subtract(x, akd))


logsumexp = _prim("logsumexp", _logsumexp_impl, "3.2.4 reductions (stable)",
                  batch=B.with_axis)
logsumexp.vjps[0] = lambda g, ans, x, axis, keepdims: multiply(
    _expand_back(g, ans, x, axis), _softmax_of(ans, x, axis, keepdims))
logsumexp.jvps[0] = lambda t, ans, x, axis, keepdims: sum_(
    multiply(t, _softmax_of(ans, x, axis, keepdims)), axis, keepdims)

softmax = _prim("softmax", _softmax_impl, "2.1 activations (softmax)", batch=B.with_axis)
# J = diag(s) - s s^T, so J^T g = s * (g - <g, s>) and J t = s * (t - <t, s>)
softmax.vjps[0] = lambda g, ans, x, axis: multiply(
    ans, subtract(g, sum_(multiply(g, ans), (axis,), True)))
softmax.jvps[0] = softmax.vjps[0]


# ===================================================================== matrix products
# z = W a + b (text 2.3): the matrix product. 1-d operands follow np.matmul's rules.


def swap_last(x: Any) -> Any:
    nd = _ndim(x)
    return transpose(x, tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _col(v: Any) -> Any:  # (..., k) -> (..., k, 1)
    return reshape(v, _shape(v) + (1,))


def _row(v: Any) -> Any:  # (..., k) -> (..., 1, k)
    s = _shape(v)
    return reshape(v, s[:-1] + (1, s[-1]))


def _matmul_vjp_a(g: Any, ans: Any, a: Any, b: Any) -> Any:
    nb = _ndim(g) - _ndim(ans)
    an, bn = _ndim(a), _ndim(b)
    if an == 1 and bn == 1:
        r = multiply(reshape(g, _shape(g) + (1,)), b)
    elif an == 1 and bn == 2:
        r = matmul(g, transpose(b, (1, 0)))
    elif an == 1:
        r = reshape(matmul(b, _col(g)), _shape(g)[:-1] + (_shape(b)[-2],))
    elif bn == 1:
        r = multiply(_col(g), b)
    else:
        r = matmul(g, swap_last(b))
    return unbroadcast(r, _shape(a), nb)


def _matmul_vjp_b(g: Any, ans: Any, a: Any, b: Any) -> Any:
    nb = _ndim(g) - _ndim(ans)
    an, bn = _ndim(a), _ndim(b)
    if an == 1 and bn == 1:
        r = multiply(reshape(g, _shape(g) + (1,)), a)
    elif an == 1:
        r = multiply(reshape(a, (-1, 1)), _row(g))
    elif bn == 1 and an == 2:
        r = matmul(g, a)
    elif bn == 1:
        r = matmul(_row(g), a)
        r = reshape(r, _shape(r)[:-2] + (_shape(r)[-1],))
    else:
        r = matmul(swap_last(a), g)
    return unbroadcast(r, _shape(b), nb)


def _matmul_jvp_a(t: Any, ans: Any, a: Any, b: Any) -> Any:
    nt = _ndim(t) - _ndim(a)
    bn = _ndim(b)
    if _ndim(a) == 1:
        if bn <= 2 or nt == 0:
            return matmul(t, b)
        ts = _shape(t)
        r = matmul(reshape(t, ts[:nt] + (1,) * (bn - 2) + (1, ts[-1])), b)
        rs = _shape(r)
        return reshape(r, rs[:-2] + rs[-1:])
    return matmul(align(t, a, max(_ndim(ans), _ndim(a))), b)


def _matmul_jvp_b(t: Any, ans: Any, a: Any, b: Any) -> Any:
    nt = _ndim(t) - _ndim(b)
    an = _ndim(a)
    if _ndim(b) == 1:
        if an == 1:
            return matmul(t, a)
        if an == 2:
            return matmul(t, transpose(a, (1, 0)))
        ts = _shape(t)
        r = matmul(a, reshape(t, ts[:nt] + (1,) * (an - 2) + (ts[-1], 1)))
        rs = _shape(r)
        return reshape(r, rs[:-1])
    if an == 1:
        return matmul(a, t)
    return matmul(a, align(t, b, max(_ndim(ans), _ndim(b))))


matmul = _prim("matmul", _np.matmul, "2.3 matrix product W a", public=True)
matmul.vjps[0], matmul.vjps[1] = _matmul_vjp_a, _matmul_vjp_b
matmul.jvps[0], matmul.jvps[1] = _matmul_jvp_a, _matmul_jvp_b


def _matmul_diag(i: int, d: Any, ans: Any, a: Any, b: Any) -> Any:
    """diag(d) through z = W a: row k of the Jacobian is d_k W[k] (O(n^2), no product)."""
    if i == 1 and _ndim(a) == 2 and _ndim(b) == 1:
        return d[:, None] * a
    if i == 0 and _ndim(a) == 1 and _ndim(b) == 2:
        return d[:, None] * b.T
    return None


matmul.diag_dense = _matmul_diag


def _matmul_batch(prim: Primitive, vals: list[Any], dims: list[Any]) -> Any:
    """A batch of products in one np.matmul: the batch axis first, a 1-d operand as a row
    (a) or a column (b), ranks padded after the batch axis; W x for a batch of x is the
    single product X W^T."""
    (a, b), (da, db) = vals, dims
    an, bn = _ndim(a) - (da is not None), _ndim(b) - (db is not None)
    if da is None and an == 2 and bn == 1:
        return matmul(B.to_front(b, db), swap_last(a)), 0
    if db is None and an == 1 and bn == 2:
        return matmul(B.to_front(a, da), b), 0
    r = max(an, bn, 2)
    if da is not None:
        a = B.to_front(a, da)
        a = B.with_rank(_row(a) if an == 1 else a, r)
    elif an == 1:
        a = _row(a)
    if db is not None:
        b = B.to_front(b, db)
        b = B.with_rank(_col(b) if bn == 1 else b, r)
    elif bn == 1:
        b = _col(b)
    out = matmul(a, b)
    s = _shape(out)
    if an == 1 or bn == 1:
        s = s[:-2] + (() if an == 1 else s[-2:-1]) + (() if bn == 1 else s[-1:])
        out = reshape(out, s)
    return out, 0


matmul.batch = _matmul_batch


def _einsum_impl(*operands: Any, spec: str) -> Any:
    return _np.einsum(spec, *operands, optimize=len(operands) > 2)


def _einsum_parts(spec: str) -> tuple[list[str], str]:
    ins, out = spec.split("->")
    return ins.split(","), out


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _batch_letters(spec: str, n: int) -> str:
    """``n`` index letters not used in ``spec``, for the batch axes of a cotangent or
    tangent (explicit letters, not an ellipsis, so that the rule's own einsum can be
    differentiated again)."""
    free = [c for c in _LETTERS if c not in spec]
    if len(free) < n:
        raise TracerError("einsum: too many indices to differentiate this contraction")
    return "".join(free[:n])


def _einsum_vjp(i: int) -> Any:
    def rule(g: Any, ans: Any, *ops: Any, spec: str) -> Any:
        ins, out = _einsum_parts(spec)
        target = ins[i]
        if len(set(target)) != len(target):
            raise TracerError(f"einsum: no derivative for a repeated index in {target!r}")
        others = [s for j, s in enumerate(ins) if j != i]
        have = set(out).union(*others) if others else set(out)
        kept = "".join(c for c in target if c in have)
        bl = _batch_letters(spec, _ndim(g) - _ndim(ans))
        sub = ",".join([bl + out] + others) + "->" + bl + kept
        r = einsum(g, *[o for j, o in enumerate(ops) if j != i], spec=sub)
        if kept != target:  # an index summed inside operand i alone: broadcast back
            xs = _shape(ops[i])
            nb = _ndim(g) - _ndim(ans)
            lead = _shape(r)[:nb]
            kd = tuple(xs[k] if c in have else 1 for k, c in enumerate(target))
            r = broadcast_to(reshape(r, lead + kd), lead + xs)
        return r

    return rule


def _einsum_jvp(i: int) -> Any:
    def rule(t: Any, ans: Any, *ops: Any, spec: str) -> Any:
        ins, out = _einsum_parts(spec)
        bl = _batch_letters(spec, _ndim(t) - _ndim(ops[i]))
        sub = ",".join((bl + s) if j == i else s for j, s in enumerate(ins)) + "->" + bl + out
        return einsum(*[t if j == i else o for j, o in enumerate(ops)], spec=sub)

    return rule


class _EinsumRules(dict):
    """einsum is variadic: build the rule for operand i on first use."""

    def __init__(self, maker: Any) -> None:
        super().__init__()
        self.maker = maker

    def __missing__(self, i: int) -> Any:
        self[i] = r = self.maker(i)
        return r

    def __contains__(self, i: object) -> bool:
        return isinstance(i, int)


einsum = _prim("einsum", _einsum_impl, "2.3 matrix product (general contraction)")
einsum.vjps = _EinsumRules(_einsum_vjp)
einsum.jvps = _EinsumRules(_einsum_jvp)


def _einsum_batch(prim: Primitive, vals: list[Any], dims: list[Any], spec: str) -> Any:
    """One more index, in front, for the batch axis of each batched operand and of the
    result: one einsum for the whole batch."""
    ins, out = _einsum_parts(spec)
    bl = _batch_letters(spec, 1)
    ops = [v if d is None else B.to_front(v, d) for v, d in zip(vals, dims)]
    subs = [s if d is None else bl + s for s, d in zip(ins, dims)]
    return einsum(*ops, spec=",".join(subs) + "->" + bl + out), 0


einsum.batch = _einsum_batch


# ===================================================================== shape and layout


def _reshape_impl(x: Any, shape: tuple[int, ...]) -> Any:
    return _np.reshape(x, shape)


reshape = _prim("reshape", _reshape_impl, "shape")
reshape.vjps[0] = lambda g, ans, x, shape: reshape(
    g, _shape(g)[: _ndim(g) - _ndim(ans)] + _shape(x))
reshape.jvps[0] = lambda t, ans, x, shape: reshape(
    t, _shape(t)[: _ndim(t) - _ndim(x)] + _shape(ans))
reshape.batch = lambda prim, vals, dims: (reshape(
    B.to_front(vals[0], dims[0]), (B.batch_size(vals, dims),) + tuple(vals[1])), 0)


def _broadcast_to_impl(x: Any, shape: tuple[int, ...]) -> Any:
    return _np.broadcast_to(x, shape)


broadcast_to = _prim("broadcast_to", _broadcast_to_impl, "3.2.3 scalar expansion")
broadcast_to.vjps[0] = lambda g, ans, x, shape: unbroadcast(g, _shape(x), _ndim(g) - len(shape))
broadcast_to.jvps[0] = lambda t, ans, x, shape: broadcast_to(
    align(t, x, len(shape)), _shape(t)[: _ndim(t) - _ndim(x)] + tuple(shape))
broadcast_to.batch = lambda prim, vals, dims: (broadcast_to(
    B.with_rank(B.to_front(vals[0], dims[0]), len(vals[1])),
    (B.batch_size(vals, dims),) + tuple(vals[1])), 0)


def _transpose_impl(x: Any, axes: tuple[int, ...]) -> Any:
    return _np.transpose(x, axes)


def _transpose_vjp(g: Any, ans: Any, x: Any, axes: tuple[int, ...]) -> Any:
    nb = _ndim(g) - _ndim(ans)
    inv = tuple(int(i) for i in _np.argsort(axes))
    return transpose(g, tuple(range(nb)) + tuple(nb + i for i in inv))


def _transpose_jvp(t: Any, ans: Any, x: Any, axes: tuple[int, ...]) -> Any:
    nt = _ndim(t) - _ndim(x)
    return transpose(t, tuple(range(nt)) + tuple(nt + a for a in axes))


transpose = _prim("transpose", _transpose_impl, "shape")
transpose.vjps[0], transpose.jvps[0] = _transpose_vjp, _transpose_jvp


def _transpose_batch(prim: Primitive, vals: list[Any], dims: list[Any]) -> Any:
    x = B.to_front(vals[0], dims[0])
    nd = _ndim(x) - 1
    axes = vals[1] if len(vals) > 1 and vals[1] is not None else tuple(range(nd))[::-1]
    return transpose(x, (0,) + tuple(a % nd + 1 for a in axes)), 0


transpose.batch = _transpose_batch


def _astype_impl(x: Any, dtype: Any) -> Any:
    return _np.asarray(x).astype(dtype)


astype = _prim("astype", _astype_impl, "shape", batch=B.passthrough)
astype.vjps[0] = lambda g, ans, x, dtype: astype(g if is_complex(x) else _re(g), float_dtype(x))
astype.jvps[0] = lambda t, ans, x, dtype: astype(t, dtype)


def _concatenate_impl(*xs: Any, axis: int) -> Any:
    return _np.concatenate(xs, axis=axis)


def _concat_vjp(i: int) -> Any:
    def rule(g: Any, ans: Any, *xs: Any, axis: int) -> Any:
        start = sum(_shape(x)[axis] for x in xs[:i])
        stop = start + _shape(xs[i])[axis]
        idx = (Ellipsis, slice(start, stop)) + (slice(None),) * (-axis - 1)
        return getitem(g, normalize_index(idx, _ndim(g)))

    return rule


def _concat_jvp(i: int) -> Any:
    def rule(t: Any, ans: Any, *xs: Any, axis: int) -> Any:
        lead = _shape(t)[: _ndim(t) - _ndim(xs[i])]
        parts = [t if j == i else _np.zeros(lead + _shape(x), float_dtype(t))
                 for j, x in enumerate(xs)]
        return concatenate(*parts, axis=axis)

    return rule


concatenate = _prim("concatenate", _concatenate_impl, "shape")
concatenate.vjps = _EinsumRules(_concat_vjp)
concatenate.jvps = _EinsumRules(_concat_jvp)


def _concat_batch(prim: Primitive, vals: list[Any], dims: list[Any], axis: int) -> Any:
    """The batch axis first in every operand (an unbatched one broadcast over the batch:
    concatenate copies it anyway)."""
    n = B.batch_size(vals, dims)
    xs = [B.to_front(v, d) if d is not None else broadcast_to(v, (n,) + _shape(v))
          for v, d in zip(vals, dims)]
    return concatenate(*xs, axis=B.shift_axis(axis, _ndim(xs[0]) - 1)), 0


concatenate.batch = _concat_batch


# ===================================================================== indexing


def normalize_index(idx: Any, ndim: int) -> tuple[Any, ...]:
    """A tuple index with Ellipsis expanded and boolean masks turned into integer arrays."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out: list[Any] = []
    for k in idx:
        if isinstance(k, _np.ndarray) and k.dtype == bool:
            out.extend(_np.nonzero(k))
        elif isinstance(k, list):
            arr = _np.asarray(k)
            out.extend(_np.nonzero(arr)) if arr.dtype == bool else out.append(arr)
        elif isinstance(k, (bool, _np.bool_)):
            raise TracerError("indexing a traced array with a Python bool is not supported")
        else:
            if isinstance(k, Tracer):
                if k.opaque and k.dtype.kind in "iu":
                    out.append(k)      # vmap: an index of each example's own (batching.py)
                    continue
                raise TracerError("a traced value cannot be used as an index")
            out.append(k)
    consumed = sum(1 for k in out if k is not None and k is not Ellipsis)
    pos = [i for i, k in enumerate(out) if k is Ellipsis]
    if pos:
        i = pos[0]
        out[i : i + 1] = [slice(None)] * (ndim - consumed)
    return tuple(out)


def _getitem_impl(x: Any, idx: tuple[Any, ...]) -> Any:
    return _np.asarray(x)[idx]


def _untake_impl(g: Any, idx: tuple[Any, ...], shape: tuple[int, ...], out_ndim: int) -> Any:
    """The adjoint of ``x[idx]``: scatter-add ``g`` into zeros of ``shape`` (batch kept)."""
    g = _np.asarray(g)
    nb = g.ndim - out_ndim
    z = _np.zeros(tuple(shape) + g.shape[:nb], g.dtype)
    if nb:
        g = _np.moveaxis(g, tuple(range(nb)), tuple(range(-nb, 0)))
    if any(isinstance(k, _np.ndarray) for k in idx):
        _np.add.at(z, idx, g)
    else:
        z[idx] = g
    if nb:
        z = _np.moveaxis(z, tuple(range(-nb, 0)), tuple(range(nb)))
    return z


getitem = _prim("getitem", _getitem_impl, "indexing and slicing")
untake = _prim("untake", _untake_impl, "indexing and slicing (adjoint)")
getitem.vjps[0] = lambda g, ans, x, idx: untake(g, idx, _shape(x), _ndim(ans))
getitem.jvps[0] = lambda t, ans, x, idx: take_batched(t, idx, _ndim(x))
untake.vjps[0] = lambda h, ans, g, idx, shape, out_ndim: take_batched(h, idx, len(shape))
untake.jvps[0] = lambda t, ans, g, idx, shape, out_ndim: untake(t, idx, shape, out_ndim)


def _index_batch_axis(idx: tuple[Any, ...]) -> int:
    """Where the batch axis of ``x`` lands in ``x[(slice(None),) + idx]`` (NumPy's rule:
    index arrays that are not side by side put their broadcast axes first)."""
    if not any(isinstance(k, _np.ndarray) and k.ndim > 0 for k in idx):
        return 0                                     # basic indexing: the batch stays first
    adv = [i for i, k in enumerate(idx)
           if isinstance(k, (_np.ndarray, int, _np.integer)) and not isinstance(k, bool)]
    if adv == list(range(adv[0], adv[-1] + 1)):
        return 0                                     # side by side: they stay in place
    return len(_np.broadcast_shapes(*(_np.shape(idx[i]) for i in adv)))


def _batched_index(idx: tuple[Any, ...], idims: tuple[Any, ...], n: int | None) -> Any:
    """An index of one example whose index arrays differ per example (``idims``: the batch
    axis of each entry, or None) as one index of the batch: ``arange(n)`` in front, each
    batched array with its batch axis first. Returns it, and the permutation that puts the
    result's axes in one example's order after the batch axis (NumPy puts the broadcast
    axes of side-by-side index arrays where the first one stands, ours first)."""
    def adv(i: int, k: Any) -> bool:
        return idims[i] is not None or (isinstance(k, (_np.ndarray, int, _np.integer)) and
                                        not isinstance(k, (bool, _np.bool_)))

    pos = [i for i, k in enumerate(idx) if adv(i, k)]
    shapes = [(lambda s, d: s[:d] + s[d + 1:])(_shape(k), idims[i]) if idims[i] is not None
              else _shape(k) for i, k in enumerate(idx) if i in pos]
    s = _np.broadcast_shapes(*shapes) if shapes else ()
    new: list[Any] = [] if n is None else [_np.arange(n).reshape((n,) + (1,) * len(s))]
    for i, k in enumerate(idx):
        if idims[i] is not None:
            k = B.with_rank(B.to_front(k, idims[i]), len(s))
        new.append(k)
    perm = None
    if n is None:        # no arange: where the batch axis lands
        side = pos == list(range(pos[0], pos[-1] + 1))
        return tuple(new), (sum(1 for k in idx[: pos[0]] if k is None or isinstance(k, slice))
                            if side else 0)
    if pos == list(range(pos[0], pos[-1] + 1)) and pos[0] > 0:
        before = sum(1 for k in idx[: pos[0]] if k is None or isinstance(k, slice))
        m = len(s)
        perm = ((0,) + tuple(1 + m + i for i in range(before)) + tuple(1 + i for i in range(m)),
                1 + m + before)
    return tuple(new), perm


def _full_perm(perm: Any, nd: int) -> tuple[int, ...]:
    head, k = perm
    return head + tuple(range(k, nd))


def _getitem_batch(prim: Primitive, vals: list[Any], dims: list[Any]) -> Any:
    idx = vals[1] if isinstance(vals[1], tuple) else (vals[1],)
    if dims[1] is None:
        return getitem(B.to_front(vals[0], dims[0]), (slice(None),) + idx), \
            _index_batch_axis(idx)
    # index arrays of their own for every example (take_along_axis of argsort: sort)
    if dims[0] is None:  # one array, a batch of indices into it: a plain gather
        new, out_dim = _batched_index(idx, dims[1], None)
        return getitem(vals[0], new), out_dim
    n = B.batch_size(list(idx) + [vals[0]], list(dims[1]) + [dims[0]])
    x = B.to_front(vals[0], dims[0])
    new, perm = _batched_index(idx, dims[1], n)
    r = getitem(x, new)
    return (r if perm is None else transpose(r, _full_perm(perm, _ndim(r)))), 0


def _untake_batch(prim: Primitive, vals: list[Any], dims: list[Any]) -> Any:
    g, idx, shape, out_ndim = vals
    if dims[1] is None:
        # the scatter already keeps leading batch axes of g (those of a Jacobian's basis)
        return untake(B.to_front(g, dims[0]), idx, shape, out_ndim), 0
    n = B.batch_size(list(idx) + [g], list(dims[1]) + [dims[0]])
    g = B.to_front(g, dims[0]) if dims[0] is not None else broadcast_to(g, (n,) + _shape(g))
    new, perm = _batched_index(idx, dims[1], n)
    nd = _ndim(g)
    jb = nd - 1 - out_ndim                       # a Jacobian's basis axes, after the batch
    order = tuple(range(1, 1 + jb)) + (0,) + tuple(range(1 + jb, nd))
    g = transpose(g, order)                      # (basis, batch, one example's result)
    if perm is not None:
        inv = tuple(int(i) for i in _np.argsort(_full_perm(perm, out_ndim + 1)))
        g = transpose(g, tuple(range(jb)) + tuple(jb + i for i in inv))
    z = untake(g, new, (n,) + tuple(shape), out_ndim + 1)
    return transpose(z, (jb,) + tuple(range(jb)) + tuple(range(jb + 1, _ndim(z)))), 0


getitem.batch = _getitem_batch
untake.batch = _untake_batch
B.index_primitive(getitem, 1)
B.index_primitive(untake, 1)


# ===================================================================== scans and linear algebra


def _cumsum_impl(x: Any, axis: int) -> Any:
    return _np.cumsum(x, axis=axis)


def _flip(v: Any, axis: int) -> Any:
    idx = (Ellipsis, slice(None, None, -1)) + (slice(None),) * (-axis - 1)
    return getitem(v, normalize_index(idx, _ndim(v)))


cumsum = _prim("cumsum", _cumsum_impl, "3.2.4 sums (running)", batch=B.with_axis)
# the adjoint of a running sum is the running sum taken from the other end
cumsum.vjps[0] = lambda g, ans, x, axis: _flip(cumsum(_flip(g, axis), axis), axis)
cumsum.jvps[0] = lambda t, ans, x, axis: cumsum(t, axis)


def _inv_impl(a: Any) -> Any:
    return _np.linalg.inv(a)


def _det_impl(a: Any) -> Any:
    return _np.linalg.det(a)


inv = _prim("inv", _inv_impl, "linear algebra", numpy=_np.linalg.inv,
            batch=B.leading)
# d(A^-1) = -A^-1 dA A^-1, so the VJP is -A^-T g A^-T
inv.vjps[0] = lambda g, ans, a: negative(matmul(matmul(swap_last(ans), g), swap_last(ans)))
inv.jvps[0] = lambda t, ans, a: negative(matmul(matmul(ans, t), ans))

det = _prim("det", _det_impl, "linear algebra", numpy=_np.linalg.det,
            batch=B.leading)


def _cofactor_svd(a: Any) -> Any:
    """The cofactor matrix adj(A)^T of plain (possibly singular) matrices, from the SVD
    A = U diag(s) V^T: adj(A)^T = det(U) det(V) U diag(prod_{j != i} s_j) V^T."""
    u, s, vh = _np.linalg.svd(a)
    ones = _np.ones(s.shape[:-1] + (1,), s.dtype)
    left = _np.cumprod(_np.concatenate([ones, s[..., :-1]], -1), -1)
    right = _np.cumprod(_np.concatenate([ones, s[..., :0:-1]], -1), -1)[..., ::-1]
    sign = _np.linalg.det(u) * _np.linalg.det(vh)
    # (U^-1)^T = conj(U) for a unitary U (U itself when real)
    u, vh = _np.conj(u), _np.conj(vh)
    return sign[..., None, None] * _np.matmul(u * (left * right)[..., None, :], vh)


def _cofactor(ans: Any, a: Any) -> Any:
    """d det(A) / dA = adj(A)^T = det(A) A^-T (Jacobi's formula); the adjugate also
    exists where A is singular (JAX returns it there too)."""
    av = getval(a)
    if a is av and isinstance(av, Tracer):     # a batch (vmap): on all its values at once
        return B.on_values(lambda v, s: _cofactor(s, v), av, getval(ans))
    if a is av:
        with _np.errstate(all="ignore"):
            try:
                c = getval(ans)[..., None, None] * _np.swapaxes(_np.linalg.inv(av), -1, -2)
            except _np.linalg.LinAlgError:
                c = None
        if c is None or not _np.all(_np.isfinite(c)):
            c = _cofactor_svd(av)
        return c
    try:
        _np.linalg.inv(av)
    except _np.linalg.LinAlgError:
        return _cofactor_minors(a)
    return multiply(reshape(ans, _shape(ans) + (1, 1)), swap_last(inv(a)))


def _cofactor_minors(a: Any) -> Any:
    """adj(A)^T of traced singular matrices from the minors, C_ij = (-1)^(i+j) det(M_ij):
    made of primitives, so that higher derivatives exist there too (as in JAX)."""
    n = _shape(a)[-1]
    if n == 1:
        return add(multiply(a, 0.0), 1.0)
    keep = _np.array([[k for k in range(n) if k != i] for i in range(n)])
    idx = (slice(None),) * (_ndim(a) - 2) + (keep[:, None, :, None], keep[None, :, None, :])
    signs = (-1.0) ** _np.add.outer(_np.arange(n), _np.arange(n))
    return multiply(det(getitem(a, idx)), signs.astype(float_dtype(a)))


def _det_vjp(g: Any, ans: Any, a: Any) -> Any:
    s = _shape(g)
    return multiply(reshape(g, s + (1, 1)), _cofactor(ans, a))


def _det_jvp(t: Any, ans: Any, a: Any) -> Any:
    # d det = trace(adj(A) dA) = <adj(A)^T, dA>
    return sum_(multiply(_cofactor(ans, a), t), (-2, -1), False)


det.vjps[0], det.jvps[0] = _det_vjp, _det_jvp


# ---- decompositions. Each output of a decomposition is its own primitive (the value of
# eigh is the pair (w, V): eigh_w and eigh_v), so that every rule maps one cotangent.
# As JAX does, eigh and cholesky read the symmetric part (A + A^T) / 2 of their input.


def _sym(a: Any) -> Any:
    """The symmetric part (A + A^T) / 2; for a complex A the Hermitian part
    (A + A^H) / 2, which is its own adjoint under JAX's pairing."""
    return multiply(0.5, add(a, _H(a)))


def _H(x: Any) -> Any:
    """The conjugate transpose of the last two axes (the transpose for real x)."""
    return _cj(swap_last(x))


def _sym_v(a: Any) -> Any:
    a = _np.asarray(a)
    return 0.5 * (a + _np.conj(_np.swapaxes(a, -1, -2)))


def _eye_like(a: Any) -> Any:
    n = _shape(a)[-1]
    return _np.eye(n, dtype=float_dtype(a))


def _phi(x: Any) -> Any:
    """The lower triangle with half the diagonal (the cholesky rule's Phi)."""
    n = _shape(x)[-1]
    w = _np.tril(_np.ones((n, n)), -1) + 0.5 * _np.eye(n)
    return multiply(x, w.astype(float_dtype(x)))


def _tril(x: Any, k: int = 0) -> Any:
    n, m = _shape(x)[-2:]
    return multiply(x, _np.tri(n, m, k, dtype=float_dtype(x)))


def _cholesky_impl(a: Any) -> Any:
    return _np.linalg.cholesky(_sym_v(a))


cholesky = _prim("cholesky", _cholesky_impl, "linear algebra (decompositions)",
                 batch=B.leading)


def _cholesky_vjp(g: Any, ans: Any, a: Any) -> Any:
    # P = Phi(L^T Lbar), Abar = sym(L^-T P L^-1)  (Murray 2016)
    li = inv(ans)
    p = _phi(matmul(swap_last(ans), g))
    return _sym(matmul(matmul(swap_last(li), p), li))


def _cholesky_jvp(t: Any, ans: Any, a: Any) -> Any:
    li = inv(ans)
    return matmul(ans, _phi(matmul(matmul(li, _sym(t)), swap_last(li))))


cholesky.vjps[0], cholesky.jvps[0] = _cholesky_vjp, _cholesky_jvp


def _eigh_w_impl(a: Any) -> Any:
    return _np.linalg.eigh(_sym_v(a))[0]


def _eigh_v_impl(a: Any) -> Any:
    return _np.linalg.eigh(_sym_v(a))[1]


eigh_w = _prim("eigh_w", _eigh_w_impl, "linear algebra (decompositions)",
               batch=B.leading)
eigh_v = _prim("eigh_v", _eigh_v_impl, "linear algebra (decompositions)",
               batch=B.leading)


def _col_scale(v: Any, d: Any) -> Any:
    """v diag(d) for a batch of diagonals d (..., n)."""
    return multiply(v, reshape(d, _shape(d)[:-1] + (1, _shape(d)[-1])))


def _gap_inverse(w: Any) -> Any:
    """F_ij = 1 / (w_j - w_i) off the diagonal, 0 on it."""
    n = _shape(w)[-1]
    eye = _np.eye(n, dtype=bool)
    s = _shape(w)
    diff = subtract(reshape(w, s[:-1] + (1, n)), reshape(w, s[:-1] + (n, 1)))
    return where(eye, 0.0, reciprocal(where(eye, 1.0, diff)))


# eigenvalues: dw = diag(V^T dA V); Abar = V diag(wbar) V^T
# (complex Hermitian A: Abar = conj(V) diag(wbar) V^T, dw = Re diag(V^H dA V))
eigh_w.vjps[0] = lambda g, ans, a: matmul(_col_scale(_cj(eigh_v(a)), g), swap_last(eigh_v(a)))
eigh_w.jvps[0] = lambda t, ans, a: _re(sum_(multiply(_cj(eigh_v(a)),
                                                     matmul(_sym(t), eigh_v(a))), (-2,), False))


def _eigh_v_vjp(g: Any, ans: Any, a: Any) -> Any:
    f = _gap_inverse(eigh_w(a))
    inner = multiply(f, matmul(swap_last(ans), g))
    return _sym(matmul(matmul(_cj(ans), inner), swap_last(ans)))


def _eigh_v_jvp(t: Any, ans: Any, a: Any) -> Any:
    f = _gap_inverse(eigh_w(a))
    return matmul(ans, multiply(f, matmul(matmul(_H(ans), _sym(t)), ans)))


eigh_v.vjps[0], eigh_v.jvps[0] = _eigh_v_vjp, _eigh_v_jvp


# ---- the reduced SVD A = U diag(s) V^T (JAX's svd rules, transposed for reverse mode)


def _svd_s_impl(a: Any) -> Any:
    return _np.linalg.svd(a, compute_uv=False)


def _svd_u_impl(a: Any) -> Any:
    return _np.linalg.svd(a, full_matrices=False)[0]


def _svd_vh_impl(a: Any) -> Any:
    return _np.linalg.svd(a, full_matrices=False)[2]


svd_s = _prim("svd_s", _svd_s_impl, "linear algebra (decompositions)",
              batch=B.leading)
svd_u = _prim("svd_u", _svd_u_impl, "linear algebra (decompositions)",
              batch=B.leading)
svd_vh = _prim("svd_vh", _svd_vh_impl, "linear algebra (decompositions)",
               batch=B.leading)


def _svd_parts(a: Any) -> Any:
    return svd_u(a), svd_s(a), swap_last(svd_vh(a))


def _svd_f(s: Any) -> Any:
    """F_ij = 1 / (s_j^2 - s_i^2) off the diagonal, 0 on it."""
    return _gap_inverse(multiply(s, s))


def _safe_inv(s: Any) -> Any:
    sv = getval(s)
    return where(sv == 0, 0.0, reciprocal(where(sv == 0, 1.0, s)))


# (complex A: Abar = conj(U diag(sbar) V^H), ds = Re diag(U^H dA V))
svd_s.vjps[0] = lambda g, ans, a: _cj(matmul(_col_scale(svd_u(a), g), svd_vh(a)))
svd_s.jvps[0] = lambda t, ans, a: _re(sum_(multiply(_cj(svd_u(a)), matmul(t, _H(svd_vh(a)))),
                                           (-2,), False))


def _svd_u_vjp(g: Any, ans: Any, a: Any) -> Any:
    if is_complex(a):
        return _transposed(_svd_u_jvp_c)(g, ans, a)
    u, s, v = _svd_parts(a)
    m_ = multiply(_svd_f(s), matmul(swap_last(u), g))
    k = _col_scale(add(m_, swap_last(m_)), s)
    r = matmul(matmul(u, k), swap_last(v))
    if _shape(a)[-2] > _shape(a)[-1]:
        rest = subtract(g, matmul(u, matmul(swap_last(u), g)))
        r = add(r, matmul(_col_scale(rest, _safe_inv(s)), swap_last(v)))
    return r


def _svd_u_jvp(t: Any, ans: Any, a: Any) -> Any:
    if is_complex(a):
        return _svd_u_jvp_c(t, ans, a)
    u, s, v = _svd_parts(a)
    ds = matmul(matmul(swap_last(u), t), v)
    dss = _col_scale(ds, s)
    du = matmul(u, multiply(_svd_f(s), add(dss, swap_last(dss))))
    if _shape(a)[-2] > _shape(a)[-1]:
        dav = matmul(t, v)
        du = add(du, _col_scale(subtract(dav, matmul(u, matmul(swap_last(u), dav))),
                                _safe_inv(s)))
    return du


def _svd_vh_vjp(g: Any, ans: Any, a: Any) -> Any:
    if is_complex(a):
        return _transposed(_svd_vh_jvp)(g, ans, a)
    u, s, v = _svd_parts(a)
    gv = swap_last(g)
    m_ = multiply(_svd_f(s), matmul(swap_last(v), gv))
    k = swap_last(_col_scale(swap_last(add(m_, swap_last(m_))), s))   # S (M + M^T)
    r = matmul(matmul(u, k), swap_last(v))
    if _shape(a)[-1] > _shape(a)[-2]:
        rest = subtract(gv, matmul(v, matmul(swap_last(v), gv)))   # (I - V V^T) Vbar
        r = add(r, matmul(_col_scale(u, _safe_inv(s)), swap_last(rest)))
    return r


def _svd_vh_jvp(t: Any, ans: Any, a: Any) -> Any:
    # real or complex A: _H is the transpose for a real matrix
    u, s, v = svd_u(a), svd_s(a), _H(svd_vh(a))
    ds = matmul(matmul(_H(u), t), v)
    sds = swap_last(_col_scale(swap_last(ds), s))
    dv = matmul(v, multiply(_svd_f(s), add(sds, _H(sds))))
    if _shape(a)[-1] > _shape(a)[-2]:
        dahu = matmul(_H(t), u)
        dv = add(dv, _col_scale(subtract(dahu, matmul(v, matmul(_H(v), dahu))),
                                _safe_inv(s)))
    return _H(dv)


svd_u.vjps[0], svd_u.jvps[0] = _svd_u_vjp, _svd_u_jvp
svd_vh.vjps[0], svd_vh.jvps[0] = _svd_vh_vjp, _svd_vh_jvp


# ---- the reduced QR A = Q R (m >= n; JAX's qr rule, transposed for reverse mode)


def _qr_q_impl(a: Any) -> Any:
    return _np.linalg.qr(a)[0]


def _qr_r_impl(a: Any) -> Any:
    return _np.linalg.qr(a)[1]


qr_q = _prim("qr_q", _qr_q_impl, "linear algebra (decompositions)",
             batch=B.leading)
qr_r = _prim("qr_r", _qr_r_impl, "linear algebra (decompositions)",
             batch=B.leading)


def _qr_check(a: Any) -> None:
    if _shape(a)[-2] < _shape(a)[-1]:
        raise TracerError("qr: derivatives need a matrix with at least as many rows as "
                          "columns")


def _qr_vjp(w: Any, q: Any, r: Any, extra: Any) -> Any:
    """Abar = (Q K + extra) R^-T with K = tril(W - W^T, -1) - W."""
    k = subtract(_tril(subtract(w, swap_last(w)), -1), w)
    top = matmul(q, k)
    if extra is not None:
        top = add(top, extra)
    return matmul(top, swap_last(inv(r)))


def _qr_q_vjp(g: Any, ans: Any, a: Any) -> Any:
    _qr_check(a)
    return _qr_vjp(matmul(swap_last(ans), g), ans, qr_r(a), g)


def _qr_r_vjp(g: Any, ans: Any, a: Any) -> Any:
    _qr_check(a)
    return _qr_vjp(negative(matmul(g, swap_last(ans))), qr_q(a), ans, None)


def _qr_parts_jvp(t: Any, a: Any) -> Any:
    _qr_check(a)
    q, r = qr_q(a), qr_r(a)
    d = matmul(t, inv(r))
    c = matmul(swap_last(q), d)
    low = _tril(c, -1)
    om = subtract(low, swap_last(low))
    return q, r, c, d, om


def _qr_q_jvp(t: Any, ans: Any, a: Any) -> Any:
    q, r, c, d, om = _qr_parts_jvp(t, a)
    return add(matmul(q, subtract(om, c)), d)


def _qr_r_jvp(t: Any, ans: Any, a: Any) -> Any:
    q, r, c, d, om = _qr_parts_jvp(t, a)
    return matmul(subtract(c, om), r)


qr_q.vjps[0], qr_q.jvps[0] = _qr_q_vjp, _qr_q_jvp
qr_r.vjps[0], qr_r.jvps[0] = _qr_r_vjp, _qr_r_jvp


# ---- log |det A| (slogdet's second output): d/dA = A^-T


def _logabsdet_impl(a: Any) -> Any:
    return _np.linalg.slogdet(a)[1]


logabsdet = _prim("logabsdet", _logabsdet_impl, "linear algebra", batch=B.leading)
logabsdet.vjps[0] = lambda g, ans, a: multiply(reshape(g, _shape(g) + (1, 1)), swap_last(inv(a)))
logabsdet.jvps[0] = lambda t, ans, a: sum_(multiply(swap_last(inv(a)), t), (-2, -1), False)


# ---- the pseudo-inverse (constant rank; Golub and Pereyra 1973)


def _pinv_impl(a: Any) -> Any:
    return _np.linalg.pinv(a)


pinv = _prim("pinv", _pinv_impl, "linear algebra", batch=B.leading)


def _pinv_jvp(t: Any, ans: Any, a: Any) -> Any:
    # d A+ = -A+ dA A+ + A+ A+^T dA^T (I - A A+) + (I - A+ A) dA^T A+^T A+
    p, q = _proj_out(ans, a)
    ap = ans
    t1 = negative(matmul(matmul(ap, t), ap))
    t2 = matmul(matmul(matmul(ap, swap_last(ap)), swap_last(t)), p)
    t3 = matmul(matmul(matmul(q, swap_last(t)), swap_last(ap)), ap)
    return add(add(t1, t2), t3)


def _proj_out(ap: Any, a: Any) -> Any:
    """I - A A+ and I - A+ A."""
    m, n = _shape(a)[-2:]
    return (subtract(_np.eye(m, dtype=float_dtype(a)), matmul(a, ap)),
            subtract(_np.eye(n, dtype=float_dtype(a)), matmul(ap, a)))


def _pinv_vjp(g: Any, ans: Any, a: Any) -> Any:
    p, q = _proj_out(ans, a)
    ap = ans
    r1 = negative(matmul(matmul(swap_last(ap), g), swap_last(ap)))
    r2 = matmul(matmul(matmul(p, swap_last(g)), ap), swap_last(ap))
    r3 = matmul(matmul(matmul(swap_last(ap), ap), swap_last(g)), q)
    return add(add(r1, r2), r3)


pinv.vjps[0], pinv.jvps[0] = _pinv_vjp, _pinv_jvp


# The numerically stable NumPy forms of the primitives above, for the modules that compute
# on plain arrays (nn's records): one home for each, read from here.
stable_sigmoid = _sigmoid_impl
stable_softmax = _softmax_impl
stable_logsumexp = _logsumexp_impl


# ===================================================================== complex numbers
# JAX's convention (docs/math.md): a cotangent acts on a tangent through the pairing
# <ct, t> = Re(sum(ct * t)), with no conjugate. So the VJP of a holomorphic function is
# g f'(z), the rules above unchanged; a function that is not holomorphic (real, imag,
# conj, angle, abs) has an R-linear JVP, and its VJP is that map's transpose under the
# pairing. The cotangent of a real value is the real part of what a rule gives
# (core.backward takes it), as JAX's convert_element_type transposes.


def is_complex(x: Any) -> bool:
    return float_dtype(x).kind == "c"


def _re(x: Any) -> Any:
    return real(x) if is_complex(x) else x


def _im(x: Any) -> Any:
    return imag(x) if is_complex(x) else multiply(x, 0.0)


def _cj(x: Any) -> Any:
    return conj(x) if is_complex(x) else x


def _complex_dtype(x: Any) -> Any:
    return _np.result_type(float_dtype(x), _np.complex64)


def abs2(x: Any) -> Any:
    """|x|^2, real: x * x for real x, Re(x)^2 + Im(x)^2 for complex x."""
    if not is_complex(x):
        return multiply(x, x)
    r, i = real(x), imag(x)
    return add(multiply(r, r), multiply(i, i))


real = _prim("real", lambda x: _np.real(x), "complex numbers", batch=B.elementwise)
imag = _prim("imag", lambda x: _np.imag(x), "complex numbers", batch=B.elementwise)
conj = _prim("conj", lambda x: _np.conjugate(x), "complex numbers", batch=B.elementwise)
angle = _prim("angle", lambda x: _np.angle(x), "complex numbers", batch=B.elementwise)

# d Re z = Re dz: the transpose sends a real g to the complex g + 0i
real.vjps[0] = lambda g, ans, x: astype(g, _complex_dtype(x))
real.jvps[0] = lambda t, ans, x: _re(t)
# d Im z = Im dz = Re(-i dz): the transpose is -i g
imag.vjps[0] = lambda g, ans, x: multiply(astype(g, _complex_dtype(x)), -1j)
imag.jvps[0] = lambda t, ans, x: _im(t)
# d conj z = conj dz: Re(g conj t) = Re(conj(g) t)
conj.vjps[0] = lambda g, ans, x: _cj(g)
conj.jvps[0] = lambda t, ans, x: _cj(t)


def _angle_factor(x: Any) -> Any:
    """-i conj(z) / |z|^2: d angle(z) = Re(-i conj(z) dz) / |z|^2 = Im(conj(z) dz) / |z|^2
    (0 at z = 0)."""
    m = abs2(x)
    mv = getval(m)
    if B.any_value(mv == 0):
        m = where(mv == 0, 1.0, m)
    f = multiply(divide(conj(x), m), -1j)
    return where(mv == 0, 0.0, f) if B.any_value(mv == 0) else f


angle.vjps[0] = lambda g, ans, x: multiply(g, _angle_factor(x))
angle.jvps[0] = lambda t, ans, x: real(multiply(t, _angle_factor(x)))


def _transposed(jvp_rule: Any) -> Any:
    """The VJP of a rule from its JVP, which is linear (over R) in the tangent: reverse
    mode through the JVP at a zero tangent gives the transpose under JAX's pairing. Used
    where a hand-written transpose would be long (the complex SVD, eig)."""
    def vjp(g: Any, ans: Any, *vals: Any, **params: Any) -> Any:
        x = vals[0]
        nb = _ndim(g) - _ndim(ans)
        zero = _np.zeros(_shape(g)[:nb] + _shape(x), float_dtype(x))
        return transpose_linear(lambda t: jvp_rule(t, ans, *vals, **params), zero, g)

    return vjp


def _svd_u_jvp_c(t: Any, ans: Any, a: Any) -> Any:
    """JAX's svd JVP for U, complex A (the real rule plus the imaginary diagonal term)."""
    u, s, v = svd_u(a), svd_s(a), _H(svd_vh(a))
    ds = matmul(matmul(_H(u), t), v)
    dss = _col_scale(ds, s)
    sinv = _safe_inv(s)
    n = _shape(s)[-1]
    diag = multiply(multiply(subtract(ds, _H(ds)), 0.5), _np.eye(n))
    du = matmul(u, add(multiply(_svd_f(s), add(dss, _H(dss))), _col_scale(diag, sinv)))
    if _shape(a)[-2] > _shape(a)[-1]:
        dav = matmul(t, v)
        du = add(du, _col_scale(subtract(dav, matmul(u, matmul(_H(u), dav))), sinv))
    return du


# ---- the eigendecomposition of a general square matrix, A V = V diag(w). NumPy's
# eigenvectors have unit length and an arbitrary phase, so, as for eigh, a derivative of
# V is meaningful for functions that do not depend on the phase (abs(V), V V^H). The
# values are always complex, as JAX's.


def _eig_impl(a: Any, part: int) -> Any:
    r = _np.linalg.eig(a)[part]
    return r.astype(_np.result_type(r.dtype, _np.complex64), copy=False)


eig_w = _prim("eig_w", lambda a: _eig_impl(a, 0), "linear algebra (decompositions)",
              batch=B.leading)
eig_v = _prim("eig_v", lambda a: _eig_impl(a, 1), "linear algebra (decompositions)",
              batch=B.leading)


def _eig_c(t: Any, a: Any) -> Any:
    """V^-1 dA V."""
    v = eig_v(a)
    return matmul(matmul(inv(v), t), v)


def _eig_w_jvp(t: Any, ans: Any, a: Any) -> Any:
    # dw = diag(V^-1 dA V)
    n = _shape(a)[-1]
    return sum_(multiply(_eig_c(t, a), _np.eye(n)), (-1,), False)


def _eig_v_jvp(t: Any, ans: Any, a: Any) -> Any:
    # dV = V (F o V^-1 dA V), F_ij = 1 / (w_j - w_i); then the part that keeps each
    # column at unit length: dv_k -= v_k Re(v_k^H dv_k)
    dv = matmul(ans, multiply(_gap_inverse(eig_w(a)), _eig_c(t, a)))
    return subtract(dv, multiply(ans, real(sum_(multiply(conj(ans), dv), (-2,), True))))


eig_w.jvps[0], eig_w.vjps[0] = _eig_w_jvp, _transposed(_eig_w_jvp)
eig_v.jvps[0], eig_v.vjps[0] = _eig_v_jvp, _transposed(_eig_v_jvp)


# ===================================================================== discrete Fourier transforms
# One axis at a time (numpy_api composes fft2, fftn, rfftn... from these, as NumPy's own
# code does). Each is linear over the reals, so its JVP is itself. The DFT matrix is
# symmetric, so under JAX's pairing the VJP of fft is fft (of ifft, ifft), followed by the
# transpose of NumPy's cropping or zero padding to length n. ``axis`` is negative.


def _fit(v: Any, axis: int, m: int) -> Any:
    """``v`` cropped or zero-padded along ``axis`` to length ``m`` (self-transposing pair:
    the VJP of a crop is a pad and of a pad a crop)."""
    k = _shape(v)[axis]
    if k == m:
        return v
    if k > m:
        return getitem(v, normalize_index((Ellipsis, slice(0, m)) + (slice(None),) *
                                           (-axis - 1), _ndim(v)))
    s = list(_shape(v))
    s[axis] = m - k
    return concatenate(v, _np.zeros(tuple(s), float_dtype(v)), axis=axis)


def _fft_impl(x: Any, n: int, axis: int, norm: str, inverse: bool) -> Any:
    return (_np.fft.ifft if inverse else _np.fft.fft)(x, n, axis, norm)


fft_c = _prim("fft", _fft_impl, "Fourier transforms", batch=B.leading)
fft_c.jvps[0] = lambda t, ans, x, n, axis, norm, inverse: fft_c(t, n, axis, norm, inverse)
fft_c.vjps[0] = lambda g, ans, x, n, axis, norm, inverse: _fit(
    fft_c(g, n, axis, norm, inverse), axis, _shape(x)[axis])


def _rfft_impl(x: Any, n: int, axis: int, norm: str) -> Any:
    return _np.fft.rfft(x, n, axis, norm)


rfft = _prim("rfft", _rfft_impl, "Fourier transforms", batch=B.leading)
rfft.jvps[0] = lambda t, ans, x, n, axis, norm: rfft(t, n, axis, norm)
# the first n // 2 + 1 rows of the DFT: its transpose is the fft of g padded to n (the
# real part is what acts on the real input; core.backward takes it)
rfft.vjps[0] = lambda g, ans, x, n, axis, norm: _fit(
    fft_c(_fit(g, axis, n), n, axis, norm, False), axis, _shape(x)[axis])


def _irfft_impl(x: Any, n: int, axis: int, norm: str) -> Any:
    return _np.fft.irfft(x, n, axis, norm)


def _irfft_weights(n: int, axis: int) -> Any:
    """x_j = s Re(sum_k c_k X_k w^jk) over k < n // 2 + 1: c_0 = 1, c_(n/2) = 1 for even n
    (NumPy reads only the real part of those two), c_k = 2 for the others."""
    c = _np.full(n // 2 + 1, 2.0)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    return c.reshape((-1,) + (1,) * (-axis - 1))


irfft = _prim("irfft", _irfft_impl, "Fourier transforms", batch=B.leading)
irfft.jvps[0] = lambda t, ans, x, n, axis, norm: irfft(t, n, axis, norm)
irfft.vjps[0] = lambda g, ans, x, n, axis, norm: _fit(multiply(
    _fit(fft_c(g, n, axis, norm, True), axis, n // 2 + 1), _irfft_weights(n, axis)),
    axis, _shape(x)[axis])


# ---- sign(z) = z / |z| for complex z (NumPy 2), which is not piecewise constant: its JVP
# is (t - s Re(conj(s) t)) / |z| with s = sign(z) (0 at z = 0), its VJP the transpose.
# For real x the derivative stays 0.


def _sign_jvp_c(t: Any, ans: Any, x: Any) -> Any:
    a = abs_(x)
    m = getval(a)
    safe = where(m == 0, 1.0, a) if B.any_value(m == 0) else a
    d = divide(subtract(t, multiply(ans, real(multiply(conj(ans), t)))), safe)
    return where(m == 0, 0.0, d) if B.any_value(m == 0) else d


_sign_vjp_c = _transposed(_sign_jvp_c)
sign.vjps[0] = lambda g, ans, x: _sign_vjp_c(g, ans, x) if is_complex(x) else multiply(g, 0.0)
sign.jvps[0] = lambda t, ans, x: _sign_jvp_c(t, ans, x) if is_complex(x) else multiply(t, 0.0)
sign.diag_factor = None     # the complex rule is not a diagonal in the real sense
