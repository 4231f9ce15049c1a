"""`fastdl predict` and fastdl.images on real image files: real MNIST test digits written out as
PNG and JPEG, digits drawn with Pillow (dark on light and light on dark, off-centre, of different
sizes), and files that are not digits. A network trained briefly on the shipped sample predicts
them. Real files in a temporary folder; the command runs in this process (cli.main) and, once,
as a real process."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fastdl import backend, cli
from fastdl.datasets import load_mnist
from fastdl.images import ImageError, predict, prepare_digit, prepare_digits
from fastdl.nets import TwoLayerNet, load_model
from fastdl.trainer import Trainer
from tests.helpers import one_line, run_cli

N_DIGITS = 40


@pytest.fixture(autouse=True)
def _keep_backend():
    saved = backend._global_name
    yield
    backend._global_name = saved


@pytest.fixture(scope="module")
def digits():
    """The first N_DIGITS official MNIST test digits (uint8 28x28) and their labels."""
    _, (x, t) = load_mnist(normalize=False, flatten=False, sample=True)
    return x[:N_DIGITS, 0], t[:N_DIGITS].astype(int)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A TwoLayerNet trained for 3 epochs on the shipped sample (about 85% on the test set)."""
    (x, t), (xt, tt) = load_mnist(sample=True)
    np.random.seed(0)
    net = TwoLayerNet(784, 50, 10, dtype="float32")
    Trainer(net, x, t, xt[:500], tt[:500], epochs=3, mini_batch_size=100, optimizer="adam",
            optimizer_param={"lr": 0.003}, verbose=False, progress=False, seed=0).train()
    path = tmp_path_factory.mktemp("model") / "two.npz"
    net.save_params(str(path))
    return str(path)


@pytest.fixture(scope="module")
def pngs(digits, tmp_path_factory):
    """The test digits as grey PNG files, exactly as MNIST stores them (white on black)."""
    folder = tmp_path_factory.mktemp("pngs")
    paths = []
    for i, im in enumerate(digits[0]):
        p = folder / f"mnist{i}.png"
        Image.fromarray(im).save(p)
        paths.append(str(p))
    return paths


def centre_of_mass(x):
    x = x.reshape(28, 28)
    i = np.arange(28)
    return float(x.sum(axis=1) @ i / x.sum()), float(x.sum(axis=0) @ i / x.sum())


# -- preparing real MNIST digits ---------------------------------------------------------------
def test_a_real_mnist_digit_saved_as_png_comes_back_as_it_was(digits, pngs):
    """A real MNIST test digit, written as PNG and prepared again, matches the original 28x28:
    within 1/255 + the contrast stretch (the brightest MNIST pixel is 254 or 255)."""
    x, _ = digits
    for path, original in zip(pngs, x):
        got = prepare_digit(path)
        assert got.shape == (1, 28, 28) and got.dtype == np.float32
        assert np.abs(got[0] - original / 255.0).max() < 0.006, path


def test_an_inverted_enlarged_off_centre_jpeg_digit_is_prepared_like_the_original(digits, tmp_path):
    """Black ink on white paper, 4x larger, placed off-centre in a 300x200 JPEG: the prepared
    digit is close to the MNIST original (JPEG and two resamplings blur it a little)."""
    x, _ = digits
    errors = []
    for i, im in enumerate(x[:15]):
        big = Image.fromarray(255 - im).resize((112, 112), Image.Resampling.BICUBIC)
        canvas = Image.new("L", (300, 200), 255)
        canvas.paste(big, (20 + 7 * i, 70 - 3 * i))
        path = tmp_path / f"digit{i}.jpg"
        canvas.convert("RGB").save(path, quality=90)
        got = prepare_digit(str(path))[0]
        errors.append(np.abs(got - im / 255.0).mean())
        cy, cx = centre_of_mass(got)
        assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    assert np.mean(errors) < 0.06 and max(errors) < 0.15, errors


