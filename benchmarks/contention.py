"""Training under contention: how much a fit slows when two busy processes share the
machine with it, beside PyTorch's slowdown in the same conditions.

Each configuration (MNIST 20k rows, 784-100-10, B = 64 and 256, SGD and Adam) trains in a
process of its own, first on a quiet machine, then with two processes spinning
(``python -c "while True: pass"``) beside it; the table gives the median epoch time of
each and their ratio. Quiet and loaded runs alternate, so a slow spell of the machine hits
both.

    python benchmarks/contention.py [--data-dir DIR] [--epochs 3] [--rounds 2] [--src DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "data", "mnist")

CHILD = r"""
import sys, time, statistics
src, data, lib, B, opt, epochs = sys.argv[1:7]
B, epochs = int(B), int(epochs)
if src:
    sys.path.insert(0, src)
import numpy as np
from chainrule.data import load_mnist
Xtr, ytr, _, _ = load_mnist(data)
X, y = Xtr[:20000], ytr[:20000]
times = []
if lib == "chainrule":
    from chainrule.nn import Network
    from chainrule.optim import SGD
    from chainrule.training import Callback

    class T(Callback):
        needs_gradient = False

        def on_epoch_end(self, state):
            times.append(time.perf_counter() - state.epoch_start)

    net = Network.from_sizes([784, 100, 10], seed=0)
    kw = dict(optimizer=SGD(0.1), schedule="constant") if opt == "sgd" else {}
    net.fit(X, y, epochs=epochs, batch_size=B, verbose=0, callbacks=[T()], **kw)
else:
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 100), torch.nn.ReLU(),
                                torch.nn.Linear(100, 10))
    o = torch.optim.SGD(model.parameters(), lr=0.1) if opt == "sgd" else \
        torch.optim.Adam(model.parameters(), lr=3e-3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(X.shape[0], generator=g)
        for i in range(0, X.shape[0], B):
            idx = perm[i:i + B]
            o.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(Xt[idx]), yt[idx])
            loss.backward()
            o.step()
        times.append(time.perf_counter() - t0)
print(statistics.median(times[1:] if len(times) > 1 else times))
"""


def run(src: str, data: str, lib: str, B: int, opt: str, epochs: int, timeout: float
        ) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, src, data, lib, str(B), opt,
                          str(epochs)], capture_output=True, text=True, timeout=timeout)
    if out.returncode:
        raise RuntimeError(out.stderr.strip().splitlines()[-1])
    return float(out.stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=DEFAULT_DATA)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--src", default="", help="a source folder holding chainrule/ "
                    "(default: the installed chainrule)")
    ap.add_argument("--libs", default="chainrule,torch")
    args = ap.parse_args()
    libs = args.libs.split(",")
    rows = []
    for lib in libs:
        for opt in ("sgd", "adam"):
            for B in (64, 256):
                quiet, loaded = [], []
                for _ in range(args.rounds):
                    quiet.append(run(args.src, args.data_dir, lib, B, opt, args.epochs, 600))
                    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                            for _ in range(2)]
                    try:
                        time.sleep(0.2)
                        loaded.append(run(args.src, args.data_dir, lib, B, opt, args.epochs,
                                          1800))
                    finally:
                        for p in busy:
                            p.kill()
                            p.wait()
                q, l_ = statistics.median(quiet), statistics.median(loaded)
                rows.append((lib, opt, B, q, l_, l_ / q))
                print(f"{lib:10s} {opt:5s} B={B:4d}  quiet {q:.3f} s/epoch  with two busy "
                      f"processes {l_:.3f}  slowdown {l_ / q:.2f}x", flush=True)
    print("\n| library | optimiser | B | quiet s/epoch | loaded s/epoch | slowdown |")
    print("| --- | --- | --- | --- | --- | --- |")
    for lib, opt, B, q, l_, r in rows:
        print(f"| {lib} | {opt} | {B} | {q:.3f} | {l_:.3f} | {r:.2f}x |")


if __name__ == "__main__":
    main()
