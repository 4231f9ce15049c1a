"""The notebooks of examples/ run top to bottom through a real Jupyter kernel and print what
they claim; they are committed without outputs. The version is written once (fastdl.__version__,
which pyproject.toml reads) and CHANGELOG.md has a section for it."""
import ast
import importlib.metadata
import os
import re

import pytest

import fastdl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
NOTEBOOKS = ["tour.ipynb", "backends.ipynb"]
DIST = "fastdl-book"   # the distribution name in pyproject.toml ("fastdl" on PyPI is another project)


def execute(name, monkeypatch):
    """Run examples/<name> in a python3 kernel (working directory examples/) and return it."""
    nbformat = pytest.importorskip("nbformat", reason="the test extras install nbformat")
    nbclient = pytest.importorskip("nbclient", reason="the test extras install nbclient")
    monkeypatch.setenv("MPLBACKEND", "Agg")      # no display; %matplotlib inline still draws PNGs
    nb = nbformat.read(os.path.join(EXAMPLES, name), as_version=4)
    # timeout is per cell; the first numba call may compile kernels on a cold cache
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": EXAMPLES}})
    client.execute()          # raises CellExecutionError at the first cell that fails
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    return nb


def text_of(nb):
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")


def number_after(label, text):
    m = re.search(re.escape(label) + r"\s*([-+0-9.eE]+)", text)
    assert m, f"the notebook did not print {label!r}"
    return float(m.group(1))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_are_committed_without_outputs(name):
    nbformat = pytest.importorskip("nbformat", reason="the test extras install nbformat")
    nb = nbformat.read(os.path.join(EXAMPLES, name), as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, \
                (f"{name}: clear the outputs before committing (Jupyter: Clear Outputs of All Cells, "
                 "or jupyter nbconvert --clear-output --inplace)")


def test_tour_trains_and_draws_its_figures(monkeypatch):
    nb = execute("tour.ipynb", monkeypatch)
    text = text_of(nb)
    # Seeded: 80 Adam steps (lr 0.001, batch 25) on 1,000 images. On the 10,000 test images this
    # gave 0.8244 on both the numba and the numpy backend (2026-11-29); the floor leaves room for
    # the rounding of other CPUs and BLAS libraries, and is far above chance (0.1) and above the
    # 0.17 the same run had after 16 steps, so a network that does not learn fails it.
    acc = number_after("final test accuracy:", text)
    assert 0.75 < acc <= 1.0
    assert "misclassified result" in text
    pairs = ast.literal_eval(text.split("{view index: (label, inference), ...}")[1].strip().splitlines()[0])
    assert len(pairs) == 20 and all(label != guess for label, guess in pairs.values())
    # learning curves, the filters before and after, the misclassified digits
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 4


def test_backends_agree_and_are_timed(monkeypatch):
    nb = execute("backends.ipynb", monkeypatch)
    text = text_of(nb)
    assert "available backends:" in text and "'numpy'" in text and "'numba'" in text
    # The backends differ by rounding only: measured 7.5e-09 (float32) and 6.9e-18 (float64) on
    # gradient entries up to 0.05, that is 1.5e-07 and 1.4e-16 of the largest (about one epsilon)
    assert number_after("max difference (float32):", text) < 1e-4
    assert number_after("relative to the largest gradient entry (float32):", text) < 1e-4
    assert number_after("max difference (float64):", text) < 1e-10
    assert number_after("relative to the largest gradient entry (float64):", text) < 1e-12
    assert "this machine" in text     # the timings are labelled as this machine's, never asserted
    for name in ("numpy", "numba"):
        assert re.search(rf"^\s+{name}\s+[0-9.]+ ms\s+[0-9.]+ ms\s+[0-9.]+ ms$", text, re.M)


# -- the version, written once ---------------------------------------------------------------

def test_the_version_is_the_installed_distributions():
    # pyproject.toml reads fastdl.__version__ (dynamic); an install records it in the metadata
    assert fastdl.__version__ == importlib.metadata.version(DIST)


def test_pyproject_does_not_write_the_version_itself():
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    assert not re.search(r'^version\s*=\s*"', text, re.M), "pyproject.toml writes the version itself"
    assert re.search(r'^dynamic\s*=\s*\[\s*"version"\s*\]', text, re.M)
    assert re.search(r'^version\s*=\s*\{\s*attr\s*=\s*"fastdl\.__version__"\s*\}', text, re.M)


def test_the_changelog_has_a_section_for_the_version():
    with open(os.path.join(ROOT, "CHANGELOG.md"), encoding="utf-8") as f:
        text = f.read()
    assert re.search(r"^## \[Unreleased\]$", text, re.M)
    assert re.search(rf"^## \[{re.escape(fastdl.__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, re.M), \
        f"CHANGELOG.md has no '## [{fastdl.__version__}] - YYYY-MM-DD' section"
