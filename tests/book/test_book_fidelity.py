"""fastdl behaves as the book's NumPy code does where the book relies on it.

Book-style scripts (``tests/book/book_corpus``, written for these tests) run through
``python -m fastdl.book --sample`` and a book-style notebook through a real
Jupyter kernel; their printed results are checked against values worked out
here from the formulas. The rule they exercise: certain mistakes raise, what
NumPy accepts is accepted, NaN that arises in a computation flows.
"""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastdl
from fastdl.datasets import load_mnist
from fastdl.layers import Affine, BatchNormalization, Convolution, Dropout, Pooling, Relu, Sigmoid, SoftmaxWithLoss
from fastdl.nets import DeepConvNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet
from fastdl.optimizers import Adam, Momentum, Nesterov, SGD
from fastdl.trainer import Trainer

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "book_corpus")


def run_book(rel, *args, backend=None):
    folder, name = os.path.split(os.path.join(CORPUS, rel))
    cmd = [sys.executable, "-m", "fastdl.book", "--sample"]
    if backend:
        cmd += ["--backend", backend]
    r = subprocess.run(cmd + [name, *args], cwd=folder, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, MPLBACKEND="Agg"))
    assert r.returncode == 0, r.stderr
    return r.stdout


def printed(out):
    """'key:value' lines -> dict (the first ':' splits)."""
    return dict(line.split(":", 1) for line in out.splitlines() if ":" in line)


# -- divergence is a result ------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_divergence_to_nan_runs_to_the_end(backend):
    """The book's Figure 6-19: without batch norm, too large weights diverge; the script goes on and
    prints loss nan and the accuracy of predicting class 0 everywhere (argmax of NaN rows is 0)."""
    out = run_book("ch06/diverge.py", backend=backend)
    lines = out.splitlines()
    assert lines[0].startswith("batchnorm:False loss:nan acc:")
    t = load_mnist(sample=True)[0][1][:300]
    assert float(lines[0].rsplit("acc:", 1)[1]) == pytest.approx(np.mean(t == 0))
    assert lines[1].startswith("batchnorm:True loss:") and "nan" not in lines[1]


def test_nan_arising_in_training_warns_once_and_flows(backend_name):
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)
    np.random.seed(0)
    net = MultiLayerNet(6, [8, 8], 3, weight_init_std=1e60)     # the scores overflow
    opt = SGD(lr=0.01)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losses = []
        for _ in range(8):
            opt.update(net.params, net.gradient(x, t))
            losses.append(net.loss(x, t))
    assert np.isnan(losses[-1])
    ours = [w for w in caught if "SoftmaxWithLoss: the loss is" in str(w.message)]
    assert len(ours) == 1 and "learning rate" in str(ours[0].message)
    assert net.accuracy(x, t) == pytest.approx(np.mean(t == 0))


def test_nan_in_the_data_handed_in_is_still_reported():
    x = np.ones((4, 6))
    x[2, 3] = np.nan
    net = MultiLayerNet(6, [5], 3)
    with pytest.raises(ValueError, match=r"MultiLayerNet: the input x contains NaN"):
        net.loss(x, np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="input x contains NaN"):
        net.gradient(x, np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="input x contains NaN"):
        net.accuracy(x, np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match=r"Trainer: x_train contains NaN"):
        Trainer(net, x, np.zeros(4, dtype=int), np.ones((2, 6)), np.zeros(2, dtype=int), verbose=False)


def test_trainer_records_where_training_diverged():
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((50, 6)), rng.integers(0, 3, 50)
    np.random.seed(1)
    net = MultiLayerNet(6, [8, 8], 3, weight_init_std=1e3)
    tr = Trainer(net, x, t, x, t, epochs=4, mini_batch_size=25, optimizer="sgd",
                 optimizer_param={"lr": 0.01}, verbose=False, progress=False)
    tr.train_step()
    tr.train_step()
    for k in ("W1", "W2", "W3"):
        net.params[k] *= 1e100               # the weights blow up after two sound steps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr.train()
    assert tr.diverged_at is not None and np.isnan(tr.train_loss_list[tr.diverged_at])
    assert all(np.isfinite(v) for v in tr.train_loss_list[:tr.diverged_at])


