"""chainrule.optim: optimisers (text 3.8) and learning-rate schedules.

Each optimiser updates the whole parameter vector Theta in one vectorised step,
in order of increasing complexity:

    GradientDescent / SGD   Theta <- Theta - alpha grad C                      (text 3.8)
    momentum                v <- mu v + grad C;  Theta <- Theta - alpha v
    Nesterov                Theta <- Theta - alpha (grad C + mu v)
    RMSProp                 s <- rho s + (1 - rho) g^2;  Theta <- Theta - alpha g / (sqrt(s) + eps)
    Adam                    bias-corrected first and second moments
    AdamW                   Adam with decoupled weight decay

Schedules are plain functions of the step: ``lr = schedule(step)``.
"""

from .optimizers import (
    DEFAULT_LR,
    SGD,
    Adam,
    AdamW,
    GradientDescent,
    Momentum,
    Nesterov,
    Optimizer,
    RMSProp,
    clip_grad_norm,
    get_optimizer,
)
from .schedules import constant, cosine, exponential, step_decay, warmup

__all__ = [
    "DEFAULT_LR", "Optimizer", "GradientDescent", "SGD", "Momentum", "Nesterov", "RMSProp",
    "Adam", "AdamW",
    "get_optimizer", "clip_grad_norm", "constant", "step_decay", "exponential", "cosine",
    "warmup",
]
