"""When the compiled kernels of this backend are compiled: ``FASTDL_COMPILE``.

Compiling every kernel of this backend for both dtypes takes 20-25 s on a 2-core machine; Numba
keeps the result in its cache (``__pycache__`` next to the sources, or ``NUMBA_CACHE_DIR``), so
only the first process after an install or upgrade pays it. Three policies:

``background`` (the default)
    The first call of an op in a process, per dtype, runs the reference kernel
    (``fastdl.kernels.reference``) and queues the op's compile on one background thread (one
    worker: a compile is single-threaded work and the machine may have 2 cores). Once it is
    done, the op runs its compiled kernels. With a warm cache the queued work is loading them
    (milliseconds per kernel, but about 0.6 s for a SimpleConvNet step's, measured under load:
    more than that step on the reference). Results agree within the tolerance of the two backends.
``lazy``
    An op compiles what a call needs in the calling thread, which waits (Numba's own behaviour).
``eager``
    Loading the backend compiles (or loads from the cache) every kernel for both dtypes first,
    as ``fastdl warm`` does.

A forward op that ran on the reference returns its ctx wrapped (``ReferenceCtx``); the
matching backward op runs the reference backward on it, so a layer's backward always uses the
kernels that ran its forward, even when the compiled ones become ready in between. The backward
ops without a ctx (ReLU, sigmoid, affine, softmax loss) take arrays the spec defines, which
either kernel set reads alike.

Whether an op's kernels are in the cache (``fastdl info``, ``fastdl warm``) is told without
compiling them: after an op is
compiled, the signatures it added to each dispatcher are recorded under its name and dtype in a
small manifest next to Numba's cache files (``MANIFEST``); an op counts as cached when every
recorded signature is in its dispatcher's cache index (Numba's own index: stale entries, from
changed sources or another Numba version, do not count).

Numba's cache key for a kernel is the hash of the one source file that defines it: a kernel that
calls an ``@njit`` helper of another file (``_extrows``, ``_vexp``, ``scalars``, ...) would load from
the cache with the helper as it was when it was compiled. So before any kernel of this package is
loaded (``load_kernels``, ``compiled_kernels``), ``ensure_fresh`` hashes every source file the
kernels are compiled from (``kernel_sources``) and, when the hash differs from the one stored in
Numba's cache folder (``SOURCES_STAMP``), removes that folder's cache files of this package's
modules and the manifest: every kernel compiles again, once.
"""
import hashlib
import os
import pickle
import queue
import sys
import threading
from typing import Any

import numpy as np

MODES = ("background", "eager", "lazy")
MANIFEST = "fastdl-compiled.pkl"
#: the file, in Numba's cache folder of this package, holding the hash of the sources its kernels
#: were compiled from (``ensure_fresh``)
SOURCES_STAMP = "fastdl-sources.sha256"

#: forward ops whose second result is a ctx for their backward op
CTX_FORWARD = {"conv_forward": "conv_backward", "conv_relu_forward": "conv_relu_backward",
               "conv_relu_pool_forward": "conv_relu_pool_backward", "pool_forward": "pool_backward",
               "avg_pool_forward": "avg_pool_backward", "batchnorm_forward": "batchnorm_backward"}
CTX_BACKWARD = frozenset(CTX_FORWARD.values())
#: the argument whose dtype selects an op's compiled kernels (default: the first)
_DTYPE_ARG = {"affine_forward": 1, "affine_backward": 2}

_mode = None
#: compile in a child process (True), whose work does not hold this process's GIL, or in the
#: background thread itself (False: measured, a Python-heavy script then ran up to 1.5x slower
#: while the compile went on, as the compiler holds the GIL most of the time)
_USE_CHILD = True
_lock = threading.Lock()
_ready: dict = {}      # (op, dtype name) -> True once the op's kernels are compiled here
_pending: set = set()  # keys queued or compiling in the background
_queue: Any = None
_worker = None
#: calls that ran on the reference because the op's kernels were being compiled (for tests)
fallback_calls = 0


class ReferenceCtx:
    """The ctx of a forward op that ran on the reference kernels; its backward runs there too."""
    __slots__ = ("ctx",)

    def __init__(self, ctx):
        self.ctx = ctx


