"""The thread policy of a training run, written for any number of cores.

A product of a training step is worth a thread when it has at least ``WORK_PER_THREAD``
multiply-adds (batch x fan-in x fan-out); below that, handing work to another thread
costs more than it saves, and an idle BLAS thread spinning beside the element-wise work
slows it (benchmarks/NOTES.md: the crossover for 784-100-10 lies between batches of 16
and 32). So a run uses

    threads = min(usable cores, largest product // WORK_PER_THREAD), at least 1,

where usable cores are the ones this process may run on (``os.sched_getaffinity``). With
more than one thread, the pipe's workers (``pipe``) take the products' other rows, the
Adam step and the gather of the next batch, with the BLAS on one thread in each; where
the pipe cannot run, the BLAS is limited to ``threads`` (threadpoolctl).

``blas_threads`` of ``fit`` overrides the policy: an integer sets the count, None leaves
the BLAS and the pipe alone. The environment switches are listed in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__all__ = ["usable_cores", "threads_for", "for_run", "WORK_PER_THREAD"]

WORK_PER_THREAD = 1 << 20


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def threads_for(sizes: Sequence[int], batch_size: int, cores: int | None = None) -> int:
    """How many threads a step of this network at this batch size is worth.

    >>> threads_for([784, 100, 10], 10, cores=2), threads_for([784, 100, 10], 256, cores=2)
    (1, 2)
    >>> threads_for([784, 100, 10], 256, cores=64)
    19
    """
    largest = max(a * b for a, b in zip(sizes, sizes[1:]))
    cores = usable_cores() if cores is None else cores
    return max(1, min(cores, batch_size * largest // WORK_PER_THREAD))


def for_run(sizes: Sequence[int], batch_size: int, blas_threads: Any = "auto"
            ) -> tuple[Any, Any]:
    """(pipe, BLAS limit) for a run: the pipe with its workers, or None; a threadpoolctl
    limit to give back at the end, or None. ``blas_threads``: "auto" (the policy), a
    thread count, or None (leave both alone)."""
    if blas_threads is None:
        return None, None
    n = threads_for(sizes, batch_size) if blas_threads == "auto" else blas_threads
    from . import pipe as _pipe

    p = _pipe.for_run(sizes, batch_size, n)
    if p is not None:
        return p, _limit(1)
    if blas_threads == "auto" and n >= usable_cores():
        return None, None               # the BLAS's own pool, as it is
    return None, _limit(n)


def _limit(n: int) -> Any:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return None
    return threadpool_limits(limits=n, user_api="blas")
