"""The documentation site (docs/, mkdocs.yml): its examples run and print what the pages say.

Every ```python block of a page under docs/ is run, the page's blocks in order in one fresh
namespace, in a subprocess of its own (so a page that switches backend or installs the book's
import hook cannot touch another page or this process). When the next fenced block after a python
block is a ```text block, that block is the expected output: what the python block printed must
be equal to it, character for character (trailing blank lines aside). A python block that cannot
run here (it needs a GPU, say) is preceded by an HTML comment ``<!-- not run: REASON -->``, which
the site does not show; the reason must be given.

The pages run on the default backend unless FASTDL_BACKEND says otherwise, as a reader's code
would. The site itself is built once with ``mkdocs build --strict`` (the docs extra installs
mkdocs), and the built HTML is checked: every name a public module exports has an entry on the
API pages, the op table lists every op of the contract, and the performance page's plots, drawn
from benchmarks/results-*.txt by docs/_ext/site_hooks.py at build time, are there.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))

# A fenced block: the opening fence with its info string, the body, the closing fence.
# Blocks may be indented (inside a list item); the body loses that indentation.
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+)(?P<info>[^\n`]*)\n(?P<body>.*?)"
                   r"^(?P=indent)(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>[^>]*?)\s*-->\s*$")


def blocks(text):
    """The page's fenced blocks as (language, body, line, skip_reason) in order."""
    out = []
    for m in FENCE.finditer(text):
        lang = m.group("info").strip().split(" ")[0].lower()
        before = text[:m.start()].rstrip("\n")
        skip = NOT_RUN.search(before)
        body = textwrap.dedent(m.group("body"))
        out.append((lang, body, text.count("\n", 0, m.start()) + 1,
                    skip.group("reason") if skip else None))
    return out


def examples(page):
    """[(line, code, expected output or None)] of the page's python blocks that run."""
    found = blocks(page.read_text(encoding="utf-8"))
    out = []
    for i, (lang, body, line, skip) in enumerate(found):
        if lang != "python":
            continue
        if skip is not None:
            assert skip, f"{page.name}:{line}: a 'not run' block must say why"
            continue
        nxt = found[i + 1] if i + 1 < len(found) else None
        expected = nxt[1] if nxt is not None and nxt[0] == "text" else None
        out.append((line, body, expected))
    return out


# Runs a page's blocks in one namespace in a fresh interpreter; prints, as JSON, what each printed.
RUNNER = r"""
import contextlib, io, json, sys, traceback
blocks = json.loads(sys.stdin.read())
namespace = {"__name__": "__main__"}
results = []
for line, code in blocks:
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            exec(compile(code, f"<docs block at line {line}>", "exec"), namespace)
    except BaseException:
        results.append({"line": line, "out": buf.getvalue(), "error": traceback.format_exc()})
        break
    results.append({"line": line, "out": buf.getvalue(), "error": None})
sys.__stdout__.write("\n@@RESULTS@@" + json.dumps(results))
"""


