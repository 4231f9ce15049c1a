"""The Trainer beyond the book's loop: optimizer instances and names, argument checks, validation
data, history, callbacks (early stopping, learning-rate schedules, checkpoints), resuming from a
checkpoint, the book's per-step lines and the progress bar (terminal and a real Jupyter kernel).

Tiny data throughout: a few hundred images of the bundled MNIST sample and small networks."""
import os
import re

import numpy as np
import pytest

import fastdl
from fastdl.callbacks import Callback, CosineLR, EarlyStopping, ModelCheckpoint, StepLR
from fastdl.datasets import load_mnist
from fastdl.nets import MultiLayerNetExtend, TwoLayerNet, read_meta
from fastdl.optimizers import SGD, Adam
from fastdl.trainer import Trainer


@pytest.fixture(scope="module")
def data():
    (x, t), (xt, tt) = load_mnist(sample=True)
    return x[:600], t[:600], xt[:200], tt[:200]


def make(data, epochs=2, seed=0, net_seed=0, net=None, **kw):
    """A TwoLayerNet (784-20-10, weights from ``net_seed``) and its Trainer (600 images, batch 100:
    6 steps per epoch); ``kw`` overrides the Trainer's arguments."""
    x, t, xt, tt = data
    if net is None:
        np.random.seed(net_seed)
        net = TwoLayerNet(784, 20, 10)
    args = dict(epochs=epochs, mini_batch_size=100, optimizer="adam", optimizer_param={"lr": 0.01},
                verbose=False, progress=False, seed=seed)
    args.update(kw)
    return net, Trainer(net, x, t, xt, tt, **args)


def losses(tr):
    return [float(v) for v in tr.train_loss_list]


# -- optimizers --------------------------------------------------------------------------------

def test_an_optimizer_instance_trains_as_its_name_does(data):
    _, by_name = make(data, optimizer="Adam", optimizer_param={"lr": 0.01})
    by_name.train()
    opt = Adam(lr=0.01)
    _, by_instance = make(data, optimizer=opt, optimizer_param=None)
    assert by_instance.optimizer is opt                    # used as given, not copied
    by_instance.train()
    assert losses(by_instance) == losses(by_name)
    assert opt.iter == by_instance.max_iter == 12


@pytest.mark.parametrize("name,cls", [("ADAM", "Adam"), ("sgd", "SGD"), ("RmsProp", "RMSprop"),
                                      ("adaGrad", "AdaGrad"), ("rmsprpo", "RMSprop")])
def test_optimizer_names_in_any_case(data, name, cls):
    _, tr = make(data, optimizer=name)
    assert type(tr.optimizer).__name__ == cls


def one_line_error(exc_info, *words):
    text = str(exc_info.value)
    assert "\n" not in text, text
    for w in words:
        assert w in text, (w, text)


def test_optimizer_mistakes_are_one_line_errors_naming_the_argument(data):
    with pytest.raises(ValueError) as e:
        make(data, optimizer=Adam(), optimizer_param={"lr": 0.1})
    one_line_error(e, "optimizer_param", "Adam(lr=")
    with pytest.raises(TypeError) as e:
        make(data, optimizer=None)
    one_line_error(e, "optimizer", "None")
    with pytest.raises(TypeError) as e:
        make(data, optimizer=Adam)
    one_line_error(e, "optimizer", "Adam()")
    with pytest.raises(ValueError) as e:
        make(data, optimizer="adma")
    one_line_error(e, "unknown optimizer 'adma'", "did you mean 'adam'")
    with pytest.raises(TypeError) as e:
        make(data, optimizer="sgd", optimizer_param={"learning_rate": 0.1})
    one_line_error(e, "optimizer_param", "SGD", "learning_rate")


def test_a_negative_learning_rate_names_optimizer_param(data):
    # the optimizers refuse lr < 0; the Trainer's message says which of its arguments held it
    with pytest.raises(ValueError) as e:
        make(data, optimizer_param={"lr": -1})
    one_line_error(e, "optimizer_param", "lr")


