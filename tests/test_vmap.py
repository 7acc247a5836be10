"""vmap: every primitive of the table batched, against a Python loop and a stack; vmap
composed with the transforms (per-example gradients, nested vmap, vmap of jacrev and
hessian, grad of vmap); and the errors."""

from __future__ import annotations

from collections import namedtuple

import numpy as onp
import pytest

import chainrule as cr
import chainrule.numpy as np
from chainrule.calculus import PRIMITIVES, grad, hessian, jacfwd, jacrev, jvp, vjp, vmap
from chainrule.calculus import rules as R

NB = 5          # the batch size: unlike every size of one example below
TOL = dict(rtol=1e-12, atol=1e-12, equal_nan=True)


def rng(seed):
    return onp.random.default_rng(seed)


def _spd(r, n=3):
    a = r.normal(size=(n, n))
    return a @ a.T + n * onp.eye(n)


# One example's arguments for each primitive, as ``case(r) -> (args, kwargs, arrays)``
# (``arrays``: the positions of the arguments that can be batched). Element-wise ufuncs
# are built from the ufunc's arity; every other primitive needs an entry here, and a
# primitive with neither fails test_every_primitive_has_a_case.
DOMAIN = {"arccosh": (1.2, 3.0), "log": (0.2, 3.0), "log2": (0.2, 3.0), "log10": (0.2, 3.0),
          "sqrt": (0.2, 3.0), "arcsin": (-0.9, 0.9), "arccos": (-0.9, 0.9),
          "arctanh": (-0.9, 0.9), "reciprocal": (0.3, 2.0), "divide": (0.3, 2.0),
          "power": (0.3, 2.0), "mod": (1.0, 3.0), "fmod": (1.0, 3.0), "log1p": (0.0, 2.0)}


def _u(r, shape, name=""):
    lo, hi = DOMAIN.get(name, (-2.0, 2.0))
    return r.uniform(lo, hi, size=shape)


def _unary_case(name):
    return lambda r: ((_u(r, (3, 4), name),), {}, (0,))


def _binary_cases(name):
    # rank differences both ways, and equal ranks: broadcasting of one example is kept
    return [lambda r: ((_u(r, (3, 4), name), _u(r, (4,), name)), {}, (0, 1)),
            lambda r: ((_u(r, (4,), name), _u(r, (3, 4), name)), {}, (0, 1)),
            lambda r: ((_u(r, (3, 1), name), _u(r, (1, 4), name)), {}, (0, 1))]


def _idx(idx, shape=(3, 4, 2)):
    return R.normalize_index(idx, len(shape))


INDICES = [(1,), (slice(None, None, -1),), (Ellipsis, 0), (onp.array([0, 2, 2, 1]),),
           (slice(1, None), onp.array([1, 0])), (onp.array([[0, 1], [2, 2]]),),
           (onp.array([True, False, True]),),
           (onp.array([0, 2]), slice(None), onp.array([1, 1])),
           (0, slice(None), onp.array([1, 0, 1])), (slice(0, 2), 1, slice(None, None, 2)),
           (onp.array([0, 2]), onp.array([[1], [3]]))]

MATMUL = [((3, 4), (4,)), ((4,), (4, 2)), ((3, 4), (4, 2)), ((4,), (4,)), ((2, 3, 4), (4, 2)),
          ((3, 4), (2, 4, 5)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)), ((2, 3, 4), (2, 4, 2))]
EINSUM = [("ij,jk->ik", (3, 4), (4, 2)), ("i,i->", (4,), (4,)), ("ij->j", (3, 4)),
          ("i,j->ij", (3,), (4,)), ("...ij,jk->...ik", (2, 3, 4), (4, 2)),
          ("ij,jk,kl->il", (2, 3), (3, 4), (4, 2)), ("ii->i", (3, 3))]

def _c(r, shape):
    return r.normal(size=shape) + 1j * r.normal(size=shape)


