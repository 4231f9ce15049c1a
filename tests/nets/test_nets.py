"""The book's networks: gradient vs numerical_gradient, shared params, dtype, accuracy, save/load."""
import numpy as np
import pytest

from fastdl.nets import DeepConvNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet

TINY_CONV = {"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1}


def tiny_deep(dtype=np.float64):
    small = [{"filter_num": 2, "filter_size": 3, "pad": 1, "stride": 1}] * 6
    return DeepConvNet(input_dim=(1, 8, 8), conv_param_1=small[0], conv_param_2=small[1],
                       conv_param_3=small[2], conv_param_4=small[3], conv_param_5=small[4],
                       conv_param_6=small[5], hidden_size=4, output_size=3, dtype=dtype)


NETS = {
    "TwoLayerNet": (lambda dt=np.float64: TwoLayerNet(5, 4, 3, weight_init_std=0.5, dtype=dt), (4, 5)),
    "MultiLayerNet": (lambda dt=np.float64: MultiLayerNet(5, [4, 3], 3, activation="sigmoid",
                                                          weight_decay_lambda=0.1, dtype=dt), (4, 5)),
    "MultiLayerNetExtend": (lambda dt=np.float64: MultiLayerNetExtend(5, [4, 4], 3, weight_decay_lambda=0.05,
                                                                      use_batchnorm=True, dtype=dt), (6, 5)),
    "SimpleConvNet": (lambda dt=np.float64: SimpleConvNet((2, 6, 5), TINY_CONV, hidden_size=4, output_size=3,
                                                          weight_init_std=0.3, dtype=dt), (2, 2, 6, 5)),
}


@pytest.mark.parametrize("name", list(NETS))
def test_gradient_matches_numerical_gradient(name, backend_name):
    np.random.seed(0)
    make, xshape = NETS[name]
    net = make()
    x = np.random.randn(*xshape)
    t = np.random.randint(0, 3, size=xshape[0])
    num = net.numerical_gradient(x, t)
    grad = net.gradient(x, t)
    assert set(num) == set(grad) == set(net.params)
    for key in net.params:
        assert grad[key].shape == net.params[key].shape
        np.testing.assert_allclose(grad[key], num[key], rtol=1e-4, atol=1e-6, err_msg=key)


def test_deepconvnet_gradient_matches_numerical_gradient_with_dropout_fixed(backend_name, monkeypatch):
    np.random.seed(1)
    net = tiny_deep()
    x = np.random.randn(2, 1, 8, 8)
    t = np.array([0, 2])
    # same dropout mask for every loss evaluation: reseed before each forward
    real_loss = DeepConvNet.loss

    def seeded_loss(self, x, t):
        np.random.seed(7)
        return real_loss(self, x, t)
    monkeypatch.setattr(DeepConvNet, "loss", seeded_loss)
    num = net.numerical_gradient(x, t)
    grad = net.gradient(x, t)
    for key in net.params:
        np.testing.assert_allclose(grad[key], num[key], rtol=1e-4, atol=1e-6, err_msg=key)


def test_params_are_the_layers_arrays_and_optimizer_updates_reach_the_layers():
    from fastdl.optimizers import SGD
    np.random.seed(0)
    net = SimpleConvNet()
    assert net.params["W1"] is net.layers["Conv1"].W
    assert net.params["b2"] is net.layers["Affine1"].b
    d = tiny_deep()
    assert d.params["W1"] is d.layers[0].W and d.params["W8"] is d.layers[18].W
    before = net.layers["Affine2"].W.copy()
    SGD(1.0).update(net.params, {k: np.ones_like(v) for k, v in net.params.items()})
    np.testing.assert_array_equal(net.layers["Affine2"].W, before - 1)


@pytest.mark.parametrize("name", list(NETS) + ["DeepConvNet"])
def test_float32_stays_float32_end_to_end(name, backend_name):
    np.random.seed(0)
    if name == "DeepConvNet":
        net, xshape = tiny_deep(np.float32), (2, 1, 8, 8)
    else:
        make, xshape = NETS[name]
        net = make(np.float32)
    assert all(v.dtype == np.float32 for v in net.params.values())
    x = np.random.randn(*xshape)            # float64 input is converted once, at the door
    t = np.random.randint(0, 3, size=xshape[0])
    assert net.predict(x).dtype == np.float32
    assert np.asarray(net.loss(x, t)).dtype == np.float32
    grads = net.gradient(x, t)
    assert all(g.dtype == np.float32 for g in grads.values())
    layers = net.layers.values() if isinstance(net.layers, dict) else net.layers
    for layer in layers:
        for attr in ("dW", "db", "dgamma", "dbeta", "out"):
            v = getattr(layer, attr, None)
            if isinstance(v, np.ndarray):
                assert v.dtype == np.float32, (type(layer).__name__, attr)


def test_float32_and_float64_nets_agree(backend_name):
    np.random.seed(3)
    n64 = SimpleConvNet((1, 10, 10), TINY_CONV, hidden_size=6, output_size=4)
    np.random.seed(3)
    n32 = SimpleConvNet((1, 10, 10), TINY_CONV, hidden_size=6, output_size=4, dtype=np.float32)
    x = np.random.rand(3, 1, 10, 10)
    t = np.array([0, 1, 3])
    g64, g32 = n64.gradient(x, t), n32.gradient(x, t)
    for k in g64:
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-3, atol=1e-5, err_msg=k)


