"""Learning-rate schedules: plain functions of the step (0, 1, 2, ...) to alpha."""

from __future__ import annotations

import math
from collections.abc import Callable

Schedule = Callable[[int], float]


def _positive(name: str, **vals: float) -> None:
    for k, v in vals.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name}: {k} must be a positive number, got {v!r}")


def constant(lr: float) -> Schedule:
    """alpha(t) = lr."""
    _positive("constant", lr=lr)
    return lambda step: lr


def step_decay(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """alpha(t) = lr * gamma ** floor(t / step_size).

    >>> step_decay(1.0, 10, 0.5)(25)
    0.25
    """
    _positive("step_decay", lr=lr, step_size=step_size, gamma=gamma)
    return lambda step: lr * gamma ** (step // step_size)


def exponential(lr: float, gamma: float) -> Schedule:
    """alpha(t) = lr * gamma ** t."""
    _positive("exponential", lr=lr, gamma=gamma)
    return lambda step: lr * gamma ** step


def cosine(lr: float, total_steps: int, min_lr: float = 0.0) -> Schedule:
    """Cosine annealing from lr at t = 0 to min_lr at t = total_steps (then held).

    >>> round(cosine(1.0, 100)(50), 6)
    0.5
    """
    _positive("cosine", lr=lr, total_steps=total_steps)

    def f(step: int) -> float:
        t = min(step, total_steps) / total_steps
        return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * t))

    return f


def warmup(schedule: Schedule | float, warmup_steps: int) -> Schedule:
    """Linear warm-up from 0 over ``warmup_steps``, then ``schedule`` (shifted).

    >>> warmup(1.0, 4)(1)
    0.5
    """
    inner = schedule if callable(schedule) else constant(float(schedule))
    _positive("warmup", warmup_steps=warmup_steps)

    def f(step: int) -> float:
        if step < warmup_steps:
            return inner(0) * (step + 1) / warmup_steps
        return inner(step - warmup_steps)

    return f
