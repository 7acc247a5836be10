"""Cost functions C and their gradients grad_a C (text 3.1, 3.4), one row each.

Every cost is an average over the m examples of a batch, so the gradients below carry
the 1/m, and BP3/BP4 only sum over examples.

* ``mse``: the text's C = 1/(2m) sum_i ||y_i - a_i||^2, so grad_a C = (a - y)/m.
* ``cross_entropy``: fused with softmax and computed from the logits z^L:
  C = 1/m sum_i (logsumexp(z_i) - z_i[y_i]); then delta^L = (softmax(z) - y)/m directly
  (BP1 with the softmax Jacobian folded in, which is exact and never divides by a).
* ``binary_cross_entropy``: fused with sigmoid, from logits:
  C = 1/m sum_i sum_j (softplus(z_ij) - y_ij z_ij); delta^L = (sigmoid(z) - y)/m.

A user's own cost is one function ``C(a, y)`` written with ``chainrule.numpy``;
grad_a C comes from the calculus engine (:meth:`Cost.from_function`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._names import lookup
from ..calculus import rules as _R

__all__ = ["Cost", "COSTS", "get_cost"]

Array = np.ndarray


class Cost:
    """The record of one cost C, averaged over the m rows of a batch.

    ``value(a, y, z)`` is C in NumPy (from the logits z where the cost is fused with the
    output activation ``fused_with``), ``grad_a(a, y)`` is grad_a C, and ``delta(z, a, y)``
    the exact fused delta^L for that output. ``expr(a, y)`` is C written with
    chainrule.numpy (what explain's check differentiates, and what a user writes for
    their own); ``latex`` and ``text`` are C as explain prints it.
    """

    def __init__(self, name: str, value: Callable[..., float],
                 grad_a: Callable[[Array, Array], Array] | None,
                 delta: Callable[[Array, Array, Array], Array] | None = None,
                 fused_with: str | None = None, builtin: bool = True, *,
                 expr: Callable[[Any, Any], Any] | None = None, latex: str = "",
                 text: str = "") -> None:
        self.name = name
        self.value = value
        self.grad_a = grad_a
        self.delta = delta
        self.fused_with = fused_with
        self.builtin = builtin
        self.expr = expr
        self.latex = latex or rf"C = \operatorname{{{name}}}(a^L, y)"
        self.text = text or f"C = {name}(a^L, y)"

    def __repr__(self) -> str:
        return f"Cost({self.name!r})"

    @classmethod
    def from_function(cls, fn: Callable[[Any, Any], Any], name: str | None = None) -> Cost:
        """A cost from one function ``C(a, y)`` (a scalar, averaged over the rows) written
        with ``chainrule.numpy``; grad_a C comes from the calculus engine.

        >>> import chainrule.numpy as cnp
        >>> mae = Cost.from_function(lambda a, y: cnp.mean(cnp.abs(a - y)), "mae")
        >>> mae.grad_a(np.array([[2.0]]), np.array([[1.0]]))
        array([[1.]])
        """
        from ..calculus import grad

        g = grad(fn)

        def value(a: Array, y: Array, z: Array | None = None) -> float:
            return float(np.asarray(fn(a, y)))

        def grad_a(a: Array, y: Array) -> Array:
            return np.asarray(g(a, y), dtype=a.dtype)

        return cls(name or getattr(fn, "__name__", "custom"), value, grad_a, builtin=False,
                   expr=fn)


# --------------------------------------------------------------------------- the table


def _mse_value(a: Array, y: Array, z: Array | None = None) -> float:
    d = a - y
    return float(np.vdot(d, d)) / (2 * a.shape[0])


def _mse_grad(a: Array, y: Array) -> Array:
    return (a - y) / a.shape[0]


def _xent_value(a: Array, y: Array, z: Array | None = None) -> float:
    if z is None:  # from probabilities (not fused): clip away from log 0
        p = np.clip(a, np.finfo(a.dtype).tiny, 1.0)
        return float(-np.sum(y * np.log(p))) / a.shape[0]
    lse = _R.stable_logsumexp(z, (-1,), False)
    return float(np.sum(lse) - np.vdot(y, z)) / z.shape[0]


def _xent_grad(a: Array, y: Array) -> Array:
    p = np.clip(a, np.finfo(a.dtype).tiny, 1.0)
    return -(y / p) / a.shape[0]


def _xent_delta(z: Array, a: Array, y: Array) -> Array:
    return (a - y) / z.shape[0]


def _bce_value(a: Array, y: Array, z: Array | None = None) -> float:
    if z is None:
        eps = np.finfo(a.dtype).eps
        p = np.clip(a, eps, 1 - eps)
        return float(-np.sum(y * np.log(p) + (1 - y) * np.log1p(-p))) / a.shape[0]
    return float(np.sum(np.logaddexp(0.0, z) - y * z)) / z.shape[0]


def _bce_grad(a: Array, y: Array) -> Array:
    eps = np.finfo(a.dtype).eps
    p = np.clip(a, eps, 1 - eps)
    return (p - y) / (p * (1 - p)) / a.shape[0]


def _bce_delta(z: Array, a: Array, y: Array) -> Array:
    return (a - y) / z.shape[0]


def _cnp() -> Any:
    import chainrule.numpy as cnp

    return cnp


def _mse_expr(a: Any, y: Any) -> Any:
    return _cnp().sum((y - a) ** 2) / (2 * y.shape[0])


def _xent_expr(a: Any, y: Any) -> Any:
    return -_cnp().sum(y * _cnp().log(a)) / y.shape[0]


def _bce_expr(a: Any, y: Any) -> Any:
    cnp = _cnp()
    return -cnp.sum(y * cnp.log(a) + (1 - y) * cnp.log(1 - a)) / y.shape[0]


COSTS: dict[str, Cost] = {
    c.name: c for c in [
        Cost("mse", _mse_value, _mse_grad, expr=_mse_expr,
             latex=r"C = \tfrac{1}{2m}\sum_i \lVert y_i - a^L_i \rVert^2",
             text="C = 1/(2m) sum ||y - a^L||^2"),
        Cost("cross_entropy", _xent_value, _xent_grad, _xent_delta, fused_with="softmax",
             expr=_xent_expr, latex=r"C = -\tfrac{1}{m}\sum_i y_i \cdot \log a^L_i",
             text="C = -1/m sum y . log a^L"),
        Cost("binary_cross_entropy", _bce_value, _bce_grad, _bce_delta,
             fused_with="sigmoid", expr=_bce_expr,
             latex=r"C = -\tfrac{1}{m}\sum_i y\log a + (1-y)\log(1-a)",
             text="C = -1/m sum y log a + (1-y) log(1-a)"),
    ]
}
ALIASES = {"quadratic": "mse", "squared_error": "mse", "xent": "cross_entropy",
           "categorical_crossentropy": "cross_entropy", "log_loss": "cross_entropy",
           "bce": "binary_cross_entropy", "binary_crossentropy": "binary_cross_entropy"}


def get_cost(spec: str | Cost | Callable[[Any, Any], Any],
             custom: dict[str, Any] | None = None) -> Cost:
    """A cost by name (one of COSTS, or of ``custom``: name -> function or Cost), a Cost, or
    a plain function ``C(a, y)``."""
    if isinstance(spec, Cost):
        return spec
    if isinstance(spec, str):
        if custom and spec in custom:
            found = custom[spec]
            return found if isinstance(found, Cost) else Cost.from_function(found, spec)
        return lookup(COSTS, spec, "cost", ALIASES, " or pass a function C(a, y)")
    if callable(spec):
        return Cost.from_function(spec)
    raise TypeError(f"a cost must be a name or a function, not {type(spec).__name__}")
