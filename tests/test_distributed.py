"""Data-parallel training over MPI (chainrule.distributed) and data sets larger than
memory (chainrule.data.memmap): issue 17.

The MPI tests launch ``mpiexec`` (pip's ``mpich``) with 1, 2 and 3 ranks on tiny data,
each under a timeout: three ranks on two cores make MPICH busy-poll. They skip when
mpi4py or mpiexec is missing (``pip install mpi4py mpich``, in the test extra), and fail
instead with CHAINRULE_REQUIRE_MPI=1 (CI).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.data import DataError
from chainrule.data.memmap import convert_csv, open_array, open_table
from chainrule.distributed import DataParallel, launched_size
from chainrule.distributed.parallel import ranks_per_node
from chainrule.io import load_model

BIN = Path(sys.executable).parent


def _mpiexec() -> str | None:
    exe = BIN / "mpiexec"
    if exe.exists():
        return str(exe)
    return shutil.which("mpiexec")


def _have_mpi() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return _mpiexec() is not None


if os.environ.get("CHAINRULE_REQUIRE_MPI") == "1" and not _have_mpi():
    raise RuntimeError("CHAINRULE_REQUIRE_MPI=1 but mpi4py or mpiexec is missing: "
                       "pip install mpi4py mpich (the test extra has both)")
needs_mpi = pytest.mark.skipif(not _have_mpi(), reason="mpi4py and mpiexec are not "
                               "installed (pip install mpi4py mpich)")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "OMPI_", "MPI_", "SLURM_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(n: int, args: list[str], cwd: Path, timeout: float = 90
         ) -> subprocess.CompletedProcess[str]:
    """``mpiexec -n n python args...`` in cwd, with a timeout (a hung job fails the test
    rather than the suite)."""
    cmd = [_mpiexec() or "mpiexec", "-n", str(n), sys.executable, *args]
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def _train(n: int, cwd: Path, *args: str, timeout: float = 90
           ) -> subprocess.CompletedProcess[str]:
    return _run(n, ["-c", "import sys; from chainrule.cli import main; "
                          "sys.exit(main(sys.argv[1:]))", "train", *args], cwd, timeout)


def _rel(a: Path, b: Path) -> float:
    ta, tb = load_model(a).theta, load_model(b).theta
    return float(np.abs(ta - tb).max() / np.abs(ta).max())


# --------------------------------------------------------------------------- no MPI needed

def test_import_chainrule_and_plain_fit_never_import_mpi4py():
    code = ("import sys, numpy as np, chainrule; from chainrule.nn import Network; "
            "n = Network.from_sizes([2, 3, 2], seed=0); "
            "n.fit(np.ones((8, 2)), np.arange(8) % 2, epochs=1, verbose=0); "
            "import chainrule.distributed; print('mpi4py' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_env(), timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_launcher_environment():
    assert launched_size({}) == 1
    assert launched_size({"PMI_SIZE": "3"}) == 3
    assert launched_size({"OMPI_COMM_WORLD_SIZE": "2"}) == 2
    assert ranks_per_node(4, {"MPI_LOCALNRANKS": "2"}) == 2
    assert ranks_per_node(8, {"SLURM_STEP_TASKS_PER_NODE": "2(x4)"}) == 2   # srun
    assert ranks_per_node(3, {"SLURM_STEP_TASKS_PER_NODE": "2,1"}) == 3     # uneven: all


SUPERVISED = """
import os, signal, sys, time
from chainrule.distributed.supervisor import TRAINING, set_phase, supervise
supervise(2)
print("child", os.getpid(), os.getppid(), "numpy" in sys.modules, flush=True)
set_phase(TRAINING, 1, 2)
how = sys.argv[1]
if how == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
if how == "wait":
    time.sleep(30)
