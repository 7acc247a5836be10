"""chainrule.data: the built-in digits, MNIST from IDX files, tabular files, and memory-mapped
arrays for data larger than memory (``chainrule.data.memmap``)."""

from __future__ import annotations

from importlib import resources

import numpy as np

from .errors import DataError
from .memmap import convert_csv, open_array, open_table
from .mnist import default_data_dir, load_mnist, read_idx
from .tabular import LabelEncoder, Standardizer, Table, load_csv, load_npz, split

__all__ = ["load_digits", "load_mnist", "read_idx", "default_data_dir", "load_csv",
           "load_npz", "LabelEncoder", "Standardizer", "split", "Table", "DataError",
           "open_array", "open_table", "convert_csv"]


def load_digits(normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 digits that scikit-learn bundles, shipped inside chainrule (see
    LICENSE-digits.txt): ``X`` (1797, 64), in [0, 1] (or 0..16 with ``normalize=False``),
    and labels ``y`` 0-9.

    >>> X, y = load_digits()
    >>> X.shape, int(y[:10].sum())
    ((1797, 64), 45)
    """
    ref = resources.files(__package__).joinpath("digits.npz")
    with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as z:
        X, y = z["images"], z["target"].astype(np.int64)
    return (X.astype(np.float32) / 16.0 if normalize else X), y