CASES = {
    "round": [lambda r: ((_u(r, (3, 4)) * 10, 1), {}, (0,))],
    "sigmoid": [_unary_case("sigmoid")], "relu": [_unary_case("relu")],
    "softplus": [_unary_case("softplus")],
    "power_c": [lambda r: ((_u(r, (3, 4)), onp.array([0.0, 1.0, 2.0, 0.5])), {}, (0, 1))],
    "where": [lambda r: ((r.uniform(size=(3, 4)) > 0.5, _u(r, (3, 4)), _u(r, (4,))), {},
                         (0, 1, 2)),
              lambda r: ((r.uniform(size=(4,)) > 0.5, _u(r, (3, 1)), 0.0), {}, (0, 1))],
    "softmax": [lambda r: ((_u(r, (3, 4)), -1), {}, (0,)),
                lambda r: ((_u(r, (3, 4)), -2), {}, (0,))],
    "cumsum": [lambda r: ((_u(r, (3, 4)), -2), {}, (0,)),
               lambda r: ((_u(r, (3, 4)), -1), {}, (0,))],
    "matmul": [lambda r, sa=sa, sb=sb: ((r.normal(size=sa), r.normal(size=sb)), {}, (0, 1))
               for sa, sb in MATMUL],
    "einsum": [lambda r, e=e: (tuple(r.normal(size=s) for s in e[1:]), {"spec": e[0]},
                               tuple(range(len(e) - 1))) for e in EINSUM],
    "reshape": [lambda r: ((_u(r, (3, 4)), (2, 6)), {}, (0,)),
                lambda r: ((_u(r, (3, 4)), (-1,)), {}, (0,)),
                lambda r: ((_u(r, ()), (1, 1)), {}, (0,))],
    "broadcast_to": [lambda r: ((_u(r, (4,)), (3, 4)), {}, (0,)),
                     lambda r: ((_u(r, (3, 1)), (2, 3, 4)), {}, (0,))],
    "transpose": [lambda r: ((_u(r, (2, 3, 4)), (2, 0, 1)), {}, (0,)),
                  lambda r: ((_u(r, (3, 4)), (1, 0)), {}, (0,))],
    "astype": [lambda r: ((_u(r, (3, 4)), onp.dtype(onp.float32)), {}, (0,))],
    "concatenate": [lambda r: ((_u(r, (3, 4)), _u(r, (2, 4))), {"axis": -2}, (0, 1)),
                    lambda r: ((_u(r, (3, 4)), _u(r, (3, 1)), _u(r, (3, 2))), {"axis": -1},
                               (0, 1, 2))],
    "getitem": [lambda r, i=i: ((_u(r, (3, 4, 2)), _idx(i)), {}, (0,)) for i in INDICES],
    "untake": [lambda r: ((_u(r, (2, 2)), _idx((onp.array([0, 2]),), (3, 2)), (3, 2), 2), {},
                          (0,)),
               lambda r: ((_u(r, (4,)), _idx((onp.array([0, 2, 2, 1]),), (3,)), (3,), 1), {},
                          (0,)),
               lambda r: ((_u(r, (2,)), _idx((1, slice(0, 2)), (3, 4)), (3, 4), 1), {},
                          (0,))],
    "inv": [lambda r: ((_spd(r),), {}, (0,))], "det": [lambda r: ((r.normal(size=(3, 3)),), {},
                                                                  (0,))],
    "logabsdet": [lambda r: ((_spd(r),), {}, (0,))],
    "pinv": [lambda r: ((r.normal(size=(4, 3)),), {}, (0,))],
    "cholesky": [lambda r: ((_spd(r),), {}, (0,))],
    "eigh_w": [lambda r: ((_spd(r),), {}, (0,))], "eigh_v": [lambda r: ((_spd(r),), {}, (0,))],
    "svd_s": [lambda r: ((r.normal(size=(4, 3)),), {}, (0,))],
    "svd_u": [lambda r: ((r.normal(size=(4, 3)),), {}, (0,))],
    "svd_vh": [lambda r: ((r.normal(size=(3, 4)),), {}, (0,))],
    "qr_q": [lambda r: ((r.normal(size=(4, 3)),), {}, (0,))],
    "qr_r": [lambda r: ((r.normal(size=(4, 3)),), {}, (0,))],
    "eig_w": [lambda r: ((r.normal(size=(3, 3)),), {}, (0,))],
    "eig_v": [lambda r: ((r.normal(size=(3, 3)),), {}, (0,))],
    "fft": [lambda r: ((_c(r, (3, 4)), 4, -1, "backward", False), {}, (0,)),
            lambda r: ((_c(r, (3, 4)), 5, -2, "ortho", True), {}, (0,))],
    "rfft": [lambda r: ((r.normal(size=(3, 4)), 4, -1, "backward"), {}, (0,)),
             lambda r: ((r.normal(size=(3, 4)), 6, -2, "forward"), {}, (0,))],
    "irfft": [lambda r: ((_c(r, (3, 4)), 6, -1, "backward"), {}, (0,)),
              lambda r: ((_c(r, (3, 4)), 4, -2, "ortho"), {}, (0,))],
}
for _n in ("real", "imag", "conj", "angle"):
    CASES[_n] = [lambda r: ((_c(r, (3, 4)),), {}, (0,)),
                 lambda r: ((r.normal(size=(3, 4)),), {}, (0,))]
for _n in ("sum", "mean", "max", "min", "prod", "logsumexp"):
    CASES[_n] = [lambda r: ((_u(r, (3, 4)), (-1,), False), {}, (0,)),
                 lambda r: ((_u(r, (3, 4)), (-2, -1), True), {}, (0,)),
                 lambda r: ((_u(r, (2, 3, 4)), (-3, -1), False), {}, (0,))]


def cases_of(name):
    p = PRIMITIVES[name]
    if name in CASES:
        return CASES[name]
    if isinstance(p.numpy, onp.ufunc):
        return [_unary_case(name)] if p.numpy.nin == 1 else _binary_cases(name)
    return []


def test_every_primitive_has_a_case_and_a_batching_rule():
    missing = [n for n in PRIMITIVES if not cases_of(n)]
    assert not missing, f"no vmap test case for {missing}: add one to CASES"
    no_rule = [n for n, p in PRIMITIVES.items() if p.batch is None]
    assert not no_rule, f"primitives without a batching rule: {no_rule}"


def _patterns(arrays, ndims):
    """(name, {argument position: batch axis}): the first array argument, the second, all
    of them, all at axis 1 (where an example has an axis), and the last axis."""
    out = [("first", {arrays[0]: 0})]
    if len(arrays) > 1:
        out.append(("second", {arrays[1]: 0}))
        out.append(("all", {i: 0 for i in arrays}))
    out.append(("axis1", {i: (1 if ndims[i] >= 1 else 0) for i in arrays}))
    out.append(("last", {arrays[0]: -1}))
    return out


def _loop(f, samples, axes, nargs):
    """The reference: a Python loop over the examples, stacked."""
    outs = []
    for b in range(NB):
        args = [samples[i][b] if i in axes else samples[i][0] for i in range(nargs)]
        outs.append(f(*args))
    return onp.stack([onp.asarray(o) for o in outs])


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_vmap_every_primitive_against_a_loop(name):
    p = PRIMITIVES[name]
    cases = cases_of(name)
    assert cases and p.batch is not None, f"{name}: no case or no batching rule"
    calls = [0]
    impl = p.impl

    def counting(*a, **k):
        calls[0] += 1
        return impl(*a, **k)

    checked = 0
    for c, case in enumerate(cases):
        # NB different examples (one case builder, NB seeds) for each argument
        per = [case(rng(100 * c + b)) for b in range(NB)]
        args0, kwargs, arrays = per[0]
        nargs = len(args0)
        samples = [[per[b][0][i] for b in range(NB)] for i in range(nargs)]
        ndims = [onp.ndim(a) if i in arrays else 0 for i, a in enumerate(args0)]
        f = lambda *a: p(*a, **kwargs)  # noqa: B023
        for pname, axes in _patterns(arrays, ndims):
            want = _loop(f, samples, axes, nargs)
            call = []
            in_axes = []
            for i in range(nargs):
                if i in axes:
                    call.append(onp.stack([onp.asarray(s) for s in samples[i]], axes[i]))
                    in_axes.append(axes[i])
                else:
                    call.append(samples[i][0])
                    in_axes.append(None)
            calls[0] = 0
            p.impl = counting
            try:
                with onp.errstate(all="ignore"):
                    got = vmap(f, in_axes=tuple(in_axes))(*call)
            finally:
                p.impl = impl
            assert 1 <= calls[0] < NB, f"{name} case {c} {pname}: {calls[0]} calls"
            got = onp.asarray(got)
            assert got.shape == want.shape, f"{name} case {c} {pname}"
            assert got.dtype == want.dtype, f"{name} case {c} {pname}"
            onp.testing.assert_allclose(got, want, **TOL, err_msg=f"{name} case {c} {pname}")
            checked += 1
    assert checked >= 2


