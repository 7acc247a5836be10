"""chainrule.training: the Trainer (step, epoch, gradient hooks), ``fit`` and callbacks
(text 3.8: gradient descent, SGD and minibatch SGD)."""

from .callbacks import Callback, EarlyStopping, ProgressBar, TrainState, as_callbacks
from .trainer import (
    DEFAULT_LR,
    ClipNorm,
    ExplodingGradientWarning,
    Trainer,
    TrainingDiverged,
    batches,
    fit,
    n_batches,
)

__all__ = ["fit", "Trainer", "Callback", "EarlyStopping", "ProgressBar", "TrainState",
           "TrainingDiverged", "ExplodingGradientWarning", "ClipNorm", "n_batches", "batches",
           "DEFAULT_LR", "as_callbacks"]
