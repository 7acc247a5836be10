"""An independent oracle: HIPS autograd on composite functions (Jacobians, Hessians)."""

from __future__ import annotations

import autograd
import autograd.numpy as anp
import numpy as onp
import pytest

import chainrule.numpy as np
from chainrule import grad, hessian, jacfwd, jacobian

r = onp.random.default_rng(42)
W1, b1, W2 = r.normal(size=(4, 3)), r.normal(size=4), r.normal(size=(2, 4))
Y = onp.array([0.0, 1.0])


def composites(m):
    """The same functions written against a NumPy-like module ``m``."""
    def sm(z):
        e = m.exp(z - m.max(z))
        return e / m.sum(e)

    return {
        "mlp_mse": lambda x: m.sum((m.dot(W2, m.tanh(m.dot(W1, x) + b1)) - Y) ** 2) / 2,
        "softmax_xent": lambda x: -m.sum(Y * m.log(sm(m.dot(W2, m.tanh(m.dot(W1, x)))))),
        "trig_poly": lambda x: m.sum(m.sin(x) * x ** 2 + m.cos(x[0] * x[1]) / (1 + x ** 2)),
        "reductions": lambda x: m.prod(m.exp(x / 3)) + m.mean(m.sqrt(x ** 2 + 1)) * m.max(x),
        "outer_reshape": lambda x: m.sum(m.reshape(m.outer(x, x) ** 2, (-1,))[::2]),
        "vector_out": lambda x: m.concatenate([m.tanh(x) * x[0], m.log1p(x ** 2)]),
        "expm1_arctan": lambda x: m.sum(m.expm1(m.arctan(x)) * m.sinh(x) + m.cosh(x) * x),
    }


OURS, THEIRS = composites(np), composites(anp)
X = onp.array([0.3, -0.8, 1.1])


@pytest.mark.parametrize("name", sorted(OURS))
def test_jacobian_matches_autograd(name):
    ref = autograd.jacobian(THEIRS[name])(X)
    onp.testing.assert_allclose(jacobian(OURS[name])(X), ref, rtol=1e-10, atol=1e-12)
    onp.testing.assert_allclose(jacfwd(OURS[name])(X), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(OURS))
def test_hessian_matches_autograd(name):
    f, g = OURS[name], THEIRS[name]
    if name == "vector_out":
        ref = autograd.jacobian(autograd.jacobian(g))(X)
    else:
        ref = autograd.hessian(g)(X)
    onp.testing.assert_allclose(hessian(f)(X), ref, rtol=1e-10, atol=1e-12)
    if name != "vector_out":
        onp.testing.assert_allclose(jacobian(grad(f))(X), ref, rtol=1e-10, atol=1e-12)
