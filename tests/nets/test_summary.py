"""Net.summary() and the layers' cost(input_shape): output shapes, parameter counts, bytes and
forward FLOPs, checked against numbers computed here from the formulas written out (the
convention of fastdl.layers: a multiply-add counts 2 FLOPs), not from the implementation's output."""
import numpy as np
import pytest

from fastdl import fusion
from fastdl.layers import (Affine, AvgPooling, BatchNormalization, Convolution, Cost, Dropout, Pooling, Relu,
                           Sigmoid, SoftmaxWithLoss)
from fastdl.nets import DeepConvNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet


def out_size(size, filter_size, stride, pad):
    """The book's (H + 2*pad - FH) / stride + 1."""
    return (size + 2 * pad - filter_size) // stride + 1


def affine(N, D, M):
    """(output shape, params, FLOPs) of an Affine D -> M on N rows: x @ W is N*M dot products of
    length D (D multiply-adds each), then N*M bias additions."""
    return (N, M), D * M + M, 2 * N * D * M + N * M


def conv(N, C, H, FN, K, pad, stride=1):
    """(output shape, params, FLOPs) of FN KxK filters over (N, C, H, H): each output element is
    C*K*K multiply-adds plus one bias addition."""
    OH = out_size(H, K, stride, pad)
    return (N, FN, OH, OH), FN * C * K * K + FN, 2 * N * FN * OH * OH * C * K * K + N * FN * OH * OH


def relu(shape):
    """One comparison per element."""
    return tuple(shape), 0, int(np.prod(shape))


def pool(shape, size=2):
    """size x size windows, stride size: one comparison per window element per output."""
    N, C, H, W = shape
    out = (N, C, out_size(H, size, size, 0), out_size(W, size, size, 0))
    return out, 0, int(np.prod(out)) * size * size


def dropout(shape):
    """One multiplication per element."""
    return tuple(shape), 0, int(np.prod(shape))


def simple_conv_rows(N):
    """SimpleConvNet's defaults: 30 5x5 filters on 1x28x28, pool 2x2, hidden 100, output 10."""
    rows = [conv(N, 1, 28, 30, 5, pad=0)]                 # (N, 30, 24, 24)
    rows.append(relu(rows[-1][0]))
    rows.append(pool(rows[-1][0]))                         # (N, 30, 12, 12)
    rows.append(affine(N, 30 * 12 * 12, 100))
    rows.append(relu(rows[-1][0]))
    rows.append(affine(N, 100, 10))
    return rows


def deep_conv_rows(N):
    """The book's DeepConvNet: 3x3 convolutions of 16, 16, 32, 32, 64, 64 filters, pads
    1, 1, 1, 2, 1, 1, a 2x2 pool after every second one, Affine 64*4*4 -> 50 -> 10, Dropouts."""
    rows, C, H = [], 1, 28
    for i, (FN, pad) in enumerate([(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)], start=1):
        rows.append(conv(N, C, H, FN, 3, pad))
        rows.append(relu(rows[-1][0]))
        if i % 2 == 0:
            rows.append(pool(rows[-1][0]))
        _, C, H, _ = rows[-1][0]
    assert (C, H) == (64, 4)                               # 28 -> 28 -> 28 -> 14 -> 14 -> 16 -> 8 -> 8 -> 8 -> 4
    rows.append(affine(N, 64 * 4 * 4, 50))
    rows.append(relu(rows[-1][0]))
    rows.append(dropout(rows[-1][0]))
    rows.append(affine(N, 50, 10))
    rows.append(dropout(rows[-1][0]))
    return rows


def got(summary):
    return [(r.output_shape, r.params, r.flops) for r in summary.rows]


def summary_as_by_hand(net_class, rows_by_hand, batch):
    """(net, its summary, the rows by hand) of a default net_class; the summary's rows are those."""
    np.random.seed(0)
    net = net_class()
    want = rows_by_hand(batch)
    s = net.summary(batch_size=batch)
    assert got(s) == want
    return net, s, want


@pytest.mark.parametrize("batch", [1, 100])
def test_simple_conv_net(batch):
    net, s, want = summary_as_by_hand(SimpleConvNet, simple_conv_rows, batch)
    assert s.params == 780 + 432_100 + 1_010 == sum(p for _, p, _ in want)
    assert s.param_bytes == 8 * s.params
    assert s.flops == sum(f for _, _, f in want)
    assert s.complete and s.input_shape == (1, 28, 28) and s.batch_size == batch
    # the parameters are the network's own
    assert s.params == sum(v.size for v in net.params.values())
    if batch == 1:
        assert s.flops == 881_280 + 17_280 + 17_280 + 864_100 + 100 + 2_010


