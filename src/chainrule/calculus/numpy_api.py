"""The user-facing, NumPy-compatible functions over the primitives of ``rules.py``.

They normalise arguments (axes, index tuples, einsum subscripts) and compose primitives
(``stack`` is reshapes and a concatenate, ``clip`` is a maximum and a minimum). The maps
``UFUNCS`` and ``FUNCTIONS`` at the bottom are how plain ``numpy`` calls on traced values
arrive here (``__array_ufunc__`` / ``__array_function__``).
"""

from __future__ import annotations

import builtins
import math as _math
import sys as _sys
from collections import namedtuple as _nt
from collections.abc import Sequence
from typing import Any

import numpy as _np

from . import core
from . import rules as R
from .batching import any_value, as_value
from .batching import take_along_axis as _take_batched
from .core import TracerError, getval, is_tracer
from .core import value_ndim as _ndim
from .core import value_shape as _shape

# ---------------------------------------------------------------- registration
# chainrule.numpy's differentiable names, and how NumPy's own calls on traced values
# arrive here (``__array_ufunc__`` / ``__array_function__``): both are generated, from the
# table of primitives (``rules.py``) and from the ``@implements`` functions of this module.
EXPORTS: dict[str, Any] = {}
LINALG: dict[str, Any] = {}
FFT: dict[str, Any] = {}
UFUNCS: dict[Any, Any] = {}
FUNCTIONS: dict[Any, Any] = {}


def _opt(name: str) -> tuple[Any, ...]:
    """NumPy's function ``name`` where this NumPy version has it."""
    obj = getattr(_np, name, None)
    return (obj,) if obj is not None else ()


def _numpy_names() -> dict[int, list[tuple[str, bool]]]:
    """id(NumPy object) -> its public names, and whether they are in numpy.linalg."""
    names: dict[int, list[tuple[str, bool]]] = {}
    for mod, is_linalg in ((_np, False), (_np.linalg, True), (_np.fft, "fft")):
        loaded = vars(mod)   # not getattr: NumPy would import its lazy submodules
        for n in getattr(mod, "__all__", None) or list(loaded):
            obj = loaded.get(n)
            if not n.startswith("_") and callable(obj):
                names.setdefault(id(obj), []).append((n, is_linalg))
    return names


_NAMES = _numpy_names()


def _register(fn: Any, numpy_objs: tuple[Any, ...], name: str | None) -> None:
    for obj in numpy_objs:
        (UFUNCS if isinstance(obj, _np.ufunc) else FUNCTIONS)[obj] = fn
        for n, is_linalg in _NAMES.get(id(obj), ()):
            (FFT if is_linalg == "fft" else LINALG if is_linalg else EXPORTS)[n] = fn
    if name is not None:
        EXPORTS[name] = fn


def implements(*numpy_objs: Any, name: str | None = None) -> Any:
    """Register a function of this module as the differentiable version of NumPy's
    ``numpy_objs`` (exported under each of their NumPy names; ``name`` for a function
    that NumPy lacks)."""
    def deco(fn: Any) -> Any:
        _register(fn, numpy_objs, name)
        return fn

    return deco


for _p in R.PRIMITIVES.values():
    if _p.public:
        _register(_p, (_p.numpy,) if _p.numpy is not None else (),
                  None if _p.numpy is not None else _p.name)


@implements(_np.power, _np.pow) if hasattr(_np, "pow") else implements(_np.power)
def power(x1: Any, x2: Any) -> Any:
    """x1 ** x2. A constant exponent 0 gives 1 with derivative 0, also at x1 = 0 (the
    polynomial features of 0), where y x^(y-1) would be 0 * inf (the primitive power_c).
    A traced exponent is the plain primitive: z ** z has no derivative at 0."""
    if not is_tracer(x2):
        if type(x2) is float or type(x2) is int:
            if x2 != 0:
                return R.power(x1, x2)
        if _np.any(_np.asarray(x2) == 0):
            return R.power_c(x1, x2)
    return R.power(x1, x2)


@implements(_np.fmax)
def fmax(x1: Any, x2: Any) -> Any:
    """The larger, ignoring NaN; at a tie the derivative goes to x2 (JAX's fmax)."""
    a, b = getval(x1), getval(x2)
    with _np.errstate(invalid="ignore"):
        return R.where(_np.asarray((a > b) | _np.isnan(b)), x1, x2)


@implements(_np.fmin)
def fmin(x1: Any, x2: Any) -> Any:
    a, b = getval(x1), getval(x2)
    with _np.errstate(invalid="ignore"):
        return R.where(_np.asarray((a < b) | _np.isnan(b)), x1, x2)


@implements(_np.deg2rad, _np.radians)
def deg2rad(x: Any) -> Any:
    return R.multiply(x, float(_np.pi / 180.0))


@implements(_np.rad2deg, _np.degrees)
def rad2deg(x: Any) -> Any:
    return R.multiply(x, float(180.0 / _np.pi))


@implements(_np.fix)
def fix(x: Any, out: Any = None) -> Any:
    _no_extras("fix", {"out": out})
    return R.trunc(x)


@implements(_np.positive)
def positive(x: Any) -> Any:
    return x


@implements(_np.round, _np.around)
def round(a: Any, decimals: int = 0, out: Any = None) -> Any:  # noqa: A001
    if out is not None:
        raise TracerError("round(..., out=...) is not supported on traced values")
    return R.round_(a, int(decimals))


@implements(_np.fabs)
def fabs(x: Any) -> Any:
    return R.abs_(x)


@implements(_np.square)
def square(x: Any) -> Any:
    return R.multiply(x, x)


def _axes(x: Any, axis: Any) -> tuple[int, ...]:
    nd = _ndim(x)
    if axis is None:
        return tuple(range(-nd, 0))
    if isinstance(axis, (int, _np.integer)):
        axis = (int(axis),)
    out = []
    for a in axis:
        if not -nd <= a < nd:
            raise _np.exceptions.AxisError(f"axis {a} is out of bounds for an array of {nd} "
                                           f"dimensions")
        out.append(a % nd - nd)
    return tuple(out)


# NumPy's "argument not given" sentinel (private to NumPy, so read by name)
_DEFAULT = getattr(_np, "_NoValue", None)


def _no_extras(name: str, kw: dict[str, Any]) -> None:
    """Refuse NumPy arguments that traced values do not support (given a value other
    than their default)."""
    for k, v in kw.items():
        if v is None or v is _DEFAULT or (k == "where" and v is True) or \
                (k in ("copy", "subok") and v in (False, True)) or \
                (k == "casting" and v == "same_kind") or (k == "device" and v == "cpu"):
            continue
        raise TracerError(f"{name}(..., {k}=...) is not supported on traced values")


def _reduce_args(name: str, dtype: Any, out: Any, initial: Any = None,
                 where: Any = True) -> None:
    _no_extras(name, {"out": out, "initial": initial, "where": where})
    if dtype is not None and _np.dtype(dtype).kind not in "fc":
        raise TracerError(f"{name}(..., dtype={dtype}) on a traced value: the derivative "
                          f"needs a floating-point dtype")


@implements(_np.sum)
def sum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,  # noqa: A001
        keepdims: bool = False, initial: Any = None, where: Any = True) -> Any:
    _reduce_args("sum", dtype, out, initial, where)
    a = _arr(a)
    x = a if dtype is None else astype(a, dtype)
    return R.sum_(x, _axes(x, axis), builtins.bool(keepdims))


@implements(_np.mean)
def mean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
         keepdims: bool = False, *, where: Any = True) -> Any:
    _reduce_args("mean", dtype, out, None, where)
    a = _arr(a)
    x = a if dtype is None else astype(a, dtype)
    return R.mean(x, _axes(x, axis), builtins.bool(keepdims))


@implements(_np.prod)
def prod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
         keepdims: bool = False, initial: Any = None, where: Any = True) -> Any:
    _reduce_args("prod", dtype, out, initial, where)
    a = _arr(a)
    x = a if dtype is None else astype(a, dtype)
    return R.prod(x, _axes(x, axis), builtins.bool(keepdims))


@implements(_np.max, _np.amax)
def max(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,  # noqa: A001
        initial: Any = None, where: Any = True) -> Any:
    _reduce_args("max", None, out, initial, where)
    x = _arr(a)
    return R.max_(x, _axes(x, axis), builtins.bool(keepdims))


@implements(_np.min, _np.amin)
def min(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,  # noqa: A001
        initial: Any = None, where: Any = True) -> Any:
    _reduce_args("min", None, out, initial, where)
    x = _arr(a)
    return R.min_(x, _axes(x, axis), builtins.bool(keepdims))


amax, amin = max, min


