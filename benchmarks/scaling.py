"""Data-parallel scaling on this machine (issue 17, docs/scaling.md): examples per second
of one process with 2 BLAS threads against 2 MPI ranks with 1 thread each, on MNIST, for
784-100-10 and 784-1024-1024-10, at B = 64 and 256 examples per rank (one process: a
batch of B; 2 ranks: a global batch of 2B, B on each).

    python benchmarks/scaling.py [--data-dir /work/shared/data/mnist] [--repeat 3]

It runs each configuration ``--repeat`` times, alternating, in fresh processes (the 2-rank
ones under ``mpiexec -n 2``), and keeps the best epoch of each (the machine is shared:
the best is the least disturbed). Each run trains Adam on float32 for 2 epochs of m
examples and reports the second (warm) epoch's examples/s, as ``fit`` measures it
(rank 0's clock; the examples of all ranks).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

CASES = [([784, 100, 10], 64, 24000), ([784, 100, 10], 256, 24000),
         ([784, 1024, 1024, 10], 64, 6000), ([784, 1024, 1024, 10], 256, 8192)]


def worker(sizes: list[int], B: int, m: int, data_dir: str) -> None:
    """One run: this process, or one rank of an mpiexec job."""
    import numpy as np

    from chainrule.data import load_mnist
    from chainrule.distributed import world
    from chainrule.nn import Network

    comm = world()
    X, y, _, _ = load_mnist(data_dir)
    n = 1 if comm is None else comm.Get_size()
    net = Network.from_sizes(sizes, seed=0)
    h = net.fit(X[:m], y[:m], epochs=2, batch_size=B * n, verbose=0, comm=comm,
                blas_threads=2 if comm is None else 1)
    if comm is None or comm.Get_rank() == 0:
        print(json.dumps({"ex/s": float(np.max(h["ex/s"][1:]))}))


def run(n: int, sizes: list[int], B: int, m: int, data_dir: str) -> float:
    cmd = [sys.executable, __file__, "--worker", json.dumps([sizes, B, m, data_dir])]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_"))}
    if n > 1:
        mpiexec = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}"
                                             f"{os.pathsep}{env.get('PATH', '')}")
        cmd = [mpiexec or "mpiexec", "-n", str(n), *cmd]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["ex/s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="/work/shared/data/mnist")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--worker")
    a = ap.parse_args()
    if a.worker:
        worker(*json.loads(a.worker))
        return
    print("| network | B per rank | 1 process x 2 threads (ex/s) | 2 ranks x 1 thread "
          "(ex/s) | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for sizes, B, m in CASES:
        one = two = 0.0
        for _ in range(a.repeat):
            one = max(one, run(1, sizes, B, m, a.data_dir))
            two = max(two, run(2, sizes, B, m, a.data_dir))
        net = "-".join(map(str, sizes))
        print(f"| {net} | {B} | {one:,.0f} | {two:,.0f} | {two / one:.2f} |", flush=True)


if __name__ == "__main__":
    main()
