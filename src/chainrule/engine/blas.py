"""BLAS routines (``axpy``, ``scal``, ``axpby``, ``gemm``) from the BLAS that NumPy itself
loaded, through ctypes.

Why: the optimiser's update ``theta -= lr * grad`` is two NumPy passes over Theta, and on
the hot path of ``fit`` they ran at 110 us per step at batch 256 where one ``saxpy`` call,
which OpenBLAS splits over its own threads, takes 28 us (benchmarks/NOTES.md). Calling
SciPy's BLAS instead loads a second OpenBLAS whose threads fight NumPy's, so this module
calls the very library NumPy uses, found with threadpoolctl.

``gemm_tn`` is the one level-3 routine: ``C = alpha A^T B + beta C`` in place, which lets
plain SGD write ``W <- W - lr (A^{l-1})^T delta^l`` (BP4 and the step in one product)
without forming dW^l; NumPy's matmul has no alpha and beta.

Everything here is optional. Each routine returns False whenever the fast path does not
apply (no BLAS found, an unknown symbol naming, a self-test that disagrees with NumPy,
arrays of the wrong shape, layout or dtype, or ``CHAINRULE_BLAS=0`` in the
environment), and the caller then uses NumPy.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np

__all__ = ["axpy", "axpy_bound", "axpby", "scal", "gemm_tn", "usable", "available"]

_FUNCS: dict[str, Any] | None = None


def _candidates(info: dict[str, Any]) -> list[tuple[str, type]]:
    """Symbol name patterns (with ``{}`` for the routine) and their integer type."""
    if info.get("internal_api") == "mkl":
        return [("cblas_{}", ctypes.c_int32)]
    # scipy-openblas (NumPy >= 2 wheels): scipy_cblas_saxpy64_ with 64-bit integers;
    # older wheels: cblas_saxpy64_ (ILP64) or a plain cblas_saxpy (LP64)
    return [("scipy_cblas_{}64_", ctypes.c_int64), ("cblas_{}64_", ctypes.c_int64),
            ("scipy_cblas_{}", ctypes.c_int32), ("cblas_{}", ctypes.c_int32)]


def _load() -> dict[str, Any]:
    if os.environ.get("CHAINRULE_BLAS", "1").strip().lower() in ("0", "false", "no", "off"):
        return {}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return {}
    infos = [d for d in threadpool_info() if d.get("user_api") == "blas"]
    # the BLAS that ships with NumPy first: its thread pool is the one fit limits
    infos.sort(key=lambda d: "numpy" not in str(d.get("filepath", "")))
    for info in infos:
        try:
            lib = ctypes.CDLL(info["filepath"])
        except (OSError, KeyError, TypeError):
            continue
        for pattern, cint in _candidates(info):
            funcs = {}
            # axpby (y = a x + b y) is an extension that most BLAS have; optional here
            # and so is gemm (C = alpha op(A) op(B) + beta C), self-tested on its own
            for routine in ("saxpy", "daxpy", "sscal", "dscal", "saxpby", "daxpby", "sgemm",
                            "dgemm"):
                f = getattr(lib, pattern.format(routine), None)
                if f is None:
                    continue
                real = ctypes.c_float if routine[0] == "s" else ctypes.c_double
                if routine.endswith("axpy"):
                    f.argtypes = [cint, real, ctypes.c_void_p, cint, ctypes.c_void_p, cint]
                elif routine.endswith("axpby"):
                    f.argtypes = [cint, real, ctypes.c_void_p, cint, real, ctypes.c_void_p,
                                  cint]
                elif routine.endswith("gemm"):
                    # order, transa, transb (CBLAS enums), M, N, K, alpha, A, lda, B, ldb,
                    # beta, C, ldc
                    f.argtypes = [ctypes.c_int] * 3 + [cint] * 3 + [
                        real, ctypes.c_void_p, cint, ctypes.c_void_p, cint, real,
                        ctypes.c_void_p, cint]
                else:
                    f.argtypes = [cint, real, ctypes.c_void_p, cint]
                f.restype = None
                funcs[routine] = f
            if {"saxpy", "daxpy", "sscal", "dscal"} <= funcs.keys() and _self_test(funcs):
                return funcs
    return {}


def _self_test(funcs: dict[str, Any]) -> bool:
    """The routines must agree with NumPy to the last bit on a small case."""
    for dt, prefix in ((np.float32, "s"), (np.float64, "d")):
        x = np.arange(1, 40, dtype=dt)
        y = np.linspace(-1, 1, 39).astype(dt)
        want = y + dt(-0.5) * x
        funcs[prefix + "axpy"](x.size, -0.5, x.ctypes.data, 1, y.ctypes.data, 1)
        if not np.array_equal(y, want):
            return False
        want = y * dt(0.25)
        funcs[prefix + "scal"](y.size, 0.25, y.ctypes.data, 1)
        if not np.array_equal(y, want):
            return False
        if prefix + "axpby" in funcs:
            want = dt(0.5) * x + dt(0.25) * y
            funcs[prefix + "axpby"](x.size, 0.5, x.ctypes.data, 1, 0.25, y.ctypes.data, 1)
            if not np.array_equal(y, want):
                funcs.pop("saxpby", None)
                funcs.pop("daxpby", None)
        if prefix + "gemm" in funcs:
            # small integers: every sum is exact, so any summation order gives these bits
            a = (np.arange(35, dtype=dt).reshape(7, 5) % 5) - 2
            b = (np.arange(21, dtype=dt).reshape(7, 3) % 4) - 1
            c = np.arange(15, dtype=dt).reshape(5, 3)
            want = dt(-0.5) * (a.T @ b) + dt(2.0) * c
            _call_gemm(funcs[prefix + "gemm"], -0.5, a, b, 2.0, c)
            if not np.array_equal(c, want):
                funcs.pop("sgemm", None)
                funcs.pop("dgemm", None)
    return True


_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112    # the CBLAS enums


def _call_gemm(f: Any, alpha: float, a: np.ndarray, b: np.ndarray, beta: float,
               c: np.ndarray) -> None:
    """c = alpha a^T b + beta c for C-contiguous a (k, m), b (k, n), c (m, n)."""
    k, m = a.shape
    n = b.shape[1]
    f(_ROW_MAJOR, _TRANS, _NO_TRANS, m, n, k, alpha, a.ctypes.data, m, b.ctypes.data, n,
      beta, c.ctypes.data, n)


def _funcs() -> dict[str, Any]:
    global _FUNCS
    if _FUNCS is None:
        try:
            _FUNCS = _load()
        except Exception:  # noqa: BLE001 - any failure here means: use NumPy
            _FUNCS = {}
    return _FUNCS


def gemm_addresses() -> tuple[int, int, bool] | None:
    """(address of sgemm, of dgemm, whether their integers are 64-bit), for C code that
    calls NumPy's BLAS itself (the two-thread pipe); None when the self-tested gemm is not
    there."""
    funcs = _funcs()
    s, d = funcs.get("sgemm"), funcs.get("dgemm")
    if s is None or d is None:
        return None
    return (ctypes.cast(s, ctypes.c_void_p).value or 0,
            ctypes.cast(d, ctypes.c_void_p).value or 0, s.argtypes[3] is ctypes.c_int64)


def available() -> bool:
    """Whether the BLAS fast path is in use in this process."""
    return bool(_funcs())


_PREFIX = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}


def _vector(a: np.ndarray) -> bool:
    return a.ndim == 1 and a.flags.c_contiguous and a.flags.writeable


def usable(*arrays: np.ndarray, axpby: bool = False) -> bool:
    """Whether :func:`axpy` and :func:`scal` (and with ``axpby``, :func:`axpby`) will run
    on these arrays (same shape, same float dtype, contiguous vectors) rather than return
    False."""
    funcs = _funcs()
    first = arrays[0]
    if not funcs or (axpby and _PREFIX.get(first.dtype, "?") + "axpby" not in funcs):
        return False
    return first.dtype in (np.float32, np.float64) and all(
        a.dtype == first.dtype and a.shape == first.shape and _vector(a) for a in arrays)


def axpy(alpha: float, x: np.ndarray, y: np.ndarray) -> bool:
    """``y += alpha * x`` in place with BLAS; False (and nothing done) when it can't.

    >>> import numpy as np
    >>> y = np.ones(3); done = axpy(2.0, np.arange(3.0), y)
    >>> y.tolist() if done else [1.0, 3.0, 5.0]
    [1.0, 3.0, 5.0]
    """
    funcs = _funcs()
    if not funcs or x.dtype != y.dtype or x.shape != y.shape or not (_vector(x) and _vector(y)):
        return False
    if y.dtype == np.float32:
        funcs["saxpy"](y.size, alpha, x.ctypes.data, 1, y.ctypes.data, 1)
    elif y.dtype == np.float64:
        funcs["daxpy"](y.size, alpha, x.ctypes.data, 1, y.ctypes.data, 1)
    else:
        return False
    return True


def axpy_bound(x: np.ndarray, y: np.ndarray) -> Any:
    """``y += alpha * x`` bound to these two vectors: a function of alpha alone, or None
    where :func:`axpy` would not run. It calls BLAS with the addresses read once, for a
    caller that updates the same vectors at every step (Theta and its gradient); the
    caller keeps x and y alive and checks that it is handed the same two again.

    >>> import numpy as np
    >>> x, y = np.arange(3.0), np.ones(3)
    >>> f = axpy_bound(x, y)
    >>> _ = f(2.0) if f else np.add(y, 2.0 * x, out=y)
    >>> y.tolist()
    [1.0, 3.0, 5.0]
    """
    funcs = _funcs()
    f = funcs.get(_PREFIX.get(y.dtype, "?") + "axpy")
    if f is None or x.dtype != y.dtype or x.shape != y.shape or \
            not (_vector(x) and _vector(y)):
        return None
    n, px, py = y.size, x.ctypes.data, y.ctypes.data
    return lambda alpha: f(n, alpha, px, 1, py, 1)


def axpby(alpha: float, x: np.ndarray, beta: float, y: np.ndarray) -> bool:
    """``y = alpha * x + beta * y`` in place with BLAS; False (and nothing done) when it
    can't."""
    f = _funcs().get(_PREFIX.get(y.dtype, "?") + "axpby")
    if f is None or x.dtype != y.dtype or x.shape != y.shape or \
            not (_vector(x) and _vector(y)):
        return False
    f(y.size, alpha, x.ctypes.data, 1, beta, y.ctypes.data, 1)
    return True


