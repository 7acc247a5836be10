"""ONNX export: every activation and output, float32 and float64, checked by onnx.checker and
run in onnxruntime against chainrule's own outputs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from chainrule.io import export_onnx, load_model, save_model
from chainrule.nn import ACTIVATIONS, Network

TOL = {"float32": 1e-5, "float64": 1e-12}


def _run(path, X):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"X": X})[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", [a for a in ACTIVATIONS if a != "softmax"])
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity"])
def test_every_activation_matches_onnxruntime(tmp_path, dtype, hidden, output):
    net = Network.from_sizes([784, 32, 16, 10], hidden=hidden, output=output, dtype=dtype,
                             seed=1)
    r = np.random.default_rng(0)
    net.theta[:] += r.normal(0, 0.05, net.theta.size).astype(dtype)
    for X in (r.uniform(0, 1, (64, 784)).astype(dtype),          # MNIST-shaped
              r.normal(0, 3, (7, 784)).astype(dtype)):            # random, some large
        p = export_onnx(net, tmp_path / "m.onnx")
        onnx.checker.check_model(onnx.load(str(p)), full_check=True)
        got = _run(p, X)
        want = net.predict_proba(X)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])


def test_hidden_softmax_and_preprocessing(tmp_path):
    net = Network.from_sizes([5, 4, 3], hidden="softmax", output="softmax", dtype="float64")
    net.preprocessing = {"mean": np.arange(5.0), "scale": np.full(5, 2.0)}
    X = np.random.default_rng(1).normal(size=(9, 5))
    p = export_onnx(net, tmp_path / "m.onnx")
    np.testing.assert_allclose(_run(p, X), net.predict_proba((X - np.arange(5.0)) / 2.0),
                               rtol=1e-12, atol=1e-12)


def test_trained_mnist_model_exports(tmp_path, mnist_dir):
    from chainrule.data import load_mnist
    Xtr, ytr, Xte, yte = load_mnist(mnist_dir)
    net = Network.from_sizes([784, 64, 10], seed=0)
    net.fit(Xtr[:5000], ytr[:5000], epochs=2, verbose=0)
    m = load_model(save_model(net, tmp_path / "m.safetensors"))
    p = export_onnx(m, tmp_path / "m.onnx")
    got = _run(p, Xte[:500])
    np.testing.assert_allclose(got, m.predict_proba(Xte[:500]), rtol=1e-5, atol=1e-5)
    assert (got.argmax(1) == m.predict(Xte[:500])).all()
    model = onnx.load(str(p))
    assert model.opset_import[0].version == 17 and model.ir_version == 8


def test_user_activation_is_refused(tmp_path):
    from chainrule.io import ModelFileError
    net = Network.from_sizes([3, 2], hidden="relu", output=lambda z: z * 2, cost="mse")
    with pytest.raises(ModelFileError, match="built-in"):
        export_onnx(net, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_input_feature_map_is_part_of_the_graph(dtype, tmp_path):
    # a playground model reads raw (x1, x2); the graph builds a^0 = (x1^2, x1x2, sin(x2))
    import onnxruntime as ort

    from chainrule.data.features import apply_input_map

    net = Network.from_sizes([3, 5, 2], hidden="tanh", dtype=dtype, seed=3)
    net.preprocessing = {"input_map": ["x1^2", "x1x2", "sin(x2)"], "feature_names": None}
    path = export_onnx(net, tmp_path / "m.onnx")
    raw = np.random.default_rng(0).normal(size=(7, 2)).astype(dtype)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"X": raw})[0]
    want = net.predict_proba(apply_input_map(raw, net.preprocessing["input_map"]))
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12)
