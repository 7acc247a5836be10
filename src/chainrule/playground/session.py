"""One playground: the data, the network (float64), its training thread and the
mathematics the page shows, all through chainrule's public API.

Training (text 3.8): one epoch is a pass over the training points in batches; each batch
takes ``net.backprop`` (the four equations) and the step Theta <- Theta - alpha grad C of
``chainrule.optim.SGD``. GD uses all the training points in one batch, SGD one point,
minibatch ``batch_size`` points. L1/L2 add lambda sign(w) or lambda w to the weights'
gradient (never the biases'). Every step's Theta is kept (thinned when long) so the cost
surface can draw the path gradient descent took (text 3.7).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..data import DataError, load_csv
from ..io import load_model, save_model
from ..nn import Network
from ..optim import SGD
from .datasets import CLASSIFY, RADIUS, feature_map, generate
from .schema import DEFAULT_CONFIG, MessageError, check_config

__all__ = ["Session", "MAX_UPLOAD_BYTES", "MAX_CSV_ROWS"]

MAX_UPLOAD_BYTES = 256 * 1024
MAX_CSV_ROWS = 5000
MAX_PATH = 4000          # Theta snapshots kept for the cost surface's path
MAX_HISTORY = 400        # loss-curve points sent to the page
FRAME_S = 1 / 60         # at most one epoch per frame while playing (as TF Playground)


def _f(x: Any) -> float:
    return float(x)


class Session:
    """The state of one playground. Thread-safe: every public method takes the lock."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.version = 0           # bumps on every change the page should draw
        self.data_version = 0      # bumps when the points change
        self.playing = False
        self.closed = False
        self.csv: tuple[np.ndarray, np.ndarray] | None = None
        self.example = 0
        self.config = check_config(dict(config or DEFAULT_CONFIG))
        with self.lock:
            self._build(new_data=True)
        self._thread = threading.Thread(target=self._run, name="playground-train", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ building
    def _points(self) -> tuple[np.ndarray, np.ndarray, list[float]]:
        cfg = self.config
        if cfg["dataset"] != "csv":
            X, y = generate(cfg["dataset"], cfg["noise"] / 100, cfg["seed"])
            return X, y, [-RADIUS, RADIUS, -RADIUS, RADIUS]
        if self.csv is None:
            raise MessageError("dataset 'csv': upload a CSV file first")
        X, raw = self.csv
        if cfg["task"] == "classification":
            classes = np.unique(raw)
            if classes.size != 2:
                raise MessageError(f"classification needs exactly 2 classes in the label "
                                   f"column; the CSV has {classes.size}")
            y = (raw == classes[1]).astype(np.float64)
        else:
            if raw.dtype.kind not in "fiu":
                raise MessageError("regression needs a numeric label column")
            y = raw.astype(np.float64)
        lo, hi = X.min(0), X.max(0)
        pad = np.maximum((hi - lo) * 0.05, 1e-6)
        return X, y, [_f(lo[0] - pad[0]), _f(hi[0] + pad[0]), _f(lo[1] - pad[1]),
                      _f(hi[1] + pad[1])]

    def _build(self, new_data: bool) -> None:
        cfg = self.config
        if new_data:
            X, y, self.domain = self._points()
            rng = np.random.default_rng(cfg["seed"])
            order = rng.permutation(X.shape[0])
            n_train = max(1, min(X.shape[0] - 1, round(X.shape[0] * cfg["train_ratio"] / 100)))
            self.X_raw, self.y = X, y
            self.train, self.test = order[:n_train], order[n_train:]
            self.data_version += 1
            self.example = 0
        classify = cfg["task"] == "classification"
        sizes = [len(cfg["features"]), *cfg["hidden"], 1]
        self.net = Network.from_sizes(sizes, hidden=cfg["activation"],
                                      output="sigmoid" if classify else "identity",
                                      cost="mse", dtype=np.float64, seed=cfg["seed"])
        A = feature_map(self.X_raw, cfg["features"])
        self.X_train, self.X_test = A[self.train], A[self.test]
        self.y_train, self.y_test = self.y[self.train], self.y[self.test]
        self.opt = SGD(lr=cfg["lr"])
        self.epoch = 0
        self.steps = 0
        self.rng = np.random.default_rng(cfg["seed"] + 1)
        self.path: list[np.ndarray] = [self.net.theta.copy()]
        self.path_stride = 1
        self.history: list[tuple[int, float, float]] = []
        self._score()

    def _score(self) -> None:
        net = self.net
        self.train_loss = net.loss(self.X_train, self.y_train)
        self.test_loss = net.loss(self.X_test, self.y_test)
        if self.config["task"] == "classification":
            self.train_acc = net.accuracy(self.X_train, self.y_train)
            self.test_acc = net.accuracy(self.X_test, self.y_test)
        else:
            self.train_acc = self.test_acc = None
        self.history.append((self.epoch, self.train_loss, self.test_loss))
        self.version += 1
        self.changed.notify_all()

    # ------------------------------------------------------------------ commands
    def set_config(self, changes: dict[str, Any]) -> None:
        with self.lock:
            new = check_config({**self.config, **changes})
            data_keys = ("dataset", "task", "noise", "train_ratio", "seed")
            new_data = any(new[k] != self.config[k] for k in data_keys)
            old = self.config
            self.config = new
            try:
                if new_data or any(new[k] != old[k] for k in
                                   ("hidden", "features", "activation")):
                    self._build(new_data)
                else:       # lr, batch, mode, regularisation: keep training the same net
                    self.opt = SGD(lr=new["lr"])
                    self.version += 1
                    self.changed.notify_all()
            except MessageError:
                self.config = old
                raise

    def play(self) -> None:
        with self.lock:
            self.playing = True
            self.version += 1
            self.changed.notify_all()

    def pause(self) -> None:
        with self.lock:
            self.playing = False
            self.version += 1
            self.changed.notify_all()

    def reset(self) -> None:
        with self.lock:
            self.playing = False
            self._build(new_data=False)

    def step(self) -> None:
        with self.lock:
            self._epoch()

    def set_example(self, index: int) -> None:
        with self.lock:
            if not 0 <= index < len(self.train):
                raise MessageError(f"example {index} is not one of the "
                                   f"{len(self.train)} training points")
            self.example = index
            self.version += 1
            self.changed.notify_all()

    def upload_csv(self, data: bytes) -> dict[str, Any]:
        """A user's CSV: two feature columns and a label column, through chainrule's CSV
        checks (load_csv). Raises DataError with the reason."""
        if len(data) > MAX_UPLOAD_BYTES:
            raise DataError(f"the file is larger than {MAX_UPLOAD_BYTES} bytes")
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "upload.csv"
            p.write_bytes(data)
            table = load_csv(p)
        if table.X.shape[1] != 2:
            raise DataError(f"the playground needs exactly 2 feature columns (x1, x2) and a "
                            f"label column; this file has {table.X.shape[1]} features")
        if table.X.shape[0] > MAX_CSV_ROWS:
            raise DataError(f"the file has {table.X.shape[0]} rows; the playground takes at "
                            f"most {MAX_CSV_ROWS}")
        if table.X.shape[0] < 4:
            raise DataError("the file needs at least 4 rows")
        y = np.asarray(table.y)
        n_classes = int(np.unique(y).size)
        if n_classes != 2 and y.dtype.kind not in "fiu":
            raise DataError(f"the label column {table.target!r} has {n_classes} classes; the "
                            f"playground classifies 2 classes, or regresses on numbers")
        task = "classification" if n_classes == 2 else "regression"
        with self.lock:
            old = self.csv
            self.csv = (table.X.astype(np.float64), y)
            try:
                self.set_config({"dataset": "csv", "task": task})
                self._build(new_data=True)
            except MessageError:
                self.csv = old
                raise
        return {"rows": int(table.X.shape[0]), "task": task,
                "features": table.feature_names, "target": table.target}

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.playing = False
            self.changed.notify_all()

    # ------------------------------------------------------------------ training
    def _batches(self) -> list[np.ndarray]:
        m = len(self.train)
        mode = self.config["mode"]
        if mode == "gd":
            return [np.arange(m)]
        size = 1 if mode == "sgd" else self.config["batch_size"]
        order = self.rng.permutation(m)
        return [order[i:i + size] for i in range(0, m, size)]

    def _epoch(self) -> None:
        """One pass over the training points (text 3.8), then the scores. Overflow is
        not an error here: a diverged network stops and the page says so."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self._descend()

    def _descend(self) -> None:
        net, cfg = self.net, self.config
        reg, lam = cfg["regularization"], cfg["reg_rate"]
        for idx in self._batches():
            net.backprop(self.X_train[idx], self.y_train[idx])   # fills net.grad
            if reg != "none" and lam:
                pen = net.theta if reg == "L2" else np.sign(net.theta)
                net.grad += lam * net.weight_mask * pen
            self.opt.step(net.theta, net.grad)     # Theta <- Theta - alpha grad C
            self.steps += 1
            self._record()
        self.epoch += 1
        self._score()

    def _record(self) -> None:
        if self.steps % self.path_stride == 0:
            self.path.append(self.net.theta.copy())
            if len(self.path) > MAX_PATH:
                self.path = self.path[::2]
                self.path_stride *= 2

    def _run(self) -> None:
        last = 0.0
        while True:
            with self.lock:
                while not self.playing and not self.closed:
                    self.changed.wait()
                if self.closed:
                    return
                if self.diverged:
                    self.playing = False     # diverged: stop, the page shows NaN
                    self.version += 1
                    self.changed.notify_all()
                    continue
                self._epoch()
            wait = FRAME_S - (time.perf_counter() - last)
            if wait > 0:
                time.sleep(wait)
            last = time.perf_counter()

    # ------------------------------------------------------------------ what the page shows
    def snapshot(self, with_data: bool) -> dict[str, Any]:
        with self.lock:
            h = self.history
            if len(h) > MAX_HISTORY:
                step = -(-len(h) // MAX_HISTORY)
                h = h[::step] + ([h[-1]] if (len(h) - 1) % step else [])
            snap: dict[str, Any] = {
                "version": self.version, "data_version": self.data_version,
                "config": self.config, "playing": self.playing, "epoch": self.epoch,
                "steps": self.steps, "train_loss": _clean(self.train_loss),
                "test_loss": _clean(self.test_loss), "train_accuracy": self.train_acc,
                "test_accuracy": self.test_acc, "example": self.example,
                "sizes": self.net.sizes, "domain": self.domain,
                "diverged": self.diverged,
                "layers": [{"W": _finite(layer.W), "b": _finite(layer.b)}
                           for layer in self.net.layers],
                "history": [[e, _clean(a), _clean(b)] for e, a, b in h],
            }
            if with_data:
                snap["points"] = {"X": self.X_raw.tolist(), "y": self.y.tolist(),
                                  "train": self.train.tolist(), "test": self.test.tolist()}
            return snap

    @property
    def diverged(self) -> bool:
        """Theta holds NaN or infinity: the learning rate was too large."""
        return not bool(np.all(np.isfinite(self.net.theta)))

    def _example(self) -> tuple[np.ndarray, np.ndarray, list[Any], list[Any], Any]:
        if self.diverged:
            raise MessageError("the training diverged (NaN or infinite weights): lower the "
                               "learning rate and press Reset")
        i = self.example
        x = self.X_train[i:i + 1]
        y = self.y_train[i:i + 1].reshape(1, 1)
        zs, acts = self.net.forward(x, keep=True)
        g = self.net.backprop(x, y)
        return x, y, zs, acts, g

    def _check_unit(self, l: int, j: int) -> None:
        sizes = self.net.sizes
        if not 1 <= l < len(sizes):
            raise MessageError(f"layer {l}: the network has layers 1..{len(sizes) - 1}")
        if not 1 <= j <= sizes[l]:
            raise MessageError(f"layer {l} has neurons 1..{sizes[l]}, not {j}")

    def _common(self, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        i = self.example
        return {"example": {"index": i, "point": self.X_raw[self.train[i]].tolist(),
                            "a0": x[0].tolist(), "y": _f(y[0, 0])},
                "features": self.config["features"], "sizes": self.net.sizes,
                "activations": [layer.activation.name for layer in self.net.layers],
                "cost": self.net.cost.name, "theta": self.net.theta.tolist()}

    def neuron(self, l: int, j: int) -> dict[str, Any]:
        """z^l_j = w^l_j . a^{l-1} + b^l_j, a^l_j = sigma(z^l_j) and delta^l_j (BP1 or BP2)
        for the selected example, unrounded; l = 1..L and j = 1..n_l as in the text."""
        with self.lock:
            self._check_unit(l, j)
            x, y, zs, acts, g = self._example()
            net = self.net
            L = len(net.layers)
            layer = net.layers[l - 1]
            z = zs[l - 1]
            a = acts[l]
            sp = layer.activation.backward(z, a, np.ones_like(z))[0, j - 1]
            out = {**self._common(x, y), "layer": l, "neuron": j, "L": L,
                   "w": layer.W[j - 1].tolist(), "b": _f(layer.b[j - 1]),
                   "a_prev": acts[l - 1][0].tolist(), "z": _f(z[0, j - 1]),
                   "a": _f(a[0, j - 1]), "activation": layer.activation.name,
                   "sigma_prime": _f(sp), "delta": _f(g.delta[l - 1][0, j - 1]),
                   "cost_value": _f(g.cost)}
            if l == L:       # BP1: delta^L = grad_a C (Hadamard) sigma'(z^L)
                out["equation"] = "BP1"
                out["grad_a"] = _f(net.cost.grad_a(a, y)[0, j - 1])
            else:            # BP2: delta^l = ((W^{l+1})^T delta^{l+1}) (Hadamard) sigma'(z^l)
                out["equation"] = "BP2"
                out["w_next"] = net.layers[l].W[:, j - 1].tolist()
                out["delta_next"] = g.delta[l][0].tolist()
                out["back"] = _f(net.layers[l].W[:, j - 1] @ g.delta[l][0])
            return out

    def link(self, l: int, j: int, k: int) -> dict[str, Any]:
        """BP4 for one weight: dC/dw^l_jk = a^{l-1}_k delta^l_j, for the example and over
        the training set (what GD steps with)."""
        with self.lock:
            self._check_unit(l, j)
            if not 1 <= k <= self.net.sizes[l - 1]:
                raise MessageError(f"layer {l - 1} has nodes 1..{self.net.sizes[l - 1]}, "
                                   f"not {k}")
            x, y, zs, acts, g = self._example()
            full = self.net.backprop(self.X_train, self.y_train)
            return {**self._common(x, y), "layer": l, "j": j, "k": k,
                    "w": _f(self.net.layers[l - 1].W[j - 1, k - 1]),
                    "a_prev_k": _f(acts[l - 1][0, k - 1]),
                    "delta_j": _f(g.delta[l - 1][0, j - 1]),
                    "dC_dw": _f(g.dW[l - 1][j - 1, k - 1]),
                    "dC_dw_train": _f(full.dW[l - 1][j - 1, k - 1]),
                    "m_train": len(self.train), "lr": self.config["lr"]}

    def backward(self) -> dict[str, Any]:
        """One backward pass for the example, layer by layer from L down to 1."""
        with self.lock:
            x, y, zs, acts, g = self._example()
            net = self.net
            L = len(net.layers)
            layers = []
            for l in range(L, 0, -1):
                layer = net.layers[l - 1]
                sp = layer.activation.backward(zs[l - 1], acts[l], np.ones_like(zs[l - 1]))
                rec = {"layer": l, "z": zs[l - 1][0].tolist(), "a": acts[l][0].tolist(),
                       "sigma_prime": sp[0].tolist(), "delta": g.delta[l - 1][0].tolist(),
                       "activation": layer.activation.name}
                if l == L:
                    rec["equation"] = "BP1"
                    rec["grad_a"] = net.cost.grad_a(acts[L], y)[0].tolist()
                else:
                    rec["equation"] = "BP2"
                    rec["back"] = (g.delta[l][0] @ net.layers[l].W).tolist()
                layers.append(rec)
            return {**self._common(x, y), "cost_value": _f(g.cost), "layers": layers}

    def _theta_index(self, w: list[int]) -> int:
        """The index in Theta of w^l_jk (1-based l, j, k), found through the public
        ``unravel`` layout."""
        l, j, k = w
        self._check_unit(l, j)
        if not 1 <= k <= self.net.sizes[l - 1]:
            raise MessageError(f"w^{l}_{j}{k}: layer {l - 1} has nodes 1..{self.net.sizes[l - 1]}")
        probe = np.arange(self.net.theta.size)
        W, _ = self.net.unravel(probe)[l - 1]
        return int(W[j - 1, k - 1])

    def surface(self, w1: list[int], w2: list[int], steps: int = 31) -> dict[str, Any]:
        """The cost C over the training set as a function of two weights, every other
        parameter held at its current value (text 3.7), and the path of those two weights
        during training."""
        with self.lock:
            if self.diverged:
                raise MessageError("the training diverged (NaN or infinite weights): lower "
                                   "the learning rate and press Reset")
            i1, i2 = self._theta_index(w1), self._theta_index(w2)
            if i1 == i2:
                raise MessageError("pick two different weights")
            path = np.array(self.path)[:, [i1, i2]]
            now = self.net.theta[[i1, i2]].copy()
            half = np.maximum(1.0, 1.25 * np.abs(path - now).max(axis=0))
            u = np.linspace(now[0] - half[0], now[0] + half[0], steps)
            v = np.linspace(now[1] - half[1], now[1] + half[1], steps)
            probe = self.net.copy()
            C = np.empty((steps, steps))
            for r, wv in enumerate(v):
                for c, wu in enumerate(u):
                    probe.theta[i1], probe.theta[i2] = wu, wv
                    C[r, c] = probe.loss(self.X_train, self.y_train)
            keep = path if len(path) <= 600 else path[np.linspace(0, len(path) - 1, 600
                                                                   ).astype(int)]
            return {"w1": w1, "w2": w2, "u": u.tolist(), "v": v.tolist(),
                    "cost": [[_clean(c) for c in row] for row in C],
                    "path": keep.tolist(), "now": now.tolist(),
                    "cost_now": _clean(self.train_loss), "mode": self.config["mode"],
                    "epoch": self.epoch}

    # ------------------------------------------------------------------ export
    def export_model(self) -> bytes:
        """The network as a chainrule model file (safetensors) with its input feature map
        (x1^2, x1x2, sin(x1), ...) as ``input_map`` in the file's closed schema: evaluate,
        predict and explain apply it to raw (x1, x2) rows."""
        with self.lock:
            if self.diverged:
                raise MessageError("the network diverged (NaN or infinite weights); there "
                                   "is nothing to export")
            net = self.net.copy()
            net.preprocessing = {"feature_names": ["x1", "x2"], "target": "label",
                                 "input_map": list(self.config["features"])}
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "playground.safetensors"
            save_model(net, p)
            load_model(p)                     # what evaluate and explain will load
            return p.read_bytes()

    def export_csv(self) -> bytes:
        """Every point as raw (x1, x2) and its label: the file ``chainrule evaluate
        --dataset`` reads with the exported model, which applies its own input map."""
        with self.lock:
            classify = self.config["task"] == "classification"
            lines = [",".join(["x1", "x2", "label"])]
            for row, t in zip(self.X_raw, self.y):
                lab = str(int(t)) if classify else repr(float(t))
                lines.append(",".join(repr(float(v)) for v in row) + "," + lab)
            return (os.linesep.join(lines) + os.linesep).encode()


def _finite(a: np.ndarray) -> list[Any]:
    """An array as lists, with NaN and infinity (a diverged network) sent as 0."""
    return np.where(np.isfinite(a), a, 0.0).tolist()


def _clean(x: Any) -> float | None:
    """JSON has no NaN or infinity: a diverged loss is sent as null."""
    x = float(x)
    return x if np.isfinite(x) else None


def is_classification_dataset(name: str) -> bool:
    return name in CLASSIFY
