"""The transforms, named and shaped as in JAX: grad, value_and_grad, vjp, jvp, jacrev
(jacobian), jacfwd and hessian. Each is a short composition of one reverse sweep or one
forward push; a Jacobian is a single pass with a batch of basis vectors (text 1.5.2)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as _np

from . import numpy_api as cnp
from .core import (
    DiagCotangent,
    ForwardTrace,
    ReverseTrace,
    Tracer,
    TracerError,
    backward,
    dtype_of,
    getval,
    peek,
)
from .tree import tree_flatten, tree_unflatten

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacrev", "jacobian", "jacfwd", "hessian"]

Argnums = int | Sequence[int]


# --------------------------------------------------------------------------- inputs


def _as_input(x: Any, where: str) -> Any:
    """A differentiable input: a floating-point array, a Python float, or an outer tracer."""
    if isinstance(x, Tracer):
        return x
    if isinstance(x, bool) or isinstance(x, _np.bool_):
        raise TypeError(f"{where} is a bool; derivatives need floating-point inputs")
    if isinstance(x, (int, _np.integer)):
        raise TypeError(
            f"{where} is the integer {x!r}; derivatives need floating-point inputs: "
            f"pass {float(x)!r} instead"
        )
    if isinstance(x, float):
        return _np.float64(x)
    if isinstance(x, complex):
        return _np.complex128(x)
    if isinstance(x, (_np.ndarray, _np.floating, _np.complexfloating)):
        if x.dtype.kind not in "fc":
            raise TypeError(
                f"{where} has dtype {x.dtype}; derivatives need floating-point or complex "
                f"inputs: use x.astype(float)"
            )
        return x
    raise TypeError(
        f"{where} is a {type(x).__name__}; chainrule differentiates with respect to floats, "
        f"complex numbers, NumPy float or complex arrays, and tuples, lists and dicts of them"
    )


def _check_dtypes(name: str, values: list[Any], holomorphic: bool, what: str) -> None:
    """JAX's dtype rules: with ``holomorphic`` the inputs and outputs are complex;
    without it, ``what`` ('inputs' of jacfwd, 'outputs' of grad and jacrev) are real."""
    for v in values:
        dt = dtype_of(v)
        if holomorphic:
            if dt.kind != "c":
                raise TypeError(f"{name} with holomorphic=True requires {what} with complex "
                                f"dtype, but got {dt}.")
        elif dt.kind == "c":
            op = "vjp" if what == "outputs" else "jvp"
            raise TypeError(
                f"{name} requires real-valued {what} ({what[:-1]} dtype that is a sub-dtype of "
                f"np.floating), but got {dt}. For holomorphic differentiation, pass "
                f"holomorphic=True. For differentiation of non-holomorphic functions "
                f"involving complex {what}, use chainrule.{op} directly.")


def _norm_argnums(argnums: Argnums, nargs: int, name: str) -> tuple[tuple[int, ...], bool]:
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for a in nums:
        if not isinstance(a, int) or not -nargs <= a < nargs:
            raise ValueError(
                f"{name}: argnums={argnums!r} but the function was called with {nargs} "
                f"positional argument(s)"
            )
    return tuple(a % nargs for a in nums), single


class _Inputs:
    """The differentiated arguments, flattened to leaves."""

    def __init__(self, args: tuple[Any, ...], nums: tuple[int, ...]) -> None:
        self.args = list(args)
        self.nums = nums
        self.defs = []
        self.leaves: list[Any] = []
        self.counts = []
        for i in nums:
            if args[i] is None:   # None inside a structure is an empty node; alone, a slip
                _as_input(None, f"argument {i}")
            leaves, d = tree_flatten(args[i])
            leaves = [_as_input(x, f"argument {i}") for x in leaves]
            self.defs.append(d)
            self.leaves.extend(leaves)
            self.counts.append(len(leaves))

    def substitute(self, new_leaves: list[Any]) -> list[Any]:
        args = list(self.args)
        k = 0
        for i, d, c in zip(self.nums, self.defs, self.counts):
            args[i] = tree_unflatten(d, new_leaves[k : k + c])
            k += c
        return args

    def regroup(self, per_leaf: list[Any], single: bool) -> Any:
        out = []
        k = 0
        for d, c in zip(self.defs, self.counts):
            out.append(tree_unflatten(d, per_leaf[k : k + c]))
            k += c
        return out[0] if single else tuple(out)


def _split_aux(out: Any, has_aux: bool, name: str) -> tuple[Any, Any]:
    if not has_aux:
        return out, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f"{name}(has_aux=True) needs the function to return a pair "
                        f"(output, auxiliary data)")
    return out[0], out[1]


def _strip(x: Any, trace: Any) -> Any:
    """Remove this trace's level from an auxiliary value (keep the plain value)."""
    leaves, d = tree_flatten(x)
    clean = []
    for v in leaves:
        while isinstance(v, Tracer) and v.owner.level >= trace.level:
            v = v.primal
        clean.append(v)
    return tree_unflatten(d, clean)


