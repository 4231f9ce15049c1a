"""The journal of a search: one JSON line per finished trial, so that nothing finished is lost.

Line 1 is the header, ``{"fastdl_search": 1, "config": {...}, "created": "..."}``: the search's
configuration (seed, trial count, ranges, network, training, data), which ``resume`` compares
with the search being resumed. Every other line is the record of one finished trial (see
``fastdl.search``), written with one ``write`` to a file opened for appending and then
``fsync``'d, so a client killed at any moment leaves at most a torn last line; resuming drops
that line (the trial it belonged to runs again) and appends after the last whole one. The file
is locked (``flock``) while a search writes it: a second client on the same journal is refused.

A search resumed with more trials than the header's (trial ``i`` depends only on the seed and
``i``, so the first trials are those of the longer search) appends an extension line,
``{"fastdl_search": 1, "trials": N, "extended": "..."}``: from there on the search has N trials.
Fewer trials than the journal's search is refused (:class:`ConfigMismatch`): it would leave
finished trials out of the table.

The records are checked whenever a journal is read: a trial index outside the search
(below 0 or not below its trial count) or a trial recorded twice makes it a
:class:`JournalError` naming the line. fastdl writes each trial once, so either means the file
was edited or joined with another; even a byte-identical duplicate is refused rather than
dropped, so that what the table is made of is never decided silently.

The header's ``backend`` is the backend the trials ran on, resolved when the search started
(``backend`` given, else ``FASTDL_BACKEND``, else the default); a header whose backend is
``null`` counts as the default backend.
"""
import errno
import json
import os
import time

FORMAT = 1


class JournalError(ValueError):
    """The file is not a journal of fastdl.search, or it is damaged before its last line."""


class ConfigMismatch(ValueError):
    """``resume`` was asked for a journal written by a different search."""


class JournalExists(FileExistsError):
    """A journal already holds trials and ``resume`` was not asked for."""


class JournalBusy(OSError):
    """Another search is writing this journal."""