# --------------------------------------------------------------------------- transforms


def _mlp_params(r, n_in=6, n_hid=5, n_out=3):
    return (r.normal(size=(n_hid, n_in)) / 3, r.normal(size=n_hid) / 3,
            r.normal(size=(n_out, n_hid)) / 3, r.normal(size=n_out) / 3)


def mlp_loss(params, x, y):
    """Cross-entropy of softmax(W2 tanh(W1 x + b1) + b2) against a one-hot y."""
    W1, b1, W2, b2 = params
    h = np.tanh(W1 @ x + b1)
    z = W2 @ h + b2
    return np.logsumexp(z) - np.sum(y * z)


def test_per_example_gradients_of_an_mlp_equal_a_loop_of_grad():
    r = rng(0)
    params = _mlp_params(r)
    X = r.normal(size=(7, 6))
    Y = onp.eye(3)[r.integers(0, 3, size=7)]
    got = vmap(grad(mlp_loss), in_axes=(None, 0, 0))(params, X, Y)
    assert isinstance(got, tuple) and len(got) == 4
    for k, g in enumerate(got):
        want = onp.stack([grad(mlp_loss)(params, X[b], Y[b])[k] for b in range(7)])
        assert g.shape == want.shape
        onp.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-14)
    # the mean of the per-example gradients is the batch gradient
    batch = grad(lambda p: np.mean(vmap(mlp_loss, in_axes=(None, 0, 0))(p, X, Y)))(params)
    for g, b in zip(got, batch):
        onp.testing.assert_allclose(g.mean(axis=0), b, rtol=1e-12, atol=1e-14)


def test_per_example_gradients_relu_and_max_rules_read_each_examples_value():
    # the derivative rules of relu, maximum, max and abs build constants from their
    # argument's value: under vmap they must do so for every example
    r = rng(1)
    W = r.normal(size=(4, 3))
    X = r.normal(size=(6, 3))

    def loss(w, x):
        h = np.relu(w @ x)
        return np.max(h) + np.sum(np.maximum(h, 0.1) * np.abs(x[0])) + np.min(w @ x)

    got = vmap(grad(loss), in_axes=(None, 0))(W, X)
    want = onp.stack([grad(loss)(W, x) for x in X])
    onp.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_nested_vmap():
    r = rng(2)
    A = r.normal(size=(4, 3, 5))
    b = r.normal(size=5)
    f = lambda a, v: np.sum(np.sin(a) * v)
    got = vmap(vmap(f, in_axes=(0, None)), in_axes=(0, None))(A, b)
    want = onp.array([[onp.sum(onp.sin(A[i, j]) * b) for j in range(3)] for i in range(4)])
    onp.testing.assert_allclose(got, want, **TOL)
    # the inner map over axis 1 of the first argument, the outer over axis 2 of the second
    M = r.normal(size=(5, 2, 6))
    g = lambda x, m: x @ m
    got = vmap(vmap(g, in_axes=(1, None)), in_axes=(None, 2))(A, M)
    assert got.shape == (6, 3, 4, 2)
    want = onp.stack([onp.stack([A[:, j] @ M[:, :, k] for j in range(3)]) for k in range(6)])
    onp.testing.assert_allclose(got, want, **TOL)
    # out_axes of the inner map: the outer batch axis first, the inner one last
    got = vmap(vmap(np.sin, out_axes=-1), in_axes=1)(A)
    onp.testing.assert_allclose(got, onp.moveaxis(onp.sin(A), (1, 0), (0, -1)), **TOL)
    # a matrix of pairwise distances
    P, Q = r.normal(size=(4, 2)), r.normal(size=(3, 2))
    dist = vmap(vmap(lambda p, q: np.sqrt(np.sum((p - q) ** 2)), in_axes=(None, 0)),
                in_axes=(0, None))(P, Q)
    onp.testing.assert_allclose(dist, onp.linalg.norm(P[:, None] - Q[None], axis=-1), **TOL)


def test_vmap_of_jacrev_jacfwd_hessian_jvp_vjp():
    r = rng(3)
    W = r.normal(size=(3, 4))
    X = r.normal(size=(5, 4))
    f = lambda x: np.tanh(W @ x) * np.sum(x ** 2)
    for jac in (jacrev, jacfwd):
        got = vmap(jac(f))(X)
        want = onp.stack([jac(f)(x) for x in X])
        onp.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    h = lambda x: np.sum(np.sin(x) * x[::-1]) + np.prod(x[:2])
    got = vmap(hessian(h))(X)
    onp.testing.assert_allclose(got, onp.stack([hessian(h)(x) for x in X]), rtol=1e-12,
                                atol=1e-14)
    T = r.normal(size=(5, 4))
    got_out, got_t = vmap(lambda x, t: jvp(f, (x,), (t,)))(X, T)
    for b in range(5):
        o, t = jvp(f, (X[b],), (T[b],))
        onp.testing.assert_allclose(got_out[b], o, **TOL)
        onp.testing.assert_allclose(got_t[b], t, rtol=1e-12, atol=1e-14)
    C = r.normal(size=(5, 3))
    got = vmap(lambda x, c: vjp(f, x)[1](c)[0])(X, C)
    want = onp.stack([vjp(f, X[b])[1](C[b])[0] for b in range(5)])
    onp.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    # the Jacobian of a batched function: jacrev and jacfwd of vmap
    for jac in (jacrev, jacfwd):
        J = jac(lambda Z: vmap(f)(Z))(X)
        assert J.shape == (5, 3, 5, 4)
        for b in range(5):
            onp.testing.assert_allclose(J[b, :, b], jacrev(f)(X[b]), rtol=1e-12, atol=1e-14)
            assert not onp.any(J[b, :, (b + 1) % 5])
    # the Hessian of a sum over a batch is block diagonal: hessian of vmap
    Hs = hessian(lambda Z: np.sum(vmap(h)(Z)))(X)
    for b in range(5):
        onp.testing.assert_allclose(Hs[b, :, b], hessian(h)(X[b]), rtol=1e-12, atol=1e-14)
        assert not onp.any(Hs[b, :, (b + 2) % 5])


