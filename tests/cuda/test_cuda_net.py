"""Whole networks on the cuda backend: data stays on the device, results match the reference."""
import numpy as np
import pytest

import fastdl
from fastdl.nets import MultiLayerNetExtend, SimpleConvNet
from fastdl.optimizers import SGD, Adam, Momentum
from fastdl.trainer import Trainer

CU = fastdl.backend.ops("cuda")
CONV = {"filter_num": 2, "filter_size": 3, "pad": 1, "stride": 1}


def tiny(dtype=np.float64):
    np.random.seed(0)
    return SimpleConvNet((1, 6, 6), CONV, hidden_size=4, output_size=3, weight_init_std=0.3, dtype=dtype)


def test_simpleconvnet_training_step_matches_the_reference(dtype):
    rng = np.random.default_rng(0)
    x = rng.random((3, 1, 6, 6)).astype(dtype)
    t = np.array([0, 2, 1])
    ref, dev = tiny(dtype), tiny(dtype).to("cuda")
    assert dev.device == "cuda" and all(CU.owns(v) for v in dev.params.values())
    assert dev.params["W1"] is dev.layers["Conv1"].W and dev.params["b3"] is dev.layers["Affine2"].b
    with fastdl.using_backend("numpy"):
        ref_loss = ref.loss(x, t)
        g_ref = ref.gradient(x, t)
        SGD(0.5).update(ref.params, g_ref)
    with fastdl.using_backend("cuda"):
        loss = dev.loss(x, t)
        g = dev.gradient(x, t)
        assert all(CU.owns(v) for v in g.values())          # gradients stay on the device
        SGD(0.5).update(dev.params, g)
        assert all(CU.owns(v) for v in dev.params.values())
        acc = dev.accuracy(x, t)
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    assert np.isclose(loss, ref_loss, **tol) and np.asarray(loss).dtype == dtype
    for k in g_ref:
        np.testing.assert_allclose(CU.to_host(g[k]), g_ref[k], **tol, err_msg=k)
    dev.to("cpu")
    assert all(isinstance(v, np.ndarray) for v in dev.params.values())
    assert dev.params["W1"] is dev.layers["Conv1"].W
    for k in ref.params:
        np.testing.assert_allclose(dev.params[k], ref.params[k], **tol, err_msg=k)
    with fastdl.using_backend("numpy"):
        assert acc == ref.accuracy(x, t)


