"""Pictures with matplotlib (optional extra ``chainrule[plot]``), each written to a PNG
or SVG file:

* :func:`plot_history`: training and validation loss and accuracy per epoch;
* :func:`plot_cost_surface`: the cost over two chosen weights, with the path that gradient
  descent takes down it (text 3.7), as contours and in 3-D;
* :func:`plot_decision_regions`: a classifier's regions for 2-D data;
* :func:`plot_weights`: the distribution of the weights and gradients of each layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._optional import require

__all__ = ["plot_history", "plot_cost_surface", "cost_surface", "plot_decision_regions",
           "plot_weights"]


def _plt() -> Any:
    require("matplotlib", "plot", "pictures need matplotlib").use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    from ._safe_io import check_writable
    from .io import atomic_write

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise ValueError(f"{path}: write pictures as .png or .svg")
    check_writable(path, "picture")  # the write rule, before the picture is rendered
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=100, bbox_inches="tight")
    _plt().close(fig)
    atomic_write(path, buf.getvalue())
    return path


def plot_history(history: dict[str, list[float]], path: str | Path) -> Path:
    """Loss (and accuracy, when logged) per epoch, training and validation."""
    if not history or not history.get("loss"):
        raise ValueError("the history is empty: train for at least one epoch first")
    plt = _plt()
    panels = [("loss", "val_loss", "loss")]
    if "accuracy" in history:
        panels.append(("accuracy", "val_accuracy", "accuracy"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (tr, va, label) in zip(axes[0], panels):
        epochs = np.arange(1, len(history[tr]) + 1)
        ax.plot(epochs, history[tr], "o-", label="training")
        if va in history:
            ax.plot(epochs[: len(history[va])], history[va], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Training curves")
    return _save(fig, path)


def _weight_index(net: Any, spec: tuple[int, int, int]) -> int:
    """The position in Theta of w^l_jk, for spec = (l, j, k) with l counted from 1."""
    l, j, k = spec
    if not 1 <= l <= len(net.layers):
        raise ValueError(f"layer {l} does not exist: the network has {len(net.layers)}")
    layer = net.layers[l - 1]
    if not (0 <= j < layer.n_out and 0 <= k < layer.n_in):
        raise ValueError(f"w^{l}_{j}{k} is outside W^{l}, which is {layer.n_out} x "
                         f"{layer.n_in}")
    probe = np.zeros_like(net.theta)
    W, _ = net.unravel(probe)[l - 1]
    W[j, k] = 1
    return int(np.flatnonzero(probe)[0])


def steepest_weights(net: Any, X: Any, y: Any, exclude: tuple[int, int, int] | None = None
                     ) -> tuple[tuple[int, int, int], ...]:
    """The two weights w^l_jk (other than ``exclude``) along which the cost changes fastest
    here (the largest |dC/dw|): the default pair of a cost surface, where C has a shape."""
    work = net.copy()
    Xc = work.check_X(X)
    work.gradient(Xc, work.targets(y, Xc.shape[0]))
    best: list[tuple[float, tuple[int, int, int]]] = []
    for l, layer in enumerate(work.layers, 1):
        dW = np.abs(np.asarray(layer.dW, dtype=np.float64))
        for flat in np.argsort(dW, axis=None)[-3:]:
            j, k = np.unravel_index(flat, dW.shape)
            if (l, int(j), int(k)) != exclude:
                best.append((float(dW[j, k]), (l, int(j), int(k))))
    best.sort(reverse=True)
    return best[0][1], best[1][1]


def cost_surface(net: Any, X: Any, y: Any, w1: tuple[int, int, int] | None = None,
                 w2: tuple[int, int, int] | None = None, steps: int = 30, lr: float = 0.5,
                 span: float | None = None, grid: int = 31) -> dict[str, Any]:
    """C over a grid of two weights (the others held), and the path of ``steps`` steps of
    gradient descent on those two weights from their current values (text 3.7-3.8).

    By default the two weights are those of the largest |dC/dw| (:func:`steepest_weights`),
    and the range around the path widens (from 2 up to 64 each side) until C changes by a
    tenth of its value or more, so the valley shows."""
    if w1 is None and w2 is None:
        w1, w2 = steepest_weights(net, X, y)
    elif w1 is None or w2 is None:      # one given: the steepest other weight beside it
        given = w1 or w2
        _weight_index(net, given)
        w1, w2 = given, steepest_weights(net, X, y, exclude=given)[0]
    i1, i2 = _weight_index(net, w1), _weight_index(net, w2)
    if i1 == i2:
        raise ValueError("choose two different weights")
    work = net.copy()
    theta0 = work.theta.copy()
    X = work.check_X(X)
    Y = work.targets(y, X.shape[0])
    path = [(float(theta0[i1]), float(theta0[i2]))]
    costs = []
    for _ in range(steps):
        c, _ = work.gradient(X, Y)
        costs.append(c)
        work.theta[i1] -= lr * work.grad[i1]
        work.theta[i2] -= lr * work.grad[i2]
        path.append((float(work.theta[i1]), float(work.theta[i2])))
    costs.append(work.score(X, Y)[0])
    p = np.array(path)

    def cost_at(v1: float, v2: float) -> float:
        work.theta[...] = theta0
        work.theta[i1], work.theta[i2] = v1, v2
        return float(work.score(X, Y)[0])

    if span is None:
        span, c0 = 2.0, costs[0]
        while span < 64 and max(abs(cost_at(p[0, 0] + d1, p[0, 1] + d2) - c0)
                                for d1, d2 in ((span, 0), (-span, 0), (0, span),
                                               (0, -span))) < 0.1 * max(abs(c0), 1e-12):
            span *= 2
    lo1, hi1 = p[:, 0].min() - span, p[:, 0].max() + span
    lo2, hi2 = p[:, 1].min() - span, p[:, 1].max() + span
    a, b = np.linspace(lo1, hi1, grid), np.linspace(lo2, hi2, grid)
    C = np.empty((grid, grid))
    for r, vb in enumerate(b):
        for c, va in enumerate(a):
            work.theta[...] = theta0
            work.theta[i1], work.theta[i2] = va, vb
            C[r, c] = work.score(X, Y)[0]
    return {"w1": a, "w2": b, "C": C, "path": p, "path_cost": np.array(costs),
            "labels": tuple(f"$w^{{{w[0]}}}_{{{w[1]},{w[2]}}}$" for w in (w1, w2))}


def plot_cost_surface(net: Any, X: Any, y: Any, w1: tuple[int, int, int] | None,
                      w2: tuple[int, int, int] | None, path: str | Path, steps: int = 30,
                      lr: float = 0.5, kind: str = "both") -> Path:
    """The cost surface over two weights with gradient descent's path: contours, 3-D, or
    both side by side."""
    if kind not in ("contour", "3d", "both"):
        raise ValueError("kind must be 'contour', '3d' or 'both'")
    s = cost_surface(net, X, y, w1, w2, steps=steps, lr=lr)
    plt = _plt()
    A, B = np.meshgrid(s["w1"], s["w2"])
    n = 2 if kind == "both" else 1
    fig = plt.figure(figsize=(6 * n, 4.8))
    col = 1
    if kind in ("contour", "both"):
        ax = fig.add_subplot(1, n, col)
        cs = ax.contourf(A, B, s["C"], levels=30, cmap="viridis")
        fig.colorbar(cs, ax=ax, label="C")
        ax.plot(s["path"][:, 0], s["path"][:, 1], "w.-", lw=1.5, label="gradient descent")
        ax.plot(*s["path"][0], "r*", ms=12, label="start")
        ax.plot(*s["path"][-1], "wo", ms=7, mec="k", label="end")
        ax.set_xlabel(s["labels"][0])
        ax.set_ylabel(s["labels"][1])
        ax.legend(loc="upper right")
        col += 1
    if kind in ("3d", "both"):
        ax = fig.add_subplot(1, n, col, projection="3d")
        ax.plot_surface(A, B, s["C"], cmap="viridis", alpha=0.8, linewidth=0)
        ax.plot(s["path"][:, 0], s["path"][:, 1], s["path_cost"], "r.-", lw=2, zorder=10,
                label="gradient descent")
        ax.legend(loc="upper right")
        ax.set_xlabel(s["labels"][0])
        ax.set_ylabel(s["labels"][1])
        ax.set_zlabel("C")
    fig.suptitle("The cost over two weights, and the path of gradient descent (3.7)")
    return _save(fig, path)


def plot_decision_regions(net: Any, X: Any, y: Any, path: str | Path, grid: int = 200
                          ) -> Path:
    """A classifier's predicted class over the plane of 2-D data, with the points."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision regions need 2-D data (two features); got shape {X.shape}")
    if net.sizes[0] != 2:
        raise ValueError(f"the network takes {net.sizes[0]} inputs, not 2")
    plt = _plt()
    pad = 0.5
    x0 = np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, grid)
    x1 = np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, grid)
    G0, G1 = np.meshgrid(x0, x1)
    P = net.predict_proba(np.c_[G0.ravel(), G1.ravel()])
    Z = (P[:, 0] > 0.5).astype(int) if P.shape[1] == 1 else P.argmax(1)
    k = max(P.shape[1], 2)
    names = [str(c) for c in net.classes_] if net.classes_ is not None and \
        len(net.classes_) == k else [str(i) for i in range(k)]
    y = np.asarray(y)
    if y.dtype.kind in "USO":       # class names: their indices, as the regions use
        y = np.array([names.index(str(v)) for v in y])
    colours = [plt.get_cmap("tab10")(i % 10) for i in range(k)]   # one per class, both
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    ax.contourf(G0, G1, Z.reshape(G0.shape), alpha=0.35, colors=colours,
                levels=np.arange(k + 1) - 0.5)
    for c in range(k):
        rows = y.astype(int) == c
        ax.scatter(X[rows, 0], X[rows, 1], color=colours[c], edgecolors="k", s=18,
                   label=f"class {names[c]}")
    ax.legend(title="true class (points) and predicted class (regions)", fontsize=8,
              title_fontsize=8, loc="best")
    names_in = net.preprocessing.get("feature_names") or ["x_1", "x_2"]
    scaled = " (standardised)" if net.preprocessing.get("mean") is not None else ""
    ax.set_xlabel(f"{names_in[0]}{scaled}")
    ax.set_ylabel(f"{names_in[1]}{scaled}")
    ax.set_title("Decision regions")
    return _save(fig, path)


