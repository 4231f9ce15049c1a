"""Chapters 2-4: activations, losses, numerical gradients, perceptrons, and the book's printed numbers."""
import numpy as np
import pytest

from fastdl import functions as F
from fastdl.gradient import gradient_descent, numerical_diff, numerical_gradient
from fastdl.layers import AddLayer, MulLayer
from fastdl.perceptron import AND, NAND, OR, XOR, forward, init_network
from fastdl.util import shuffle_dataset, smooth_curve


def test_softmax_printed_in_the_book(backend_name):
    np.testing.assert_allclose(F.softmax(np.array([0.3, 2.9, 4.0])),
                               [0.01821127, 0.24519181, 0.73659691], atol=5e-9)


def test_softmax_is_stable_and_works_on_any_leading_dims(backend_name, dtype):
    x = np.array([[1010.0, 1000.0, 990.0]], dtype=dtype)
    y = F.softmax(x)
    assert y.dtype == dtype and np.isfinite(y).all()
    np.testing.assert_allclose(y, F.softmax(x - 1000), rtol=1e-6)
    z = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(dtype)
    s = F.softmax(z)
    assert s.shape == z.shape
    np.testing.assert_allclose(s.sum(axis=-1), 1, rtol=1e-6)


def test_activation_functions(backend_name):
    np.testing.assert_array_equal(F.step_function(np.array([-1.0, 0.0, 2.0])), [0, 0, 1])
    np.testing.assert_allclose(F.sigmoid(np.array([-1.0, 1.0, 2.0])), [0.26894142, 0.73105858, 0.88079708])
    assert F.sigmoid(np.array([-1000.0, 1000.0])).tolist() == [0.0, 1.0]
    np.testing.assert_array_equal(F.relu(np.array([-1.0, 0.0, 3.0])), [0, 0, 3])
    np.testing.assert_array_equal(F.relu_grad(np.array([-1.0, 0.0, 3.0])), [0, 1, 1])
    x = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(F.sigmoid_grad(x), [numerical_diff(F.sigmoid, v) for v in x], rtol=1e-7)
    assert F.identity_function(x) is x
    assert F.sigmoid(np.float32(0.5)).dtype == np.float32


def test_losses_in_the_book():
    t = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    y = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]
    assert F.sum_squared_error(np.array(y), np.array(t)) == pytest.approx(0.0975)
    assert F.cross_entropy_error(np.array(y), np.array(t)) == pytest.approx(0.510825457099338)
    y2 = [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]
    assert F.cross_entropy_error(np.array(y2), np.array(t)) == pytest.approx(2.302584092994546)


def test_cross_entropy_accepts_every_label_form():
    rng = np.random.default_rng(0)
    y = F.softmax(rng.standard_normal((4, 3)))
    t = np.array([2, 0, 1, 1])
    want = -np.mean(np.log(y[np.arange(4), t] + 1e-7))
    for form in (t, t[:, None], np.eye(3)[t], t.astype(np.uint8)):
        assert F.cross_entropy_error(y, form) == pytest.approx(want, rel=1e-12)
    assert F.cross_entropy_error(y[1], 0) == pytest.approx(-np.log(y[1, 0] + 1e-7))
    assert F.cross_entropy_error(y[1], np.eye(3)[0]) == pytest.approx(-np.log(y[1, 0] + 1e-7))
    assert F.softmax_loss(np.log(y), t) == pytest.approx(want, rel=1e-9)


def test_numerical_diff_and_gradient_from_chapter_4():
    f1 = lambda x: 0.01 * x ** 2 + 0.1 * x
    assert numerical_diff(f1, 5) == pytest.approx(0.2, abs=1e-9)
    assert numerical_diff(f1, 10) == pytest.approx(0.3, abs=1e-9)
    f2 = lambda x: np.sum(x ** 2)
    for point, want in (([3.0, 4.0], [6, 8]), ([0.0, 2.0], [0, 4]), ([3.0, 0.0], [6, 0])):
        x = np.array(point)
        np.testing.assert_allclose(numerical_gradient(f2, x), want, atol=1e-6)
        np.testing.assert_array_equal(x, point)     # restored after the in-place perturbation
    x0 = np.array([-3.0, 4.0])
    xmin = gradient_descent(f2, x0, lr=0.1, step_num=100)
    np.testing.assert_allclose(xmin, [-6.11110793e-10, 8.14814391e-10], atol=1e-15)
    np.testing.assert_array_equal(x0, [-3.0, 4.0])    # not mutated (the book's version is)


def test_numerical_gradient_walks_every_element_in_c_order():
    seen = []
    x = np.zeros((2, 3))

    def f(a):
        seen.append(tuple(zip(*np.nonzero(a > 0)))[0] if (a > 0).any() else None)
        return 0.0
    numerical_gradient(f, x)
    plus = seen[0::2]
    assert plus == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]


def test_perceptron_truth_tables():
    inputs = [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert [AND(*i) for i in inputs] == [0, 0, 0, 1]
    assert [NAND(*i) for i in inputs] == [1, 1, 1, 0]
    assert [OR(*i) for i in inputs] == [0, 1, 1, 1]
    assert [XOR(*i) for i in inputs] == [0, 1, 1, 0]


def test_three_layer_forward_printed_in_the_book():
    np.testing.assert_allclose(forward(init_network(), np.array([1.0, 0.5])),
                               [0.31682708, 0.69627909], atol=5e-9)


def test_apple_orange_backprop_from_chapter_5():
    apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1
    mul_apple, mul_orange, add, mul_tax = MulLayer(), MulLayer(), AddLayer(), MulLayer()
    price = mul_tax.forward(add.forward(mul_apple.forward(apple, apple_num),
                                        mul_orange.forward(orange, orange_num)), tax)
    dall, dtax = mul_tax.backward(1)
    dapple_price, dorange_price = add.backward(dall)
    dorange, dorange_num = mul_orange.backward(dorange_price)
    dapple, dapple_num = mul_apple.backward(dapple_price)
    assert price == pytest.approx(715)
    assert (dapple, dapple_num, dorange, dorange_num, dtax) == pytest.approx((2.2, 110, 3.3, 165, 650))


def test_shuffle_dataset_and_smooth_curve():
    np.random.seed(0)
    x = np.arange(20).reshape(10, 2)
    t = np.arange(10)
    xs, ts = shuffle_dataset(x, t)
    np.testing.assert_array_equal(xs[:, 0] // 2, ts)
    assert sorted(ts) == list(range(10))
    curve = np.r_[np.ones(20), np.zeros(20)]
    s = smooth_curve(curve)
    assert s.shape == curve.shape
    assert s[:5].tolist() == pytest.approx([1] * 5) and s[-5:].tolist() == pytest.approx([0] * 5)
    assert 0 < s[20] < 1
    np.testing.assert_allclose(smooth_curve(np.full(30, 2.5)), 2.5)
