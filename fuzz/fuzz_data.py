"""Fuzz the data loaders (CSV, NPZ, IDX) with atheris (coverage-guided).

    pip install atheris
    python fuzz/fuzz_data.py -max_total_time=600 -timeout=10 fuzz/corpus_data

The first byte of each input picks the loader (CSV, NPZ or IDX, raw or gzip); the rest is
written to a file and loaded under a 64 MB memory budget. The only acceptable outcomes are
a table (or array) of the promised shapes and types, or DataError. Any other exception, a
crash, a hang past the timeout or an allocation beyond the budget is a bug.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    import numpy as np

    from chainrule.data import DataError, load_csv, load_npz, read_idx

DIR = tempfile.mkdtemp(prefix="fuzz-data-")
BUDGET = 64 << 20


def one(data: bytes) -> None:
    if not data:
        return
    kind, body = data[0] % 5, data[1:]
    name = ("d.csv", "d.csv", "d.npz", "d.npz", "d.idx")[kind]
    path = os.path.join(DIR, name)
    with open(path, "wb") as f:
        f.write(body)
    try:
        if kind == 0:
            t = load_csv(path, max_memory=BUDGET)
        elif kind == 1:
            t = load_csv(path, allow_nan=True, max_memory=BUDGET)
        elif kind == 2:
            t = load_npz(path, "y", max_memory=BUDGET)
        elif kind == 3:
            t = load_npz(path, max_memory=BUDGET)
        else:
            a = read_idx(path)
            assert a.dtype == np.uint8 and 1 <= a.ndim <= 3
            return
    except DataError:
        return
    assert t.X.ndim == 2 and t.X.dtype == np.float64 and len(t.y) == t.X.shape[0]
    assert t.X.shape[0] >= 1 and len(t.feature_names) == t.X.shape[1]
    assert np.all(np.isfinite(t.X)) or kind == 1
    assert t.y.dtype.kind in "iufbU", t.y.dtype


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
