"""Imports of the optional extras, with the one-line fix when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, needs: str) -> ModuleType:
    """``import module``, or an ImportError that says ``needs`` and how to install the extra
    (``needs`` reads like "ONNX export needs the onnx package")."""
    try:
        return importlib.import_module(module)
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError(f"{needs}: pip install 'chainrule[{extra}]'") from None
