"""The runnable examples in the public docstrings stay runnable."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["chainrule", "chainrule.calculus.transforms", "chainrule.calculus.check",
           "chainrule.calculus.symbolic", "chainrule.symbolic", "chainrule.nn.network",
           "chainrule.nn.activations", "chainrule.nn.costs", "chainrule.optim.schedules",
           "chainrule.training.trainer", "chainrule.nn.init", "chainrule.data",
           "chainrule.data.tabular",
           "chainrule.io.model", "chainrule.io.onnx_export", "chainrule.sklearn",
           "chainrule.engine.blas", "chainrule.calculus.tree", "chainrule.engine.pipe",
           "chainrule.engine.threads", "chainrule.engine.fast", "chainrule.engine.reference",
           "chainrule.calculus.batching",
           "chainrule.engine"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0
