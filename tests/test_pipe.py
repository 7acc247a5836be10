"""The two-thread pipe (chainrule/_pipe.py, the pipe_* functions of _kernels.c): its split
products, its gather and its Adam step against NumPy and the one-thread kernels, and fit
with it against fit without it."""

from __future__ import annotations

import numpy as onp
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from chainrule.engine import native as _native
from chainrule.engine import pipe as _pipe
from chainrule.nn import Network
from chainrule.optim import SGD, Adam
from chainrule.training import Callback


@pytest.fixture
def pipe():
    p = _pipe.open_pipe()
    # built wherever the kernels are (a C compiler, as in CI) and NumPy's BLAS has gemm
    assert p is not None, "the two-thread pipe did not open"
    # as in fit: the BLAS on one thread on each side
    with threadpool_limits(1, user_api="blas"):
        yield p
    p.close()


def _openblas() -> bool:
    return any(d.get("internal_api") == "openblas" for d in threadpool_info()
               if d.get("user_api") == "blas")


R = onp.random.default_rng(7)


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
@pytest.mark.parametrize("layout", ["nn", "tn", "nt"])
def test_split_product_is_the_product(pipe, dtype, layout):
    """Each layout fit uses: z = A W^T (forward), W^T += A^T delta (BP4), delta W (BP2)."""
    m, k, n = 300, 784, 100
    a = R.normal(size=(m, k)).astype(dtype)
    b = R.normal(size=(k, n)).astype(dtype)
    if layout == "tn":
        a = onp.ascontiguousarray(R.normal(size=(k, m)).astype(dtype)).T   # F-contiguous
    if layout == "nt":
        b = onp.ascontiguousarray(R.normal(size=(n, k)).astype(dtype)).T
    out = onp.empty((m, n), dtype)
    assert pipe.matmul(a, b, out)
    want = onp.matmul(a, b)                   # one thread (the fixture's limit)
    if _openblas():
        # each side of the split has >= 64 rows: the same kernels, the same sums
        assert onp.array_equal(out, want)
    else:  # pragma: no cover - another BLAS may sum in another order
        onp.testing.assert_allclose(out, want, rtol=1e-5)


def test_split_product_with_alpha_and_beta(pipe):
    a = onp.ascontiguousarray(R.normal(size=(256, 784)).astype(onp.float32))
    d = R.normal(size=(256, 100)).astype(onp.float32)
    w = R.normal(size=(784, 100)).astype(onp.float32)
    want = onp.float32(0.99) * w + onp.float32(-0.1) * (a.T @ d)
    assert pipe.matmul(a.T, d, w, alpha=-0.1, beta=0.99)
    onp.testing.assert_allclose(w, want, rtol=1e-5, atol=1e-5)


def test_products_the_pipe_does_not_take(pipe):
    small = onp.ones((64, 8), onp.float32)
    assert not pipe.matmul(small, onp.ones((8, 8), onp.float32), onp.empty((64, 8),
                                                                         onp.float32))
    a = onp.ones((512, 800), onp.float32)
    b = onp.ones((800, 100), onp.float32)
    assert not pipe.matmul(a[:, ::2], b[::2], onp.empty((512, 100), onp.float32))  # strided
    assert not pipe.matmul(a, b.astype(onp.float64), onp.empty((512, 100)))      # dtypes
    assert not pipe.matmul(a, b, onp.empty((100, 512), onp.float32).T)            # out F
    assert not pipe.matmul(a, b, onp.empty((512, 100), onp.int32))                # ints
    assert not pipe.matmul(a[:, :100], b[:100], a[:, 100:200])    # out overlaps a (a row)
    ro = onp.empty((512, 100), onp.float32)
    ro.flags.writeable = False
    assert not pipe.matmul(a, b, ro)                                             # read-only
    sub = onp.zeros((512, 128), onp.float32)[:, :100]             # rows with a gap: fine
    assert pipe.matmul(a, b, sub) and (sub == 800).all()


def test_gather_is_exact_and_checks_its_indices(pipe):
    X = R.normal(size=(1000, 37)).astype(onp.float32)
    idx = R.integers(0, 1000, 300)
    out = onp.full((300, 37), onp.nan, onp.float32)
    pipe.prefetch(X, idx, out)
    pipe.wait()                       # no product came: wait posts the gather itself
    assert onp.array_equal(out, X[idx])
    pipe.prefetch(X, onp.array([0, 5, 1000]), out)
    with pytest.raises(IndexError, match="out of range"):
        pipe.wait()
    pipe.prefetch(X, idx[::-1].copy(), out)      # and the pipe goes on working
    pipe.wait()
    assert onp.array_equal(out, X[idx[::-1]])
    pipe.prefetch(X, idx.astype(onp.int32), out)   # checked when it is posted
    with pytest.raises(ValueError, match="int64"):
        pipe.wait()
    pipe.prefetch(X[:, ::2], idx, out[:, :19])
    with pytest.raises(ValueError, match="C-contiguous"):
        pipe.wait()
    pipe.prefetch(X, idx, out)
    pipe.wait()
    assert onp.array_equal(out, X[idx])


