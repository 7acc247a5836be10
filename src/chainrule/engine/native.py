"""The optional compiled kernels (``_kernels.c``), if they were built.

``kernels()`` is the module, or None where it was not built (no C compiler at install)
or ``CHAINRULE_KERNELS=0`` is set; callers then use their NumPy code. ``fused_ok``
says whether arrays suit a kernel: contiguous vectors of one float dtype, none
overlapping another.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

_MOD: Any = False


def kernels() -> Any:
    global _MOD
    if _MOD is False:
        _MOD = None
        if os.environ.get("CHAINRULE_KERNELS", "1").strip().lower() not in (
                "0", "false", "no", "off"):
            try:
                from . import _kernels

                _MOD = _kernels
            except ImportError:
                pass
    return _MOD


def fused_ok(*arrays: np.ndarray) -> bool:
    first = arrays[0]
    if first.dtype not in (np.float32, np.float64):
        return False
    for i, a in enumerate(arrays):
        if a.dtype != first.dtype or a.shape != first.shape or a.ndim != 1 or \
                not a.flags.c_contiguous:
            return False
        if i != 1 and not a.flags.writeable:     # argument 1 (the gradient) is only read
            return False
        for b in arrays[:i]:
            if np.may_share_memory(a, b):
                return False
    return True
