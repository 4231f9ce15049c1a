"""fastdl.explain / fastdl explain: the page's numbers are the layers' own (parsed back from the
JSON the page embeds), the gradient check catches a wrong backward, chapter 5's apple graphs
hold the book's values, bad input is one line with nothing written, and in a real headless
Chromium the page renders offline without console errors and opens a layer's formula on click
(screenshots kept for a person to look at)."""
import base64
import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import fastdl
from fastdl import layers as L
from fastdl.cli import main
from fastdl.nets import MultiLayerNetExtend, SimpleConvNet, TwoLayerNet

ROOT = Path(__file__).resolve().parents[2]


def page_data(path):
    text = Path(path).read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="fastdl-data">(.*?)</script>', text, re.S)
    assert m, "the page has no fastdl-data script"
    return json.loads(m.group(1))


def tiny_conv(dtype=np.float64):
    np.random.seed(0)
    return SimpleConvNet(input_dim=(1, 8, 8), conv_param={"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1},
                         hidden_size=6, output_size=3, weight_init_std=0.3, dtype=dtype)


def batch(shape, k, n=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n,) + shape), rng.integers(0, k, n)


class AllKinds:
    """A network of one's own with every layer kind of fastdl.layers and one of its own."""

    class Scale:                       # a layer fastdl has no written rule for
        def forward(self, x):
            self.x = x
            return 3.0 * x

        def backward(self, dout):
            return 3.0 * dout

    def __init__(self, rng):
        f = lambda *s: rng.standard_normal(s) * 0.5  # noqa: E731
        self.layers = OrderedDict([
            ("conv", L.Convolution(f(2, 1, 3, 3), f(2), stride=1, pad=1)), ("relu", L.Relu()),
            ("maxpool", L.Pooling(2, 2, stride=2)), ("avgpool", L.AvgPooling(2, 2, stride=1)),
            ("affine", L.Affine(f(2 * 2 * 2, 5), f(5))), ("bn", L.BatchNormalization(np.ones(5) + f(5), f(5))),
            ("sigmoid", L.Sigmoid()), ("dropout", L.Dropout(0.3)), ("scale", self.Scale()),
            ("out", L.Affine(f(5, 3), f(3)))])
        self.last_layer = L.SoftmaxWithLoss()


# -- the numbers -----------------------------------------------------------------------------------