def test_grad_of_a_function_containing_vmap():
    r = rng(4)
    w = r.normal(size=3)
    X = r.normal(size=(6, 3))

    def total(w):
        per = vmap(lambda x: np.tanh(np.dot(w, x)) ** 2)(X)
        return np.sum(per * onp.arange(6.0))

    def total_loop(w):
        return sum(np.tanh(np.dot(w, X[b])) ** 2 * b for b in range(6))

    onp.testing.assert_allclose(grad(total)(w), grad(total_loop)(w), rtol=1e-12)
    onp.testing.assert_allclose(hessian(total)(w), hessian(total_loop)(w), rtol=1e-11,
                                atol=1e-13)
    # differentiated with respect to the mapped argument as well
    g = grad(lambda Z: np.sum(vmap(lambda z: np.sum(np.exp(z) * w))(Z)))(X)
    onp.testing.assert_allclose(g, onp.exp(X) * w, rtol=1e-12)


def test_in_axes_pytrees_negative_axes_out_axes_kwargs_axis_size():
    r = rng(5)
    P = namedtuple("P", "a b")
    tree = {"w": r.normal(size=(3, 4)), "v": P(r.normal(size=(4, 3)), r.normal(size=2))}
    f = lambda t, s: np.sum(t["w"] * t["v"].a.T, axis=-1) * s + np.sum(t["v"].b)
    got = vmap(f, in_axes=({"v": P(0, None), "w": 1}, None))(tree, 2.0)   # keys in any order
    want = onp.stack([f({"w": tree["w"][:, k], "v": P(tree["v"].a[k], tree["v"].b)}, 2.0)
                      for k in range(4)])
    onp.testing.assert_allclose(got, want, **TOL)
    X = r.normal(size=(3, 5))
    onp.testing.assert_allclose(vmap(np.sum, in_axes=-1)(X), X.sum(axis=0), **TOL)
    # out_axes: a pytree prefix, negative axes, None for an unmapped output
    out = vmap(lambda x: (x * 2, {"s": np.sum(x), "c": 1.5}), in_axes=1,
               out_axes=(1, {"s": 0, "c": None}))(X)
    onp.testing.assert_allclose(out[0], X * 2, **TOL)
    onp.testing.assert_allclose(out[1]["s"], X.sum(axis=0), **TOL)
    assert out[1]["c"] == 1.5
    Y = r.normal(size=(5, 2, 3))
    onp.testing.assert_allclose(vmap(lambda y: y * 3, out_axes=-1)(Y),
                                onp.moveaxis(Y * 3, 0, -1), **TOL)
    # an unmapped output with an int out_axes is broadcast over the batch, as JAX does
    onp.testing.assert_allclose(vmap(lambda x: onp.ones(2), axis_size=None)(X),
                                onp.ones((3, 2)))
    onp.testing.assert_allclose(vmap(lambda: np.ones(2), in_axes=(), axis_size=4)(),
                                onp.ones((4, 2)))
    # keyword arguments are mapped over axis 0
    onp.testing.assert_allclose(vmap(lambda x, *, y: x * y, in_axes=None)(2.0, y=X),
                                2 * X, **TOL)
    # in_axes as a list is a tuple (JAX)
    onp.testing.assert_allclose(vmap(lambda a, b: a + b, in_axes=[0, None])(X, 1.0), X + 1)


def test_values_only_functions_and_comparisons_batch():
    r = rng(6)
    X = r.normal(size=(6, 4))
    got = vmap(lambda x: np.where(x > 0, x, 0.1 * x))(X)
    onp.testing.assert_allclose(got, onp.where(X > 0, X, 0.1 * X), **TOL)
    got = vmap(lambda x: np.where(onp.isnan(x) | (x < -1), 0.0, x))(X)
    onp.testing.assert_allclose(got, onp.where(X < -1, 0.0, X), **TOL)
    g = vmap(grad(lambda x: np.sum(np.where(x > 0, x ** 2, -x))))(X)
    onp.testing.assert_allclose(g, onp.where(X > 0, 2 * X, -1.0), **TOL)


def test_float32_stays_float32():
    r = rng(7)
    params = tuple(p.astype(onp.float32) for p in _mlp_params(r))
    X = r.normal(size=(4, 6)).astype(onp.float32)
    Y = onp.eye(3, dtype=onp.float32)[[0, 1, 2, 0]]
    got = vmap(grad(mlp_loss), in_axes=(None, 0, 0))(params, X, Y)
    assert all(g.dtype == onp.float32 for g in got)


def test_exported():
    assert cr.vmap is vmap
    assert "vmap" in cr.calculus.__all__


# --------------------------------------------------------------------------- errors


def test_errors():
    X, Y = onp.ones((3, 2)), onp.ones((4, 2))
    with pytest.raises(ValueError, match="inconsistent sizes for array axes to be mapped"):
        vmap(lambda a, b: a + b)(X, Y)
    with pytest.raises(ValueError, match="(?s)inconsistent sizes.*axis_size"):
        vmap(lambda a: a, axis_size=5)(X)
    with pytest.raises(ValueError, match="along axis 2, which implies that its rank should "
                                         "be at least 3, but is only 2"):
        vmap(lambda a: a, in_axes=2)(X)
    with pytest.raises(ValueError, match="along axis -3"):
        vmap(lambda a: a, in_axes=-3)(X)
    with pytest.raises(ValueError, match="rank should be at least 1, but is only 0"):
        vmap(lambda a: a)(1.0)
    with pytest.raises(ValueError, match="at least one non-None value in in_axes"):
        vmap(lambda a: a, in_axes=None)(X)
    with pytest.raises(ValueError, match="2 entries but the function was called with 1"):
        vmap(lambda a: a, in_axes=(0, 0))(X)
    with pytest.raises(ValueError, match="tree prefix"):
        vmap(lambda t: t["a"], in_axes=({"b": 0},))({"a": X})
    with pytest.raises(TypeError, match="in_axes must be an int, None, or a tuple"):
        vmap(lambda a: a, in_axes="0")
    with pytest.raises(TypeError, match="in_axes must be an int, None"):
        vmap(lambda a: a, in_axes=(1.0,))
    with pytest.raises(ValueError, match="mapped output but out_axes is None"):
        vmap(lambda a: a, out_axes=None)(X)
    with pytest.raises(ValueError, match="out_axes=3 is out of range"):
        vmap(lambda a: a, out_axes=3)(X)
    with pytest.raises(cr.calculus.TracerError, match="inside vmap"):
        vmap(lambda a: onp.asarray(a))(X)
    with pytest.raises(cr.calculus.TracerError, match="bool"):
        vmap(lambda a: 1.0 if np.sum(a) > 0 else 0.0)(X)


