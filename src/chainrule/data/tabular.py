"""Tabular data: CSV and NPZ files with a named target column, label encoding,
standardisation fitted on the training split, and seeded splits."""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._safe_io import check_budget, format_bytes, memory_budget, open_regular, read_bytes
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


def _read_text(path: Path, max_memory: int | str | None = None) -> str:
    """The whole text of a small UTF-8 file (a regular file only, read with a budget)."""
    limit = min(MAX_FILE_BYTES, memory_budget(max_memory))
    raw = read_bytes(path, limit, "CSV file", DataError)
    if _binary(raw[:4096]):
        raise DataError(f"{path}: this is a binary file, not a CSV text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV"
                        ) from None


def _binary(head: bytes) -> bool:
    return head[:2] == b"\x1f\x8b" or head[:4] == b"PK\x03\x04" or b"\x00" in head


def _number(s: str) -> float:
    s = s.strip()
    if s == "":
        return math.nan
    return float(s)


# --------------------------------------------------------------------------- streamed CSV
# The file is read twice, in 1 MB pieces: once to count its lines (an upper bound on the
# rows, so the array is allocated once, after the budget check), once through csv.reader
# to fill it, a few thousand rows at a time. Peak memory: the array, plus one chunk.

CHUNK_ROWS = 4096
_INT = re.compile(r"^[+-]?[0-9]+$")
INT64_MAX = 2 ** 63 - 1


class _CSV:
    """An open CSV file: its header, an upper bound on its data rows, and its rows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.f = open_regular(path, "CSV file", DataError)
        try:
            self.lines = self._count()
        except BaseException:
            self.f.close()
            raise

    def _count(self) -> int:
        n, size, head = 0, 0, b""
        while True:
            try:
                piece = self.f.read(1 << 20)
            except OSError as exc:
                raise DataError(f"{self.path}: cannot read it ({exc.strerror})") from None
            if not piece:
                break
            if not size:
                head = piece[:4096]
                if _binary(head):
                    raise DataError(f"{self.path}: this is a binary file, not a CSV text file")
            size += len(piece)
            if size > MAX_FILE_BYTES:
                raise DataError(f"{self.path}: larger than the "
                                f"{format_bytes(MAX_FILE_BYTES)} limit for CSV files")
            n += piece.count(b"\n") + piece.count(b"\r")  # csv ends lines at either
        self.f.seek(0)
        return n + 1

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number, fields) of each non-blank row, the header first."""
        self.f.seek(0)
        text = io.TextIOWrapper(self.f, encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        try:
            for row in reader:
                if any(c.strip() for c in row):
                    yield reader.line_num, row
        except UnicodeDecodeError:
            raise DataError(f"{self.path}: not UTF-8 text (near line {reader.line_num + 1}); "
                            f"save it as UTF-8 CSV") from None
        except csv.Error as exc:
            why = str(exc)
            if "field larger than field limit" in why:
                why = (f"a field longer than {csv.field_size_limit():,} characters; "
                       f"is it a CSV file?")
            raise DataError(f"{self.path}: line {reader.line_num}: not a readable CSV file "
                            f"({why})") from None
        finally:
            text.detach()

    def close(self) -> None:
        self.f.close()


def _header(path: Path, rows: Iterator[tuple[int, list[str]]]) -> list[str]:
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}: the file is empty")
    header = [h.strip() for h in first[1]]
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{path}: the header names {', '.join(_shown(d) for d in dup)} more "
                        f"than once")
    for h in header:
        _check_name(path, h, "a column name")
    return header


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _shown(s: str) -> str:
    return repr(s if len(s) <= 60 else s[:57] + "...")


def printable_problem(s: str) -> str | None:
    """Why the name or class ``s`` cannot be printed safely, or None: no control
    characters (terminal escapes, line breaks, bidirectional overrides), at most 1,000
    characters."""
    if _CONTROL.search(s):
        return (f"{_shown(s)} holds control characters (terminal escapes, line breaks or "
                f"direction overrides)")
    if len(s) > 1000:
        return f"is {len(s):,} characters long; the limit is 1,000"
    return None


def _check_name(path: Path | str, s: str, what: str) -> None:
    why = printable_problem(s)
    if why:
        raise DataError(f"{path}: {what} {why}; fix the file")


def _fill(path: Path, X: np.ndarray, r0: int, chunk: list[list[str]], lines: list[int],
          names: list[str], allow_nan: bool) -> None:
    """Parse one chunk of rows into X[r0:], with the line and column of a bad cell."""
    try:
        block = np.array(chunk, dtype=np.float64)
    except ValueError:
        block = np.empty((len(chunk), len(names)))
        for i, row in enumerate(chunk):
            for k, cell in enumerate(row):
                try:
                    block[i, k] = _number(cell)
                except ValueError:
                    raise DataError(f"{path}: line {lines[i]}, column {_shown(names[k])}: "
                                    f"{_shown(cell.strip())} is not a number; features must "
                                    f"be numeric") from None
    bad = ~np.isfinite(block)
    if bad.any() and not allow_nan:
        i, k = np.argwhere(bad)[0]
        raise DataError(f"{path}: line {lines[i]}, column {_shown(names[k])} is missing, NaN "
                        f"or infinite; fill or drop such rows first")
    if np.any(np.abs(block[~bad]) > 1e30):
        raise DataError(f"{path}: values larger than 1e30 in absolute value; rescale the "
                        f"features")
    X[r0:r0 + len(chunk)] = block


