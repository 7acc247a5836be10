"""Optimisers, schedules, the fit loop, stability and bad input."""

from __future__ import annotations

import io
import math
import warnings

import numpy as onp
import pytest
from sklearn.datasets import load_digits

from chainrule.nn import Network
from chainrule.optim import (
    SGD,
    Adam,
    AdamW,
    GradientDescent,
    Momentum,
    Nesterov,
    RMSProp,
    clip_grad_norm,
    cosine,
    exponential,
    step_decay,
    warmup,
)
from chainrule.training import Callback, EarlyStopping, ProgressBar, TrainingDiverged


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    X, y = d.data / 16.0, d.target
    p = onp.random.default_rng(0).permutation(len(X))
    return X[p[:1400]], y[p[:1400]], X[p[1400:]], y[p[1400:]]


# ------------------------------------------------------------------ optimisers
def _reference(name, theta, grads, lr=0.1, **kw):
    """Textbook formulas, written plainly, for comparison with the in-place steps."""
    th = theta.copy()
    m = onp.zeros_like(th)
    v = onp.zeros_like(th)
    for t, g in enumerate(grads, start=1):
        if name == "sgd":
            th = th - lr * g
        elif name == "momentum":
            m = 0.9 * m + g
            th = th - lr * m
        elif name == "nesterov":
            m = 0.9 * m + g
            th = th - lr * (g + 0.9 * m)
        elif name == "rmsprop":
            v = 0.9 * v + 0.1 * g * g
            th = th - lr * g / (onp.sqrt(v) + 1e-8)
        elif name in ("adam", "adamw"):
            if name == "adamw":
                th = th - lr * 0.01 * th
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            mh, vh = m / (1 - 0.9 ** t), v / (1 - 0.999 ** t)
            th = th - lr * mh / (onp.sqrt(vh) + 1e-8)
    return th


@pytest.mark.parametrize("name,opt", [
    ("sgd", SGD(0.1)), ("momentum", Momentum(0.1)), ("nesterov", Nesterov(0.1)),
    ("rmsprop", RMSProp(0.1)), ("adam", Adam(0.1)), ("adamw", AdamW(0.1)),
])
def test_optimizers_match_their_formulas(name, opt):
    r = onp.random.default_rng(1)
    theta = r.normal(size=50)
    grads = [r.normal(size=50) for _ in range(5)]
    th = theta.copy()
    for g in grads:
        opt.step(th, g.copy())
    onp.testing.assert_allclose(th, _reference(name, theta, grads), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Momentum(0.1),
                                  lambda: Nesterov(0.1), lambda: RMSProp(0.01),
                                  lambda: Adam(0.01), lambda: AdamW(0.01)])
def test_a_restored_optimizer_continues_the_same_run(make):
    # a checkpoint holds state() and t; a fresh optimizer given them must take the steps the
    # uninterrupted one takes (momentum and RMSProp once lost theirs at the first step)
    r = onp.random.default_rng(3)
    theta = r.normal(size=40)
    grads = [r.normal(size=40) for _ in range(6)]
    whole, th1 = make(), theta.copy()
    for g in grads:
        whole.step(th1, g)
    first, th2 = make(), theta.copy()
    for g in grads[:3]:
        first.step(th2, g)
    resumed = make()
    resumed.load_state({k: v.copy() for k, v in first.state().items()}, first.t)
    for g in grads[3:]:
        resumed.step(th2, g)
    onp.testing.assert_array_equal(th1, th2)


def test_optimizers_minimise_a_quadratic():
    A = onp.diag([1.0, 10.0])
    for opt in (GradientDescent(0.05), Momentum(0.02), Nesterov(0.02), RMSProp(0.01),
                Adam(0.05), AdamW(0.05, weight_decay=0.0)):
        th = onp.array([3.0, -2.0])
        for _ in range(500):
            opt.step(th, A @ th)
        assert onp.linalg.norm(th) < 0.05, type(opt).__name__


def test_l2_weight_decay_spares_biases():
    net = Network.from_sizes([2, 2], output="identity", cost="mse", dtype=onp.float64)
    opt = SGD(0.5, weight_decay=0.1)
    opt.mask = net.weight_mask
    net.theta[:] = 1.0
    opt.step(net.theta, onp.zeros_like(net.theta))
    assert onp.allclose(net.layers[0].W, 1 - 0.5 * 0.1) and onp.all(net.layers[0].b == 1.0)


