"""Pytrees as JAX defines them: namedtuple, None and registered dataclasses beside dict,
list and tuple, for every transform's inputs, outputs and auxiliary data."""

from __future__ import annotations

import dataclasses
from collections import namedtuple

import numpy as onp
import pytest

import chainrule as cr
import chainrule.numpy as np
from chainrule.calculus import register_dataclass, tree_flatten, tree_unflatten

Params = namedtuple("Params", "W b")


@register_dataclass
@dataclasses.dataclass
class Layer:
    W: object
    b: object
    name: str = "dense"


register_dataclass(Layer, data_fields=["W", "b"], meta_fields=["name"])

W = onp.array([[0.5, -1.0], [2.0, 0.3]])
B = onp.array([0.1, -0.2])
A = onp.array([1.0, 2.0])


def loss(p):
    return np.sum(np.tanh(p.W @ A + p.b) ** 2)


def loss_dict(p):
    return np.sum(np.tanh(p["W"] @ A + p["b"]) ** 2)


def test_round_trip():
    tree = {"a": Params(W, None), "b": [Layer(W, B, "x"), (None, 1.0)]}
    leaves, d = tree_flatten(tree)
    assert len(leaves) == 4
    back = tree_unflatten(d, leaves)
    assert isinstance(back["a"], Params) and back["a"].b is None
    assert isinstance(back["b"][0], Layer) and back["b"][0].name == "x"


@pytest.mark.parametrize("make", [lambda: Params(W, B), lambda: Layer(W, B, "l1")])
def test_grad_of_a_structured_input(make):
    p = make()
    g = cr.grad(loss)(p)
    assert type(g) is type(p)
    ref = cr.grad(loss_dict)({"W": W, "b": B})
    onp.testing.assert_allclose(g.W, ref["W"])
    onp.testing.assert_allclose(g.b, ref["b"])
    if isinstance(p, Layer):
        assert g.name == "l1"


def test_none_in_inputs_outputs_and_aux():
    def f(p, x):
        return np.sum(p.W * x), (None, {"n": None})

    g, aux = cr.grad(f, has_aux=True)(Params(W, None), 2.0)
    assert g.b is None and aux == (None, {"n": None})
    onp.testing.assert_allclose(g.W, 2.0 * onp.ones_like(W))
    out, t = cr.jvp(lambda p: Params(p.W * 2.0, None), (Params(W, None),),
                    (Params(onp.ones_like(W), None),))
    assert out.b is None and t.b is None
    onp.testing.assert_allclose(t.W, 2.0)
    J = cr.jacobian(lambda p: Params(p.W * p.b[0], None))(Params(W, B))
    assert isinstance(J, Params) and J.b is None and isinstance(J.W, Params)


def test_vjp_with_namedtuple_output():
    out, f_vjp = cr.vjp(lambda x: Params(x * 2.0, np.sin(x)), 1.0)
    assert isinstance(out, Params)
    (g,) = f_vjp(Params(1.0, 1.0))
    assert onp.isclose(g, 2.0 + onp.cos(1.0))
