"""User-defined derivatives with JAX's names and semantics: :class:`custom_vjp` and
:class:`custom_jvp`.

Each call of a decorated function becomes one primitive application whose rules are the
user's: ``custom_vjp`` has reverse-mode rules only (forward mode over it raises JAX's
error), ``custom_jvp`` has the user's forward rule, and its reverse rule is that forward
rule transposed (the rule is linear in the tangents, so its transpose is its own
reverse-mode derivative with respect to them, as JAX does it). The rules run on the
arguments as traced by the levels below, so nested derivatives go through them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as _np

from . import numpy_api as cnp
from .batching import vmap
from .core import Primitive, TracerError, getval, is_tracer
from .transforms import vjp as _vjp
from .tree import tree_flatten

__all__ = ["custom_vjp", "custom_jvp"]


def _split(args: tuple[Any, ...], nondiff: tuple[int, ...]) -> tuple[list[Any], Any]:
    """The differentiable arguments, and a function putting them back among the rest."""
    diff = [a for i, a in enumerate(args) if i not in nondiff]

    def full(vals: Sequence[Any]) -> tuple[Any, ...]:
        it = iter(vals)
        return tuple(a if i in nondiff else next(it) for i, a in enumerate(args))

    return diff, full


def _traced_call(kind: str, fun: Callable[..., Any], nondiff: tuple[int, ...],
                 args: tuple[Any, ...]) -> Any:
    """What a call of a custom function with traced arguments starts from: the
    differentiable arguments, the function putting them back, the name, the
    non-differentiable values and the primitive of this call (its rules still to set);
    None when no differentiable argument is traced (the plain function then runs)."""
    diff, full = _split(args, nondiff)
    if not any(is_tracer(a) for a in diff):
        return None
    name = fun.__name__
    _check_leaf(name, diff)
    prim = Primitive(f"{kind} {name}", lambda *v: fun(*full(v)), f"user-defined ({kind})")
    return diff, full, name, tuple(args[i] for i in nondiff), prim


def _check_leaf(name: str, args: list[Any]) -> None:
    for a in args:
        if isinstance(a, (dict, list, tuple)) and tree_flatten(a)[0] and any(
                is_tracer(v) for v in tree_flatten(a)[0]):
            raise TracerError(f"{name}: the differentiable arguments of a custom rule must be "
                              f"arrays (pass containers' leaves as separate arguments)")


def _rows(g: Any, ans: Any, rule: Callable[[Any], Any]) -> Any:
    """``rule`` over the leading batch axes of ``g`` (a Jacobian's basis), one row at a
    time; the user's rule is written for one cotangent or tangent."""
    nb = _np.ndim(getval(g)) - _np.ndim(getval(ans))
    if nb == 0:
        return rule(g)
    lead = _np.shape(getval(g))[:nb]
    flat = cnp.reshape(g, (-1,) + _np.shape(getval(g))[nb:])
    outs = [rule(flat[k]) for k in range(_np.shape(getval(flat))[0])]
    return [cnp.reshape(cnp.stack([o[i] for o in outs]), lead + _np.shape(getval(outs[0][i])))
            for i in range(len(outs[0]))]


class custom_vjp:  # noqa: N801 (JAX's name)
    """A function with a user-defined reverse-mode derivative, as ``jax.custom_vjp``::

        @custom_vjp
        def f(x, y): ...
        def f_fwd(x, y): return f(x, y), residuals
        def f_bwd(residuals, g): return (g_x, g_y)
        f.defvjp(f_fwd, f_bwd)
    """

    def __init__(self, fun: Callable[..., Any], nondiff_argnums: Sequence[int] = ()) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff = tuple(nondiff_argnums)
        self.fwd: Callable[..., Any] | None = None
        self.bwd: Callable[..., Any] | None = None

    def defvjp(self, fwd: Callable[..., Any], bwd: Callable[..., Any]) -> None:
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args: Any) -> Any:
        if self.fwd is None or self.bwd is None:
            raise TracerError(f"custom_vjp {self.fun.__name__}: call defvjp(fwd, bwd) first")
        call = _traced_call("custom_vjp", self.fun, self.nondiff, args)
        if call is None:
            return self.fun(*args)
        diff, full, name, nondiff_vals, prim = call
        fwd, bwd = self.fwd, self.bwd
        cache: dict[int, Any] = {}

        def rule(i: int) -> Any:
            def vjp_i(g: Any, ans: Any, *vals: Any) -> Any:
                key = id(g)
                if key not in cache:
                    _, res = fwd(*full(vals))

                    def one(gk: Any) -> Any:
                        out = bwd(*nondiff_vals, res, gk)
                        if not isinstance(out, (tuple, list)) or len(out) != len(vals):
                            raise TracerError(
                                f"custom_vjp {name}: bwd must return a tuple with one "
                                f"cotangent per differentiable argument ({len(vals)})")
                        return [o if o is not None else _np.zeros(_np.shape(getval(v)))
                                for o, v in zip(out, vals)]

                    cache.clear()
                    cache[key] = (g, _rows(g, ans, one))
                return cache[key][1][i]

            return vjp_i

        def no_jvp(t: Any, ans: Any, *vals: Any) -> Any:
            raise TracerError(f"can't apply forward-mode autodiff (jvp) to a custom_vjp "
                              f"function ({name}): define it with custom_jvp instead")

        for i in range(len(diff)):
            prim.vjps[i] = rule(i)
            prim.jvps[i] = no_jvp
        prim.batch = _vjp_batching(self, full, nondiff_vals)
        out = prim(*diff)
        if isinstance(out, (tuple, list, dict)):
            raise TracerError(f"custom_vjp {name}: the function must return one array")
        return out