def mode():
    """The policy in force: ``FASTDL_COMPILE`` (read once) or ``set_mode``'s; "background" if unset."""
    global _mode
    if _mode is None:
        value = os.environ.get("FASTDL_COMPILE", "").strip().lower() or "background"
        if value not in MODES:
            raise ValueError(f"FASTDL_COMPILE={os.environ.get('FASTDL_COMPILE')!r} is not a compile policy; "
                             f"set it to one of {', '.join(MODES)} (or unset it for background)")
        _mode = value
    return _mode


def set_mode(value):
    """Set the policy for this process (one of ``MODES``); returns the previous one."""
    global _mode
    if value not in MODES:
        raise ValueError(f"compile mode must be one of {', '.join(MODES)}, got {value!r}")
    old, _mode = mode(), value
    return old


def _key(name, args, kwargs):
    """(op, dtype) of a call: the dtype object of the argument that selects the kernels (its
    ``.name`` costs a microsecond, the object nothing), or the argument's type name."""
    i = _DTYPE_ARG.get(name, 0)
    a = args[i] if len(args) > i else next(iter(kwargs.values()), None)
    dt = getattr(a, "dtype", None)
    return name, (dt if dt is not None else type(a).__name__)


def _text_key(key):
    """A key as the manifest keeps it: (op, dtype name)."""
    dt = key[1]
    return key[0], (dt if isinstance(dt, str) else np.dtype(dt).name)


# ---------------------------------------------------------------- stale cache files

_fresh = False          # ensure_fresh has run in this process
_fresh_lock = threading.Lock()


#: the modules of this package that hold no compiled code (the loading, the compile policy, the
#: threads' set-up): editing them leaves the cache alone (tests/kernels/test_cache_freshness.py
#: checks that they call no Numba compiler)
NOT_COMPILED = ("__init__.py", "_compile.py", "_defer.py", "_threads.py")


def kernel_sources(package_dir=None):
    """The source files the compiled kernels of this package are built from: every module of
    ``package_dir`` (this package's folder) but ``NOT_COMPILED``, and ``scalars.py`` beside it (the
    element-wise ops' scalar functions). ``shapes``, ``spec`` and the other modules of
    ``fastdl.kernels`` hold no compiled code."""
    here = package_dir or os.path.dirname(os.path.abspath(__file__))
    files = sorted(os.path.join(here, n) for n in os.listdir(here)
                   if n.endswith(".py") and n not in NOT_COMPILED)
    return files + [os.path.join(os.path.dirname(here), "scalars.py")]