# --------------------------------------------------------------------------- derivative rules


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_vmap_of_grad_and_jvp_of_every_primitive_against_a_loop(name):
    """Every primitive's VJP and JVP rules run under vmap (their arguments are batch
    tracers): per-example derivatives against a loop of them."""
    p = PRIMITIVES[name]
    checked = 0
    for c, case in enumerate(cases_of(name)):
        per = [case(rng(100 * c + b)) for b in range(NB)]
        args0, kwargs, arrays = per[0]
        for i in arrays:
            if i in p.nondiff or onp.asarray(args0[i]).dtype.kind != "f":
                continue
            out = onp.asarray(p(*args0, **kwargs))
            if out.dtype.kind not in "fc":
                continue
            w = rng(7).normal(size=out.shape).astype(out.real.dtype)
            # a complex output through its modulus: real-valued, and free of the arbitrary
            # phase of eigenvectors
            part = np.abs if out.dtype.kind == "c" else (lambda y: y)

            def f(x, *rest, i=i, kwargs=kwargs, w=w, part=part):
                a = list(rest)
                a.insert(i, x)
                return np.sum(part(p(*a, **kwargs)) * w)

            xs = onp.stack([onp.asarray(per[b][0][i]) for b in range(NB)])
            ts = rng(8).normal(size=xs.shape)
            rest = [a for k, a in enumerate(args0) if k != i]
            in_axes = (0,) + (None,) * len(rest)
            with onp.errstate(all="ignore"):
                try:
                    want = onp.stack([grad(f)(xs[b], *rest) for b in range(NB)])
                except (cr.calculus.TracerError, ValueError):
                    # no derivative without vmap either: the einsum primitive's rules take
                    # no '...' or repeated index (chainrule.numpy.einsum rewrites those)
                    continue
                got = vmap(grad(f), in_axes=in_axes)(xs, *rest)
                onp.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, equal_nan=True,
                                            err_msg=f"{name} case {c} grad, argument {i}")
                got = vmap(lambda x, t, *r: jvp(lambda v: f(v, *r), (x,), (t,))[1],
                           in_axes=(0, 0) + (None,) * len(rest))(xs, ts, *rest)
                want = onp.stack([jvp(lambda v, rest=rest: f(v, *rest), (xs[b],), (ts[b],))[1]
                                  for b in range(NB)])
                onp.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, equal_nan=True,
                                            err_msg=f"{name} case {c} jvp, argument {i}")
                # second order: forward over reverse, per example
                hf = jacfwd(grad(f))
                try:
                    want = onp.stack([hf(xs[b], *rest) for b in range(NB)])
                except cr.calculus.TracerError:
                    want = None       # no second derivative here without vmap either
                if want is not None:
                    got = vmap(hf, in_axes=in_axes)(xs, *rest)
                    onp.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11,
                                                equal_nan=True,
                                                err_msg=f"{name} case {c} hessian, arg {i}")
            checked += 1
    if name not in ("astype",) and any(
            onp.asarray(a).dtype.kind == "f" for a in cases_of(name)[0](rng(0))[0]):
        assert checked


# --------------------------------------------------------------------------- batched indices


BATCHED_INDICES = [  # one example's index into a (3, 4, 2) array; "b": the batched entry
    ("b",), (slice(None), "b"), ("b", slice(None), onp.array([1, 0])),
    (slice(None), "b", onp.array([[1], [0]])), (0, "b"), ("b0",), (slice(None), "b0"),
    (slice(1, None), "b0", slice(None, None, -1)), ("b", "b"), (onp.array([2, 0]), "b"),
]


def _batched_entry(r, spec, dim):
    size = (3, 4, 2)[dim]
    if spec == "b0":
        return onp.stack([onp.asarray(r.integers(0, size)) for _ in range(NB)])
    return r.integers(0, size, size=(NB, 2))


@pytest.mark.parametrize("k", range(len(BATCHED_INDICES)))
def test_getitem_and_untake_with_an_index_of_each_examples_own(k):
    spec = BATCHED_INDICES[k]
    r = rng(20 + k)
    X = r.normal(size=(NB, 3, 4, 2))
    pos = [i for i, s in enumerate(spec) if isinstance(s, str)]
    B_ = [_batched_entry(r, spec[i], i) for i in pos]

    def idx_of(bs):
        it = iter(bs)
        return tuple(next(it) if isinstance(s, str) else s for s in spec)

    def f(x, *bs):
        return R.getitem(x, idx_of(bs))

    got = vmap(f)(X, *B_)
    want = onp.stack([X[b][idx_of([a[b] for a in B_])] for b in range(NB)])
    assert got.shape == want.shape
    onp.testing.assert_allclose(got, want, **TOL)
    # the same index into an unbatched array
    got = vmap(f, in_axes=(None,) + (0,) * len(B_))(X[0], *B_)
    want = onp.stack([X[0][idx_of([a[b] for a in B_])] for b in range(NB)])
    onp.testing.assert_allclose(got, want, **TOL)
    # reverse mode (untake with the batched index), forward mode, and second order
    h = lambda x, *bs: np.sum(np.sin(f(x, *bs)) * f(x, *bs))
    got = vmap(grad(h))(X, *B_)
    want = onp.stack([grad(h)(X[b], *[a[b] for a in B_]) for b in range(NB)])
    onp.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    got = vmap(jacfwd(h))(X, *B_)
    onp.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    got = vmap(jacrev(lambda x, *bs: f(x, *bs) ** 2))(X, *B_)
    want = onp.stack([jacrev(lambda x, *bs: f(x, *bs) ** 2)(X[b], *[a[b] for a in B_])
                      for b in range(NB)])
    onp.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_sort_and_take_along_axis_per_example():
    r = rng(30)
    X = r.normal(size=(NB, 3, 4))
    for axis in (0, 1, -1):
        f = lambda x, axis=axis: np.sort(x, axis=axis) * onp.arange(1.0, 5.0)[: x.shape[-1]]
        onp.testing.assert_allclose(vmap(f)(X), onp.stack([f(x) for x in X]), **TOL)
        g = grad(lambda x, f=f: np.sum(f(x) ** 2))
        onp.testing.assert_allclose(vmap(g)(X), onp.stack([g(x) for x in X]), rtol=1e-12)
    # hessian of a sort under vmap, and grad of a vmapped sort
    hs = hessian(lambda v: np.sum(np.sort(v) ** 3 * onp.arange(4.0)))
    onp.testing.assert_allclose(vmap(hs)(X[:, 0]), onp.stack([hs(v) for v in X[:, 0]]),
                                rtol=1e-12)
    G = grad(lambda Z: np.sum(vmap(lambda z: np.sort(z) * onp.arange(4.0))(Z)))(X[:, 0])
    onp.testing.assert_allclose(G, onp.stack([grad(lambda z: np.sum(np.sort(z) *
                                                                     onp.arange(4.0)))(z)
                                              for z in X[:, 0]]), rtol=1e-12)
    onp.testing.assert_allclose(vmap(lambda x: np.argmax(x, axis=1))(X), X.argmax(axis=2))
    onp.testing.assert_allclose(vmap(lambda x: np.argmin(x))(X),
                                X.reshape(NB, -1).argmin(axis=1))
    assert vmap(lambda x: np.any(x > 2.0))(X).tolist() == [bool((x > 2).any()) for x in X]


