"""The pipe (chainrule/engine/pipe.py, the pipe_* functions of _kernels.c), with one worker
thread and with N: its split products, its gather and its Adam step against NumPy and the
one-thread kernels, its waits, and fit with it against fit without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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


def test_the_network_asks_the_pipe_from_the_same_size():
    from chainrule.engine import fast

    assert _pipe.SPLIT_MIN == fast.DESCEND_BLAS_MIN


# ---------------------------------------------------------------------- N workers
@pytest.fixture(params=[1, 2, 3], ids=lambda n: f"{n}w")
def npipe(request):
    p = _pipe.open_pipe(request.param)
    assert p is not None, "the pipe did not open"
    assert p.n_workers == request.param == _native.kernels().pipe_workers()
    with threadpool_limits(1, user_api="blas"):
        yield p
    p.close()
    assert _native.kernels().pipe_workers() == 0


def _points(m, parts):
    return _native.kernels().pipe_split_points(m, parts, _pipe.MIN_ROWS, _pipe.SHARE)


def test_split_points_are_fixed_and_one_worker_splits_as_before():
    for m in range(16, 1200):
        # the one-worker split of the two-thread pipe, to the row
        h = int(m * 0.5 / 16.0 + 0.5) * 16
        h = min(max(h, _pipe.MIN_ROWS), m - _pipe.MIN_ROWS)
        assert _points(m, 2) == (0, h, m)
        for parts in range(2, min(9, m // _pipe.MIN_ROWS) + 1):
            r = _points(m, parts)
            assert r[0] == 0 and r[-1] == m and len(r) == parts + 1
            assert all(b - a >= _pipe.MIN_ROWS for a, b in zip(r, r[1:]))
            if m >= 32 * parts:           # room for all of them: multiples of 16
                assert all(x % 16 == 0 for x in r[1:-1]), (m, parts, r)
            assert r == _points(m, parts)
    assert _points(256, 2) == (0, 128, 256)
    assert _points(256, 4) == (0, 64, 128, 192, 256)
    assert _points(300, 4) == (0, 80, 144, 224, 300)


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
@pytest.mark.parametrize("layout", ["nn", "tn", "nt"])
@pytest.mark.parametrize("m", [300, 64, 40])
def test_n_worker_split_is_the_product(npipe, dtype, layout, m):
    k, n = 784, 100
    if m * k * n < _pipe.SPLIT_MIN:  # pragma: no cover - the sizes are chosen above it
        pytest.skip("too small to split")
    a = R.normal(size=(m, k)).astype(dtype)
    b = R.normal(size=(k, n)).astype(dtype)
    if layout == "tn":
        a = onp.ascontiguousarray(R.normal(size=(k, m)).astype(dtype)).T
    if layout == "nt":
        b = onp.ascontiguousarray(R.normal(size=(n, k)).astype(dtype)).T
    outs = []
    for _ in range(3):
        out = onp.full((m, n), onp.nan, dtype)
        assert npipe.matmul(a, b, out)
        outs.append(out)
    assert all(onp.array_equal(outs[0], o) for o in outs[1:])      # reproducible
    want = onp.matmul(a, b)
    r = _points(m, min(npipe.n_workers + 1, m // _pipe.MIN_ROWS))
    if _openblas() and min(y - x for x, y in zip(r, r[1:])) >= 64:
        assert onp.array_equal(outs[0], want)     # every part >= 64 rows: the same sums
    else:
        tol = 1e-5 if dtype == onp.float32 else 1e-12
        onp.testing.assert_allclose(outs[0], want, rtol=tol, atol=tol * k)


def test_n_worker_split_with_alpha_and_beta(npipe):
    a = onp.ascontiguousarray(R.normal(size=(256, 784)).astype(onp.float32))
    d = R.normal(size=(256, 100)).astype(onp.float32)
    w = R.normal(size=(784, 100)).astype(onp.float32)
    want = onp.float32(0.99) * w + onp.float32(-0.1) * (a.T @ d)
    assert npipe.matmul(a.T, d, w, alpha=-0.1, beta=0.99)
    onp.testing.assert_allclose(w, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
@pytest.mark.parametrize("n", [79510, 40000, 1 << 15])
def test_n_worker_adam_is_the_one_thread_kernel(npipe, dtype, n):
    k = _native.kernels()
    theta, g = R.normal(size=n).astype(dtype), R.normal(size=n).astype(dtype)
    m, v = R.normal(size=n).astype(dtype), R.random(n).astype(dtype)
    one = [x.copy() for x in (theta, g, m, v)]
    for _ in range(3):
        k.adam(*one, 0.9, 0.999, 1e-3, 1e-8, dtype == onp.float64)
        assert npipe.adam(theta, g, m, v, 0.9, 0.999, 1e-3, 1e-8)
    for got, want in zip((theta, m, v), (one[0], one[2], one[3])):
        assert onp.array_equal(got, want)       # element-wise: the same bits


def test_n_worker_gather_beside_the_products(npipe):
    X = R.normal(size=(5000, 784)).astype(onp.float32)
    W = R.normal(size=(784, 100)).astype(onp.float32)
    bufs = [onp.empty((256, 784), onp.float32) for _ in range(2)]
    z = onp.empty((256, 100), onp.float32)
    order = R.permutation(5000)
    npipe.prefetch(X, order[:256], bufs[0])
    npipe.wait()
    for i in range(8):
        cur, nxt = bufs[i % 2], bufs[(i + 1) % 2]
        assert onp.array_equal(cur, X[order[256 * i:256 * (i + 1)]])
        npipe.prefetch(X, order[256 * (i + 1):256 * (i + 2)], nxt)
        assert npipe.matmul(cur, W, z)           # posts the gather after itself
        assert npipe.matmul(z.T.copy().T, W.T, onp.empty((256, 784), onp.float32))
        npipe.wait()
    npipe.prefetch(X, onp.array([1, 5000]), bufs[0])
    with pytest.raises(IndexError, match="out of range"):
        npipe.wait()


def test_the_main_thread_runs_what_no_worker_has_started(npipe):
    """While worker 0 is busy with a long gather, the product's part posted behind it is
    run by the main thread (which would otherwise wait for the gather): pipe_taken counts
    it, and every result is what it would be."""
    k = _native.kernels()
    X = R.normal(size=(5000, 784)).astype(onp.float32)
    idx = R.integers(0, 5000, 20000)
    out = onp.zeros((20000, 784), onp.float32)
    a = R.normal(size=(256, 784)).astype(onp.float32)
    W = R.normal(size=(784, 100)).astype(onp.float32)
    z = onp.empty((256, 100), onp.float32)
    for _ in range(5):
        taken = k.pipe_taken()
        k.pipe_gather_arrays(X, idx, out)      # tens of ms on worker 0
        assert npipe.matmul(a, W, z)
        took = k.pipe_taken() > taken          # the main thread ran worker 0's part
        npipe.wait()
        assert onp.array_equal(out, X[idx])
        if took:
            break
    else:                   # five times the worker ended the gather before the product
        raise AssertionError("the main thread never ran a task no worker had started")
    want = onp.empty_like(z)
    with threadpool_limits(1, user_api="blas"):
        onp.matmul(a, W, out=want)
    assert onp.allclose(z, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("then", ["wait", "adam"])
def test_a_gather_posted_while_another_runs(npipe, then):
    """prefetch A, a product (posts A: a long gather on worker 0), prefetch B into the same
    rows, then wait or an Adam step (posts B): A ends before B starts, so B's rows are
    the ones left, and A's arrays, which only the pipe holds, live until A has run."""
    X = R.normal(size=(5000, 784)).astype(onp.float32)
    a, W = X[:256].copy(), R.normal(size=(784, 100)).astype(onp.float32)
    z = onp.empty((256, 100), onp.float32)
    for _ in range(3):
        XA = onp.ascontiguousarray(X[:, :98])
        idxA, idxB = R.integers(0, 5000, 100000), R.integers(0, 5000, 100000)
        out = onp.zeros((100000, 98), onp.float32)
        npipe.prefetch(XA, idxA, out)
        del XA                             # only the pipe holds it now
        assert npipe.matmul(a, W, z)        # posts A
        npipe.prefetch(onp.ascontiguousarray(X[:, 98:196]), idxB, out)
        if then == "adam":
            th = onp.zeros(1 << 16, onp.float32)
            g, m, v = onp.ones_like(th), onp.zeros_like(th), onp.zeros_like(th)
            assert npipe.adam(th, g, m, v, 0.9, 0.999, 1e-3, 1e-8)   # posts B
        npipe.wait()
        assert onp.array_equal(out, X[idxB, 98:196])