def sources_hash(paths):
    """SHA-256 (hex) of the names and contents of ``paths``, in the given order."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        h.update(os.path.basename(path).encode() + b"\0" + len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _cache_anchor():
    """A function of this package's folder: Numba's cache locator, given it, names the folder it
    caches every kernel of this package in (it chooses by the source file's folder)."""


def numba_cache_folder():
    """The folder Numba's cache locator picks for this package's kernels (``NUMBA_CACHE_DIR``, else
    ``__pycache__`` beside the sources if writable, else the user's cache), or None when none is
    usable (Numba then caches nothing)."""
    from numba.core.caching import CompileResultCacheImpl
    try:
        return CompileResultCacheImpl(_cache_anchor).locator.get_cache_path()
    except Exception:          # no locator for this file: nothing is cached
        return None


def drop_stale(folder, sources, modules):
    """Compare ``sources_hash(sources)`` with the one stored in ``folder`` (``SOURCES_STAMP``); when it
    differs (or none is stored), remove Numba's cache files (``<module>.*.nbi``, ``.nbc``) of the
    ``modules`` (file names without ``.py``) and the manifest from ``folder``, then store the hash
    (atomic replace). Other files are kept. Returns the names removed, or None when the hash matched.
    Files that cannot be removed give one warning and leave the stamp as it was (the next process
    tries again); a stamp that cannot be written, no warning."""
    stamp = sources_hash(sources)
    path = os.path.join(folder, SOURCES_STAMP)
    try:
        with open(path, encoding="ascii") as f:
            if f.read().strip() == stamp:
                return None
    except (OSError, ValueError):
        pass
    prefixes = tuple(f"{m}." for m in modules)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        names = []
    removed: list = []
    kept: list = []
    for name in names:
        if name == MANIFEST or (name.startswith(prefixes) and name.endswith((".nbi", ".nbc"))):
            try:
                os.unlink(os.path.join(folder, name))
                removed.append(name)
            except FileNotFoundError:      # another process removed it first
                pass
            except OSError:
                kept.append(name)
    if kept:
        import warnings
        warnings.warn(f"fastdl: the kernel sources changed but {len(kept)} of Numba's cache files in "
                      f"{folder} could not be removed, so stale compiled kernels may load; delete them "
                      "or set NUMBA_CACHE_DIR to a writable folder", RuntimeWarning, stacklevel=2)
        return removed
    tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
    try:
        with open(tmp, "w", encoding="ascii") as f:
            f.write(stamp + "\n")
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return removed


def ensure_fresh():
    """Once per process, before any kernel of this package is loaded from Numba's cache: drop the
    cache files compiled from other sources than the ones here (``drop_stale``)."""
    global _fresh
    if _fresh:
        return
    with _fresh_lock:
        if _fresh:
            return
        folder = numba_cache_folder()
        if folder is not None:
            here = os.path.dirname(os.path.abspath(__file__))
            try:
                modules = [n[:-3] for n in os.listdir(here) if n.endswith(".py")]
                drop_stale(folder, kernel_sources(here), modules)
            except OSError:        # a source unreadable: Numba's own per-file check is all there is
                pass
        _fresh = True


# ---------------------------------------------------------------- what is compiled / cached

def _dispatchers():
    from . import compiled_kernels
    return compiled_kernels()


def _snapshot():
    return {name: len(d.signatures) for name, d in _dispatchers().items()}


def _added(before):
    """[(dispatcher name, signature text)] compiled since ``before`` (a ``_snapshot``)."""
    out: list = []
    for name, d in _dispatchers().items():
        if type(d._cache).__name__ == "NullCache":   # not cached (no cache=True): nothing to find
            continue
        sigs = list(d.signatures)
        out.extend((name, _sig_text(s)) for s in sigs[before.get(name, 0):])
    return out


def _sig_text(sig):
    """A signature as text (the function-pointer types of the BLAS arguments do not pickle)."""
    return repr(tuple(sig))


def _manifest_path():
    d = next(iter(_dispatchers().values()))
    return os.path.join(d._cache._cache_path, MANIFEST)


def cache_dir():
    """The folder of Numba's cache files for this backend's kernels."""
    return os.path.dirname(_manifest_path())


def _load_manifest():
    try:
        with open(_manifest_path(), "rb") as f:
            data = pickle.load(f)
        return data if isinstance(data, dict) else {}
    except Exception:          # absent, unreadable, or from another Numba version
        return {}


def _record(entries):
    """Merge ``{key: [(dispatcher, signature)]}`` into the manifest (atomic replace)."""
    if not entries:
        return
    with _lock:
        data = _load_manifest()
        for k, v in entries.items():
            data[k] = sorted(set(data.get(k, [])) | set(v), key=repr)
        path = _manifest_path()
        tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(tmp, "wb") as f:
                pickle.dump(data, f, protocol=4)
            os.replace(tmp, path)
        except OSError:        # a read-only cache: nothing recorded, the ops compile again next time
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _indexed(disp):
    """The signatures Numba's cache index of ``disp`` holds (empty when stale)."""
    try:
        return {_sig_text(k[0]) for k in disp._cache._cache_file._load_index()}
    except Exception:
        return set()


def cached(key, manifest=None):
    """True if every kernel signature recorded for ``key`` ((op, dtype name)) is in Numba's cache."""
    entries = (_load_manifest() if manifest is None else manifest).get(_text_key(key))
    if entries is None:
        return False
    disps = _dispatchers()
    index = {}
    for name, sig in entries:
        d = disps.get(name)
        if d is None:
            return False
        if name not in index:
            index[name] = _indexed(d)
        if sig not in index[name]:
            return False
    return True


def status():
    """(ops compiled in this process, ops recorded as cached) as counts of (op, dtype) keys."""
    manifest = _load_manifest()
    return len(_ready), sum(1 for k in manifest if cached(k, manifest))


# ---------------------------------------------------------------- compiling

def _copy(a):
    return a.copy() if isinstance(a, np.ndarray) else a


def compile_call(name, fn, args, kwargs, backward=None):
    """Run ``fn`` (an op's compiled kernels) on copies of a call's arguments, and for a forward op
    with a ctx its ``backward`` on that ctx; record what was compiled under the op's key (and the
    backward's). Returns the key."""
    key = _key(name, args, kwargs)
    before = _snapshot()
    result = fn(*[_copy(a) for a in args], **{k: _copy(v) for k, v in kwargs.items()})
    tkey = _text_key(key)
    entries = {tkey: _added(before)}
    if backward is not None and isinstance(result, tuple) and result[1] is not None:
        out, ctx = result[0], result[1]
        before = _snapshot()
        backward(np.ones_like(out), ctx)
        bkey = (CTX_FORWARD[name], tkey[1])
        entries[bkey] = _added(before)
        entries[tkey] = entries[tkey] + entries[bkey]
    _record(entries)
    with _lock:
        _ready[key] = True
        _pending.discard(key)
    return key


def _spec(a):
    """An argument as the compile process rebuilds it: arrays by shape and dtype (their values
    choose no kernel), anything else as it is."""
    if isinstance(a, np.ndarray):
        return ("array", a.shape, a.dtype.str)
    return ("value", a)


def _rebuild(spec):
    kind, *rest = spec
    return np.zeros(rest[0], dtype=np.dtype(rest[1])) if kind == "array" else rest[0]


_child: Any = None  # the compile process (subprocess.Popen), started with the first job


def _compile_in_child(name, args, kwargs, backward):
    """Have the compile process compile the op's kernels into Numba's cache (True), or False when
    it cannot run here (the caller then compiles in this thread)."""
    global _child
    import subprocess
    try:
        if _child is None or _child.poll() is not None:
            env = dict(os.environ, FASTDL_COMPILE="lazy")
            _child = subprocess.Popen([sys.executable, "-c", "from fastdl.kernels.cpu import _compile; "
                                       "_compile.child_main()"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, env=env)
        job = (name, [_spec(a) for a in args], {k: _spec(v) for k, v in kwargs.items()},
               backward is not None)
        data = pickle.dumps(job, protocol=4)
        _child.stdin.write(len(data).to_bytes(8, "little") + data)
        _child.stdin.flush()
        line = _child.stdout.readline()
        return line.strip() == b"ok"
    except (OSError, pickle.PicklingError, ValueError):
        return False


def child_main():
    """The compile process: compile each job read from stdin (lazy mode, in its main thread), answer
    one line per job."""
    import fastdl.kernels.cpu as ops
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(8)
        if len(head) < 8:
            return
        name, specs, kwspecs, with_backward = pickle.loads(stdin.read(int.from_bytes(head, "little")))
        try:
            fn = getattr(ops, name).__wrapped__
            backward = getattr(ops, CTX_FORWARD[name]).__wrapped__ if with_backward else None
            compile_call(name, fn, [_rebuild(a) for a in specs],
                         {k: _rebuild(v) for k, v in kwspecs.items()}, backward)
            answer = b"ok\n"
        except Exception as exc:
            answer = f"failed {type(exc).__name__}: {exc}".replace("\n", " ").encode() + b"\n"
        try:
            stdout.write(answer)
            stdout.flush()
        except OSError:        # the process that asked has exited: the kernels are cached anyway
            return


def _run_worker():
    while True:
        job = _queue.get()
        try:
            if _USE_CHILD and not cached(_key(job[0], job[2], job[3])):
                _compile_in_child(job[0], job[2], job[3], job[4])   # then this thread loads them
            compile_call(*job)
        except Exception as exc:      # the op keeps its reference kernel; say why once
            key = _key(job[0], job[2], job[3])
            with _lock:
                _pending.discard(key)
                _ready[key] = "failed"
            print(f"fastdl: compiling {job[0]} failed, it runs on the reference kernels: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            _queue.task_done()


def _submit(job):
    global _queue, _worker
    with _lock:
        if _worker is None or not _worker.is_alive():
            _queue = queue.Queue()
            _worker = threading.Thread(target=_run_worker, name="fastdl-compile", daemon=True)
            _worker.start()
        _queue.put(job)


def wait(timeout=None):
    """Block until the background compiles queued so far are done (True) or ``timeout`` passed."""
    q = _queue
    if q is None:
        return True
    if timeout is None:
        q.join()
        return True
    import time
    end = time.monotonic() + timeout
    while q.unfinished_tasks and time.monotonic() < end:
        time.sleep(0.01)
    return not q.unfinished_tasks


def _after_fork_in_child():
    global _worker, _queue, _child
    _worker = _queue = _child = None
    _pending.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ---------------------------------------------------------------- the op switch

def switch(name, fn, namespace):
    """``fn`` (op ``name`` of this backend) behind the compile policy; ``namespace`` holds the
    backend's ops (for a ctx forward's backward)."""
    is_ctx_backward = name in CTX_BACKWARD
    dtype_arg = _DTYPE_ARG.get(name, 0)
    from .. import reference as ref
    backward_name = CTX_FORWARD.get(name)

    def reference():
        return getattr(ref, name)

    def op(*args, **kwargs):
        global fallback_calls
        if is_ctx_backward:
            ctx = args[1] if len(args) > 1 else kwargs.get("ctx")
            if isinstance(ctx, ReferenceCtx):
                if len(args) > 1:
                    return reference()(args[0], ctx.ctx, *args[2:], **kwargs)
                return reference()(*args, **dict(kwargs, ctx=ctx.ctx))
            return fn(*args, **kwargs)
        if _mode != "background" and mode() != "background":
            return fn(*args, **kwargs)
        try:
            key = (name, args[dtype_arg].dtype)
        except (IndexError, AttributeError):
            key = _key(name, args, kwargs)
        state = _ready.get(key)
        if state is True:
            return fn(*args, **kwargs)
        if state is None:
            with _lock:
                state = _ready.get(key)
                queued = key in _pending
            if state is None and not queued:
                backward = namespace.get(backward_name) if backward_name else None
                backward = getattr(backward, "__wrapped__", backward)
                if cached(_key(name, args, kwargs)):
                    # in Numba's cache already: load it here, once (milliseconds), rather than in a
                    # worker thread that would share the GIL with the caller's next calls
                    compile_call(name, fn, args, kwargs, backward)
                    return fn(*args, **kwargs)
                with _lock:
                    _pending.add(key)
                _submit((name, fn, tuple(_copy(a) for a in args),
                         {k: _copy(v) for k, v in kwargs.items()}, backward))
            elif state is True:
                return fn(*args, **kwargs)
        fallback_calls += 1
        result = reference()(*args, **kwargs)
        if backward_name is not None:
            return result[0], ReferenceCtx(result[1])
        return result

    op.__wrapped__ = fn  # type: ignore[attr-defined]
    for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(op, attr, getattr(fn, attr))
    try:
        import inspect
        op.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        pass
    return op


def install(namespace, op_names):
    """Put every op of ``op_names`` in ``namespace`` (the backend package) behind the policy."""
    for name in op_names:
        fn = namespace.get(name)
        if callable(fn) and not getattr(fn, "composite", False):
            namespace[name] = switch(name, fn, namespace)


# ---------------------------------------------------------------- warm

def warm_keys():
    """The (op, dtype name) keys ``warm`` compiles."""
    from ..examples import cases
    keys = []
    for name, _, _ in cases("book"):
        for dt in (np.float32, np.float64):
            k = (name, np.dtype(dt).name)
            if k not in keys:
                keys.append(k)
    return keys


def warm(ops=None, progress=None):
    """Compile (or load from the cache) every kernel of this backend for float32 and float64 on the
    example inputs of ``fastdl.kernels.examples`` ("book" sizes, every path), recording each op as
    cached. ``ops``: only these op names. ``progress(done, total, label)`` is called after each
    case. Returns (cases run, keys already cached). Nothing is run when every key is cached."""
    from ..examples import cases
    from . import _chunks
    import fastdl.kernels.cpu as backend_ops
    todo = [(n, lab, make) for n, lab, make in cases("book") if ops is None or n in ops]
    manifest = _load_manifest()
    names = sorted({n for n, _, _ in todo})
    keys = [(n, np.dtype(dt).name) for n in names for dt in (np.float32, np.float64)]
    if all(cached(k, manifest) for k in keys):
        return 0, len(keys)
    runs = [(n, lab, make, dt, forced) for n, lab, make in todo for dt in (np.float32, np.float64)
            for forced in (None, "parallel")]
    old = set_mode("lazy")
    try:
        for i, (n, lab, make, dt, forced) in enumerate(runs):
            with _chunks.forced(forced):
                call = make(backend_ops, dt)
                fn = getattr(call.fn, "__wrapped__", call.fn)
                before = _snapshot()
                fn(*call.args)
                added = _added(before)
            key = (n, np.dtype(dt).name)
            _ready[(n, np.dtype(dt))] = True
            if n in CTX_BACKWARD:
                fwd = next(f for f, b in CTX_FORWARD.items() if b == n)
                _record({key: added, (fwd, key[1]): added})
            else:
                _record({key: added})
            if progress is not None:
                progress(i + 1, len(runs), f"{n} {np.dtype(dt).name} {lab}")
    finally:
        set_mode(old)
    return len(runs), 0
