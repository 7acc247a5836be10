"""Progress within an epoch, drawn by rich, for runs whose epochs take a while.

:class:`RichProgress` prints one line per epoch (as :class:`ProgressBar` does) and, on a
terminal, a live bar of the epoch's batches once the epoch has run ``after`` seconds, so a
fast run stays quiet and a slow one is never silent. Off a terminal it prints only the
epoch lines. Without rich installed, :func:`progress_callback` gives the built-in
:class:`ProgressBar`.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from .callbacks import Callback, ProgressBar, TrainState

__all__ = ["RichProgress", "progress_callback"]


def _epoch_line(state: TrainState) -> str:
    logs = state.logs
    parts = [f"epoch {state.epoch + 1}/{state.epochs}"]
    parts += [f"{k} {v:.4f}" for k, v in logs.items() if k not in ("lr", "time", "ex/s")]
    parts.append(f"{logs.get('ex/s', 0):,.0f} ex/s")
    parts.append(f"{logs.get('time', 0):.2f}s")
    return "  ".join(parts)


class RichProgress(Callback):
    """A rich progress bar within slow epochs (on a terminal), one line per epoch."""

    needs_gradient = False
    rank_zero_only = True  # in a data-parallel run only rank 0 prints (distributed)

    def __init__(self, stream: IO[str] | None = None, after: float = 1.0,
                 live: bool | None = None) -> None:
        from rich.console import Console

        self.stream = stream if stream is not None else sys.stderr
        self.console = Console(file=self.stream, force_terminal=live, highlight=False)
        self.live = self.console.is_terminal if live is None else live
        self.after = after
        self._bar: Any = None
        self._task: Any = None

    def _start(self, state: TrainState) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(),
                             MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
                             TimeRemainingColumn(), console=self.console, transient=True)
        self._bar.start()
        self._task = self._bar.add_task("", total=state.steps_per_epoch,
                                        epoch=f"{state.epoch + 1}/{state.epochs}",
                                        loss=state.batch_loss)

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def on_batch_end(self, state: TrainState) -> None:
        if not self.live:
            return
        if self._bar is None:
            if time.perf_counter() - state.epoch_start < self.after:
                return
            self._start(state)
        self._bar.update(self._task, completed=state.batch + 1, loss=state.batch_loss)

    def on_epoch_end(self, state: TrainState) -> None:
        self._stop()
        self.stream.write(_epoch_line(state) + "\n")
        self.stream.flush()

    def on_train_end(self, state: TrainState) -> None:
        self._stop()


class _Bar(ProgressBar):
    """The built-in bar without its early-stopping line (the CLI prints its own)."""

    def on_train_end(self, state: TrainState) -> None:
        pass


def progress_callback(stream: IO[str] | None = None) -> Callback:
    """RichProgress where rich is installed, else the built-in ProgressBar; neither says
    that early stopping ended the run, which the caller reports."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return _Bar(stream)
    return RichProgress(stream)
