"""Model files: one ``.safetensors`` file per model, written atomically, validated on load.

Layout. Tensors ``layers.{i}.W`` (n_l, n_{l-1}) and ``layers.{i}.b`` (n_l,), optional
``preprocessing.mean`` / ``preprocessing.scale`` (float64) and, in a checkpoint,
``optimizer.{name}``. The header's metadata holds one JSON string, ``chainrule``, in a
closed schema: known layer types, activation and cost names, numbers and strings only;
never a module path or a callable, so loading a file can never run code. No pickle.
An optional ``provenance`` record says where the model came from: the data's file name
(never a path) and SHA-256, the task, the split and its seed, the target's scaler (already
folded into the output layer) and the training history (``net.history_`` after loading).

Writing: serialise to bytes, write a temporary file in the same folder, fsync it,
``os.replace`` it onto the target, fsync the folder; the temporary file is removed on
any error. A crash leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, _safe_io
from ..data.errors import DataError
from ..data.features import INPUT_FEATURES, raw_width
from ..data.tabular import printable_problem
from ..nn import ACTIVATIONS, COSTS, Dense, Network, get_activation, get_cost
from ..optim import get_optimizer

__all__ = ["save_model", "load_model", "save_checkpoint", "load_checkpoint", "atomic_write",
           "Checkpoint",
           "read_header", "ModelFileError", "SCHEMA_VERSION", "MAX_FILE_BYTES"]

SCHEMA_VERSION = 1
MAX_FILE_BYTES = 1 << 30          # 1 GiB: far above any model chainrule trains
MAX_HEADER_BYTES = 16 << 20
DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
FORMAT = "chainrule.model"


class ModelFileError(DataError):
    """A model file that chainrule refuses to load, and why."""


# --------------------------------------------------------------------------- writing


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (temp file, fsync, rename, fsync),
    by the write rule of :mod:`chainrule._safe_io`: only where nothing is, or over a
    regular file; never over a device, FIFO, socket or directory."""
    _safe_io.atomic_write(path, data, "model file", ModelFileError)


def _json_value(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.str_, str)):
        return str(v)
    if isinstance(v, (bool, int, float)) or v is None:
        return v
    raise ModelFileError(f"cannot store class label {v!r} of type {type(v).__name__}; use "
                         f"strings or numbers")


def _storable(rec: Any, table: dict[str, Any], what: str) -> None:
    """A record a file can name: a built-in, or a user's own under a name of its own (the
    file holds the name only; ``load_model(..., custom_objects=)`` restores it)."""
    if rec.builtin and rec.name in table:
        return
    if rec.name in table or not _NAME_OK(rec.name):
        raise ModelFileError(
            f"{what} is a Python function named {rec.name!r}; a model file holds its name "
            f"only, so give it a name of its own (letters, digits, _; not a built-in one): "
            f"Activation.from_function(fn, 'my_name') or Cost.from_function(fn, 'my_name')")


def _NAME_OK(name: str) -> bool:  # noqa: N802
    return isinstance(name, str) and 0 < len(name) <= 64 and name.replace("_", "a").isalnum() \
        and name.isascii() and not name[0].isdigit()


