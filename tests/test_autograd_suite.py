"""The cases of HIPS autograd's test suite (autograd 1.9.1, tests/), re-created in
chainrule's own words: the same functions, shapes and input ranges, each checked with
chainrule's jvp and vjp against central differences in float64, to second order (the
derivative of the derivative is checked the same way), complex inputs included.

Complex numbers follow JAX's convention (docs/math.md): a tangent t and a cotangent c pair
as Re(sum(c * t)), so the check of a VJP is

    Re(sum(vjp(c) * v)) == Re(sum(c * (f(x + h v) - f(x - h v)) / 2h))

for random directions v and c (complex where x or f(x) is complex). autograd's own
check pairs a covector conj(c) through Re(sum(a * conj(b))): the same number.

What the port leaves out is listed in docs/math.md (autograd's internals: vspaces,
boxing, its tracer and profiling).
"""

from __future__ import annotations

import operator

import numpy as onp
import pytest

import chainrule.numpy as np
from chainrule.calculus import (
    TracerError,
    grad,
    hessian,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    tree_flatten,
    tree_unflatten,
    value_and_grad,
    vjp,
)

EPS = 1e-6
TOL = 1e-6


# --------------------------------------------------------------------------- the check


def _leaves(t):
    return [onp.asarray(v) for v in tree_flatten(t)[0]]


def _direction(t, rng):
    """A random direction shaped like the pytree ``t``, complex where ``t`` is."""
    leaves, d = tree_flatten(t)
    out = []
    for v in leaves:
        r = rng.standard_normal(onp.shape(v))
        if onp.iscomplexobj(v):
            r = r + 1j * rng.standard_normal(onp.shape(v))
        out.append(r if onp.ndim(v) else r[()])
    return tree_unflatten(d, out)


def _axpy(x, v, s):
    lx, d = tree_flatten(x)
    lv, _ = tree_flatten(v)
    return tree_unflatten(d, [a + s * b for a, b in zip(lx, lv)])


def _pair(a, b):
    """JAX's pairing of a cotangent with a tangent: Re(sum(a * b))."""
    return sum(float(onp.real(onp.sum(x * y))) for x, y in zip(_leaves(a), _leaves(b)))


def _fd(f, x, v):
    """(f(x + h v) - f(x - h v)) / 2h, leaf by leaf."""
    hi, lo = f(_axpy(x, v, EPS / 2)), f(_axpy(x, v, -EPS / 2))
    lh, d = tree_flatten(hi)
    return tree_unflatten(d, [(onp.asarray(a) - onp.asarray(b)) / EPS
                              for a, b in zip(lh, _leaves(lo))])


def _close(a, b):
    return abs(a - b) <= TOL or abs(a - b) <= TOL * max(abs(a), abs(b))


def check(f, x, order=2, modes=("fwd", "rev"), seed=0):
    """chainrule's jvp and vjp of ``f`` at ``x`` (a pytree) against central differences,
    then the same check of the derivative maps themselves, down to ``order``."""
    rng = onp.random.default_rng(seed)
    if "fwd" in modes:
        v = _direction(x, rng)
        _, t = jvp(f, (x,), (v,))
        num = _fd(f, x, v)
        w = _direction(num, rng)
        assert _close(_pair(w, t), _pair(w, num)), f"jvp of {f} at {x}"
        if order > 1:
            check(lambda xv: jvp(f, (xv[0],), (xv[1],))[1], (x, v), order - 1, modes,
                  seed + 1)
    if "rev" in modes:
        out, pull = vjp(f, x)
        c = _direction(out, rng)
        (g,) = pull(c)
        v = _direction(x, rng)
        assert _close(_pair(g, v), _pair(c, _fd(f, x, v))), f"vjp of {f} at {x}"
        if order > 1:
            check(lambda xc: vjp(f, xc[0])[1](xc[1])[0], (x, c), order - 1, modes, seed + 2)


def check_args(f, *args, argnums=(0,), order=2, modes=("fwd", "rev"), **kw):
    """``check`` of f(*args, **kw) as a function of the arguments ``argnums``."""
    def g(xs):
        a = list(args)
        for i, x in zip(argnums, xs):
            a[i] = x
        return f(*a, **kw)

    check(g, tuple(args[i] for i in argnums), order, modes)


rs = onp.random.RandomState(0)


def R(*shape):
    return rs.randn(*shape)


def C(*shape):
    return rs.randn(*shape) + 1j * rs.randn(*shape)


def inside(lims, u):
    """u in [0, 1) mapped into [lims[0], lims[1]] (autograd's input generator)."""
    return lims[0] + (lims[1] - lims[0]) * onp.asarray(u)


