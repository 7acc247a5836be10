"""Deferred evaluation in reverse mode: grad never forms the values it throws away, and
one-use sweeps drop intermediate values as soon as no rule needs them."""

from __future__ import annotations

import numpy as onp
import pytest

import chainrule as cr
import chainrule.numpy as np
from chainrule.calculus import core
from chainrule.calculus.check import check_grad


@pytest.fixture
def computed(monkeypatch):
    """The names of the deferred primitives whose values were actually computed."""
    names: list[str] = []
    real = core.Deferred.force

    def force(self):
        if self.vals is not None:
            names.append(self.prim.name)
        return real(self)

    monkeypatch.setattr(core.Deferred, "force", force)
    return names


def test_grad_skips_the_product_and_the_sum(computed):
    x = onp.linspace(-2, 2, 7)
    g = cr.grad(lambda v: np.sum(np.sin(v) * v ** 2))(x)
    onp.testing.assert_allclose(g, onp.cos(x) * x * x + 2 * x * onp.sin(x), rtol=1e-14)
    assert computed == []


def test_value_and_grad_computes_the_value(computed):
    x = onp.linspace(-2, 2, 7)
    v, g = cr.value_and_grad(lambda v: np.sum(np.sin(v) * v ** 2))(x)
    assert v == pytest.approx(onp.sum(onp.sin(x) * x ** 2), rel=1e-14)
    assert sorted(computed) == ["multiply", "sum"]


@pytest.mark.parametrize("f", [
    lambda v: np.mean(v * v - v, axis=0).sum(),
    lambda v: -(np.sum(v, axis=1, keepdims=True) * 2.0 + v).mean(),
    lambda v: np.exp(np.sum(v * v)),            # a deferred sum read by exp
    lambda v: np.sum((v - 1.0) * (v + 1.0), axis=(0, 1)),
    lambda v: np.sum(np.sin(v) * np.sin(v) + np.sin(v)),   # one value, three uses
])
def test_deferred_values_and_gradients_are_exact(f):
    x = onp.random.default_rng(0).normal(size=(3, 4))
    v, g = cr.value_and_grad(f)(x)
    assert v == pytest.approx(float(f(x)), rel=1e-13)
    check_grad(f, x)
    onp.testing.assert_allclose(cr.grad(f)(x), g, rtol=0, atol=0)


def test_float32_stays_float32_when_deferred():
    x = onp.ones(5, onp.float32)
    v, g = cr.value_and_grad(lambda v: np.sum(v * 2.0 + v))(x)
    assert onp.asarray(v).dtype == onp.float32 and g.dtype == onp.float32


def test_a_broadcasting_error_is_raised_at_the_call():
    with pytest.raises(ValueError, match="broadcast"):
        cr.grad(lambda v: np.sum(v + onp.ones(4)))(onp.ones(3))


def test_a_leaked_value_says_what_happened():
    kept = []

    def f(v):
        p = v * v
        kept.append(p)
        return np.sum(p)

    cr.grad(f)(onp.ones(3))
    with pytest.raises(core.TracerError, match="after grad returns"):
        kept[0] + 1.0
    assert kept[0].shape == (3,)


def _sweep_seeing(node_of_interest, out, x, monkeypatch):
    """Run a one-use sweep; return what ``node_of_interest.ans`` was each time a
    contribution was accumulated."""
    seen = []
    real = core._accumulate

    def spy(prev, contrib, owned=None):
        seen.append(type(node_of_interest.ans).__name__)
        return real(prev, contrib, owned)

    monkeypatch.setattr(core, "_accumulate", spy)
    (g,) = core.backward([(out.node, onp.ones(()))], [x.node], release=True)
    return g, seen


def test_one_use_sweeps_drop_values_their_rules_do_not_read(monkeypatch):
    trace = core.ReverseTrace()
    x = trace.new_input(onp.linspace(0, 1, 5))
    s = np.sin(x)
    out = np.sum(s * s)
    sin_node = s.node
    del s
    g, seen = _sweep_seeing(sin_node, out, x, monkeypatch)
    onp.testing.assert_allclose(g, 2 * onp.sin(x.primal) * onp.cos(x.primal), rtol=1e-14)
    # sin's rule reads cos(x), not sin(x): its value is gone before its rule runs
    assert seen[-1] == "Deferred"


def test_values_their_rules_read_are_kept(monkeypatch):
    trace = core.ReverseTrace()
    x = trace.new_input(onp.linspace(0, 1, 5))
    e = np.exp(x)
    out = np.sum(e * 3.0)
    exp_node = e.node
    del e
    g, seen = _sweep_seeing(exp_node, out, x, monkeypatch)
    onp.testing.assert_allclose(g, 3 * onp.exp(x.primal), rtol=1e-14)
    assert seen[-1] == "ndarray"         # d exp(x)/dx = exp(x): read by its own rule


_W = onp.random.default_rng(3).normal(size=(40, 40))


def _scalar(v):
    return np.sum(np.tanh(_W @ v) * v ** 2)


def _vector(v):
    return np.tanh(_W @ v)


@pytest.mark.parametrize("call", [
    lambda x: cr.grad(_scalar)(x),
    lambda x: cr.value_and_grad(_scalar)(x),
    lambda x: cr.grad(lambda p: np.sum(p["a"] * p["b"][0]))({"a": x, "b": (x, [x])}),
    lambda x: cr.vjp(_vector, x)[1](x),
    lambda x: cr.jvp(_vector, (x,), (x,)),
    lambda x: cr.jacobian(_vector)(x),
    lambda x: cr.jacfwd(_vector)(x),
    lambda x: cr.hessian(_scalar)(x),
], ids=["grad", "value_and_grad", "grad of a pytree", "vjp", "jvp", "jacrev", "jacfwd",
        "hessian"])
def test_a_transform_leaves_no_reference_cycle(call):
    """Every array a call made is freed when its last reference goes, not when the cyclic
    collector next runs: a cycle (a recursive closure in the pytree walkers did this) kept
    each gradient alive, and a fresh one's pages were faulted in on every call."""
    import gc

    x = onp.random.default_rng(0).normal(size=40)
    call(x)
    gc.collect()
    gc.disable()
    try:
        call(x)
        assert gc.collect() == 0
    finally:
        gc.enable()