def test_accuracy_counts_every_sample_including_the_last_partial_batch():
    np.random.seed(0)
    net = TwoLayerNet(4, 3, 2)
    x = np.random.randn(7, 4)
    pred = net.predict(x).argmax(axis=1)
    t = pred.copy()
    t[-1] = 1 - t[-1]                       # the one wrong answer sits in the last partial batch
    assert net.accuracy(x, t, batch_size=3) == pytest.approx(6 / 7)
    assert net.accuracy(x, np.eye(2)[t], batch_size=3) == pytest.approx(6 / 7)


def test_multilayer_extend_batchnorm_eval_uses_running_statistics():
    np.random.seed(0)
    net = MultiLayerNetExtend(3, [4], 2, use_batchnorm=True, use_dropout=True, dropout_ration=0.3)
    x = np.random.randn(8, 3)
    net.loss(x, np.zeros(8, dtype=int), train_flg=True)
    bn = net.layers["BatchNorm1"]
    assert np.any(bn.running_mean != 0) and np.any(bn.running_var != 0)
    # evaluation is deterministic: no dropout mask, running statistics
    np.testing.assert_array_equal(net.predict(x), net.predict(x))


def test_save_and_load_params_roundtrip_in_place(tmp_path):
    np.random.seed(0)
    net = MultiLayerNetExtend(3, [4], 2, use_batchnorm=True)
    net.loss(np.random.randn(5, 3), np.array([0, 1, 0, 1, 1]), train_flg=True)
    path = tmp_path / "p.npz"
    net.save_params(path)
    assert [p.name for p in tmp_path.iterdir()] == ["p.npz"]      # no temporary left behind
    np.random.seed(1)
    other = MultiLayerNetExtend(3, [4], 2, use_batchnorm=True)
    other.loss(np.random.randn(5, 3), np.array([0, 1, 0, 1, 1]), train_flg=True)
    W1 = other.params["W1"]
    other.load_params(path)
    assert other.params["W1"] is W1 and other.layers["Affine1"].W is W1
    for k in net.params:
        np.testing.assert_array_equal(other.params[k], net.params[k])
    np.testing.assert_array_equal(other.layers["BatchNorm1"].running_var, net.layers["BatchNorm1"].running_var)
    x = np.random.randn(4, 3)
    np.testing.assert_array_equal(other.predict(x), net.predict(x))


def test_load_params_rejects_mismatch_pickle_and_missing_files(tmp_path):
    import pickle
    np.random.seed(0)
    net = TwoLayerNet(4, 3, 2)
    net.save_params(tmp_path / "a.npz")
    with pytest.raises(ValueError, match="W1 has shape"):
        TwoLayerNet(5, 3, 2).load_params(tmp_path / "a.npz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        net.load_params(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable"):
        net.load_params(tmp_path / "junk.npz")
    pkl = tmp_path / "params.pkl"
    with open(pkl, "wb") as f:
        pickle.dump({k: v * 2 for k, v in net.params.items()}, f)
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match="allow_pickle=True"):
        net.load_params(pkl)
    for k in before:                                   # nothing changed by the refused load
        np.testing.assert_array_equal(net.params[k], before[k])
    net.load_params(pkl, allow_pickle=True)
    np.testing.assert_array_equal(net.params["W1"], before["W1"] * 2)