# --------------------------------------------------------------------------- the check itself


def test_the_check_catches_a_wrong_derivative():
    # a primitive with a wrong VJP (a conjugate missing) must fail the check
    from chainrule.calculus.core import Primitive

    bad = Primitive("bad", lambda z: z * z)
    bad.vjps[0] = lambda g, ans, z: g * 2 * np.conj(z)
    bad.jvps[0] = lambda t, ans, z: t * 2 * z
    with pytest.raises(AssertionError, match="vjp"):
        check(bad, 0.3 + 0.7j, order=1)


# --------------------------------------------------------------------------- element-wise

UNARY = [
    # name, function, input range, complex inputs too
    ("sin", np.sin, (-2, 2), True), ("abs", np.abs, (0.1, 4), True),
    ("absolute", np.absolute, (0.1, 4), True), ("arccosh", np.arccosh, (1.1, 4), True),
    ("arcsinh", np.arcsinh, (-0.9, 0.9), True), ("arctanh", np.arctanh, (-0.9, 0.9), True),
    ("ceil", np.ceil, (-1.5, 1.5), False), ("cos", np.cos, (-2, 2), True),
    ("cosh", np.cosh, (-2, 2), True), ("deg2rad", np.deg2rad, (-2, 2), False),
    ("degrees", lambda x: np.degrees(x) / 50.0, (-2, 2), False),
    ("exp", np.exp, (-2, 2), True), ("exp2", np.exp2, (-2, 2), True),
    ("expm1", np.expm1, (-2, 2), True), ("fabs", np.fabs, (-2, 2), False),
    ("floor", np.floor, (-1.5, 1.5), False), ("log", np.log, (0.2, 2), True),
    ("log10", np.log10, (0.2, 2), True), ("log1p", np.log1p, (0.2, 2), True),
    ("log2", np.log2, (0.2, 2), True), ("rad2deg", lambda x: np.rad2deg(x) / 50.0,
                                        (-2, 2), False),
    ("radians", np.radians, (-2, 2), False), ("sign", np.sign, (-2, 2), True),
    ("sinh", np.sinh, (-2, 2), True), ("sqrt", np.sqrt, (1, 3), True),
    ("square", np.square, (-2, 2), False), ("tan", np.tan, (-1.1, 1.1), True),
    ("tanh", np.tanh, (-2, 2), True), ("real", np.real, (-2, 2), True),
    ("real_if_close", np.real_if_close, (-2, 2), True), ("imag", np.imag, (-2, 2), True),
    ("conj", np.conj, (-2, 2), True), ("conjugate", np.conjugate, (-2, 2), True),
    ("angle", np.angle, (-2, 2), True),
]


@pytest.mark.parametrize("name,f,lims,cplx", UNARY, ids=[u[0] for u in UNARY])
def test_unary(name, f, lims, cplx):
    r = onp.random.RandomState(1)
    for x in (inside(lims, 0.4)[()], inside(lims, r.rand(2)), inside(lims, r.rand(3, 2)),
              inside(lims, r.rand(1, 2))):
        check(f, x)
    if cplx:
        check(f, complex(inside(lims, 0.4)) + 0.1j * complex(inside(lims, 0.3)))
        check(f, inside(lims, r.rand(3, 2)) + 0.1j * r.rand(3, 2))


BINARY = [
    # name, function, range of A, range of B, complex inputs too
    ("add", np.add, (-2, 2), (-2, 2), True),
    ("logaddexp", np.logaddexp, (-2, 2), (-2, 2), False),
    ("logaddexp2", np.logaddexp2, (-2, 2), (-2, 2), False),
    ("remainder", np.remainder, (-2, 2), (0.8, 1.2), False),
    ("true_divide", np.true_divide, (-2, 2), (0.8, 1.2), False),
    ("true_divide_neg", np.true_divide, (-2, 2), (-0.3, -2.0), False),
    ("mod", np.mod, (-2, 2), (0.8, 1.2), False),
    ("mod_neg", np.mod, (-2, 2), (-0.3, -2.0), False),
    ("op_mul", operator.mul, (-2, 2), (-2, 2), True),
    ("op_add", operator.add, (-2, 2), (-2, 2), True),
    ("op_sub", operator.sub, (-2, 2), (-2, 2), True),
    ("op_mod", operator.mod, (-2, 2), (0.8, 1.2), False),
    ("op_mod_neg", operator.mod, (-2, 2), (-0.3, -2.0), False),
    ("op_truediv", operator.truediv, (-2, 2), (0.5, 2.0), True),
    ("op_pow", operator.pow, (0.7, 2.0), (-1.0, 2.0), True),
]


