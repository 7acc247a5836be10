"""The BLAS fast path of the optimisers (chainrule._blas) and the batch order of fit."""

from __future__ import annotations

import numpy as onp
import pytest
from conftest import optimizer_run

from chainrule.engine import blas as _blas
from chainrule.engine import native as _native
from chainrule.nn import Network
from chainrule.optim import SGD, Adam, AdamW, Momentum


@pytest.fixture
def no_blas(monkeypatch):
    monkeypatch.setattr(_blas, "_FUNCS", {})


def test_numpys_own_blas_is_found():
    # NumPy's wheels ship OpenBLAS; losing the fast path must show up as a failure here
    assert _blas.available()


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
def test_axpy_and_scal_agree_with_numpy(dtype):
    r = onp.random.default_rng(0)
    x, y = r.normal(size=1001).astype(dtype), r.normal(size=1001).astype(dtype)
    want = y + dtype(-0.3) * x
    assert _blas.axpy(-0.3, x, y)
    tol = 1e-6 if dtype == onp.float32 else 1e-15    # BLAS may fuse the multiply-add
    onp.testing.assert_allclose(y, want, rtol=tol, atol=tol)
    want = y * dtype(1.5)
    assert _blas.scal(1.5, y)
    onp.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
def test_the_engines_bound_axpy_follows_the_vectors_it_is_handed(dtype):
    # the engine keeps the BLAS call bound to the last two vectors; a new pair must not
    # be written through the old addresses, and the old pair must stay untouched
    from chainrule.engine.fast import AXPY_BLAS_MIN, FastEngine
    eng, r = FastEngine(), onp.random.default_rng(1)
    n = AXPY_BLAS_MIN + 3
    x, y = r.normal(size=n).astype(dtype), r.normal(size=n).astype(dtype)
    want = y.copy()
    for alpha in (-0.5, 0.25, 2.0):              # the same pair again: the bound call
        eng.axpy(alpha, x, y)
        want += dtype(alpha) * x
    onp.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-5)
    x2, y2 = r.normal(size=n).astype(dtype), r.normal(size=n).astype(dtype)
    kept, want2 = y.copy(), y2 + dtype(-1.5) * x2
    eng.axpy(-1.5, x2, y2)
    onp.testing.assert_allclose(y2, want2, rtol=1e-6, atol=1e-6)
    assert onp.array_equal(y, kept)
    short_x, short_y = onp.ones(5, dtype), onp.zeros(5, dtype)   # below the BLAS length
    eng.axpy(3.0, short_x, short_y)
    assert short_y.tolist() == [3.0] * 5


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
def test_axpby_agrees_with_numpy(dtype):
    r = onp.random.default_rng(1)
    x, y = r.normal(size=777).astype(dtype), r.normal(size=777).astype(dtype)
    want = dtype(0.1) * x + dtype(0.9) * y
    assert _blas.axpby(0.1, x, 0.9, y)
    tol = 1e-6 if dtype == onp.float32 else 1e-15
    onp.testing.assert_allclose(y, want, rtol=tol, atol=tol)
    assert not _blas.axpby(0.1, x[::2], 0.9, y[::2])


def test_unsuitable_arrays_are_refused_untouched():
    x = onp.arange(10.0)
    y = onp.ones(20)[::2]                      # not contiguous
    assert not _blas.axpy(1.0, x, y) and onp.all(y == 1)
    assert not _blas.axpy(1.0, x.astype(onp.float32), onp.ones(10))    # mixed dtypes
    assert not _blas.axpy(1.0, onp.arange(10), onp.arange(10))          # integers
    assert not _blas.scal(2.0, onp.ones((2, 3)))                        # not a vector


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Momentum(0.1),
                                  lambda: Adam(0.01), lambda: AdamW(0.01)])
def test_blas_and_numpy_paths_take_the_same_steps(make, dtype, monkeypatch):
    r = onp.random.default_rng(2)
    theta = r.normal(size=300).astype(dtype)
    grads = [r.normal(size=300).astype(dtype) for _ in range(6)]
    monkeypatch.setattr(_native, "_MOD", None)          # BLAS against NumPy alone
    results = []
    for funcs in (_blas._funcs(), {}):
        monkeypatch.setattr(_blas, "_FUNCS", funcs)
        results.append(optimizer_run(make, theta, grads))
    # float32: a fused multiply-add rounds once where NumPy rounds twice, and Adam's
    # division by sqrt(v) + eps magnifies that last bit
    tol = 1e-5 if dtype == onp.float32 else 1e-14
    onp.testing.assert_allclose(results[0], results[1], rtol=tol, atol=tol)
    assert not onp.array_equal(results[0], theta)


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("CHAINRULE_BLAS", "0")
    monkeypatch.setattr(_blas, "_FUNCS", None)
    assert not _blas.available()
    th = onp.ones(5)
    SGD(0.5).step(th, onp.ones(5))            # the NumPy path still steps
    onp.testing.assert_array_equal(th, 0.5)