def test_schedules_are_functions_of_the_step():
    assert step_decay(1.0, 10, 0.5)(9) == 1.0 and step_decay(1.0, 10, 0.5)(10) == 0.5
    assert exponential(2.0, 0.5)(3) == 0.25
    c = cosine(1.0, 100, min_lr=0.1)
    assert c(0) == 1.0 and math.isclose(c(100), 0.1) and c(1000) == c(100)
    w = warmup(cosine(1.0, 100), 10)
    assert w(0) == pytest.approx(0.1) and w(9) == pytest.approx(1.0) and w(10) == 1.0
    with pytest.raises(ValueError, match="positive"):
        cosine(-1.0, 10)


def test_clip_grad_norm():
    g = onp.array([3.0, 4.0])
    assert clip_grad_norm(g, 1.0) == 5.0 and onp.allclose(g, [0.6, 0.8])


# ------------------------------------------------------------------ training
def test_small_network_learns_digits(digits):
    X, y, Xt, yt = digits
    net = Network.from_sizes([64, 64, 10], seed=0)
    h = net.fit(X, y, epochs=30, batch_size=32, lr=3e-3, validation_data=(Xt, yt), verbose=0)
    assert net.accuracy(Xt, yt) > 0.9
    assert h["loss"][-1] < h["loss"][0]
    assert set(h) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert len(h["loss"]) == 30


def test_text_configuration_sigmoid_mse_sgd(digits):
    X, y, Xt, yt = digits
    net = Network.from_sizes([64, 30, 10], hidden="sigmoid", output="sigmoid", cost="mse",
                             seed=0)
    net.fit(X, y, epochs=30, batch_size=10, optimizer="sgd", lr=3.0, schedule="constant",
            verbose=0)
    assert net.accuracy(Xt, yt) > 0.9


def test_same_seed_same_weights(digits):
    X, y, _, _ = digits
    thetas = []
    for _ in range(2):
        net = Network.from_sizes([64, 16, 10], seed=3)
        net.fit(X, y, epochs=2, batch_size=50, seed=7, verbose=0)
        thetas.append(net.theta.copy())
    assert onp.array_equal(thetas[0], thetas[1])
    net = Network.from_sizes([64, 16, 10], seed=3)
    net.fit(X, y, epochs=2, batch_size=50, seed=8, verbose=0)
    assert not onp.array_equal(thetas[0], net.theta)


def test_float32_by_default_float64_on_request(digits):
    X, y, _, _ = digits
    assert Network.from_sizes([64, 10]).theta.dtype == onp.float32
    net = Network.from_sizes([64, 10], dtype="float64")
    net.fit(X, y, epochs=1, verbose=0)
    assert net.theta.dtype == onp.float64 and net.predict_proba(X).dtype == onp.float64


def test_full_batch_gradient_descent(digits):
    X, y, _, _ = digits
    net = Network.from_sizes([64, 10], seed=0)
    h = net.fit(X, y, epochs=20, batch_size=None, optimizer="gd", lr=0.5, schedule="constant",
                shuffle=False, verbose=0)
    assert all(b < a for a, b in zip(h["loss"], h["loss"][1:]))


def test_early_stopping_restores_best_weights(digits):
    X, y, Xt, yt = digits
    seen = {}

    class Spy(Callback):
        def on_epoch_end(self, state):
            seen[state.epoch] = (state.logs["val_loss"], state.net.theta.copy())

    net = Network.from_sizes([64, 32, 10], seed=0)
    es = EarlyStopping(patience=2)
    h = net.fit(X, y, epochs=60, lr=0.05, schedule="constant", validation_data=(Xt, yt),
                callbacks=[Spy(), es], verbose=0)
    best = min(seen, key=lambda e: seen[e][0])
    assert len(h["loss"]) < 60
    assert onp.array_equal(net.theta, seen[best][1])


