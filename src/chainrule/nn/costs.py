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

from .. import _native
from .._names import lookup
from ..calculus import rules as _R

__all__ = ["Cost", "COSTS", "get_cost"]

Array = np.ndarray


class Cost:
    """A cost with ``value(a, y, z)``, ``grad_a(a, y)`` and, for fused costs,
    ``delta(z, a, y)``: delta^L computed from the logits for the matching output
    activation ``fused_with``."""

    def __init__(self, name: str, value: Callable[..., float],
                 grad_a: Callable[[Array, Array], Array] | None,
                 delta: Callable[[Array, Array, Array], Array] | None = None,
                 fused_with: str | None = None, builtin: bool = True) -> None:
        self.name = name
        self.value = value
        self.grad_a = grad_a
        self.delta = delta
        self.fused_with = fused_with
        self.builtin = builtin

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

        return cls(name or getattr(fn, "__name__", "custom"), value, grad_a, builtin=False)


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
    lse = _R._logsumexp_impl(z, (-1,), False)
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


def softmax_cross_entropy(z: Array, a_out: Array, Y: Array, delta_out: Array
                          ) -> tuple[float, Array, Array]:
    """The fused output layer on the hot path: a^L = softmax(z^L) into ``a_out``, the cost
    C = 1/m sum (logsumexp(z) - <y, z>) from the same max and sum, and
    delta^L = (a^L - y)/m into ``delta_out``. Returns (C, a^L, delta^L)."""
    return softmax_cross_entropy_hits(z, a_out, Y, delta_out)[:3]


def softmax_cross_entropy_hits(z: Array, a_out: Array, Y: Array, delta_out: Array,
                               b: Array | None = None, db: Array | None = None
                               ) -> tuple[float, Array, Array, int | None, bool]:
    """:func:`softmax_cross_entropy` with more fused in. ``b``: z^L is W a without the bias
    yet, and z += b happens here. ``db``: where to write dC/db^L (BP3). Returns
    (C, a^L, delta^L, hits, db_done): hits is the number of rows whose argmax of a^L is the
    argmax of y when the compiled kernel counted it (else None), and db_done whether
    ``db`` was written. ``Y`` may also be the m class labels (int64, in [0, k)), which
    stand for their one-hot rows."""
    m, k = z.shape
    kern = _native.kernels()
    labels = Y.ndim == 1
    if kern is not None and m and z.dtype == a_out.dtype == delta_out.dtype and \
            (Y.dtype == np.int64 if labels else Y.dtype == z.dtype) and \
            z.flags.c_contiguous and Y.flags.c_contiguous and a_out.flags.c_contiguous and \
            delta_out.flags.c_contiguous and z.dtype in (np.float32, np.float64):
        # three calls (the compiled kernels around NumPy's own exp) instead of eleven
        f64 = z.dtype == np.float64
        mx = np.empty(m, z.dtype)
        kern.softmax_pre(z, b if b is not None else np.zeros(k, z.dtype), a_out, mx, m, k,
                         f64)
        np.exp(a_out, out=a_out)
        out_db = db if db is not None else np.empty(k, z.dtype)
        value, hits = kern.softmax_post(z, Y, a_out, delta_out, mx, out_db, m, k, f64,
                                        labels)
        return value, a_out, delta_out, hits, db is not None
    if labels:
        Y = np.eye(k, dtype=z.dtype)[Y]
    if b is not None:
        z += b
    # ufunc methods directly: np.max / np.sum add a Python layer per call (NOTES.md)
    if k < 32:
        # NumPy reduces short rows one row at a time (14 us for 256 x 10); reducing the
        # transposed copy runs k - 1 vectorised maxima instead (2 us)
        mx = np.maximum.reduce(np.ascontiguousarray(z.T), axis=0)[:, None]
    else:
        mx = np.maximum.reduce(z, axis=1, keepdims=True)
    np.subtract(z, mx, out=a_out)
    np.exp(a_out, out=a_out)
    s = np.matmul(a_out, np.ones(k, a_out.dtype))[:, None]   # row sums as one BLAS gemv
    a_out /= s
    np.log(s, out=s)
    s += mx                                   # logsumexp(z) per row
    value = (float(np.add.reduce(s, axis=None)) - float(np.vdot(Y, z))) / m
    np.subtract(a_out, Y, out=delta_out)
    delta_out *= 1.0 / m
    return value, a_out, delta_out, None, False


COSTS: dict[str, Cost] = {
    c.name: c for c in [
        Cost("mse", _mse_value, _mse_grad),
        Cost("cross_entropy", _xent_value, _xent_grad, _xent_delta, fused_with="softmax"),
        Cost("binary_cross_entropy", _bce_value, _bce_grad, _bce_delta,
             fused_with="sigmoid"),
    ]
}
ALIASES = {"quadratic": "mse", "squared_error": "mse", "xent": "cross_entropy",
           "categorical_crossentropy": "cross_entropy", "log_loss": "cross_entropy",
           "bce": "binary_cross_entropy", "binary_crossentropy": "binary_cross_entropy"}


def get_cost(spec: str | Cost | Callable[[Any, Any], Any]) -> Cost:
    """A cost by name (one of COSTS), a Cost, or a plain function ``C(a, y)``."""
    if isinstance(spec, Cost):
        return spec
    if isinstance(spec, str):
        return lookup(COSTS, spec, "cost", ALIASES, " or pass a function C(a, y)")
    if callable(spec):
        return Cost.from_function(spec)
    raise TypeError(f"a cost must be a name or a function, not {type(spec).__name__}")
