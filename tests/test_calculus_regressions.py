"""Wrong results and crashes found by running HIPS autograd's and JAX's test suites against
chainrule (issue 14); each is pinned here against the true value."""

from __future__ import annotations

import copy
import pickle

import numpy as onp
import pytest

import chainrule as cr
import chainrule.numpy as np
from chainrule.calculus import TracerError, numerical_jacobian


def test_std_over_an_axis_of_length_one_has_derivative_zero():
    g = cr.grad(lambda x: np.sum(np.std(x, axis=0)))(onp.array([[0.3, -1.2, 2.0]]))
    onp.testing.assert_array_equal(g, onp.zeros((1, 3)))
    assert cr.grad(lambda x: np.std(x))(1.0) == 0.0
    # and where the variance is positive, the usual derivative
    x = onp.array([[0.3, -1.2, 2.0], [1.0, 0.5, -0.1]])
    f = lambda x: np.sum(np.std(x, axis=0) * onp.array([1.0, 2.0, 3.0]))  # noqa: E731
    onp.testing.assert_allclose(cr.grad(f)(x), numerical_jacobian(f, x), rtol=1e-6)


def test_power_zero_at_zero():
    c = onp.array([1.0, 2.0, 3.0])
    assert cr.grad(lambda x: np.sum(c * x ** onp.arange(3.0)))(0.0) == 2.0
    assert cr.grad(lambda x: x ** 0.0)(0.0) == 0.0
    assert cr.grad(lambda x: x ** 0.0)(2.0) == 0.0
    assert cr.hessian(lambda x: np.sum(c * x ** onp.arange(3.0)))(0.0) == 6.0


@pytest.mark.parametrize("f", [
    lambda x: np.einsum("i,i->", x, x),
    lambda x: np.einsum("i,j,ij->", x, x, onp.arange(9.0).reshape(3, 3)),
    lambda x: np.tensordot(x, x, 1),
    lambda x: np.inner(x, x),
    lambda x: np.sum(np.dot(x, onp.arange(18.0).reshape(2, 3, 3)) ** 2),
    lambda x: np.sum(np.einsum("...i,...i->...", x, x)),
])
def test_second_derivatives_through_einsum(f):
    x = onp.array([0.5, -1.0, 2.0])
    h = cr.hessian(f)(x)
    fd = numerical_jacobian(cr.grad(f), x)
    onp.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-6)


def test_inner_of_scalars():
    assert np.inner(1.5, 0.3) == onp.inner(1.5, 0.3)
    assert cr.grad(lambda x: np.inner(x, 0.3))(1.5) == 0.3


def test_numpy_keyword_names():
    x = onp.arange(6.0).reshape(2, 3)
    g = cr.grad(lambda x: np.sum(onp.swapaxes(x, axis1=0, axis2=1)[0]))(x)
    onp.testing.assert_array_equal(g, [[1, 0, 0], [1, 0, 0]])
    g = cr.grad(lambda x: np.sum(np.swapaxes(x, axis1=0, axis2=1)[0]))(x)
    onp.testing.assert_array_equal(g, [[1, 0, 0], [1, 0, 0]])
    v = onp.ones(3)
    onp.testing.assert_array_equal(cr.grad(lambda x: np.sum(np.row_stack([x, 2 * x])))(v),
                                   3 * v)


def test_logsumexp_weights():
    from scipy.special import logsumexp

    x, b = onp.array([0.2, -1.0, 3.0]), onp.array([1.0, 2.0, 0.5])
    assert onp.isclose(np.logsumexp(x, b=b), logsumexp(x, b=b))
    f = lambda x: np.logsumexp(x, b=b)  # noqa: E731
    onp.testing.assert_allclose(cr.grad(f)(x), numerical_jacobian(f, x), rtol=1e-7)
    fb = lambda b: np.logsumexp(x, b=b)  # noqa: E731
    onp.testing.assert_allclose(cr.grad(fb)(b), numerical_jacobian(fb, b), rtol=1e-7)
    bn = onp.array([1.0, -2.0, 0.5])
    r, s = np.logsumexp(x, b=bn, return_sign=True)
    r0, s0 = logsumexp(x, b=bn, return_sign=True)
    assert onp.isclose(r, r0) and s == s0


