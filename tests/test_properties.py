"""Property-based tests (hypothesis) of the two parsers of untrusted input: the model-file
loader and the expression parser."""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainrule.io import ModelFileError, load_model, save_model
from chainrule.nn import Network
from chainrule.symbolic import ExpressionError, jacobian, parse

_DIR = Path(tempfile.mkdtemp(prefix="chainrule-props-"))
_GOOD = save_model(Network.from_sizes([3, 4, 2], hidden="tanh", seed=0),
                   _DIR / "good.safetensors").read_bytes()
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _load(data: bytes) -> None:
    p = _DIR / "case.safetensors"
    p.write_bytes(data)
    try:
        net = load_model(p, max_bytes=1 << 20)
    except ModelFileError:
        return
    assert np.all(np.isfinite(net.theta))


@st.composite
def mutated(draw):
    b = bytearray(_GOOD)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        i = draw(st.integers(0, max(len(b) - 1, 0)))
        if kind == "flip" and b:
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and b:
            b[i] = draw(st.integers(0, 255))
        elif kind == "cut":
            del b[i:]
        elif kind == "insert":
            b[i:i] = draw(st.binary(max_size=16))
        elif kind == "delete":
            del b[i:i + draw(st.integers(1, 16))]
    return bytes(b)


@SETTINGS
@given(mutated())
def test_loader_on_mutated_files(data):
    _load(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=12)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["format", "schema_version", "dtype", "cost", "layers",
                                        "classes", "feature_names", "target", "checkpoint",
                                        "other"]), json_values, max_size=8))
def test_loader_on_arbitrary_configs(cfg):
    n = struct.unpack("<Q", _GOOD[:8])[0]
    header = json.loads(_GOOD[8:8 + n])
    header["__metadata__"]["chainrule"] = json.dumps(cfg, allow_nan=True)
    hb = json.dumps(header).encode()
    _load(struct.pack("<Q", len(hb)) + hb + _GOOD[8 + n:])


@SETTINGS
@given(st.binary(max_size=300))
def test_loader_on_random_bytes(data):
    _load(data)


@SETTINGS
@given(st.text(max_size=120))
def test_parser_on_any_text(text):
    try:
        e = parse(text)
        J = jacobian(e)
    except ExpressionError:
        return
    assert J.shape == (len(e.trees), len(e.variables))


operands = st.sampled_from(["x", "y", "2", "0.5", "pi", "e", "0"])
functions = st.sampled_from(["sin", "cos", "exp", "log", "sqrt", "tanh", "abs", "sigmoid"])
expressions = st.recursive(
    operands,
    lambda c: st.tuples(c, st.sampled_from(["+", "-", "*", "/", "**", "^"]), c).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})") | st.tuples(functions, c).map(
        lambda t: f"{t[0]}({t[1]})"),
    max_leaves=10)


@SETTINGS
@given(expressions)
def test_parser_on_well_formed_expressions(text):
    """Well-formed arithmetic either differentiates (and agrees with autodiff where it is
    finite) or is refused with ExpressionError (a division by zero, say)."""
    from chainrule.symbolic import check_against_autodiff
    try:
        e = parse(text)
        names = e.variables
        if not names:
            return
        sym, ad, _ = check_against_autodiff(e, names, {n: 0.7 for n in names})
    except ExpressionError:
        return
    if np.all(np.isfinite(sym)) and np.all(np.isfinite(ad)):
        # relative where the derivative is large, absolute where it is (exactly) zero
        np.testing.assert_allclose(ad, sym, rtol=1e-8, atol=1e-10, err_msg=text)
