"""The chainrule command, used as a new user would: the default run, its model, and every
wrong argument or broken file ending in one line and a non-zero status."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from chainrule.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The README's main job: `chainrule train` on the built-in digits."""
    d = tmp_path_factory.mktemp("train")
    model = d / "model.safetensors"
    proc = subprocess.run([sys.executable, "-m", "chainrule.cli", "train", "--out", str(model)],
                          capture_output=True, text=True, timeout=120, cwd=d)
    assert proc.returncode == 0, proc.stderr
    return model, proc.stdout, proc.stderr


def test_default_train_reaches_95_percent_and_evaluate_agrees(trained, capsys):
    model, out, err = trained
    acc = float(re.search(r"test accuracy ([\d.]+)%", out).group(1))
    assert acc >= 95.0
    assert f"model saved to {model}" in out
    assert "epoch 30/30" in err  # progress, one line per epoch when not a terminal
    code, out2, _ = run(capsys, "evaluate", str(model))
    assert code == 0
    assert float(re.search(r"accuracy ([\d.]+)%", out2).group(1)) == acc


def test_predict_and_explain_a_saved_model(trained, capsys, tmp_path):
    model, _, _ = trained
    from chainrule.data import load_digits
    X, y = load_digits()
    csv = tmp_path / "in.csv"
    csv.write_text(",".join(f"x{i}" for i in range(64)) + "\n" +
                   "\n".join(",".join(f"{v:.4f}" for v in row) for row in X[:5]) + "\n")
    code, out, _ = run(capsys, "predict", str(model), str(csv))
    assert code == 0 and out.splitlines()[0] == "prediction" and len(out.splitlines()) == 6
    dest = tmp_path / "pred.csv"
    assert run(capsys, "predict", str(model), str(csv), "--out", str(dest))[0] == 0
    assert dest.read_text().splitlines()[1:] == out.splitlines()[1:]
    code, out, _ = run(capsys, "explain", "--model", str(model), "--input", str(csv),
                       "--label", str(y[0]))
    assert code == 0 and "BP2" in out and "largest relative difference" in out


def test_explain_the_text(capsys):
    code, out, _ = run(capsys, "explain")
    assert code == 0
    assert "[[ 96.]\n       [156.]]" in out          # section 2.3's z^1
    assert re.search(r"largest relative difference = \d\.\d+e-1[5-9]", out)
    assert "the cost went down" in out
    for fmt, marker in (("markdown", "### BP1"), ("latex", r"\subsection*{BP1")):
        code, out, _ = run(capsys, "explain", "--format", fmt)
        assert code == 0 and marker in out


def test_jacobian_and_grad(capsys):
    code, out, _ = run(capsys, "jacobian", "2*x + y**3, exp(y) - 13*x", "--wrt", "x,y",
                       "--at", "x=1,y=2")
    assert code == 0
    assert "[[2, 3*y**2],\n [-13, exp(y)]]" in out and "agrees" in out
    code, out, _ = run(capsys, "grad", "x**2 + cos(y)", "--wrt", "x,y", "--latex")
    assert code == 0 and r"\sin{\left(y \right)}" in out


