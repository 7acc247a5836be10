"""SIGKILL `chainrule train` at random points, 50 times: every model and checkpoint file left
behind loads and is either the previous good state or a new complete one, and a resumed run
reaches exactly the weights (and accuracy) of an uninterrupted run with the same seed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np

from chainrule.io import ModelFileError, load_checkpoint, load_model

KILLS = 50
ARGS = ["--quiet", "--epochs", "20", "--layers", "128"]


def _train(cwd, *extra):
    return subprocess.Popen([sys.executable, "-m", "chainrule.cli", "train", *ARGS, *extra],
                            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _accuracy(path):
    from chainrule.data import load_digits, split
    X, y = load_digits()
    net = load_model(path)
    te = split(len(y), (0.7, 0.1, 0.2), seed=0, stratify=y)[2]
    return net.accuracy(X[te], y[te])


def test_kills_never_lose_or_corrupt_a_model(tmp_path):
    model = tmp_path / "model.safetensors"
    ck = tmp_path / "ck.safetensors"
    t0 = time.perf_counter()
    first = _train(tmp_path, "--out", str(model), "--seed", "100")
    assert first.wait(timeout=120) == 0
    first.stderr.close()
    duration = time.perf_counter() - t0   # kills land anywhere in a run: start-up to save
    rng = np.random.default_rng(0)
    stats = {"killed": 0, "finished": 0, "model kept": 0, "model replaced": 0,
             "checkpoints loaded": 0}
    i = -1
    while stats["killed"] < KILLS:
        i += 1
        assert i < 4 * KILLS, f"only {stats['killed']} kills in {i} runs"
        before = model.read_bytes()
        proc = _train(tmp_path, "--out", str(model), "--checkpoint", str(ck), "--seed", str(i))
        time.sleep(float(rng.uniform(0.0, 1.05 * duration)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            stats["killed"] += 1
        code = proc.wait(timeout=120)
        if code == 0:
            stats["finished"] += 1
        else:
            assert code == -signal.SIGKILL, proc.stderr.read().decode()
        net = load_model(model)                       # never unreadable, never missing
        assert np.all(np.isfinite(net.theta))
        if model.read_bytes() == before:
            stats["model kept"] += 1
        else:  # replaced only by a complete model (the kill may land after the save)
            assert _accuracy(model) > 0.9
            stats["model replaced"] += 1
        if ck.exists():
            try:
                _, info, _ = load_checkpoint(ck)
            except ModelFileError as exc:             # pragma: no cover - the failure mode
                raise AssertionError(f"kill {i}: unreadable checkpoint: {exc}") from None
            assert 0 <= info["epoch"] < 20 and info["fit"]["seed"] in range(i + 1)
            stats["checkpoints loaded"] += 1
        proc.stderr.close()
    print(stats)
    assert stats["killed"] == KILLS
    assert stats["model replaced"] >= stats["finished"]
    # resume the last interrupted run and compare with an uninterrupted run of its seed
    _, info, _ = load_checkpoint(ck)
    run_seed = info["fit"]["seed"]
    resumed = tmp_path / "resumed.safetensors"
    r = _train(tmp_path, "--resume", str(ck), "--out", str(resumed))
    assert r.wait(timeout=120) == 0, r.stderr.read().decode()
    r.stderr.close()
    ref = tmp_path / "reference.safetensors"
    u = _train(tmp_path, "--seed", str(run_seed), "--out", str(ref))
    assert u.wait(timeout=120) == 0
    u.stderr.close()
    assert np.array_equal(load_model(resumed).theta, load_model(ref).theta)
    assert _accuracy(resumed) == _accuracy(ref) > 0.9
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # a SIGKILL during a save can leave a temporary file (never a model file) behind
    assert all(p.startswith(".") for p in leftovers)
