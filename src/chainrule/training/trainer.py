"""The training loop (text 3.8): gradient descent, SGD and minibatch SGD.

A :class:`Trainer` takes steps and epochs with only the network's public methods. Each
step is the text's update with one seam in the middle:

    C, grad C  = net.gradient(batch)          the one Theta-shaped gradient (BP1-BP4)
    hook(grad C, state) for each hook         clipping, averaging across processes, yours
    Theta     <- optimizer.step(Theta, grad C)

Plain SGD may fuse the step into BP4 (``W <- W - alpha a^T delta`` as one product), but
only when no hook and no callback needs the gradient, and the choice is made once per run.
The minibatches of an epoch come from ``chainrule.data.batching``; with ``comm=`` (an MPI
communicator) each rank takes its slice of them (``chainrule.distributed``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..data.batching import epoch_order, n_batches, split_validation
from ..optim import DEFAULT_LR, Optimizer, get_optimizer
from ..optim.schedules import constant, cosine
from . import callbacks as cb
from .inputs import check_int as _check_int
from .inputs import training_arrays

__all__ = ["Trainer", "fit"]


class Trainer:
    """Trains a network by minibatches: the step, the epoch, callbacks and gradient hooks.

    >>> from chainrule.nn import Network
    >>> X = np.random.default_rng(0).normal(size=(200, 2)); y = (X[:, 0] > 0).astype(int)
    >>> net = Network.from_sizes([2, 8, 2], seed=0)
    >>> seen = []
    >>> t = Trainer(net, "sgd", lr=0.5, batch_size=20, hooks=[lambda g, s: seen.append(
    ...     float(np.linalg.norm(g)))])
    >>> h = t.fit(X, y, epochs=20)
    >>> len(seen), net.accuracy(X, y) > 0.9
    (200, True)
    """

    def __init__(self, net: Any, optimizer: str | Optimizer | None = "adam", *,
                 lr: float | None = None, schedule: str | Callable[[int], float] | None
                 = "cosine", weight_decay: float = 0.0, batch_size: int | None = 64,
                 hooks: Sequence[cb.Hook] = (), callbacks: Sequence[Any] | None = None,
                 seed: int = 0, shuffle: bool = True, drop_last: bool = False,
                 blas_threads: int | str | None = "auto", comm: Any = None) -> None:
        if isinstance(optimizer, Optimizer) and (lr is not None or weight_decay):
            raise ValueError("give lr and weight_decay to the Optimizer itself, not to fit")
        if not isinstance(optimizer, Optimizer) and lr is None:
            lr = DEFAULT_LR.get(str(optimizer or "adam").lower())
        self.net, self.hooks = net, list(hooks)
        self.opt = optimizer if isinstance(optimizer, Optimizer) else \
            get_optimizer(optimizer, lr=lr, weight_decay=weight_decay)
        self.opt.mask, self.opt.engine = net.weight_mask, net.engine
        if schedule not in ("cosine", "constant", None) and not callable(schedule):
            raise ValueError(f"unknown schedule {schedule!r}: use 'cosine', 'constant' or a "
                             f"function of the step")
        if blas_threads not in ("auto", None):
            _check_int("blas_threads ('auto', None or)", blas_threads)
        self.schedule, self.callbacks = schedule, cb.as_callbacks(callbacks)
        self.batch_size = None if batch_size is None else _check_int("batch_size", batch_size)
        self.rng = np.random.default_rng(seed)
        self.shuffle, self.drop_last, self.blas_threads = shuffle, drop_last, blas_threads
        self.dp = None
        if comm is not None:  # data-parallel: the Allreduce hook, each rank's rows
            from ..distributed import DataParallel
            self.dp = DataParallel(comm).attach(self)

    def _schedule(self, total_steps: int) -> None:
        s, base = self.schedule, self.opt.lr
        if not callable(base):
            self.opt.schedule = s if callable(s) else cosine(float(base), max(
                1, total_steps)) if s == "cosine" else constant(float(base))

    def step(self, xb: np.ndarray, yb: np.ndarray) -> tuple[float, int | None]:
        """One step: the gradient, the hooks, the optimiser (or the fused step)."""
        net, opt = self.net, self.opt
        if self.fused:
            out = net.gradient(xb, yb, descend=opt.descend_rates())
            opt.t += 1                               # the step is taken (plain SGD: no state)
            return out
        C, hits = net.gradient(xb, yb)
        if math.isfinite(C):
            self.watch.count += 1           # a look at grad C every watch.every steps
            if (self.watch.count - 1) % self.watch.every == 0 and \
                    not self.watch(net.grad, self.state):
                raise self._diverged("the gradient holds NaN or infinite values")
            for hook in self.hooks:
                hook(net.grad, self.state)
            opt.step(net.theta, net.grad)
        return C, hits

    def _diverged(self, what: str) -> cb.TrainingDiverged:
        s, opt = self.state, self.opt
        np.copyto(self.net.theta, self.good)
        return cb.TrainingDiverged(
            f"training diverged at epoch {s.epoch + 1}, batch {s.batch + 1}: {what}; the "
            f"learning rate ({opt.lr_at(opt.t):.3g}) is probably too high, try one 10x "
            f"smaller. The weights from the start of epoch {s.epoch + 1} were kept")

    def epoch(self, X: np.ndarray, Y: np.ndarray) -> dict[str, float]:
        """One pass over (X, Y) in minibatches; returns the epoch's loss (and accuracy)."""
        s, m, B, eng = self.state, X.shape[0], self.state.batch_size, self.net.engine
        order = epoch_order(m, B, self.rng if self.shuffle else None, self.drop_last)
        loss_sum, correct, (order, Bl) = 0.0, 0, self.dp.shard(order, B) if self.dp else (
            None if B == m else order, B)
        ends = cb.listening(self.callbacks, "on_batch_end")   # the others' is a no-op
        for b, (xb, yb, _) in enumerate(eng.batches(X, Y, order, Bl)):
            s.batch = b
            C, hits = self.step(xb, yb)
            if not math.isfinite(C):
                raise self._diverged(f"the loss became {C}")
            loss_sum += C * xb.shape[0]
            correct += hits or 0
            s.seen += xb.shape[0]
            s.batch_loss = C
            for c in ends:
                c.on_batch_end(s)
        if self.dp:
            loss_sum, correct = self.dp.sum_epoch(loss_sum, correct, s)
        logs = {"loss": loss_sum / s.seen}
        if self.net.is_classifier and Y.ndim == 1:
            logs["accuracy"] = correct / s.seen
        return logs

    def fit(self, X: Any, y: Any, epochs: int = 10, validation_data: tuple[Any, Any] |
            None = None, initial_epoch: int = 0, history: dict[str, list[float]] | None
            = None, callback_states: dict[str, Any] | None = None) -> dict[str, list[float]]:
        """Train for ``epochs`` epochs (after ``initial_epoch`` done ones: a resumed run
        draws and discards their shuffles and restores ``callback_states``, by class name,
        so it repeats the uninterrupted one)."""
        net, opt = self.net, self.opt
        X, Y, Xv, Yv, B = training_arrays(net, X, y, validation_data, self.batch_size)
        steps = n_batches(m := X.shape[0], B, self.drop_last)
        if steps == 0:
            raise ValueError(f"batch_size {B} with drop_last leaves no batch of {m} examples")
        self._schedule((initial_epoch + epochs) * steps)
        if initial_epoch and opt.t == 0:
            opt.t = initial_epoch * steps
        for _ in range(initial_epoch if self.shuffle else 0):
            self.rng.permutation(m)
        net.history_ = history = {k: list(v) for k, v in (history or {}).items()}
        s = self.state = cb.TrainState(net, opt, initial_epoch + epochs, steps, B, m,
                                       history=history, callbacks=self.callbacks)
        cb.load_states(self.callbacks, callback_states or {})
        self.good, self.watch = net.theta.copy(), cb.GradientWatch()
        # the one choice of the run: plain SGD fused into BP4, where nothing needs grad C
        self.fused = not self.hooks and opt.descend_rates() is not None and \
            all(cb.batch_blind(c) for c in self.callbacks) and \
            net.engine.fuses_step(net.sizes, B)
        cbs = self.dp.callbacks(self.callbacks) if self.dp else self.callbacks
        for c in cbs:
            c.on_train_begin(s)
        try:
            with net.engine.run(net.sizes, B, self.blas_threads):
                for ep in range(initial_epoch, initial_epoch + epochs):
                    s.epoch, s.seen, s.epoch_start = ep, 0, time.perf_counter()
                    np.copyto(self.good, net.theta)
                    for c in cbs:
                        c.on_epoch_begin(s)
                    s.logs = logs = self.epoch(X, Y)
                    elapsed = time.perf_counter() - s.epoch_start
                    if Xv is not None:
                        logs["val_loss"], acc = (self.dp or net).score(Xv, Yv)
                        if net.is_classifier:
                            logs["val_accuracy"] = acc
                    logs.update(lr=opt.lr_at(max(opt.t - 1, 0)), time=elapsed)
                    logs["ex/s"] = s.seen / max(elapsed, 1e-9)
                    for k, v in logs.items():
                        history.setdefault(k, []).append(v)
                    for c in cbs:
                        c.on_epoch_end(s)
                    if s.stop:
                        break
        finally:
            for c in cbs:
                c.on_train_end(s)
            opt.schedule = None
        net.optimizer_ = opt
        return history


