"""What plugs into the Trainer: callbacks (the state of a run at each batch and epoch),
each with a ``state_dict`` where it has state a resumed run needs, and gradient hooks
(``hook(grad, state)``, which see grad C before each optimiser step)."""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from ..optim.optimizers import clip_grad_norm

__all__ = ["Callback", "EarlyStopping", "ProgressBar", "TrainState", "as_callbacks",
           "ClipNorm", "GradientWatch", "TrainingDiverged", "ExplodingGradientWarning"]


Hook = Callable[[np.ndarray, "TrainState"], Any]


@dataclass
class TrainState:
    """What callbacks and hooks see: the network, where training is, and the logs so far."""

    net: Any
    optimizer: Any
    epochs: int
    steps_per_epoch: int
    batch_size: int
    m: int
    epoch: int = 0
    batch: int = 0
    batch_loss: float = float("nan")
    seen: int = 0
    epoch_start: float = 0.0
    logs: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    stop: bool = False
    callbacks: list[Any] = field(default_factory=list)   # the run's, for checkpoints


class Callback:
    """Hooks into a training run; override the ones you need. Set ``state.stop = True`` to
    end training after the current epoch. ``needs_gradient`` False promises that the
    callback never reads ``net.grad``: plain SGD's step may then be fused into BP4, where
    grad C is never formed."""

    needs_gradient = True

    def on_train_begin(self, state: TrainState) -> None: ...

    def on_epoch_begin(self, state: TrainState) -> None: ...

    def on_batch_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...

    def on_train_end(self, state: TrainState) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to carry on as this callback would have."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def batch_blind(c: Callback) -> bool:
    """Whether a callback never reads the gradient."""
    return not c.needs_gradient


def listening(callbacks: Sequence[Callback], hook: str) -> list[Callback]:
    """The callbacks that define ``hook`` (the others' is the base class's no-op)."""
    base = getattr(Callback, hook)
    return [c for c in callbacks if getattr(getattr(c, hook), "__func__", None) is not base]


class _FunctionCallback(Callback):
    needs_gradient = False

    def __init__(self, fn: Callable[[TrainState], Any]) -> None:
        self.fn = fn

    def on_epoch_end(self, state: TrainState) -> None:
        self.fn(state)


_HOOKS = ("on_train_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end", "on_train_end")


class _Duck(Callback):
    """An object with some of the Callback methods (chainrule.io.Checkpoint, say)."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.needs_gradient = getattr(obj, "needs_gradient", True)
        for h in _HOOKS:
            if hasattr(obj, h):
                setattr(self, h, getattr(obj, h))


def load_states(callbacks: Sequence[Callback], states: dict[str, Any]) -> None:
    """Restore each callback's ``state_dict`` saved under its class name (a resumed run)."""
    for c in callbacks:
        if states.get(type(c).__name__) is not None:
            c.load_state_dict(states[type(c).__name__])