def test_an_index_per_example_into_one_array_embedding_lookup():
    r = rng(31)
    E = r.normal(size=(10, 4))
    ids = r.integers(0, 10, size=(NB, 3))
    look = lambda e, i: np.sum(np.tanh(np.take(e, i, axis=0)) * onp.arange(4.0))
    got = vmap(look, in_axes=(None, 0))(E, ids)
    onp.testing.assert_allclose(got, [look(E, i) for i in ids], **TOL)
    got = vmap(grad(look), in_axes=(None, 0))(E, ids)      # per-example gradients of E
    onp.testing.assert_allclose(got, onp.stack([grad(look)(E, i) for i in ids]), rtol=1e-12)
    X = r.normal(size=(NB, 6))
    k = r.integers(0, 6, size=NB)
    onp.testing.assert_allclose(vmap(lambda x, i: x[i])(X, k), X[onp.arange(NB), k], **TOL)
    onp.testing.assert_allclose(vmap(lambda i: np.take(E, i, axis=1))(k % 4), E[:, k % 4].T,
                                **TOL)
    with pytest.raises(cr.calculus.TracerError, match="as an index into a plain array"):
        vmap(lambda i: E[i])(k)



# --------------------------------------------------------------------------- chainrule.numpy

_S0 = onp.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
COMPOSITES = {
    "stack": lambda x: np.stack([x, 2*x], axis=1),
    "clip": lambda x: np.clip(x, -0.5, 0.5),
    "var": lambda x: np.var(x, axis=0),
    "std": lambda x: np.std(x),
    "norm": lambda x: np.linalg.norm(x),
    "norm_axis": lambda x: np.linalg.norm(x, axis=-1),
    "solve": lambda x: np.linalg.solve(_S0, x),
    "outer": lambda x: np.outer(x[0], x[1]),
    "dot": lambda x: np.dot(x, x.T),
    "tensordot": lambda x: np.tensordot(x, x, axes=2),
    "kron": lambda x: np.kron(x[0], x[1]),
    "pad": lambda x: np.pad(x, 1),
    "roll": lambda x: np.roll(x, 1, axis=1),
    "diff": lambda x: np.diff(x, axis=0),
    "triu": lambda x: np.triu(x),
    "sort": lambda x: np.sort(x, axis=-1),
    "repeat": lambda x: np.repeat(x, 2, axis=0),
    "tile": lambda x: np.tile(x, 2),
    "flip": lambda x: np.flip(x),
    "take": lambda x: np.take(x, [0, 2], axis=1),
    "argmax": lambda x: np.argmax(x, axis=1),
    "argmax_none": lambda x: np.argmax(x),
    "any": lambda x: np.any(x > 1),
    "all_axis": lambda x: np.all(x > -1, axis=0),
    "zeros_like": lambda x: np.zeros_like(x) + x,
    "maximum_scalar": lambda x: np.maximum(x, 0.0),
    "trace": lambda x: np.trace(x),
    "diagonal": lambda x: np.diagonal(x),
    "diag": lambda x: np.diag(x[0]),
    "swapaxes": lambda x: np.swapaxes(x, 0, 1),
    "expand_dims": lambda x: np.expand_dims(x, 1),
    "squeeze": lambda x: np.squeeze(x[:1]),
    "ravel": lambda x: np.ravel(x),
    "T": lambda x: x.T,
    "concat": lambda x: np.concatenate([x, x[:1]]),
    "split": lambda x: np.split(x, 3)[1],
    "cumprod": lambda x: np.cumprod(x, axis=1),
    "logsumexp": lambda x: np.logsumexp(x, axis=0),
    "softmax": lambda x: np.softmax(x, axis=-1),
    "einsum": lambda x: np.einsum("ij,kj->ik", x, x),
    "matmul": lambda x: x @ x.T,
    "mean_kd": lambda x: np.mean(x, axis=1, keepdims=True),
    "where_cmp": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "abs": lambda x: np.abs(x),
    "power": lambda x: x ** 3,
    "power_c": lambda x: x ** onp.arange(4.0),
    "sum_list": lambda x: np.sum(x),
    "max": lambda x: np.max(x, axis=0),
    "getitem_adv": lambda x: x[[0, 2], 1:],
    "getitem_bool": lambda x: x[onp.array([True, False, True])],
    "getitem_newaxis": lambda x: x[None, :, 0],
    "inv": lambda x: np.linalg.inv(x[:, :3] + 3 * onp.eye(3)),
    "det": lambda x: np.linalg.det(x[:, :3]),
    "slogdet": lambda x: np.linalg.slogdet(x[:, :3] + 3 * onp.eye(3))[1],
    "eigh": lambda x: np.linalg.eigh(x[:, :3] @ x[:, :3].T)[0],
    "svd": lambda x: np.linalg.svd(x, compute_uv=False),
    "qr": lambda x: np.linalg.qr(x.T)[1],
    "cholesky": lambda x: np.linalg.cholesky(x[:, :3] @ x[:, :3].T + onp.eye(3)),
    "pinv": lambda x: np.linalg.pinv(x),
    "meshgrid_like_broadcast": lambda x: np.broadcast_to(x[0], (2, 4)),
    "round": lambda x: np.round(x, 1),
    "mod": lambda x: np.mod(x, 0.7),
    "sinc": lambda x: np.sinc(x),
    "nan_to_num": lambda x: np.nan_to_num(x),
    "nansum": lambda x: np.nansum(x),
    "linspace": lambda x: np.linspace(x[0, 0], x[0, 1], 5),
    "append": lambda x: np.append(x, x[0]),
    "atleast_3d": lambda x: np.atleast_3d(x),
    "hstack": lambda x: np.hstack([x, x]),
    "prod": lambda x: np.prod(x, axis=0),
    "cross": lambda x: np.cross(x[0, :3], x[1, :3]),
    "polyval": lambda x: np.polyval(x[0], x[1]),
    "convolve": lambda x: np.convolve(x[0], x[1]),
}


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_vmap_of_chainrule_numpy_functions_and_their_gradients(name):
    f = COMPOSITES[name]
    X = rng(40).normal(size=(NB, 3, 4))
    with onp.errstate(all="ignore"):
        got = onp.asarray(vmap(f)(X))
        want = onp.stack([onp.asarray(f(x)) for x in X])
        assert got.shape == want.shape and got.dtype == want.dtype
        onp.testing.assert_allclose(got, want, **TOL)
        if want.dtype.kind == "f":
            g = grad(lambda x: np.sum(f(x) * 1.0))
            want = onp.stack([g(x) for x in X])
            onp.testing.assert_allclose(vmap(g)(X), want, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- custom rules


def test_custom_vjp_and_custom_jvp_under_vmap_keep_the_users_rules():
    from chainrule.calculus import custom_jvp, custom_vjp

    @custom_vjp
    def clip_gradient(x, lo, hi):
        return x * 1.0

    clip_gradient.defvjp(lambda x, lo, hi: (x * 1.0, (lo, hi)),
                         lambda res, g: (np.clip(g, res[0], res[1]), None, None))

    @custom_vjp
    def f(x, y):
        return np.sin(x) * y

    f.defvjp(lambda x, y: (f(x, y), (np.cos(x), np.sin(x), y)),
             lambda res, g: (2.0 * res[0] * g * res[2], res[1] * g))   # 2x: the user's rule

    @custom_jvp
    def log1pexp(x):
        return np.log1p(np.exp(x))

    @log1pexp.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return log1pexp(x), 3.0 * t * (1.0 - 1.0 / (1.0 + np.exp(x)))   # 3x: the user's

    r = rng(50)
    X, Y = r.normal(size=(NB, 3)), r.normal(size=3)
    onp.testing.assert_allclose(vmap(f, in_axes=(0, None))(X, Y), onp.sin(X) * Y, **TOL)
    onp.testing.assert_allclose(vmap(log1pexp)(X), onp.log1p(onp.exp(X)), **TOL)
    # inside vmap, outside vmap, and with the argument shared by the batch
    gx = 2.0 * onp.cos(X) * Y
    onp.testing.assert_allclose(vmap(grad(lambda x: np.sum(f(x, Y))))(X), gx, **TOL)
    onp.testing.assert_allclose(grad(lambda z: np.sum(vmap(f, in_axes=(0, None))(z, Y)))(X),
                                gx, **TOL)
    onp.testing.assert_allclose(
        grad(lambda y: np.sum(vmap(f, in_axes=(0, None))(X, y)))(Y),
        onp.sin(X).sum(axis=0), **TOL)
    onp.testing.assert_allclose(
        grad(lambda z: np.sum(3.0 * vmap(clip_gradient, in_axes=(0, None, None))(
            z, -0.5, 0.5)))(X), onp.full(X.shape, 0.5), **TOL)
    d = 3.0 / (1.0 + onp.exp(-X))
    onp.testing.assert_allclose(vmap(grad(lambda x: np.sum(log1pexp(x))))(X), d, **TOL)
    onp.testing.assert_allclose(grad(lambda z: np.sum(vmap(log1pexp)(z)))(X), d, **TOL)
    T = r.normal(size=X.shape)
    onp.testing.assert_allclose(jvp(vmap(log1pexp), (X,), (T,))[1], d * T, **TOL)
    onp.testing.assert_allclose(vmap(lambda x, t: jvp(log1pexp, (x,), (t,))[1])(X, T),
                                d * T, **TOL)


def test_a_batch_of_outer_products_is_exact():
    # the multiply rule's einsum path (large outer products) against the loop, bit for bit
    r = rng(60)
    for dt in (onp.float64, onp.float32):
        D, A = r.normal(size=(NB, 64)).astype(dt), r.normal(size=(NB, 300)).astype(dt)
        f = lambda d, a: R.multiply(R.reshape(d, (64, 1)), a)
        got = vmap(f)(D, A)
        assert got.dtype == dt
        assert onp.array_equal(got, onp.stack([d[:, None] * a for d, a in zip(D, A)]))
        got = vmap(f, in_axes=(0, 1))(D, A.T.copy())
        assert onp.array_equal(got, onp.stack([d[:, None] * a for d, a in zip(D, A)]))
        g = vmap(lambda d, a: R.multiply(a, R.reshape(d, (64, 1, 1))))(D, A[:, None, :])
        assert onp.array_equal(g, onp.stack([a[None] * d[:, None, None] for d, a in zip(D, A)]))


# --------------------------------------------------------------------------- random shapes

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_binary_broadcasting_with_random_shapes_and_axes(data):
    """Two operands of random shapes that broadcast, each mapped at a random axis or not
    at all, through a random binary primitive and a reduction, and its gradient."""
    out = data.draw(st.lists(st.integers(1, 3), min_size=0, max_size=3))
    shapes = []
    for _ in range(2):
        s = [1 if data.draw(st.booleans()) and data.draw(st.booleans()) else k for k in out]
        shapes.append(tuple(s[data.draw(st.integers(0, len(s))):]))
    axes = [data.draw(st.one_of(st.none(), st.integers(-len(s) - 1, len(s)))) for s in shapes]
    if axes == [None, None]:
        axes[0] = 0
    name = data.draw(st.sampled_from(["add", "multiply", "subtract", "maximum", "arctan2",
                                      "logaddexp", "hypot"]))
    p = PRIMITIVES[name]
    r = rng(data.draw(st.integers(0, 1000)))
    per = [[r.normal(size=s) for _ in range(NB)] for s in shapes]
    args = [onp.stack(v, axis=a) if a is not None else v[0] for v, a in zip(per, axes)]

    def pick(k, b):
        return per[k][b] if axes[k] is not None else per[k][0]

    f = lambda x, y: np.sum(np.sin(p(x, y)), axis=0) if np.ndim(p(x, y)) else p(x, y)
    got = vmap(f, in_axes=tuple(axes))(*args)
    want = onp.stack([onp.asarray(f(pick(0, b), pick(1, b))) for b in range(NB)])
    onp.testing.assert_allclose(got, want, **TOL)
    g = grad(lambda x, y: np.sum(p(x, y) ** 2), argnums=(0, 1))
    got = vmap(g, in_axes=tuple(axes))(*args)
    for k in range(2):
        want = onp.stack([g(pick(0, b), pick(1, b))[k] for b in range(NB)])
        onp.testing.assert_allclose(got[k], want, rtol=1e-11, atol=1e-12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_reductions_and_products_with_random_shapes_and_axes(data):
    shape = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    nd = len(shape)
    ax = data.draw(st.integers(-nd - 1, nd))
    axis = data.draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                               st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd,
                                        unique=True).map(tuple)))
    keepdims = data.draw(st.booleans())
    fn = data.draw(st.sampled_from([np.sum, np.mean, np.max, np.min, np.prod, np.logsumexp,
                                    np.var, np.std]))
    r = rng(data.draw(st.integers(0, 1000)))
    per = [r.uniform(0.5, 2.0, size=shape) for _ in range(NB)]
    f = lambda x: fn(x, axis=axis, keepdims=keepdims)
    got = vmap(f, in_axes=ax)(onp.stack(per, axis=ax))
    onp.testing.assert_allclose(got, onp.stack([f(x) for x in per]), **TOL)
    g = grad(lambda x: np.sum(np.sin(f(x))))
    got = vmap(g, in_axes=ax)(onp.stack(per, axis=ax))
    onp.testing.assert_allclose(got, onp.stack([g(x) for x in per]), rtol=1e-11, atol=1e-12)
    # a product with a random other operand, mapped or not
    other = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    sa = shape[-2:]
    sb = (sa[-1],) if data.draw(st.booleans()) else other[:-1] + (sa[-1],) + other[-1:]
    A = [r.normal(size=sa) for _ in range(NB)]
    Bs = [r.normal(size=sb) for _ in range(NB)]
    bmapped = data.draw(st.booleans())
    bx = data.draw(st.integers(-len(sb) - 1, len(sb)))
    mm = lambda a, b: a @ b
    got = vmap(mm, in_axes=(ax % (len(sa) + 1), bx if bmapped else None))(
        onp.stack(A, axis=ax % (len(sa) + 1)), onp.stack(Bs, axis=bx) if bmapped else Bs[0])
    want = onp.stack([A[b] @ (Bs[b] if bmapped else Bs[0]) for b in range(NB)])
    onp.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


