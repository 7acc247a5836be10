"""Central finite differences: the independent check of every derivative (float64)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as _np

from .transforms import jacrev
from .tree import tree_flatten, tree_unflatten

__all__ = ["numerical_jacobian", "check_grad"]


def numerical_jacobian(f: Callable[..., Any], *args: Any, argnum: int = 0,
                       eps: float | None = None) -> _np.ndarray:
    """Central-difference Jacobian of ``f`` with respect to ``args[argnum]`` (an array or
    float), in float64, shaped ``out.shape + in.shape``. Step ``eps`` defaults to
    ``cbrt(machine epsilon) * max(1, |x_i|)`` for each entry."""
    args = list(args)
    x = _np.array(args[argnum], dtype=_np.float64)
    flat = x.reshape(-1)
    cols = []
    out_shape: tuple[int, ...] = ()
    base = _np.cbrt(_np.finfo(_np.float64).eps)
    for i in range(flat.size):
        h = eps if eps is not None else base * max(1.0, abs(flat[i]))
        xp, xm = flat.copy(), flat.copy()
        xp[i] += h
        xm[i] -= h
        args[argnum] = xp.reshape(x.shape)
        fp = _np.asarray(f(*args), dtype=_np.float64)
        args[argnum] = xm.reshape(x.shape)
        fm = _np.asarray(f(*args), dtype=_np.float64)
        out_shape = fp.shape
        cols.append(((fp - fm) / (xp[i] - xm[i])).reshape(-1))
    J = _np.stack(cols, axis=-1) if cols else _np.zeros((0, 0))
    return J.reshape(out_shape + x.shape)


def relative_error(a: Any, b: Any) -> float:
    """||a - b|| / max(||a||, ||b||): the size of the disagreement relative to the size of
    the derivative (0 when both are 0)."""
    a = _np.asarray(a, dtype=_np.float64)
    b = _np.asarray(b, dtype=_np.float64)
    scale = max(_np.linalg.norm(a), _np.linalg.norm(b))
    if scale == 0.0:
        return 0.0
    return float(_np.linalg.norm(a - b) / scale)


def check_grad(f: Callable[..., Any], *args: Any, argnums: int | tuple[int, ...] | None = None,
               eps: float | None = None) -> float:
    """Compare chainrule's reverse-mode Jacobian of ``f`` with central finite differences
    in float64 and return the largest relative error over the checked arguments.

    >>> import chainrule.numpy as np
    >>> check_grad(lambda x: np.sum(np.sin(x) * x ** 2), np.linspace(0.1, 1.0, 5)) < 1e-8
    True
    """
    args = [_to64(a) for a in args]
    nums = tuple(range(len(args))) if argnums is None else (
        (argnums,) if isinstance(argnums, int) else tuple(argnums))
    worst = 0.0
    for i in nums:
        leaves, d = tree_flatten(args[i])
        for k in range(len(leaves)):
            def fk(leaf: Any, i: int = i, k: int = k, leaves: list[Any] = leaves,
                   d: Any = d) -> Any:
                ls = list(leaves)
                ls[k] = leaf
                a = list(args)
                a[i] = tree_unflatten(d, ls)
                return f(*a)

            ad = jacrev(fk)(leaves[k])
            fd = numerical_jacobian(fk, leaves[k], eps=eps)
            worst = max(worst, relative_error(ad, fd))
    return worst


def _to64(a: Any) -> Any:
    leaves, d = tree_flatten(a)
    return tree_unflatten(d, [_np.asarray(x, dtype=_np.float64) if _np.ndim(x) else
                              _np.float64(x) for x in leaves])
