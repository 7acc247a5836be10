"""A/B of whole training epochs between two source trees of chainrule, in alternated
processes: ``net.fit`` on MNIST 784-100-10, validation and progress on, as the issue
measures it.

    git worktree add /tmp/old <commit> && (cd /tmp/old && python setup.py build_ext --inplace)
    python benchmarks/ab_fit.py /tmp/old/src src --batch 256 --rounds 6

Prints, for each tree, the median training time per epoch (without validation) and the
median epoch time (with validation) of each round, then the medians over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import sys, statistics, time
sys.path.insert(0, sys.argv[1])
import chainrule
assert chainrule.__file__.startswith(sys.argv[1]), chainrule.__file__
from chainrule.data import load_mnist
from chainrule.nn import Network
from chainrule.optim import SGD
from chainrule.training import Callback
Xtr, ytr, Xte, yte = load_mnist(sys.argv[2])
B, opt, epochs = int(sys.argv[3]), sys.argv[4], int(sys.argv[5])

class Epochs(Callback):
    needs_gradient = False          # reads no gradient: plain SGD's step may stay fused

    def __init__(self):
        self.t = []

    def on_epoch_end(self, state):
        self.t.append(time.perf_counter() - state.epoch_start)

cb = Epochs()
net = Network.from_sizes([784, 100, 10], seed=0)
kw = dict(optimizer=SGD(0.1), schedule="constant") if opt == "sgd" else {}
with open("/dev/null", "w") as sink:
    h = net.fit(Xtr, ytr, epochs=epochs + 1, batch_size=B, validation_data=(Xte, yte),
                callbacks=[cb], verbose=1, stream=sink, **kw)
print(statistics.median(h["time"][1:]), statistics.median(cb.t[1:]))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs=2, help="two source folders (each holds chainrule/)")
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent
                                              / "shared" / "data" / "mnist"))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--optimizer", choices=["sgd", "defaults"], default="sgd")
    ap.add_argument("--epochs", type=int, default=6, help="measured epochs per process")
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    trees = [str(Path(t).resolve()) for t in args.trees]
    res: dict[str, list[tuple[float, float]]] = {t: [] for t in trees}
    for r in range(args.rounds):
        for t in (trees if r % 2 == 0 else trees[::-1]):
            out = subprocess.run([sys.executable, "-c", CHILD, t, args.data_dir,
                                  str(args.batch), args.optimizer, str(args.epochs)],
                                 capture_output=True, text=True, check=True).stdout.split()
            res[t].append((float(out[0]), float(out[1])))
            print(f"{t}: train {res[t][-1][0]:.4f} s/epoch, with validation "
                  f"{res[t][-1][1]:.4f}", flush=True)
    for t, v in res.items():
        print(f"median {t}: train {statistics.median(x for x, _ in v):.4f} s/epoch, with "
              f"validation {statistics.median(y for _, y in v):.4f}")


if __name__ == "__main__":
    main()