# -- digits drawn with Pillow -------------------------------------------------------------------
def _draw(kind, size, offset, ink, paper, canvas=(160, 120), mode="L"):
    """A digit drawn with thick strokes: '1', '7' or '0', ``size`` pixels high at ``offset``."""
    img = Image.new(mode, canvas, paper)
    d = ImageDraw.Draw(img)
    x0, y0 = offset
    w = max(2, size // 7)
    if kind == "1":
        d.line([(x0 + size // 4, y0 + size // 5), (x0 + size // 2, y0)], fill=ink, width=w)
        d.line([(x0 + size // 2, y0), (x0 + size // 2, y0 + size)], fill=ink, width=w)
    elif kind == "7":
        d.line([(x0, y0), (x0 + 3 * size // 5, y0)], fill=ink, width=w)
        d.line([(x0 + 3 * size // 5, y0), (x0 + size // 5, y0 + size)], fill=ink, width=w)
    else:
        d.ellipse([x0, y0, x0 + 3 * size // 5, y0 + size], outline=ink, width=w)
    return img


@pytest.mark.parametrize("kind", ["1", "7", "0"])
def test_drawn_digits_are_prepared_the_same_whatever_the_colours_size_and_place(kind, tmp_path):
    """Each variant: larger side 20 px, centre of mass at (14, 14), white ink on black; the
    inverted drawing gives exactly the same digit; the smaller and the JPEG ones (drawn at another
    scale, so their strokes are rasterised differently) stay nearer to the same digit than to
    the other digits."""
    others = {k: prepare_digit(np.asarray(_draw(k, 70, (40, 20), ink=255, paper=0))) for k in "170"}
    variants = [
        (_draw(kind, 70, (40, 20), ink=0, paper=255), "png"),                     # black on white
        (_draw(kind, 70, (40, 20), ink=255, paper=0), "png"),                     # white on black
        (_draw(kind, 35, (5, 8), ink=0, paper=255), "png"),                       # small, top left
        (_draw(kind, 100, (90, 10), ink=(20, 20, 160), paper=(250, 245, 230),     # blue ink on cream,
               canvas=(240, 130), mode="RGB"), "jpg"),                            # off-centre, JPEG
    ]
    prepared = []
    for i, (img, ext) in enumerate(variants):
        path = tmp_path / f"{kind}-{i}.{ext}"
        img.save(path, **({"quality": 92} if ext == "jpg" else {}))
        x = prepare_digit(str(path))[0]
        rows, cols = np.flatnonzero(x.max(axis=1) > 0.01), np.flatnonzero(x.max(axis=0) > 0.01)
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (19, 20), path   # larger side 20 px (an edge can be faint)
        cy, cx = centre_of_mass(x)
        assert abs(cy - 14) <= 0.501 and abs(cx - 14) <= 0.501, (path, cy, cx)
        assert x.max() == pytest.approx(1.0) and x[0].max() == 0 and x[:, 0].max() == 0   # ink white, border black
        prepared.append(x)
    assert np.abs(prepared[1] - prepared[0]).max() < 1e-6
    for x in prepared[2:]:
        distance = {k: float(np.abs(x - ref[0]).mean()) for k, ref in others.items()}
        assert distance[kind] < 0.1 and min(distance, key=distance.get) == kind, distance


def test_a_transparent_drawing_takes_its_alpha_as_the_ink(tmp_path):
    img = _draw("7", 70, (40, 20), ink=(0, 0, 0, 255), paper=(0, 0, 0, 0), mode="RGBA")
    path = tmp_path / "seven.png"
    img.save(path)
    reference = prepare_digit(np.asarray(_draw("7", 70, (40, 20), ink=255, paper=0)))
    assert np.abs(prepare_digit(str(path)) - reference).max() < 1e-6


# -- predictions -----------------------------------------------------------------------------------
def test_a_briefly_trained_network_predicts_real_digits_from_png(model_file, pngs, digits, capsys):
    _, labels = digits
    code, out, err = run_cli(["predict", model_file, *pngs, "--backend", "numpy"], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == len(pngs)
    predicted = []
    for line, path in zip(lines, pngs):
        name, cls, rest = line.split(None, 2)
        assert name == path and rest.count(": ") == 3                  # --top 3 by default
        predicted.append(int(cls))
    assert np.mean(np.array(predicted) == labels) >= 0.8
    # the same as the network on MNIST's own arrays: the prepared PNGs are the digits
    net = load_model(model_file)
    direct = net.predict(digits[0].reshape(-1, 784).astype(np.float32) / 255).argmax(axis=1)
    assert predicted == direct.tolist()


def test_json_output_has_every_probability(model_file, pngs, capsys):
    code, out, err = run_cli(["predict", model_file, *pngs[:3], "--json", "--top", "2"], capsys)
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["network"] == "TwoLayerNet" and data["errors"] == [] and len(data["results"]) == 3
    for r in data["results"]:
        p = np.array(r["probabilities"])
        assert p.shape == (10,) and abs(p.sum() - 1) < 1e-4 and (p >= 0).all()
        assert r["class"] == int(p.argmax()) and len(r["top"]) == 2
        assert r["top"][0][0] == r["class"] and r["top"][0][1] >= r["top"][1][1]


def test_top_k_and_the_prepared_images(model_file, pngs, tmp_path, capsys):
    code, out, _ = run_cli(["predict", model_file, pngs[0], "--top", "10", "--save-prepared", str(tmp_path)],
                           capsys)
    assert code == 0 and out.split("(", 1)[1].count(": ") == 10
    written = np.asarray(Image.open(tmp_path / "mnist0.prepared.png"), dtype=np.float64) / 255
    assert np.abs(written - prepare_digit(pngs[0])[0]).max() <= 0.5 / 255 + 1e-9


def test_python_api(model_file, pngs, digits):
    net = load_model(model_file)
    probs = predict(net, pngs[:5])
    assert probs.shape == (5, 10) and np.allclose(probs.sum(axis=1), 1)
    assert np.allclose(predict(model_file, pngs[:5]), probs)                   # a file name for the model
    batch = prepare_digits(pngs[:5])
    assert batch.shape == (5, 1, 28, 28)
    assert np.allclose(predict(net, batch), probs)                             # prepared digits as they are
    assert np.allclose(predict(net, pngs[0]), probs[:1])                       # one file
    original = digits[0][0].copy()
    colour = np.repeat(original[:, :, None], 3, axis=2)                        # an (H, W, 3) uint8 array
    before = colour.copy()
    assert np.abs(prepare_digit(colour) - prepare_digit(pngs[0])).max() < 1e-6
    assert np.array_equal(colour, before)                                      # the caller's array unchanged


def test_npy_files_and_float_arrays(digits, tmp_path):
    im = digits[0][3]
    np.save(tmp_path / "d.npy", im.astype(np.float64) / 255)
    np.save(tmp_path / "d255.npy", im.astype(np.float32))
    want = prepare_digit(im)
    assert np.abs(prepare_digit(str(tmp_path / "d.npy")) - want).max() < 1e-6
    assert np.abs(prepare_digit(str(tmp_path / "d255.npy")) - want).max() < 1e-6


# -- bad input -----------------------------------------------------------------------------------
@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "text.png").write_text("not an image at all\n")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.new("L", (64, 48), 255).save(tmp_path / "white.png")
    Image.new("RGB", (30, 30), (0, 0, 0)).save(tmp_path / "black.jpg")
    good = tmp_path / "good.png"
    _draw("1", 60, (30, 20), ink=0, paper=255).save(good)
    data = good.read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[:len(data) // 2])
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4, 5)))
    return tmp_path


@pytest.mark.parametrize("name,expect", [
    ("text.png", "not an image"), ("empty.png", "the file is empty"), ("white.png", "no digit found (the image is all white)"),
    ("black.jpg", "no digit found (the image is all black)"), ("truncated.png", "cannot read the image"),
    ("cube.npy", "expected a grey image"),
])
def test_bad_images_fail_in_one_line_naming_the_file(name, expect, bad_files, model_file, capsys):
    with pytest.raises(ImageError, match="^" + str(bad_files / name).replace(".", r"\.")):
        prepare_digit(str(bad_files / name))
    code, out, err = run_cli(["predict", model_file, str(bad_files / name)], capsys)
    line = one_line(err)
    assert code == 1 and out == "" and line.startswith(f"fastdl predict: {bad_files / name}: ") and expect in line


def test_good_images_are_still_predicted_next_to_a_bad_one(bad_files, model_file, capsys):
    code, out, err = run_cli(["predict", model_file, str(bad_files / "good.png"), str(bad_files / "white.png")],
                             capsys)
    assert code == 1 and out.startswith(str(bad_files / "good.png")) and "no digit found" in one_line(err)


def test_missing_files_are_usage_errors(model_file, bad_files, capsys):
    for args, expect in ((["predict", model_file, str(bad_files / "nope.png")], "no such image file"),
                         (["predict", str(bad_files / "nope.npz"), str(bad_files / "good.png")], "no such model file"),
                         (["predict", model_file, str(bad_files)], "is a folder"),
                         (["predict", model_file], "required")):
        code, out, err = run_cli(args, capsys)
        assert code == 2 and expect in one_line(err), (args, err)
    code, out, err = run_cli(["predict", str(bad_files / "text.png"), str(bad_files / "good.png")], capsys)
    assert code == 1 and "text.png" in one_line(err)                       # a model file that is not one


def test_prepare_digit_checks_arrays():
    for bad, expect in ((np.array([[np.nan, 1.0], [0.0, 0.0]]), "NaN"), (np.zeros((0, 5)), "empty"),
                        (-np.ones((4, 4)), "negative"), (np.array([["a", "b"]]), "numbers"),
                        (np.full((8, 8), 0.5), "no digit found")):
        with pytest.raises(ImageError, match=expect):
            prepare_digit(bad)


def test_predict_in_a_real_process(model_file, pngs, bad_files):
    env = dict(os.environ, FASTDL_BACKEND="numpy")
    r = subprocess.run([sys.executable, "-m", "fastdl", "predict", model_file, pngs[0], str(bad_files / "text.png")],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 1 and r.stdout.startswith(pngs[0]) and "not an image" in one_line(r.stderr)