# --------------------------------------------------------------------------- every function


def _function_cases():
    import test_numpy_functions as T

    return T.CASES


@pytest.mark.parametrize("name", sorted(_function_cases()))
def test_vmap_of_every_function_case_of_chainrule_numpy(name):
    """The cases of test_numpy_functions (the functions chainrule.numpy differentiates,
    checked there against JAX) under vmap and vmap(grad), against a loop."""
    f, x = _function_cases()[name]
    g = lambda v: f(np, v)
    xs = onp.stack([onp.asarray(x) * (1 + 0.01 * k) for k in range(3)])
    with onp.errstate(all="ignore"):
        want = onp.stack([onp.asarray(g(v)) for v in xs])
        got = onp.asarray(vmap(g)(xs))
        assert got.shape == want.shape and got.dtype == want.dtype
        onp.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, equal_nan=True)
        if want.dtype.kind == "f":
            gs = grad(lambda v: np.sum(g(v)))
            want = onp.stack([gs(v) for v in xs])
            onp.testing.assert_allclose(vmap(gs)(xs), want, rtol=1e-9, atol=1e-11,
                                        equal_nan=True)


def _numpy_names():
    import test_numpy_namespace as T

    return T._functions()


# where the probe's call makes no sense batched, or the result is no value to compare
VMAP_EXEMPT = {
    "empty_like": "uninitialised memory", "bmat": "chainrule.numpy.bmat gives None on any "
    "traced value (not vmap's)", "roll": "the probe passes the array as the shift",
    "result_type": "a dtype, not an array", "isfortran": "memory layout",
}


