"""Data sets larger than memory: arrays mapped from disk, never read whole.

``open_array`` maps a ``.npy`` file, one member of an uncompressed ``.npz`` archive, or a
raw (not gzipped) IDX file, read-only: the operating system reads a page when a row on it
is touched, and may drop it again (a mapping's pages are file-backed, not anonymous
memory). A minibatch gathers its rows (``X.take(idx)``), so a training run, and each rank
of a data-parallel one, reads only the rows it trains on. Headers are checked against
the file size before anything is mapped.

``convert_csv`` streams a CSV file of numbers into a float32 ``.npy`` table in two passes
(count, then parse into the mapped output a block at a time), so a CSV larger than
memory becomes a file ``open_table`` maps: the features, with the target as the last
column.
"""

from __future__ import annotations

import csv
import io
import mmap
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .._safe_io import check_writable, open_regular
from .errors import DataError

__all__ = ["open_array", "open_table", "convert_csv"]

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _map(path: str | os.PathLike[str], dtype: Any, shape: tuple[int, ...], offset: int,
         fortran: bool = False, random: bool = True) -> np.ndarray:
    """Map ``shape`` items of ``dtype`` at ``offset`` of a regular file, read-only, after
    checking that the file holds them. ``random``: tell the kernel the rows will be read
    in shuffled order (MADV_RANDOM), so that a page fault reads the page, not the 128 KB
    of read-around a sequential reader would want (measured, docs/scaling.md: training on
    a 4 GB table under a 1 GB memory limit took 7 minutes in all; without it, the run was
    still unfinished after 11)."""
    dtype = np.dtype(dtype)
    if dtype.hasobject or dtype.itemsize == 0:
        raise DataError(f"{path}: dtype {dtype} cannot be mapped (objects need pickle)")
    if any(d < 0 for d in shape):
        raise DataError(f"{path}: a negative dimension in the shape {shape}")
    need = offset + int(np.prod(shape, dtype=object)) * dtype.itemsize
    with open_regular(path, "data file", DataError) as f:
        size = os.fstat(f.fileno()).st_size
        if size < need:
            raise DataError(f"{path}: the header promises {need} bytes but the file has "
                            f"{size}: it is truncated or not what it says")
        if int(np.prod(shape)) == 0:
            return np.empty(shape, dtype)
        X = np.memmap(f, dtype, "r", offset, shape, "F" if fortran else "C")
    mm = getattr(X, "_mmap", None)  # numpy's own mmap object
    if random and mm is not None and hasattr(mm, "madvise"):
        mm.madvise(mmap.MADV_RANDOM)
    return X


def _npy_header(f: Any, path: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f, max_header_size=10_000)
        return np.lib.format.read_array_header_2_0(f, max_header_size=10_000)
    except (ValueError, SyntaxError, EOFError) as exc:
        raise DataError(f"{path}: not a .npy array ({' '.join(str(exc).split())})") from None


def open_array(path: str | os.PathLike[str], member: str | None = None) -> np.ndarray:
    """Map a ``.npy`` file, the ``member`` array of an uncompressed ``.npz`` archive, or a
    raw IDX file (``.idx*``, ``*-ubyte``), read-only.

    >>> import tempfile
    >>> d = tempfile.mkdtemp(); np.save(d + "/a.npy", np.arange(6.0).reshape(3, 2))
    >>> a = open_array(d + "/a.npy"); type(a).__name__, a[2].tolist()
    ('memmap', [4.0, 5.0])
    """
    p = Path(path)
    name = p.name.lower()
    if name.endswith(".npz"):
        return _npz_member(p, member)
    with open_regular(p, "data file", DataError) as f:
        if name.endswith(".npy"):
            shape, fortran, dtype = _npy_header(f, p)
            return _map(p, dtype, shape, f.tell(), fortran)
        head = f.read(4)
        if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _IDX_TYPES or \
                not 1 <= head[3] <= 8:
            raise DataError(f"{p}: not a .npy, .npz or raw IDX file (an IDX file starts "
                            f"with two zero bytes, a type code and the number of "
                            f"dimensions; gunzip a .gz one first)")
        dims = f.read(4 * head[3])
        if len(dims) < 4 * head[3]:
            raise DataError(f"{p}: the IDX header is truncated")
        shape = tuple(int(d) for d in np.frombuffer(dims, ">u4"))
    return _map(p, _IDX_TYPES[head[2]], shape, 4 + 4 * head[3])


