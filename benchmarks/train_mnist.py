"""Training speed on MNIST, side by side in one process and one run.

784-100-10, ReLU, softmax cross-entropy, plain SGD (alpha = 0.1), float32, at batch 10, 64
and 256: chainrule's ``net.fit`` (validation and progress on), PyTorch eager, JAX jit (when
installed), scikit-learn's MLPClassifier, and the vectorised NumPy step written by hand with
its buffers reused (no validation, no checks: the issue's reference). Then ``net.fit`` with
all its defaults but the batch size (Adam 3e-3, cosine schedule) against the peers' Adam at
3e-3. The libraries take turns epoch by epoch (chainrule's fit calls the others from an
epoch-end callback), so a slow spell of the machine hits all of them alike. Also: 784-30-10
sigmoid + MSE at batch 10 (the text's setup), the achieved GFLOP/s against NumPy's float32
GEMM peak measured in this run, test accuracy after the same epochs, and chainrule's peak
memory.

    python benchmarks/train_mnist.py [--data-dir DIR] [--epochs 3] [--threads 1]
    python benchmarks/train_mnist.py --accuracy     # the accuracy targets (long)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from typing import Any

import numpy as np
from _common import gemm_peak, machine, table, write

from chainrule.data import load_mnist
from chainrule.nn import Network
from chainrule.optim import SGD
from chainrule.training import Callback

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "data", "mnist")


def flops_per_epoch(m: int, sizes: list[int]) -> float:
    """6 x examples x weights: the forward product, and two products in the backward."""
    weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
    return 6.0 * m * weights


# --------------------------------------------------------------------------- peers


class TorchRunner:
    name = "PyTorch eager"

    def __init__(self, X: np.ndarray, y: np.ndarray, sizes: list[int], act: str, loss: str,
                 B: int, lr: float, threads: int, seed: int = 0, adam: bool = False) -> None:
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.torch = torch
        layers: list[Any] = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU() if act == "relu" else torch.nn.Sigmoid())
        if loss == "mse":
            layers.append(torch.nn.Sigmoid())
        self.model = torch.nn.Sequential(*layers)
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y)
        self.Y = torch.nn.functional.one_hot(self.y, sizes[-1]).float()
        self.loss = loss
        self.B = B
        self.opt = (torch.optim.Adam(self.model.parameters(), lr=lr) if adam else
                    torch.optim.SGD(self.model.parameters(), lr=lr))
        self.gen = torch.Generator().manual_seed(seed)

    def epoch(self) -> None:
        torch = self.torch
        perm = torch.randperm(self.X.shape[0], generator=self.gen)
        model, opt, B = self.model, self.opt, self.B
        for i in range(0, self.X.shape[0], B):
            idx = perm[i:i + B]
            out = model(self.X[idx])
            if self.loss == "mse":
                loss = ((out - self.Y[idx]) ** 2).sum() / (2 * len(idx))
            else:
                loss = torch.nn.functional.cross_entropy(out, self.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        with self.torch.no_grad():
            return float((self.model(self.torch.from_numpy(X)).argmax(1).numpy() == y).mean())


class JaxRunner:
    name = "JAX jit"

    def __init__(self, X: np.ndarray, y: np.ndarray, sizes: list[int], B: int, lr: float,
                 seed: int = 0, adam: bool = False) -> None:
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        rng = np.random.default_rng(seed)
        self.params = [(jnp.asarray(rng.normal(0, np.sqrt(2 / a), (a, b)).astype(np.float32)),
                        jnp.zeros(b, jnp.float32)) for a, b in zip(sizes, sizes[1:])]
        self.X = jnp.asarray(X)
        self.y = jnp.asarray(y)
        self.m, self.B = X.shape[0], B
        self.rng = rng

        def forward(params: Any, x: Any) -> Any:
            for W, b in params[:-1]:
                x = jax.nn.relu(x @ W + b)
            W, b = params[-1]
            return x @ W + b

        def loss(params: Any, x: Any, t: Any) -> Any:
            logits = forward(params, x)
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), t[:, None], 1))

        @jax.jit
        def sgd_step(state: Any, idx: Any) -> Any:
            params = state
            g = jax.grad(loss)(params, self.X[idx], self.y[idx])
            return jax.tree_util.tree_map(lambda p, q: p - lr * q, params, g)

        @jax.jit
        def adam_step(state: Any, idx: Any) -> Any:
            # Adam written out (beta 0.9 / 0.999, eps 1e-8), no optax needed
            params, m, v, t = state
            g = jax.grad(loss)(params, self.X[idx], self.y[idx])
            t = t + 1
            m = jax.tree_util.tree_map(lambda a, q: 0.9 * a + 0.1 * q, m, g)
            v = jax.tree_util.tree_map(lambda a, q: 0.999 * a + 0.001 * q * q, v, g)
            c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
            params = jax.tree_util.tree_map(
                lambda p, a, b: p - lr * (a / c1) / (jnp.sqrt(b / c2) + 1e-8), params, m, v)
            return params, m, v, t

        self.adam = adam
        self.step = adam_step if adam else sgd_step
        if adam:
            zeros = jax.tree_util.tree_map(jnp.zeros_like, self.params)
            self.state: Any = (self.params, zeros, zeros, jnp.float32(0))
        else:
            self.state = self.params
        self.forward = jax.jit(forward)

    def epoch(self) -> None:
        perm = self.rng.permutation(self.m)
        full = (self.m // self.B) * self.B
        state = self.state
        for i in range(0, full, self.B):
            state = self.step(state, perm[i:i + self.B])
        if full < self.m:  # the partial last batch (a second compiled shape)
            state = self.step(state, perm[full:])
        self.jax.block_until_ready(state)
        self.state = state
        self.params = state[0] if self.adam else state

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        return float((np.asarray(self.forward(self.params, X)).argmax(1) == y).mean())


class NumpyRunner:
    """The issue's reference: a vectorised NumPy step with buffers reused, no validation,
    no progress, no checks (plain SGD, ReLU, softmax cross-entropy)."""

    name = "NumPy by hand"

    def __init__(self, X: np.ndarray, y: np.ndarray, sizes: list[int], B: int, lr: float,
                 seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        n0, n1, n2 = sizes
        self.W1 = rng.normal(0, np.sqrt(2 / n0), (n0, n1)).astype(np.float32)
        self.b1 = np.zeros(n1, np.float32)
        self.W2 = rng.normal(0, np.sqrt(2 / n1), (n1, n2)).astype(np.float32)
        self.b2 = np.zeros(n2, np.float32)
        self.X, self.y, self.B, self.lr, self.rng = X, y, B, lr, rng
        self.Y = np.eye(n2, dtype=np.float32)[y]
        self.xb = np.empty((B, n0), np.float32)
        self.yb = np.empty((B, n2), np.float32)
        self.h = np.empty((B, n1), np.float32)
        self.z = np.empty((B, n2), np.float32)
        self.g = np.empty((B, n1), np.float32)
        self.dW1, self.dW2 = np.empty_like(self.W1), np.empty_like(self.W2)

    def epoch(self) -> None:
        m, B, lr = self.X.shape[0], self.B, self.lr
        perm = self.rng.permutation(m)
        for i in range(0, m - B + 1, B):
            idx = perm[i:i + B]
            xb = np.take(self.X, idx, axis=0, out=self.xb, mode="clip")
            yb = np.take(self.Y, idx, axis=0, out=self.yb, mode="clip")
            h, z, g = self.h, self.z, self.g
            np.matmul(xb, self.W1, out=h)
            h += self.b1
            np.maximum(h, 0, out=h)
            np.matmul(h, self.W2, out=z)
            z += self.b2
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
            z -= yb
            z *= 1.0 / B                                   # delta^L
            np.matmul(h.T, z, out=self.dW2)
            db2 = z.sum(axis=0)
            np.matmul(z, self.W2.T, out=g)
            g *= h > 0
            np.matmul(xb.T, g, out=self.dW1)
            db1 = g.sum(axis=0)
            self.W1 -= lr * self.dW1
            self.b1 -= lr * db1
            self.W2 -= lr * self.dW2
            self.b2 -= lr * db2

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        h = np.maximum(X @ self.W1 + self.b1, 0)
        return float(((h @ self.W2 + self.b2).argmax(1) == y).mean())


class SklearnRunner:
    name = "scikit-learn MLP"

    def __init__(self, X: np.ndarray, y: np.ndarray, sizes: list[int], B: int, lr: float,
                 seed: int = 0, adam: bool = False) -> None:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        self.clf = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), activation="relu",
                                 solver="adam" if adam else "sgd",
                                 learning_rate_init=lr, momentum=0.0,
                                 nesterovs_momentum=False, alpha=0.0, batch_size=B,
                                 max_iter=1, warm_start=True, shuffle=True, tol=0.0,
                                 n_iter_no_change=10 ** 9, random_state=seed)
        self.X, self.y = X, y

    def epoch(self) -> None:
        self.clf.fit(self.X, self.y)

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        return float((self.clf.predict(X) == y).mean())


# --------------------------------------------------------------------------- the run


class Interleave(Callback):
    """At every epoch end of chainrule's fit: record chainrule's epoch time (training,
    validation and progress included), then run one epoch of each peer.

    The peers run with NumPy's BLAS at ``threads`` threads, not under the limit chainrule's
    fit sets for itself (one thread at B = 10, and one on each side of its two-thread pipe
    at B = 256): scikit-learn and the NumPy loop get the BLAS a user's process has.

    Before each library's epoch the process sleeps ``settle`` seconds (not timed), so that
    the thread pools the previous library left spinning (OpenBLAS's workers spin for about
    0.1 s after their last call, OpenMP's for a while too) are asleep: each epoch is timed
    as on a quiet machine, as a user running one library sees it. ``--settle 0`` turns it
    off (benchmarks/NOTES.md has figures both ways)."""

    needs_gradient = False          # reads no gradient: plain SGD's step may stay fused

    def __init__(self, peers: list[Any], threads: int, settle: float) -> None:
        self.peers = peers
        self.threads = threads
        self.settle = settle
        self.times: dict[str, list[float]] = {"chainrule": []}
        for p in peers:
            self.times[p.name] = []

    def on_epoch_end(self, state: Any) -> None:
        self.times["chainrule"].append(time.perf_counter() - state.epoch_start)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.threads, user_api="blas"):
            for p in self.peers:
                time.sleep(self.settle)
                t0 = time.perf_counter()
                p.epoch()
                self.times[p.name].append(time.perf_counter() - t0)
        time.sleep(self.settle)              # before chainrule's next epoch


def set_threads(n: int) -> None:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        print("note: threadpoolctl not installed; BLAS threads left as they are",
              file=sys.stderr)


def run_config(data: tuple[np.ndarray, ...], sizes: list[int], act: str, cost: str, B: int,
               epochs: int, threads: int, peers_wanted: set[str], lr: float = 0.1,
               defaults: bool = False, settle: float = 0.25) -> list[dict[str, Any]]:
    """One configuration, every library. ``defaults``: chainrule's ``fit`` with all its
    defaults but the batch size (Adam 3e-3 with a cosine schedule), the peers with Adam at
    3e-3."""
    Xtr, ytr, Xte, yte = data
    peers: list[Any] = []
    notes = []
    if "torch" in peers_wanted:
        try:
            peers.append(TorchRunner(Xtr, ytr, sizes, act, cost, B, lr, threads,
                                     adam=defaults))
        except ImportError:
            notes.append("PyTorch not installed")
    if "jax" in peers_wanted and act == "relu" and cost == "cross_entropy":
        try:
            peers.append(JaxRunner(Xtr, ytr, sizes, B, lr, adam=defaults))
        except ImportError:
            notes.append("JAX not installed")
    if "numpy" in peers_wanted and act == "relu" and cost == "cross_entropy" and \
            not defaults and len(sizes) == 3:
        peers.append(NumpyRunner(Xtr, ytr, sizes, B, lr))
    if "sklearn" in peers_wanted and act == "relu" and cost == "cross_entropy":
        try:
            peers.append(SklearnRunner(Xtr, ytr, sizes, B, lr, adam=defaults))
        except ImportError:
            notes.append("scikit-learn not installed")
    out = "softmax" if cost == "cross_entropy" else "sigmoid"
    net = Network.from_sizes(sizes, hidden=act, output=out, cost=cost, seed=0)
    inter = Interleave(peers, threads, settle)
    sink = open(os.devnull, "w")  # the progress display is on; its lines go nowhere
    opt_kw: dict[str, Any] = {"batch_size": B} if defaults else {
        "batch_size": B, "optimizer": SGD(lr), "schedule": "constant"}
    net.fit(Xtr, ytr, epochs=epochs + 1, validation_data=(Xte, yte), callbacks=[inter],
            verbose=1, stream=sink, **opt_kw)
    sink.close()
    accs = {"chainrule": net.accuracy(Xte, yte)}
    for p in peers:
        accs[p.name] = p.accuracy(Xte, yte)
    fl = flops_per_epoch(Xtr.shape[0], sizes)
    rows = []
    base = statistics.median(inter.times["chainrule"][1:])
    for name, ts in inter.times.items():
        t = statistics.median(ts[1:])  # the first epoch is the warm-up
        label = "fit defaults (Adam 3e-3, cosine)" if defaults else f"{act} {cost}"
        rows.append({"config": f"{'-'.join(map(str, sizes))} {label} B={B}",
                     "library": name, "s/epoch": t, "time / chainrule": t / base,
                     "GFLOP/s": fl / t / 1e9, "test acc": accs[name]})
    for n_ in notes:
        print("note:", n_, file=sys.stderr)
    return rows


def peak_memory(data: tuple[np.ndarray, ...], B: int = 256) -> dict[str, float]:
    Xtr, ytr, Xte, yte = data
    net = Network.from_sizes([784, 100, 10], seed=0)
    tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    net.fit(Xtr, ytr, epochs=1, batch_size=B, validation_data=(Xte, yte), verbose=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    data_bytes = Xtr.astype(np.float32).nbytes + Xte.astype(np.float32).nbytes
    model = net.theta.nbytes
    return {"peak MB above the data": (peak - base) / 1e6,
            "data (float32) MB": data_bytes / 1e6, "model MB": model / 1e6,
            "peak / (data + model)": (peak - base) / (data_bytes + model)}


def accuracy_runs(data: tuple[np.ndarray, ...]) -> list[dict[str, Any]]:
    Xtr, ytr, Xte, yte = data
    rows = []
    for label, kw, sizes, act, out, cost in [
        ("784-100-10 ReLU softmax-CE, chainrule defaults (Adam 3e-3, cosine, B=64), "
         "10 epochs", {}, [784, 100, 10], "relu", "softmax", "cross_entropy"),
        ("784-30-10 sigmoid MSE, SGD alpha=3.0, B=10, 30 epochs (the text's setup)",
         {"optimizer": "sgd", "lr": 3.0, "schedule": "constant", "batch_size": 10,
          "epochs": 30}, [784, 30, 10], "sigmoid", "sigmoid", "mse"),
    ]:
        for dtype in ("float32", "float64") if not kw else ("float32",):
            net = Network.from_sizes(sizes, hidden=act, output=out, cost=cost, dtype=dtype,
                                     seed=0)
            t0 = time.perf_counter()
            net.fit(Xtr, ytr, verbose=0, **({"epochs": 10} | kw))
            rows.append({"run": label, "dtype": dtype, "test acc": net.accuracy(Xte, yte),
                         "seconds": time.perf_counter() - t0})
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("CHAINRULE_DATA", DEFAULT_DATA))
    ap.add_argument("--epochs", type=int, default=3, help="measured epochs (after 1 warm-up)")
    ap.add_argument("--batches", default="10,64,256")
    ap.add_argument("--threads", type=int, default=None, help="BLAS / torch threads "
                    "(default: leave as they are; torch gets 2)")
    ap.add_argument("--peers", default="torch,jax,sklearn,numpy")
    ap.add_argument("--accuracy", action="store_true", help="run the accuracy targets instead")
    ap.add_argument("--tag", default="", help="suffix for the result file name")
    ap.add_argument("--settle", type=float, default=0.25, help="seconds of sleep (not timed) "
                    "before each library's epoch, so that the last one's threads are asleep")
    args = ap.parse_args()
    data = load_mnist(args.data_dir, download=False)
    if args.accuracy:
        rows = accuracy_runs(data)
        print(table(rows, ["run", "dtype", "test acc", "seconds"]))
        write("train_mnist_accuracy" + args.tag, rows)
        return
    threads = args.threads or 2
    if args.threads:
        set_threads(args.threads)
    peak = gemm_peak()
    peers = set(args.peers.split(","))
    rows = []
    for B in [int(b) for b in args.batches.split(",")]:
        rows += run_config(data, [784, 100, 10], "relu", "cross_entropy", B, args.epochs,
                           threads, peers, settle=args.settle)
        print(table(rows[-5:], ["config", "library", "s/epoch"]), file=sys.stderr, flush=True)
    for B in [int(b) for b in args.batches.split(",")]:
        rows += run_config(data, [784, 100, 10], "relu", "cross_entropy", B, args.epochs,
                           threads, peers, lr=3e-3, defaults=True, settle=args.settle)
        print(table(rows[-5:], ["config", "library", "s/epoch"]), file=sys.stderr, flush=True)
    rows += run_config(data, [784, 30, 10], "sigmoid", "mse", 10, args.epochs, threads,
                       peers & {"torch"}, lr=3.0, settle=args.settle)
    for r in rows:
        r["% of GEMM peak"] = 100 * r["GFLOP/s"] / peak
    mem = peak_memory(data)
    print(f"NumPy float32 GEMM peak (2048^3) in this run: {peak:.0f} GFLOP/s; "
          f"threads: {threads}")
    print(table(rows, ["config", "library", "s/epoch", "time / chainrule", "GFLOP/s",
                       "% of GEMM peak", "test acc"]))
    print("chainrule peak memory, 1 epoch at B=256 with validation: " +
          ", ".join(f"{k} {v:.2f}" for k, v in mem.items()))
    path = write("train_mnist" + args.tag, rows, {"gemm_peak_gflops": peak, "threads": threads,
                                                   "memory": mem, "machine": machine()})
    print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