def test_backends_agree_on_a_diverging_run():
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((30, 1, 8, 8)), rng.integers(0, 10, 30)
    results = {}
    for name in ("numpy", "numba"):
        with fastdl.using_backend(name), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.random.seed(3)
            net = SimpleConvNet(input_dim=(1, 8, 8), conv_param={"filter_num": 4, "filter_size": 3,
                                                                 "pad": 0, "stride": 1},
                                hidden_size=10, output_size=10, weight_init_std=1e110)
            opt = SGD(lr=0.01)
            for _ in range(6):
                opt.update(net.params, net.gradient(x, t))
            results[name] = {k: v.copy() for k, v in net.params.items()}
    assert any(np.isnan(v).any() for v in results["numpy"].values())
    for k in results["numpy"]:
        a, b = results["numpy"][k], results["numba"][k]
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=k)
        np.testing.assert_array_equal(np.isposinf(a), np.isposinf(b), err_msg=k)


# -- what NumPy accepts is accepted ----------------------------------------------------------

def correlate(img, w):
    """Valid 2-D cross-correlation, by hand."""
    H, W = img.shape
    k = w.shape[0]
    out = np.empty((H - k + 1, W - k + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(img[i:i + k, j:j + k] * w)
    return out


def test_scalar_bias_and_mixed_dtypes_as_in_apply_filter():
    out = run_book("ch07/scalar_bias.py")
    got = printed(out)
    img = load_mnist(sample=True, flatten=False)[0][0][0, 0].astype(np.float64)
    np.random.seed(3)
    w = np.random.randn(4, 1, 5, 5)
    for i in range(4):
        dtype, shape = got[f"filter{i}"].strip().split(" ", 1)
        assert dtype == "float64" and shape.startswith("(1, 1, 24, 24)")
        total = shape.rsplit(" ", 1)[1]
        want = correlate(img, w[i, 0]).sum()
        assert float(total) == pytest.approx(want, rel=1e-12, abs=1e-9)
    assert got["affine"].strip() == "[[3.5, 3.5], [12.5, 12.5]]"


@pytest.mark.parametrize("b", [0, 0.25, np.float32(0.25), np.array(0.25), np.array([0.25]), [0.25, 0.25]])
def test_bias_scalar_or_array_broadcasts(backend_name, b):
    rng = np.random.default_rng(4)
    W = rng.standard_normal((2, 1, 3, 3))
    x = rng.standard_normal((2, 1, 5, 5))
    want = Convolution(W, np.full(2, float(np.asarray(b).ravel()[0]))).forward(x)
    layer = Convolution(W, b)
    np.testing.assert_allclose(layer.forward(x), want, rtol=1e-12, atol=1e-12)
    layer.backward(np.ones_like(want))
    assert layer.db.shape == (2,) and layer.dW.shape == W.shape
    aff = Affine(rng.standard_normal((3, 2)), b)
    np.testing.assert_allclose(aff.forward(np.ones((4, 3))), np.ones((4, 3)) @ aff.W + np.asarray(b, float),
                               rtol=1e-12)


def test_mixed_float_dtypes_promote_as_numpy(backend_name):
    rng = np.random.default_rng(5)
    W64, b32 = rng.standard_normal((4, 3)), rng.standard_normal(3).astype(np.float32)
    x32 = rng.standard_normal((5, 4)).astype(np.float32)
    layer = Affine(W64, b32)
    out = layer.forward(x32)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, x32 @ W64 + b32, rtol=1e-12)
    assert layer.b is b32 and layer.W is W64            # the caller's arrays are kept, not copied
    bn = BatchNormalization(np.ones(4), np.zeros(4, dtype=np.float32))
    assert bn.forward(x32).dtype == np.float64


def test_integer_images_are_converted(backend_name):
    img = np.arange(2 * 1 * 6 * 6).reshape(2, 1, 6, 6)                 # int64
    W = np.random.default_rng(6).standard_normal((3, 1, 3, 3))
    conv = Convolution(W, np.zeros(3))
    np.testing.assert_allclose(conv.forward(img), conv.forward(img.astype(np.float64)), rtol=1e-12)
    np.testing.assert_array_equal(Relu().forward(np.array([-2, 0, 3])), [0.0, 0.0, 3.0])
    pool = Pooling(2, 2).forward(img.astype(np.uint8))
    assert pool.dtype == np.float64 and pool.max() == 71


def test_weights_rebound_after_construction_are_used(backend_name):
    """The book's load_params rebinds layer.W / layer.b to the loaded arrays."""
    rng = np.random.default_rng(7)
    conv = Convolution(np.zeros((2, 1, 3, 3)), np.zeros(2))
    W, b = rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2)
    conv.W, conv.b = W, b
    x = rng.standard_normal((1, 1, 4, 4))
    np.testing.assert_allclose(conv.forward(x), Convolution(W, b).forward(x), rtol=1e-12)
    conv.backward(np.ones((1, 2, 2, 2)))
    assert np.abs(conv.dW).sum() > 0


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_half_precision_as_in_half_float_network(backend):
    got = printed(run_book("ch08/half.py", backend=backend))
    a64, a16 = float(got["float64"]), float(got["float16"])
    assert a64 > 0.8 and abs(a64 - a16) <= 0.01


