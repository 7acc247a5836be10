"""The text's worked results for Parts II-IV as tests."""

from __future__ import annotations

import numpy as onp
import pytest

import chainrule.numpy as np
from chainrule.calculus import grad, jacobian
from chainrule.nn import Dense, Network
from chainrule.training import batches, n_batches


def test_2_3_a_layer_of_neurons():
    """W = [[5, 2], [3, 6]], a^0 = [10, 20], b = 6, ReLU: z = [96, 156], a = [96, 156]."""
    net = Network([Dense(2, 2, "relu")], dtype=onp.float64)
    net.layers[0].W[...] = [[5, 2], [3, 6]]
    net.layers[0].b[...] = 6
    zs, acts = net.forward(onp.array([[10.0, 20.0]]), keep=True)
    assert onp.array_equal(net.layers[0].W @ [10, 20], [90, 150])
    assert onp.array_equal(zs[0], [[96, 156]])
    assert onp.array_equal(acts[1], [[96, 156]])


def test_2_3_weight_indexing():
    """w^l_jk = W[j, k] goes from node k of layer l-1 into node j of layer l."""
    net = Network([Dense(3, 2, "identity")], dtype=onp.float64)
    net.layers[0].W[...] = 0
    net.layers[0].W[1, 2] = 1.0  # from input node 2 into node 1
    out = net.forward(onp.array([[0.0, 0.0, 7.0]]))
    assert onp.array_equal(out, [[0.0, 7.0]])


def test_theta_is_one_vector_with_views():
    net = Network.from_sizes([3, 4, 2], seed=0)
    assert all(onp.shares_memory(layer.W, net.theta) and onp.shares_memory(layer.b, net.theta)
               for layer in net.layers)
    net.theta[:] = 0.5
    assert onp.all(net.layers[1].W == 0.5)
    assert net.theta.size == 3 * 4 + 4 + 4 * 2 + 2


@pytest.mark.parametrize("w,b", [([0.5, -0.2, 0.1], 0.3), ([-1.0, 0.5, -0.5], -0.2)])
def test_3_3_derivative_of_a_relu_neuron(w, b):
    """da/dw = x^T and da/db = 1 when w.x + b > 0; 0^T and 0 otherwise."""
    x = onp.array([1.0, 2.0, 3.0])
    w = onp.array(w)
    a = lambda w, b: np.relu(np.sum(w * x) + b)  # noqa: E731  sum(w (Hadamard) x) + b
    dw, db = grad(a, argnums=(0, 1))(w, b)
    active = w @ x + b > 0
    assert onp.array_equal(dw, x if active else onp.zeros(3))
    assert db == (1.0 if active else 0.0)


def _neuron_data():
    r = onp.random.default_rng(5)
    X = r.normal(size=(8, 3))  # m = 8 examples as rows
    y = r.normal(size=8)
    w = onp.array([0.4, -0.3, 0.8])
    b = 0.1
    return X, y, w, b


def test_3_4_and_3_6_boxed_formulas_for_one_relu_neuron_under_mse():
    """dC/dw = 1/m sum_i [w.x_i + b > 0] (w.x_i + b - y_i) x_i^T and
    dC/db = 1/m sum_i [w.x_i + b > 0] (w.x_i + b - y_i), for C = 1/(2m) sum (y - a)^2."""
    X, y, w, b = _neuron_data()
    m = X.shape[0]
    z = X @ w + b
    active = z > 0
    boxed_w = ((z - y) * active) @ X / m     # the text's 1/n is the 1/m of the cost
    boxed_b = onp.sum((z - y) * active) / m

    def C(w, b):
        a = np.relu(X @ w + b)
        return np.sum((y - a) ** 2) / (2 * m)

    dw, db = grad(C, argnums=(0, 1))(w, b)
    onp.testing.assert_allclose(dw, boxed_w, rtol=1e-13)
    assert db == pytest.approx(boxed_b, rel=1e-13)
    # the same neuron as a one-layer chainrule network, through BP1-BP4
    net = Network([Dense(3, 1, "relu")], cost="mse", dtype=onp.float64)
    net.layers[0].W[0] = w
    net.layers[0].b[0] = b
    g = net.backprop(X, y)
    onp.testing.assert_allclose(g.dW[0][0], boxed_w, rtol=1e-13)
    assert g.db[0][0] == pytest.approx(boxed_b, rel=1e-13)


def test_3_5_error_terms():
    """dC/dw = 1/m sum_i e_i x_i, with e_i = a_i - y_i (an identity neuron)."""
    X, y, w, b = _neuron_data()
    e = X @ w + b - y
    net = Network([Dense(3, 1, "identity")], cost="mse", dtype=onp.float64)
    net.layers[0].W[0], net.layers[0].b[0] = w, b
    g = net.backprop(X, y)
    onp.testing.assert_allclose(g.dW[0][0], (e[:, None] * X).mean(axis=0), rtol=1e-13)


def test_3_8_gradient_descent_step_is_one_vector_update():
    from chainrule.optim import SGD
    X, y, w, b = _neuron_data()
    net = Network([Dense(3, 1, "identity")], cost="mse", dtype=onp.float64, seed=0)
    before = net.theta.copy()
    net.backprop(X, y)
    SGD(lr=0.1).step(net.theta, net.grad)
    onp.testing.assert_array_equal(net.theta, before - 0.1 * net.grad)


def test_3_8_minibatch_count():
    """1,000,000 examples at B = 120 give 8,334 batches, the last of 40 (not 8,333)."""
    assert n_batches(1_000_000, 120) == 8334
    assert n_batches(1_000_000, 120, drop_last=True) == 8333
    bs = batches(1_000_000, 120, onp.random.default_rng(0))
    assert len(bs) == 8334 and len(bs[-1]) == 40
    assert onp.array_equal(onp.sort(onp.concatenate(bs)), onp.arange(1_000_000))


def test_4_1_delta_is_dC_dz():
    """delta^l_j = dC/dz^l_j: perturbing z^l by Delta changes C by delta Delta."""
    r = onp.random.default_rng(11)
    net = Network.from_sizes([3, 4, 2], hidden="tanh", output="sigmoid", cost="mse",
                             dtype=onp.float64, seed=3)
    X, Y = r.normal(size=(2, 3)), r.uniform(size=(2, 2))
    g = net.backprop(X, Y)
    W2, b2 = net.layers[1].W, net.layers[1].b

    def C_of_z1(z1):
        a1 = np.tanh(z1)
        a2 = np.sigmoid(a1 @ W2.T + b2)
        return np.sum((Y - a2) ** 2) / (2 * 2)

    z1 = X @ net.layers[0].W.T + net.layers[0].b
    onp.testing.assert_allclose(g.delta[0], grad(C_of_z1)(z1), rtol=1e-12)
    # BP1 for one output node: delta^L_j = dC/da^L_j sigma'(z^L_j)
    zs, acts = net.forward(X, keep=True)
    aL = acts[-1]
    onp.testing.assert_allclose(g.delta[1], (aL - Y) / 2 * aL * (1 - aL), rtol=1e-12)


def test_jacobian_of_a_layer_is_batched():
    net = Network([Dense(4, 3, "tanh")], dtype=onp.float64, seed=0)
    W, b = net.layers[0].W, net.layers[0].b
    x = onp.array([0.1, -0.2, 0.3, 0.4])
    J = jacobian(lambda x: np.tanh(W @ x + b))(x)
    onp.testing.assert_allclose(J, (1 - onp.tanh(W @ x + b) ** 2)[:, None] * W, rtol=1e-13)
