"""The optional compiled kernels (chainrule/_kernels.c) against the NumPy code they
replace."""

from __future__ import annotations

import numpy as onp
import pytest
from conftest import optimizer_run

from chainrule.engine import blas as _blas
from chainrule.engine import native as _native
from chainrule.nn import Network
from chainrule.optim import Adam, AdamW


def test_the_kernels_are_built():
    # setup.py builds them wherever a C compiler is found, as in CI; without them
    # chainrule still works (the tests below also run the fallback)
    assert _native.kernels() is not None


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
@pytest.mark.parametrize("make", [lambda: Adam(0.01), lambda: AdamW(0.01, weight_decay=0.1),
                                  lambda: Adam(0.01, weight_decay=0.1)])
def test_fused_adam_takes_the_numpy_steps(make, dtype, monkeypatch):
    r = onp.random.default_rng(4)
    theta = r.normal(size=1001).astype(dtype)
    grads = [r.normal(size=1001).astype(dtype) for _ in range(8)]
    grads[3][:100] = 0                      # exact zeros, as for dead units
    results = []
    for kern, blas in ((_native.kernels(), _blas._funcs()), (None, _blas._funcs()),
                       (None, {})):
        monkeypatch.setattr(_native, "_MOD", kern)
        monkeypatch.setattr(_blas, "_FUNCS", blas)
        results.append(optimizer_run(make, theta, grads))
    tol = 1e-5 if dtype == onp.float32 else 1e-13
    onp.testing.assert_allclose(results[0], results[1], rtol=tol, atol=tol)
    onp.testing.assert_allclose(results[0], results[2], rtol=tol, atol=tol)
    assert not onp.array_equal(results[0], theta)


def test_kernel_refuses_mismatched_buffers():
    k = _native.kernels()
    a = onp.zeros(10, onp.float32)
    with pytest.raises(ValueError, match="buffer 1 has 36 bytes, expected 40"):
        k.adam(a, onp.zeros(9, onp.float32), a.copy(), a.copy(), 0.9, 0.999, 1e-3, 1e-8,
               False)
    with pytest.raises(ValueError, match="softmax_pre: buffer 0 has 0 bytes"):
        k.softmax_pre(onp.zeros((0, 3)), onp.zeros(3), onp.zeros((0, 3)), onp.zeros(0), 0,
                      3, True)
    with pytest.raises((BufferError, TypeError, ValueError)):
        k.adam(onp.zeros(20, onp.float32)[::2], a, a.copy(), a.copy(), 0.9, 0.999, 1e-3,
               1e-8, False)


def test_unsuitable_arrays_take_the_numpy_path():
    a = onp.zeros(10, onp.float32)
    assert _native.fused_ok(a, a.copy(), a.copy(), a.copy())
    assert not _native.fused_ok(a, a, a.copy(), a.copy())                # overlapping
    assert not _native.fused_ok(a, a.copy(), a.astype(onp.float64), a.copy())   # dtypes
    assert not _native.fused_ok(onp.zeros(20, onp.float32)[::2], a.copy(), a.copy(), a.copy())
    th = onp.zeros(20)[::2]                 # a strided Theta still steps, through NumPy
    Adam(0.1).step(th, onp.ones(10))
    assert onp.all(th < 0)


def test_adam_checks_new_arrays_again():
    # the fused-kernel check is remembered for the same arrays only
    from chainrule.engine.fast import FastEngine

    opt = Adam(0.1)
    opt.engine = FastEngine()
    a = onp.zeros(10, onp.float32)
    opt.step(a, onp.ones(10, onp.float32))
    seen = opt.engine._adam_seen
    assert seen is not None and seen[0] is a
    th = onp.zeros(20, onp.float32)[::2]     # strided: the NumPy path, no stale answer
    opt.step(th, onp.ones(10, onp.float32))
    assert onp.all(th < 0) and opt.engine._adam_seen is seen


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("CHAINRULE_KERNELS", "0")
    monkeypatch.setattr(_native, "_MOD", False)
    assert _native.kernels() is None


def _both_engines(net):
    """The network on the fast engine (the kernels) and a copy on the NumPy reference."""
    from chainrule.engine import NumpyEngine
    from chainrule.engine.fast import FastEngine

    fast, ref = net.copy(), net.copy()
    fast.engine, ref.engine = FastEngine(), NumpyEngine()
    return fast, ref


