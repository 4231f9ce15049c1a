"""MkDocs hooks of this site (mkdocs.yml, ``hooks:``); they change nothing in fastdl or benchmarks/.

- **Benchmark plots.** The performance page's figures are drawn at build time with matplotlib
  from the result files in ``benchmarks/`` (the newest ``results-<kind>-<date>*.txt`` of each
  kind the figure needs) and added to the built site as SVG files; none is committed. A page asks
  for one with the comment ``<!-- plot: NAME -->`` on a line of its own, which becomes the image
  and a line naming the file(s) it was drawn from and the machine their header describes.
- **The op table.** ``<!-- spec: table -->`` becomes a Markdown table of
  ``fastdl.kernels.spec.TABLE`` (griffe cannot document ``kernels/`` under the name
  ``fastdl.kernels``: it is installed there through ``package-dir``), with, per op, whether the
  numba and cuda backends have a kernel of their own (each op module's ``__all__``, read with
  ``ast`` so that no backend is imported) or use its composite; ``<!-- spec: conventions -->``
  becomes the module docstring (the shapes and conventions of every op).

A result file that is missing or cannot be parsed fails the build: a figure is never silently
dropped or drawn from nothing.
"""
import ast
import io
import posixpath
import re
import statistics
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
KERNELS = ROOT / "kernels"
PLOT_DIR = "assets/benchmarks"          # where the figures go, inside the built site
MARKER = re.compile(r"^<!--\s*(plot|spec):\s*([\w-]+)\s*-->[ \t]*$", re.MULTILINE)

_figures = {}                           # name -> (svg bytes, caption), drawn once per build


# ---------------------------------------------------------------------------------------------
# result files


def newest(kind, suffix=""):
    """The newest ``benchmarks/results-<kind>-<date><suffix>.txt`` (the date sorts by name)."""
    pattern = re.compile(rf"results-{re.escape(kind)}-(\d{{4}}-\d{{2}}-\d{{2}}){re.escape(suffix)}\.txt$")
    found = sorted((m.group(1), p) for p in BENCH.glob("results-*.txt")
                   if (m := pattern.fullmatch(p.name)))
    if not found:
        raise PluginError(f"site_hooks: no benchmarks/results-{kind}-<date>{suffix}.txt to plot")
    return found[-1][1]


def machine(text):
    """A short description of the machine a result file's header names: the CPU (where given),
    the cores or Numba threads, and the BLAS with its kernels (and what the environment forced)."""
    parts = []
    head = next((l for l in text.splitlines() if not l.startswith("#")
                 and re.search(r"\bcores?\b|Numba threads", l)), "")
    cpu = re.search(r",\s*([^,]+?),\s*(\d+) cores", head)
    if cpu and not cpu.group(1).startswith(("Python", "numpy", "numba")):
        parts.append(cpu.group(1).replace("(R)", ""))
    cores = re.search(r"(\d+) cores", head)
    threads = re.search(r"(\d+) [Nn]umba threads", head)
    if cores:
        parts.append(f"{cores.group(1)} cores")
    elif threads:
        parts.append(f"{threads.group(1)} Numba threads")
    blas = next((l for l in text.splitlines() if l.startswith("BLAS:")), "")
    kinds = re.findall(r"(openblas|mkl|blis)\s+([\d.]+)\s+\((\w+)", blas, re.I)
    if kinds:
        parts.append("BLAS " + " + ".join(f"{n} {v} ({k})" for n, v, k in dict.fromkeys(kinds)))
    forced = re.search(r"forced by the environment: \{([^}]*)\}", blas)
    if forced:
        parts.append(forced.group(1).replace("'", "").replace(": ", "="))
    return parts


SWEEP_ROW = re.compile(r"^(?P<op>[a-z_0-9]+)\s+(?P<size>\S.*?)\s+(?P<numpy>\d+\.\d+)\s+"
                       r"(?P<numba>\d+\.\d+)\s+(?P<ratio>\d+\.\d+)\s+\S+\s+\S+(\s+slower)?\s*$")


def parse_sweep(text):
    """{dtype: [(op, size, numpy_us, numba_us, ratio)]} of a ``sweep.py`` output."""
    out, dtype = {}, None
    for line in text.splitlines():
        m = re.match(r"^(float32|float64): medians", line)
        if m:
            dtype = m.group(1)
            out[dtype] = []
            continue
        m = SWEEP_ROW.match(line)
        if m and dtype:
            out[dtype].append((m["op"], m["size"], float(m["numpy"]), float(m["numba"]),
                               float(m["ratio"])))
    if not out or not all(out.values()):
        raise PluginError("site_hooks: no rows found in the sweep results")
    return out


