"""What every layer declares about itself (train_flg, repr, describe, reset), the fusion plan that
owns its own state, and device placement going through the backend's ops only."""
import json
import os
import re

import numpy as np
import pytest

import fastdl
from fastdl import fusion, layers, optimizers, torch_peer
from fastdl.layers import (AddLayer, Affine, BatchNormalization, Convolution, Dropout, MulLayer, Pooling, Relu,
                           Sigmoid, SoftmaxWithLoss, run_forward, takes_train_flg)
from fastdl.nets import DeepConvNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet
from fastdl.util import col2im, im2col

PACKAGE = os.path.dirname(fastdl.__file__)


def _all_layers():
    return [Convolution(np.zeros((30, 1, 5, 5), np.float32), 0), Pooling(2, 2), Relu(), Sigmoid(),
            Affine(np.zeros((784, 100)), np.zeros(100)), Dropout(0.5),
            BatchNormalization(np.ones(100), np.zeros(100)), SoftmaxWithLoss(), MulLayer(), AddLayer()]


# -- train/eval ----------------------------------------------------------------------------

def test_the_books_layers_declare_whether_they_take_train_flg():
    aware = {type(layer).__name__ for layer in _all_layers() if takes_train_flg(layer)}
    assert aware == {"Dropout", "BatchNormalization"}
    assert fusion.ConvBlock.train_flg_aware is False


class _Recorder:
    """A reader's own layer, written as in the book: no train_flg_aware attribute."""

    def __init__(self):
        self.seen = []

    def forward(self, x, train_flg=True):
        self.seen.append(train_flg)
        return x

    def backward(self, dout):
        return dout


class _Plain:
    def forward(self, x):
        return x * 2

    def backward(self, dout):
        return dout * 2


def test_a_users_layer_gets_train_flg_when_its_forward_takes_it():
    rec, plain = _Recorder(), _Plain()
    assert takes_train_flg(rec) and not takes_train_flg(plain)
    assert run_forward(rec, 1.0, False) == 1.0 and rec.seen == [False]
    assert run_forward(plain, 1.0, True) == 2.0

    class MyRelu(Relu):                       # inherits the declaration with forward
        pass

    class NoisyRelu(Relu):                    # overrides forward with train_flg: inspected
        def forward(self, x, train_flg=True):
            return super().forward(x)
    assert not takes_train_flg(MyRelu()) and takes_train_flg(NoisyRelu())

    np.random.seed(0)
    net = MultiLayerNetExtend(4, [5], 3)
    net.layers["Recorder"] = rec
    rec.seen.clear()
    x, t = np.random.default_rng(0).standard_normal((2, 4)), np.array([0, 2])
    net.predict(x)
    net.gradient(x, t)
    net.predict(x, train_flg=True)
    assert rec.seen == [False, True, True]


# -- repr and describe --------------------------------------------------------------------

def test_layer_reprs_show_their_configuration():
    assert [repr(layer) for layer in _all_layers()] == [
        "Convolution(W=(30, 1, 5, 5), stride=1, pad=0, float32)",
        "Pooling(pool_h=2, pool_w=2, stride=2, pad=0)",
        "Relu()",
        "Sigmoid()",
        "Affine(W=(784, 100), float64)",
        "Dropout(dropout_ratio=0.5)",
        "BatchNormalization(gamma=(100,), momentum=0.9, float64)",
        "SoftmaxWithLoss()",
        "MulLayer()",
        "AddLayer()",
    ]


def test_optimizer_and_network_reprs_are_short():
    assert repr(optimizers.Adam()) == "Adam(lr=0.001, beta1=0.9, beta2=0.999)"
    assert repr(optimizers.SGD(0.1)) == "SGD(lr=0.1)"
    assert repr(optimizers.RMSprop()) == "RMSprop(lr=0.01, decay_rate=0.99)"
    np.random.seed(0)
    text = repr(TwoLayerNet(784, 50, 10, dtype=np.float32))
    lines = text.splitlines()
    assert lines[0] == "TwoLayerNet(float32, 39,760 parameters)"
    assert lines[1:] == ["  Affine1: Affine(W=(784, 50), float32)", "  Relu1: Relu()",
                         "  Affine2: Affine(W=(50, 10), float32)", "  last_layer: SoftmaxWithLoss()"]
    deep = repr(DeepConvNet()).splitlines()
    assert deep[0].startswith("DeepConvNet(float64, ") and len(deep) == 1 + 20 + 1
    assert deep[1] == "  0: Convolution(W=(16, 1, 3, 3), stride=1, pad=1, float64)"