def test_adam_state_and_batchnorm_dropout_on_the_device():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5))
    t = np.array([0, 1, 2, 1])

    def make():
        np.random.seed(3)
        return MultiLayerNetExtend(5, [6], 3, use_batchnorm=True, use_dropout=True, dropout_ration=0.3)
    ref, dev = make(), make().to("cuda")
    opt_ref, opt = Adam(0.01), Adam(0.01)
    with fastdl.using_backend("numpy"):
        np.random.seed(11)
        g_ref = ref.gradient(x, t)
        opt_ref.update(ref.params, g_ref)
    with fastdl.using_backend("cuda"):
        np.random.seed(11)                        # the same dropout mask: drawn with NumPy on the host
        g = dev.gradient(x, t)
        opt.update(dev.params, g)
        assert all(CU.owns(v) for v in opt.m.values())
        assert CU.owns(dev.layers["BatchNorm1"].running_mean)
        pred = CU.to_host(dev.predict(x, train_flg=False))
    for k in g_ref:
        np.testing.assert_allclose(CU.to_host(g[k]), g_ref[k], rtol=1e-9, atol=1e-12, err_msg=k)
    with fastdl.using_backend("numpy"):
        np.testing.assert_allclose(pred, ref.predict(x, train_flg=False), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(CU.to_host(dev.layers["BatchNorm1"].running_var),
                               ref.layers["BatchNorm1"].running_var, rtol=1e-10)


def test_a_device_net_computes_on_the_device_under_any_backend():
    """net.to("cuda") is the one knob: under a CPU backend the network still runs on the cuda
    kernels; a layer of it called on its own follows the current backend and says what to do."""
    rng = np.random.default_rng(5)
    x, t = rng.random((2, 1, 6, 6)), np.array([1, 2])
    ref, dev = tiny(), tiny().to("cuda")
    with fastdl.using_backend("numpy"):
        assert fastdl.current_backend() == "numpy"
        y = dev.predict(x)
        assert CU.owns(y)                                   # computed on the device
        g = dev.gradient(x, t)
        assert all(CU.owns(v) for v in g.values())
        np.testing.assert_allclose(CU.to_host(y), ref.predict(x), rtol=1e-10, atol=1e-12)
        g_ref = ref.gradient(x, t)
        assert fastdl.current_backend() == "numpy"          # the caller's choice is left as it was
        with pytest.raises(TypeError, match=r"on the GPU but the backend is 'numpy'.*net.to\('cpu'\)"):
            dev.layers["Affine1"].forward(np.zeros((1, dev.params["W2"].shape[0])))
    for k in g_ref:
        np.testing.assert_allclose(CU.to_host(g[k]), g_ref[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_save_and_load_on_the_device(tmp_path):
    dev = tiny().to("cuda")
    dev.save_params(tmp_path / "p.npz")
    other = SimpleConvNet((1, 6, 6), CONV, hidden_size=4, output_size=3).to("cuda")
    W1 = other.params["W1"]
    other.load_params(tmp_path / "p.npz")
    assert other.params["W1"] is W1
    np.testing.assert_array_equal(CU.to_host(other.params["W1"]), CU.to_host(dev.params["W1"]))


def test_trainer_with_a_device_net():
    rng = np.random.default_rng(2)
    x = rng.random((4, 1, 6, 6))          # tiny: the simulator runs every GPU thread in Python
    t = rng.integers(0, 3, 4)
    dev = tiny().to("cuda")
    with fastdl.using_backend("cuda"):
        tr = Trainer(dev, x, t, x, t, epochs=1, mini_batch_size=2, optimizer="Adam",
                     optimizer_param={"lr": 0.01}, verbose=False, progress=False, seed=0)
        acc = tr.train()
    assert tr.current_iter == 2 and 0 <= acc <= 1 and len(tr.train_loss_list) == 2


def test_weight_decay_on_the_device_matches_the_reference():
    """Weight decay computed on the device: the same numbers as the reference's."""
    from fastdl.nets import MultiLayerNet
    rng = np.random.default_rng(4)
    x, t = rng.standard_normal((3, 5)), np.array([0, 2, 1])

    def make():
        np.random.seed(5)
        return MultiLayerNet(5, [4], 3, weight_decay_lambda=0.1)
    ref, dev = make(), make().to("cuda")
    with fastdl.using_backend("numpy"):
        loss_ref, g_ref = ref.loss(x, t), ref.gradient(x, t)
    with fastdl.using_backend("cuda"):
        loss, g = dev.loss(x, t), dev.gradient(x, t)
        assert all(CU.owns(v) for v in g.values())
    assert np.isclose(loss, loss_ref, rtol=1e-10)
    for k in g_ref:
        np.testing.assert_allclose(CU.to_host(g[k]), g_ref[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_optimizer_updates_device_params_on_the_device_under_any_backend():
    rng = np.random.default_rng(6)
    dev, host = tiny().to("cuda"), tiny()
    grads = {k: rng.standard_normal(tuple(v.shape)) for k, v in host.params.items()}
    with fastdl.using_backend("numpy"):
        Momentum(0.1).update(host.params, grads)
        opt = Momentum(0.1)
        opt.update(dev.params, {k: CU.to_device(v) for k, v in grads.items()})
    assert all(CU.owns(v) for v in opt.v.values()) and all(CU.owns(v) for v in dev.params.values())
    for k in host.params:
        np.testing.assert_allclose(CU.to_host(dev.params[k]), host.params[k], rtol=1e-12, err_msg=k)
    with fastdl.using_backend("cuda"):
        with pytest.raises(TypeError, match=r"params\['W1'\] does not live where the backend 'cuda'.*net.to\('cuda'\)"):
            SGD().update(host.params, host.params)


def _decay_net(dtype=np.float64):
    from fastdl.nets import MultiLayerNet
    np.random.seed(5)
    return MultiLayerNet(5, [4], 3, weight_decay_lambda=0.1, dtype=dtype)


def test_a_net_moved_to_cuda_trains_with_weight_decay_under_the_default_backend(dtype):
    """One call, net.to("cuda"): no set_backend, and the steps match the reference's."""
    rng = np.random.default_rng(7)
    x, t = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    ref, dev = _decay_net(dtype), _decay_net(dtype).to("cuda")
    opt_ref, opt = Adam(0.05), Adam(0.05)
    assert fastdl.current_backend() != "cuda"
    losses, losses_ref = [], []
    for _ in range(3):
        losses.append(dev.loss(x, t))
        opt.update(dev.params, dev.gradient(x, t))
        with fastdl.using_backend("numpy"):
            losses_ref.append(ref.loss(x, t))
            opt_ref.update(ref.params, ref.gradient(x, t))
    assert all(CU.owns(v) for v in dev.params.values()) and all(CU.owns(v) for v in opt.m.values())
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(losses, losses_ref, **tol)
    assert losses[-1] < losses[0]
    for k in ref.params:
        np.testing.assert_allclose(CU.to_host(dev.params[k]), ref.params[k], **tol, err_msg=k)
    assert np.isclose(dev.accuracy(x, t), ref.accuracy(x, t))


def test_weight_decay_on_the_device_copies_no_weight_or_gradient_to_the_host(monkeypatch):
    """The decay term (loss and gradient) is computed by the device's ops: no array of a weight's
    shape is copied between host and device (to_host, to_device) during a training step."""
    import fastdl.kernels.composite as composite
    import fastdl.kernels.cuda as cuda_ops
    rng = np.random.default_rng(8)
    x, t = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    dev = _decay_net().to("cuda")
    weights = {tuple(dev.params[k].shape) for k in ("W1", "W2")}
    assert weights == {(5, 4), (4, 3)}                       # no other array of the step has these
    moved = []

    def watch(name, module=cuda_ops):
        real = getattr(module, name)

        def f(a):
            copy = CU.owns(a) if "host" in name else not CU.owns(a)      # a transfer, not an identity
            if copy and hasattr(a, "shape") and tuple(a.shape) in weights:
                moved.append((name, tuple(a.shape)))
            return real(a)
        return f
    monkeypatch.setattr(cuda_ops, "to_host", watch("to_host"))
    monkeypatch.setattr(cuda_ops, "to_device", watch("to_device"))
    monkeypatch.setattr(composite, "_to_host", watch("_to_host", composite))   # the host fallbacks
    grads = dev.gradient(x, t)
    SGD(0.1).update(dev.params, grads)
    assert moved == []
    monkeypatch.undo()
    ref = _decay_net()
    with fastdl.using_backend("numpy"):
        SGD(0.1).update(ref.params, ref.gradient(x, t))
    for k in ref.params:
        np.testing.assert_allclose(CU.to_host(dev.params[k]), ref.params[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_a_host_network_under_cuda_keeps_its_arrays_on_the_host():
    """The weights are copied in at every call (as docs/cuda.md says); nothing stored moves."""
    np.random.seed(3)
    net = MultiLayerNetExtend(5, [6], 3, use_batchnorm=True)
    x = np.random.default_rng(0).standard_normal((4, 5))
    with fastdl.using_backend("numpy"):
        want = net.predict(x, train_flg=False)
    with fastdl.using_backend("cuda"):
        got = CU.to_host(net.predict(x, train_flg=False))
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert all(isinstance(v, np.ndarray) for v in net.params.values())
    assert isinstance(net.layers["BatchNorm1"].running_mean, np.ndarray)


def test_a_checkpoint_of_a_device_net_resumes_on_the_device_under_the_default_backend(tmp_path):
    """The optimizer state a checkpoint brings back goes where the parameters live."""
    rng = np.random.default_rng(9)
    x, t = rng.standard_normal((4, 5)), rng.integers(0, 3, 4)
    dev = _decay_net().to("cuda")
    tr = Trainer(dev, x, t, x, t, epochs=1, mini_batch_size=2, optimizer="Adam",
                 optimizer_param={"lr": 0.01}, verbose=False, progress=False, seed=0)
    tr.train()
    tr.save_checkpoint(tmp_path / "c.npz")
    again = _decay_net().to("cuda")
    tr2 = Trainer(again, x, t, x, t, epochs=2, mini_batch_size=2, optimizer="Adam",
                  optimizer_param={"lr": 0.01}, verbose=False, progress=False, seed=0)
    tr2.load_checkpoint(tmp_path / "c.npz")
    for name in ("m", "v"):
        for k, v in getattr(tr2.optimizer, name).items():
            assert CU.owns(v), (name, k)
            np.testing.assert_array_equal(CU.to_host(v), CU.to_host(getattr(tr.optimizer, name)[k]))


def test_profile_of_a_device_net_under_the_default_backend(monkeypatch):
    """net.profile times a network on the GPU without switching backend, waiting for the device."""
    from numba import cuda
    synced = []
    real = cuda.synchronize
    monkeypatch.setattr(cuda, "synchronize", lambda: synced.append(1) or real())
    rng = np.random.default_rng(10)
    x, t = rng.standard_normal((2, 5)), rng.integers(0, 3, 2)
    dev = _decay_net().to("cuda")
    before = {k: CU.to_host(v) for k, v in dev.params.items()}
    prof = dev.profile(x, t, optimizer=SGD(0.1), repeat=1, warmup=0)
    assert synced and "Affine" in str(prof)
    for k, v in dev.params.items():
        assert CU.owns(v)
        np.testing.assert_array_equal(CU.to_host(v), before[k])      # left as it was
