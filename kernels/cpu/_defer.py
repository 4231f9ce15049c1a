"""Deferred loading of the numba backend under ``FASTDL_COMPILE=background``.

Loading Numba and the compiled kernels costs 0.5-0.7 s of the caller's time even with every
kernel in Numba's cache: Numba's own start-up (its import, its CPU target, SciPy's BLAS lookup),
before the first compiled call. A short script spends less than that in all of its ops. So in
background mode ``fastdl.kernels.cpu`` starts with a stand-in for every op (``install``): it runs
the reference kernel and adds the call's time to a process-wide account. Once the account holds
``load_after()`` seconds (``FASTDL_LOAD_AFTER``, default ``LOAD_AFTER``), the next call loads the
kernels in the caller's thread, once, and from then on ``_compile``'s switch serves every op
(kernels in the cache load in milliseconds; the others compile in the background). The rule is
ski rental: a process never pays more than ``load_after()`` seconds of reference time on top of
what loading at once would cost, and a script that ends first never pays the load. Only calls on
arrays of ``COUNT_FROM`` elements or more count: on smaller ones the compiled kernels gain nothing.

A forward op's ctx made by a stand-in is a ``_compile.ReferenceCtx``, so its backward runs on the
reference even when the kernels loaded in between. ``finish`` (called by
``fastdl.backend.wait_for_kernels``, which every timing path calls after a warm-up) compiles or
loads, in the caller's thread, the kernels of every op that ran on a stand-in.
"""
import os
import sys
import time

from . import _compile
from ._compile import CTX_BACKWARD, CTX_FORWARD, ReferenceCtx

#: seconds of reference work after which a background-mode process loads the compiled kernels
#: (``FASTDL_LOAD_AFTER``); see the module's docstring
LOAD_AFTER = 0.5
#: a call counts towards ``load_after()`` only when its first argument has at least this many
#: elements: below it the compiled kernels save nothing worth loading them for (several ops take
#: NumPy's own expression there: ``NUMPY_BELOW``; the rest is call overhead), so the book's
#: gradient checks (3 images; ~80,000 tiny forward passes) never pay Numba's start-up
COUNT_FROM = 4096
_spent = 0.0            # seconds the deferred ops have spent on the reference in this process
_load_after = None


def load_after():
    """``FASTDL_LOAD_AFTER`` (seconds, read once) or ``LOAD_AFTER``."""
    global _load_after
    if _load_after is None:
        text = os.environ.get("FASTDL_LOAD_AFTER", "").strip()
        try:
            value = float(text) if text else LOAD_AFTER
            if not value >= 0:
                raise ValueError
        except ValueError:
            raise ValueError(f"FASTDL_LOAD_AFTER={text!r} is not a number of seconds >= 0; set it to "
                             f"e.g. {LOAD_AFTER} (0 loads the compiled kernels on the first call)") from None
        _load_after = value
    return _load_after


def wanted():
    """True when the backend's package should not load Numba yet: ``background`` mode with a
    positive ``load_after()``."""
    return _compile.mode() == "background" and load_after() > 0


def install(namespace, op_names, load):
    """Put a stand-in for every op of ``op_names`` in ``namespace`` that runs the reference kernel
    and counts its time; once ``load_after()`` seconds are spent (or the policy is no longer
    ``background``) it calls ``load()``, which replaces the stand-ins, and hands the call on."""
    from .. import reference as ref
    limit = load_after()
    for name in op_names:
        namespace[name] = _stand_in(name, getattr(ref, name), namespace, load, limit)


_load_failed = False
#: (op, dtype) -> the argument specs (``_spec``) of the op's first deferred call
_first_calls: dict = {}


def finish(namespace):
    """After the kernels loaded: compile (or load from the cache) in this thread the kernels of
    every op that ran deferred, so the next calls run them (``fastdl.backend.wait_for_kernels``)."""
    items = list(_first_calls.items())
    _first_calls.clear()
    for (name, dt), (specs, kwspecs) in items:
        key = (name, dt)
        if _compile._ready.get(key) is True:
            continue
        fn = getattr(namespace.get(name), "__wrapped__", None)
        if fn is None:         # a composite op: nothing of its own to compile
            continue
        backward = namespace.get(CTX_FORWARD[name]) if name in CTX_FORWARD else None
        backward = getattr(backward, "__wrapped__", backward)
        args = [_compile._rebuild(a) for a in specs]
        kwargs = {k: _compile._rebuild(v) for k, v in kwspecs.items()}
        try:
            if _compile._USE_CHILD and not _compile.cached(_compile._key(name, args, kwargs)):
                _compile._compile_in_child(name, args, kwargs, backward)
            _compile.compile_call(name, fn, args, kwargs, backward)
        except Exception:      # zeros the op refuses: it compiles on its next real call instead
            pass