def scal(alpha: float, x: np.ndarray) -> bool:
    """``x *= alpha`` in place with BLAS; False (and nothing done) when it can't."""
    funcs = _funcs()
    if not funcs or not _vector(x):
        return False
    if x.dtype == np.float32:
        funcs["sscal"](x.size, alpha, x.ctypes.data, 1)
    elif x.dtype == np.float64:
        funcs["dscal"](x.size, alpha, x.ctypes.data, 1)
    else:
        return False
    return True


def gemm_tn(alpha: float, a: np.ndarray, b: np.ndarray, beta: float, c: np.ndarray) -> bool:
    """``c = alpha * a.T @ b + beta * c`` in place with BLAS, for C-contiguous 2-D arrays
    of one float dtype; False (and nothing done) when it can't.

    >>> import numpy as np
    >>> a, b, c = np.ones((4, 2)), np.ones((4, 3)), np.ones((2, 3))
    >>> done = gemm_tn(-0.5, a, b, 1.0, c)
    >>> c.tolist() if done else [[-1.0] * 3] * 2
    [[-1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]]
    """
    f = _funcs().get(_PREFIX.get(c.dtype, "?") + "gemm")
    if f is None or not (a.dtype == b.dtype == c.dtype) or a.ndim != 2 or b.ndim != 2 or \
            c.shape != (a.shape[1], b.shape[1]) or a.shape[0] != b.shape[0] or \
            not (a.flags.c_contiguous and b.flags.c_contiguous and c.flags.c_contiguous
                 and c.flags.writeable) or 0 in a.shape or 0 in c.shape:
        return False
    _call_gemm(f, alpha, a, b, beta, c)
    return True
