"""Engine properties: the diagonal Jacobian seed, no aliasing of user arrays, reuse."""

from __future__ import annotations

import numpy as onp
import pytest

import chainrule.numpy as np
from chainrule import grad, jacfwd, jacobian, vjp

r = onp.random.default_rng(7)
W, b, x = r.normal(size=(5, 4)), r.normal(size=5), r.normal(size=4)


@pytest.mark.parametrize("f", [
    lambda v: np.tanh(W @ v + b),
    lambda v: np.exp(-(W @ v)) * 2.0 - b,
    lambda v: np.sigmoid(v @ W.T) / (1.0 + b ** 2),
    lambda v: np.relu(W @ np.sin(v) + 1.0) + np.sum(v),
    lambda v: (W @ v)[::-1] * b,
    lambda v: np.softmax(W @ v),
    lambda v: -np.log1p(np.exp(W @ v)),
])
def test_diagonal_seed_matches_forward_mode(f):
    onp.testing.assert_allclose(jacobian(f)(x), jacfwd(f)(x), rtol=1e-13, atol=1e-15)


def test_gradients_never_alias_user_arrays():
    c = onp.array([1.0, 2.0, 3.0, 4.0])
    g = grad(lambda v: np.sum(v * c))(x)
    assert g is not c and not onp.shares_memory(g, c)
    g *= 0  # the user may write into a gradient
    assert onp.array_equal(c, [1.0, 2.0, 3.0, 4.0])
    gi = grad(lambda v: np.sum(v))(x)
    gi += 1
    assert onp.array_equal(grad(lambda v: np.sum(v))(x), onp.ones(4))
    ct = onp.ones(4)
    _, pull = vjp(lambda v: v * 1.0, x)
    (gv,) = pull(ct)
    assert not onp.shares_memory(gv, ct)


def test_vjp_function_can_be_called_twice():
    _, pull = vjp(lambda v: np.sin(v) * v, x)
    a, = pull(onp.ones(4))
    b2, = pull(onp.ones(4))
    onp.testing.assert_array_equal(a, b2)
    onp.testing.assert_allclose(a, onp.cos(x) * x + onp.sin(x))


def test_deep_graph_has_no_recursion_limit():
    def f(v):
        for _ in range(5000):
            v = v * 1.0001
        return np.sum(v)

    onp.testing.assert_allclose(grad(f)(onp.ones(2)), 1.0001 ** 5000 * onp.ones(2))
