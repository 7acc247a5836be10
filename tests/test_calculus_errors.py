"""Bad input to the calculus layer: each is a clear error naming the problem and the fix,
never a silent zero gradient."""

from __future__ import annotations

import math

import numpy
import pytest

import chainrule.numpy as np
from chainrule import grad, jacobian, vjp
from chainrule.calculus import TracerError

X = numpy.array([0.5, 1.0, 2.0])


@pytest.mark.parametrize("f,words", [
    (lambda x: numpy.sum(numpy.array([x[0], x[1]])), "np.array"),
    (lambda x: math.sin(x[0]), "math.sin"),
    (lambda x: numpy.sum(numpy.percentile(x, 50)), "numpy.percentile"),
    (lambda x: numpy.median(x), "numpy.median"),
    (lambda x: x.__setitem__(0, 1.0), "in-place assignment"),
    (lambda x: x[0] if x[0] else -x[0], "Python `if`"),
    (lambda x: numpy.add.reduce(x), "numpy.add.reduce"),
    (lambda x: numpy.sum(numpy.exp(x, out=numpy.zeros(3))), "out="),
    (lambda x: float(x[0]), "float()"),
])
def test_untraceable_operations_name_the_problem(f, words):
    with pytest.raises(TracerError, match=None) as info:
        grad(lambda x: numpy.sum(f(x)))(X)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("arg,words", [
    ("abc", "str"), (3, "integer 3"), (numpy.arange(3), "dtype int64"), (None, "NoneType"),
    ([1.0, "a"], "str"), (True, "bool"),
])
def test_non_float_inputs(arg, words):
    with pytest.raises(TypeError, match=words):
        grad(lambda x: 1.0)(arg)


def test_grad_of_vector_output_offers_fixes():
    with pytest.raises(TypeError, match="scalar output.*jacobian.*sum.*vjp"):
        grad(lambda x: x * 2)(X)


def test_bad_argnums_and_aux():
    with pytest.raises(ValueError, match="argnums=2"):
        grad(lambda x, y: x * y, argnums=2)(1.0, 2.0)
    with pytest.raises(TypeError, match="has_aux=True"):
        grad(lambda x: x * 2, has_aux=True)(1.0)


def test_vjp_cotangent_shape_checked():
    _, pull = vjp(lambda x: x * 2, X)
    with pytest.raises(ValueError, match="cotangent of shape"):
        pull(numpy.ones(2))


def test_assignment_into_a_numpy_array_is_refused_not_silently_dropped():
    # NumPy treats the traced value as a sequence here and raises its own ValueError
    # before chainrule can speak; what matters is that it is never a silent zero gradient.
    with pytest.raises((ValueError, TracerError)):
        grad(lambda x: numpy.sum(numpy.zeros(3).__setitem__(0, x[0])))(X)


def test_constant_output_gives_true_zero_not_error():
    # f does not depend on x: the gradient is exactly zero, which is correct
    assert numpy.array_equal(grad(lambda x: 3.0)(X), numpy.zeros(3))
    assert numpy.array_equal(jacobian(lambda x: numpy.ones(2))(X), numpy.zeros((2, 3)))


def test_comparisons_are_not_differentiable_but_work():
    g = grad(lambda x: np.sum(np.where(x > 1.0, x ** 2, 0.0)))(X)
    assert numpy.array_equal(g, [0.0, 0.0, 4.0])
