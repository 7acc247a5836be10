"""The pictures a newcomer looks at (issue 16, point 8), each checked by eye as a PNG when
it was made and pinned here by its content: a surface whose range shows the valley and a
path that moves, a regions plot whose legend and colours match, weights with axis labels."""

from __future__ import annotations

import re

import numpy as np
import pytest

from chainrule.data import load_digits
from chainrule.nn import Network
from chainrule.plot import (
    cost_surface,
    plot_cost_surface,
    plot_decision_regions,
    plot_weights,
    steepest_weights,
)

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def digits_net():
    X, y = load_digits()
    net = Network.from_sizes([64, 16, 10], seed=0)
    net.fit(X[:600], y[:600], epochs=3, verbose=0)
    return net, X[:300], y[:300]


def _svg_text(path):
    return path.read_text()


def test_default_surface_shows_a_valley_and_a_visible_path(digits_net, tmp_path):
    net, X, y = digits_net
    # the old default pair: w^1_00 multiplies a pixel that is always 0 (C flat along it),
    # and C hardly moves along w^1_01 either
    flat = cost_surface(net, X, y, (1, 0, 0), (1, 0, 1), span=2.0, grid=5)
    assert np.ptp(flat["C"], axis=1).max() < 1e-9 and np.ptp(flat["C"]) < 0.01 * flat["C"].min()
    s = cost_surface(net, X, y, steps=30, grid=11)
    assert np.ptp(s["C"]) > 0.1 * s["C"].min()                # a shape to see
    extent = np.ptp(s["w1"]) + np.ptp(s["w2"])
    moved = np.abs(s["path"][-1] - s["path"][0]).sum()
    assert moved > 0.02 * extent and s["path_cost"][-1] < s["path_cost"][0]
    fresh = net.copy().initialize(1)
    s = cost_surface(fresh, X, y, *steepest_weights(fresh, X, y), grid=11)
    assert np.ptp(s["C"]) > 0.1 * s["C"].min()
    out = plot_cost_surface(net, X, y, None, None, tmp_path / "s.svg", steps=10)
    text = _svg_text(out)
    for words in ("gradient descent", "start", "end"):
        assert f"<!-- {words} -->" in text


def test_regions_legend_and_colours_match(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = np.where(X[:, 0] > 0.3, 0, np.where(X[:, 1] > 0, 1, 2))
    net = Network.from_sizes([2, 16, 3], seed=0)
    net.fit(X, y, epochs=40, batch_size=20, lr=0.02, verbose=0)
    net.classes_ = np.array(["east", "north", "south"])
    text = _svg_text(plot_decision_regions(net, X, net.classes_[y], tmp_path / "r.svg"))
    for name in ("class east", "class north", "class south",
                 "true class (points) and predicted class (regions)", "x_1", "x_2"):
        assert f"<!-- {name} -->" in text
    fills = set(re.findall(r"fill: (#[0-9a-f]{6}); fill-opacity: 0\.35", text))
    # the points' colours (in their marker definitions) are the regions' colours
    points = set(re.findall(r'<path id="\w+" d="M 0 2\.\d+.*?style="fill: (#[0-9a-f]{6})',
                            text, re.S))
    assert len(fills) == 3 and points == fills


def test_weights_have_axis_labels_and_titles_clear_of_ticks(digits_net, tmp_path):
    net, X, y = digits_net
    text = _svg_text(plot_weights(net, tmp_path / "w.svg", X, y))
    for words in ("value of a weight w^1_jk", "number of weights", "value of dC/dw^2_jk"):
        assert f"<!-- {words.replace('^', '^')} -->" in text


def test_regions_axes_name_the_features_and_their_scaling(tmp_path):
    net = Network.from_sizes([2, 4, 2], seed=0)
    net.preprocessing = {"feature_names": ["rooms", "age"], "mean": np.zeros(2),
                         "scale": np.ones(2)}
    X = np.random.default_rng(0).normal(size=(20, 2))
    text = _svg_text(plot_decision_regions(net, X, (X[:, 0] > 0).astype(int),
                                           tmp_path / "r.svg"))
    assert "<!-- rooms (standardised) -->" in text and "<!-- age (standardised) -->" in text
