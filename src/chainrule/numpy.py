"""A drop-in NumPy namespace for differentiable code: ``import chainrule.numpy as np``.

The differentiable functions come from chainrule's table of rules; everything else
(array creation, constants, dtypes) is NumPy's own.
"""
# ruff: noqa: F401, A001

from __future__ import annotations

import numpy as _onp
from numpy import (
    arange,
    e,
    empty,
    eye,
    float32,
    float64,
    full,
    identity,
    inf,
    int32,
    int64,
    isfinite,
    isnan,
    linspace,
    nan,
    ndarray,
    newaxis,
    ones,
    ones_like,
    pi,
    random,
    zeros,
    zeros_like,
)

from .calculus.numpy_api import (
    abs,
    absolute,
    add,
    amax,
    amin,
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctan2,
    arctanh,
    around,
    array,
    asarray,
    astype,
    atleast_1d,
    broadcast_to,
    cbrt,
    ceil,
    clip,
    concatenate,
    cos,
    cosh,
    cumsum,
    deg2rad,
    diag,
    diagonal,
    divide,
    dot,
    einsum,
    exp,
    exp2,
    expand_dims,
    expm1,
    fabs,
    fix,
    flip,
    floor,
    fmax,
    fmin,
    fmod,
    hstack,
    hypot,
    inner,
    log,
    log1p,
    log2,
    log10,
    logaddexp,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mod,
    moveaxis,
    multiply,
    negative,
    outer,
    power,
    prod,
    rad2deg,
    ravel,
    reciprocal,
    relu,
    remainder,
    repeat,
    reshape,
    rint,
    round,
    row_stack,
    sigmoid,
    sign,
    sin,
    sinh,
    softmax,
    softplus,
    sort,
    sqrt,
    square,
    squeeze,
    stack,
    std,
    subtract,
    sum,
    swapaxes,
    take,
    take_along_axis,
    tan,
    tanh,
    tensordot,
    tile,
    trace,
    transpose,
    true_divide,
    trunc,
    var,
    vdot,
    vstack,
    where,
)
from .calculus.numpy_api import linalg_det as _det
from .calculus.numpy_api import linalg_inv as _inv
from .calculus.numpy_api import linalg_norm as _norm
from .calculus.numpy_api import linalg_solve as _solve


class linalg:  # noqa: N801
    """The differentiable part of numpy.linalg."""

    norm = staticmethod(_norm)
    inv = staticmethod(_inv)
    det = staticmethod(_det)
    solve = staticmethod(_solve)


dtype = _onp.dtype