def _npz_member(p: Path, member: str | None) -> np.ndarray:
    with open_regular(p, "data file", DataError) as f:
        try:
            z = zipfile.ZipFile(f)
        except zipfile.BadZipFile:
            raise DataError(f"{p}: not a .npz (zip) archive") from None
        names = [i.filename for i in z.infolist()]
        if member is None:
            if len(names) != 1:
                raise DataError(f"{p}: holds {len(names)} arrays; name one of "
                                f"{[n[:-4] for n in names]}")
            member = names[0][:-4]
        info = next((i for i in z.infolist() if i.filename in (member, member + ".npy")),
                    None)
        if info is None:
            raise DataError(f"{p}: no array {member!r}; it holds "
                            f"{[n[:-4] for n in names]}")
        if info.compress_type != zipfile.ZIP_STORED:
            raise DataError(f"{p}: the array {member!r} is compressed, so it cannot be "
                            f"mapped; save with np.savez, not np.savez_compressed")
        f.seek(info.header_offset)
        local = f.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise DataError(f"{p}: a damaged zip entry for {member!r}")
        start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + \
            int.from_bytes(local[28:30], "little")
        f.seek(start)
        shape, fortran, dtype = _npy_header(f, p)
        offset = f.tell()
    if offset - start + int(np.prod(shape, dtype=object)) * dtype.itemsize > info.file_size:
        raise DataError(f"{p}: the array {member!r} is larger than its zip entry")
    return _map(p, dtype, shape, offset, fortran)


def open_table(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) of a 2-D ``.npy`` table whose last column is the target (what
    ``convert_csv`` writes): X a mapped view of the other columns, y the target column
    read once into memory (m numbers; integer-valued targets become int64 labels)."""
    T = open_array(path)
    if T.ndim != 2 or T.shape[1] < 2 or T.dtype.kind not in "fiu":
        raise DataError(f"{path}: expected a 2-D numeric table (features, then the target "
                        f"as the last column), got shape {T.shape} and dtype {T.dtype}")
    y = np.empty(T.shape[0], np.float64)
    for i in range(0, T.shape[0], 1 << 16):      # a block at a time: no large temporary
        y[i:i + (1 << 16)] = T[i:i + (1 << 16), -1]
    if np.all(np.isfinite(y)) and np.all(y == np.round(y)) and y.min() >= 0:
        y = y.astype(np.int64)
    return T[:, :-1], y


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{where}: {text[:40]!r} is not a number; the converter takes "
                        f"numeric CSV files (encode labels as 0..k-1 first)") from None


def convert_csv(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                target: str | None = None, block: int = 1 << 15) -> tuple[int, int]:
    """Stream the numeric CSV file ``src`` (a header row of names) into a float32 ``.npy``
    table ``dst`` whose last column is ``target`` (default: the CSV's last column); never
    more than ``block`` rows in memory. Written atomically; returns its shape.

    >>> import tempfile
    >>> d = tempfile.mkdtemp(); _ = Path(d, "t.csv").write_text("a,y,b\\n1,0,2\\n3,1,4\\n")
    >>> convert_csv(Path(d, "t.csv"), Path(d, "t.npy"), target="y")
    (2, 3)
    >>> np.load(Path(d, "t.npy")).tolist()
    [[1.0, 2.0, 0.0], [3.0, 4.0, 1.0]]
    """
    out = check_writable(dst, "output file", DataError)
    with open_regular(src, "CSV file", DataError) as fb:
        text = io.TextIOWrapper(fb, encoding="utf-8", newline="")
        reader = csv.reader(text)
        header = next(reader, None)
        if not header:
            raise DataError(f"{src}: empty, or no header row")
        n = len(header)
        t = n - 1 if target is None else header.index(target) if target in header else -1
        if t < 0:
            raise DataError(f"{src}: no column {target!r}; the columns are {header[:20]}")
        m = 0
        for i, row in enumerate(reader, 2):
            if row and len(row) != n:
                raise DataError(f"{src}, line {i}: {len(row)} fields, the header has {n}")
            m += bool(row)
    cols = [j for j in range(n) if j != t] + [t]
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        T = np.lib.format.open_memmap(tmp, "w+", np.float32, (m, n))
        with open_regular(src, "CSV file", DataError) as fb:
            reader = csv.reader(io.TextIOWrapper(fb, encoding="utf-8", newline=""))
            next(reader)
            buf, r = [], 0
            for i, row in enumerate(reader, 2):
                if not row:
                    continue
                buf.append([_number(row[j], f"{src}, line {i}") for j in cols])
                if len(buf) == block:
                    T[r:r + block] = buf
                    r, buf = r + block, []
                    T.flush()
            if buf:
                T[r:r + len(buf)] = buf
        T.flush()
        del T
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return m, n


