"""Activation functions sigma and their derivatives sigma' (text 2.1, 3.3): one record each.

A record holds everything chainrule knows of an activation, and every other module reads
it: the value ``value(z)`` written with ``chainrule.numpy`` (what explain's check
differentiates and what a user writes for their own), the NumPy forms the engines call
(``forward``, ``forward_into``, ``backward``, ``backward_into``: ``grad_z = grad_a
(Hadamard) sigma'(z)``, the Hadamard product of BP1 and BP2), the initialiser family, the
ONNX builder and the LaTeX and text that explain prints. Every forward is numerically
stable for inputs of any size. softmax is not element-wise: its backward is the
vector-Jacobian product ``s * (g - <g, s>)``.

A user's own activation is one function written with ``chainrule.numpy``; its derivative
comes from the calculus engine (:meth:`Activation.from_function`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._names import lookup
from ..calculus import rules as _R

__all__ = ["Activation", "ACTIVATIONS", "get_activation", "LEAKY_SLOPE", "ELU_ALPHA"]

Array = np.ndarray
# an ONNX builder: (z, op, const, f64) -> the name of a^l; op(kind, inputs, **attrs) adds a
# node, const(value) a constant (chainrule.io.onnx_export supplies both)
OnnxBuilder = Callable[[str, Any, Any, bool], str]


def _cnp() -> Any:
    import chainrule.numpy as cnp

    return cnp


class Activation:
    """The record of one activation sigma.

    ``forward(z)`` gives a; ``backward(z, a, grad_a)`` gives grad_z = dC/dz (for
    element-wise sigma: grad_a * sigma'(z)); the ``_into`` forms write into a buffer where
    they can. ``value`` is sigma written with chainrule.numpy (differentiable);
    ``init`` the initialiser family ("he" or "glorot"); ``onnx`` the ONNX builder (None:
    no ONNX form); ``latex`` and ``text`` sigma(z) as explain prints it.
    """

    def __init__(self, name: str, value: Callable[[Any], Any],
                 forward: Callable[[Array], Array],
                 backward: Callable[[Array, Array, Array], Array], *,
                 forward_into: Callable[[Array, Array], Array] | None = None,
                 backward_into: Callable[[Array, Array, Array], Array] | None = None,
                 init: str = "glorot", onnx: OnnxBuilder | None = None, latex: str = "",
                 text: str = "", elementwise: bool = True, builtin: bool = True) -> None:
        self.name = name
        self.value = value
        self.forward = forward
        self.backward = backward
        self._forward_into = forward_into
        self._backward_into = backward_into
        self.init = init
        self.onnx = onnx
        self.latex = latex or rf"\operatorname{{{name}}}(z)"
        self.text = text or f"{name}(z)"
        self.elementwise = elementwise
        self.builtin = builtin

    def forward_into(self, z: Array, out: Array) -> Array:
        """a = sigma(z), written into ``out`` where this activation can."""
        if self._forward_into is not None:
            return self._forward_into(z, out)
        return self.forward(z)

    def backward_into(self, z: Array, a: Array, g: Array) -> Array:
        """grad_z = g (Hadamard) sigma'(z), written into g where this activation can."""
        if self._backward_into is not None:
            return self._backward_into(z, a, g)
        return self.backward(z, a, g)

    def __call__(self, z: Array) -> Array:
        return self.forward(z)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"

    @classmethod
    def from_function(cls, fn: Callable[[Any], Any], name: str | None = None,
                      elementwise: bool = True) -> Activation:
        """An activation from one function written with ``chainrule.numpy``; sigma' comes
        from the calculus engine (a reverse sweep), so a new activation is one function.
        Its name is what a model file stores (``load_model(..., custom_objects=)``).

        >>> import chainrule.numpy as cnp
        >>> swish = Activation.from_function(lambda z: z * cnp.sigmoid(z), "swish")
        >>> float(swish.backward(np.zeros(1), swish(np.zeros(1)), np.ones(1))[0])
        0.5
        """
        from ..calculus import vjp

        def forward(z: Array) -> Array:
            return np.asarray(fn(z), dtype=z.dtype)

        def backward(z: Array, a: Array, grad_a: Array) -> Array:
            _, pull = vjp(fn, z)
            return np.asarray(pull(grad_a)[0], dtype=z.dtype)

        nm = name or getattr(fn, "__name__", "custom")
        return cls(nm, fn, forward, backward, elementwise=elementwise, builtin=False)


# --------------------------------------------------------------------------- the table
LEAKY_SLOPE = 0.01
ELU_ALPHA = 1.0
_GELU_C = float(np.sqrt(2.0 / np.pi))  # a Python float: keeps float32 float32


# identity ---------------------------------------------------------------------------
def _identity_onnx(z: str, op: Any, const: Any, f64: bool) -> str:
    return z


_IDENTITY = Activation(
    "identity", lambda z: z, lambda z: z, lambda z, a, g: g,
    forward_into=lambda z, out: z, backward_into=lambda z, a, g: g,
    onnx=_identity_onnx, latex="z", text="z")


# relu (text 3.3: ReLU' is 1 for z > 0, else 0) ----------------------------------------
def _relu_onnx(z: str, op: Any, const: Any, f64: bool) -> str:
    return op("Relu", [z])


_RELU = Activation(
    "relu", lambda z: _cnp().relu(z), lambda z: np.maximum(z, 0, dtype=z.dtype),
    lambda z, a, g: g * (z > 0),
    forward_into=lambda z, out: np.maximum(z, 0, out=out),
    backward_into=lambda z, a, g: np.multiply(g, z > 0, out=g),
    init="he", onnx=_relu_onnx, latex=r"\max(0, z)", text="max(0, z)")


# leaky relu --------------------------------------------------------------------------
def _leaky_onnx(z: str, op: Any, const: Any, f64: bool) -> str:
    if not f64:
        return op("LeakyRelu", [z], alpha=LEAKY_SLOPE)
    neg = op("Mul", [op("Neg", [op("Relu", [op("Neg", [z])])]), const(LEAKY_SLOPE)])
    return op("Add", [op("Relu", [z]), neg])


_LEAKY = Activation(
    "leaky_relu", lambda z: _cnp().where(z > 0, z, LEAKY_SLOPE * z),
    lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
    lambda z, a, g: g * np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype),
    init="he", onnx=_leaky_onnx, latex=r"\max(0.01 z, z)", text="max(0.01 z, z)")


