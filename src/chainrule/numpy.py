"""A drop-in NumPy namespace for differentiable code: ``import chainrule.numpy as np``.

Generated, not listed: every public name of NumPy is here. The functions with derivative
rules are chainrule's (from the table of primitives, ``calculus/rules.py``, and the
functions of ``calculus/numpy_api.py`` that compose them); every other name is NumPy's
own object. Called on a traced value, those run on values where the result carries no
derivative (argmax, allclose, shape...), and otherwise raise a TracerError that names the
function, through NumPy's dispatch protocols; nothing silently drops a derivative.
"""

from __future__ import annotations

import sys as _sys
import types as _types
from typing import Any as _Any

import numpy as _onp

from .calculus import numpy_api as _api


def _namespace(module: _Any, ours: dict[str, _Any]) -> dict[str, _Any]:
    loaded = vars(module)   # not getattr: NumPy would import its lazy submodules
    names = {n: loaded[n] for n in getattr(module, "__all__", loaded)
             if not n.startswith("_") and n in loaded}
    names.update(ours)
    return names


linalg = _types.ModuleType(__name__ + ".linalg",
                           "numpy.linalg, with chainrule's differentiable functions")
linalg.__dict__.update(_namespace(_onp.linalg, _api.LINALG))
_sys.modules[linalg.__name__] = linalg

fft = _types.ModuleType(__name__ + ".fft",
                        "numpy.fft, with chainrule's differentiable transforms")
fft.__dict__.update(_namespace(_onp.fft, _api.FFT))
_sys.modules[fft.__name__] = fft

globals().update({k: v for k, v in _namespace(_onp, _api.EXPORTS).items()
                  if k not in ("linalg", "fft")})


def __getattr__(name: str) -> _Any:
    # NumPy's lazily imported submodules (numpy.fft, numpy.polynomial...), on first use
    if name.startswith("_"):
        raise AttributeError(name)
    return getattr(_onp, name)
