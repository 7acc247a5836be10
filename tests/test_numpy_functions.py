"""chainrule.numpy's composite functions and linear algebra, each against central finite
differences in float64: the gradient of a random projection of the output, a JVP and a
Hessian-vector product. Each function is written once against a NumPy-like module ``m``;
tests/test_jax_edges.py computes the same cases with JAX, as its "composite" cases (the
value, grad, vjp, jvp and second derivatives, in float64 and float32)."""

from __future__ import annotations

import zlib

import numpy as onp
import pytest

import chainrule as cr
import chainrule.numpy as np
from chainrule.calculus import numerical_jacobian

R = onp.random.default_rng(0)
SPD = R.normal(size=(3, 3))
SPD = SPD @ SPD.T + 3 * onp.eye(3)
SYM = R.normal(size=(3, 3))
SYM = SYM + SYM.T


def _lst(m, xs):
    """A Python list of traced values for chainrule (its reductions take one), an array
    for JAX (whose reductions do not)."""
    return xs if m is np else m.stack(xs)


# name -> (function of (m, x), input). m is chainrule.numpy or jax.numpy.
CASES = {
    "linspace": (lambda m, x: m.linspace(x[0], x[1], 5), onp.array([0.3, 2.0])),
    "linspace_noend": (lambda m, x: m.linspace(x[:2], x[2:], 4, endpoint=False, axis=1),
                       onp.array([0.3, 2.0, -1.0, 4.0])),
    "diff": (lambda m, x: m.diff(x ** 3, n=2), onp.array([0.3, 2.0, -1.0, 4.0, 0.5])),
    "diff_axis0": (lambda m, x: m.diff(x ** 2, axis=0), R.normal(size=(3, 2))),
    "diff_prepend": (lambda m, x: m.diff(x ** 2, prepend=0.5), R.normal(size=4)),
    "triu": (lambda m, x: m.triu(x ** 2, 1), R.normal(size=(3, 4))),
    "tril": (lambda m, x: m.tril(m.sin(x), -1), R.normal(size=(2, 3, 3))),
    "atleast_2d": (lambda m, x: m.atleast_2d(x) * m.arange(3.0), R.normal(size=3)),
    "atleast_3d": (lambda m, x: m.atleast_3d(x) ** 2, R.normal(size=(2, 3))),
    "append": (lambda m, x: m.append(x, x ** 2), R.normal(size=(2, 2))),
    "append_axis": (lambda m, x: m.append(x, x ** 2, axis=1), R.normal(size=(2, 2))),
    "column_stack": (lambda m, x: m.column_stack([x, m.sin(x)]), R.normal(size=3)),
    "dstack": (lambda m, x: m.dstack([x, m.sin(x)]), R.normal(size=(2, 3))),
    "roll": (lambda m, x: m.roll(x, 2) * m.arange(5.0), R.normal(size=5)),
    "roll_axes": (lambda m, x: m.roll(x, (1, -1), axis=(0, 1)) * m.arange(6.0).reshape(2, 3),
                  R.normal(size=(2, 3))),
    "pad_constant": (lambda m, x: m.pad(x, ((1, 2), (0, 1)), constant_values=0.5) ** 2,
                     R.normal(size=(2, 3))),
    "pad_edge": (lambda m, x: m.pad(x, 2, mode="edge") * m.arange(7.0), R.normal(size=3)),
    "pad_reflect": (lambda m, x: m.pad(x, (1, 2), mode="reflect") * m.arange(7.0),
                    R.normal(size=4)),
    "pad_wrap": (lambda m, x: m.pad(x, (3, 1), mode="wrap") * m.arange(8.0), R.normal(size=4)),
    "kron": (lambda m, x: m.kron(x, m.sin(x)), R.normal(size=(2, 3))),
    "kron_vec": (lambda m, x: m.kron(x[:2], x), R.normal(size=3)),
    "split": (lambda m, x: m.split(x, 3)[1] * m.split(x, [1, 4])[2][:2], R.normal(size=6)),
    "array_split": (lambda m, x: m.array_split(x, 4, axis=1)[3] ** 2, R.normal(size=(2, 7))),
    "hsplit": (lambda m, x: m.hsplit(x, 2)[1] * 3.0, R.normal(size=(2, 4))),
    "vsplit": (lambda m, x: m.vsplit(x, 2)[0] ** 2, R.normal(size=(4, 2))),
    "dsplit": (lambda m, x: m.dsplit(x, [1])[1] ** 2, R.normal(size=(2, 2, 3))),
    "diagonal_nd": (lambda m, x: m.diagonal(x ** 2, 1, 0, 2), R.normal(size=(3, 2, 4))),
    "trace_nd": (lambda m, x: m.trace(x ** 2, -1, 2, 0), R.normal(size=(3, 2, 4))),
    "diag_k": (lambda m, x: m.diag(x ** 2, 2) * m.arange(25.0).reshape(5, 5), R.normal(size=3)),
    "diag_neg_k": (lambda m, x: m.diag(m.sin(x), -1), R.normal(size=3)),
    "diag_of_matrix_k": (lambda m, x: m.diag(x ** 2, -1), R.normal(size=(3, 4))),
    "meshgrid": (lambda m, x: m.meshgrid(x[:2], x ** 2)[0] * m.meshgrid(x[:2], x)[1],
                 R.normal(size=3)),
    "meshgrid_ij": (lambda m, x: m.meshgrid(x, x[:2] ** 2, indexing="ij")[1],
                    R.normal(size=3)),
    "sum_of_list": (lambda m, x: m.sum(_lst(m, [x[0] ** 2, x[1], x[0] * x[1]])), R.normal(size=2)),
    "mean_of_list": (lambda m, x: m.mean(_lst(m, [x, x ** 2]), axis=0), R.normal(size=2)),
    "max_of_list": (lambda m, x: m.max(_lst(m, [x[0], 2.0 * x[1]])), onp.array([0.5, 0.1])),
    "einsum_sublist": (lambda m, x: m.einsum(x, [0, 1], x, [1, 2], [0, 2]),
                       R.normal(size=(2, 2))),
    "round_cast": (lambda m, x: x * m.round(x * 3) + m.floor(x) + x.astype(m.int32),
                   onp.array([0.4, 1.3, -2.2])),
    "real_imag": (lambda m, x: m.real(x) ** 2 + m.imag(x) + m.conj(x) + m.angle(x),
                  onp.array([0.4, -1.3])),
    "fabs_sign": (lambda m, x: m.fabs(x) * m.sign(x) + m.ceil(x), onp.array([0.4, -1.3])),
    "mod": (lambda m, x: m.mod(x, 0.7) * m.remainder(2.0, x) + m.fmod(x, -0.9),
            onp.array([0.45, -1.3, 2.6])),
    "norm_vec_orders": (lambda m, x: m.stack([m.linalg.norm(x, o) for o in
                                              (1, 2, 3, m.inf, -m.inf, -1, 0.5)]),
                        onp.array([0.4, -1.3, 2.6])),
    "norm_mat_orders": (lambda m, x: m.stack([m.linalg.norm(x, o) for o in
                                              ("fro", "nuc", 1, -1, m.inf, -m.inf, 2, -2)]),
                        R.normal(size=(3, 3))),
    "norm_axis": (lambda m, x: m.linalg.norm(x, 1, axis=1), R.normal(size=(2, 3))),
    "cholesky": (lambda m, x: m.linalg.cholesky(x @ x.T + 3 * m.eye(3)), R.normal(size=(3, 3))),
    "eigh_values": (lambda m, x: m.linalg.eigh(x + x.T)[0], R.normal(size=(3, 3))),
    "eigh_vectors": (lambda m, x: m.abs(m.linalg.eigh(x + x.T)[1]), R.normal(size=(3, 3))),
    "eigvalsh": (lambda m, x: m.linalg.eigvalsh(x @ x.T), R.normal(size=(3, 3))),
    "svd_values": (lambda m, x: m.linalg.svd(x, compute_uv=False), R.normal(size=(3, 2))),
    "svd_vectors": (lambda m, x: m.abs(m.linalg.svd(x, full_matrices=False)[0]) +
                    m.abs(m.linalg.svd(x, full_matrices=False)[2]).sum(),
                    R.normal(size=(3, 3))),
    "qr": (lambda m, x: m.linalg.qr(x)[1] + m.sum(m.linalg.qr(x)[0] ** 3),
           R.normal(size=(3, 3))),
    "slogdet": (lambda m, x: m.linalg.slogdet(x)[1] * m.linalg.slogdet(x)[0],
                R.normal(size=(3, 3))),
    "pinv": (lambda m, x: m.linalg.pinv(x), R.normal(size=(3, 2))),
    "solve": (lambda m, x: m.linalg.solve(x, x[0]), R.normal(size=(3, 3))),
    "det_batch": (lambda m, x: m.linalg.det(x), R.normal(size=(2, 3, 3))),
    "inv": (lambda m, x: m.linalg.inv(x), R.normal(size=(3, 3))),
    "matrix_power": (lambda m, x: m.linalg.matrix_power(x, 3), R.normal(size=(2, 2))),
    "multi_dot": (lambda m, x: m.linalg.multi_dot([x, x.T, x]), R.normal(size=(2, 2))),
    "cross": (lambda m, x: m.cross(x, x ** 2), R.normal(size=3)),
    "cumprod": (lambda m, x: m.cumprod(x), R.normal(size=4)),
    "nansum": (lambda m, x: m.nansum(x ** 2) + m.nanmean(x), R.normal(size=4)),
    "average": (lambda m, x: m.average(x, weights=m.arange(1.0, 5.0)), R.normal(size=4)),
    "average_axis": (lambda m, x: m.average(x, axis=0, weights=x[:, 0] ** 2 + 1),
                     R.normal(size=(2, 3))),
    "ptp": (lambda m, x: m.ptp(x), onp.array([0.4, -1.3, 2.6])),
    "cov": (lambda m, x: m.cov(x), R.normal(size=(2, 4))),
    "corrcoef": (lambda m, x: m.corrcoef(x), R.normal(size=(2, 4))),
    "interp": (lambda m, x: m.interp(onp.array([0.5, 1.5, 2.2]), onp.array([0.0, 1.0, 2.0, 3.0]),
                                     x), R.normal(size=4)),
    "polyval": (lambda m, x: m.polyval(x, 0.7), R.normal(size=4)),
    "convolve": (lambda m, x: m.convolve(x, m.arange(1.0, 4.0)), R.normal(size=4)),
    "flip_rot": (lambda m, x: m.rot90(x) * m.fliplr(x).T + m.flipud(x).T, R.normal(size=(2, 3))),
    "sinc_etc": (lambda m, x: m.sinc(x) + m.square(x) + m.logaddexp2(x, 0.3) + m.heaviside(x, 0.5),
                 onp.array([0.4, -1.3, 2.6])),
    "gradient": (lambda m, x: m.gradient(x ** 2)[1] + m.gradient(x, 0.5, axis=0),
                 R.normal(size=(3, 4))),
    "r_c_": (lambda m, x: m.sum(m.r_[x[0], x[1] ** 2]) * m.c_[x[0], x[1]], R.normal(size=(2, 3))),
    "rollaxis": (lambda m, x: m.rollaxis(x, 2) ** 2, R.normal(size=(2, 3, 4))),
    "nan_to_num": (lambda m, x: m.nan_to_num(x ** 2), R.normal(size=3)),
    "select": (lambda m, x: m.select([x < 0, x > 1], [x ** 2, m.sin(x)], 0.5),
               onp.array([0.4, -1.3, 2.6])),
}


