"""Every worked example of the text's Part I (1.5) and section 3.2, with exact values."""

from __future__ import annotations

import numpy as onp
import pytest

import chainrule.numpy as np
from chainrule import grad, hessian, jacfwd, jacobian


# 1.5.1 gradient of F(x, y) = x^2 + cos(y) is [2x, -sin(y)]
@pytest.mark.parametrize("x,y", [(1.0, 2.0), (-3.5, 0.25), (0.0, onp.pi / 2)])
def test_1_5_1_gradient(x, y):
    gx, gy = grad(lambda x, y: x ** 2 + np.cos(y), argnums=(0, 1))(x, y)
    assert gx == 2 * x
    assert gy == -onp.sin(y)
    v = grad(lambda v: v[0] ** 2 + np.cos(v[1]))(onp.array([x, y]))
    assert onp.array_equal(v, [2 * x, -onp.sin(y)])


# 1.5.2 Jacobian of [2x + y^3, e^y - 13x] is [[2, 3y^2], [-13, e^y]]
@pytest.mark.parametrize("jac", [jacobian, jacfwd])
def test_1_5_2_jacobian(jac):
    x, y = 1.5, -0.5

    def F(v):
        return np.stack([2 * v[0] + v[1] ** 3, np.exp(v[1]) - 13 * v[0]])

    J = jac(F)(onp.array([x, y]))
    onp.testing.assert_allclose(J, [[2, 3 * y ** 2], [-13, onp.exp(y)]], rtol=0, atol=1e-15)
    # with two scalar arguments: a tuple of columns
    Jx, Jy = jac(lambda x, y: np.stack([2 * x + y ** 3, np.exp(y) - 13 * x]),
                 argnums=(0, 1))(x, y)
    assert onp.array_equal(Jx, [2, -13]) and onp.allclose(Jy, [3 * y ** 2, onp.exp(y)])


# 1.5.3 d/dx sin(x^2) = 2x cos(x^2)
@pytest.mark.parametrize("x", [0.0, 0.3, -1.7, 2.5])
def test_1_5_3_scalar_chain_rule(x):
    assert grad(lambda x: np.sin(x ** 2))(x) == pytest.approx(2 * x * onp.cos(x ** 2),
                                                              rel=1e-15, abs=1e-15)


# 1.5.4 the Jacobian chain rule: f = [sin(x^2 + y), ln(y^3)]
def test_1_5_4_jacobian_chain_rule():
    x, y = 0.7, 1.3

    def g(v):  # the inner function, dg/dx = [[2x, 1], [0, 3y^2]]
        return np.stack([v[0] ** 2 + v[1], v[1] ** 3])

    def f_of_g(u):  # df/dg = diag(cos g1, 1/g2)
        return np.stack([np.sin(u[0]), np.log(u[1])])

    v = onp.array([x, y])
    dg = jacobian(g)(v)
    df = jacobian(f_of_g)(g(v))
    onp.testing.assert_allclose(dg, [[2 * x, 1], [0, 3 * y ** 2]], atol=1e-15)
    onp.testing.assert_allclose(df, onp.diag([onp.cos(x ** 2 + y), 1 / y ** 3]), atol=1e-15)
    expected = [[2 * x * onp.cos(x ** 2 + y), onp.cos(x ** 2 + y)], [0, 3 / y]]
    J = jacobian(lambda v: f_of_g(g(v)))(v)
    onp.testing.assert_allclose(J, expected, rtol=1e-14)
    onp.testing.assert_allclose(df @ dg, J, rtol=1e-14)  # the chain rule itself


# 3.2.1 element-wise binary operations have diagonal Jacobians
@pytest.mark.parametrize("op,dv,dw", [
    (lambda v, w: v + w, lambda v, w: onp.ones_like(v), lambda v, w: onp.ones_like(w)),
    (lambda v, w: v - w, lambda v, w: onp.ones_like(v), lambda v, w: -onp.ones_like(w)),
    (lambda v, w: v / w, lambda v, w: 1 / w, lambda v, w: -v / w ** 2),
])
def test_3_2_1_elementwise_is_diagonal(op, dv, dw):
    v, w = onp.array([1.0, -2.0, 3.0]), onp.array([0.5, 4.0, -1.5])
    Jv, Jw = jacobian(op, argnums=(0, 1))(v, w)
    onp.testing.assert_allclose(Jv, onp.diag(dv(v, w)), rtol=1e-15)
    onp.testing.assert_allclose(Jw, onp.diag(dw(v, w)), rtol=1e-15)


