"""Numba's cache files of the numba backend go when any source compiled into its kernels changes.

Numba keys a kernel's cache entry by the hash of the one file that defines it, so a kernel that
calls an ``@njit`` helper of another file would load with the helper as it was compiled.
``_compile.ensure_fresh`` compares one hash of all the kernel sources with the one stored in
Numba's cache folder and clears that folder's fastdl files when they differ.
"""
import ast
import os
import shutil
import subprocess
import sys
import warnings

import pytest

import fastdl
from fastdl.kernels.cpu import _compile

pytestmark = pytest.mark.skipif("numba" not in fastdl.available_backends(), reason="numba backend not available")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Numba's cache files of the package's modules ``a`` and ``b``, and the manifest
OURS = {"a.f-3.py311.nbi", "a.f-3.py311.1.nbc", "a.A.g-9.py311.nbi", "b.h-1.py311.nbi", "b.h-1.py311.2.nbc",
        _compile.MANIFEST}
#: files of others in the same folder: another module's cache, a module whose name starts like
#: one of ours, Python's own bytecode, an unrelated file
OTHERS = {"other.f-1.py311.nbi", "other.f-1.py311.1.nbc", "ab.f-1.py311.nbi", "a.cpython-311.pyc", "notes.txt"}


def _package(tmp_path):
    """A kernel package folder ``pkg/cpu`` (modules a, b) with ``pkg/scalars.py``, and a cache
    folder holding OURS and OTHERS; returns (package folder, cache folder)."""
    cpu = tmp_path / "pkg" / "cpu"
    cpu.mkdir(parents=True)
    (cpu / "a.py").write_text("from .b import helper\n")
    (cpu / "b.py").write_text("def helper(x):\n    return x + 1\n")
    (tmp_path / "pkg" / "scalars.py").write_text("def relu(v):\n    return v\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    _fill(cache, OURS | OTHERS)
    return cpu, cache


def _fill(folder, names):
    for name in names:
        (folder / name).write_bytes(b"x")


def _drop(cpu, cache):
    return _compile.drop_stale(str(cache), _compile.kernel_sources(str(cpu)), ["a", "b"])


def test_changed_dependency_removes_exactly_the_packages_cache_files(tmp_path):
    cpu, cache = _package(tmp_path)
    assert sorted(_drop(cpu, cache)) == sorted(OURS)            # no stamp yet: nothing is known fresh
    stamp = (cache / _compile.SOURCES_STAMP).read_text().strip()
    assert stamp == _compile.sources_hash(_compile.kernel_sources(str(cpu)))
    _fill(cache, OURS)                                           # compiled again from these sources
    (cpu / "b.py").write_text("def helper(x):\n    return x + 2\n")   # only the helper's file
    assert sorted(_drop(cpu, cache)) == sorted(OURS)
    assert set(os.listdir(cache)) == OTHERS | {_compile.SOURCES_STAMP}
    new = (cache / _compile.SOURCES_STAMP).read_text().strip()
    assert new != stamp and new == _compile.sources_hash(_compile.kernel_sources(str(cpu)))
    _fill(cache, OURS)
    (tmp_path / "pkg" / "scalars.py").write_text("def relu(v):\n    return -v\n")
    assert sorted(_drop(cpu, cache)) == sorted(OURS)             # scalars.py counts too
    _fill(cache, OURS)
    (cpu / "c.py").write_text("")                                # a new module changes the set
    assert sorted(_drop(cpu, cache)) == sorted(OURS)


def test_unchanged_sources_remove_nothing(tmp_path):
    cpu, cache = _package(tmp_path)
    _drop(cpu, cache)
    _fill(cache, OURS)
    before = {n: os.stat(cache / n).st_mtime_ns for n in os.listdir(cache)}
    assert _drop(cpu, cache) is None
    assert {n: os.stat(cache / n).st_mtime_ns for n in os.listdir(cache)} == before
    for name in _compile.NOT_COMPILED:                           # editing the loading code keeps the cache
        (cpu / name).write_text("# edited\n")
    assert _drop(cpu, cache) is None


def test_unremovable_cache_files_warn_once_and_do_not_raise(tmp_path, monkeypatch):
    cpu, cache = _package(tmp_path)
    real_unlink = os.unlink

    def refuse(path, *a, **k):
        if os.path.dirname(str(path)) == str(cache):
            raise PermissionError(13, "Read-only file system", str(path))
        return real_unlink(path, *a, **k)

    monkeypatch.setattr(os, "unlink", refuse)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _drop(cpu, cache) == []
    assert len(caught) == 1 and "could not be removed" in str(caught[0].message)
    assert str(cache) in str(caught[0].message)
    assert set(os.listdir(cache)) == OURS | OTHERS               # no stamp: the next process tries again


def test_unwritable_cache_folder_does_not_raise(tmp_path):
    cpu, cache = _package(tmp_path)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _drop(cpu, not_a_folder) == []
    if hasattr(os, "geteuid") and os.geteuid() != 0:             # permissions do not bind root
        _drop(cpu, cache)
        os.chmod(cache, 0o555)
        try:
            (cpu / "b.py").write_text("changed\n")
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                _drop(cpu, cache)
        finally:
            os.chmod(cache, 0o755)


def test_the_sources_are_the_compiled_kernels_modules():
    """Every module that defines a compiled kernel is hashed; the modules left out call no Numba
    compiler (no njit/jit/overload/... by name, as decorator or call)."""
    from fastdl.kernels.cpu import compiled_kernels
    sources = _compile.kernel_sources()
    names = {os.path.basename(p) for p in sources}
    for key, disp in compiled_kernels().items():
        assert os.path.basename(disp.py_func.__code__.co_filename) in names, key
    assert "scalars.py" in names and "_extrows.py" in names and "_vexp.py" in names
    here = os.path.dirname(sources[0])
    numba_names = {"njit", "jit", "overload", "generated_jit", "cfunc", "vectorize", "guvectorize",
                   "stencil", "register_jitable", "intrinsic", "overload_method"}
    for name in _compile.NOT_COMPILED:
        tree = ast.parse(open(os.path.join(here, name), encoding="utf-8").read())
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
               {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert not used & numba_names, (name, used & numba_names)


_ROUTE_PROBE = """
import os
import fastdl
from fastdl.kernels.cpu import _compile
folder = _compile.numba_cache_folder()
before = os.path.exists(os.path.join(folder, _compile.SOURCES_STAMP))
from fastdl.kernels.cpu import load_kernels, compiled_kernels
load_kernels()
disp = compiled_kernels()["conv_s1._conv_backward_s1_chunk"]
print(_compile.__file__)
print(folder)
print(disp._cache._cache_path)
print(before, os.path.exists(os.path.join(folder, _compile.SOURCES_STAMP)))
"""


def test_both_import_routes_check_numbas_own_folder_when_the_kernels_load(tmp_path):
    """From the checkout (``kernels/`` itself) and from elsewhere (the installed package), in
    background mode (loading deferred): no check at import, the check once the kernels load, in
    the folder Numba caches that route's kernels in."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), FASTDL_COMPILE="background",
               FASTDL_LOAD_AFTER="0.5")
    folders = []
    for cwd in (ROOT, str(tmp_path)):
        r = subprocess.run([sys.executable, "-c", _ROUTE_PROBE], cwd=cwd, env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        src, folder, numba_folder, stamps = r.stdout.strip().splitlines()[-4:]
        assert folder == numba_folder
        assert stamps == "False True"
        folders.append((src, folder))
    assert folders[0][0] == os.path.join(ROOT, "kernels", "cpu", "_compile.py")
    assert folders[1][0] != folders[0][0] and folders[1][1] != folders[0][1]


_SIGMOID_PROBE = """
import numpy as np
import kernels.cpu
from kernels.cpu import activations as a
x = np.linspace(-3.0, 3.0, 7)
out = np.empty_like(x)
a._sigmoid_forward_span(out, x, ())
s = a._sigmoid_forward_span.stats
print(out.tolist(), sum(s.cache_hits.values()), sum(s.cache_misses.values()))
"""


def _sigmoid(pkg, env):
    r = subprocess.run([sys.executable, "-c", _SIGMOID_PROBE], cwd=str(pkg), env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    values, hits, misses = r.stdout.strip().splitlines()[-1].rsplit(" ", 2)
    return values, int(hits), int(misses)


def test_editing_a_helper_file_recompiles_the_kernel_that_calls_it(tmp_path):
    """A copy of the kernel sources, a real Numba cache: sigmoid's span kernel (``_map.py``) calls
    ``exp_nonpos`` of ``_vexp.py``; editing only ``_vexp.py`` must recompile it, and an unrelated
    package's cache file in the shared NUMBA_CACHE_DIR stays."""
    pkg = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "kernels"), pkg / "kernels",
                    ignore=shutil.ignore_patterns("__pycache__", "cuda", "reference"))
    shutil.copytree(os.path.join(ROOT, "kernels", "reference"), pkg / "kernels" / "reference",
                    ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "numba"
    other = cache / "otherpkg_0123" / "mod.f-1.py311.nbi"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"other")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), FASTDL_COMPILE="lazy", PYTHONPATH=str(pkg))
    first = _sigmoid(pkg, env)
    assert first[1:] == (0, 1)                                   # compiled
    again = _sigmoid(pkg, env)
    assert again == (first[0], 1, 0)                             # unchanged: loaded from the cache
    (folder,) = {p.parent for p in cache.rglob("_map.activations._sigmoid_forward_span-*.nbi")}
    neighbour = folder / "otherpkg.f-1.py311.nbi"                # someone else's, in the same folder
    neighbour.write_bytes(b"other")
    vexp = pkg / "kernels" / "cpu" / "_vexp.py"
    text = vexp.read_text()
    assert text.count("    return p * s1 * s2\n") == 2
    vexp.write_text(text.replace("    return p * s1 * s2\n", "    return 2.0 * p * s1 * s2\n", 1))
    edited = _sigmoid(pkg, env)
    assert edited[1:] == (0, 1), edited                          # recompiled, not the stale code
    assert edited[0] != first[0]
    stored = (folder / _compile.SOURCES_STAMP).read_text().strip()
    assert stored == _compile.sources_hash(_compile.kernel_sources(str(pkg / "kernels" / "cpu")))
    assert other.read_bytes() == b"other" and neighbour.read_bytes() == b"other"


