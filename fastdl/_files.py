"""How fastdl writes files: nothing lost, nothing half-written, permissions as the user expects.

Every file fastdl writes (``Net.save_params``, downloaded data sets, the figures of ``fastdl
train --plot`` and ``fastdl search`` through :func:`save_figure`) goes through :func:`atomic_write`:

* The data is written to a hidden temporary file in the target's folder, flushed to disk,
  and renamed over the target in one step: a reader sees the old file or the new one,
  never a mixture, even if the writer is killed (``kill -9``, power loss after the fsync).
* A new file gets the permissions ``0o666 & ~umask``, as ``open()`` would give it: the
  temporary file is created with mode 0o666 and the system applies the umask. A file that is
  replaced keeps its permission bits: its temporary file is created with them (the umask can
  only take bits away) and given exactly them before the rename, so that the new data is
  never more widely readable than the old.
* Temporary files are named ``.<target>.<host>.<pid>.<random>.tmp`` (``.part`` for
  downloads). A writer that is killed cannot remove its own, so every write first removes
  the leftovers in its folder whose writer is gone: same host and no process with that
  PID, or not modified for :data:`STALE_AGE` seconds (a PID reused by another process, a
  writer on another machine sharing the folder). A temporary file of a write still
  running, in this or another process, is left alone. Nothing that does not carry this
  naming is ever removed, apart from the hidden temporary files of earlier fastdl versions
  (see ``_LEGACY``) once they are :data:`STALE_AGE` old.
* Errors name the target, not the temporary file: ``cannot write out/params.npz: the
  folder /home/me/out does not exist``.
* :func:`move_aside` renames a file out of the way instead of deleting it.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import socket
import stat
import time
from typing import IO, TYPE_CHECKING, Iterator, List, Optional, Union

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: a path as fastdl's writers accept it (bytes decoded with os.fsdecode, as open() does)
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

#: a temporary file not modified for this long (seconds) is a leftover whatever its PID says
STALE_AGE = 24 * 3600

_OURS = re.compile(r"^\.(?P<target>.*)\.(?P<host>[A-Za-z0-9-]{1,32})\.(?P<pid>[0-9]{1,10})"
                   r"\.(?P<token>[0-9a-f]{12})\.(?:tmp|part)$", re.S)
#: hidden temporary names of fastdl versions before this module (tempfile.mkstemp names, no PID):
#: removed only once STALE_AGE old
_LEGACY = (re.compile(r"^\.params-[a-z0-9_]{8}\.npz\.tmp$"),
           re.compile(r"^\.(?:train|t10k)(?:-5k)?-(?:images|labels)-idx[13]-ubyte\.gz\.[a-z0-9_]{8}\.part$"))

def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"


def temp_name(target: str, kind: str = "tmp") -> str:
    """Hidden temporary name for ``target`` (a base name) written by this process."""
    base = os.fsdecode(os.fsencode(target)[:80]) if target else "file"
    return f".{base}.{_host()}.{os.getpid()}.{secrets.token_hex(6)}.{kind}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this machine (True when it cannot be told)."""
    if os.name != "posix":
        return True                      # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, ValueError):
        return False                     # not a possible PID
    except OSError:
        return True                      # e.g. PermissionError: another user's live process
    return True


def is_leftover(name: str, mtime: float, now: Optional[float] = None) -> bool:
    """Whether the entry ``name`` (modified at ``mtime``) is a temporary file of a dead writer."""
    now = time.time() if now is None else now
    old = now - mtime > STALE_AGE
    m = _OURS.match(name)
    if m:
        if old:
            return True
        return m.group("host") == _host() and not pid_alive(int(m.group("pid")))
    return old and any(p.match(name) for p in _LEGACY)


def clean_stale_temps(folder: str) -> List[str]:
    """Remove the temporary files left in ``folder`` by writers that died; returns their names.
    Never raises: a file that cannot be examined or removed is left where it is."""
    removed: List[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and (name.endswith(".tmp") or name.endswith(".part"))):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and is_leftover(name, st.st_mtime, now):
                os.unlink(entry.path)
                removed.append(name)
        except OSError:
            continue
    return removed