def test_help_is_fast_and_lists_commands():
    proc = subprocess.run([sys.executable, "-m", "chainrule.cli", "--help"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    for c in ("train", "evaluate", "predict", "jacobian", "grad", "explain"):
        assert c in proc.stdout


# ------------------------------------------------------------------ bad input


@pytest.fixture
def files(tmp_path, trained):
    model, _, _ = trained
    f = {}
    f["good"] = tmp_path / "good.safetensors"
    shutil.copy(model, f["good"])
    data = f["good"].read_bytes()
    (tmp_path / "notarget.csv").write_text("a,b\n1,2\n")
    (tmp_path / "nonnumeric.csv").write_text("a,b,y\n1,x,0\n2,3,1\n")
    (tmp_path / "nan.csv").write_text("a,b,y\n" + "1,nan,0\n2,3,1\n" * 6)
    (tmp_path / "ragged.csv").write_text("a,b,y\n1,2,0\n2,3\n")
    (tmp_path / "oneclass.csv").write_text("a,b,y\n" + "1,2,cat\n3,4,cat\n" * 6)
    (tmp_path / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[20] ^= 0x40  # inside the JSON header
    (tmp_path / "flipped.safetensors").write_bytes(bytes(flipped))
    import pickle
    (tmp_path / "pickle.safetensors").write_bytes(pickle.dumps({"W": [1, 2]}))
    from safetensors.numpy import load as st_load
    from safetensors.numpy import save as st_save
    tensors = st_load(data)
    import struct
    (n,) = struct.unpack("<Q", data[:8])
    cfg = json.loads(json.loads(data[8:8 + n])["__metadata__"]["chainrule"])
    for name, change in (("future", {"schema_version": 99}),
                         ("module", {"layers": [{**cfg["layers"][0],
                                                 "activation": "os.system"}] + cfg["layers"][1:]})):
        (tmp_path / f"{name}.safetensors").write_bytes(
            st_save(tensors, metadata={"chainrule": json.dumps({**cfg, **change})}))
    return f


def _mnist_copy(tmp_path, mnist_dir, corrupt):
    d = tmp_path / "mnist"
    d.mkdir()
    for p in mnist_dir.glob("*.gz"):
        shutil.copy(p, d / p.name)
    lab = d / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(lab.read_bytes()))
    if corrupt == "checksum":
        raw[-1] = (raw[-1] + 1) % 10
    else:
        raw[3] = 0x03  # magic 2051 where 2049 belongs
    lab.write_bytes(gzip.compress(bytes(raw)))
    return d


BAD_TRAIN = [
    (["--dataset", "{tmp}/missing.csv"], "file not found"),
    (["--dataset", "{tmp}/notarget.csv", "--target", "y"], "no column named 'y'"),
    (["--dataset", "{tmp}/nonnumeric.csv"], "'x' is not a number"),
    (["--dataset", "{tmp}/nan.csv"], "NaN"),
    (["--dataset", "{tmp}/ragged.csv"], "ragged"),
    (["--dataset", "{tmp}/oneclass.csv"], "single class"),
    (["--dataset", "{tmp}"], "use digits, mnist"),
    (["--resume", "{tmp}/good.safetensors"], "is also the checkpoint being resumed"),
]


@pytest.mark.parametrize("argv,words", BAD_TRAIN, ids=[w for _, w in BAD_TRAIN])
def test_bad_training_input_keeps_the_good_model(capsys, tmp_path, files, argv, words):
    before = files["good"].read_bytes()
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run(capsys, "train", "--quiet", "--epochs", "1", "--out",
                         str(files["good"]), *argv)
    assert code in (1, 2)
    assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert files["good"].read_bytes() == before


@pytest.mark.parametrize("name,words", [
    ("truncated", "truncated"), ("flipped", "not valid JSON"), ("pickle", "pickle"),
    ("future", "newer chainrule"), ("module", "unknown activation 'os.system'"),
])
def test_bad_model_files(capsys, tmp_path, files, name, words):
    code, _, err = run(capsys, "evaluate", str(tmp_path / f"{name}.safetensors"))
    assert code == 1 and words in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("corrupt,words", [("checksum", "SHA-256"), ("magic", "magic number")])
def test_bad_mnist_files(capsys, tmp_path, mnist_dir, corrupt, words):
    d = _mnist_copy(tmp_path, mnist_dir, corrupt)
    code, _, err = run(capsys, "train", "--dataset", "mnist", "--data-dir", str(d), "--quiet",
                       "--out", str(tmp_path / "m.safetensors"))
    assert code == 1 and words in err and "train-labels" in err
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("expr", ["__import__('os').system('touch pwned')",
                                  "open('x').read()", "().__class__", "9**9**9",
                                  "(lambda: 1)()"])
def test_expressions_that_try_to_run_code(capsys, tmp_path, monkeypatch, expr):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "jacobian", expr)
    assert code == 1 and err.startswith("chainrule: error:") and out == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [
    ["train", "--epochs", "0"], ["train", "--epochs", "x"], ["train", "--lr", "-1"],
    ["train", "--lr", "nan"], ["train", "--batch-size", "0"], ["train", "--layers", "10,a"],
    ["train", "--optimizer", "lbfgs"], ["train", "--dtype", "float16"],
    ["train", "--activation"], ["nosuchcommand"], ["evaluate"], ["explain", "--input", "1"],
    ["train", "--dataset", "data.txt"],
])
def test_usage_errors_exit_2(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.startswith("chainrule: usage error:")
    assert len(err.strip().splitlines()) == 1


def test_unknown_activation_name(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--activation", "relux", "--quiet", "--out",
                       str(tmp_path / "m.safetensors"))
    assert code == 1 and "unknown activation 'relux'" in err


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "chainrule.cli", "--debug", "evaluate",
                           str(tmp_path / "none.safetensors")], capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_interrupted_run_resumes_to_the_same_weights(capsys, tmp_path, monkeypatch):
    from chainrule.io import load_checkpoint, load_model
    from chainrule.io import model as io_model

    full = tmp_path / "full.safetensors"
    assert run(capsys, "train", "--quiet", "--epochs", "4", "--out", str(full))[0] == 0
    ck = tmp_path / "ck.safetensors"
    part = tmp_path / "part.safetensors"
    original = io_model.Checkpoint.on_epoch_end

    def stop_after_epoch_two(self, state):
        original(self, state)
        if state.epoch == 1:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C after epoch 2

    monkeypatch.setattr(io_model.Checkpoint, "on_epoch_end", stop_after_epoch_two)
    code, _, err = run(capsys, "train", "--quiet", "--epochs", "4", "--checkpoint", str(ck),
                       "--out", str(part))
    assert code == 130 and "interrupted" in err and not part.exists()
    monkeypatch.setattr(io_model.Checkpoint, "on_epoch_end", original)
    assert load_checkpoint(ck)[1]["epoch"] == 1
    code, _, _ = run(capsys, "train", "--quiet", "--resume", str(ck), "--out", str(part))
    assert code == 0 and load_checkpoint(ck)[1]["epoch"] == 3
    assert np.array_equal(load_model(full).theta, load_model(part).theta)


