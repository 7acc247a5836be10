"""The MNIST download path, against a server on this machine's loopback: a mirror that is
down, then one that serves the files; the checksums are verified after the download."""

from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import socket
import threading

import numpy as np
import pytest

from chainrule.data import DataError, load_mnist
from chainrule.data import mnist as mnist_mod


@pytest.fixture
def served(tmp_path, mnist_dir):
    root = tmp_path / "www"
    root.mkdir()
    for f in mnist_dir.glob("*.gz"):
        shutil.copy(f, root / f.name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_download_from_the_second_mirror_and_verify(served, tmp_path, monkeypatch):
    _, url = served
    dead = f"http://127.0.0.1:{_closed_port()}/"
    monkeypatch.setattr(mnist_mod, "MIRRORS", (dead, url))
    monkeypatch.setattr(mnist_mod.time, "sleep", lambda s: None)
    cache = tmp_path / "cache"
    Xtr, ytr, Xte, yte = load_mnist(cache)
    assert Xtr.shape == (60000, 784) and list(ytr[:3]) == [5, 0, 4]
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        base + ".gz" for base, *_ in mnist_mod.FILES.values())


def test_a_corrupted_download_is_caught(served, tmp_path, monkeypatch):
    root, url = served
    raw = bytearray(gzip.decompress((root / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.setattr(mnist_mod, "MIRRORS", (url,))
    with pytest.raises(DataError, match="t10k-labels.*SHA-256"):
        load_mnist(tmp_path / "cache")


def test_all_mirrors_down_says_where_to_put_the_files(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_mod, "MIRRORS", (f"http://127.0.0.1:{_closed_port()}/",))
    monkeypatch.setattr(mnist_mod.time, "sleep", lambda s: None)
    with pytest.raises(DataError, match="could not be downloaded.*--data-dir"):
        load_mnist(tmp_path / "cache" / "mnist")
    # no partial file, and no empty folders made for it (issue 16)
    assert not (tmp_path / "cache").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(DataError):
        load_mnist(tmp_path / "kept")
    assert (tmp_path / "kept").is_dir()         # a folder that was there stays


def test_environment_variable_is_the_default(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("CHAINRULE_DATA", str(mnist_dir))
    assert mnist_mod.default_data_dir() == mnist_dir
    Xtr, *_ = load_mnist(download=False)
    assert np.isclose(Xtr.max(), 1.0)