# -- argument checks -------------------------------------------------------------------------------

BAD = [
    ({"mini_batch_size": 0}, ValueError, "mini_batch_size"),
    ({"mini_batch_size": -5}, ValueError, "mini_batch_size"),
    ({"mini_batch_size": 2.5}, TypeError, "mini_batch_size"),
    ({"epochs": float("nan")}, ValueError, "epochs"),
    ({"epochs": -1}, ValueError, "epochs"),
    ({"epochs": float("inf")}, ValueError, "epochs"),
    ({"epochs": "3"}, TypeError, "epochs"),
    ({"evaluate_sample_num_per_epoch": 0}, ValueError, "evaluate_sample_num_per_epoch"),
    ({"evaluate_sample_num_per_epoch": -1}, ValueError, "evaluate_sample_num_per_epoch"),
    ({"evaluate_sample_num_per_epoch": 2.5}, TypeError, "evaluate_sample_num_per_epoch"),
    ({"verbose": "loud"}, ValueError, "verbose"),
    ({"verbose": 2}, ValueError, "verbose"),
    ({"progress": "yes"}, TypeError, "progress"),
    ({"seed": -1}, ValueError, "seed"),
    ({"validation_split": 1.0}, ValueError, "validation_split"),
    ({"validation_split": -0.1}, ValueError, "validation_split"),
    ({"validation_split": float("nan")}, ValueError, "validation_split"),
    ({"validation_split": 0.0001}, ValueError, "validation_split"),   # 600 * 0.0001 rounds to 0
    ({"callbacks": EarlyStopping()}, TypeError, "callbacks"),
    ({"callbacks": [print]}, TypeError, "callbacks[0]"),
    ({"optimizer_param": ["lr", 0.1]}, TypeError, "optimizer_param"),
]


@pytest.mark.parametrize("kw,exc,name", BAD, ids=[f"{k}={v!r}" for k, v in (next(iter(b[0].items())) for b in BAD)])
def test_bad_arguments_are_one_line_errors_naming_them(data, kw, exc, name):
    with pytest.raises(exc) as e:
        make(data, **kw)
    one_line_error(e, "Trainer", name)


def test_empty_test_and_validation_sets_are_refused_up_front(data):
    x, t, xt, tt = data
    net = TwoLayerNet(784, 5, 10)
    with pytest.raises(ValueError) as e:
        Trainer(net, x, t, xt[:0], tt[:0])
    one_line_error(e, "x_test is empty")
    with pytest.raises(ValueError) as e:
        Trainer(net, x, t, xt, tt, x_val=xt[:0], t_val=tt[:0])
    one_line_error(e, "x_val is empty")
    with pytest.raises(ValueError) as e:
        Trainer(net, x, t, xt, tt, x_val=xt)
    one_line_error(e, "x_val and t_val")
    with pytest.raises(ValueError) as e:
        Trainer(net, x, t, xt, tt, x_val=xt, t_val=tt, validation_split=0.1)
    one_line_error(e, "x_val/t_val or validation_split")
    with pytest.raises(ValueError) as e:
        Trainer(net, x, t, xt, tt, x_val=xt, t_val=tt[:5])
    one_line_error(e, "x_val has 200 samples but t_val has 5")


def test_the_books_calls_still_work(data):
    """The four ways the book's scripts call Trainer (ch06, ch07, ch08), on tiny data."""
    x, t, xt, tt = data
    net = TwoLayerNet(784, 10, 10)
    calls = [
        dict(epochs=1, mini_batch_size=100, optimizer='sgd', optimizer_param={'lr': 0.01}, verbose=False),
        dict(epochs=1, mini_batch_size=100, optimizer='sgd', optimizer_param={'lr': 0.01}, verbose=True),
        dict(epochs=1, mini_batch_size=100, optimizer='Adam', optimizer_param={'lr': 0.001},
             evaluate_sample_num_per_epoch=1000),
        dict(epochs=1.5, mini_batch_size=100, optimizer='Adam', optimizer_param={'lr': 0.001}),
    ]
    for kw in calls:
        tr = Trainer(net, x, t, xt, tt, progress=False, **kw)
        assert 0 <= tr.train() <= 1


