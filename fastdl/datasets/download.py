"""Fetching data files: mirrors tried in order, checksums verified, writes atomic, time bounded.

A file is downloaded to a hidden ``.part`` file in the destination folder
(``fastdl._files.atomic_write``), its MD5 is checked, and only then is it renamed
into place: a killed or failed download leaves nothing that looks like a finished
file, and the ``.part`` of a killed download is removed by the next download or save
in that folder. New files get ``0o666 & ~umask``.

Each download from a mirror has an overall deadline (:func:`deadline_for`), so that
a mirror that trickles data cannot keep the caller busy indefinitely; a mirror that
misses it is named in the error and not tried again for the other files of the same
call (``skip``).

A file already in the folder whose checksum does not match is never deleted: it is
moved aside to ``<name>.mismatch-<YYYYmmdd-HHMMSS>``, with a
:class:`DataFileMovedAside` warning, and a fresh copy is downloaded; the error of a
download that then fails says where the file went.
"""
from __future__ import annotations

import glob
import hashlib
import http.client
import math
import os
import time
import urllib.error
import urllib.request
import warnings
from typing import Callable, Dict, Optional, Sequence

from .._files import atomic_write, move_aside

TIMEOUT = 30                # seconds: connecting, and the longest wait for the next bytes
DEADLINE_BASE = 300         # seconds every download gets ...
DEADLINE_MIN_RATE = 50_000  # ... plus its announced size at this many bytes per second
DEADLINE_ENV = "FASTDL_DOWNLOAD_DEADLINE"


#: a download's progress callback: ``progress(name, bytes so far, bytes announced or None)``
Progress = Callable[[str, int, Optional[int]], object]


class DownloadError(OSError):
    """No mirror delivered a file with the expected checksum."""


class SettingError(ValueError):
    """An environment variable of fastdl's data sets holds a value that cannot be used; the
    message names it. A usage error (``fastdl`` exits with status 2)."""


class DataFileMovedAside(UserWarning):
    """A file in the data folder did not have the expected checksum and was renamed, not deleted."""


def md5sum(path: str, chunk: int = 1 << 20) -> str:
    """The MD5 of the file at ``path`` as hex digits, read ``chunk`` bytes at a time."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def is_valid(path: str, md5: str) -> bool:
    """Whether ``path`` is a file with checksum ``md5``."""
    return os.path.isfile(path) and md5sum(path) == md5


def deadline_for(size: Optional[int] = None) -> float:
    """Seconds one download from one mirror may take in all: ``$FASTDL_DOWNLOAD_DEADLINE`` if
    set, else DEADLINE_BASE (300 s) plus the announced size at DEADLINE_MIN_RATE (50 kB/s);
    e.g. 498 s for MNIST's 9.9 MB training images. ``size``: bytes, None if not announced."""
    v = os.environ.get(DEADLINE_ENV, "").strip()
    if v:
        try:
            seconds = float(v)
        except ValueError:
            seconds = math.nan
        if not (seconds > 0 and math.isfinite(seconds)):
            raise SettingError(f"{DEADLINE_ENV} must be a number of seconds > 0, got {v!r}")
        return seconds
    return DEADLINE_BASE + (size or 0) / DEADLINE_MIN_RATE


def _aside_note(path: str) -> str:
    earlier = sorted(glob.glob(glob.escape(path) + ".mismatch-*"))
    if not earlier:
        return ""
    return ("; a copy of " + os.path.basename(path) + " that was in the folder did not match the "
            "expected checksum and was moved aside, not deleted: " + ", ".join(earlier))


def _download(url: str, path: str, md5: str, progress: Optional[Progress], name: str) -> str:
    """Download ``url`` into ``path`` (atomically, checksum verified) within the deadline."""
    start = time.monotonic()
    limit = deadline_for(None)
    timeout = min(TIMEOUT, limit)
    with atomic_write(path, kind="part", name_errors=False) as out, \
            urllib.request.urlopen(url, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        expected = int(length) if length and length.strip().isdigit() else None
        limit = deadline_for(expected)
        read = getattr(resp, "read1", resp.read)       # read1: whatever has arrived, not a full block
        h = hashlib.md5()
        got = 0
        while True:
            block = read(1 << 16)
            if not block:
                break
            out.write(block)
            h.update(block)
            got += len(block)
            if progress:
                progress(name, got, expected)
            elapsed = time.monotonic() - start
            if elapsed > limit:
                raise _TooSlow(f"too slow: {got:,} of {'?' if expected is None else f'{expected:,}'} "
                               f"bytes after {elapsed:.1f} s, over the {limit:g}-second deadline; try "
                               f"again later or another mirror, or allow more time with "
                               f"{DEADLINE_ENV}=<seconds>")
        if expected is not None and got != expected:
            raise DownloadError(f"truncated: {got} of {expected} bytes")
        if h.hexdigest() != md5:
            raise DownloadError(f"checksum mismatch: md5 {h.hexdigest()}, expected {md5}")
    return path


class _TooSlow(DownloadError):
    pass


def fetch(name: str, md5: str, mirrors: Sequence[str], folder: str,
          progress: Optional[Progress] = None, skip: Optional[Dict[str, str]] = None) -> str:
    """Return the path of ``folder/name`` with checksum ``md5``, downloading it if needed.

    mirrors: base URLs tried in order (``base + name``). Raises DownloadError listing what each
    mirror did when none delivers a valid file. A file already there with another checksum is
    moved aside (:func:`fastdl._files.move_aside`, warning :class:`DataFileMovedAside`), never
    deleted. skip: an optional dict shared by several calls; a mirror that misses the deadline
    (:func:`deadline_for`) is recorded there and not tried again by those calls.
    """
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    if os.path.lexists(path):
        if is_valid(path, md5):
            return path
        try:
            found = md5sum(path)
        except OSError as exc:
            found = f"unreadable: {exc.strerror or exc}"
        aside = move_aside(path)
        if aside is not None:
            warnings.warn(f"fastdl: {path} does not have the checksum of the published file (md5 "
                          f"{found}, expected {md5}); it was moved to {aside}, not deleted, and a "
                          f"fresh copy is being downloaded", DataFileMovedAside, stacklevel=2)
    deadline_for(None)                       # a bad FASTDL_DOWNLOAD_DEADLINE fails before any download
    skip = {} if skip is None else skip
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + name
        if base in skip:
            failures.append(f"{url}: not tried: {skip[base]}")
            continue
        try:
            return _download(url, path, md5, progress, name)
        except _TooSlow as exc:
            skip[base] = f"too slow for {name} earlier"
            failures.append(f"{url}: {exc}")
        except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
    raise DownloadError(f"could not download {name}:\n  " + "\n  ".join(failures) + _aside_note(path))