def test_remainder():
    assert cr.grad(lambda x: x % 2.0)(3.5) == 1.0
    assert cr.grad(lambda x: 5.0 % x)(3.5) == -1.0
    assert cr.grad(lambda x: onp.mod(x, 2.0))(3.5) == 1.0
    assert cr.grad(lambda x: np.remainder(x, 2.0))(-3.5) == 1.0
    assert cr.grad(lambda x: np.fmod(7.0, x))(-3.0) == 2.0
    assert cr.grad(lambda x: x // 2.0 + x)(3.5) == 1.0


def test_det_at_a_singular_matrix_is_the_adjugate():
    a = onp.array([[1.0, 2.0], [2.0, 4.0]])
    onp.testing.assert_allclose(cr.grad(np.linalg.det)(a), [[4.0, -2.0], [-2.0, 1.0]],
                                atol=1e-12)
    b = onp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    adj_t = onp.array([[-3.0, 6.0, -3.0], [6.0, -12.0, 6.0], [-3.0, 6.0, -3.0]])
    onp.testing.assert_allclose(cr.grad(np.linalg.det)(b), adj_t, atol=1e-10)
    onp.testing.assert_allclose(cr.jacfwd(np.linalg.det)(b), adj_t, atol=1e-10)
    # rank n - 2: the adjugate is zero
    onp.testing.assert_allclose(cr.grad(np.linalg.det)(onp.ones((3, 3))), 0.0, atol=1e-12)


@pytest.mark.parametrize("f", [
    lambda x: copy.deepcopy(x) * 2.0,
    lambda x: pickle.loads(pickle.dumps(x)) * 2.0,
    lambda x: None,
])
def test_silent_zeros_raise(f):
    with pytest.raises(TracerError):
        cr.grad(f)(1.0)


def test_a_constant_has_derivative_zero():
    assert cr.grad(lambda x: 3.0)(1.0) == 0.0
    assert copy.copy(cr.grad(lambda x: copy.copy(x) * 2.0)(1.0)) == 2.0


@pytest.mark.parametrize("f,name", [
    (lambda x: onp.linalg.cond(x), "numpy.linalg.cond"),
    (lambda x: onp.median(x), "numpy.median"),
])
def test_errors_name_the_right_module(f, name):
    with pytest.raises(TracerError) as info:
        cr.grad(f)(onp.eye(2))
    msg = str(info.value)
    assert msg.startswith(name), msg
    assert "chainrule.numpy." + name.rsplit(".", 1)[1] not in msg


def test_errors_name_scipy():
    special = pytest.importorskip("scipy.special")
    linalg = pytest.importorskip("scipy.linalg")
    with pytest.raises(TracerError, match=r"^scipy\.special\.expit "):
        cr.grad(lambda x: special.expit(x))(1.0)
    with pytest.raises(TracerError, match=r"^scipy\.linalg\.eigh "):
        cr.grad(lambda x: onp.sum(linalg.eigh(x)[0]))(onp.eye(2))


def test_pullback_of_a_pullback():
    """Found by HIPS autograd's second-order check of np.gradient: a vjp of a function
    that itself calls a vjp's pullback gave a wrong derivative when the outer sweep
    accumulated in place into arrays that the inner sweep had put in the graph."""
    r = onp.random.default_rng(0)
    x, y, w = r.normal(size=6), r.normal(size=6), r.normal(size=6)

    def F(x):
        return np.concatenate([x[1:2] - x[0:1], (x[2:] - x[:-2]) * 0.5, x[-1:] - x[-2:-1]])

    def h(xy):
        return cr.vjp(F, xy[0])[1](xy[1])[0]

    _, pull = cr.vjp(h, (x, y))
    g = pull(w)[0]
    fd = numerical_jacobian(lambda y: np.sum(h((x, y)) * w), y)
    onp.testing.assert_allclose(g[1], fd, rtol=1e-7, atol=1e-9)
    onp.testing.assert_allclose(g[0], 0.0, atol=1e-12)