@implements(name="logsumexp")
def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False) -> Any:
    """R.log(sum(b * R.exp(a))) computed without overflow (the max is subtracted first), with
    the signature of ``scipy.special.logsumexp``."""
    ax = _axes(a, axis)
    kd = builtins.bool(keepdims)
    if b is None and not return_sign:
        return R.logsumexp(a, ax, kd)
    av = _np.asarray(getval(a))
    m = _np.max(av, axis=ax, keepdims=True) if av.size else _np.zeros(())
    m = _np.where(_np.isfinite(m), m, 0.0)       # a constant shift: its derivative cancels
    e = R.exp(R.subtract(a, m))
    if b is not None:
        e = R.multiply(b, e)
    s = R.sum_(e, ax, True) if ax else e
    sv = getval(s)
    r = R.add(R.log(R.abs_(s) if return_sign or _np.any(sv < 0) else s), m)
    if not kd:
        r = squeeze(r, ax) if ax else r
    if return_sign:
        sg = _np.sign(sv)
        return r, (sg if kd or not ax else _np.squeeze(sg, ax))
    return r


@implements(name="softmax")
def softmax(x: Any, axis: int = -1) -> Any:
    """exp(x) / sum(exp(x)) along ``axis``, stable for inputs of any size."""
    return R.softmax(x, _axes(x, axis)[0])


@implements(_np.var)
def var(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: float = 0,
        keepdims: bool = False, *, where: Any = True, mean: Any = None,
        correction: Any = None) -> Any:
    _reduce_args("var", dtype, out, None, where)
    _no_extras("var", {"mean": mean})
    a = _arr(a)
    if correction is not None:
        ddof = correction
    x = a if dtype is None else astype(a, dtype)
    ax = _axes(x, axis)
    n = _math.prod(_shape(x)[a] for a in ax)
    d = R.subtract(x, R.mean(x, ax, True))
    # |d|^2: the variance of complex entries is real, as NumPy's
    return R.divide(R.sum_(R.abs2(d), ax, builtins.bool(keepdims)), float(n - ddof))


@implements(_np.std)
def std(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: float = 0,
        keepdims: bool = False, *, where: Any = True, mean: Any = None,
        correction: Any = None) -> Any:
    """sqrt(var); where the variance is 0 (one entry, or all equal) the derivative is 0,
    not 0 * inf: the square root is taken of a safe 1 there and the result replaced by 0."""
    v = var(a, axis, dtype, out, ddof, keepdims, where=where, mean=mean,
            correction=correction)
    vv = getval(v)
    if not any_value(vv == 0):
        return R.sqrt(v)
    pos = as_value(vv != 0)      # NaN (a NaN or inf entry) stays NaN, as in NumPy
    return R.where(pos, R.sqrt(R.where(pos, v, 1.0)), 0.0)


@implements(_np.where)
def where(cond: Any, x: Any = None, y: Any = None) -> Any:
    if x is None and y is None:
        return _np.where(getval(cond))
    c = getval(cond)     # a batch tracer (vmap) stays one: its rule batches the choice
    return R.where(as_value(c, builtins.bool), x, y)


@implements(_np.clip)
def clip(a: Any, a_min: Any = _DEFAULT, a_max: Any = _DEFAULT, out: Any = None, *,
         min: Any = _DEFAULT, max: Any = _DEFAULT, **kw: Any) -> Any:  # noqa: A002
    _no_extras("clip", {"out": out, **kw})
    x = a
    lo = a_min if min is _DEFAULT else min
    hi = a_max if max is _DEFAULT else max
    lo = None if lo is _DEFAULT else lo
    hi = None if hi is _DEFAULT else hi
    if lo is not None:
        x = R.maximum(x, lo)
    if hi is not None:
        x = R.minimum(x, hi)
    return x


# ---------------------------------------------------------------- products


@implements(_np.dot)
def dot(a: Any, b: Any, out: Any = None) -> Any:
    _no_extras("dot", {"out": out})
    an, bn = _ndim(a), _ndim(b)
    if an == 0 or bn == 0:
        return R.multiply(a, b)
    if bn <= 2:
        return R.matmul(a, b)
    la = _letters(an)
    lb = _letters(bn, skip=la)
    lb = lb[:-2] + la[-1] + lb[-1]
    return R.einsum(a, b, spec=f"{la},{lb}->{la[:-1]}{lb[:-2]}{lb[-1]}")


@implements(_np.vdot)
def vdot(a: Any, b: Any) -> Any:
    """sum(conj(a) * b) over the flattened arrays (NumPy conjugates the first)."""
    return sum(R.multiply(conj(ravel(_arr(a))), ravel(_arr(b))))


@implements(_np.inner)
def inner(a: Any, b: Any) -> Any:
    if _ndim(a) == 0 or _ndim(b) == 0:
        return R.multiply(a, b)
    la = _letters(_ndim(a))
    lb = _letters(_ndim(b), skip=la)
    lb = lb[:-1] + la[-1]
    return R.einsum(a, b, spec=f"{la},{lb}->{la[:-1]}{lb[:-1]}")


@implements(_np.outer)
def outer(a: Any, b: Any, out: Any = None) -> Any:
    _no_extras("outer", {"out": out})
    return R.multiply(reshape(a, (-1, 1)), reshape(b, (1, -1)))


@implements(_np.tensordot)
def tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    an, bn = _ndim(a), _ndim(b)
    if isinstance(axes, int):
        axa, axb = list(range(an - axes, an)), list(range(axes))
    else:
        axa, axb = axes
        axa = [axa] if isinstance(axa, int) else list(axa)
        axb = [axb] if isinstance(axb, int) else list(axb)
    la = _letters(an)
    lb = list(_letters(bn, skip=la))
    for i, j in zip(axa, axb):
        lb[j % bn] = la[i % an]
    lb = "".join(lb)
    out = "".join(c for i, c in enumerate(la) if i not in [k % an for k in axa])
    out += "".join(c for j, c in enumerate(lb) if j not in [k % bn for k in axb])
    return R.einsum(a, b, spec=f"{la},{lb}->{out}")


_ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _letters(n: int, skip: str = "") -> str:
    free = [c for c in _ALPHA if c not in skip]
    return "".join(free[:n])


def _sublist_to_subscripts(*args: Any) -> tuple[str, tuple[Any, ...]]:
    """einsum(op0, sublist0, op1, sublist1, ..., [sublistout]) as subscripts and operands."""
    args = list(args)
    out = args.pop() if len(args) % 2 else None

    def letters(sub: Any) -> str:
        return "".join("..." if k is Ellipsis else _ALPHA[int(k)] for k in sub)

    ops = tuple(args[0::2])
    spec = ",".join(letters(s) for s in args[1::2])
    if out is not None:
        spec += "->" + letters(out)
    return spec, ops


@implements(_np.einsum)
def einsum(subscripts: str, *operands: Any, **kw: Any) -> Any:
    """Einstein summation with derivatives for any number of operands. Ellipses are
    expanded into explicit indices; an implicit output follows NumPy's rule."""
    kw.pop("optimize", None)
    if kw:
        raise TypeError(f"einsum() got unsupported arguments {sorted(kw)}")
    if not isinstance(subscripts, str):
        subscripts, operands = _sublist_to_subscripts(subscripts, *operands)
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        ins_s, out = spec.split("->")
    else:
        ins_s, out = spec, None
    ins = ins_s.split(",")
    if len(ins) != len(operands):
        raise ValueError(f"einsum: {len(ins)} operand subscripts for {len(operands)} operands")
    used = set(spec) - set(".,->")
    free = [c for c in _ALPHA if c not in used]
    ell = ""
    if "..." in spec:
        n_ell = builtins.max(_ndim(o) - (len(s) - 3) for s, o in zip(ins, operands)
                             if "..." in s)
        ell = "".join(free[:n_ell])
        new_ins = []
        for s, o in zip(ins, operands):
            if "..." in s:
                k = _ndim(o) - (len(s) - 3)
                s = s.replace("...", ell[n_ell - k:])
            new_ins.append(s)
        ins = new_ins
    if out is None:
        counts: dict[str, int] = {}
        for s in ins:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    operands = list(operands)
    for k, (s, o) in enumerate(zip(ins, operands)):
        # an index repeated within one operand ('ii->i', 'ii'): take that diagonal first
        while len(set(s)) < len(s):
            c = next(c for c in s if s.count(c) > 1)
            i, j = s.index(c), s.index(c, s.index(c) + 1)
            o = diagonal(o, 0, i, j)
            s = s[:i] + s[i + 1:j] + s[j + 1:] + c
        ins[k], operands[k] = s, o
    return R.einsum(*operands, spec=",".join(ins) + "->" + out)


# ---------------------------------------------------------------- shape


