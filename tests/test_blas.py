"""The BLAS fast path of the optimisers (chainrule._blas) and the batch order of fit."""

from __future__ import annotations

import numpy as onp
import pytest

from chainrule import _blas
from chainrule.nn import Network
from chainrule.optim import SGD, Momentum


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


def test_unsuitable_arrays_are_refused_untouched():
    x = onp.arange(10.0)
    y = onp.ones(20)[::2]                      # not contiguous
    assert not _blas.axpy(1.0, x, y) and onp.all(y == 1)
    assert not _blas.axpy(1.0, x.astype(onp.float32), onp.ones(10))    # mixed dtypes
    assert not _blas.axpy(1.0, onp.arange(10), onp.arange(10))          # integers
    assert not _blas.scal(2.0, onp.ones((2, 3)))                        # not a vector


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Momentum(0.1)])
def test_blas_and_numpy_paths_take_the_same_steps(make, dtype, monkeypatch):
    r = onp.random.default_rng(2)
    theta = r.normal(size=300).astype(dtype)
    grads = [r.normal(size=300).astype(dtype) for _ in range(6)]
    results = []
    for funcs in (_blas._funcs(), {}):
        monkeypatch.setattr(_blas, "_FUNCS", funcs)
        opt, th = make(), theta.copy()
        for g in grads:
            opt.step(th, g)
        results.append(th)
    tol = 1e-6 if dtype == onp.float32 else 1e-14
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
    real = net._backprop

    def spy(xb, yb, keep=False):
        seen.append(onp.rint(xb[:, 0] * m).astype(int).tolist())
        return real(xb, yb, keep)

    net._backprop = spy
    net.fit(X, y, epochs=2, batch_size=B, verbose=0)
    steps = -(-m // B)
    assert len(seen) == 2 * steps
    for e in range(2):
        batches = seen[e * steps:(e + 1) * steps]
        assert sorted(i for b in batches for i in b) == list(range(m))
        assert all(b == sorted(b) for b in batches)
    assert seen[0] != seen[steps]              # a fresh shuffle each epoch
    assert any(b != list(range(b[0], b[0] + len(b))) for b in seen[:steps])   # shuffled