# -- validation data, history --------------------------------------------------------------------

def test_validation_split_keeps_the_last_part_in_order_and_reports_val_acc(data, capsys):
    x, t, xt, tt = data
    before = x.copy()
    net, tr = make(data, validation_split=0.25, verbose=True)
    assert tr.train_size == 450 and len(tr.x_val) == 150
    assert np.shares_memory(tr.x_val, x) and np.array_equal(tr.x_val, x[450:])    # a view, in order
    assert np.array_equal(tr.x_train, x[:450]) and np.array_equal(tr.t_val, t[450:])
    tr.train()
    assert np.array_equal(x, before)                                               # caller's data untouched
    assert len(tr.val_acc_list) == len(tr.test_acc_list) == 2
    assert tr.val_acc_list[-1] == tr.history[-2]["val_acc"]
    assert tr.history[-1]["val_acc"] == pytest.approx(net.accuracy(x[450:], t[450:]))
    out = capsys.readouterr().out
    assert re.search(r"=== epoch:2, train acc:\S+, test acc:\S+, val acc:\S+ ===", out)


def test_explicit_validation_data(data):
    x, t, xt, tt = data
    net, tr = make(data, x_val=xt[:50], t_val=tt[:50], evaluate_sample_num_per_epoch=40)
    tr.train()
    assert tr.has_validation and len(tr.val_acc_list) == 2
    assert all(round(v * 40) == v * 40 for v in tr.val_acc_list)                    # on 40 samples


def test_without_validation_the_books_lines_are_unchanged(data, capsys):
    _, tr = make(data, verbose=True)
    tr.train()
    out = capsys.readouterr().out.splitlines()
    assert not tr.has_validation and tr.val_acc_list == [] and "val_acc" not in tr.history[0]
    assert [line.split(",")[0] for line in out] == ["=== epoch:1", "=== epoch:2",
                                                    "=============== Final Test Accuracy ===============",
                                                    "test acc:" + str(tr.test_acc)]
    assert out[0] == f"=== epoch:1, train acc:{tr.train_acc_list[0]}, test acc:{tr.test_acc_list[0]} ==="


def test_history_runs_from_epoch_0_to_the_final_accuracy(data):
    net, tr = make(data, epochs=3, evaluate_sample_num_per_epoch=100)
    acc = tr.train()
    assert [h["epoch"] for h in tr.history] == [0, 1, 2, 3]
    assert [h["final"] for h in tr.history] == [False, False, False, True]
    assert [h["iteration"] for h in tr.history] == [1, 7, 13, 18]       # where the book measures; the end
    assert [h["test_acc"] for h in tr.history[:-1]] == tr.test_acc_list  # the book's list: 100 samples
    assert [h["train_acc"] for h in tr.history[:-1]] == tr.train_acc_list
    assert tr.history[-1]["test_acc"] == acc == tr.test_acc             # the whole test set
    assert len(tr.train_acc_list) == 3                                  # the book's lists keep their length
    assert all(h["loss"] > 0 and h["lr"] == 0.01 for h in tr.history)


def test_a_fractional_epoch_length_measures_every_epoch(data):
    # 480 images in batches of 100: 4.8 steps per epoch; the book's `current_iter % 4.8 == 0`
    # holds at step 0 only; every epoch's first step is measured here (steps 0, 5, 10)
    x, t, xt, tt = data
    np.random.seed(0)
    tr = Trainer(TwoLayerNet(784, 10, 10), x[:480], t[:480], xt, tt, epochs=3, verbose=False, progress=False)
    tr.train()
    assert tr.max_iter == 14 and len(tr.test_acc_list) == 3
    assert [h["iteration"] for h in tr.history] == [1, 6, 11, 14]
    assert tr.history[-1]["epoch"] == pytest.approx(14 / 4.8, abs=1e-4)


