"""What a user does with a network besides training it: save it and load it back (into a fresh
instance and with ``fastdl.load_model``, for every network and every option), keep the caller's
own arrays in the same file (``extra``), pickle it, deep-copy it, send it to another process.

Real files in pytest's tmp folders and real ``spawn`` processes; tiny shapes.
"""
import itertools
import json
import multiprocessing
import os
import pickle

import numpy as np
import pytest

import fastdl
from fastdl.nets import (DeepConvNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet,
                         load_model, read_extra, read_meta)
from fastdl.optimizers import SGD

TINY_CONV = {"filter_num": 2, "filter_size": 3, "pad": 1, "stride": 1}
DEEP_CONV = {f"conv_param_{i}": dict(TINY_CONV) for i in range(1, 7)}


def _mlp_configs():
    for cls, bn, drop, act, wd in itertools.product(
            ("MultiLayerNet", "MultiLayerNetExtend"), (False, True), (False, True), ("relu", "sigmoid"), (0, 0.1)):
        if cls == "MultiLayerNet" and (bn or drop):
            continue
        kw = {"input_size": 5, "hidden_size_list": [4, 3], "output_size": 3, "activation": act,
              "weight_decay_lambda": wd}
        if cls == "MultiLayerNetExtend":
            kw.update(use_batchnorm=bn, use_dropout=drop, dropout_ration=0.3)
        yield f"{cls}-bn{int(bn)}-drop{int(drop)}-{act}-wd{wd}", cls, kw


#: (id, class name, constructor kwargs without dtype): every network and every option
CONFIGS = [("TwoLayerNet", "TwoLayerNet", {"input_size": 5, "hidden_size": 4, "output_size": 3,
                                           "weight_init_std": 0.5})]
CONFIGS += list(_mlp_configs())
CONFIGS += [("SimpleConvNet", "SimpleConvNet", {"input_dim": (1, 6, 6), "conv_param": TINY_CONV,
                                                "hidden_size": 4, "output_size": 3, "weight_init_std": 0.3}),
            ("DeepConvNet", "DeepConvNet", dict(input_dim=(1, 8, 8), hidden_size=4, output_size=3, **DEEP_CONV))]
CLASSES = {c.__name__: c for c in (TwoLayerNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, DeepConvNet)}


def make(cls_name, kwargs, dtype=np.float64, seed=0):
    np.random.seed(seed)
    return CLASSES[cls_name](dtype=dtype, **kwargs)


def batch(net, n=6, seed=1):
    rng = np.random.default_rng(seed)
    shape = (n, net.input_size) if hasattr(net, "input_size") else (n,) + tuple(net.input_dim)
    return rng.standard_normal(shape), rng.integers(0, 3, size=n)


def train(net, steps=3, seed=1):
    x, t = batch(net, seed=seed)
    opt = SGD(lr=0.1)
    for _ in range(steps):
        opt.update(net.params, net.gradient(x, t))
    return x, t


def eval_scores(net, x):
    return np.asarray(net.predict(x, train_flg=False) if "train_flg" in net.predict.__code__.co_varnames
                      else net.predict(x))


# -- the file format's extras ----------------------------------------------------------------
def test_extra_arrays_round_trip_and_load_params_ignores_them(tmp_path):
    net = make("TwoLayerNet", CONFIGS[0][2])
    x, _ = train(net)
    extra = {"optimizer/v/W1": np.arange(6.0).reshape(2, 3), "step": np.array(7), "flags": np.array([True, False])}
    path = tmp_path / "ck.npz"
    net.save_params(path, meta={"epoch": 2}, extra=extra)
    got = read_extra(path)
    assert set(got) == set(extra)
    for k, v in extra.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].dtype == v.dtype
    fresh = make("TwoLayerNet", CONFIGS[0][2], seed=5)
    fresh.load_params(path)                       # the __extra__/ keys are not "unexpected"
    np.testing.assert_array_equal(eval_scores(fresh, x), eval_scores(net, x))
    assert read_meta(path)["epoch"] == 2