def test_each_epoch_visits_every_example_once_in_sorted_batches():
    m, B = 103, 10
    X = onp.arange(m, dtype=float).reshape(-1, 1) / m
    y = onp.arange(m) % 2
    net = Network.from_sizes([1, 2], seed=0, dtype=onp.float64)
    seen: list[list[int]] = []
    real = net.gradient

    def spy(xb, yb, descend=None):
        seen.append(onp.rint(xb[:, 0] * m).astype(int).tolist())
        return real(xb, yb, descend)

    net.gradient = spy
    net.fit(X, y, epochs=2, batch_size=B, verbose=0)
    steps = -(-m // B)
    assert len(seen) == 2 * steps
    for e in range(2):
        batches = seen[e * steps:(e + 1) * steps]
        assert sorted(i for b in batches for i in b) == list(range(m))
        assert all(b == sorted(b) for b in batches)
    assert seen[0] != seen[steps]              # a fresh shuffle each epoch
    assert any(b != list(range(b[0], b[0] + len(b))) for b in seen[:steps])   # shuffled


def test_optimizer_state_never_goes_subnormal():
    from chainrule.optim import optimizers

    tiny = onp.finfo(onp.float32).tiny
    r = onp.random.default_rng(3)
    theta = r.normal(size=64).astype(onp.float32)
    g = r.normal(size=64).astype(onp.float32)
    ref_th, opt = theta.copy(), Adam(0.01)
    opt.step(theta, g)
    zero = onp.zeros_like(g)              # a unit that died: its gradient stays exactly 0
    for _ in range(1500):
        opt.step(theta, zero)
    assert not onp.any((opt.m != 0) & (onp.abs(opt.m) < tiny))
    # the same run with the flush switched off: the weights agree, the state has gone
    # subnormal on the way to zero
    flush = optimizers.FLUSH_EVERY
    try:
        optimizers.FLUSH_EVERY = 10 ** 9
        opt2, th2 = Adam(0.01), ref_th.copy()
        opt2.step(th2, g)
        subnormal_seen = False
        for _ in range(1500):
            opt2.step(th2, zero)
            subnormal_seen |= bool(onp.any((opt2.m != 0) & (onp.abs(opt2.m) < tiny)))
    finally:
        optimizers.FLUSH_EVERY = flush
    assert subnormal_seen
    onp.testing.assert_array_equal(theta, th2)


def test_flush_tiny_spares_normal_numbers():
    from chainrule.optim.optimizers import flush_tiny

    a = onp.array([1e-3, -1e-30, 1e-33, -1e-40, 0.0, 3.0], onp.float32)
    flush_tiny(a)
    onp.testing.assert_array_equal(a, onp.array([1e-3, -1e-30, 0, 0, 0, 3.0], onp.float32))


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
def test_gemm_tn_agrees_with_numpy(dtype):
    r = onp.random.default_rng(5)
    a, b = r.normal(size=(37, 13)).astype(dtype), r.normal(size=(37, 6)).astype(dtype)
    c = r.normal(size=(13, 6)).astype(dtype)
    want = dtype(-0.25) * (a.T @ b) + dtype(0.5) * c
    assert _blas.gemm_tn(-0.25, a, b, 0.5, c)
    tol = 1e-5 if dtype == onp.float32 else 1e-13
    onp.testing.assert_allclose(c, want, rtol=tol, atol=tol)


def test_gemm_tn_refuses_what_it_cannot_do_untouched():
    a, b, c = onp.ones((4, 2)), onp.ones((4, 3)), onp.ones((2, 3))
    assert not _blas.gemm_tn(1.0, a, b, 1.0, onp.ones((3, 2)))             # shapes
    assert not _blas.gemm_tn(1.0, a, onp.ones((5, 3)), 1.0, c)             # inner sizes
    assert not _blas.gemm_tn(1.0, a.astype(onp.float32), b, 1.0, c)       # dtypes
    assert not _blas.gemm_tn(1.0, onp.ones((2, 4)).T, b, 1.0, c)           # layout
    assert not _blas.gemm_tn(1.0, a, b, 1.0, onp.ones((3, 2)).T)
    assert onp.all(c == 1)


def _fit_sgd(monkeypatch, fused: bool, callbacks=None, dtype="float32", **kw):
    if not fused:
        monkeypatch.setattr(SGD, "descend_rates", lambda self: None)
    r = onp.random.default_rng(6)
    X = r.normal(size=(300, 12)).astype(onp.float32)
    y = (X[:, :3].sum(1) > 0).astype(int) + (X[:, 3] > 1)
    net = Network.from_sizes([12, 30, 3], seed=1, dtype=dtype, engine="fast")
    calls = []
    real = net.gradient

    def spy(xb, yb, descend=None):
        calls.append(descend is not None)
        return real(xb, yb, descend)

    net.gradient = spy
    hist = net.fit(X, y, epochs=3, batch_size=16, optimizer=SGD(0.2, **kw), verbose=0,
                   callbacks=callbacks)
    monkeypatch.undo()
    return net.theta.copy(), hist, calls


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("wd", [0.0, 0.01])
@pytest.mark.parametrize("blas_min", [0, 2000])
def test_plain_sgd_steps_inside_the_backward_pass(wd, blas_min, dtype, monkeypatch):
    # the fused step (BP4 adding into W^l) takes the same steps as backprop + SGD.step;
    # ``blas_min`` 0: both layers through BLAS; 2000: the first (16 x 12 x 30 products)
    # through BLAS, the second (16 x 30 x 3) through NumPy
    from chainrule.engine import fast
    monkeypatch.setattr(fast, "DESCEND_BLAS_MIN", blas_min)
    theta_f, hist_f, calls_f = _fit_sgd(monkeypatch, True, dtype=dtype, weight_decay=wd)
    monkeypatch.setattr(fast, "DESCEND_BLAS_MIN", blas_min)
    theta_p, hist_p, calls_p = _fit_sgd(monkeypatch, False, dtype=dtype, weight_decay=wd)
    tol = 2e-5 if dtype == "float32" else 1e-12
    onp.testing.assert_allclose(theta_f, theta_p, rtol=tol, atol=tol / 10)
    onp.testing.assert_allclose(hist_f["loss"], hist_p["loss"], rtol=tol)
    assert not any(calls_p)
    assert calls_f and all(calls_f)        # chosen once for the run: every step fused


def test_the_gradient_is_there_for_a_callback_that_needs_it(monkeypatch):
    # a callback that reads net.grad (needs_gradient, the default) keeps every step apart
    # from BP4, so it finds the last batch's gradient; the fused run is chosen otherwise
    from chainrule.engine import fast
    from chainrule.training import Callback

    class Grads(Callback):
        def __init__(self):
            self.seen = []

        def on_epoch_end(self, state):
            self.seen.append(state.net.grad.copy())

    class Blind(Callback):
        needs_gradient = False

    monkeypatch.setattr(fast, "DESCEND_BLAS_MIN", 0)
    cb = Grads()
    _, _, calls = _fit_sgd(monkeypatch, True, callbacks=[cb], dtype="float64")
    assert calls and not any(calls) and len(cb.seen) == 3
    assert all(onp.abs(g).max() > 0 for g in cb.seen)
    monkeypatch.setattr(fast, "DESCEND_BLAS_MIN", 0)
    _, _, calls = _fit_sgd(monkeypatch, True, callbacks=[Blind()], dtype="float64")
    assert calls and all(calls)


def test_a_subclass_with_its_own_step_is_not_bypassed():
    class Halved(SGD):
        def step(self, theta, grad):
            super().step(theta, grad * 0.5)

    class Own(SGD):
        def update(self, theta, grad, lr):
            theta -= lr * onp.sign(grad)

    assert SGD(0.1).descend_rates() == (0.1, 0.0)
    assert Halved(0.1).descend_rates() is None and Own(0.1).descend_rates() is None
    assert Momentum(0.1).descend_rates() is None and Adam(0.1).descend_rates() is None


def test_small_networks_keep_one_update_of_theta(monkeypatch):
    # no layer large enough for the BLAS product (the default threshold): one update of
    # all of Theta is fewer calls than one per layer, so nothing is fused
    _, _, calls = _fit_sgd(monkeypatch, True)
    assert calls and not any(calls)


def test_a_callback_that_watches_batches_sees_real_gradients(monkeypatch):
    from chainrule.training import Callback

    norms = []

    class Watch(Callback):
        def on_batch_end(self, state):
            norms.append(float(onp.linalg.norm(state.net.grad)))

    _, _, calls = _fit_sgd(monkeypatch, True, callbacks=[Watch()])
    assert not any(calls) and len(norms) == len(calls) and min(norms) > 0
