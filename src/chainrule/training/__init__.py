"""chainrule.training: the Trainer (step, epoch, gradient hooks), ``fit`` and callbacks
(text 3.8: gradient descent, SGD and minibatch SGD)."""

from ..data.batching import batches, n_batches
from ..optim import DEFAULT_LR
from .callbacks import (
    Callback,
    ClipNorm,
    EarlyStopping,
    ExplodingGradientWarning,
    GradientWatch,
    ProgressBar,
    TrainingDiverged,
    TrainState,
    as_callbacks,
)
from .trainer import Trainer, fit

__all__ = ["fit", "Trainer", "Callback", "EarlyStopping", "ProgressBar", "TrainState",
           "TrainingDiverged", "ExplodingGradientWarning", "ClipNorm", "GradientWatch",
           "n_batches", "batches", "DEFAULT_LR", "as_callbacks"]
