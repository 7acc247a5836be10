"""Tabular data: CSV and NPZ files with a named target column, label encoding,
standardisation fitted on the training split, and seeded splits."""

from __future__ import annotations

import csv
import io
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError

MAX_FILE_BYTES = 2 * 1024 ** 3


@dataclass
class Table:
    """Features X (m, n) float64, the raw target column, and the names."""

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target: str
    meta: dict[str, Any] = field(default_factory=dict)


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a CSV file")
    if size > MAX_FILE_BYTES:
        raise DataError(f"{path}: {size / 1e9:.1f} GB is larger than the 2 GB limit")
    try:
        raw = path.read_bytes()
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror})") from None
    if raw[:2] == b"\x1f\x8b" or raw[:4] == b"PK\x03\x04" or b"\x00" in raw[:4096]:
        raise DataError(f"{path}: this is a binary file, not a CSV text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV"
                        ) from None


def _number(s: str) -> float:
    s = s.strip()
    if s == "":
        return math.nan
    return float(s)


def load_csv(path: str | Path, target: str | None = None, allow_nan: bool = False) -> Table:
    """A CSV file with a header row. ``target`` names the label column (default: the
    last column); every other column must be numeric."""
    path = Path(path)
    text = _read_text(path)
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path}: the file is empty")
    header = [h.strip() for h in rows[0]]
    if len(rows) == 1:
        raise DataError(f"{path}: the file has a header but no data rows")
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{path}: the header names {', '.join(dup)} more than once")
    if target is None:
        target = header[-1]
    if target not in header:
        raise DataError(f"{path}: no column named {target!r}; the columns are "
                        f"{', '.join(header[:20])}{' ...' if len(header) > 20 else ''}")
    if len(header) < 2:
        raise DataError(f"{path}: needs at least one feature column besides {target!r}")
    t = header.index(target)
    feats = [h for i, h in enumerate(header) if i != t]
    X = np.empty((len(rows) - 1, len(header) - 1))
    y = []
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{path}: line {r} has {len(row)} fields but the header has "
                            f"{len(header)} (ragged rows)")
        y.append(row[t].strip())
        k = 0
        for i, cell in enumerate(row):
            if i == t:
                continue
            try:
                X[r - 2, k] = _number(cell)
            except ValueError:
                raise DataError(f"{path}: line {r}, column {header[i]!r}: {cell.strip()!r} is "
                                f"not a number; features must be numeric") from None
            k += 1
    _check_values(path, X, feats, allow_nan)
    return Table(X, _typed(np.array(y, dtype=object), path, target), feats, target)


def _typed(y: np.ndarray, path: Path, target: str) -> np.ndarray:
    """Target strings become numbers when every one of them is a number."""
    if any(v == "" for v in y):
        raise DataError(f"{path}: the target column {target!r} has empty cells")
    try:
        f = np.array([float(v) for v in y])
    except (TypeError, ValueError):
        return y.astype(str)
    if not np.all(np.isfinite(f)):
        raise DataError(f"{path}: the target column {target!r} holds NaN or infinite values")
    return f.astype(np.int64) if np.all(f == np.round(f)) else f


def _check_values(path: Path, X: np.ndarray, names: list[str], allow_nan: bool) -> None:
    bad = ~np.isfinite(X)
    if bad.any() and not allow_nan:
        r, c = np.argwhere(bad)[0]
        raise DataError(f"{path}: line {r + 2}, column {names[c]!r} is missing, NaN or "
                        f"infinite; fill or drop such rows first")
    big = np.abs(X[np.isfinite(X)]) > 1e30 if X.size else np.zeros(0, bool)
    if big.any():
        raise DataError(f"{path}: values larger than 1e30 in absolute value; rescale the "
                        f"features")