def _config(net: Network, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    layers = []
    for i, layer in enumerate(net.layers):
        act = layer.activation
        _storable(act, ACTIVATIONS, f"layer {i + 1}'s activation")
        layers.append({"type": "dense", "n_in": layer.n_in, "n_out": layer.n_out,
                       "activation": act.name})
    _storable(net.cost, COSTS, "the cost")
    cfg: dict[str, Any] = {
        "format": FORMAT, "schema_version": SCHEMA_VERSION, "chainrule_version": __version__,
        "dtype": net.dtype.name, "cost": net.cost.name, "layers": layers,
        "classes": None if net.classes_ is None else [_json_value(c) for c in net.classes_],
        "feature_names": net.preprocessing.get("feature_names"),
        "target": net.preprocessing.get("target"),
    }
    if net.preprocessing.get("input_map"):
        cfg["input_map"] = list(net.preprocessing["input_map"])
    if net.provenance is not None or net.history_:
        cfg["provenance"] = _provenance_json({"history": net.history_ or {},
                                              **(net.provenance or {})})
    if extra:
        cfg.update(extra)
    return cfg


def _provenance_json(p: dict[str, Any]) -> dict[str, Any]:
    """The provenance record with non-finite numbers of the history as null."""
    hist = {k: [float(x) if math.isfinite(float(x)) else None for x in v]
            for k, v in (p.get("history") or {}).items()}
    return {**p, "history": hist}


def _tensors(net: Network) -> dict[str, np.ndarray]:
    t: dict[str, np.ndarray] = {}
    for i, layer in enumerate(net.layers):
        t[f"layers.{i}.W"] = np.ascontiguousarray(layer.W)
        t[f"layers.{i}.b"] = np.ascontiguousarray(layer.b)
    for key in ("mean", "scale"):
        v = net.preprocessing.get(key)
        if v is not None:
            t[f"preprocessing.{key}"] = np.ascontiguousarray(v, dtype=np.float64)
    return t


def _serialize(tensors: dict[str, np.ndarray], cfg: dict[str, Any]) -> bytes:
    from safetensors.numpy import save

    return save(tensors, metadata={"chainrule": json.dumps(cfg, allow_nan=False)})


def save_model(net: Network, path: str | Path) -> Path:
    """Save ``net`` (weights, architecture, cost, dtype, class names, preprocessing
    statistics) to one .safetensors file, atomically.

    >>> import tempfile, os
    >>> from chainrule.nn import Network
    >>> p = os.path.join(tempfile.mkdtemp(), "m.safetensors")
    >>> _ = save_model(Network.from_sizes([2, 3]), p)
    >>> load_model(p).sizes
    [2, 3]
    """
    if not np.all(np.isfinite(net.theta)):
        raise ModelFileError("the network has NaN or infinite weights; not saving it")
    atomic_write(path, _serialize(_tensors(net), _config(net)))
    return Path(path)


def save_checkpoint(path: str | Path, net: Network, optimizer: Any, epoch: int,
                    history: dict[str, list[float]], fit_settings: dict[str, Any],
                    callbacks: dict[str, dict[str, Any]] | None = None) -> Path:
    """A model file plus what resuming needs: the optimiser's state and step, the epoch
    just finished, the history, the settings of the run and the callbacks' states
    (``callbacks``: class name -> state_dict; arrays go in as tensors)."""
    tensors = _tensors(net)
    for k, v in optimizer.state().items():
        tensors[f"optimizer.{k}"] = np.ascontiguousarray(v)
    cb_meta: dict[str, dict[str, Any]] = {}
    for cname, st in (callbacks or {}).items():
        cb_meta[cname] = {}
        for k, v in st.items():
            if isinstance(v, np.ndarray):
                tensors[f"callbacks.{cname}.{k}"] = np.ascontiguousarray(v)
            else:
                cb_meta[cname][k] = v
    extra = {"checkpoint": {
        "epoch": int(epoch), "optimizer": {**optimizer.config(), "t": int(optimizer.t)},
        "history": {k: [float(x) for x in v] for k, v in history.items()},
        "fit": fit_settings, "callbacks": cb_meta,
    }}
    atomic_write(path, _serialize(tensors, _config(net, extra)))
    return Path(path)


# --------------------------------------------------------------------------- reading


def read_header(data: bytes, name: str = "model file") -> tuple[dict[str, Any], int]:
    """Parse and check a safetensors header before anything is allocated from it;
    return (header, start of the data section)."""
    if len(data) < 8:
        raise ModelFileError(f"{name}: {len(data)} bytes is too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES or n > len(data) - 8:
        raise ModelFileError(f"{name}: not a safetensors model file (its header claims "
                             f"{n:,} bytes but the file holds {len(data):,}); it may be "
                             f"truncated, or another kind of file")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ModelFileError(f"{name}: the safetensors header is not valid JSON (corrupted "
                             f"or not a model file)") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{name}: the safetensors header is not a JSON object")
    start = 8 + n
    body = len(data) - start
    spans = []
    for key, info in header.items():
        if key == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise ModelFileError(f"{name}: the header metadata must map names to strings")
            continue
        if not (isinstance(info, dict) and set(info) == {"dtype", "shape", "data_offsets"}):
            raise ModelFileError(f"{name}: tensor {key!r} has a malformed header entry")
        dt, shape, off = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in DTYPES:
            raise ModelFileError(f"{name}: tensor {key!r} has dtype {dt}; model files hold "
                                 f"float32 or float64 only")
        if not (isinstance(shape, list) and len(shape) <= 4 and
                all(isinstance(s, int) and 0 <= s < 2 ** 31 for s in shape)):
            raise ModelFileError(f"{name}: tensor {key!r} has an invalid shape {shape!r}")
        if not (isinstance(off, list) and len(off) == 2 and all(isinstance(o, int) for o in off)
                and 0 <= off[0] <= off[1] <= body):
            raise ModelFileError(f"{name}: tensor {key!r} points outside the file (truncated "
                                 f"or corrupted)")
        if off[1] - off[0] != math.prod(shape) * DTYPES[dt].itemsize:
            raise ModelFileError(f"{name}: tensor {key!r} declares shape {shape} but holds "
                                 f"{off[1] - off[0]} bytes")
        spans.append((off[0], off[1]))
    spans.sort()
    pos = 0
    for a, b in spans:
        if a != pos:
            raise ModelFileError(f"{name}: the tensors overlap or leave gaps (corrupted file)")
        pos = b
    if pos != body:
        raise ModelFileError(f"{name}: {body - pos} unexpected bytes after the tensors "
                             f"(corrupted file)")
    return header, start


_TOP_KEYS = {"format", "schema_version", "chainrule_version", "dtype", "cost", "layers",
             "classes", "feature_names", "target", "checkpoint", "provenance",
             "input_map"}
_PROVENANCE_KEYS = {"data", "task", "split", "target_scaler", "history"}


def _validate_provenance(p: Any, name: str) -> None:
    """Where the model came from, in a closed schema: the data's name (a file name, never a
    path that a later command opens) and SHA-256, the task, the split and its seed, the
    target's scaler and the history."""
    def bad(what: str) -> ModelFileError:
        return ModelFileError(f"{name}: invalid provenance: {what}")

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if not isinstance(p, dict) or set(p) - _PROVENANCE_KEYS:
        raise bad(f"a record of {', '.join(sorted(_PROVENANCE_KEYS))}")
    data = p.get("data")
    if data is not None:
        if not isinstance(data, dict) or set(data) - {"name", "sha256"}:
            raise bad("data must hold name and sha256")
        nm, sha = data.get("name"), data.get("sha256")
        if not isinstance(nm, str) or not 0 < len(nm) <= 255 or "/" in nm or "\\" in nm \
                or printable_problem(nm):
            raise bad("the data name must be a printable file name, not a path")
        if sha is not None and not (isinstance(sha, str) and len(sha) == 64 and
                                    all(c in "0123456789abcdef" for c in sha)):
            raise bad("sha256 must be 64 hexadecimal digits")
    if p.get("task") not in (None, "classify", "regress"):
        raise bad("task must be classify or regress")
    sp = p.get("split")
    if sp is not None:
        if not isinstance(sp, dict) or set(sp) != {"train", "validation", "test", "seed",
                                                     "stratified"}:
            raise bad("split must hold train, validation, test, seed and stratified")
        if not all(number(sp[k]) and 0 <= sp[k] <= 1 for k in ("train", "validation", "test")
                   ) or not isinstance(sp["seed"], int) or isinstance(sp["seed"], bool) or \
                not isinstance(sp["stratified"], bool):
            raise bad("split fractions in [0, 1], an integer seed, stratified true or false")
    ts = p.get("target_scaler")
    if ts is not None and not (isinstance(ts, dict) and set(ts) == {"mean", "scale"} and
                               number(ts["mean"]) and number(ts["scale"]) and ts["scale"] > 0):
        raise bad("target_scaler must hold a finite mean and a scale > 0")
    hist = p.get("history")
    if hist is not None and not (isinstance(hist, dict) and len(hist) <= 64 and all(
            isinstance(k, str) and len(k) <= 64 and not printable_problem(k) and
            isinstance(v, list) and len(v) <= 1_000_000 and
            all(x is None or number(x) for x in v) for k, v in hist.items())):
        raise bad("history must map metric names to lists of numbers")


def _validate_config(cfg: Any, name: str, custom: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
    custom = custom or {}
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise ModelFileError(f"{name}: not a chainrule model file (no chainrule metadata)")
    ver = cfg.get("schema_version")
    if not isinstance(ver, int) or isinstance(ver, bool) or ver < 1:
        raise ModelFileError(f"{name}: invalid schema_version {ver!r}")
    if ver > SCHEMA_VERSION:
        raise ModelFileError(f"{name}: written by a newer chainrule (model schema {ver}; this "
                             f"chainrule {__version__} reads schema {SCHEMA_VERSION}); upgrade "
                             f"chainrule to load it")
    unknown = set(cfg) - _TOP_KEYS
    if unknown:
        raise ModelFileError(f"{name}: unknown field(s) {', '.join(sorted(unknown))} in the "
                             f"model config; refusing to guess what they mean")
    if cfg.get("dtype") not in ("float32", "float64"):
        raise ModelFileError(f"{name}: dtype {cfg.get('dtype')!r} is not float32 or float64")
    _known(cfg.get("cost"), COSTS, custom, name, "the cost")
    layers = cfg.get("layers")
    if not isinstance(layers, list) or not 1 <= len(layers) <= 1000:
        raise ModelFileError(f"{name}: the model config has no valid list of layers")
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or set(layer) != {"type", "n_in", "n_out", "activation"}:
            raise ModelFileError(f"{name}: layer {i + 1} must have exactly type, n_in, n_out "
                                 f"and activation")
        if layer["type"] != "dense":
            raise ModelFileError(f"{name}: layer {i + 1} has unknown type {layer['type']!r}")
        _known(layer["activation"], ACTIVATIONS, custom, name, f"layer {i + 1}'s activation")
        for k in ("n_in", "n_out"):
            v = layer[k]
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 1_000_000:
                raise ModelFileError(f"{name}: layer {i + 1} has invalid {k} {v!r}")
        if i and layers[i - 1]["n_out"] != layer["n_in"]:
            raise ModelFileError(f"{name}: layer {i + 1} expects {layer['n_in']} inputs but "
                                 f"layer {i} gives {layers[i - 1]['n_out']}")
    classes = cfg.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(
                isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in classes):
            raise ModelFileError(f"{name}: classes must be a list of strings or numbers")
        if len(classes) != layers[-1]["n_out"] and not (len(classes) == 2 and
                                                        layers[-1]["n_out"] == 1):
            raise ModelFileError(f"{name}: {len(classes)} class names for "
                                 f"{layers[-1]['n_out']} outputs")
        if any(isinstance(c, int) and not -2 ** 63 <= c < 2 ** 63 for c in classes) or any(
                isinstance(c, float) and not math.isfinite(c) for c in classes):
            raise ModelFileError(f"{name}: class labels must be 64-bit integers, finite "
                                 f"numbers or strings")
        if len({json.dumps(c) for c in classes}) != len(classes):
            raise ModelFileError(f"{name}: the class labels repeat")
    for k in ("feature_names",):
        v = cfg.get(k)
        if v is not None and not (isinstance(v, list) and all(isinstance(s, str) for s in v)):
            raise ModelFileError(f"{name}: {k} must be a list of strings")
        if v is not None and len(set(v)) != len(v):
            raise ModelFileError(f"{name}: the feature names repeat")
    if cfg.get("target") is not None and not isinstance(cfg.get("target"), str):
        raise ModelFileError(f"{name}: target must be a string")
    if "provenance" in cfg:
        _validate_provenance(cfg["provenance"], name)
    texts = [c for c in classes or [] if isinstance(c, str)] + list(
        cfg.get("feature_names") or []) + [cfg.get("target") or ""]
    for text in texts:
        if printable_problem(text):
            raise ModelFileError(f"{name}: a class, feature or target name "
                                 f"{printable_problem(text)}; chainrule prints these names, "
                                 f"so it refuses the file")
    return cfg


def _known(v: Any, table: dict[str, Any], custom: dict[str, Any], name: str, what: str
           ) -> None:
    """``what`` ("layer 2's activation", "the cost") names a built-in or a custom object."""
    if isinstance(v, str) and (v in table or v in custom):
        return
    kind = what.rsplit(" ", 1)[-1]
    shown = v if isinstance(v, str) and len(v) < 80 else type(v).__name__
    hint = f"if it is your own, pass load_model(path, custom_objects={{{v!r}: fn}}); " \
        if isinstance(v, str) and _NAME_OK(v) else ""
    raise ModelFileError(f"{name}: {what} is an unknown {kind} {shown!r}; {hint}built in: "
                         f"{', '.join(table)}")


def _read(path: str | Path, max_bytes: int, max_memory: int | str | None = None,
          custom: dict[str, Any] | None = None
          ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    name = str(path)
    budget = _safe_io.memory_budget(max_memory)
    what = "model file" if max_bytes <= budget else "model file in the memory budget " \
        "(--max-memory)"
    data = _safe_io.read_bytes(path, min(max_bytes, budget), what, ModelFileError)
    try:
        header, start = read_header(data, name)
    except ModelFileError:
        # only once the bytes fail as safetensors: a header length may begin with 0x80 too
        if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05") or \
                data[:4] == b"PK\x03\x04":
            raise ModelFileError(f"{name}: this is a pickle (or a zip of pickles, as "
                                 f"torch.save writes), not a safetensors model; chainrule "
                                 f"never unpickles") from None
        raise
    meta = header.get("__metadata__") or {}
    if "chainrule" not in meta:
        raise ModelFileError(f"{name}: a safetensors file, but not one written by chainrule "
                             f"(no chainrule metadata)")
    try:
        cfg = json.loads(meta["chainrule"])
    except (json.JSONDecodeError, RecursionError):
        raise ModelFileError(f"{name}: the chainrule metadata is not valid JSON") from None
    cfg = _validate_config(cfg, name, custom)
    _check_against_header(cfg, header, name, len(data), max_memory)
    tensors = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(data, DTYPES[info["dtype"]], count=(b - a) // DTYPES[
            info["dtype"]].itemsize, offset=start + a).reshape(info["shape"])
        tensors[key] = arr
    return cfg, tensors


def _check_against_header(cfg: dict[str, Any], header: dict[str, Any], name: str,
                          file_bytes: int, max_memory: int | str | None) -> None:
    """Before any layer is built: every layer's W and b is in the file with the shape and
    dtype the metadata declares, and the network fits the memory budget. So a few hundred
    bytes of metadata that declare a huge layer cost nothing."""
    dtype = DTYPES["F32" if cfg["dtype"] == "float32" else "F64"]
    for i, lc in enumerate(cfg["layers"]):
        for part, shape in (("W", [lc["n_out"], lc["n_in"]]), ("b", [lc["n_out"]])):
            key = f"layers.{i}.{part}"
            info = header.get(key)
            if info is None:
                raise ModelFileError(f"{name}: tensor {key} is missing")
            if info["shape"] != shape:
                raise ModelFileError(f"{name}: tensor {key} has shape {tuple(info['shape'])},"
                                     f" the architecture needs {tuple(shape)}")
            if DTYPES[info["dtype"]] != dtype:
                raise ModelFileError(f"{name}: tensor {key} is {DTYPES[info['dtype']]}, the "
                                     f"model says {cfg['dtype']}")
    params = sum(lc["n_out"] * (lc["n_in"] + 1) for lc in cfg["layers"])
    # Theta, its gradient and the weight mask in the model's dtype; each layer's W and dW
    # in float64 until Theta takes them over; the file's bytes are already held
    need = file_bytes + params * (3 * dtype.itemsize + 16)
    _safe_io.check_budget(need, max_memory, f"{name}: this model", ModelFileError)


def _build(cfg: dict[str, Any], tensors: dict[str, np.ndarray], name: str,
           extra_ok: tuple[str, ...] = (), custom: dict[str, Any] | None = None) -> Network:
    dtype = np.dtype(cfg["dtype"])
    try:
        layers = [Dense(lc["n_in"], lc["n_out"], get_activation(lc["activation"], custom))
                  for lc in cfg["layers"]]
        net = Network(layers, cost=get_cost(cfg["cost"], custom), dtype=dtype, seed=None)
    except ValueError as exc:  # a combination the schema allows but a network does not
        raise ModelFileError(f"{name}: {exc}") from None
    expected = set()
    for i, layer in enumerate(net.layers):
        for part, shape in (("W", (layer.n_out, layer.n_in)), ("b", (layer.n_out,))):
            key = f"layers.{i}.{part}"
            expected.add(key)
            t = tensors.get(key)
            if t is None:
                raise ModelFileError(f"{name}: tensor {key} is missing")
            if t.shape != shape:
                raise ModelFileError(f"{name}: tensor {key} has shape {t.shape}, the "
                                     f"architecture needs {shape}")
            if t.dtype != dtype:
                raise ModelFileError(f"{name}: tensor {key} is {t.dtype}, the model says "
                                     f"{dtype}")
            if not np.all(np.isfinite(t)):
                raise ModelFileError(f"{name}: tensor {key} holds NaN or infinite weights")
            getattr(layer, part)[...] = t
    pre = {}
    n_in = net.layers[0].n_in
    for k in ("mean", "scale"):
        key = f"preprocessing.{k}"
        if key in tensors:
            expected.add(key)
            v = tensors[key]
            if v.shape != (n_in,) or not np.all(np.isfinite(v)) or (k == "scale" and
                                                                    np.any(v <= 0)):
                raise ModelFileError(f"{name}: {key} must be {n_in} finite numbers"
                                     f"{' > 0' if k == 'scale' else ''}")
            pre[k] = np.array(v, dtype=np.float64)
    if ("mean" in pre) != ("scale" in pre):
        raise ModelFileError(f"{name}: preprocessing needs both mean and scale")
    unknown = set(tensors) - expected - {k for k in tensors if k.startswith(extra_ok)}
    if unknown:
        raise ModelFileError(f"{name}: unexpected tensor(s) {', '.join(sorted(unknown)[:5])}")
    imap = cfg.get("input_map")
    if imap is not None and (not isinstance(imap, list) or len(imap) != n_in or not all(
            isinstance(f, str) and f in INPUT_FEATURES for f in imap)):
        raise ModelFileError(f"{name}: input_map must list {n_in} of the input features "
                             f"{', '.join(INPUT_FEATURES)}")
    fn = cfg.get("feature_names")
    width = raw_width(imap, n_in)
    if fn is not None and len(fn) != width:
        raise ModelFileError(f"{name}: {len(fn)} feature names for {width} inputs")
    net.preprocessing = {**pre, "feature_names": fn, "target": cfg.get("target")}
    if imap:
        net.preprocessing["input_map"] = imap
    if cfg.get("classes") is not None:
        net.classes_ = np.array(cfg["classes"])
    prov = cfg.get("provenance")
    if prov is not None:
        net.provenance = prov
        if prov.get("history"):
            net.history_ = {k: [math.nan if x is None else x for x in v]
                             for k, v in prov["history"].items()}
    return net


def load_model(path: str | Path, max_bytes: int = MAX_FILE_BYTES,
               max_memory: int | str | None = None,
               custom_objects: dict[str, Any] | None = None) -> Network:
    """Load and validate a model file (names, shapes, dtypes, finite values, schema
    version); raise :class:`ModelFileError` with the reason when it is not a sound model.
    Only regular files are read; ``max_memory`` (bytes, or "2G"; default: half the memory
    available) bounds what loading may allocate, checked before anything is built.
    ``custom_objects`` maps the names of your own activations and costs (the file holds
    names only, never code) to their functions or records."""
    cfg, tensors = _read(path, max_bytes, max_memory, custom_objects)
    return _build(cfg, tensors, str(path), extra_ok=("optimizer.", "callbacks."),
                  custom=custom_objects)


def load_checkpoint(path: str | Path, max_bytes: int = MAX_FILE_BYTES,
                    max_memory: int | str | None = None,
                    custom_objects: dict[str, Any] | None = None
                    ) -> tuple[Network, dict[str, Any], dict[str, np.ndarray]]:
    """A checkpoint: the network, the checkpoint record (epoch, optimiser config and step,
    history, fit settings) and the optimiser's state arrays."""
    cfg, tensors = _read(path, max_bytes, max_memory, custom_objects)
    ck = cfg.get("checkpoint")
    if not isinstance(ck, dict):
        raise ModelFileError(f"{path}: a model file, but not a checkpoint (no training state "
                             f"to resume from)")
    ck = _validate_checkpoint(ck, str(path))
    net = _build(cfg, tensors, str(path), extra_ok=("optimizer.", "callbacks."),
                 custom=custom_objects)
    for key, v in tensors.items():           # the callbacks' arrays, beside their numbers
        if key.startswith("callbacks."):
            _, cname, field = (key.split(".", 2) + ["", ""])[:3]
            if cname not in ck["callbacks"] or field not in _CALLBACK_ARRAYS.get(cname, ()) \
                    or v.shape != net.theta.shape or not np.all(np.isfinite(v)):
                raise ModelFileError(f"{path}: unexpected callback state tensor {key!r}")
            ck["callbacks"][cname][field] = np.array(v)
    state = {k.split(".", 1)[1]: np.array(v) for k, v in tensors.items()
             if k.startswith("optimizer.")}
    for k, v in state.items():
        if v.shape != net.theta.shape or not np.all(np.isfinite(v)):
            raise ModelFileError(f"{path}: optimizer state {k!r} does not match the model")
    oc = dict(ck["optimizer"])
    t = oc.pop("t")
    opt_name = oc.pop("name")
    if opt_name != "sgd":
        oc.pop("nesterov", None)
    try:
        opt = get_optimizer(opt_name, **oc)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: the checkpoint's optimizer settings are invalid "
                             f"({exc})") from None
    needed = set(opt.STATE) if t > 0 else set()
    missing, extra = sorted(needed - set(state)), sorted(set(state) - set(opt.STATE))
    if missing or extra:
        raise ModelFileError(f"{path}: the checkpoint's optimizer state is incomplete or "
                             f"foreign (missing: {', '.join(missing) or 'none'}; unexpected: "
                             f"{', '.join(extra) or 'none'}); resuming from it would not "
                             f"continue the same run")
    return net, ck, state


MAX_EPOCHS = 1_000_000
# the callbacks whose state a checkpoint carries: their numbers, and their arrays (tensors
# named callbacks.NAME.FIELD, shaped like Theta)
_CALLBACK_FIELDS = {"EarlyStopping": ("best", "best_epoch", "wait", "stopped")}
_CALLBACK_ARRAYS = {"EarlyStopping": ("best_theta",)}
_OPT_KEYS = {"name", "t", "lr", "weight_decay", "momentum", "nesterov", "beta1", "beta2",
             "eps"}


def _validate_checkpoint(ck: dict[str, Any], name: str) -> dict[str, Any]:
    """The training record of a checkpoint, in a closed schema with sane ranges."""
    def bad(what: str) -> ModelFileError:
        return ModelFileError(f"{name}: malformed checkpoint: {what}")

    def integer(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if set(ck) - {"epoch", "optimizer", "history", "fit", "callbacks"} or not \
            {"epoch", "optimizer"} <= set(ck):
        raise bad("it needs exactly epoch, optimizer, history, fit and callbacks")
    cbs = ck.get("callbacks", {})
    if not isinstance(cbs, dict) or set(cbs) - set(_CALLBACK_FIELDS):
        raise bad(f"the callbacks' states name unknown callbacks (known: "
                  f"{', '.join(_CALLBACK_FIELDS)})")
    for cname, st in cbs.items():
        if not isinstance(st, dict) or set(st) != set(_CALLBACK_FIELDS[cname]) or not all(
                v is None or isinstance(v, bool) or number(v) for v in st.values()):
            raise bad(f"the state of {cname} must hold exactly "
                      f"{', '.join(_CALLBACK_FIELDS[cname])}, as numbers")
    epoch = ck["epoch"]
    if not integer(epoch) or not 0 <= epoch < MAX_EPOCHS:
        raise bad(f"epoch {epoch!r} is not a whole number from 0 to {MAX_EPOCHS - 1:,}")
    oc = ck["optimizer"]
    if not isinstance(oc, dict) or not isinstance(oc.get("name"), str) or set(oc) - _OPT_KEYS:
        raise bad("the optimizer record must name the optimizer and hold only its settings")
    if not integer(oc.get("t")) or not 0 <= oc["t"] < 1 << 53:
        raise bad(f"optimizer step {oc.get('t')!r} is not a whole number >= 0")
    for k in ("lr", "weight_decay", "momentum", "beta1", "beta2", "eps"):
        if k in oc and not number(oc[k]):
            raise bad(f"optimizer {k} {oc[k]!r} is not a finite number")
    if "lr" in oc and not 0 < oc["lr"] <= 1e6:
        raise bad(f"learning rate {oc['lr']!r} must be in (0, 1e6]")
    if "eps" in oc and not 0 < oc["eps"] < 1:
        raise bad(f"eps {oc['eps']!r} must be in (0, 1)")
    for k in ("beta1", "beta2", "momentum"):
        if k in oc and not 0 <= oc[k] < 1:
            raise bad(f"{k} {oc[k]!r} must be in [0, 1)")
    if "nesterov" in oc and not isinstance(oc["nesterov"], bool):
        raise bad("nesterov must be true or false")
    hist = ck.get("history", {})
    if not isinstance(hist, dict) or not all(
            isinstance(k, str) and len(k) < 100 and isinstance(v, list) and
            len(v) <= epoch + 1 and all(isinstance(x, (int, float)) and
                                        not isinstance(x, bool) for x in v)
            for k, v in hist.items()):
        raise bad("the history must map metric names to at most epoch + 1 numbers")
    fit = ck.get("fit", {})
    if not isinstance(fit, dict) or set(fit) - {"epochs", "batch_size", "seed", "schedule",
                                                 "early_stopping"}:
        raise bad("the fit settings hold unknown fields")
    if "epochs" in fit and (not integer(fit["epochs"]) or not epoch < fit["epochs"] <=
                            MAX_EPOCHS):
        raise bad(f"epochs {fit['epochs']!r} must be a whole number above the epoch done "
                  f"and at most {MAX_EPOCHS:,}")
    if "batch_size" in fit and (not integer(fit["batch_size"]) or not
                                1 <= fit["batch_size"] <= 1 << 31):
        raise bad(f"batch_size {fit['batch_size']!r} is not a positive whole number")
    if "seed" in fit and (not integer(fit["seed"]) or abs(fit["seed"]) >= 1 << 63):
        raise bad(f"seed {fit['seed']!r} is not a 64-bit whole number")
    if "schedule" in fit and fit["schedule"] not in ("cosine", "constant"):
        raise bad(f"unknown schedule {fit['schedule']!r}")
    if "early_stopping" in fit and fit["early_stopping"] is not None and (
            not integer(fit["early_stopping"]) or not 1 <= fit["early_stopping"] <= MAX_EPOCHS):
        raise bad(f"early_stopping {fit['early_stopping']!r} is not a positive whole number")
    return {"history": {}, "fit": {}, "callbacks": {}, **ck}


class Checkpoint:
    """A fit callback (by its method, chainrule.training.as_callbacks) that saves a
    checkpoint (atomically) at the end of every epoch."""

    needs_gradient = False
    rank_zero_only = True  # in a data-parallel run only rank 0 writes (distributed)

    def __init__(self, path: str | Path, fit_settings: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.fit_settings = fit_settings or {}

    def on_epoch_end(self, state: Any) -> None:
        cbs = {type(c).__name__: c.state_dict() for c in getattr(state, "callbacks", ())
               if type(c).__name__ in _CALLBACK_FIELDS}
        save_checkpoint(self.path, state.net, state.optimizer, state.epoch, state.history,
                        self.fit_settings, cbs)