def test_float16_storage_float32_arithmetic(backend_name):
    rng = np.random.default_rng(8)
    W16 = rng.standard_normal((3, 2, 3, 3)).astype(np.float16)
    b16 = rng.standard_normal(3).astype(np.float16)
    x16 = rng.standard_normal((2, 2, 5, 5)).astype(np.float16)
    conv = Convolution(W16, b16)
    out = conv.forward(x16)
    want = Convolution(W16.astype(np.float32), b16.astype(np.float32)).forward(x16.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)
    conv.backward(np.ones_like(out))
    assert conv.dW.dtype == np.float32 and conv.W is W16 and W16.dtype == np.float16
    aff = Affine(rng.standard_normal((4, 2)).astype(np.float16), np.zeros(2, dtype=np.float16))
    y = aff.forward(x16.reshape(2, -1)[:, :4])
    assert y.dtype == np.float32
    for layer in (Relu(), Sigmoid(), Dropout(0.0)):
        assert layer.forward(x16).dtype == np.float32
    params = {"W": W16}
    Adam(lr=0.1).update(params, {"W": conv.dW})
    assert params["W"] is W16 and W16.dtype == np.float16
    assert not np.array_equal(W16, conv.W.astype(np.float16) * 0)       # it moved


# -- the optimizers follow the book's current code ------------------------------------------

def book_rules(name, p, g, s, lr, momentum=0.9, decay=0.99, beta1=0.9, beta2=0.999, it=1):
    """One update written as in the book's common/optimizer.py today (in place, in its order)."""
    if name == "SGD":
        p -= lr * g
    elif name == "Momentum":
        s["v"] = momentum * s["v"] - lr * g
        p += s["v"]
    elif name == "Nesterov":                          # the book's commit 89eadd0 (2021)
        p += momentum * momentum * s["v"]
        p -= (1 + momentum) * lr * g
        s["v"] *= momentum
        s["v"] -= lr * g
    elif name == "AdaGrad":
        s["h"] += g * g
        p -= lr * g / (np.sqrt(s["h"]) + 1e-7)
    elif name == "RMSprop":
        s["h"] *= decay
        s["h"] += (1 - decay) * g * g
        p -= lr * g / (np.sqrt(s["h"]) + 1e-7)
    elif name == "Adam":
        lr_t = lr * np.sqrt(1.0 - beta2 ** it) / (1.0 - beta1 ** it)
        s["m"] += (1 - beta1) * (g - s["m"])
        s["v"] += (1 - beta2) * (g ** 2 - s["v"])
        p -= lr_t * s["m"] / (np.sqrt(s["v"]) + 1e-7)


