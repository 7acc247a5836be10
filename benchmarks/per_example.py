"""Per-example gradients of the MNIST 784-100-10 loss (tanh hidden layer, softmax and
cross-entropy) for a batch of 256, three ways, in float64 and float32:

1. ``vmap(grad(loss), in_axes=(None, 0, 0))``: one pass for the whole batch;
2. the same gradients vectorised by hand in NumPy (BP1 to BP4 with a batch axis: the
   per-example dC/dW^l = delta^l (a^{l-1})^T as outer products, 'bi,bj->bij');
3. a Python loop of ``grad`` over the 256 examples.

The hand-vectorised baseline is the faster of two forms of its outer products (einsum and
a broadcast product). vmap's gradients are checked against it before timing. Real MNIST
rows are used when the files are found (``--data-dir``, $CHAINRULE_DATA or
/work/shared/data/mnist), else random rows of the same shape.

    python benchmarks/per_example.py [--rounds 9] [--batch 256]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as onp
from _common import interleaved, table, write

import chainrule as cr
import chainrule.numpy as np


def loss(params, x, y):
    """C for one example: cross-entropy of softmax(W2 tanh(W1 x + b1) + b2), y one-hot."""
    W1, b1, W2, b2 = params
    h = np.tanh(W1 @ x + b1)
    z = W2 @ h + b2
    return np.logsumexp(z) - np.sum(y * z)


def hand_forward(params, X, Y):
    W1, b1, W2, b2 = params
    h = onp.tanh(X @ W1.T + b1)
    z = h @ W2.T + b2
    z = z - z.max(axis=1, keepdims=True)
    p = onp.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    d2 = p - Y                               # BP1: softmax and cross-entropy
    d1 = (d2 @ W2) * (1 - h * h)             # BP2
    return h, d1, d2


def hand_einsum(params, X, Y):
    h, d1, d2 = hand_forward(params, X, Y)
    return (onp.einsum("bi,bj->bij", d1, X), d1,         # BP4 and BP3, per example
            onp.einsum("bi,bj->bij", d2, h), d2)


def hand_broadcast(params, X, Y):
    h, d1, d2 = hand_forward(params, X, Y)
    return d1[:, :, None] * X[:, None, :], d1, d2[:, :, None] * h[:, None, :], d2


def data(batch: int, dtype, data_dir: str | None) -> tuple[onp.ndarray, onp.ndarray, str]:
    r = onp.random.default_rng(0)
    for d in ([data_dir] if data_dir else []) + [os.environ.get("CHAINRULE_DATA"),
                                                   "/work/shared/data/mnist"]:
        if d and Path(d).is_dir():
            try:
                from chainrule.data import load_mnist

                X, y, _, _ = load_mnist(d, download=False)
                return (X[:batch].astype(dtype), onp.eye(10, dtype=dtype)[y[:batch]],
                        f"MNIST rows from {d}")
            except Exception as e:  # noqa: BLE001 (a benchmark: fall back, and say so)
                print(f"(MNIST not read from {d}: {e})")
    X = r.uniform(0, 1, size=(batch, 784)).astype(dtype)
    return X, onp.eye(10, dtype=dtype)[r.integers(0, 10, size=batch)], "random rows"


def run(dtype, args) -> tuple[list[dict], str]:
    """Check, then time, the three ways in one dtype."""
    r = onp.random.default_rng(1)
    params = tuple(a.astype(dtype) for a in (
        r.normal(size=(100, 784)) / 28, r.normal(size=100) / 10,
        r.normal(size=(10, 100)) / 10, r.normal(size=10) / 10))
    X, Y, source = data(args.batch, dtype, args.data_dir)
    per_example = cr.vmap(cr.grad(loss), in_axes=(None, 0, 0))
    got = per_example(params, X, Y)
    want = hand_einsum(params, X, Y)
    rtol = 1e-10 if dtype == onp.float64 else 1e-4
    for g, w in zip(got, want):
        assert g.dtype == dtype and g.shape == w.shape
        assert onp.allclose(g, w, rtol=rtol, atol=rtol * 1e-2), "vmap != by hand"
    for g, w in zip(hand_broadcast(params, X, Y), want):
        assert onp.allclose(g, w, rtol=rtol, atol=rtol * 1e-2)
    g1 = cr.grad(loss)(params, X[3], Y[3])
    assert all(onp.allclose(a[3], b, rtol=rtol, atol=rtol * 1e-2) for a, b in zip(got, g1))

    def loop():
        gs = [cr.grad(loss)(params, X[b], Y[b]) for b in range(args.batch)]
        return [onp.stack(k) for k in zip(*gs)]

    fns = {"vmap(grad)": lambda: per_example(params, X, Y),
           "by hand (einsum)": lambda: hand_einsum(params, X, Y),
           "by hand (broadcast)": lambda: hand_broadcast(params, X, Y)}
    t = interleaved(fns, rounds=args.rounds, budget=0.2)
    hand = min(t["by hand (einsum)"], t["by hand (broadcast)"])
    if not args.no_loop:
        t.update(interleaved({"loop of grad": loop}, rounds=max(3, args.rounds // 3),
                             budget=0.5))
    rows = [{"dtype": onp.dtype(dtype).name, "method": name, "ms": s * 1e3,
             "time / by hand": s / hand} for name, s in t.items()]
    return rows, source


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--no-loop", action="store_true", help="skip the loop of grad")
    args = ap.parse_args()
    rows = []
    source = ""
    for dtype in (onp.float64, onp.float32):
        more, source = run(dtype, args)
        rows.extend(more)
    print(f"per-example gradients, MNIST 784-100-10, batch {args.batch} ({source})")
    print(table(rows, ["dtype", "method", "ms", "time / by hand"]))
    path = write("per_example", rows, {"batch": args.batch, "data": source})
    print(f"written {path}")


if __name__ == "__main__":
    main()
