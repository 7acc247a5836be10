"""custom_vjp and custom_jvp with JAX's semantics (the examples of JAX's documentation)."""

from __future__ import annotations

import numpy as onp
import pytest

import chainrule as cr
import chainrule.numpy as np
from chainrule.calculus import TracerError, custom_jvp, custom_vjp, numerical_jacobian


@custom_vjp
def clip_gradient(x, lo, hi):
    return x


def _cg_fwd(x, lo, hi):
    return x, (lo, hi)


def _cg_bwd(res, g):
    lo, hi = res
    return (np.clip(g, lo, hi), None, None)


clip_gradient.defvjp(_cg_fwd, _cg_bwd)


@custom_vjp
def f(x, y):
    return np.sin(x) * y


def f_fwd(x, y):
    return f(x, y), (np.cos(x), np.sin(x), y)


def f_bwd(res, g):
    cos_x, sin_x, y = res
    return (cos_x * g * y, sin_x * g)


f.defvjp(f_fwd, f_bwd)


@custom_jvp
def log1pexp(x):
    return np.log1p(np.exp(x))


@log1pexp.defjvp
def log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp(x), t * (1.0 - 1.0 / (1.0 + np.exp(x)))


def test_custom_vjp_replaces_the_derivative():
    assert cr.grad(lambda x: 3.0 * clip_gradient(x, -0.5, 0.5))(1.0) == 0.5
    x, y = 0.7, 1.3
    gx, gy = cr.grad(f, argnums=(0, 1))(x, y)
    assert onp.isclose(gx, onp.cos(x) * y) and onp.isclose(gy, onp.sin(x))


def test_custom_vjp_nested_reverse_and_jacobian():
    # the bwd is written with chainrule.numpy, so it is differentiated again
    h = cr.grad(cr.grad(f))(0.7, 1.3)
    assert onp.isclose(h, -onp.sin(0.7) * 1.3)
    xs = onp.array([0.1, 0.5, 0.9])
    J = cr.jacobian(lambda x: f(x, 2.0))(xs)
    onp.testing.assert_allclose(J, onp.diag(2.0 * onp.cos(xs)))


def test_forward_mode_over_custom_vjp_is_jax_error():
    with pytest.raises(TracerError, match="can't apply forward-mode autodiff"):
        cr.jvp(lambda x: f(x, 1.0), (0.5,), (1.0,))


def test_custom_jvp_forward_and_reverse():
    # stable at 1000 where the naive derivative is nan
    _, t = cr.jvp(log1pexp, (1000.0,), (1.0,))
    assert t == 1.0
    assert cr.grad(log1pexp)(1000.0) == 1.0
    xs = onp.array([-1.0, 0.0, 2.0])
    onp.testing.assert_allclose(cr.jacfwd(log1pexp)(xs), cr.jacobian(log1pexp)(xs))
    onp.testing.assert_allclose(cr.grad(lambda x: np.sum(log1pexp(x)))(xs),
                                numerical_jacobian(lambda x: np.sum(log1pexp(x)), xs),
                                rtol=1e-7)
    # second derivative through the rule
    h = cr.hessian(lambda x: log1pexp(x))(0.3)
    s = 1 / (1 + onp.exp(-0.3))
    assert onp.isclose(h, s * (1 - s))