# 3.2.2 Hadamard product: dF/dv = diag(w), dF/dw = diag(v)
def test_3_2_2_hadamard():
    v, w = onp.array([1.0, -2.0, 3.0, 0.5]), onp.array([4.0, 5.0, -6.0, 7.0])
    Jv, Jw = jacobian(lambda v, w: v * w, argnums=(0, 1))(v, w)
    assert onp.array_equal(Jv, onp.diag(w)) and onp.array_equal(Jw, onp.diag(v))


# 3.2.3 scalar expansion: dF/dv = x I; dF/dx = v (product), ones (sum), -ones (difference)
def test_3_2_3_scalar_expansion():
    v, x = onp.array([1.0, -2.0, 3.0]), 2.5
    Jv, Jx = jacobian(lambda v, x: v * x, argnums=(0, 1))(v, x)
    assert onp.array_equal(Jv, x * onp.eye(3)) and onp.array_equal(Jx, v)
    assert onp.array_equal(jacobian(lambda v, x: v + x, argnums=1)(v, x), onp.ones(3))
    assert onp.array_equal(jacobian(lambda v, x: v - x, argnums=1)(v, x), -onp.ones(3))


# 3.2.4 the derivative of a sum is a row of ones; of sum(z v) a row of z
def test_3_2_4_sum():
    v = onp.array([1.0, -2.0, 3.0, 4.0])
    assert onp.array_equal(grad(np.sum)(v), onp.ones(4))
    z = 3.0
    assert onp.array_equal(grad(lambda v: np.sum(z * v))(v), onp.full(4, z))


def test_higher_order():
    # the third derivative of sin is -cos
    d3 = grad(grad(grad(np.sin)))
    for x in (0.0, 0.4, 2.0):
        assert d3(x) == pytest.approx(-onp.cos(x), abs=1e-15)
    # forward over reverse and reverse over reverse agree
    f = lambda v: np.sum(np.sin(v) * v ** 2)  # noqa: E731
    x = onp.array([0.3, -1.2, 2.0])
    H = hessian(f)(x)
    H2 = jacobian(jacobian(f))(x)
    expected = onp.diag(2 * onp.sin(x) + 4 * x * onp.cos(x) - x ** 2 * onp.sin(x))
    onp.testing.assert_allclose(H, expected, atol=1e-14)
    onp.testing.assert_allclose(H2, expected, atol=1e-14)


def test_jacobian_shape_is_out_plus_in():
    x = onp.ones((2, 3))
    assert jacobian(lambda x: x.T * 2)(x).shape == (3, 2, 2, 3)
    assert jacfwd(lambda x: x.sum(axis=0))(x).shape == (3, 2, 3)
    assert hessian(lambda x: np.sum(x ** 3))(x).shape == (2, 3, 2, 3)


def test_nested_inputs_and_aux():
    params = {"W": onp.eye(2), "b": [onp.zeros(2), 1.5]}

    def loss(p, x):
        return np.sum((p["W"] @ x + p["b"][0]) ** 2) * p["b"][1], "aux"

    g, aux = grad(loss, has_aux=True)(params, onp.array([1.0, 2.0]))
    assert aux == "aux"
    assert set(g) == {"W", "b"} and isinstance(g["b"], list)
    onp.testing.assert_allclose(g["W"], 1.5 * 2 * onp.outer([1, 2], [1, 2]))
    onp.testing.assert_allclose(g["b"][0], 1.5 * 2 * onp.array([1.0, 2.0]))
    assert g["b"][1] == pytest.approx(5.0)


def test_float32_stays_float32():
    x = onp.array([1.0, 2.0], dtype=onp.float32)
    g = grad(lambda x: np.sum(np.tanh(x) * 3.0))(x)
    assert g.dtype == onp.float32
    assert jacobian(lambda x: np.exp(x))(x).dtype == onp.float32


def test_plain_numpy_functions_dispatch():
    import numpy
    f = lambda x: numpy.sum(numpy.exp(x) * numpy.sin(x)) + numpy.dot(x, x)  # noqa: E731
    x = onp.array([0.1, 0.2, 0.3])
    expected = onp.exp(x) * (onp.sin(x) + onp.cos(x)) + 2 * x
    onp.testing.assert_allclose(grad(f)(x), expected, rtol=1e-14)
    g = lambda x: numpy.einsum("i,i->", x, x) + numpy.max(numpy.maximum(x, 0.15))  # noqa: E731
    onp.testing.assert_allclose(grad(g)(x), 2 * x + [0, 0, 1], rtol=1e-14)


def test_value_and_grad_and_python_control_flow():
    from chainrule import value_and_grad

    def f(x):
        if x > 0:  # a comparison is evaluated on the concrete value
            return x ** 3
        return -x

    assert value_and_grad(f)(2.0) == (8.0, 12.0)
    assert value_and_grad(f)(-2.0) == (2.0, -1.0)