def test_layers_describe_their_row_and_pytorch_counterpart():
    got = {type(layer).__name__: layer.describe((2, 1, 28, 28)) for layer in _all_layers()
           if hasattr(layer, "describe")}
    assert got["Convolution"] == ("Convolution W30x1x5x5 s1 p0", "nn.Conv2d(1, 30, (5, 5), stride=1, padding=0)")
    assert got["Pooling"] == ("Pooling 2x2 s2 p0", "nn.MaxPool2d((2, 2), stride=2, padding=0)")
    assert got["Affine"] == ("Affine 784x100", "nn.Sequential(nn.Flatten(), nn.Linear(784, 100))")
    assert got["Relu"] == ("Relu", "nn.ReLU()") and got["Sigmoid"] == ("Sigmoid", "nn.Sigmoid()")
    assert got["Dropout"] == ("Dropout 0.5", "nn.Dropout(0.5)")
    assert got["BatchNormalization"][1].startswith("nn.Sequential(nn.Flatten(), nn.BatchNorm1d(100, ")
    assert BatchNormalization(np.ones(3), np.zeros(3)).describe((4, 3))[1] == \
        "nn.BatchNorm1d(3, eps=1e-06, momentum=0.1)"
    assert got["SoftmaxWithLoss"] == ("SoftmaxWithLoss", None)


@pytest.mark.skipif(not torch_peer.available(), reason="needs PyTorch")
def test_the_torch_peer_builds_every_module_a_layer_writes(tmp_path):
    """No per-kind code in torch_peer: it evaluates what each layer's describe wrote."""
    shapes = [(2, 1, 6, 6), (2, 1, 6, 6), (2, 3), (2, 3), (2, 1, 3, 3), (2, 3), (2, 1, 2, 2), (2, 3)]
    made = [Convolution(np.zeros((2, 1, 3, 3)), 0, pad=1), Pooling(2, 2), Relu(), Sigmoid(),
            Affine(np.zeros((9, 4)), 0), Dropout(0.3), BatchNormalization(np.ones(4), np.zeros(4)),
            SoftmaxWithLoss()]
    spec = [{"x": list(s), "torch": layer.describe(s)[1]} for layer, s in zip(made, shapes)]
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    res = torch_peer.measure(["--layers", str(path), "--dtype", "float32", "--repeat", "1"], timeout=600)
    assert res is not None
    assert [ms is None for ms in res["layers"]] == [False] * 7 + [True]


# -- fusion: a plan of the network, with its own state -------------------------------------

def test_no_layer_carries_fusion_state():
    np.random.seed(0)
    net = SimpleConvNet((1, 6, 6), {"filter_num": 2, "filter_size": 3, "pad": 1, "stride": 1}, hidden_size=4,
                        output_size=3)
    net.gradient(np.zeros((2, 1, 6, 6)), np.array([0, 1]))
    for layer in net._layer_list() + _all_layers() + [net.last_layer]:
        assert not any("fused" in name for name in vars(layer)), layer
    for rel in _sources("layers") + ["fusion.py", os.path.join("nets", "base.py")]:
        assert "_fused_into" not in _source(rel), rel


def test_the_plan_replaces_exact_conv_relu_pool_runs():
    conv = Convolution(np.ones((2, 1, 3, 3)), 0)
    steps = fusion.plan([conv, Relu(), Pooling(2, 2), Relu(), conv, Relu(), Sigmoid()])
    assert [type(s).__name__ for s in steps] == ["ConvBlock", "Relu", "ConvBlock", "Sigmoid"]
    assert steps[0].pool is not None and steps[2].pool is None
    assert not hasattr(layers, "ConvBlock")              # a fused block is fusion's alone


def test_a_fused_forward_resets_the_layers_and_the_block_backward_matches_them():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 6, 6))
    conv, relu, pool = Convolution(rng.standard_normal((2, 1, 3, 3)), np.zeros(2), pad=1), Relu(), Pooling(2, 2)
    out = pool.forward(relu.forward(conv.forward(x)))          # each layer holds its own state now
    dout = rng.standard_normal(out.shape)
    conv.backward(relu.backward(pool.backward(dout)))
    dW, db = conv.dW.copy(), conv.db.copy()
    block = fusion.ConvBlock(conv, relu, pool)
    with pytest.raises(RuntimeError, match="ConvBlock.backward called before forward"):
        block.backward(dout)
    np.testing.assert_array_equal(block.forward(x), out)
    for layer in (conv, relu, pool):
        with pytest.raises(RuntimeError, match=r"called before forward .*reset\(\)"):
            layer.backward(dout)
    conv.dW = conv.db = None
    block.backward(dout)
    np.testing.assert_array_equal(conv.dW, dW)
    np.testing.assert_array_equal(conv.db, db)
    with pytest.raises(ValueError, match=r"ConvBlock.backward: dout must have the forward output's shape"):
        block.backward(dout[:, :1])