@implements(_np.reshape)
def reshape(a: Any, shape: Any = None, order: str = "C", *, copy: Any = None,
            newshape: Any = None) -> Any:
    x = a
    if shape is None:
        shape = newshape
    if order != "C":
        raise TracerError("reshape: only order='C' is supported on traced values")
    if isinstance(shape, (int, _np.integer)):
        shape = (int(shape),)
    shape = tuple(int(s) for s in shape)
    if -1 in shape:
        shape = _resolve(shape, _shape(x))
    if _np.prod(shape, dtype=_np.int64) != _np.prod(_shape(x), dtype=_np.int64):
        raise ValueError(f"cannot reshape an array of shape {_shape(x)} into shape {shape}")
    return R.reshape(x, shape)


def _resolve(shape: tuple[int, ...], xs: tuple[int, ...]) -> tuple[int, ...]:
    known = int(_np.prod([s for s in shape if s != -1], dtype=_np.int64))
    total = int(_np.prod(xs, dtype=_np.int64))
    if known == 0 or total % known:
        raise ValueError(f"cannot reshape an array of shape {xs} into shape {shape}")
    return tuple(total // known if s == -1 else s for s in shape)


@implements(_np.ravel)
def ravel(a: Any, order: str = "C") -> Any:
    x = a
    return reshape(x, (-1,), order)


@implements(_np.transpose, *_opt("permute_dims"))
def transpose(a: Any, axes: Any = None) -> Any:
    x = a
    nd = _ndim(x)
    axes = tuple(range(nd))[::-1] if axes is None else tuple(int(a) % nd for a in axes)
    if axes == tuple(range(nd)):
        return x
    return R.transpose(x, axes)


@implements(_np.swapaxes)
def swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    x = a
    nd = _ndim(x)
    perm = list(range(nd))
    perm[axis1 % nd], perm[axis2 % nd] = perm[axis2 % nd], perm[axis1 % nd]
    return transpose(x, perm)


@implements(_np.moveaxis)
def moveaxis(a: Any, source: Any, destination: Any) -> Any:
    x = a
    nd = _ndim(x)
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [s % nd for s in src]
    dst = [d % nd for d in dst]
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


@implements(_np.expand_dims)
def expand_dims(a: Any, axis: Any) -> Any:
    x = a
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    nd = _ndim(x) + len(axes)
    axes = sorted(a % nd for a in axes)
    shape = list(_shape(x))
    for a in axes:
        shape.insert(a, 1)
    return R.reshape(x, tuple(shape))


@implements(_np.squeeze)
def squeeze(a: Any, axis: Any = None) -> Any:
    x = a
    xs = _shape(x)
    if axis is None:
        shape = tuple(s for s in xs if s != 1)
    else:
        axes = {a % len(xs) for a in ((axis,) if isinstance(axis, int) else axis)}
        for a in axes:
            if xs[a] != 1:
                raise ValueError("cannot select an axis to squeeze out which has size not "
                                 "equal to one")
        shape = tuple(s for i, s in enumerate(xs) if i not in axes)
    return R.reshape(x, shape)


@implements(_np.broadcast_to)
def broadcast_to(array: Any, shape: Any, subok: bool = False) -> Any:
    x = array
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return x if _shape(x) == shape else R.broadcast_to(x, shape)


@implements(_np.atleast_1d)
def atleast_1d(x: Any) -> Any:
    return reshape(x, (1,)) if _ndim(x) == 0 else x


@implements(_np.concatenate, *_opt("concat"))
def concatenate(arrays: Sequence[Any], axis: int | None = 0, out: Any = None, *,
                dtype: Any = None, casting: str = "same_kind") -> Any:
    _no_extras("concatenate", {"out": out})
    if dtype is not None:
        arrays = [astype(a, dtype) for a in arrays]
    arrays = list(arrays)
    if axis is None:
        arrays = [ravel(a) for a in arrays]
        axis = 0
    nd = _ndim(arrays[0])
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    return R.concatenate(*arrays, axis=(axis % nd) - nd)


@implements(_np.stack)
def stack(arrays: Sequence[Any], axis: int = 0, **kw: Any) -> Any:
    arrays = list(arrays)
    if not arrays:
        raise ValueError("need at least one array to stack")
    nd = _ndim(arrays[0]) + 1
    return concatenate([expand_dims(a, axis % nd) for a in arrays], axis=axis % nd)


@implements(_np.hstack)
def hstack(tup: Sequence[Any], *, dtype: Any = None, casting: str = "same_kind") -> Any:
    arrays = [atleast_1d(a if dtype is None else astype(a, dtype)) for a in tup]
    return concatenate(arrays, axis=0 if _ndim(arrays[0]) == 1 else 1)


@implements(_np.vstack, *_opt("row_stack"))
def vstack(tup: Sequence[Any], *, dtype: Any = None, casting: str = "same_kind") -> Any:
    if dtype is not None:
        tup = [astype(a, dtype) for a in tup]
    return concatenate([reshape(a, (1, -1)) if _ndim(a) < 2 else a for a in tup], axis=0)




def getitem(x: Any, idx: Any) -> Any:
    idx_t = idx if isinstance(idx, tuple) else (idx,)
    if builtins.any(k is None for k in idx_t):
        # np.newaxis: index without it, then reshape (basic indexing only)
        if builtins.any(isinstance(k, (_np.ndarray, list)) for k in idx_t):
            raise TracerError("indexing a traced array with np.newaxis and an index array "
                              "together is not supported: split it into two steps")
        target = _np.broadcast_to(_np.zeros((), _np.int8), _shape(x))[idx].shape
        inner = tuple(k for k in idx_t if k is not None)
        r = getitem(x, inner) if inner else x
        return R.reshape(r, target)
    return R.getitem(x, R.normalize_index(idx, _ndim(x)))


@implements(_np.take)
def take(a: Any, indices: Any, axis: int | None = None, out: Any = None,
         mode: str = "raise") -> Any:
    _no_extras("take", {"out": out})
    if mode != "raise":
        raise TracerError(f"take(..., mode={mode!r}) is not supported on traced values")
    x = a
    iv = getval(indices)
    indices = as_value(iv)      # vmap: per-example indices
    if axis is None:
        return getitem(ravel(x), indices)
    nd = _ndim(x)
    return getitem(x, (slice(None),) * (axis % nd) + (indices,))


@implements(*_opt("astype"))
def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
    dt = _np.dtype(dtype)
    if dt.kind not in "fc":
        # an integer or boolean cast is piecewise constant: its derivative is zero, and
        # the result is a plain value (as JAX's, whose integer tangents are float0)
        v = getval(x)
        return v.astype(dt) if is_tracer(v) else _np.asarray(v).astype(dt)   # (vmap)
    if dt.kind == "f" and R.is_complex(x):
        x = R.real(x)   # NumPy drops the imaginary part (with a warning); JAX too
    return R.astype(x, dt)


@implements(_np.cumsum)
def cumsum(a: Any, axis: int | None = None, dtype: Any = None, out: Any = None) -> Any:
    _reduce_args("cumsum", dtype, out)
    x = a
    if axis is None:
        return R.cumsum(ravel(x), -1)
    return R.cumsum(x, _axes(x, axis)[0])


@implements(_np.flip)
def flip(m: Any, axis: Any = None) -> Any:
    x = m
    nd = _ndim(x)
    axes = range(nd) if axis is None else [a % nd for a in ((axis,) if isinstance(
        axis, int) else axis)]
    idx = tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(nd))
    return getitem(x, idx)


@implements(_np.diagonal)
def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """The diagonal of the (axis1, axis2) planes, as the last axis (NumPy's layout)."""
    nd = _ndim(a)
    i1, i2 = axis1 % nd, axis2 % nd
    x = moveaxis(a, (i1, i2), (nd - 2, nd - 1)) if (i1, i2) != (nd - 2, nd - 1) else a
    n, m = _shape(x)[-2:]
    k = builtins.max(0, builtins.min(n - builtins.max(-offset, 0), m - builtins.max(offset, 0)))
    rows = _np.arange(k) + builtins.max(-offset, 0)
    return getitem(x, (Ellipsis, rows, rows + offset))


@implements(_np.trace)
def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None,
          out: Any = None) -> Any:
    _reduce_args("trace", dtype, out)
    return sum(diagonal(a, offset, axis1, axis2), axis=-1)


@implements(_np.diag)
def diag(v: Any, k: int = 0) -> Any:
    if _ndim(v) == 2:
        return diagonal(v, k)
    if _ndim(v) != 1:
        raise ValueError("Input must be 1- or 2-d.")
    n = _shape(v)[0] + builtins.abs(k)
    rows = _np.arange(_shape(v)[0]) + builtins.max(-k, 0)
    # scatter into zeros: the adjoint of taking the diagonal
    return R.untake(v, (rows, rows + k), (n, n), 1)


def _tri_mask(x: Any, k: int, lower: bool) -> Any:
    n, m = (_shape(x) * 2)[-2:]           # a vector is broadcast to a square, as NumPy
    mask = _np.tri(n, m, k, dtype=bool)
    return mask if lower else ~_np.tri(n, m, k - 1, dtype=bool)