@pytest.mark.parametrize("name,f,la,lb,cplx", BINARY, ids=[b[0] for b in BINARY])
def test_binary_broadcasting(name, f, la, lb, cplx):
    r = onp.random.RandomState(2)
    shapes = [(), (2,), (3, 2), (1, 2)]
    avals = [inside(la, r.rand(*s)) for s in shapes]
    bvals = [inside(lb, r.rand(*s)) for s in shapes]
    if cplx:
        avals += [inside(la, 0.6) + 0.3j, inside(la, r.rand(3, 2)) + 0.1j * r.rand(3, 2)]
        bvals += [inside(lb, 0.6) + 0.3j, inside(lb, r.rand(3, 2)) + 0.1j * r.rand(3, 2)]
    for a in avals:
        for b in bvals:
            check_args(f, a, b, argnums=(0, 1), order=1)


# --------------------------------------------------------------------------- reductions


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "var", "std", "max", "min"])
def test_statistics(name):
    f = getattr(np, name)
    r = onp.random.RandomState(3)
    for x in (3.5, r.randn()):
        check(f, x)
    for x in (r.randn(3), r.randn(2, 3), r.randn(1, 3), r.randn(2, 3) + 0.1j * r.randn(2, 3)):
        for axis in (None, 0):
            for keepdims in (True, False):
                check(lambda v, a=axis, k=keepdims: f(v, axis=a, keepdims=k), x)
    for x in (r.randn(2, 3), r.randn(1, 3)):
        check(lambda v: f(v, axis=1), x)
    check(f, r.randn() + 0.1j * r.randn())


# --------------------------------------------------------------------------- products


@pytest.mark.parametrize("name,a,b,kw", [
    ("dot", R(2, 3), R(3, 4), {}), ("dot", C(3), C(3), {}), ("dot", R(2, 3, 4), C(4, 2), {}),
    ("dot", 1.5, C(3), {}),
    ("inner", R(2, 3), R(4, 3), {}), ("inner", 1.5, 0.3, {}),
    ("outer", R(3), C(3), {}), ("outer", C(3), C(2), {}),
    ("matmul", R(2, 3), C(3, 4), {}), ("matmul", C(3), C(3, 2), {}),
    ("matmul", R(1, 2, 2), R(3, 2, 1), {}),
    ("kron", R(5, 5), C(3, 3), {}), ("kron", C(2, 3), R(4), {}),
    ("tensordot", R(3, 4), C(4, 5), {"axes": 1}), ("tensordot", C(2, 2), R(2, 2, 4),
                                                   {"axes": 2}),
    ("tensordot", R(4), R(), {"axes": 0}), ("tensordot", C(3, 4, 5), C(4, 3, 6),
                                            {"axes": ([0, 1], [1, 0])}),
])
def test_products(name, a, b, kw):
    check_args(getattr(np, name), a, b, argnums=(0, 1), **kw)


@pytest.mark.parametrize("spec,shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ii", [(3, 3)]), ("ij->", [(2, 3)]),
    ("i,i", [(3,), (3,)]), ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("ijk,jkl,lm->im", [(2, 3, 2), (3, 2, 4), (4, 2)]), ("ii->i", [(3, 3)]),
    ("ijk,lji,lli->lki", [(3, 4, 4), (4, 4, 3), (4, 4, 3)]), ("iij->j", [(2, 2, 3)]),
])
def test_einsum(spec, shapes):
    ops = [C(*s) if i == 0 else R(*s) for i, s in enumerate(shapes)]
    check_args(lambda *xs: np.einsum(spec, *xs), *ops, argnums=tuple(range(len(ops))))


# --------------------------------------------------------------------------- linear algebra


def _sym(a):
    return a + a.T


def test_inv_det_slogdet_solve():
    a = R(4, 4) + 4 * onp.eye(4)
    check(np.linalg.inv, a)
    check(np.linalg.inv, C(4, 4) + 4 * onp.eye(4))
    check(np.linalg.det, a)
    check(np.linalg.det, R(2, 3, 3))
    check(lambda x: np.linalg.slogdet(x)[1], a)
    check_args(np.linalg.solve, a, R(4), argnums=(0, 1))
    check_args(np.linalg.solve, a, R(4, 3), argnums=(0, 1))


def test_pinv():
    for m in range(2, 8):
        check(np.linalg.pinv, R(5, m), order=1)
        check(np.linalg.pinv, R(2, 5, m), order=1)
    low = R(5, 2)
    check(lambda x: np.linalg.pinv(x @ x.T), low, order=1)   # square, rank 2