sys.exit(3)
"""


@pytest.mark.parametrize("how", ["kill", "exit", "term"])
def test_the_supervisor_reports_a_killed_child_and_passes_the_rest_through(tmp_path, how):
    """No MPI needed: the process forks, the child is the rank; the parent prints the one
    line only for a child killed by a signal it did not itself receive."""
    (tmp_path / "s.py").write_text(SUPERVISED)
    job = subprocess.Popen([sys.executable, "s.py", "wait" if how == "term" else how],
                           cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    child = job.stdout.readline().split()
    assert int(child[2]) == job.pid and child[3] == "False"   # NumPy not loaded yet
    if how == "term":
        job.send_signal(signal.SIGTERM)            # the launcher stopping the job
    out, err = job.communicate(timeout=60)
    # the parent dies of its child's signal (the launcher sees the rank killed)
    assert job.returncode == {"kill": -9, "exit": 3, "term": -15}[how], err
    if how == "kill":
        assert err.startswith("chainrule: error: rank 1 of 2 was killed by signal 9 "
                              "(SIGKILL) during training;") and err.count("\n") == 1
    else:
        assert err == ""
    assert not Path(f"/proc/{child[1]}").exists() or \
        Path(f"/proc/{child[1]}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("m,B,N", [(10, 4, 2), (11, 4, 3), (12, 4, 3), (103, 10, 3),
                                   (64, 64, 2), (7, 7, 3)])
def test_shards_cover_each_batch_once_and_weights_sum_to_one(m, B, N):
    order = np.random.default_rng(0).permutation(m)
    pieces, fracs = [], []
    for r in range(N):
        dp = DataParallel.__new__(DataParallel)
        dp.rank, dp.size = r, N
        idx, n = dp.shard(order, B)
        pieces.append([idx[i:i + n] for i in range(0, len(idx), n)])
        fracs.append(dp.fractions)
    steps = -(-m // B)
    for b in range(steps):
        got = np.concatenate([p[b] for p in pieces])
        assert got.tolist() == order[b * B:(b + 1) * B].tolist()  # rank order = batch order
        assert abs(sum(f[b] for f in fracs) - 1.0) < 1e-15


def test_shard_refuses_a_rank_without_examples():
    dp = DataParallel.__new__(DataParallel)
    dp.rank, dp.size = 0, 3
    with pytest.raises(ValueError, match="smaller than the 3 ranks"):
        dp.shard(np.arange(10), 4)        # last batch of 2 for 3 ranks
    with pytest.raises(ValueError, match="batch size 2"):
        dp.shard(np.arange(10), 2)


# --------------------------------------------------------------------------- memory maps

def test_npy_npz_and_idx_are_mapped_not_read(tmp_path):
    A = np.arange(24, dtype=np.float32).reshape(6, 4)
    np.save(tmp_path / "a.npy", A)
    np.savez(tmp_path / "a.npz", X=A, y=np.arange(6))
    for a in (open_array(tmp_path / "a.npy"), open_array(tmp_path / "a.npz", "X")):
        assert isinstance(a, np.memmap) and a.dtype == np.float32
        assert np.array_equal(a, A)
    assert open_array(tmp_path / "a.npz", "y").tolist() == list(range(6))
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    (tmp_path / "i-ubyte").write_bytes(b"\0\0\x08\x03" + np.array([2, 3, 3], ">u4")
                                       .tobytes() + img.tobytes())
    m = open_array(tmp_path / "i-ubyte")
    assert isinstance(m, np.memmap) and np.array_equal(m, img)


def test_mapped_files_are_checked_before_mapping(tmp_path):
    np.savez_compressed(tmp_path / "c.npz", X=np.ones((3, 3)))
    with pytest.raises(DataError, match="compressed"):
        open_array(tmp_path / "c.npz", "X")
    np.save(tmp_path / "t.npy", np.ones((100, 10)))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:-80])
    with pytest.raises(DataError, match="truncated"):
        open_array(tmp_path / "t.npy")
    (tmp_path / "i.idx").write_bytes(b"\0\0\x08\x02" + np.array([1000, 1000], ">u4")
                                     .tobytes())
    with pytest.raises(DataError, match="truncated"):
        open_array(tmp_path / "i.idx")
    with pytest.raises(DataError, match="not a .npy"):
        open_array(tmp_path / "x.bin") if (tmp_path / "x.bin").write_bytes(b"hello!") \
            else None
    with zipfile.ZipFile(tmp_path / "e.npz", "w") as z:
        z.writestr("X.npy", b"nonsense")
    with pytest.raises(DataError):
        open_array(tmp_path / "e.npz", "X")
    os.mkfifo(tmp_path / "fifo.npy")
    with pytest.raises(DataError, match="not a regular|FIFO|fifo|named pipe"):
        open_array(tmp_path / "fifo.npy")


def test_convert_csv_streams_in_blocks_and_the_table_maps(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1001, 3)).round(3)
    y = rng.integers(0, 3, 1001)
    lines = ["a,label,b,c"] + [f"{r[0]},{t},{r[1]},{r[2]}" for r, t in zip(X, y)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    assert convert_csv(tmp_path / "d.csv", tmp_path / "d.npy", "label", block=100) == \
        (1001, 4)
    Xm, ym = open_table(tmp_path / "d.npy")
    assert np.allclose(Xm, X.astype(np.float32)) and ym.tolist() == y.tolist()
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(DataError, match="line 3"):
        convert_csv(tmp_path / "bad.csv", tmp_path / "bad.npy")
    assert not (tmp_path / "bad.npy").exists()
    assert not list(tmp_path.glob(".*tmp"))


def test_cli_data_convert_then_train_from_the_mapped_table(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 4))
    y = (X[:, 0] > 0).astype(int)
    (tmp_path / "d.csv").write_text("f0,f1,f2,f3,y\n" + "\n".join(
        ",".join(f"{v:.4f}" for v in r) + f",{t}" for r, t in zip(X, y)) + "\n")
    assert main(["data", "convert", str(tmp_path / "d.csv"), str(tmp_path / "d.npy")]) == 0
    assert "400 rows x 5 columns" in capsys.readouterr().out
    out = tmp_path / "m.safetensors"
    assert main(["train", "--dataset", str(tmp_path / "d.npy"), "--epochs", "20",
                 "--quiet", "--out", str(out)]) == 0
    acc = float(capsys.readouterr().out.split("test accuracy ")[1].split("%")[0])
    assert acc > 90 and out.exists()


# --------------------------------------------------------------------------- MPI

API = """
import sys, numpy as np
from mpi4py import MPI
from chainrule.nn import Network
comm = MPI.COMM_WORLD
opt, clip = sys.argv[1], float(sys.argv[2])
rng = np.random.default_rng(0)
X = rng.normal(size=(103, 5)); y = (X[:, 0] + X[:, 1] > 0).astype(int)
kw = dict(epochs=3, batch_size=10, optimizer=opt, verbose=1, clip_norm=clip or None,
          validation_data=(X[:21], y[:21]))
