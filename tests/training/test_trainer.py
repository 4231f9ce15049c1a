"""The Trainer: the book's loop, reproducibility, safe interruption, and the accuracy target."""
import os
import signal

import numpy as np
import pytest

from fastdl.datasets import load_mnist
from fastdl.nets import SimpleConvNet, TwoLayerNet
from fastdl.trainer import Trainer


@pytest.fixture(scope="module")
def flat():
    return load_mnist(sample=True)


def small_trainer(flat, seed, **kw):
    (x, t), (xt, tt) = flat
    np.random.seed(seed)
    net = TwoLayerNet(784, 20, 10)
    return Trainer(net, x[:600], t[:600], xt[:300], tt[:300], epochs=2, mini_batch_size=100,
                   optimizer="Adam", optimizer_param={"lr": 0.01}, verbose=False, progress=False,
                   seed=seed, **kw)


def test_book_loop_counts(flat):
    tr = small_trainer(flat, 0, evaluate_sample_num_per_epoch=50)
    assert tr.iter_per_epoch == 6 and tr.max_iter == 12
    acc = tr.train()
    assert tr.current_iter == 12 and len(tr.train_loss_list) == 12
    assert tr.current_epoch == 2 and len(tr.train_acc_list) == len(tr.test_acc_list) == 2
    assert all(a * 50 == int(round(a * 50)) for a in tr.test_acc_list)        # measured on 50 samples
    assert acc == tr.test_acc and 0 < acc <= 1
    assert tr.images_per_second > 0
    assert float(tr.train_loss_list[-1]) < float(tr.train_loss_list[0])


def test_same_seed_same_run(flat):
    # the book's loop draws from NumPy's global RNG: build and run one after the other
    a = small_trainer(flat, 5)
    a.train()
    b = small_trainer(flat, 5)
    b.train()
    assert [float(v) for v in a.train_loss_list] == [float(v) for v in b.train_loss_list]
    c = small_trainer(flat, 6)
    c.train()
    assert [float(v) for v in c.train_loss_list] != [float(v) for v in a.train_loss_list]


def test_book_epoch_lines_and_iteration_lines(flat, capsys):
    tr = small_trainer(flat, 0)
    tr.verbose = "iter"
    tr.train()
    out = capsys.readouterr().out
    assert out.count("train loss:") == 12
    assert "=== epoch:1, train acc:" in out and "=== epoch:2" in out
    assert "=============== Final Test Accuracy ===============" in out and "test acc:" in out


def test_ctrl_c_stops_after_the_current_step(flat):
    tr = small_trainer(flat, 0)
    tr.max_iter = 10_000
    real_step = tr.train_step

    def step():
        real_step()
        if tr.current_iter == 3:
            os.kill(os.getpid(), signal.SIGINT)       # as a user pressing Ctrl-C
    tr.train_step = step
    before = signal.signal(signal.SIGINT, signal.default_int_handler)   # as in an interactive Python
    try:
        acc = tr.train()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler       # restored
    finally:
        signal.signal(signal.SIGINT, before)
    assert tr.interrupted and tr.current_iter == 3 and 0 < acc <= 1
    assert all(np.isfinite(v).all() for v in tr.network.params.values())


def test_bad_arguments(flat):
    (x, t), (xt, tt) = flat
    net = TwoLayerNet(784, 5, 10)
    with pytest.raises(ValueError, match="x_train has 10 samples but t_train has 9"):
        Trainer(net, x[:10], t[:9], xt, tt)
    with pytest.raises(ValueError, match="unknown optimizer 'AdamW'"):
        Trainer(net, x, t, xt, tt, optimizer="AdamW")
    # the reliability campaign's cases: each a one-line error naming the argument
    cases = [({"mini_batch_size": 0}, ValueError, "mini_batch_size"),       # was ZeroDivisionError
             ({"mini_batch_size": 2.5}, TypeError, "mini_batch_size"),
             ({"epochs": float("nan")}, ValueError, "epochs"),             # was accepted
             ({"epochs": -1}, ValueError, "epochs"),
             ({"evaluate_sample_num_per_epoch": -1}, ValueError, "evaluate_sample_num_per_epoch"),
             ({"optimizer": None}, TypeError, "optimizer"),                 # was AttributeError: 'lower'
             ({"verbose": "loud"}, ValueError, "verbose")]
    for kw, exc, name in cases:
        with pytest.raises(exc, match=f"^Trainer: {name}") as e:
            Trainer(net, x, t, xt, tt, **kw)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="x_test is empty"):
        Trainer(net, x, t, xt[:0], tt[:0])


