"""Pictures from real small training runs: valid images of the expected size with content."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import matplotlib.image as mpimg
import numpy as np
import pytest

from chainrule.data import load_digits
from chainrule.nn import Network
from chainrule.plot import (
    cost_surface,
    plot_cost_surface,
    plot_decision_regions,
    plot_history,
    plot_weights,
)


@pytest.fixture(scope="module")
def trained():
    X, y = load_digits()
    net = Network.from_sizes([64, 16, 10], seed=0)
    net.fit(X[:1200], y[:1200], epochs=5, validation_data=(X[1200:], y[1200:]), verbose=0)
    return net, X, y


def _check_png(path, min_w=300, min_h=200):
    img = mpimg.imread(str(path))
    h, w = img.shape[:2]
    assert w >= min_w and h >= min_h
    assert img[..., :3].std() > 0.05  # not blank
    return img


def test_history(tmp_path, trained):
    net, _, _ = trained
    p = plot_history(net.history_, tmp_path / "h.png")
    img = _check_png(p, 800)
    assert img.shape[1] > img.shape[0]  # two panels side by side: loss and accuracy
    svg = plot_history(net.history_, tmp_path / "h.svg")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and len(root.findall(".//{http://www.w3.org/2000/svg}path"))


def test_cost_surface_path_starts_at_the_weights_and_descends(tmp_path):
    X, y = load_digits()
    net = Network.from_sizes([64, 16, 10], seed=3)
    W2 = net.layers[1].W
    start = (float(W2[0, 0]), float(W2[0, 1]))
    s = cost_surface(net, X[:300], y[:300], (2, 0, 0), (2, 0, 1), steps=25, lr=2.0)
    assert tuple(s["path"][0]) == pytest.approx(start)
    assert np.all(np.diff(s["path_cost"]) < 0)  # the cost decreases at every step
    assert s["C"].shape == (31, 31) and np.all(np.isfinite(s["C"]))
    assert np.array_equal(net.layers[1].W, W2)  # the network itself is untouched
    for kind in ("contour", "3d", "both"):
        _check_png(plot_cost_surface(net, X[:300], y[:300], (2, 0, 0), (2, 0, 1),
                                     tmp_path / f"s_{kind}.png", steps=10, kind=kind))


def test_decision_regions_for_2d_data(tmp_path):
    r = np.random.default_rng(0)
    X = r.normal(size=(300, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    net = Network.from_sizes([2, 16, 2], hidden="tanh", seed=0)
    net.fit(X, y, epochs=60, lr=0.01, verbose=0)
    assert net.accuracy(X, y) > 0.9
    _check_png(plot_decision_regions(net, X, y, tmp_path / "r.png"))
    with pytest.raises(ValueError, match="2-D data"):
        plot_decision_regions(net, np.ones((4, 3)), np.zeros(4), tmp_path / "x.png")


def test_weights_and_gradients(tmp_path, trained):
    net, X, y = trained
    _check_png(plot_weights(net, tmp_path / "w.png", X[:200], y[:200]))


def test_bad_picture_names(tmp_path, trained):
    net, _, _ = trained
    with pytest.raises(ValueError, match=".png or .svg"):
        plot_history(net.history_, tmp_path / "h.jpg")
    with pytest.raises(ValueError, match="outside W"):
        cost_surface(net, np.zeros((2, 64)), [0, 1], (1, 99, 0), (1, 0, 0))