def test_gather_runs_beside_the_next_product(pipe):
    X = R.normal(size=(5000, 784)).astype(onp.float32)
    idx = onp.sort(R.permutation(5000)[:256])
    nxt = onp.empty((256, 784), onp.float32)
    W = R.normal(size=(784, 100)).astype(onp.float32)
    z = onp.empty((256, 100), onp.float32)
    pipe.prefetch(X, idx, nxt)
    assert pipe.matmul(X[:256], W, z)         # posts the gather after itself
    pipe.wait()
    assert onp.array_equal(nxt, X[idx])
    onp.testing.assert_allclose(z, X[:256] @ W, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
def test_split_adam_is_the_one_thread_kernel(pipe, dtype):
    k = _native.kernels()
    n = 79510
    theta, g = R.normal(size=n).astype(dtype), R.normal(size=n).astype(dtype)
    m, v = R.normal(size=n).astype(dtype), R.random(n).astype(dtype)
    one = [x.copy() for x in (theta, g, m, v)]
    k.adam(*one, 0.9, 0.999, 1e-3, 1e-8, dtype == onp.float64)
    assert pipe.adam(theta, g, m, v, 0.9, 0.999, 1e-3, 1e-8)
    for got, want in zip((theta, m, v), (one[0], one[2], one[3])):
        assert onp.array_equal(got, want)       # element-wise: the same bits


def test_only_one_pipe_at_a_time(pipe):
    assert _pipe.open_pipe() is None


class _Seen(Callback):
    def __init__(self):
        self.piped = []

    def on_epoch_end(self, state):
        self.piped.append(state.net.engine.pipe is not None)


def _data(n=3000):
    r = onp.random.default_rng(0)
    X = r.random((n, 196)).astype(onp.float32)
    y = onp.argmax(X @ r.normal(size=(196, 4)), axis=1)
    return X, y


@pytest.mark.parametrize("batch", [250, 64])
@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Adam(3e-3)],
                         ids=["sgd", "adam"])
def test_fit_with_the_pipe_is_fit_without_it(make, batch, monkeypatch):
    X, y = _data()
    runs = []
    for env in ("1", "1", "0"):
        monkeypatch.setenv("CHAINRULE_PIPE", env)
        net = Network.from_sizes([196, 120, 4], seed=1, engine="fast")
        seen = _Seen()
        # 2 threads asked for: the pipe runs even where the BLAS has more or fewer
        h = net.fit(X, y, epochs=3, batch_size=batch, validation_data=(X[:700], y[:700]),
                    optimizer=make(), callbacks=[seen], verbose=0, blas_threads=2)
        assert seen.piped == [env == "1"] * 3
        assert net.engine.pipe is None
        runs.append((net.theta.copy(), h["val_accuracy"][-1]))
    assert onp.array_equal(runs[0][0], runs[1][0])           # reproducible
    # the same run up to the order of the BLAS's sums
    onp.testing.assert_allclose(runs[0][0], runs[2][0], rtol=1e-4, atol=1e-5)
    assert abs(runs[0][1] - runs[2][1]) <= 0.01
    assert runs[0][1] > 0.5


@pytest.mark.parametrize("hook", ["on_train_begin", "on_epoch_end"])
def test_a_run_that_fails_gives_the_pipe_back(hook):
    """A callback raising before the first epoch or after one: the worker is stopped and
    the next run can take the pipe."""
    X, y = _data()
    boom = type("Boom", (Callback,), {hook: lambda self, state: 1 / 0})

    net = Network.from_sizes([196, 120, 4], seed=1, engine="fast")
    with pytest.raises(ZeroDivisionError):
        net.fit(X, y, epochs=2, batch_size=250, callbacks=[boom()], verbose=0,
                blas_threads=2)
    assert net.engine.pipe is None
    p = _pipe.open_pipe()
    assert p is not None                       # nobody holds it
    p.close()


def test_no_pipe_where_it_cannot_help():
    sizes = [196, 120, 4]
    assert _pipe.for_run(sizes, 8, 2) is None              # too few rows to split
    assert _pipe.for_run([784, 100, 10], 10, 2) is None    # small
    assert _pipe.for_run(sizes, 256, 1) is None            # one thread asked for
    assert _pipe.for_run([8, 4, 2], 256, 2) is None        # tiny


def test_a_forked_child_is_told_the_pipe_is_closed(pipe):
    import os

    if not hasattr(os, "fork"):  # pragma: no cover - fork is POSIX
        pytest.skip("no fork on this platform")
    a = onp.ones((256, 784), onp.float32)
    b = onp.ones((784, 100), onp.float32)
    out = onp.empty((256, 100), onp.float32)
    pid = os.fork()
    if pid == 0:                                   # the child: no worker thread here
        code = 1
        try:
            pipe.matmul(a, b, out)
        except RuntimeError:
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert pipe.matmul(a, b, out) and (out == 784).all()   # the parent's pipe still works


def test_the_network_asks_the_pipe_from_the_same_size():
    from chainrule.engine import fast

    assert _pipe.SPLIT_MIN == fast.DESCEND_BLAS_MIN