# -- callbacks ---------------------------------------------------------------------------------

class Recorder(Callback):
    def __init__(self, stop_at_epoch=None):
        self.calls = []
        self.stop_at_epoch = stop_at_epoch

    def on_train_begin(self, trainer):
        self.calls.append(("begin", trainer.current_iter))

    def on_step_end(self, trainer, logs):
        self.calls.append(("step", logs["iteration"]))

    def on_epoch_end(self, trainer, logs):
        self.calls.append(("epoch", logs["epoch"]))
        if logs["epoch"] == self.stop_at_epoch:
            trainer.stop_training = True

    def on_train_end(self, trainer, logs):
        self.calls.append(("end", logs["epoch"]))


def test_hooks_run_in_order(data):
    rec = Recorder()
    _, tr = make(data, callbacks=[rec])
    tr.train()
    assert rec.calls[0] == ("begin", 0)
    assert [c for c in rec.calls if c[0] == "step"] == [("step", i) for i in range(1, 13)]
    # epoch 1 is reported at its evaluation (after step 7, the first of epoch 2), epoch 2 after training
    assert [c for c in rec.calls if c[0] != "step"] == [("begin", 0), ("epoch", 1), ("epoch", 2), ("end", 2)]
    assert rec.calls.index(("epoch", 1)) == rec.calls.index(("step", 7)) - 1


def test_stop_training_ends_after_the_current_step(data):
    rec = Recorder(stop_at_epoch=1)
    _, tr = make(data, epochs=10, callbacks=[rec])
    acc = tr.train()
    assert tr.current_iter == 7 and not tr.interrupted and acc == tr.test_acc
    assert tr.history[-1]["final"] and tr.history[-1]["epoch"] == pytest.approx(7 / 6, abs=1e-4)


def test_early_stopping_stops_when_the_monitor_stalls(data):
    # a learning rate too small to change any prediction: val_acc stays where it is
    es = EarlyStopping(monitor="val_acc", patience=2)
    _, tr = make(data, epochs=20, optimizer=SGD(lr=1e-12), optimizer_param=None,
                 validation_split=0.5, callbacks=[es])
    tr.train()
    assert es.best_epoch == 1 and es.stopped_epoch == 3
    assert tr.current_iter == 3 * 3 + 1 < tr.max_iter                      # 3 steps per epoch
    improving = EarlyStopping(monitor="val_acc", patience=2)
    _, tr = make(data, epochs=3, validation_split=0.5, callbacks=[improving])
    tr.train()
    assert tr.current_iter == tr.max_iter and improving.stopped_epoch is None


def test_callback_arguments_are_checked():
    with pytest.raises(ValueError, match="EarlyStopping: monitor must be one of val_acc"):
        EarlyStopping(monitor="accuracy")
    with pytest.raises(ValueError, match="patience must be >= 0"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="StepLR: step_size must be >= 1"):
        StepLR(0)
    with pytest.raises(ValueError, match="StepLR: gamma must be a finite number > 0"):
        StepLR(2, gamma=float("nan"))
    with pytest.raises(ValueError, match="CosineLR: t_max"):
        CosineLR(0)
    with pytest.raises(ValueError, match="ModelCheckpoint: monitor"):
        ModelCheckpoint("x", monitor="acc")


def test_monitoring_val_acc_without_validation_data_is_refused_at_the_start(data, tmp_path):
    for cb in (EarlyStopping(), ModelCheckpoint(tmp_path)):
        _, tr = make(data, callbacks=[cb])
        with pytest.raises(ValueError, match="needs validation data"):
            tr.train()
        assert tr.current_iter == 0


class LrLog(SGD):
    """SGD recording the learning rate of every update."""
    def __init__(self, lr):
        super().__init__(lr)
        self.used = []

    def update(self, params, grads):
        self.used.append(self.lr)
        super().update(params, grads)


