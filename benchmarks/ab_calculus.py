"""A/B of the calculus benchmark's two tasks between two source trees of chainrule, in
alternated processes (a slow spell of the machine then hits both):

1. the full 200x200 Jacobian of tanh(W x + b);
2. the gradient of sum(sin(x) * x**2) over 10^5 inputs, and its ratio to the derivative
   written by hand in NumPy, timed in the same process.

    python benchmarks/ab_calculus.py /tmp/old/src src --rounds 6

Each process prints the best of 7 repeats of each task; the medians over the processes
come last.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import sys, timeit
sys.path.insert(0, sys.argv[1])
import chainrule
assert chainrule.__file__.startswith(sys.argv[1]), chainrule.__file__
import numpy as onp
import chainrule as cr
import chainrule.numpy as cnp
r = onp.random.default_rng(0)
n = 200
W = r.normal(size=(n, n)) / onp.sqrt(n)
b, x, big = r.normal(size=n), r.normal(size=n), r.normal(size=100_000)
jf = cr.jacobian(lambda v: cnp.tanh(W @ v + b))
gf = cr.grad(lambda v: cnp.sum(cnp.sin(v) * v ** 2))
hand = lambda v: onp.cos(v) * v * v + 2 * v * onp.sin(v)
assert onp.allclose(gf(big), hand(big))
tj = min(timeit.repeat(lambda: jf(x), number=200, repeat=7)) / 200
tg = min(timeit.repeat(lambda: gf(big), number=20, repeat=7)) / 20
th = min(timeit.repeat(lambda: hand(big), number=20, repeat=7)) / 20
print(tj * 1e3, tg * 1e3, tg / th)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs=2, help="two source folders (each holds chainrule/)")
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    trees = [str(Path(t).resolve()) for t in args.trees]
    res: dict[str, list[list[float]]] = {t: [] for t in trees}
    for r in range(args.rounds):
        for t in (trees if r % 2 == 0 else trees[::-1]):
            out = subprocess.run([sys.executable, "-c", CHILD, t], capture_output=True,
                                 text=True, check=True).stdout.split()
            res[t].append([float(v) for v in out])
            j, g, h = res[t][-1]
            print(f"{t}: jacobian {j:.4f} ms, gradient {g:.3f} ms ({h:.3f}x by hand)",
                  flush=True)
    for t, v in res.items():
        j, g, h = (statistics.median(col) for col in zip(*v))
        print(f"median {t}: jacobian {j:.4f} ms, gradient {g:.3f} ms ({h:.3f}x by hand)")


if __name__ == "__main__":
    main()
