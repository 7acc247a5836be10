"""The training loop (text 3.8): gradient descent, SGD and minibatch SGD, with
callbacks, early stopping, a progress display and divergence checks.

Minibatches: each epoch shuffles the example indices once (seeded) and cuts them into
ceil(m / B) batches, the last one partial unless ``drop_last`` (1,000,000 examples at
B = 120 give 8,334 batches, the last of 40; the text's 8,333 is a slip, see docs/math.md).
``batch_size=None`` is full-batch gradient descent.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from . import _native, _pipe
from .nn.network import descend_pays
from .optim import Optimizer, get_optimizer
from .optim.optimizers import clip_grad_norm
from .optim.schedules import constant, cosine

__all__ = ["fit", "Callback", "EarlyStopping", "ProgressBar", "TrainState", "TrainingDiverged",
           "ExplodingGradientWarning", "n_batches", "batches"]


# The learning rate fit uses for each optimiser name when none is given (with the default
# cosine schedule): Adam at 3e-3 reaches 98.0-98.1% on MNIST 784-100-10 in 10 epochs at
# B = 64 (benchmarks/train_mnist.py), where 1e-3 stops near 97.7%.
DEFAULT_LR = {"adam": 3e-3, "adamw": 3e-3, "rmsprop": 1e-3, "sgd": 0.1, "gd": 0.1,
              "momentum": 0.05, "nesterov": 0.05}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the network keeps its last good weights."""


class ExplodingGradientWarning(RuntimeWarning):
    """The gradient's norm grew by orders of magnitude: the run may be about to diverge."""


GRAD_CHECK_EVERY = 16     # steps between checks of the gradient norm
EXPLODING_FACTOR = 1e3    # warn when ||grad C|| exceeds this times its first value


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


@dataclass
class TrainState:
    """What callbacks see: the network, where training is, and the logs so far."""

    net: Any
    optimizer: Optimizer
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


class Callback:
    """Hooks into :func:`fit`; override the ones you need. Set ``state.stop = True`` to
    end training after the current epoch."""

    def on_train_begin(self, state: TrainState) -> None: ...

    def on_epoch_begin(self, state: TrainState) -> None: ...

    def on_batch_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...

    def on_train_end(self, state: TrainState) -> None: ...


class _FunctionCallback(Callback):
    def __init__(self, fn: Callable[[TrainState], Any]) -> None:
        self.fn = fn

    def on_epoch_end(self, state: TrainState) -> None:
        self.fn(state)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs, and
    restore the weights of the best epoch."""

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

    def on_train_begin(self, state: TrainState) -> None:
        self.best, self.best_epoch, self.wait, self.best_theta = math.inf, -1, 0, None

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
                state.stop = True

    def on_train_end(self, state: TrainState) -> None:
        if self.restore and self.best_theta is not None:
            state.net.theta[...] = self.best_theta
            state.logs["best_epoch"] = self.best_epoch + 1


class ProgressBar(Callback):
    """Epoch, batch, loss and examples per second: a live bar on a terminal, one line
    per epoch otherwise."""

    def __init__(self, stream: IO[str] | None = None, live: bool | None = None,
                 interval: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = live if live is not None else bool(getattr(self.stream, "isatty",
                                                               lambda: False)())
        self.interval = interval
        self._last = 0.0
        self._loss_sum = 0.0
        self._count = 0

    def on_epoch_begin(self, state: TrainState) -> None:
        self._loss_sum, self._count, self._last = 0.0, 0, 0.0

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


def _as_callbacks(callbacks: Sequence[Any] | None) -> list[Callback]:
    out: list[Callback] = []
    for c in callbacks or ():
        if isinstance(c, Callback):
            out.append(c)
        elif callable(c):
            out.append(_FunctionCallback(c))
        else:
            raise TypeError(f"a callback must be a Callback or a function of the state, not "
                            f"{type(c).__name__}")
    return out


def _batch_blind(c: Callback) -> bool:
    """Whether a callback never looks at a batch's gradient: its on_batch_end is the
    progress display's, or none."""
    return isinstance(c, ProgressBar) or type(c).on_batch_end is Callback.on_batch_end


def _diverged(epoch: int, batch: int, what: str, opt: Optimizer) -> TrainingDiverged:
    return TrainingDiverged(
        f"training diverged at epoch {epoch + 1}, batch {batch + 1}: {what}; the learning "
        f"rate ({opt.lr_at(opt.t):.3g}) is probably too high, try one 10x smaller. The "
        f"weights from the start of epoch {epoch + 1} were kept")


