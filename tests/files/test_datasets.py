"""MNIST loading: the shipped sample, and downloads from a real HTTP server on 127.0.0.1."""
import http.server
import os
import shutil
import socket
import threading

import numpy as np
import pytest

from fastdl.datasets import DataUnavailable, load_fashion_mnist, load_mnist
from fastdl.datasets import mnist as M
from fastdl.datasets.download import DownloadError, fetch, md5sum


class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate = set()          # names served with a full Content-Length but half the body

    def log_message(self, *a):
        pass

    def do_GET(self):
        name = os.path.basename(self.path)
        if name in self.truncate:
            data = open(os.path.join(self.directory, name), "rb").read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        return super().do_GET()


@pytest.fixture
def server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving the files of a folder; yields (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    _Handler.truncate = set()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            lambda *a, **k: _Handler(*a, directory=str(root), **k))
    th = threading.Thread(target=httpd.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                 # nothing listens there now: connection refused
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def full_is_sample(monkeypatch):
    """Make the 'full' MNIST file table point at the sample's files (the full training set is not
    available offline); checksums stay real."""
    files = {"train_img": M.SAMPLE_FILES["train_img"], "train_label": M.SAMPLE_FILES["train_label"],
             "test_img": M.MNIST_FILES["test_img"], "test_label": M.MNIST_FILES["test_label"]}
    monkeypatch.setattr(M, "MNIST_FILES", files)
    return files


def publish(root, names):
    for name in names:
        shutil.copy(os.path.join(M.SAMPLE_DIR, name), root / name)


def test_sample_has_the_books_shapes_and_dtypes(monkeypatch):
    monkeypatch.delenv("FASTDL_MNIST", raising=False)
    (x, t), (xt, tt) = load_mnist(sample=True)
    assert x.shape == (5000, 784) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert t.shape == (5000,) and t.dtype == np.uint8
    assert xt.shape == (10000, 784) and tt.shape == (10000,)
    assert np.bincount(t).tolist() == [500] * 10
    assert len(set(t[:100].tolist())) == 10          # shuffled: the first samples hold every class
    (x2, t2), _ = load_mnist(normalize=False, flatten=False, one_hot_label=True, sample=True)
    assert x2.shape == (5000, 1, 28, 28) and x2.dtype == np.uint8
    assert t2.shape == (5000, 10) and (t2.argmax(axis=1) == t).all() and t2.sum() == 5000
    np.testing.assert_allclose(x2.reshape(5000, -1) / 255.0, x, rtol=1e-6)
    # the official test set's first label is 7
    assert tt[0] == 7
    monkeypatch.setenv("FASTDL_MNIST", "sample")
    (x3, _), _ = load_mnist()
    assert x3.shape == (5000, 784)


def test_download_success_and_cache(server, full_is_sample, tmp_path, monkeypatch):
    url, root = server
    publish(root, [n for n, _ in full_is_sample.values()])
    monkeypatch.setenv("FASTDL_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FASTDL_MNIST_MIRRORS", url)
    (x, t), (xt, tt) = load_mnist(sample=False)
    assert x.shape == (5000, 784) and xt.shape == (10000, 784)
    cached = sorted(os.listdir(tmp_path / "cache" / "mnist"))
    assert cached == sorted(n for n, _ in full_is_sample.values())       # no temporary files left
    for name in os.listdir(root):
        os.unlink(root / name)                                            # server now has nothing
    (x2, _), _ = load_mnist(sample=False)                                 # served from the cache
    np.testing.assert_array_equal(x2, x)


def test_dead_first_mirror_falls_through_to_the_next(server, dead_url, full_is_sample, tmp_path, monkeypatch):
    url, root = server
    publish(root, [n for n, _ in full_is_sample.values()])
    monkeypatch.setenv("FASTDL_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FASTDL_MNIST_MIRRORS", f"{dead_url},{url}")
    (x, _), _ = load_mnist(sample=False)
    assert x.shape == (5000, 784)


def test_bad_checksum_is_rejected_and_leaves_nothing(server, tmp_path):
    url, root = server
    name, md5 = M.MNIST_FILES["test_label"]
    data = open(os.path.join(M.SAMPLE_DIR, name), "rb").read()
    (root / name).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch(name, md5, [url], str(tmp_path / "dl"))
    assert os.listdir(tmp_path / "dl") == []


def test_truncated_download_is_rejected_and_leaves_nothing(server, tmp_path):
    url, root = server
    name, md5 = M.MNIST_FILES["test_img"]
    publish(root, [name])
    _Handler.truncate = {name}
    with pytest.raises(DownloadError):
        fetch(name, md5, [url], str(tmp_path / "dl"))
    assert os.listdir(tmp_path / "dl") == []


def test_corrupt_cached_file_is_fetched_again(server, tmp_path):
    url, root = server
    name, md5 = M.MNIST_FILES["test_label"]
    publish(root, [name])
    folder = tmp_path / "dl"
    folder.mkdir()
    (folder / name).write_bytes(b"garbage")
    path = fetch(name, md5, [url], str(folder))
    assert md5sum(path) == md5


def test_offline_message_says_what_to_do(dead_url, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTDL_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FASTDL_MNIST_MIRRORS", dead_url)
    with pytest.raises(DataUnavailable) as e:
        load_mnist(sample=False)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path / "cache") in msg
    assert "sample=True" in msg and "FASTDL_MNIST=sample" in msg
    assert not any(f for f in os.listdir(tmp_path / "cache" / "mnist"))


def test_fashion_mnist_downloads_with_its_own_table(server, tmp_path, monkeypatch):
    url, root = server
    # no Fashion-MNIST offline: serve MNIST's test files under the table's names, with their checksums
    files = {k: M.SAMPLE_FILES[k] for k in M.SAMPLE_FILES}
    monkeypatch.setattr(M, "FASHION_FILES", files)
    publish(root, [n for n, _ in files.values()])
    monkeypatch.setenv("FASTDL_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FASTDL_FASHION_MIRRORS", url)
    (x, t), (xt, tt) = load_fashion_mnist(flatten=False)
    assert x.shape == (5000, 1, 28, 28) and xt.shape == (10000, 1, 28, 28)
    assert os.path.isdir(tmp_path / "cache" / "fashion-mnist")


def test_bad_idx_file_is_reported(tmp_path):
    import gzip
    p = tmp_path / "bad.gz"
    with gzip.open(p, "wb") as f:
        f.write((1234).to_bytes(4, "big") + (1).to_bytes(4, "big"))
    with pytest.raises(ValueError, match="not an IDX file"):
        M.read_idx(str(p))