def test_the_books_epoch_and_final_lines_are_its_string_concatenations(flat, capsys):
    tr = small_trainer(flat, 0)
    tr.verbose = True
    acc = tr.train()
    out = capsys.readouterr().out.splitlines()
    book = ["=== epoch:" + str(i + 1) + ", train acc:" + str(a) + ", test acc:" + str(b) + " ==="
            for i, (a, b) in enumerate(zip(tr.train_acc_list, tr.test_acc_list))]
    assert out == book + ["=============== Final Test Accuracy ===============", "test acc:" + str(acc)]


def test_train_continues_from_where_it_stopped(flat):
    """Raising max_iter and calling train() again goes on from current_iter, as one run would."""
    one = small_trainer(flat, 3)
    one.train()
    two = small_trainer(flat, 3)
    two.max_iter = 7
    two.train()
    two.max_iter = 12
    two.train()
    assert [float(v) for v in two.train_loss_list] == [float(v) for v in one.train_loss_list]
    assert two.test_acc_list == one.test_acc_list
    assert [h["epoch"] for h in two.history] == [h["epoch"] for h in one.history] == [0, 1, 2]



def _nan_after(tr, step):
    """Make the loss of step number ``step`` (1-based) NaN, as a diverging network's would be."""
    real_step = tr.train_step

    def one():
        real_step()
        if tr.current_iter == step:
            tr.train_loss_list[-1] = float("nan")
    tr.train_step = one


def test_the_book_loop_goes_on_after_a_nan_loss_and_records_where(flat):
    tr = small_trainer(flat, 0)
    _nan_after(tr, 4)
    assert tr.diverged_at is None and tr.divergence is None
    tr.train()
    assert tr.current_iter == tr.max_iter == 12 and not tr.interrupted      # as in the book
    assert tr.diverged_at == 3 and np.isnan(tr.train_loss_list[3])
    it, loss = tr.divergence
    assert it == 4 and np.isnan(loss)


def test_stop_on_divergence_stops_after_the_first_nan_loss(flat):
    tr = small_trainer(flat, 0, stop_on_divergence=True)
    _nan_after(tr, 4)
    acc = tr.train()
    assert tr.current_iter == 4 and len(tr.train_loss_list) == 4
    assert not tr.interrupted                          # a divergence is not a Ctrl-C
    assert tr.diverged_at == 3 and tr.divergence[0] == 4 and np.isnan(tr.divergence[1])
    assert acc == tr.test_acc and acc is not None      # the final accuracy is still measured


def test_stop_on_divergence_sees_an_infinite_loss_and_lets_a_sound_run_finish(flat):
    tr = small_trainer(flat, 0, stop_on_divergence=True)
    real_step = tr.train_step

    def step():
        real_step()
        if tr.current_iter == 2:
            tr.train_loss_list[-1] = np.float32("inf")
    tr.train_step = step
    tr.train()
    assert tr.current_iter == 2 and tr.divergence == (2, float("inf"))
    sound = small_trainer(flat, 0, stop_on_divergence=True)
    sound.train()
    assert sound.current_iter == 12 and sound.divergence is None


def test_simpleconvnet_reaches_94_percent_on_the_official_test_set():
    """What docs/command-line.md shows: at least 94% after 10 epochs of Adam (lr 0.001, batch 100) on the
    shipped 5,000 images, float32, evaluated on all 10,000 official test images."""
    (x, t), (xt, tt) = load_mnist(flatten=False, sample=True)
    np.random.seed(0)
    net = SimpleConvNet(dtype=np.float32)
    tr = Trainer(net, x, t, xt, tt, epochs=10, mini_batch_size=100, optimizer="Adam",
                 optimizer_param={"lr": 0.001}, evaluate_sample_num_per_epoch=1000,
                 verbose=False, progress=False)
    acc = tr.train()
    assert acc >= 0.94, acc
