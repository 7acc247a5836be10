"""Feedforward networks in the text's notation (Parts II and IV).

Layout. Data is (m, n): one example a row. The text writes one example a column,
``z^l = W^l a^{l-1} + b^l``; with rows it reads ``Z^l = A^{l-1} (W^l)^T + b^l``, the same
equation transposed, and that transposition happens here only. ``W^l`` keeps the text's
shape (n_l, n_{l-1}): ``W[j, k]`` goes from node k of layer l-1 into node j of layer l.

Theta (text 3.8). All weights and biases live in one contiguous vector ``net.theta``;
each ``layer.W`` and ``layer.b`` is a view into it, and the gradient ``net.grad`` has the
same layout (``layer.dW``, ``layer.db``), so an optimiser step is one vectorised update.

The mathematics is written once, here, against the engine's small interface
(``chainrule.engine``): forward propagation in :meth:`Network._forward` and the four
equations of backpropagation in :meth:`Network._backprop`. Which engine computes it (the
NumPy reference, the fast one, or one of your own) is chosen once, when the network is
made; nothing here asks which.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import ENGINES, get_engine, one_hot
from .activations import Activation, get_activation
from .costs import Cost, get_cost
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

    def layer(self, l: int) -> tuple[Array, Array, Array]:
        """(delta^l, dC/dW^l, dC/db^l) by the text's layer number l = 1..L (the lists
        above are 0-based: ``delta[0]`` is delta^1).

        >>> g = Network.from_sizes([2, 3, 1]).backprop([[1.0, 2.0]], [[0.5]])
        >>> g.layer(2)[0].shape, g.layer(1)[1].shape
        ((1, 1), (3, 2))
        """
        L = len(self.delta)
        if not isinstance(l, (int, np.integer)) or isinstance(l, bool) or not 1 <= l <= L:
            raise IndexError(f"layer l={l!r}: the text numbers the layers l = 1..{L} "
                             f"(the input is layer 0 and has no delta)")
        return self.delta[l - 1], self.dW[l - 1], self.db[l - 1]


class Network:
    """A feedforward network: layers, a cost, Theta and its gradient.

    >>> net = Network.from_sizes([2, 3, 1], hidden="tanh", output="identity", cost="mse")
    >>> net.theta.size, net.layers[0].W.shape
    (13, (3, 2))
    """

    def __init__(self, layers: Sequence[Dense], cost: str | Cost | Callable[..., Any] = "mse",
                 dtype: Any = np.float32, seed: int | None = 0, engine: Any = None) -> None:
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
        # [n_0, ..., n_L] as the engine's key for its buffers (the layers are fixed)
        self._shape = tuple([layers[0].n_in] + [layer.n_out for layer in layers])
        self.cost = get_cost(cost)
        out = layers[-1].activation
        if out.name == "softmax" and self.cost.name == "binary_cross_entropy":
            raise ValueError("binary_cross_entropy needs a sigmoid output, not softmax: use "
                             "cost='cross_entropy' with softmax")
        size = sum(layer.size for layer in layers)
        # what computes the mathematics below: chosen once (chainrule.engine); it also
        # lays out Theta and its gradient (slots 0 and 1 of the step's long vectors)
        self.engine = get_engine(engine)
        self.theta = self.engine.zeros(size, self.dtype, 0)
        self.grad = self.engine.zeros(size, self.dtype, 1)
        self.weight_mask = np.zeros(size, self.dtype)
        self._bind()
        self.history_: dict[str, list[float]] | None = None
        self.classes_: Array | None = None
        self.preprocessing: dict[str, Any] = {}
        # where a trained model came from (data name and hash, split, seed; the CLI fills it)
        self.provenance: dict[str, Any] | None = None
        if seed is not None:
            self.initialize(seed)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_sizes(cls, sizes: Sequence[int], hidden: str | Activation | Callable[..., Any]
                   = "relu", output: str | Activation | Callable[..., Any] = "softmax",
                   cost: str | Cost | Callable[..., Any] | None = None, dtype: Any = np.float32,
                   seed: int | None = 0, init: str | None = None, engine: Any = None
                   ) -> Network:
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
        return cls(layers, cost=cost, dtype=dtype, seed=seed, engine=engine)

    def _bind(self) -> None:
        """Point every W^l, b^l (and dW^l, db^l) at its slice of Theta (and grad)."""
        for layer, (W, b), (dW, db) in zip(self.layers, self.unravel(self.theta),
                                           self.unravel(self.grad)):
            layer.W, layer.b, layer.dW, layer.db = W, b, dW, db
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
            init = get_initializer(layer.init, layer.activation)
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
        X = self.check_X(X)
        zs, acts = self._fresh(X.shape[0]), self._fresh(X.shape[0])
        aL = self._forward(X, zs, acts)
        if keep:
            return zs, [X] + acts[:-1] + [aL]
        return aL

    def _fresh(self, m: int) -> list[Array]:
        return [np.empty((m, n), self.dtype) for n in self._shape[1:]]

    def _forward(self, X: Array, zs: list[Array], acts: list[Array],
                 output: bool = True) -> Array:
        """Forward propagation into the buffers zs (z^l) and acts (a^l): returns a^L, or,
        without ``output``, W^L a^{L-1} (the output layer's bias and sigma are then
        taken with BP1, :meth:`_backprop`)."""
        eng = self.engine
        a = X
        L = len(self.layers)
        for l, layer in enumerate(self.layers, 1):
            z = eng.matmul(a, layer.W.T, zs[l - 1])            # z^l = W^l a^{l-1} + b^l
            if l == L and not output:                         #   (rows: Z = A W^T + b)
                return z
            a = acts[l - 1] = eng.bias_activation(z, layer.b, layer.activation,
                                                  acts[l - 1])  # a^l = sigma(z^l)
        return a

    def check_X(self, X: Any) -> Array:
        """X as a checked 2-D array of this network's dtype (examples x features), or a
        ValueError that says what is wrong."""
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
    def _backprop(self, X: Array, Y: Array, keep: bool = False,
                  descend: tuple[float, float] | None = None) -> tuple[float, Any]:
        """One forward and one backward pass over a batch of checked rows X and targets
        Y (see :meth:`targets`): fills ``self.grad`` with dC/dTheta and returns
        (C, hits), hits the rows classified right where the engine counted them; with
        ``keep``, (C, every delta^l). With ``descend=(alpha, wd)``, BP4 and BP3 land in
        Theta instead: W^l <- (1 - alpha wd) W^l - alpha dC/dW^l, b^l <- b^l - alpha
        dC/db^l (plain gradient descent, one product a layer; ``self.grad`` then holds
        only dC/db).

        The four equations of backpropagation, with the 1/m of the cost inside delta^L:
          BP1  delta^L = grad_a C (Hadamard) sigma'(z^L)
          BP2  delta^l = ((W^{l+1})^T delta^{l+1}) (Hadamard) sigma'(z^l)
          BP3  dC/db^l = delta^l                (summed over the examples)
          BP4  dC/dW^l = delta^l (a^{l-1})^T    (summed over the examples)
        """
        eng, L = self.engine, len(self.layers)
        zs, acts, back = eng.workspace(self._shape, X.shape[0], self.dtype)
        z = self._forward(X, zs, acts, output=False)
        out = self.layers[-1]
        C, a, delta, hits = eng.output_error(z, out.b, out.activation, self.cost, Y,
                                             acts[-1], back[L], out.db)   # BP1
        deltas = [delta.copy()] if keep else None
        for l in range(L, 0, -1):
            layer, a_prev = self.layers[l - 1], (X if l == 1 else acts[l - 2])
            eng.sum_rows(delta, layer.db)                                  # BP3
            if l > 1:  # (W^l)^T delta^l, read before a descend step changes W^l
                g = eng.matmul(delta, layer.W, back[l - 1])
            if descend is None:
                eng.matmul(a_prev.T, delta, layer.dW.T)                    # BP4
            else:
                alpha, wd = descend
                eng.matmul(a_prev.T, delta, layer.W.T, -alpha, 1.0 - alpha * wd)
                eng.axpy(-alpha, layer.db, layer.b)
            if l > 1:
                below = self.layers[l - 2]
                delta = eng.act_backward(below.activation, zs[l - 2], acts[l - 2], g,
                                         below.db)                            # BP2
                if keep:
                    deltas.insert(0, delta.copy())
        if keep:
            return C, deltas
        return C, _hits(a, Y) if hits is None else hits

    def gradient(self, X: Array, Y: Array, descend: tuple[float, float] | None = None
                 ) -> tuple[float, int | None]:
        """The training step's backpropagation on checked rows X and targets Y (from
        :meth:`check_X` and :meth:`targets`): fills ``self.grad``, the one Theta-shaped
        gradient, and returns (C, hits); hits counts the rows classified right (None for
        a network without class labels). ``descend``: see :meth:`_backprop`.

        >>> net = Network.from_sizes([2, 3, 2], dtype=np.float64)
        >>> X = np.array([[0.5, -1.0]])
        >>> C, hits = net.gradient(X, net.targets([1], 1, labels=True))
        >>> bool(np.isclose(C, net.loss(X, [1]))), hits in (0, 1)
        (True, True)
        >>> bool(np.allclose(net.layers[0].dW, net.backprop(X, [1]).dW[0]))
        True
        """
        return self._backprop(X, Y, descend=descend)

    def backprop(self, X: Any, y: Any) -> Gradients:
        """Backpropagation on (X, y) by the four equations: the cost and every delta^l,
        dC/dW^l and dC/db^l (copies; ``self.grad`` holds the same numbers as Theta's
        gradient)."""
        X = self.check_X(X)
        Y = self.targets(y, X.shape[0])
        value, deltas = self._backprop(X, Y, keep=True)
        return Gradients(value, deltas, [layer.dW.copy() for layer in self.layers],
                         [layer.db.copy() for layer in self.layers])

    def loss(self, X: Any, y: Any) -> float:
        """The cost C on (X, y)."""
        X = self.check_X(X)
        return self.score(X, self.targets(y, X.shape[0]))[0]

    def score(self, X: Array, Y: Array, batch_size: int = 8192) -> tuple[float, float]:
        """(cost, accuracy) of checked rows X and targets Y (:meth:`check_X`,
        :meth:`targets`), in one forward pass per batch."""
        eng, L = self.engine, len(self.layers)
        out = self.layers[-1]
        total, correct, m = 0.0, 0, X.shape[0]
        for i in range(0, m, batch_size):
            xb, yb = X[i:i + batch_size], Y[i:i + batch_size]
            zs, acts, back = eng.workspace(self._shape, xb.shape[0], self.dtype)
            z = self._forward(xb, zs, acts, output=False)
            C, a, _, hits = eng.output_error(z, out.b, out.activation, self.cost, yb,
                                             acts[-1], back[L])
            total += C * xb.shape[0]
            correct += _hits(a, yb, always=True) if hits is None else hits
        return total / m, correct / m

    # ------------------------------------------------------------------ targets
    @property
    def is_classifier(self) -> bool:
        out = self.layers[-1]
        return out.activation.name in ("softmax", "sigmoid") or self.cost.name != "mse" or \
            self.classes_ is not None

    def targets(self, y: Any, m: int, labels: bool = False) -> Array:
        """Targets for m rows as an (m, n_L) array: integer labels become one-hot rows.
        With ``labels``, a classifier of several outputs gets its m int64 class labels
        instead (they stand for their one-hot rows, and move 8 bytes a row)."""
        n_out = self.layers[-1].n_out
        y = self._label_indices(np.asarray(y))
        if y.shape[0:1] != (m,):
            raise ValueError(f"X has {m} examples but y has {y.shape[0] if y.ndim else 0}: "
                             f"they must have the same length")
        if y.dtype.kind not in "fiub":
            raise ValueError(f"y must be numeric labels or targets, got dtype {y.dtype}; "
                             f"net.fit(X, y) learns class names (classes_), or map them to "
                             f"0..k-1 first (chainrule.data.LabelEncoder)")
        if y.ndim == 1:
            if n_out == 1:
                y = y.reshape(-1, 1)
            else:
                Y = self._one_hot(y, n_out)
                return y.astype(np.int64) if labels else Y
        if y.ndim != 2 or y.shape[1] != n_out:
            raise ValueError(f"y has shape {y.shape} but the network has {n_out} outputs: "
                             f"pass labels of shape ({m},) or targets of shape ({m}, {n_out})")
        y = y.astype(self.dtype, copy=False)
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinite values")
        if labels and n_out > 1 and self.is_classifier:
            k = np.argmax(y, axis=1)
            if np.array_equal(y, self._one_hot(k, n_out)):
                return k.astype(np.int64)
        return y

    def _one_hot(self, labels: Array, k: int) -> Array:
        if labels.dtype.kind == "f":
            if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
                raise ValueError("y has fractional or non-finite values but the network has "
                                 f"{k} outputs: pass integer class labels 0..{k - 1}")
        if labels.size and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(f"labels must be in 0..{k - 1} for a network with {k} outputs; "
                             f"got values from {labels.min():g} to {labels.max():g}")
        return one_hot(labels, k, self.dtype)

    # ------------------------------------------------------------------ use
    def predict_proba(self, X: Any, batch_size: int = 4096) -> Array:
        """a^L for each row of X, in batches."""
        X = self.check_X(X)
        parts = [self._forward(xb, self._fresh(xb.shape[0]), self._fresh(xb.shape[0]))
                 for xb in (X[i:i + batch_size] for i in range(0, X.shape[0], batch_size))]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def predict(self, X: Any) -> Array:
        """Class labels (argmax of a^L, or a^L > 0.5 for one sigmoid output) for a
        classifier; a^L itself for a regressor. With ``classes_`` set, the labels are
        mapped back to the class names."""
        A = self.predict_proba(X)
        if not self.is_classifier:
            return A[:, 0] if A.shape[1] == 1 else A
        idx = (A[:, 0] > 0.5).astype(np.intp) if A.shape[1] == 1 else np.argmax(A, axis=1)
        return self.classes_[idx] if self.classes_ is not None else idx

    def layer(self, l: int) -> Dense:
        """Layer l = 1..L by the text's numbering (``layers`` is 0-based: ``layers[0]`` is
        layer 1, holding W^1 and b^1).

        >>> Network.from_sizes([4, 8, 3]).layer(1).W.shape
        (8, 4)
        """
        L = len(self.layers)
        if not isinstance(l, (int, np.integer)) or isinstance(l, bool) or not 1 <= l <= L:
            raise IndexError(f"layer l={l!r}: the text numbers the layers l = 1..{L} "
                             f"(the input is layer 0 and has no weights)")
        return self.layers[l - 1]

    def _label_indices(self, y: Array) -> Array:
        """Class names (strings, as in ``classes_``) to their indices; numeric labels are
        indices already and stay as they are."""
        if self.classes_ is None or y.ndim != 1 or not len(y) or y.dtype.kind not in "USO":
            return y
        names, ys = self.classes_.astype(str), y.astype(str)
        order = np.argsort(names, kind="stable")
        pos = np.minimum(np.searchsorted(names[order], ys), len(names) - 1)
        known = names[order][pos] == ys
        if not known.all():
            raise ValueError(f"y has label(s) {', '.join(np.unique(ys[~known])[:5])} that are "
                             f"not among the network's classes_ ({', '.join(names[:10])})")
        return order[pos].astype(np.int64)

    def accuracy(self, X: Any, y: Any) -> float:
        """The fraction of rows whose predicted class equals y (labels, class names as in
        ``classes_``, or one-hot rows). A regressor has no accuracy: this raises."""
        if not self.is_classifier:
            raise ValueError("accuracy() is for classifiers, and this network is a regressor "
                             f"(output activation {self.layers[-1].activation.name}, cost "
                             f"{self.cost.name}); use net.loss(X, y) or the RMSE, "
                             f"np.sqrt(np.mean((net.predict(X) - y) ** 2))")
        y = self._label_indices(np.asarray(y))
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

    def fit(self, X: Any, y: Any, *, epochs: int = 10, batch_size: int | None = 64,
            optimizer: Any = "adam", lr: float | None = None,
            schedule: str | Callable[[int], float] | None = "cosine",
            weight_decay: float = 0.0, clip_norm: float | None = None,
            validation_data: tuple[Any, Any] | None = None, validation_split: float = 0.0,
            callbacks: Sequence[Any] | None = None, hooks: Sequence[Any] = (),
            early_stopping: int | None = None, seed: int = 0, shuffle: bool = True,
            drop_last: bool = False, verbose: int | bool = 1, stream: Any = None,
            initial_epoch: int = 0, history: dict[str, list[float]] | None = None,
            callback_states: dict[str, Any] | None = None,
            blas_threads: int | str | None = "auto", comm: Any = None
            ) -> dict[str, list[float]]:
        """Train on (X, y) with minibatches; returns the history (also ``history_``).

        X: (m, n_0) rows of examples. y: class labels 0..k-1, class names (strings: they
        become ``classes_``, sorted, as scikit-learn does), one-hot rows, or (m, n_L)
        targets for a regressor.
        epochs, batch_size: passes over the data and rows per step (None: full batch).
        optimizer: "gd", "sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw" or an
        Optimizer; lr: its learning rate alpha (default: per optimiser, 3e-3 for Adam);
        schedule: "cosine", "constant" or a function of the step; weight_decay: L2;
        clip_norm: clip the gradient's norm.
        validation_data=(X_val, y_val) or validation_split (a fraction of X): scored after
        each epoch; early_stopping=k stops after k epochs without improvement of the
        validation loss and restores the best weights.
        callbacks, hooks: see chainrule.training; seed: the shuffles (the same seed gives
        bit-identical weights); verbose: a progress line per epoch on stderr or ``stream``.
        initial_epoch, history, callback_states: continue an earlier run (a checkpoint's);
        blas_threads: "auto", a count or None; comm: an MPI communicator whose ranks train
        this model together (docs/scaling.md). See :func:`chainrule.training.fit`.

        >>> X = np.random.default_rng(0).normal(size=(200, 2))
        >>> y = np.where(X[:, 0] > 0, "right", "left")
        >>> net = Network.from_sizes([2, 8, 2], seed=0)
        >>> _ = net.fit(X, y, epochs=20, batch_size=20, lr=0.01, verbose=0)
        >>> net.classes_.tolist(), net.accuracy(X, y) > 0.9
        (['left', 'right'], True)
        """
        from ..training import fit  # the one call upward: see docs/ARCHITECTURE.md

        y_arr = np.asarray(y)
        if y_arr.ndim == 1 and y_arr.dtype.kind in "USO" and self.classes_ is None:
            classes = np.unique(y_arr.astype(str))
            k = self.layers[-1].n_out
            if len(classes) != k and not (k == 1 and len(classes) == 2):
                raise ValueError(f"y has {len(classes)} classes ({', '.join(classes[:10])}) "
                                 f"but the network has {k} outputs")
            self.classes_ = classes
        return fit(self, X, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                   lr=lr, schedule=schedule, weight_decay=weight_decay, clip_norm=clip_norm,
                   validation_data=validation_data, validation_split=validation_split,
                   callbacks=callbacks, hooks=hooks, early_stopping=early_stopping, seed=seed,
                   shuffle=shuffle, drop_last=drop_last, verbose=verbose, stream=stream,
                   initial_epoch=initial_epoch, history=history,
                   callback_states=callback_states, blas_threads=blas_threads, comm=comm)

    def copy(self) -> Network:
        """An independent copy (its own Theta)."""
        new = Network([Dense(layer.n_in, layer.n_out, layer.activation, layer.init)
                       for layer in self.layers], cost=self.cost, dtype=self.dtype, seed=None,
                      engine=get_engine(self.engine.name) if self.engine.name in ENGINES
                      else self.engine)
        new.theta[...] = self.theta
        new.classes_ = None if self.classes_ is None else self.classes_.copy()
        new.preprocessing = dict(self.preprocessing)
        new.provenance = self.provenance
        return new


def _hits(a: Array, Y: Array, always: bool = False) -> int | None:
    """The rows of a^L classified right against labels (or, with ``always``, targets:
    argmax, or a > 0.5 for one output); None for targets without ``always``."""
    if Y.ndim == 1:
        return int(np.count_nonzero(a.argmax(1) == Y))
    if not always:
        return None
    if a.shape[1] > 1:
        return int(np.count_nonzero(np.argmax(a, 1) == np.argmax(Y, 1)))
    return int(np.count_nonzero((a[:, 0] > 0.5) == (Y[:, 0] > 0.5)))


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