def test_read_extra_is_empty_without_extras_and_for_a_pickle(tmp_path):
    net = make("TwoLayerNet", CONFIGS[0][2])
    net.save_params(tmp_path / "p.npz")
    assert read_extra(tmp_path / "p.npz") == {}
    with open(tmp_path / "p.pkl", "wb") as f:
        pickle.dump({"W1": np.ones(2)}, f)
    assert read_extra(tmp_path / "p.pkl") == {}
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match="x.txt is not a readable parameter file"):
        read_extra(tmp_path / "x.txt")


@pytest.mark.parametrize("bad, match", [({"a": np.array([object()])}, "numbers or booleans"),
                                        ({"": np.ones(1)}, "non-empty strings"),
                                        ({1: np.ones(1)}, "non-empty strings"),
                                        ([np.ones(1)], "extra must be a dict")])
def test_bad_extra_is_refused_before_anything_is_written(tmp_path, bad, match):
    net = make("TwoLayerNet", CONFIGS[0][2])
    with pytest.raises(TypeError, match=match):
        net.save_params(tmp_path / "p.npz", extra=bad)
    assert not os.path.exists(tmp_path / "p.npz")


def test_save_params_records_the_model_and_leaves_the_callers_meta_alone(tmp_path):
    net = make("SimpleConvNet", CONFIGS[-2][2], dtype=np.float32)
    meta = {"note": "mine"}
    net.save_params(tmp_path / "p.npz", meta=meta)
    assert meta == {"note": "mine"}
    got = read_meta(tmp_path / "p.npz")
    assert got["note"] == "mine" and got["dtype"] == "float32"
    assert got["model"]["class"] == "SimpleConvNet"
    kw = got["model"]["kwargs"]
    assert kw["input_dim"] == [1, 6, 6] and kw["conv_param"] == TINY_CONV and kw["dtype"] == "float32"
    json.dumps(got)                                # all JSON


def test_a_subclass_is_not_recorded_as_its_parent(tmp_path):
    class Mine(TwoLayerNet):
        pass
    np.random.seed(0)
    Mine(5, 4, 3).save_params(tmp_path / "p.npz")
    assert "model" not in read_meta(tmp_path / "p.npz")
    with pytest.raises(ValueError, match="build the network yourself and call load_params"):
        load_model(tmp_path / "p.npz")