class custom_jvp:  # noqa: N801 (JAX's name)
    """A function with a user-defined forward-mode derivative, as ``jax.custom_jvp``::

        @custom_jvp
        def f(x): ...
        @f.defjvp
        def f_jvp(primals, tangents): return f(*primals), tangent_out

    Reverse mode transposes the rule (it must be linear in the tangents, as in JAX).
    """

    def __init__(self, fun: Callable[..., Any], nondiff_argnums: Sequence[int] = ()) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff = tuple(nondiff_argnums)
        self.jvp: Callable[..., Any] | None = None

    def defjvp(self, jvp: Callable[..., Any]) -> Callable[..., Any]:
        self.jvp = jvp
        return jvp

    def __call__(self, *args: Any) -> Any:
        if self.jvp is None:
            raise TracerError(f"custom_jvp {self.fun.__name__}: call defjvp(rule) first")
        call = _traced_call("custom_jvp", self.fun, self.nondiff, args)
        if call is None:
            return self.fun(*args)
        diff, full, _, nondiff_vals, prim = call
        rule_fn = self.jvp

        def tangent_map(vals: Sequence[Any], i: int) -> Callable[[Any], Any]:
            zeros = [_np.zeros(_np.shape(getval(v)), dtype=float) for v in vals]

            def push(t: Any) -> Any:
                ts = list(zeros)
                ts[i] = t
                return rule_fn(*nondiff_vals, tuple(vals), tuple(ts))[1]

            return push

        def jvp_rule(i: int) -> Any:
            def jvp_i(t: Any, ans: Any, *vals: Any) -> Any:
                push = tangent_map(vals, i)
                nb = _np.ndim(getval(t)) - _np.ndim(getval(vals[i]))
                if nb == 0:
                    return push(t)
                lead = _np.shape(getval(t))[:nb]
                flat = cnp.reshape(t, (-1,) + _np.shape(getval(vals[i])))
                outs = [push(flat[k]) for k in range(_np.shape(getval(flat))[0])]
                return cnp.reshape(cnp.stack(outs), lead + _np.shape(getval(ans)))

            return jvp_i

        def vjp_rule(i: int) -> Any:
            def vjp_i(g: Any, ans: Any, *vals: Any) -> Any:
                push = tangent_map(vals, i)
                x0 = _np.zeros(_np.shape(getval(vals[i])), dtype=float)

                def one(gk: Any) -> Any:
                    _, pull = _vjp(push, x0)   # the rule is linear: its VJP is its transpose
                    return pull(gk)

                return _rows(g, ans, one)[0]

            return vjp_i

        for i in range(len(diff)):
            prim.jvps[i] = jvp_rule(i)
            prim.vjps[i] = vjp_rule(i)
        prim.batch = _jvp_batching(self, full, nondiff_vals)
        return prim(*diff)


# ---- vmap: the function and its rules, each mapped over the batch, make one custom
# function of the whole batch (so that a derivative taken outside vmap still uses the
# user's rule, as JAX's)


def _vjp_batching(cf: custom_vjp, full: Callable[..., Any], nondiff_vals: tuple[Any, ...]
                  ) -> Callable[..., Any]:
    def rule(prim: Primitive, vals: list[Any], dims: list[Any]) -> Any:
        axes = tuple(dims)
        fun, fwd, bwd = cf.fun, cf.fwd, cf.bwd

        def bfun(*d: Any) -> Any:
            return vmap(lambda *e: fun(*full(e)), in_axes=axes)(*d)

        def bfwd(*d: Any) -> Any:
            return vmap(lambda *e: fwd(*full(e)), in_axes=axes)(*d)   # (out, residuals)

        def bbwd(res: Any, g: Any) -> Any:
            cts = vmap(lambda r, gg: tuple(bwd(*nondiff_vals, r, gg)))(res, g)
            # an argument shared by the batch gets the sum of the examples' cotangents
            return tuple(c if c is None or d is not None else cnp.sum(c, axis=0)
                         for c, d in zip(cts, dims))

        batched = custom_vjp(bfun)
        batched.__name__ = f"vmap({getattr(cf, '__name__', 'f')})"
        batched.defvjp(bfwd, bbwd)
        return batched(*vals), 0

    return rule


def _jvp_batching(cf: custom_jvp, full: Callable[..., Any], nondiff_vals: tuple[Any, ...]
                  ) -> Callable[..., Any]:
    def rule(prim: Primitive, vals: list[Any], dims: list[Any]) -> Any:
        axes = tuple(dims)
        fun, jvp_fn = cf.fun, cf.jvp

        def bfun(*d: Any) -> Any:
            return vmap(lambda *e: fun(*full(e)), in_axes=axes)(*d)

        batched = custom_jvp(bfun)
        batched.__name__ = f"vmap({getattr(cf, '__name__', 'f')})"

        def bjvp(primals: Any, tangents: Any) -> Any:
            return vmap(lambda p, t: tuple(jvp_fn(*nondiff_vals, p, t)),
                        in_axes=(axes, axes))(tuple(primals), tuple(tangents))

        batched.defjvp(bjvp)
        return batched(*vals), 0

    return rule