@pytest.mark.parametrize("x", [R(6), C(6), R(6, 5), C(6, 5), R(6, 5, 4), C(6, 5, 4)],
                         ids=["vec", "vec_c", "mat", "mat_c", "t3", "t3_c"])
def test_norm(x):
    check(np.linalg.norm, x)
    if x.ndim == 1:
        for ord_ in (2, 3, 4):
            check(lambda v, o=ord_: np.linalg.norm(v, ord=o), x)
    if x.ndim == 2:
        check(lambda v: np.linalg.norm(v, ord="nuc"), x)
    if x.ndim == 3:
        check(lambda v: np.linalg.norm(v, axis=(0, 1)), x)
        for axis in range(3):
            check(lambda v, a=axis: np.linalg.norm(v, axis=a), x)
        check(lambda v: np.linalg.norm(v, ord="nuc", axis=(0, 1)), x)


def test_norm_of_a_list_of_traced_values():
    # d/dx sqrt(x^2 + (x + 2)^2) at 0 is 2 / 2 = 1
    assert grad(lambda x: np.linalg.norm([x, x + 2]))(0.0) == 1.0
    assert grad(lambda x: np.linalg.norm((x, x + 2)))(0.0) == 1.0


@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigh(uplo):
    # real symmetric and complex Hermitian; the eigenvectors' sign or phase is arbitrary,
    # so a complex case reads abs(V) (autograd's choice too)
    check(lambda x: np.linalg.eigh(x, uplo), _sym(R(5, 5)))
    check(lambda x: tuple(np.linalg.eigh(x, uplo)), R(3, 4, 4))
    check(lambda x: np.linalg.eigvalsh(x), _sym(R(4, 4)))
    w_and_abs_v = lambda x: (np.linalg.eigh(x, uplo)[0], np.abs(np.linalg.eigh(x, uplo)[1]))
    check(w_and_abs_v, C(5, 5))


@pytest.mark.parametrize("batch", [(), (4,)])
@pytest.mark.parametrize("m,n", [(3, 5), (4, 4), (5, 3)], ids=["wide", "square", "tall"])
def test_svd(batch, m, n):
    def parts(x):
        u, s, vh = np.linalg.svd(x, full_matrices=False)
        return u, s, vh

    def abs_parts(x):
        u, s, vh = np.linalg.svd(x, full_matrices=False)
        return np.abs(u), s, np.abs(vh)

    check(parts, R(*batch, m, n))
    check(abs_parts, C(*batch, m, n))
    check(lambda x: np.linalg.svd(x, compute_uv=False), R(*batch, m, n))
    check(lambda x: np.linalg.svd(x, full_matrices=False, compute_uv=False),
          C(*batch, m, n))


def test_eig():
    # eigenvalues of a real matrix may be complex; eigenvectors through abs (phase-free)
    check(lambda x: (np.abs(np.linalg.eig(x)[0]), np.abs(np.linalg.eig(x)[1])), R(6, 6))
    check(lambda x: (np.linalg.eig(x)[0], np.abs(np.linalg.eig(x)[1])), C(6, 6))
    check(lambda x: (np.linalg.eig(x)[0], np.abs(np.linalg.eig(x)[1])), C(3, 5, 5))
    check(np.linalg.eigvals, R(4, 4))


def test_cholesky():
    a = R(4, 4)
    check(lambda x: np.linalg.cholesky(x @ x.T + 4 * onp.eye(4)), a)


# --------------------------------------------------------------------------- Fourier transforms

FFT_CASES = [
    ("fft", {}), ("fft", {"norm": "ortho"}), ("fft", {"axis": 0}), ("fft", {"n": 3}),
    ("fft", {"n": 7}), ("ifft", {}), ("ifft", {"n": 3}), ("ifft", {"n": 7}),
    ("fft2", {}), ("ifft2", {}), ("fftn", {}), ("ifftn", {}),
    ("fft2", {"s": (3, 7)}), ("ifftn", {"s": (7, 3)}),
    ("rfft", {}), ("rfft", {"norm": "ortho"}), ("rfft", {"axis": 0}), ("rfft", {"n": 3}),
    ("rfft", {"n": 8}), ("rfft2", {}), ("rfftn", {}), ("rfftn", {"axes": (0,)}),
    ("rfftn", {"s": (3, 4)}), ("fftshift", {}), ("fftshift", {"axes": 1}),
    ("ifftshift", {}), ("ihfft", {}),
]


