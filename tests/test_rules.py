"""Generated from the table of rules: every primitive, reverse mode against forward mode
against central finite differences, float64, over random shapes with broadcasting."""

from __future__ import annotations

import numpy as onp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chainrule.numpy as np
from chainrule.calculus import (
    PRIMITIVES,
    grad,
    jacfwd,
    jacrev,
    numerical_jacobian,
    relative_error,
)

TOL = 1e-6
SETTINGS = settings(max_examples=12, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

shapes = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast together (scalar expansion, text 3.2.3)."""
    out = draw(st.lists(st.integers(1, 3), min_size=0, max_size=3))
    a, b = list(out), list(out)
    for s in (a, b):
        for i in range(len(s)):
            if draw(st.booleans()) and draw(st.booleans()):
                s[i] = 1
    ka = draw(st.integers(0, len(a)))
    kb = draw(st.integers(0, len(b)))
    return tuple(a[ka:]), tuple(b[kb:])


def rand(draw, shape, lo=-2.0, hi=2.0, away=0.0):
    seed = draw(st.integers(0, 2**31 - 1))
    r = onp.random.default_rng(seed)
    x = r.uniform(lo, hi, size=shape)
    if away:
        x = onp.where(onp.abs(x) < away, onp.sign(x + 1e-300) * away + x, x)
    return onp.asarray(x, dtype=onp.float64)


def check_all(f, *args):
    """reverse == forward == finite differences, for each argument."""
    for i in range(len(args)):
        def fi(x, i=i):
            a = list(args)
            a[i] = x
            return f(*a)
        rev = jacrev(fi)(args[i])
        fwd = jacfwd(fi)(args[i])
        fd = numerical_jacobian(fi, args[i])
        assert rev.shape == fwd.shape == fd.shape
        assert relative_error(rev, fwd) <= 1e-12, f"reverse vs forward, argument {i}"
        assert relative_error(rev, fd) <= TOL, f"reverse vs finite differences, argument {i}"
        # grad's one-use sweep (deferred values, values dropped early) against the
        # Jacobian: the gradient of <w, f(x)> is w contracted with it
        out_shape = onp.shape(f(*args))
        w = onp.random.default_rng(i).normal(size=out_shape)
        g = grad(lambda x, fi=fi, w=w: np.sum(fi(x) * w))(args[i])
        want = onp.tensordot(w, rev, axes=len(out_shape)) if out_shape else rev * w
        assert relative_error(g, want) <= 1e-12, f"grad vs jacrev, argument {i}"


UNARY = {
    "negative": {}, "exp": {}, "log": {"lo": 0.3, "hi": 3.0}, "log1p": {"lo": -0.5, "hi": 2.0},
    "expm1": {}, "sqrt": {"lo": 0.3, "hi": 3.0}, "reciprocal": {"away": 0.3},
    "sin": {}, "cos": {}, "tan": {"lo": -1.2, "hi": 1.2}, "arctan": {},
    "arcsin": {"lo": -0.8, "hi": 0.8},
    "arccos": {"lo": -0.8, "hi": 0.8}, "sinh": {},
    "arcsinh": {}, "arccosh": {"lo": 1.2, "hi": 3.0}, "arctanh": {"lo": -0.8, "hi": 0.8},
    "log2": {"lo": 0.3, "hi": 3.0}, "log10": {"lo": 0.3, "hi": 3.0}, "exp2": {},
    "cbrt": {"away": 0.3},
    "cosh": {}, "tanh": {}, "abs": {"away": 0.1}, "sign": {"away": 0.1}, "sigmoid": {},
    "relu": {"away": 0.1}, "softplus": {},
    # the piecewise constants inside one step, so that a finite difference never spans a
    # jump (x = -1.99999262 beside trunc's jump at -2 failed)
    "floor": {"lo": 0.05, "hi": 0.95}, "ceil": {"lo": 0.05, "hi": 0.95},
    "rint": {"lo": -0.45, "hi": 0.45}, "trunc": {"lo": -0.95, "hi": 0.95},
}
BINARY = {
    "add": ({}, {}), "subtract": ({}, {}), "multiply": ({}, {}),
    "divide": ({}, {"away": 0.4}), "power": ({"lo": 0.3, "hi": 2.0}, {"lo": -1.5, "hi": 2.5}),
    "maximum": ({}, {}), "minimum": ({}, {}), "arctan2": ({"away": 0.3}, {"away": 0.3}),
    "logaddexp": ({}, {}), "hypot": ({"away": 0.3}, {"away": 0.3}),
    # x / y in (-1, -0.05): away from the jumps of the remainder
    "mod": ({"lo": -2.8, "hi": -0.2}, {"lo": 3.0, "hi": 4.0}),
    "fmod": ({"lo": -2.8, "hi": -0.2}, {"lo": 3.0, "hi": 4.0}),
}
REDUCTIONS = {"sum": np.sum, "mean": np.mean, "prod": np.prod, "max": np.max,
              "min": np.min, "logsumexp": np.logsumexp}

# primitives tested by dedicated tests below (composites or structural)
STRUCTURAL = {"where", "softmax", "matmul", "einsum", "reshape", "broadcast_to",
              "transpose", "astype", "concatenate", "getitem", "untake", "cumsum", "inv",
              "det", "round"}
# the decompositions, checked against JAX in test_numpy_functions.py
STRUCTURAL |= {"cholesky", "eigh_w", "eigh_v", "svd_s", "svd_u", "svd_vh", "qr_q", "qr_r",
               "logabsdet", "pinv", "power_c"}
# the complex-number primitives and eig, checked against finite differences over the
# real and imaginary parts in test_complex.py and test_autograd_suite.py
STRUCTURAL |= {"real", "imag", "conj", "angle", "eig_w", "eig_v", "fft", "rfft", "irfft"}


def test_every_primitive_has_a_generated_test():
    covered = set(UNARY) | set(BINARY) | set(REDUCTIONS) | STRUCTURAL
    assert set(PRIMITIVES) == covered


@pytest.mark.parametrize("name", sorted(UNARY))
@SETTINGS
@given(data=st.data())
def test_unary(name, data):
    x = rand(data.draw, data.draw(shapes), **UNARY[name])
    check_all(PRIMITIVES[name], x)


@pytest.mark.parametrize("name", sorted(BINARY))
@SETTINGS
@given(data=st.data())
def test_binary_broadcasting(name, data):
    sa, sb = data.draw(broadcast_pair())
    ka, kb = BINARY[name]
    x, y = rand(data.draw, sa, **ka), rand(data.draw, sb, **kb)
    check_all(PRIMITIVES[name], x, y)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@SETTINGS
@given(data=st.data())
def test_reductions(name, data):
    shape = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple))
    x = rand(data.draw, shape, lo=0.5 if name == "prod" else -2.0)
    nd = len(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                               st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd,
                                        unique=True).map(tuple)))
    keepdims = data.draw(st.booleans())
    fn = REDUCTIONS[name]
    check_all(lambda v: fn(v, axis=axis, keepdims=keepdims), x)


def test_prod_with_zero_entries():
    x = onp.array([[2.0, 0.0, 3.0], [1.0, 4.0, 5.0]])
    check_all(lambda v: np.prod(v, axis=1), x)
    check_all(lambda v: np.prod(v), x)


@SETTINGS
@given(data=st.data())
def test_where(data):
    sa, sb = data.draw(broadcast_pair())
    x, y = rand(data.draw, sa), rand(data.draw, sb)
    cond = rand(data.draw, onp.broadcast_shapes(sa, sb)) > 0
    check_all(lambda a, b: np.where(cond, a, b), x, y)


@SETTINGS
@given(data=st.data())
def test_softmax(data):
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    check_all(lambda v: np.softmax(v, axis=axis), rand(data.draw, shape, -3, 3))


MATMUL_SHAPES = [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)),
                 ((2, 2, 3), (3, 4)), ((3,), (2, 3, 4)), ((2, 2, 3), (3,)),
                 ((2, 2, 3), (2, 3, 4)), ((1, 2, 3), (2, 3, 2)), ((2, 3), (2, 3, 2))]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul(sa, sb):
    r = onp.random.default_rng(0)
    a, b = r.normal(size=sa), r.normal(size=sb)
    check_all(lambda x, y: x @ y, a, b)
    check_all(np.dot, a, b) if len(sa) <= 2 and len(sb) <= 2 else None


EINSUMS = [("ij,jk->ik", (2, 3), (3, 4)), ("ij->j", (2, 3)), ("ij,ij->", (2, 3), (2, 3)),
           ("i,j->ij", (3,), (2,)), ("bij,bjk->bik", (2, 2, 3), (2, 3, 2)),
           ("ij,j->i", (2, 3), (3,)), ("ij,k->i", (2, 3), (4,)), ("...ij,jk", (2, 2, 3), (3, 2)),
           ("ij,jk,kl->il", (2, 3), (3, 2), (2, 2))]


@pytest.mark.parametrize("spec_shapes", EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum(spec_shapes):
    spec, *shs = spec_shapes
    r = onp.random.default_rng(1)
    ops = [r.normal(size=s) for s in shs]
    assert onp.allclose(np.einsum(spec, *ops), onp.einsum(spec, *ops))
    check_all(lambda *o: np.einsum(spec, *o), *ops)


@SETTINGS
@given(data=st.data())
def test_shape_ops(data):
    shape = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple))
    x = rand(data.draw, shape)
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    check_all(lambda v: np.transpose(v, perm), x)
    check_all(lambda v: np.reshape(v, (-1,)), x)
    check_all(lambda v: np.broadcast_to(v, (2,) + shape), x)
    check_all(lambda v: np.expand_dims(v, 0).swapaxes(0, -1), x)
    check_all(lambda v: np.concatenate([v, 2 * v, v[:1]], axis=0), x)
    check_all(lambda v: np.stack([v, v * v], axis=-1), x)
    check_all(lambda v: np.astype(v, onp.float64) * 2, x)


INDICES = [(1,), (slice(None, None, -1),), (Ellipsis, 0), (onp.array([0, 2, 2, 1]),),
           (slice(1, None), onp.array([1, 0])), (onp.array([[0, 1], [2, 2]]),),
           (None, slice(0, 2)), (onp.array([True, False, True]),),
           (onp.array([0, 2]), slice(None), onp.array([1, 1]))]


@pytest.mark.parametrize("idx", INDICES, ids=[str(i) for i in range(len(INDICES))])
def test_getitem(idx):
    x = onp.random.default_rng(2).normal(size=(3, 3, 2))
    assert onp.array_equal(np.asarray(x)[idx], x[idx])
    check_all(lambda v: v[idx], x)
    check_all(lambda v: jacrev(lambda u: u[idx] ** 2)(v).sum(axis=0), x)  # through untake


def test_jvp_and_vjp_agree_on_random_directions():
    from chainrule import jvp, vjp
    r = onp.random.default_rng(3)
    W = r.normal(size=(4, 3))

    def f(x):
        return np.tanh(W @ x) * np.sum(x ** 2)

    x, t, c = r.normal(size=3), r.normal(size=3), r.normal(size=4)
    _, jt = jvp(f, (x,), (t,))
    _, pull = vjp(f, x)
    (ct,) = pull(c)
    assert abs(c @ jt - ct @ t) < 1e-12


@SETTINGS
@given(data=st.data())
def test_cumsum_and_compositions(data):
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple))
    x = rand(data.draw, shape)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    check_all(lambda v: np.cumsum(v, axis=axis), x)
    check_all(lambda v: np.cumsum(v), x)
    check_all(lambda v: np.flip(v, axis) * v, x)
    check_all(lambda v: np.sort(v, axis=axis), x)
    check_all(lambda v: np.repeat(v, 2, axis=axis), x)
    check_all(lambda v: np.tile(v, 2), x)


@SETTINGS
@given(data=st.data(), batch=st.sampled_from([(), (2,)]))
def test_inverse_determinant_solve(data, batch):
    n = data.draw(st.integers(1, 4))
    # strictly diagonally dominant by a margin of at least 1 (entries in (-2, 2)), so
    # well conditioned: finite differences stay accurate (3 I alone let n = 3 draw a
    # nearly singular A whose inverse has entries in the thousands)
    A = rand(data.draw, batch + (n, n)) + (2.0 * n + 1.0) * onp.eye(n)
    check_all(np.linalg.inv, A)
    check_all(np.linalg.det, A)
    b = rand(data.draw, (n,))
    if not batch:
        check_all(lambda a: np.linalg.solve(a, b), A)
        check_all(lambda a: np.trace(a @ a) + np.sum(np.diag(np.diagonal(a))), A)
