"""Backpropagation by the four equations == the calculus engine's gradient of the cost
== central finite differences, float64, for every activation and every cost."""

from __future__ import annotations

import itertools
import zlib

import numpy as onp
import pytest

import chainrule.numpy as np
from chainrule.calculus import grad, numerical_jacobian, relative_error
from chainrule.nn import ACTIVATIONS, COSTS, Dense, Network

# Independent definitions of sigma with chainrule.numpy (not the nn table's code).
SIGMA = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    "gelu": lambda z: 0.5 * z * (1 + np.tanh(onp.sqrt(2 / onp.pi) * (z + 0.044715 * z ** 3))),
    "softplus": lambda z: np.logaddexp(0.0, z),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "softmax": lambda z: np.exp(z - np.logsumexp(z, axis=-1, keepdims=True)),
}


def cost_expr(name, out, z, a, Y):
    m = Y.shape[0]
    if name == "mse":
        return np.sum((Y - a) ** 2) / (2 * m)
    if name == "cross_entropy":
        if out == "softmax":
            return np.sum(np.logsumexp(z, axis=-1) - np.sum(Y * z, axis=-1)) / m
        return -np.sum(Y * np.log(a)) / m
    if out == "sigmoid":
        return np.sum(np.logaddexp(0.0, z) - Y * z) / m
    return -np.sum(Y * np.log(a) + (1 - Y) * np.log(1 - a)) / m



def cost_of_theta(net, X, Y):
    def C(theta):
        a = X
        for layer, (W, b) in zip(net.layers, net.unravel(theta)):
            z = a @ W.T + b
            a = SIGMA[layer.activation.name](z)
        return cost_expr(net.cost.name, net.layers[-1].activation.name, z, a, Y)
    return C


def valid(hidden, out, cost):
    if cost == "binary_cross_entropy":
        return out == "sigmoid"
    if cost == "cross_entropy":
        return out in ("softmax", "sigmoid")
    return True


CASES = [(h, o, c) for h, o, c in itertools.product(ACTIVATIONS, ["identity", "sigmoid",
                                                                    "softmax", "tanh"], COSTS)
         if valid(h, o, c) and h != "softmax"]


@pytest.mark.parametrize("hidden,out,cost", CASES, ids=["-".join(c) for c in CASES])
def test_four_equations_match_autodiff_and_finite_differences(hidden, out, cost):
    r = onp.random.default_rng(zlib.crc32(f"{hidden}-{out}-{cost}".encode()))
    net = Network([Dense(3, 4, hidden), Dense(4, 3, hidden), Dense(3, 3, out)], cost=cost,
                  dtype=onp.float64, seed=1)
    net.theta[:] = r.normal(0, 0.7, net.theta.size)
    X = r.normal(size=(5, 3))
    if cost == "mse" and out not in ("sigmoid", "softmax"):
        Y = r.normal(size=(5, 3))
    elif out == "softmax" or cost == "cross_entropy":
        Y = onp.eye(3)[r.integers(0, 3, 5)]
    else:
        Y = r.uniform(size=(5, 3)).round()
    g = net.backprop(X, Y)
    bp = net.grad.copy()
    C = cost_of_theta(net, X, Y)
    assert g.cost == pytest.approx(float(C(net.theta)), rel=1e-12)
    ad = grad(C)(net.theta.copy())
    fd = numerical_jacobian(C, net.theta.copy())
    assert relative_error(bp, ad) <= 1e-7
    assert relative_error(bp, fd) <= 1e-7
    # the per-layer views are the same numbers as Theta's gradient
    assert all(onp.array_equal(w, v) and onp.array_equal(b, c) for w, b, (v, c) in
               zip(g.dW, g.db, net.unravel(bp)))


def test_user_activation_and_cost_are_one_function_each():
    swish = lambda z: z * np.sigmoid(z)  # noqa: E731
    mae_ish = lambda a, y: np.sum(np.sqrt((a - y) ** 2 + 1.0)) / y.shape[0]  # noqa: E731
    net = Network([Dense(3, 4, swish), Dense(4, 2, "identity")], cost=mae_ish,
                  dtype=onp.float64, seed=2)
    r = onp.random.default_rng(3)
    X, Y = r.normal(size=(6, 3)), r.normal(size=(6, 2))
    net.backprop(X, Y)

    def C(theta):
        (W1, b1), (W2, b2) = net.unravel(theta)
        h = swish(X @ W1.T + b1)
        return mae_ish(h @ W2.T + b2, Y)

    fd = numerical_jacobian(C, net.theta.copy())
    assert relative_error(net.grad, fd) <= 1e-7