def test_a_forked_child_is_told_the_pipe_is_closed(npipe):
    # every worker count (1, 2, 3): the child has no worker threads, the parent still does
    import os

    if not hasattr(os, "fork"):  # pragma: no cover - fork is POSIX
        pytest.skip("no fork on this platform")
    a = onp.ones((256, 784), onp.float32)
    b = onp.ones((784, 100), onp.float32)
    out = onp.empty((256, 100), onp.float32)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            npipe.matmul(a, b, out)
        except RuntimeError:
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert npipe.matmul(a, b, out) and (out == 784).all()


_WAITS = textwrap.dedent("""
    import numpy as np, resource, time
    from threadpoolctl import threadpool_limits
    from chainrule.engine import native, pipe as _pipe
    r = np.random.default_rng(1)
    X = r.normal(size=(5000, 784)).astype(np.float32)
    W = r.normal(size=(784, 100)).astype(np.float32)
    a = X[:256].copy(); z = np.empty((256, 100), np.float32)
    for n in (1, 2, 3):
        p = _pipe.open_pipe(n)
        assert p is not None
        with threadpool_limits(1, user_api="blas"):
            # a long gather (tens of ms) on worker 0: the main thread waits past its
            # spin and sleeps, in wait() and in a product queued behind the gather
            big = r.integers(0, 5000, 20000)
            out = np.empty((20000, 784), np.float32)
            out[:] = 0                          # faulted in before the timing
            # a thread that sleeps switches out of its own accord (Linux counts it); a
            # spinning one, even on a loaded machine, only when it is preempted
            self_switches = (lambda: resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw) \
                if hasattr(resource, "RUSAGE_THREAD") else (lambda: 1)
            k = native.kernels()
            for _ in range(5):
                # posted now, and given time to start: a task no worker has started the
                # main thread would run itself instead of waiting
                k.pipe_gather_arrays(X, big, out)
                time.sleep(0.005)
                s0, w0 = self_switches(), time.perf_counter()
                p.wait()
                slept, wall = self_switches() - s0, time.perf_counter() - w0
                assert np.array_equal(out, X[big])
                if slept >= 1 or wall < 0.002:
                    break
            else:
                raise AssertionError(f"the wait spun for {wall:.4f} s")
            p.prefetch(X, big[::-1].copy(), out)
            assert p.matmul(a, W, z)
            assert p.matmul(a, W, z)
            p.wait()
            assert np.array_equal(out, X[big[::-1]])
            # many gathers around the spin's length, with idle gaps, for lost wake-ups
            for i in range(600):
                k = int(r.integers(1, 4000))
                p.prefetch(X, big[:k], out[:k])
                if i % 3:
                    assert p.matmul(a, W, z)
                p.wait()
                if i % 50 == 0:
                    time.sleep(0.003)      # the workers fall asleep
                assert np.array_equal(out[:k], X[big[:k]])
        p.close()
    print("ok")
""")


