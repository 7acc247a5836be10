"""The fast engine: the reference engine's operations through compiled kernels
(``_kernels.c``), NumPy's own BLAS (``blas``), a thread policy for N cores (``threads``)
and the worker threads of the pipe (``pipe``), with buffers reused between steps.

Every method gives the reference's numbers (``engine.reference``), to float rounding, and
falls back to it wherever its fast path does not apply (no kernels built, an activation
without a kernel, arrays of another layout). Measured effects: benchmarks/NOTES.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import blas, native, threads
from .pipe import SPLIT_MIN
from .reference import NumpyEngine

__all__ = ["FastEngine", "DESCEND_BLAS_MIN"]

Array = np.ndarray

# below this many multiply-adds (batch x fan-in x fan-out) a product with alpha and beta
# stays a NumPy call and an update: a ctypes call to BLAS costs more (benchmarks/NOTES.md)
DESCEND_BLAS_MIN = SPLIT_MIN
# below this length y += alpha x stays NumPy: a ctypes call to BLAS costs more (about 3 us)
AXPY_BLAS_MIN = 1 << 12
# the long vectors of a step (Theta, its gradient, the optimiser's moments) start at
# slot x STAGGER bytes into a page of PAGE bytes: two that a loop streams together at
# nearly the same offset modulo 4 KiB make the CPU hold loads behind unrelated stores
# ("4K aliasing"; the Adam kernel on 79,510 floats: 23 us staggered, 29 us with v 64
# bytes below Theta, as the allocator happened to place them: benchmarks/NOTES.md)
PAGE, STAGGER = 4096, 512


def _sums_into(db: Array | None, n: int, dtype: Any) -> Array:
    """Where a kernel writes the column sums: the ``db`` BP3 will ask for, where it is a
    contiguous vector of the right size and dtype, else a new one."""
    if db is not None and db.shape == (n,) and db.dtype == dtype and db.flags.c_contiguous:
        return db
    return np.empty(n, dtype)


class FastEngine(NumpyEngine):
    """The default engine where the kernels are built.

    >>> eng = FastEngine()
    >>> out = np.empty((2, 2))
    >>> eng.matmul(np.eye(2), np.full((2, 2), 3.0), out, alpha=2.0).tolist()
    [[6.0, 6.0], [6.0, 6.0]]
    """

    name = "fast"

    def __init__(self) -> None:
        self._k = native.kernels()
        self._buffers: dict[tuple[Any, ...], Any] = {}
        self._pipe: Any = None
        # the column sums of the last delta a fused kernel produced (BP3 done in its pass)
        self._sums: tuple[Array, Array] | None = None
        self._adam_seen: tuple[Array, ...] | None = None
        self._axpy_seen: tuple[Any, ...] = (None, None, None)
        # the last buffers each kernel path was checked for (see output_error)
        self._seen_out: tuple[Any, ...] = (None,) * 9
        self._seen_bias: tuple[Any, ...] = (None,) * 5
        self._seen_back: tuple[Any, ...] = (None,) * 5

    # ------------------------------------------------------------------ a run
    @property
    def pipe(self) -> Any:
        """The pipe (its worker threads) while a run holds it, else None."""
        return self._pipe

    @contextmanager
    def run(self, sizes: Sequence[int], batch_size: int, threads_: Any = "auto"
            ) -> Iterator[FastEngine]:
        """Threads for the run (threads.policy): the pipe's workers with BLAS on one
        thread, or a BLAS thread limit, or nothing; given back when the run ends."""
        pipe, limiter = threads.for_run(sizes, batch_size, threads_)
        self._pipe = pipe
        try:
            yield self
        finally:
            self._pipe = None
            self.release()
            if pipe is not None:
                pipe.close()
            if limiter is not None:
                limiter.restore_original_limits()

    def workspace(self, sizes: Sequence[int], m: int, dtype: Any) -> Any:
        key = (sizes, m, dtype)           # a network passes its own tuple and dtype
        buf = self._buffers.get(key)
        if buf is None:
            if len(self._buffers) > 4:
                self._buffers.clear()
            buf = self._buffers[key] = super().workspace(sizes, m, dtype)
        return buf

    def zeros(self, shape: int | tuple[int, ...], dtype: Any, slot: int = 0) -> Array:
        dt = np.dtype(dtype)
        nbytes = math.prod((shape,) if isinstance(shape, int) else shape) * dt.itemsize
        buf = np.zeros(nbytes + PAGE, np.uint8)
        start = (slot * STAGGER - buf.ctypes.data) % PAGE
        return buf[start:start + nbytes].view(dt).reshape(shape)

    def fuses_step(self, sizes: Sequence[int], batch_size: int) -> bool:
        # some layer's product large enough for one BLAS product W <- W - lr a^T delta;
        # below, one update of all of Theta is fewer calls than one a layer
        return any(batch_size * a * b >= DESCEND_BLAS_MIN for a, b in zip(sizes, sizes[1:]))

    def release(self) -> None:
        self._buffers.clear()
        self._sums = None
        self._seen_bias, self._seen_back = (None,) * 5, (None,) * 5
        self._seen_out = (None,) * 9
        self._axpy_seen, self._adam_seen = (None, None, None), None

    # ------------------------------------------------------------------ the network
    def matmul(self, a: Array, b: Array, out: Array, alpha: float = 1.0,
               beta: float = 0.0) -> Array:
        pipe = self._pipe
        if pipe is None and alpha == 1.0 and beta == 0.0:
            return np.matmul(a, b, out=out)             # the common case, first
        big = a.shape[0] * a.shape[1] * out.shape[1] >= DESCEND_BLAS_MIN
        if big and pipe is not None and pipe.matmul(a, b, out, alpha, beta):
            return out
        if alpha == 1.0 and beta == 0.0:
            return np.matmul(a, b, out=out)
        # out = alpha a^T' b + beta out in one BLAS product (a: a transposed view)
        if big and blas.gemm_tn(alpha, a.T, b, beta, out):
            return out
        p = np.matmul(a, b)                   # a small product: NumPy, then one update
        p *= alpha
        if beta != 1.0:
            out *= beta
        out += p
        return out

    def bias_activation(self, z: Array, b: Array, act: Any, out: Array) -> Array:
        seen = self._seen_bias          # the same buffers as last time: already checked
        if not (seen[0] is z and seen[1] is out and seen[2] is b and seen[3] is act):
            ok = self._k is not None and act.builtin and act.name == "relu" and \
                z.flags.c_contiguous and out.flags.c_contiguous and z.dtype == out.dtype == b.dtype
            seen = self._seen_bias = (z, out, b, act, ok)
        if seen[4]:
            m, n = z.shape
            self._k.bias_relu(z, b, out, m, n, z.dtype == np.float64)  # z += b; a = relu(z)
            return out
        return super().bias_activation(z, b, act, out)

    def output_error(self, z: Array, b: Array, act: Any, cost: Any, Y: Array, a_out: Array,
                     delta_out: Array, db: Array | None = None
                     ) -> tuple[float, Array, Array, int | None]:
        seen = self._seen_out           # the same layer and buffers as last time: checked
        if not (seen[0] is z and seen[1] is a_out and seen[2] is delta_out and seen[3] is b
                and seen[4] is db and seen[5] is act and seen[6] is cost):
            seen = self._check_out(z, b, act, cost, a_out, delta_out, db)
        sums = seen[7]
        if sums is not None and (Y.dtype == np.int64 if Y.ndim == 1 else
                                 Y.dtype == z.dtype) and Y.flags.c_contiguous:
            # three calls (the kernels around NumPy's own exp) instead of eleven: z += b,
            # a = softmax(z), C, delta = (a - y)/m, its column sums and the hits
            k, (m, n), f64 = self._k, z.shape, seen[8]
            mx = np.empty(m, z.dtype)
            k.softmax_pre(z, b, a_out, mx, m, n, f64)
            np.exp(a_out, out=a_out)
            value, hits = k.softmax_post(z, Y, a_out, delta_out, mx, sums, m, n, f64,
                                         Y.ndim == 1)
            self._sums = (delta_out, sums)
            return value, a_out, delta_out, hits
        return super().output_error(z, b, act, cost, Y, a_out, delta_out, db)

    def _check_out(self, z: Array, b: Array, act: Any, cost: Any, a_out: Array,
                   delta_out: Array, db: Array | None) -> tuple[Any, ...]:
        """Whether the fused softmax kernels apply to these buffers (all but the targets,
        which change every batch), remembered with where they write BP3's sums."""
        ok = self._k is not None and z.shape[0] and act.builtin and cost.builtin and \
            act.name == "softmax" and cost.name == "cross_entropy" and \
            z.dtype in (np.float32, np.float64) and \
            z.dtype == a_out.dtype == delta_out.dtype == b.dtype and \
            z.flags.c_contiguous and a_out.flags.c_contiguous and delta_out.flags.c_contiguous
        sums = _sums_into(db, z.shape[1], z.dtype) if ok else None
        self._seen_out = (z, a_out, delta_out, b, db, act, cost, sums, z.dtype == np.float64)
        return self._seen_out

    def act_backward(self, act: Any, z: Array, a: Array, g: Array, db: Array | None = None
                     ) -> Array:
        seen = self._seen_back          # the same buffers as last time: already checked
        if not (seen[0] is g and seen[1] is z and seen[2] is db and seen[3] is act):
            ok = self._k is not None and act.builtin and act.name == "relu" and \
                g.flags.c_contiguous and z.flags.c_contiguous and g.dtype == z.dtype
            seen = self._seen_back = (g, z, db, act, _sums_into(db, g.shape[1], g.dtype)
                                      if ok else None)
        sums = seen[4]
        if sums is not None:
            m, n = g.shape
            # g *= (z > 0) and its column sums (BP3, handed to sum_rows) in one pass
            self._k.relu_back_bias(g, z, sums, m, n, g.dtype == np.float64)
            self._sums = (g, sums)
            return g
        return super().act_backward(act, z, a, g, db)

    def sum_rows(self, delta: Array, out: Array) -> Array:
        done, self._sums = self._sums, None
        if done is not None and done[0] is delta:     # BP3 done in the kernel's pass
            if done[1] is not out:
                np.copyto(out, done[1])
            return out
        return np.add.reduce(delta, axis=0, out=out)

    # ------------------------------------------------------------------ optimiser steps
    def axpy(self, alpha: float, x: Array, y: Array) -> None:
        # one BLAS call instead of two NumPy passes, for vectors (Theta) long enough to
        # pay for a ctypes call; a bias vector stays NumPy. The call bound to the last
        # two vectors is kept: a run updates the same Theta from the same gradient at
        # every step, and reading their addresses again costs 3 us (benchmarks/NOTES.md)
        seen = self._axpy_seen
        if seen[0] is x and seen[1] is y:
            seen[2](alpha)
            return
        if x.size >= AXPY_BLAS_MIN:
            call = blas.axpy_bound(x, y)
            if call is not None:
                self._axpy_seen = (x, y, call)
                call(alpha)
                return
        super().axpy(alpha, x, y)

    def scal(self, alpha: float, x: Array) -> None:
        if not blas.scal(alpha, x):
            super().scal(alpha, x)

    def adam(self, theta: Array, g: Array, m: Array, v: Array, beta1: float, beta2: float,
             alpha_t: float, eps_t: float) -> None:
        k = self._k
        # fused_ok (six overlap checks, 2 us) remembered for the same arrays: a run passes
        # the same Theta, gradient and moments at every step
        seen = self._adam_seen
        ok = seen is not None and seen[0] is theta and seen[1] is g and seen[2] is m and \
            seen[3] is v
        if not ok and k is not None and native.fused_ok(theta, g, m, v):
            ok, self._adam_seen = True, (theta, g, m, v)
        if ok:
            # all of it in one pass (the compiled kernel), split over the pipe's workers
            pipe = self._pipe
            if pipe is None or not pipe.adam(theta, g, m, v, beta1, beta2, alpha_t, eps_t):
                k.adam(theta, g, m, v, beta1, beta2, alpha_t, eps_t, theta.dtype == np.float64)
            return
        super().adam(theta, g, m, v, beta1, beta2, alpha_t, eps_t)

    # ------------------------------------------------------------------ batches
    def batches(self, X: Array, Y: Array, order: Array | None, batch_size: int
                ) -> Iterator[tuple[Array, Array, Array | None]]:
        """The minibatches, gathered into two reused buffers; with the pipe, the next
        batch is gathered on a worker while this one trains."""
        if order is None:
            yield X, Y, None
            return
        B = batch_size
        steps = -(-order.shape[0] // B)
        pipe = self._pipe if X.flags.c_contiguous else None
        xbufs = (np.empty((B,) + X.shape[1:], X.dtype),
                 np.empty((B,) + X.shape[1:], X.dtype) if pipe is not None else None)
        ybuf = np.empty((B,) + Y.shape[1:], Y.dtype)
        for b in range(steps):
            lo = b * B
            idx = order[lo:lo + B]
            nb = idx.shape[0]
            if pipe is None and not X.flags.c_contiguous:
                # take would first copy all of a strided X (a column slice of a mapped
                # table, say: data/memmap.py); indexing gathers only the batch's rows
                xb = xbufs[0][:nb]
                xb[...] = X[idx]
            elif pipe is None:
                # mode="clip" (the indices are valid) spares take's copy of out (NOTES.md)
                xb = X.take(idx, axis=0, out=xbufs[0][:nb], mode="clip")
            else:
                if b == 0:
                    X.take(idx, axis=0, out=xbufs[0][:nb], mode="clip")
                else:
                    pipe.wait()                 # this batch, gathered during the last
                xb = xbufs[b % 2][:nb]
                if b + 1 < steps:
                    pipe.prefetch(X, order[lo + B:lo + 2 * B], xbufs[(b + 1) % 2])
            yield xb, Y.take(idx, axis=0, out=ybuf[:nb], mode="clip"), idx
        if pipe is not None:
            pipe.wait()
