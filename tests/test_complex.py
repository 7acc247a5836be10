"""Complex inputs against JAX as the oracle: grad of real-valued functions of complex
arrays, vjp with complex cotangents, jvp with complex tangents, and holomorphic
Jacobians, in float64 (complex128). chainrule follows JAX's conventions (docs/math.md)."""

from __future__ import annotations

import numpy as onp
import pytest

import chainrule.numpy as np
from chainrule.calculus import grad, jacfwd, jacrev, jvp, vjp

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

rs = onp.random.RandomState(7)


def C(*shape):
    return rs.randn(*shape) + 1j * rs.randn(*shape)


def _herm(a):
    return a + a.conj().T


# (name, chainrule function, JAX function, input): real-valued functions of complex input
REAL_VALUED = [
    ("abs2", lambda z: np.sum(np.abs(z) ** 2), lambda z: jnp.sum(jnp.abs(z) ** 2), C(4)),
    ("abs", lambda z: np.sum(np.abs(z)), lambda z: jnp.sum(jnp.abs(z)), C(4)),
    ("real", lambda z: np.sum(np.real(z * z)), lambda z: jnp.sum(jnp.real(z * z)), C(4)),
    ("imag", lambda z: np.sum(np.imag(np.exp(z))), lambda z: jnp.sum(jnp.imag(jnp.exp(z))),
     C(4)),
    ("angle", lambda z: np.sum(np.angle(z)), lambda z: jnp.sum(jnp.angle(z)), C(4)),
    ("conj", lambda z: np.sum(np.real(np.conj(z) * np.sin(z))),
     lambda z: jnp.sum(jnp.real(jnp.conj(z) * jnp.sin(z))), C(4)),
    ("var", lambda z: np.var(z), lambda z: jnp.var(z), C(5)),
    ("std", lambda z: np.std(z, axis=0).sum(), lambda z: jnp.std(z, axis=0).sum(), C(3, 2)),
    ("norm", lambda z: np.linalg.norm(z), lambda z: jnp.linalg.norm(z), C(3, 2)),
    ("norm3", lambda z: np.linalg.norm(z, ord=3), lambda z: jnp.linalg.norm(z, ord=3), C(5)),
    ("nuc", lambda z: np.linalg.norm(z, ord="nuc"), lambda z: jnp.linalg.norm(z, ord="nuc"),
     C(3, 4)),
    ("matmul", lambda z: np.sum(np.abs(z @ z.T)), lambda z: jnp.sum(jnp.abs(z @ z.T)),
     C(3, 3)),
    ("einsum", lambda z: np.real(np.einsum("ij,jk,ki->", z, z, z)),
     lambda z: jnp.real(jnp.einsum("ij,jk,ki->", z, z, z)), C(3, 3)),
    ("log_sqrt", lambda z: np.sum(np.real(np.log(z) * np.sqrt(z))),
     lambda z: jnp.sum(jnp.real(jnp.log(z) * jnp.sqrt(z))), C(4)),
    ("power", lambda z: np.sum(np.abs(z ** 2.5)), lambda z: jnp.sum(jnp.abs(z ** 2.5)), C(4)),
    ("eigvalsh", lambda a: np.sum(np.linalg.eigvalsh(a) ** 3),
     lambda a: jnp.sum(jnp.linalg.eigvalsh(a) ** 3), _herm(C(4, 4))),
    ("eigh_vectors", lambda a: np.sum(np.abs(np.linalg.eigh(a)[1][:, 0]) ** 4),
     lambda a: jnp.sum(jnp.abs(jnp.linalg.eigh(a)[1][:, 0]) ** 4), _herm(C(4, 4))),
    ("svdvals", lambda a: np.sum(np.linalg.svd(a, compute_uv=False) ** 2),
     lambda a: jnp.sum(jnp.linalg.svd(a, compute_uv=False) ** 2), C(3, 5)),
    ("svd_u", lambda a: np.sum(np.abs(np.linalg.svd(a, full_matrices=False)[0]) ** 3),
     lambda a: jnp.sum(jnp.abs(jnp.linalg.svd(a, full_matrices=False)[0]) ** 3), C(5, 3)),
    ("svd_vh", lambda a: np.sum(np.abs(np.linalg.svd(a, full_matrices=False)[2]) ** 3),
     lambda a: jnp.sum(jnp.abs(jnp.linalg.svd(a, full_matrices=False)[2]) ** 3), C(3, 5)),
    ("inv_det", lambda a: np.abs(np.linalg.det(np.linalg.inv(a))),
     lambda a: jnp.abs(jnp.linalg.det(jnp.linalg.inv(a))), C(3, 3)),
]