def fit(net: Any, X: Any, y: Any, *, epochs: int = 10, batch_size: int | None = 64,
        optimizer: str | Optimizer | None = "adam", lr: float | None = None,
        schedule: str | Callable[[int], float] | None = "cosine",
        weight_decay: float = 0.0, clip_norm: float | None = None,
        validation_data: tuple[Any, Any] | None = None, validation_split: float = 0.0,
        callbacks: Sequence[Any] | None = None, hooks: Sequence[cb.Hook] = (),
        early_stopping: int | None = None, seed: int = 0, shuffle: bool = True,
        drop_last: bool = False, verbose: int | bool = 1, stream: Any = None,
        initial_epoch: int = 0, history: dict[str, list[float]] | None = None,
        callback_states: dict[str, Any] | None = None,
        blas_threads: int | str | None = "auto", comm: Any = None
        ) -> dict[str, list[float]]:
    """Train ``net`` on (X, y); returns the history of loss and metrics per epoch.

    Defaults: Adam at 3e-3 (``DEFAULT_LR`` per optimiser name: gd, sgd, momentum,
    nesterov, rmsprop, adam, adamw, or an Optimizer), a cosine schedule over the run
    ("constant" or a function of the step), batches of 64 (None: full-batch gradient
    descent), 10 epochs. ``hooks``: functions ``hook(grad, state)`` that see (and may
    change in place) the gradient before each step; ``clip_norm`` adds one.
    ``early_stopping=k`` stops after k epochs without improvement of the validation loss
    and restores the best weights. The same ``seed`` gives bit-identical weights.
    ``initial_epoch``, ``history`` and ``callback_states`` continue an earlier run (a
    resumed checkpoint).
    ``blas_threads``: "auto" follows ``chainrule.engine.threads`` (a policy for any number
    of cores), an integer sets the count, None leaves it alone. ``comm``: an MPI
    communicator; its ranks train one model together (docs/scaling.md).

    >>> from chainrule.nn import Network
    >>> X = np.random.default_rng(0).normal(size=(200, 2)); y = (X[:, 0] > 0).astype(int)
    >>> net = Network.from_sizes([2, 8, 2], seed=0)
    >>> h = net.fit(X, y, epochs=20, batch_size=20, lr=0.01, verbose=0)
    >>> net.accuracy(X, y) > 0.9
    True
    """
    from .callbacks import EarlyStopping, ProgressBar

    epochs = _check_int("epochs", epochs, 0)
    trainer = Trainer(net, optimizer, lr=lr, schedule=schedule, weight_decay=weight_decay,
                      batch_size=batch_size, callbacks=callbacks, seed=seed, shuffle=shuffle,
                      drop_last=drop_last, blas_threads=blas_threads, comm=comm,
                      hooks=list(hooks) + ([cb.ClipNorm(clip_norm)] if clip_norm else []))
    if validation_data is None and validation_split:
        X, y, *validation_data = split_validation(net.check_X(X), y, validation_split,
                                                  trainer.rng)
    if early_stopping:  # first: a checkpoint after it saves its view of the epoch
        trainer.callbacks.insert(0, EarlyStopping(
            "val_loss" if validation_data is not None else "loss",
            patience=_check_int("early_stopping", early_stopping)))
    if verbose:
        trainer.callbacks.append(ProgressBar(stream))
    return trainer.fit(X, y, epochs, validation_data, initial_epoch, history,
                       callback_states)