def test_reset_drops_the_forward_state():
    a = Affine(np.ones((3, 2)), 0)
    a.forward(np.ones((4, 3)))
    a.backward(np.ones((4, 2)))
    a.reset()
    assert a.dW is not None                                    # gradients are results: they stay
    with pytest.raises(RuntimeError, match=r"^Affine\.backward called before forward"):
        a.backward(np.ones((4, 2)))


# -- device placement: through the backend's ops only --------------------------------------

def _sources(folder):
    """The .py files of a folder of the package, as paths relative to the package."""
    return [os.path.join(folder, n) for n in sorted(os.listdir(os.path.join(PACKAGE, folder))) if n.endswith(".py")]


def _source(rel):
    with open(os.path.join(PACKAGE, rel)) as f:
        return f.read()


def test_layers_optimizers_and_nets_contain_no_device_branches():
    files = ["optimizers.py", "fusion.py"] + _sources("layers") + _sources("nets")
    banned = re.compile(r"is_device_array|copy_to_host|copy_to_device|backend\.ops\(\"cuda\"\)|hasattr\(ops")
    for rel in files:
        assert not banned.findall(_source(rel)), rel


def test_no_lists_of_layer_types_outside_the_layers():
    for rel in ["compare.py", "bench.py", "util.py", "torch_peer.py", os.path.join("nets", "base.py")]:
        text = _source(rel)
        assert not re.search(r"isinstance\([^)]*\b(Dropout|BatchNormalization|Convolution|Affine|Relu)\b", text), rel
        assert "dropout_ratio" not in text and '"kind"' not in text, rel


def test_net_to_cpu_keeps_host_arrays_and_their_sharing():
    np.random.seed(0)
    net = MultiLayerNetExtend(4, [5], 3, use_batchnorm=True)
    net.predict(np.ones((2, 4)), train_flg=True)
    before = dict(net.params)
    rm = net.layers["BatchNorm1"].running_mean
    assert net.to("cpu") is net and net.device == "cpu"
    assert all(net.params[k] is before[k] for k in before)
    assert net.layers["BatchNorm1"].running_mean is rm and net.layers["Affine1"].W is net.params["W1"]
    with pytest.raises(ValueError, match="device must be 'cuda' or 'cpu'"):
        net.to("tpu")


def test_weight_decay_gradient_unchanged_by_going_through_the_ops():
    from fastdl.nets import MultiLayerNet
    np.random.seed(0)
    net = MultiLayerNet(4, [5], 3, weight_decay_lambda=0.1)
    x, t = np.random.default_rng(0).standard_normal((3, 4)), np.array([0, 1, 2])
    g = net.gradient(x, t)
    plain = net.layers["Affine1"].dW + net.dtype.type(0.1) * net.params["W1"]
    np.testing.assert_array_equal(g["W1"], plain)


def test_wrong_rank_and_dtype():
    with pytest.raises(ValueError, match=r"x must be 4-D, got 2-D array of shape \(3, 4\)"):
        Convolution(np.zeros((1, 1, 2, 2)), np.zeros(1)).forward(np.zeros((3, 4)))
    with pytest.raises(TypeError, match="x must hold real numbers .* got complex numbers"):
        Relu().forward(np.arange(3) * 1j)
    with pytest.raises(TypeError, match="input_data must hold real numbers .* got dtype <U1"):
        im2col(np.full((1, 1, 3, 3), "a"), 2, 2)
    with pytest.raises(ValueError, match=r"col must have shape \(4, 4\)"):
        col2im(np.zeros((3, 4)), (1, 1, 3, 3), 2, 2)
    with pytest.raises(ValueError, match=r"b must have shape \(3,\) to match W \(2, 3\) \(or be a scalar\)"):
        Affine(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(TypeError, match="b must hold real numbers"):
        Affine(np.zeros((2, 3)), np.array(["a", "b", "c"]))


def test_backward_before_forward_and_wrong_dout_shape():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        Relu().backward(np.zeros(3))
    a = Affine(np.zeros((2, 3)), np.zeros(3))
    a.forward(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"dout must have the forward output's shape \(4, 3\), got \(4, 2\)"):
        a.backward(np.zeros((4, 2)))


def test_no_layer_mutates_its_inputs(backend_name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 6, 6))
    layers = [Convolution(rng.standard_normal((3, 2, 3, 3)), np.zeros(3), 1, 1), Relu(), Pooling(2, 2, 2, 1)]
    for layer in layers:
        xc = x.copy()
        out = layer.forward(x)
        np.testing.assert_array_equal(x, xc)
        d = rng.standard_normal(out.shape)
        dc = d.copy()
        layer.backward(d)
        np.testing.assert_array_equal(d, dc)
        x = out