# "auto" keeps one BLAS thread while the largest product of a step is under this many
# multiply-adds (batch x fan-in x fan-out): measured crossover between batch 16 and 32 for
# 784-100-10 on two cores (benchmarks/NOTES.md)
SMALL_PRODUCT = 2_000_000


def _blas_limit(blas_threads: int | str | None, batch_size: int, largest: int = 0) -> Any:
    """Limit the BLAS thread pool for the run (threadpoolctl); None when left alone.
    ``largest``: the biggest fan-in x fan-out of the network's layers."""
    if blas_threads is None:
        return None
    if blas_threads == "auto":
        if batch_size * largest >= SMALL_PRODUCT:
            return None
        n = 1
    elif isinstance(blas_threads, int) and not isinstance(blas_threads, bool) and \
            blas_threads >= 1:
        n = blas_threads
    else:
        raise ValueError(f"blas_threads must be 'auto', a positive integer or None, got "
                         f"{blas_threads!r}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return None
    return threadpool_limits(limits=n, user_api="blas")


def _check_int(name: str, v: Any, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def fit(net: Any, X: Any, y: Any, *, epochs: int = 10, batch_size: int | None = 64,
        optimizer: str | Optimizer | None = "adam", lr: float | None = None,
        schedule: str | Callable[[int], float] | None = "cosine",
        weight_decay: float = 0.0, clip_norm: float | None = None,
        validation_data: tuple[Any, Any] | None = None, validation_split: float = 0.0,
        callbacks: Sequence[Any] | None = None, early_stopping: int | None = None,
        seed: int = 0, shuffle: bool = True, drop_last: bool = False,
        verbose: int | bool = 1, stream: IO[str] | None = None,
        initial_epoch: int = 0,
        history: dict[str, list[float]] | None = None,
        blas_threads: int | str | None = "auto") -> dict[str, list[float]]:
    """Train ``net`` on (X, y) and return the history of loss and metrics per epoch.

    Defaults: Adam at alpha = 3e-3 with a cosine schedule over the whole run, batches of
    64, 10 epochs (``DEFAULT_LR`` gives the rate for each optimiser name). ``optimizer``
    is a name (gd, sgd, momentum, nesterov, rmsprop, adam, adamw) or an
    :class:`~chainrule.optim.Optimizer`; ``schedule`` ("cosine", "constant" or a function
    of the step) applies when the optimiser's rate is a number.
    ``early_stopping=k`` stops after k epochs without improvement of the validation loss
    and restores the best weights. The same ``seed`` gives bit-identical weights.
    ``initial_epoch`` and ``history`` continue an earlier run (a resumed checkpoint): the
    shuffles of the skipped epochs are drawn and discarded, so a resumed run repeats the
    uninterrupted one exactly.
    ``blas_threads``: "auto" runs the matrix products on one thread when the largest
    product of a step is small (batch x fan-in x fan-out under ``SMALL_PRODUCT``: batches
    under about 26 for 784-100-10) and leaves BLAS alone otherwise (measured in
    benchmarks/NOTES.md: an idle BLAS thread spinning on the second core slows the
    element-wise work of small batches more than it speeds their products); an integer
    sets the count; None leaves it alone. Where "auto" finds a BLAS at two threads (or
    ``blas_threads=2``) and some product of a batch reaches 2^20 multiply-adds (batches
    of 14 and more for 784-100-10), chainrule's own second thread replaces the BLAS's
    for the run: it takes half of each large product and of the Adam step, and gathers
    the next batch while this one trains (``chainrule._pipe``; the environment variable
    ``CHAINRULE_PIPE=0`` turns it off).

    >>> import numpy as np
    >>> from chainrule.nn import Network
    >>> X = np.random.default_rng(0).normal(size=(200, 2)); y = (X[:, 0] > 0).astype(int)
    >>> net = Network.from_sizes([2, 8, 2], seed=0)
    >>> h = net.fit(X, y, epochs=20, batch_size=20, lr=0.01, verbose=0)
    >>> net.accuracy(X, y) > 0.9
    True
    """
    epochs = _check_int("epochs", epochs, 0)
    Xa = net._check_X(X)
    m = Xa.shape[0]
    if m == 0:
        raise ValueError("the training data is empty")
    Ya = net._targets(y, m)
    if batch_size is None:
        B = m
    else:
        B = min(_check_int("batch_size", batch_size), m)
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
    rng = np.random.default_rng(seed)
    if validation_data is None and validation_split > 0:
        n_val = int(round(m * validation_split))
        if n_val < 1 or n_val >= m:
            raise ValueError("validation_split leaves no training or no validation examples")
        perm = rng.permutation(m)
        val_idx, tr_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        validation_data = (Xa[val_idx], np.asarray(y)[val_idx])
        Xa, Ya = Xa[tr_idx], Ya[tr_idx]
        m = Xa.shape[0]
        B = min(B, m)
    Xv = Yv = None
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        Xv = net._check_X(validation_data[0])
        yv_raw = validation_data[1]
        Yv = net._targets(yv_raw, Xv.shape[0])

    steps = n_batches(m, B, drop_last)
    if steps == 0:
        raise ValueError(f"batch_size {B} with drop_last leaves no batch of {m} examples")
    if not isinstance(optimizer, Optimizer) and lr is None:
        lr = DEFAULT_LR.get(str(optimizer or "adam").lower())
    opt = get_optimizer(optimizer, lr=lr, weight_decay=weight_decay) \
        if not isinstance(optimizer, Optimizer) else optimizer
    if isinstance(optimizer, Optimizer) and (lr is not None or weight_decay):
        raise ValueError("give lr and weight_decay to the Optimizer itself, not to fit")
    opt.mask = net.weight_mask
    base_lr = opt.lr
    if not callable(base_lr):
        if callable(schedule):
            opt.schedule = schedule
        elif schedule == "cosine":
            opt.schedule = cosine(float(base_lr), max(1, (initial_epoch + epochs) * steps))
        elif schedule in ("constant", None):
            opt.schedule = constant(float(base_lr))
        else:
            raise ValueError(f"unknown schedule {schedule!r}: use 'cosine', 'constant' or a "
                             f"function of the step")
    if initial_epoch and opt.t == 0:
        opt.t = initial_epoch * steps

    cbs = _as_callbacks(callbacks)
    if early_stopping:
        cbs.append(EarlyStopping("val_loss" if Xv is not None else "loss",
                                 patience=_check_int("early_stopping", early_stopping)))
    if verbose:
        cbs.append(ProgressBar(stream))
    history = {k: list(v) for k, v in history.items()} if history else {}
    if shuffle:
        for _ in range(initial_epoch):
            rng.permutation(m)
    state = TrainState(net, opt, initial_epoch + epochs, steps, B, m, history=history)
    net.history_ = history
    classifier = net.is_classifier
    labels_tr = np.argmax(Ya, axis=1) if classifier and Ya.shape[1] > 1 else None
    good = net.theta.copy()
    # one batch of all the data: its gradient does not depend on the order, and the
    # sorted indices would gather the data set as it is, so it is used in place
    full_batch = B == m

    # one-hot targets of a softmax cross-entropy network travel as their int64 labels
    # (the fused kernel takes them): the gather moves 8 bytes a row instead of 4 x n_L
    if labels_tr is not None and net._fast_xent() and _native.kernels() is not None and \
            np.array_equal(Ya, net._one_hot(labels_tr, Ya.shape[1])):
        Ya = labels_tr = labels_tr.astype(np.int64, copy=False)
    # the batch buffers the gather fills every step (none when the batch is the data set)
    xbuf = np.empty((0 if full_batch else B, Xa.shape[1]), Xa.dtype)
    in_order = None if shuffle else np.arange(m)     # the batches' indices without a shuffle
    ybuf = np.empty((0 if full_batch else B,) + Ya.shape[1:], Ya.dtype)
    step_count, first_norm, warned = 0, None, False
    # plain SGD takes its step inside the backward pass (BP4 adds into W^l: one BLAS
    # product, no dW^l; Network._backprop) on the steps that need no gradient: not the
    # norm checks, not with clip_norm, not under a callback that looks at every batch,
    # and not an epoch's last step, so that net.grad holds the last batch's gradient at
    # every epoch's end and after fit
    fuse = clip_norm is None and opt.mask is net.weight_mask and \
        all(_batch_blind(c) for c in cbs) and descend_pays(net.layers, B)
    for c in cbs:
        c.on_train_begin(state)
    # the BLAS limit and the pipe come last before the try whose finally gives them back
    # on two cores: chainrule's own second thread instead of the BLAS's (_pipe.py)
    piped = _pipe.for_fit(net.layers, B, blas_threads)
    pipe, limiter = piped if piped is not None else (None, _blas_limit(
        blas_threads, B, max(layer.n_in * layer.n_out for layer in net.layers)))
    try:
        # the next batch is gathered into the other buffer while this one trains
        xbufs = (xbuf, np.empty_like(xbuf)) if pipe is not None and not full_batch and \
            Xa.flags.c_contiguous else None
        if pipe is not None:
            net._pipe = opt._pipe = pipe
        for epoch in range(initial_epoch, initial_epoch + epochs):
            state.epoch, state.seen, state.logs = epoch, 0, {}
            state.epoch_start = t0 = time.perf_counter()
            np.copyto(good, net.theta)
            for c in cbs:
                c.on_epoch_begin(state)
            order = rng.permutation(m) if shuffle else in_order
            if shuffle and B > 1:
                # each batch's indices in increasing order: the same batches, read from
                # memory front to back (a faster gather and first product, NOTES.md)
                full = (m // B) * B
                order[:full].reshape(-1, B).sort(axis=1)
                order[full:].sort()
            loss_sum = 0.0
            correct = 0
            for b in range(steps):
                if full_batch:
                    xb, yb = Xa, Ya
                    bidx = None
                else:
                    lo = b * B
                    bidx = order[lo:lo + B]
                    # into buffers reused every step; mode="clip" (the indices are valid)
                    # spares take's defensive copy of out (NOTES.md)
                    nb = bidx.shape[0]
                    if xbufs is None:
                        xb = Xa.take(bidx, axis=0, out=xbuf[:nb], mode="clip")
                    else:
                        if b == 0:
                            Xa.take(bidx, axis=0, out=xbufs[0][:nb], mode="clip")
                        else:
                            pipe.wait()              # this batch, gathered during the last
                        xb = xbufs[b % 2][:nb]
                        if b + 1 < steps:
                            pipe.prefetch(Xa, order[lo + B:lo + 2 * B], xbufs[(b + 1) % 2])
                    yb = Ya.take(bidx, axis=0, out=ybuf[:nb], mode="clip")
                rates = opt.descend_rates() if fuse and step_count % GRAD_CHECK_EVERY \
                    and b != steps - 1 else None
                value = net._backprop(xb, yb, descend=rates)
                if not math.isfinite(value):
                    np.copyto(net.theta, good)
                    raise _diverged(epoch, b, f"the loss became {value}", opt)
                if step_count % GRAD_CHECK_EVERY == 0:
                    gnorm = math.sqrt(float(np.dot(net.grad, net.grad)))
                    if not math.isfinite(gnorm):
                        np.copyto(net.theta, good)
                        raise _diverged(epoch, b, "the gradient holds NaN or infinite values",
                                        opt)
                    if first_norm is None:
                        first_norm = max(gnorm, 1e-12)
                    elif gnorm > EXPLODING_FACTOR * first_norm and not warned:
                        warned = True
                        warnings.warn(ExplodingGradientWarning(
                            f"the gradient norm reached {gnorm:.3g} at epoch {epoch + 1}, "
                            f"batch {b + 1}, {gnorm / first_norm:.0f}x its first value: the "
                            f"run may diverge; lower the learning rate or pass clip_norm"),
                            stacklevel=2)
                step_count += 1
                if rates is not None:
                    opt.t += 1                      # the step is taken (plain SGD: no state)
                else:
                    if clip_norm is not None:
                        clip_grad_norm(net.grad, clip_norm)
                    opt.step(net.theta, net.grad)
                nb = xb.shape[0]
                loss_sum += value * nb
                if labels_tr is not None and net._batch_hits is not None:
                    correct += net._batch_hits          # counted by the fused kernel
                elif labels_tr is not None:
                    pred = net._buffers_for(nb)[1][-1].argmax(1)
                    correct += int(np.count_nonzero(
                        pred == (labels_tr if bidx is None else labels_tr[bidx])))
                state.seen += nb
                state.batch, state.batch_loss = b, value
                for c in cbs:
                    c.on_batch_end(state)
            elapsed = time.perf_counter() - t0
            logs = state.logs
            logs["loss"] = loss_sum / state.seen
            if labels_tr is not None:
                logs["accuracy"] = correct / state.seen
            if Xv is not None:
                val_loss, val_acc = net._score(Xv, Yv)
                logs["val_loss"] = val_loss
                if classifier:
                    logs["val_accuracy"] = val_acc
            logs["lr"] = opt.lr_at(max(opt.t - 1, 0))
            logs["time"] = elapsed
            logs["ex/s"] = state.seen / max(elapsed, 1e-9)
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            for c in cbs:
                c.on_epoch_end(state)
            if state.stop:
                break
    finally:
        net._buffers.clear()          # the batch buffers (up to tens of MB) go with the run
        if pipe is not None:
            pipe.close()
            net._pipe = opt._pipe = None
        if limiter is not None:
            limiter.restore_original_limits()
        for c in cbs:
            c.on_train_end(state)
        opt.schedule = None
    net.optimizer_ = opt
    return history
