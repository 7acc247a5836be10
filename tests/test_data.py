"""Datasets: the built-in digits, MNIST IDX files, tabular files, encoders and splits."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest

from chainrule.data import (
    DataError,
    LabelEncoder,
    Standardizer,
    load_csv,
    load_digits,
    load_mnist,
    load_npz,
    read_idx,
    split,
)


def test_digits_are_shipped_and_match_scikit_learn():
    from sklearn.datasets import load_digits as sk

    X, y = load_digits(normalize=False)
    d = sk()
    assert X.shape == (1797, 64) and np.array_equal(X, d.data) and np.array_equal(y, d.target)
    Xn, _ = load_digits()
    assert Xn.dtype == np.float32 and Xn.max() == 1.0


def test_real_mnist_facts(mnist_dir):
    Xtr, ytr, Xte, yte = load_mnist(mnist_dir, download=False)
    assert Xtr.shape == (60000, 784) and Xte.shape == (10000, 784)
    assert list(ytr[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert list(yte[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert (ytr == 0).sum() == 5923 and (ytr == 1).sum() == 6742
    assert Xtr.dtype == np.float32 and 0.0 <= Xtr.min() and Xtr.max() <= 1.0


def _idx(dims, data=None, magic=None):
    body = data if data is not None else bytes(np.prod(dims, dtype=int))
    head = struct.pack(">I", magic if magic is not None else (0x0800 | len(dims)))
    head += b"".join(struct.pack(">I", d) for d in dims)
    return head + body


def test_read_idx_raw_and_gzip(tmp_path):
    raw = _idx((3, 2, 2), bytes(range(12)))
    (tmp_path / "a").write_bytes(raw)
    (tmp_path / "a.gz").write_bytes(gzip.compress(raw))
    for name in ("a", "a.gz"):
        arr = read_idx(tmp_path / name, 2051, (3, 2, 2), hashlib.sha256(raw).hexdigest())
        assert arr.shape == (3, 2, 2) and arr[2, 1, 1] == 11


@pytest.mark.parametrize("content,kwargs,words", [
    (_idx((3,)), {"sha256": "0" * 64}, "SHA-256"),
    (_idx((3,), magic=0x0803), {"magic": 2049}, "magic number"),
    (_idx((3,), magic=0x0D01), {}, "magic number"),
    (_idx((5,), bytes(3)), {}, "truncated"),
    (_idx((3,)), {"shape": (4,)}, "expected"),
    (b"\x00\x00", {}, "too short"),
])
def test_read_idx_refuses_bad_files(tmp_path, content, kwargs, words):
    p = tmp_path / "f"
    p.write_bytes(content)
    with pytest.raises(DataError, match=words):
        read_idx(p, **kwargs)


def test_corrupted_gzip(tmp_path):
    p = tmp_path / "f.gz"
    p.write_bytes(gzip.compress(_idx((100,)))[:30])
    with pytest.raises(DataError, match="cannot read"):
        read_idx(p)


def test_mnist_missing_offline_says_where(tmp_path):
    with pytest.raises(DataError, match="not found in .*--data-dir"):
        load_mnist(tmp_path, download=False)


def test_mnist_wrong_checksum(tmp_path, mnist_dir):
    import shutil
    for f in mnist_dir.glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    raw = bytearray(gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="t10k-labels.*SHA-256"):
        load_mnist(tmp_path, download=False)


def test_csv_with_string_labels(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("\ufeffa,b,species\n1,2,cat\n3,4.5,dog\n,1,cat\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 4, column 'a' is missing"):
        load_csv(p, "species")
    t = load_csv(p, "species", allow_nan=True)
    assert t.feature_names == ["a", "b"] and list(t.y) == ["cat", "dog", "cat"]


@pytest.mark.parametrize("text,target,words", [
    ("a,b\n1,2\n", "c", "no column named 'c'"),
    ("a,b,y\n1,x,0\n", "y", "'x' is not a number"),
    ("a,b,y\n1,2,0\n1,2\n", "y", "ragged"),
    ("a,b,y\n", "y", "no data rows"),
    ("", None, "empty"),
    ("a,a,y\n1,2,3\n", "y", "more than once"),
    ("a,b,y\n1,nan,0\n", "y", "NaN"),
    ("a,b,y\n1,1e300,0\n", "y", "larger than 1e30"),
    ("a,b,y\n1,2,\n", "y", "empty cells"),
])
def test_bad_csv(tmp_path, text, target, words):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=words):
        load_csv(p, target)


def test_bad_csv_encoding_and_binary(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("a,b,y\n1,2,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_csv(p)
    q = tmp_path / "gz.csv"
    q.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    with pytest.raises(DataError, match="binary file"):
        load_csv(q)
    with pytest.raises(DataError, match="is a directory"):
        load_csv(tmp_path)


def test_npz_forms_and_no_pickle(tmp_path):
    np.savez(tmp_path / "xy.npz", X=np.ones((4, 2)), y=np.array([0, 1, 0, 1]))
    t = load_npz(tmp_path / "xy.npz")
    assert t.X.shape == (4, 2)
    np.savez(tmp_path / "cols.npz", h=np.arange(3.0), w=np.arange(3.0), kind=np.array(list("aba")))
    t = load_npz(tmp_path / "cols.npz", "kind")
    assert t.feature_names == ["h", "w"] and list(t.y) == ["a", "b", "a"]
    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(DataError, match="pickled"):
        load_npz(tmp_path / "obj.npz")
    (tmp_path / "fake.npz").write_text("not a zip")
    with pytest.raises(DataError, match="not a readable"):
        load_npz(tmp_path / "fake.npz")


def test_label_encoder_round_trip():
    enc = LabelEncoder().fit(["b", "a", "c", "a"])
    assert list(enc.classes_) == ["a", "b", "c"]
    idx = enc.transform(["c", "a"])
    assert list(idx) == [2, 0] and list(enc.inverse_transform(idx)) == ["c", "a"]
    with pytest.raises(DataError, match="not seen"):
        enc.transform(["z"])


def test_standardizer_uses_training_statistics_only():
    Xtr = np.array([[0.0, 5.0], [2.0, 5.0]])
    s = Standardizer().fit(Xtr)
    assert np.allclose(s.transform(np.array([[1.0, 5.0]])), [[0.0, 0.0]])
    assert np.allclose(s.scale_, [1.0, 1.0])  # the constant column gets scale 1


def test_split_is_seeded_disjoint_and_stratified():
    y = np.repeat([0, 1], [80, 20])
    a = split(100, (0.7, 0.1, 0.2), seed=1, stratify=y)
    b = split(100, (0.7, 0.1, 0.2), seed=1, stratify=y)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert sorted(np.concatenate(a)) == list(range(100))
    assert (y[a[2]] == 1).sum() == 4  # 20% of the 20 positives


def test_csv_with_old_mac_line_endings(tmp_path):
    """csv ends a line at a lone CR too: the row count bound counts both (fuzz find)."""
    p = tmp_path / "d.csv"
    p.write_bytes(b"a,y\r1,0\r2,1\r3,0\r")
    t = load_csv(p)
    assert t.X.tolist() == [[1.0], [2.0], [3.0]] and t.y.tolist() == [0, 1, 0]


def test_csv_streamed_in_chunks(tmp_path, monkeypatch):
    """Rows cross chunk boundaries; a late non-numeric target restarts as text labels."""
    import chainrule.data.tabular as tab

    monkeypatch.setattr(tab, "CHUNK_ROWS", 3)
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n" + "".join(f"{i},{-i},{i % 2}\n" for i in range(10)) + "\n"
                 "10,-10,cat\n")
    t = load_csv(p)
    assert t.X.shape == (11, 2) and t.X[10].tolist() == [10.0, -10.0]
    assert t.y.dtype.kind == "U" and t.y[-1] == "cat" and t.y[3] == "1"


def test_csv_budget_refused_before_allocation(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n" + "1,2,0\n" * 1000)
    with pytest.raises(DataError, match="needs .* above the budget"):
        load_csv(p, max_memory=1000)


def test_csv_that_grows_between_the_passes(tmp_path, monkeypatch):
    import chainrule.data.tabular as tab

    p = tmp_path / "d.csv"
    p.write_text("a,y\n1,0\n2,1\n")
    count = tab._CSV._count

    def count_then_grow(self):
        n = count(self)
        with open(p, "a") as f:
            f.write("3,0\n4,1\n5,0\n")
        return n

    monkeypatch.setattr(tab._CSV, "_count", count_then_grow)
    with pytest.raises(DataError, match="grew while it was read"):
        load_csv(p)
