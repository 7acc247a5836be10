"""The closed schema of every message the page may send; anything else is refused.

A message is a JSON object with a ``type`` and the fields that type allows, each with its
kind and range. Unknown fields, wrong kinds (a bool is not a number), NaN, overlong
strings and lists are errors, reported as :class:`MessageError` (HTTP 400). Nothing in a
message is ever evaluated: names pick entries of fixed tables.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .datasets import CLASSIFY, FEATURES, REGRESS

__all__ = ["MessageError", "CONFIG", "DEFAULT_CONFIG", "parse_message", "check_config",
           "MAX_MESSAGE_BYTES"]

MAX_MESSAGE_BYTES = 64 * 1024
LEARNING_RATES = [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
REG_RATES = [0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
ACTIVATIONS = ["tanh", "relu", "sigmoid", "identity"]
MAX_LAYERS, MAX_NEURONS = 6, 8


class MessageError(ValueError):
    """A message that does not fit the schema, and why."""


def _enum(values: list[Any]) -> dict[str, Any]:
    return {"kind": "enum", "values": values}


def _int(lo: int, hi: int) -> dict[str, Any]:
    return {"kind": "int", "lo": lo, "hi": hi}


# field -> rule; the configuration of the page, all of it (it also lives in the URL)
CONFIG: dict[str, dict[str, Any]] = {
    "dataset": _enum([*CLASSIFY, *REGRESS, "csv"]),
    "task": _enum(["classification", "regression"]),
    "noise": _int(0, 50),                     # percent
    "train_ratio": _int(10, 90),              # percent of the points used for training
    "batch_size": _int(1, 30),
    "mode": _enum(["gd", "sgd", "minibatch"]),  # text 3.8
    "lr": _enum(LEARNING_RATES),
    "activation": _enum(ACTIVATIONS),
    "regularization": _enum(["none", "L1", "L2"]),
    "reg_rate": _enum(REG_RATES),
    "hidden": {"kind": "list", "item": _int(1, MAX_NEURONS), "min": 0, "max": MAX_LAYERS},
    "features": {"kind": "set", "values": list(FEATURES), "min": 1},
    "seed": _int(0, 2 ** 31 - 1),
}

DEFAULT_CONFIG: dict[str, Any] = {
    "dataset": "circle", "task": "classification", "noise": 0, "train_ratio": 50,
    "batch_size": 10, "mode": "minibatch", "lr": 0.03, "activation": "tanh",
    "regularization": "none", "reg_rate": 0.0, "hidden": [4, 2], "features": ["x1", "x2"],
    "seed": 1,
}

# message type -> its fields (besides "type"), each with (rule, required)
MESSAGES: dict[str, dict[str, tuple[dict[str, Any], bool]]] = {
    "config": {k: (rule, False) for k, rule in CONFIG.items()},
    "play": {}, "pause": {}, "step": {}, "reset": {},
    "example": {"index": (_int(0, 100_000), True)},
    "select": {"layer": (_int(1, MAX_LAYERS + 1), True), "neuron": (_int(1, MAX_NEURONS), True)},
    "link": {"layer": (_int(1, MAX_LAYERS + 1), True), "j": (_int(1, MAX_NEURONS), True),
             "k": (_int(1, len(FEATURES)), True)},
    "backward": {},
    "surface": {"w1": ({"kind": "weight"}, True), "w2": ({"kind": "weight"}, True),
                "steps": (_int(5, 61), False)},
}


def _check(name: str, v: Any, rule: dict[str, Any]) -> Any:
    kind = rule["kind"]
    if kind == "enum":
        # numbers compare by value (0.03 from JSON is the float 0.03), never bools
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise MessageError(f"{name}: expected one of {rule['values']}")
        for ok in rule["values"]:
            if type(ok) is str and v == ok or type(ok) is not str and not isinstance(v, str) \
                    and float(v) == ok:
                return ok
        raise MessageError(f"{name}: {v!r} is not one of {rule['values']}")
    if kind == "int":
        if isinstance(v, bool) or not isinstance(v, int) or not rule["lo"] <= v <= rule["hi"]:
            raise MessageError(f"{name}: expected a whole number from {rule['lo']} to "
                               f"{rule['hi']}")
        return v
    if kind == "list":
        if not isinstance(v, list) or not rule["min"] <= len(v) <= rule["max"]:
            raise MessageError(f"{name}: expected a list of {rule['min']} to {rule['max']} "
                               f"entries")
        return [_check(f"{name}[{i}]", x, rule["item"]) for i, x in enumerate(v)]
    if kind == "set":
        if not isinstance(v, list) or len(v) < rule["min"] or len(v) > len(rule["values"]) \
                or len(set(map(str, v))) != len(v):
            raise MessageError(f"{name}: expected a list of distinct names from "
                               f"{rule['values']}")
        for x in v:
            if not isinstance(x, str) or x not in rule["values"]:
                raise MessageError(f"{name}: {x!r} is not one of {rule['values']}")
        return [x for x in rule["values"] if x in v]       # the page's order
    if kind == "weight":   # [l, j, k]: w^l_jk, 1-based as in the text
        if not isinstance(v, list) or len(v) != 3 or any(
                isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= 64 for x in v):
            raise MessageError(f"{name}: expected a weight as [l, j, k] (1-based)")
        return v
    raise AssertionError(kind)


def parse_message(body: bytes) -> dict[str, Any]:
    """The message in ``body`` (JSON), checked against the schema; raises MessageError."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise MessageError(f"message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        msg = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MessageError(f"not a JSON message ({exc})") from None
    if not isinstance(msg, dict):
        raise MessageError("a message must be a JSON object")
    kind = msg.get("type")
    if not isinstance(kind, str) or kind not in MESSAGES:
        raise MessageError(f"unknown message type; known: {', '.join(MESSAGES)}")
    fields = MESSAGES[kind]
    unknown = set(msg) - set(fields) - {"type"}
    if unknown:
        raise MessageError(f"{kind}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    out: dict[str, Any] = {"type": kind}
    for name, (rule, required) in fields.items():
        if name in msg:
            out[name] = _check(name, msg[name], rule)
        elif required:
            raise MessageError(f"{kind}: missing field {name!r}")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def check_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """A complete configuration: the defaults updated by ``cfg``, consistent as a whole."""
    out = dict(DEFAULT_CONFIG)
    out.update(cfg)
    task = out["task"]
    ds = out["dataset"]
    if ds != "csv" and (ds in CLASSIFY) != (task == "classification"):
        raise MessageError(f"dataset {ds!r} is not a {task} dataset")
    assert all(math.isfinite(float(out[k])) for k in ("lr", "reg_rate"))
    return out