def plot_weights(net: Any, path: str | Path, X: Any = None, y: Any = None) -> Path:
    """Histograms of W^l for each layer and, given (X, y), of dC/dW^l."""
    plt = _plt()
    rows = 2 if X is not None else 1
    L = len(net.layers)
    fig, axes = plt.subplots(rows, L, figsize=(4 * L, 3 * rows), squeeze=False)
    grads = net.backprop(X, y).dW if X is not None else None
    for l, layer in enumerate(net.layers):
        axes[0][l].hist(layer.W.ravel(), bins=50, color="tab:blue")
        axes[0][l].set_title(f"W^{l + 1} ({layer.n_out} x {layer.n_in})")
        axes[0][l].set_xlabel(f"value of a weight w^{l + 1}_jk")
        axes[0][l].set_ylabel("number of weights")
        if grads is not None:
            axes[1][l].hist(grads[l].ravel(), bins=50, color="tab:orange")
            axes[1][l].set_title(f"dC/dW^{l + 1}")
            axes[1][l].set_xlabel(f"value of dC/dw^{l + 1}_jk")
            axes[1][l].set_ylabel("number of weights")
    fig.suptitle("Weights and gradients per layer")
    fig.tight_layout()      # titles clear of the tick labels above them
    return _save(fig, path)