@pytest.mark.parametrize("name", _numpy_names())
def test_every_numpy_function_under_vmap_batches_or_raises(name):
    """Every public NumPy function, by chainrule.numpy, on a batch tracer: the loop's
    result, or a TracerError; never a different value."""
    import test_numpy_namespace as T

    if name in VMAP_EXEMPT:
        pytest.skip(VMAP_EXEMPT[name])
    ref_fn, ours = T._pair(name)
    args, _ = T._probe(ref_fn)
    if args is None:
        pytest.skip("no probe argument that NumPy accepts")
    x = args[0]
    xs = onp.stack([x * (1 + 0.1 * k) for k in range(3)])

    def f(v):
        return ours(*((v,) + tuple(v if isinstance(w, onp.ndarray) and w.shape == x.shape
                                   else w for w in args[1:])))

    with onp.errstate(all="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")
        want = [T._leaves(f(v)) for v in xs]
        try:
            got = T._leaves(vmap(f)(xs))
        except cr.calculus.TracerError:
            return
    assert len(got) == len(want[0])
    for k, g in enumerate(got):
        w = onp.stack([onp.asarray(wl[k]) for wl in want])
        g = onp.asarray(g)
        assert g.shape == w.shape, name
        onp.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, equal_nan=True, err_msg=name)