def _like_input(g: Any, x: Any) -> Any:
    """Give a gradient the type of its input: a NumPy scalar for a Python float, and the
    input's floating-point dtype (float32 in, float32 out, as in JAX)."""
    if isinstance(g, Tracer):
        dv, dg = dtype_of(x), dtype_of(g)
        return cnp.astype(g, dv) if dv != dg and dv.kind == dg.kind == "f" else g
    g = _same_float(g, getval(x))
    if _np.ndim(g) == 0 and not isinstance(x, _np.ndarray):
        return _np.asarray(g)[()]
    return g


def _same_float(g: Any, v: Any) -> Any:
    """``g`` in the dtype of ``v`` where both are floating point and differ (a rule that
    met a Python float constant computes in float64)."""
    if not isinstance(g, (_np.ndarray, _np.generic)) or \
            not isinstance(v, (_np.ndarray, _np.generic, float)):
        return g
    dv, dg = _np.result_type(v), g.dtype
    if dv != dg and dv.kind == "f" and dg.kind == "f":
        return _np.asarray(g, dv) if isinstance(g, _np.ndarray) else dv.type(g)
    return g


def _zeros(batch: tuple[int, ...], x: Any) -> Any:
    v = getval(x)
    return _np.zeros(batch + _np.shape(v), _np.result_type(v))


def _out_dtype(v: Any) -> Any:
    dt = dtype_of(v)
    return dt if dt.kind in "fc" else _np.dtype(_np.float64)


# --------------------------------------------------------------------------- reverse


def _reverse(f: Callable[..., Any], args: tuple[Any, ...], nums: tuple[int, ...]) -> Any:
    ins = _Inputs(args, nums)
    trace = ReverseTrace()
    boxed = [trace.new_input(x) for x in ins.leaves]
    out = f(*ins.substitute(boxed))
    return ins, trace, boxed, out


def _pullback(trace: Any, boxed: list[Any], out_leaves: list[Any],
              cts: list[Any], batch: tuple[int, ...], once: bool = False) -> list[Any]:
    pairs = [(o.node, ct) for o, ct in zip(out_leaves, cts)
             if isinstance(o, Tracer) and o.owner is trace]
    nodes = [b.node for b in boxed]
    grads = backward(pairs, nodes, release=once) if pairs else [None] * len(boxed)
    return [g if g is not None else _zeros(batch, b.primal) for g, b in zip(grads, boxed)]


def vjp(f: Callable[..., Any], *primals: Any, has_aux: bool = False) -> Any:
    """Evaluate ``f(*primals)`` and return ``(out, vjp_fn)``, where ``vjp_fn(ct)`` gives the
    cotangent ``ct`` times the Jacobian, one entry per primal (like ``jax.vjp``).

    >>> import chainrule.numpy as np
    >>> out, f_vjp = vjp(np.sin, 0.0)
    >>> f_vjp(2.0)
    (np.float64(2.0),)
    """
    nums = tuple(range(len(primals)))
    ins, trace, boxed, out = _reverse(f, primals, nums)
    out, aux = _split_aux(out, has_aux, "vjp")
    out_leaves, out_def = tree_flatten(out)
    out_vals = [_strip(o, trace) for o in out_leaves]

    def vjp_fn(ct: Any) -> tuple[Any, ...]:
        ct_leaves, ct_def = tree_flatten(ct)
        if len(ct_leaves) != len(out_leaves):
            raise ValueError("vjp_fn: the cotangent must have the structure of the output")
        cts = []
        for c, o in zip(ct_leaves, out_vals):
            c = _np.asarray(getval(c)) if not isinstance(c, Tracer) else c
            if _np.shape(getval(c)) != _np.shape(getval(o)):
                raise ValueError(f"vjp_fn: cotangent of shape {_np.shape(getval(c))} for an "
                                 f"output of shape {_np.shape(getval(o))}")
            cts.append(c)
        grads = _pullback(trace, boxed, out_leaves, cts, ())
        grads = [_like_input(g, x) for g, x in zip(grads, _flat_primals(primals))]
        return tuple(ins.regroup(grads, False))

    res = tree_unflatten(out_def, out_vals)
    return (res, vjp_fn, _strip(aux, trace)) if has_aux else (res, vjp_fn)


