"""MNIST from its four IDX files: read (gzip or raw), check (magic numbers, sizes,
SHA-256 of the decompressed bytes), and, when missing, download with retries."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from .._safe_io import atomic_write, check_budget, open_regular
from .errors import DataError

FILES = {
    "train_images": ("train-images-idx3-ubyte", 2051, (60000, 28, 28),
                     "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train_labels": ("train-labels-idx1-ubyte", 2049, (60000,),
                     "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "test_images": ("t10k-images-idx3-ubyte", 2051, (10000, 28, 28),
                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "test_labels": ("t10k-labels-idx1-ubyte", 2049, (10000,),
                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MAX_BYTES = 60000 * 28 * 28 + 16


def default_data_dir() -> Path:
    """$CHAINRULE_DATA, else the per-user cache ($XDG_CACHE_HOME or ~/.cache)/chainrule."""
    env = os.environ.get("CHAINRULE_DATA")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chainrule" / "mnist"


def read_idx(path: str | Path, magic: int | None = None,
             shape: tuple[int, ...] | None = None, sha256: str | None = None) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) as a uint8 array, checking what is given."""
    path = Path(path)
    with open_regular(path, "IDX file", DataError) as f:
        try:
            if f.read(2) == b"\x1f\x8b":
                f.seek(0)
                with gzip.GzipFile(fileobj=f, mode="rb") as g:
                    raw = g.read(MAX_BYTES + 1)
            else:
                f.seek(0)
                raw = f.read(MAX_BYTES + 1)
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise DataError(f"{path}: cannot read it as gzip or IDX ({exc}); delete it and "
                            f"fetch it again") from None
    if len(raw) > MAX_BYTES:
        raise DataError(f"{path}: larger than any MNIST file; not an MNIST IDX file")
    if len(raw) < 8:
        raise DataError(f"{path}: too short for an IDX header")
    got_magic = int.from_bytes(raw[:4], "big")
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DataError(f"{path}: magic number {got_magic} is not an IDX file of unsigned "
                        f"bytes (expected {magic or '2049 or 2051'})")
    if magic is not None and got_magic != magic:
        raise DataError(f"{path}: magic number {got_magic}, expected {magic}")
    ndim = raw[3]
    if not 1 <= ndim <= 3:
        raise DataError(f"{path}: IDX header declares {ndim} dimensions")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise DataError(f"{path}: too short for its IDX header")
    if any(d > MAX_BYTES for d in dims):
        raise DataError(f"{path}: header declares shape {dims}, larger than any MNIST file")
    if len(raw) != start + math.prod(dims):
        raise DataError(f"{path}: header declares shape {dims} but the file holds "
                        f"{len(raw) - start} bytes of data (truncated or corrupted)")
    if shape is not None and dims != shape:
        raise DataError(f"{path}: shape {dims}, expected {shape}")
    if sha256 is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != sha256:
            raise DataError(f"{path}: SHA-256 of the decompressed data is {digest[:12]}..., "
                            f"expected {sha256[:12]}...; the file is corrupted: delete it and "
                            f"fetch it again")
    return np.frombuffer(raw, np.uint8, offset=start).reshape(dims)


def _find(data_dir: Path, base: str) -> Path | None:
    for name in (base + ".gz", base, base.replace("-idx", ".idx")):
        p = data_dir / name
        if p.exists():
            return p
    return None


def _download(data_dir: Path, base: str, retries: int = 3, timeout: float = 30.0) -> Path:
    made = [p for p in (data_dir, *data_dir.parents) if not p.exists()]   # deepest first
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / (base + ".gz")
    last: Exception | None = None
    for mirror in MIRRORS:
        for attempt in range(retries):
            try:
                with urllib.request.urlopen(mirror + base + ".gz", timeout=timeout) as r:
                    payload = r.read(20_000_000)
                atomic_write(target, payload, "MNIST file", DataError)
                return target
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                last = exc
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, OSError) and "Name or service" in str(reason) or \
                        "Temporary failure in name resolution" in str(reason):
                    break  # offline: no name resolution, retrying will not help
                time.sleep(min(2 ** attempt, 4) * 0.5)
    for folder in made:         # a failed download leaves no empty folders behind
        try:
            folder.rmdir()
        except OSError:
            break
    raise DataError(
        f"MNIST file {base}.gz is not in {data_dir} and could not be downloaded ({last}). "
        f"Put the four MNIST .gz files there, or point --data-dir / CHAINRULE_DATA at a "
        f"folder that has them")


def load_mnist(data_dir: str | Path | None = None, download: bool = True,
               normalize: bool = True, max_memory: int | str | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST as ``(X_train, y_train, X_test, y_test)``: X of shape (m, 784), float32 in
    [0, 1] (or uint8 with ``normalize=False``), y of int64 labels 0-9.

    The files are looked up in ``data_dir``, else $CHAINRULE_DATA, else the per-user cache;
    missing files are downloaded (with retries) when ``download`` is true. Every file's
    magic number, shape and SHA-256 are checked.
    """
    d = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    # the bytes of the four files, and the float32 copies of the images
    check_budget(70000 * 785 + (70000 * 784 * 4 if normalize else 0), max_memory, "MNIST",
                 DataError)
    if d.exists() and not d.is_dir():
        raise DataError(f"{d}: is a file; --data-dir must be a folder holding the MNIST files")
    out = {}
    for key, (base, magic, shape, digest) in FILES.items():
        p = _find(d, base)
        if p is None:
            if not download:
                raise DataError(f"MNIST file {base}.gz not found in {d}: put the four MNIST "
                                f"files there or point --data-dir at them")
            p = _download(d, base)
        out[key] = read_idx(p, magic, shape, digest)
    Xtr = out["train_images"].reshape(60000, 784)
    Xte = out["test_images"].reshape(10000, 784)
    if normalize:  # one float32 copy each, scaled in place
        Xtr = Xtr.astype(np.float32)
        Xtr *= np.float32(1 / 255)
        Xte = Xte.astype(np.float32)
        Xte *= np.float32(1 / 255)
    return Xtr, out["train_labels"].astype(np.int64), Xte, out["test_labels"].astype(np.int64)