def test_simpleconvnet_default_shapes_match_the_book():
    np.random.seed(0)
    net = SimpleConvNet()
    assert net.params["W1"].shape == (30, 1, 5, 5)
    assert net.params["W2"].shape == (4320, 100)
    assert net.params["W3"].shape == (100, 10)
    d = DeepConvNet()
    assert d.params["W7"].shape == (64 * 4 * 4, 50)
    assert len(d.layers) == 20
    # the book reads gradients from layers (0, 2, 5, 7, 10, 12, 15, 18)
    for i, idx in enumerate((0, 2, 5, 7, 10, 12, 15, 18), start=1):
        assert d.layers[idx].W is d.params[f"W{i}"]


# -- fused Convolution -> Relu [-> Pooling] blocks (Net.fuse) ------------------------------

def _fused_and_unfused(make, x_shape, backend_name, dtype):
    import fastdl
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(dtype)
    t = rng.integers(0, 3, size=x_shape[0])
    out = {}
    for fuse in (True, False):
        np.random.seed(1)
        net = make(dtype)
        net.fuse = fuse
        with fastdl.using_backend(backend_name):
            np.random.seed(2)                     # the same dropout masks both times
            grads = net.gradient(x, t)
            np.random.seed(2)
            loss = net.loss(x, t)
            pred = net.predict(x)
        out[fuse] = (grads, loss, pred, net)
    return out


@pytest.mark.parametrize("name", ["SimpleConvNet", "DeepConvNet"])
def test_fused_blocks_give_the_layers_results_exactly(name, backend_name, dtype):
    """Fusing changes where the work happens, not the numbers: every backend's fused ops give
    bit for bit what its Convolution, Relu and Pooling give one after another."""
    make = NETS["SimpleConvNet"][0] if name == "SimpleConvNet" else tiny_deep
    x_shape = NETS["SimpleConvNet"][1] if name == "SimpleConvNet" else (3, 1, 8, 8)
    res = _fused_and_unfused(make, x_shape, backend_name, dtype)
    (g1, l1, p1, net), (g0, l0, p0, _) = res[True], res[False]
    assert l1 == l0
    np.testing.assert_array_equal(p1, p0)
    for k in g0:
        assert g1[k].dtype == dtype
        np.testing.assert_array_equal(g1[k], g0[k], err_msg=k)
    kinds = [type(layer).__name__ for layer in net._plan()]
    assert kinds.count("ConvBlock") == (1 if name == "SimpleConvNet" else 6)


def test_layers_of_a_fused_block_explain_instead_of_running_backward():
    from fastdl.fusion import ConvBlock
    net, shape = NETS["SimpleConvNet"][0](), NETS["SimpleConvNet"][1]
    x = np.random.default_rng(0).standard_normal(shape)
    net.fuse = False
    net.predict(x)                      # every layer now holds a forward state of its own ...
    net.fuse = True
    net.predict(x)                      # ... which the fused run drops: it is never used stale
    for name in ("Conv1", "Relu1", "Pool1"):
        with pytest.raises(RuntimeError, match=r"backward called before forward.*net.fuse = False"):
            net.layers[name].backward(np.ones(1))
    # the block keeps its own state: a layer run on its own afterwards changes nothing in it
    block = net._last_plan[0]
    assert isinstance(block, ConvBlock) and block.layers == (net.layers["Conv1"], net.layers["Relu1"],
                                                              net.layers["Pool1"])
    dout = np.ones(net.layers["Pool1"].output_shape(net.layers["Conv1"].prepare(x)[1]))
    block.backward(dout)
    dW = net.layers["Conv1"].dW.copy()
    c = net.layers["Conv1"].forward(x[:1] * 2)
    assert net.layers["Conv1"].backward(np.ones_like(c)).shape == x[:1].shape
    block.backward(dout)
    np.testing.assert_array_equal(net.layers["Conv1"].dW, dW)
    # unfused, every layer keeps its own state (the book's behaviour)
    net.fuse = False
    net.predict(x)
    assert net.layers["Relu1"].mask is not None and net.layers["Relu1"].mask.shape[1] == 3


