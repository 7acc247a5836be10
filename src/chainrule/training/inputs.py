"""The checks of a training run's arguments and arrays, before any work (moved out of
trainer.py so that the Trainer reads as the text's loop)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_int", "training_arrays"]


def check_int(name: str, v: Any, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def training_arrays(net: Any, X: Any, y: Any, validation_data: tuple[Any, Any] | None,
                    batch_size: int | None) -> tuple[Any, Any, Any, Any, int]:
    """(X, Y, X_val, Y_val, B): the checked rows and targets (``Network.check_X``,
    ``targets``), the validation pair or Nones, and the batch size cut to m."""
    X = net.check_X(X)
    m = X.shape[0]
    if m == 0:
        raise ValueError("the training data is empty")
    Y, B = net.targets(y, m, labels=True), min(batch_size or m, m)
    Xv = Yv = None
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        Xv = net.check_X(validation_data[0])
        Yv = net.targets(validation_data[1], Xv.shape[0], labels=True)
    return X, Y, Xv, Yv, B