def _fsync_folder(folder: str) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _naming(exc: OSError, path: str) -> OSError:
    """The same kind of OSError, with a message naming the target instead of a temporary file."""
    if type(exc).__module__ != "builtins" or exc.errno is None:
        return exc
    new = type(exc)(exc.errno, f"cannot write {path}: {exc.strerror or exc}")
    new.filename = None
    return new


@contextlib.contextmanager
def atomic_write(path: PathLike, kind: str = "tmp", name_errors: bool = True) -> Iterator[IO[bytes]]:
    """Context manager: ``with atomic_write(path) as f: f.write(...)`` writes ``path`` atomically.

    Yields a binary file open on a hidden temporary file in the target's folder; when the block
    ends normally the data is flushed and fsynced and the temporary file renamed over ``path``
    (a symlink at ``path`` is followed: the file it points to is replaced). If the block raises,
    the temporary file is removed, the target is untouched, and the exception propagates.
    kind: suffix of the temporary file ("tmp", or "part" for downloads).
    name_errors: OSErrors raised inside the block (a full disk...) are re-raised naming ``path``;
    pass False when the block raises OSErrors of its own (network errors) that must pass unchanged.
    """
    path = os.fsdecode(os.fspath(path))          # bytes as open() takes them
    target = os.path.realpath(path) if os.path.islink(path) else path
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        code = errno.ENOTDIR if os.path.exists(folder) else errno.ENOENT
        cls = NotADirectoryError if code == errno.ENOTDIR else FileNotFoundError
        raise cls(code, f"cannot write {path}: the folder {folder} {what}")
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, f"cannot write {path}: it is a folder")
    clean_stale_temps(folder)
    try:
        keep = stat.S_IMODE(os.stat(target).st_mode)     # replacing: keep the file's permissions
    except OSError:
        keep = None                                      # new: 0o666 & ~umask, from the system
    tmp = os.path.join(folder, temp_name(os.path.basename(target), kind))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o666 if keep is None else keep & 0o777)
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
                if keep is not None and hasattr(os, "fchmod"):
                    os.fchmod(f.fileno(), keep)       # the umask may have taken bits it has
            if keep is not None and not hasattr(os, "fchmod"):
                os.chmod(tmp, keep)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError as exc:
        if not name_errors:
            raise
        new = _naming(exc, path)
        if new is exc:
            raise
        raise new from exc
    _fsync_folder(folder)


def save_figure(fig: Figure, path: PathLike, dpi: int = 100) -> None:
    """Write the matplotlib figure ``fig`` to ``path`` with :func:`atomic_write`, in the format its
    extension names (``.png``, ``.pdf``, ``.svg``...); PNG when it has none or one matplotlib does
    not write."""
    fmt = os.path.splitext(os.fsdecode(os.fspath(path)))[1][1:].lower()
    if fmt not in fig.canvas.get_supported_filetypes():
        fmt = "png"
    with atomic_write(path) as f:
        fig.savefig(f, dpi=dpi, format=fmt)


def move_aside(path: str, label: str = "mismatch") -> Optional[str]:
    """Rename ``path`` to ``<path>.<label>-<YYYYmmdd-HHMMSS>`` (``-2``, ``-3``... if taken) in the
    same folder, never overwriting anything; returns the new name, or None if ``path`` vanished
    meanwhile (another process moved it)."""
    base = f"{path}.{label}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 1000):
        candidate = base if n == 1 else f"{base}-{n}"
        if os.path.lexists(candidate):
            continue
        try:
            os.link(path, candidate, follow_symlinks=False)    # fails rather than overwrite
        except FileExistsError:
            continue
        except FileNotFoundError:
            return None
        except (OSError, NotImplementedError):
            # no hard links here (some network or FAT file systems): a rename after the check
            try:
                os.rename(path, candidate)
            except FileNotFoundError:
                return None
            return candidate
        try:
            os.unlink(path)                 # the data lives on under the new name
        except FileNotFoundError:
            pass
        return candidate
    raise FileExistsError(errno.EEXIST, f"cannot move {path} aside: {base}-* all taken")
