"""The user-facing, NumPy-compatible functions over the primitives of ``rules.py``.

They normalise arguments (axes, index tuples, einsum subscripts) and compose primitives
(``stack`` is reshapes and a concatenate, ``clip`` is a maximum and a minimum). The maps
``UFUNCS`` and ``FUNCTIONS`` at the bottom are how plain ``numpy`` calls on traced values
arrive here (``__array_ufunc__`` / ``__array_function__``).
"""

from __future__ import annotations

import builtins
import sys as _sys
from collections.abc import Sequence
from typing import Any

import numpy as _np

from . import core
from . import rules as R
from .core import TracerError, getval, is_tracer

_shape = R._shape
_ndim = R._ndim

# ---------------------------------------------------------------- registration
# chainrule.numpy's differentiable names, and how NumPy's own calls on traced values
# arrive here (``__array_ufunc__`` / ``__array_function__``): both are generated, from the
# table of primitives (``rules.py``) and from the ``@implements`` functions of this module.
EXPORTS: dict[str, Any] = {}
LINALG: dict[str, Any] = {}
UFUNCS: dict[Any, Any] = {}
FUNCTIONS: dict[Any, Any] = {}


def _opt(name: str) -> tuple[Any, ...]:
    """NumPy's function ``name`` where this NumPy version has it."""
    obj = getattr(_np, name, None)
    return (obj,) if obj is not None else ()


def _numpy_names() -> dict[int, list[tuple[str, bool]]]:
    """id(NumPy object) -> its public names, and whether they are in numpy.linalg."""
    names: dict[int, list[tuple[str, bool]]] = {}
    for mod, is_linalg in ((_np, False), (_np.linalg, True)):
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
            (LINALG if is_linalg else EXPORTS)[n] = fn
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


@implements(_np.fmax)
def fmax(x1: Any, x2: Any) -> Any:
    """maximum; the same derivatives away from NaN."""
    return R.maximum(x1, x2)


@implements(_np.fmin)
def fmin(x1: Any, x2: Any) -> Any:
    return R.minimum(x1, x2)


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


_DEFAULT = _np._NoValue if hasattr(_np, "_NoValue") else None


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
    x = a if dtype is None else astype(a, dtype)
    return R.sum_(x, _axes(x, axis), builtins.bool(keepdims))


@implements(_np.mean)
def mean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
         keepdims: bool = False, *, where: Any = True) -> Any:
    _reduce_args("mean", dtype, out, None, where)
    x = a if dtype is None else astype(a, dtype)
    return R.mean(x, _axes(x, axis), builtins.bool(keepdims))


@implements(_np.prod)
def prod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
         keepdims: bool = False, initial: Any = None, where: Any = True) -> Any:
    _reduce_args("prod", dtype, out, initial, where)
    x = a if dtype is None else astype(a, dtype)
    return R.prod(x, _axes(x, axis), builtins.bool(keepdims))


@implements(_np.max, _np.amax)
def max(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,  # noqa: A001
        initial: Any = None, where: Any = True) -> Any:
    _reduce_args("max", None, out, initial, where)
    x = a
    return R.max_(x, _axes(x, axis), builtins.bool(keepdims))


@implements(_np.min, _np.amin)
def min(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,  # noqa: A001
        initial: Any = None, where: Any = True) -> Any:
    _reduce_args("min", None, out, initial, where)
    x = a
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
    if correction is not None:
        ddof = correction
    x = a if dtype is None else astype(a, dtype)
    ax = _axes(x, axis)
    n = 1
    for a in ax:
        n *= _shape(x)[a]
    d = R.subtract(x, R.mean(x, ax, True))
    return R.divide(R.sum_(R.multiply(d, d), ax, builtins.bool(keepdims)), float(n - ddof))


@implements(_np.std)
def std(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: float = 0,
        keepdims: bool = False, *, where: Any = True, mean: Any = None,
        correction: Any = None) -> Any:
    """sqrt(var); where the variance is 0 (one entry, or all equal) the derivative is 0,
    not 0 * inf: the square root is taken of a safe 1 there and the result replaced by 0."""
    v = var(a, axis, dtype, out, ddof, keepdims, where=where, mean=mean,
            correction=correction)
    vv = getval(v)
    if _np.all(vv > 0):
        return R.sqrt(v)
    pos = _np.asarray(vv > 0)
    return R.where(pos, R.sqrt(R.where(pos, v, 1.0)), 0.0)