def test_step_and_cosine_schedules_change_the_rate_at_epoch_boundaries(data):
    opt = LrLog(0.1)
    _, tr = make(data, epochs=5, optimizer=opt, optimizer_param=None, callbacks=[StepLR(2, gamma=0.5)])
    tr.train()
    assert opt.used == pytest.approx([0.1] * 12 + [0.05] * 12 + [0.025] * 6)
    # each entry's "lr": that of the step before it (the last step, 29, is in epoch 5: 0.025)
    assert [h["lr"] for h in tr.history] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    opt = LrLog(0.1)
    _, tr = make(data, epochs=4, optimizer=opt, optimizer_param=None, callbacks=[StepLR(2, gamma=0.5)])
    tr.train()
    assert [h["lr"] for h in tr.history] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.05])
    assert opt.lr == pytest.approx(0.025)           # what a next step would use
    opt = LrLog(0.1)
    _, tr = make(data, epochs=5, optimizer=opt, optimizer_param=None, callbacks=[CosineLR(4, lr_min=0.02)])
    tr.train()
    want = [0.02 + 0.08 * (1 + np.cos(np.pi * min(e, 4) / 4)) / 2 for e in range(5)]
    assert opt.used == pytest.approx([w for w in want for _ in range(6)])


# -- checkpoints and resuming ----------------------------------------------------------------------

def assert_same_run(a_net, a, b_net, b):
    for k in a_net.params:
        np.testing.assert_array_equal(a_net.params[k], b_net.params[k], err_msg=k)
    assert losses(a) == losses(b)
    assert a.train_acc_list == b.train_acc_list and a.test_acc_list == b.test_acc_list
    assert a.val_acc_list == b.val_acc_list
    assert a.history == b.history
    assert (a.current_iter, a.current_epoch) == (b.current_iter, b.current_epoch)
    assert a.optimizer.iter == b.optimizer.iter
    for name in ("m", "v"):
        for k, val in getattr(a.optimizer, name).items():
            np.testing.assert_array_equal(val, getattr(b.optimizer, name)[k], err_msg=f"{name}[{k}]")


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_resuming_a_checkpoint_gives_the_weights_of_an_uninterrupted_run(data, backend, tmp_path):
    """2 epochs, a checkpoint, then a fresh network and a fresh Trainer (other seeds, as in a new
    process) loading it and training 2 more: the same weights, optimizer state, lists and history
    as 4 epochs straight. Adam, a step schedule and a validation split take part."""
    with fastdl.using_backend(backend):
        kw = dict(validation_split=0.1)
        net, straight = make(data, epochs=4, callbacks=[StepLR(1, 0.5)], **kw)
        straight.train()
        first_net, first = make(data, epochs=2, callbacks=[StepLR(1, 0.5)], **kw)
        first.train()
        path = tmp_path / "run.npz"
        first.save_checkpoint(path)
        np.random.seed(99)                            # whatever the new process has drawn before
        fresh_net, resumed = make(data, epochs=4, seed=7, net_seed=3, callbacks=[StepLR(1, 0.5)], **kw)
        assert not np.array_equal(fresh_net.params["W1"], first_net.params["W1"])
        resumed.load_checkpoint(path)
        assert resumed.current_iter == first.current_iter == 10 and resumed.history[-1]["final"]
        resumed.train()
        assert_same_run(net, straight, fresh_net, resumed)


def test_resuming_a_dropout_and_batchnorm_network(data, tmp_path):
    """Dropout masks come from NumPy's global random state, which the checkpoint restores;
    batch-norm running statistics travel with the weights. (On the reference kernels: what is
    tested is the state, not the kernels.)"""
    x, t, xt, tt = data

    def build(seed):
        np.random.seed(seed)
        return MultiLayerNetExtend(784, [16, 16], 10, use_dropout=True, dropout_ration=0.2,
                                   use_batchnorm=True)

    def trainer(net, epochs, seed):
        return Trainer(net, x, t, xt, tt, epochs=epochs, optimizer="momentum", verbose=False,
                       progress=False, seed=seed)
    with fastdl.using_backend("numpy"):
        net = build(0)
        straight = trainer(net, 3, 1)
        straight.train()
        first = trainer(build(0), 1, 1)
        first.train()
        first.save_checkpoint(tmp_path / "c.npz")
        fresh = build(5)
        resumed = trainer(fresh, 3, 2)
        resumed.load_checkpoint(tmp_path / "c.npz")
        resumed.train()
    for k in net.params:
        np.testing.assert_array_equal(net.params[k], fresh.params[k], err_msg=k)
    bn = [n for n in net.layers if n.startswith("BatchNorm")][0]
    np.testing.assert_array_equal(net.layers[bn].running_mean, fresh.layers[bn].running_mean)
    assert losses(straight) == losses(resumed)