def test_optimizers_follow_the_books_code_on_its_function():
    got = {k: [float(v) for v in line.split()] for k, line in printed(run_book("ch06/nesterov.py")).items()}
    lrs = {"SGD": 0.95, "Momentum": 0.1, "Nesterov": 0.1, "AdaGrad": 1.5, "RMSprop": 0.1, "Adam": 0.3}
    for name, lr in lrs.items():
        p = np.array([-7.0, 2.0])
        s = {"v": np.zeros(2), "h": np.zeros(2), "m": np.zeros(2)}
        for it in range(1, 31):
            book_rules(name, p, p * np.array([0.1, 2.0]), s, lr, it=it)
        np.testing.assert_allclose(got[name][:2], p, rtol=1e-10, atol=1e-14, err_msg=name)
        np.testing.assert_allclose(got[name][2:], p, rtol=1e-10, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("cls,name,kw", [(Nesterov, "Nesterov", {"lr": 0.05, "momentum": 0.9}),
                                         (Momentum, "Momentum", {"lr": 0.05, "momentum": 0.8})])
def test_fifty_updates_match_the_book_on_every_cpu_backend(backend_name, dtype, cls, name, kw):
    rng = np.random.default_rng(9)
    p0 = rng.standard_normal(3000)
    grads = [rng.standard_normal(3000) for _ in range(50)]
    ref, s = p0.copy(), {"v": np.zeros(3000)}
    for g in grads:
        book_rules(name, ref, g, s, **kw)
    params, opt = {"W": p0.astype(dtype)}, cls(**kw)
    for g in grads:
        opt.update(params, {"W": g.astype(dtype)})
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(params["W"], ref, rtol=tol, atol=tol)


def test_complex_gradients_are_refused():
    with pytest.raises(TypeError, match=r"grads\['W'\] must hold real numbers.*imaginary part"):
        SGD().update({"W": np.ones(2)}, {"W": np.ones(2) * (1 + 1j)})
    with pytest.raises(TypeError, match="must be real numbers"):
        Adam().update({"x": 1.0}, {"x": 1j})


# -- the order of params and grads -----------------------------------------------------------

def test_gradients_print_in_the_books_order():
    out = printed(run_book("ch06/grad_order.py"))
    assert out["params"].strip() == "W1,b1,W2,b2,W3,b3,gamma1,beta1,gamma2,beta2"
    order = "W1,b1,gamma1,beta1,W2,b2,gamma2,beta2,W3,b3"
    assert out["grads"].strip() == order
    keys = [k for k in out if k not in ("params", "grads")]
    assert ",".join(keys) == order
    assert all(float(out[k]) < 1e-5 for k in keys)


def test_every_network_orders_params_grads_and_numerical_gradient_as_the_book():
    np.random.seed(0)
    x = np.random.rand(2, 1, 10, 10)
    t = np.array([1, 2])
    nets = {
        "MultiLayerNet": (MultiLayerNet(100, [4, 3], 5), "W1 b1 W2 b2 W3 b3", "W1 b1 W2 b2 W3 b3"),
        "MultiLayerNetExtend": (MultiLayerNetExtend(100, [4, 3], 5, use_batchnorm=True),
                                "W1 b1 W2 b2 W3 b3 gamma1 beta1 gamma2 beta2",
                                "W1 b1 gamma1 beta1 W2 b2 gamma2 beta2 W3 b3"),
        "SimpleConvNet": (SimpleConvNet((1, 10, 10), {"filter_num": 2, "filter_size": 3, "pad": 0,
                                                      "stride": 1}, 4, 5), "W1 b1 W2 b2 W3 b3",
                          "W1 b1 W2 b2 W3 b3"),
    }
    eight = " ".join(f"W{i} b{i}" for i in range(1, 9))
    nets["DeepConvNet"] = (DeepConvNet(), eight, eight)
    nets["TwoLayerNet"] = (TwoLayerNet(100, 4, 5), "W1 b1 W2 b2", "W1 b1 W2 b2")
    for name, (net, params, grads) in nets.items():
        xx = x.reshape(2, -1) if name.startswith(("Multi", "Two")) else x
        if name == "DeepConvNet":
            xx = np.random.rand(1, 1, 28, 28)
        assert " ".join(net.params) == params, name
        assert " ".join(net.gradient(xx, t[:len(xx)])) == grads, name
        if name not in ("SimpleConvNet", "DeepConvNet"):
            assert " ".join(net.numerical_gradient(xx, t[:len(xx)])) == grads, name


# -- degenerate batches and geometries -----------------------------------------------------------

def test_empty_batches(backend_name):
    with pytest.raises(ValueError, match="the batch is empty"):
        SoftmaxWithLoss().forward(np.zeros((0, 3)), np.zeros(0, dtype=int))
    bn = BatchNormalization(np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="the batch is empty"):
        bn.forward(np.zeros((0, 3)))
    assert bn.running_mean is None or np.isfinite(bn.running_mean).all()
    assert bn.forward(np.zeros((0, 3)), train_flg=False).shape == (0, 3)
    aff = Affine(np.ones((3, 2)), np.zeros(2))
    assert aff.forward(np.zeros((0, 3))).shape == (0, 2)
    dx = aff.backward(np.zeros((0, 2)))
    assert dx.shape == (0, 3)
    np.testing.assert_array_equal(aff.dW, 0)
    np.testing.assert_array_equal(aff.db, 0)
    for layer in (Relu(), Sigmoid()):
        assert layer.forward(np.zeros((0, 4))).shape == (0, 4)
        assert layer.backward(np.zeros((0, 4))).shape == (0, 4)
    with pytest.raises(ValueError, match="the batch is empty"):
        SimpleConvNet().gradient(np.zeros((0, 1, 28, 28)), np.zeros(0, dtype=int))


def test_zero_channels_is_a_clear_error(backend_name):
    with pytest.raises(ValueError, match="has no channels"):
        Convolution(np.zeros((2, 0, 3, 3)), np.zeros(2)).forward(np.zeros((1, 0, 5, 5)))
    with pytest.raises(ValueError, match="has 0 channels"):
        Convolution(np.zeros((2, 3, 3, 3)), np.zeros(2)).forward(np.zeros((1, 0, 5, 5)))


# -- notebooks -----------------------------------------------------------------------------------

def test_a_book_style_notebook_runs_through_a_real_kernel():
    nbformat = pytest.importorskip("nbformat", reason="the test extras install nbformat")
    nbclient = pytest.importorskip("nbclient", reason="the test extras install nbclient")
    path = os.path.join(CORPUS, "notebooks", "book_style.ipynb")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": os.path.dirname(path)}})
    client.execute()
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "common.* and dataset.* now come from fastdl" in text
    assert "load_mnist uses the shipped sample" in text
    assert "from fastdl: True" in text
    acc = float(text.split("test acc:")[1].split()[0])
    assert acc > 0.8
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


def test_install_and_uninstall_in_plain_python():
    from fastdl import book
    code = ("import fastdl.book as b, sys; b.install(sample=True); import common.layers as L; "
            "import fastdl.layers as F; assert L.Affine is F.Affine; import os; "
            "assert os.environ['FASTDL_MNIST'] == 'sample'; b.uninstall(); "
            "assert 'common.layers' not in sys.modules; "
            "assert not any(type(f).__name__ == 'BookImporter' for f in sys.meta_path); print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    assert callable(book.load_ipython_extension)


@pytest.mark.parametrize("name", ["params.pkl", "params.npz", "params", "deep_convnet_params.pkl"])
def test_save_and_load_under_the_books_file_names(tmp_path, name):
    out = run_book("ch07/pkl_names.py", str(tmp_path / name))
    assert out.strip() == "same:True"
    assert (tmp_path / name).read_bytes()[:4] == b"PK\x03\x04"       # npz data whatever the name
