"""chainrule.engine: the speed, behind one seam, below nn in the layering.

The mathematics in ``chainrule.nn`` (forward propagation, BP1 to BP4) and the optimisers
in ``chainrule.optim`` are written once, against the small interface of an engine:

==================  =========================================================
``matmul``          out = alpha a @ b + beta out (a product into a buffer)
``bias_activation`` z += b, a = sigma(z) (an activation forward, in place)
``act_backward``    delta = g (Hadamard) sigma'(z) (an activation backward, in place)
``output_error``    z^L += b^L, a^L, the cost and delta^L (BP1; fused where exact)
``sum_rows``        the sum over a batch's rows (BP3; output_error and act_backward are
                    told where it will land, so a kernel may do it in their pass)
``axpy``, ``scal``  y += alpha x, x *= alpha (optimiser steps over Theta)
``adam``            one Adam step over Theta
``workspace``       the z^l, a^l, delta^l buffers of a batch
``zeros``           Theta, its gradient, an optimiser's state: the step's long vectors
``run``             the span of a training run: threads and buffers
``batches``         the minibatches of an epoch
==================  =========================================================

Two engines ship: ``numpy`` (:class:`NumpyEngine`, the reference, plain NumPy) and
``fast`` (:class:`~chainrule.engine.fast.FastEngine`: compiled kernels, NumPy's BLAS, the
pipe's worker threads, reused buffers). Every engine gives the reference's numbers. An
engine is chosen once, when a network is made: ``Network(..., engine=...)``, else the
environment's ``CHAINRULE_BACKEND`` (``numpy``, ``fast`` or ``auto``, the default: fast,
which uses what it finds: kernels, BLAS). A new backend (a GPU one, say) is a class with these
methods, passed as ``engine=`` or registered with :func:`register_engine`; nn never
changes.

>>> get_engine("numpy").name
'numpy'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .reference import NumpyEngine, one_hot

__all__ = ["NumpyEngine", "get_engine", "register_engine", "ENGINES", "one_hot"]


def _fast() -> Any:
    from .fast import FastEngine

    return FastEngine()


ENGINES: dict[str, Callable[[], Any]] = {"numpy": NumpyEngine, "fast": _fast}


def register_engine(name: str, factory: Callable[[], Any]) -> None:
    """Make ``CHAINRULE_BACKEND=name`` and ``engine=name`` build engines with
    ``factory()``."""
    ENGINES[name.lower()] = factory


def get_engine(spec: Any = None) -> Any:
    """An engine: ``spec`` an engine object (returned as it is), a name, or None for the
    environment's ``CHAINRULE_BACKEND`` (default ``auto``: the fast engine)."""
    if spec is not None and not isinstance(spec, str):
        return spec
    name = (spec or os.environ.get("CHAINRULE_BACKEND", "auto")).strip().lower()
    if name == "auto":
        name = "fast"
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}: choose one of auto, "
                         f"{', '.join(ENGINES)} (CHAINRULE_BACKEND or engine=)")
    return ENGINES[name]()
