"""chainrule.calculus: automatic differentiation of NumPy code (text Part I and 3.2)."""

from __future__ import annotations

from .batching import vmap
from .check import check_grad, numerical_jacobian, relative_error
from .core import Primitive, Tracer, TracerError
from .custom import custom_jvp, custom_vjp
from .rules import PRIMITIVES
from .transforms import grad, hessian, jacfwd, jacobian, jacrev, jvp, value_and_grad, vjp
from .tree import register_dataclass, register_pytree_node, tree_flatten, tree_unflatten

__all__ = [
    "grad", "value_and_grad", "vjp", "jvp", "jacrev", "jacobian", "jacfwd", "hessian",
    "check_grad", "numerical_jacobian", "relative_error", "supported", "Primitive", "Tracer",
    "TracerError", "PRIMITIVES", "register_pytree_node", "register_dataclass", "tree_flatten",
    "tree_unflatten", "custom_vjp", "custom_jvp", "vmap",
]


def supported() -> list[str]:
    """The names of the primitives that have derivative rules."""
    return sorted(PRIMITIVES)