def parse_steps(text):
    """[(run title, {(net, config): ms})] of a ``step_time.py`` output, one entry per run."""
    runs, title, net, cur = [], "", None, None
    for line in text.splitlines():
        m = re.match(r"^##\s+(before|after|run)\b(.*)$", line)
        if m:
            title = (m.group(1) + m.group(2)).strip()
            cur = None
            continue
        m = re.match(r"^(\w+ConvNet) \(", line)
        if m:
            net = m.group(1)[0].upper() + m.group(1)[1:]
            if cur is None:
                cur = {}
                runs.append((title, cur))
            continue
        m = re.match(r"^\s+(numpy|numba|torch) (float32|float64)\s+(\d+\.\d+) ms", line)
        if m and net and cur is not None:
            cur[(net, f"{m.group(1)} {m.group(2)}")] = float(m.group(3))
    if not runs:
        raise PluginError("site_hooks: no training-step times found")
    return runs


def parse_real_use(text):
    """{"mixed": {label: ratio}, "load": {load: (x idle, MLP fastdl/NumPy)}} of ``real_use.py``."""
    mixed, load, section = {}, {}, None
    for line in text.splitlines():
        if line.startswith("== mixed"):
            section = "mixed"
        elif line.startswith("== under load"):
            section = "load"
        elif line.startswith("=="):
            section = None
        elif section == "mixed":
            m = re.match(r"^(\w[\w ]*?)\s+(\d+)\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s*$", line)
            if m:
                mixed[f"{m.group(1)}, {int(m.group(2)):,} rows"] = float(m.group(3))
        elif section == "load":
            m = re.match(r"^(\w+)\s+[\d.]+\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s*$", line)
            if m:
                load[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    if not mixed or not load:
        raise PluginError("site_hooks: the real-use results lack the mixed or under-load table")
    return {"mixed": mixed, "load": load}


# ---------------------------------------------------------------------------------------------
# figures


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"svg.fonttype": "none", "font.size": 12, "axes.spines.top": False,
                         "axes.spines.right": False, "svg.hashsalt": "fastdl"})
    return plt


def _plain_log(ax, axis="y", subs=(1.0,)):
    """Log-scale ticks labelled 0.1, 1, 10 rather than 10^-1 ... (at ``subs`` times each power of
    ten; the other minor ticks unlabelled)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(base=10, subs=subs))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def _ratio(v):
    """A bar's ratio label: two decimals near 1, whole numbers from 10 on."""
    return f"{v:.2f}" if v < 10 else f"{v:.0f}"


def _svg(fig):
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    fig.clf()
    # a fixed id salt and no date: the same results give the same file
    return buf.getvalue().encode("utf-8")


def _caption(paths, texts):
    """Which result file(s) the figure was drawn from, each with the machine its header names."""
    parts = []
    for path, text in zip(paths, texts):
        head = ", ".join(machine(text))
        parts.append(f"`benchmarks/{path.name}`" + (f" ({head})" if head else ""))
    return "Drawn when the site was built, from " + " and ".join(parts) + "."


