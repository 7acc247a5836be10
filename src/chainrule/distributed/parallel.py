"""Synchronous data-parallel training over MPI: every rank holds the whole network, takes a
slice of every global batch, and all ranks take the same step with the summed gradient.

The mathematics is one process's. A global batch of B examples (one permutation of the
shared seed, ``chainrule.data.batching.epoch_order``) is cut into N contiguous slices,
rank r taking n_r of them; rank r's gradient is the mean over its slice, g_r, so

    grad C = (1/B) sum over the batch = sum_r (n_r / B) g_r

is one scaling and one Allreduce (sum) of the Theta-shaped vector, in place, through
mpi4py's buffer interface (no pickling). Each rank then takes the same optimiser step on
the same Theta. The losses, the accuracy and the validation score are sums over examples,
reduced the same way. Only the order of the floating-point sums differs from one process.

A job fails whole: a rank that raises sends its one-line error to rank 0, which prints
it and aborts every rank (``guard``); rank 0 never blocks on a collective without
watching for that message. A rank killed outright cannot say anything; under
``chainrule train`` the process the launcher started for it (``supervisor``) sees it die,
prints the one line and exits, and the launcher ends the others (MPICH's hydra: at once).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .supervisor import FINISHED, TRAINING, launched_size, set_phase

__all__ = ["DataParallel", "AllreduceMean", "guard", "world", "launched_size",
           "ranks_per_node"]

_ERROR_TAG = 17017
_ERROR_BYTES = 4096


def ranks_per_node(size: int, environ: Any = None) -> int:
    """How many ranks share this node, from the launcher's environment (no collective, so
    no rank can block on one that failed); ``size`` where the launcher does not say.
    Hydra says MPI_LOCALNRANKS; Open MPI its LOCAL_SIZE; srun (which sets none of those)
    SLURM_STEP_TASKS_PER_NODE, read where every node has the same count.

    >>> ranks_per_node(8, {"MPI_LOCALNRANKS": "2"}), ranks_per_node(8, {})
    (2, 8)
    >>> [ranks_per_node(8, {"SLURM_STEP_TASKS_PER_NODE": v}) for v in ("1(x8)", "3,2")]
    [1, 8]
    """
    env = os.environ if environ is None else environ
    for k in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCAL_NRANKS"):
        v = str(env.get(k, ""))
        if v.isdigit() and int(v) > 0:
            return int(v)
    v = str(env.get("SLURM_STEP_TASKS_PER_NODE", "")).split("(x")[0]
    if v.isdigit() and int(v) > 0 and "," not in str(env["SLURM_STEP_TASKS_PER_NODE"]):
        return int(v)
    return size


def world() -> Any:
    """``MPI.COMM_WORLD`` when this process is one of several started by an MPI launcher,
    else None (then mpi4py is never imported)."""
    n = launched_size()
    if n <= 1:
        return None
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"this process is one of {n} started by an MPI launcher, but "
                          f"mpi4py is not installed: pip install 'chainrule[mpi]'") from exc
    return MPI.COMM_WORLD


def _split(n: int, size: int, rank: int) -> tuple[int, int]:
    """(start, count) of rank's contiguous share of n items, the first n % size ranks one
    more (np.array_split's rule)."""
    q, r = divmod(n, size)
    return rank * q + min(rank, r), q + (rank < r)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    return " ".join(str(exc).split()) or type(exc).__name__


class DataParallel:
    """One MPI communicator's view of a training run: which rows of each batch are this
    rank's, the gradient hook, and sum-reductions that watch for a failed rank.

    ``comm`` is an mpi4py communicator (``MPI.COMM_WORLD``); one of size 1 works too.
    """

    def __init__(self, comm: Any) -> None:
        from mpi4py import MPI

        # No collective call here or anywhere rank 0 does not watch for errors (wait).
        self.MPI, self.comm = MPI, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.fractions = np.ones(0)
        self._errbuf, self._err = _error_channel(comm) if self.rank == 0 and self.size > 1 \
            else (bytearray(), None)
        self.net: Any = None

    # ------------------------------------------------------------------ the Trainer
    def attach(self, trainer: Any) -> DataParallel:
        """Set up a Trainer for this communicator: the Allreduce hook first (clipping and
        other hooks then see the global gradient), the thread count shared among the
        ranks of a node. Returns self."""
        self.net = trainer.net
        trainer.hooks.insert(0, AllreduceMean(self))
        if trainer.blas_threads == "auto":
            from ..engine.threads import usable_cores

            local = ranks_per_node(self.size)
            trainer.blas_threads = max(1, usable_cores() // local) if local > 1 else "auto"
        return self

    def callbacks(self, callbacks: Sequence[Any]) -> list[Any]:
        """The callbacks this rank runs: all of them on rank 0; elsewhere all but those
        that print or write (``rank_zero_only = True``: the progress bar, checkpoints)."""
        return [c for c in callbacks if self.rank == 0 or not _rank_zero_only(c)]

    def shard(self, order: np.ndarray, batch_size: int) -> tuple[np.ndarray, int]:
        """This rank's slice of every global batch of ``order`` (the epoch's examples in
        batches of ``batch_size``), as one index array cut into batches of the returned
        size; ``fractions[b]`` is the share n_r / B of batch b that the hook weights by.

        >>> dp = DataParallel.__new__(DataParallel); dp.rank, dp.size = 1, 3  # no MPI
        >>> idx, n = dp.shard(np.arange(11), 4)  # batches 0-3, 4-7, 8-10 (ragged)
        >>> idx.tolist(), n, dp.fractions.round(3).tolist()
        ([2, 6, 9], 1, [0.25, 0.25, 0.333])
        """
        N, B, m = self.size, batch_size, order.shape[0]
        full, last = divmod(m, B)
        if B < N or 0 < last < N:
            what = f"batch size {B}" if B < N else f"last batch of each epoch ({last})"
            raise ValueError(f"the {what} is smaller than the {N} ranks, so a rank would "
                             f"have no examples: choose a batch size of at least {N} that "
                             f"leaves no remainder below {N} of the {m} examples (or "
                             f"drop_last)")
        lo, n = _split(B, N, self.rank)
        parts = [order[:full * B].reshape(full, B)[:, lo:lo + n].ravel()]
        fr = [n / B] * full
        if last:
            lo2, n2 = _split(last, N, self.rank)
            parts.append(order[full * B:][lo2:lo2 + n2])
            fr.append(n2 / last)
        self.fractions = np.array(fr)
        return np.concatenate(parts), n

    # ------------------------------------------------------------------ reductions
    def wait(self, req: Any) -> None:
        """Wait for a request; rank 0 meanwhile watches for another rank's error."""
        if self._err is None:
            req.Wait()
            return
        while not req.Test():
            self.check_peers()

    def check_peers(self) -> None:
        """On rank 0: if another rank reported an error, print it in one line and end
        the job."""
        st = self.MPI.Status()
        # a request already completed tests true with an empty status (source < 0): its
        # message was taken, by a check that a KeyboardInterrupt then cut short
        if self._err is not None and not _ENDING and self._err.Test(st) \
                and st.Get_source() >= 0:
            _ending()
            msg = bytes(self._errbuf[:st.Get_count(self.MPI.BYTE)]).decode(errors="replace")
            print(f"chainrule: error: rank {st.Get_source()} of {self.size}: {msg}; the job "
                  f"was stopped and no model was written", file=sys.stderr, flush=True)
            self.abort()

    def allreduce(self, buf: np.ndarray) -> np.ndarray:
        """buf <- the sum of every rank's buf, in place (mpi4py's buffer interface)."""
        if self.size > 1:
            self.wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM))
        return buf

    def sum_epoch(self, loss_sum: float, correct: int, state: Any) -> tuple[float, int]:
        """An epoch's summed loss and hits over all ranks; ``state.seen`` becomes the
        number of examples all ranks saw."""
        v = self.allreduce(np.array([loss_sum, correct, state.seen], np.float64))
        state.seen = int(v[2])
        return float(v[0]), int(v[1])

    def score(self, X: np.ndarray, Y: np.ndarray) -> tuple[float, float]:
        """(cost, accuracy) of the network on (X, Y), each rank scoring a contiguous
        share of the rows (``Network.score``), reduced."""
        lo, n = _split(X.shape[0], self.size, self.rank)
        c, a = self.net.score(X[lo:lo + n], Y[lo:lo + n]) if n else (0.0, 0.0)
        v = self.allreduce(np.array([c * n, a * n], np.float64))
        return float(v[0] / X.shape[0]), float(v[1] / X.shape[0])

    def fail(self, exc: BaseException) -> None:
        """End the whole job because of ``exc`` on this rank: rank 0 prints it; any other
        rank sends it to rank 0 (which prints it), then, should rank 0 not be listening,
        prints it itself. Does not return."""
        msg = _one_line(exc)
        if _ENDING:                     # already ending (the launcher's signal, say)
            self.comm.Abort(1)
        if self.rank == 0 or self.size == 1:
            self.check_peers()          # an error that came first wins
            print(f"chainrule: error: {msg}", file=sys.stderr, flush=True)
        else:
            import time

            data = msg.encode()[:_ERROR_BYTES]
            req = self.comm.Issend([data, self.MPI.BYTE], dest=0, tag=_ERROR_TAG)
            end = time.monotonic() + 3.0
            while not req.Test() and time.monotonic() < end:
                time.sleep(0.001)
            time.sleep(3.0)             # rank 0 prints and aborts the job meanwhile
            print(f"chainrule: error: rank {self.rank} of {self.size}: {msg}",
                  file=sys.stderr, flush=True)
        self.abort()

    def abort(self) -> None:
        """End every rank (exit status 1), after a moment in which the launcher forwards
        what this rank printed (it drops a killed rank's unread output)."""
        import time

        _ending()
        time.sleep(0.3)
        self.comm.Abort(1)


