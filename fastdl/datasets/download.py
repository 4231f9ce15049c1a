"""Fetching data files: mirrors tried in order, checksums verified, writes atomic.

A file is downloaded to a temporary name in the destination folder, its MD5
is checked, and only then is it renamed into place; a killed or failed
download leaves nothing that looks like a finished file. A cached file whose
checksum does not match is fetched again.
"""
import hashlib
import os
import tempfile
import urllib.error
import urllib.request

TIMEOUT = 30          # seconds per connection attempt


class DownloadError(OSError):
    """No mirror delivered a file with the expected checksum."""


def md5sum(path, chunk=1 << 20):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def is_valid(path, md5):
    return os.path.isfile(path) and md5sum(path) == md5


def fetch(name, md5, mirrors, folder, progress=None):
    """Return the path of ``folder/name`` with checksum ``md5``, downloading it if needed.

    mirrors: base URLs tried in order (``base + name``). Raises DownloadError
    listing what each mirror did when none delivers a valid file.
    """
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    if os.path.exists(path):
        if is_valid(path, md5):
            return path
        os.unlink(path)                     # corrupt or truncated: fetch it again
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        try:
            h = hashlib.md5()
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
                expected = resp.headers.get("Content-Length")
                got = 0
                while True:
                    block = resp.read(1 << 16)
                    if not block:
                        break
                    out.write(block)
                    h.update(block)
                    got += len(block)
                    if progress:
                        progress(name, got, int(expected) if expected else None)
                out.flush()
                os.fsync(out.fileno())
            if expected is not None and got != int(expected):
                raise DownloadError(f"truncated: {got} of {expected} bytes")
            if h.hexdigest() != md5:
                raise DownloadError(f"checksum mismatch: md5 {h.hexdigest()}, expected {md5}")
            os.replace(tmp, path)
            return path
        except (OSError, urllib.error.URLError, ValueError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DownloadError(f"could not download {name}:\n  " + "\n  ".join(failures))