def run_page(page):
    runnable = examples(page)
    env = dict(os.environ)
    env.setdefault("PYTHONHASHSEED", "0")
    proc = subprocess.run([sys.executable, "-c", RUNNER],
                          input=json.dumps([[line, code] for line, code, _ in runnable]),
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert "@@RESULTS@@" in proc.stdout, f"{page.name}: the runner failed:\n{proc.stderr[-3000:]}"
    results = json.loads(proc.stdout.rsplit("@@RESULTS@@", 1)[1])
    return runnable, results


PAGES_WITH_CODE = [p for p in PAGES if examples(p)]


def test_pages_found():
    names = {p.relative_to(DOCS).as_posix() for p in PAGES}
    assert {"index.md", "chapters.md", "backends.md", "book.md", "differences.md", "architecture.md",
            "numba.md", "cuda.md", "performance.md", "reliability.md", "search.md"} <= names
    assert any(n.startswith("reference/") for n in names)
    assert PAGES_WITH_CODE, "no page has a python example"


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_examples(page):
    runnable, results = run_page(page)
    for (line, code, expected), res in zip(runnable, results):
        where = f"docs/{page.relative_to(DOCS).as_posix()}, block at line {line}"
        assert res["error"] is None, f"{where} raised:\n{res['error']}"
        if expected is not None:
            assert res["out"].rstrip("\n") == expected.rstrip("\n"), (
                f"{where} printed\n{res['out']}\nbut the page says\n{expected}")
    assert len(results) == len(runnable)


def test_expected_output_follows_only_python():
    """A ```text block belongs to the python block before it: none may stand after anything else
    (it would be output that no test checks)."""
    for page in PAGES:
        found = blocks(page.read_text(encoding="utf-8"))
        for i, (lang, _, line, _) in enumerate(found):
            if lang == "text":
                prev = found[i - 1] if i else None
                assert prev is not None and prev[0] == "python" and prev[3] is None, (
                    f"{page.name}:{line}: a text block that follows no run python block")


def test_every_printing_block_is_checked():
    """A python block that prints must be followed by its expected output, so that every
    number on the site is checked."""
    for page in PAGES_WITH_CODE:
        for line, code, expected in examples(page):
            if re.search(r"\bprint\(", code):
                assert expected is not None, (
                    f"{page.name}:{line}: prints, but no ```text block follows with the output")


# The public modules; every name each one exports must have an entry on the site's API pages.
PUBLIC_MODULES = ["fastdl", "fastdl.functions", "fastdl.gradient", "fastdl.perceptron",
                  "fastdl.layers", "fastdl.optimizers", "fastdl.nets", "fastdl.trainer",
                  "fastdl.callbacks", "fastdl.datasets", "fastdl.images", "fastdl.util",
                  "fastdl.search", "fastdl.backend", "fastdl.fusion", "fastdl.book"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built once with ``mkdocs build --strict`` (its folder), for the tests below."""
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (python -m pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("docs") / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_mkdocs_build_strict(site):
    assert (site / "index.html").is_file()
    assert (site / "search" / "search_index.json").is_file()


def public_names(module_name):
    """What the module exports: its ``__all__``, or, without one, the names it defines itself
    at top level (functions, classes, assignments) that do not start with an underscore;
    names it merely imports are not its API."""
    import ast
    import importlib
    mod = importlib.import_module(module_name)
    if hasattr(mod, "__all__"):
        return list(mod.__all__)
    tree = ast.parse(Path(mod.__file__).read_text(encoding="utf-8"))
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return [n for n in dict.fromkeys(names) if not n.startswith("_")]


def test_every_public_name_has_a_reference_entry(site):
    """Each name a public module exports has an entry on the API pages: an element with
    ``id="<module>.<name>"`` (the anchor mkdocstrings gives it) in the built reference/."""
    html = "\n".join(p.read_text(encoding="utf-8") for p in (site / "reference").rglob("*.html"))
    anchors = set(re.findall(r'id="([^"]+)"', html))
    missing = [f"{m}.{n}" for m in PUBLIC_MODULES for n in public_names(m)
               if f"{m}.{n}" not in anchors]
    assert not missing, ("public names without an entry on the site's API pages (docs/reference/"
                         "): " + ", ".join(missing))
    for module in PUBLIC_MODULES:
        assert module in anchors, f"{module} has no API page"


def test_op_table_lists_every_op(site):
    """The op contract page shows every op of ``fastdl.kernels.spec.TABLE``, generated at build."""
    from fastdl.kernels.spec import TABLE
    page = (site / "reference" / "kernels" / "index.html").read_text(encoding="utf-8")
    missing = [op.name for op in TABLE if f"<code>{op.name}(" not in page]
    assert not missing, f"ops missing from the op table: {missing}"


def test_performance_plots_are_built(site):
    """The performance page's figures are drawn from benchmarks/results-*.txt at build time: each
    image the page shows exists in the built site, is a non-empty SVG, and its caption names the
    result file it was drawn from."""
    page = (site / "performance" / "index.html").read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]*src="([^"]+\.svg)"', page)
    assert len(images) >= 3, f"the performance page shows {len(images)} plots"
    for src in images:
        path = (site / "performance" / src).resolve()
        assert path.is_file() and path.stat().st_size > 1000, f"{src} is missing or empty"
        assert path.read_text(encoding="utf-8").lstrip().startswith(("<?xml", "<svg"))
    assert len(re.findall(r"benchmarks/results-[\w-]+\.txt", page)) >= len(images)


# -- the API pages' parameter entries ----------------------------------------------------------


def api_objects():
    """[(public path, griffe object, real object)] of everything the API pages document: each
    public module's public names, and the public methods of its classes. The docstrings are
    loaded by griffe, the parser mkdocstrings uses, as the site loads them (numpy style)."""
    import importlib
    griffe = pytest.importorskip("griffe")
    loader = griffe.GriffeLoader(search_paths=[str(ROOT)], docstring_parser=griffe.Parser.numpy)
    loader.load("fastdl")
    loader.load("kernels")
    loader.resolve_aliases(implicit=False, external=False)
    found = [("fastdl.util.conv_output_size", loader.modules_collection["kernels.shapes"]
              ["conv_output_size"], importlib.import_module("fastdl.util").conv_output_size)]
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        g_module = loader.modules_collection[module_name]
        for name in public_names(module_name):
            g_obj, real = g_module[name], getattr(module, name)
            try:
                g_obj = g_obj.final_target if g_obj.is_alias else g_obj
            except griffe.AliasResolutionError:
                continue      # kernels/ under the name fastdl.kernels: conv_output_size, above
            found.append((f"{module_name}.{name}", g_obj, real))
            if g_obj.is_class:
                for member, g_member in g_obj.members.items():
                    g_member = g_member.final_target if g_member.is_alias else g_member
                    if member.startswith("_") or not g_member.is_function:
                        continue
                    found.append((f"{module_name}.{name}.{member}", g_member,
                                  getattr(real, member)))
    return found


def documented_parameters(g_obj):
    """The entries of the object's Parameters sections, as the site shows them."""
    from griffe import DocstringSectionKind
    if g_obj.docstring is None:
        return []
    sections = g_obj.docstring.parse("numpy")
    return [p for s in sections
            if s.kind in (DocstringSectionKind.parameters, DocstringSectionKind.other_parameters)
            for p in s.value]


def test_every_documented_default_is_the_real_one():
    """Every default the API pages show for a parameter (the docstring's ``default ...``, else
    the one griffe takes from the signature) equals the default in ``inspect.signature`` of the
    real object; every documented parameter is one of the signature's."""
    import inspect
    problems, checked = [], 0
    for path, g_obj, real in api_objects():
        entries = documented_parameters(g_obj)
        if not entries:
            continue
        try:
            signature = inspect.signature(real)
        except (TypeError, ValueError):
            continue                              # a builtin without a signature
        namespace = vars(inspect.getmodule(real) or sys.modules[real.__module__])
        for entry in entries:
            name = entry.name.lstrip("*")
            if name not in signature.parameters:
                problems.append(f"{path}: documents {name!r}, not in {signature}")
                continue
            shown, actual = entry.value, signature.parameters[name].default
            if shown is None:
                continue                          # no default shown
            checked += 1
            if actual is inspect.Parameter.empty:
                problems.append(f"{path}: {name} shown with default {shown}, but it has none")
                continue
            try:
                value = eval(str(shown), dict(namespace))
            except Exception:
                value = str(shown)
                same = value in (repr(actual), str(actual))
            else:
                same = value is actual or (type(value) is type(actual) and value == actual)
            if not same:
                problems.append(f"{path}: {name} shown with default {shown}, really {actual!r}")
    assert checked > 50, f"only {checked} defaults found: the docstrings were not parsed"
    assert not problems, "\n".join(problems)


COMBINED = re.compile(r"^\s*[\w*]+\s*,\s*[\w.*]+.*\s:\s")


def test_parameter_and_attribute_entries_name_one_thing_each():
    """``a, b : int`` in a docstring gives both entries the first one's default on the site (and
    an attribute entry named ``a, b``): every entry of a Parameters or Attributes section names
    one parameter."""
    problems = []
    for path, g_obj, _ in api_objects():
        if g_obj.docstring is None:
            continue
        section = None
        for line in g_obj.docstring.value.splitlines():
            if re.fullmatch(r"\s*-{3,}\s*", line):
                continue
            if re.fullmatch(r"\s*(Parameters|Other Parameters|Attributes|Returns|Raises|"
                            r"Notes|Examples|See Also|Yields|Warns|Warnings)\s*", line):
                section = line.strip()
                continue
            if section in ("Parameters", "Other Parameters", "Attributes") and COMBINED.match(line):
                problems.append(f"{path} ({section}): {line.strip()}")
    assert not problems, "\n".join(sorted(set(problems)))


def test_api_pages_show_annotated_signatures_and_no_empty_entries(site):
    """The signatures carry their annotations (one parameter a line when long), SimpleConvNet's
    output_size shows 10, and no attribute entry is an empty box repeating its name."""
    import html as html_module
    nets = (site / "reference" / "nets" / "index.html").read_text(encoding="utf-8")
    text = html_module.unescape(re.sub(r"<[^>]+>", "", nets))
    assert "hidden_size: int = 100,\n    output_size: int = 10," in text
    simple = text[text.index("SimpleConvNet(\n"):]
    entry = re.search(r"output_size\s*\(int, default:\s*(\S+)\s*\)", simple)
    assert entry and entry.group(1) == "10", simple[:1500]
    empty = []
    for page in (site / "reference").rglob("*.html"):
        for box in re.split(r'<div class="doc doc-object doc-attribute">', page.read_text(
                encoding="utf-8"))[1:]:
            anchor = re.search(r'id="([^"]+)"', box).group(1)
            contents = re.search(r'<div class="doc doc-contents[^"]*">(.*?)</div>', box, re.S)
            if contents is None or not re.sub(r"<[^>]+>", "", contents.group(1)).strip():
                empty.append(anchor)
    assert not empty, f"attribute entries without a description: {empty}"
    raw = [p.parent.name for p in (site / "reference").rglob("*.html")
           if re.search(r":(func|mod|class|meth|attr):`", html_module.unescape(
               re.sub(r"<[^>]+>", "", p.read_text(encoding="utf-8"))))]
    assert not raw, f"raw reST roles (:func:`...`) on the API pages: {raw}"