# -- save, then load into a fresh network and with load_model: every network, every option -----
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("cid, cls_name, kwargs", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_save_then_load_into_a_fresh_net_and_with_load_model(tmp_path, cid, cls_name, kwargs, dtype):
    net = make(cls_name, kwargs, dtype=dtype)
    x, _ = train(net)
    want = eval_scores(net, x)
    path = tmp_path / "p.npz"
    net.save_params(path)

    fresh = make(cls_name, kwargs, dtype=dtype, seed=99)
    fresh.load_params(path)
    loaded = load_model(path)
    assert type(loaded) is type(net) and loaded.dtype == np.dtype(dtype)
    for other in (fresh, loaded):
        np.testing.assert_array_equal(eval_scores(other, x), want)
        for k, v in net.params.items():
            np.testing.assert_array_equal(other.params[k], v)
        for name, arr in net._state_arrays().items():            # batch-norm running statistics
            np.testing.assert_array_equal(other._state_arrays()[name], arr)
    for attr in ("use_batchnorm", "use_dropout", "weight_decay_lambda", "hidden_size_list", "input_dim"):
        if hasattr(net, attr):
            assert getattr(loaded, attr) == getattr(net, attr), attr
    if getattr(net, "use_batchnorm", False):
        bn = net.layers["BatchNorm1"]
        assert np.abs(bn.running_mean).sum() > 0              # training moved them
        np.testing.assert_array_equal(loaded.layers["BatchNorm1"].running_var, bn.running_var)


def test_a_fresh_batchnorm_net_has_its_running_statistics_from_the_start():
    net = make("MultiLayerNetExtend", {"input_size": 5, "hidden_size_list": [4, 3], "output_size": 3,
                                       "use_batchnorm": True}, dtype=np.float32)
    names = [k for k in net._state_arrays() if "running" in k]
    assert names == ["BatchNorm1.running_mean", "BatchNorm1.running_var",
                     "BatchNorm2.running_mean", "BatchNorm2.running_var"]
    bn = net.layers["BatchNorm2"]
    assert bn.running_mean.shape == (3,) and bn.running_mean.dtype == np.float32


def test_load_model_keeps_the_global_random_state(tmp_path):
    make("TwoLayerNet", CONFIGS[0][2]).save_params(tmp_path / "p.npz")
    np.random.seed(3)
    before = np.random.get_state()[1].copy()
    load_model(tmp_path / "p.npz")
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_load_model_casts_to_the_dtype_asked_for(tmp_path):
    net = make("TwoLayerNet", CONFIGS[0][2])
    x, _ = train(net)
    net.save_params(tmp_path / "p.npz")
    m = fastdl.load_model(str(tmp_path / "p.npz").encode(), dtype="float32")
    assert m.dtype == np.float32 and m.params["W1"].dtype == np.float32
    np.testing.assert_allclose(m.predict(x), net.predict(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="float32 or float64"):
        load_model(tmp_path / "p.npz", dtype="int8")


@pytest.mark.parametrize("name, cls, dims", [("simple", SimpleConvNet, None), ("two", TwoLayerNet, None),
                                             ("mlp", TwoLayerNet, None)])
def test_load_model_reads_the_files_fastdl_train_wrote(tmp_path, name, cls, dims):
    # what the CLI's train command wrote: its --net name and the dtype, nothing else
    np.random.seed(0)
    net = SimpleConvNet(dtype=np.float32) if cls is SimpleConvNet else TwoLayerNet(784, 50, 10, dtype=np.float32)
    import fastdl.nets.base as B
    arrays = {k: np.asarray(v) for k, v in net._state_arrays().items()}
    arrays[B._FORMAT_KEY] = np.array([1])
    arrays[B._META_KEY] = np.frombuffer(json.dumps({"net": name, "dtype": "float32", "data": "sample"})
                                        .encode(), dtype=np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    m = load_model(tmp_path / "old.npz")
    assert type(m) is cls and m.dtype == np.float32
    for k, v in net.params.items():
        np.testing.assert_array_equal(m.params[k], v)


def test_load_model_without_metadata_says_what_to_do(tmp_path):
    np.savez(tmp_path / "bare.npz", W1=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"bare.npz does not say which network.*"
                                         r"written by the book's code or by save_params of a custom Net: "
                                         r"build the network yourself and call load_params") as e:
        load_model(tmp_path / "bare.npz")
    assert "\n" not in str(e.value)
    with open(tmp_path / "book.pkl", "wb") as f:
        pickle.dump({"W1": np.ones(2)}, f)
    with pytest.raises(ValueError, match="build the network yourself"):
        load_model(tmp_path / "book.pkl")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nothing.npz")


def test_load_model_refuses_an_unknown_class_in_one_line(tmp_path):
    import fastdl.nets.base as B
    np.savez(tmp_path / "p.npz", **{B._META_KEY: np.frombuffer(
        json.dumps({"model": {"class": "ResNet", "kwargs": {}}}).encode(), dtype=np.uint8)})
    with pytest.raises(ValueError, match="holds a ResNet, which load_model cannot build"):
        load_model(tmp_path / "p.npz")


# -- pickle and deep copy of every public object, at every stage of its use -------------------
import copy  # noqa: E402
import inspect  # noqa: E402

from fastdl import fusion, layers as L, nets as N, optimizers as O  # noqa: E402
from fastdl.backend import BackendError  # noqa: E402


def _r(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _net(make_net, xshape, train_flg=None):
    """(make, steps) for a network: a training forward (the loss), the backward pass through its
    layers (gradients), an SGD step, then predictions."""
    def make():
        np.random.seed(0)
        net = make_net()
        x = _r(*xshape, seed=1)
        return net, {"x": x, "t": np.arange(xshape[0]) % 3, "opt": SGD(lr=0.1)}

    def forward(net, c):
        return net._loss_for_gradient(c["x"], c["t"])

    def backward(net, c):
        dout = net.last_layer.backward(1)
        for step in reversed(net._last_plan):
            dout = step.backward(dout)
        c["grads"] = {k: getattr(layer, attr) for k, (layer, attr) in net._grad_of.items()}
        return c["grads"]

    def update(net, c):
        c["opt"].update(net.params, c["grads"])
        return dict(net.params)

    def predict(net, c):
        return net.predict(c["x"]) if train_flg is None else net.predict(c["x"], train_flg=False)
    return make, [forward, backward, update, predict]


def _optimizer(cls):
    def make():
        params = {"W": _r(3, 4), "b": _r(4, seed=1)}
        return cls(), {"params": params, "grads": {"W": _r(3, 4, seed=2), "b": _r(4, seed=3)}}

    def update(o, c):
        o.update(c["params"], c["grads"])
        return {k: v.copy() for k, v in c["params"].items()}
    return make, [update, update, update]


def _with_last(make_layer, x, fwd_extra=(), dout_value=1.0):
    """(make, steps) for a layer: forward(x, *fwd_extra), then backward of a dout of its output's shape."""
    def make():
        return make_layer(), {"x": x}

    def forward(o, c):
        c["last"] = o.forward(c["x"], *fwd_extra)
        return c["last"]

    def backward(o, c):
        return o.backward(np.full(np.shape(np.asarray(c["last"])), dout_value))
    return make, [forward, backward]


def _mul_add(cls):
    def make():
        return cls(), {}

    def forward(o, c):
        return o.forward(_r(2, 3), _r(2, 3, seed=1))

    def backward(o, c):
        return o.backward(_r(2, 3, seed=2))
    return make, [forward, backward]


def _softmax():
    def make():
        return L.SoftmaxWithLoss(), {"x": _r(4, 3), "t": np.array([0, 2, 1, 1])}

    def forward(o, c):
        return o.forward(c["x"], c["t"])

    def backward(o, c):
        return o.backward(1)
    return make, [forward, backward]


def _batchnorm():
    make, steps = _with_last(lambda: L.BatchNormalization(np.ones(3), np.zeros(3), momentum=0.8), _r(5, 3), (True,))

    def evaluate(o, c):
        return o.forward(c["x"], False)
    return make, steps + [evaluate]


def _plain(make_obj, *probes):
    """(make, steps) for an object without forward: each probe reads something from it."""
    def make():
        return make_obj(), {}
    return make, [lambda o, c, p=p: p(o) for p in probes]


TWO = lambda: TwoLayerNet(5, 4, 3, weight_init_std=0.5)  # noqa: E731
CONV = lambda: L.Convolution(_r(2, 1, 3, 3), np.zeros(2), stride=1, pad=1)  # noqa: E731

#: how to make and use each public class; test_every_public_class_has_a_recipe keeps it complete
RECIPES = {
    "BackendError": _plain(lambda: BackendError("unknown backend 'x'"), str, lambda e: e.args),
    "MulLayer": _mul_add(L.MulLayer),
    "AddLayer": _mul_add(L.AddLayer),
    "Elementwise": _plain(L.Elementwise, lambda o: o.cost((2, 3))),
    "Affine": _with_last(lambda: L.Affine(_r(3, 4), _r(4, seed=1)), _r(2, 3, seed=2)),
    "SoftmaxWithLoss": _softmax(),
    "Dropout": _with_last(lambda: L.Dropout(0.4), _r(4, 5), (True,)),
    "BatchNormalization": _batchnorm(),
    "Convolution": _with_last(CONV, _r(2, 1, 5, 5, seed=3)),
    "Pooling": _with_last(lambda: L.Pooling(2, 2, stride=2), _r(2, 2, 4, 4)),
    "AvgPooling": _with_last(lambda: L.AvgPooling(2, 2, stride=2), _r(2, 2, 4, 4)),
    "Cost": _plain(lambda: L.Affine(_r(3, 4), np.zeros(4)).cost((2, 3)), tuple),
    "ConvBlock": _with_last(lambda: fusion.ConvBlock(CONV(), L.Relu(), L.Pooling(2, 2, stride=2)),
                            _r(2, 1, 4, 4, seed=4)),
    "Net": _plain(N.Net, lambda n: (n.fuse, n.device, n.weight_decay_lambda)),
    "Summary": _plain(lambda: TWO().summary(batch_size=2), str, lambda s: s.flops),
    "SummaryRow": _plain(lambda: TWO().summary().rows[0], lambda r: (r.name, r.output_shape, r.flops)),
    "TwoLayerNet": _net(TWO, (4, 5)),
    "MultiLayerNet": _net(lambda: MultiLayerNet(5, [4, 3], 3, activation="sigmoid", weight_decay_lambda=0.1),
                          (4, 5)),
    "MultiLayerNetExtend": _net(lambda: MultiLayerNetExtend(5, [4, 4], 3, use_batchnorm=True, use_dropout=True,
                                                            weight_decay_lambda=0.05), (6, 5), train_flg=False),
    "SimpleConvNet": _net(lambda: SimpleConvNet((1, 6, 6), TINY_CONV, hidden_size=4, output_size=3,
                                                weight_init_std=0.3), (3, 1, 6, 6)),
    "DeepConvNet": _net(lambda: DeepConvNet((1, 8, 8), hidden_size=4, output_size=3, **DEEP_CONV),
                        (3, 1, 8, 8), train_flg=False),
}
RECIPES.update({name: _optimizer(getattr(O, name)) for name in O.__all__})
# every element-wise layer (Relu, Sigmoid, LeakyRelu, ...) is made with its spec's default parameters
RECIPES.update({name: _with_last(getattr(L, name), _r(2, 3)) for name in L.__all__
                if inspect.isclass(getattr(L, name)) and issubclass(getattr(L, name), L.Elementwise)
                and getattr(L, name) is not L.Elementwise})

MODULES = [fastdl, L, N, O, fusion]


def public_classes():
    out = {}
    for mod in MODULES:
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj):
                out[name] = obj
    return out


def test_every_public_class_has_a_recipe():
    classes = public_classes()
    assert len(classes) >= 25
    missing = sorted(set(classes) - set(RECIPES))
    assert not missing, f"add a recipe to RECIPES for the public classes {missing}"


def test_every_public_function_pickles_by_reference():
    for mod in MODULES:
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                assert pickle.loads(pickle.dumps(obj)) is obj, name


def _same(a, b, where):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}[{k}]")
    elif isinstance(a, (tuple, list)) and not hasattr(a, "_fields"):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, (np.ndarray, np.generic, float, int)) and not isinstance(a, bool):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=where)
    else:
        assert a == b, where


