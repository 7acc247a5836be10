"""Feedforward networks in the text's notation (Parts II and IV).

Layout. Data is (m, n): one example a row. The text writes one example a column,
``z^l = W^l a^{l-1} + b^l``; with rows it reads ``Z^l = A^{l-1} (W^l)^T + b^l``, the same
equation transposed, and that transposition happens here only. ``W^l`` keeps the text's
shape (n_l, n_{l-1}): ``W[j, k]`` goes from node k of layer l-1 into node j of layer l.

Theta (text 3.8). All weights and biases live in one contiguous vector ``net.theta``;
each ``layer.W`` and ``layer.b`` is a view into it, and the gradient ``net.grad`` has the
same layout (``layer.dW``, ``layer.db``), so an optimiser step is one vectorised update.

The four equations of backpropagation are in :meth:`Network._backprop`, written once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _blas, _native
from .activations import Activation, get_activation
from .costs import Cost, get_cost, softmax_cross_entropy_hits
from .init import get_initializer

__all__ = ["Dense", "Network", "Gradients"]

Array = np.ndarray


class Dense:
    """A layer of neurons (text 2.3): ``a^l = sigma(W^l a^{l-1} + b^l)``.

    ``W`` (n_out, n_in) and ``b`` (n_out,) are views into the network's Theta once the
    layer belongs to a network; ``dW`` and ``db`` are the matching views of the gradient.
    """

    def __init__(self, n_in: int, n_out: int, activation: str | Activation | Callable[..., Any]
                 = "relu", init: str | None = None) -> None:
        for name, v in (("n_in", n_in), ("n_out", n_out)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Dense: {name} must be a positive integer, got {v!r}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.activation = get_activation(activation)
        self.init = init
        self.W: Array = np.zeros((self.n_out, self.n_in))
        self.b: Array = np.zeros(self.n_out)
        self.dW: Array = np.zeros_like(self.W)
        self.db: Array = np.zeros_like(self.b)
        # (W^l, b^l) and (dW^l, db^l) as the one slice of Theta (and grad) they share; set
        # by Network._bind (a lone layer has no Theta)
        self._seg: Array = np.empty(0)
        self._dseg: Array = np.empty(0)

    @property
    def size(self) -> int:
        return self.n_out * self.n_in + self.n_out

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation.name!r})"


@dataclass
class Gradients:
    """What backpropagation computes, per layer l = 1..L (index 0 is layer 1)."""

    cost: float
    delta: list[Array]   # delta^l = dC/dz^l, shape (m, n_l): the error of the nodes
    dW: list[Array]      # dC/dW^l, shape (n_l, n_{l-1})
    db: list[Array]      # dC/db^l, shape (n_l,)


class Network:
    """A feedforward network: layers, a cost, Theta and its gradient.

    >>> net = Network.from_sizes([2, 3, 1], hidden="tanh", output="identity", cost="mse")
    >>> net.theta.size, net.layers[0].W.shape
    (13, (3, 2))
    """

    def __init__(self, layers: Sequence[Dense], cost: str | Cost | Callable[..., Any] = "mse",
                 dtype: Any = np.float32, seed: int | None = 0) -> None:
        layers = list(layers)
        if not layers:
            raise ValueError("a network needs at least one layer")
        for i, (a, b) in enumerate(zip(layers, layers[1:])):
            if a.n_out != b.n_in:
                raise ValueError(f"layer {i + 1} has {a.n_out} outputs but layer {i + 2} "
                                 f"expects {b.n_in} inputs")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        self.layers = layers
        self.cost = get_cost(cost)
        out = layers[-1].activation
        if out.name == "softmax" and self.cost.name == "binary_cross_entropy":
            raise ValueError("binary_cross_entropy needs a sigmoid output, not softmax: use "
                             "cost='cross_entropy' with softmax")
        size = sum(layer.size for layer in layers)
        self.theta = np.zeros(size, self.dtype)
        self.grad = np.zeros(size, self.dtype)
        self.weight_mask = np.zeros(size, self.dtype)
        self._bind()
        self.history_: dict[str, list[float]] | None = None
        self.classes_: Array | None = None
        self.preprocessing: dict[str, Any] = {}
        self._buffers: dict[int, Any] = {}
        self._batch_hits: int | None = None
        # the two-thread pipe (chainrule._pipe) while fit runs on two cores, else None
        self._pipe: Any = None
        if seed is not None:
            self.initialize(seed)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_sizes(cls, sizes: Sequence[int], hidden: str | Activation | Callable[..., Any]
                   = "relu", output: str | Activation | Callable[..., Any] = "softmax",
                   cost: str | Cost | Callable[..., Any] | None = None, dtype: Any = np.float32,
                   seed: int | None = 0, init: str | None = None) -> Network:
        """``[n_0, n_1, ..., n_L]``: n_0 inputs, then the nodes of each layer.

        The cost defaults to cross-entropy for a softmax output, binary cross-entropy for
        a sigmoid output of one node, and the text's MSE otherwise.
        """
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError("sizes needs at least two entries: inputs and outputs, as in "
                             "[784, 100, 10]")
        layers = [Dense(a, b, hidden if i < len(sizes) - 2 else output, init)
                  for i, (a, b) in enumerate(zip(sizes, sizes[1:]))]
        if cost is None:
            out = layers[-1].activation.name
            cost = ("cross_entropy" if out == "softmax" else
                    "binary_cross_entropy" if out == "sigmoid" and sizes[-1] == 1 else "mse")
        return cls(layers, cost=cost, dtype=dtype, seed=seed)

    def _bind(self) -> None:
        """Point every W^l, b^l (and dW^l, db^l) at its slice of Theta (and grad)."""
        o = 0
        for layer, (W, b), (dW, db) in zip(self.layers, self.unravel(self.theta),
                                           self.unravel(self.grad)):
            layer.W, layer.b, layer.dW, layer.db = W, b, dW, db
            layer._seg, layer._dseg = self.theta[o:o + layer.size], self.grad[o:o + layer.size]
            o += layer.size
        for W, _ in self.unravel(self.weight_mask):
            W[...] = 1

    def unravel(self, theta: Any) -> list[tuple[Any, Any]]:
        """The (W^l, b^l) of each layer as views into a vector laid out like Theta (an
        array, or a traced vector inside chainrule.calculus).

        Layout: for each layer, W^l then b^l. W^l is stored column-major, that is as the
        rows of (W^l)^T, so that the products A (W^l)^T and (A^{l-1})^T delta^l of a
        batch of rows read and write it contiguously; ``W[j, k]`` is still w^l_jk.
        """
        out = []
        o = 0
        for layer in self.layers:
            nW = layer.n_out * layer.n_in
            W = theta[o:o + nW].reshape(layer.n_in, layer.n_out).T
            o += nW
            out.append((W, theta[o:o + layer.n_out]))
            o += layer.n_out
        return out

    def initialize(self, seed: int | np.random.Generator = 0) -> Network:
        """Draw W^l with He (ReLU family) or Glorot (others) initialisation, b^l = 0, from a
        numpy Generator seeded by the caller."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        for layer in self.layers:
            init = get_initializer(layer.init, layer.activation.name)
            layer.W[...] = init(rng, layer.n_out, layer.n_in)
            layer.b[...] = 0
        return self

    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def n_params(self) -> int:
        return int(self.theta.size)

    def __repr__(self) -> str:
        acts = [layer.activation.name for layer in self.layers]
        return (f"Network(sizes={self.sizes}, activations={acts}, cost={self.cost.name!r}, "
                f"dtype={self.dtype.name})")

    # ------------------------------------------------------------------ forward (Part II)
    def forward(self, X: Array, keep: bool = False) -> Any:
        """Forward propagation a^0 -> a^1 -> ... -> a^L (text 2.3).

        Returns a^L, or with ``keep`` the lists ``(zs, activations)`` where
        ``zs[l-1] = z^l`` and ``activations[l] = a^l`` (``activations[0]`` is the input).
        """
        X = self._check_X(X)
        return self._propagate(X, keep=True) if keep else self._propagate(X)[1]

    def _propagate(self, X: Array, keep: bool = False) -> tuple[Any, Any]:
        """(z^L, a^L) of an already checked X; with ``keep`` the lists (zs, activations)
        of :meth:`forward`."""
        a = z = X
        zs, acts = [], [X]
        for layer in self.layers:
            z = a @ layer.W.T                     # z^l = W^l a^{l-1} + b^l (rows: A W^T + b)
            z += layer.b
            a = layer.activation.forward(z)       # a^l = sigma(z^l)
            if keep:
                zs.append(z)
                acts.append(a)
        return (zs, acts) if keep else (z, a)

    def _check_X(self, X: Any) -> Array:
        X = np.asarray(X)
        if X.ndim == 1 and X.shape[0] == self.layers[0].n_in:
            raise ValueError(f"X has shape {X.shape}: one example must be a row of shape "
                             f"(1, {X.shape[0]}); use X.reshape(1, -1)")
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D array (examples x features), got shape "
                             f"{X.shape}")
        if X.shape[1] != self.layers[0].n_in:
            raise ValueError(f"X has {X.shape[1]} features but the network expects "
                             f"{self.layers[0].n_in}")
        if X.dtype.kind not in "fiub":
            raise ValueError(f"X must be numeric, got dtype {X.dtype}")
        X = X.astype(self.dtype, copy=False)
        if not _all_finite(X):
            raise ValueError("X contains NaN or infinite values: remove or impute them")
        return X

    # ------------------------------------------------------------------ backprop (Part IV)
    def _buffers_for(self, m: int) -> Any:
        buf = self._buffers.get(m)
        if buf is None:
            dt = self.dtype
            zs = [np.empty((m, layer.n_out), dt) for layer in self.layers]
            acts = [np.empty((m, layer.n_out), dt) for layer in self.layers]
            # back[l] holds (W^{l+1})^T delta^{l+1} for l >= 1; the input needs none
            back = [None] + [np.empty((m, layer.n_in), dt) for layer in self.layers[1:]]
            back.append(np.empty((m, self.layers[-1].n_out), dt))  # delta^L
            if len(self._buffers) > 4:
                self._buffers.clear()
            buf = self._buffers[m] = (zs, acts, back)
        return buf

    def _backprop(self, X: Array, Y: Array, keep: bool = False,
                  descend: tuple[float, float] | None = None) -> Any:
        """One forward and one backward pass over a batch (X, Y); fills ``self.grad`` with
        dC/dTheta and returns the cost (and, with ``keep``, every delta^l). ``Y``: the
        targets (m, n_L), or the m int64 class labels of a classifier.

        ``descend=(lr, wd)`` also takes the plain gradient-descent step
        ``W^l <- (1 - lr wd) W^l - lr dC/dW^l``, ``b^l <- b^l - lr dC/db^l`` inside the
        backward pass: BP4 becomes one BLAS product that adds into W^l (``_blas.gemm_tn``),
        so dW^l is never formed, and ``self.grad`` is not the gradient after such a step.
        Each W^l is updated after BP2 has read it.

        The four equations of backpropagation, with the 1/m of the cost inside delta^L:
          BP1  delta^L = grad_a C (Hadamard) sigma'(z^L)
          BP2  delta^l = ((W^{l+1})^T delta^{l+1}) (Hadamard) sigma'(z^l)
          BP3  dC/db^l = delta^l                (summed over the examples)
          BP4  dC/dW^l = delta^l (a^{l-1})^T    (summed over the examples)
        """
        m = X.shape[0]
        zs, acts, back = self._buffers_for(m)
        layers = self.layers
        out = layers[-1].activation
        cost = self.cost
        fast_xent = self._fast_xent()
        if Y.ndim == 1 and not fast_xent:     # class labels stand for their one-hot rows
            Y = self._one_hot(Y, layers[-1].n_out)
        # the compiled kernels (_kernels.c) fuse the element-wise steps where they apply
        k = _native.kernels() if X.flags.c_contiguous else None
        f64 = self.dtype == np.float64
        a = self._forward_cached(X, zs, acts, fast_xent, k)
        # BP1: the error of the output layer
        self._batch_hits = None                 # rows classified right, when known here
        db_done = False                         # BP3 of the output layer already done
        if fast_xent:  # softmax and its cross-entropy fused: (a^L - y)/m
            value, a, delta, self._batch_hits, db_done = softmax_cross_entropy_hits(
                zs[-1], acts[-1], Y, back[-1], b=layers[-1].b, db=layers[-1].db)
            if keep:
                delta = delta.copy()
        elif cost.fused_with == out.name:
            delta = cost.delta(zs[-1], a, Y)                  # fused: (a^L - y)/m
            value = cost.value(a, Y, zs[-1])
        else:
            delta = out.backward(zs[-1], a, cost.grad_a(a, Y))
            value = cost.value(a, Y, None)
        deltas = [delta] if keep else None
        pipe = self._pipe
        for l in range(len(layers) - 1, -1, -1):
            layer = layers[l]
            a_prev = X if l == 0 else acts[l - 1]
            # the pipe takes this layer's products (its own checks say yes or no; the
            # size test here spares the small layers a call that would say no)
            split = pipe is not None and m * layer.n_in * layer.n_out >= DESCEND_BLAS_MIN
            if not db_done:
                np.add.reduce(delta, axis=0, out=layer.db)    # BP3
            if descend is None and not (split and pipe.matmul(a_prev.T, delta, layer.dW.T)):
                np.matmul(a_prev.T, delta, out=layer.dW.T)   # BP4 (as its transpose)
            db_done = False
            delta_l = delta
            if l > 0:                                         # BP2
                g = back[l]
                if not (split and pipe.matmul(delta, layer.W, g)):
                    np.matmul(delta, layer.W, out=g)
                below = layers[l - 1]
                if k is not None and below.activation.builtin and \
                        below.activation.name == "relu":
                    # delta^{l-1} = g (Hadamard) relu'(z), and BP3 for layer l-1, one pass
                    k.relu_back_bias(g, zs[l - 1], below.db, m, below.n_out, f64)
                    delta, db_done = g, True
                else:
                    delta = _backward_inplace(below.activation, zs[l - 1], acts[l - 1], g)
                if keep:
                    deltas.insert(0, delta.copy())
            if descend is not None:                           # BP4 and the step, W^l read
                _descend(layer, a_prev, delta_l, *descend, pipe=pipe if split else None)
        if keep:
            return value, deltas
        return value

    def _forward_cached(self, X: Array, zs: list[Array], acts: list[Array], fast_xent: bool,
                        k: Any) -> Array:
        """Forward propagation into the batch buffers, keeping every z^l and a^l; with
        ``fast_xent`` it stops at z^L (the fused output layer takes it from there)."""
        m = X.shape[0]
        f64 = self.dtype == np.float64
        a = X
        last = len(self.layers) - 1
        pipe = self._pipe
        for l, layer in enumerate(self.layers):
            z = zs[l]
            if pipe is None or m * layer.n_in * layer.n_out < DESCEND_BLAS_MIN or \
                    not pipe.matmul(a, layer.W.T, z):
                np.matmul(a, layer.W.T, out=z)               # z^l = W^l a^{l-1} + b^l
            if fast_xent and l == last:
                break                    # z^L += b^L happens in the fused output layer
            if k is not None and layer.activation.builtin and layer.activation.name == "relu":
                k.bias_relu(z, layer.b, acts[l], m, layer.n_out, f64)   # z += b; a = relu
                a = acts[l]
                continue
            z += layer.b
            a = _forward_into(layer.activation, z, acts[l])   # a^l = sigma(z^l)
            acts[l] = a
        return a

    def _fast_xent(self) -> bool:
        out = self.layers[-1].activation
        return (self.cost.builtin and out.builtin and self.cost.name == "cross_entropy"
                and out.name == "softmax")

    def backprop(self, X: Any, y: Any) -> Gradients:
        """Backpropagation on (X, y) by the four equations: the cost and every delta^l,
        dC/dW^l and dC/db^l (copies; ``self.grad`` holds the same numbers as Theta's
        gradient)."""
        X = self._check_X(X)
        Y = self._targets(y, X.shape[0])
        value, deltas = self._backprop(X, Y, keep=True)
        return Gradients(value, deltas, [layer.dW.copy() for layer in self.layers],
                         [layer.db.copy() for layer in self.layers])

    def loss(self, X: Any, y: Any) -> float:
        """The cost C on (X, y)."""
        X = self._check_X(X)
        return self._score(X, self._targets(y, X.shape[0]))[0]

    def _score(self, X: Array, Y: Array, batch_size: int = 8192) -> tuple[float, float]:
        """(cost, accuracy) of checked arrays X and targets Y, in one forward pass per
        batch."""
        fused = self.cost.fused_with == self.layers[-1].activation.name
        total, correct, m = 0.0, 0, X.shape[0]
        fast = self._fast_xent() and X.flags.c_contiguous and Y.flags.c_contiguous
        k = _native.kernels() if fast else None
        for i in range(0, m, batch_size):
            xb, yb = X[i:i + batch_size], Y[i:i + batch_size]
            if k is not None:
                # the training step's buffers and kernels: cost and hits in one pass
                zs, acts, back = self._buffers_for(xb.shape[0])
                self._forward_cached(xb, zs, acts, True, k)
                value, _, _, hits, _ = softmax_cross_entropy_hits(
                    zs[-1], acts[-1], yb, back[-1], b=self.layers[-1].b)
                if hits is not None:
                    total += value * xb.shape[0]
                    correct += hits
                    continue
            z, a = self._propagate(xb)
            total += self.cost.value(a, yb, z if fused else None) * xb.shape[0]
            if a.shape[1] > 1:
                correct += int(np.count_nonzero(np.argmax(a, 1) == np.argmax(yb, 1)))
            else:
                correct += int(np.count_nonzero((a[:, 0] > 0.5) == (yb[:, 0] > 0.5)))
        return total / m, correct / m

    # ------------------------------------------------------------------ targets
    @property
    def is_classifier(self) -> bool:
        out = self.layers[-1]
        return out.activation.name in ("softmax", "sigmoid") or self.cost.name != "mse" or \
            self.classes_ is not None

    def _targets(self, y: Any, m: int) -> Array:
        """Targets as an (m, n_L) array: integer labels become one-hot rows."""
        n_out = self.layers[-1].n_out
        y = np.asarray(y)
        if y.shape[0:1] != (m,):
            raise ValueError(f"X has {m} examples but y has {y.shape[0] if y.ndim else 0}: "
                             f"they must have the same length")
        if y.dtype.kind not in "fiub":
            raise ValueError(f"y must be numeric labels or targets, got dtype {y.dtype}; "
                             f"map class names to 0..k-1 first (chainrule.data.LabelEncoder)")
        if y.ndim == 1:
            if n_out == 1:
                y = y.reshape(-1, 1)
            else:
                return self._one_hot(y, n_out)
        if y.ndim != 2 or y.shape[1] != n_out:
            raise ValueError(f"y has shape {y.shape} but the network has {n_out} outputs: "
                             f"pass labels of shape ({m},) or targets of shape ({m}, {n_out})")
        y = y.astype(self.dtype, copy=False)
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinite values")
        return y

    def _one_hot(self, labels: Array, k: int) -> Array:
        if labels.dtype.kind == "f":
            if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
                raise ValueError("y has fractional or non-finite values but the network has "
                                 f"{k} outputs: pass integer class labels 0..{k - 1}")
        if labels.size and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(f"labels must be in 0..{k - 1} for a network with {k} outputs; "
                             f"got values from {labels.min():g} to {labels.max():g}")
        Y = np.zeros((labels.shape[0], k), self.dtype)
        Y[np.arange(labels.shape[0]), labels.astype(np.intp)] = 1
        return Y

    # ------------------------------------------------------------------ use
    def predict_proba(self, X: Any, batch_size: int = 4096) -> Array:
        """a^L for each row of X, in batches."""
        X = self._check_X(X)
        if X.shape[0] <= batch_size:
            return self._propagate(X)[1]
        return np.concatenate([self._propagate(X[i:i + batch_size])[1]
                               for i in range(0, X.shape[0], batch_size)])

    def predict(self, X: Any) -> Array:
        """Class labels (argmax of a^L, or a^L > 0.5 for one sigmoid output) for a
        classifier; a^L itself for a regressor. With ``classes_`` set, the labels are
        mapped back to the class names."""
        A = self.predict_proba(X)
        if not self.is_classifier:
            return A[:, 0] if A.shape[1] == 1 else A
        idx = (A[:, 0] > 0.5).astype(np.intp) if A.shape[1] == 1 else np.argmax(A, axis=1)
        return self.classes_[idx] if self.classes_ is not None else idx

    def accuracy(self, X: Any, y: Any) -> float:
        """The fraction of rows whose predicted class equals y (labels or one-hot)."""
        y = np.asarray(y)
        A = self.predict_proba(X)
        if y.shape[0] != A.shape[0]:
            raise ValueError(f"X has {A.shape[0]} examples but y has {y.shape[0]}")
        pred = (A[:, 0] > 0.5).astype(np.intp) if A.shape[1] == 1 else np.argmax(A, axis=1)
        true = np.argmax(y, axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)
        return float(np.mean(pred == true))

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """{"loss": C, "accuracy": ...} (accuracy for classifiers only)."""
        out = {"loss": self.loss(X, y)}
        if self.is_classifier:
            out["accuracy"] = self.accuracy(X, y)
        return out

    def fit(self, X: Any, y: Any, **kwargs: Any) -> dict[str, list[float]]:
        """Train with minibatch SGD or another optimiser; see :func:`chainrule.training.fit`.
        Returns the history (also kept in ``history_``)."""
        from ..training import fit

        return fit(self, X, y, **kwargs)

    def copy(self) -> Network:
        """An independent copy (its own Theta)."""
        new = Network([Dense(layer.n_in, layer.n_out, layer.activation, layer.init)
                       for layer in self.layers], cost=self.cost, dtype=self.dtype, seed=None)
        new.theta[...] = self.theta
        new.classes_ = None if self.classes_ is None else self.classes_.copy()
        new.preprocessing = dict(self.preprocessing)
        return new


