"""Smoke test of an installed (not editable) fastdl wheel, run by .ci/wheel_smoke.sh with the fresh
virtual environment's Python, from a folder outside the checkout.

    python .ci/wheel_smoke.py CHECKOUT

Checks: fastdl is imported from the environment (not from CHECKOUT), ships py.typed, its sample
data and fastdl.kernels; the ``fastdl`` command runs ``info``; one training step of a small
TwoLayerNet on the shipped MNIST sample on each CPU backend (numpy, numba) gives the same loss;
mypy checks a user's file against the installed annotations (a correct file passes, a wrong call
is reported).
"""
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path


def check(cond: bool, what: str) -> None:
    if not cond:
        sys.exit(f"wheel smoke: FAILED: {what}")
    print(f"ok  {what}")


def main() -> None:
    checkout = Path(sys.argv[1]).resolve()
    here = Path.cwd().resolve()
    check(checkout not in here.parents and here != checkout, f"runs outside the checkout ({here})")

    import numpy as np

    import fastdl
    import fastdl.kernels.reference
    from fastdl.datasets import load_mnist
    from fastdl.nets import TwoLayerNet
    from fastdl.trainer import Trainer

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    pkg = Path(fastdl.__file__).resolve().parent
    check(pkg.parent == site, f"fastdl {fastdl.__version__} is imported from {pkg}")
    check((pkg / "py.typed").is_file(), "py.typed is installed")
    check(Path(fastdl.kernels.reference.__file__).resolve().is_relative_to(pkg / "kernels"),
          "fastdl.kernels is installed inside fastdl/")

    exe = Path(sys.executable).parent / "fastdl"
    out = subprocess.run([str(exe), "info"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "FASTDL_BACKEND": "numpy"})
    check(out.returncode == 0 and f"fastdl {fastdl.__version__}" in out.stdout,
          "`fastdl info` runs:\n    " + (out.stdout + out.stderr).strip().replace("\n", "\n    "))

    (x_train, t_train), (x_test, t_test) = load_mnist(sample=True)
    check(x_train.shape == (5000, 784) and x_test.shape == (10000, 784), "the shipped MNIST sample loads")
    losses = {}
    for name in ("numpy", "numba"):
        t0 = time.perf_counter()
        with fastdl.using_backend(name):
            np.random.seed(0)
            net = TwoLayerNet(784, 16, 10)
            trainer = Trainer(net, x_train[:200], t_train[:200], x_test[:50], t_test[:50], epochs=1,
                              mini_batch_size=20, optimizer="Adam", verbose=False, progress=False, seed=1)
            trainer.train_step()
            losses[name] = float(trainer.train_loss_list[-1])
        check(np.isfinite(losses[name]),
              f"one training step on {name}: loss {losses[name]:.6f} ({time.perf_counter() - t0:.1f} s)")
    check(abs(losses["numpy"] - losses["numba"]) < 1e-4 * max(1.0, abs(losses["numpy"])),
          "numpy and numba give the same loss")

    with tempfile.TemporaryDirectory(dir=here) as tmp:
        good = Path(tmp, "user_code.py")
        good.write_text(
            "import numpy as np\n"
            "import fastdl\n"
            "from fastdl.nets import SimpleConvNet, TwoLayerNet\n"
            "from fastdl.trainer import Trainer\n"
            "import fastdl.kernels.reference\n\n"
            "net = TwoLayerNet(784, 50, 10)\n"
            "y: np.ndarray = net.predict(np.zeros((2, 784), dtype=np.float32))\n"
            "with fastdl.using_backend('numpy'):\n"
            "    conv = SimpleConvNet()\n"
            "name: str = fastdl.current_backend()\n")
        bad = Path(tmp, "user_mistake.py")
        bad.write_text("import fastdl\n\nn: int = fastdl.current_backend()\n")
        for path, ok in ((good, True), (bad, False)):
            r = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", path.name], cwd=tmp,
                               capture_output=True, text=True, timeout=600)
            text = (r.stdout + r.stderr).strip()
            if ok:
                check(r.returncode == 0, f"mypy accepts {path.name}: {text}")
            else:
                check(r.returncode == 1 and "incompatible types in assignment" in text.lower()
                      and "import" not in text.lower(),
                      f"mypy reports the wrong type in {path.name}: {text.splitlines()[0] if text else ''}")


if __name__ == "__main__":
    main()