@implements(_np.where)
def where(cond: Any, x: Any = None, y: Any = None) -> Any:
    if x is None and y is None:
        return _np.where(getval(cond))
    return R.where(_np.asarray(getval(cond), dtype=builtins.bool), x, y)


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
    return sum(R.multiply(ravel(a), ravel(b)))


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


@implements(_np.einsum)
def einsum(subscripts: str, *operands: Any, **kw: Any) -> Any:
    """Einstein summation with derivatives for any number of operands. Ellipses are
    expanded into explicit indices; an implicit output follows NumPy's rule."""
    kw.pop("optimize", None)
    if kw:
        raise TypeError(f"einsum() got unsupported arguments {sorted(kw)}")
    if not isinstance(subscripts, str):
        raise TracerError("einsum: only the subscripts-string form is supported")
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
    return R.getitem(x, R._normalize_index(idx, _ndim(x)))


@implements(_np.take)
def take(a: Any, indices: Any, axis: int | None = None, out: Any = None,
         mode: str = "raise") -> Any:
    _no_extras("take", {"out": out})
    if mode != "raise":
        raise TracerError(f"take(..., mode={mode!r}) is not supported on traced values")
    x = a
    if axis is None:
        return getitem(ravel(x), _np.asarray(indices))
    nd = _ndim(x)
    return getitem(x, (slice(None),) * (axis % nd) + (_np.asarray(indices),))


@implements(*_opt("astype"))
def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
    return R.astype(x, _np.dtype(dtype))


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
    x = a
    if _ndim(x) != 2 or (axis1, axis2) != (0, 1):
        raise TracerError("diagonal on traced values supports 2-D arrays with the default axes")
    n, m = _shape(x)
    k = builtins.max(0, builtins.min(n - builtins.max(-offset, 0), m - builtins.max(offset, 0)))
    rows = _np.arange(k) + builtins.max(-offset, 0)
    return getitem(x, (rows, rows + offset))


@implements(_np.trace)
def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None,
          out: Any = None) -> Any:
    _reduce_args("trace", dtype, out)
    return sum(diagonal(a, offset, axis1, axis2), axis=-1)


@implements(_np.diag)
def diag(v: Any, k: int = 0) -> Any:
    if _ndim(v) == 2:
        return diagonal(v, k)
    if _ndim(v) != 1 or k != 0:
        raise TracerError("diag on traced values supports a 1-D vector (k=0) or a 2-D matrix")
    n = _shape(v)[0]
    return R.multiply(reshape(v, (n, 1)), _np.eye(n, dtype=R._dtype(v)))


@implements(_np.take_along_axis)
def take_along_axis(arr: Any, indices: Any, axis: int = -1) -> Any:
    x = arr
    indices = _np.asarray(getval(indices))
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


@implements(_np.linalg.norm)
def linalg_norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    if ord not in (None, 2, "fro") or (ord == 2 and axis is None and _ndim(x) > 1):
        raise TracerError("chainrule.numpy.linalg.norm supports only the 2-norm/Frobenius norm")
    return R.sqrt(sum(R.multiply(x, x), axis=axis, keepdims=keepdims))


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


# ---------------------------------------------------------------- values only
# NumPy functions whose result carries no derivative (booleans, indices, shapes, counts):
# on traced values they run on the values, as JAX's do.


def _values_only(fn: Any) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        return fn(*[_value_tree(a) for a in args],
                  **{k: _value_tree(v) for k, v in kwargs.items()})

    run.__name__ = getattr(fn, "__name__", "values_only")
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
    "iterable", "may_share_memory", "shares_memory", "floor_divide",
)
# shapes without computing a deferred value
FUNCTIONS[_np.shape] = lambda a: _shape(a)
FUNCTIONS[_np.ndim] = lambda a: _ndim(a)
for _name in VALUE_ONLY:
    _obj = getattr(_np, _name, None)
    if _obj is not None and _obj not in UFUNCS and _obj not in FUNCTIONS:
        (UFUNCS if isinstance(_obj, _np.ufunc) else FUNCTIONS)[_obj] = _values_only(_obj)

core.install(_sys.modules[__name__], UFUNCS, FUNCTIONS)
globals().update({k: v for k, v in EXPORTS.items() if k not in globals()})