def test_only_the_books_own_layer_classes_are_fused():
    from fastdl.layers import Relu

    class MyRelu(Relu):
        pass

    net = NETS["SimpleConvNet"][0]()
    net.layers["Relu1"] = MyRelu()
    assert [type(layer).__name__ for layer in net._plan()][:2] == ["Convolution", "MyRelu"]
    x = np.random.default_rng(0).standard_normal(NETS["SimpleConvNet"][1])
    grads = net.gradient(x, np.array([0, 1]))
    assert grads["W1"].shape == net.params["W1"].shape


# -- arguments that are certainly mistakes are refused in one line naming them ----------------------
@pytest.mark.parametrize("make, exc, match", [
    (lambda: TwoLayerNet(784, 10, 0), ValueError, "TwoLayerNet: output_size must be >= 1, got 0"),
    (lambda: TwoLayerNet(784, -3, 10), ValueError, "TwoLayerNet: hidden_size must be >= 1"),
    (lambda: TwoLayerNet(784.0, 10, 10), TypeError, "TwoLayerNet: input_size must be an integer"),
    (lambda: TwoLayerNet(784, True, 10), TypeError, "TwoLayerNet: hidden_size must be an integer"),
    (lambda: TwoLayerNet(784, 10, 10, weight_init_std=float("nan")), ValueError, "weight_init_std must be a finite"),
    (lambda: MultiLayerNet(784, [0], 10), ValueError, r"MultiLayerNet: hidden_size_list\[0\] must be >= 1, got 0"),
    (lambda: MultiLayerNet(784, [50, 2.5], 10), TypeError, r"hidden_size_list\[1\] must be an integer"),
    (lambda: MultiLayerNet(784, 100, 10), TypeError, "hidden_size_list must be a list of ints"),
    (lambda: MultiLayerNet(0, [5], 10), ValueError, "MultiLayerNet: input_size must be >= 1"),
    (lambda: MultiLayerNet(784, [5], 10, weight_decay_lambda=-0.1), ValueError, "weight_decay_lambda must be a finite number >= 0"),
    (lambda: MultiLayerNet(784, [5], 10, weight_decay_lambda=float("inf")), ValueError, "weight_decay_lambda"),
    (lambda: MultiLayerNet(784, [5], 10, weight_init_std=float("inf")), ValueError, "weight_init_std must be a finite"),
    (lambda: MultiLayerNetExtend(784, [5], 10, use_dropout=True, dropout_ration=1.0), ValueError, r"dropout_ratio must be in \[0, 1\)"),
    (lambda: MultiLayerNetExtend(784, [5], 0), ValueError, "MultiLayerNetExtend: output_size must be >= 1"),
    (lambda: SimpleConvNet((1, 0, 28)), ValueError, r"SimpleConvNet: input_dim\[1\] must be >= 1"),
    (lambda: SimpleConvNet((1, 28)), ValueError, "SimpleConvNet: input_dim must be"),
    (lambda: SimpleConvNet(hidden_size=0), ValueError, "SimpleConvNet: hidden_size must be >= 1"),
    (lambda: SimpleConvNet(conv_param={"filter_num": 30, "filter_size": 5, "pad": 0}), ValueError,
     r"conv_param must have the keys .*missing \['stride'\]"),
    (lambda: SimpleConvNet(conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1, "strides": 2}),
     ValueError, r"unknown \['strides'\]"),
    (lambda: SimpleConvNet(conv_param={"filter_num": 0, "filter_size": 5, "pad": 0, "stride": 1}), ValueError,
     r"conv_param\['filter_num'\] must be >= 1"),
    (lambda: SimpleConvNet(conv_param={"filter_num": 3, "filter_size": 5, "pad": -1, "stride": 1}), ValueError,
     r"conv_param\['pad'\] must be >= 0"),
    (lambda: DeepConvNet(conv_param_3={"filter_num": 32, "filter_size": 3, "pad": 1, "stride": 0}), ValueError,
     r"DeepConvNet: conv_param_3\['stride'\] must be >= 1"),
    (lambda: DeepConvNet(output_size=0), ValueError, "DeepConvNet: output_size must be >= 1"),
])
def test_net_arguments_that_are_certainly_mistakes_are_refused(make, exc, match):
    with pytest.raises(exc, match=match) as e:
        make()
    assert "\n" not in str(e.value)


