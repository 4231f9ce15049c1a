"""Look at the built documentation site as a reader would, in a headless Chromium.

    python docs/check_site.py [--site DIR] [--out DIR] [--keep-serving]

Builds the site (``mkdocs build --strict`` into a temporary folder, unless ``--site`` names a
built one), serves it on 127.0.0.1 with ``python -m http.server``, and for each main page

- takes a screenshot (``--out``, default ``site-check/`` in the temporary folder; 1280x2000), to
  be looked at by a person;
- loads the page in Chromium (``--dump-dom``: the DOM after the page's scripts ran) and checks
  what a reader would see: the navigation with links to the other pages, highlighted code
  blocks, rendered tables, API entries on the reference pages, the plots on the performance page.

It also checks the search: ``search/search_index.json`` is served and has "Convolution" in it,
and Material's search box, given ``?q=Convolution``, lists results in a live page (driven over
the DevTools protocol, since the search worker needs real time). Each plot is fetched over HTTP
(an SVG, not empty), rendered alone in Chromium (the screenshot is not blank), and loaded with a
size on the live performance page.

Exit status: 0 every check passed (or Chromium is missing: then it says so and checks nothing),
1 a check failed, 2 the site could not be built or served. Not part of the test suite (CI has
no browser); run it by hand after changing the pages, the theme or mkdocs.yml.
"""
import argparse
import html
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# page (path under the site) -> what a reader must find on it
PAGES = {
    "": {"code": True, "tables": 1},
    "chapters/": {"code": True},
    "backends/": {"code": True, "tables": 1},
    "numba/": {"code": True, "tables": 1},
    "cuda/": {"code": True},
    "performance/": {"tables": 1, "plots": 3},
    "command-line/": {"tables": 1},
    "data/": {},
    "development/": {},
    "reliability/": {"code": True, "tables": 2},
    "search/": {"code": True, "tables": 2},
    "book/": {},
    "differences/": {},
    "architecture/": {"code": True},
    "reference/layers/": {"api": ["fastdl.layers.Affine", "fastdl.layers.Convolution",
                                  "fastdl.layers.AvgPooling"]},
    "reference/nets/": {"api": ["fastdl.nets.SimpleConvNet", "fastdl.nets.Net"]},
    "reference/fusion/": {"api": ["fastdl.fusion.plan", "fastdl.fusion.ConvBlock"]},
    "reference/kernels/": {"tables": 1, "text": ["conv_relu_pool_forward", "avg_pool_backward"]},
}

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class Checks:
    def __init__(self):
        self.failed = []
        self.passed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
            print(f"  ok    {what}")
        else:
            self.failed.append(what)
            print(f"  FAIL  {what}")
        return ok


def find_chromium():
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_args(binary, profile):
    # --no-sandbox: root in a container has no user namespaces for Chromium's sandbox
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", f"--user-data-dir={profile}", "--run-all-compositor-stages-before-draw",
            "--virtual-time-budget=5000"]


def dump_dom(base_args, url):
    proc = subprocess.run(base_args + ["--dump-dom", url], capture_output=True, text=True,
                          timeout=120)
    return proc.stdout


def screenshot(base_args, url, out, size="1280,2000"):
    if out.exists():
        out.unlink()
    subprocess.run(base_args + [f"--screenshot={out}", f"--window-size={size}", url],
                   capture_output=True, text=True, timeout=120)
    return out.is_file() and out.stat().st_size > 0


def ink(png):
    """The fraction of a PNG's pixels that are not (near) white."""
    import matplotlib.image
    img = matplotlib.image.imread(str(png))
    rgb = img[..., :3]
    if rgb.max() > 1.0:
        rgb = rgb / 255.0
    return float((rgb.min(axis=-1) < 0.9).mean())


