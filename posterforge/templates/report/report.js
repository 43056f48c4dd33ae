// posterforge run report: draws the curves (inline SVG) and the sample timelines from the JSON
// in #report-data. No network, no library. When done it sets <body data-rendered="N charts">.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("report-data").textContent);

  function svgEl(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (parent) { parent.appendChild(e); }
    return e;
  }

  function htmlEl(name, cls, parent, text) {
    var e = document.createElement(name);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    if (parent) { parent.appendChild(e); }
    return e;
  }

  function fmt(v) {
    if (v === 0) { return "0"; }
    var a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) { return v.toExponential(1); }
    return String(Number(v.toPrecision(3)));
  }

  function ticks(lo, hi, n) {
    var raw = (hi - lo) / n;
    var step = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var ratio = raw / step;
    if (ratio >= 5) { step *= 10; } else if (ratio >= 2) { step *= 5; } else if (ratio >= 1.5) { step *= 2; }
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9 && out.length < 20; t += step) {
      out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
    }
    return out;
  }

  function extent(values) {
    var lo = Infinity, hi = -Infinity;
    values.forEach(function (v) { if (v < lo) { lo = v; } if (v > hi) { hi = v; } });
    if (hi === lo) { var d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
    return [lo, hi];
  }

  // one chart: a series per run, overlaid, in the run's colour
  function chart(parent, title, series) {
    var W = 400, H = 240, L = 58, R = 14, T = 26, B = 36;
    var xs = [], ys = [];
    series.forEach(function (s) {
      s.points.forEach(function (p) {
        if (isFinite(p[0]) && isFinite(p[1])) { xs.push(p[0]); ys.push(p[1]); }
      });
    });
    var fig = htmlEl("figure", "chart", parent);
    var svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img" }, fig);
    svgEl("text", { x: L, y: 17, "class": "title" }, svg).textContent = title;
    if (!xs.length) {
      svgEl("text", { x: W / 2, y: H / 2, "class": "empty" }, svg).textContent = "no values";
      return;
    }
    var xe = extent(xs), ye = extent(ys);
    var pad = (ye[1] - ye[0]) * 0.05;
    ye = [ye[0] - pad, ye[1] + pad];
    function X(v) { return L + (v - xe[0]) / (xe[1] - xe[0]) * (W - L - R); }
    function Y(v) { return H - B - (v - ye[0]) / (ye[1] - ye[0]) * (H - T - B); }
    ticks(ye[0], ye[1], 4).forEach(function (t) {
      svgEl("line", { x1: L, x2: W - R, y1: Y(t), y2: Y(t), "class": "grid" }, svg);
      svgEl("text", { x: L - 6, y: Y(t) + 4, "class": "ytick" }, svg).textContent = fmt(t);
    });
    ticks(xe[0], xe[1], 5).forEach(function (t) {
      svgEl("line", { x1: X(t), x2: X(t), y1: T, y2: H - B, "class": "grid" }, svg);
      svgEl("text", { x: X(t), y: H - B + 16, "class": "xtick" }, svg).textContent = fmt(t);
    });
    svgEl("rect", { x: L, y: T, width: W - L - R, height: H - T - B, "class": "frame" }, svg);
    svgEl("text", { x: W - R, y: H - 4, "class": "xlabel" }, svg).textContent = "step";
    series.forEach(function (s) {
      var pts = s.points.filter(function (p) { return isFinite(p[0]) && isFinite(p[1]); });
      if (!pts.length) { return; }
      var d = pts.map(function (p, i) {
        return (i ? "L" : "M") + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1);
      }).join(" ");
      var path = svgEl("path", { d: d, stroke: s.color, "class": "series" }, svg);
      svgEl("title", {}, path).textContent = s.label;
      if (pts.length < 30) {
        pts.forEach(function (p) {
          svgEl("circle", { cx: X(p[0]), cy: Y(p[1]), r: 2.5, fill: s.color }, svg);
        });
      }
    });
  }

  function keysOf(group) {
    var seen = [];
    data.runs.forEach(function (run) {
      Object.keys(run[group]).forEach(function (k) { if (seen.indexOf(k) < 0) { seen.push(k); } });
    });
    return seen;
  }

  var charts = 0;
  document.querySelectorAll(".charts[data-group]").forEach(function (box) {
    var group = box.getAttribute("data-group");
    var keys = keysOf(group);
    if (!keys.length) { htmlEl("p", "none", box, "Nothing recorded."); }
    var constant = [];
    keys.forEach(function (key) {
      var series = data.runs.filter(function (run) { return run[group][key]; }).map(function (run) {
        return { label: run.label, color: run.color, points: run[group][key] };
      });
      var values = [];
      series.forEach(function (s) { s.points.forEach(function (p) { values.push(p[1]); }); });
      var first = values[0];
      if (values.length > 1 && values.every(function (v) { return v === first; })) {
        constant.push(key + " = " + fmt(first));  // the same in every run: a line, not a chart
        return;
      }
      chart(box, key, series);
      charts += 1;
    });
    if (constant.length) {
      htmlEl("p", "constants", box, "Constant: " + constant.join(", ") + ".");
    }
  });

  // the sample grids of each run as a timeline: a slider over their steps
  document.querySelectorAll(".timeline[data-run]").forEach(function (box) {
    var run = data.runs[Number(box.getAttribute("data-run"))];
    if (!run.frames.length) { htmlEl("p", "none", box, "No sample grids yet."); return; }
    var bar = htmlEl("div", "slider", box);
    var input = htmlEl("input", "", bar);
    input.type = "range";
    input.min = "0";
    input.max = String(run.frames.length - 1);
    input.value = input.max;
    input.setAttribute("aria-label", run.label + ": sample grid");
    var label = htmlEl("span", "frame-step", bar);
    var img = htmlEl("img", "frame", box);
    img.alt = run.label + " samples";
    function show() {
      var f = run.frames[Number(input.value)];
      img.src = f.src;
      label.textContent = "step " + f.step + " (" + (Number(input.value) + 1) + " of " +
        run.frames.length + ")";
    }
    input.addEventListener("input", show);
    show();
  });

  document.body.setAttribute("data-rendered", String(charts) + " charts");
})();