@pytest.mark.parametrize("name,kw", FFT_CASES)
def test_fft(name, kw):
    f = getattr(np.fft, name)
    x = R(5, 5) if name not in ("rfftn", "rfft2") else R(4, 6)
    check(lambda v: f(v, **kw), x)
    if not name.startswith(("r", "ih")):
        check(lambda v: f(v, **kw), x + 1j * R(*x.shape))


IRFFT_CASES = [
    ("irfft", {}), ("irfft", {"norm": "ortho"}), ("irfft", {"n": 5}), ("irfft", {"n": 9}),
    ("irfft", {"axis": 0}), ("irfft2", {}), ("irfftn", {}), ("irfftn", {"s": (4, 6)}),
    ("irfftn", {"axes": (0,)}), ("hfft", {}),
]


@pytest.mark.parametrize("name,kw", IRFFT_CASES)
def test_irfft(name, kw):
    # any complex input (NumPy reads only the real part of the first and, for even n,
    # the last entry), and one that is the spectrum of a real signal
    f = getattr(np.fft, name)
    check(lambda v: f(v, **kw), C(4, 5) / 10)
    check(lambda v: f(v, **kw), onp.fft.rfft2(R(4, 8)))


# --------------------------------------------------------------------------- NumPy functions


def test_append():
    check_args(np.append, [1.0, 2.0, 3.0], 4.0, argnums=(0, 1))
    check_args(np.append, onp.array([1.0, 2.0, 3.0]), 4.0, argnums=(0, 1))
    check_args(np.append, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [[7.0, 8.0, 9.0]],
               argnums=(0, 1), axis=0)


def test_diagonal():
    check(lambda d: np.diagonal(d, axis1=-1, axis2=-2), R(4, 4))
    check(lambda d: np.diagonal(d, axis1=-1, axis2=-2), R(3, 4, 4))
    check(lambda d: np.diagonal(d, 1), R(4, 5))


def test_gradient():
    check(np.gradient, R(10))
    check(lambda x: np.gradient(x), R(6, 6))
    for axis in (None, 0, 1, -1, (0, 1), (0, -1)):
        check(lambda x, a=axis: np.gradient(x, axis=a), R(5, 5, 5), order=1)


def test_partition():
    for x in (R(7), R(14)):
        for kth in (0, 3, 6):
            check(lambda v, k=kth: np.partition(v, k), x)
            out = np.partition(x, kth)
            assert onp.all(out[:kth] <= out[kth]) and onp.all(out[kth + 1:] >= out[kth])


def test_cast_to_int():
    inds = onp.ones(5)[:, None]

    def fun(w):
        np.concatenate((w, inds), axis=1)
        new_w = w[:, :-1]
        new_inds = np.int64(w[:, -1])        # a value, with derivative 0
        assert new_inds.dtype == np.int64
        return new_w[new_inds].sum()

    # the last column holds the indices, away from the integers (where the cast jumps)
    w = onp.vstack([R(4, 5), onp.arange(5) + 0.5]).T
    check(fun, w)
    g = grad(fun)(w)
    assert onp.all(g[:, -1] == 0)


@pytest.mark.parametrize("name,kw", [
    ("transpose", {"axes": (1, 0, 2)}), ("moveaxis", {"source": 0, "destination": 2}),
    ("repeat", {"repeats": 2, "axis": 1}), ("tile", {"reps": (1, 2, 1)}),
    ("diff", {"n": 2, "axis": 0}), ("cumsum", {"axis": 1}), ("flip", {"axis": 2}),
    ("roll", {"shift": 2, "axis": 1}), ("squeeze", {}), ("ravel", {}),
    ("rot90", {}), ("triu", {}), ("tril", {"k": -1}), ("trace", {}),
    ("atleast_3d", {}), ("expand_dims", {"axis": 1}), ("swapaxes", {"axis1": 0, "axis2": 2}),
])
def test_shape_functions(name, kw):
    f = getattr(np, name)
    x = R(3, 1, 4) if name == "squeeze" else R(3, 4, 2)
    check(lambda v: f(v, **kw), x)
    check(lambda v: f(v, **kw), x + 0.5j * R(*x.shape), order=1)


def test_concatenate_stack_split():
    a, b = R(5, 6, 4), R(4, 6, 4)
    check_args(lambda x, y: np.concatenate((x, y)), a, b, argnums=(0, 1))
    check_args(lambda x, y: np.stack([x, y], axis=1), R(2, 3), C(2, 3), argnums=(0, 1))
    check(lambda x: np.split(x, [1, 3], axis=1), R(2, 5))
    check(lambda x: np.array_split(x, 3), C(7))


