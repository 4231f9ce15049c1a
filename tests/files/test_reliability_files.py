"""Reliability of the files fastdl writes and reads: saves, downloads and figures are atomic,
follow the umask, clean up after killed writers, never delete a user's file, and give up on a slow
mirror; a parameter file's format is judged by its content, not its name.

Everything here is real: files in pytest's tmp folders, child processes killed with SIGKILL in the
middle of a save or a download, and HTTP servers on 127.0.0.1 (one serving files, one trickling a
byte at a time). Nothing goes to the network.
"""
import errno
import gzip
import http.server
import io
import os
import pickle
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import types
import zipfile

import numpy as np
import pytest

from fastdl.datasets import DataUnavailable, load_mnist
from fastdl.datasets import download as D
from fastdl.datasets import mnist as M
from fastdl.nets import MultiLayerNet, TwoLayerNet, read_meta

POSIX = os.name == "posix"
needs_posix = pytest.mark.skipif(not POSIX, reason="permissions, umask and SIGKILL are POSIX")

LABELS, LABELS_MD5 = M.MNIST_FILES["test_label"]       # t10k-labels-idx1-ubyte.gz, 4.5 kB, shipped


def small(seed=0):
    np.random.seed(seed)
    return MultiLayerNet(input_size=4, hidden_size_list=[3], output_size=2)


