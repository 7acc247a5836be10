"""Step-by-step derivations in the text's notation: the layer of 2.3, then a small
network's forward pass, delta^L (BP1), delta^l (BP2), dC/db^l (BP3), dC/dW^l (BP4) and
one gradient descent step (3.8), with the numbers; rendered as text, Markdown or LaTeX.

Vectors are columns here, as in the text (one example).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Step", "explain_text", "explain_network", "explain_model", "render"]


@dataclass
class Step:
    title: str
    equation: str                      # LaTeX
    plain: str                         # the same equation in plain text
    values: list[tuple[str, Any]] = field(default_factory=list)
    note: str = ""


def explain_text(lr: float = 0.5) -> list[Step]:
    """The text's worked example of 2.3, then a 2-3-2 sigmoid network under MSE."""
    from .nn import Dense, Network

    steps = [Step("2.3 A layer of neurons", r"z^1 = W^1 a^0 + b^1,\quad a^1 = \sigma(z^1)",
                  "z1 = W1 a0 + b1,  a1 = sigma(z1)  (sigma = ReLU)")]
    layer = Network([Dense(2, 2, "relu")], dtype=np.float64, seed=None)
    layer.layers[0].W[...] = [[5, 2], [3, 6]]
    layer.layers[0].b[...] = 6
    zs, acts = layer.forward(np.array([[10.0, 20.0]]), keep=True)
    steps[0].values = [("W^1", layer.layers[0].W), ("a^0", np.array([10.0, 20.0])),
                       ("W^1 a^0", layer.layers[0].W @ [10.0, 20.0]), ("b^1", 6.0),
                       ("z^1", zs[0][0]), ("a^1", acts[1][0])]
    net = Network([Dense(2, 3, "sigmoid"), Dense(3, 2, "sigmoid")], cost="mse",
                  dtype=np.float64, seed=None)
    net.layers[0].W[...] = [[0.15, 0.20], [0.25, 0.30], [-0.35, 0.40]]
    net.layers[0].b[...] = [0.35, 0.35, 0.10]
    net.layers[1].W[...] = [[0.40, 0.45, -0.10], [0.50, 0.55, 0.20]]
    net.layers[1].b[...] = [0.60, 0.60]
    x = np.array([0.05, 0.10])
    y = np.array([0.01, 0.99])
    return steps + explain_network(net, x, y, lr=lr)


def explain_network(net: Any, x: np.ndarray, y: np.ndarray, lr: float = 0.5,
                    note: str = "") -> list[Step]:
    """Forward, BP1-BP4 and one gradient descent step for one example (x, y)."""
    X = x.reshape(1, -1)
    Y = y.reshape(1, -1)
    L = len(net.layers)
    zs, acts = net.forward(X, keep=True)
    steps = [Step("Forward propagation (2.3)", r"z^l = W^l a^{l-1} + b^l,\quad a^l = "
                  r"\sigma(z^l)", "z^l = W^l a^(l-1) + b^l,  a^l = sigma(z^l)",
                  [("a^0 = x", x)], note)]
    for l in range(1, L + 1):
        layer = net.layers[l - 1]
        steps[0].values += [(f"W^{l}", layer.W), (f"b^{l}", layer.b),
                            (f"z^{l}", zs[l - 1][0]),
                            (f"a^{l} = {layer.activation.name}(z^{l})", acts[l][0])]
    g = net.backprop(X, Y)
    steps.append(Step(f"The cost ({net.cost.name}, 3.1)", net.cost.latex, net.cost.text,
                      [("y", y), ("a^L", acts[-1][0]), ("C", g.cost)]))
    fused = net.cost.fused_with == net.layers[-1].activation.name
    if fused:
        bp1 = Step("BP1: the error of the output layer (4.2.1)",
                   r"\delta^L = \nabla_a C \odot \sigma'(z^L) = a^L - y",
                   "delta^L = grad_a C (Hadamard) sigma'(z^L) = a^L - y  (softmax/sigmoid "
                   "fused with its cost)")
    else:
        bp1 = Step("BP1: the error of the output layer (4.2.1)",
                   r"\delta^L = \nabla_a C \odot \sigma'(z^L)",
                   "delta^L = grad_a C (Hadamard) sigma'(z^L)")
    bp1.values = [(f"delta^{L}", g.delta[-1][0])]
    steps.append(bp1)
    if L > 1:
        s = Step("BP2: the error of the hidden layers",
                 r"\delta^l = ((W^{l+1})^T \delta^{l+1}) \odot \sigma'(z^l)",
                 "delta^l = ((W^(l+1))^T delta^(l+1)) (Hadamard) sigma'(z^l)")
        for l in range(L - 1, 0, -1):
            s.values.append((f"delta^{l}", g.delta[l - 1][0]))
        steps.append(s)
    s3 = Step("BP3: the bias gradients", r"\partial C / \partial b^l_j = \delta^l_j",
              "dC/db^l_j = delta^l_j")
    s4 = Step("BP4: the weight gradients",
              r"\partial C / \partial w^l_{jk} = a^{l-1}_k \delta^l_j",
              "dC/dw^l_jk = a^(l-1)_k delta^l_j  (dC/dW^l = delta^l (a^(l-1))^T)")
    for l in range(1, L + 1):
        s3.values.append((f"dC/db^{l}", g.db[l - 1]))
        s4.values.append((f"dC/dW^{l}", g.dW[l - 1]))
    steps += [s3, s4]
    # the same gradient from the calculus engine, as a check
    theta = net.theta.astype(np.float64)
    check = _autodiff_check(net, X, Y, theta)
    steps.append(Step("Check", r"\nabla_\Theta C \text{ by BP1--BP4} = \nabla_\Theta C "
                      r"\text{ by automatic differentiation}",
                      "grad C by BP1-BP4 == grad C by automatic differentiation",
                      [("largest relative difference", check)]))
    before = g.cost
    new = net.copy()
    new.theta -= lr * net.grad
    after = new.loss(X, Y)
    steps.append(Step("One step of gradient descent (3.8)",
                      r"\Theta \leftarrow \Theta - \alpha \nabla_\Theta C",
                      "Theta <- Theta - alpha grad C",
                      [("alpha", lr), ("C before", before), ("C after", after)],
                      "the cost went down" if after < before else
                      "the cost went up: alpha is too large for this point"))
    return steps


