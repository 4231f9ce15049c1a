"""MNIST loading: the shipped sample, and downloads from a real HTTP server on 127.0.0.1: checksums,
truncated and corrupt files, a download killed with SIGKILL, a user's mismatching file moved aside
(never deleted), and the overall deadline that gives up on a trickling mirror."""
import gzip
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fastdl.datasets import DataUnavailable, download as D, load_fashion_mnist, load_mnist, mnist as M
from fastdl.datasets.download import DownloadError, fetch, md5sum
from tests.files.conftest import LABELS, LABELS_MD5, ServerHandler, hidden, needs_posix, publish, regzipped


@pytest.fixture
def full_is_sample(monkeypatch):
    """Make the 'full' MNIST file table point at the sample's files (the full training set is not
    available offline); checksums stay real."""
    files = {"train_img": M.SAMPLE_FILES["train_img"], "train_label": M.SAMPLE_FILES["train_label"],
             "test_img": M.MNIST_FILES["test_img"], "test_label": M.MNIST_FILES["test_label"]}
    monkeypatch.setattr(M, "MNIST_FILES", files)
    return files


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


def _fetch_fails_and_leaves_nothing(name, md5, url, folder, match=None):
    with pytest.raises(DownloadError, match=match):
        fetch(name, md5, [url], str(folder))
    assert os.listdir(folder) == []


def test_bad_checksum_is_rejected_and_leaves_nothing(server, tmp_path):
    url, root = server
    name, md5 = M.MNIST_FILES["test_label"]
    data = open(os.path.join(M.SAMPLE_DIR, name), "rb").read()
    (root / name).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    _fetch_fails_and_leaves_nothing(name, md5, url, tmp_path / "dl", match="checksum mismatch")


def test_truncated_download_is_rejected_and_leaves_nothing(server, tmp_path):
    url, root = server
    name, md5 = M.MNIST_FILES["test_img"]
    publish(root, [name])
    ServerHandler.truncate = {name}
    _fetch_fails_and_leaves_nothing(name, md5, url, tmp_path / "dl")


def test_corrupt_cached_file_is_fetched_again(server, tmp_path):
    url, root = server
    name, md5 = M.MNIST_FILES["test_label"]
    publish(root, [name])
    folder = tmp_path / "dl"
    folder.mkdir()
    (folder / name).write_bytes(b"garbage")
    with pytest.warns(D.DataFileMovedAside, match="moved to"):
        path = fetch(name, md5, [url], str(folder))
    assert md5sum(path) == md5
    assert [p.read_bytes() for p in folder.glob(name + ".mismatch-*")] == [b"garbage"]


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


CHILD_DOWNLOADER = """
import sys
from fastdl.datasets.download import fetch
fetch(sys.argv[1], sys.argv[2], [sys.argv[3]], sys.argv[4])
"""