def _flat_primals(primals: tuple[Any, ...]) -> list[Any]:
    leaves: list[Any] = []
    for p in primals:
        leaves.extend(tree_flatten(p)[0])
    return leaves


def _scalar_out(out: Any, trace: Any, name: str) -> Any:
    if out is None:
        raise TracerError(f"{name} needs a function that returns a scalar array; it returned "
                          f"None. Return the value to differentiate (a forgotten `return`?)")
    leaves, _ = tree_flatten(out)
    if len(leaves) != 1:
        raise TypeError(f"{name} needs a function with a single scalar output; got a "
                        f"{type(out).__name__}. Use chainrule.jacobian for several outputs")
    o = leaves[0]
    if o is None or not (isinstance(o, (Tracer, _np.ndarray, _np.generic, float, int))):
        raise TracerError(
            f"{name} needs a function that returns a scalar array; it returned "
            f"{type(o).__name__}. Return the value to differentiate (a forgotten `return`?)")
    shape = _np.shape(peek(o))     # peek: a deferred output is not computed to be checked
    if shape != ():
        raise TypeError(
            f"{name} requires a scalar output, but the function returned an array of shape "
            f"{shape}. Use chainrule.jacobian for a vector output, reduce it with .sum(), or "
            f"use chainrule.vjp with a cotangent vector"
        )
    dt = dtype_of(o)
    if dt.kind in "iub":
        # as JAX: an integer or boolean output (a comparison, np.allclose) has no
        # derivative to give; a float constant has the derivative 0
        raise TypeError(
            f"{name} requires real-valued outputs (output dtype that is a sub-dtype of "
            f"np.floating), but got {dt}. For differentiation of functions with integer "
            f"outputs, use chainrule.vjp directly.")
    if dt.kind not in "fc":
        raise TypeError(f"{name} requires a real floating-point output; got dtype {dt}")
    return o


def value_and_grad(f: Callable[..., Any], argnums: Argnums = 0,
                   has_aux: bool = False, holomorphic: bool = False) -> Callable[..., Any]:
    """Return a function giving ``(f(*args), grad f(*args))`` (like
    ``jax.value_and_grad``); with ``has_aux`` it gives ``((value, aux), grad)``.

    >>> import chainrule.numpy as np
    >>> value_and_grad(lambda x: np.sum(x ** 2))(np.array([1.0, 2.0]))
    (np.float64(5.0), array([2., 4.]))
    """

    return _value_and_grad(f, argnums, has_aux, True, holomorphic)


def _value_and_grad(f: Callable[..., Any], argnums: Argnums, has_aux: bool,
                    want_value: bool, holomorphic: bool = False) -> Callable[..., Any]:
    @functools.wraps(f)
    def vg(*args: Any, **kwargs: Any) -> Any:
        nums, single = _norm_argnums(argnums, len(args), "value_and_grad")
        fk = functools.partial(f, **kwargs) if kwargs else f
        ins, trace, boxed, out = _reverse(fk, args, nums)
        out, aux = _split_aux(out, has_aux, "grad")
        o = _scalar_out(out, trace, "grad")
        if holomorphic:
            _check_dtypes("grad", ins.leaves, True, "inputs")
        _check_dtypes("grad", [o], holomorphic, "outputs")
        one = _np.ones((), _out_dtype(o))
        # read what is returned before the sweep releases the graph; grad does not return
        # the value, so a deferred one is never computed
        value = _strip(out, trace) if want_value else None
        aux = _strip(aux, trace)
        grads = _pullback(trace, boxed, [o], [one], (), once=True)
        flat = [x for i in nums for x in tree_flatten(args[i])[0]]
        grads = [_like_input(g, x) for g, x in zip(grads, flat)]
        g = ins.regroup(grads, single)
        return ((value, aux), g) if has_aux else (value, g)

    return vg