@pytest.mark.parametrize("batch", [1, 100])
def test_deep_conv_net(batch):
    net, s, want = summary_as_by_hand(DeepConvNet, deep_conv_rows, batch)
    assert s.params == sum(p for _, p, _ in want) == sum(v.size for v in net.params.values())
    assert s.flops == sum(f for _, _, f in want)
    assert s.param_bytes == 8 * s.params
    assert s.rows[-1].output_shape == (batch, 10)


def test_mlp_with_batchnorm_dropout_and_sigmoid():
    np.random.seed(0)
    net = MultiLayerNetExtend(784, [100, 50], 10, activation="sigmoid", use_batchnorm=True,
                              use_dropout=True, dtype=np.float32)
    N = 7
    s = net.summary(batch_size=N)
    want = []
    for D, M in ((784, 100), (100, 50)):
        want.append(affine(N, D, M))
        want.append(((N, M), 2 * M, 4 * N * M))           # BatchNorm: gamma and beta; 4 per element
        want.append(((N, M), 0, 4 * N * M))               # Sigmoid: negate, exp, add 1, divide
        want.append(dropout((N, M)))
    want.append(affine(N, 50, 10))
    assert got(s) == want
    assert s.param_bytes == 4 * s.params                  # float32
    assert s.params == sum(v.size for v in net.params.values())
    assert [r.name for r in s.rows][:4] == ["Affine1", "BatchNorm1", "Activation_function1", "Dropout1"]


def test_two_layer_net_knows_its_input_size():
    np.random.seed(0)
    net = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)
    assert net.input_size == 784
    assert got(net.summary(batch_size=3)) == [affine(3, 784, 50), relu((3, 50)), affine(3, 50, 10)]
    assert SimpleConvNet(input_dim=(3, 32, 32)).summary().rows[0].output_shape == (1, 30, 28, 28)


def test_fuse_groups_the_fused_layers_and_changes_no_number():
    np.random.seed(0)
    net = DeepConvNet(dtype=np.float32)
    fused = net.summary()
    net.fuse = False
    plain = net.summary()
    assert got(fused) == got(plain)
    assert [r.block for r in plain.rows] == [None] * 20
    # Conv -> Relu, Conv -> Relu -> Pool, three times; the Affine part runs layer by layer
    assert [r.block for r in fused.rows] == [1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6] + [None] * 5
    assert fused.rows[0].block is not None
    assert "[fused]" not in str(plain) and "fuse off" in str(plain)
    text = str(fused)
    assert "[fused] ConvBlock 2: 2 -> 3 -> 4" in text and "fuse on" in text
    # a ConvBlock's own cost is its layers' added up
    net.fuse = True
    block = fusion.plan(net.layers)[1]
    c = block.cost((5, 16, 28, 28))
    parts = [r for r in net.summary(batch_size=5).rows if r.block == 2]
    assert c == Cost(parts[-1].output_shape, sum(r.params for r in parts), sum(r.param_bytes for r in parts),
                     sum(r.flops for r in parts))


def test_the_printed_table():
    np.random.seed(0)
    text = str(SimpleConvNet().summary())
    assert repr(SimpleConvNet().summary()) == text          # shown as the table at a prompt too
    lines = text.splitlines()
    assert lines[0] == "SimpleConvNet (float64): input (1, 28, 28), batch 1, fuse on"
    assert lines[1].split() == ["Layer", "Output", "shape", "Params", "Bytes", "FLOPs"]
    assert lines[3] == "[fused] ConvBlock 1: Conv1 -> Relu1 -> Pool1, run as one op"
    assert lines[4].startswith("  | Conv1: Convolution(W=(30, 1, 5, 5), stride=1, pad=0, float64)")
    assert lines[4].split()[-3:] == ["780", "6,240", "881,280"]
    total = next(line for line in lines if line.startswith("Total"))
    assert total.split() == ["Total", "433,890", f"{8 * 433_890:,}", "1,782,050"]
    assert "last_layer: SoftmaxWithLoss() -> (), 42 FLOPs" in text   # 4*1*10 + 2*1, not in the total
    assert "?" not in text


def test_float32_and_float64_differ_only_in_bytes():
    np.random.seed(0)
    s64 = SimpleConvNet().summary()
    s32 = SimpleConvNet(dtype=np.float32).summary()
    assert got(s64) == got(s32)
    assert s64.param_bytes == 2 * s32.param_bytes == 8 * 433_890