def test_the_waits_sleep_and_wake():
    """The main thread's wait past its spin (a worker busy with a long gather) and the
    workers' sleep: in a child process, so that a lost wake-up fails the test (timeout)
    instead of hanging the run."""
    res = subprocess.run([sys.executable, "-c", _WAITS], capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_the_policy_for_n_cores(monkeypatch):
    from chainrule.engine import threads

    monkeypatch.delenv("CHAINRULE_PIPE", raising=False)
    monkeypatch.delenv("CHAINRULE_PIPE_WORKERS", raising=False)
    sizes = [784, 100, 10]                   # 78,400 multiply-adds a row in layer 1
    assert threads.threads_for(sizes, 256, cores=8) == 8
    assert threads.threads_for(sizes, 64, cores=8) == 4      # 5M: four threads' worth
    assert threads.threads_for(sizes, 10, cores=8) == 1      # too small for a second
    assert threads.threads_for(sizes, 256, cores=1) == 1
    opened = []
    monkeypatch.setattr(_pipe, "open_pipe", lambda n: opened.append(n) or n)
    assert _pipe.for_run(sizes, 256, 8) == 7
    assert _pipe.for_run(sizes, 32, 8) == 3                  # 32 rows: 4 parts of 8
    assert _pipe.for_run(sizes, 256, 1) is None              # one thread
    assert _pipe.for_run(sizes, 10, 8) is None               # nothing large enough
    monkeypatch.setenv("CHAINRULE_PIPE_WORKERS", "3")
    assert _pipe.for_run(sizes, 256, 1) == 3                 # forced
    monkeypatch.setenv("CHAINRULE_PIPE", "0")
    assert _pipe.for_run(sizes, 256, 8) is None              # off wins
    assert opened == [7, 3, 3]


def test_usable_cores():
    import os

    from chainrule.engine import threads

    n = threads.usable_cores()
    assert 1 <= n <= (os.cpu_count() or n)


class _Workers(Callback):
    def __init__(self):
        self.n = []

    def on_epoch_end(self, state):
        p = state.net.engine.pipe
        self.n.append(0 if p is None else p.n_workers)


@pytest.mark.parametrize("batch", [250, 64])
@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Adam(3e-3)],
                         ids=["sgd", "adam"])