def test_model_checkpoint_writes_best_and_last_and_last_resumes(data, tmp_path):
    folder = tmp_path / "ck"
    net, straight = make(data, epochs=4, validation_split=0.2)
    straight.train()
    ck = ModelCheckpoint(folder)
    first_net, first = make(data, epochs=4, validation_split=0.2, callbacks=[ck, Recorder(stop_at_epoch=2)])
    first.train()                                  # stopped one step into epoch 3, like a killed run
    assert sorted(os.listdir(folder)) == ["best.npz", "last.npz"]          # no temporary files left
    last = read_meta(folder / "last.npz")["trainer"]
    assert last["current_iter"] == first.current_iter == 2 * 5 + 1
    best_entry = max((h for h in first.history if h["epoch"] > 0), key=lambda h: h["val_acc"])
    assert read_meta(folder / "best.npz")["trainer"]["history"][-1] == best_entry
    assert ck.best == best_entry["val_acc"]
    loaded = fastdl.load_model(folder / "last.npz")                        # also a model file
    np.testing.assert_array_equal(loaded.params["W2"], first_net.params["W2"])
    fresh_net, resumed = make(data, epochs=4, validation_split=0.2, net_seed=4, seed=4,
                              callbacks=[ModelCheckpoint(folder)])
    resumed.load_checkpoint(folder / "last.npz")
    resumed.train()
    for k in net.params:
        np.testing.assert_array_equal(net.params[k], fresh_net.params[k], err_msg=k)
    assert losses(straight) == losses(resumed) and straight.history == resumed.history


def test_model_checkpoint_keeps_the_last_sound_state_when_training_diverges(data, tmp_path):
    ck = ModelCheckpoint(tmp_path, monitor="test_acc")
    net, tr = make(data, epochs=4, callbacks=[ck], stop_on_divergence=True)
    real = tr.train_step

    def step():
        real()
        if tr.current_iter == 15:
            tr.train_loss_list[-1] = float("nan")
    tr.train_step = step
    tr.train()
    assert tr.current_iter == 15
    assert read_meta(tmp_path / "last.npz")["trainer"]["current_iter"] == 13     # epoch 2's evaluation


def test_load_checkpoint_refuses_what_does_not_fit_and_changes_nothing(data, tmp_path):
    net, tr = make(data, epochs=1)
    tr.train()
    path = tmp_path / "c.npz"
    tr.save_checkpoint(path)
    plain = tmp_path / "plain.npz"
    net.save_params(plain)
    other_net, other = make(data, epochs=2, net_seed=1)
    w = other_net.params["W1"].copy()
    with pytest.raises(ValueError, match="not a Trainer checkpoint"):
        other.load_checkpoint(plain)
    _, sgd = make(data, net=other_net, optimizer="sgd")
    with pytest.raises(ValueError, match="state of a Adam optimizer.*optimizer='Adam'"):
        sgd.load_checkpoint(path)
    _, batch = make(data, net=other_net, mini_batch_size=50)
    with pytest.raises(ValueError, match="batches of 100.*same data and mini_batch_size"):
        batch.load_checkpoint(path)
    bigger = TwoLayerNet(784, 30, 10)
    _, wrong = make(data, net=bigger)
    with pytest.raises(ValueError, match="does not fit this network"):
        wrong.load_checkpoint(path)
    np.testing.assert_array_equal(other_net.params["W1"], w)
    assert other.current_iter == 0 and other.optimizer.m is None