@pytest.mark.parametrize("name,f,jf,z", REAL_VALUED, ids=[r[0] for r in REAL_VALUED])
def test_grad_of_real_valued_functions_is_jax(name, f, jf, z):
    want = onp.asarray(jax.grad(jf)(z))
    got = grad(f)(z)
    assert onp.iscomplexobj(got)
    assert onp.allclose(got, want, rtol=1e-9, atol=1e-11), (got, want)


# complex-valued functions: vjp with a complex cotangent and jvp with a complex tangent
COMPLEX_VALUED = [
    ("exp", np.exp, jnp.exp, C(3)), ("conj", np.conj, jnp.conj, C(3)),
    ("real", np.real, jnp.real, C(3)), ("abs", np.abs, jnp.abs, C(3)),
    ("mul_conj", lambda z: z * np.conj(z[::-1]), lambda z: z * jnp.conj(z[::-1]), C(3)),
    ("real_to_complex", lambda x: x * (1 + 2j) + np.exp(1j * x),
     lambda x: x * (1 + 2j) + jnp.exp(1j * x), rs.randn(3)),
    ("kron", lambda z: np.kron(z, np.conj(z)), lambda z: jnp.kron(z, jnp.conj(z)), C(2, 2)),
    ("eigvals", lambda a: np.linalg.eigvals(a), lambda a: jnp.linalg.eigvals(a), C(3, 3)),
]


@pytest.mark.parametrize("name,f,jf,z", COMPLEX_VALUED, ids=[r[0] for r in COMPLEX_VALUED])
def test_vjp_and_jvp_are_jax(name, f, jf, z):
    out, pull = vjp(f, z)
    jout, jpull = jax.vjp(jf, z)
    ct = C(*onp.shape(out)) if onp.iscomplexobj(out) else rs.randn(*onp.shape(out))
    assert onp.allclose(pull(ct)[0], jpull(ct)[0], rtol=1e-9, atol=1e-11)
    t = C(*z.shape) if onp.iscomplexobj(z) else rs.randn(*z.shape)
    if name == "eigvals":   # JAX's eig has forward mode only on CPU; compare the values
        assert onp.allclose(onp.sort_complex(out), onp.sort_complex(onp.asarray(jout)))
        return
    assert onp.allclose(jvp(f, (z,), (t,))[1], jax.jvp(jf, (z,), (t,))[1], rtol=1e-9,
                        atol=1e-11)


def test_holomorphic_jacobians_are_jax():
    f = lambda z: np.sin(z) * z[::-1]
    jf = lambda z: jnp.sin(z) * z[::-1]
    z = C(3)
    want = onp.asarray(jax.jacrev(jf, holomorphic=True)(z))
    assert onp.allclose(jacrev(f, holomorphic=True)(z), want)
    assert onp.allclose(jacfwd(f, holomorphic=True)(z), want)
    assert onp.allclose(grad(lambda z: np.sum(f(z)), holomorphic=True)(z),
                        jax.grad(lambda z: jnp.sum(jf(z)), holomorphic=True)(z))


def test_jacrev_of_a_real_output_and_jacfwd_of_a_complex_output_are_jax():
    z = C(3)
    assert onp.allclose(jacrev(lambda z: np.abs(z) ** 3)(z),
                        jax.jacrev(lambda z: jnp.abs(z) ** 3)(z))
    x = rs.randn(3)
    assert onp.allclose(jacfwd(lambda x: np.exp(1j * x))(x),
                        jax.jacfwd(lambda x: jnp.exp(1j * x))(x))


def test_det_of_a_singular_complex_matrix_is_jax():
    # the adjugate where the inverse does not exist: conj(U) ... conj(V^H) for complex A
    r = onp.random.RandomState(3)
    a = (r.randn(3, 2) + 1j * r.randn(3, 2)) @ (r.randn(2, 3) + 1j * r.randn(2, 3))
    f = lambda x: np.real(np.linalg.det(x) * (1 + 2j))
    jf = lambda x: jnp.real(jnp.linalg.det(x) * (1 + 2j))
    assert onp.allclose(grad(f)(a), jax.grad(jf)(a))