_CHANNELS: dict[int, tuple[bytearray, Any]] = {}
_ENDING = False


def _ending() -> None:
    global _ENDING
    _ENDING = True


def _error_channel(comm: Any) -> tuple[bytearray, Any]:
    """Rank 0's one receive for the other ranks' errors, posted once per communicator."""
    from mpi4py import MPI

    key = comm.py2f()
    if not _CHANNELS:
        import atexit

        atexit.register(_close_channels)  # after mpi4py's own: runs before MPI_Finalize
    if key not in _CHANNELS:
        buf = bytearray(_ERROR_BYTES)
        _CHANNELS[key] = buf, comm.Irecv([buf, MPI.BYTE], source=MPI.ANY_SOURCE,
                                         tag=_ERROR_TAG)
    return _CHANNELS[key]


def _close_channels() -> None:
    """Cancel the receives still posted, so MPI finalises without pending requests."""
    for _, req in _CHANNELS.values():
        if req:
            req.Cancel()
            req.Wait()
    _CHANNELS.clear()


def _rank_zero_only(c: Any) -> bool:
    return bool(getattr(getattr(c, "obj", c), "rank_zero_only", False))


class AllreduceMean:
    """The gradient hook of data-parallel training: ``grad <- sum_r (n_r / B) grad_r``,
    one Allreduce of the Theta-shaped gradient per step (module docstring)."""

    def __init__(self, dp: DataParallel) -> None:
        self.dp = dp

    def __call__(self, grad: np.ndarray, state: Any) -> None:
        grad *= self.dp.fractions[state.batch]
        self.dp.allreduce(grad)


@contextmanager
def guard(comm: Any) -> Iterator[DataParallel | None]:
    """Run a job's body so that it fails whole: an exception on any rank ends every rank
    with one line from rank 0 (exit status 1). With ``comm`` None, a plain block."""
    if comm is None or comm.Get_size() == 1:
        yield None
        return
    dp = DataParallel(comm)
    set_phase(TRAINING, dp.rank, dp.size)    # for a watching supervisor
    try:
        yield dp
        set_phase(FINISHED)
    except (Exception, KeyboardInterrupt) as exc:
        dp.fail(exc)