def _autodiff_check(net: Any, X: np.ndarray, Y: np.ndarray, theta: np.ndarray) -> float:
    """The largest relative difference between BP1-BP4 and the calculus engine's
    gradient of C(Theta), built from each record's value function, in float64."""
    from .calculus import grad, relative_error
    from .nn import Dense, Network

    f64 = Network([Dense(la.n_in, la.n_out, la.activation) for la in net.layers],
                  cost=net.cost, dtype=np.float64, seed=None)
    f64.theta[...] = theta
    f64.backprop(X, Y)
    bp = f64.grad.copy()
    X, Y = X.astype(np.float64), Y.astype(np.float64)

    def C(th: Any) -> Any:
        a = X
        for layer, (W, b) in zip(f64.layers, f64.unravel(th)):
            a = layer.activation.value(a @ W.T + b)        # a^l = sigma(W^l a^{l-1} + b^l)
        return f64.cost.expr(a, Y)

    return relative_error(bp, grad(C)(theta))


def explain_model(model: str | Path, example: str, label: str | None = None,
                  lr: float = 0.5) -> list[Step]:
    """The same derivation for one example through a saved model."""
    from .data import DataError
    from .data.features import apply_input_map
    from .io import load_model

    net = load_model(model)
    x = raw = _read_example(example, net)
    pre = net.preprocessing
    x = apply_input_map(x.reshape(1, -1), pre.get("input_map"))[0]   # a^0 from raw x1, x2
    scaled = ""
    if pre.get("mean") is not None:
        x = (x - pre["mean"]) / pre["scale"]
        scaled = ("x is shown as given, then standardised as in training, "
                  "(x - mean) / scale, which is what the network reads")
    a = net.predict_proba(x.reshape(1, -1))[0]
    n_out = net.sizes[-1]
    names = [str(c) for c in net.classes_] if net.classes_ is not None else \
        [str(i) for i in range(max(n_out, 2))]
    if net.is_classifier:
        pk = int(np.argmax(a)) if n_out > 1 else int(a[0] > 0.5)
        predicted = f"the network predicts class {names[pk]}"
        if label is None:
            k = pk
            note = f"{predicted}; no --label given, so the predicted class is the target"
        else:
            if label not in names:
                raise DataError(f"--label {label!r} is not one of the model's classes "
                                f"({', '.join(names[:10])})")
            k, note = names.index(label), f"{predicted}; the target is class {label}"
        y = np.eye(n_out)[k] if n_out > 1 else np.array([float(k)])
    else:
        if label is None:
            raise DataError("explain of a regression model needs --label (the target value)")
        try:
            y = np.array([float(v) for v in label.split(",")])
        except ValueError:
            raise DataError(f"--label {label!r} is not a number") from None
        if y.shape != (n_out,):
            raise DataError(f"--label needs {n_out} number(s)")
        note = f"the network predicts {', '.join(f'{v:.6g}' for v in a)}"
    note = "; ".join(t for t in (note, scaled) if t)
    steps = explain_network(net, x.astype(net.dtype), y.astype(net.dtype), lr=lr, note=note)
    if scaled:
        first = steps[0].values
        first[0] = ("a^0 = (x - mean) / scale", first[0][1])
        first.insert(0, ("x (as given)", raw))
    return steps


