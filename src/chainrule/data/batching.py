"""Minibatches (text 3.8): the order of an epoch's examples, cut into batches, and the
held-out split of a training set.

Each epoch shuffles the example indices once (seeded) and cuts them into ceil(m / B)
batches, the last one partial unless ``drop_last`` (1,000,000 examples at B = 120 give
8,334 batches, the last of 40; the text's 8,333 is a slip, see docs/math.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["n_batches", "batches", "epoch_order", "split_validation"]


def n_batches(m: int, batch_size: int, drop_last: bool = False) -> int:
    """How many minibatches an epoch of m examples has.

    >>> n_batches(1_000_000, 120)
    8334
    """
    return m // batch_size if drop_last else -(-m // batch_size)


def batches(m: int, batch_size: int, rng: np.random.Generator | None = None,
            drop_last: bool = False) -> list[np.ndarray]:
    """The index arrays of one epoch's minibatches (shuffled when ``rng`` is given).

    >>> [len(b) for b in batches(10, 4)]
    [4, 4, 2]
    """
    idx = rng.permutation(m) if rng is not None else np.arange(m)
    return [idx[i:i + batch_size] for i in range(0, n_batches(m, batch_size, drop_last)
                                                  * batch_size, batch_size)]


def epoch_order(m: int, batch_size: int, rng: np.random.Generator | None,
                drop_last: bool = False) -> np.ndarray:
    """The examples of one epoch in the order they are used: a permutation drawn from
    ``rng`` (none: 0..m-1) whose consecutive batches each hold their indices in increasing
    order (the same batches, read from memory front to back: a faster gather,
    benchmarks/NOTES.md), cut to the batches that are used.

    >>> epoch_order(5, 2, None).tolist()
    [0, 1, 2, 3, 4]
    >>> sorted(epoch_order(5, 2, np.random.default_rng(0)).tolist())
    [0, 1, 2, 3, 4]
    """
    if rng is None:
        order = np.arange(m)
    else:
        order = rng.permutation(m)
        if batch_size > 1:
            full = (m // batch_size) * batch_size
            order[:full].reshape(-1, batch_size).sort(axis=1)
            order[full:].sort()
    return order[:n_batches(m, batch_size, drop_last) * batch_size]


def split_validation(X: np.ndarray, y: Any, fraction: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, Any, np.ndarray, Any]:
    """(X_train, y_train, X_val, y_val): a random ``fraction`` of the rows held out, each
    part in the rows' original order.

    >>> Xt, yt, Xv, yv = split_validation(np.arange(10.0)[:, None], np.arange(10), 0.2,
    ...                                   np.random.default_rng(0))
    >>> len(yt), len(yv), sorted(yt.tolist() + yv.tolist()) == list(range(10))
    (8, 2, True)
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {fraction!r}")
    y = np.asarray(y)
    n_val = int(round(X.shape[0] * fraction))
    if n_val < 1 or n_val >= X.shape[0]:
        raise ValueError("validation_split leaves no training or no validation examples")
    perm = rng.permutation(X.shape[0])
    val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    return X[tr], y[tr], X[val], y[val]