def test_a_checkpoint_needs_a_fastdl_optimizer(data, tmp_path):
    class Plain:
        def update(self, params, grads):
            for k in params:
                params[k] -= 0.01 * grads[k]
    _, tr = make(data, epochs=1, optimizer=Plain(), optimizer_param=None)
    tr.train()                                       # a duck-typed optimizer trains
    with pytest.raises(TypeError, match="not one of fastdl.optimizers"):
        tr.save_checkpoint(tmp_path / "c.npz")


# -- output -------------------------------------------------------------------------------------

def test_verbose_iter_prints_the_books_line_with_str_of_the_loss(data, capsys):
    _, tr = make(data, verbose="iter")
    tr.train()
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("train loss:")]
    assert len(lines) == 12
    assert lines == ["train loss:" + str(np.float64(v)) for v in tr.train_loss_list]
    assert all(isinstance(v, np.float64) for v in tr.train_loss_list)
    assert not any("np.float64" in ln for ln in lines)           # str, not repr


def test_progress_bar_shows_each_evaluations_accuracy_as_it_is_measured(data, capsys):
    _, tr = make(data, epochs=3, progress=True, validation_split=0.5)
    tr.train()
    err = capsys.readouterr().err
    for h in tr.history[1:]:                 # every completed epoch and the final, shown when measured
        assert f"test_acc={h['test_acc']:.4f}" in err and f"val_acc={h['val_acc']:.4f}" in err
    first = err.find(f"test_acc={tr.history[1]['test_acc']:.4f}")
    assert f"test_acc={tr.history[0]['test_acc']:.4f}" not in err[:first]    # not the untrained value


def test_progress_defaults_to_off_without_a_terminal_or_kernel(data):
    _, tr = make(data, progress=None)
    assert tr.progress is False                      # pytest's stderr is no terminal


def test_progress_bar_in_a_jupyter_kernel(data, tmp_path, monkeypatch):
    """A real kernel (a few seconds to start): progress=None shows a bar there, as a widget when
    ipywidgets is installed, else as tqdm's text on stderr."""
    nbformat = pytest.importorskip("nbformat", reason="the test extras install nbformat")
    nbclient = pytest.importorskip("nbclient", reason="the test extras install nbclient")
    monkeypatch.setenv("FASTDL_BACKEND", "numpy")    # no compilation in the kernel
    code = ("import numpy as np\n"
            "from fastdl.datasets import load_mnist\n"
            "from fastdl.nets import TwoLayerNet\n"
            "from fastdl.trainer import Trainer\n"
            "(x, t), (xt, tt) = load_mnist(sample=True)\n"
            "np.random.seed(0)\n"
            "tr = Trainer(TwoLayerNet(784, 10, 10), x[:300], t[:300], xt[:100], tt[:100], epochs=2,\n"
            "             verbose=False, seed=0)\n"
            "print('progress:', tr.progress)\n"
            "print('final:', tr.train())\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    stdout = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    assert "progress: True" in stdout and "final:" in stdout
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    widget = any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert widget or re.search(r"100%\|.*\| 6/6", stderr), outputs


def test_a_float64_checkpoint_resumes_a_float32_network(data, tmp_path):
    """The optimizer state follows the network's dtype, as the weights do."""
    np.random.seed(0)
    net64 = TwoLayerNet(784, 20, 10)
    _, tr = make(data, net=net64, epochs=1)
    tr.train()
    tr.save_checkpoint(tmp_path / "c.npz")
    net32 = TwoLayerNet(784, 20, 10, dtype=np.float32)
    _, resumed = make(data, net=net32, epochs=2)
    resumed.load_checkpoint(tmp_path / "c.npz")
    assert all(v.dtype == np.float32 for v in resumed.optimizer.m.values())
    resumed.train()
    assert resumed.current_iter == 12 and all(np.isfinite(v).all() for v in net32.params.values())