# elu ---------------------------------------------------------------------------------
def _elu_onnx(z: str, op: Any, const: Any, f64: bool) -> str:
    if not f64:
        return op("Elu", [z], alpha=ELU_ALPHA)
    # z for z > 0, alpha (exp(z) - 1) otherwise: relu(z) + alpha (exp(min(z, 0)) - 1)
    mn = op("Neg", [op("Relu", [op("Neg", [z])])])
    em1 = op("Sub", [op("Exp", [mn]), const(1.0)])
    return op("Add", [op("Relu", [z]), op("Mul", [em1, const(ELU_ALPHA)])])


_ELU = Activation(
    "elu",
    lambda z: _cnp().where(z > 0, z, ELU_ALPHA * _cnp().expm1(_cnp().minimum(z, 0.0))),
    lambda z: np.where(z > 0, z, ELU_ALPHA * np.expm1(np.minimum(z, 0))),
    lambda z, a, g: g * np.where(z > 0, 1.0, a + ELU_ALPHA).astype(z.dtype),
    init="he", onnx=_elu_onnx, latex=r"z \text{ if } z > 0 \text{ else } e^z - 1",
    text="z if z > 0 else exp(z) - 1")


# gelu (the tanh form of Hendrycks & Gimpel, as GPT-2 and torch's approximate="tanh") --
def _gelu_f(z: Any, np_: Any = np) -> Any:
    return 0.5 * z * (1.0 + np_.tanh(_GELU_C * (z + 0.044715 * z ** 3)))


def _gelu_b(z: Array, a: Array, g: Array) -> Array:
    u = _GELU_C * (z + 0.044715 * z ** 3)
    t = np.tanh(u)
    du = _GELU_C * (1.0 + 3 * 0.044715 * z ** 2)
    return g * (0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * du).astype(z.dtype)


def _gelu_onnx(z: str, op: Any, const: Any, f64: bool) -> str:
    # 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))): opset 17 has no Gelu
    z3 = op("Mul", [op("Mul", [z, z]), z])
    inner = op("Add", [z, op("Mul", [z3, const(0.044715)])])
    t = op("Tanh", [op("Mul", [inner, const(_GELU_C)])])
    return op("Mul", [op("Mul", [z, const(0.5)]), op("Add", [t, const(1.0)])])


