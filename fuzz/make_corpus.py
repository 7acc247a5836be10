"""Seed corpora for the fuzzers: real model files and typical expressions.

    python fuzz/make_corpus.py
"""

from __future__ import annotations

import os

import numpy as np

from chainrule.io import save_checkpoint, save_model
from chainrule.nn import Network
from chainrule.optim import Adam

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    d = os.path.join(HERE, "corpus_loader")
    os.makedirs(d, exist_ok=True)
    for i, (sizes, hidden, out) in enumerate([([4, 3], "relu", "softmax"),
                                              ([2, 5, 1], "tanh", "sigmoid"),
                                              ([3, 4, 4, 2], "gelu", "identity")]):
        net = Network.from_sizes(sizes, hidden=hidden, output=out, seed=i)
        if i == 1:
            net.classes_ = np.array(["no", "yes"])
        save_model(net, os.path.join(d, f"model{i}.safetensors"))
    net = Network.from_sizes([3, 2], seed=0)
    opt = Adam()
    net.fit(np.ones((4, 3)), np.array([0, 1, 0, 1]), epochs=1, optimizer=opt, verbose=0)
    save_checkpoint(os.path.join(d, "checkpoint.safetensors"), net, opt, 0, net.history_, {})
    p = os.path.join(HERE, "corpus_parser")
    os.makedirs(p, exist_ok=True)
    for i, text in enumerate(["2*x + y**3, exp(y) - 13*x", "sin(x^2)", "x**2 + cos(y)",
                              "sin(x**2 + y), ln(y**3)", "sigmoid(a*b) / sqrt(abs(c) + 1)",
                              "-(-(x)) ** 2.5e-1", "tanh(relu(x)) + log1p(expm1(y))"]):
        with open(os.path.join(p, f"expr{i}.txt"), "w") as f:
            f.write(text)
    _data_corpus(os.path.join(HERE, "corpus_data"))


def _data_corpus(d: str) -> None:
    """Seeds for fuzz_data.py: the first byte picks the loader (0-1 CSV, 2-3 NPZ, 4 IDX)."""
    import gzip
    import io
    import struct

    os.makedirs(d, exist_ok=True)
    seeds = {
        "csv_numbers": b"\x00a,b,y\n1,2,0\n3.5,-4e3,1\n5,6,2\n",
        "csv_strings": b"\x00\xef\xbb\xbfsepal,petal,species\n1,2,cat\n3,4,\"dog\"\n",
        "csv_missing": b"\x01a,b,y\n1,,0\n,2,1\n\n3,4,1\n",
        "csv_quoted": b"\x00\"a,1\",b,y\n\"1\",2,x\n3,\"4\",y\n",
    }
    for name, body in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(body)
    for i, arrays in enumerate([{"X": np.arange(6.0).reshape(3, 2), "y": np.array([0, 1, 0])},
                                {"a": np.ones(4), "b": np.arange(4), "y": np.array(list("abab"))}]):
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        with open(os.path.join(d, f"npz{i}"), "wb") as f:
            f.write(bytes([2 + i]) + buf.getvalue())
    idx = struct.pack(">I", 0x0803) + struct.pack(">III", 2, 3, 3) + bytes(range(18))
    with open(os.path.join(d, "idx_raw"), "wb") as f:
        f.write(b"\x04" + idx)
    with open(os.path.join(d, "idx_gz"), "wb") as f:
        f.write(b"\x04" + gzip.compress(struct.pack(">I", 0x0801) + struct.pack(">I", 5) +
                                         bytes(5)))


if __name__ == "__main__":
    main()