def _step_both_ways(net, X, y, monkeypatch=None):
    out = []
    for n in _both_engines(net):
        Xc = n.check_X(X)
        value, _ = n.gradient(Xc, n.targets(y, Xc.shape[0]))
        out.append((value, n.grad.copy(), n.predict_proba(Xc)))
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes,hidden,output", [
    ([20, 16, 5], "relu", "softmax"), ([20, 16, 8, 5], "relu", "softmax"),
    ([20, 16, 5], "tanh", "softmax"), ([20, 16, 1], "relu", "sigmoid"),
    ([20, 16, 3], "relu", "identity"),
])
def test_fused_training_step_matches_numpy(sizes, hidden, output, dtype, monkeypatch):
    from chainrule.nn import Network

    r = onp.random.default_rng(5)
    net = Network.from_sizes(sizes, hidden=hidden, output=output, dtype=dtype, seed=1)
    X = r.normal(size=(33, sizes[0]))
    y = r.integers(0, sizes[-1], 33) if output == "softmax" else \
        r.uniform(size=(33, sizes[-1])).round() if output == "sigmoid" else \
        r.normal(size=(33, sizes[-1]))
    (v1, g1, a1), (v2, g2, a2) = _step_both_ways(net, X, y, monkeypatch)
    tol = 2e-5 if dtype == "float32" else 1e-13
    assert v1 == pytest.approx(v2, rel=tol)
    onp.testing.assert_allclose(g1, g2, rtol=tol, atol=tol)
    onp.testing.assert_allclose(a1, a2, rtol=tol, atol=tol)


def test_fused_step_propagates_nan_and_huge_logits(monkeypatch):
    from chainrule.nn import Network

    net = Network.from_sizes([4, 6, 3], seed=0, dtype="float64")
    X = onp.ones((5, 4))
    X64 = net.check_X(X)
    net.layers[-1].W[...] = 1e3                 # logits in the thousands: no overflow
    (v1, g1, _), (v2, g2, _) = _step_both_ways(net, X, onp.arange(5) % 3, monkeypatch)
    assert onp.isfinite(v1) and v1 == pytest.approx(v2, rel=1e-12)
    onp.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-12)
    net.layers[0].b[0] = onp.nan                # a NaN weight: both paths report NaN
    for n in _both_engines(net):
        assert onp.isnan(n.gradient(X64, n.targets(onp.arange(5) % 3, 5))[0])


def test_fused_hits_count_as_argmax_does():
    from chainrule.engine.fast import FastEngine
    from chainrule.nn import get_activation, get_cost

    r = onp.random.default_rng(6)
    z = r.normal(size=(50, 7))
    Y = onp.eye(7)[r.integers(0, 7, 50)]
    a, d = onp.empty_like(z), onp.empty_like(z)
    value, a, d, hits = FastEngine().output_error(
        z, onp.zeros(7), get_activation("softmax"), get_cost("cross_entropy"), Y, a, d)
    assert hits == int(onp.count_nonzero(a.argmax(1) == Y.argmax(1)))
    assert hits >= 3


