"""Weight initialisers, drawn from a numpy Generator seeded by the caller.

He (Kaiming) for the ReLU family keeps the variance of z^l constant through ReLU layers;
Glorot (Xavier) does so for symmetric activations (tanh, sigmoid, identity).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._names import lookup

Init = Callable[[np.random.Generator, int, int], np.ndarray]


def he_normal(rng: np.random.Generator, n_out: int, n_in: int) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_out, n_in))


def he_uniform(rng: np.random.Generator, n_out: int, n_in: int) -> np.ndarray:
    lim = np.sqrt(6.0 / n_in)
    return rng.uniform(-lim, lim, size=(n_out, n_in))


def glorot_normal(rng: np.random.Generator, n_out: int, n_in: int) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(2.0 / (n_in + n_out)), size=(n_out, n_in))


def glorot_uniform(rng: np.random.Generator, n_out: int, n_in: int) -> np.ndarray:
    lim = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-lim, lim, size=(n_out, n_in))


def lecun_normal(rng: np.random.Generator, n_out: int, n_in: int) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(1.0 / n_in), size=(n_out, n_in))


def zeros(rng: np.random.Generator, n_out: int, n_in: int) -> np.ndarray:
    return np.zeros((n_out, n_in))


INITIALIZERS: dict[str, Init] = {
    "he_normal": he_normal, "he_uniform": he_uniform, "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform, "lecun_normal": lecun_normal, "zeros": zeros,
}
ALIASES = {"he": "he_normal", "kaiming": "he_normal", "glorot": "glorot_uniform",
           "xavier": "glorot_uniform", "lecun": "lecun_normal"}
FAMILY_DEFAULT = {"he": he_normal, "glorot": glorot_uniform}


def get_initializer(name: str | None, activation: Any) -> Init:
    """By name, or the default of the activation's family (its record's ``init``: He for
    the ReLU family, Glorot for the others).

    >>> get_initializer(None, "relu").__name__, get_initializer(None, "tanh").__name__
    ('he_normal', 'glorot_uniform')
    """
    if name is None:
        from .activations import Activation, get_activation

        act = activation if isinstance(activation, Activation) else \
            get_activation(activation)
        return FAMILY_DEFAULT.get(act.init, glorot_uniform)
    return lookup(INITIALIZERS, name, "initializer", ALIASES)
