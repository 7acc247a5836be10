"""The reference engine: every operation of the seam in plain NumPy, written to be read.

Each method is the definition of its operation; the fast engine (``engine.fast``) must give
the same numbers (to float rounding) and is tested against this one. An activation ``act``
and a cost ``cost`` are the records of ``chainrule.nn`` (their in-place NumPy forms are
what is called here); the engine never imports nn.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["NumpyEngine"]

Array = np.ndarray


class NumpyEngine:
    """The plain NumPy backend: the reference every other backend is checked against.

    >>> eng = NumpyEngine()
    >>> out = np.empty((2, 2))
    >>> eng.matmul(np.eye(2), np.full((2, 2), 3.0), out, alpha=2.0).tolist()
    [[6.0, 6.0], [6.0, 6.0]]
    """

    name = "numpy"

    # ------------------------------------------------------------------ a run
    @contextmanager
    def run(self, sizes: Sequence[int], batch_size: int, threads: Any = "auto"
            ) -> Iterator[NumpyEngine]:
        """The span of one training run (threads, buffers); the reference needs none."""
        yield self

    def workspace(self, sizes: Sequence[int], m: int, dtype: Any
                  ) -> tuple[list[Array], list[Array], list[Array | None]]:
        """Buffers for a batch of m rows through a network of ``sizes`` [n_0, ..., n_L]:
        z^l and a^l (l = 1..L), and back[l] for (W^{l+1})^T delta^{l+1} (back[L]: delta^L)."""
        zs = [np.empty((m, n), dtype) for n in sizes[1:]]
        acts = [np.empty((m, n), dtype) for n in sizes[1:]]
        back: list[Array | None] = [None] + [np.empty((m, n), dtype) for n in sizes[1:]]
        return zs, acts, back

    def zeros(self, shape: int | tuple[int, ...], dtype: Any, slot: int = 0) -> Array:
        """Zeros for one of the long vectors that a step streams together: Theta (slot
        0), its gradient (1), an optimiser's state and scratch (2 and up). A backend may
        place them (the fast one staggers them within a memory page; a GPU one would
        allocate on the device); here, plain zeros."""
        return np.zeros(shape, dtype)

    def fuses_step(self, sizes: Sequence[int], batch_size: int) -> bool:
        """Whether plain SGD's step pays to be fused into BP4 (``matmul`` with alpha and
        beta into W^l) at this size; the reference keeps the gradient and the step apart."""
        return False

    def release(self) -> None:
        """Drop the buffers kept between calls (the end of a run)."""

    # ------------------------------------------------------------------ the network
    def matmul(self, a: Array, b: Array, out: Array, alpha: float = 1.0,
               beta: float = 0.0) -> Array:
        """out = alpha a @ b + beta out."""
        if alpha == 1.0 and beta == 0.0:
            return np.matmul(a, b, out=out)
        p = a @ b
        if beta != 1.0:
            out *= beta
        out += alpha * p
        return out

    def bias_activation(self, z: Array, b: Array, act: Any, out: Array) -> Array:
        """z += b (each row), then a = sigma(z), written into ``out`` where it can be."""
        z += b
        return act.forward_into(z, out)

    def output_error(self, z: Array, b: Array, act: Any, cost: Any, Y: Array, a_out: Array,
                     delta_out: Array, db: Array | None = None
                     ) -> tuple[float, Array, Array, int | None]:
        """The output layer and BP1: z^L += b^L, a^L = sigma(z^L), the cost C, and
        delta^L = grad_a C (Hadamard) sigma'(z^L); where the cost has an exact fused form
        for this output (softmax or sigmoid with their cross-entropies), delta^L is that
        form, (a^L - y)/m. ``Y``: targets (m, n_L), or m class labels standing for their
        one-hot rows. Returns (C, a^L, delta^L, hits), hits: rows classified right, or
        None where this engine did not count them. ``db``: where BP3 of this layer will be
        asked for (``sum_rows(delta, db)``); an engine may fill it in the same pass."""
        if Y.ndim == 1:
            Y = one_hot(Y, z.shape[1], z.dtype)
        z += b
        a = act.forward_into(z, a_out)
        fused = cost.fused_with == act.name
        C = cost.value(a, Y, z if fused else None)
        if fused:
            delta = cost.delta(z, a, Y)
        else:
            delta = act.backward(z, a, cost.grad_a(a, Y))
        np.copyto(delta_out, delta)
        return float(C), a, delta_out, None

    def act_backward(self, act: Any, z: Array, a: Array, g: Array, db: Array | None = None
                     ) -> Array:
        """delta = g (Hadamard) sigma'(z), in place in g where it can be. ``db``: where
        BP3 of this layer will be asked for (see ``output_error``)."""
        return act.backward_into(z, a, g)

    def sum_rows(self, delta: Array, out: Array) -> Array:
        """out = the sum of delta's rows (BP3 over a batch)."""
        return np.add.reduce(delta, axis=0, out=out)

    # ------------------------------------------------------------------ optimiser steps
    def axpy(self, alpha: float, x: Array, y: Array) -> None:
        """y += alpha x."""
        y += alpha * x

    def scal(self, alpha: float, x: Array) -> None:
        """x *= alpha."""
        x *= alpha

    def adam(self, theta: Array, g: Array, m: Array, v: Array, beta1: float, beta2: float,
             alpha_t: float, eps_t: float) -> None:
        """One Adam step over Theta with the bias corrections folded into alpha_t, eps_t:
        m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
        Theta <- Theta - alpha_t m / (sqrt(v) + eps_t)."""
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        theta -= alpha_t * m / (np.sqrt(v) + eps_t)

    # ------------------------------------------------------------------ batches
    def batches(self, X: Array, Y: Array, order: Array | None, batch_size: int
                ) -> Iterator[tuple[Array, Array, Array | None]]:
        """The minibatches (X[idx], Y[idx], idx) of one epoch in ``order``; with no order,
        the whole data set as one batch (idx None)."""
        if order is None:
            yield X, Y, None
            return
        for lo in range(0, order.shape[0], batch_size):
            idx = order[lo:lo + batch_size]
            yield X[idx], Y[idx], idx


def one_hot(labels: Array, k: int, dtype: Any) -> Array:
    """The one-hot rows (m, k) of m class labels in 0..k-1.

    >>> one_hot(np.array([2, 0]), 3, np.float64).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    Y = np.zeros((labels.shape[0], k), dtype)
    Y[np.arange(labels.shape[0]), labels.astype(np.intp)] = 1
    return Y
