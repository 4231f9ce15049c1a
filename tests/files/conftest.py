"""Shared by the tests of the files fastdl writes and reads: real HTTP servers on 127.0.0.1 (one
serving a folder, one trickling a byte at a time) and an address where nothing listens; the umask
for one test; small and big networks to save."""
import gzip
import http.server
import os
import shutil
import socket
import stat
import threading
import time
import types

import numpy as np
import pytest

from fastdl.datasets import mnist as M
from fastdl.nets import MultiLayerNet


class ServerHandler(http.server.SimpleHTTPRequestHandler):
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
    ServerHandler.truncate = set()
    httpd, url = _serve(lambda *a, **k: ServerHandler(*a, directory=str(root), **k))
    yield url, root
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                 # nothing listens there now: connection refused
    return f"http://127.0.0.1:{port}/"


def publish(root, names):
    for name in names:
        shutil.copy(os.path.join(M.SAMPLE_DIR, name), root / name)


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


def _serve(handler):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


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
