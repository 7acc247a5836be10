"""Weight initialisers, drawn from a numpy Generator seeded by the caller.

He (Kaiming) for the ReLU family keeps the variance of z^l constant through ReLU layers;
Glorot (Xavier) does so for symmetric activations (tanh, sigmoid, identity).
"""

from __future__ import annotations

from collections.abc import Callable

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
RELU_FAMILY = {"relu", "leaky_relu", "elu", "gelu", "softplus"}


def get_initializer(name: str | None, activation: str) -> Init:
    """By name, or the default for the activation (He for the ReLU family, else Glorot)."""
    if name is None:
        return he_normal if activation in RELU_FAMILY else glorot_uniform
    return lookup(INITIALIZERS, name, "initializer", ALIASES)