def test_indexing_and_where():
    x = C(4, 5)
    check(lambda v: v[1:3, ::2], x)
    check(lambda v: v[[0, 0, 2]], x)
    check(lambda v: np.where(onp.abs(x) > 1, v, 0.0), x)


# --------------------------------------------------------------------------- complex numbers


def test_conjugate_convention_is_jax():
    # for f: C -> R, grad is the conjugate of 2 df/d(conj z): 2 conj(z) for |z|^2
    assert grad(lambda z: np.abs(z) ** 2)(1.0 + 2.0j) == 2.0 - 4.0j
    assert grad(lambda z: np.real(z * z))(1.0 + 2.0j) == 2.0 + 4.0j
    assert grad(lambda z: np.imag(z))(1.0 + 2.0j) == -1j
    assert abs(grad(np.angle)(1.0 + 2.0j) - (-0.4 - 0.2j)) < 1e-15


def test_types_of_real_and_complex_gradients():
    f = lambda x: np.sum(np.real(x))
    assert onp.isrealobj(grad(f)(2.0))
    assert onp.iscomplexobj(grad(f)(1.0j))
    g = lambda x: np.sum(np.real_if_close(x))       # real where the imaginary part is 0
    assert onp.isrealobj(grad(g)(1.0))
    assert onp.iscomplexobj(grad(g)(1.0 + 0j))
    # a real input through complex arithmetic: the gradient is real
    assert grad(lambda x: np.abs(x * (1 + 1j)) ** 2)(3.0) == 12.0


def test_angle_and_abs_of_real_inputs():
    assert grad(np.angle)(1.3) == 0.0
    assert grad(np.angle)(-1.3) == 0.0
    check(np.abs, onp.array([0.4, -1.1]))


def test_holomorphic_grad():
    f = lambda z: np.sin(z) * np.exp(z)
    z = 0.3 + 1.1j
    want = np.cos(z) * np.exp(z) + np.sin(z) * np.exp(z)
    assert abs(grad(f, holomorphic=True)(z) - want) < 1e-12
    assert abs(jacrev(f, holomorphic=True)(onp.array([z]))[0, 0] - want) < 1e-12
    assert abs(jacfwd(f, holomorphic=True)(onp.array([z]))[0, 0] - want) < 1e-12
    assert abs(hessian(lambda z: z ** 3, holomorphic=True)(z) - 6 * z) < 1e-12
    v, g = value_and_grad(lambda z: z * z, holomorphic=True)(z)
    assert v == z * z and g == 2 * z


def test_complex_output_errors_as_jax():
    with pytest.raises(TypeError, match="grad requires real-valued outputs"):
        grad(lambda z: z * z)(1.0 + 1.0j)
    with pytest.raises(TypeError, match="requires inputs with complex dtype"):
        grad(lambda z: z * z, holomorphic=True)(1.0)
    with pytest.raises(TypeError, match="requires outputs with complex dtype"):
        grad(np.abs, holomorphic=True)(1.0 + 1.0j)
    with pytest.raises(TypeError, match="jacrev requires real-valued outputs"):
        jacrev(lambda z: 2 * z)(onp.array([1 + 2j]))
    with pytest.raises(TypeError, match="jacfwd requires real-valued inputs"):
        jacfwd(np.abs)(onp.array([1 + 2j]))
    # allowed without holomorphic: real outputs of complex inputs (jacrev), complex
    # outputs of real inputs (jacfwd)
    assert abs(jacrev(np.abs)(onp.array([3 + 4j]))[0, 0] - (0.6 - 0.8j)) < 1e-15
    assert jacfwd(lambda x: x * (1 + 1j))(onp.array([1.0]))[0, 0] == 1 + 1j


def test_complex_graph_built_by_indexing_and_separate_parts():
    # autograd's test_graphs: the real and imaginary parts of one value used separately
    def f(x):
        y = x + 1j * x
        return np.real(y) ** 2 + np.imag(y) ** 3

    check(f, 0.7)
    check(lambda z: np.sum(np.abs(np.stack([z[0] * 1j, z[1]])) ** 2), C(2))


def test_complex_separate_real_and_imaginary():
    def fun(a):
        r, i = np.real(a), np.imag(a)
        return np.sqrt(r ** 2 + i ** 2)

    check(fun, R(3) + 1j * R(3))


def test_unsupported_complex_linalg_raises():
    with pytest.raises(TracerError, match="cholesky"):
        grad(lambda x: np.abs(np.linalg.cholesky(x)).sum())(C(3, 3))


