"""A user's own digit images, prepared the way MNIST's digits were, and the predictions of a network.

MNIST's digits are white ink on black, the ink's bounding box scaled so that its larger side is
20 pixels (aspect ratio kept), placed in a 28x28 frame so that its centre of mass sits at the
frame's centre (pixel 14, 14), values in [0, 1] as :func:`fastdl.datasets.load_mnist` gives them.
:func:`prepare_digit` does the same to a PNG, JPEG (any format Pillow reads), a ``.npy`` file or
an array:

1. grey: colour is converted to grey (ITU-R 601 luma); an image whose alpha channel is not fully
   opaque (a digit drawn on a transparent background) takes its alpha as the ink;
2. values scaled to [0, 1] (8-bit: /255, 16-bit: /65535; a float array is taken as [0, 1], or as
   0-255 when its largest value is above 1);
3. inverted when the background is light: the background is the median of the outermost ring of
   pixels, and dark ink on a light background (above 0.5) becomes light ink on dark;
4. the background level is subtracted and the contrast stretched, so that the background is 0 and
   the brightest ink 1; then the noise level (the 95th percentile of the outer ring, at most
   ``NOISE_CAP``) is subtracted too, so that a photograph's grain is not taken for ink (a real
   MNIST digit, whose ring is black, is left as it is);
5. cropped to the ink's bounding box (the pixels above ``INK_THRESHOLD``), scaled so its larger side is 20 pixels (Lanczos), and placed in a 28x28 frame
   shifted by whole pixels so that its centre of mass is as close to (14, 14) as the frame allows.

A real MNIST digit written out as an image and prepared again comes back as it was (the tests
check it on the official test digits). Pillow (``pillow``, a dependency of fastdl) reads the files;
it is imported on first use.

>>> from fastdl.images import prepare_digit, predict
>>> x = prepare_digit("my_seven.png")          # (1, 28, 28) float32 in [0, 1]
>>> probs = predict(fastdl.load_model("model.npz"), ["my_seven.png", "my_two.jpg"])  # (2, 10)
"""
from __future__ import annotations

import os
from typing import Any, List, Sequence, Tuple, Union

import numpy as np

__all__ = ["prepare_digit", "prepare_digits", "predict", "ImageError", "INK_THRESHOLD", "NOISE_CAP", "BOX", "SIZE"]

SIZE = 28
"""Side of the frame the digit is placed in (MNIST: 28)."""
BOX = 20
"""Side the larger side of the ink's bounding box is scaled to (MNIST: 20)."""
INK_THRESHOLD = 0.01
"""Pixels above this (after the contrast stretch) count as ink for the bounding box: 1/255 and
2/255 of a compressed image's faint artefacts do not widen it, an MNIST digit's faintest edge
pixels (3/255 and up) still do."""
NOISE_CAP = 0.3
"""The largest noise level (95th percentile of the outer ring after the contrast stretch) that is
subtracted: a digit that fills the ring is not taken for noise."""
MIN_CONTRAST = 0.05
"""An image whose brightest ink is less than this above its background holds no digit."""

PathOrArray = Union[str, "os.PathLike[str]", np.ndarray]


class ImageError(ValueError):
    """An image that cannot be read or holds no digit; the message (one line) names the file."""


def _name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return "the array"