_FIGHTER = """
import os, sys, warnings
from fastdl.kernels.cpu import _compile
folder, cpu, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
warnings.simplefilter("error")              # no file may count as unremovable
sources = _compile.kernel_sources(cpu)
for i in range(rounds):
    for name in ("a.f-3.py311.nbi", "a.f-3.py311.1.nbc", "b.h-1.py311.nbi"):
        with open(os.path.join(folder, name), "wb") as f:
            f.write(b"x")
    _compile.drop_stale(folder, sources, ["a", "b"])
"""

_READER = """
import os, sys, time
from fastdl.kernels.cpu import _compile
path = os.path.join(sys.argv[1], _compile.SOURCES_STAMP)
seen, end = set(), time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        with open(path) as f:
            seen.add(f.read())
    except FileNotFoundError:
        pass
print(len(seen), all(len(s) == 65 and s.endswith("\\n") for s in seen))
"""


def test_processes_fighting_over_one_cache_folder_never_crash_nor_half_write(tmp_path):
    """Two processes with different sources (each one's hash stale for the other) clear and stamp
    the same folder 150 times each while a third reads the stamp: nobody fails, every stamp read
    is whole, the others' files stay."""
    cpu_a, cache = _package(tmp_path / "A")
    cpu_b, _ = _package(tmp_path / "B")
    (cpu_b / "b.py").write_text("def helper(x):\n    return x + 2\n")
    env = dict(os.environ)
    run = [sys.executable, "-c"]
    procs = [subprocess.Popen(run + [_READER, str(cache), "3"], env=env, stdout=subprocess.PIPE, text=True)]
    procs += [subprocess.Popen(run + [_FIGHTER, str(cache), str(cpu), "150"], env=env, stderr=subprocess.PIPE,
                               text=True) for cpu in (cpu_a, cpu_b)]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
    count, whole = results[0][0].split()
    assert whole == "True" and int(count) >= 1
    stamp = (cache / _compile.SOURCES_STAMP).read_text().strip()
    assert stamp in {_compile.sources_hash(_compile.kernel_sources(str(c))) for c in (cpu_a, cpu_b)}
    assert OTHERS <= set(os.listdir(cache))
    assert not [n for n in os.listdir(cache) if ".tmp." in n]
