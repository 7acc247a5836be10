"""The training step as a pipeline of the main thread and N worker threads
(``_kernels.c``, "the two-thread pipe", now with N workers).

Why: with the BLAS library's own threads, a step at batch 256 on 784-100-10 keeps the
other cores busy only inside the two large products. The gather of the batch (115 us on
two cores, bound by memory), the small output layer and the Python between them (about
110 us) run on one core while the BLAS workers spin on the others. Here the BLAS runs on
one thread on each side, and chainrule's own worker threads take:

- parts of each large product: the rows of C in up to N + 1 parts, the main thread
  computing part 0 and worker i part i + 1;
- the gather of the *next* batch (worker 0), posted right after the first layer's
  product, while the main thread runs the small layers and the Python between them (both
  take about 110 us on MNIST at B = 256, so the product after them is still split in
  halves on two cores);
- parts of the Adam step.

Each product's rows are split at fixed points that depend only on the number of rows,
the number of parts (min(N + 1, rows // MIN_ROWS)) and MIN_ROWS, at multiples of 16
(``_kernels.pipe_split_points``), so a run is as reproducible as with the BLAS's own
threads (for a given N). On OpenBLAS, every split with at least 64 rows in each part gives
the very bits of the unsplit product (tests/test_pipe.py checks this on the machine it
runs on). With one worker the split is at half the rows, as before the N-worker pipe.

The thread policy (``engine.threads``) gives a run T threads; the pipe then has
N = min(T - 1, parts the batch splits into - 1) workers. A run uses it where N >= 1, the
compiled kernels are built, NumPy's BLAS exports ``cblas_?gemm`` (``blas``), and some
product of a batch is large enough to split; it then limits the BLAS to one thread.
A task is run by whoever claims it first: when the main thread has done its own part and
would wait, it runs every posted task that no worker has started (a worker asleep, slow to
wake or without a core on a busy machine), and waits only for tasks under way. Waiting
threads spin briefly, then sleep (the workers after 200 us idle, the main thread after
100 us of waiting), so a machine shared with other work is not fought over.
``Pipe.matmul`` returns False where it does not apply and the caller uses NumPy.

Environment:

- ``CHAINRULE_PIPE=0`` (or false, no, off) turns the pipe off;
- ``CHAINRULE_PIPE_WORKERS=N`` sets the number of workers in place of the policy (0 turns
  the pipe off); fit still needs a product large enough to split, and a ``blas_threads``
  other than None.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import blas as _blas
from . import native as _native

__all__ = ["Pipe", "open_pipe", "for_run"]

# a product is split when it has at least this many multiply-adds (smaller ones cost
# more to hand over than they save) and at least 2 x MIN_ROWS rows of C: the size from
# which the network hands a product to BLAS itself, and spares the pipe smaller ones
SPLIT_MIN = 1 << 20
# each side of a split keeps MIN_ROWS rows (B = 16 splits 8 + 8: measured faster); from
# 64 rows a side OpenBLAS gives the bits of the unsplit product, below that its
# small-matrix kernels may sum in another order (the split is fixed: runs repeat)
MIN_ROWS = 8
# the main thread's share of a product's rows with one worker (with P parts it takes
# SHARE x 2 / P, the workers the rest in equal parts: 0.5 gives equal parts); with the
# gather queued before the worker's share, 0.53 to 0.74 measured no faster on
# 784-100-10 at B = 256 (NOTES.md)
SHARE = 0.5
# Adam's vector is split when it has at least this many entries
ADAM_SPLIT_MIN = 1 << 15


def _disabled() -> bool:
    return os.environ.get("CHAINRULE_PIPE", "1").strip().lower() in ("0", "false", "no",
                                                                     "off")


def _forced_workers() -> int | None:
    """CHAINRULE_PIPE_WORKERS as a count >= 0, or None where it is unset or not a
    number."""
    v = os.environ.get("CHAINRULE_PIPE_WORKERS", "").strip()
    try:
        return max(0, int(v)) if v else None
    except ValueError:
        return None


class Pipe:
    """The worker threads of one ``fit`` run (``n_workers`` of them); ``close`` ends them.

    >>> import numpy as np
    >>> pipe = open_pipe()
    >>> a, b = np.ones((256, 64), np.float32), np.ones((64, 100), np.float32)
    >>> c = np.empty((256, 100), np.float32)
    >>> done = pipe is not None and pipe.matmul(a, b, c)
    >>> bool((c == 64).all()) if done else True
    True
    >>> pipe is None or pipe.close()
    True
    """

    def __init__(self, k: Any, n_workers: int = 1) -> None:
        self._k = k
        self.n_workers = n_workers
        self._pending: tuple[Any, ...] | None = None   # a gather to post after a product
        self._held: Any = None                        # the gather's arrays, kept alive
        self.open = True

    # ------------------------------------------------------------------ the gather
    def prefetch(self, X: np.ndarray, idx: np.ndarray, out: np.ndarray) -> None:
        """Gather ``X[idx]`` into ``out`` on worker 0, posted after the next product
        (the first layer's, which reads the current batch); ``wait`` before reading
        ``out``. X and out are C-contiguous rows of one dtype, idx int64; they are
        checked when the gather is posted (ValueError)."""
        self._pending = (X, idx, out)

    def _post_pending(self) -> None:
        p = self._pending
        if p is not None:
            self._pending = None
            if self._held is not None:
                # an earlier gather may still run: tasks posted between two waits may run
                # at once (whoever claims each first), so it must end before this one,
                # which may write the same rows, starts, and its arrays live until then
                self._drain()
            self._held = p                            # alive until the next wait
            self._k.pipe_gather_arrays(*p)

    def _drain(self) -> None:
        ok = self._k.pipe_wait()
        self._held = None
        if not ok:
            raise IndexError("Pipe: a row index of the gather is out of range")

    def wait(self) -> None:
        """Post a gather still pending, and wait until every posted task is done."""
        self._post_pending()
        self._drain()

    # ------------------------------------------------------------------ products
    def matmul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray, alpha: float = 1.0,
               beta: float = 0.0) -> bool:
        """``out = alpha a @ b + beta out`` split over the threads; False (nothing
        done) where it does not apply: not 2-D, not one float dtype, an operand with
        neither its rows nor its columns contiguous, ``out`` without contiguous rows or
        overlapping an operand, or too small (``_kernels.pipe_matmul`` checks all this)."""
        if not self._k.pipe_matmul(a, b, out, alpha, beta, SPLIT_MIN, MIN_ROWS, SHARE):
            return False
        self._held = None                             # every task is done
        self._post_pending()
        return True

    # ------------------------------------------------------------------ Adam
    def adam(self, theta: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
             beta1: float, beta2: float, alpha_t: float, eps_t: float) -> bool:
        """The fused Adam step (``_kernels.adam``) with parts of Theta on the workers;
        the arrays are the ones ``_native.fused_ok`` accepted. False where Theta is
        small."""
        if theta.shape[0] < ADAM_SPLIT_MIN:
            return False
        self._post_pending()
        # worker 0's part waits behind a gather still running, or the main thread takes it
        self._k.pipe_adam(theta, grad, m, v, beta1, beta2, alpha_t, eps_t,
                          theta.dtype == np.float64)
        self._held = None
        return True

    def close(self) -> bool:
        """Finish every task and end the worker threads."""
        if self.open:
            self.open = False
            self._pending = None
            self._k.pipe_close()
            self._k.pipe_wait()      # clears a bad-index flag nobody read
            self._held = None
        return True


def splits(sizes: Any, batch_size: int) -> bool:
    """Whether some product of a batch through a network of ``sizes`` is large enough
    for the pipe to split it."""
    return batch_size >= 2 * MIN_ROWS and any(
        batch_size * a * b >= SPLIT_MIN for a, b in zip(sizes, sizes[1:]))


def for_run(sizes: Any, batch_size: int, threads: int) -> Pipe | None:
    """The pipe for a run of ``threads`` threads (``threads.for_run``), or None where it
    does not apply: fewer than two threads, no product of the batch large enough to
    split, or no pipe here. Its workers: threads - 1, at most the parts the batch splits
    into - 1, or ``CHAINRULE_PIPE_WORKERS``. (Adam split alone, at B = 10 on MNIST, is
    slower: 0.68 -> 0.80 s/epoch, the worker spinning beside a step of small serial
    calls.)"""
    if _disabled() or not splits(sizes, batch_size):
        return None
    forced = _forced_workers()
    n = forced if forced is not None else min(threads - 1, batch_size // MIN_ROWS - 1)
    return open_pipe(n) if n >= 1 else None


def open_pipe(n_workers: int = 1) -> Pipe | None:
    """Start ``n_workers`` worker threads, or None where the pipe can't run here (no
    kernels, no BLAS gemm, ``CHAINRULE_PIPE=0``, or another run holds it)."""
    if _disabled():
        return None
    k = _native.kernels()
    if k is None or not hasattr(k, "pipe_open"):
        return None
    addr = _blas.gemm_addresses()
    if addr is None or not k.pipe_open(*addr, int(n_workers)):
        return None
    return Pipe(k, int(n_workers))
