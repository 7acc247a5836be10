"""Data-parallel scaling on this machine (issue 17, docs/scaling.md): examples per second
of one process with 2 BLAS threads against 2 MPI ranks with 1 thread each, on MNIST, for
784-100-10 and 784-1024-1024-10, at B = 64 and 256 examples per rank (one process: a
batch of B; 2 ranks: a global batch of 2B, B on each).

    python benchmarks/scaling.py [--data-dir /work/shared/data/mnist] [--repeat 3]
    python benchmarks/scaling.py --project 784-100-10:64:EXS,...   # the model only

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


def params(sizes: list[int]) -> list[int]:
    """|W^l| + |b^l| of each layer."""
    return [a * b + b for a, b in zip(sizes, sizes[1:])]


def project(cases: list[tuple[list[int], int, float]], nodes: tuple[int, ...] = (8, 16, 32,
            64), links: tuple[tuple[str, float, float], ...] = (("10 Gb/s", 10e9, 25e-6),
            ("100 Gb/s", 100e9, 2e-6)), bytes_per: int = 4) -> None:
    """The communication model of docs/scaling.md, as a table: a ring Allreduce moves
    2 (N-1)/N |Theta| b bytes in and out of each rank in 2 (N-1) messages, so
    T_comm = 2 (N-1)/N |Theta| b / bandwidth + 2 (N-1) alpha; T_comp = B / (ex/s of one
    node), measured. Overlap: the gradient of layer l exists once BP3/BP4 of layer l
    have run, so its Allreduce can run during the backward pass of the layers below
    (BP2, BP4); the first layer's cannot hide behind anything in the same step."""
    print("| network | B per rank | link | N | T_comp (ms) | T_comm (ms) | efficiency "
          "| with overlap |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for sizes, B, exs in cases:
        P = params(sizes)
        prods = [a * b for a, b in zip(sizes, sizes[1:])]
        fwd = sum(prods)
        # backward of layer l: BP4 (one product) + BP2 into layer l-1 (one more, not l=1)
        back = [p * (1 if i == 0 else 2) for i, p in enumerate(prods)]
        t_comp = B / exs
        for name, bw, alpha in links:
            for N in nodes:
                per = 2 * (N - 1) / N * bytes_per / (bw / 8)
                t_comm = per * sum(P) + 2 * (N - 1) * alpha
                # layer by layer from the top: a layer's Allreduce starts when its
                # backward ends and the link is free; the step ends when the last
                # (first layer's) Allreduce ends
                link_free = 0.0
                unit = t_comp / (fwd + sum(back))
                t = fwd * unit
                for i in reversed(range(len(P))):
                    t += back[i] * unit
                    link_free = max(link_free, t) + per * P[i] + 2 * (N - 1) * alpha
                t_over = max(t, link_free)
                net = "-".join(map(str, sizes))
                print(f"| {net} | {B} | {name} | {N} | {t_comp * 1e3:.2f} | "
                      f"{t_comm * 1e3:.2f} | {t_comp / (t_comp + t_comm):.0%} | "
                      f"{t_comp / t_over:.0%} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="/work/shared/data/mnist")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--worker")
    ap.add_argument("--project", help="net:B:ex/s,... (ex/s of one node at B): print "
                    "the projection for 8-64 nodes instead of measuring")
    a = ap.parse_args()
    if a.project:
        project([([int(v) for v in net.split("-")], int(B), float(exs)) for net, B, exs in
                 (c.split(":") for c in a.project.split(","))])
        return
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
