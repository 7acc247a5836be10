"""vmap against JAX's (an oracle, run in a child process: JAX starts threads and other
tests fork): the same functions, in_axes, out_axes and compositions give the same values,
and the same misuse raises the same kind of error."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as onp
import pytest

import chainrule as cr
import chainrule.numpy as cnp


def _data():
    r = onp.random.default_rng(0)
    return {"W": r.normal(size=(4, 3)), "b": r.normal(size=4), "X": r.normal(size=(5, 3)),
            "Y": onp.eye(4)[[0, 1, 2, 3, 0]], "A": r.normal(size=(2, 5, 3)),
            "v": r.normal(size=3), "M": r.normal(size=(3, 5, 2))}


def _cases(t, m):
    """name -> (a function made with the transforms ``t`` and the NumPy module ``m``,
    argument names)."""
    def loss(params, x, y):
        W, b = params
        z = m.tanh(W @ x + b)
        return m.log(m.sum(m.exp(z))) - m.sum(y * z)

    return {
        "per_example_grads": (t.vmap(t.grad(loss), in_axes=(None, 0, 0)), ("Wb", "X", "Y")),
        "grad_of_mean_of_vmap": (
            t.grad(lambda p, X, Y: m.mean(t.vmap(loss, in_axes=(None, 0, 0))(p, X, Y))),
            ("Wb", "X", "Y")),
        "out_axes": (t.vmap(lambda x, v: (m.outer(x, v), m.sum(x * v)), in_axes=(0, None),
                            out_axes=(1, 0)), ("X", "v")),
        "negative_in_axes": (t.vmap(lambda a: m.sum(m.sin(a) * a, axis=0), in_axes=-1),
                             ("M",)),
        "nested": (t.vmap(t.vmap(lambda x, y: m.dot(x, y), in_axes=(0, None)),
                          in_axes=(None, 1)), ("X", "M")),
        "nested_axis_1": (t.vmap(t.vmap(lambda a: m.max(a) - m.min(a), in_axes=1)), ("A",)),
        "jacrev": (t.vmap(t.jacrev(lambda x, W: m.tanh(W @ x)), in_axes=(0, None)),
                   ("X", "W")),
        "hessian": (t.vmap(t.hessian(lambda x: m.sum(m.sin(x) * x[::-1]) ** 2)), ("X",)),
        "jvp": (t.vmap(lambda x, u: t.jvp(lambda y: m.exp(y) * m.sum(y), (x,), (u,))),
                ("X", "X")),
        "unmapped_output": (t.vmap(lambda x: m.ones(2) * 3.0), ("X",)),
        "where_and_relu": (t.vmap(t.grad(lambda x: m.sum(m.where(x > 0, x, 0.1 * x) ** 2 +
                                                       m.maximum(x, 0.2)))), ("X",)),
        "matmul_batched_both": (t.vmap(lambda a, b: a @ b, in_axes=(1, 1)), ("A", "M")),
    }


ERRORS = {  # name -> (in_axes, out_axes, arguments)
    "inconsistent_sizes": ((0, 0), 0, ("X", "A")),
    "axis_out_of_range": (2, 0, ("X",)),
    "negative_axis_out_of_range": (-3, 0, ("X",)),
    "out_axes_out_of_range": (0, 3, ("X",)),
    "no_mapped_argument": (None, 0, ("X",)),
}


class _Jax:
    def __init__(self):
        import jax

        self.vmap, self.grad, self.jacrev, self.hessian, self.jvp = (
            jax.vmap, jax.grad, jax.jacrev, jax.hessian, jax.jvp)


class _Chainrule:
    vmap, grad, jacrev, hessian, jvp = cr.vmap, cr.grad, cr.jacrev, cr.hessian, cr.jvp


def _args(names, d, asarray):
    out = []
    for n in names:
        out.append((asarray(d["W"]), asarray(d["b"])) if n == "Wb" else asarray(d[n]))
    return out


def _leaves(x):
    if isinstance(x, (tuple, list)):
        return [v for e in x for v in _leaves(e)]
    return [onp.asarray(x)]


def jax_references(path):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    d = _data()
    out = {}
    for name, (f, names) in _cases(_Jax(), jnp).items():
        for k, leaf in enumerate(_leaves(f(*_args(names, d, jnp.asarray)))):
            out[f"{name}/{k}"] = leaf
    for name, (ia, oa, names) in ERRORS.items():
        try:
            jax.vmap(lambda *a: a[0] * 2.0, in_axes=ia, out_axes=oa)(
                *_args(names, d, jnp.asarray))
            out[f"error/{name}"] = onp.array("none")
        except Exception as e:  # noqa: BLE001 (the oracle's kind of error is the result)
            out[f"error/{name}"] = onp.array(type(e).__name__)
    onp.savez(path, **out)


@pytest.fixture(scope="module")
def jax_ref(tmp_path_factory):
    pytest.importorskip("jax")
    path = tmp_path_factory.mktemp("jaxvmap") / "ref.npz"
    code = (f"import sys; sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r}); "
            f"import test_vmap_jax as T; T.jax_references({str(path)!r})")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=600)
    with onp.load(path) as z:
        return dict(z)


@pytest.mark.parametrize("name", sorted(_cases(_Chainrule, cnp)))
def test_vmap_agrees_with_jax(name, jax_ref):
    f, names = _cases(_Chainrule, cnp)[name]
    got = _leaves(f(*_args(names, _data(), onp.asarray)))
    want = [jax_ref[f"{name}/{k}"] for k in range(len(got))]
    assert f"{name}/{len(got)}" not in jax_ref, "JAX returned more outputs"
    for g, w in zip(got, want):
        assert g.shape == w.shape, name
        onp.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_vmap_errors_as_jax(name, jax_ref):
    ia, oa, names = ERRORS[name]
    want = str(jax_ref[f"error/{name}"])
    assert want == "ValueError"
    with pytest.raises(ValueError):
        cr.vmap(lambda *a: a[0] * 2.0, in_axes=ia, out_axes=oa)(*_args(names, _data(),
                                                                       onp.asarray))
