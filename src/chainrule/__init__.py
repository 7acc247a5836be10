"""chainrule: the mathematics of neural networks, executable, verified and fast.

>>> import chainrule as cr
>>> import chainrule.numpy as np
>>> cr.grad(lambda x: x ** 2 + np.cos(0.0))(3.0)
np.float64(6.0)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_CALCULUS = {"grad", "value_and_grad", "vjp", "jvp", "jacrev", "jacobian", "jacfwd",
             "hessian", "check_grad", "numerical_jacobian", "custom_vjp", "custom_jvp", "vmap"}

_ELSEWHERE = {"Network": "nn", "Dense": "nn", "save_model": "io", "load_model": "io"}

# submodules that `cr.nn` (as jax.nn, torch.nn) imports on first access; chainrule.sklearn,
# which needs its extra to import at all, is imported by name
_SUBMODULES = {"nn", "optim", "data", "io", "training", "numpy", "calculus", "engine",
               "plot", "explain", "symbolic"}

__all__ = sorted(_CALCULUS) + sorted(_ELSEWHERE) + ["__version__"]


def __getattr__(name: str) -> Any:
    # lazy: `import chainrule` stays fast; NumPy and the rest load on first use
    import importlib

    if name in _CALCULUS:
        return getattr(importlib.import_module(".calculus", __name__), name)
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(f".{_ELSEWHERE[name]}", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")


def __dir__() -> list[str]:
    # what tab completion shows: the transforms, the classes and the submodules
    return sorted(set(globals()) | _CALCULUS | set(_ELSEWHERE) | _SUBMODULES)