@implements(_np.tril)
def tril(m: Any, k: int = 0) -> Any:
    return R.where(_tri_mask(m, k, True), m, 0.0)


@implements(_np.triu)
def triu(m: Any, k: int = 0) -> Any:
    return R.where(_tri_mask(m, k, False), m, 0.0)


@implements(_np.atleast_2d)
def atleast_2d(*arys: Any) -> Any:
    out = [reshape(a, (1,) * (2 - _ndim(a)) + _shape(a)) if _ndim(a) < 2 else a
           for a in arys]
    return out[0] if len(out) == 1 else tuple(out)


@implements(_np.atleast_3d)
def atleast_3d(*arys: Any) -> Any:
    out = []
    for a in arys:
        s = _shape(a)
        if len(s) == 0:
            a = reshape(a, (1, 1, 1))
        elif len(s) == 1:
            a = reshape(a, (1, s[0], 1))
        elif len(s) == 2:
            a = reshape(a, s + (1,))
        out.append(a)
    return out[0] if len(out) == 1 else tuple(out)


@implements(_np.column_stack)
def column_stack(tup: Sequence[Any]) -> Any:
    return concatenate([reshape(a, (-1, 1)) if _ndim(a) < 2 else a for a in tup], axis=1)


@implements(_np.dstack)
def dstack(tup: Sequence[Any]) -> Any:
    return concatenate([atleast_3d(a) for a in tup], axis=2)


@implements(_np.append)
def append(arr: Any, values: Any, axis: Any = None) -> Any:
    arr, values = _arr(arr), _arr(values)
    if axis is None:
        return concatenate([ravel(arr), ravel(values)])
    return concatenate([arr, values], axis=axis)


@implements(_np.diff)
def diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = _DEFAULT,
         append: Any = _DEFAULT) -> Any:  # noqa: A002
    nd = _ndim(a)
    ax = axis % nd
    parts = []
    for extra in (prepend, append):
        if extra is _DEFAULT:
            parts.append(None)
            continue
        if _ndim(extra) == 0:
            shape = list(_shape(a))
            shape[ax] = 1
            extra = broadcast_to(extra, tuple(shape))
        parts.append(extra)
    if parts[0] is not None or parts[1] is not None:
        a = concatenate([p for p in (parts[0], a, parts[1]) if p is not None], axis=ax)
    for _ in range(n):
        m = _shape(a)[ax]
        hi = (slice(None),) * ax + (slice(1, m),)
        lo = (slice(None),) * ax + (slice(0, m - 1),)
        a = R.subtract(getitem(a, hi), getitem(a, lo))
    return a


@implements(_np.roll)
def roll(a: Any, shift: Any, axis: Any = None) -> Any:
    if _contains_tracer(shift):
        raise TracerError("roll: the shift cannot be a traced value (it is an index)")
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), _shape(a))
    shifts = (shift,) if isinstance(shift, (int, _np.integer)) else tuple(shift)
    axes = (axis,) if isinstance(axis, (int, _np.integer)) else tuple(axis)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    for sh, ax in zip(shifts, axes):
        n = _shape(a)[ax]
        a = take(a, (_np.arange(n) - sh) % n, axis=ax) if n else a
    return a


@implements(_np.pad)
def pad(array: Any, pad_width: Any, mode: str = "constant", **kwargs: Any) -> Any:
    """Padding as gathers of the input's entries (edge, reflect, symmetric, wrap...) and,
    for a constant, a scatter into the constant: every mode is differentiable."""
    nd = _ndim(array)
    pw = _np.broadcast_to(_np.asarray(pad_width, dtype=_np.int64), (nd, 2))
    if mode == "constant":
        cv = kwargs.pop("constant_values", 0)
        _no_extras("pad", kwargs)
        shape = tuple(int(s + lo + hi) for s, (lo, hi) in zip(_shape(array), pw))
        idx = tuple(slice(int(lo), int(lo + s)) for s, (lo, _) in zip(_shape(array), pw))
        out = R.untake(array, idx, shape, nd)
        if _np.any(_np.asarray(getval(cv)) != 0):
            inside = _np.zeros(shape, bool)
            inside[idx] = True
            cvv = _np.broadcast_to(_np.asarray(getval(cv), R.float_dtype(array)), (nd, 2))
            fill = _np.pad(_np.zeros(_shape(array), R.float_dtype(array)), pw, mode="constant",
                           constant_values=cvv)
            out = R.add(out, _np.where(inside, 0.0, fill))
        return out
    if callable(mode) or mode in ("mean", "median", "maximum", "minimum", "linear_ramp",
                                  "empty"):
        raise TracerError(f"pad(..., mode={mode!r}) is not supported on traced values")
    for ax in range(nd):
        n = _shape(array)[ax]
        idx = _np.pad(_np.arange(n), (int(pw[ax][0]), int(pw[ax][1])), mode=mode, **kwargs)
        array = take(array, idx, axis=ax)
    return array


@implements(_np.kron)
def kron(a: Any, b: Any) -> Any:
    nd = builtins.max(_ndim(a), _ndim(b))
    sa = (1,) * (nd - _ndim(a)) + _shape(a)
    sb = (1,) * (nd - _ndim(b)) + _shape(b)
    ea = reshape(a, tuple(k for s in sa for k in (s, 1)))
    eb = reshape(b, tuple(k for s in sb for k in (1, s)))
    return reshape(R.multiply(ea, eb), tuple(x * y for x, y in zip(sa, sb)))


def _split(ary: Any, indices_or_sections: Any, axis: int, exact: bool) -> list[Any]:
    nd = _ndim(ary)
    ax = axis % nd
    n = _shape(ary)[ax]
    fn = _np.split if exact else _np.array_split
    pieces = fn(_np.arange(n), indices_or_sections)
    out = []
    for p in pieces:
        lo = int(p[0]) if p.size else 0
        if not p.size:
            lo = builtins.min(lo, n)
        idx = (slice(None),) * ax + (slice(lo, lo + p.size),)
        out.append(getitem(ary, idx))
    return out


@implements(_np.split)
def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    return _split(ary, indices_or_sections, axis, True)


@implements(_np.array_split)
def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    return _split(ary, indices_or_sections, axis, False)


@implements(_np.hsplit)
def hsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    return _split(ary, indices_or_sections, 1 if _ndim(ary) > 1 else 0, True)


@implements(_np.vsplit)
def vsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    return _split(ary, indices_or_sections, 0, True)


@implements(_np.dsplit)
def dsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    return _split(ary, indices_or_sections, 2, True)


@implements(_np.linspace)
def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
             retstep: bool = False, dtype: Any = None, axis: int = 0, *,
             device: Any = None) -> Any:
    """start + (stop - start) t for t = 0, 1/(num-1), ..., 1: linear in both ends."""
    div = (num - 1) if endpoint else num
    shape = _np.broadcast_shapes(_shape(start), _shape(stop))
    t = _np.arange(num, dtype=_np.float64).reshape((num,) + (1,) * len(shape))
    delta = R.subtract(stop, start)
    step = R.divide(delta, float(div)) if div > 0 else R.multiply(delta, _np.nan)
    out = R.add(start, R.multiply(t, step)) if div > 0 else \
        R.add(start, R.multiply(t, delta))
    if endpoint and num > 1:   # the last point is stop itself, as NumPy's
        last = expand_dims(broadcast_to(stop, shape), 0)
        out = concatenate([getitem(out, slice(0, num - 1)), last], axis=0)
    if axis != 0:
        out = moveaxis(out, 0, axis)
    if dtype is not None:
        out = astype(out, dtype)
    return (out, step) if retstep else out


@implements(_np.meshgrid)
def meshgrid(*xi: Any, copy: bool = True, sparse: bool = False,
             indexing: str = "xy") -> list[Any]:
    nd = len(xi)
    outs = []
    for i, x in enumerate(xi):
        shape = [1] * nd
        shape[i] = -1
        outs.append(reshape(x, tuple(shape)))
    if indexing == "xy" and nd > 1:
        for k, o in enumerate(outs):
            s = list(_shape(o))
            s[0], s[1] = s[1], s[0]
            outs[k] = reshape(o, tuple(s))
    if not sparse:
        full = _np.broadcast_shapes(*[_shape(o) for o in outs])
        outs = [broadcast_to(o, full) for o in outs]
    return outs


@implements(_np.ascontiguousarray, _np.asfortranarray)
def ascontiguousarray(a: Any, dtype: Any = None, *, like: Any = None) -> Any:
    a = _arr(a)
    return a if dtype is None else astype(a, dtype)


@implements(_np.real)
def real(val: Any) -> Any:
    val = _arr(val)
    return R.real(val) if R.is_complex(val) else val