# below this many multiply-adds (batch x fan-in x fan-out) BP4 and the step stay NumPy
# calls: a ctypes call to BLAS costs more than the product (benchmarks/NOTES.md)
DESCEND_BLAS_MIN = 1 << 20


def _all_finite(X: Array, chunk: int = 1 << 20) -> bool:
    """``np.isfinite(X).all()`` in slices of about ``chunk`` entries: the same answer
    without a boolean array the size of X (47 MB for MNIST, the peak of a fit run).

    >>> _all_finite(np.ones((3, 4))), _all_finite(np.array([[1.0, np.nan]]))
    (True, False)
    """
    if X.ndim < 2 or X.size <= chunk:
        return bool(np.isfinite(X).all())
    rows = max(1, chunk // max(1, X[0].size))
    return all(bool(np.isfinite(X[i:i + rows]).all()) for i in range(0, X.shape[0], rows))


def descend_pays(layers: Sequence[Dense], m: int) -> bool:
    """Whether taking plain SGD's step inside BP4 saves time at batch size m: some layer's
    product is large enough for the BLAS path of :func:`_descend`. Otherwise one update
    of all of Theta is fewer calls than one per layer.

    >>> net = Network.from_sizes([784, 100, 10])
    >>> descend_pays(net.layers, 10), descend_pays(net.layers, 256)
    (False, True)
    """
    return any(m * layer.n_in * layer.n_out >= DESCEND_BLAS_MIN for layer in layers)


def _descend(layer: Dense, a_prev: Array, delta: Array, lr: float, wd: float,
             pipe: Any = None) -> None:
    """W^l <- (1 - lr wd) W^l - lr (A^{l-1})^T delta^l and b^l <- b^l - lr dC/db^l, with
    W^l held as the C-contiguous rows of (W^l)^T: one BLAS product for the large layers,
    BP4 into dW^l and one update of the layer's slice of Theta for the small ones.
    Leaves db^l (and dW^l) scaled by -lr: they are not the gradient after this step."""
    if delta.shape[0] * layer.n_in * layer.n_out >= DESCEND_BLAS_MIN and (
            (pipe is not None and pipe.matmul(a_prev.T, delta, layer.W.T, -lr,
                                              1.0 - lr * wd)) or
            _blas.gemm_tn(-lr, a_prev, delta, 1.0 - lr * wd, layer.W.T)):
        db = layer.db
        db *= -lr
        layer.b += db
        return
    np.matmul(a_prev.T, delta, out=layer.dW.T)
    if wd:
        layer.W *= 1.0 - lr * wd
    d = layer._dseg
    d *= -lr
    layer._seg += d


def _forward_into(act: Activation, z: Array, out: Array) -> Array:
    """a = sigma(z), written into ``out`` for the built-ins on the hot path."""
    name = act.name if act.builtin else ""
    if name == "relu":
        return np.maximum(z, 0, out=out)
    if name == "identity":
        return z
    if name == "tanh":
        return np.tanh(z, out=out)
    return act.forward(z)


def _backward_inplace(act: Activation, z: Array, a: Array, g: Array) -> Array:
    """grad_z = g (Hadamard) sigma'(z), written into g for the built-ins on the hot path."""
    name = act.name if act.builtin else ""
    if name == "relu":
        return np.multiply(g, z > 0, out=g)
    if name == "identity":
        return g
    if name in ("sigmoid", "tanh"):
        return np.multiply(g, act.backward(z, a, np.ones((), g.dtype)), out=g)
    return act.backward(z, a, g)
