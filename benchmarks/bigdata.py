"""Training from a .npy data set larger than the memory it may use (issue 17,
docs/scaling.md).

    python benchmarks/bigdata.py make big.npy [--rows 1400000]
    python benchmarks/bigdata.py run big.npy [--limit 1G] [--ranks N] -- [train options]

``make`` writes an augmented MNIST table of float32 (784 pixels in [0, 1], then the
label): each row a randomly chosen digit, shifted by up to 2 pixels each way and with
Gaussian pixel noise (sigma 0.1), written a block at a time into the mapped output. The
first 80% of the rows come from MNIST's training images and the last 20% from its test
images, so the CLI's split in file order (70 / 10 / 20) tests on digits no training row
was made from. 1,400,000 rows make 4.4 GB (4.09 GiB).

``run`` starts ``chainrule train --dataset big.npy`` inside a new cgroup-v1 memory group
limited to ``--limit`` (page cache included; RLIMIT_AS cannot be used: it counts the
mapping itself), with the file's pages dropped from the page cache first, samples the
process's RssAnon every 20 ms, and prints the peak with the
budget of issue 17: model + optimiser state + 4 batches + 150 MB. Needs root and a
writable /sys/fs/cgroup/memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def make(path: str, rows: int, data_dir: str, seed: int = 0) -> None:
    from chainrule.data import load_mnist

    Xtr, ytr, Xte, yte = load_mnist(data_dir)
    rng = np.random.default_rng(seed)
    T = np.lib.format.open_memmap(path, "w+", np.float32, (rows, 785))
    split, block = int(rows * 0.8), 50_000
    pad = {k: np.pad(X.reshape(-1, 28, 28), ((0, 0), (2, 2), (2, 2)))
           for k, X in (("train", Xtr), ("test", Xte))}
    for lo in range(0, rows, block):
        n = min(block, rows - lo)
        src = "train" if lo < split else "test"     # a block never straddles: 50k | 80%
        labels = ytr if src == "train" else yte
        pick = rng.integers(0, len(labels), n)
        dy, dx = rng.integers(0, 5, n), rng.integers(0, 5, n)
        r = dy[:, None] + np.arange(28)
        c = dx[:, None] + np.arange(28)
        img = pad[src][pick[:, None, None], r[:, :, None], c[:, None, :]].reshape(n, 784)
        img = img + rng.normal(0, 0.1, img.shape).astype(np.float32)
        T[lo:lo + n, :784] = np.clip(img, 0, 1)
        T[lo:lo + n, 784] = labels[pick]
        T.flush()
    del T
    print(f"{path}: {rows} rows, {os.path.getsize(path) / 2**30:.2f} GiB")


def _rss_anon(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def run(path: str, limit: str, train_args: list[str], ranks: int = 1) -> int:
    base = Path("/sys/fs/cgroup/memory")
    mine = open("/proc/self/cgroup").read().split("memory:")[1].split("\n")[0].strip("/")
    cg = base / mine / f"chainrule-big-{os.getpid()}"
    cg.mkdir()
    try:
        (cg / "memory.limit_in_bytes").write_text(limit)
        fd = os.open(path, os.O_RDONLY)      # start cold: drop this file's cached pages
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        chainrule = Path(sys.executable).parent / "chainrule"
        cmd = [str(chainrule), "train", "--dataset", path, *train_args]
        if ranks > 1:
            cmd = [str(Path(sys.executable).parent / "mpiexec"), "-n", str(ranks), *cmd]
        print("$", " ".join(cmd), f"  # in {cg}, limit {limit}", flush=True)
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, preexec_fn=lambda: (cg / "cgroup.procs").write_text(
            str(os.getpid())))
        peak = 0                            # the largest RssAnon of any process in the group
        while p.poll() is None:
            for pid in (cg / "cgroup.procs").read_text().split():
                try:
                    peak = max(peak, _rss_anon(int(pid)))
                except (OSError, ValueError):
                    pass
            time.sleep(0.02)
        took = time.monotonic() - t0
        oom = (cg / "memory.oom_control").read_text().split("oom_kill ")[-1].strip() \
            if (cg / "memory.oom_control").exists() else "?"
        usage = int((cg / "memory.max_usage_in_bytes").read_text())
        print(f"exit status {p.returncode}, {took:.0f} s; peak RssAnon of a process "
              f"{peak / 2**20:.1f} "
              f"MiB; the group's peak (page cache included) {usage / 2**20:.0f} MiB; "
              f"OOM kills {oom}")
        return p.returncode
    finally:
        for _ in range(50):
            try:
                cg.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["make", "run"])
    ap.add_argument("path")
    ap.add_argument("--rows", type=int, default=1_400_000)
    ap.add_argument("--data-dir", default="/work/shared/data/mnist")
    ap.add_argument("--limit", default="1G")
    ap.add_argument("--ranks", type=int, default=1, help="run under mpiexec -n RANKS")
    a, rest = ap.parse_known_args()
    if a.what == "make":
        make(a.path, a.rows, a.data_dir)
    else:
        sys.exit(run(a.path, a.limit, [x for x in rest if x != "--"], a.ranks))


if __name__ == "__main__":
    main()