def _run(steps, obj, ctx, start):
    out = []
    for i, step in enumerate(steps[start:], start=start):
        np.random.seed(100 + i)          # Dropout draws from the global generator
        out.append(step(obj, ctx))
    return out


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_public_object_pickles_and_deep_copies_at_every_stage(name, backend):
    make, steps = RECIPES[name]
    with fastdl.using_backend(backend):
        for stage in range(len(steps) + 1):           # before use, after each step
            obj, ctx = make()
            for i, step in enumerate(steps[:stage]):
                np.random.seed(100 + i)
                step(obj, ctx)
            copies = [pickle.loads(pickle.dumps((obj, ctx))), copy.deepcopy((obj, ctx))]
            for c_obj, _ in copies:
                assert type(c_obj) is type(obj) and c_obj is not obj
            want = _run(steps, obj, ctx, stage)
            for how, (c_obj, c_ctx) in zip(("pickle", "deepcopy"), copies):
                _same(want, _run(steps, c_obj, c_ctx, stage), f"{name} copied by {how} after {stage} steps")


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_copy_trained_further_leaves_the_original_alone(how):
    np.random.seed(0)
    net = MultiLayerNetExtend(5, [4, 4], 3, use_batchnorm=True, use_dropout=True)
    x, t = train(net)                                  # mid-training: forward and backward have run
    before = {k: np.array(v) for k, v in net._state_arrays().items()}
    scores = eval_scores(net, x)
    other = pickle.loads(pickle.dumps(net)) if how == "pickle" else copy.deepcopy(net)
    assert other.layers["Affine1"].W is other.params["W1"]          # sharing survives the copy
    assert other.layers["BatchNorm1"].gamma is other.params["gamma1"]
    train(other, steps=4, seed=2)
    assert not np.array_equal(eval_scores(other, x), scores)       # the copy did learn
    for k, v in net._state_arrays().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    np.testing.assert_array_equal(eval_scores(net, x), scores)