# --------------------------------------------------------------------------- transforms


def test_jacobian_against_grad():
    fun = lambda x: np.sum(np.sin(x), axis=1, keepdims=True)
    a = R(1, 3)
    # JAX's grad wants a scalar output (autograd's takes any one-entry output)
    with pytest.raises(TypeError, match="scalar output"):
        grad(fun)(a)
    assert onp.allclose(grad(lambda x: fun(x)[0, 0])(a), jacobian(fun)(a)[0, 0])


def test_jacobian_higher_order():
    fun = lambda x: np.sin(np.outer(x, x)) + np.cos(np.dot(x, x))
    x = R(3)
    j = jacobian(fun)(x)
    assert j.shape == (3, 3, 3)
    h = jacobian(jacobian(fun))(x)
    assert h.shape == (3, 3, 3, 3)
    check(jacobian(fun), x, order=1)


# --------------------------------------------------------------------------- core and wrappers


@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.truediv, operator.mul,
                                operator.pow, operator.mod])
def test_binary_operators_on_python_floats(op):
    for argnum in (0, 1):
        def f(x, y):
            return op(x, y)

        a = grad(f, argnum)(0.7, 1.8)
        h = 1e-6
        args = [0.7, 1.8]
        hi, lo = list(args), list(args)
        hi[argnum] += h
        lo[argnum] -= h
        assert abs(a - (f(*hi) - f(*lo)) / (2 * h)) < 1e-6