# -- reading -------------------------------------------------------------------------------------
def _from_array(a: np.ndarray, name: str) -> np.ndarray:
    """Any array a user holds -> a 2-D float64 grey image in [0, 1]."""
    a = np.asarray(a)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ImageError(f"{name}: expected an array of numbers, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.complexfloating):
        raise ImageError(f"{name}: expected real numbers, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[0] == 1:            # (1, H, W): one MNIST-style channel
        a = a[0]
    elif a.ndim == 1 and a.size == SIZE * SIZE:     # a flattened MNIST row (784,)
        a = a.reshape(SIZE, SIZE)
    if a.ndim == 3 and a.shape[2] in (3, 4):        # (H, W, RGB[A])
        alpha = None
        if a.shape[2] == 4:
            alpha = _scale(a[..., 3], name)
        grey = _scale(a[..., :3], name) @ np.array([0.299, 0.587, 0.114])
        return _alpha_as_ink(grey, alpha)
    if a.ndim == 3 and a.shape[2] in (1, 2):        # (H, W, grey[+alpha])
        alpha = _scale(a[..., 1], name) if a.shape[2] == 2 else None
        return _alpha_as_ink(_scale(a[..., 0], name), alpha)
    if a.ndim != 2:
        raise ImageError(f"{name}: expected a grey image (H, W), a colour one (H, W, 3 or 4) or "
                         f"(1, H, W), got shape {a.shape}")
    return _scale(a, name)


def _scale(a: np.ndarray, name: str) -> np.ndarray:
    """Values to float64 in [0, 1]: bool and float as they are (float above 1: 0-255), 8-bit /255,
    16-bit /65535, other integers /255 unless their largest value needs 16 bits."""
    if a.size == 0:
        raise ImageError(f"{name}: the image is empty (shape {a.shape})")
    kind = a.dtype
    f = a.astype(np.float64)
    if not np.isfinite(f).all():
        raise ImageError(f"{name}: holds NaN or infinite values")
    low, high = float(f.min()), float(f.max())
    if low < 0:
        raise ImageError(f"{name}: holds negative values (smallest {low:g}); expected 0-1 or 0-255")
    if kind == bool:
        return f
    if np.issubdtype(kind, np.floating):
        if high <= 1.0:
            return f
        if high <= 255.0:
            return f / 255.0
        raise ImageError(f"{name}: values up to {high:g}; expected 0-1 or 0-255")
    if kind != np.uint8 and high <= 1.0:             # 0/1 integers: a binary image
        return f
    if kind == np.uint16 or high > 255:
        if high > 65535:
            raise ImageError(f"{name}: values up to {high:g}; expected 8- or 16-bit values")
        return f / 65535.0
    return f / 255.0


def _alpha_as_ink(grey: np.ndarray, alpha: Any) -> np.ndarray:
    """A drawing on a transparent background: its alpha is the ink (whatever colour the ink has)."""
    if alpha is None or float(alpha.min()) >= 1.0:
        return grey
    return np.asarray(alpha, dtype=np.float64)


def _read_file(path: str) -> np.ndarray:
    if not os.path.exists(path):
        raise ImageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a folder, not an image")
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise ImageError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if size == 0:
        raise ImageError(f"{path}: the file is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(6)
    if head == b"\x93NUMPY":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ImageError(f"{path}: not a readable .npy array ({' '.join(str(exc).split())})") from None
        return _from_array(arr, path)
    try:
        from PIL import Image, ImageOps, UnidentifiedImageError
    except ImportError:                                      # pragma: no cover - pillow is a dependency
        raise ImageError("reading image files needs Pillow: python -m pip install pillow") from None
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img) or img     # a phone photo's orientation
            return _from_pil(img, path)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (expected PNG, JPEG or another format Pillow reads, "
                         f"or a .npy array)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"{path}: cannot read the image ({' '.join(str(exc).split())})") from None


def _from_pil(img: Any, name: str) -> np.ndarray:
    if img.width == 0 or img.height == 0:
        raise ImageError(f"{name}: the image is empty ({img.width}x{img.height} pixels)")
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img)
        if mode.startswith("I;16"):
            arr = arr.astype(np.uint16)
        return _from_array(arr, name)
    alpha = None
    if "A" in mode or "a" in mode:
        alpha = np.asarray(img.getchannel("A"), dtype=np.float64) / 255.0
    grey = np.asarray(img.convert("L"), dtype=np.float64) / 255.0
    return _alpha_as_ink(grey, alpha)


def _read(source: Any) -> Tuple[np.ndarray, str]:
    name = _name(source)
    if isinstance(source, (str, os.PathLike)):
        return _read_file(os.fspath(source)), name
    if isinstance(source, (bytes, bytearray)):
        raise ImageError("expected a file name (str or os.PathLike) or an array, got bytes")
    return _from_array(np.asarray(source), name), name


# -- preparing -----------------------------------------------------------------------------------
def _border(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x[0], x[-1], x[1:-1, 0], x[1:-1, -1]]) if min(x.shape) > 1 else x.ravel()


def _resize(patch: np.ndarray, h: int, w: int) -> np.ndarray:
    if patch.shape == (h, w):
        return patch
    from PIL import Image
    img = Image.fromarray(patch.astype(np.float32), mode="F")
    out = np.asarray(img.resize((w, h), Image.Resampling.LANCZOS), dtype=np.float64)
    return np.clip(out, 0.0, 1.0)                    # Lanczos rings slightly past the range


def _ink(grey: np.ndarray, name: str) -> np.ndarray:
    """Grey [0, 1] image -> ink in [0, 1] on a 0 background (inverted if the background is light)."""
    bg = float(np.median(_border(grey)))
    x = grey
    if bg > 0.5:                                     # dark ink on light paper
        x, bg = 1.0 - grey, 1.0 - bg
    peak = float(x.max())
    if peak - bg < MIN_CONTRAST:
        what = "white" if float(grey.min()) > 0.5 else ("black" if peak < 0.5 else "one shade")
        raise ImageError(f"{name}: no digit found (the image is all {what}); draw the digit in a dark "
                         "colour on a light background or a light one on a dark background")
    x = np.clip((x - bg) / (peak - bg), 0.0, 1.0)
    floor = min(float(np.percentile(_border(x), 95)), NOISE_CAP)   # a photograph's grain
    if floor > 0:
        x = np.clip((x - floor) / (1.0 - floor), 0.0, 1.0)
    return x


def prepare_digit(image: PathOrArray) -> np.ndarray:
    """One digit image prepared as MNIST's digits were (see the module's docstring).

    Parameters
    ----------
    image : str, os.PathLike or array_like
        A PNG, JPEG (or any format Pillow reads) or ``.npy`` file, or an array: grey (H, W) or
        (1, H, W), colour (H, W, 3) or (H, W, 4), values 0-1 (float) or 0-255 (8-bit, or float
        above 1) or 0-65535 (16-bit); light ink on dark or dark ink on light.

    Returns
    -------
    ndarray
        (1, 28, 28) float32 in [0, 1]: white ink on black, the ink's larger side 20 pixels, its
        centre of mass at the frame's centre, as :func:`fastdl.datasets.load_mnist` gives MNIST's
        images with ``flatten=False``. A new array; the one passed in is not changed.

    Raises
    ------
    ImageError
        The file is missing, empty, not an image, or the image holds no digit (all one shade);
        the message is one line naming the file.
    """
    grey, name = _read(image)
    x = _ink(grey, name)
    rows = np.flatnonzero(x.max(axis=1) > INK_THRESHOLD)
    cols = np.flatnonzero(x.max(axis=0) > INK_THRESHOLD)
    patch = x[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = patch.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    patch = _resize(patch, nh, nw)
    total = float(patch.sum())
    ys, xs = np.arange(nh), np.arange(nw)
    cy = float(patch.sum(axis=1) @ ys) / total
    cx = float(patch.sum(axis=0) @ xs) / total
    centre = SIZE // 2
    top = min(max(int(np.floor(centre - cy + 0.5)), 0), SIZE - nh)
    left = min(max(int(np.floor(centre - cx + 0.5)), 0), SIZE - nw)
    out = np.zeros((1, SIZE, SIZE), dtype=np.float32)
    out[0, top:top + nh, left:left + nw] = patch
    return out


def prepare_digits(images: Sequence[PathOrArray]) -> np.ndarray:
    """Several images, each through :func:`prepare_digit`: an (N, 1, 28, 28) float32 array."""
    images = list(images)
    if not images:
        return np.zeros((0, 1, SIZE, SIZE), dtype=np.float32)
    return np.stack([prepare_digit(im) for im in images])


def _as_batch(images: Any) -> np.ndarray:
    if isinstance(images, (str, os.PathLike)):
        return prepare_digits([images])
    if isinstance(images, np.ndarray):
        if images.ndim == 4:                                      # already a prepared batch
            if images.shape[1:] != (1, SIZE, SIZE):
                raise ImageError(f"a batch of images must have shape (N, 1, {SIZE}, {SIZE}), "
                                 f"got {images.shape}")
            batch = images.astype(np.float32)
            if not np.isfinite(batch).all():
                raise ImageError("the batch of images holds NaN or infinite values")
            return batch
        return prepare_digits([images])
    return prepare_digits(list(images))


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (the largest score subtracted first)."""
    s = np.asarray(scores, dtype=np.float64)
    s = s - s.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


def predict(model: Any, images: Any, batch_size: int = 100) -> np.ndarray:
    """Class probabilities of a network for digit images.

    Parameters
    ----------
    model : Net, str or os.PathLike
        A network of :mod:`fastdl.nets`, or a parameter file that :func:`fastdl.load_model` reads.
    images : path, array, or a sequence of them
        Each prepared with :func:`prepare_digit`: one file name, one image array, or a list of
        them. A 4-D array (N, 1, 28, 28) is taken as digits already prepared.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    ndarray
        (N, classes) float64: the softmax of the network's scores; ``.argmax(axis=1)`` is the
        predicted class of each image.

    Raises
    ------
    ImageError
        An image that cannot be read or holds no digit (the message names it).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"predict: batch_size must be a whole number >= 1, got {batch_size!r}")
    if isinstance(model, (str, os.PathLike)):
        model = _load_model(os.fspath(model))
    x = _as_batch(images)
    return probabilities(model, x, batch_size)


def probabilities(model: Any, x: np.ndarray, batch_size: int = 100) -> np.ndarray:
    """Softmax of ``model.predict`` over a batch of prepared digits (N, 1, 28, 28), reshaped to what
    the network takes ((N, 784) for the fully connected ones), in batches of ``batch_size``."""
    from fastdl import backend
    shape = getattr(model, "_sample_shape", lambda: None)()
    if shape is not None and len(x) and int(np.prod(shape)) == x[0].size:
        x = x.reshape((len(x),) + tuple(shape))
    out: List[np.ndarray] = []
    to_host = backend.ops().to_host
    for i in range(0, len(x), batch_size):
        out.append(softmax(to_host(model.predict(x[i:i + batch_size]))))
    if not out:
        return np.zeros((0, 0))
    return np.concatenate(out)


def _load_model(path: str) -> Any:
    from fastdl.nets import load_model
    return load_model(path)
