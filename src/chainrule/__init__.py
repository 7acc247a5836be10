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
             "hessian", "check_grad", "numerical_jacobian"}

__all__ = sorted(_CALCULUS) + ["__version__"]


def __getattr__(name: str) -> Any:
    # lazy: `import chainrule` stays fast; the calculus loads on first use
    if name in _CALCULUS:
        from . import calculus

        return getattr(calculus, name)
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