@needs_posix
def test_kill_9_during_a_download_leaves_a_part_file_the_next_download_removes(
        tmp_path, trickle_server, server):
    slow_url, _ = trickle_server
    url, root = server
    folder = tmp_path / "data"
    env = dict(os.environ, FASTDL_DOWNLOAD_DEADLINE="600")
    child = subprocess.Popen([sys.executable, "-c", CHILD_DOWNLOADER, LABELS, LABELS_MD5, slow_url,
                              str(folder)], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            if folder.is_dir() and any(n.endswith(".part") for n in os.listdir(folder)):
                break
            time.sleep(0.02)
        assert child.poll() is None, child.stderr.read()
        time.sleep(0.3)                                   # a byte or two has arrived
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
        child.stderr.close()
    parts = hidden(folder)
    assert len(parts) == 1 and parts[0].startswith(f".{LABELS}.") and f".{child.pid}." in parts[0]
    assert parts[0].endswith(".part")
    publish(root, [LABELS])
    path = D.fetch(LABELS, LABELS_MD5, [url], str(folder))
    assert D.md5sum(path) == LABELS_MD5
    assert os.listdir(folder) == [LABELS]


def test_mismatching_file_is_moved_aside_and_a_fresh_copy_downloaded(tmp_path, server):
    url, root = server
    publish(root, [LABELS])
    folder = tmp_path / "data"
    folder.mkdir()
    mine = regzipped(LABELS)
    (folder / LABELS).write_bytes(mine)
    with pytest.warns(D.DataFileMovedAside) as w:
        path = D.fetch(LABELS, LABELS_MD5, [url], str(folder))
    assert D.md5sum(path) == LABELS_MD5
    aside = [p for p in folder.iterdir() if p.name.startswith(LABELS + ".mismatch-")]
    assert len(aside) == 1 and aside[0].read_bytes() == mine
    msg = str(w[0].message)
    assert str(aside[0]) in msg and "not deleted" in msg and LABELS_MD5 in msg


def test_load_mnist_offline_keeps_the_users_file_and_says_where_it_went(tmp_path, dead_url, monkeypatch):
    monkeypatch.setenv("FASTDL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FASTDL_MNIST_MIRRORS", dead_url)
    folder = tmp_path / "mnist"
    folder.mkdir()
    mine = regzipped(LABELS)
    (folder / LABELS).write_bytes(mine)
    with pytest.warns(D.DataFileMovedAside, match="moved to"):
        with pytest.raises(DataUnavailable) as e:
            load_mnist(sample=False)
    aside = [p for p in folder.iterdir() if p.name.startswith(LABELS + ".mismatch-")]
    assert len(aside) == 1 and aside[0].read_bytes() == mine
    assert str(aside[0]) in str(e.value) and "not deleted" in str(e.value)
    with pytest.raises(DataUnavailable) as e:                 # later attempts still say where it is
        load_mnist(sample=False)
    assert str(aside[0]) in str(e.value)
    assert sorted(os.listdir(folder)) == [aside[0].name]


def test_move_aside_never_overwrites(tmp_path):
    from fastdl._files import move_aside
    p = tmp_path / "f.gz"
    names = []
    for i in range(3):                                        # within the same second
        p.write_bytes(b"version %d" % i)
        names.append(move_aside(str(p)))
    assert len(set(names)) == 3 and not p.exists()
    assert [open(n, "rb").read() for n in names] == [b"version 0", b"version 1", b"version 2"]
    assert move_aside(str(p)) is None                         # gone meanwhile: nothing to do


def test_trickling_mirror_hits_the_deadline(tmp_path, trickle_server, monkeypatch):
    url, _ = trickle_server
    monkeypatch.setenv("FASTDL_DOWNLOAD_DEADLINE", "1")
    folder = tmp_path / "data"
    start = time.monotonic()
    with pytest.raises(D.DownloadError) as e:
        D.fetch(LABELS, LABELS_MD5, [url], str(folder))
    took = time.monotonic() - start
    assert took < 8, f"took {took:.1f} s"                     # the server would go on for 15 s
    msg = str(e.value)
    assert url + LABELS in msg and "too slow" in msg and "FASTDL_DOWNLOAD_DEADLINE" in msg
    assert os.listdir(folder) == []                           # the .part is gone


def test_load_mnist_gives_up_on_a_slow_mirror_once(tmp_path, trickle_server, monkeypatch):
    url, requests = trickle_server
    monkeypatch.setenv("FASTDL_DOWNLOAD_DEADLINE", "1")
    monkeypatch.setenv("FASTDL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FASTDL_MNIST_MIRRORS", url)
    start = time.monotonic()
    with pytest.raises(DataUnavailable) as e:
        load_mnist(sample=False)
    took = time.monotonic() - start
    assert took < 8, f"took {took:.1f} s"
    assert len(requests) == 1                                 # the other three files did not wait on it
    msg = str(e.value)
    assert "too slow" in msg and "not tried" in msg and "FASTDL_DOWNLOAD_DEADLINE" in msg
    assert os.listdir(tmp_path / "mnist") == []


def test_a_fast_download_fits_a_tight_deadline(tmp_path, server, monkeypatch):
    url, root = server
    publish(root, [LABELS])
    monkeypatch.setenv("FASTDL_DOWNLOAD_DEADLINE", "5")
    assert D.md5sum(D.fetch(LABELS, LABELS_MD5, [url], str(tmp_path))) == LABELS_MD5


def test_deadline_default_and_bad_settings(monkeypatch, tmp_path):
    monkeypatch.delenv("FASTDL_DOWNLOAD_DEADLINE", raising=False)
    assert D.deadline_for(None) == 300
    assert D.deadline_for(9_912_422) == pytest.approx(300 + 9_912_422 / 50_000)
    monkeypatch.setenv("FASTDL_DOWNLOAD_DEADLINE", "2.5")
    assert D.deadline_for(10 ** 9) == 2.5
    for bad in ("abc", "0", "-3", "inf", "nan"):
        monkeypatch.setenv("FASTDL_DOWNLOAD_DEADLINE", bad)
        with pytest.raises(D.SettingError, match="FASTDL_DOWNLOAD_DEADLINE"):   # a ValueError
            D.fetch(LABELS, LABELS_MD5, ["http://127.0.0.1:9/"], str(tmp_path))
