"""The optional compiled kernels (chainrule/_kernels.c) against the NumPy code they
replace."""

from __future__ import annotations

import numpy as onp
import pytest

from chainrule import _blas, _native
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
        opt, th = make(), theta.copy()
        for g in grads:
            opt.step(th, g)
        results.append(th)
    tol = 1e-5 if dtype == onp.float32 else 1e-13
    onp.testing.assert_allclose(results[0], results[1], rtol=tol, atol=tol)
    onp.testing.assert_allclose(results[0], results[2], rtol=tol, atol=tol)
    assert not onp.array_equal(results[0], theta)


def test_kernel_refuses_mismatched_buffers():
    k = _native.kernels()
    a = onp.zeros(10, onp.float32)
    with pytest.raises(ValueError, match="same length"):
        k.adam_f32(a, onp.zeros(9, onp.float32), a.copy(), a.copy(), 0.9, 0.999, 1e-3, 1e-8)
    with pytest.raises((BufferError, TypeError, ValueError)):
        k.adam_f32(onp.zeros(20, onp.float32)[::2], a, a.copy(), a.copy(), 0.9, 0.999,
                   1e-3, 1e-8)


def test_unsuitable_arrays_take_the_numpy_path():
    a = onp.zeros(10, onp.float32)
    assert _native.fused_ok(a, a.copy(), a.copy(), a.copy())
    assert not _native.fused_ok(a, a, a.copy(), a.copy())                # overlapping
    assert not _native.fused_ok(a, a.copy(), a.astype(onp.float64), a.copy())   # dtypes
    assert not _native.fused_ok(onp.zeros(20, onp.float32)[::2], a.copy(), a.copy(), a.copy())
    th = onp.zeros(20)[::2]                 # a strided Theta still steps, through NumPy
    Adam(0.1).step(th, onp.ones(10))
    assert onp.all(th < 0)


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("CHAINRULE_KERNELS", "0")
    monkeypatch.setattr(_native, "_MOD", False)
    assert _native.kernels() is None
