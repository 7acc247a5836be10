"""chainrule.distributed: synchronous data-parallel training over MPI (mpi4py), and the
helpers it needs: one permutation of the shared seed cut into per-rank slices of every
global batch, the gradient hook that sums Theta's gradient with one Allreduce, sharded
reductions of the logs and of validation, and a job that fails whole (``supervisor``:
the process the launcher starts watches its rank, so a rank killed outright is reported
too).

Nothing here imports mpi4py until a communicator is asked for (``world()``) or given
(``DataParallel(comm)``): ``import chainrule`` and a one-process ``fit`` never load it.
Nor NumPy, until a name of ``parallel`` is used: ``chainrule train`` forks its
supervisor before that. docs/scaling.md has the communication model and the figures.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DataParallel", "AllreduceMean", "guard", "world", "launched_size"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import parallel

        return getattr(parallel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
