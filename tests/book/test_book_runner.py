"""``python -m fastdl.book``: scripts run as ``python SCRIPT`` runs them, and so do their children.

Every test writes a small script in the book's style to a temporary folder and runs it through
the runner in a real interpreter (real child processes for spawn and forkserver pools, a real
Python subprocess), with a timeout: a child that cannot import ``common`` makes a pool respawn
workers forever, which shows up here as a timeout, not a hang of the suite.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastdl
from fastdl.datasets import load_mnist
from fastdl.nets import MultiLayerNet
from fastdl.optimizers import Adam


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def book(args, cwd, env=None, timeout=120, runner=True):
    """Run ``python -m fastdl.book ARGS`` (or plain ``python ARGS``) in ``cwd``."""
    cmd = [sys.executable, *(["-m", "fastdl.book"] if runner else []), *args]
    e = dict(os.environ, **(env or {}))
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=e)


POOL_SCRIPT = """
    import multiprocessing as mp
    import sys
    from common.functions import sigmoid
    from dataset.mnist import load_mnist
    import fastdl


    def work(x):
        (x_train, _), _ = load_mnist()
        import common.functions
        return (float(sigmoid(x)), len(x_train), fastdl.current_backend(),
                common.functions.__fastdl_shim__)


    if __name__ == "__main__":
        with mp.get_context(sys.argv[1]).Pool(2) as pool:
            for row in pool.map(work, [0.0, 1.0]):
                print(*row)
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_pool_children_import_the_book_modules(tmp_path, method):
    """A spawn/forkserver pool's workers resolve ``common.*``/``dataset.*`` as the parent does,
    with the runner's --backend and --sample."""
    write(tmp_path, "pool.py", POOL_SCRIPT)
    r = book(["--backend", "numpy", "--sample", "pool.py", method], cwd=tmp_path, timeout=90)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines() == ["0.5 5000 numpy True", f"{1 / (1 + np.exp(-1.0))} 5000 numpy True"]
    assert "ModuleNotFoundError" not in r.stderr and "Traceback" not in r.stderr


