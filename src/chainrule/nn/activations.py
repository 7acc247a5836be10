"""Activation functions sigma and their derivatives sigma' (text 2.1, 3.3).

One table, one row per activation: the forward ``a = sigma(z)`` and the backward
``grad_z = grad_a (Hadamard) sigma'(z)`` (the Hadamard product of BP1 and BP2). Every
forward is numerically stable for inputs of any size. softmax is not element-wise: its
backward is the vector-Jacobian product ``s * (g - <g, s>)``.

A user's own activation is one function written with ``chainrule.numpy``; its derivative
comes from the calculus engine (:meth:`Activation.from_function`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._names import lookup
from ..calculus import rules as _R

__all__ = ["Activation", "ACTIVATIONS", "get_activation"]

Array = np.ndarray


class Activation:
    """sigma with its backward. ``forward(z)`` gives a; ``backward(z, a, grad_a)`` gives
    grad_z = dC/dz from grad_a = dC/da (for element-wise sigma: grad_a * sigma'(z))."""

    def __init__(self, name: str, forward: Callable[[Array], Array],
                 backward: Callable[[Array, Array, Array], Array],
                 elementwise: bool = True, builtin: bool = True) -> None:
        self.name = name
        self.forward = forward
        self.backward = backward
        self.elementwise = elementwise
        self.builtin = builtin

    def __call__(self, z: Array) -> Array:
        return self.forward(z)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"

    @classmethod
    def from_function(cls, fn: Callable[[Any], Any], name: str | None = None,
                      elementwise: bool = True) -> Activation:
        """An activation from one function written with ``chainrule.numpy``; sigma' comes
        from the calculus engine (a reverse sweep), so a new activation is one function.

        >>> import chainrule.numpy as cnp
        >>> swish = Activation.from_function(lambda z: z * cnp.sigmoid(z), "swish")
        >>> float(swish.backward(np.zeros(1), swish(np.zeros(1)), np.ones(1))[0])
        0.5
        """
        from ..calculus import vjp

        def forward(z: Array) -> Array:
            return np.asarray(fn(z))

        def backward(z: Array, a: Array, grad_a: Array) -> Array:
            _, pull = vjp(fn, z)
            return np.asarray(pull(grad_a)[0], dtype=z.dtype)

        return cls(name or getattr(fn, "__name__", "custom"), forward, backward,
                   elementwise=elementwise, builtin=False)


# --------------------------------------------------------------------------- the table
LEAKY_SLOPE = 0.01
ELU_ALPHA = 1.0
_GELU_C = float(np.sqrt(2.0 / np.pi))  # a Python float: keeps float32 float32


def _identity_b(z: Array, a: Array, g: Array) -> Array:
    return g


def _relu_f(z: Array) -> Array:
    return np.maximum(z, 0, dtype=z.dtype)


def _relu_b(z: Array, a: Array, g: Array) -> Array:
    return g * (z > 0)                       # text 3.3: ReLU' is 1 for z > 0, else 0


def _leaky_f(z: Array) -> Array:
    return np.where(z > 0, z, LEAKY_SLOPE * z)


def _leaky_b(z: Array, a: Array, g: Array) -> Array:
    return g * np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype)


def _elu_f(z: Array) -> Array:
    return np.where(z > 0, z, ELU_ALPHA * np.expm1(np.minimum(z, 0)))


def _elu_b(z: Array, a: Array, g: Array) -> Array:
    return g * np.where(z > 0, 1.0, a + ELU_ALPHA).astype(z.dtype)


def _gelu_f(z: Array) -> Array:
    # the tanh form of GELU (Hendrycks & Gimpel), as in GPT-2 and torch's approximate="tanh"
    return 0.5 * z * (1.0 + np.tanh(_GELU_C * (z + 0.044715 * z ** 3)))


def _gelu_b(z: Array, a: Array, g: Array) -> Array:
    u = _GELU_C * (z + 0.044715 * z ** 3)
    t = np.tanh(u)
    du = _GELU_C * (1.0 + 3 * 0.044715 * z ** 2)
    return g * (0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * du).astype(z.dtype)


def _softplus_f(z: Array) -> Array:
    return np.logaddexp(0.0, z).astype(z.dtype, copy=False)


def _softplus_b(z: Array, a: Array, g: Array) -> Array:
    return g * _R._sigmoid_impl(z)


def _sigmoid_b(z: Array, a: Array, g: Array) -> Array:
    return g * a * (1.0 - a)                 # sigma' = sigma (1 - sigma)


def _tanh_b(z: Array, a: Array, g: Array) -> Array:
    return g * (1.0 - a * a)


def _softmax_f(z: Array) -> Array:
    return _R._softmax_impl(z, -1)


def _softmax_b(z: Array, a: Array, g: Array) -> Array:
    # J^T g for J = diag(s) - s s^T
    return a * (g - np.sum(g * a, axis=-1, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    a.name: a for a in [
        Activation("identity", lambda z: z, _identity_b),
        Activation("relu", _relu_f, _relu_b),
        Activation("leaky_relu", _leaky_f, _leaky_b),
        Activation("elu", _elu_f, _elu_b),
        Activation("gelu", _gelu_f, _gelu_b),
        Activation("softplus", _softplus_f, _softplus_b),
        Activation("sigmoid", _R._sigmoid_impl, _sigmoid_b),
        Activation("tanh", np.tanh, _tanh_b),
        Activation("softmax", _softmax_f, _softmax_b, elementwise=False),
    ]
}
ALIASES = {"linear": "identity", "none": "identity", "logistic": "sigmoid"}


def get_activation(spec: str | Activation | Callable[[Any], Any]) -> Activation:
    """An activation by name (one of ACTIVATIONS), an Activation, or a plain function."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        return lookup(ACTIVATIONS, spec, "activation", ALIASES, " or pass a function")
    if callable(spec):
        return Activation.from_function(spec)
    raise TypeError(f"an activation must be a name or a function, not "
                    f"{type(spec).__name__}")
