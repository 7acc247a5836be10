"""Shared fixtures: where the real MNIST lies (../shared/data/mnist beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MNIST_DIR = Path(os.environ.get("CHAINRULE_TEST_MNIST",
                                Path(__file__).resolve().parents[1].parent / "shared" / "data"
                                / "mnist"))


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST files. CI sets CHAINRULE_REQUIRE_MNIST=1, so there a missing folder
    fails the run instead of skipping."""
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        if os.environ.get("CHAINRULE_REQUIRE_MNIST"):
            pytest.fail(f"real MNIST not found in {MNIST_DIR}")
        pytest.skip(f"real MNIST not found in {MNIST_DIR} (set CHAINRULE_TEST_MNIST)")
    return MNIST_DIR


def optimizer_run(make, theta, grads):
    """The weights after ``make()`` steps through ``grads`` from a copy of ``theta``."""
    opt, th = make(), theta.copy()
    for g in grads:
        opt.step(th, g)
    return th