def test_python_subprocess_of_the_script_imports_the_book_modules(tmp_path):
    write(tmp_path, "outer.py", """
        import subprocess, sys
        code = ("import common.functions as f, fastdl; "
                "print(f.sigmoid(0.0), f.__fastdl_shim__, fastdl.current_backend())")
        print(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.strip())
    """)
    r = book(["--backend", "numpy", "outer.py"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0.5 True numpy"


def test_nothing_is_left_behind_after_run(tmp_path):
    """``fastdl.book.run`` called in-process: afterwards the environment, sys.argv, sys.path,
    sys.meta_path, multiprocessing and the backend are as before, and the bootstrap folder is
    gone."""
    write(tmp_path, "s.py", """
        import os, sys
        print(os.environ["PYTHONPATH"].split(os.pathsep)[0])
    """)
    check = textwrap.dedent(f"""
        import io, contextlib, os, sys, multiprocessing.spawn as s
        os.environ["PYTHONPATH"] = "/somewhere"
        os.environ.pop("FASTDL_BACKEND", None); os.environ.pop("FASTDL_MNIST", None)
        import fastdl, fastdl.book
        fastdl.set_backend("numba")
        before = (dict(os.environ), sys.argv[:], sys.path[:], sys.meta_path[:],
                  s.get_preparation_data, fastdl.current_backend())
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            fastdl.book.run({str(tmp_path / "s.py")!r}, backend="numpy", sample=True)
        folder = out.getvalue().strip()
        after = (dict(os.environ), sys.argv[:], sys.path[:], sys.meta_path[:],
                 s.get_preparation_data, fastdl.current_backend())
        print(os.path.basename(folder).startswith("fastdl-book-"), os.path.exists(folder))
        print([a == b for a, b in zip(before, after)])
        try:
            import common
        except ImportError:
            print("common gone")
    """)
    r = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["True False", "[True, True, True, True, True, True]",
                                     "common gone"]


SHOW = """
    import os, sys
    print("argv", sys.argv)
    print("file", __file__)
    print("path0", sys.path[0])
    print("name", __name__)
"""


@pytest.mark.parametrize("typed", ["show.py", "./sub/../show.py", "link.py", "ABS"])
def test_script_sees_what_plain_python_shows(tmp_path, typed):
    """sys.argv[0] as typed, __file__, sys.path[0] (symbolic links resolved) and __name__ as
    ``python SCRIPT`` gives them."""
    write(tmp_path, "real/show.py", SHOW)
    (tmp_path / "sub").mkdir()
    (tmp_path / "show.py").symlink_to(tmp_path / "real" / "show.py")
    (tmp_path / "link.py").symlink_to(tmp_path / "real" / "show.py")
    if typed == "ABS":
        typed = str(tmp_path / "show.py")
    plain = book([typed, "a", "--b"], cwd=tmp_path, runner=False)
    ours = book([typed, "a", "--b"], cwd=tmp_path)
    assert plain.returncode == 0 and ours.returncode == 0, ours.stderr
    assert ours.stdout == plain.stdout
    assert f"argv ['{typed}', 'a', '--b']" in ours.stdout


def test_own_common_module_next_to_the_script(tmp_path):
    """fastdl answers for the book's module names only: the script's own ``common/mystuff.py``
    (importing the book's ``common.functions`` itself) comes from its folder, in the parent and
    in spawned children."""
    write(tmp_path, "common/mystuff.py", """
        from common.functions import sigmoid
        def twice(x):
            return 2 * sigmoid(x)
    """)
    write(tmp_path, "dataset/extra.py", "VALUE = 7\n")
    write(tmp_path, "s.py", """
        import multiprocessing as mp
        import common.functions
        from common.mystuff import twice
        from dataset.extra import VALUE
        def work(x):
            return float(twice(x)) + VALUE
        if __name__ == "__main__":
            print(common.functions.__fastdl_shim__, twice(0.0), VALUE)
            with mp.get_context("spawn").Pool(1) as pool:
                print(pool.map(work, [0.0]))
    """)
    r = book(["s.py"], cwd=tmp_path, timeout=90)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["True 1.0 7", "[8.0]"]
    write(tmp_path, "t.py", "import common.nothing\n")
    r = book(["t.py"], cwd=tmp_path)
    assert r.returncode == 1 and "No module named 'common.nothing'" in r.stderr


def test_help_is_plain_text():
    r = subprocess.run([sys.executable, "-m", "fastdl.book", "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0
    assert r.stdout.startswith("usage: python -m fastdl.book")
    assert "``" not in r.stdout and ":func:" not in r.stdout
    assert "common/mystuff.py" in r.stdout and "multiprocessing" in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 79


TRAIN_SCRIPT = """
    import sys, os
    sys.path.append(os.pardir)
    import numpy as np
    from dataset.mnist import load_mnist
    from common.multi_layer_net import MultiLayerNet
    from common.trainer import Trainer

    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True)
    x_train, t_train = x_train[:300], t_train[:300]
    x_test, t_test = x_test[:200], t_test[:200]
    np.random.seed(1)
    network = MultiLayerNet(input_size=784, hidden_size_list=[20], output_size=10)
    trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=2, mini_batch_size=100,
                      optimizer="Adam", optimizer_param={"lr": 0.01}{verbose},
                      evaluate_sample_num_per_epoch=100)
    trainer.train()
"""


def book_trainer_lines(verbose=True):
    """What the book's ``Trainer`` prints for TRAIN_SCRIPT, worked out from its rules: every step
    draws a batch with replacement, updates, then prints ``train loss:`` with the loss of that
    batch after the update; at steps 0, 3 (every train_size / batch_size) an epoch line with the
    accuracies on the first 100 samples of each set; at the end the accuracy on the whole test
    set."""
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, sample=True)
    x_train, t_train, x_test, t_test = x_train[:300], t_train[:300], x_test[:200], t_test[:200]
    np.random.seed(1)
    net = MultiLayerNet(input_size=784, hidden_size_list=[20], output_size=10)
    opt = Adam(lr=0.01)
    lines, epoch = [], 0
    for i in range(6):
        mask = np.random.choice(300, 100)
        opt.update(net.params, net.gradient(x_train[mask], t_train[mask]))
        if verbose:
            lines.append("train loss:" + str(net.loss(x_train[mask], t_train[mask])))
        if i % 3 == 0:
            epoch += 1
            train_acc = net.accuracy(x_train[:100], t_train[:100])
            test_acc = net.accuracy(x_test[:100], t_test[:100])
            lines.append(f"=== epoch:{epoch}, train acc:{train_acc}, test acc:{test_acc} ===")
    lines += ["=============== Final Test Accuracy ===============",
              "test acc:" + str(net.accuracy(x_test, t_test))]
    return lines


@pytest.mark.parametrize("verbose", ["", ", verbose=True"])
def test_book_trainer_prints_the_books_lines(tmp_path, verbose):
    """``common.trainer.Trainer`` with the book's default ``verbose=True``: a ``train loss:`` line
    at every step, then the epoch and final lines, line for line as the book's Trainer."""
    write(tmp_path, "ch07/train.py", TRAIN_SCRIPT.replace("{verbose}", verbose))
    r = book(["--backend", "numpy", "--sample", "train.py"], cwd=tmp_path / "ch07")
    assert r.returncode == 0, r.stderr
    with fastdl.using_backend("numpy"):
        expected = book_trainer_lines()
    assert r.stdout.splitlines() == expected
    assert sum(line.startswith("train loss:") for line in expected) == 6


def test_book_trainer_verbose_false_prints_nothing(tmp_path):
    write(tmp_path, "ch07/train.py", TRAIN_SCRIPT.replace("{verbose}", ", verbose=False"))
    r = book(["--backend", "numpy", "--sample", "train.py"], cwd=tmp_path / "ch07")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