def test_remembered_checks_follow_the_buffers_and_layers_handed_in():
    # the engine checks a buffer set once and remembers it; other buffers, another
    # activation or cost, or targets of another layout must be checked again
    from chainrule.engine.fast import FastEngine
    from chainrule.engine.reference import NumpyEngine
    from chainrule.nn import get_activation, get_cost

    r = onp.random.default_rng(8)
    fast, ref = FastEngine(), NumpyEngine()
    soft, sig = get_activation("softmax"), get_activation("sigmoid")
    xent, mse = get_cost("cross_entropy"), get_cost("mse")
    z0, b = r.normal(size=(6, 4)), r.normal(size=4)
    labels = r.integers(0, 4, 6).astype(onp.int64)
    wide = onp.empty((6, 8))
    cases = [(soft, xent, labels, onp.empty((6, 4))), (soft, xent, labels, onp.empty((6, 4))),
             (sig, xent, onp.eye(4)[labels], onp.empty((6, 4))), (soft, mse, onp.eye(4)[labels],
             onp.empty((6, 4))), (soft, xent, labels.astype(onp.int32), onp.empty((6, 4))),
             (soft, xent, labels, wide[:, ::2])]                # a strided a^L
    a_kept, d_kept, db_kept = onp.empty((6, 4)), onp.empty((6, 4)), onp.empty(4)
    for act, cost, Y, a_out in cases:
        for buffers in ((a_kept, d_kept, db_kept), (a_out, onp.empty((6, 4)), onp.empty(4))):
            got = [onp.asarray(v) for v in fast.output_error(z0.copy(), b, act, cost, Y,
                                                              buffers[0], *buffers[1:])[:3]]
            want = [onp.asarray(v) for v in ref.output_error(z0.copy(), b, act, cost, Y,
                                                              onp.empty((6, 4)),
                                                              onp.empty((6, 4)))[:3]]
            for g, w in zip(got, want):
                onp.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
            # BP3 of the output layer: the column sums of delta
            onp.testing.assert_allclose(fast.sum_rows(got[2], onp.empty(4)),
                                        want[2].sum(0), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
def test_labels_stand_for_their_one_hot_rows(dtype, monkeypatch):
    # fit hands the fused output layer int64 labels instead of one-hot rows: the same
    # bits, with the kernel and through the NumPy fallback
    from chainrule.nn import Network

    r = onp.random.default_rng(7)
    net = Network.from_sizes([9, 12, 4], seed=2, dtype=dtype)
    X = r.normal(size=(21, 9)).astype(dtype)
    labels = r.integers(0, 4, 21).astype(onp.int64)
    out = []
    for n in _both_engines(net):
        for Y in (labels, n.targets(labels, 21)):
            value, hits = n.gradient(X, Y)
            out.append((value, n.grad.copy(), hits))
    for value, grad, _ in out[1:]:
        assert value == pytest.approx(out[0][0], rel=1e-6)
        onp.testing.assert_allclose(grad, out[0][1], rtol=1e-5, atol=1e-7)
    assert out[0][0] == out[1][0] and onp.array_equal(out[0][1], out[1][1])   # kernel
    assert out[0][2] == out[2][2] is not None


def test_a_label_out_of_range_is_refused_by_the_kernel():
    k = _native.kernels()
    z = onp.zeros((2, 3), onp.float32)
    with pytest.raises(ValueError, match="label is outside"):
        k.softmax_post(z, onp.array([0, 3]), onp.ones((2, 3), onp.float32), z.copy(),
                       onp.zeros(2, onp.float32), onp.zeros(3, onp.float32), 2, 3, False, True)
    with pytest.raises(ValueError, match="buffer 1 has 8 bytes, expected 16"):
        k.softmax_post(z, onp.array([0]), onp.ones((2, 3), onp.float32), z.copy(),
                       onp.zeros(2, onp.float32), onp.zeros(3, onp.float32), 2, 3, False, True)


def test_fit_reports_the_same_accuracy_either_way(monkeypatch):
    from sklearn.datasets import load_digits

    from chainrule.nn import Network

    d = load_digits()
    X, y = d.data[:400] / 16.0, d.target[:400]
    hist = []
    for engine in ("fast", "numpy"):
        net = Network.from_sizes([64, 32, 10], dtype="float64", seed=0, engine=engine)
        hist.append(net.fit(X, y, epochs=3, batch_size=32, verbose=0))
    onp.testing.assert_allclose(hist[0]["loss"], hist[1]["loss"], rtol=1e-12)
    assert hist[0]["accuracy"] == hist[1]["accuracy"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_validation_score_either_way(dtype, monkeypatch):
    from chainrule.nn import Network

    r = onp.random.default_rng(7)
    net = Network.from_sizes([12, 9, 4], dtype=dtype, seed=2)
    X = net.check_X(r.normal(size=(301, 12)))
    Y = net.targets(r.integers(0, 4, 301), 301)
    scores = [n.score(X, Y, batch_size=64) for n in _both_engines(net)]
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert scores[0][0] == pytest.approx(scores[1][0], rel=tol)
    assert scores[0][1] == scores[1][1]


def test_the_step_vectors_are_staggered_within_a_page():
    """Theta, its gradient and Adam's scratch and moments each start at their own offset
    modulo 4 KiB (the fast engine's zeros): never two at nearly the same one, which stalls
    a loop that streams them together (4K aliasing). Zeros, and resumed state kept."""
    from chainrule.engine.fast import PAGE, STAGGER, FastEngine

    eng = FastEngine()
    for slot in range(8):
        for shape in (79510, (3, 5)):
            z = eng.zeros(shape, onp.float32, slot)
            assert z.ctypes.data % PAGE == slot * STAGGER % PAGE
            assert z.shape == ((shape,) if isinstance(shape, int) else shape)
            assert z.dtype == onp.float32 and z.flags.c_contiguous and not z.any()
    net = Network.from_sizes([784, 100, 10], seed=0, engine=eng)
    opt = Adam(1e-3)
    opt.engine = eng
    opt.load_state({"m": onp.full(net.theta.size, 2.0, onp.float32)}, 5)
    opt.step(net.theta, net.grad)
    offsets = [a.ctypes.data % PAGE for a in (net.theta, net.grad, opt._tmp, opt.m, opt.v)]
    assert offsets == [slot * STAGGER for slot in range(5)]   # Theta 0, gradient 1, ...
    assert onp.all(opt.m == onp.float32(0.9 * 2.0))     # the loaded m, one step on