def _load(load):
    """Load the compiled kernels (True), or say once why they cannot load and keep the reference
    (False)."""
    global _load_failed
    if _load_failed:
        return False
    try:
        load()
        return True
    except Exception as exc:
        _load_failed = True
        print(f"fastdl: the numba kernels could not load, the ops run on the reference kernels: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return False


def _stand_in(name, reference, namespace, load, limit):
    """The stand-in of op ``name``: ``reference`` with the account kept. When the reference kernel
    has an ``unchecked`` variant (the op without its argument checks, for a caller that made
    them), the stand-in has one too, with the same account."""
    op = _counting(name, reference, namespace, load, limit)
    unchecked = getattr(reference, "unchecked", None)
    if unchecked is not None:
        op.unchecked = _counting(name, unchecked, namespace, load, limit)
    op.deferred = True
    for attr in ("__name__", "__qualname__", "__doc__"):
        setattr(op, attr, getattr(reference, attr, name))
    return op


def _record(name, key, args, kwargs):
    """Keep the argument specs of op ``name``'s first deferred call for ``key`` (``finish``)."""
    if key is None:
        key = _compile._key(name, args, kwargs)
        if key in _first_calls:
            return
    _first_calls[key] = ([_compile._spec(a) for a in args], {k: _compile._spec(v) for k, v in kwargs.items()})


def _counting(name, reference, namespace, load, limit):
    """A function that runs ``reference`` in place of op ``name``: it loads the kernels and hands
    the call on once the account is spent (or the policy changed), records the op's first call
    per dtype, adds the time of calls on ``COUNT_FROM`` elements or more to the account and
    counts the call in ``_compile.fallback_calls``."""
    compile_ = _compile
    clock = time.perf_counter

    if name in CTX_BACKWARD:
        def op(*args, **kwargs):
            global _spent
            mode = compile_._mode
            if _spent >= limit or (mode is not None and mode != "background"):
                if _load(load):
                    return namespace[name](*args, **kwargs)
            ctx = args[1] if len(args) > 1 else kwargs.get("ctx")
            if not isinstance(ctx, ReferenceCtx) and _load(load):     # a ctx of the compiled kernels
                return namespace[name](*args, **kwargs)
            if isinstance(ctx, ReferenceCtx):
                if len(args) > 1:
                    args = (args[0], ctx.ctx, *args[2:])
                else:
                    kwargs = dict(kwargs, ctx=ctx.ctx)
            if args and getattr(args[0], "size", 0) >= COUNT_FROM:
                t0 = clock()
                result = reference(*args, **kwargs)
                _spent += clock() - t0
            else:
                result = reference(*args, **kwargs)
            compile_.fallback_calls += 1
            return result
        return op

    ctx_forward = name in CTX_FORWARD
    dtype_arg = compile_._DTYPE_ARG.get(name, 0)

    def op(*args, **kwargs):                    # type: ignore[no-redef]
        global _spent
        if _spent >= limit or compile_._mode != "background":      # one test on the common path
            mode = compile_._mode
            if (_spent >= limit or (mode is not None and mode != "background")) and _load(load):
                return namespace[name](*args, **kwargs)
        try:
            key = (name, args[dtype_arg].dtype)
        except (IndexError, AttributeError):
            _record(name, None, args, kwargs)
            big = bool(args) and getattr(args[0], "size", 0) >= COUNT_FROM
        else:
            if key not in _first_calls:
                _record(name, key, args, kwargs)
            big = getattr(args[0], "size", 0) >= COUNT_FROM          # args[dtype_arg] exists
        if big:
            t0 = clock()
            result = reference(*args, **kwargs)
            _spent += clock() - t0
        else:
            result = reference(*args, **kwargs)
        compile_.fallback_calls += 1
        if ctx_forward:
            return result[0], ReferenceCtx(result[1])
        return result
    return op