def _lines(data, path):
    """(header or None, [(line number, record)], whether a torn last line was found) from a
    journal's bytes; extension lines update the header's trial count."""
    torn = bool(data) and not data.endswith(b"\n")
    whole = data[:data.rfind(b"\n") + 1] if torn else data
    header, records = None, []
    for number, line in enumerate(whole.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise JournalError(f"{path}: line {number} is not valid JSON (the file is damaged; only a "
                               "torn last line is expected after a crash)") from None
        if header is None:
            if not (isinstance(item, dict) and item.get("fastdl_search") == FORMAT
                    and isinstance(item.get("config"), dict)):
                raise JournalError(f"{path} is not a journal of fastdl search (its first line is no "
                                   "search header)")
            header = item
            continue
        if isinstance(item, dict) and item.get("fastdl_search") == FORMAT and "index" not in item:
            trials = item.get("trials")
            if not (isinstance(trials, int) and not isinstance(trials, bool)
                    and trials >= header["config"].get("trials", 0)):
                raise JournalError(f"{path}: line {number} is not a valid extension of the search")
            header = dict(header, config=dict(header["config"], trials=trials))
            continue
        if not (isinstance(item, dict) and isinstance(item.get("index"), int) and "status" in item):
            raise JournalError(f"{path}: line {number} is not a trial record")
        records.append((number, item))
    return header, records, torn


def _checked(path, config, numbered):
    """The records of ``(line number, record)`` pairs, after checking that each trial index is in
    the search and recorded once (JournalError naming the line otherwise)."""
    trials = config.get("trials")
    first: dict = {}
    for number, r in numbered:
        i = r["index"]
        if isinstance(trials, int) and not 0 <= i < trials:
            raise JournalError(f"{path}: line {number} records trial {i}, outside the search's {trials} "
                               f"trials (0 to {trials - 1}); the file was edited or joined with another "
                               "search: remove that line or choose another file")
        if i in first:
            raise JournalError(f"{path}: line {number} records trial {i} again (first on line {first[i]}); "
                               "the file was edited or joined with another: keep one of the two lines "
                               "or choose another file")
        first[i] = number
    return [r for _, r in numbered]


def read(path):
    """``(config, records)`` of a journal, without locking or changing it (a torn last line is
    ignored; JournalError for a damaged file or a record outside the search or repeated)."""
    with open(path, "rb") as f:
        data = f.read()
    header, records, _ = _lines(data, path)
    if header is None:
        raise JournalError(f"{path} holds no search (it is empty)")
    return header["config"], _checked(path, header["config"], records)


def _same_backend(config):
    """``config`` with a ``null`` backend read as the default one (see the module docstring)."""
    if config.get("backend") is None:
        from fastdl.backend import DEFAULT_BACKEND
        return dict(config, backend=DEFAULT_BACKEND)
    return config


def _show(value):
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list) and value and all(isinstance(v, (int, float, str)) for v in value):
        return ":".join(_show(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_show(v)}" for k, v in value.items())
    return str(value)


def _differences(old, new):
    keys = [k for k in list(new) + [k for k in old if k not in new] if old.get(k) != new.get(k)]
    return "; ".join(f"{k} {_show(old.get(k))} there, {_show(new.get(k))} here" for k in keys)


class Journal:
    """An open journal, locked for this search. ``records`` holds the trials already in it."""

    def __init__(self, path, config, resume=False):
        self.path = os.fspath(path)
        self.config = json.loads(json.dumps(config))
        self.records = []
        self.dropped_torn_line = False
        self.extended_from = None
        """The trial count before this search extended the journal's, or None."""
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            self._lock()
            self._load(resume)
        except BaseException:
            os.close(self._fd)
            self._fd = None  # type: ignore[assignment]  # closed
            raise

    def _lock(self):
        try:
            import fcntl
        except ImportError:                  # not POSIX: no lock
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise JournalBusy(f"another search is writing {self.path}") from None
            # a file system without locks: go on unlocked

    def _load(self, resume):
        size = os.fstat(self._fd).st_size
        data = os.pread(self._fd, size, 0) if size else b""
        header, records, torn = _lines(data, self.path)
        if header is None and data.strip() and not data.lstrip().startswith(b'{"fastdl_search"'):
            # one line without a newline is a torn header only if it starts like one: never
            # truncate someone's file (notes.txt given as --out)
            raise JournalError(f"{self.path} is not a journal of fastdl search; choose another file")
        if header is not None and records and not resume:
            raise JournalExists(f"{self.path} already holds a search; resume it (--resume) or choose "
                                "another file")
        extend = False
        if header is not None and resume:
            old = _same_backend(json.loads(json.dumps(header["config"])))
            if old.get("backend") != self.config.get("backend"):
                raise ConfigMismatch(f"{self.path} was run on backend {old.get('backend')}, this search would "
                                     f"run on backend {self.config.get('backend')}; resume it on "
                                     f"{old.get('backend')} (--backend {old.get('backend')}) or choose another file")
            if dict(old, trials=self.config.get("trials")) != self.config:
                same_count = dict(self.config, trials=old.get("trials"))
                raise ConfigMismatch(f"{self.path} holds a different search ({_differences(old, same_count)}); "
                                     "resume it with the same settings or choose another file")
            have, want = old.get("trials"), self.config.get("trials")
            if want < have:
                raise ConfigMismatch(f"{self.path} holds a search of {have} trials, more than the {want} asked "
                                     f"for; resume it with trials {have} (or more, to extend it)")
            extend = want > have
            self.records = _checked(self.path, old, records)
        if header is None or not records and not resume:
            # a new journal (or one with no trial yet, or only a torn header): start it afresh
            os.ftruncate(self._fd, 0)
            self._write({"fastdl_search": FORMAT, "config": self.config,
                         "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            self.records = []
            return
        if torn:
            os.ftruncate(self._fd, data.rfind(b"\n") + 1)
            os.fsync(self._fd)
            self.dropped_torn_line = True
        if extend:
            self._write({"fastdl_search": FORMAT, "trials": self.config["trials"],
                         "extended": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            self.extended_from = have

    def _write(self, item):
        data = (json.dumps(item, allow_nan=False) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)

    def append(self, record):
        """Write one finished trial: appended, flushed and fsync'd before this returns."""
        self._write(record)

    def close(self):
        """Close the file, which releases the lock; closing again does nothing."""
        if self._fd is not None:
            os.close(self._fd)               # releases the lock
            self._fd = None  # type: ignore[assignment]  # closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
