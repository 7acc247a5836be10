"""Input feature maps: the network's input a^0 computed from raw inputs, as TensorFlow
Playground's x1, x2, x1^2, x2^2, x1x2, sin(x1) and sin(x2). A model file names its map
(``input_map``, a closed set of names, never code), and every command that feeds the
model raw rows applies it (``apply_input_map``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["INPUT_FEATURES", "RAW_INPUTS", "apply_input_map", "raw_width"]

Array = np.ndarray

RAW_INPUTS = ["x1", "x2"]
# name -> a^0's column as a function of (x1, x2), in the playground's order
INPUT_FEATURES: dict[str, Callable[[Array, Array], Array]] = {
    "x1": lambda x1, x2: x1,
    "x2": lambda x1, x2: x2,
    "x1^2": lambda x1, x2: x1 * x1,
    "x2^2": lambda x1, x2: x2 * x2,
    "x1x2": lambda x1, x2: x1 * x2,
    "sin(x1)": lambda x1, x2: np.sin(x1),
    "sin(x2)": lambda x1, x2: np.sin(x2),
}


def apply_input_map(X: Array, names: list[str] | None) -> Array:
    """a^0 for raw rows X (m, 2): one column per name of the map; X itself without one.

    >>> apply_input_map(np.array([[2.0, 3.0]]), ["x1^2", "x1x2"]).tolist()
    [[4.0, 6.0]]
    """
    if not names:
        return X
    x1, x2 = X[:, 0], X[:, 1]
    return np.ascontiguousarray(np.stack([INPUT_FEATURES[f](x1, x2) for f in names], axis=1))


def raw_width(names: list[str] | None, n_inputs: int) -> int:
    """How many raw columns a model with this map reads (its n_0 without one)."""
    return len(RAW_INPUTS) if names else n_inputs