def test_import_fastdl_does_not_import_explain():
    code = "import sys, fastdl; assert 'fastdl.explain' not in sys.modules; print(callable(fastdl.explain))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_page_holds_the_layers_numbers(tmp_path, backend_name):
    net = tiny_conv()
    x, t = batch((1, 8, 8), 3)
    before = {k: np.array(v) for k, v in net.params.items()}
    path = fastdl.explain(net, x, t, path=tmp_path / "r.html")
    d = page_data(path)
    assert d["backend"] == backend_name
    # shapes on the edges: the input, then each layer's output, as the layers compute them
    assert [e["shape"] for e in d["edges"]] == [[4, 1, 8, 8], [4, 2, 6, 6], [4, 2, 6, 6], [4, 2, 3, 3],
                                                 [4, 6], [4, 6], [4, 3]]
    assert [layer["kind"] for layer in d["layers"]] == ["Convolution", "Relu", "Pooling", "Affine", "Relu", "Affine"]
    # the loss and the gradients are the network's own (the same batch, training mode)
    with fastdl.using_backend("numpy"):
        ref = copy.deepcopy(net)
        loss = float(ref.loss(x, t))
        grads = {k: np.asarray(v) for k, v in ref.gradient(x, t).items()}
        scores = np.asarray(ref.predict(x))
    assert d["loss"] == pytest.approx(loss, rel=1e-9)
    last = d["layers"][-1]
    assert last["grads"]["dW"]["shape"] == [6, 3]
    np.testing.assert_allclose(last["grads"]["dW"]["values"], grads["W3"].ravel(), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(last["grads"]["db"]["values"], grads["b3"].ravel(), rtol=1e-7, atol=1e-12)
    assert d["layers"][0]["grads"]["dW"]["norm"] == pytest.approx(np.linalg.norm(grads["W1"]), rel=1e-7)
    assert d["edges"][-1]["values"] == pytest.approx(scores.ravel().tolist(), rel=1e-7)
    assert d["edges"][-1]["forward"]["mean"] == pytest.approx(scores.mean(), rel=1e-7)
    assert sum(d["edges"][1]["forward"]["hist"]) == 4 * 2 * 6 * 6
    # the rule of the first Affine, written with this call's shapes
    assert "dW (18, 6) = xᵀ (18, 4) · dout (4, 6)" in d["layers"][3]["rule"]["lines"]
    # the caller's network is untouched
    for k, v in net.params.items():
        np.testing.assert_array_equal(np.asarray(v), before[k])


def test_every_layer_kind_has_its_rule_checked(tmp_path):
    rng = np.random.default_rng(3)
    net = AllKinds(rng)
    x, t = batch((1, 6, 6), 3, n=5)
    state = np.random.get_state()
    d = page_data(fastdl.explain(net, x, t, path=tmp_path / "k.html"))
    assert np.random.get_state()[1].tolist() == state[1].tolist(), "NumPy's random state was changed"
    titles = [layer["rule"]["title"] for layer in d["layers"]] + [d["loss_layer"]["rule"]["title"]]
    assert titles == ["Convolution", "Relu", "Pooling", "AvgPooling", "Affine", "BatchNormalization", "Sigmoid",
                      "Dropout", "Scale", "Affine", "SoftmaxWithLoss"]
    for layer in d["layers"] + [d["loss_layer"]]:
        rule = layer["rule"]
        assert rule["lines"] and rule["checks"], layer["name"]
        for c in rule["checks"]:
            tol = 1e-6 if layer["name"] == "scale" else 1e-9        # the generic rule: central differences
            assert c["formula"] == pytest.approx(c["backward"], rel=tol, abs=tol), (layer["name"], c)
    assert "no written rule" in d["layers"][8]["rule"]["note"]
    assert d["gradcheck"]["skipped"]                    # no params dict: nothing to check, said so


def test_rule_check_would_show_a_wrong_backward(tmp_path):
    class HalfRelu(L.Relu):
        def backward(self, dout):
            return super().backward(dout) * 0.5

    np.random.seed(1)
    net = TwoLayerNet(5, 4, 3, weight_init_std=0.5)
    net.layers["Relu1"] = HalfRelu()
    x, t = batch((5,), 3)
    d = page_data(fastdl.explain(net, x, t, path=tmp_path / "bad.html"))
    checks = d["layers"][1]["rule"]["checks"]           # a subclass: the generic (numerical) rule
    assert any(abs(c["formula"] - c["backward"]) > 1e-3 * abs(c["formula"]) for c in checks if c["formula"])
    g = d["gradcheck"]
    assert not g["ok"]
    assert {r["param"]: r["ok"] for r in g["rows"]} == {"W1": False, "b1": False, "W2": True, "b2": True}


def test_gradient_check_passes_on_the_book_network(tmp_path, dtype):
    np.random.seed(2)
    net = MultiLayerNetExtend(6, [5, 4], 3, use_batchnorm=True, use_dropout=True, dropout_ration=0.2, dtype=dtype)
    x, t = batch((6,), 3, n=5)
    d = page_data(fastdl.explain(net, x, t, path=tmp_path / "g.html"))
    g = d["gradcheck"]
    assert g["backend"] == "numpy" and g["dtype"] == "float64" and g["batch"] == 3   # rebuilt in float64
    assert g["ok"], g["rows"]
    assert {r["param"] for r in g["rows"]} == set(net.params)
    for r in g["rows"]:
        assert r["error"] < g["tolerance"] == 1e-5
        assert r["checked"] == min(r["size"], 12)


def test_gradient_check_tells_a_kink_from_a_wrong_gradient(tmp_path):
    # every sample is zero, so hidden unit 0's input is b1[0] = 0: exactly on the ReLU's corner
    np.random.seed(4)
    net = TwoLayerNet(3, 2, 2, weight_init_std=1.0)
    net.params["b1"][...] = [0.0, 0.5]
    x, t = np.zeros((3, 3)), np.array([0, 1, 1])
    g = page_data(fastdl.explain(net, x, t, path=tmp_path / "k.html"))["gradcheck"]
    b1 = next(r for r in g["rows"] if r["param"] == "b1")
    assert "Affine1" not in g["nudged"] and b1["kinks"] == 1 and b1["ok"] and g["ok"]
    kink = next(e for e in b1["entries"] if e["kink"])
    assert kink["index"] == [0] and kink["backprop"] in (pytest.approx(kink["left"]), pytest.approx(kink["right"]))
    assert abs(kink["numerical"] - kink["backprop"]) > 0.1 * abs(kink["right"] - kink["left"])  # would fail


# -- chapter 5 -----------------------------------------------------------------------------------

def test_apple_example_holds_the_books_values(tmp_path):
    d = page_data(fastdl.explain("apple", path=tmp_path / "apple.html"))
    e = {x["name"]: x for x in d["example"]["edges"]}
    assert e["price"]["forward"] == pytest.approx(220)
    assert e["apple"]["backward"] == pytest.approx(2.2)
    assert e["apple_num"]["backward"] == pytest.approx(110)
    assert e["tax"]["backward"] == pytest.approx(200)
    assert e["apple_price"]["forward"] == 200 and e["apple_price"]["backward"] == pytest.approx(1.1)
    d = page_data(fastdl.explain("apple-orange", path=tmp_path / "ao.html"))
    e = {x["name"]: (x["forward"], x["backward"]) for x in d["example"]["edges"]}
    assert e["price"][0] == pytest.approx(715)
    assert e["apple_num"][1] == pytest.approx(110) and e["apple"][1] == pytest.approx(2.2)
    assert e["orange"][1] == pytest.approx(3.3) and e["orange_num"][1] == pytest.approx(165)
    assert e["tax"][1] == pytest.approx(650) and e["all_price"] == (650, pytest.approx(1.1))


# -- bad input -----------------------------------------------------------------------------------

def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    target = tmp_path / "r.html"
    target.write_text("old")
    net = tiny_conv()
    x, t = batch((1, 8, 8), 3)
    bad_x = x.copy()
    bad_x[1, 0, 2, 2] = np.nan

    class NoLayers:
        last_layer = L.SoftmaxWithLoss()

    class NoLoss:
        layers = OrderedDict(relu=L.Relu())

    cases = [((NoLayers(), x, t), "must have layers and last_layer"),
             ((NoLoss(), x, t), "without last_layer"),
             ((net, x, t[:3]), "one label (or one-hot row) per sample"),
             ((net, bad_x, t), "1 NaN or infinite values"),
             ((net, x, None), "pass x"),
             ((net, x[:, :, :7], t), "does not fit the network"),
             (("banana", None, None), "no example called 'banana'")]
    for args, words in cases:
        with pytest.raises(fastdl.explain.ExplainError) as info:
            fastdl.explain(*args, path=target)
        assert words in str(info.value) and "\n" not in str(info.value)
        assert target.read_text() == "old"
    for path, words in [(tmp_path / "missing" / "r.html", "does not exist"), (tmp_path, "is a folder")]:
        with pytest.raises(ValueError, match=words):
            fastdl.explain(net, x, t, path=path)
    with pytest.raises(ValueError, match="is not a weight scale"):
        fastdl.explain(net, x, t, path=target, init="std:0,he")
    for key, value in (("steps", -1), ("check_samples", 0), ("batch_size", 2.5)):
        with pytest.raises(ValueError, match=f"{key} must be an integer >= "):
            fastdl.explain(net, x, t, path=target, **{key: value})
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["r.html"]            # no temporary file left


def test_command_line(tmp_path, capsys):
    out = tmp_path / "mlp.html"
    assert main(["explain", "--net", "mlp", "--batch", "4", "--steps", "3", "--init", "std:0.01,he",
                 "--backend", "numpy", "--out", str(out)]) == 0
    d = page_data(out)
    assert d["net"] == "TwoLayerNet" and d["batch"] == 4 and d["gradcheck"]["ok"]
    assert len(d["training"]["loss"]) == 3 and [c["init"] for c in d["init"]["columns"]] == ["std:0.01", "he"]
    assert "wrote" in capsys.readouterr().out
    assert main(["explain", "--example", "apple-orange", "--out", str(tmp_path / "ao.html")]) == 0
    np.random.seed(5)
    saved = tmp_path / "two.npz"
    TwoLayerNet(784, 7, 10, dtype=np.float32).save_params(str(saved))
    assert main(["explain", "--net", str(saved), "--batch", "3", "--out", str(out)]) == 0
    d = page_data(out)
    assert d["net"] == "TwoLayerNet" and d["dtype"] == "float32" and d["layers"][0]["out_shape"] == [3, 7]
    assert d["gradcheck"]["dtype"] == "float64" and d["gradcheck"]["ok"]      # checked as the book does
    for argv, words in [(["--init", "xavier,foo"], "--init 'foo' is not a weight scale"),
                        (["--net", str(tmp_path / "none.npz")], "no such file"),
                        (["--out", str(tmp_path / "no" / "x.html")], "--out: cannot write"),
                        (["--net", "mlp", "--batch", "99999", "--out", str(out)], "--batch 99999: the sample has")]:
        assert main(["explain"] + argv) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, err


# -- in a real browser ------------------------------------------------------------------------------

def _check_site():
    spec = importlib.util.spec_from_file_location("check_site", ROOT / "docs" / "check_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page_class(cs):
    class Page(cs.DevTools):
        """check_site's DevTools page, keeping every message (console errors, requests)."""

        def __init__(self, *args):
            self.messages = []
            super().__init__(*args)

        def _recv(self):
            msg = super()._recv()
            self.messages.append(json.loads(msg))
            return msg

        def js(self, expression):
            res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
            return res.get("result", {}).get("value")

        def click(self, selector):
            self.js(f"document.querySelector({selector!r}).scrollIntoView({{block: 'center'}})")
            r = json.loads(self.js(f"JSON.stringify(document.querySelector({selector!r}).getBoundingClientRect())"))
            x, y = r["x"] + r["width"] / 2, r["y"] + r["height"] / 2
            for kind in ("mousePressed", "mouseReleased"):
                self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

        def screenshot(self, path):
            height = min(int(self.js("document.documentElement.scrollHeight")), 6000)
            self.call("Emulation.setDeviceMetricsOverride", width=1400, height=height, deviceScaleFactor=1,
                      mobile=False)
            path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
            self.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1,
                      mobile=False)

        def errors(self):
            out = []
            for m in self.messages:
                method, p = m.get("method"), m.get("params", {})
                if method == "Runtime.exceptionThrown":
                    out.append(p["exceptionDetails"].get("text"))
                elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    out.append(str(p.get("args")))
                elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
                    out.append(p["entry"]["text"])
            return out

    return Page


def test_the_page_in_a_real_browser(tmp_path, capsys):
    cs = _check_site()
    binary = cs.find_chromium()
    if binary is None:
        pytest.skip("no Chromium here (chromium, chromium-browser or google-chrome on PATH): the page was "
                    "not opened in a browser")
    keep = os.environ.get("FASTDL_EXPLAIN_SCREENSHOTS")
    shots = Path(keep) if keep else tmp_path / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    np.random.seed(0)
    net = SimpleConvNet(input_dim=(1, 12, 12), conv_param={"filter_num": 4, "filter_size": 3, "pad": 0, "stride": 1},
                        hidden_size=10, output_size=4)
    x, t = batch((1, 12, 12), 4, n=6)
    report = fastdl.explain(net, x, t, path=tmp_path / "report.html", steps=5, init="std:1,std:0.01,xavier,he")
    apple = fastdl.explain("apple-orange", path=tmp_path / "apple.html")
    page = _page_class(cs)(binary, tempfile.mkdtemp(dir=tmp_path))
    try:
        for method in ("Runtime.enable", "Log.enable", "Network.enable", "Page.enable"):
            page.call(method)
        page.call("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=0,
                  uploadThroughput=0)
        page.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)
        url = Path(report).resolve().as_uri()
        assert page.wait_for(url, "document.body && document.body.getAttribute('data-rendered')") == "1"
        counts = json.loads(page.js(
            "JSON.stringify({nodes: document.querySelectorAll('#graph-svg .node').length,"
            " edges: document.querySelectorAll('#graph-svg .edge').length,"
            " bars: document.querySelectorAll('.hist rect.bar-f, .hist rect.bar-b').length,"
            " sections: Array.from(document.querySelectorAll('section')).map(s => s.id),"
            " charts: document.querySelectorAll('#training polyline.series').length,"
            " inits: document.querySelectorAll('#init-table tr').length,"
            " checkRows: document.querySelectorAll('#gradcheck tr').length,"
            " panel: getComputedStyle(document.getElementById('panel')).display})"))
        assert counts["nodes"] == 7 and counts["edges"] == 7        # 6 layers + the loss; x and 6 outputs
        assert counts["bars"] > 200
        assert counts["sections"] == ["graph", "panel", "layers", "gradcheck", "training", "init"]
        assert counts["charts"] >= 8 and counts["inits"] == 1 + 6 and counts["checkRows"] == 1 + 6
        assert counts["panel"] == "none"
        page.screenshot(shots / "report.png")
        page.click('#graph-svg .node[data-index="3"]')                # the first Affine
        time.sleep(0.2)
        assert page.js("getComputedStyle(document.getElementById('panel')).display") == "block"
        formula = page.js("document.getElementById('formula').textContent")
        assert "dW (100, 10) = xᵀ (100, 6) · dout (6, 10)" in formula
        assert "‖dout‖ = " in page.js("document.getElementById('gain').textContent")
        page.screenshot(shots / "report-affine-panel.png")
        assert page.wait_for(Path(apple).resolve().as_uri(),
                             "document.body && document.body.getAttribute('data-rendered')") == "1"
        assert page.js("document.querySelectorAll('#graph-svg .node').length") == 4
        assert "650" in page.js("document.getElementById('graph-svg').textContent")
        page.click('#graph-svg .node[data-index="0"]')
        time.sleep(0.2)
        assert "1.1 × 2 = 2.2" in page.js("document.getElementById('formula').textContent")
        page.screenshot(shots / "apple-orange.png")
        assert page.js("window.__fastdlErrors") == []
        assert page.errors() == []
        urls = [m["params"]["request"]["url"] for m in page.messages if m.get("method") == "Network.requestWillBeSent"]
        assert urls and all(u.startswith("file:") for u in urls), urls
    finally:
        page.close()
    for name in ("report.png", "report-affine-panel.png", "apple-orange.png"):
        assert cs.ink(shots / name) > 0.02, f"{name} is blank"
    with capsys.disabled():                    # shown in a normal run, not only with -s
        print(f"\nscreenshots of the explain pages: {shots}"
              + ("" if keep else " (set FASTDL_EXPLAIN_SCREENSHOTS=DIR to keep them)"))


# -- the notebook ---------------------------------------------------------------------------------

def test_notebook_shows_the_page(monkeypatch):
    # about 5 s: a Jupyter kernel starts, and SimpleConvNet's page (with 10 training steps) is made
    nbformat = pytest.importorskip("nbformat", reason="the test extras install nbformat")
    from tests.docs.test_examples import execute, text_of
    path = ROOT / "examples" / "explain.ipynb"
    for cell in nbformat.read(str(path), as_version=4).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "commit the notebook without outputs"
    nb = execute("explain.ipynb", monkeypatch)
    text = text_of(nb)
    assert "layers: Convolution -> Relu -> Pooling -> Affine -> Relu -> Affine" in text
    assert "gradient check: pass" in text
    shown = [o["data"]["text/html"] for c in nb.cells for o in c.get("outputs", [])
             if o.get("output_type") == "execute_result" and "text/html" in o.get("data", {})]
    assert len(shown) == 1 and "<iframe srcdoc=" in shown[0] and "fastdl-data" in shown[0]
    assert "UserWarning" not in text
