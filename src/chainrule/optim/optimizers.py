"""Optimisers: small classes with per-parameter state and one vectorised ``step``.

``step(theta, grad)`` updates Theta in place from the gradient buffer (same layout),
with preallocated state and scratch buffers, so a step allocates nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._names import lookup
from ..engine import get_engine
from .schedules import Schedule

__all__ = ["DEFAULT_LR", "Optimizer", "GradientDescent", "SGD", "Momentum", "Nesterov",
           "RMSProp", "Adam", "AdamW", "get_optimizer", "clip_grad_norm"]


# The learning rate for each optimiser name when none is given (with fit's default cosine
# schedule): Adam at 3e-3 reaches 98.0-98.1% on MNIST 784-100-10 in 10 epochs at B = 64
# (benchmarks/train_mnist.py), where 1e-3 stops near 97.7%.
DEFAULT_LR = {"adam": 3e-3, "adamw": 3e-3, "rmsprop": 1e-3, "sgd": 0.1, "gd": 0.1,
              "momentum": 0.05, "nesterov": 0.05}


def clip_grad_norm(grad: np.ndarray, max_norm: float) -> float:
    """Scale ``grad`` in place so that its global 2-norm is at most ``max_norm``; return
    the norm before clipping."""
    norm = float(np.sqrt(np.dot(grad, grad)))
    if norm > max_norm and norm > 0:
        grad *= max_norm / norm
    return norm


# Moments decay geometrically where the gradient is exactly zero (a dead ReLU unit):
# Adam's m by 0.9 a step reaches float32's subnormal range within about 800 steps, and
# arithmetic on subnormals is about 100 times slower on x86. Every FLUSH_EVERY steps the
# state entries below TINY_FACTOR x the smallest normal number are set to zero, before
# they can become subnormal (from there, 0.9 per step needs 130 steps to get there). Their
# share of an update is below 1e-26 of the learning rate: invisible in the weights. The
# schedule depends only on the step count, so a resumed run stays bit-identical.
FLUSH_EVERY = 64
TINY_FACTOR = 2.0 ** 20


def flush_tiny(a: np.ndarray) -> None:
    """Set the entries of ``a`` whose magnitude is below 2^20 x the smallest normal
    number of its dtype to zero, in place (before they become subnormal)."""
    if a.dtype.kind == "f":
        np.putmask(a, np.abs(a) < np.finfo(a.dtype).tiny * TINY_FACTOR, 0)


class Optimizer:
    """Base class. ``lr`` is a number or a schedule (a function of the step);
    ``weight_decay`` adds the L2 term wd * W to the gradient of the weights (biases are
    not decayed: ``mask`` is 1 on weights, 0 on biases, set by the network)."""

    name = "optimizer"

    def __init__(self, lr: float | Schedule = 0.01, weight_decay: float = 0.0) -> None:
        if not callable(lr):
            if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
                raise ValueError(f"learning rate must be a positive number, got {lr!r}")
        if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.lr = lr
        # set by fit for the length of a run: the rate as a function of the step
        self.schedule: Schedule | None = None
        self.weight_decay = float(weight_decay)
        self.t = 0
        self.mask: np.ndarray | None = None
        self._tmp: np.ndarray | None = None
        # what computes the steps over Theta (chainrule.engine); a Trainer sets the
        # network's, else the default one on first use
        self.engine: Any = None

    def lr_at(self, step: int) -> float:
        if self.schedule is not None:
            return float(self.schedule(step))
        return float(self.lr(step)) if callable(self.lr) else float(self.lr)

    def _prepare(self, theta: np.ndarray) -> None:
        if self._tmp is None or self._tmp.shape != theta.shape or self._tmp.dtype != theta.dtype:
            self._init_state(theta)

    # names of the per-parameter state arrays (saved in checkpoints); zeros to start with
    STATE: tuple[str, ...] = ()

    def _vector(self, theta: np.ndarray, slot: int) -> np.ndarray:
        """Zeros like ``theta``, laid out by the engine as the step's long vector number
        ``slot`` (Theta and its gradient are 0 and 1)."""
        return self.engine.zeros(theta.shape, theta.dtype, slot)

    def _init_state(self, theta: np.ndarray) -> None:
        """The scratch vector and every state array, zeros, except that the values of one
        :meth:`load_state` put there (of theta's shape and dtype) are kept."""
        self._tmp = self._vector(theta, 2)
        for i, name in enumerate(self.STATE):
            a, new = getattr(self, name), self._vector(theta, 3 + i)
            if a is not None and a.shape == theta.shape and a.dtype == theta.dtype:
                new[...] = a
            setattr(self, name, new)

    def _decay(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """grad + wd * mask * theta (coupled L2), without touching the gradient buffer."""
        if not self.weight_decay:
            return grad
        tmp = self._tmp
        np.multiply(theta, self.weight_decay, out=tmp)
        if self.mask is not None:
            tmp *= self.mask
        tmp += grad
        return tmp

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        if self.engine is None:
            self.engine = get_engine()
        self._prepare(theta)
        lr = self.lr_at(self.t)
        self.update(theta, grad, lr)
        self.t += 1
        if self.t % FLUSH_EVERY == 0:
            for a in self.state().values():
                flush_tiny(a)

    def update(self, theta: np.ndarray, grad: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    def descend_rates(self) -> tuple[float, float] | None:
        """``(lr, weight_decay)`` of this step when it is plain gradient descent, which the
        backward pass can take itself (``Network.gradient(descend=...)``, then ``t += 1``
        in place of :meth:`step`); None for optimisers with state."""
        return None

    def state(self) -> dict[str, np.ndarray]:
        """The per-parameter state, for checkpoints."""
        return {k: getattr(self, k) for k in self.STATE if getattr(self, k) is not None}

    def load_state(self, state: dict[str, np.ndarray], t: int) -> None:
        """Restore :meth:`state` and the step count (a resumed run)."""
        self.t = int(t)
        for k in self.STATE:
            if k in state:
                setattr(self, k, np.array(state[k]))

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"name": self.name, "weight_decay": self.weight_decay}
        if not callable(self.lr):
            cfg["lr"] = self.lr
        return cfg

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr!r})"