def test_progress_one_line_per_epoch_off_a_terminal(digits):
    X, y, _, _ = digits
    out = io.StringIO()
    Network.from_sizes([64, 10]).fit(X, y, epochs=3, verbose=1, stream=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3") and "ex/s" in lines[0]


def test_progress_bar_draws_on_a_terminal(digits):
    X, y, _, _ = digits

    class TTY(io.StringIO):
        def isatty(self):
            return True

    out = TTY()
    Network.from_sizes([64, 10]).fit(X, y, epochs=1, batch_size=10, verbose=0,
                                     callbacks=[ProgressBar(out, interval=0.0)])
    assert "\r" in out.getvalue() and "[" in out.getvalue()


def test_divergence_stops_with_last_good_weights(digits):
    X, y, _, _ = digits
    net = Network.from_sizes([64, 32, 10], hidden="relu", output="identity", cost="mse",
                             seed=0)
    start = net.theta.copy()
    with pytest.raises(TrainingDiverged, match=r"epoch 1, batch \d+.*learning rate"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net.fit(X, y, epochs=5, optimizer="sgd", lr=1e6, schedule="constant", verbose=0)
    assert onp.array_equal(net.theta, start) and onp.all(onp.isfinite(net.theta))


def test_logits_of_a_thousand_are_stable():
    for out, cost in (("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy")):
        net = Network.from_sizes([2, 2], output=out, cost=cost, dtype=onp.float64)
        net.layers[0].W[...] = [[1000.0, 0.0], [0.0, -1000.0]][: 2]
        X = onp.array([[1.0, 1.0], [-1.0, -1.0]])
        y = onp.array([[0.0, 1.0], [1.0, 0.0]])  # the opposite of what the logits say
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            g = net.backprop(X, y)
        assert onp.isfinite(g.cost) and all(onp.all(onp.isfinite(d)) for d in g.dW)
        assert g.cost > 100  # confidently wrong: a large, finite cost


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("X,y,words", [
    (onp.ones((5, 4)), onp.zeros(4, int), "same length"),
    (onp.full((5, 4), onp.nan), onp.zeros(5, int), "NaN"),
    (onp.ones((5, 4)), onp.array([0, 1, 2, 3, 9]), "labels must be in 0..2"),
    (onp.ones((5, 4)), onp.array([0, 1, -1, 0, 0]), "labels must be in"),
    (onp.ones((5, 4)), onp.array([0.5, 1, 1, 0, 0]), "fractional"),
    # class names are learnt as classes_ (issue 16), as many as the outputs
    (onp.ones((5, 4)), onp.array(list("abcdd")), "4 classes .* 3 outputs"),
    (onp.ones((5, 3)), onp.zeros(5, int), "3 features but the network expects 4"),
    (onp.ones(4), onp.zeros(1, int), "one example must be a row"),
    (onp.ones((0, 4)), onp.zeros(0, int), "empty"),
    (onp.ones((5, 4)), onp.ones((5, 2)), "3 outputs"),
    (onp.array([["a"] * 4] * 5), onp.zeros(5, int), "numeric"),
])
def test_bad_training_data(X, y, words):
    net = Network.from_sizes([4, 3])
    with pytest.raises(ValueError, match=words):
        net.fit(X, y, epochs=1, verbose=0)


@pytest.mark.parametrize("bad", [onp.nan, onp.inf, -onp.inf])
@pytest.mark.parametrize("where", [(0, 0), (2999, 783), (1337, 5)])
def test_a_bad_value_anywhere_in_a_large_X_is_found(bad, where):
    """X is checked in slices (no boolean array the size of X): the first, last and a
    middle entry of 2.4 million."""
    X = onp.zeros((3000, 784), onp.float32)
    X[where] = bad
    net = Network.from_sizes([784, 3])
    with pytest.raises(ValueError, match="NaN or infinite"):
        net.fit(X, onp.zeros(3000, int), epochs=1, verbose=0)


@pytest.mark.parametrize("kwargs,words", [
    ({"epochs": -1}, "epochs"), ({"batch_size": 0}, "batch_size"),
    ({"optimizer": "lbfgs"}, "unknown optimizer"), ({"lr": -1.0}, "learning rate"),
    ({"schedule": "zigzag"}, "unknown schedule"), ({"validation_split": 1.5}, "validation_split"),
])
def test_bad_fit_settings(kwargs, words):
    net = Network.from_sizes([4, 3])
    with pytest.raises(ValueError, match=words):
        net.fit(onp.ones((6, 4)), onp.zeros(6, int), verbose=0, **kwargs)


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown activation 'relux'.*relu"):
        Network.from_sizes([2, 2], hidden="relux", output="relux")
    with pytest.raises(ValueError, match="unknown cost"):
        Network.from_sizes([2, 2], cost="hinge")
    with pytest.raises(ValueError, match="expects 3 inputs"):
        from chainrule.nn import Dense
        Network([Dense(2, 4), Dense(3, 1)])


@pytest.mark.parametrize("act", ["identity", "relu", "leaky_relu", "elu", "gelu", "softplus",
                                 "sigmoid", "tanh", "softmax"])
def test_every_activation_keeps_float32(act):
    from chainrule.nn import ACTIVATIONS
    z = onp.linspace(-3, 3, 12, dtype=onp.float32).reshape(3, 4)
    a = ACTIVATIONS[act].forward(z)
    assert a.dtype == onp.float32
    assert ACTIVATIONS[act].backward(z, a, onp.ones_like(z)).dtype == onp.float32


def test_exploding_gradient_warns_before_divergence(digits):
    from chainrule.training import ExplodingGradientWarning
    X, y, _, _ = digits
    net = Network.from_sizes([64, 32, 10], hidden="relu", output="identity", cost="mse",
                             seed=0)
    with pytest.warns(ExplodingGradientWarning, match=r"gradient norm reached .* epoch \d+, "
                                                      r"batch \d+.*clip_norm"):
        with pytest.raises(TrainingDiverged):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's overflow notes
                warnings.simplefilter("always", ExplodingGradientWarning)
                net.fit(X, y, epochs=5, batch_size=10, optimizer="sgd", lr=3.0,
                        schedule="constant", verbose=0)


def test_nan_gradient_with_finite_loss_stops(digits):
    """A user's cost whose gradient is NaN where its value is finite."""
    import chainrule.numpy as cnp
    X, y, _, _ = digits
    cost = lambda a, t: cnp.sum(cnp.sqrt(cnp.abs(a - t))) / t.shape[0]  # noqa: E731
    net = Network.from_sizes([64, 10], output="identity", cost=cost, dtype="float64", seed=0)
    net.layers[0].W[...] = 0
    Y = onp.zeros((len(X), 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(TrainingDiverged, match="gradient holds NaN"):
            net.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    assert onp.all(net.theta == 0)


def test_every_callback_that_listens_to_batches_is_called_once_a_batch():
    from chainrule.training.callbacks import listening

    class Counts(Callback):
        needs_gradient = False

        def __init__(self):
            self.n = 0

        def on_batch_end(self, state):
            self.n += 1

    class Duck:                      # a callback by its methods alone
        def __init__(self):
            self.n = 0

        def on_batch_end(self, state):
            self.n += 1

    quiet, counts, duck = Callback(), Counts(), Duck()
    X = onp.random.default_rng(0).normal(size=(50, 3))
    y = (X[:, 0] > 0).astype(int)
    net = Network.from_sizes([3, 4, 2], seed=0)
    net.fit(X, y, epochs=2, batch_size=20, callbacks=[quiet, counts, duck], verbose=0)
    assert counts.n == duck.n == 2 * 3                    # 3 batches of 50 a epoch
    assert listening([quiet, counts], "on_batch_end") == [counts]


@pytest.mark.parametrize("every, looks", [(1, [1, 2, 3, 4, 5]), (2, [1, 3, 5]), (16, [1])])
def test_the_gradient_watch_looks_every_so_many_steps(digits, every, looks, monkeypatch):
    import chainrule.training.callbacks as cb

    class Counting(cb.GradientWatch):
        def __call__(self, grad, state):
            seen.append(self.count)
            return super().__call__(grad, state)

    seen = []
    monkeypatch.setattr(cb, "GradientWatch", lambda: Counting(every=every))
    X, y, _, _ = digits
    net = Network.from_sizes([64, 10], seed=0)
    net.fit(X[:100], y[:100], epochs=1, batch_size=20, optimizer="adam", verbose=0)
    assert seen == looks
