"""chainrule.distributed: synchronous data-parallel training over MPI (mpi4py), and the
helpers it needs: one permutation of the shared seed cut into per-rank slices of every
global batch, the gradient hook that sums Theta's gradient with one Allreduce, sharded
reductions of the logs and of validation, and a job that fails whole.

Nothing here imports mpi4py until a communicator is asked for (``world()``) or given
(``DataParallel(comm)``): ``import chainrule`` and a one-process ``fit`` never load it.
docs/scaling.md has the communication model and the measured figures.
"""

from .parallel import AllreduceMean, DataParallel, guard, launched_size, world

__all__ = ["DataParallel", "AllreduceMean", "guard", "world", "launched_size"]