def test_the_books_own_values_and_numpy_integers_are_accepted():
    np.random.seed(0)
    TwoLayerNet(input_size=np.int64(784), hidden_size=50, output_size=10)
    MultiLayerNet(784, [100] * 5, 10, weight_init_std="relu", weight_decay_lambda=10 ** np.random.uniform(-8, -4))
    MultiLayerNet(784, [], 10, weight_init_std=0.01)                 # no hidden layer
    MultiLayerNetExtend(784, [100] * 5, 10, weight_init_std="sigmoid", use_batchnorm=True,
                        use_dropout=True, dropout_ration=0.0)
    SimpleConvNet(input_dim=(1, 28, 28), conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1},
                  hidden_size=100, output_size=10, weight_init_std=0.01)
    net = DeepConvNet()
    assert net._config["conv_param_4"] == {"filter_num": 32, "filter_size": 3, "pad": 2, "stride": 1}


@pytest.mark.parametrize("bad, exc, match", [(-1, ValueError, "batch_size must be >= 1, got -1"),
                                             (0, ValueError, "batch_size must be >= 1, got 0"),
                                             (2.5, TypeError, "batch_size must be an integer, got float"),
                                             (True, TypeError, "batch_size must be an integer, got bool"),
                                             ("10", TypeError, "batch_size must be an integer")])
def test_accuracy_batch_size_must_be_a_positive_integer(bad, exc, match):
    np.random.seed(0)
    net = TwoLayerNet(5, 4, 3)
    x, t = np.random.randn(7, 5), np.arange(7) % 3
    with pytest.raises(exc, match=f"TwoLayerNet.accuracy: {match}"):
        net.accuracy(x, t, batch_size=bad)
    assert net.accuracy(x, t, batch_size=np.int32(3)) == net.accuracy(x, t, batch_size=100)


def test_the_public_import_paths_of_the_nets_modules():
    """Summary and the parameter files live in modules of their own; every name is still where
    readers import it from."""
    import fastdl
    import fastdl.nets as N
    from fastdl.nets import base, files, rebuild, summary
    assert fastdl.load_model is N.load_model is rebuild.load_model
    assert N.read_meta is base.read_meta is files.read_meta and N.read_extra is files.read_extra
    assert N.Summary is base.Summary is summary.Summary and N.SummaryRow is summary.SummaryRow
    assert N.Net is base.Net and base.EXTRA_PREFIX == files.EXTRA_PREFIX
    assert base.make_dtype("float32") == np.float32
    net = TwoLayerNet(4, 3, 2)
    assert isinstance(net.summary(), summary.Summary)


@pytest.mark.parametrize("package", ["nets", "search"])
def test_no_module_of_nets_or_search_is_over_600_lines(package):
    import os
    import fastdl
    folder = os.path.join(os.path.dirname(fastdl.__file__), package)
    sizes = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                sizes[name] = sum(1 for _ in f)
    assert sizes and max(sizes.values()) <= 600, sizes


def test_the_networks_load_model_rebuilds_are_the_ones_whose_files_name_them():
    from fastdl.nets import files, rebuild
    classes = rebuild._model_classes()
    assert tuple(classes) == files.REBUILT
    assert {c.__module__ for c in classes.values()} == set(files.REBUILT_MODULES)

    class Mine(TwoLayerNet):              # a subclass may take other arguments: not rebuilt
        pass
    assert files.model_meta(TwoLayerNet(3, 2, 2))["class"] == "TwoLayerNet"
    assert files.model_meta(Mine(3, 2, 2)) is None
