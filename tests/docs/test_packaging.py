"""The package as it is distributed: the wheel's file list, and install commands that work as written.

The wheel is built (without build isolation, from a copy of the sources in a temporary folder, so
the checkout is untouched) in about a second; .ci/wheel_smoke.sh installs one into a fresh venv.
"""
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("fastdl", "kernels"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out),
                        str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (path,) = out.glob("*.whl")
    return path, r.stdout + r.stderr


def _sources(folder, prefix):
    return {prefix + p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).rglob("*.py")
            if "__pycache__" not in p.parts}


def _source_of(name):
    """The checkout's file a wheel entry comes from (fastdl/kernels/... from kernels/...)."""
    if name.startswith("fastdl/kernels/"):
        return ROOT / "kernels" / name[len("fastdl/kernels/"):]
    return ROOT / name


def test_wheel_holds_fastdl_kernels_data_and_marker(wheel):
    path, _ = wheel
    names = set(zipfile.ZipFile(path).namelist())
    expected = _sources("fastdl", "fastdl/") | _sources("kernels", "fastdl/kernels/")
    assert expected - names == set(), "sources missing from the wheel (a package not listed in " \
        "pyproject.toml's [tool.setuptools] packages?)"
    sample = {"fastdl/datasets/mnist_sample/" + p.name
              for p in (ROOT / "fastdl/datasets/mnist_sample").iterdir() if p.suffix in (".gz", ".md")}
    assert len(sample) == 5 and sample <= names
    assert "fastdl/py.typed" in names
    dist_info = {n.split("/", 1)[1] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    assert {"METADATA", "entry_points.txt", "RECORD"} <= dist_info
    others = names - expected - sample - {"fastdl/py.typed"} - {n for n in names if ".dist-info/" in n}
    stray = [n for n in others if "__pycache__" in n or not _source_of(n).is_file()]
    assert stray == [], f"files in the wheel that are no source file or package data: {sorted(stray)}"
    assert not any(n.startswith(("kernels/", "tests/", "benchmarks/")) for n in names)


def test_wheel_metadata(wheel):
    path, log = wheel
    with zipfile.ZipFile(path) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        entry = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))).decode()
    import fastdl
    assert f"\nVersion: {fastdl.__version__}\n" in meta
    assert "Name: fastdl-book" in meta
    for dep in ("numpy", "numba", "scipy", "threadpoolctl", "tqdm"):
        assert re.search(rf"^Requires-Dist: {dep}\b", meta, re.M), dep
    assert "fastdl = fastdl.cli:main" in entry
    assert "deprecated" not in log.lower() and "would be ignored" not in log.lower(), log[-2000:]


#: ``pip install`` of this project by its distribution name: the name is not on the registry, so
#: such a command fails outside a clone ("fastdl-book[...]" without a path).
_BY_NAME = re.compile(r"pip install\s+(?:-\S+\s+)*['\"]?fastdl-book\b")


def test_install_commands_work_from_a_clone():
    """Every install command in the README, docs/ and the package's texts (``--help``, errors,
    ``fastdl info``) installs from the clone (``-e ".[extra]"``) or names the dependency itself."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "fastdl").rglob("*.py")), *sorted((ROOT / "kernels").rglob("*.py"))]
    bad = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
           for p in files for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
           if _BY_NAME.search(line)]
    assert bad == [], "install by the distribution name (not on the registry): \n" + "\n".join(bad)


def test_the_check_sees_a_command_by_name():
    assert _BY_NAME.search("""python -m pip install "fastdl-book[distributed]" on every machine""")
    assert _BY_NAME.search("needs: pip install 'fastdl-book[cuda]'")
    assert not _BY_NAME.search('python -m pip install -e ".[cuda]"')