def test_comparisons_and_predicates_have_no_gradient():
    # a boolean output has no derivative (JAX raises; so does chainrule)
    with pytest.raises(TypeError, match="real-valued outputs"):
        grad(lambda x: np.allclose(x, (x * 3.0) / 3.0))(onp.array([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="real-valued outputs"):
        grad(lambda x: x == 1.0)(1.0)

    def f(x):
        assert np.allclose(x, (x * 3.0) / 3.0)    # runs on the values
        return np.sum(x)

    check(f, onp.array([1.0, 2.0, 3.0]))
    g = lambda x: np.real(x ** 2 if np.iscomplex(x) else np.sum(x))
    check(g, 2.0)
    check(g, 2.0 + 1j)


def test_hessian_vector_and_tensor_jacobian_products():
    a = R(5, 4)
    f = lambda x: np.sum(np.sin(x) * x ** 2)
    v = R(5, 4)
    h = hessian(f)(a)
    hv = jvp(grad(f), (a,), (v,))[1]
    assert onp.allclose(hv, onp.tensordot(h, v, axes=2))
    fun = lambda x: np.roll(np.sin(x), 1)
    j = jacobian(fun)(a)
    assert onp.allclose(vjp(fun, a)[1](v)[0], onp.tensordot(v, j, axes=2))


def test_operators_defer_to_array_like_containers():
    # an object that takes part in NumPy's dispatch (xarray's DataArray, pandas' Series)
    # wraps a traced value itself, as with JAX: the tracer's operator defers to it
    class Box:
        __array_priority__ = 2000.0

        def __init__(self, data):
            self.data = data

        def __array_ufunc__(self, ufunc, method, *inputs, **kw):
            return NotImplemented

        def __rmul__(self, other):
            return Box(other * self.data)

    base = onp.array([1.0, 2.0, 3.0])
    f = lambda x: np.sum((x * Box(base)).data)
    assert grad(f)(2.0) == 6.0


def test_conjugating_functions_match_numpy_on_complex_values():
    # vdot, correlate and cov conjugate one operand in NumPy: values and derivatives
    a, b = C(4), C(4)
    assert onp.allclose(np.vdot(a, b), onp.vdot(a, b))
    assert onp.allclose(np.correlate(a, b[:2], "full"), onp.correlate(a, b[:2], "full"))
    m = C(2, 5)
    assert onp.allclose(np.cov(m), onp.cov(m))
    assert onp.allclose(np.corrcoef(m), onp.corrcoef(m))
    check_args(np.vdot, a, b, argnums=(0, 1))
    check_args(lambda x, y: np.correlate(x, y, "full"), a, b[:2], argnums=(0, 1))
    check(np.cov, m)


# --------------------------------------------------------------------------- scalars


SCALAR = [
    ("arccos", np.arccos, 0.3), ("arcsin", np.arcsin, 0.3), ("arctan", np.arctan, 0.7),
    ("neg", lambda x: -x, 0.7), ("reciprocal", np.reciprocal, 0.9),
    ("negative", np.negative, 0.4), ("sinc", lambda x: 3.0 * np.sinc(x), 4.3),
    ("power_arg1_zero", lambda y: np.power(0.0, y), 0.4),
    ("power_arg0", lambda x: np.power(x, 2.3), 1.4), ("power_arg1", lambda y: 1.7 ** y, 0.6),
]


@pytest.mark.parametrize("name,f,x", SCALAR, ids=[s[0] for s in SCALAR])
def test_scalar_functions(name, f, x):
    check(f, x)


@pytest.mark.parametrize("f", [np.arctan2, np.hypot])
def test_arctan2_hypot(f):
    for a, b in ((0.7, -1.3), (R(3), R(3)), (R(2, 3), R(3))):
        check_args(f, a, b, argnums=(0, 1))


def test_comparison_grads_are_zero():
    for a, b in ((0.7, 0.7), (R(3), R(3)), (R(2, 3), R(3))):
        for f in (lambda x, y: np.sum(x < x) + 0.0, lambda x, y: np.sum(x <= y) + 0.0,
                  lambda x, y: np.sum(x == y) + 0.0, lambda x, y: np.sum(x != y) + 0.0):
            assert onp.all(grad(f)(a, b) == 0) and onp.all(grad(f, 1)(a, b) == 0)


# --------------------------------------------------------------------------- graphs


def test_fanout_constants_and_identity():
    check(lambda x: np.sin(np.sin(x) + np.sin(x)), R(3))
    assert grad(lambda x: 1.0)(0.5) == 0.0
    assert grad(lambda x: x)(0.5) == 1.0


def test_mutating_outgrad():
    def fun(a):
        b = a + 1.0
        c = b[0] + 1.5
        d = a + b
        return np.sum(np.sin(d + c))

    check(fun, R(5))

    def cfun(a):
        b = a + 1.0j
        c = b[0] + 1.5
        d = a + b
        return np.sum(np.sin(np.real(d + c)))

    check(cfun, R(5))
    check(grad(cfun), R(5))


def test_third_derivatives():
    fun = lambda x, y: np.sin(np.sin(x) + np.sin(y))
    dy, dx = grad(fun, 1), grad(fun, 0)
    dddy = grad(grad(grad(fun, 1)))
    for f in (fun, dy, dx):
        check_args(f, 0.3, -0.8, argnums=(0, 1))
    check(lambda x: dddy(x, 0.4), 0.3, order=1)
    assert abs(grad(grad(grad(np.sin)))(0.3) + np.cos(0.3)) < 1e-12


@pytest.mark.parametrize("kw", [{"keepdims": True}, {"axis": 0}, {"axis": 1},
                                {"axis": 0, "keepdims": True}, {"axis": 1, "keepdims": True}])
def test_singleton_array_outputs(kw):
    fun = lambda x: np.sum(np.sin(x), **kw)
    x = R(3, 3) if "axis" not in kw else (R(3, 1) if kw["axis"] == 0 else R(1, 3))
    check(fun, x)
    check(lambda v: np.sum(jacobian(fun)(v)), x)


def test_assignment_into_a_traced_array_raises():
    def fun(a, b):
        a[1] = b
        return a

    with pytest.raises(TracerError, match="in-place assignment"):
        grad(lambda a: np.sum(fun(a, 3.0)))(R(5))
    # a traced value into a plain array: NumPy turns the TracerError into a ValueError
    with pytest.raises((TypeError, ValueError)):
        vjp(lambda b: fun(R(5), b), 3.0)


# --------------------------------------------------------------------------- containers


def test_dict_list_and_tuple_arguments():
    def fun(d):
        return np.sum(np.sin(d["item_1"])) + np.sum(np.cos(d["item_2"]))

    def d_fun(d):
        g = grad(fun)(d)
        return np.sum(g["item_1"]) + np.sum(np.sin(g["item_1"])) + np.sum(np.sin(g["item_2"]))

    d = {"item_1": R(5, 6), "item_2": R(4, 3), "item_X": R(2, 4)}
    check(fun, d)
    check(d_fun, d)
    assert onp.all(grad(fun)(d)["item_X"] == 0)

    def lfun(xs):
        return np.sum(np.sin(xs[0])) + np.sum(np.cos(xs[1][0] * xs[1][1]))

    check(lfun, [R(3), [R(2), R(2)]])
    check(lambda t: np.sum(np.sin(t[0]) * t[1][0]), (R(3), (R(3), 1.0)))
    check(lambda t: grad(lambda s: np.sin(s[0]) * s[1])(t)[0], (0.3, 0.7))
    # a dict built inside, read back
    check(lambda x: np.sum(dict(a=x * 2, b=np.sin(x))["b"]), R(3))