def load_npz(path: str | Path, target: str | None = None) -> Table:
    """An NPZ file either with arrays ``X`` (m, n) and ``y`` (m,), or with one 1-D array per
    column, ``target`` naming the label column. Never unpickles."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected an .npz file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        raise DataError(f"{path}: not a readable .npz file (an .npz is a zip archive of "
                        f"arrays, as numpy.savez writes)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(f"{path}: holds Python objects (pickled); chainrule reads only "
                            f"numeric arrays") from None
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    if "X" in arrays and (target or "y") in arrays:
        X = arrays["X"]
        y = arrays[target or "y"]
        if X.ndim != 2:
            raise DataError(f"{path}: X must be 2-D (examples x features), got {X.shape}")
        names = [f"x{i}" for i in range(X.shape[1])]
        tname = target or "y"
    else:
        if target is None:
            raise DataError(f"{path}: name the target column with --target (columns: "
                            f"{', '.join(arrays)})")
        if target not in arrays:
            raise DataError(f"{path}: no array named {target!r}; the arrays are "
                            f"{', '.join(arrays)}")
        names = [k for k in arrays if k != target]
        if not names:
            raise DataError(f"{path}: no feature arrays besides {target!r}")
        cols = [arrays[k] for k in names]
        if any(c.ndim != 1 for c in cols + [arrays[target]]):
            raise DataError(f"{path}: column arrays must be 1-D")
        if len({len(c) for c in cols + [arrays[target]]}) != 1:
            raise DataError(f"{path}: the column arrays have different lengths")
        X = np.stack(cols, axis=1)
        y = arrays[target]
        tname = target
    if X.dtype.kind not in "fiub":
        raise DataError(f"{path}: features must be numeric, got dtype {X.dtype}")
    if y.shape[0] != X.shape[0]:
        raise DataError(f"{path}: {X.shape[0]} rows of features but {y.shape[0]} targets")
    if X.shape[0] == 0:
        raise DataError(f"{path}: holds no examples")
    X = X.astype(np.float64)
    _check_values(path, X, names, False)
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise DataError(f"{path}: the target holds NaN or infinite values")
    if y.dtype.kind in "US":
        y = y.astype(str)
    elif y.dtype.kind not in "fiub":
        raise DataError(f"{path}: the target must be numbers or strings, got {y.dtype}")
    return Table(X, y, names, tname)


class LabelEncoder:
    """Class labels of any type <-> indices 0..k-1 (classes sorted, as scikit-learn)."""

    def fit(self, y: Any) -> LabelEncoder:
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        return self

    def transform(self, y: Any) -> np.ndarray:
        y = np.asarray(y)
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        bad = self.classes_[idx] != y
        if np.any(bad):
            raise DataError(f"label {y[bad][0]!r} was not seen in training; known classes: "
                            f"{', '.join(map(str, self.classes_[:10]))}")
        return idx.astype(np.int64)

    def fit_transform(self, y: Any) -> np.ndarray:
        return self.fit(y).transform(y)

    def inverse_transform(self, idx: Any) -> np.ndarray:
        return self.classes_[np.asarray(idx)]


class Standardizer:
    """x -> (x - mean) / scale with the statistics of the training split only; a constant
    column gets scale 1."""

    def fit(self, X: np.ndarray) -> Standardizer:
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.mean_.shape[0]:
            raise DataError(f"the data has {X.shape[1]} features but the model was trained on "
                            f"{self.mean_.shape[0]}")
        return (X - self.mean_) / self.scale_

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)


def split(m: int, fractions: tuple[float, ...] = (0.8, 0.1, 0.1), seed: int = 0,
          stratify: np.ndarray | None = None) -> list[np.ndarray]:
    """Seeded index sets for train / validation / test (fractions summing to 1), each
    class spread over the parts in proportion when ``stratify`` holds labels.

    >>> [len(p) for p in split(10, (0.6, 0.2, 0.2))]
    [6, 2, 2]
    """
    if abs(sum(fractions) - 1.0) > 1e-9 or any(f < 0 for f in fractions):
        raise ValueError("split fractions must be >= 0 and sum to 1")
    rng = np.random.default_rng(seed)
    groups = [np.arange(m)] if stratify is None else [
        np.flatnonzero(stratify == c) for c in np.unique(stratify)]
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for g in groups:
        g = rng.permutation(g)
        cuts = np.round(np.cumsum(fractions)[:-1] * len(g)).astype(int)
        for i, piece in enumerate(np.split(g, cuts)):
            parts[i].append(piece)
    return [np.sort(np.concatenate(p)) for p in parts]