class DevTools:
    """A page of a headless Chromium driven over the DevTools protocol (a minimal WebSocket client
    from the standard library), to ask the live page what a reader would see after its scripts
    ran in real time (``--dump-dom`` stops the clock of the page's search worker)."""

    def __init__(self, binary, profile):
        import base64
        import urllib.request
        self.proc = subprocess.Popen([binary, "--headless", "--no-sandbox", "--disable-gpu",
                                      f"--user-data-dir={profile}", "--remote-debugging-port=0",
                                      "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        active = Path(profile) / "DevToolsActivePort"
        for _ in range(200):
            if active.is_file() and active.read_text().strip():
                break
            time.sleep(0.05)
        port = active.read_text().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        url = next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"]
        hostport, path = url[len("ws://"):].split("/", 1)
        host, wsport = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(wsport)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += self.sock.recv(4096)
        if b" 101 " not in reply.split(b"\r\n", 1)[0]:
            raise OSError("the DevTools WebSocket handshake failed")
        self.next_id = 0

    def _send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            head = bytes([0x81, 0x80 | n])
        elif n < 65536:
            head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError("DevTools closed the connection")
            out += chunk
        return out

    def _recv(self):
        msg = b""
        while True:
            b1, b2 = self._exact(2)
            n = b2 & 0x7F
            if n == 126:
                n = int.from_bytes(self._exact(2), "big")
            elif n == 127:
                n = int.from_bytes(self._exact(8), "big")
            msg += self._exact(n)
            if b1 & 0x80:
                return msg.decode("utf-8", "replace")

    def call(self, method, **params):
        self.next_id += 1
        self._send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._recv())
            if reply.get("id") == self.next_id:
                return reply.get("result", {})

    def wait_for(self, url, expression, seconds=10.0):
        """Open ``url`` and evaluate ``expression`` every 0.2 s until it is truthy (or the time is
        up); its last value."""
        self.call("Page.navigate", url=url)
        value, end = None, time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.2)
            res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
            value = res.get("result", {}).get("value")
            if value:
                break
        return value

    def close(self):
        self.sock.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type", ""), body


def build(site):
    print(f"building the site into {site} (mkdocs build --strict)")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(site)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr)
        return False
    print(f"built in {time.monotonic() - t0:.1f} s")
    return True


def check_page(c, base_args, port, page, want, out):
    url = f"http://127.0.0.1:{port}/{page}"
    name = page.strip("/").replace("/", "-") or "index"
    print(f"{url}")
    shot = out / f"{name}.png"
    c.check(screenshot(base_args, url, shot), f"{name}: screenshot {shot}")
    dom = dump_dom(base_args, url)
    c.check("</html>" in dom and len(dom) > 5000, f"{name}: the page loads ({len(dom):,} characters of DOM)")
    title = re.search(r"<h1[^>]*>(.*?)</h1>", dom, re.S)
    c.check(title is not None, f"{name}: has a title "
            f"({html.unescape(re.sub('<[^>]+>', '', title.group(1))).strip() if title else '-'!r})")
    nav_links = len(re.findall(r'class="md-nav__link', dom))
    c.check(nav_links >= 10 and 'href="' in dom and "md-sidebar--primary" in dom,
            f"{name}: navigation with {nav_links} links")
    c.check("md-search__input" in dom, f"{name}: a search box")
    if want.get("code"):
        # Pygments: <div class="highlight"> (or "language-X highlight"), tokens in classed spans
        blocks = re.findall(r'<div class="(?:language-\w+ )?highlight">', dom)
        tokens = len(re.findall(r'<span class="(?:kn|k|nb|nn|s1|s2|mi|mf|c1)">', dom))
        c.check(bool(blocks) and tokens >= 10,
                f"{name}: {len(blocks)} highlighted code blocks ({tokens} coloured tokens)")
        # the copy button is added by the theme's script: proof that it ran
        buttons = len(re.findall(r'data-md-type="copy"|class="md-clipboard', dom))
        c.check(buttons >= len(blocks) > 0, f"{name}: {buttons} copy buttons (the theme's script ran)")
    if want.get("tables"):
        tables = re.findall(r"<table>(.*?)</table>", dom, re.S)
        full = [t for t in tables if "<th" in t and "<td" in t]
        c.check(len(full) >= want["tables"],
                f"{name}: {len(full)} rendered tables with headers and cells (want {want['tables']})")
    for anchor in want.get("api", []):
        m = re.search(rf'id="{re.escape(anchor)}"[^>]*>(.*?)</h\d>', dom, re.S)
        c.check(m is not None and "doc-heading" in dom, f"{name}: API entry {anchor}")
    for text in want.get("text", []):
        c.check(text in dom, f"{name}: shows {text}")
    if want.get("plots"):
        imgs = re.findall(r'<img[^>]*src="([^"]+\.svg)"', dom)
        c.check(len(imgs) >= want["plots"], f"{name}: {len(imgs)} plots (want {want['plots']})")
        for src in imgs:
            path = "/" + os.path.normpath(os.path.join(page, src)).lstrip("/")
            status, ctype, body = fetch(port, path)
            c.check(status == 200 and "svg" in ctype and len(body) > 1000 and b"<svg" in body[:2000],
                    f"{name}: plot {path} served ({status}, {ctype}, {len(body):,} bytes)")
            shot = out / f"plot-{Path(src).stem}.png"
            ok = screenshot(base_args, f"http://127.0.0.1:{port}{path}", shot, "1200,600")
            c.check(ok and ink(shot) > 0.01,
                    f"{name}: plot {Path(src).name} renders ({ink(shot) if ok else 0:.1%} of the pixels drawn)")
        captions = re.findall(r"benchmarks/results-[\w-]+\.txt", dom)
        c.check(len(captions) >= len(imgs), f"{name}: the plots name their result files")


