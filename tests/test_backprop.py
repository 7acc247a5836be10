"""Backpropagation by the four equations == the calculus engine's gradient of the cost
== central finite differences, float64, for every activation and every cost."""

from __future__ import annotations

import itertools
import zlib

import numpy as onp
import pytest
from engines import ColumnEngine

import chainrule.numpy as np
from chainrule.calculus import grad, numerical_jacobian, relative_error
from chainrule.nn import ACTIVATIONS, COSTS, Dense, Network

# every backend: the reference, the fast one, and one defined in tests alone
ENGINES = {"numpy": lambda: "numpy", "fast": lambda: "fast", "columns": ColumnEngine}

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


def _case(hidden, out, cost, engine, dtype=onp.float64):
    r = onp.random.default_rng(zlib.crc32(f"{hidden}-{out}-{cost}".encode()))
    net = Network([Dense(3, 4, hidden), Dense(4, 3, hidden), Dense(3, 3, out)], cost=cost,
                  dtype=dtype, seed=1, engine=ENGINES[engine]())
    net.theta[:] = r.normal(0, 0.7, net.theta.size)
    X = r.normal(size=(5, 3))
    if cost == "mse" and out not in ("sigmoid", "softmax"):
        Y = r.normal(size=(5, 3))
    elif out == "softmax" or cost == "cross_entropy":
        Y = onp.eye(3)[r.integers(0, 3, 5)]
    else:
        Y = r.uniform(size=(5, 3)).round()
    return net, X, Y


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("hidden,out,cost", CASES, ids=["-".join(c) for c in CASES])
def test_four_equations_match_autodiff_and_finite_differences(hidden, out, cost, engine):
    net, X, Y = _case(hidden, out, cost, engine)
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


@pytest.mark.parametrize("engine", ["fast", "columns"])
@pytest.mark.parametrize("hidden,out,cost", CASES, ids=["-".join(c) for c in CASES])
def test_every_backend_gives_the_references_gradient(hidden, out, cost, engine):
    for dtype, tol in ((onp.float64, 1e-12), (onp.float32, 1e-5)):
        ref, X, Y = _case(hidden, out, cost, "numpy", dtype)
        other, _, _ = _case(hidden, out, cost, engine, dtype)
        g_ref, g = ref.backprop(X, Y), other.backprop(X, Y)
        assert g.cost == pytest.approx(g_ref.cost, rel=tol)
        assert relative_error(other.grad, ref.grad) <= tol
        for d, d_ref in zip(g.delta, g_ref.delta):
            onp.testing.assert_allclose(d, d_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_every_backend_trains_the_same_run(engine):
    r = onp.random.default_rng(4)
    X, y = r.normal(size=(60, 3)), r.integers(0, 3, 60)
    nets = [Network.from_sizes([3, 5, 3], hidden="tanh", dtype=onp.float64, seed=2,
                               engine=ENGINES[e]()) for e in ("numpy", engine)]
    hists = [n.fit(X, y, epochs=3, batch_size=8, verbose=0) for n in nets]
    assert relative_error(nets[1].theta, nets[0].theta) <= 1e-12
    onp.testing.assert_allclose(hists[1]["loss"], hists[0]["loss"], rtol=1e-12)


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