def grad(f: Callable[..., Any], argnums: Argnums = 0,
         has_aux: bool = False, holomorphic: bool = False) -> Callable[..., Any]:
    """The gradient of a scalar function (text 1.5.1), like ``jax.grad``.

    >>> import chainrule.numpy as np
    >>> grad(lambda x, y: x ** 2 + np.cos(y), argnums=(0, 1))(1.0, 0.0)
    (np.float64(2.0), np.float64(-0.0))

    Complex inputs follow JAX: for a real-valued f, ``grad(f)(z)`` is the conjugate of
    2 df/d(conj z) (docs/math.md); a complex-valued f needs ``holomorphic=True`` and gives
    f'(z).
    """
    vg = _value_and_grad(f, argnums, has_aux, False, holomorphic)

    @functools.wraps(f)
    def g(*args: Any, **kwargs: Any) -> Any:
        if has_aux:
            (_, aux), gr = vg(*args, **kwargs)
            return gr, aux
        return vg(*args, **kwargs)[1]

    return g


def _basis(sizes: list[int], shapes: list[tuple[int, ...]], dtypes: list[Any]) -> list[Any]:
    """Rows of the identity, split into blocks shaped like each leaf: (N,) + shape."""
    n = sum(sizes)
    out = []
    off = 0
    for s, sh, dt in zip(sizes, shapes, dtypes):
        e = _np.zeros((n, s), dt)
        e[off : off + s] = _np.eye(s, dtype=dt)
        out.append(e.reshape((n,) + sh))
        off += s
    return out


def jacrev(f: Callable[..., Any], argnums: Argnums = 0,
           has_aux: bool = False, holomorphic: bool = False) -> Callable[..., Any]:
    """The Jacobian by reverse mode in one batched sweep (text 1.5.2), shaped
    ``out.shape + in.shape`` (like ``jax.jacrev``).

    >>> import chainrule.numpy as np
    >>> f = lambda v: np.stack([2 * v[0] + v[1] ** 3, np.exp(v[1]) - 13 * v[0]])
    >>> jacrev(f)(np.array([1.0, 0.0]))
    array([[  2.,   0.],
           [-13.,   1.]])
    """

    @functools.wraps(f)
    def jac(*args: Any, **kwargs: Any) -> Any:
        nums, single = _norm_argnums(argnums, len(args), "jacrev")
        fk = functools.partial(f, **kwargs) if kwargs else f
        ins, trace, boxed, out = _reverse(fk, args, nums)
        out, aux = _split_aux(out, has_aux, "jacrev")
        out_leaves, out_def = tree_flatten(out)
        if holomorphic:
            _check_dtypes("jacrev", ins.leaves, True, "inputs")
        _check_dtypes("jacrev", out_leaves, holomorphic, "outputs")
        shapes = [_np.shape(getval(o)) for o in out_leaves]
        sizes = [int(_np.prod(s, dtype=_np.int64)) for s in shapes]
        dts = [_out_dtype(o) for o in out_leaves]
        m = sum(sizes)
        if len(out_leaves) == 1 and isinstance(out_leaves[0], Tracer) and \
                not isinstance(out_leaves[0].primal, Tracer):
            # the identity seed, kept diagonal while element-wise rules allow
            seeds = [DiagCotangent(_np.ones(shapes[0], dts[0]))]
        else:
            seeds = _basis(sizes, shapes, dts)
        grads = _pullback(trace, boxed, out_leaves, seeds, (m,), once=True)
        result = []
        off = 0
        for sh, s in zip(shapes, sizes):
            per_in = [_block_rev(g, off, s, sh, b.primal) for g, b in zip(grads, boxed)]
            result.append(ins.regroup(per_in, single))
            off += s
        J = tree_unflatten(out_def, result)
        return (J, _strip(aux, trace)) if has_aux else J

    return jac


def _block_rev(g: Any, off: int, size: int, out_shape: tuple[int, ...], x: Any) -> Any:
    rows = g[off : off + size] if (off, size) != (0, _np.shape(getval(g))[0]) else g
    return cnp.reshape(rows, out_shape + _np.shape(getval(x)))


jacobian = jacrev