@implements(_np.conj, _np.conjugate)
def conj(x: Any) -> Any:
    x = _arr(x)
    return R.conj(x) if R.is_complex(x) else x


@implements(_np.imag)
def imag(val: Any) -> Any:
    val = _arr(val)
    # the imaginary part of a real value is 0 with derivative 0, in the graph (a choice
    # of 0 everywhere: not a multiple of it, which would make 0 * inf a NaN)
    return R.imag(val) if R.is_complex(val) else R.where(True, 0.0, val)


@implements(_np.angle)
def angle(z: Any, deg: bool = False) -> Any:
    z = _arr(z)
    if R.is_complex(z):
        r = R.angle(z)
    else:
        # 0 or pi: piecewise constant in a real argument, derivative 0 (as JAX)
        r = R.add(R.where(True, 0.0, z), _np.angle(getval(z)))
    return R.multiply(r, 180.0 / _np.pi) if deg else r


@implements(_np.real_if_close)
def real_if_close(a: Any, tol: float = 100) -> Any:
    """The real part where every imaginary part is within ``tol`` machine epsilons of 0
    (decided on the values, as NumPy), else ``a`` itself."""
    a = _arr(a)
    if not R.is_complex(a):
        return a
    v = _np.asarray(getval(a))
    if tol > 1:
        tol = tol * _np.finfo(v.dtype).eps
    return R.real(a) if _np.all(_np.abs(_np.imag(v)) < tol) else a


def _real_only(name: str, x: Any) -> None:
    if R.is_complex(x):
        raise TracerError(f"{name} of a complex traced value has no derivative rule in "
                          f"chainrule (its real rule would be wrong for complex entries)")


@implements(_np.take_along_axis)
def take_along_axis(arr: Any, indices: Any, axis: int = -1) -> Any:
    x = arr
    iv = getval(indices)
    if is_tracer(iv):       # vmap: indices of their own for every example
        return _take_batched(x, iv, axis, R.getitem)
    indices = _np.asarray(iv)
    nd = _ndim(x)
    axis %= nd
    idx = []
    for i in range(nd):
        if i == axis:
            idx.append(indices)
        else:
            shape = [1] * nd
            shape[i] = _shape(x)[i]
            idx.append(_np.arange(_shape(x)[i]).reshape(shape))
    return getitem(x, tuple(_np.broadcast_arrays(*idx)))


@implements(_np.sort)
def sort(a: Any, axis: int = -1, kind: Any = None, order: Any = None, *,
         stable: Any = None) -> Any:
    _no_extras("sort", {"order": order})
    x = a
    """Sorted values; the derivative follows each entry to its place (ties in NumPy's
    stable order)."""
    order = _np.argsort(getval(x), axis=axis, kind="stable")
    return take_along_axis(x, order, axis)


@implements(_np.partition)
def partition(a: Any, kth: Any, axis: int | None = -1, kind: str = "introselect",
              order: Any = None) -> Any:
    """NumPy's partition; the derivative follows each entry to its place (the places of
    NumPy's argpartition)."""
    _no_extras("partition", {"order": order})
    x = _arr(a)
    if axis is None:
        x, axis = ravel(x), -1
    idx = _np.argpartition(getval(x), kth, axis=axis, kind=kind)
    return take_along_axis(x, idx, axis)


@implements(_np.repeat)
def repeat(a: Any, repeats: int, axis: int | None = None) -> Any:
    x = a
    if axis is None:
        x, axis = ravel(x), 0
    n = _shape(x)[axis]
    return take(x, _np.repeat(_np.arange(n), repeats), axis=axis)


@implements(_np.tile)
def tile(A: Any, reps: Any) -> Any:  # noqa: N803
    x = A
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    out = x
    nd = builtins.max(_ndim(x), len(reps))
    out = reshape(out, (1,) * (nd - _ndim(x)) + _shape(x))
    reps = (1,) * (nd - len(reps)) + reps
    for ax, r in enumerate(reps):
        if r != 1:
            n = _shape(out)[ax]
            out = take(out, _np.tile(_np.arange(n), r), axis=ax)
    return out


@implements(_np.linalg.solve)
def linalg_solve(a: Any, b: Any) -> Any:
    """x with a @ x = b (through the inverse: fine for the small systems of a derivation)."""
    if _ndim(b) == _ndim(a) - 1:
        return reshape(R.matmul(R.inv(a), reshape(b, _shape(b) + (1,))), _shape(b))
    return R.matmul(R.inv(a), b)


class EighResult(_nt("EighResult", "eigenvalues eigenvectors")):  # type: ignore[misc]
    """numpy.linalg.eigh's result: (w, V)."""


class SVDResult(_nt("SVDResult", "U S Vh")):  # type: ignore[misc]
    """numpy.linalg.svd's result: (U, S, Vh)."""


class QRResult(_nt("QRResult", "Q R")):  # type: ignore[misc]
    """numpy.linalg.qr's result: (Q, R)."""


class SlogdetResult(_nt("SlogdetResult", "sign logabsdet")):  # type: ignore[misc]
    """numpy.linalg.slogdet's result: (sign, log |det|)."""


@implements(_np.linalg.cholesky)
def cholesky(a: Any, /, *, upper: bool = False) -> Any:
    _real_only("numpy.linalg.cholesky", a)
    low = R.cholesky(a)
    return R.swap_last(low) if upper else low


@implements(_np.linalg.eigh)
def eigh(a: Any, UPLO: str = "L") -> Any:  # noqa: N803
    """Eigenvalues and eigenvectors of the symmetric part (A + A^T) / 2, as JAX's."""
    return EighResult(R.eigh_w(a), R.eigh_v(a))


class EigResult(_nt("EigResult", "eigenvalues eigenvectors")):  # type: ignore[misc]
    """numpy.linalg.eig's result: (w, V), always complex (as JAX's)."""


@implements(_np.linalg.eig)
def eig(a: Any) -> Any:
    """Eigenvalues and unit eigenvectors of a square matrix. The eigenvectors' phase is
    arbitrary: differentiate functions that do not depend on it (abs(V), V V^H)."""
    return EigResult(R.eig_w(a), R.eig_v(a))


@implements(_np.linalg.eigvals)
def eigvals(a: Any) -> Any:
    return R.eig_w(a)


@implements(_np.linalg.eigvalsh)
def eigvalsh(a: Any, UPLO: str = "L") -> Any:  # noqa: N803
    return R.eigh_w(a)


@implements(_np.linalg.svd)
def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True,
        hermitian: bool = False) -> Any:
    if not compute_uv:
        return R.svd_s(a)
    m, n = _shape(a)[-2:]
    if full_matrices and m != n:
        raise TracerError("svd(..., full_matrices=True) of a non-square traced matrix has no "
                          "unique derivative: pass full_matrices=False")
    return SVDResult(R.svd_u(a), R.svd_s(a), R.svd_vh(a))


@implements(_np.linalg.svdvals)
def svdvals(x: Any, /) -> Any:
    return R.svd_s(x)


@implements(_np.linalg.qr)
def qr(a: Any, mode: str = "reduced") -> Any:
    _real_only("numpy.linalg.qr", a)
    if mode == "r":
        return R.qr_r(a)
    if mode != "reduced":
        raise TracerError(f"qr(..., mode={mode!r}) is not supported on traced values")
    return QRResult(R.qr_q(a), R.qr_r(a))


@implements(_np.linalg.slogdet)
def slogdet(a: Any) -> Any:
    _real_only("numpy.linalg.slogdet", a)
    return SlogdetResult(_np.linalg.slogdet(getval(a))[0], R.logabsdet(a))


@implements(_np.linalg.pinv)
def pinv(a: Any, rcond: Any = None, hermitian: bool = False, *, rtol: Any = _DEFAULT) -> Any:
    if rcond is not None or rtol not in (_DEFAULT, None):
        raise TracerError("pinv(..., rcond=/rtol=) is not supported on traced values")
    _real_only("numpy.linalg.pinv", a)
    return R.pinv(a)


@implements(_np.linalg.matrix_power)
def matrix_power(a: Any, n: int) -> Any:
    if n < 0:
        a, n = R.inv(a), -n
    if n == 0:
        return _np.broadcast_to(_np.eye(_shape(a)[-1], dtype=R.float_dtype(a)), _shape(a)).copy()
    out = a
    for _ in range(n - 1):
        out = R.matmul(out, a)
    return out


@implements(_np.linalg.multi_dot)
def multi_dot(arrays: Sequence[Any], *, out: Any = None) -> Any:
    _no_extras("multi_dot", {"out": out})
    arrays = list(arrays)
    r = arrays[0]
    for b in arrays[1:]:
        r = dot(r, b)
    return r


@implements(_np.linalg.matmul)
def linalg_matmul(x1: Any, x2: Any, /) -> Any:
    return R.matmul(x1, x2)



