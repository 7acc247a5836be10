"""The process an MPI launcher starts for each rank of ``chainrule train``: it forks the
rank and stands guard over it, so that a rank killed outright still ends the job with
one line of chainrule's.

Why: a rank killed by a signal it cannot catch (SIGKILL: the kernel's OOM killer,
``kill -9``) says nothing, and MPICH's hydra answers its death by sending SIGKILL to the
process group of every other rank at once (measured: 0.5 ms later, no SIGTERM first), so
no rank is left to explain: the user saw hydra's "BAD TERMINATION" banner and exit
status 9. Here the process the launcher starts (and watches) forks before MPI is
initialised; the child is the rank: it initialises MPI, trains and writes; the parent
only waits for it (blocked in ``waitpid``: no CPU, nothing between the ranks). It keeps
its copy of the PMI socket, so the launcher does not see the rank die before the parent
has spoken (hydra ends a job when a rank's PMI socket closes unfinalised). If the
child is killed by a signal, the parent prints chainrule's one-line error and dies of the
same signal: for the launcher, the rank itself killed, so it ends the others (hydra:
within a millisecond; ``mpiexec`` then exits with 9 and its banner on stdout). An exit
with status 128 + the signal instead left hydra, in about one job of ten, waiting with
the other ranks alive (measured; 0 of 30 since).

Standard library only, and nothing heavy imported before the fork (not NumPy, whose
OpenBLAS starts a thread, nor mpi4py, which would initialise MPI in the wrong process).
The child dies with its parent (``PR_SET_PDEATHSIG``), so killing the launched process
still ends the rank.
"""

from __future__ import annotations

import mmap
import os
import signal
import struct
import sys
from typing import Any

__all__ = ["supervise", "set_phase", "launched_size", "STARTING", "TRAINING", "FINISHED"]

# what MPI launchers put in each rank's environment: MPICH's hydra and Slurm's PMI
# (PMI_SIZE), Open MPI, MVAPICH, srun's own step size. Only whether to fork and to ask
# for MPI at all depends on these; a rank's number and the size come from MPI.
_LAUNCH_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE",
                "SLURM_STEP_NUM_TASKS")

STARTING, TRAINING, FINISHED = 0, 1, 2
_FORMAT = "iii"                 # rank (-1 while unknown), size, phase
_STATE: mmap.mmap | None = None  # the page the child writes and the parent reads
# signals the parent passes on to the child (a launcher that signals the process it
# started, not its process group); SIGINT is not among them: hydra and srun send Ctrl-C
# to the whole process group, and a second one would interrupt the child's clean abort
_FORWARD = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def launched_size(environ: Any = None) -> int:
    """How many processes an MPI launcher (mpiexec, srun) started with this one; 1 when
    none did. Reads the environment only: mpi4py is not imported.

    >>> launched_size({}), launched_size({"PMI_SIZE": "4"})
    (1, 4)
    """
    env = os.environ if environ is None else environ
    for k in _LAUNCH_VARS:
        v = str(env.get(k, ""))
        if v.isdigit() and int(v) > 0:
            return int(v)
    return 1


def set_phase(phase: int, rank: int | None = None, size: int | None = None) -> None:
    """Tell the watching parent where this rank is (and, once MPI says, its rank and the
    communicator's size). A no-op in a process no one watches."""
    if _STATE is None:
        return
    r, n, _ = struct.unpack(_FORMAT, _STATE[:12])
    _STATE[:12] = struct.pack(_FORMAT, r if rank is None else rank,
                              n if size is None else size, phase)


def supervise(launched: int) -> None:
    """Under a launcher that started ``launched`` > 1 processes: fork. Returns in the
    child, the rank; the parent waits for it and exits with its status (never returns).
    Does nothing with one process, where fork is missing, or in a watched child."""
    global _STATE
    if launched <= 1 or _STATE is not None or not hasattr(os, "fork"):
        return
    state = mmap.mmap(-1, mmap.PAGESIZE)  # anonymous and shared across the fork
    state[:12] = struct.pack(_FORMAT, -1, launched, STARTING)
    for f in (sys.stdout, sys.stderr):
        f.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        _STATE = state
        _die_with(parent)
        return
    got: list[int] = []

    def forward(sig: int, _frame: object) -> None:
        got.append(sig)
        if sig != signal.SIGINT:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    for name in (*_FORWARD, "SIGINT"):
        signal.signal(getattr(signal, name), forward)
    _, status = os.waitpid(pid, 0)      # retried after a handler (PEP 475)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in got:              # not the launcher or the user stopping the job
            print(killed_line(sig, *struct.unpack(_FORMAT, state[:12]), pid=pid),
                  file=sys.stderr, flush=True)
        # die of the same signal: the launcher then sees what it would have seen of the
        # rank itself (an exit status of 128 + sig instead left hydra, now and then,
        # waiting with the other ranks alive)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)             # a signal that does not end a process
    os._exit(os.waitstatus_to_exitcode(status))


def killed_line(sig: int, rank: int, size: int, phase: int, pid: int = 0) -> str:
    """The one line for a rank killed by ``sig``.

    >>> print(killed_line(9, 1, 2, TRAINING))  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    chainrule: error: rank 1 of 2 was killed by signal 9 (SIGKILL) during training; the job
    was stopped and no model was written. Check that rank's memory and time limits ...
    """
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = "an unknown signal"
    who = f"rank {rank} of {size}" if rank >= 0 else f"a rank (process {pid}) of {size}"
    if phase == FINISHED:
        what = ("after training; the job was stopped, and the model may have been "
                "written (atomically: whole or not at all): check it")
    else:
        what = (f"{'during training' if phase == TRAINING else 'while starting'}; the "
                f"job was stopped and no model was written")
    return (f"chainrule: error: {who} was killed by signal {sig} ({name}) {what}. "
            f"Check that rank's memory and time limits (the OOM killer sends SIGKILL: "
            f"see dmesg or the scheduler's log), then rerun (--resume a --checkpoint to "
            f"go on from its last epoch)")


def _die_with(parent: int) -> None:
    """SIGKILL this process when its parent dies (Linux; elsewhere nothing)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:          # the parent died before prctl
        os._exit(1)
