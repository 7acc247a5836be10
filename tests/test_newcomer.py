"""A newcomer's first hour (issue 16): regression that works by default, model files that
remember where they came from, and the API points that surprised a new user."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main
from chainrule.io import load_model, read_header, save_model
from chainrule.nn import Network


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _write_csv(path, X, y, names, target):
    with open(path, "w") as f:
        f.write(",".join([*names, target]) + "\n")
        for row, t in zip(X, y):
            f.write(",".join([*(f"{v:.6g}" for v in row), str(t)]) + "\n")
    return path


@pytest.fixture(scope="module")
def regression_csv(tmp_path_factory):
    """A target of large scale and offset (as scikit-learn's diabetes: mean 152, sd 77)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = 150 + 70 * (X[:, 0] + 0.5 * X[:, 1] ** 2 - 0.3 * X[:, 2]) + rng.normal(0, 10, 400)
    return _write_csv(tmp_path_factory.mktemp("reg") / "reg.csv", X, y,
                      [f"f{i}" for i in range(5)], "target")


def test_default_regression_beats_the_mean_and_predicts_in_target_units(
        capsys, tmp_path, regression_csv):
    model = tmp_path / "reg.safetensors"
    code, out, _ = run(capsys, "train", "--dataset", str(regression_csv), "--target", "target",
                       "--quiet", "--out", str(model))
    assert code == 0, out
    rmse = float(out.split("test RMSE ")[1].split()[0])
    assert rmse < 30 and "worse than predicting" not in out    # target sd is about 80
    net = load_model(model)
    assert net.provenance["target_scaler"]["mean"] == pytest.approx(185, abs=20)
    # the inverse lives in the model: predict() answers in the target's own units
    X = np.loadtxt(regression_csv, delimiter=",", skiprows=1)
    pred = net.predict((X[:, :5] - net.preprocessing["mean"]) / net.preprocessing["scale"])
    assert np.sqrt(np.mean((pred - X[:, 5]) ** 2)) < 30
    # evaluate re-scores the same held-out rows: the same figure train printed
    code, out, _ = run(capsys, "evaluate", str(model), "--dataset", str(regression_csv))
    assert "held-out test rows" in out and f"RMSE {rmse:.4g}" in out


def test_onnx_export_carries_the_target_inverse(capsys, tmp_path, regression_csv):
    ort = pytest.importorskip("onnxruntime")
    model, onx = tmp_path / "m.safetensors", tmp_path / "m.onnx"
    run(capsys, "train", "--dataset", str(regression_csv), "--quiet", "--epochs", "3",
        "--out", str(model))
    assert run(capsys, "export", str(model), "--onnx", str(onx))[0] == 0
    net = load_model(model)
    X = np.random.default_rng(1).normal(size=(7, 5)).astype(np.float32)
    got = ort.InferenceSession(str(onx)).run(None, {"X": X})[0]
    pre = net.preprocessing
    np.testing.assert_allclose(got.ravel(), net.predict((X - pre["mean"]) / pre["scale"]),
                               rtol=1e-4, atol=1e-3)
    assert abs(float(np.mean(got))) > 50     # the target's units, not standardised ones


def test_warns_when_worse_than_predicting_the_mean(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.normal(1000, 1, size=60)   # nothing to learn
    path = _write_csv(tmp_path / "noise.csv", X, y, ["a", "b", "c"], "y")
    code, out, _ = run(capsys, "train", "--dataset", str(path), "--quiet", "--epochs", "30",
                       "--layers", "200,200", "--weight-decay", "0", "--lr", "0.05",
                       "--out", str(tmp_path / "m.safetensors"))
    assert code == 0 and "warning: the model does worse than predicting the training mean" \
        in out
    code, out, _ = run(capsys, "evaluate", str(tmp_path / "m.safetensors"), "--dataset",
                       str(path))
    assert code == 0 and "held-out test rows" in out and "worse than predicting" in out


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris

    d = load_iris()
    folder = tmp_path_factory.mktemp("iris")
    path = _write_csv(folder / "iris.csv", d.data, d.target_names[d.target],
                      list(d.feature_names), "species")
    model = folder / "iris.safetensors"
    assert main(["train", "--dataset", str(path), "--target", "species", "--quiet",
                 "--out", str(model)]) == 0
    return path, model


def test_model_file_carries_its_provenance(iris):
    path, model = iris
    cfg = json.loads(read_header(model.read_bytes())[0]["__metadata__"]["chainrule"])
    prov = cfg["provenance"]
    import hashlib
    assert prov["data"] == {"name": "iris.csv",
                            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert prov["split"] == {"train": 0.7, "validation": 0.1, "test": 0.2, "seed": 0,
                             "stratified": True}
    assert prov["task"] == "classify" and cfg["target"] == "species"
    assert cfg["classes"] == ["setosa", "versicolor", "virginica"]
    assert len(prov["history"]["loss"]) == 50
    assert str(path.parent) not in json.dumps(cfg)          # a name, never a path
    assert load_model(model).history_["loss"] == prov["history"]["loss"]


def test_evaluate_rescores_the_held_out_split_of_the_same_file(capsys, iris, tmp_path):
    path, model = iris
    code, out, _ = run(capsys, "evaluate", str(model), "--dataset", str(path))
    assert code == 0 and "(30 examples)" in out and "held-out test rows" in out
    # without --dataset: which data, and how to pass it
    code, _, err = run(capsys, "evaluate", str(model))
    assert code == 2 and "iris.csv" in err and "--dataset" in err
    # another seed would score another split: refused, not silent
    code, _, err = run(capsys, "evaluate", str(model), "--dataset", str(path), "--seed", "3")
    assert code == 2 and "trained with --seed 0" in err
    assert "(150 examples)" in run(capsys, "evaluate", str(model), "--dataset", str(path),
                                   "--split", "all")[1]
    # a changed file is not the model's own: every row is scored, and it says so
    other = tmp_path / "iris.csv"
    other.write_text(path.read_text() + "5.0,3.4,1.5,0.2,setosa\n")
    code, out, _ = run(capsys, "evaluate", str(model), "--dataset", str(other))
    assert code == 0 and "(151 examples)" in out and "not the data" in out


def test_builtin_dataset_rescored_with_no_flags_and_curves_from_a_model(capsys, tmp_path):
    model = tmp_path / "m.safetensors"
    code, out, _ = run(capsys, "train", "--epochs", "2", "--quiet", "--seed", "2",
                       "--out", str(model))
    acc = out.split("test accuracy ")[1].split("%")[0]
    code, out, _ = run(capsys, "evaluate", str(model))
    assert code == 0 and f"accuracy {acc}%" in out
    code, out, _ = run(capsys, "plot", "curves", str(model), "--out", str(tmp_path / "c.png"))
    assert code == 0
    # an existing model is replaced, and the run says so
    code, out, _ = run(capsys, "train", "--epochs", "1", "--quiet", "--out", str(model))
    assert f"replacing {model}" in out


def test_early_stopping_says_why_it_stopped(capsys, tmp_path, iris):
    path, _ = iris
    code, out, _ = run(capsys, "train", "--dataset", str(path), "--quiet", "--epochs", "300",
                       "--early-stopping", "2", "--lr", "0.1",
                       "--out", str(tmp_path / "m.safetensors"))
    line = next(ln for ln in out.splitlines() if ln.startswith("early stopping"))
    last, best = map(int, re.match(r"early stopping after epoch (\d+): val_loss has not "
                                   r"improved on epoch (\d+)'s", line).groups())
    assert code == 0 and last - best == 3 and f"kept the weights of epoch {best}" in line


def test_provenance_is_validated_on_load(tmp_path):
    from chainrule.io import ModelFileError
    from chainrule.io.model import _serialize, _tensors

    net = Network.from_sizes([2, 3])
    net.provenance = {"data": {"name": "a.csv", "sha256": "0" * 64}}
    good = tmp_path / "good.safetensors"
    save_model(net, good)
    assert load_model(good).provenance["data"]["name"] == "a.csv"
    cfg = json.loads(read_header(good.read_bytes())[0]["__metadata__"]["chainrule"])
    for bad, words in (({"data": {"name": "/etc/passwd", "sha256": None}}, "not a path"),
                       ({"data": {"name": "a", "sha256": "xyz"}}, "sha256"),
                       ({"secret": 1}, "invalid provenance"),
                       ({"history": {"loss": ["a"]}}, "history"),
                       ({"target_scaler": {"mean": 0, "scale": -1}}, "scale > 0")):
        f = tmp_path / "bad.safetensors"
        f.write_bytes(_serialize(_tensors(net), {**cfg, "provenance": bad}))
        with pytest.raises(ModelFileError, match=words):
            load_model(f)


def test_a_model_saved_from_python_keeps_its_history(tmp_path):
    X = np.random.default_rng(0).normal(size=(50, 2))
    net = Network.from_sizes([2, 4, 2])
    net.fit(X, (X[:, 0] > 0).astype(int), epochs=3, verbose=0)
    save_model(net, tmp_path / "m.safetensors")
    assert len(load_model(tmp_path / "m.safetensors").history_["loss"]) == 3


# --------------------------------------------------------------------------- the API


def test_lazy_submodules_dir_and_python_dash_m():
    code = ("import sys, chainrule as cr; assert 'chainrule.nn' not in sys.modules; "
            "assert {'grad', 'jacobian', 'nn', 'optim', 'data', 'io', 'Network'} <= "
            "set(dir(cr)); print(cr.nn.Network.__name__, cr.optim.__name__, "
            "cr.data.__name__, cr.io.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["Network", "chainrule.optim", "chainrule.data", "chainrule.io"]
    proc = subprocess.run([sys.executable, "-m", "chainrule", "--help"], capture_output=True,
                          text=True)
    assert proc.returncode == 0 and "train" in proc.stdout


def test_fit_has_a_full_signature():
    import inspect

    params = inspect.signature(Network.fit).parameters
    assert {"epochs", "batch_size", "lr", "validation_data", "early_stopping", "seed"} <= \
        set(params)
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values())
    assert "validation_data" in Network.fit.__doc__


def test_accuracy_on_a_regressor_raises():
    net = Network.from_sizes([2, 1], output="identity", cost="mse")
    with pytest.raises(ValueError, match="accuracy.*regressor"):
        net.accuracy(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="regressor"):
        cr.nn.Network.from_sizes([2, 1], output="identity").accuracy([[0, 0]], [0])


def test_fit_takes_string_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = np.array(["cat", "dog", "emu"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0)]
    net = Network.from_sizes([2, 16, 3], seed=0)
    net.fit(X, y, epochs=30, batch_size=16, lr=0.02, verbose=0,
            validation_data=(X[:20], y[:20]))
    assert net.classes_.tolist() == ["cat", "dog", "emu"]
    assert set(net.predict(X)) <= {"cat", "dog", "emu"}
    assert net.accuracy(X, y) > 0.8 and np.isfinite(net.loss(X, y))
    with pytest.raises(ValueError, match="not among"):
        net.accuracy(X[:2], ["cat", "yak"])
    with pytest.raises(ValueError, match="4 outputs"):
        Network.from_sizes([2, 4]).fit(X, y, verbose=0)


def test_layer_number_accessors_follow_the_text():
    net = Network.from_sizes([4, 8, 3])
    assert net.layer(1) is net.layers[0] and net.layer(2).W.shape == (3, 8)
    g = net.backprop(np.ones((5, 4)), np.zeros(5, dtype=int))
    delta2, dW2, db2 = g.layer(2)
    assert delta2 is g.delta[1] and dW2.shape == (3, 8) and db2.shape == (3,)
    for bad in (0, 3, -1):
        with pytest.raises(IndexError, match="l = 1..2"):
            net.layer(bad)
        with pytest.raises(IndexError, match="l = 1..2"):
            g.layer(bad)


def test_default_regression_matches_linear_on_diabetes(capsys, tmp_path):
    """Issue 16's must-show, the tight half (benchmarks/regression_defaults.py runs both):
    the CLI with only --dataset and --target, five shuffles of scikit-learn's diabetes."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    from chainrule.data import split

    X0, y0 = load_diabetes(return_X_y=True)
    ours, linear = [], []
    for s in range(5):
        order = np.random.default_rng(s).permutation(len(y0))
        X, y = X0[order], y0[order]
        path = _write_csv(tmp_path / f"d{s}.csv", X, y, [f"x{i}" for i in range(10)], "y")
        code, out, _ = run(capsys, "train", "--dataset", str(path), "--target", "y",
                           "--out", str(tmp_path / f"d{s}.safetensors"))
        assert code == 0 and "worse than predicting" not in out
        ours.append(float(out.split("test RMSE ")[1].split()[0]))
        tr, va, te = split(len(y), (0.7, 0.1, 0.2), seed=0)
        rows = np.concatenate([tr, va])
        lin = LinearRegression().fit(X[rows], y[rows]).predict(X[te])
        linear.append(float(np.sqrt(np.mean((lin - y[te]) ** 2))))
    assert np.mean(ours) <= 1.03 * np.mean(linear), (ours, linear)


def test_every_option_has_help_and_shows_its_default():
    from chainrule.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in subs.items():
        fmt = sub._get_formatter()
        for action in sub._actions:
            if action.dest == "help":
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
            if action.option_strings and action.nargs != 0 and action.default is not None:
                assert "default" in fmt._get_help_string(action), (name, action.dest)
    text = subs["plot"].format_help()
    assert "(default: 30)" in " ".join(text.split()) and "descent steps" in text


def test_progress_within_slow_epochs_on_a_terminal_only():
    import io

    from chainrule.training.progress import RichProgress

    X = np.random.default_rng(0).normal(size=(400, 5))
    y = (X[:, 0] > 0).astype(int)
    for live, after in ((True, 0.0), (False, 0.0), (True, 60.0)):
        buf = io.StringIO()
        Network.from_sizes([5, 8, 2]).fit(X, y, epochs=2, batch_size=8, verbose=0,
                                          callbacks=[RichProgress(buf, after=after, live=live)])
        text = buf.getvalue()
        lines = [ln for ln in text.split("\n") if ln.strip()]
        assert lines[-1].split("\x1b[2K")[-1].startswith("epoch 2/2  loss")
        bar = "50/50" in text
        assert bar == (live and after == 0.0), (live, after)
        if not live:
            assert text.count("\n") == 2 and "\x1b" not in text


@pytest.mark.parametrize("argv,module,extra", [
    (["train", "--plot", "pics"], "matplotlib", "plot"),
    (["plot", "curves", "m.safetensors", "--out", "c.png"], "matplotlib", "plot"),
    (["export", "m.safetensors", "--onnx", "m.onnx"], "onnx", "onnx"),
    (["grad", "x**2"], "sympy", "symbolic"),
])
def test_extras_are_checked_before_any_work(capsys, tmp_path, monkeypatch, argv, module, extra):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, module, None)      # as if it were not installed
    code, out, err = run(capsys, *argv)
    assert code == 2 and f"pip install 'chainrule[{extra}]'" in err and out == ""
    assert list(tmp_path.iterdir()) == []               # nothing trained, nothing written


def test_an_old_model_file_without_provenance_asks_for_its_data(capsys, tmp_path, iris):
    from chainrule.io.model import _serialize, _tensors

    path, model = iris
    cfg = json.loads(read_header(model.read_bytes())[0]["__metadata__"]["chainrule"])
    del cfg["provenance"]
    old = tmp_path / "old.safetensors"
    net = load_model(model)
    old.write_bytes(_serialize(_tensors(net), cfg))
    code, _, err = run(capsys, "evaluate", str(old))
    assert code == 2 and "keeps no record" in err and "--dataset" in err
    code, out, _ = run(capsys, "evaluate", str(old), "--dataset", str(path))
    assert code == 0 and "(150 examples)" in out


def test_numeric_class_labels_that_are_not_indices(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = np.array([3, 5, 7])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0)]
    path = _write_csv(tmp_path / "odd.csv", X, y, ["a", "b"], "k")
    model = tmp_path / "m.safetensors"
    code, out, err = run(capsys, "train", "--dataset", str(path), "--quiet", "--out", str(model))
    assert code == 0, err
    assert load_model(model).classes_.tolist() == [3, 5, 7]
    code, out, _ = run(capsys, "evaluate", str(model), "--dataset", str(path))
    assert code == 0 and "accuracy" in out


def test_the_data_hash_follows_the_read_rule(capsys, tmp_path, iris):
    import os

    _, model = iris
    fifo = tmp_path / "iris.csv"
    os.mkfifo(fifo)                  # a hash that opened it would wait for a writer forever
    code, _, err = run(capsys, "evaluate", str(model), "--dataset", str(fifo))
    assert code == 1 and "FIFO" in err


def test_fit_says_when_early_stopping_ends_the_run():
    import io

    X = np.random.default_rng(0).normal(size=(100, 3))
    buf = io.StringIO()
    Network.from_sizes([3, 8, 2]).fit(X, (X[:, 0] > 0).astype(int), epochs=200, lr=0.1,
                                      validation_split=0.2, early_stopping=2, stream=buf)
    assert re.search(r"early stopping after epoch \d+; the weights of epoch \d+ were kept",
                     buf.getvalue().splitlines()[-1])
