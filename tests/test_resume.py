"""Resume exactness: a run interrupted after an epoch and resumed from its checkpoint with
the same settings ends on weights bit-identical to the uninterrupted run, for every
optimiser, schedule and engine path (the fast engine's fused SGD step and worker threads,
the NumPy reference), with early stopping too; a larger --epochs extends a run."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.io import load_checkpoint, load_model
from chainrule.io import model as io_model

OPTIMIZERS = ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"]
# (engine, layers, batch): the fast engine with a 64 x 64 x 512 product (BP4 and the SGD
# step fused, the pipe's worker on), the fast engine small (nothing fused, one thread),
# and the NumPy reference
PATHS = [("fast", "512", "64"), ("fast", "16", "32"), ("numpy", "16", "32")]


def _train(capsys, *argv):
    code = main(["train", "--quiet", "--dtype", "float64", *argv])
    capsys.readouterr()
    return code


def _interrupt_after(monkeypatch, epoch):
    original = io_model.Checkpoint.on_epoch_end

    def stop(self, state):
        original(self, state)
        if state.epoch == epoch:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C after this epoch

    monkeypatch.setattr(io_model.Checkpoint, "on_epoch_end", stop)
    return original


def _full_and_resumed(capsys, tmp_path, monkeypatch, settings, stop_after=1, epochs="4"):
    full, part, ck = (tmp_path / n for n in ("full.safetensors", "part.safetensors",
                                             "ck.safetensors"))
    assert _train(capsys, "--epochs", epochs, *settings, "--out", str(full)) == 0
    original = _interrupt_after(monkeypatch, stop_after)
    assert _train(capsys, "--epochs", epochs, *settings, "--checkpoint", str(ck),
                  "--out", str(part)) == 130
    monkeypatch.setattr(io_model.Checkpoint, "on_epoch_end", original)
    assert load_checkpoint(ck)[1]["epoch"] == stop_after and not part.exists()
    assert _train(capsys, "--resume", str(ck), "--out", str(part)) == 0
    return load_model(full).theta, load_model(part).theta


@pytest.mark.parametrize("engine,layers,batch", PATHS, ids=["fast-fused", "fast", "numpy"])
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_resumed_run_is_bit_identical(capsys, tmp_path, monkeypatch, optimizer, schedule,
                                      engine, layers, batch):
    monkeypatch.setenv("CHAINRULE_BACKEND", engine)
    settings = ["--optimizer", optimizer, "--schedule", schedule, "--layers", layers,
                "--batch-size", batch]
    full, resumed = _full_and_resumed(capsys, tmp_path, monkeypatch, settings)
    assert np.array_equal(full, resumed)


@pytest.mark.parametrize("stop_after", [0, 2, 6])  # 6: the epoch it stops at
def test_resumed_run_with_early_stopping_is_bit_identical(capsys, tmp_path, monkeypatch,
                                                          stop_after):
    # patience 1 with a large rate: the validation loss turns up, the run stops early and
    # restores its best weights; interrupted before or after that, the resumed run ends on
    # the same weights
    settings = ["--optimizer", "sgd", "--lr", "0.9", "--schedule", "constant",
                "--early-stopping", "1", "--layers", "16"]
    full, resumed = _full_and_resumed(capsys, tmp_path, monkeypatch, settings, stop_after,
                                      epochs="12")
    assert np.array_equal(full, resumed)


def test_early_stopping_state_is_in_the_checkpoint(capsys, tmp_path, monkeypatch):
    ck = tmp_path / "ck.safetensors"
    _interrupt_after(monkeypatch, 1)
    assert _train(capsys, "--epochs", "5", "--early-stopping", "3", "--layers", "16",
                  "--checkpoint", str(ck), "--out", str(tmp_path / "m.safetensors")) == 130
    _, rec, _ = load_checkpoint(ck)
    es = rec["callbacks"]["EarlyStopping"]
    assert rec["fit"]["early_stopping"] == 3 and es["best_epoch"] in (0, 1)
    assert es["best_theta"].shape == load_model(ck).theta.shape


def test_a_larger_epochs_extends_the_run_and_a_smaller_one_is_refused(capsys, tmp_path,
                                                                      monkeypatch):
    ck, out = tmp_path / "ck.safetensors", tmp_path / "m.safetensors"
    assert _train(capsys, "--epochs", "2", "--layers", "16", "--checkpoint", str(ck),
                  "--out", str(out)) == 0
    assert main(["train", "--quiet", "--resume", str(ck), "--epochs", "1", "--out",
                 str(out)]) == 2
    assert "would end it before that" in capsys.readouterr().err
    assert _train(capsys, "--resume", str(ck), "--epochs", "4", "--out", str(out)) == 0
    _, rec, _ = load_checkpoint(ck)
    assert rec["epoch"] == 3 and rec["fit"]["epochs"] == 4 and len(rec["history"]["loss"]) == 4
