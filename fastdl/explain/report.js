// fastdl explain: draws the report from the JSON in #fastdl-data (no network, no libraries).
"use strict";
window.__fastdlErrors = [];
window.addEventListener("error", function (e) { window.__fastdlErrors.push(String(e.message)); });

(function () {
  var NS = "http://www.w3.org/2000/svg";
  var D = JSON.parse(document.getElementById("fastdl-data").textContent);

  function el(tag, attrs, parent, text) {
    var e = document.createElementNS(tag === "svg" || el.svgTags[tag] ? NS : "http://www.w3.org/1999/xhtml", tag);
    for (var k in (attrs || {})) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  el.svgTags = { g: 1, rect: 1, text: 1, line: 1, path: 1, circle: 1, polyline: 1, defs: 1, marker: 1, title: 1 };
  function h(tag, attrs, parent, text) { return el(tag, attrs, parent, text); }
  function fmt(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v !== "number") return String(v);
    if (v === 0) return "0";
    var a = Math.abs(v);
    if (a >= 1e4 || a < 1e-3) return v.toExponential(2);
    return String(Number(v.toPrecision(4)));
  }
  function shape(s) { return "(" + s.join(", ") + (s.length === 1 ? "," : "") + ")"; }
  function section(id, title, help) {
    var s = h("section", { id: id }, document.getElementById("main"));
    h("h2", {}, s, title);
    if (help) h("p", { "class": "help" }, s, help);
    return s;
  }

  // a histogram of a summary (counts of 16 bins between lo and hi) in a w x hgt box at (x, y)
  function hist(parent, sm, x, y, w, hgt, cls) {
    var g = el("g", { "class": "hist", transform: "translate(" + x + "," + y + ")" }, parent);
    el("rect", { "class": "frame", x: 0, y: 0, width: w, height: hgt }, g);
    if (!sm || !sm.hist || !sm.hist.length) return g;
    var m = Math.max.apply(null, sm.hist) || 1, bw = w / sm.hist.length;
    sm.hist.forEach(function (c, i) {
      var bh = c ? Math.max(1, (hgt - 2) * c / m) : 0;
      el("rect", { "class": cls, x: i * bw + 0.5, y: hgt - bh, width: Math.max(bw - 1, 1), height: bh }, g);
    });
    el("title", {}, g, "min " + fmt(sm.min) + ", max " + fmt(sm.max) + ", mean " + fmt(sm.mean) + ", std " + fmt(sm.std));
    return g;
  }
  function histBox(parent, sm, cls, label) {          // a small standalone SVG histogram with its numbers
    var k = cls === "bar-b" ? "bwd" : "fwd", top = label ? 14 : 0;
    var s = el("svg", { width: 170, height: 74 + top }, parent);
    if (label) el("text", { x: 2, y: 11, "class": k }, s, label);
    hist(s, sm, 2, 2 + top, 166, 44, cls);
    el("text", { x: 2, y: 58 + top, "class": k }, s, "μ " + fmt(sm && sm.mean) + " σ " + fmt(sm && sm.std));
    el("text", { x: 2, y: 71 + top, "class": k }, s, "[" + fmt(sm && sm.min) + ", " + fmt(sm && sm.max) + "]");
    return s;
  }
  function valuesText(vals, max) {
    if (!vals) return null;
    var shown = vals.slice(0, max || vals.length).map(fmt).join(", ");
    return "[" + shown + (vals.length > (max || vals.length) ? ", …" : "") + "]";
  }

  function valueLines(g, vals, x, y, cls) {   // up to 6 numbers of a small edge, 3 a line
    for (var i = 0; i < Math.min(vals.length, 6); i += 3) {
      var part = vals.slice(i, i + 3).map(fmt).join(", ");
      var more = i + 3 < vals.length ? (i === 3 ? ", … (" + vals.length + ")" : ",") : "";
      el("text", { "class": cls, x: x, y: y + (i / 3) * 12 }, g, (i ? " " : "[") + part + more + (i + 3 >= vals.length ? "]" : ""));
    }
  }

  function header() {
    document.title = D.title || "fastdl explain";
    document.getElementById("title").textContent = D.title || "fastdl explain";
    var meta = D.kind === "example" ? "chapter 5's computational graph, computed with fastdl.layers.MulLayer and AddLayer"
      : D.net + ", " + D.dtype + ", batch of " + D.batch + " (input " + shape(D.input_shape) + "), backend " + D.backend + ", loss " + fmt(D.loss);
    document.getElementById("meta").textContent = meta;
  }

  // ---- the network's graph ----------------------------------------------------------------
  var selected = null;
  function graph() {
    var s = section("graph", "The graph: forward above, backward below",
      "One box per layer, in the order the network runs them (training mode, each layer on its own). On each edge: the shape of the array, " +
      "the forward values (blue: histogram, mean μ, std σ) above the arrow and the gradient of the loss with respect to them (red) below. " +
      "Edges of fewer than 50 values show the numbers themselves. Click a box for its backward rule with these shapes.");
    var L = D.layers, n = L.length + 1, step = 250, W = 60 + n * step + 120, H = 330, yc = 165;
    var wrap = h("div", { "class": "scroll" }, s);
    var svg = el("svg", { id: "graph-svg", width: W, height: H }, wrap);
    var defs = el("defs", {}, svg);
    var mk = el("marker", { id: "ah", markerWidth: 8, markerHeight: 8, refX: 7, refY: 4, orient: "auto" }, defs);
    el("path", { d: "M0,0 L8,4 L0,8 z", fill: "#1a237e" }, mk);
    var mkb = el("marker", { id: "ahb", markerWidth: 8, markerHeight: 8, refX: 1, refY: 4, orient: "auto" }, defs);
    el("path", { d: "M8,0 L0,4 L8,8 z", fill: "#c62828" }, mkb);
    var nodeX = function (i) { return 60 + 170 + i * step; };      // left edge of node i (0..L.length: the loss last)
    D.edges.forEach(function (e, i) {
      var x0 = i === 0 ? 10 : nodeX(i - 1) + 110, x1 = nodeX(i) - 4;
      el("line", { "class": "arrow-f", x1: x0, y1: yc - 6, x2: x1, y2: yc - 6, "marker-end": "url(#ah)" }, svg);
      el("line", { "class": "arrow-b", x1: x1, y1: yc + 6, x2: x0 + 4, y2: yc + 6, "marker-end": "url(#ahb)" }, svg);
      var g = el("g", { "class": "edge", "data-edge": i }, svg), cx = x0 + 6;
      el("text", { "class": "shape", x: cx, y: yc - 14 }, g, (i === 0 ? "x " : "") + shape(e.shape));
      hist(g, e.forward, cx, 40, 120, 46, "bar-f");
      el("text", { "class": "fwd", x: cx, y: 100 }, g, "μ " + fmt(e.forward.mean) + "  σ " + fmt(e.forward.std));
      el("text", { "class": "fwd", x: cx, y: 113 }, g, "[" + fmt(e.forward.min) + ", " + fmt(e.forward.max) + "]");
      if (e.values) valueLines(g, e.values, cx, 18, "fwd");
      hist(g, e.backward, cx, 200, 120, 46, "bar-b");
      el("text", { "class": "bwd", x: cx, y: 260 }, g, "μ " + fmt(e.backward.mean) + "  σ " + fmt(e.backward.std));
      el("text", { "class": "bwd", x: cx, y: 273 }, g, "[" + fmt(e.backward.min) + ", " + fmt(e.backward.max) + "]");
      if (e.grad_values) valueLines(g, e.grad_values, cx, 290, "bwd");
    });
    var all = L.concat([D.loss_layer]);
    all.forEach(function (layer, i) {
      var g = el("g", { "class": "node" + (i === L.length ? " loss" : ""), "data-index": i, tabindex: 0 }, svg);
      el("rect", { x: nodeX(i), y: yc - 28, width: 110, height: 56, rx: 6 }, g);
      var n = layer.kind.length, size = n <= 12 ? 13 : n <= 15 ? 11 : 10;
      el("text", { x: nodeX(i) + 55, y: yc - 4, "text-anchor": "middle", style: "font-size:" + size + "px" }, g,
        n > 18 ? layer.kind.slice(0, 17) + "…" : layer.kind);
      el("text", { x: nodeX(i) + 55, y: yc + 14, "text-anchor": "middle", "class": "fwd" }, g, layer.name);
      el("title", {}, g, layer.repr);
      g.addEventListener("click", function () { openPanel(i); });
    });
    var lx = nodeX(L.length) + 110;
    el("line", { "class": "arrow-f", x1: lx, y1: yc - 6, x2: lx + 50, y2: yc - 6, "marker-end": "url(#ah)" }, svg);
    el("text", { "class": "shape", x: lx + 8, y: yc - 14 }, svg, "L = " + fmt(D.loss));
    el("text", { "class": "bwd", x: lx + 8, y: yc + 24 }, svg, "dL/dL = 1");
    var p = section("panel", "Layer", "");
    p.parentNode.removeChild(p);
    s.appendChild(p);
  }

  function table(parent, head, rows) {
    var t = h("table", {}, parent), tr = h("tr", {}, t);
    head.forEach(function (c, i) { h("th", { "class": i ? "" : "l" }, tr, c); });
    rows.forEach(function (r) {
      var tr2 = h("tr", {}, t);
      r.forEach(function (c, i) {
        var td = h("td", { "class": i ? "" : "l" }, tr2);
        if (c && c.cls) { td.className += " " + c.cls; td.textContent = c.text; } else td.textContent = c;
      });
    });
    return t;
  }

  function openPanel(i) {
    var all = D.layers.concat([D.loss_layer]), layer = all[i], p = document.getElementById("panel");
    while (p.childNodes.length) p.removeChild(p.firstChild);
    p.className = "open";
    document.querySelectorAll(".node").forEach(function (n) { n.classList.toggle("selected", Number(n.getAttribute("data-index")) === i); });
    h("h2", {}, p, layer.name + ": " + layer.kind);
    h("p", { "class": "help" }, p, layer.repr + " — input " + shape(layer.in_shape) + (layer.out_shape ? ", output " + shape(layer.out_shape) : ""));
    var r = layer.rule || { lines: [], checks: [] };
    h("div", { "class": "formula", id: "formula" }, p, r.lines.join("\n"));
    if (i < D.layers.length) {
      var gin = D.edges[i + 1].backward.norm, gout = D.edges[i].backward.norm;
      h("p", { "class": "help", id: "gain" }, p, "What this backward did to the gradient: ‖dout‖ = " + fmt(gin) + " came in, ‖dx‖ = " +
        fmt(gout) + " went out" + (gin ? " (× " + fmt(gout / gin) + ")" : "") + ". A chain of factors well below 1 is a vanishing gradient.");
    }
    if (r.note) h("p", { "class": "help" }, p, r.note);
    if (r.checks.length) {
      h("p", { "class": "help" }, p, "A few entries computed both ways: from the formula above (NumPy, float64) and by the layer's backward in this pass.");
      table(p, ["entry", "formula", "backward", "|difference|"], r.checks.map(function (c) {
        var d = (c.formula === null || c.backward === null) ? null : Math.abs(c.formula - c.backward);
        return [c.what, fmt(c.formula), fmt(c.backward), fmt(d)];
      }));
    }
    var grid = h("div", { "class": "grid" }, p);
    if (i < D.layers.length) {
      var ein = D.edges[i], eout = D.edges[i + 1];
      var c1 = h("div", { "class": "card" }, grid); h("h4", {}, c1, "x (forward in)"); histBox(c1, ein.forward, "bar-f");
      var c2 = h("div", { "class": "card" }, grid); h("h4", {}, c2, "out (forward)"); histBox(c2, eout.forward, "bar-f");
      var c3 = h("div", { "class": "card" }, grid); h("h4", {}, c3, "dout (backward in)"); histBox(c3, eout.backward, "bar-b");
      var c4 = h("div", { "class": "card" }, grid); h("h4", {}, c4, "dx (backward out)"); histBox(c4, ein.backward, "bar-b");
      Object.keys(layer.grads).forEach(function (k) {
        var g = layer.grads[k], c = h("div", { "class": "card" }, grid);
        var key = layer.params[k.slice(1)] && layer.params[k.slice(1)].key;
        h("h4", {}, c, k + " " + shape(g.shape) + (key ? " (of " + key + ")" : "")); histBox(c, g, "bar-b");
        if (g.values) h("div", { "class": "values" }, c, valuesText(g.values));
      });
      [["x", ein.values], ["out", eout.values], ["dout", eout.grad_values], ["dx", ein.grad_values]].forEach(function (v) {
        if (v[1]) h("div", { "class": "values" }, p, v[0] + " = " + valuesText(v[1]));
      });
    } else {
      var last = D.edges[D.edges.length - 1];
      var c5 = h("div", { "class": "card" }, grid); h("h4", {}, c5, "scores x"); histBox(c5, last.forward, "bar-f");
      if (layer.y) { var c6 = h("div", { "class": "card" }, grid); h("h4", {}, c6, "y = softmax(x)"); histBox(c6, layer.y, "bar-f"); }
      var c7 = h("div", { "class": "card" }, grid); h("h4", {}, c7, "dx"); histBox(c7, last.backward, "bar-b");
    }
    selected = i;
  }

  function layersSection() {
    var s = section("layers", "Every layer's numbers", "Forward output and the gradient with respect to it, and each parameter gradient, per layer.");
    var grid = h("div", { "class": "grid" }, s);
    D.layers.forEach(function (layer, i) {
      var c = h("div", { "class": "card" }, grid);
      h("h4", {}, c, layer.name + " (" + layer.kind + ") → " + shape(layer.out_shape));
      histBox(c, D.edges[i + 1].forward, "bar-f", "out ");
      histBox(c, D.edges[i + 1].backward, "bar-b", "dout ");
      Object.keys(layer.grads).forEach(function (k) { histBox(c, layer.grads[k], "bar-b", k + " "); });
    });
  }

  function gradcheckSection() {
    var G = D.gradcheck, s = section("gradcheck", "Gradient check: backpropagation against numerical differentiation");
    if (!G || G.skipped) { h("p", { "class": "help" }, s, G ? G.skipped : "not run"); return; }
    h("p", { "class": "help" }, s, "As the book's gradient_check.py: the gradient of every parameter by backpropagation and by central differences " +
      "(f(w + h) − f(w − h)) / 2h with h = " + fmt(G.h) + ", on the first " + G.batch + " samples, on the " + G.backend + " (reference) backend in " + G.dtype +
      ". A parameter with many entries is checked on its largest gradients and a random sample. " + G.error_text + ". " + G.kink_text + ". Tolerance: " + G.tolerance + "." +
      (G.nudged && G.nudged.length ? " The biases of " + G.nudged.join(", ") + " were all 0 (as at initialisation) and were drawn from N(0, " + G.nudge + "²) for the check, so zero pixels do not put ReLU inputs exactly on their corner." : ""));
    h("p", { "class": G.ok ? "ok" : "bad", id: "gradcheck-verdict" }, s, G.ok ? "PASS: every parameter within " + G.tolerance : "FAIL: some parameter above " + G.tolerance);
    table(s, ["parameter", "shape", "entries checked", "at a kink", "error", "mean |difference|", "result", "e.g. backprop / numerical"], G.rows.map(function (r) {
      var e = r.entries[0];
      return [r.param, shape(r.shape), r.checked + " of " + r.size, String(r.kinks), fmt(r.error), fmt(r.mean_abs_diff),
        { cls: r.ok ? "ok" : "bad", text: r.ok ? "pass" : "FAIL" }, e ? fmt(e.backprop) + " / " + fmt(e.numerical) : ""];
    }));
  }

  // ---- charts --------------------------------------------------------------------------------
  var COLORS = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037", "#ad1457", "#455a64", "#9e9d24"];
  function chart(parent, title, series, opts) {
    opts = opts || {};
    var w = 460, hh = 220, m = { l: 56, r: 10, t: 20, b: 28 };
    var box = h("div", { "class": "card" }, parent);
    var svg = el("svg", { "class": "chart", width: w, height: hh }, box);
    el("text", { x: m.l, y: 13 }, svg, title);
    var pts = [];
    series.forEach(function (s) { s.values.forEach(function (p) { if (p[1] !== null && (!opts.log || p[1] > 0)) pts.push(p); }); });
    if (!pts.length) { el("text", { x: m.l, y: 60 }, svg, "no values"); return box; }
    var f = opts.log ? function (v) { return Math.log10(v); } : function (v) { return v; };
    var xs = pts.map(function (p) { return p[0]; }), ys = pts.map(function (p) { return f(p[1]); });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs), y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (opts.ymin !== undefined) { y0 = Math.min(y0, opts.ymin); y1 = Math.max(y1, opts.ymax); }
    if (x1 === x0) x1 = x0 + 1; if (y1 === y0) { y1 += 0.5; y0 -= 0.5; }
    var X = function (v) { return m.l + (v - x0) / (x1 - x0) * (w - m.l - m.r); };
    var Y = function (v) { return hh - m.b - (f(v) - y0) / (y1 - y0) * (hh - m.t - m.b); };
    var Yr = function (fv) { return hh - m.b - (fv - y0) / (y1 - y0) * (hh - m.t - m.b); };
    el("line", { x1: m.l, y1: hh - m.b, x2: w - m.r, y2: hh - m.b, stroke: "#999" }, svg);
    el("line", { x1: m.l, y1: m.t, x2: m.l, y2: hh - m.b, stroke: "#999" }, svg);
    [y0, (y0 + y1) / 2, y1].forEach(function (fv) {
      el("text", { x: 2, y: Yr(fv) + 4 }, svg, fmt(opts.log ? Math.pow(10, fv) : fv));
    });
    el("text", { x: m.l, y: hh - 8 }, svg, String(x0));
    el("text", { x: w - m.r, y: hh - 8, "text-anchor": "end" }, svg, (opts.xlabel ? opts.xlabel + " " : "") + String(x1));
    series.forEach(function (s, k) {
      var d = s.values.filter(function (p) { return p[1] !== null && (!opts.log || p[1] > 0); })
        .map(function (p) { return X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1); }).join(" ");
      el("polyline", { points: d, fill: "none", stroke: COLORS[k % COLORS.length], "stroke-width": 1.5, "class": "series" }, svg);
    });
    if (series.length > 1) {
      var lg = h("div", { "class": "legend" }, box);
      series.forEach(function (s, k) { h("span", { style: "color:" + COLORS[k % COLORS.length] }, lg, "■ " + s.name); });
    }
    return box;
  }
  function indexed(vals) { return vals.map(function (v, i) { return [i + 1, v]; }); }

  function trainingSection() {
    var T = D.training;
    if (!T) return;
    var s = section("training", "Training dynamics", T.skipped ? T.skipped :
      T.steps + " steps of " + T.optimizer + " on batches of " + T.batch_size + " (a copy of the network; yours is unchanged). Accuracy on the first " +
      T.eval_samples + " training samples. Gradient norms that shrink layer after layer towards the input are vanishing gradients; " +
      "an update/weight ratio far from about 1e-3 means a learning rate too large or too small for that layer.");
    if (T.skipped) return;
    var grid = h("div", { "class": "grid" }, s);
    chart(grid, "loss per step", [{ name: "loss", values: indexed(T.loss) }], { xlabel: "step" });
    chart(grid, "accuracy", [{ name: "accuracy", values: T.accuracy }], { ymin: 0, ymax: 1, xlabel: "step" });
    var ws = T.params.filter(function (p) { return p.key.charAt(0) !== "b"; });
    chart(grid, "gradient norm per parameter (log)", ws.map(function (p) { return { name: p.key + " (" + p.layer + ")", values: indexed(p.grad_norm) }; }), { log: true, xlabel: "step" });
    chart(grid, "update / weight ratio ‖ΔW‖/‖W‖ (log)", ws.map(function (p) { return { name: p.key, values: indexed(p.update_ratio) }; }), { log: true, xlabel: "step" });
    h("h3", {}, s, "Each layer's output before the first step and after the last");
    var g2 = h("div", { "class": "grid", id: "train-hists" }, s);
    T.start.forEach(function (a, i) {
      var c = h("div", { "class": "card" }, g2);
      h("h4", {}, c, a.name + " (" + a.kind + ")");
      histBox(c, a.out, "bar-f", "start ");
      histBox(c, T.end[i].out, "bar-f", "end ");
    });
  }

  function initSection() {
    var I = D.init;
    if (!I) return;
    var s = section("init", "Weight scale: each layer's output for each initialisation",
      "Chapter 6's experiment on this network: the weights drawn anew from N(0, s²) (std:X: s = X; xavier: s = √(1/fan_in); he: s = √(2/fan_in); biases 0), " +
      "then one forward and backward pass on the batch of " + I.batch + ". Outputs squeezed to 0 or to the ends of an activation's range, or gradient norms near 0, are what a poor scale does.");
    var wrap = h("div", { "class": "scroll" }, s), t = h("table", { id: "init-table" }, wrap), tr = h("tr", {}, t);
    h("th", { "class": "l" }, tr, "layer");
    I.columns.forEach(function (c) { h("th", {}, tr, c.init + " (loss " + fmt(c.loss) + ")"); });
    I.columns[0].layers.forEach(function (layer, i) {
      var row = h("tr", {}, t);
      h("td", { "class": "l" }, row, layer.name + " (" + layer.kind + ")");
      I.columns.forEach(function (c) {
        var td = h("td", {}, row), L = c.layers[i];
        histBox(td, L.out, "bar-f");
        if (L.grad_norm !== null) h("div", { "class": "bwd" }, td, "‖dW‖ " + fmt(L.grad_norm));
      });
    });
  }

  // ---- chapter 5's examples ----------------------------------------------------------------------
  function exampleSection() {
    var E = D.example, s = section("graph", E.title,
      "Forward values above each edge (black), the derivative of the price with respect to them below (red), starting from 1 at the price, " +
      "as the book's figures draw them. Click a node for its backward rule.");
    var colX = function (c) { return 40 + c * 230; }, rowY = function (r) { return 50 + r * 80; };
    var maxRow = 0; Object.keys(E.inputs).forEach(function (k) { maxRow = Math.max(maxRow, E.inputs[k][1]); });
    var maxCol = 0; E.nodes.forEach(function (n) { maxCol = Math.max(maxCol, n.col); });
    var svg = el("svg", { id: "graph-svg", width: colX(maxCol + 1) + 140, height: rowY(maxRow) + 60 }, s);
    var pos = {};
    E.nodes.forEach(function (n) { pos[n.id] = [colX(n.col), rowY(n.row)]; });
    E.edges.forEach(function (e, k) {
      var a = e.from ? pos[e.from] : [colX(0), rowY(E.inputs[e.name][1])];
      var b = e.to ? pos[e.to] : [colX(maxCol + 1), a[1]];
      var ax = a[0] + (e.from ? 26 : 0), bx = b[0] - (e.to ? 26 : 0);
      var g = el("g", { "class": "edge", "data-edge": k }, svg);
      el("line", { "class": "arrow-f", x1: ax, y1: a[1], x2: bx, y2: b[1] }, g);
      var mx = (ax + bx) / 2, my = (a[1] + b[1]) / 2;
      var tx = e.from ? mx - 14 : ax + 4, ty = e.from ? my : a[1];
      el("text", { "class": "shape", x: tx, y: ty - 8 }, g, (e.from && e.to ? "" : e.name + " ") + fmt(e.forward));
      el("text", { "class": "bwd", x: tx, y: ty + 16, style: "font-size:13px" }, g, fmt(e.backward));
    });
    E.nodes.forEach(function (n, i) {
      var g = el("g", { "class": "node", "data-index": i }, svg), p = pos[n.id];
      el("circle", { cx: p[0], cy: p[1], r: 26 }, g);
      el("text", { x: p[0], y: p[1] + 6, "text-anchor": "middle", style: "font-size:20px" }, g, n.op);
      el("title", {}, g, n.id + ": " + n.layer);
      g.addEventListener("click", function () { openExample(i); });
    });
    var p = section("panel", "Node", "");
    p.parentNode.removeChild(p); s.appendChild(p);
  }
  function openExample(i) {
    var E = D.example, n = E.nodes[i], p = document.getElementById("panel");
    while (p.childNodes.length) p.removeChild(p.firstChild);
    p.className = "open";
    var ins = E.edges.filter(function (e) { return e.to === n.id; }), out = E.edges.filter(function (e) { return e.from === n.id; })[0];
    h("h2", {}, p, n.id + " = " + n.layer + "()");
    var x = ins[0], y = ins[1], lines;
    if (n.op === "×") {
      lines = ["forward:  out = x · y = " + fmt(x.forward) + " × " + fmt(y.forward) + " = " + fmt(out.forward),
        "backward: dx = dout · y = " + fmt(out.backward) + " × " + fmt(y.forward) + " = " + fmt(x.backward) + "   (" + x.name + ")",
        "          dy = dout · x = " + fmt(out.backward) + " × " + fmt(x.forward) + " = " + fmt(y.backward) + "   (" + y.name + ")"];
    } else {
      lines = ["forward:  out = x + y = " + fmt(x.forward) + " + " + fmt(y.forward) + " = " + fmt(out.forward),
        "backward: dx = dout · 1 = " + fmt(x.backward) + "   (" + x.name + ")",
        "          dy = dout · 1 = " + fmt(y.backward) + "   (" + y.name + ")"];
    }
    h("div", { "class": "formula", id: "formula" }, p, lines.join("\n"));
  }

  function run() {
    header();
    if (D.kind === "example") { exampleSection(); return; }
    graph();
    layersSection();
    gradcheckSection();
    trainingSection();
    initSection();
  }
  function trimNav() {      // links only to the sections this page has
    document.querySelectorAll("nav a").forEach(function (a) {
      if (!document.getElementById(a.getAttribute("href").slice(1))) a.parentNode.removeChild(a);
    });
  }
  try { run(); trimNav(); document.body.setAttribute("data-rendered", "1"); }
  catch (e) { window.__fastdlErrors.push(String(e && e.stack || e)); throw e; }
})();