@implements(_np.linalg.norm)
def linalg_norm(x: Any, ord: Any = None, axis: Any = None,  # noqa: A002
                keepdims: bool = False) -> Any:
    """Every order of numpy.linalg.norm: vector p-norms (inf, -inf, 0 included) and the
    matrix norms 'fro', 'nuc', 1, -1, inf, -inf, 2, -2 (the last three through the SVD)."""
    x = _arr(x)
    nd = _ndim(x)
    if axis is None:
        if ord is None or (ord == "fro" and nd == 2) or (ord == 2 and nd == 1):
            return R.sqrt(sum(R.abs2(x), keepdims=keepdims))
        axes = tuple(range(nd))
    else:
        axes = (axis,) if isinstance(axis, (int, _np.integer)) else tuple(axis)
    axes = tuple(a % nd for a in axes)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes[0], keepdims)
    if len(axes) != 2:
        raise ValueError("Improper number of dimensions to norm.")
    r = _matrix_norm(moveaxis(x, axes, (-2, -1)), ord)
    if keepdims:
        r = reshape(r, tuple(1 if i in axes else s for i, s in enumerate(_shape(x))))
    return r


def _vector_norm(x: Any, ord: Any, axis: int, keepdims: bool) -> Any:
    a = R.abs_(x)
    if ord is None or ord == 2:
        return R.sqrt(sum(R.abs2(x), axis=axis, keepdims=keepdims))
    if ord == _np.inf:
        return max(a, axis=axis, keepdims=keepdims)
    if ord == -_np.inf:
        return min(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        return sum(astype(getval(x) != 0, R.float_dtype(x)), axis=axis, keepdims=keepdims)
    if ord == 1:
        return sum(a, axis=axis, keepdims=keepdims)
    p = float(ord)
    return R.power(sum(R.power(a, p), axis=axis, keepdims=keepdims), 1.0 / p)


def _matrix_norm(x: Any, ord: Any) -> Any:
    if ord is None or ord == "fro":
        return R.sqrt(sum(R.abs2(x), axis=(-2, -1)))
    if ord == "nuc":
        return sum(R.svd_s(x), axis=-1)
    if ord in (2, -2):
        s = R.svd_s(x)
        return max(s, axis=-1) if ord == 2 else min(s, axis=-1)
    if ord in (1, -1):
        c = sum(R.abs_(x), axis=-2)
        return max(c, axis=-1) if ord == 1 else min(c, axis=-1)
    if ord in (_np.inf, -_np.inf):
        r = sum(R.abs_(x), axis=-1)
        return max(r, axis=-1) if ord > 0 else min(r, axis=-1)
    raise ValueError(f"Invalid norm order {ord!r} for matrices.")



@implements(name="array")
def array(obj: Any, dtype: Any = None, **kw: Any) -> Any:
    """Like np.array, but a (nested) list of traced values becomes a traced array."""
    if is_tracer(obj):
        return obj if dtype is None else astype(obj, dtype)
    if isinstance(obj, (list, tuple)) and _contains_tracer(obj):
        out = stack([array(o) for o in obj])
        return out if dtype is None else astype(out, dtype)
    return _np.array(obj, dtype=dtype, **kw)


EXPORTS["asarray"] = EXPORTS["asanyarray"] = asarray = array


def _contains_tracer(obj: Any) -> bool:
    if is_tracer(obj):
        return True
    if isinstance(obj, (list, tuple)):
        return builtins.any(_contains_tracer(o) for o in obj)
    return False


# ---------------------------------------------------------------- more of NumPy, composed


def _arr(a: Any) -> Any:
    """A (nested) list or tuple with traced values in it, as one traced array."""
    if isinstance(a, (list, tuple)) and _contains_tracer(a):
        return array(a)
    return a


@implements(_np.cumprod)
def cumprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    """Running products as masked products, prod(where(j <= k, x_j, 1)) over j: O(n^2)
    work, exact at zero entries (where a division by x would not be)."""
    _reduce_args("cumprod", dtype, out)
    x = _arr(a)
    if axis is None:
        x, axis = ravel(x), 0
    x = moveaxis(x, axis, -1)
    n = _shape(x)[-1]
    tri = _np.tri(n, dtype=bool)                        # [k, j]: j <= k
    rows = R.where(tri, expand_dims(x, -2), 1.0)        # (..., k, j)
    return moveaxis(prod(rows, axis=-1), -1, axis)


@implements(_np.cross)
def cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1,
          axis: Any = None) -> Any:
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = moveaxis(a, axisa, -1), moveaxis(b, axisb, -1)
    if _shape(a)[-1] != 3 or _shape(b)[-1] != 3:
        raise TracerError("cross on traced values supports 3-vectors")
    c = [R.subtract(R.multiply(a[..., (i + 1) % 3], b[..., (i + 2) % 3]),
                    R.multiply(a[..., (i + 2) % 3], b[..., (i + 1) % 3])) for i in range(3)]
    return moveaxis(stack(c, axis=-1), -1, axisc)


@implements(_np.average)
def average(a: Any, axis: Any = None, weights: Any = None, returned: bool = False, *,
            keepdims: bool = False) -> Any:
    a = _arr(a)
    if weights is None:
        r = mean(a, axis=axis, keepdims=keepdims)
        n = _np.size(getval(a)) / _np.size(getval(r))
        return (r, _np.full(_shape(r), n, R.float_dtype(a))) if returned else r
    w = _arr(weights)
    if axis is not None and _ndim(w) == 1 and _ndim(a) > 1:
        shape = [1] * _ndim(a)
        shape[axis % _ndim(a)] = _shape(w)[0]
        w = reshape(w, tuple(shape))
    w = broadcast_to(w, _shape(a)) if _shape(w) != _shape(a) else w
    sw = sum(w, axis=axis, keepdims=keepdims)
    r = R.divide(sum(R.multiply(a, w), axis=axis, keepdims=keepdims), sw)
    return (r, sw) if returned else r


@implements(_np.ptp)
def ptp(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False) -> Any:
    _no_extras("ptp", {"out": out})
    return R.subtract(max(a, axis=axis, keepdims=keepdims), min(a, axis=axis, keepdims=keepdims))


@implements(_np.nansum)
def nansum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
           keepdims: bool = False, initial: Any = None, where: Any = True) -> Any:
    _reduce_args("nansum", dtype, out, initial, where)
    return sum(R.where(_np.isnan(getval(a)), 0.0, a), axis=axis, keepdims=keepdims)


@implements(_np.nanmean)
def nanmean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
            keepdims: bool = False, *, where: Any = True) -> Any:
    _reduce_args("nanmean", dtype, out, None, where)
    ok = ~_np.isnan(getval(a))
    n = _np.sum(ok, axis=axis, keepdims=keepdims)
    return R.divide(nansum(a, axis=axis, keepdims=keepdims), n.astype(R.float_dtype(a)))


@implements(_np.nan_to_num)
def nan_to_num(x: Any, copy: bool = True, nan: float = 0.0, posinf: Any = None,
               neginf: Any = None) -> Any:
    v = getval(x)
    fi = _np.finfo(R.float_dtype(x))
    big = fi.max if posinf is None else posinf
    small = fi.min if neginf is None else neginf
    r = R.where(_np.isnan(v), nan, x)
    r = R.where(_np.isposinf(v), big, r)
    return R.where(_np.isneginf(v), small, r)


@implements(_np.cov)
def cov(m: Any, y: Any = None, rowvar: bool = True, bias: bool = False, ddof: Any = None,
        fweights: Any = None, aweights: Any = None, *, dtype: Any = None) -> Any:
    if fweights is not None or aweights is not None:
        raise TracerError("cov(..., fweights=/aweights=) is not supported on traced values")
    x = atleast_2d(_arr(m))
    if not rowvar and _shape(x)[0] != 1:
        x = transpose(x)
    if y is not None:
        yy = atleast_2d(_arr(y))
        if not rowvar and _shape(yy)[0] != 1:
            yy = transpose(yy)
        x = concatenate([x, yy], axis=0)
    n = _shape(x)[1]
    dd = (0 if bias else 1) if ddof is None else ddof
    xc = R.subtract(x, mean(x, axis=1, keepdims=True))
    c = R.divide(R.matmul(xc, conj(transpose(xc))), float(n - dd))
    return squeeze(c) if _shape(c) == (1, 1) else c


@implements(_np.corrcoef)
def corrcoef(x: Any, y: Any = None, rowvar: bool = True, *, dtype: Any = None) -> Any:
    c = cov(x, y, rowvar)
    if _ndim(c) == 0:
        return R.divide(c, c)
    d = R.sqrt(real(diagonal(c)))
    return R.divide(R.divide(c, reshape(d, (-1, 1))), reshape(d, (1, -1)))