net = Network.from_sizes([5, 8, 3], dtype=np.float64, seed=1)
net.fit(X, y, comm=comm, **kw)
ref = Network.from_sizes([5, 8, 3], dtype=np.float64, seed=1)
ref.fit(X, y, **dict(kw, verbose=0))
rel = np.abs(net.theta - ref.theta).max() / np.abs(ref.theta).max()
thetas = comm.gather(net.theta.copy())
hist = {k: np.allclose(net.history_[k], ref.history_[k], rtol=1e-12)
        for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
if comm.rank == 0:
    same = all(np.array_equal(thetas[0], t) for t in thetas)
    print("RESULT", rel, same, all(hist.values()))
"""


@needs_mpi
@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("opt,clip", [("adam", 0.0), ("sgd", 0.5)])
def test_fit_with_comm_reaches_one_process_weights(tmp_path, n, opt, clip):
    (tmp_path / "api.py").write_text(API)
    r = _run(n, ["api.py", opt, str(clip)], tmp_path)
    assert r.returncode == 0, r.stderr
    _, rel, same, hist = next(ln for ln in r.stdout.splitlines()
                              if ln.startswith("RESULT")).split()
    assert float(rel) < 1e-9 and same == "True" and hist == "True"
    assert r.stderr.count("epoch 3/3") == 1          # only rank 0 prints progress


@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_cli_train_on_n_ranks_matches_one_process(tmp_path, n):
    common = ["--dtype", "float64", "--epochs", "3", "--batch-size", "32", "--quiet"]
    assert main(["train", *common, "--out", str(tmp_path / "one.safetensors")]) == 0
    r = _train(n, tmp_path, *common, "--out", "many.safetensors")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("model saved") == 1 and r.stdout.count("test accuracy") == 1
    assert _rel(tmp_path / "one.safetensors", tmp_path / "many.safetensors") < 1e-9


FAULT = """
import os, signal, sys, threading
from chainrule.cli import main
rank = int(os.environ["PMI_RANK"])
mode = sys.argv[1]
args = ["train", "--epochs", "1000", "--quiet", "--out", "model.safetensors"]
if mode == "kill" and rank == 1:   # kills the launched process, which watches the rank
    threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
if mode == "raise" and rank == 1:
    args += ["--dataset", "bad.npy"]      # this rank's copy of the input is damaged
if mode == "raise0" and rank == 0:
    import chainrule.nn.network as nw
    nw.Network.score = lambda *a, **k: (_ for _ in ()).throw(ValueError("disk on fire"))
sys.exit(main(args))
"""


@needs_mpi
@pytest.mark.parametrize("mode", ["raise", "raise0", "kill"])
def test_a_failed_rank_ends_the_job_fast_and_writes_no_model(tmp_path, mode):
    (tmp_path / "fault.py").write_text(FAULT)
    (tmp_path / "bad.npy").write_bytes(b"garbage")
    (tmp_path / "model.safetensors").write_bytes(b"the old model")
    t = time.monotonic()
    r = _run(2, ["fault.py", mode], tmp_path, timeout=60)
    took = time.monotonic() - t
    assert r.returncode != 0 and took < 10, (took, r.stderr)
    assert (tmp_path / "model.safetensors").read_bytes() == b"the old model"
    ours = [ln for ln in r.stderr.splitlines() if ln.startswith("chainrule:")]
    if mode == "raise":
        assert r.returncode == 1
        assert ours == [ln for ln in ours if "rank 1 of 2: bad.npy: not a .npy" in ln]
        assert len(ours) == 1 and "no model was written" in ours[0]
    elif mode == "raise0":
        assert r.returncode == 1 and ours == ["chainrule: error: disk on fire"]
    else:   # the process the launcher started (the supervisor) killed: hydra reports it
        assert r.returncode == 9 and "Killed" in r.stdout + r.stderr


def _descendants(root: int) -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, environment) of every process below ``root`` (from /proc)."""
    table = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
                env = Path(f"/proc/{d}/environ").read_bytes()
            except OSError:
                continue
            table[int(d)] = (int(stat.rsplit(")", 1)[1].split()[1]), env)
    below, front = {}, {root}
    while front:
        front = {p for p, (pp, _) in table.items() if pp in front}
        below.update({p: table[p] for p in front})
    return below


def _running(pids: set[int], within: float) -> list[str]:
    """Those of ``pids`` still running (not gone, not a zombie) after up to ``within`` s
    (a process killed with SIGKILL takes a moment to go), each as "pid state cmdline"."""
    end = time.monotonic() + within
    while True:
        left = []
        for p in pids:
            try:
                state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
                cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if state not in "ZX":
                left.append(f"{p} {state} {cmd.decode(errors='replace')}")
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.05)


