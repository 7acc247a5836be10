"""A backend written in tests alone, against the engine interface only (chainrule.engine's
docstring), touching nothing in nn/: it computes in the text's orientation, one example
a column, so every product is the transpose of the reference's. If nn/ asked which engine
runs, or reached past the interface, this backend would fail test_backprop.py."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np


class ColumnEngine:
    """Products as (b^T a^T)^T, sums over columns of transposes, fresh buffers each call."""

    name = "columns"

    @contextmanager
    def run(self, sizes, batch_size, threads="auto"):
        yield self

    def workspace(self, sizes, m, dtype):
        zs = [np.empty((m, n), dtype) for n in sizes[1:]]
        acts = [np.empty((m, n), dtype) for n in sizes[1:]]
        back = [None] + [np.empty((m, n), dtype) for n in sizes[1:]]
        return zs, acts, back

    def release(self):
        pass

    def zeros(self, shape, dtype, slot=0):
        return np.zeros(shape, dtype)

    def fuses_step(self, sizes, batch_size):
        return False

    def matmul(self, a, b, out, alpha=1.0, beta=0.0):
        product = (np.asarray(b).T @ np.asarray(a).T).T        # columns: (B^T A^T)^T
        out[...] = alpha * product + (beta * out if beta else 0.0)
        return out

    def bias_activation(self, z, b, act, out):
        zt = z.T                                             # one example a column
        zt += b[:, None]
        out[...] = act.forward(z)
        return out

    def output_error(self, z, b, act, cost, Y, a_out, delta_out, db=None):
        if Y.ndim == 1:
            Y = np.eye(z.shape[1], dtype=z.dtype)[Y]
        a = self.bias_activation(z, b, act, a_out)
        if cost.fused_with == act.name:
            C, delta = cost.value(a, Y, z), cost.delta(z, a, Y)
        else:
            C, delta = cost.value(a, Y, None), act.backward(z, a, cost.grad_a(a, Y))
        delta_out[...] = delta
        return float(C), a, delta_out, None

    def act_backward(self, act, z, a, g, db=None):
        g[...] = act.backward(z, a, g)
        return g

    def sum_rows(self, delta, out):
        out[...] = delta.T.sum(axis=1)
        return out

    def axpy(self, alpha, x, y):
        y += alpha * x

    def scal(self, alpha, x):
        x *= alpha

    def adam(self, theta, g, m, v, beta1, beta2, alpha_t, eps_t):
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        theta -= alpha_t * m / (np.sqrt(v) + eps_t)

    def batches(self, X, Y, order, batch_size):
        if order is None:
            yield X, Y, None
            return
        for lo in range(0, order.shape[0], batch_size):
            idx = order[lo:lo + batch_size]
            yield X[idx], Y[idx], idx
