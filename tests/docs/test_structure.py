"""The shape of the package: no import circle inside fastdl/, no module over 600 lines.

Both are read from the source files (nothing is imported): a circle is a loop of imports between
fastdl's own modules, counting every import that can run (at module level or inside a function),
and not the ones under ``if TYPE_CHECKING:`` (annotations only, never run).
"""
import ast
import os

import fastdl

PACKAGE = os.path.dirname(os.path.abspath(fastdl.__file__))
MAX_LINES = 600


def _modules(root):
    """{dotted name: path} of the .py files under root, the package named after root's folder."""
    base = os.path.basename(root)
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), root)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                found[".".join([base] + rel)] = os.path.join(folder, name)
    return found


def _type_checking_only(node):
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree):
    """The Import / ImportFrom nodes of a module that can run (those under TYPE_CHECKING left out)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking_only(child):
                todo.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            todo.append(child)


def import_graph(root):
    """{module: set of fastdl modules it imports}: ``from X import n`` counts as importing X.n
    when that is a module of the package, else X."""
    modules = _modules(root)
    graph = {}
    for name, path in modules.items():
        is_pkg = os.path.basename(path) == "__init__.py"
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        edges = set()
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    parts = name.split(".")
                    keep = len(parts) - node.level + (1 if is_pkg else 0)
                    source = ".".join(parts[:keep] + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source
                           for a in node.names]
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def circles(graph):
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _describe(graph, group):
    members = set(group)
    return "; ".join(f"{m} -> {', '.join(sorted(graph[m] & members))}" for m in group)


def long_modules(root, limit=MAX_LINES):
    """[(relative path, lines)] of the .py files under root over limit lines, longest first."""
    out = []
    for path in _modules(root).values():
        with open(path, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n > limit:
            out.append((os.path.relpath(path, os.path.dirname(root)), n))
    return sorted(out, key=lambda item: -item[1])


def test_the_graph_sees_relative_absolute_lazy_imports_and_skips_type_checking(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import a\n")              # lazy: counts
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n")
    graph = import_graph(str(pkg))
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.sub.b"}, "pkg.sub": set(), "pkg.sub.b": {"pkg.a"},
                     "pkg.c": set()}
    assert circles(graph) == [["pkg.a", "pkg.sub.b"]]
    (pkg / "c.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert long_modules(str(pkg)) == [(os.path.join("pkg", "c.py"), MAX_LINES + 1)]


def test_no_import_circle_inside_fastdl():
    graph = import_graph(PACKAGE)
    assert "fastdl.layers" in graph and "fastdl.fusion" in graph["fastdl.profiler"]   # the graph is read
    found = circles(graph)
    assert not found, "import circles inside fastdl/ (module -> the modules of its circle it imports): " + \
        " | ".join(_describe(graph, g) for g in found)


def test_no_module_in_fastdl_is_over_600_lines():
    found = long_modules(PACKAGE)
    assert not found, f"modules over {MAX_LINES} lines: " + ", ".join(f"{p} ({n})" for p, n in found)