def _rank_process(root: int, rank: int) -> int:
    """The process that is MPI rank ``rank`` of the job under mpiexec ``root``: the one
    with PMI_RANK=rank whose parent (the process the launcher started, which watches it)
    has it too."""
    key = f"\0PMI_RANK={rank}\0".encode()
    procs = _descendants(root)
    mine = {p for p, (_, env) in procs.items() if key in b"\0" + env}
    ranks = [p for p in mine if procs[p][0] in mine]
    assert len(ranks) == 1, (rank, procs.keys(), mine)
    return ranks[0]


@needs_mpi
@pytest.mark.parametrize("rank,old_model", [(1, True), (0, False)])
def test_a_killed_rank_ends_the_job_with_one_line_and_no_model(tmp_path, rank, old_model):
    """The plain command, ``mpiexec -n 2 chainrule train ...``; once the first epoch's
    checkpoint exists, one rank's process gets SIGKILL (what the OOM killer sends)."""
    exe = [str(BIN / "chainrule")] if (BIN / "chainrule").exists() else \
        [sys.executable, "-m", "chainrule"]
    model = tmp_path / "model.safetensors"
    if old_model:
        model.write_bytes(b"the old model")
    cmd = [_mpiexec() or "mpiexec", "-n", "2", *exe, "train", "--epochs", "100000",
           "--quiet", "--checkpoint", "ck.safetensors", "--out", model.name]
    t0 = time.monotonic()
    job = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        while not (tmp_path / "ck.safetensors").exists():
            assert job.poll() is None and time.monotonic() - t0 < 60, job.communicate()
            time.sleep(0.02)
        victim = _rank_process(job.pid, rank)
        started = set(_descendants(job.pid))
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        out, err = job.communicate(timeout=30)
        took = time.monotonic() - killed
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    assert job.returncode != 0 and took < 10, (job.returncode, took, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"chainrule: error: rank {rank} of 2 was killed by signal 9 "
                           f"(SIGKILL) during training; the job was stopped and no model "
                           f"was written. Check"), err
    assert [ln for ln in err.splitlines() if ln.startswith("chainrule:")] == [last]
    if old_model:
        assert model.read_bytes() == b"the old model"
    else:
        assert not model.exists()
    assert not _running(started, within=5.0)   # no rank, no supervisor left running
    print(f"killed rank {rank}: exit status {job.returncode}, ended {took:.2f} s after the "
          f"kill, {time.monotonic() - t0:.2f} s in all; stderr's last line: {last}")


