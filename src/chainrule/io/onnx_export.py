"""Export a network to ONNX (optional extra ``chainrule[onnx]``).

The graph: an input ``X`` of shape (N, n_0); the model's standardisation, if it has one
(``(X - mean) / scale``); then per layer ``Gemm(a, W^l, b^l, transB=1)`` followed by sigma,
ending with the output activation, so the graph's output ``a^L`` equals ``net.predict_proba``.
Opset 17, IR version 8; float32 or float64. Activations that opset 17 has no operator for (GELU)
are built from elementary operators, as are those that onnxruntime's CPU kernels offer
only in float32, when exporting float64.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..nn import Network
from .model import ModelFileError, atomic_write

__all__ = ["export_onnx", "to_onnx", "OPSET", "IR_VERSION"]

OPSET = 17
IR_VERSION = 8


def _onnx() -> Any:
    return require("onnx", "onnx", "ONNX export needs the onnx package")


def to_onnx(net: Network, dtype: Any = None, name: str = "chainrule") -> Any:
    """The network as an ``onnx.ModelProto`` (checked by ``onnx.checker``)."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    dt = np.dtype(dtype) if dtype is not None else net.dtype
    if dt not in (np.float32, np.float64):
        raise ModelFileError(f"ONNX export supports float32 and float64, not {dt}")
    elem = TensorProto.FLOAT if dt == np.float32 else TensorProto.DOUBLE
    nodes: list[Any] = []
    inits: list[Any] = []
    counter = [0]

    def fresh(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const(value: Any, prefix: str = "c") -> str:
        n = fresh(prefix)
        v = np.asarray(value)
        inits.append(numpy_helper.from_array(v if v.dtype == np.int64 else v.astype(dt), n))
        return n

    def op(kind: str, inputs: list[str], **attrs: Any) -> str:
        out = fresh(kind.lower())
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    x = "X"
    pre = net.preprocessing
    imap = pre.get("input_map")
    if imap:  # a^0 from the raw (x1, x2): the model's input feature map
        cols = {n: op("Gather", [x, const(np.array([i], np.int64), "i")], axis=1)
                for i, n in enumerate(("x1", "x2"))}
        build = {"x1": lambda: cols["x1"], "x2": lambda: cols["x2"],
                 "x1^2": lambda: op("Mul", [cols["x1"], cols["x1"]]),
                 "x2^2": lambda: op("Mul", [cols["x2"], cols["x2"]]),
                 "x1x2": lambda: op("Mul", [cols["x1"], cols["x2"]]),
                 "sin(x1)": lambda: op("Sin", [cols["x1"]]),
                 "sin(x2)": lambda: op("Sin", [cols["x2"]])}
        x = op("Concat", [build[f]() for f in imap], axis=1)
    if pre.get("mean") is not None:
        x = op("Sub", [x, const(pre["mean"], "mean")])
        x = op("Div", [x, const(pre["scale"], "scale")])
    for i, layer in enumerate(net.layers):
        W = const(layer.W, f"W{i + 1}")
        b = const(layer.b, f"b{i + 1}")
        z = op("Gemm", [x, W, b], transB=1)
        x = _activation(layer.activation, z, op, const, dt)
    nodes.append(helper.make_node("Identity", [x], ["a_L"]))
    n_in, n_out = (2 if imap else net.sizes[0]), net.sizes[-1]
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("X", elem, ["N", n_in])],
        [helper.make_tensor_value_info("a_L", elem, ["N", n_out])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="chainrule")
    model.ir_version = IR_VERSION
    from .. import __version__

    model.producer_version = __version__
    if net.classes_ is not None:
        helper.set_model_props(model, {"classes": ",".join(str(c) for c in net.classes_)})
    onnx.checker.check_model(model, full_check=True)
    return model


def _activation(act: Any, z: str, op: Any, const: Any, dt: Any) -> str:
    """sigma(z) in the graph, from the activation's record (its ONNX builder)."""
    if not act.builtin or act.onnx is None:
        raise ModelFileError(f"the activation {act.name!r} is a Python function; ONNX export "
                             f"has no operators for it and supports the built-in "
                             f"activations only")
    return act.onnx(z, op, const, dt == np.float64)


def export_onnx(net: Network, path: str | Path, dtype: Any = None) -> Path:
    """Write ``net`` as an ONNX file, atomically.

    >>> import os, tempfile
    >>> from chainrule.nn import Network
    >>> p = export_onnx(Network.from_sizes([4, 3]), os.path.join(tempfile.mkdtemp(), "m.onnx"))
    >>> p.suffix
    '.onnx'
    """
    model = to_onnx(net, dtype)
    atomic_write(path, model.SerializeToString())
    return Path(path)
