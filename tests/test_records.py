"""One record per activation and per cost: explain's check differentiates each record's
value function and agrees with BP1-BP4; a user's own activation and cost work everywhere
(fit, backprop, explain, save and reload through custom_objects)."""

from __future__ import annotations

import numpy as onp
import pytest

import chainrule.numpy as cnp
from chainrule.explain import explain_network, render
from chainrule.io import ModelFileError, load_model, save_model
from chainrule.nn import ACTIVATIONS, COSTS, Activation, Cost, Dense, Network

HIDDEN = [a for a in ACTIVATIONS if a != "softmax"]


def _check(net, x, y):
    steps = explain_network(net, x, y)
    check = next(s for s in steps if s.title == "Check")
    return dict(check.values)["largest relative difference"]


def _targets(out, cost, r):
    if cost == "mse" and out not in ("sigmoid", "softmax"):
        return r.normal(size=3)
    if out == "softmax" or cost == "cross_entropy":
        return onp.eye(3)[r.integers(0, 3)]
    return r.uniform(0.1, 0.9, size=3).round()


# every output with MSE; the cross-entropies with the outputs that give probabilities
# (Network refuses binary cross-entropy after softmax)
COMBOS = [(h, o, c) for h in HIDDEN for o in ACTIVATIONS for c in COSTS
          if c == "mse" or (o == "sigmoid" or (o == "softmax" and c == "cross_entropy"))]


@pytest.mark.parametrize("hidden,out,cost", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_explain_check_agrees_with_backprop_for_every_record(hidden, out, cost):
    r = onp.random.default_rng(len(hidden) * 31 + len(out) * 7 + len(cost))
    net = Network([Dense(4, 5, hidden), Dense(5, 3, out)], cost=cost, dtype=onp.float64,
                  seed=3)
    x = r.normal(size=4)
    assert _check(net, x, _targets(out, cost, r)) <= 1e-9


def test_sigmoid_output_with_cross_entropy_is_checked_by_its_own_formula():
    # the case the old explain got wrong (it used the softmax formula: 0.6 to 0.9)
    net = Network([Dense(4, 6, "tanh"), Dense(6, 3, "sigmoid")], cost="cross_entropy",
                  dtype=onp.float64, seed=0)
    assert _check(net, onp.array([0.3, -1.0, 0.5, 2.0]), onp.array([0.0, 1.0, 0.0])) <= 1e-9


def swish(z):
    return z * cnp.sigmoid(z)


def mae(a, y):
    return cnp.mean(cnp.abs(a - y))


def test_a_custom_activation_and_cost_train_explain_save_and_reload(tmp_path):
    r = onp.random.default_rng(0)
    X = r.normal(size=(120, 3))
    y = (X @ onp.array([1.0, -2.0, 0.5]))[:, None]
    act = Activation.from_function(swish, "swish")
    cost = Cost.from_function(mae, "mae")
    net = Network([Dense(3, 8, act), Dense(8, 1, "identity")], cost=cost, dtype=onp.float64)
    before = net.loss(X, y)
    net.fit(X, y, epochs=30, batch_size=16, lr=0.01, verbose=0)
    assert net.loss(X, y) < 0.5 * before
    assert _check(net, X[0], y[0]) <= 1e-9
    assert "swish" in render(explain_network(net, X[0], y[0]))
    path = tmp_path / "m.safetensors"
    save_model(net, path)
    with pytest.raises(ModelFileError, match=r"custom_objects=\{'(mae|swish)': fn\}"):
        load_model(path)
    back = load_model(path, custom_objects={"swish": swish, "mae": mae})
    onp.testing.assert_array_equal(back.predict(X), net.predict(X))
    assert back.layers[0].activation.name == "swish" and back.cost.name == "mae"


def test_a_nameless_function_cannot_be_saved(tmp_path):
    net = Network([Dense(2, 2, lambda z: z * 2.0)], dtype=onp.float64)
    with pytest.raises(ModelFileError, match="a name of its own"):
        save_model(net, tmp_path / "m.safetensors")


def test_a_custom_activation_under_a_builtin_name_is_refused(tmp_path):
    net = Network([Dense(2, 2, Activation.from_function(lambda z: z * 2.0, "relu"))],
                  dtype=onp.float64)
    with pytest.raises(ModelFileError, match="not a built-in one"):
        save_model(net, tmp_path / "m.safetensors")


def test_every_record_has_its_parts():
    for a in ACTIVATIONS.values():
        assert a.latex and a.text and a.init in ("he", "glorot") and a.onnx is not None
        z = onp.linspace(-3, 3, 12).reshape(3, 4)
        onp.testing.assert_allclose(onp.asarray(a.value(z)), a.forward(z), rtol=1e-12)
    for c in COSTS.values():
        assert c.latex.startswith("C = ") and c.expr is not None