STOP = """
import sys
import chainrule.io.model as io
save = io.Checkpoint.on_epoch_end
def once(self, state):
    save(self, state)
    if state.epoch == 1:
        raise RuntimeError("interrupted after epoch 2")
io.Checkpoint.on_epoch_end = once
from chainrule.cli import main
sys.exit(main(sys.argv[1:]))
"""


@needs_mpi
def test_checkpoint_from_two_ranks_resumes_on_two_exactly_and_on_one_or_three(tmp_path):
    (tmp_path / "stop.py").write_text(STOP)
    common = ["--dtype", "float64", "--batch-size", "32", "--quiet"]
    r = _train(2, tmp_path, *common, "--epochs", "4", "--out", "full.safetensors")
    assert r.returncode == 0, r.stderr
    r = _run(2, ["stop.py", "train", *common, "--epochs", "4", "--checkpoint",
                 "ck.safetensors", "--out", "never.safetensors"], tmp_path)
    assert r.returncode == 1 and "interrupted after epoch 2" in r.stderr
    assert not (tmp_path / "never.safetensors").exists()
    for n in (2, 1, 3):
        shutil.copy(tmp_path / "ck.safetensors", tmp_path / f"ck{n}.safetensors")
        r = _train(n, tmp_path, "--resume", f"ck{n}.safetensors", "--quiet",
                   "--out", f"r{n}.safetensors")
        assert r.returncode == 0, r.stderr
    full = load_model(tmp_path / "full.safetensors").theta
    assert np.array_equal(load_model(tmp_path / "r2.safetensors").theta, full)
    assert _rel(tmp_path / "full.safetensors", tmp_path / "r1.safetensors") < 1e-9
    assert _rel(tmp_path / "full.safetensors", tmp_path / "r3.safetensors") < 1e-9


MAPPED = """
import sys, numpy as np
from mpi4py import MPI
from chainrule.data.memmap import open_array
from chainrule.nn import Network
comm = MPI.COMM_WORLD
X = open_array("X.npy"); y = np.asarray(open_array("y.npy"))
touched, mapped = set(), []
net = Network.from_sizes([4, 6, 2], dtype=np.float64, seed=0)
batches = net.engine.batches
def spy(X_, Y_, order, B):           # the rows each minibatch gathers, and from what
    mapped.append(np.shares_memory(X_, X))
    for xb, yb, idx in batches(X_, Y_, order, B):
        touched.update(int(i) for i in idx)
        yield xb, yb, idx
net.engine.batches = spy
net.fit(X, y, epochs=1, batch_size=20, verbose=0, comm=comm)
sets = comm.gather(touched)
if comm.rank == 0:
    disjoint = all(not (sets[i] & sets[j]) for i in range(len(sets))
                   for j in range(i + 1, len(sets)))
    print("RESULT", isinstance(X, np.memmap) and all(mapped), disjoint,
          len(set().union(*sets)))
"""


@needs_mpi
def test_each_rank_gathers_only_its_rows_of_a_mapped_file(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.normal(size=(100, 4)))
    np.save(tmp_path / "y.npy", rng.integers(0, 2, 100))
    (tmp_path / "mapped.py").write_text(MAPPED)
    r = _run(2, ["mapped.py"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT")).split()[1:] \
        == ["True", "True", "100"]