_GELU = Activation(
    "gelu", lambda z: _gelu_f(z, _cnp()), _gelu_f, _gelu_b, init="he", onnx=_gelu_onnx,
    latex=r"\tfrac{1}{2} z \left(1 + \tanh\left(\sqrt{2/\pi}\,(z + 0.044715 z^3)\right)"
          r"\right)",
    text="0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))")


# softplus ----------------------------------------------------------------------------
def _softplus_onnx(z: str, op: Any, const: Any, f64: bool) -> str:
    if not f64:
        return op("Softplus", [z])
    # log(1 + exp(-|z|)) + max(z, 0): stable, from operators with float64 kernels
    t = op("Exp", [op("Neg", [op("Abs", [z])])])
    return op("Add", [op("Log", [op("Add", [t, const(1.0)])]), op("Relu", [z])])


_SOFTPLUS = Activation(
    "softplus", lambda z: _cnp().softplus(z),
    lambda z: np.logaddexp(0.0, z).astype(z.dtype, copy=False),
    lambda z, a, g: g * _R.stable_sigmoid(z), init="he", onnx=_softplus_onnx,
    latex=r"\log(1 + e^z)", text="log(1 + exp(z))")


# sigmoid (sigma' = sigma (1 - sigma)) ----------------------------------------------
def _sigmoid_onnx(z: str, op: Any, const: Any, f64: bool) -> str:
    return op("Sigmoid", [z])


_SIGMOID = Activation(
    "sigmoid", lambda z: _cnp().sigmoid(z), _R.stable_sigmoid,
    lambda z, a, g: g * a * (1.0 - a),
    backward_into=lambda z, a, g: np.multiply(g, a * (1.0 - a), out=g),
    onnx=_sigmoid_onnx, latex=r"\frac{1}{1 + e^{-z}}", text="1 / (1 + exp(-z))")


# tanh (tanh' = 1 - tanh^2) -----------------------------------------------------------
def _tanh_onnx(z: str, op: Any, const: Any, f64: bool) -> str:
    return op("Tanh", [z])


_TANH = Activation(
    "tanh", lambda z: _cnp().tanh(z), np.tanh, lambda z, a, g: g * (1.0 - a * a),
    forward_into=lambda z, out: np.tanh(z, out=out),
    backward_into=lambda z, a, g: np.multiply(g, 1.0 - a * a, out=g),
    onnx=_tanh_onnx, latex=r"\tanh(z)", text="tanh(z)")


# softmax (J = diag(s) - s s^T, so J^T g = s (g - <g, s>)) ----------------------------
def _softmax_onnx(z: str, op: Any, const: Any, f64: bool) -> str:
    return op("Softmax", [z], axis=-1)


_SOFTMAX = Activation(
    "softmax", lambda z: _cnp().softmax(z, axis=-1), lambda z: _R.stable_softmax(z, -1),
    lambda z, a, g: a * (g - np.sum(g * a, axis=-1, keepdims=True)),
    onnx=_softmax_onnx, latex=r"\frac{e^{z_j}}{\sum_k e^{z_k}}",
    text="exp(z_j) / sum_k exp(z_k)", elementwise=False)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a for a in [_IDENTITY, _RELU, _LEAKY, _ELU, _GELU, _SOFTPLUS, _SIGMOID, _TANH,
                        _SOFTMAX]
}
ALIASES = {"linear": "identity", "none": "identity", "logistic": "sigmoid"}


def get_activation(spec: str | Activation | Callable[[Any], Any],
                   custom: dict[str, Any] | None = None) -> Activation:
    """An activation by name (one of ACTIVATIONS, or of ``custom``: name -> function or
    Activation), an Activation, or a plain function."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        if custom and spec in custom:
            found = custom[spec]
            return found if isinstance(found, Activation) else \
                Activation.from_function(found, spec)
        return lookup(ACTIVATIONS, spec, "activation", ALIASES, " or pass a function")
    if callable(spec):
        return Activation.from_function(spec)
    raise TypeError(f"an activation must be a name or a function, not "
                    f"{type(spec).__name__}")