def big(seed):
    """A net whose save takes a moment (32 MB of float64 weights)."""
    np.random.seed(seed)
    return MultiLayerNet(input_size=2000, hidden_size_list=[2000], output_size=2)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def hidden(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def same_params(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture
def umask():
    """Set the process umask for one test (restored afterwards)."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


# -- real HTTP servers on 127.0.0.1 ---------------------------------------------------------------
def _serve(handler):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


@pytest.fixture
def files_server(tmp_path):
    """Serves the folder tmp_path/www; yields (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass
    httpd, url = _serve(lambda *a, **k: Quiet(*a, directory=str(root), **k))
    yield url, root
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def trickle_server():
    """Announces 1000 bytes and sends one every 0.2 s (for at most 15 s, then hangs up).
    Yields (base URL, list of requested paths)."""
    stop = threading.Event()
    requests = []

    class Trickle(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            end = time.monotonic() + 15
            try:
                while time.monotonic() < end and not stop.is_set():
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    stop.wait(0.2)
            except OSError:
                pass
            self.close_connection = True
    httpd, url = _serve(Trickle)
    yield url, requests
    stop.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                            # nothing listens there: connection refused
    return f"http://127.0.0.1:{port}/"


def publish(root, name):
    shutil.copy(os.path.join(M.SAMPLE_DIR, name), root / name)


def regzipped(name):
    """The shipped file's content, gzipped again: same data, other bytes (another md5)."""
    with open(os.path.join(M.SAMPLE_DIR, name), "rb") as f:
        raw = gzip.decompress(f.read())
    return gzip.compress(raw, mtime=1234567890)


def fake_trainer():
    return types.SimpleNamespace(train_loss_list=list(np.linspace(2.3, 0.3, 30)),
                                 train_acc_list=[0.5, 0.7, 0.8], test_acc_list=[0.45, 0.65, 0.75])


def plot(path):
    pytest.importorskip("matplotlib")
    from fastdl.cli import _plot
    _plot(fake_trainer(), str(path), "test")


# == a save into a missing folder names the target =========================================
def test_save_into_missing_folder_names_the_target(tmp_path):
    target = tmp_path / "missing" / "params.npz"
    with pytest.raises(FileNotFoundError) as e:
        small().save_params(target)
    msg = str(e.value)
    assert str(target) in msg and "does not exist" in msg and str(tmp_path / "missing") in msg
    assert ".tmp" not in msg and ".params-" not in msg
    assert not (tmp_path / "missing").exists()                      # nothing created on the way


def test_save_onto_a_folder_or_through_a_file_names_the_target(tmp_path):
    (tmp_path / "adir").mkdir()
    with pytest.raises(IsADirectoryError, match="it is a folder") as e:
        small().save_params(tmp_path / "adir")
    assert str(tmp_path / "adir") in str(e.value)
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(NotADirectoryError, match="is not a folder") as e:
        small().save_params(tmp_path / "afile" / "p.npz")
    assert str(tmp_path / "afile" / "p.npz") in str(e.value)
    assert (tmp_path / "afile").read_text() == "mine"


def test_plot_into_missing_folder_names_the_target(tmp_path):
    target = tmp_path / "nope" / "curves.png"
    with pytest.raises(FileNotFoundError) as e:
        plot(target)
    assert str(target) in str(e.value) and "does not exist" in str(e.value)


def test_write_error_inside_a_save_names_the_target_and_keeps_the_old_file(tmp_path):
    from fastdl._files import atomic_write
    target = tmp_path / "p.npz"
    target.write_bytes(b"old")
    with pytest.raises(OSError) as e:
        with atomic_write(target) as f:
            f.write(b"half of the new")
            raise OSError(errno.ENOSPC, "No space left on device")      # what a full disk raises
    assert e.value.errno == errno.ENOSPC
    assert str(target) in str(e.value) and "No space left" in str(e.value) and ".tmp" not in str(e.value)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["p.npz"]


# == permissions follow the umask; a replaced file keeps its mode ===========================
@needs_posix
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077])
def test_new_files_get_0666_minus_umask(tmp_path, files_server, umask, mask):
    url, root = files_server
    publish(root, LABELS)
    umask(mask)
    want = 0o666 & ~mask
    small().save_params(tmp_path / "p.npz")
    assert mode_of(tmp_path / "p.npz") == want
    path = D.fetch(LABELS, LABELS_MD5, [url], str(tmp_path / "data"))
    assert mode_of(path) == want
    plot(tmp_path / "c.png")
    assert mode_of(tmp_path / "c.png") == want


@needs_posix
@pytest.mark.parametrize("existing", [0o644, 0o600, 0o640, 0o604])
def test_replacing_a_file_keeps_its_mode(tmp_path, umask, existing):
    umask(0o022 if existing == 0o600 else 0o077)        # the umask would give something else
    for name, write in (("p.npz", lambda p: small().save_params(p)), ("c.png", plot)):
        p = tmp_path / name
        p.write_bytes(b"an older version")
        os.chmod(p, existing)
        write(p)
        assert mode_of(p) == existing, name
        assert p.read_bytes() != b"an older version"



@needs_posix
@pytest.mark.parametrize("existing", [None, 0o600, 0o640])
def test_data_being_written_is_never_more_readable_than_the_file_will_be(tmp_path, umask, existing):
    """The temporary file gets its permissions when it is created (0o666 for a new file, the umask
    applied by the system; the replaced file's own bits otherwise), before any data is in it."""
    from fastdl._files import atomic_write
    umask(0o002)
    target = tmp_path / "p.npz"
    if existing is not None:
        target.write_bytes(b"private")
        os.chmod(target, existing)
    want = 0o664 if existing is None else existing
    with atomic_write(target) as f:
        (tmp,) = hidden(tmp_path)
        assert mode_of(tmp_path / tmp) & ~want == 0, oct(mode_of(tmp_path / tmp))
        f.write(b"new data")
    assert mode_of(target) == want and target.read_bytes() == b"new data"
    assert os.umask(0o002) == 0o002                           # the umask was never changed


def test_save_through_a_symlink_replaces_the_file_it_points_to(tmp_path):
    real = tmp_path / "real.npz"
    small(0).save_params(real)
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    net = small(1)
    net.save_params(link)
    assert link.is_symlink()
    other = small(2)
    other.load_params(real)
    assert same_params(other.params, net.params)


# == leftovers of killed writers are removed; live writers' files are not =================
CHILD_SAVER = """
import sys
import numpy as np
from fastdl.nets import MultiLayerNet
np.random.seed(1)
net = MultiLayerNet(input_size=2000, hidden_size_list=[2000], output_size=2)
print("ready", flush=True)
while True:
    net.save_params(sys.argv[1])
"""


@needs_posix
def test_kill_9_during_saves_keeps_the_old_file_and_the_next_save_cleans_up(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "params.pkl"                  # a book-style name: npz content all the same
    old = big(0)
    old.save_params(target)
    (folder / "notes.txt").write_text("user file")
    child = subprocess.Popen([sys.executable, "-c", CHILD_SAVER, str(target)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        mine = f".{child.pid}."
        # while the child saves, saves of this process in the same folder must not touch its temporary
        # files (if they did, its os.replace would fail and the child would die with a traceback)
        for i in range(25):
            small().save_params(folder / "other.npz")
            time.sleep(0.01)
        assert child.poll() is None, child.stderr.read()
        # now kill it in the middle of a save: as soon as its temporary file is there
        leftover = []
        deadline = time.monotonic() + 60
        while not leftover and time.monotonic() < deadline:
            if any(mine in n for n in os.listdir(folder)):
                child.send_signal(signal.SIGKILL)
                child.wait()
                leftover = [n for n in hidden(folder) if mine in n]
                if not leftover:            # it finished that save in between: try again
                    child = subprocess.Popen([sys.executable, "-c", CHILD_SAVER, str(target)],
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    assert child.stdout.readline().strip() == "ready"
                    mine = f".{child.pid}."
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()
        child.stderr.close()
    assert leftover, "never caught the child in the middle of a save"
    assert leftover[0].startswith(".params.pkl.") and leftover[0].endswith(".tmp")
    assert os.path.getsize(folder / leftover[0]) >= 0
    # the target is whole: the old parameters or the child's, never a mixture
    check = big(2)
    check.load_params(target)
    assert same_params(check.params, old.params) or same_params(check.params, big(1).params)
    # the next save in that folder removes the leftover, and nothing else
    small().save_params(folder / "other.npz")
    assert hidden(folder) == []
    assert sorted(os.listdir(folder)) == ["notes.txt", "other.npz", "params.pkl"]
    assert (folder / "notes.txt").read_text() == "user file"


CHILD_DOWNLOADER = """
import sys
from fastdl.datasets.download import fetch
fetch(sys.argv[1], sys.argv[2], [sys.argv[3]], sys.argv[4])
"""


@needs_posix
def test_kill_9_during_a_download_leaves_a_part_file_the_next_download_removes(
        tmp_path, trickle_server, files_server):
    slow_url, _ = trickle_server
    url, root = files_server
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
    publish(root, LABELS)
    path = D.fetch(LABELS, LABELS_MD5, [url], str(folder))
    assert D.md5sum(path) == LABELS_MD5
    assert os.listdir(folder) == [LABELS]


@needs_posix
def test_cleanup_spares_live_writers_foreign_hosts_and_user_files(tmp_path):
    from fastdl import _files
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        host = _files._host()
        two_days_ago = time.time() - 2 * 24 * 3600

        def make(name, old=False):
            p = tmp_path / name
            p.write_bytes(b"x" * 100)
            if old:
                os.utime(p, (two_days_ago, two_days_ago))
            return name
        removed = {
            make(f".p.npz.{host}.{dead.pid}.0123456789ab.tmp"),          # writer dead
            make(f".t10k.gz.{host}.{dead.pid}.0123456789ab.part"),       # a download's, writer dead
            make(f".c.png.{host}.{live.pid}.0123456789ab.tmp", old=True),  # PID alive but untouched 2 days
            make(f".p.npz.elsewhere.{dead.pid}.0123456789ab.tmp", old=True),
            make(".params-abcd1234.npz.tmp", old=True),                   # an earlier fastdl's leftover
        }
        kept = {
            make(f".p.npz.{host}.{live.pid}.0123456789ab.tmp"),           # a save still running
            make(f".p.npz.{host}.{os.getpid()}.0123456789ab.tmp"),        # ... in this very process
            make(f".p.npz.elsewhere.{dead.pid}.0123456789ab.tmp"),        # another machine's, recent
            make(".params-efgh5678.npz.tmp"),                             # an earlier fastdl's, recent
            make(".notes.tmp", old=True),                                 # user files
            make("draft.part", old=True),
            make("tmpabcd1234.png", old=True),
            make(f"p.npz.{host}.{dead.pid}.0123456789ab.tmp", old=True),   # not hidden: not ours
            make(f".p.npz.{host}.{dead.pid}.0123456789ab.tmp.bak", old=True),
        }
        (tmp_path / f".d.{host}.{dead.pid}.0123456789ab.tmp").mkdir()    # a folder: never removed
        kept.add(f".d.{host}.{dead.pid}.0123456789ab.tmp")
        small().save_params(tmp_path / "p.npz")
        left = set(os.listdir(tmp_path))
        assert left == kept | {"p.npz"}, (left - kept, removed & left)
    finally:
        live.kill()
        live.wait()


# == a user's file that does not match is moved aside, never deleted ======================
def test_mismatching_file_is_moved_aside_and_a_fresh_copy_downloaded(tmp_path, files_server):
    url, root = files_server
    publish(root, LABELS)
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


# == downloads have an overall deadline ===================================================
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


def test_a_fast_download_fits_a_tight_deadline(tmp_path, files_server, monkeypatch):
    url, root = files_server
    publish(root, LABELS)
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


# == the file's content, not its name, decides the format ===============================
@pytest.mark.parametrize("name", ["params.pkl", "params.npz", "params", "params.bin"])
def test_save_and_load_round_trip_under_any_name(tmp_path, name):
    net = small(0)
    net.save_params(tmp_path / name, meta={"net": "mlp"})
    assert os.listdir(tmp_path) == [name]                     # no suffix added, no temporary left
    assert (tmp_path / name).read_bytes()[:4] == b"PK\x03\x04"  # always an npz, never a pickle
    other = small(1)
    other.load_params(tmp_path / name)
    assert same_params(other.params, net.params)
    meta = read_meta(tmp_path / name)
    assert meta["net"] == "mlp" and meta["dtype"] == "float64"
    assert meta["model"]["class"] == "MultiLayerNet"          # added by save_params, for load_model


@pytest.mark.parametrize("name,protocol", [("book.pkl", None), ("book.npz", None), ("book", 0), ("b.bin", 2)])
def test_a_pickle_is_refused_unless_allowed(tmp_path, name, protocol):
    net = small(0)
    p = tmp_path / name
    with open(p, "wb") as f:
        pickle.dump({k: v * 2 for k, v in net.params.items()}, f, protocol=protocol)
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match="allow_pickle=True") as e:
        net.load_params(p)
    assert str(p) in str(e.value) and "pickle" in str(e.value) and "\n" not in str(e.value)
    assert same_params(net.params, before)                    # nothing changed by the refusal
    assert read_meta(p) == {}                                 # read_meta never unpickles
    net.load_params(p, allow_pickle=True)
    assert same_params(net.params, {k: v * 2 for k, v in before.items()})


def _bad_files(tmp_path):
    """name -> bytes of files that are not parameter files for small()."""
    buf = io.BytesIO()
    small().save_params(tmp_path / "good.npz")
    good = (tmp_path / "good.npz").read_bytes()
    os.unlink(tmp_path / "good.npz")
    out = {"empty": b"", "truncated.npz": good[: len(good) // 2], "head-only.npz": good[:10],
           "image.png": b"\x89PNG\r\n\x1a\n" + bytes(200), "notes.txt": b"W1 = 1, 2, 3\n",
           "gzipped.gz": gzip.compress(b"hello")}
    np.save(buf, np.zeros(3))
    out["array.npy"] = buf.getvalue()
    buf = io.BytesIO()
    np.savez(buf, W1=np.array([{}], dtype=object))
    out["objects.npz"] = buf.getvalue()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "a zip, not an npz")
    out["foreign.zip"] = buf.getvalue()
    # params of other networks (names and shapes are what must fit: a TwoLayerNet(4, 3, 2) has the
    # very arrays of small() and loads into it)
    for name, net in (("two-layer.npz", TwoLayerNet(5, 3, 2)),
                      ("deeper.npz", MultiLayerNet(input_size=4, hidden_size_list=[3, 3], output_size=2)),
                      ("wider.npz", MultiLayerNet(input_size=5, hidden_size_list=[3], output_size=2))):
        net.save_params(tmp_path / name)
        out[name] = (tmp_path / name).read_bytes()
        os.unlink(tmp_path / name)
    nan = small()
    nan.params["W1"][0, 0] = np.nan
    nan.save_params(tmp_path / "nan.npz")
    out["nan.npz"] = (tmp_path / "nan.npz").read_bytes()
    os.unlink(tmp_path / "nan.npz")
    pk = pickle.dumps(dict(small().params))
    out["truncated.pkl"] = pk[: len(pk) // 2]
    out["list.pkl"] = pickle.dumps([1, 2, 3])
    out["strings.pkl"] = pickle.dumps({"W1": "abc", "b1": 1, "W2": None, "b2": [1, [2]]})
    return out


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, allow_pickle):
    net = small()
    before = {k: v.copy() for k, v in net.params.items()}
    for name, data in _bad_files(tmp_path).items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ValueError) as e:
            net.load_params(p, allow_pickle=allow_pickle)
        msg = str(e.value)
        assert str(p) in msg and "\n" not in msg, (name, msg)
        assert same_params(net.params, before), name
    with pytest.raises(FileNotFoundError, match="no such file"):
        net.load_params(tmp_path / "missing.npz", allow_pickle=allow_pickle)
    with pytest.raises(IsADirectoryError, match="folder"):
        net.load_params(tmp_path, allow_pickle=allow_pickle)


def test_read_meta_errors_name_the_file(tmp_path):
    for name, data in _bad_files(tmp_path).items():
        p = tmp_path / name
        p.write_bytes(data)
        if data[:4] == b"PK\x03\x04" and name not in ("truncated.npz", "head-only.npz"):
            # readable npz: no metadata, or only what save_params records of its own
            assert set(read_meta(p)) in (set(), {"model", "dtype"}), name
        elif name.endswith(".pkl"):
            assert read_meta(p) == {}, name
        else:
            with pytest.raises(ValueError) as e:
                read_meta(p)
            assert str(p) in str(e.value) and "\n" not in str(e.value), name
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_meta(tmp_path / "missing.npz")


# == plots: atomic, permissions, format from the name ==============================================
def test_plot_is_atomic_and_keeps_its_format(tmp_path):
    from fastdl import _files
    stale = tmp_path / f".c.png.{_files._host()}.999999999.0123456789ab.tmp"    # no such PID
    stale.write_bytes(b"left by a killed run")
    plot(tmp_path / "c.png")
    plot(tmp_path / "c.pdf")
    plot(tmp_path / "curves")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "c.pdf").read_bytes()[:5] == b"%PDF-"
    assert (tmp_path / "curves").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["c.pdf", "c.png", "curves"]


def test_the_search_figures_are_saved_as_the_train_plot_is(tmp_path, umask):
    """fastdl._files.save_figure writes the figures of fastdl search too: atomic, format from the
    name (PNG for a name matplotlib does not write), permissions from the umask. With no trial to
    show (all failed), the scatter plot on log axes is still drawn."""
    pytest.importorskip("matplotlib")
    from fastdl.search import _plots
    umask(0o027)
    _plots.curves([], str(tmp_path / "curves.svg"))
    _plots.scatter([], {"lr": (1e-6, 1e-2, "log")}, [], str(tmp_path / "scatter.dat"))
    _plots.scatter([], {"lr": (1e-6, 1e-2, "log"), "weight_decay": (1e-8, 1e-4, "log")}, [],
                   str(tmp_path / "scatter.dat"))
    assert (tmp_path / "curves.svg").read_bytes().startswith(b"<?xml")
    assert (tmp_path / "scatter.dat").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if POSIX:
        assert mode_of(tmp_path / "curves.svg") == mode_of(tmp_path / "scatter.dat") == 0o640
    assert sorted(os.listdir(tmp_path)) == ["curves.svg", "scatter.dat"]


def test_a_figure_that_fails_to_draw_leaves_the_old_file(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from fastdl._files import save_figure
    target = tmp_path / "c.png"
    target.write_bytes(b"the old curves")
    fig = Figure()

    def savefig(f, **kw):
        f.write(b"half a png")
        raise RuntimeError("no renderer")
    fig.savefig = savefig
    with pytest.raises(RuntimeError, match="no renderer"):
        save_figure(fig, target)
    assert target.read_bytes() == b"the old curves" and os.listdir(tmp_path) == ["c.png"]


# == values and paths: what fits the destination, names as bytes =================================
@pytest.mark.parametrize("value", [1e300, -1e39, 3.5e38])
def test_a_value_beyond_float32_is_refused_naming_the_key(tmp_path, value):
    big = TwoLayerNet(5, 3, 2)
    big.params["b2"][1] = value                          # finite in float64, infinite in float32
    big.save_params(tmp_path / "big.npz")
    net = TwoLayerNet(5, 3, 2, dtype=np.float32)
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match=r"big.npz: b2 does not fit in float32") as e:
        net.load_params(tmp_path / "big.npz")
    assert "\n" not in str(e.value)
    assert same_params(net.params, before)               # nothing loaded, not even W1
    wide = TwoLayerNet(5, 3, 2)
    wide.load_params(tmp_path / "big.npz")              # float64 takes it
    assert wide.params["b2"][1] == value


def test_float32_max_and_float64_values_that_fit_load_into_float32(tmp_path):
    net = TwoLayerNet(5, 3, 2)
    net.params["b2"][:] = [float(np.finfo(np.float32).max), 1e-300]   # the max, and an underflow to 0
    net.save_params(tmp_path / "p.npz")
    small32 = TwoLayerNet(5, 3, 2, dtype=np.float32)
    small32.load_params(tmp_path / "p.npz")
    assert small32.params["b2"][0] == np.finfo(np.float32).max and small32.params["b2"][1] == 0


def test_bytes_paths_are_accepted_everywhere(tmp_path):
    from fastdl.nets import load_model, read_extra
    net = small(0)
    path = os.fsencode(tmp_path / "b.npz")
    net.save_params(path, meta={"k": 1}, extra={"e": np.arange(2)})
    assert os.listdir(tmp_path) == ["b.npz"]
    other = small(1)
    other.load_params(path)
    assert same_params(other.params, net.params)
    assert read_meta(path)["k"] == 1
    np.testing.assert_array_equal(read_extra(path)["e"], np.arange(2))
    assert same_params(load_model(path).params, net.params)
    with pytest.raises(TypeError, match="save_params: the file name must be a str, bytes or os.PathLike"):
        net.save_params(3.5)


def test_atomic_write_and_save_figure_take_bytes_paths(tmp_path):
    from fastdl._files import atomic_write
    with atomic_write(os.fsencode(tmp_path / "raw.bin")) as f:
        f.write(b"data")
    assert (tmp_path / "raw.bin").read_bytes() == b"data"
    assert sorted(os.listdir(tmp_path)) == ["raw.bin"]
