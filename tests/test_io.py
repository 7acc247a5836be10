"""Model files: round trips, atomic writes, and every kind of broken file refused."""

from __future__ import annotations

import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.numpy import save

from chainrule.io import (
    ModelFileError,
    atomic_write,
    load_checkpoint,
    load_model,
    save_checkpoint,
    save_model,
)
from chainrule.nn import Network
from chainrule.optim import Adam


@pytest.fixture
def net():
    n = Network.from_sizes([4, 5, 3], hidden="tanh", seed=1)
    n.classes_ = np.array(["ant", "bee", "cat"])
    n.preprocessing = {"mean": np.arange(4.0), "scale": np.ones(4) * 2,
                       "feature_names": ["a", "b", "c", "d"], "target": "kind"}
    return n


def test_round_trip_keeps_everything(tmp_path, net):
    p = save_model(net, tmp_path / "m.safetensors")
    m = load_model(p)
    assert np.array_equal(m.theta, net.theta) and m.dtype == net.dtype
    assert [la.activation.name for la in m.layers] == ["tanh", "softmax"]
    assert m.cost.name == "cross_entropy" and list(m.classes_) == ["ant", "bee", "cat"]
    assert np.array_equal(m.preprocessing["mean"], np.arange(4.0))
    assert m.preprocessing["feature_names"] == ["a", "b", "c", "d"]
    X = np.random.default_rng(0).normal(size=(6, 4))
    assert list(m.predict(X)) == list(net.predict(X))
    assert [f.name for f in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left


def test_float64_round_trip(tmp_path):
    n = Network.from_sizes([2, 2], dtype="float64")
    assert load_model(save_model(n, tmp_path / "m.safetensors")).dtype == np.float64


def test_nameless_user_functions_cannot_be_saved(tmp_path):
    # a file holds a function's name only (test_records.py: a named one round-trips)
    n = Network.from_sizes([2, 2], hidden=lambda z: z, output=lambda z: z * 2, cost="mse")
    with pytest.raises(ModelFileError, match="holds its name only"):
        save_model(n, tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, net, monkeypatch):
    p = tmp_path / "m.safetensors"
    save_model(net, p)
    good = p.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(ModelFileError, match="m.safetensors: cannot write it \\(disk full\\)"):
        atomic_write(p, b"new content")
    assert p.read_bytes() == good and [f.name for f in tmp_path.iterdir()] == ["m.safetensors"]


def test_nan_weights_are_not_saved(tmp_path, net):
    net.theta[0] = np.nan
    with pytest.raises(ModelFileError, match="NaN"):
        save_model(net, tmp_path / "m.safetensors")


def _with_config(tmp_path, net, mutate, tensors_mutate=None):
    from chainrule.io.model import _config, _tensors
    cfg = _config(net)
    mutate(cfg)
    t = _tensors(net)
    if tensors_mutate:
        tensors_mutate(t)
    p = tmp_path / "x.safetensors"
    p.write_bytes(save(t, metadata={"chainrule": json.dumps(cfg)}))
    return p


@pytest.mark.parametrize("mutate,words", [
    (lambda c: c.update(schema_version=2), "newer chainrule"),
    (lambda c: c["layers"][0].update(activation="os.system"), "unknown activation"),
    (lambda c: c["layers"][0].update(activation="numpy.lib.format:read_array"),
     "unknown activation"),
    (lambda c: c.update(module="builtins.eval"), "unknown field"),
    (lambda c: c["layers"][0].update(callable="x"), "exactly type"),
    (lambda c: c["layers"][0].update(type="conv"), "unknown type"),
    (lambda c: c.update(cost="hinge"), "unknown cost"),
    (lambda c: c.update(dtype="int8"), "dtype"),
    (lambda c: c.update(format="other"), "not a chainrule model"),
    (lambda c: c["layers"][1].update(n_in=7), "expects 7 inputs"),
    (lambda c: c.update(classes=["a"]), "class names"),
])
def test_bad_configs_refused(tmp_path, net, mutate, words):
    with pytest.raises(ModelFileError, match=words):
        load_model(_with_config(tmp_path, net, mutate))


@pytest.mark.parametrize("tmut,words", [
    (lambda t: t.update({"layers.0.W": np.full((5, 4), np.nan, np.float32)}), "NaN"),
    (lambda t: t.update({"layers.0.W": np.ones((4, 5), np.float32)}), "shape"),
    (lambda t: t.update({"layers.0.W": np.ones((5, 4), np.float64)}), "float64"),
    (lambda t: t.pop("layers.1.b"), "missing"),
    (lambda t: t.update({"extra": np.ones(2, np.float32)}), "unexpected tensor"),
    (lambda t: t.update({"preprocessing.scale": -np.ones(4)}), "scale"),
])
def test_bad_tensors_refused(tmp_path, net, tmut, words):
    with pytest.raises(ModelFileError, match=words):
        load_model(_with_config(tmp_path, net, lambda c: None, tmut))


def test_truncated_at_every_boundary(tmp_path, net):
    good = save_model(net, tmp_path / "m.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", good[:8])
    cuts = sorted({0, 1, 7, 8, 9, 8 + n // 2, 8 + n - 1, 8 + n, 8 + n + 1,
                   (8 + n + len(good)) // 2, len(good) - 1})
    for cut in cuts:
        p = tmp_path / f"t{cut}.safetensors"
        p.write_bytes(good[:cut])
        with pytest.raises(ModelFileError):
            load_model(p)


def test_bit_flips_never_crash(tmp_path, net):
    good = save_model(net, tmp_path / "m.safetensors").read_bytes()
    rng = np.random.default_rng(0)
    outcomes = {"refused": 0, "loaded": 0}
    for _ in range(200):
        b = bytearray(good)
        pos = int(rng.integers(0, len(b)))
        b[pos] ^= 1 << int(rng.integers(0, 8))
        p = tmp_path / "f.safetensors"
        p.write_bytes(bytes(b))
        try:
            m = load_model(p)
        except ModelFileError:
            outcomes["refused"] += 1
        else:  # a flip inside the weights: still a sound model with finite weights
            assert np.all(np.isfinite(m.theta))
            outcomes["loaded"] += 1
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0


def test_pickle_in_disguise_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    p = tmp_path / "evil.safetensors"
    p.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(p)
    assert not marker.exists()


def test_header_claiming_terabytes(tmp_path):
    p = tmp_path / "big.safetensors"
    p.write_bytes(struct.pack("<Q", 2 ** 40) + b"{}")
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError, match="header claims"):
        load_model(p)
    assert time.perf_counter() - t0 < 1.0
    hdr = json.dumps({"layers.0.W": {"dtype": "F32", "shape": [2 ** 30, 2 ** 30],
                                     "data_offsets": [0, 8]}}).encode()
    p.write_bytes(struct.pack("<Q", len(hdr)) + hdr + bytes(8))
    with pytest.raises(ModelFileError, match="declares shape"):
        load_model(p)


def test_size_limit(tmp_path, net):
    p = save_model(net, tmp_path / "m.safetensors")
    with pytest.raises(ModelFileError, match="limit"):
        load_model(p, max_bytes=100)


def test_checkpoint_round_trip(tmp_path, net):
    opt = Adam(1e-3)
    X = np.random.default_rng(0).normal(size=(8, 4))
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    net.preprocessing = {}
    net.fit(X, y, epochs=2, optimizer=opt, verbose=0)
    p = save_checkpoint(tmp_path / "c.safetensors", net, opt, 1, net.history_, {"epochs": 5})
    n2, ck, state = load_checkpoint(p)
    assert ck["epoch"] == 1 and ck["optimizer"]["t"] == opt.t and ck["fit"]["epochs"] == 5
    assert np.array_equal(state["m"], opt.m) and np.array_equal(n2.theta, net.theta)
    assert load_model(p).sizes == net.sizes  # a checkpoint is also a model file
    with pytest.raises(ModelFileError, match="not a checkpoint"):
        load_checkpoint(save_model(net, tmp_path / "plain.safetensors"))


KILL_SCRIPT = r"""
import sys, numpy as np
from chainrule.nn import Network
from chainrule.io import save_model
net = Network.from_sizes([300, 200, 10], seed=0)
k = 0
print("ready", flush=True)
while True:
    k += 1
    net.theta[:] = k
    save_model(net, sys.argv[1])
"""


def test_killing_a_saving_process_never_leaves_a_broken_model(tmp_path):
    path = tmp_path / "m.safetensors"
    rng = np.random.default_rng(0)
    versions = set()
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(path)],
                                stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(float(rng.uniform(0.0, 0.3)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if path.exists():
            m = load_model(path)  # must load: old or new, never torn
            vals = np.unique(m.theta)
            assert vals.size == 1
            versions.add(float(vals[0]))
    assert versions  # the process did save, and every file left behind loaded


def test_write_through_a_symlink_keeps_the_link(tmp_path, net):
    """A symlink to a regular file: the file it names is replaced, the link stays."""
    import os

    real = tmp_path / "models" / "v3.safetensors"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "current.safetensors"
    os.symlink(real, link)
    save_model(net, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load_model(real).sizes == net.sizes


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "dangling link"])
def test_write_rule_refuses_before_writing(tmp_path, net, kind):
    import os
    import stat

    p = tmp_path / "m.safetensors"
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "device":  # a private copy of /dev/null, never the real one
        os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    elif kind == "directory":
        p.mkdir()
    else:
        os.symlink(tmp_path / "gone" / "x", p)
    before = os.lstat(p)
    with pytest.raises(ModelFileError, match="m.safetensors"):
        save_model(net, p)
    after = os.lstat(p)
    assert (before.st_mode, before.st_ino, before.st_rdev) == (after.st_mode, after.st_ino,
                                                               after.st_rdev)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["m.safetensors"]