def _read_example(example: str, net: Any) -> np.ndarray:
    from .data import DataError
    from .data.features import raw_width

    n = raw_width(net.preprocessing.get("input_map"), net.sizes[0])
    p = Path(example)
    if example.lower().endswith(".csv"):
        if not p.exists():
            raise DataError(f"{example}: file not found")
        from .data.tabular import _read_text

        lines = [ln for ln in _read_text(p).splitlines() if ln.strip()]
        if len(lines) < 2:
            raise DataError(f"{example}: needs a header row and a data row")
        header = [h.strip() for h in lines[0].split(",")]
        row = [c.strip() for c in lines[1].split(",")]
        names = net.preprocessing.get("feature_names")
        if names and all(nm in header for nm in names):
            row = [row[header.index(nm)] for nm in names]
        example = ",".join(row)
    try:
        x = np.array([float(v) for v in example.split(",")])
    except ValueError:
        raise DataError("--input must be numbers separated by commas, or a CSV file") from None
    if x.shape != (n,):
        raise DataError(f"--input has {x.size} values but the model expects {n}")
    if not np.all(np.isfinite(x)):
        raise DataError("--input holds NaN or infinite values")
    return x


# --------------------------------------------------------------------------- rendering


def _fmt(v: Any, limit: int = 8) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (float, int, np.floating)):
        return f"{float(v):.6g}"
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 0:
        return f"{float(a):.6g}"
    note = ""
    if a.ndim == 1 and a.size > limit:
        a, note = a[:limit], f"  ... ({v.shape[0]} entries)"
    if a.ndim == 2 and (a.shape[0] > limit or a.shape[1] > limit):
        note = f"  ... ({v.shape[0]} x {v.shape[1]})"
        a = a[:limit, :limit]
    if a.ndim == 1:
        a = a.reshape(-1, 1)  # a column, as in the text
    body = np.array2string(a, precision=5, suppress_small=True, max_line_width=100)
    return body + note


def _latex_number(x: float, digits: int = 4) -> str:
    """1.251e-05 as 1.251 \\times 10^{-5}."""
    text = f"{x:.{digits}g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}"


def _latex_value(v: Any, limit: int = 8) -> str:
    """A bmatrix; a matrix larger than limit x limit shows its corner, with vdots and
    cdots where rows and columns are left out and its full size after it."""
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 0:
        return _latex_number(float(a), 6)
    full = a.shape
    a = a.reshape(-1, 1) if a.ndim == 1 else a      # a column, as in the text
    more_rows, more_cols = a.shape[0] > limit, a.shape[1] > limit
    rows = [[_latex_number(x) for x in r[:limit]] + ([r"\cdots"] if more_cols else [])
            for r in a[:limit]]
    if more_rows:
        rows.append([r"\vdots"] * min(a.shape[1], limit) + ([r"\ddots"] if more_cols else []))
    body = r"\begin{bmatrix}" + r" \\ ".join(" & ".join(r) for r in rows) + r"\end{bmatrix}"
    if more_rows or more_cols:
        size = rf"{full[0]} \times {full[1]}" if len(full) > 1 else \
            rf"{full[0]}\ \text{{entries}}"
        body += rf"\ ({size},\ \text{{first {limit} shown}})"
    return body


_LATEX_WORDS = {"alpha": r"\alpha", "C before": r"C_{\text{before}}",
                "C after": r"C_{\text{after}}",
                "a^0 = (x - mean) / scale": r"a^0 = (x - \text{mean}) / \text{scale}"}


def _latex_name(name: str) -> str:
    """A value's name as math; names in words (``largest relative difference``) as text."""
    if name in _LATEX_WORDS:
        return _LATEX_WORDS[name]
    if " " in name and not any(c in name for c in "^/"):
        return rf"\text{{{_latex_text(name)}}}"
    name = name.replace("delta", r"\delta").replace("dC/d", r"\partial C/\partial ")
    for act in ("relu", "sigmoid", "tanh", "softmax", "identity", "leaky_relu", "elu",
                "softplus", "gelu"):
        name = name.replace(f"{act}(", rf"\operatorname{{{act.replace('_', '-')}}}(")
    return name


def _latex_text(text: str) -> str:
    """Plain words for LaTeX's text mode: its special characters escaped."""
    out = text
    for c, r in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"),
                 ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}"),
                 ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}")):
        out = out.replace(c, r)
    return out.replace("--", "-{}-")


def render(steps: list[Step], fmt: str = "text") -> str:
    """Render steps for the terminal ("text"), Markdown or LaTeX."""
    out: list[str] = []
    for s in steps:
        if fmt == "markdown":
            out.append(f"### {s.title}\n\n$$ {s.equation} $$\n")
            if s.note:
                out.append(f"*{s.note}*\n")
            for name, v in s.values:
                out.append(f"- `{name}` =\n\n```\n{_fmt(v)}\n```\n")
        elif fmt == "latex":
            out.append(f"\\subsection*{{{_latex_text(s.title)}}}\n\\[ {s.equation} \\]")
            if s.note:
                out.append(f"\\emph{{{_latex_text(s.note)}}}\n")
            for name, v in s.values:
                out.append(f"\\[ {_latex_name(name)} = {_latex_value(v)} \\]")
            out.append("")
        else:
            out.append(f"== {s.title} ==\n   {s.plain}")
            if s.note:
                out.append(f"   ({s.note})")
            for name, v in s.values:
                val = _fmt(v)
                if "\n" in val:
                    out.append(f"   {name} =\n" + "\n".join("      " + ln
                                                           for ln in val.splitlines()))
                else:
                    out.append(f"   {name} = {val}")
            out.append("")
    return "\n".join(out) + "\n"
