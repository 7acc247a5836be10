"""scikit-learn estimators over chainrule networks (optional: needs scikit-learn).

:class:`NetworkClassifier` and :class:`NetworkRegressor` follow scikit-learn's conventions:
``__init__`` stores settings only, ``fit`` returns ``self``, learned attributes end in
``_`` (``classes_``, ``n_features_in_``, ``n_iter_``, ``loss_curve_``,
``validation_loss_curve_``, ``network_``). They offer ``partial_fit``, ``predict_proba`` and
``score``, take a ``random_state``, and stop early on a held-out validation fraction. They
work inside ``Pipeline``, ``GridSearchCV`` and ``cross_val_score``.

Pickling an estimator stores its network as safetensors bytes, never as Python objects.

>>> from sklearn.datasets import load_iris
>>> X, y = load_iris(return_X_y=True)
>>> clf = NetworkClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(X, y)
>>> clf.score(X, y) > 0.9
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("chainrule.sklearn needs scikit-learn: pip install 'chainrule[sklearn]'"
                      ) from exc

from .nn import Network
from .training import EarlyStopping

__all__ = ["NetworkClassifier", "NetworkRegressor"]


class _NetworkEstimator(BaseEstimator):
    """Settings and training shared by the classifier and the regressor."""

    def __init__(self, hidden_layer_sizes: tuple[int, ...] = (100,), activation: str = "relu",
                 optimizer: str = "adam", learning_rate: float | None = None,
                 schedule: str = "constant", batch_size: int | str = "auto",
                 max_iter: int = 200, weight_decay: float = 1e-4, tol: float = 1e-4,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 n_iter_no_change: int = 10, random_state: int | None = None,
                 dtype: str | None = None, verbose: int = 0) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.schedule = schedule
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.weight_decay = weight_decay
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose

    # ------------------------------------------------------------------ helpers
    def _dtype(self, X: np.ndarray) -> Any:
        if self.dtype is not None:
            return np.dtype(self.dtype)
        return np.float32 if X.dtype == np.float32 else np.float64

    def _seed(self) -> int:
        rs = self.random_state
        if rs is None:
            return int(np.random.default_rng().integers(2 ** 31))
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(2 ** 31))
        return int(rs)

    def _check_params(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, (int, np.integer)) else tuple(sizes)
        if any(not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got "
                             f"{self.hidden_layer_sizes!r}")
        if not isinstance(self.max_iter, (int, np.integer)) or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError("validation_fraction must be in (0, 1)")
        return tuple(int(s) for s in sizes)

    def _batch(self, m: int) -> int:
        if self.batch_size == "auto":
            return min(200, m)
        if not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise ValueError(f"batch_size must be 'auto' or a positive integer, got "
                             f"{self.batch_size!r}")
        return min(int(self.batch_size), m)

    def _train(self, X: np.ndarray, Y: np.ndarray, epochs: int, first: bool) -> None:
        net = self.network_
        val = None
        Xt, Yt = X, Y
        if self.early_stopping and first and X.shape[0] >= 4:
            rng = np.random.default_rng(self._seed_)
            n_val = max(1, int(round(self.validation_fraction * X.shape[0])))
            perm = rng.permutation(X.shape[0])
            val = (X[perm[:n_val]], Y[perm[:n_val]])
            Xt, Yt = X[perm[n_val:]], Y[perm[n_val:]]
        monitor = "val_loss" if val is not None else "loss"
        cbs = [EarlyStopping(monitor, patience=self.n_iter_no_change, min_delta=self.tol,
                             restore_best_weights=val is not None)] if epochs > 1 else []
        if first or self._opt is None:
            from .optim import get_optimizer
            from .training import DEFAULT_LR

            lr = self.learning_rate
            if lr is None:  # scikit-learn's MLP default for Adam; chainrule's for the rest
                lr = 1e-3 if self.optimizer in ("adam", "adamw") else \
                    DEFAULT_LR.get(self.optimizer, 1e-3)
            self._opt = get_optimizer(self.optimizer, lr=lr, weight_decay=self.weight_decay)
        hist = net.fit(Xt, Yt, epochs=epochs, batch_size=self._batch(Xt.shape[0]),
                       optimizer=self._opt, schedule=self.schedule, validation_data=val,
                       callbacks=cbs, seed=self._seed_ + self.n_iter_, verbose=self.verbose)
        self.n_iter_ += len(hist.get("loss", []))
        self.loss_curve_ = list(getattr(self, "loss_curve_", [])) + list(hist.get("loss", []))
        if "val_loss" in hist:
            self.validation_loss_curve_ = list(hist["val_loss"])
            self.best_validation_loss_ = float(min(hist["val_loss"]))
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else float("nan")

    def _new_network(self, n_in: int, n_out: int, output: str, cost: str, X: np.ndarray) -> None:
        sizes = self._check_params()
        self._seed_ = self._seed()
        self.network_ = Network.from_sizes([n_in, *sizes, n_out], hidden=self.activation,
                                           output=output, cost=cost, dtype=self._dtype(X),
                                           seed=self._seed_)
        self.n_iter_ = 0
        self.loss_curve_ = []
        self._opt = None

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        net = state.pop("network_", None)
        state.pop("_opt", None)
        if net is not None:
            from .io.model import _config, _serialize, _tensors

            state["_network_safetensors"] = _serialize(_tensors(net), _config(net))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        blob = state.pop("_network_safetensors", None)
        self.__dict__.update(state)
        self._opt = None
        if blob is not None:
            import os
            import tempfile

            from .io import load_model

            with tempfile.TemporaryDirectory() as d:
                p = os.path.join(d, "net.safetensors")
                with open(p, "wb") as f:
                    f.write(blob)
                self.network_ = load_model(p)


class NetworkClassifier(ClassifierMixin, _NetworkEstimator):
    """A feedforward network classifier: softmax output, cross-entropy, Adam."""

    def fit(self, X: Any, y: Any) -> NetworkClassifier:
        X, y = validate_data(self, X, y, reset=True, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"NetworkClassifier needs at least two classes; got 1 class "
                             f"({self.classes_[0]!r})")
        self._new_network(X.shape[1], len(self.classes_), "softmax", "cross_entropy", X)
        self._train(X, np.searchsorted(self.classes_, y), self.max_iter, first=True)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> NetworkClassifier:
        """One epoch over (X, y); the first call needs ``classes``."""
        first = not hasattr(self, "network_")
        X, y = validate_data(self, X, y, reset=first, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            self.classes_ = np.unique(classes)
            if len(self.classes_) < 2:
                raise ValueError("NetworkClassifier needs at least two classes")
            self._new_network(X.shape[1], len(self.classes_), "softmax", "cross_entropy", X)
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError("classes differ from those of the first call to partial_fit")
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y holds labels {unknown[:5]!r} not in classes")
        self._train(X, np.searchsorted(self.classes_, y), 1, first=first)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self.network_.predict_proba(X.astype(self.network_.dtype, copy=False))

    def predict_log_proba(self, X: Any) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class NetworkRegressor(RegressorMixin, _NetworkEstimator):
    """A feedforward network regressor: identity output, the text's MSE, Adam. The
    targets are standardised inside (and the predictions mapped back)."""

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X: Any, y: Any) -> NetworkRegressor:
        X, y = validate_data(self, X, y, reset=True, multi_output=True, y_numeric=True,
                             dtype=[np.float64, np.float32])
        Y = self._scale_y(y, fit=True)
        self._new_network(X.shape[1], Y.shape[1], "identity", "mse", X)
        self._train(X, Y, self.max_iter, first=True)
        return self

    def partial_fit(self, X: Any, y: Any) -> NetworkRegressor:
        first = not hasattr(self, "network_")
        X, y = validate_data(self, X, y, reset=first, multi_output=True, y_numeric=True,
                             dtype=[np.float64, np.float32])
        Y = self._scale_y(y, fit=first)
        if first:
            self._new_network(X.shape[1], Y.shape[1], "identity", "mse", X)
        elif Y.shape[1] != self.network_.sizes[-1]:
            raise ValueError("y has a different number of outputs than in the first call")
        self._train(X, Y, 1, first=first)
        return self

    def _scale_y(self, y: np.ndarray, fit: bool) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1 if fit else self._y_1d
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if fit:
            self._y_mean = Y.mean(axis=0)
            std = Y.std(axis=0)
            self._y_scale = np.where(std > 0, std, 1.0)
        return (Y - self._y_mean) / self._y_scale

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        out = self.network_.predict_proba(X.astype(self.network_.dtype, copy=False))
        out = out * self._y_scale + self._y_mean
        return out[:, 0] if self._y_1d else out