def _read_matrix(path: Path, pick: Any, max_memory: int | str | None, allow_nan: bool,
                 text_target: bool = False) -> tuple[np.ndarray, Any, list[str], Any]:
    """Stream a CSV file into (X, target values or None, feature names, pick's extra).
    ``pick(header)`` returns (feature column indices, target index or None, extra)."""
    data = _CSV(path)
    rows = data.rows()
    try:
        header = _header(path, rows)
        cols, t, extra = pick(header)
        names = [header[c] for c in cols]
        m_max = data.lines
        need = m_max * (len(cols) + (2 if t is not None else 0)) * 8
        check_budget(need, max_memory, f"{path}: {m_max:,} lines x {len(cols)} columns",
                     DataError)
        X = np.empty((m_max, len(cols)))
        yf = np.empty(m_max) if t is not None and not text_target else None
        yi = np.empty(m_max, np.int64) if yf is not None else None
        ys: list[str] | None = [] if t is not None and text_target else None
        seen: dict[str, str] = {}
        all_int = True
        m = 0
        chunk: list[list[str]] = []
        lines: list[int] = []
        for line, row in rows:
            if m >= m_max:
                raise DataError(f"{path}: the file grew while it was read; read a copy that "
                                f"nothing is writing to")
            if len(row) != len(header):
                raise DataError(f"{path}: line {line} has {len(row)} fields but the header "
                                f"has {len(header)} (ragged rows)")
            if t is not None:
                v = row[t].strip()
                if v == "":
                    raise DataError(f"{path}: line {line}: the target column "
                                    f"{_shown(header[t])} has empty cells")
                if ys is not None:
                    _check_name(path, v, f"line {line}: the class")
                    ys.append(seen.setdefault(v, v))
                else:
                    assert yf is not None and yi is not None
                    if all_int and _INT.match(v):
                        iv = int(v)
                        if abs(iv) > INT64_MAX:
                            raise DataError(f"{path}: line {line}: the target {_shown(v)} is "
                                            f"an integer beyond the 64-bit range; such labels"
                                            f" would be rounded into one another")
                        yi[m] = iv
                        yf[m] = float(iv)
                    else:
                        try:
                            yf[m] = float(v)
                        except ValueError:
                            rows.close()
                            data.close()
                            return _read_matrix(path, pick, max_memory, allow_nan, True)
                        if not math.isfinite(yf[m]):
                            raise DataError(f"{path}: the target column {_shown(header[t])} "
                                            f"holds NaN or infinite values")
                        all_int = False
            chunk.append([row[c] for c in cols])
            lines.append(line)
            if len(chunk) == CHUNK_ROWS:
                _fill(path, X, m + 1 - len(chunk), chunk, lines, names, allow_nan)
                chunk, lines = [], []
            m += 1
        if chunk:
            _fill(path, X, m - len(chunk), chunk, lines, names, allow_nan)
    finally:
        rows.close()
        data.close()
    if m == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    X = X[:m] if m == m_max else X[:m].copy()
    if t is None:
        y = None
    elif ys is not None:
        y = np.array(ys, dtype=str)
    elif all_int:
        assert yi is not None
        y = yi[:m].copy()
    else:
        assert yf is not None
        f = yf[:m].copy()
        y = f.astype(np.int64) if np.all(f == np.round(f)) and np.all(
            np.abs(f) < 2.0 ** 63) else f
    return X, y, names, extra


def load_csv(path: str | Path, target: str | None = None, allow_nan: bool = False,
             max_memory: int | str | None = None) -> Table:
    """A CSV file with a header row. ``target`` names the label column (default: the
    last column); every other column must be numeric. The file is streamed into the
    array, refused before allocation when it exceeds ``max_memory`` (bytes or "2G";
    default: half the memory available)."""
    path = Path(path)

    def pick(header: list[str]) -> tuple[list[int], int, str]:
        name = header[-1] if target is None else target
        if name not in header:
            raise DataError(f"{path}: no column named {_shown(name)}; the columns are "
                            f"{', '.join(header[:20])}{' ...' if len(header) > 20 else ''}")
        if len(header) < 2:
            raise DataError(f"{path}: needs at least one feature column besides "
                            f"{_shown(name)}")
        t = header.index(name)
        return [i for i in range(len(header)) if i != t], t, name

    X, y, feats, tname = _read_matrix(path, pick, max_memory, allow_nan)
    return Table(X, y, feats, tname)


