"""chainrule.io: safe model files (safetensors, atomic writes, validated loads)."""

from .model import (
    MAX_FILE_BYTES,
    SCHEMA_VERSION,
    Checkpoint,
    ModelFileError,
    atomic_write,
    load_checkpoint,
    load_model,
    read_header,
    save_checkpoint,
    save_model,
)


def export_onnx(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Export to ONNX (needs the onnx extra); see :mod:`chainrule.io.onnx_export`."""
    from .onnx_export import export_onnx as _export

    return _export(*args, **kwargs)


__all__ = ["export_onnx", "save_model", "load_model", "save_checkpoint", "load_checkpoint",
           "Checkpoint", "atomic_write", "read_header", "ModelFileError", "SCHEMA_VERSION",
           "MAX_FILE_BYTES"]