def as_callbacks(callbacks: Sequence[Any] | None) -> list[Callback]:
    out: list[Callback] = []
    for c in callbacks or ():
        if isinstance(c, Callback):
            out.append(c)
        elif any(hasattr(c, h) for h in _HOOKS):      # a callback by its methods alone
            out.append(_Duck(c))
        elif callable(c):
            out.append(_FunctionCallback(c))
        else:
            raise TypeError(f"a callback must be a Callback or a function of the state, not "
                            f"{type(c).__name__}")
    return out


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs, and
    restore the weights of the best epoch."""

    needs_gradient = False

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True) -> None:
        if patience < 0:
            raise ValueError("patience must be >= 0")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        if self.mode not in ("min", "max"):
            raise ValueError("mode must be 'min', 'max' or 'auto'")
        self.restore = restore_best_weights
        self.best_theta: np.ndarray | None = None
        self.best = math.inf
        self.best_epoch = -1
        self.wait = 0
        self.stopped = False
        self._loaded = False

    def on_train_begin(self, state: TrainState) -> None:
        if not self._loaded:
            self.best, self.best_epoch, self.wait, self.best_theta = math.inf, -1, 0, None
            self.stopped = False
        self._loaded = False

    def on_epoch_end(self, state: TrainState) -> None:
        if self.monitor not in state.logs:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which is not logged; "
                             f"logged: {', '.join(state.logs)} (give validation data for "
                             f"val_ metrics)")
        v = state.logs[self.monitor]
        score = -v if self.mode == "max" else v
        if score < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = score, state.epoch, 0
            if self.restore:
                self.best_theta = state.net.theta.copy()
        else:
            self.wait += 1
            if self.wait > self.patience:
                state.stop = self.stopped = True

    def on_train_end(self, state: TrainState) -> None:
        if self.restore and self.best_theta is not None:
            state.net.theta[...] = self.best_theta
            state.logs["best_epoch"] = self.best_epoch + 1

    def state_dict(self) -> dict[str, Any]:
        """best (None for none yet), best_epoch, wait, stopped, and best_theta (an array)
        where the weights of the best epoch are kept."""
        d: dict[str, Any] = {"best": None if math.isinf(self.best) else self.best,
                             "best_epoch": self.best_epoch, "wait": self.wait,
                             "stopped": self.stopped}
        if self.best_theta is not None:
            d["best_theta"] = self.best_theta
        return d

    def load_state_dict(self, state: dict[str, Any]) -> None:
        best = state.get("best")
        self.best = math.inf if best is None else float(best)
        self.best_epoch, self.wait = int(state["best_epoch"]), int(state["wait"])
        self.stopped = bool(state.get("stopped", False))
        bt = state.get("best_theta")
        self.best_theta = None if bt is None else np.array(bt)
        self._loaded = True


class ProgressBar(Callback):
    """Epoch, batch, loss and examples per second: a live bar on a terminal, one line
    per epoch otherwise."""

    needs_gradient = False
    rank_zero_only = True  # in a data-parallel run only rank 0 prints (distributed)

    def __init__(self, stream: IO[str] | None = None, live: bool | None = None,
                 interval: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = live if live is not None else bool(getattr(self.stream, "isatty",
                                                               lambda: False)())
        self.interval = interval
        self._last = 0.0

    def on_epoch_begin(self, state: TrainState) -> None:
        self._last = 0.0

    def on_batch_end(self, state: TrainState) -> None:
        if not self.live:
            return
        now = time.perf_counter()
        if now - self._last < self.interval and state.batch + 1 < state.steps_per_epoch:
            return
        self._last = now
        done = state.batch + 1
        width = 24
        fill = int(width * done / state.steps_per_epoch)
        rate = state.seen / max(now - state.epoch_start, 1e-9)
        self.stream.write(
            f"\repoch {state.epoch + 1}/{state.epochs} [{'=' * fill}{'.' * (width - fill)}] "
            f"{done}/{state.steps_per_epoch} loss {state.batch_loss:.4f} "
            f"{rate:,.0f} ex/s ")
        self.stream.flush()

    def on_epoch_end(self, state: TrainState) -> None:
        logs = state.logs
        parts = [f"epoch {state.epoch + 1}/{state.epochs}"]
        parts += [f"{k} {v:.4f}" for k, v in logs.items() if k not in ("lr", "time", "ex/s")]
        parts.append(f"{logs.get('ex/s', 0):,.0f} ex/s")
        parts.append(f"{logs.get('time', 0):.2f}s")
        line = "  ".join(parts)
        self.stream.write(("\r" + line + " " * 10 + "\n") if self.live else line + "\n")
        self.stream.flush()

    def on_train_end(self, state: TrainState) -> None:
        if state.stop and "best_epoch" in state.logs:    # EarlyStopping ended the run
            self.stream.write(f"early stopping after epoch {state.epoch + 1}; the weights of "
                              f"epoch {state.logs['best_epoch']} were kept\n")
            self.stream.flush()


# --------------------------------------------------------------------------- hooks
class ClipNorm:
    """A gradient hook (``hook(grad, state)``, run before each optimiser step): scale
    grad C so that its 2-norm is at most ``max_norm``."""

    def __init__(self, max_norm: float) -> None:
        self.max_norm = float(max_norm)

    def __call__(self, grad: np.ndarray, state: TrainState) -> None:
        clip_grad_norm(grad, self.max_norm)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the network keeps its last good weights."""


class ExplodingGradientWarning(RuntimeWarning):
    """The gradient's norm grew by orders of magnitude: the run may be about to diverge."""


class GradientWatch:
    """The Trainer's own look at grad C (it counts the steps in ``count`` and calls this
    every ``every`` steps; a fused run has no gradient to watch). False when the gradient
    holds NaN or infinities; an :class:`ExplodingGradientWarning` once its norm exceeds
    ``factor`` times its first value."""

    def __init__(self, every: int = 16, factor: float = 1e3) -> None:
        self.every, self.factor = every, factor
        self.count, self.warned = 0, False
        self.first: float | None = None

    def __call__(self, grad: np.ndarray, state: TrainState) -> bool:
        norm = math.sqrt(float(np.dot(grad, grad)))
        if not math.isfinite(norm):
            return False
        if self.first is None:
            self.first = max(norm, 1e-12)
        elif norm > self.factor * self.first and not self.warned:
            self.warned = True
            warnings.warn(ExplodingGradientWarning(
                f"the gradient norm reached {norm:.3g} at epoch {state.epoch + 1}, batch "
                f"{state.batch + 1}, {norm / self.first:.0f}x its first value: the run may "
                f"diverge; lower the learning rate or pass clip_norm"), stacklevel=5)
        return True