def _directions(name, x, out_shape):
    """A projection w of the output and a tangent t of the input, fixed per case."""
    r = onp.random.default_rng(zlib.crc32(name.encode()))
    return r.normal(size=out_shape), r.normal(size=onp.shape(x))


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_finite_differences(name):
    f, x = CASES[name]
    f = (lambda x, f=f: f(np, x))
    w, t = _directions(name, x, onp.shape(f(x)))

    def fs(x):
        return np.sum(f(x) * w)

    gr = cr.grad(fs)(x)
    onp.testing.assert_allclose(gr, numerical_jacobian(fs, x), rtol=1e-5, atol=1e-6)
    # the JVP and the VJP are transposes: <w, J t> = <J^T w, t>
    _, jt = cr.jvp(f, (x,), (t,))
    onp.testing.assert_allclose(onp.sum(jt * w), onp.sum(gr * t), rtol=1e-8, atol=1e-10)
    # second derivatives: a Hessian-vector product, forward over reverse, against central
    # differences of the gradient along t
    _, hv = cr.jvp(cr.grad(fs), (x,), (t,))
    e = 1e-5
    fd = (cr.grad(fs)(x + e * t) - cr.grad(fs)(x - e * t)) / (2 * e)
    onp.testing.assert_allclose(hv, fd, rtol=1e-4, atol=1e-5)
