"""The playground's data: TensorFlow Playground's 2-D datasets and the input feature map.

Every dataset lives on the square [-6, 6]^2 (a user's CSV on its own bounding box), with
labels 0/1 for classification and real numbers for regression. The generators follow
TensorFlow Playground's dataset.ts (same shapes, same noise scale), drawn from a numpy
Generator seeded by the caller.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..data.features import INPUT_FEATURES, apply_input_map

__all__ = ["CLASSIFY", "REGRESS", "FEATURES", "generate", "feature_map"]

Array = np.ndarray
N_POINTS = 500
RADIUS = 6.0


def _circle(rng: np.random.Generator, n: int, noise: float) -> tuple[Array, Array]:
    r = RADIUS - 1
    inner = rng.uniform(0, r * 0.5, n // 2)
    outer = rng.uniform(r * 0.7, r, n - n // 2)
    rad = np.concatenate([inner, outer])
    ang = rng.uniform(0, 2 * np.pi, n)
    X = np.c_[rad * np.sin(ang), rad * np.cos(ang)]
    X += rng.uniform(-r, r, (n, 2)) * noise
    y = (np.hypot(X[:, 0], X[:, 1]) < r * 0.5).astype(np.float64)
    return X, y


def _xor(rng: np.random.Generator, n: int, noise: float) -> tuple[Array, Array]:
    X = rng.uniform(-5, 5, (n, 2))
    X += np.where(X > 0, 0.3, -0.3)               # padding away from the axes
    noisy = X + rng.uniform(-5, 5, (n, 2)) * noise
    y = (noisy[:, 0] * noisy[:, 1] >= 0).astype(np.float64)
    return X, y


def _gauss(rng: np.random.Generator, n: int, noise: float) -> tuple[Array, Array]:
    var = 0.5 + 3.5 * noise
    half = n // 2
    pos = rng.normal(2, np.sqrt(var), (half, 2))
    neg = rng.normal(-2, np.sqrt(var), (n - half, 2))
    return np.r_[pos, neg], np.r_[np.ones(half), np.zeros(n - half)]


def _spiral(rng: np.random.Generator, n: int, noise: float) -> tuple[Array, Array]:
    half = n // 2
    out = []
    for delta, label in ((0.0, 1.0), (np.pi, 0.0)):
        i = np.arange(half)
        r = i / half * 5
        t = 1.75 * i / half * 2 * np.pi + delta
        pts = np.c_[r * np.sin(t), r * np.cos(t)] + rng.uniform(-1, 1, (half, 2)) * noise
        out.append((pts, np.full(half, label)))
    return np.r_[out[0][0], out[1][0]], np.r_[out[0][1], out[1][1]]


def _moons(rng: np.random.Generator, n: int, noise: float) -> tuple[Array, Array]:
    half = n // 2
    t1 = rng.uniform(0, np.pi, half)
    t2 = rng.uniform(0, np.pi, n - half)
    upper = np.c_[np.cos(t1), np.sin(t1)]
    lower = np.c_[1 - np.cos(t2), 0.5 - np.sin(t2)]
    X = (np.r_[upper, lower] - [0.5, 0.25]) * 3.2
    X += rng.normal(0, 1, (n, 2)) * noise * 2
    return X, np.r_[np.ones(half), np.zeros(n - half)]


def _plane(rng: np.random.Generator, n: int, noise: float) -> tuple[Array, Array]:
    X = rng.uniform(-RADIUS, RADIUS, (n, 2))
    noisy = X + rng.uniform(-RADIUS, RADIUS, (n, 2)) * noise
    return X, (noisy[:, 0] + noisy[:, 1]) / (2 * RADIUS)


def _multigauss(rng: np.random.Generator, n: int, noise: float) -> tuple[Array, Array]:
    centres = np.array([[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1],
                        [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]], float)
    X = rng.uniform(-RADIUS, RADIUS, (n, 2))
    noisy = X + rng.uniform(-RADIUS, RADIUS, (n, 2)) * noise
    d2 = ((noisy[:, None, :] - centres[None, :, :2]) ** 2).sum(-1)
    k = np.argmin(d2, axis=1)
    y = centres[k, 2] * np.maximum(0, 1 - np.sqrt(d2[np.arange(n), k]) / 2)
    return X, y


CLASSIFY: dict[str, Callable[..., tuple[Array, Array]]] = {
    "circle": _circle, "xor": _xor, "gauss": _gauss, "spiral": _spiral, "moons": _moons}
REGRESS: dict[str, Callable[..., tuple[Array, Array]]] = {
    "plane": _plane, "multigauss": _multigauss}


def generate(name: str, noise: float, seed: int, n: int = N_POINTS) -> tuple[Array, Array]:
    """(X (n, 2), y (n,)) of a built-in dataset; ``noise`` in [0, 0.5]."""
    gen = CLASSIFY.get(name) or REGRESS[name]
    X, y = gen(np.random.default_rng(seed), n, noise)
    return np.ascontiguousarray(X, np.float64), np.ascontiguousarray(y, np.float64)


# the input feature map: one home, chainrule.data.features (the page shows its order)
FEATURES = INPUT_FEATURES


def feature_map(X: Array, names: list[str]) -> Array:
    """The network's input a^0 for raw points X (m, 2): one column per chosen feature."""
    return apply_input_map(X, names)