def test_export_and_plot_commands(capsys, tmp_path, trained):
    model, _, _ = trained
    onx = tmp_path / "m.onnx"
    assert run(capsys, "export", str(model), "--onnx", str(onx))[0] == 0
    import onnxruntime as ort

    from chainrule.data import load_digits
    from chainrule.io import load_model
    X, _ = load_digits()
    got = ort.InferenceSession(str(onx)).run(None, {"X": X[:20]})[0]
    np.testing.assert_allclose(got, load_model(model).predict_proba(X[:20]), atol=1e-5)
    for what, extra in (("surface", ["--fresh", "--steps", "5"]), ("weights", [])):
        out = tmp_path / f"{what}.png"
        code, text, _ = run(capsys, "plot", what, str(model), "--out", str(out), *extra)
        assert code == 0 and out.stat().st_size > 10_000
    # a model file keeps its history (issue 16), so its curves draw without a checkpoint
    code, _, err = run(capsys, "plot", "curves", str(model), "--out", str(tmp_path / "c.png"))
    assert code == 0 and (tmp_path / "c.png").stat().st_size > 10_000
    code, _, err = run(capsys, "plot", "surface", str(model), "--out",
                       str(tmp_path / "c.png"), "--w1", "9,0,0")
    assert code == 1 and "layer 9 does not exist" in err


def test_train_writes_training_curves(capsys, tmp_path):
    code, out, _ = run(capsys, "train", "--quiet", "--epochs", "2", "--out",
                       str(tmp_path / "m.safetensors"), "--plot", str(tmp_path / "pics"))
    assert code == 0 and (tmp_path / "pics" / "training_curves.png").stat().st_size > 10_000


def test_debug_works_after_the_command_too(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "chainrule.cli", "evaluate",
                           str(tmp_path / "none.safetensors"), "--debug"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "ModelFileError" in proc.stderr
