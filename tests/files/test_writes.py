"""Every file fastdl writes (parameters, downloads, figures) goes through one atomic writer: a
missing folder or a failed write names the target and keeps the old file, new files follow the
umask and replaced ones keep their mode, a symlink's target is replaced, leftovers of writers
killed with SIGKILL are removed by the next write (live writers' files and users' files are not),
and paths may be bytes."""
import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fastdl.datasets import download as D
from fastdl.nets import read_meta
from tests.files.conftest import (LABELS, LABELS_MD5, big, hidden, mode_of, needs_posix, plot, publish,
                                  same_params, small)


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


@needs_posix
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077])
def test_new_files_get_0666_minus_umask(tmp_path, server, umask, mask):
    url, root = server
    publish(root, [LABELS])
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
