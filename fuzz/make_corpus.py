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


if __name__ == "__main__":
    main()