def read_features(path: str | Path, names: list[str] | None, n: int,
                  max_memory: int | str | None = None) -> np.ndarray:
    """The feature matrix of a CSV file for a model: the columns ``names`` (in that
    order), or, without names, all ``n`` columns. Streamed, budgeted, finite values."""
    path = Path(path)

    def pick(header: list[str]) -> tuple[list[int], None, None]:
        if names:
            missing = [nm for nm in names if nm not in header]
            if missing:
                raise DataError(f"{path}: missing feature column(s) "
                                f"{', '.join(_shown(nm) for nm in missing[:5])}")
            return [header.index(nm) for nm in names], None, None
        if len(header) != n:
            raise DataError(f"{path}: {len(header)} columns but the model expects {n} "
                            f"features")
        return list(range(len(header))), None, None

    return _read_matrix(path, pick, max_memory, False)[0]


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


MAX_NPZ_MEMBERS = 10_000


def _npz_arrays(path: Path, max_memory: int | str | None) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, each .npy header read and checked (no objects, the
    declared shape matching the bytes stored) and the total checked against the memory
    budget before any array is allocated. Never unpickles."""
    fmt = np.lib.format
    with open_regular(path, ".npz file", DataError) as f:
        if f.read(4) != b"PK\x03\x04":
            raise DataError(f"{path}: not a readable .npz file (an .npz is a zip archive of "
                            f"arrays, as numpy.savez writes)")
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as zf:
                infos = [i for i in zf.infolist() if not i.filename.endswith("/")]
                if len(infos) > MAX_NPZ_MEMBERS:
                    raise DataError(f"{path}: {len(infos):,} members; the limit is "
                                    f"{MAX_NPZ_MEMBERS:,}")
                heads = []
                need = 0
                for info in infos:
                    with zf.open(info) as m:
                        version = fmt.read_magic(m)
                        if version == (1, 0):
                            shape, fortran, dtype = fmt.read_array_header_1_0(m)
                        elif version == (2, 0):
                            shape, fortran, dtype = fmt.read_array_header_2_0(m)
                        else:
                            raise ValueError(f"unsupported .npy version {version}")
                        start = m.tell()
                    if dtype.hasobject:
                        raise DataError(f"{path}: holds Python objects (pickled); chainrule "
                                        f"reads only numeric arrays")
                    if dtype.kind not in "biufcUS" or dtype.fields is not None:
                        raise DataError(f"{path}: array {_shown(info.filename)} has dtype "
                                        f"{dtype}; chainrule reads numbers and strings")
                    nbytes = math.prod(shape) * dtype.itemsize
                    if nbytes != info.file_size - start:
                        raise DataError(f"{path}: array {_shown(info.filename)} declares shape"
                                        f" {shape} but holds {info.file_size - start:,} bytes "
                                        f"(corrupted)")
                    # the array, and its float64 copy as features
                    need += nbytes + math.prod(shape) * 8
                    heads.append(info)
                check_budget(need, max_memory, f"{path}: its arrays", DataError)
                arrays = {}
                for info in heads:
                    with zf.open(info) as m:
                        key = info.filename[:-4] if info.filename.endswith(".npy") else \
                            info.filename
                        _check_name(path, key, "the array name")
                        arrays[key] = fmt.read_array(m, allow_pickle=False)
        except (DataError, MemoryError):
            raise
        except Exception as exc:  # zipfile and numpy raise many kinds on hostile bytes
            if "pickle" in str(exc).lower():
                raise DataError(f"{path}: holds Python objects (pickled); chainrule reads "
                                f"only numeric arrays") from None
            raise DataError(f"{path}: not a readable .npz file "
                            f"({' '.join(str(exc).split())[:200]})") from None
    return arrays


def load_npz(path: str | Path, target: str | None = None,
             max_memory: int | str | None = None) -> Table:
    """An NPZ file either with arrays ``X`` (m, n) and ``y`` (m,), or with one 1-D array per
    column, ``target`` naming the label column. Never unpickles; every header is checked
    against the bytes and the memory budget before an array is allocated."""
    path = Path(path)
    arrays = _npz_arrays(path, max_memory)
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
    if y.ndim != 1:
        raise DataError(f"{path}: the target must be 1-D, got shape {y.shape}")
    if y.shape[0] != X.shape[0]:
        raise DataError(f"{path}: {X.shape[0]} rows of features but {y.shape[0]} targets")
    if X.shape[0] == 0:
        raise DataError(f"{path}: holds no examples")
    X = X.astype(np.float64)
    _check_values(path, X, names, False)
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise DataError(f"{path}: the target holds NaN or infinite values")
    if y.dtype.kind == "u" and y.size and int(y.max()) > INT64_MAX:
        raise DataError(f"{path}: the target holds integers beyond the 64-bit signed range")
    if y.dtype.kind in "US":
        y = y.astype(str)
        for c in np.unique(y):
            _check_name(path, str(c), "the class")
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
