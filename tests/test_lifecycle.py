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