def test_backward_works_on_a_copy_taken_between_forward_and_backward():
    np.random.seed(0)
    net = SimpleConvNet((1, 6, 6), TINY_CONV, hidden_size=4, output_size=3, weight_init_std=0.3)
    x, t = batch(net)
    net.loss(x, t)                                    # a forward pass: the layers hold its state
    other = pickle.loads(pickle.dumps(net))
    d1 = net.last_layer.backward(1)
    d2 = other.last_layer.backward(1)
    np.testing.assert_array_equal(d1, d2)
    for a, b in zip(reversed(net._last_plan), reversed(other._last_plan)):
        d1, d2 = a.backward(d1), b.backward(d2)
        np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(other.layers["Conv1"].dW, net.layers["Conv1"].dW)


def _predict_in_worker(net_and_x):
    net, x = net_and_x
    return np.asarray(net.predict(x)), os.getpid()


def test_a_trained_net_goes_to_a_spawned_worker_and_predicts_the_same():
    np.random.seed(0)
    net = SimpleConvNet((1, 6, 6), TINY_CONV, hidden_size=4, output_size=3, weight_init_std=0.3)
    x, _ = train(net)                                 # after forward and backward: _ops was set
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        scores, pid = pool.apply_async(_predict_in_worker, ((net, x),)).get(timeout=120)
    assert pid != os.getpid()
    np.testing.assert_array_equal(scores, np.asarray(net.predict(x)))


