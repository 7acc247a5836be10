"""The tracing core: primitives, traces, tracers and the reverse sweep.

A *primitive* is a NumPy operation with derivative rules (see ``rules.py``). When a
primitive is called on plain arrays it simply runs NumPy. When one of its arguments is a
*tracer* (a value being differentiated), the call is handed to that tracer's *trace*:

* a :class:`ReverseTrace` records a node of the computation graph; the reverse sweep
  (:func:`backward`) later walks the graph in reverse topological order and adds each
  node's vector-Jacobian products into its parents' gradients (iteratively, no recursion);
* a :class:`ForwardTrace` carries a tangent beside the value and pushes it through the
  primitive's Jacobian-vector product at once.

Traces nest (each transform opens a new level), and the rules themselves are written with
primitives, so derivatives of derivatives work: ``hessian = jacfwd(jacrev(f))``.

Batching. Every rule accepts cotangents and tangents with extra *leading* axes (a batch
of basis vectors); the number of those axes is read off locally as
``g.ndim - ans.ndim`` (or ``t.ndim - x.ndim``). That is how a whole Jacobian is one pass.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as _np

__all__ = [
    "Primitive",
    "Tracer",
    "TracerError",
    "ReverseTrace",
    "ForwardTrace",
    "getval",
    "is_tracer",
]


class TracerError(TypeError):
    """A traced value was used in a way that cannot be differentiated."""


_levels = itertools.count(1)


def new_level() -> int:
    return next(_levels)


class Primitive:
    """A differentiable operation: its NumPy implementation plus one VJP and one JVP per
    differentiable argument (registered in ``rules.py``)."""

    __slots__ = ("name", "impl", "vjps", "jvps", "nondiff", "section", "__wrapped__",
                 "diag_factor", "diag_dense", "lazy", "lazy_args", "ans_free", "numpy",
                 "public", "batch", "index_args")

    def __init__(self, name: str, impl: Callable[..., Any], section: str = "",
                 numpy: Any = None, public: bool = False) -> None:
        self.name = name
        # the NumPy function this primitive is, called with NumPy's own arguments: calls of
        # it on traced values dispatch here, and chainrule.numpy exports it under each of
        # its NumPy names; ``public``: exported under ``name`` when NumPy has no such
        # function (sigmoid, relu). A primitive with neither is internal: a function of
        # numpy_api normalises the arguments and calls it.
        self.numpy = numpy
        self.public = public or numpy is not None
        self.impl = impl
        self.vjps: dict[int, Callable[..., Any]] = {}
        self.jvps: dict[int, Callable[..., Any]] = {}
        self.nondiff: set[int] = set()
        self.section = section
        # optional fast paths for a diagonal batch of cotangents (see DiagCotangent)
        self.diag_factor: Callable[..., Any] | None = None
        self.diag_dense: Callable[..., Any] | None = None
        # deferred evaluation in reverse mode (see Deferred): ``lazy(vals, params)`` gives
        # the (shape, dtype) of the result without computing it, or None to compute now;
        # ``lazy_args``: the VJPs read only the shapes of the arguments, so an argument
        # that is itself deferred may stay so
        self.lazy: Callable[..., Any] | None = None
        self.lazy_args = False
        # argument numbers whose VJP reads only the shape of the result: once a node's
        # consumers are swept, a one-use sweep may drop its value early (see backward)
        self.ans_free: frozenset[int] = frozenset()
        # the batching rule for vmap (batching.py): ``batch(prim, vals, dims, **params)``
        # gives ``(out, out_dim)``; None: the primitive cannot be used inside vmap
        self.batch: Callable[..., Any] | None = None
        # arguments that are index tuples, which may hold a batch tracer (vmap: indices of
        # each example's own, as take_along_axis makes for sort)
        self.index_args: tuple[int, ...] = ()

        self.__wrapped__ = impl

    def __call__(self, *args: Any, **params: Any) -> Any:
        top = None
        for a in args:
            if isinstance(a, Tracer):
                t = a.owner
                if top is None or t.level > top.level:
                    top = t
        if top is None:
            return self.impl(*args, **params)
        return top.process(self, args, params)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


# --------------------------------------------------------------------------- tracers


def getval(x: Any) -> Any:
    """The concrete NumPy value under any number of tracer levels. It stops at a batch
    tracer (vmap): one example has no array of its own, and the batch tracer stands for it
    (comparisons and NumPy's functions on it batch)."""
    while isinstance(x, Tracer) and not x.opaque:
        x = x.primal
    return x


def peek(x: Any) -> Any:
    """Like :func:`getval`, but a value not computed yet comes back as its
    :class:`Deferred` (which has ``shape``, ``ndim``, ``size`` and ``dtype``) instead of
    being computed."""
    while isinstance(x, Tracer) and not x.opaque:
        if type(x) is LazyReverseTracer:
            d = x.deferred
            if d.vals is not None or d.value is _RELEASED:
                return d
        x = x.primal
    return x


_ndarray = _np.ndarray


def shape_of(v: Any) -> tuple[int, ...]:
    """``np.shape`` without its dispatch layer for arrays (the common case)."""
    if type(v) is _ndarray:
        return v.shape
    if isinstance(v, Tracer):
        return v.shape
    return _np.shape(v)


def value_shape(x: Any) -> tuple[int, ...]:
    """The shape of the value under any tracers (a deferred value is not computed)."""
    return shape_of(peek(x))


def value_ndim(x: Any) -> int:
    """The number of axes of the value under any tracers."""
    return len(shape_of(peek(x)))


def dtype_of(x: Any) -> _np.dtype:
    v = peek(x)
    if type(v) is _ndarray or isinstance(v, (Deferred, Tracer)):
        return v.dtype                  # an array's own: result_type's dispatch costs 1 us
    return _np.result_type(v)


def is_tracer(x: Any) -> bool:
    return isinstance(x, Tracer)


_PLAIN = frozenset({float, int, complex, bool, _np.ndarray, _np.float64, _np.float32,
                    _np.complex128, _np.int64, list, tuple})


def _defers(o: Any) -> bool:
    """Whether a binary operator leaves ``o`` to its own reflected operator: an object
    that is not an array but takes part in NumPy's dispatch (an xarray DataArray, a pandas
    Series) wraps the traced value itself, as it does with JAX's arrays."""
    t = type(o)
    if t in _PLAIN or isinstance(o, (Tracer, _np.generic, _np.ndarray)):
        return False
    return getattr(t, "__array_ufunc__", None) is not None




def _public_module(mod: str) -> str:
    """``scipy.linalg._decomp`` -> ``scipy.linalg``: the module a user imports from."""
    parts = mod.split(".")
    while len(parts) > 1 and parts[-1].startswith("_"):
        parts.pop()
    return ".".join(parts)


def _ufunc_name(ufunc: Any) -> str:
    """A ufunc's public name: NumPy's own, or SciPy's special functions."""
    name = getattr(ufunc, "__name__", str(ufunc))
    if getattr(_np, name, None) is ufunc:
        return f"numpy.{name}"
    import sys

    special = sys.modules.get("scipy.special")
    if special is not None and getattr(special, name, None) is ufunc:
        return f"scipy.special.{name}"
    return name


def func_name(func: Any) -> str:
    return f"{_public_module(getattr(func, '__module__', None) or 'numpy')}.{func.__name__}"


def _caller_library_function() -> str | None:
    """The library function (NumPy, SciPy...) that the user's code called and that turned
    a traced value into an array: the outermost library frame on the stack."""
    import inspect

    here = inspect.currentframe()
    f = here.f_back.f_back if here is not None and here.f_back is not None else None
    found = None
    while f is not None:
        mod = f.f_globals.get("__name__", "")
        top = mod.split(".")[0]
        if top in ("numpy", "scipy", "sklearn", "pandas"):
            name = f.f_code.co_name
            if name in _GENERIC:
                # a decorator's wrapper: the function it wraps is among its locals
                for v in f.f_locals.values():
                    vm = getattr(v, "__module__", None) or ""
                    if callable(v) and vm.split(".")[0] == top and hasattr(v, "__name__"):
                        mod, name = vm, v.__name__
                        break
            if found is None or not (name.startswith(("_", "<")) or name in _GENERIC):
                found = f"{_public_module(mod)}.{name}"
        elif top != "chainrule" or found is not None:
            break
        f = f.f_back
    return found


# the names of decorators' inner functions, which do not name what the user called
_GENERIC = frozenset({"wrapper", "inner", "wrapped", "decorator", "func", "f"})


def _no_rule(qualname: str) -> str:
    """The message for a function without a derivative rule, and the fix that exists."""
    short = qualname.rsplit(".", 1)[-1]
    mod = qualname.rsplit(".", 1)[0] if "." in qualname else ""
    fix = None
    if mod == "numpy" and short in OPS.EXPORTS:
        fix = f"use chainrule.numpy.{short}, which has one"
    elif mod == "numpy.linalg" and short in OPS.LINALG:
        fix = f"use chainrule.numpy.linalg.{short}, which has one"
    if fix is None:
        fix = ("chainrule.calculus.supported() lists the functions that have one; write the "
               "function with those (import chainrule.numpy as np)")
    return f"{qualname} has no derivative rule in chainrule: {fix}"


class Tracer:
    """A value being differentiated. Behaves like a read-only ndarray.

    Its records, read by the traces and the sweep (as JAX's tracers have): ``primal``, the
    value under it (a batch tracer's: the whole batch), and ``owner``, the trace that made
    it; a reverse tracer adds its graph ``node``, a forward one its ``tangent``."""

    __slots__ = ("primal", "owner")
    __array_priority__ = 1000.0
    # a batch tracer (vmap) is where getval stops: see batching.py
    opaque = False

    # ---- array-like properties
    @property
    def shape(self) -> tuple[int, ...]:
        return shape_of(peek(self))

    @property
    def ndim(self) -> int:
        return _np.ndim(peek(self))

    @property
    def size(self) -> int:
        return _np.size(peek(self))

    @property
    def dtype(self) -> _np.dtype:
        return dtype_of(self)

    def __len__(self) -> int:
        shape = self.shape
        if not shape:
            raise TypeError("len() of a 0-d traced value")
        return shape[0]

    def __repr__(self) -> str:
        return f"Tracer(level={self.owner.level}, value={getval(self)!r})"

    # ---- conversions that would lose the derivative: refuse with a fix
    def __bool__(self) -> bool:
        raise TracerError(
            "bool() of a traced value (a Python `if`, `while`, `and`, `or` or `not` on it) "
            "cannot be differentiated: branch on a comparison such as `if x > 0:` (evaluated "
            "on the concrete value) or use chainrule.numpy.where for a differentiable choice"
        )

    def __float__(self) -> float:
        raise TracerError(
            "float() of a traced value (math.sin, math.exp, float(x), or assigning it into a "
            "plain NumPy array) would drop its derivative: use chainrule.numpy.sin and friends "
            "and build arrays with chainrule.numpy.stack or concatenate"
        )

    __int__ = __float__
    __complex__ = __float__

    def __index__(self) -> int:
        raise TracerError("a traced value cannot be used as an index or a size")

    def __array__(self, dtype: Any = None, copy: Any = None) -> _np.ndarray:
        if dtype is not None and _np.dtype(dtype).kind in "iub":
            # a cast to an integer or boolean type (np.int64(x)): piecewise constant, so
            # its derivative is zero and the result is a plain value, as x.astype(int)
            return _np.asarray(getval(self)).astype(dtype)
        lib = _caller_library_function()
        if lib is not None and not lib.startswith(("numpy.array", "numpy.asarray")):
            raise TracerError(
                f"{lib} converted a traced value to a plain NumPy array, which would drop "
                f"its derivative: {_no_rule(lib).split(': ', 1)[1]}")
        raise TracerError(
            "a traced value was converted to a plain NumPy array (np.array([...]) or "
            "np.asarray of traced values, or a function that NumPy cannot dispatch): use "
            "chainrule.numpy.stack / concatenate / array instead, which keep the derivative"
        )

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TracerError(
            "in-place assignment x[...] = v into a traced array cannot be differentiated: "
            "build the new array with chainrule.numpy.where, concatenate or stack instead"
        )

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TracerError(
            "a traced value cannot be pickled or deep-copied (copy.deepcopy, pickle, "
            "multiprocessing): the copy would be cut off from the computation, and its "
            "derivative would silently be zero. Use the value itself; it is immutable"
        )

    def __deepcopy__(self, memo: Any) -> Any:
        return self.__reduce_ex__(2)

    def __copy__(self) -> Any:
        return self

    def __iter__(self):  # type: ignore[no-untyped-def]
        for i in range(len(self)):
            yield self[i]

    # ---- NumPy dispatch protocols
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        name = _ufunc_name(ufunc)
        if method != "__call__":
            raise TracerError(
                f"{name}.{method} on a traced value has no derivative rule: use "
                f"chainrule.numpy functions (for example chainrule.numpy.sum for "
                f"numpy.add.reduce)"
            )
        if kwargs.get("out") is not None:
            raise TracerError(f"{name}(..., out=...) writes in place and cannot be traced")
        kwargs.pop("out", None)
        fn = DISPATCH_UFUNCS.get(ufunc)
        if fn is None:
            raise TracerError(_no_rule(name))
        if kwargs:
            raise TracerError(
                f"{name} on a traced value does not support the arguments "
                f"{sorted(kwargs)}"
            )
        return fn(*inputs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        fn = DISPATCH_FUNCTIONS.get(func)
        if fn is None:
            raise TracerError(_no_rule(func_name(func)))
        return fn(*args, **kwargs)

    # ---- operators (all go through primitives)
    def __add__(self, o: Any) -> Any:
        if _defers(o):
            return NotImplemented
        return OPS.add(self, o)

    def __radd__(self, o: Any) -> Any:
        return OPS.add(o, self)

    def __sub__(self, o: Any) -> Any:
        if _defers(o):
            return NotImplemented
        return OPS.subtract(self, o)

    def __rsub__(self, o: Any) -> Any:
        return OPS.subtract(o, self)

    def __mul__(self, o: Any) -> Any:
        if _defers(o):
            return NotImplemented
        return OPS.multiply(self, o)

    def __rmul__(self, o: Any) -> Any:
        return OPS.multiply(o, self)

    def __truediv__(self, o: Any) -> Any:
        if _defers(o):
            return NotImplemented
        return OPS.divide(self, o)

    def __rtruediv__(self, o: Any) -> Any:
        return OPS.divide(o, self)

    def __pow__(self, o: Any) -> Any:
        if _defers(o):
            return NotImplemented
        return OPS.power(self, o)

    def __rpow__(self, o: Any) -> Any:
        return OPS.power(o, self)

    def __mod__(self, o: Any) -> Any:
        if _defers(o):
            return NotImplemented
        return OPS.mod(self, o)

    def __rmod__(self, o: Any) -> Any:
        return OPS.mod(o, self)

    def __floordiv__(self, o: Any) -> Any:
        if _defers(o):
            return NotImplemented
        return OPS.floor(OPS.divide(self, o))

    def __rfloordiv__(self, o: Any) -> Any:
        return OPS.floor(OPS.divide(o, self))

    def __divmod__(self, o: Any) -> Any:
        if _defers(o):
            return NotImplemented
        return self.__floordiv__(o), self.__mod__(o)

    def __rdivmod__(self, o: Any) -> Any:
        return self.__rfloordiv__(o), self.__rmod__(o)

    def __matmul__(self, o: Any) -> Any:
        if _defers(o):
            return NotImplemented
        return OPS.matmul(self, o)

    def __rmatmul__(self, o: Any) -> Any:
        return OPS.matmul(o, self)

    def __neg__(self) -> Any:
        return OPS.negative(self)

    def __pos__(self) -> Any:
        return self

    def __abs__(self) -> Any:
        return OPS.abs(self)

    def __getitem__(self, idx: Any) -> Any:
        return OPS.getitem(self, idx)

    # comparisons are not differentiable: they give plain boolean arrays
    def __lt__(self, o: Any) -> Any:
        return getval(self) < getval(o)

    def __le__(self, o: Any) -> Any:
        return getval(self) <= getval(o)

    def __gt__(self, o: Any) -> Any:
        return getval(self) > getval(o)

    def __ge__(self, o: Any) -> Any:
        return getval(self) >= getval(o)

    def __eq__(self, o: Any) -> Any:  # type: ignore[override]
        return getval(self) == getval(o)

    def __ne__(self, o: Any) -> Any:  # type: ignore[override]
        return getval(self) != getval(o)

    __hash__ = None  # type: ignore[assignment]

    # ---- ndarray methods
    @property
    def T(self) -> Any:
        return OPS.transpose(self)

    def transpose(self, *axes: Any) -> Any:
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return OPS.transpose(self, axes or None)

    def reshape(self, *shape: Any, order: str = "C") -> Any:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return OPS.reshape(self, shape, order=order)

    def sum(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return OPS.sum(self, axis=axis, keepdims=keepdims, **kw)

    def mean(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return OPS.mean(self, axis=axis, keepdims=keepdims, **kw)

    def prod(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return OPS.prod(self, axis=axis, keepdims=keepdims, **kw)

    def max(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return OPS.max(self, axis=axis, keepdims=keepdims, **kw)

    def min(self, axis: Any = None, keepdims: bool = False, **kw: Any) -> Any:
        return OPS.min(self, axis=axis, keepdims=keepdims, **kw)

    def var(self, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
        return OPS.var(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def std(self, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
        return OPS.std(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def dot(self, o: Any) -> Any:
        return OPS.dot(self, o)

    def swapaxes(self, a: int, b: int) -> Any:
        return OPS.swapaxes(self, a, b)

    def squeeze(self, axis: Any = None) -> Any:
        return OPS.squeeze(self, axis)

    def ravel(self, order: str = "C") -> Any:
        return OPS.ravel(self, order=order)

    def flatten(self, order: str = "C") -> Any:
        return OPS.ravel(self, order=order)

    def clip(self, a_min: Any = None, a_max: Any = None) -> Any:
        return OPS.clip(self, a_min, a_max)

    def astype(self, dtype: Any, **kw: Any) -> Any:
        return OPS.astype(self, dtype)

    def copy(self) -> Any:
        return self

    @property
    def real(self) -> Any:
        return OPS.real(self)

    @property
    def imag(self) -> Any:
        return OPS.imag(self)

    def conj(self) -> Any:
        return OPS.conj(self)

    conjugate = conj

    def item(self) -> Any:
        return self.__float__()


# What the tracer's operators and NumPy's protocols call. core sits below the table of
# rules and imports nothing from it: numpy_api, which is built from the table, installs
# itself here when it loads (``install``), so the package has no import cycle.
OPS: Any = None
DISPATCH_UFUNCS: dict[Any, Any] = {}
DISPATCH_FUNCTIONS: dict[Any, Any] = {}


def install(ops: Any, ufuncs: dict[Any, Any], functions: dict[Any, Any]) -> None:
    """Give the tracers their operators (``ops.add``...) and NumPy's dispatch maps."""
    global OPS, DISPATCH_UFUNCS, DISPATCH_FUNCTIONS
    OPS, DISPATCH_UFUNCS, DISPATCH_FUNCTIONS = ops, ufuncs, functions




class ReverseTracer(Tracer):
    __slots__ = ("node",)

    def __init__(self, value: Any, trace: ReverseTrace, node: Node) -> None:
        self.primal = value
        self.owner = trace
        self.node = node


_RELEASED = object()


class Deferred:
    """A primitive's result that reverse mode has not computed yet.

    ``grad`` throws the function's value away, and the VJP rules of ``add``,
    ``multiply``, ``sum`` and a few more read only the shapes of their results, so those
    results are computed when something reads them and never otherwise: in
    ``grad(lambda x: np.sum(np.sin(x) * x ** 2))`` the product and its sum are never formed,
    which is what a compiler's dead-code elimination does for ``jax.jit(jax.grad(f))``.
    """

    __slots__ = ("prim", "vals", "params", "shape", "dtype", "value")

    def __init__(self, prim: Primitive, vals: list[Any], params: dict[str, Any],
                 shape: tuple[int, ...], dtype: _np.dtype) -> None:
        self.prim, self.vals, self.params = prim, vals, params
        self.shape, self.dtype = shape, dtype
        self.value: Any = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def force(self) -> Any:
        vals = self.vals
        if vals is not None:
            vals = [v.force() if type(v) is Deferred else v for v in vals]
            self.value = self.prim.impl(*vals, **self.params)
            self.vals = self.params = None  # type: ignore[assignment]
        elif self.value is _RELEASED:
            name = self.prim.name if self.prim is not None else "an intermediate"
            raise TracerError(
                f"this traced value ({name}, shape {self.shape}) was never "
                f"computed, because grad does not need it, and the sweep has released its "
                f"inputs. A traced value can't be used after grad returns: compute it "
                f"inside the function, return it as auxiliary data (has_aux=True), or use "
                f"value_and_grad")
        return self.value

    @staticmethod
    def stub(shape: tuple[int, ...], dtype: _np.dtype) -> Deferred:
        """A released stand-in that keeps only a shape and a dtype."""
        d = Deferred(None, None, None, shape, dtype)  # type: ignore[arg-type]
        d.value = _RELEASED
        return d

    def release(self) -> None:
        """Drop the inputs of a value that was never computed (after the sweep)."""
        if self.vals is not None:
            self.vals = self.params = None  # type: ignore[assignment]
            self.value = _RELEASED


def force(v: Any) -> Any:
    """A value, computing it first if it is :class:`Deferred`."""
    return v.force() if type(v) is Deferred else v


class LazyReverseTracer(ReverseTracer):
    """A reverse-mode tracer whose value is a :class:`Deferred`, computed on first read."""

    __slots__ = ("deferred",)

    def __init__(self, deferred: Deferred, trace: ReverseTrace, node: Node) -> None:
        self.deferred = deferred
        self.owner = trace
        self.node = node

    @property  # type: ignore[override]
    def primal(self) -> Any:
        return self.deferred.force()


class ForwardTracer(Tracer):
    __slots__ = ("tangent",)

    def __init__(self, value: Any, trace: ForwardTrace, tangent: Any) -> None:
        self.primal = value
        self.owner = trace
        self.tangent = tangent


# --------------------------------------------------------------------------- reverse mode


class Node:
    """One recorded primitive application: ``ans = prim(*vals, **params)``."""

    __slots__ = ("prim", "vals", "params", "ans", "parents")

    def __init__(self, prim: Primitive | None, vals: Any, params: Any, ans: Any,
                 parents: list[tuple[int, Node]]) -> None:
        self.prim = prim
        self.vals = vals
        self.params = params
        self.ans = ans
        self.parents = parents


class ReverseTrace:
    def __init__(self) -> None:
        self.level = new_level()

    def new_input(self, value: Any) -> ReverseTracer:
        return ReverseTracer(value, self, Node(None, (), {}, value, []))

    def process(self, prim: Primitive, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        vals = list(args)
        parents = []
        keep = prim.lazy_args
        for i, a in enumerate(args):
            if isinstance(a, Tracer) and a.owner is self:
                if keep and type(a) is LazyReverseTracer and a.deferred.vals is not None:
                    vals[i] = a.deferred
                else:
                    vals[i] = a.primal
                if i in prim.nondiff:
                    continue
                if i not in prim.vjps:
                    raise TracerError(
                        f"{prim.name}: argument {i} has no reverse-mode derivative rule"
                    )
                parents.append((i, a.node))
        if parents and prim.lazy is not None:
            meta = prim.lazy(vals, params)
            if meta is not None:
                d = Deferred(prim, vals, params, *meta)
                return LazyReverseTracer(d, self, Node(prim, vals, params, d, parents))
        if keep:
            vals = [force(v) for v in vals]
        ans = prim(*vals, **params)
        if not parents:
            return ans
        return ReverseTracer(ans, self, Node(prim, vals, params, ans, parents))


def _toposort(roots: list[Node]) -> tuple[list[Node], dict[Node, int]]:
    """Nodes reachable from ``roots``, each before its parents (iterative Kahn), and the
    number of uses of each node as an argument."""
    children: dict[Node, int] = {}
    stack = list(roots)
    seen = set(roots)
    while stack:
        n = stack.pop()
        for _, p in n.parents:
            children[p] = children.get(p, 0) + 1
            if p not in seen:
                seen.add(p)
                stack.append(p)
    uses = dict(children)
    order = []
    ready = [r for r in dict.fromkeys(roots) if children.get(r, 0) == 0]
    while ready:
        n = ready.pop()
        order.append(n)
        for _, p in n.parents:
            children[p] -= 1
            if children[p] == 0:
                ready.append(p)
    return order, uses


def _check_shape(prim: Primitive, argnum: int, contrib: Any, x: Any, g: Any, ans: Any) -> None:
    cs = contrib.shape if type(contrib) is _ndarray else _np.shape(contrib)
    xs = x.shape if type(x) is _ndarray else _np.shape(x)
    if cs == xs and type(g) is _ndarray and type(ans) is _ndarray and g.ndim == ans.ndim:
        return                            # the common case: no batch axes, shapes agree
    nb = len(shape_of(g)) - len(shape_of(ans))
    if cs[nb:] != xs or len(cs) != nb + len(xs):
        raise AssertionError(
            f"internal error: the VJP of {prim.name} for argument {argnum} has shape {cs}, "
            f"expected batch {_np.shape(g)[:nb]} + {xs}"
        )


class DiagCotangent:
    """The identity batch of cotangents that starts a Jacobian, kept diagonal.

    It stands for the array ``(M,) + d.shape`` whose row k is ``d`` masked to entry k.
    Element-wise rules map a diagonal to a diagonal (text 3.2.1: their Jacobians are
    diagonal), so the sweep carries one vector instead of an M x M matrix until a rule
    needs the full array; a layer's product W a then costs O(n^2), not O(n^3).
    """

    __slots__ = ("d",)

    def __init__(self, d: Any) -> None:
        self.d = d

    def dense(self) -> Any:
        d = _np.asarray(self.d)
        m = d.size
        z = _np.zeros((m, m), d.dtype)
        z.flat[:: m + 1] = d.ravel()
        return z.reshape((m,) + d.shape)


def _diag_step(prim: Primitive, argnum: int, g: DiagCotangent, node: Node) -> Any:
    """A diagonal cotangent through one rule, or None when the rule needs the full array."""
    vals = node.vals
    if any(isinstance(v, Tracer) for v in vals) or isinstance(node.ans, Tracer):
        return None
    if prim.diag_factor is not None and shape_of(vals[argnum]) == shape_of(node.ans):
        f = prim.diag_factor(argnum, node.ans, *vals, **node.params)
        return DiagCotangent(g.d if f is None else g.d * f)
    if prim.diag_dense is not None:
        return prim.diag_dense(argnum, g.d, node.ans, *vals, **node.params)
    return None


def _is_complex(v: Any) -> bool:
    """Whether a value, a tracer, a Deferred or a DiagCotangent holds complex numbers."""
    if type(v) is DiagCotangent:
        v = v.d
    if type(v) is _ndarray:
        return v.dtype.kind == "c"
    if isinstance(v, DiagCotangent):
        v = v.d
    if isinstance(v, (float, int)):
        return False
    return dtype_of(v).kind == "c"


def _real_part(v: Any) -> Any:
    """The cotangent (or tangent) of a real value whose rule gave a complex one: its real
    part. With JAX's pairing <a, b> = Re(sum a b), only the real part of a cotangent acts
    on a real perturbation (jax's convert_element_type transposes the same way)."""
    if isinstance(v, DiagCotangent):
        return DiagCotangent(_np.real(v.d))
    if isinstance(v, Tracer):
        return OPS.real(v)
    return _np.real(v)


def _accumulate(prev: Any, contrib: Any, owned: set[int] | None = None) -> Any:
    """prev + contrib; in place when ``prev`` is an array this sweep made and holds alone
    (its id is in ``owned``)."""
    if prev is None:
        return contrib
    if owned is not None and id(prev) in owned and isinstance(contrib, _np.ndarray) and \
            prev.shape == contrib.shape and prev.dtype == _np.result_type(prev, contrib):
        return _np.add(prev, contrib, out=prev)
    add = OPS.add
    if isinstance(prev, DiagCotangent) and isinstance(contrib, DiagCotangent):
        return DiagCotangent(prev.d + contrib.d)
    if isinstance(prev, DiagCotangent):
        prev = prev.dense()
    if isinstance(contrib, DiagCotangent):
        contrib = contrib.dense()
    return add(prev, contrib)


def _fresh(contrib: Any, g: Any, node: Node) -> bool:
    """Whether a rule's result is a new array of its own (not ``g``, a node value or a
    view)."""
    return (isinstance(contrib, _np.ndarray) and contrib is not g and
            contrib is not node.ans and contrib.base is None and
            not any(contrib is v for v in node.vals) and contrib.flags.writeable)


def backward(outputs: list[tuple[Node, Any]], inputs: list[Node],
             release: bool = False) -> list[Any]:
    """The reverse sweep. ``outputs`` pairs output nodes with their cotangents (which may
    carry leading batch axes, or be a :class:`DiagCotangent`); returns the gradient for
    each input node (None if the output does not depend on it). With ``release`` the
    graph is used once: each node drops its arrays as soon as its rules have run, so
    memory is reused while the sweep is still going. A result that the sweep did not make
    itself is copied, so a gradient never aliases an array the caller holds."""
    grads: dict[Node, Any] = {}
    for node, ct in outputs:
        grads[node] = _accumulate(grads.get(node), ct)
    input_set = set(inputs)
    # arrays the rules made in this sweep and that only ``grads`` holds: they may be
    # accumulated into in place (never a user's array, a node's value or a cotangent)
    owned: set[int] = set()
    # accumulating in place is for the one-use sweeps of grad and jacobian on plain
    # values; a vjp's pullback over a graph that nested differentiation built (a pullback
    # of a pullback) gave wrong second derivatives with it (tests/test_calculus_regressions)
    nested = any([isinstance(ct, Tracer) for _, ct in outputs]) or \
        any([isinstance(n.ans, Tracer) for n in inputs])
    in_place = owned if release and not nested else None
    roots = [n for n, _ in outputs]
    order, uses = _toposort(roots)
    for node in order:
        g = grads.get(node)
        if g is None or node.prim is None:
            continue
        if node not in input_set:
            del grads[node]
            owned.discard(id(g))  # g leaves the sweep's hands: its id may be reused
        prim = node.prim
        for argnum, parent in node.parents:
            contrib = None
            if isinstance(g, DiagCotangent):
                contrib = _diag_step(prim, argnum, g, node)
                if contrib is None:
                    g = g.dense()
                elif _fresh(contrib, None, node):
                    owned.add(id(contrib))
            if contrib is None:
                contrib = prim.vjps[argnum](g, node.ans, *node.vals, **node.params)
                _check_shape(prim, argnum, contrib, node.vals[argnum], g, node.ans)
                if _fresh(contrib, g, node):
                    owned.add(id(contrib))
            if _is_complex(contrib) and not _is_complex(node.vals[argnum]):
                contrib = _real_part(contrib)
            prev = grads.get(parent)
            grads[parent] = acc = _accumulate(prev, contrib, in_place)
            if acc is not prev and acc is not contrib:
                owned.discard(id(prev))
                if isinstance(acc, _np.ndarray):
                    owned.add(id(acc))
        if release:
            if type(node.ans) is Deferred:
                node.ans.release()
            node.vals, node.ans, node.params = (), None, {}
            for _, parent in node.parents:
                left = uses[parent] = uses[parent] - 1
                ans = parent.ans
                if left == 0 and type(ans) is _np.ndarray and parent.prim is not None and \
                        all(i in parent.prim.ans_free for i, _ in parent.parents):
                    # every consumer is swept and the parent's own rules read only the
                    # shape of its value: free the array now, while it is still in cache
                    parent.ans = Deferred.stub(ans.shape, ans.dtype)
    out = []
    for n in inputs:
        g = grads.get(n)
        if isinstance(g, DiagCotangent):
            g = g.dense()
        elif isinstance(g, _np.ndarray) and id(g) not in owned:
            # an alias of something the function or the user may hold (an input, a
            # constant, an intermediate value, the cotangent itself): hand back a copy
            g = g.copy()
        out.append(g)
    return out


# --------------------------------------------------------------------------- forward mode


class ForwardTrace:
    def __init__(self) -> None:
        self.level = new_level()

    def new_input(self, value: Any, tangent: Any) -> ForwardTracer:
        return ForwardTracer(value, self, tangent)

    def process(self, prim: Primitive, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        vals = list(args)
        tans: list[Any] = [None] * len(args)
        any_t = False
        for i, a in enumerate(args):
            if isinstance(a, Tracer) and a.owner is self:
                vals[i] = a.primal
                if i in prim.nondiff:
                    continue
                if i not in prim.jvps:
                    raise TracerError(
                        f"{prim.name}: argument {i} has no forward-mode derivative rule"
                    )
                tans[i] = a.tangent
                any_t = True
        ans = prim(*vals, **params)
        if not any_t:
            return ans
        add = OPS.add
        out = None
        for i, t in enumerate(tans):
            if t is None:
                continue
            c = prim.jvps[i](t, ans, *vals, **params)
            _check_tangent(prim, i, c, t, vals[i], ans)
            if _is_complex(c) and not _is_complex(ans):
                c = _real_part(c)
            out = c if out is None else add(out, c)
        return ForwardTracer(ans, self, out)


def _check_tangent(prim: Primitive, argnum: int, c: Any, t: Any, x: Any, ans: Any) -> None:
    nt = len(shape_of(t)) - len(shape_of(x))
    want = shape_of(t)[:nt] + shape_of(ans)
    if shape_of(c) != want:
        raise AssertionError(
            f"internal error: the JVP of {prim.name} for argument {argnum} has shape "
            f"{_np.shape(c)}, expected {want}"
        )


def transpose_linear(fn: Callable[[Any], Any], zero: Any, ct: Any) -> Any:
    """The transpose of a function ``fn`` that is linear (over the reals) in its argument,
    applied to the cotangent ``ct``: one reverse sweep through ``fn`` at ``zero`` (an array
    of the argument's shape and dtype). The rules use it for VJPs whose JVP is shorter to
    write than its transpose (under JAX's pairing Re(sum(ct * t)))."""
    trace = ReverseTrace()
    t = trace.new_input(zero)
    out = fn(t)
    if not (isinstance(out, Tracer) and out.owner is trace):
        return zero
    r = backward([(out.node, ct)], [t.node])[0]
    return zero if r is None else r