class Doubler:
    """A reader's own layer, as in the book: forward and backward only."""

    def forward(self, x):
        return 2 * x

    def backward(self, dout):
        return 2 * dout


class Scale:
    """A reader's own layer holding one of the network's parameters."""

    def __init__(self, w):
        self.w = w

    def forward(self, x):
        return x * self.w

    def backward(self, dout):
        return dout * self.w


def test_a_layer_without_cost_shows_question_marks():
    np.random.seed(0)
    net = TwoLayerNet(4, 5, 3)
    net.params["s"] = np.ones(5)
    layers = list(net.layers.items())
    net.layers.clear()
    for name, layer in layers[:2] + [("Mine", Doubler()), ("Scale", Scale(net.params["s"]))] + layers[2:]:
        net.layers[name] = layer
    s = net.summary()
    rows = {r.name: r for r in s.rows}
    assert rows["Relu1"].output_shape == (1, 5)
    assert rows["Mine"].output_shape is None and rows["Mine"].flops is None and rows["Mine"].params == 0
    # after it the input shape is unknown: shapes and FLOPs too; parameters still counted
    assert rows["Scale"].params == 5 and rows["Scale"].flops is None
    assert rows["Affine2"].output_shape is None and rows["Affine2"].params == 5 * 3 + 3
    assert not s.complete and s.params == 4 * 5 + 5 + 5 + 18
    text = str(s)
    assert "Mine: <" in text and " ? " in text and "+ ?" in text
    assert "? = not known" in text


def test_summary_runs_nothing():
    np.random.seed(0)
    net = SimpleConvNet()
    state = np.random.get_state()[1].copy()
    net.summary(batch_size=10)
    assert np.array_equal(np.random.get_state()[1], state)
    assert all(getattr(layer, "x", None) is None for layer in net.layers.values())
    assert net.layers["Relu1"].mask is None


def test_bad_arguments():
    np.random.seed(0)
    net = SimpleConvNet()
    with pytest.raises(ValueError, match="batch_size"):
        net.summary(batch_size=0)
    with pytest.raises(ValueError, match="Affine.cost"):
        net.summary(input_shape=(1, 20, 20))               # 30*8*8 features, W expects 4320
    with pytest.raises(ValueError, match="channels"):
        net.summary(input_shape=(3, 28, 28))


# -- each layer's convention, on its own ---------------------------------------------------------

def test_layer_costs():
    W = np.zeros((8, 3, 3, 3), np.float32)
    c = Convolution(W, np.zeros(8, np.float32), stride=2, pad=1).cost((4, 3, 9, 9))
    OH = out_size(9, 3, 2, 1)                              # 5
    assert c == Cost((4, 8, OH, OH), 8 * 3 * 9 + 8, 4 * (8 * 3 * 9 + 8),
                     2 * 4 * 8 * OH * OH * 3 * 3 * 3 + 4 * 8 * OH * OH)
    assert Affine(np.zeros((12, 5)), np.zeros(5)).cost((2, 3, 2, 2)) == Cost((2, 5), 65, 8 * 65, 2 * 2 * 12 * 5 + 2 * 5)
    assert Relu().cost((2, 3)) == Cost((2, 3), 0, 0, 6)
    assert Sigmoid().cost((2, 3)) == Cost((2, 3), 0, 0, 24)
    assert Dropout(0.3).cost((2, 3)) == Cost((2, 3), 0, 0, 6)
    assert BatchNormalization(np.ones(12), np.zeros(12)).cost((2, 3, 2, 2)) == Cost((2, 3, 2, 2), 24, 192, 4 * 24)
    assert Pooling(3, 3, stride=3).cost((1, 2, 9, 9)) == Cost((1, 2, 3, 3), 0, 0, 2 * 3 * 3 * 9)
    assert AvgPooling(2, 2).cost((1, 2, 8, 8)) == Pooling(2, 2).cost((1, 2, 8, 8))
    assert SoftmaxWithLoss().cost((5, 10)) == Cost((), 0, 0, 4 * 5 * 10 + 2 * 5)


def test_avg_pooling_repr():
    # the other layers' reprs are in test_layer_contract.py
    assert repr(AvgPooling(2, 2)) == "AvgPooling(pool_h=2, pool_w=2, stride=2, pad=0)"


def test_a_network_that_does_not_say_its_input_needs_input_shape():
    np.random.seed(0)
    net = TwoLayerNet(4, 5, 3)
    del net.input_size                                     # as a reader's own Net subclass might be
    with pytest.raises(ValueError, match="pass input_shape"):
        net.summary()
    assert net.summary(input_shape=(4,), batch_size=2).rows[-1].output_shape == (2, 3)
