"""Generated over every public function of chainrule.numpy (NumPy's names, chainrule's
additions and chainrule.numpy.linalg's): called on a traced value, it gives the
finite-difference gradient, or runs on values where the result carries no derivative
(booleans, integers, piecewise constants), or raises a TracerError that names the
function. Never a plain float array computed from a tracer's value."""

from __future__ import annotations

import inspect
import warnings

import numpy as onp
import pytest

import chainrule as cr
import chainrule.numpy as np
from chainrule.calculus import TracerError, numerical_jacobian
from chainrule.calculus.core import getval, is_tracer

X = onp.array([0.3, 0.7, 0.45])
M = onp.array([[2.0, 0.3, 0.1], [0.3, 1.5, 0.2], [0.1, 0.2, 1.1]])
# the probes, in order: the first that NumPy accepts on plain values is used
PROBES = [(X,), (M,), (X, X), (M, M), (X, 1), (X, 2.0), (M, 1), (X, X, X)]
SKIP = {  # files, printing, global state, Python-level helpers
    "save", "savez", "savez_compressed", "savetxt", "load", "loadtxt", "genfromtxt",
    "fromfile", "tofile", "info", "show_config", "show_runtime", "set_printoptions",
    "printoptions", "get_printoptions", "seterr", "geterr", "seterrcall", "geterrcall",
    "errstate", "setbufsize", "getbufsize", "get_include", "test", "frompyfunc", "vectorize",
    "memmap", "fromregex", "from_dlpack", "nditer", "nested_iters", "broadcast",
    "ndenumerate", "ndindex", "busdaycalendar", "is_busday", "busday_offset",
    "busday_count", "datetime_as_string", "datetime_data", "apply_along_axis",
    "apply_over_axes", "piecewise", "fromfunction", "frombuffer", "fromiter", "fromstring",
    "array2string", "array_repr", "array_str", "format_float_positional",
    "format_float_scientific", "base_repr", "binary_repr", "typename", "mintypecode",
    "asarray_chkfinite", "require", "iterable", "setxor1d", "put", "putmask", "place",
    "copyto", "fill_diagonal", "put_along_axis", "einsum_path", "lookfor",
    "get_array_wrap", "unravel_index", "ravel_multi_index", "matrix_transpose",
}
# piecewise-constant functions with float results: zero derivative, the values are right
FLAT = {"heaviside", "floor_divide", "sign", "spacing", "nextafter", "histogram",
        "histogram_bin_edges", "histogramdd", "histogram2d", "bincount", "fmod_int",
        "copysign", "frexp", "modf", "ldexp", "float_power_int", "isclose", "nanargmax",
        "ones_like", "zeros_like", "empty_like", "full_like", "sort_complex", "real_if_close",
        "tri", "eye", "identity", "ones", "zeros", "empty", "full", "arange", "geomspace",
        "logspace", "indices", "diag_indices_from", "tril_indices_from",
        "triu_indices_from", "mask_indices", "i0", "isneginf", "isposinf",
        "nanmedian", "nanpercentile", "nanquantile", "percentile", "quantile", "median",
        "partition", "nanmax", "nanmin", "nanprod", "nancumsum", "nancumprod", "nanstd",
        "nanvar", "around", "round", "fix", "floor", "ceil", "trunc", "rint",
        "angle", "imag"}  # angle and imag of a real value are constants


def _public(module, names):
    out = []
    for name in sorted(names):
        obj = getattr(module, name, None)
        if name.startswith("_") or name in SKIP or inspect.isclass(obj) or \
                inspect.ismodule(obj) or not callable(obj):
            continue
        out.append(name)
    return out


def _functions():
    """Every public function of chainrule.numpy: NumPy's names, chainrule's additions
    (sigmoid, softmax...) and those of chainrule.numpy.linalg ("linalg.name")."""
    extra = [n for n in vars(np) if n not in onp.__all__]
    return (_public(onp, onp.__all__) + _public(np, extra)
            + ["linalg." + n for n in _public(onp.linalg, vars(np.linalg))])


def _pair(name):
    """NumPy's function (for chainrule's additions, chainrule's own on plain values) and
    chainrule.numpy's."""
    if name.startswith("linalg."):
        return getattr(onp.linalg, name[7:]), getattr(np.linalg, name[7:])
    ours = getattr(np, name)
    return getattr(onp, name, ours), ours


def _probe(fn):
    for args in PROBES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = fn(*args)
        except Exception:  # noqa: BLE001 (the probe tries arguments until NumPy accepts)
            continue
        return args, r
    return None, None


def _leaves(r):
    if isinstance(r, (tuple, list)):
        return [v for x in r for v in _leaves(x)]
    return [r]


@pytest.mark.parametrize("name", _functions())
def test_every_numpy_function_on_a_traced_value(name):
    ref_fn, ours = _pair(name)
    args, ref = _probe(ref_fn)
    if args is None:
        pytest.skip("no probe argument that NumPy accepts")
    outs = []

    def f(x):
        a = (x,) + tuple(x if isinstance(v, onp.ndarray) and v.shape == x.shape else v
                         for v in args[1:])
        r = ours(*a)
        outs.append(r)
        # every floating-point result counts (a plain one traced would be a silent zero,
        # which the finite differences then contradict)
        leaves = [v for v in _leaves(r) if is_tracer(v) or (
            isinstance(v, (onp.ndarray, onp.floating, float))
            and onp.asarray(v).dtype.kind in "fc")]
        # a complex result through its modulus: real, and free of eigenvectors' phases
        leaves = [np.abs(v) if onp.iscomplexobj(getval(v)) else v for v in leaves]
        s = 0.0
        for k, v in enumerate(leaves):
            s = s + np.sum(v * (k + 1.0) * onp.linspace(0.5, 1.5, max(v.size, 1)).reshape(
                v.shape))
        return s + 0.0 * np.sum(x)

    x = args[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = cr.grad(f)(x)
    except TracerError as e:
        assert name in str(e), f"the error does not name {name}: {e}"
        return
    r = outs[0]
    leaves = _leaves(r)
    if any(is_tracer(v) for v in leaves):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fd = numerical_jacobian(f, x)
        onp.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-5)
        vals = [getval(v) for v in leaves]
        refs = _leaves(ref)
        for v, w in zip(vals, refs):
            if isinstance(w, onp.ndarray) or onp.isscalar(w):
                onp.testing.assert_allclose(onp.asarray(v, float), onp.asarray(w, float),
                                            rtol=1e-8, atol=1e-10)
        return
    # values only: right only where the result has no derivative
    for v in leaves:
        arr = onp.asarray(v)
        assert arr.dtype.kind not in "fc" or name in FLAT or arr.size == 0, (
            f"{name} returned a plain float array from a traced value")