def check_search(c, devtools, port):
    print("search")
    status, ctype, body = fetch(port, "/search/search_index.json")
    ok = status == 200
    docs = json.loads(body)["docs"] if ok else []
    hits = [d["location"] for d in docs if "Convolution" in d.get("text", "") + d.get("title", "")]
    c.check(ok and len(docs) > 50, f"search index served with {len(docs)} entries")
    c.check(len(hits) >= 3, f"the index finds 'Convolution' in {len(hits)} sections, "
            f"e.g. {', '.join(hits[:3])}")
    # Material's search: ?q= fills the box, and its search worker lists the results
    url = f"http://127.0.0.1:{port}/?q=Convolution"
    found = devtools.wait_for(url, "(() => { const items = document.querySelectorAll("
                              "'.md-search-result__item'); const meta = document.querySelector("
                              "'.md-search-result__meta'); return items.length ? [items.length, "
                              "meta ? meta.textContent.trim() : ''] : null; })()")
    c.check(bool(found), "the search box, given ?q=Convolution, lists results"
            + (f" ({found[1]}; {found[0]} shown)" if found else " (none after 10 s)"))


def report_wide_blocks(devtools, port):
    """Code blocks wider than the text column (the reader must scroll them sideways), page by
    page: reported, not failed (a table of numbers may rightly be wide)."""
    print("code blocks wider than the text column (1280-px window; reported, not failed)")
    devtools.call("Emulation.setDeviceMetricsOverride", width=1280, height=2000,
                  deviceScaleFactor=1, mobile=False)
    for page in PAGES:
        wide = devtools.wait_for(
            f"http://127.0.0.1:{port}/{page}",
            "(() => document.readyState === 'complete' ? Array.from(document.querySelectorAll("
            "'.md-content pre > code')).filter(e => e.scrollWidth > e.clientWidth + 1).map(e => "
            "e.textContent.split('\\n').reduce((a, l) => l.length > a.length ? l : a, '')"
            ".slice(0, 60)) : null)()", seconds=5)
        for line in wide or []:
            print(f"  note  {page or 'index'}: {line}")


def check_plots_in_browser(c, devtools, port):
    """The performance page's images, as the browser loaded them: complete, with a size."""
    print("plots in the browser")
    sizes = devtools.wait_for(
        f"http://127.0.0.1:{port}/performance/",
        "(() => { const imgs = Array.from(document.images).filter(i => i.src.endsWith('.svg'));"
        " return imgs.length && imgs.every(i => i.complete) ?"
        " imgs.map(i => [i.src.split('/').pop(), i.naturalWidth, i.naturalHeight, i.width]) : null; })()")
    c.check(bool(sizes), f"the performance page's plots finished loading ({len(sizes or [])})")
    for name, nat_w, nat_h, shown_w in sizes or []:
        c.check(nat_w > 100 and nat_h > 100 and shown_w > 300,
                f"plot {name}: {nat_w}x{nat_h}, shown {shown_w} px wide")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--site", type=Path, help="a built site to check (default: build one)")
    ap.add_argument("--out", type=Path, help="where to write the screenshots")
    ap.add_argument("--keep-serving", action="store_true",
                    help="keep the server running after the checks (Ctrl-C to stop)")
    args = ap.parse_args(argv)

    binary = find_chromium()
    if binary is None:
        print("SKIPPED: no Chromium found (looked for " + ", ".join(CHROMIUM_NAMES) + "); "
              "on Debian: apt-get install chromium")
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="fastdl-site-check-"))
    site = args.site or tmp / "site"
    if args.site is None and not build(site):
        return 2
    out = args.out or tmp / "site-check"
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                               "127.0.0.1", "--directory", str(site)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            try:
                fetch(port, "/")
                break
            except OSError:
                time.sleep(0.1)
        else:
            print("the server did not start")
            return 2
        print(f"serving {site} on http://127.0.0.1:{port}/ ; browser: {binary}")
        base_args = chromium_args(binary, tmp / "profile")
        c = Checks()
        for page, want in PAGES.items():
            check_page(c, base_args, port, page, want, out)
        devtools = DevTools(binary, tmp / "profile-devtools")
        try:
            check_search(c, devtools, port)
            check_plots_in_browser(c, devtools, port)
            report_wide_blocks(devtools, port)
        finally:
            devtools.close()
        print(f"\n{c.passed} checks passed, {len(c.failed)} failed; screenshots in {out}")
        for what in c.failed:
            print(f"  FAILED: {what}")
        if args.keep_serving:
            print("serving until Ctrl-C")
            try:
                server.wait()
            except KeyboardInterrupt:
                pass
        return 1 if c.failed else 0
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
