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

__all__ = ["save_model", "load_model", "save_checkpoint", "load_checkpoint", "Checkpoint",
           "atomic_write", "read_header", "ModelFileError", "SCHEMA_VERSION", "MAX_FILE_BYTES"]