@implements(_np.interp)
def interp(x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None,
           period: Any = None) -> Any:
    """Piecewise-linear interpolation, differentiable in x, xp and fp."""
    if period is not None:
        raise TracerError("interp(..., period=) is not supported on traced values")
    xv, xpv = _np.asarray(getval(x)), _np.asarray(getval(xp))
    n = xpv.shape[0]
    i = _np.clip(_np.searchsorted(xpv, xv, side="right") - 1, 0, n - 2)
    x0, x1 = take(xp, i), take(xp, i + 1)
    f0, f1 = take(fp, i), take(fp, i + 1)
    t = R.divide(R.subtract(x, x0), R.subtract(x1, x0))
    r = R.add(f0, R.multiply(t, R.subtract(f1, f0)))
    lo = take(fp, 0) if left is None else left
    hi = take(fp, n - 1) if right is None else right
    r = R.where(xv < xpv[0], lo, r)
    return R.where(xv > xpv[-1], hi, r)


@implements(_np.polyval)
def polyval(p: Any, x: Any) -> Any:
    p = _arr(p)
    r = R.multiply(x, 0.0)
    for k in range(_shape(p)[0]):
        r = R.add(R.multiply(r, x), getitem(p, k))
    return r


def _conv_full(a: Any, v: Any) -> Any:
    """out[k] = sum_j a[j] v[k - j], as a gather and one product-sum."""
    n, m = _shape(a)[0], _shape(v)[0]
    ap = pad(a, (m - 1, m - 1))
    idx = _np.arange(n + m - 1)[:, None] + _np.arange(m)[None, :]
    return R.einsum(getitem(ap, idx), flip(v), spec="kj,j->k")


@implements(_np.convolve)
def convolve(a: Any, v: Any, mode: str = "full") -> Any:
    if _shape(v)[0] > _shape(a)[0]:
        a, v = v, a
    full = _conv_full(a, v)
    n, m = _shape(a)[0], _shape(v)[0]
    if mode == "full":
        return full
    if mode == "same":
        start = (m - 1) // 2
        return getitem(full, slice(start, start + n))
    if mode == "valid":
        return getitem(full, slice(m - 1, n))
    raise ValueError(f"mode {mode!r} not recognised")


@implements(_np.correlate)
def correlate(a: Any, v: Any, mode: str = "valid") -> Any:
    return convolve(a, flip(conj(_arr(v))), mode)   # NumPy conjugates v


@implements(_np.rot90)
def rot90(m: Any, k: int = 1, axes: Any = (0, 1)) -> Any:
    k %= 4
    a0, a1 = axes
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, a0), a1)
    if k == 1:
        return swapaxes(flip(m, a1), a0, a1)
    return flip(swapaxes(m, a0, a1), a1)


@implements(_np.fliplr)
def fliplr(m: Any) -> Any:
    return flip(m, 1)


@implements(_np.flipud)
def flipud(m: Any) -> Any:
    return flip(m, 0)


@implements(_np.sinc)
def sinc(x: Any) -> Any:
    """sin(pi x) / (pi x); near 0 its Maclaurin series 1 - z/6 + z^2/120 - z^3/5040,
    z = (pi x)^2, so that the derivatives at 0 exist (sinc''(0) = -pi^2/3) and do not
    cancel to noise near it."""
    zero = _np.abs(getval(x)) < 0.05 / _np.pi     # the series to z^3: exact to rounding
    px = R.multiply(R.where(zero, 1.0, x), float(_np.pi))
    z = R.multiply(R.multiply(x, x), float(_np.pi ** 2))
    series = R.add(R.multiply(z, R.add(R.multiply(z, R.subtract(
        1.0 / 120.0, R.divide(z, 5040.0))), -1.0 / 6.0)), 1.0)
    return R.where(zero, series, R.divide(R.sin(px), px))


@implements(_np.logaddexp2)
def logaddexp2(x1: Any, x2: Any) -> Any:
    ln2 = float(_np.log(2.0))
    return R.divide(R.logaddexp(R.multiply(x1, ln2), R.multiply(x2, ln2)), ln2)


@implements(_np.heaviside)
def heaviside(x1: Any, x2: Any) -> Any:
    """A step: its derivative in x1 is zero; it is x2 where x1 = 0 (derivative 1 there)."""
    a = getval(x1)
    zero = as_value(a == 0)
    if not is_tracer(x2) or not any_value(zero):
        return _np.heaviside(a, getval(x2))
    step = _np.heaviside(a, 0.0).astype(_np.result_type(a, getval(x2)))
    return R.where(zero, x2, step)


@implements(_np.select)
def select(condlist: Sequence[Any], choicelist: Sequence[Any], default: Any = 0) -> Any:
    r = default
    for c, v in reversed(list(zip(condlist, choicelist))):
        c = getval(c)
        r = R.where(as_value(c, bool), v, r)
    return r


@implements(_np.piecewise)
def piecewise(x: Any, condlist: Any, funclist: Any, *args: Any, **kw: Any) -> Any:
    conds = [_np.asarray(getval(c), bool) for c in (
        condlist if isinstance(condlist, list) else [condlist])]
    if len(funclist) == len(conds) + 1:
        conds.append(~_np.any(conds, axis=0))
    r = R.multiply(x, 0.0)
    for c, f in zip(conds, funclist):
        v = f(x, *args, **kw) if callable(f) else f
        r = R.where(c, v, r)
    return r


@implements(_np.unique)
def unique(ar: Any, return_index: bool = False, return_inverse: bool = False,
           return_counts: bool = False, axis: Any = None, *, equal_nan: bool = True,
           sorted: bool = True) -> Any:  # noqa: A002
    """The unique values, each taken from its first occurrence (so differentiable), and
    NumPy's index arrays."""
    if axis is not None:
        raise TracerError("unique(..., axis=) is not supported on traced values")
    v = _np.ravel(getval(ar))
    vals, first, inv_, counts = _np.unique(v, return_index=True, return_inverse=True,
                                           return_counts=True)
    out = [take(ravel(ar), first)]
    if return_index:
        out.append(first)
    if return_inverse:
        out.append(inv_.reshape(_np.shape(getval(ar))))
    if return_counts:
        out.append(counts)
    return out[0] if len(out) == 1 else tuple(out)


@implements(_np.rollaxis)
def rollaxis(a: Any, axis: int, start: int = 0) -> Any:
    nd = _ndim(a)
    axis %= nd
    start = start % (nd + 1) if start < 0 else start
    if axis < start:
        start -= 1
    return a if axis == start else moveaxis(a, axis, start)


@implements(_np.gradient)
def gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    """Central differences inside, one-sided at the ends (edge_order=1), with unit or
    scalar spacings: linear in f, as NumPy's."""
    if edge_order != 1:
        raise TracerError("gradient(..., edge_order=2) is not supported on traced values")
    nd = _ndim(f)
    axes = tuple(range(nd)) if axis is None else (
        (axis,) if isinstance(axis, (int, _np.integer)) else tuple(axis))
    axes = tuple(a % nd for a in axes)
    h = list(varargs) if varargs else [1.0] * len(axes)
    if len(h) == 1 and len(axes) > 1:
        h = h * len(axes)
    if builtins.any(_ndim(d) > 0 for d in h):
        raise TracerError("gradient with coordinate arrays is not supported on traced values")
    out = []
    for ax, d in zip(axes, h):
        n = _shape(f)[ax]

        def sl(lo: int, hi: int, ax: int = ax) -> Any:
            return getitem(f, (slice(None),) * ax + (slice(lo, hi),))

        first = R.subtract(sl(1, 2), sl(0, 1))
        last = R.subtract(sl(n - 1, n), sl(n - 2, n - 1))
        mid = R.multiply(R.subtract(sl(2, n), sl(0, n - 2)), 0.5)
        out.append(R.divide(concatenate([first, mid, last], axis=ax), float(getval(d))))
    return out[0] if len(out) == 1 else out


# ---------------------------------------------------------------- numpy.fft
# The n-dimensional transforms are the one-axis primitives in turn, as in NumPy's code.


def _fft_norm(norm: Any) -> str:
    if norm not in (None, "backward", "ortho", "forward"):
        raise ValueError(f"Invalid norm value {norm}; should be \"backward\", \"ortho\" or "
                         f"\"forward\".")
    return norm or "backward"


def _fft_axis(a: Any, axis: int) -> int:
    return axis % _ndim(a) - _ndim(a)


def _fft1(a: Any, n: Any, axis: int, norm: Any, inverse: bool, out: Any) -> Any:
    _no_extras("fft", {"out": out})
    a = _arr(a)
    ax = _fft_axis(a, axis)
    return R.fft_c(a, _shape(a)[ax] if n is None else int(n), ax, _fft_norm(norm), inverse)


@implements(_np.fft.fft)
def fft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    return _fft1(a, n, axis, norm, False, out)


@implements(_np.fft.ifft)
def ifft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    return _fft1(a, n, axis, norm, True, out)