def test_fit_with_n_workers_is_fit_without_them(make, batch, monkeypatch):
    X, y = _data()
    runs = []
    for env in ("2", "2", "3", "0"):
        monkeypatch.setenv("CHAINRULE_PIPE_WORKERS", env)
        net = Network.from_sizes([196, 120, 4], seed=1, engine="fast")
        seen = _Workers()
        h = net.fit(X, y, epochs=2, batch_size=batch, validation_data=(X[:700], y[:700]),
                    optimizer=make(), callbacks=[seen], verbose=0, blas_threads=2)
        assert seen.n == [int(env)] * 2
        assert net.engine.pipe is None
        runs.append((net.theta.copy(), h["val_accuracy"][-1]))
    assert onp.array_equal(runs[0][0], runs[1][0])           # reproducible
    for other in runs[2:]:
        onp.testing.assert_allclose(runs[0][0], other[0], rtol=1e-4, atol=1e-5)
        assert abs(runs[0][1] - other[1]) <= 0.01


def test_a_failing_run_gives_back_every_worker(monkeypatch):
    X, y = _data()
    monkeypatch.setenv("CHAINRULE_PIPE_WORKERS", "3")
    boom = type("Boom", (Callback,), {"on_epoch_end": lambda self, state: 1 / 0})
    net = Network.from_sizes([196, 120, 4], seed=1, engine="fast")
    with pytest.raises(ZeroDivisionError):
        net.fit(X, y, epochs=2, batch_size=250, callbacks=[boom()], verbose=0,
                blas_threads=2)
    assert net.engine.pipe is None and _native.kernels().pipe_workers() == 0
    p = _pipe.open_pipe(2)
    assert p is not None
    p.close()


def test_open_checks_the_count():
    with pytest.raises(ValueError, match="n_workers"):
        _pipe.open_pipe(0)
    assert _native.kernels().pipe_workers() == 0