class SGD(Optimizer):
    """Theta <- Theta - alpha grad C (text 3.8); with ``momentum`` mu > 0 the heavy ball,
    with ``nesterov`` the look-ahead form."""

    name = "sgd"

    def __init__(self, lr: float | Schedule = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov needs momentum > 0")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.v: np.ndarray | None = None
        self.STATE = ("v",) if self.momentum else ()

    def update(self, theta: np.ndarray, grad: np.ndarray, lr: float) -> None:
        g = self._decay(theta, grad)
        eng = self.engine
        if not self.momentum:
            eng.axpy(-lr, g, theta)                         # theta <- theta - lr g
            return
        v = self.v
        if not self.nesterov:
            eng.scal(self.momentum, v)                      # v <- mu v + g
            eng.axpy(1.0, g, v)
            eng.axpy(-lr, v, theta)                         # theta <- theta - lr v
            return
        v *= self.momentum
        v += g
        tmp = self._tmp                                     # Nesterov: g + mu v
        if g is not tmp:
            np.multiply(v, self.momentum, out=tmp)
            tmp += g
        else:
            tmp += self.momentum * v
        tmp *= lr
        theta -= tmp

    def descend_rates(self) -> tuple[float, float] | None:
        # a subclass that changes the step (or its rule) takes its own step
        if self.momentum or type(self).update is not SGD.update or \
                type(self).step is not Optimizer.step:
            return None
        return self.lr_at(self.t), self.weight_decay

    def config(self) -> dict[str, Any]:
        return {**super().config(), "momentum": self.momentum, "nesterov": self.nesterov}


class GradientDescent(SGD):
    """Full-batch gradient descent: SGD used with the whole data set as one batch."""

    name = "gd"


def Momentum(lr: float | Schedule = 0.01, momentum: float = 0.9,  # noqa: N802
             weight_decay: float = 0.0) -> SGD:
    """SGD with (heavy-ball) momentum."""
    opt = SGD(lr, momentum=momentum, weight_decay=weight_decay)
    opt.name = "momentum"
    return opt


def Nesterov(lr: float | Schedule = 0.01, momentum: float = 0.9,  # noqa: N802
             weight_decay: float = 0.0) -> SGD:
    """SGD with Nesterov momentum."""
    opt = SGD(lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)
    opt.name = "nesterov"
    return opt


class RMSProp(Optimizer):
    """s <- rho s + (1 - rho) g^2;  Theta <- Theta - alpha g / (sqrt(s) + eps)."""

    name = "rmsprop"
    STATE = ("s",)

    def __init__(self, lr: float | Schedule = 1e-3, rho: float = 0.9, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.rho, self.eps = float(rho), float(eps)
        self.s: np.ndarray | None = None

    def update(self, theta: np.ndarray, grad: np.ndarray, lr: float) -> None:
        g = self._decay(theta, grad)
        s, tmp = self.s, self._tmp
        s *= self.rho
        if g is tmp:
            g = g.copy()
        np.multiply(g, g, out=tmp)
        tmp *= 1 - self.rho
        s += tmp
        np.sqrt(s, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        theta -= tmp


class Adam(Optimizer):
    """Adam (Kingma & Ba): bias-corrected moments m, v of the gradient.
    ``weight_decay`` here is the coupled L2 term; :class:`AdamW` decouples it."""

    name = "adam"
    STATE = ("m", "v")
    decoupled = False

    def __init__(self, lr: float | Schedule = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError("Adam betas must be in [0, 1)")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None
        self._tmp2: np.ndarray | None = None

    def _init_state(self, theta: np.ndarray) -> None:
        super()._init_state(theta)
        self._tmp2 = self._vector(theta, 3 + len(self.STATE))

    def update(self, theta: np.ndarray, grad: np.ndarray, lr: float) -> None:
        if self.decoupled and self.weight_decay:
            # AdamW: Theta <- Theta - alpha wd Theta, outside the moments
            np.multiply(theta, lr * self.weight_decay, out=self._tmp2)
            if self.mask is not None:
                self._tmp2 *= self.mask
            theta -= self._tmp2
            g = grad
        else:
            g = self._decay(theta, grad)
        b1, b2, t = self.beta1, self.beta2, self.t + 1
        # Theta <- Theta - alpha_t m / (sqrt(v) + eps_t), with the bias corrections folded
        # into alpha_t and eps_t (the form of the Adam paper, section 2)
        alpha_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        eps_t = self.eps * math.sqrt(1 - b2 ** t)
        self.engine.adam(theta, g, self.m, self.v, b1, b2, alpha_t, eps_t)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): the decay is applied to
    Theta directly, not through the moments."""

    name = "adamw"
    decoupled = True

    def __init__(self, lr: float | Schedule = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(lr, beta1, beta2, eps, weight_decay)


_OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": SGD, "gd": GradientDescent, "momentum": Momentum, "nesterov": Nesterov,
    "rmsprop": RMSProp, "adam": Adam, "adamw": AdamW,
}


def get_optimizer(spec: str | Optimizer | None, lr: float | Schedule | None = None,
                  **kw: Any) -> Optimizer:
    """An optimiser by name (sgd, gd, momentum, nesterov, rmsprop, adam, adamw)."""
    if isinstance(spec, Optimizer):
        return spec
    make = lookup(_OPTIMIZERS, spec or "adam", "optimizer")
    if lr is not None:
        kw["lr"] = lr
    return make(**kw)
