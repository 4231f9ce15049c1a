"""Figures (fastdl train --plot, the search's figures): written atomically, with the permissions and
the format their name asks for; a figure that fails to draw leaves the old file."""
import os

import pytest

from tests.files.conftest import POSIX, mode_of, plot


def test_plot_is_atomic_and_keeps_its_format(tmp_path):
    from fastdl import _files
    stale = tmp_path / f".c.png.{_files._host()}.999999999.0123456789ab.tmp"    # no such PID
    stale.write_bytes(b"left by a killed run")
    plot(tmp_path / "c.png")
    plot(tmp_path / "c.pdf")
    plot(tmp_path / "curves")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "c.pdf").read_bytes()[:5] == b"%PDF-"
    assert (tmp_path / "curves").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["c.pdf", "c.png", "curves"]


def test_the_search_figures_are_saved_as_the_train_plot_is(tmp_path, umask):
    """fastdl._files.save_figure writes the figures of fastdl search too: atomic, format from the
    name (PNG for a name matplotlib does not write), permissions from the umask. With no trial to
    show (all failed), the scatter plot on log axes is still drawn."""
    pytest.importorskip("matplotlib")
    from fastdl.search import _plots
    umask(0o027)
    _plots.curves([], str(tmp_path / "curves.svg"))
    _plots.scatter([], {"lr": (1e-6, 1e-2, "log")}, [], str(tmp_path / "scatter.dat"))
    _plots.scatter([], {"lr": (1e-6, 1e-2, "log"), "weight_decay": (1e-8, 1e-4, "log")}, [],
                   str(tmp_path / "scatter.dat"))
    assert (tmp_path / "curves.svg").read_bytes().startswith(b"<?xml")
    assert (tmp_path / "scatter.dat").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if POSIX:
        assert mode_of(tmp_path / "curves.svg") == mode_of(tmp_path / "scatter.dat") == 0o640
    assert sorted(os.listdir(tmp_path)) == ["curves.svg", "scatter.dat"]


def test_a_figure_that_fails_to_draw_leaves_the_old_file(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from fastdl._files import save_figure
    target = tmp_path / "c.png"
    target.write_bytes(b"the old curves")
    fig = Figure()

    def savefig(f, **kw):
        f.write(b"half a png")
        raise RuntimeError("no renderer")
    fig.savefig = savefig
    with pytest.raises(RuntimeError, match="no renderer"):
        save_figure(fig, target)
    assert target.read_bytes() == b"the old curves" and os.listdir(tmp_path) == ["c.png"]
