"""Fuzz the model-file loader with atheris (coverage-guided).

    pip install atheris
    python fuzz/fuzz_loader.py -max_total_time=600 fuzz/corpus_loader

Every input is written to a file and loaded. The only acceptable outcomes are a loaded
model with finite weights, or ModelFileError. Any other exception, or a crash, is a bug.
The seed corpus (made by make_corpus.py) holds real model files.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    import numpy as np

    from chainrule.io import ModelFileError, load_model

PATH = os.path.join(tempfile.mkdtemp(prefix="fuzz-loader-"), "m.safetensors")


def one(data: bytes) -> None:
    with open(PATH, "wb") as f:
        f.write(data)
    try:
        net = load_model(PATH, max_bytes=1 << 20)
    except ModelFileError:
        return
    assert np.all(np.isfinite(net.theta))


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
