"""Vectorising map: :func:`vmap`, the batch trace and the generic batching rules.

``vmap(f)`` runs ``f`` once on whole batches. Each mapped input becomes a
:class:`BatchTracer`: its value is the batched array and ``bdim`` says which axis of it is
the batch. To ``f`` (and to every rule) a batch tracer looks like one example: its
``shape`` leaves the batch axis out. A primitive called on a batch tracer goes to the
trace's :meth:`BatchTrace.process`, which calls the primitive's batching rule
(``Primitive.batch``, registered beside the primitive in ``rules.py``)::

    rule(prim, vals, dims, **params) -> (out, out_dim)

``vals`` are the arguments with batch tracers replaced by their batched values, ``dims``
the batch axis of each (None: not batched, one value for the whole batch). A rule computes
the whole batch with NumPy's own batching (broadcasting, ``np.matmul``'s and
``np.linalg``'s leading axes, one more einsum index) and never loops over examples.
Element-wise operations, reductions and linear algebra get their rule from the three
generic ones here (:func:`elementwise`, :func:`with_axis`, :func:`leading`).

A batch trace is one more level among the transforms' traces, so ``vmap(grad(f))`` (the
reverse trace above the batch trace: per-example gradients), ``grad(vmap(f))`` and
``vmap(vmap(f))`` compose. Batching is not differentiation: :func:`core.getval` stops at a
batch tracer, so a derivative rule that computes a constant from its argument's value
(the 0/1 mask of ``relu``, the winner of ``maximum``) computes it for every example.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as _np

from . import core
from .core import Primitive, Tracer, TracerError, getval, new_level
from .core import value_shape as _shape
from .tree import tree_flatten, tree_unflatten

__all__ = ["vmap", "BatchTrace", "BatchTracer"]

_ndarray = _np.ndarray


# --------------------------------------------------------------------------- helpers


def _moveaxis(x: Any, src: int, dst: int) -> Any:
    """``np.moveaxis`` for a plain array or a traced value of an outer level."""
    if src == dst:
        return x
    if type(x) is _ndarray:
        return _np.moveaxis(x, src, dst)
    return core.OPS.moveaxis(x, src, dst)


def to_front(x: Any, d: int | None) -> Any:
    """The batched value ``x`` with its batch axis ``d`` first.

    >>> to_front(_np.zeros((2, 5, 3)), 1).shape
    (5, 2, 3)
    """
    return x if not d else _moveaxis(x, d, 0)


def _reshape(x: Any, shape: tuple[int, ...]) -> Any:
    if type(x) is _ndarray:
        return x.reshape(shape)
    return core.OPS.reshape(x, shape)


def _broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    if type(x) is _ndarray or not isinstance(x, Tracer):
        return _np.broadcast_to(x, shape)
    return core.OPS.broadcast_to(x, shape)


def with_rank(x: Any, rank: int) -> Any:
    """A batched value (batch axis first) reshaped so that one example has ``rank`` axes:
    ones inserted after the batch axis, as NumPy broadcasting would insert them in front of
    the example's own axes.

    >>> with_rank(_np.zeros((5, 3)), 3).shape
    (5, 1, 1, 3)
    """
    s = _shape(x)
    k = len(s) - 1
    return x if k >= rank else _reshape(x, s[:1] + (1,) * (rank - k) + s[1:])


def shift_axis(axis: Any, nd: int) -> Any:
    """A per-example axis (an int, a tuple of them, or None for all ``nd``) as an axis of
    the batched value whose batch axis is first: negative axes stay, others move by one.

    >>> shift_axis((0, -1), 2), shift_axis(None, 2)
    ((1, -1), (-2, -1))
    """
    if axis is None:
        return tuple(range(-nd, 0))
    if isinstance(axis, tuple):
        return tuple(a if a < 0 else a + 1 for a in axis)
    return axis if axis < 0 else axis + 1


# --------------------------------------------------------------------------- generic rules


def elementwise(prim: Primitive, vals: list[Any], dims: list[Any], **params: Any) -> Any:
    """The rule of every element-wise primitive (text 3.2.1-3.2.3): batch axes first, and
    batched operands of lower rank padded with ones after the batch axis, so that NumPy's
    broadcasting of one example (trailing axes aligned) is kept; unbatched operands
    broadcast over the batch as they are.

    >>> from chainrule.calculus.rules import add
    >>> out, d = elementwise(add, [_np.ones((5, 3)), _np.arange(3.0)], [0, None])
    >>> out.shape, d
    ((5, 3), 0)
    """
    ranks = [len(_shape(v)) - (d is not None) for v, d in zip(vals, dims)]
    r = max(ranks)
    new = list(vals)
    for i, (v, d, k) in enumerate(zip(vals, dims, ranks)):
        if d is not None:
            v = to_front(v, d)
            new[i] = v if k == r else with_rank(v, r)
    return prim(*new, **params), 0


_LETTERS = "abcdefghijklmnopqrstuvwxy"


def outer_product(vals: list[Any], dims: list[Any]) -> Any:
    """The product of two batched factors that is, for every example, an outer product
    (each axis of the result comes from one factor alone: the per-example dC/dW^l =
    delta^l (a^{l-1})^T of per-example gradients), as one ``np.einsum`` of plain arrays, which
    writes it faster than a broadcast multiply (the same products, no sum); None where
    that does not apply (the element-wise rule then does it).

    >>> d, a = _np.ones((4, 256)), _np.ones((4, 300))
    >>> outer_product([d[:, :, None], a[:, None, :]], [0, 0]).shape
    (4, 256, 300)
    """
    if len(vals) != 2 or dims[0] is None or dims[1] is None:
        return None
    a, b = vals
    if type(a) is not _ndarray or type(b) is not _ndarray or a.dtype != b.dtype:
        return None
    a, b = to_front(a, dims[0]), to_front(b, dims[1])
    r = max(a.ndim, b.ndim) - 1
    a, b = with_rank(a, r), with_rank(b, r)
    sa, sb = a.shape[1:], b.shape[1:]
    if r >= len(_LETTERS) or any((x != 1) == (y != 1) for x, y in zip(sa, sb)):
        return None
    n = a.shape[0]
    if n * a[0].size * b[0].size < 1 << 16:
        return None                 # small: the broadcast is as fast
    ia = "".join(_LETTERS[i] for i, x in enumerate(sa) if x != 1)
    ib = "".join(_LETTERS[i] for i, y in enumerate(sb) if y != 1)
    spec = f"z{ia},z{ib}->z{_LETTERS[:r]}"
    return _np.einsum(spec, a.reshape((n,) + tuple(x for x in sa if x != 1)),
                      b.reshape((n,) + tuple(y for y in sb if y != 1)))


def with_axis(prim: Primitive, vals: list[Any], dims: list[Any], **params: Any) -> Any:
    """The rule of a primitive ``prim(x, axis, ...)`` whose axis addresses one example's
    axes (sum, mean, max, min, prod, logsumexp, softmax, cumsum): the batch axis first and
    the axis shifted past it.

    >>> from chainrule.calculus.rules import sum_
    >>> out, d = with_axis(sum_, [_np.ones((3, 5, 2)), (-1,), False], [1, None, None])
    >>> out.shape, d
    ((5, 3), 0)
    """
    if any(d is not None for d in dims[1:]):
        raise TracerError(f"vmap: {prim.name} cannot batch over its axis argument")
    x = to_front(vals[0], dims[0])
    nd = len(_shape(x)) - 1
    args = list(vals)
    args[0] = x
    if len(args) > 1:
        args[1] = shift_axis(args[1], nd)
    if "axis" in params:
        params = dict(params, axis=shift_axis(params["axis"], nd))
    return prim(*args, **params), 0


def leading(prim: Primitive, vals: list[Any], dims: list[Any], **params: Any) -> Any:
    """The rule of a primitive that already maps over leading axes (``np.linalg``'s
    functions act on the last two axes of a stack of matrices, the FFTs on one negative
    axis): the batch axis first; its other arguments (length, axis, norm) are not batched.

    >>> from chainrule.calculus.rules import det
    >>> leading(det, [_np.stack([_np.eye(2), 2 * _np.eye(2)])], [0])
    (array([1., 4.]), 0)
    """
    if any(d is not None for d in dims[1:]):
        raise TracerError(f"vmap: {prim.name} cannot batch over its arguments after the "
                          f"first")
    return prim(to_front(vals[0], dims[0]), *vals[1:], **params), 0


def passthrough(prim: Primitive, vals: list[Any], dims: list[Any], **params: Any) -> Any:
    """The rule of a primitive that acts on each entry alone and keeps the shape (astype):
    the batch axis stays where it is.

    >>> from chainrule.calculus.rules import astype
    >>> out, d = passthrough(astype, [_np.ones((2, 5)), _np.float32], [1, None])
    >>> out.dtype, d
    (dtype('float32'), 1)
    """
    return prim(*vals, **params), dims[0]


# --------------------------------------------------------------------------- the trace


class IndexPrimitive(Primitive):
    """A primitive with index-tuple arguments (``index_args``: getitem, untake), which may
    hold a batch tracer: the indices of each example's own (take_along_axis, so sort).
    Its call also looks inside those tuples for the trace to hand it to."""

    __slots__ = ()

    def __call__(self, *args: Any, **params: Any) -> Any:
        top = None
        for a in args:
            if isinstance(a, Tracer) and (top is None or a.owner.level > top.level):
                top = a.owner
        for i in self.index_args:
            for k in args[i] if type(args[i]) is tuple else ():
                if isinstance(k, Tracer) and (top is None or k.owner.level > top.level):
                    top = k.owner
        if top is None:
            return self.impl(*args, **params)
        return top.process(self, args, params)


def index_primitive(p: Primitive, *index_args: int) -> Primitive:
    """Make ``p`` an :class:`IndexPrimitive` whose arguments ``index_args`` are index
    tuples (the other primitives' calls do not pay for the look inside).

    >>> from chainrule.calculus.rules import getitem
    >>> type(getitem).__name__, getitem.index_args
    ('IndexPrimitive', (1,))
    """
    p.__class__ = IndexPrimitive
    p.index_args = tuple(index_args)
    return p



class BatchTracer(Tracer):
    """One example of a batch, to the code that ``vmap`` maps: ``_value`` holds the whole
    batch and ``_bdim`` its batch axis. Its ``shape`` is one example's."""

    __slots__ = ("batch_dim",)
    opaque = True

    def __init__(self, value: Any, trace: BatchTrace, bdim: int) -> None:
        self.primal = value
        self.owner = trace
        self.batch_dim = bdim

    @property
    def shape(self) -> tuple[int, ...]:
        s = _shape(self.primal)
        d = self.batch_dim
        return s[:d] + s[d + 1 :]

    @property
    def ndim(self) -> int:
        return len(_shape(self.primal)) - 1

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def dtype(self) -> _np.dtype:
        return core.dtype_of(self.primal)

    def __repr__(self) -> str:
        return (f"BatchTracer(level={self.owner.level}, bdim={self.batch_dim}, "
                f"value={self.primal!r})")

    def astype(self, dtype: Any, **kw: Any) -> Any:
        dt = _np.dtype(dtype)
        if dt.kind in "fc":
            return super().astype(dt, **kw)
        # an integer or boolean cast: a value with no derivative, cast for the whole batch
        return self.map_values(lambda v: _np.asarray(v).astype(dt), (self,))

    def __array__(self, dtype: Any = None, copy: Any = None) -> _np.ndarray:
        raise TracerError(
            "a batched value (inside vmap) was converted to a plain NumPy array (np.asarray, "
            "or as an index into a plain array): one example has no value of its own there. "
            "Use chainrule.numpy functions (stack, concatenate, where, take...), which batch")

    # comparisons and the ufuncs that run on values (isnan, logical_and...) are
    # element-wise: they run on the batched values, with no derivative (the operators are
    # set from the table after the class)
    __hash__ = None  # type: ignore[assignment]

    def map_values(self, ufunc: Any, inputs: tuple[Any, ...]) -> Any:
        trace = self.owner
        vals, dims = [], []
        for x in inputs:
            if isinstance(x, BatchTracer) and x.owner is trace:
                vals.append(getval(x.primal))
                dims.append(x.batch_dim)
                continue
            v = getval(x)
            if isinstance(v, BatchTracer) and v.owner.level > trace.level:
                return NotImplemented          # an inner vmap's value: its rule first
            if isinstance(v, BatchTracer) and v.owner is trace:
                vals.append(getval(v.primal))
                dims.append(v.batch_dim)
                continue
            vals.append(v)
            dims.append(None)
        ranks = [len(_shape(v)) - (d is not None) for v, d in zip(vals, dims)]
        r = max(ranks)
        new = [v if d is None else with_rank(to_front(v, d), r)
               for v, d, k in zip(vals, dims, ranks)]
        out = ufunc(*new)
        if isinstance(out, tuple):
            return tuple(BatchTracer(o, trace, 0) for o in out)
        return BatchTracer(out, trace, 0)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        fn = core.DISPATCH_UFUNCS.get(ufunc)
        if method == "__call__" and not kwargs and (getattr(fn, "values_only", False) or
                                                    ufunc in _active()):
            # a ufunc is element-wise: on the values it batches as they are (and one that
            # chainrule's own version calls on the value, heaviside, runs there)
            return self.map_values(ufunc, inputs)
        active = _active()
        active.add(ufunc)
        try:
            return super().__array_ufunc__(ufunc, method, *inputs, **kwargs)
        finally:
            active.discard(ufunc)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        meta = _META.get(func)
        if meta is not None and len(args) == 1 and not kwargs:
            return meta(self if args[0] is self else args[0])
        if func is _np.result_type:
            return _np.result_type(*(core.dtype_of(a) if isinstance(a, Tracer) else a
                                     for a in args))
        for v in tuple(args) + tuple(kwargs.values()):
            if isinstance(v, BatchTracer) and v.owner.level > self.owner.level:
                return NotImplemented          # an inner vmap's value: its rule first
        handler = _VALUE_RULES.get(func)
        if handler is not None:
            return handler(self.owner, func, args, kwargs)
        active = _active()
        if func in active and func in _REENTRY_RULES:
            # the function's own chainrule version calls it on the value (slogdet's sign)
            return _REENTRY_RULES[func](self.owner, func, args, kwargs)
        name = core.func_name(func)
        fn = core.DISPATCH_FUNCTIONS.get(func)
        if getattr(fn, "values_only", False) or func in active:
            raise TracerError(
                f"{name} runs on values and has no batching rule: it cannot be used on a "
                f"batched value inside vmap")
        active.add(func)      # a function that calls itself on the value has no rule
        try:
            return super().__array_function__(func, types, args, kwargs)
        finally:
            active.discard(func)


def _on_values(ufunc: Any, reflected: bool = False) -> Callable[..., Any]:
    if reflected:
        return lambda self, o: self.map_values(ufunc, (o, self))
    return lambda self, o: self.map_values(ufunc, (self, o))


for _name, _ufunc in (("lt", _np.less), ("le", _np.less_equal), ("gt", _np.greater),
                      ("ge", _np.greater_equal), ("eq", _np.equal), ("ne", _np.not_equal),
                      ("and", _np.bitwise_and), ("or", _np.bitwise_or),
                      ("xor", _np.bitwise_xor)):
    setattr(BatchTracer, f"__{_name}__", _on_values(_ufunc))
    if _name in ("and", "or", "xor"):
        setattr(BatchTracer, f"__r{_name}__", _on_values(_ufunc, reflected=True))
BatchTracer.__invert__ = lambda self: self.map_values(_np.invert, (self,))  # type: ignore


def _meta_shape(x: Any) -> Any:
    return _shape(x)


_META: dict[Any, Callable[[Any], Any]] = {
    _np.shape: _meta_shape,
    _np.ndim: lambda x: len(_shape(x)),
    _np.size: lambda x: int(_np.prod(_shape(x), dtype=_np.int64)),
    _np.result_type: lambda x: core.dtype_of(x),
}


# NumPy functions that run on values (no derivative), batched: those with an ``axis``
# (argmax, any...), the element-wise ones that are not ufuncs (isposinf, isclose), those of
# stacked matrices (slogdet's sign) and the ``*_like`` constructors (one example's shape)
_LOCAL = threading.local()


def _active() -> set[Any]:
    """The NumPy functions being dispatched on a batch tracer in this thread: one called
    again inside its own chainrule version is being called on the value."""
    a = getattr(_LOCAL, "active", None)
    if a is None:
        a = _LOCAL.active = set()
    return a


def _batched_arg(trace: BatchTrace, x: Any) -> Any:
    if isinstance(x, BatchTracer) and x.owner is trace:
        return to_front(getval(x.primal), x.batch_dim)
    raise TracerError("vmap: this function batches over its first argument only")


def _axis_rule(trace: BatchTrace, func: Any, args: Any, kwargs: Any) -> Any:
    import inspect

    bound = inspect.signature(func).bind(*args, **kwargs)
    a = bound.arguments
    first = next(iter(a))
    x = _batched_arg(trace, a[first])
    nd = len(_shape(x)) - 1
    axis = a.get("axis", inspect.signature(func).parameters["axis"].default)
    if axis is None:
        if func in (_np.any, _np.all, _np.count_nonzero):
            axis = tuple(range(1, nd + 1))
        elif a.get("keepdims"):
            raise TracerError(f"vmap: {core.func_name(func)}(axis=None, keepdims=True) "
                              f"has no batching rule")
        else:
            x = _reshape(x, _shape(x)[:1] + (-1,))
            axis = 1
    else:
        axis = shift_axis(tuple(axis) if isinstance(axis, (tuple, list)) else axis, nd)
    a[first] = x
    a["axis"] = axis
    return BatchTracer(func(*bound.args, **bound.kwargs), trace, 0)


def _elementwise_values_rule(trace: BatchTrace, func: Any, args: Any, kwargs: Any) -> Any:
    carrier = next(v for v in tuple(args) + tuple(kwargs.values())
                   if isinstance(v, BatchTracer) and v.owner is trace)
    return carrier.map_values(lambda *v: func(*v, **kwargs), tuple(args))


def _leading_values_rule(trace: BatchTrace, func: Any, args: Any, kwargs: Any) -> Any:
    out = func(_batched_arg(trace, args[0]), *args[1:], **kwargs)
    if isinstance(out, tuple):
        return type(out)(*(BatchTracer(o, trace, 0) for o in out))
    return BatchTracer(out, trace, 0)


def _like_rule(trace: BatchTrace, func: Any, args: Any, kwargs: Any) -> Any:
    x = args[0]
    return func(_np.empty(x.shape, x.dtype), *args[1:], **kwargs)


_VALUE_RULES: dict[Any, Callable[..., Any]] = {}
for _name in ("argmax", "argmin", "nanargmax", "nanargmin", "any", "all", "count_nonzero",
              "argsort"):
    _VALUE_RULES[getattr(_np, _name)] = _axis_rule
for _name in ("isposinf", "isneginf", "isclose", "isreal", "iscomplex"):
    _VALUE_RULES[getattr(_np, _name)] = _elementwise_values_rule
for _name in ("zeros_like", "ones_like", "empty_like", "full_like"):
    _VALUE_RULES[getattr(_np, _name)] = _like_rule
# consulted only when chainrule's version of the function calls it on the batch's value
_REENTRY_RULES: dict[Any, Callable[..., Any]] = {_np.linalg.slogdet: _leading_values_rule,
                                                 _np.angle: _elementwise_values_rule}


def take_along_axis(x: Any, indices: BatchTracer, axis: int, fn: Callable[..., Any]) -> Any:
    """NumPy's take_along_axis for indices that differ per example (a batch tracer): the
    index tuple of one example, with the batch tracer in it, for ``fn`` (the getitem
    primitive), whose batching rule gathers for the whole batch at once (``x`` keeps its
    derivative).

    >>> import chainrule.numpy as np
    >>> vmap(lambda v: np.sort(v))(np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]]))
    array([[1., 2., 3.],
           [0., 4., 5.]])
    """
    nd = len(_shape(x))
    axis %= nd
    sx, si = _shape(x), indices.shape
    idx = tuple(indices if i == axis else
                _np.arange(sx[i]).reshape((1,) * i + (sx[i],) + (1,) * (nd - 1 - i))
                for i in range(nd))
    if len(si) != nd:
        raise ValueError("take_along_axis: the indices must have as many dimensions as the "
                         "array")
    return fn(x, idx)


class BatchTrace:
    """One ``vmap``: its level, and the batch size it maps over."""

    def __init__(self, size: int) -> None:
        self.level = new_level()
        self.size = size

    def process(self, prim: Primitive, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        vals = list(args)
        dims: list[int | None] = [None] * len(args)
        for i, a in enumerate(args):
            if isinstance(a, BatchTracer) and a.owner is self:
                vals[i] = a.primal
                dims[i] = a.batch_dim
        for i in prim.index_args:      # an index tuple: dims[i] is the tuple of its dims
            t = args[i]
            if type(t) is tuple and any(isinstance(k, BatchTracer) and k.owner is self
                                        for k in t):
                vals[i] = tuple(k.primal if isinstance(k, BatchTracer) and k.owner is self
                                else k for k in t)
                dims[i] = tuple(k.batch_dim if isinstance(k, BatchTracer) and k.owner is self
                                else None for k in t)
        rule = prim.batch
        if rule is None:
            raise TracerError(
                f"{prim.name} has no batching rule: it cannot be used inside vmap "
                f"(a primitive's batching rule is registered beside it, in rules.py)")
        out, d = rule(prim, vals, dims, **params)
        if d is None:
            return out
        return BatchTracer(out, self, d)


# --------------------------------------------------------------------------- vmap


def _is_axis_leaf(a: Any) -> bool:
    return a is None or (isinstance(a, int) and not isinstance(a, bool))


def _node(o: Any) -> tuple[Any, list[Any]]:
    """One level of a pytree: a key saying what node it is, and its children (empty for
    a leaf)."""
    leaves, d = tree_flatten(o)
    if d[0] == "leaf":
        return ("leaf",), []
    if d[0] == "none":
        return ("none",), []
    if d[0] in ("tuple", "list"):
        return (d[0], len(o)), list(o)
    if d[0] == "namedtuple":
        return (d[0], d[1]), list(o)
    if d[0] == "dict":
        return ("dict", tuple(o)), [o[k] for k in o]
    from .tree import _REGISTRY

    children, aux = _REGISTRY[type(o)][0](o)
    return ("node", type(o), aux), list(children)


def _broadcast_prefix(spec: Any, tree: Any, what: str) -> list[Any]:
    """The axis of each leaf of ``tree`` from ``spec``, a tree prefix of it (JAX's
    in_axes / out_axes)."""
    if _is_axis_leaf(spec):
        return [spec] * len(tree_flatten(tree)[0])
    key, children = _node(tree)
    skey, schildren = _node(spec)
    if skey[0] in ("tuple", "list") and key[0] in ("tuple", "list", "namedtuple"):
        same = len(schildren) == len(children)
    elif skey[0] == "dict" and key[0] == "dict":
        same = set(spec) == set(tree)
        if same:                        # the value's order of keys
            schildren = [spec[k] for k in tree]
    else:
        same = skey == key
    if not same:
        raise ValueError(
            f"vmap {what} must be a tree prefix of the corresponding value: got "
            f"specification {spec!r} for a value of structure {_describe(tree)}")
    out: list[Any] = []
    for s, c in zip(schildren, children):
        out.extend(_broadcast_prefix(s, c, what))
    return out


def _describe(tree: Any) -> str:
    leaves, d = tree_flatten(tree)
    return tree_unflatten(d, ["*"] * len(leaves)).__repr__().replace("'*'", "*")


def _check_axes_spec(spec: Any, what: str) -> None:
    leaves = [spec] if _is_axis_leaf(spec) else None
    if leaves is None:
        leaves, _ = tree_flatten(spec)   # None inside a container is an empty node
    for a in leaves:
        if not _is_axis_leaf(a):
            raise TypeError(f"vmap {what} must be an int, None, or a (nested) container "
                            f"with those types as leaves, but got {spec!r}.")


def _value_shape(x: Any) -> tuple[int, ...]:
    return _shape(x) if isinstance(x, Tracer) else _np.shape(x)


def vmap(fun: Callable[..., Any], in_axes: Any = 0, out_axes: Any = 0,
         axis_size: int | None = None) -> Callable[..., Any]:
    """Vectorise ``fun`` over an axis of its arguments, like ``jax.vmap``: the result
    computes ``fun`` for every example at once, with NumPy's batched operations (each
    primitive's batching rule), never a loop over the examples.

    ``in_axes``: an int, None (not mapped) or a tuple with one entry per positional
    argument, each an int, None or a pytree prefix of that argument; negative axes count
    from the end. Keyword arguments are mapped over axis 0. ``out_axes``: where the batch
    axis goes in each output (a pytree prefix of the output). ``axis_size``: the batch size,
    needed when no argument is mapped.

    Per-example gradients (the text's SGD on one example at a time, all at once):

    >>> import chainrule as cr
    >>> import chainrule.numpy as np
    >>> loss = lambda w, x, y: (np.dot(w, x) - y) ** 2
    >>> w = np.array([1.0, 2.0])
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> cr.vmap(cr.grad(loss), in_axes=(None, 0, 0))(w, X, np.array([0.0, 1.0, 2.0]))
    array([[2., 0.],
           [0., 2.],
           [2., 2.]])
    """
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)         # as JAX: a list means a tuple here
    if not (in_axes is None or type(in_axes) in (int, tuple)):
        raise TypeError("vmap in_axes must be an int, None, or a tuple of entries "
                        "corresponding to the positional arguments passed to the function, "
                        f"but got {in_axes!r}.")
    _check_axes_spec(in_axes, "in_axes")
    _check_axes_spec(out_axes, "out_axes")
    if axis_size is not None and (not isinstance(axis_size, int) or axis_size < 0):
        raise ValueError(f"vmap axis_size must be a non-negative int, got {axis_size!r}")

    @functools.wraps(fun)
    def batched(*args: Any, **kwargs: Any) -> Any:
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(
                f"vmap in_axes must be a tree prefix of the positional arguments: in_axes "
                f"has {len(in_axes)} entries but the function was called with {len(args)} "
                f"positional argument(s)")
        specs = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        flat: list[Any] = []
        axes: list[Any] = []
        where: list[str] = []
        defs = []
        for i, (a, s) in enumerate(zip(args, specs)):
            leaves, d = tree_flatten(a)
            defs.append((d, len(leaves)))
            flat.extend(leaves)
            axes.extend(_broadcast_prefix(s, a, "in_axes"))
            where.extend(f"argument {i}" if len(leaves) == 1 else f"argument {i} (leaf {k})"
                         for k in range(len(leaves)))
        kw_leaves, kw_def = tree_flatten(kwargs)
        flat.extend(kw_leaves)
        axes.extend([0] * len(kw_leaves))
        where.extend(f"keyword argument (leaf {k})" for k in range(len(kw_leaves)))

        size = _mapped_size(flat, axes, where, axis_size)
        trace = BatchTrace(size)
        boxed = []
        for x, ax in zip(flat, axes):
            if ax is None:
                boxed.append(x)
                continue
            if not isinstance(x, Tracer):
                x = _np.asarray(x)
            boxed.append(BatchTracer(x, trace, ax % len(_value_shape(x))))
        new_args, k = [], 0
        for d, n in defs:
            new_args.append(tree_unflatten(d, boxed[k : k + n]))
            k += n
        new_kwargs = tree_unflatten(kw_def, boxed[k:])
        out = fun(*new_args, **new_kwargs)
        return _unbatch(out, out_axes, trace)

    return batched


def _mapped_size(flat: list[Any], axes: list[Any], where: list[str],
                 axis_size: int | None) -> int:
    sizes: list[tuple[int, str]] = []
    for x, ax, w in zip(flat, axes, where):
        if ax is None:
            continue
        shape = _value_shape(x)
        nd = len(shape)
        if not -nd <= ax < nd:
            min_rank = ax + 1 if ax >= 0 else -ax
            raise ValueError(
                f"vmap was requested to map its argument along axis {ax}, which implies "
                f"that its rank should be at least {min_rank}, but is only {nd} (its shape "
                f"is {shape}): {w}")
        sizes.append((shape[ax], f"axis {ax} of {w} of shape {shape}"))
    if axis_size is not None:
        sizes.append((axis_size, "axis_size"))
    if not sizes:
        raise ValueError("vmap must have at least one non-None value in in_axes or "
                         "axis_size must be specified")
    distinct = sorted({s for s, _ in sizes})
    if len(distinct) == 1:
        return distinct[0]
    lines = []
    for s in distinct:
        these = [w for k, w in sizes if k == s]
        if len(these) == 1:
            lines.append(f"  * one axis had size {s}: {these[0]}")
        else:
            lines.append(f"  * {len(these)} axes had size {s}, e.g. {these[0]}")
    raise ValueError("vmap got inconsistent sizes for array axes to be mapped:\n" +
                     ";\n".join(lines))


def _unbatch(out: Any, out_axes: Any, trace: BatchTrace) -> Any:
    leaves, d = tree_flatten(out)
    specs = _broadcast_prefix(out_axes, out, "out_axes")
    res = []
    for o, ax in zip(leaves, specs):
        if isinstance(o, Tracer) and o.owner.level > trace.level:
            raise TracerError(
                "vmap: the function returned a traced value of a transform that it "
                "applied inside (a leaked tracer)")
        if isinstance(o, BatchTracer) and o.owner is trace:
            if ax is None:
                raise ValueError("vmap has mapped output but out_axes is None")
            nd = len(_shape(o.primal))
            if not -nd <= ax < nd:
                raise ValueError(f"vmap out_axes={ax} is out of range for an output with "
                                 f"{nd - 1} dimension(s) per example")
            res.append(_moveaxis(o.primal, o.batch_dim, ax % nd))
            continue
        if ax is None:
            res.append(o)
            continue
        if not isinstance(o, Tracer):
            o = _np.asarray(o)
        s = _value_shape(o)
        nd = len(s) + 1
        if not -nd <= ax < nd:
            raise ValueError(f"vmap out_axes={ax} is out of range for an output with "
                             f"{nd - 1} dimension(s) per example")
        a = ax % nd
        o = _reshape(o, s[:a] + (1,) + s[a:])
        o = _broadcast_to(o, s[:a] + (trace.size,) + s[a:])
        res.append(o.copy() if type(o) is _ndarray else o)   # writable, as JAX's
    return tree_unflatten(d, res)


def on_values(fn: Callable[..., Any], *vals: Any) -> Any:
    """``fn`` on the values of a batch, for a derivative rule that computes a constant from
    its arguments' values (a mask, the cofactors of a singular matrix): ``fn`` receives
    plain arrays whose leading axis is the batch (it must treat leading axes as a stack, as
    NumPy's element-wise functions, negative axes and ``np.linalg`` do), once for the
    whole batch.

    >>> import chainrule.numpy as np
    >>> vmap(lambda x: on_values(lambda v: v.argmax(-1), x))(np.eye(3)[::-1])
    array([2, 1, 0])
    """
    top = None
    for v in vals:
        if isinstance(v, BatchTracer) and (top is None or v.owner.level > top.level):
            top = v.owner
    if top is None:
        return fn(*vals)
    raw = [getval(to_front(v.primal, v.batch_dim)) if isinstance(v, BatchTracer) and
           v.owner is top else v for v in vals]
    return BatchTracer(on_values(fn, *raw), top, 0)


def as_value(v: Any, dtype: Any = None) -> Any:
    """A concrete value (``getval`` of something) as an array; under vmap it may be the
    batch tracer that stands for it, which stays as it is (``np.asarray`` of it would
    need one example's array, which a batch has not).

    >>> as_value([1, 0], bool)
    array([ True, False])
    """
    return v if isinstance(v, Tracer) else _np.asarray(v, dtype=dtype)


def any_value(v: Any) -> bool:
    """``np.any`` over every example of a batch too: for a derivative rule's choice between
    two formulas that agree wherever both apply (the safe one is taken for the whole batch
    when any example needs it).

    >>> import chainrule.numpy as np
    >>> vmap(lambda x: np.ones(()) * any_value(x > 1.5))(np.array([1.0, 2.0]))
    array([1., 1.])
    """
    while isinstance(v, BatchTracer):
        v = getval(v.primal)
    return bool(_np.any(v))


def all_value(v: Any) -> bool:
    """``np.all`` over every example of a batch too (see :func:`any_value`).

    >>> all_value(_np.array([True, False]))
    False
    """
    while isinstance(v, BatchTracer):
        v = getval(v.primal)
    return bool(_np.all(v))


def batch_size(vals: list[Any], dims: list[Any]) -> int:
    """The batch size, read off the first batched value.

    >>> batch_size([2.0, _np.zeros((3, 7))], [None, 1])
    7
    """
    for v, d in zip(vals, dims):
        if d is not None:
            return _shape(v)[d]
    raise TracerError("internal error: a batching rule called with nothing batched")