def plot_sweep():
    plt = _pyplot()
    from fastdl.kernels.spec import BY_NAME
    path = newest("sweep")
    text = path.read_text(encoding="utf-8")
    data = parse_sweep(text)
    families = sorted({BY_NAME[op].family if op in BY_NAME else "other"
                       for rows in data.values() for op, *_ in rows})
    colors = dict(zip(families, plt.get_cmap("tab10").colors))
    dtypes = [d for d in ("float64", "float32") if d in data]
    fig, axes = plt.subplots(1, len(dtypes), figsize=(10, 4.8), sharey=True, squeeze=False)
    for ax, dtype in zip(axes[0], dtypes):
        rows = data[dtype]
        for fam in families:
            pts = [(r[2], r[4]) for r in rows if (BY_NAME[r[0]].family if r[0] in BY_NAME else "other") == fam]
            if pts:
                ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=16, alpha=0.8,
                           color=colors[fam], label=fam)
        ax.axhline(1.0, color="0.3", lw=1, ls="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("numpy reference, µs per call")
        med = statistics.median(r[4] for r in rows)
        ax.set_title(f"{dtype}: {len(rows)} points, median {med:.2f}")
        ax.grid(True, which="major", alpha=0.3)
        _plain_log(ax, "x")
        _plain_log(ax, "y")
    axes[0][0].set_ylabel("numba time / numpy time")
    fig.legend(*axes[0][0].get_legend_handles_labels(), title="op family", loc="upper center",
               bbox_to_anchor=(0.5, 0.0), ncol=5, frameon=False)
    return _svg(fig), _caption([path], [text])


def plot_steps():
    """Training steps of every backend in the newest ``step_time`` file's last run: one machine."""
    plt = _pyplot()
    path = newest("step_time")
    text = path.read_text(encoding="utf-8")
    r = parse_steps(text)[-1][1]
    nets = sorted({k[0] for k in r}, key=lambda n: ("Deep" in n, n))
    order = ["numpy float64", "numpy float32", "numba float64", "numba float32",
             "torch float64", "torch float32"]
    configs = [c for c in order if any((n, c) in r for n in nets)]
    colors = {"numpy": "0.6", "numba": "tab:blue", "torch": "tab:orange"}
    fig, axes = plt.subplots(1, len(nets), figsize=(10, 4.5), squeeze=False)
    for ax, net in zip(axes[0], nets):
        vals = [r.get((net, c), float("nan")) for c in configs]
        bars = ax.bar(range(len(configs)), vals, 0.7,
                      color=[colors[c.split()[0]] for c in configs])
        ax.bar_label(bars, fmt="%.3g", fontsize=8, padding=1)
        ax.set_yscale("log")
        _plain_log(ax, subs=(1.0, 2.0, 5.0))
        ax.set_xticks(range(len(configs)), [c.replace(" ", "\n") for c in configs])
        ax.set_title(f"{net}, batch 100")
        ax.set_ylabel("ms per training step (median, log)")
    return _svg(fig), _caption([path], [text])


def plot_real_use():
    """The newest ``real_use`` file: fastdl next to NumPy, and the MLP step under load."""
    plt = _pyplot()
    path = newest("real_use")
    text = path.read_text(encoding="utf-8")
    now = parse_real_use(text)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    labels = list(now["mixed"])
    bars = ax1.bar(range(len(labels)), [now["mixed"][k] for k in labels], 0.6, color="tab:blue")
    ax1.bar_label(bars, fmt=_ratio, fontsize=8, padding=1)
    ax1.axhline(1.0, color="0.3", lw=1, ls="--")
    ax1.set_yscale("log")
    _plain_log(ax1)
    ax1.set_xticks(list(range(len(labels))),
                   [k.replace(" layer", "\nlayer").replace(" rows", "").replace(", ", "\n")
                    for k in labels], fontsize=9)
    ax1.set_xlabel("function, rows of x")
    ax1.set_ylabel("fastdl / NumPy alone (log)")
    ax1.set_title("x @ W in NumPy, then fastdl")
    loads = list(now["load"])
    bars = ax2.bar(range(len(loads)), [now["load"][k][1] for k in loads], 0.6, color="tab:blue")
    ax2.bar_label(bars, fmt=_ratio, fontsize=8, padding=1)
    ax2.axhline(1.0, color="0.3", lw=1, ls="--")
    ax2.set_yscale("log")
    _plain_log(ax2)
    ax2.set_xticks(list(range(len(loads))), loads, fontsize=10)
    ax2.set_xlabel("the other process")
    ax2.set_ylabel("MLP step: fastdl / NumPy (log)")
    ax2.set_title("chapter-4 MLP step under load")
    return _svg(fig), _caption([path], [text])


PLOTS = {"sweep": plot_sweep, "steps": plot_steps, "real-use": plot_real_use}
ALT = {"sweep": "numba over numpy time ratio of every op at every size, float64 and float32",
       "steps": "training-step times of every backend measured in one run on one machine",
       "real-use": "fastdl next to the reader's own NumPy code, and under load"}


def figure(name):
    if name not in _figures:
        if name not in PLOTS:
            raise PluginError(f"site_hooks: unknown plot {name!r} (known: {', '.join(PLOTS)})")
        _figures[name] = PLOTS[name]()
    return _figures[name]


# ---------------------------------------------------------------------------------------------
# the op table


def backend_ops(folder):
    """The op names a backend package has kernels for: the union of its modules' ``__all__``."""
    names = set()
    for path in sorted((KERNELS / folder).glob("*.py")):
        if path.name.startswith("_"):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if (isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__"
                                                     for t in node.targets)):
                names.update(ast.literal_eval(node.value))
    return names


def spec_table():
    from fastdl.kernels import spec
    numba, cuda = backend_ops("cpu"), backend_ops("cuda")
    rows = ["| op and signature | family | returns | backward of | numba | cuda |",
            "|---|---|---|---|---|---|"]
    for op in spec.TABLE:
        rows.append("| `{}{}` | {} | {} | {} | {} | {} |".format(
            op.name, op.signature, op.family, f"`{op.returns}`" if op.returns else "(in place)",
            f"`{op.backward_of}`" if op.backward_of else "",
            "kernel" if op.name in numba else "composite",
            "kernel" if op.name in cuda else "composite"))
    return "\n".join(rows)


def spec_conventions():
    from fastdl.kernels import spec
    doc = spec.__doc__.strip("\n")
    return "```\n" + doc + "\n```"


# ---------------------------------------------------------------------------------------------
# mkdocs events


def on_pre_build(config, **kwargs):
    _figures.clear()


def on_files(files, config, **kwargs):
    for name in PLOTS:
        svg, _ = figure(name)
        files.append(File.generated(config, f"{PLOT_DIR}/{name}.svg", content=svg))
    return files


def on_page_markdown(markdown, page, config, files, **kwargs):
    def replace(m):
        kind, name = m.group(1), m.group(2)
        if kind == "plot":
            _, caption = figure(name)
            src = posixpath.relpath(f"{PLOT_DIR}/{name}.svg",
                                    posixpath.dirname(page.file.src_uri) or ".")
            return f"![{ALT.get(name, name)}]({src})\n\n*{caption}*"
        if name == "table":
            return spec_table()
        if name == "conventions":
            return spec_conventions()
        raise PluginError(f"site_hooks: unknown marker {m.group(0)} in {page.file.src_uri}")
    return MARKER.sub(replace, markdown)