@implements(_np.fft.rfft)
def rfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    _no_extras("rfft", {"out": out})
    a = _arr(a)
    if R.is_complex(a):
        raise TypeError("rfft of a complex array: use fft")
    ax = _fft_axis(a, axis)
    return R.rfft(a, _shape(a)[ax] if n is None else int(n), ax, _fft_norm(norm))


@implements(_np.fft.irfft)
def irfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    _no_extras("irfft", {"out": out})
    a = _arr(a)
    ax = _fft_axis(a, axis)
    n = 2 * (_shape(a)[ax] - 1) if n is None else int(n)
    if not R.is_complex(a):
        a = R.astype(a, _np.result_type(R.float_dtype(a), _np.complex64))
    return R.irfft(a, n, ax, _fft_norm(norm))


_SWAP_NORM = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


@implements(_np.fft.hfft)
def hfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    a = _arr(a)
    return irfft(conj(a), n, axis, _SWAP_NORM[_fft_norm(norm)], out)


@implements(_np.fft.ihfft)
def ihfft(a: Any, n: Any = None, axis: int = -1, norm: Any = None, out: Any = None) -> Any:
    return conj(rfft(a, n, axis, _SWAP_NORM[_fft_norm(norm)], out))


def _fft_axes(a: Any, s: Any, axes: Any, two: bool) -> tuple[list[Any], list[int]]:
    nd = _ndim(a)
    if axes is None:
        axes = [-2, -1] if two else (list(range(-len(s), 0)) if s is not None else
                                     list(range(-nd, 0)))
    axes = [int(x) for x in axes]
    ss = [None] * len(axes) if s is None else list(s)
    if len(ss) != len(axes):
        raise ValueError("Shape and axes have different lengths.")
    return ss, axes


def _fftn(a: Any, s: Any, axes: Any, norm: Any, inverse: bool, two: bool, out: Any) -> Any:
    ss, axes = _fft_axes(_arr(a), s, axes, two)
    a = _arr(a)
    for n, ax in reversed(list(zip(ss, axes))):
        a = _fft1(a, n, ax, norm, inverse, out)
    return a


@implements(_np.fft.fft2)
def fft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: Any = None,
         out: Any = None) -> Any:
    return _fftn(a, s, axes, norm, False, True, out)


@implements(_np.fft.ifft2)
def ifft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: Any = None,
          out: Any = None) -> Any:
    return _fftn(a, s, axes, norm, True, True, out)


@implements(_np.fft.fftn)
def fftn(a: Any, s: Any = None, axes: Any = None, norm: Any = None, out: Any = None) -> Any:
    return _fftn(a, s, axes, norm, False, False, out)


@implements(_np.fft.ifftn)
def ifftn(a: Any, s: Any = None, axes: Any = None, norm: Any = None, out: Any = None) -> Any:
    return _fftn(a, s, axes, norm, True, False, out)


def _rfftn(a: Any, s: Any, axes: Any, norm: Any, two: bool, out: Any) -> Any:
    a = _arr(a)
    ss, axes = _fft_axes(a, s, axes, two)
    a = rfft(a, ss[-1], axes[-1], norm, out)
    for n, ax in zip(ss[:-1], axes[:-1]):
        a = _fft1(a, n, ax, norm, False, out)
    return a


def _irfftn(a: Any, s: Any, axes: Any, norm: Any, two: bool, out: Any) -> Any:
    a = _arr(a)
    ss, axes = _fft_axes(a, s, axes, two)
    for n, ax in zip(ss[:-1], axes[:-1]):
        a = _fft1(a, n, ax, norm, True, out)
    return irfft(a, ss[-1], axes[-1], norm, out)


@implements(_np.fft.rfft2)
def rfft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: Any = None,
          out: Any = None) -> Any:
    return _rfftn(a, s, axes, norm, True, out)


@implements(_np.fft.irfft2)
def irfft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: Any = None,
           out: Any = None) -> Any:
    return _irfftn(a, s, axes, norm, True, out)


@implements(_np.fft.rfftn)
def rfftn(a: Any, s: Any = None, axes: Any = None, norm: Any = None, out: Any = None) -> Any:
    return _rfftn(a, s, axes, norm, False, out)


@implements(_np.fft.irfftn)
def irfftn(a: Any, s: Any = None, axes: Any = None, norm: Any = None,
           out: Any = None) -> Any:
    return _irfftn(a, s, axes, norm, False, out)


def _shift(x: Any, axes: Any, sign: int) -> Any:
    x = _arr(x)
    nd = _ndim(x)
    axes = range(nd) if axes is None else ((axes,) if isinstance(axes, (int, _np.integer))
                                           else axes)
    for ax in axes:
        x = roll(x, sign * (_shape(x)[ax] // 2), ax)
    return x


@implements(_np.fft.fftshift)
def fftshift(x: Any, axes: Any = None) -> Any:
    return _shift(x, axes, 1)


@implements(_np.fft.ifftshift)
def ifftshift(x: Any, axes: Any = None) -> Any:
    return _shift(x, axes, -1)


class _Concatenator:
    """np.r_ and np.c_ over traced values: slices become ranges, arrays are joined."""

    def __init__(self, columns: bool) -> None:
        self.columns = columns

    def __getitem__(self, key: Any) -> Any:
        items = key if isinstance(key, tuple) else (key,)
        if not builtins.any(is_tracer(k) for k in items):
            return (_np.c_ if self.columns else _np.r_)[key]
        parts = []
        for k in items:
            if isinstance(k, str):
                raise TracerError("np.r_/np.c_ with a directive string is not supported on "
                                  "traced values")
            if isinstance(k, slice):
                k = _np.r_[k]
            parts.append(k)
        dt = _np.result_type(*[getval(p) for p in parts])   # Python numbers are weak
        parts = [_np.asarray(p, dt) if isinstance(p, (int, float)) else p for p in parts]
        if self.columns:
            parts = [reshape(p, (-1, 1)) if _ndim(p) < 2 else p for p in parts]
            return concatenate(parts, axis=-1)
        return concatenate([atleast_1d(p) for p in parts], axis=0)


EXPORTS["r_"] = r_ = _Concatenator(False)
EXPORTS["c_"] = c_ = _Concatenator(True)


@implements(_np.shape)
def shape(a: Any) -> tuple[int, ...]:
    return _shape(_arr(a))


# ---------------------------------------------------------------- values only
# NumPy functions whose result carries no derivative (booleans, indices, shapes, counts):
# on traced values they run on the values, as JAX's do.


def _values_only(fn: Any) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        return fn(*[_value_tree(a) for a in args],
                  **{k: _value_tree(v) for k, v in kwargs.items()})

    run.__name__ = getattr(fn, "__name__", "values_only")
    run.values_only = True  # type: ignore[attr-defined]  # (vmap runs a ufunc on the batch)
    return run


def _value_tree(x: Any) -> Any:
    if is_tracer(x):
        return getval(x)
    if isinstance(x, (list, tuple)) and _contains_tracer(x):
        return type(x)(_value_tree(v) for v in x) if not hasattr(x, "_fields") else x
    return x


VALUE_ONLY = (
    # comparisons and predicates
    "greater", "greater_equal", "less", "less_equal", "equal", "not_equal", "isfinite",
    "isnan", "isinf", "isneginf", "isposinf", "signbit", "logical_and", "logical_or",
    "logical_not", "logical_xor", "isclose", "allclose", "array_equal", "array_equiv",
    "any", "all", "iscomplexobj", "isrealobj", "isreal", "iscomplex", "isscalar",
    # indices, counts and shapes
    "argmax", "argmin", "argsort", "argwhere", "nonzero", "flatnonzero", "count_nonzero",
    "searchsorted", "digitize", "shape", "ndim", "size", "result_type", "can_cast",
    "min_scalar_type", "nanargmax", "nanargmin", "argpartition", "lexsort", "bincount",
    "zeros_like", "ones_like", "empty_like", "isin", "in1d", "broadcast_shapes",
    "iterable", "may_share_memory", "shares_memory", "floor_divide", "isfortran",
)
# shapes without computing a deferred value
FUNCTIONS[_np.ndim] = lambda a: _ndim(a)
for _name in VALUE_ONLY:
    _obj = getattr(_np, _name, None)
    if _obj is not None and _obj not in UFUNCS and _obj not in FUNCTIONS:
        (UFUNCS if isinstance(_obj, _np.ufunc) else FUNCTIONS)[_obj] = _values_only(_obj)
        if not isinstance(_obj, _np.ufunc) and not hasattr(_obj, "_implementation"):
            EXPORTS[_name] = _values_only(_obj)   # NumPy does not dispatch it

core.install(_sys.modules[__name__], UFUNCS, FUNCTIONS)
globals().update({k: v for k, v in EXPORTS.items() if k not in globals()})