_DEVICE_SCRIPT = r"""
import copy, pickle, sys
import numpy as np
import fastdl
from fastdl.nets import MultiLayerNetExtend
from fastdl.optimizers import SGD
fastdl.set_backend("cuda")
np.random.seed(0)
net = MultiLayerNetExtend(5, [4], 3, use_batchnorm=True).to("cuda")
x, t = np.random.default_rng(1).standard_normal((6, 5)), np.arange(6) % 3
SGD(lr=0.1).update(net.params, net.gradient(x, t))
net.loss(x, t)                                      # the layers hold device forward state
back = pickle.loads(pickle.dumps(net))
assert back.device == "cpu", back.device
assert all(type(v) is np.ndarray for v in back._state_arrays().values())
assert back.layers["Affine1"].W is back.params["W1"]
try:
    back.last_layer.backward(1)
    raise SystemExit("backward ran on forward state computed on the device")
except RuntimeError as exc:
    assert "called before forward" in str(exc), exc
twin = copy.deepcopy(net)                           # stays where it was, independent
assert twin.device == "cuda" and twin.params["W1"] is not net.params["W1"]
assert twin.layers["Affine1"].W is twin.params["W1"]
want = np.asarray(net.predict(x, train_flg=False).copy_to_host())
np.testing.assert_array_equal(np.asarray(twin.predict(x, train_flg=False).copy_to_host()), want)
with fastdl.using_backend("numpy"):
    np.testing.assert_allclose(back.predict(x, train_flg=False), want, rtol=1e-12, atol=1e-12)
print("ok")
"""


def test_a_network_on_the_device_pickles_to_the_host_and_deep_copies_on_the_device(tmp_path):
    # Numba's CUDA simulator in a child process of its own (it must be chosen before Numba loads)
    import subprocess
    import sys
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", FASTDL_CUDA_THREADS="8", FASTDL_CUDA_TILE="4")
    r = subprocess.run([sys.executable, "-c", _DEVICE_SCRIPT], env=env, capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_a_shallow_copy_shares_the_arrays():
    np.random.seed(0)
    net = TwoLayerNet(5, 4, 3)
    other = copy.copy(net)
    assert other is not net and other.params["W1"] is net.params["W1"] and other.layers is net.layers


@pytest.mark.parametrize("kwargs, match", [({"input_size": 5, "hidden_size": 0, "output_size": 3},
                                            "hidden_size must be >= 1"),
                                           ({"input_size": 5, "hidden_sise": 4, "output_size": 3},
                                            "unexpected keyword argument 'hidden_sise'"),
                                           ([5, 4, 3], "model kwargs are a list, not a dict")])
def test_load_model_with_metadata_it_cannot_use_says_so_in_one_line(tmp_path, kwargs, match):
    import fastdl.nets.base as B
    meta = {"model": {"class": "TwoLayerNet", "kwargs": kwargs}, "dtype": "float64"}
    np.savez(tmp_path / "p.npz", **{B._META_KEY: np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)})
    with pytest.raises(ValueError, match=match) as e:
        load_model(tmp_path / "p.npz")
    assert "\n" not in str(e.value) and "p.npz" in str(e.value)