# --------------------------------------------------------------------------- forward


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> Any:
    """Push tangents forward: return ``(f(*primals), J @ tangents)`` (like ``jax.jvp``).

    >>> import chainrule.numpy as np
    >>> jvp(np.sin, (0.0,), (3.0,))
    (np.float64(0.0), np.float64(3.0))
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError("jvp: primals and tangents must have the same length")
    nums = tuple(range(len(primals)))
    ins = _Inputs(primals, nums)
    t_leaves = []
    for t in tangents:
        leaves, _ = tree_flatten(t)
        t_leaves.extend(leaves)
    if len(t_leaves) != len(ins.leaves):
        raise ValueError("jvp: each tangent must have the structure of its primal")
    tans = []
    for x, t in zip(ins.leaves, t_leaves):
        tv = t if isinstance(t, Tracer) else _np.asarray(t, dtype=_np.result_type(getval(x)))
        if _np.shape(getval(tv)) != _np.shape(getval(x)):
            raise ValueError(f"jvp: tangent of shape {_np.shape(getval(tv))} for a primal of "
                             f"shape {_np.shape(getval(x))}")
        tans.append(tv)
    out, out_t, trace = _push(f, ins, tans, ())
    return out, out_t


def _push(f: Callable[..., Any], ins: _Inputs, tans: list[Any],
          batch: tuple[int, ...]) -> tuple[Any, Any, Any]:
    trace = ForwardTrace()
    boxed = [trace.new_input(x, t) for x, t in zip(ins.leaves, tans)]
    out = f(*ins.substitute(boxed))
    leaves, d = tree_flatten(out)
    vals, ts = [], []
    for o in leaves:
        if isinstance(o, Tracer) and o.owner is trace:
            vals.append(o.primal)
            t = o.tangent
            ts.append(t if isinstance(t, Tracer) or isinstance(o.primal, Tracer)
                      else _same_float(t, o.primal))
        else:
            v = _strip(o, trace)
            vals.append(v)
            ts.append(_zeros(batch, v))
    vals = [_like_input(v, v) if not isinstance(v, Tracer) else v for v in vals]
    return tree_unflatten(d, vals), tree_unflatten(d, ts), trace


def jacfwd(f: Callable[..., Any], argnums: Argnums = 0,
           has_aux: bool = False, holomorphic: bool = False) -> Callable[..., Any]:
    """The Jacobian by forward mode in one batched push (like ``jax.jacfwd``).

    >>> import chainrule.numpy as np
    >>> jacfwd(np.sin)(np.zeros(2))
    array([[1., 0.],
           [0., 1.]])
    """

    @functools.wraps(f)
    def jac(*args: Any, **kwargs: Any) -> Any:
        nums, single = _norm_argnums(argnums, len(args), "jacfwd")
        fk = functools.partial(f, **kwargs) if kwargs else f
        ins = _Inputs(args, nums)
        _check_dtypes("jacfwd", ins.leaves, holomorphic, "inputs")
        shapes = [_np.shape(getval(x)) for x in ins.leaves]
        sizes = [int(_np.prod(s, dtype=_np.int64)) for s in shapes]
        dts = [_out_dtype(x) for x in ins.leaves]
        seeds = _basis(sizes, shapes, dts)
        n = sum(sizes)
        aux_holder: list[Any] = []

        def fa(*a: Any) -> Any:
            out = fk(*a)
            out, aux = _split_aux(out, has_aux, "jacfwd")
            aux_holder.append(aux)
            return out

        out_v, out_t, trace = _push(fa, ins, seeds, (n,))
        if holomorphic:
            _check_dtypes("jacfwd", tree_flatten(out_v)[0], True, "outputs")
        t_leaves, t_def = tree_flatten(out_t)
        result = [ins.regroup(_blocks_fwd(t, sizes, shapes), single) for t in t_leaves]
        J = tree_unflatten(t_def, result)
        return (J, _strip(aux_holder[0], trace)) if has_aux else J

    return jac


def _blocks_fwd(t: Any, sizes: list[int], shapes: list[tuple[int, ...]]) -> list[Any]:
    """(N,) + out.shape tangents -> one out.shape + in.shape block per input leaf."""
    nd = _np.ndim(getval(t))
    moved = cnp.moveaxis(t, 0, nd - 1) if nd > 1 else t
    out_shape = _np.shape(getval(moved))[:-1]
    res = []
    off = 0
    for s, sh in zip(sizes, shapes):
        blk = moved if len(sizes) == 1 else cnp.getitem(moved, (Ellipsis, slice(off, off + s)))
        res.append(cnp.reshape(blk, out_shape + sh))
        off += s
    return res


def hessian(f: Callable[..., Any], argnums: Argnums = 0,
            holomorphic: bool = False) -> Callable[..., Any]:
    """The Hessian, ``jacfwd(jacrev(f))`` (forward over reverse), shaped
    ``out.shape + in.shape + in.shape``.

    >>> import chainrule.numpy as np
    >>> hessian(lambda x: np.sum(x ** 3))(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    return jacfwd(jacrev(f, argnums, holomorphic=holomorphic), argnums,
                  holomorphic=holomorphic)
