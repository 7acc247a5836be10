// chainrule playground: the page. Plain ES module, no library, no inline script.
//
// The server (chainrule, in Python) trains the network and streams snapshots over
// server-sent events; this page draws them. The heat maps are the snapshot's weights
// pushed forward over a grid of points here (the same z = W a + b, a = sigma(z)); every
// number in the equations panel comes from the server, in float64, unrounded.
//
// window.chainrulePlayground (documented in docs/playground.md):
//   ready                  a Promise, resolved at the first snapshot
//   state()                {config, epoch, steps, playing, trainLoss, testLoss,
//                           trainAccuracy, testAccuracy, sizes, example, version}
//   select(l, j)           Promise of the numbers shown for neuron j of layer l (1-based,
//                           as the text: l = 1..L): z, a, delta, w, b, a_prev, ...
//   selectLink(l, j, k)    Promise of BP4 for w^l_jk
//   backward()             Promise: starts the backward animation, resolves with its data
//   backwardTo(l)          show the backward pass at layer l
//   surface(w1, w2)        Promise of the cost surface over two weights [l, j, k]
//   setConfig(obj), play(), pause(), step(), reset()   Promises
//   stats()                {heatmaps, draws}: distinct output heat maps drawn so far

const FEATURES = {
  "x1": (x1, x2) => x1, "x2": (x1, x2) => x2, "x1^2": (x1, x2) => x1 * x1,
  "x2^2": (x1, x2) => x2 * x2, "x1x2": (x1, x2) => x1 * x2,
  "sin(x1)": (x1, x2) => Math.sin(x1), "sin(x2)": (x1, x2) => Math.sin(x2),
};
const FEATURE_LABEL = {
  "x1": "x<sub>1</sub>", "x2": "x<sub>2</sub>", "x1^2": "x<sub>1</sub><sup>2</sup>",
  "x2^2": "x<sub>2</sub><sup>2</sup>", "x1x2": "x<sub>1</sub>x<sub>2</sub>",
  "sin(x1)": "sin(x<sub>1</sub>)", "sin(x2)": "sin(x<sub>2</sub>)",
};
const FEATURE_TEXT = {"x1": "x1", "x2": "x2", "x1^2": "x1 squared", "x2^2": "x2 squared",
  "x1x2": "x1 times x2", "sin(x1)": "sine of x1", "sin(x2)": "sine of x2"};
// an input feature's range on [-6, 6]^2, mapped to the colours' -1..1
const FEATURE_SCALE = {"x1": (v) => v / 6, "x2": (v) => v / 6, "x1^2": (v) => v / 18 - 1,
  "x2^2": (v) => v / 18 - 1, "x1x2": (v) => v / 18, "sin(x1)": (v) => v, "sin(x2)": (v) => v};
const ACT = {
  tanh: Math.tanh, relu: (z) => (z > 0 ? z : 0),
  sigmoid: (z) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z))),
  identity: (z) => z,
};
const ACT_TEX = {tanh: "tanh", relu: "ReLU", sigmoid: "sigmoid", identity: "identity"};
const DATASETS = [
  ["circle", "Circle", "classification"], ["xor", "XOR", "classification"],
  ["gauss", "Gaussian", "classification"], ["spiral", "Spiral", "classification"],
  ["moons", "Two moons", "classification"], ["plane", "Plane", "regression"],
  ["multigauss", "Multi-Gaussian", "regression"],
];
const LRS = [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
const REGS = [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
const GRID = 50;        // output heat map: GRID x GRID points (smoothed to 300 x 300)
const SMALL = 16;       // neuron heat maps
const $ = (id) => document.getElementById(id);

let snap = null;        // the latest snapshot
let points = null;      // the data points (sent when they change)
let drawn = -1;         // version last drawn
let pending = false;
const stats = {heatmaps: 0, draws: 0, snapshots: 0, drawMs: 0};
let lastSum = NaN;
let selected = null;    // {kind: "neuron"|"link", ...}
let back = null;        // backward animation state
let surfaceData = null;
let surfaceAt = 0, surfaceBusy = false;

// ------------------------------------------------------------------ server
async function send(msg) {
  const r = await fetch("/api/message", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify(msg)});
  const body = await r.json();
  if (!r.ok) { status(body.error || `error ${r.status}`, true); throw new Error(body.error); }
  return body;
}

function status(text, bad = false) {
  const s = $("status");
  s.textContent = text;
  s.className = bad ? "bad" : "";
}

// ------------------------------------------------------------------ URL fragment
const NUMERIC = ["noise", "train_ratio", "batch_size", "lr", "reg_rate", "seed"];
function encodeConfig(c) {
  const parts = [];
  for (const [k, v] of Object.entries(c)) {
    parts.push(`${k}=${encodeURIComponent(Array.isArray(v) ? v.join(",") : v)}`);
  }
  return parts.join("&");
}
function decodeConfig(hash) {
  const out = {};
  for (const part of hash.replace(/^#/, "").split("&")) {
    if (!part) continue;
    const [k, raw] = part.split("=");
    const v = decodeURIComponent(raw || "");
    if (k === "hidden") out[k] = v === "" ? [] : v.split(",").map(Number);
    else if (k === "features") out[k] = v.split(",").filter((s) => s);
    else if (NUMERIC.includes(k)) out[k] = Number(v);
    else out[k] = v;
  }
  return out;
}

// ------------------------------------------------------------------ forward pass
const inputCache = new Map();
function gridInputs(s, n) {
  // a^0 over the grid: one column per chosen feature, computed once per (grid, features)
  const key = JSON.stringify([n, s.domain, s.config.features]);
  let cols = inputCache.get(key);
  if (cols) return cols;
  const [x0, x1, y0, y1] = s.domain;
  cols = s.config.features.map(() => new Float64Array(n * n));
  const feats = s.config.features.map((f) => FEATURES[f]);
  for (let r = 0; r < n; r++) {
    const p2 = y1 - (r + 0.5) / n * (y1 - y0);
    for (let c = 0; c < n; c++) {
      const p1 = x0 + (c + 0.5) / n * (x1 - x0);
      for (let k = 0; k < feats.length; k++) cols[k][r * n + c] = feats[k](p1, p2);
    }
  }
  if (inputCache.size > 8) inputCache.clear();
  inputCache.set(key, cols);
  return cols;
}

function forwardGrid(s, n) {
  // a^l = sigma(W^l a^{l-1} + b^l) over an n x n grid of the domain (row 0 at the top),
  // one layer at a time over all the points; returns the output and every a^l
  const L = s.layers.length;
  const outAct = s.config.task === "classification" ? "sigmoid" : "identity";
  const m = n * n;
  let prev = gridInputs(s, n);
  const maps = [prev];
  for (let l = 0; l < L; l++) {
    const {W, b} = s.layers[l];
    const f = ACT[l === L - 1 ? outAct : s.config.activation];
    const next = [];
    for (let j = 0; j < b.length; j++) {
      const z = new Float64Array(m).fill(b[j]);
      const w = W[j];
      for (let k = 0; k < prev.length; k++) {
        const wk = w[k], col = prev[k];
        for (let i = 0; i < m; i++) z[i] += wk * col[i];
      }
      for (let i = 0; i < m; i++) z[i] = f(z[i]);
      next.push(z);
    }
    maps.push(next);
    prev = next;
  }
  return {out: prev[0], maps};
}

// orange (-1) .. white (0) .. blue (+1), as TensorFlow Playground
function colour(v) {
  if (!(v === v)) return [128, 128, 128];
  v = Math.max(-1, Math.min(1, v));
  const w = [232, 234, 235], o = [245, 147, 34], b = [8, 119, 189];
  const t = Math.abs(v), e = v < 0 ? o : b;
  return [w[0] + (e[0] - w[0]) * t, w[1] + (e[1] - w[1]) * t, w[2] + (e[2] - w[2]) * t];
}

const PALETTE = 513, HALF = (PALETTE - 1) / 2;
const PAL = new Uint8ClampedArray(3 * PALETTE);
for (let q = 0; q < PALETTE; q++) PAL.set(colour(q / HALF - 1), 3 * q);

function paint(canvas, values, n, scale) {
  const ctx = canvas.getContext("2d");
  if (!canvas._img || canvas._n !== n) {
    canvas._img = ctx.createImageData(n, n);
    canvas._n = n;
    canvas._tmp = document.createElement("canvas");
    canvas._tmp.width = canvas._tmp.height = n;
  }
  const d = canvas._img.data;
  for (let i = 0; i < n * n; i++) {
    const v = scale(values[i]);
    // the colour table, 0..PALETTE-1 for -1..1; grey for NaN
    const q = v === v ? Math.round((Math.max(-1, Math.min(1, v)) + 1) * HALF) * 3 : -1;
    if (q < 0) { d[4 * i] = d[4 * i + 1] = d[4 * i + 2] = 128; } else {
      d[4 * i] = PAL[q]; d[4 * i + 1] = PAL[q + 1]; d[4 * i + 2] = PAL[q + 2];
    }
    d[4 * i + 3] = 255;
  }
  canvas._tmp.getContext("2d").putImageData(canvas._img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(canvas._tmp, 0, 0, canvas.width, canvas.height);
}

const outScale = (s) => (s.config.task !== "classification" ? (v) => v
  : $("discretize").checked ? (v) => (v > 0.5 ? 1 : -1) : (v) => 2 * v - 1);
function unitScale(act) {
  if (act === "sigmoid") return (v) => 2 * v - 1;
  if (act === "relu") return (v) => Math.min(v, 1);
  return (v) => v;
}

// ------------------------------------------------------------------ drawing
function schedule() {
  if (!pending) { pending = true; requestAnimationFrame(draw); }
}

function draw() {
  pending = false;
  const s = snap;
  if (!s || s.version === drawn) return;
  drawn = s.version;
  stats.draws++;
  const t0 = performance.now();
  const {out} = forwardGrid(s, GRID);
  paint($("heatmap"), out, GRID, outScale(s));
  drawPoints(s);
  let sum = 0;                           // a fingerprint: count only heat maps that differ
  for (let i = 0; i < out.length; i++) sum += out[i] * (1 + (i % 97));
  if (sum !== lastSum) { stats.heatmaps++; lastSum = sum; }
  drawUnits(s);
  drawLinks(s);
  drawLoss(s);
  $("epoch").textContent = String(s.epoch).padStart(6, "0");
  $("train_loss").textContent = fmt(s.train_loss, 3);
  $("test_loss").textContent = fmt(s.test_loss, 3);
  $("test_acc").textContent = s.test_accuracy === null ? "-" : fmt(s.test_accuracy, 3);
  if (s.diverged) status("The training diverged (NaN or infinite weights): lower the learning rate and press Reset.", true);
  const play = $("play");
  play.textContent = s.playing ? "Pause" : "Play";
  play.setAttribute("aria-pressed", String(s.playing));
  stats.drawMs += performance.now() - t0;
  if (surfaceData && s.playing && performance.now() - surfaceAt > 1000 && !surfaceBusy) {
    surfaceBusy = true;                  // the cost surface follows the training, once a second
    surface(surfaceData.w1, surfaceData.w2, 31).finally(() => { surfaceBusy = false; });
  }
}

let dotsKey = "", dotsCanvas = null;
function drawPoints(s) {
  if (!points) return;
  const c = $("heatmap");
  const [x0, x1, y0, y1] = s.domain;
  const sx = (v) => (v - x0) / (x1 - x0) * c.width, sy = (v) => (y1 - v) / (y1 - y0) * c.height;
  const showTest = $("show_test").checked;
  const cls = s.config.task === "classification";
  // the dots change only with the data: drawn once into their own layer, then copied
  const key = JSON.stringify([s.data_version, showTest, cls, s.domain]);
  if (key !== dotsKey) {
    dotsKey = key;
    dotsCanvas = document.createElement("canvas");
    dotsCanvas.width = c.width; dotsCanvas.height = c.height;
    drawDots(dotsCanvas.getContext("2d"), sx, sy, showTest, cls);
  }
  const ctx = c.getContext("2d");
  ctx.drawImage(dotsCanvas, 0, 0);
  const e = points.train[s.example];
  if (e !== undefined) {
    const [p1, p2] = points.X[e];
    ctx.beginPath();
    ctx.arc(sx(p1), sy(p2), 8, 0, 2 * Math.PI);
    ctx.lineWidth = 2.5;
    ctx.strokeStyle = "#d00";
    ctx.stroke();
  }
}

function drawDots(ctx, sx, sy, showTest, cls) {
  const dot = (i, test) => {
    const [p1, p2] = points.X[i];
    const v = cls ? 2 * points.y[i] - 1 : points.y[i];
    const [r, g, b] = colour(v);
    ctx.beginPath();
    ctx.arc(sx(p1), sy(p2), 3.2, 0, 2 * Math.PI);
    ctx.fillStyle = `rgb(${r | 0},${g | 0},${b | 0})`;
    ctx.fill();
    ctx.lineWidth = 1;
    ctx.strokeStyle = test ? "#000" : "#fff";
    ctx.stroke();
  };
  for (const i of points.train) dot(i, false);
  if (showTest) for (const i of points.test) dot(i, true);
}

// network diagram geometry
const BOX = 34, COLW = 118, ROWH = 46, TOP = 62, LEFT = 64;
let layoutKey = "";
function nodePos(col, row) { return [LEFT + col * COLW, TOP + row * ROWH]; }

function buildDiagram(s) {
  const key = JSON.stringify([s.sizes, s.config.features, s.config.task]);
  if (key === layoutKey) return;
  layoutKey = key;
  const nodes = $("nodes"), svg = $("links");
  nodes.textContent = "";
  svg.textContent = "";
  const sizes = s.sizes, L = sizes.length - 1;
  const width = LEFT + L * COLW + BOX + 40, height = TOP + 8 * ROWH + 4;
  svg.setAttribute("width", width); svg.setAttribute("height", height);
  $("diagram").style.width = width + "px"; $("diagram").style.height = height + "px";
  // all 7 features as toggles in column 0; the chosen ones are the inputs a^0
  const all = Object.keys(FEATURES);
  const chosen = s.config.features;
  all.forEach((f, r) => {
    const [x, y] = nodePos(0, r);
    const b = document.createElement("button");
    b.type = "button";
    b.className = "node feature" + (chosen.includes(f) ? " on" : "");
    b.style.left = x + "px"; b.style.top = y + "px";
    b.setAttribute("aria-pressed", String(chosen.includes(f)));
    b.setAttribute("aria-label", `input feature ${FEATURE_TEXT[f]}`);
    b.innerHTML = `<span class="flabel">${FEATURE_LABEL[f]}</span>`;
    const cv = document.createElement("canvas");
    cv.width = cv.height = BOX; cv.dataset.unit = `0:${chosen.indexOf(f)}`;
    if (chosen.includes(f)) b.appendChild(cv);
    b.addEventListener("click", () => {
      const next = chosen.includes(f) ? chosen.filter((g) => g !== f) : [...chosen, f];
      if (next.length) setConfig({features: next});
    });
    nodes.appendChild(b);
  });
  const heads = document.createElement("div");
  heads.className = "heads";
  for (let l = 0; l <= L; l++) {
    const [x] = nodePos(l, 0);
    const h = document.createElement("div");
    h.className = "head";
    h.style.left = (x - 30) + "px";
    h.innerHTML = l === 0 ? "a<sup>0</sup> inputs" : (l === L ? `l = L = ${l}<br>output`
      : `l = ${l}`);
    heads.appendChild(h);
    if (l > 0 && l < L) {
      const pm = document.createElement("div");
      pm.className = "pm";
      pm.style.left = (x - 6) + "px";
      pm.innerHTML = `<button type="button" aria-label="Add a neuron to layer ${l}">+</button>` +
        `<button type="button" aria-label="Remove a neuron from layer ${l}">&minus;</button>`;
      const [plus, minus] = pm.querySelectorAll("button");
      plus.addEventListener("click", () => changeNeurons(l, +1));
      minus.addEventListener("click", () => changeNeurons(l, -1));
      heads.appendChild(pm);
    }
  }
  nodes.appendChild(heads);
  // links first (beneath the nodes), then neurons
  const rowOf = (l, k) => (l === 0 ? all.indexOf(chosen[k]) : k);
  for (let l = 1; l <= L; l++) {
    for (let j = 0; j < sizes[l]; j++) {
      for (let k = 0; k < sizes[l - 1]; k++) {
        const [xa, ya] = nodePos(l - 1, rowOf(l - 1, k)), [xb, yb] = nodePos(l, j);
        const p = document.createElementNS("http://www.w3.org/2000/svg", "path");
        const x1 = xa + BOX, y1 = ya + BOX / 2, x2 = xb, y2 = yb + BOX / 2, mx = (x1 + x2) / 2;
        p.setAttribute("d", `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`);
        p.setAttribute("class", "link");
        p.setAttribute("tabindex", "0");
        p.setAttribute("role", "button");
        p.setAttribute("aria-label", `weight ${uname([l, j + 1, k + 1])}: layer ${l}, into node ${
          j + 1} from node ${k + 1} of layer ${l - 1}`);
        p.dataset.w = `${l}:${j}:${k}`;
        const go = () => selectLink(l, j + 1, k + 1);
        p.addEventListener("click", go);
        p.addEventListener("keydown", (ev) => {
          if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); }
        });
        svg.appendChild(p);
      }
    }
  }
  for (let l = 1; l <= L; l++) {
    for (let j = 0; j < sizes[l]; j++) {
      const [x, y] = nodePos(l, j);
      const b = document.createElement("button");
      b.type = "button";
      b.className = "node unit" + (l === L ? " out" : "");
      b.style.left = x + "px"; b.style.top = y + "px";
      b.dataset.unit = `${l}:${j}`;
      b.setAttribute("aria-label", `neuron ${j + 1} of layer ${l}${l === L ? " (output)" : ""}`);
      b.title = `neuron ${j + 1} of layer ${l}: click for z, a and \u03b4`;
      const idx = document.createElement("span");
      idx.className = "idx"; idx.textContent = String(j + 1); idx.setAttribute("aria-hidden", "true");
      b.appendChild(idx);
      const cv = document.createElement("canvas");
      cv.width = cv.height = BOX;
      cv.dataset.unit = `${l}:${j}`;
      b.appendChild(cv);
      b.addEventListener("click", () => select(l, j + 1));
      nodes.appendChild(b);
    }
  }
  $("layer-count").textContent = `${L - 1} hidden layer${L - 1 === 1 ? "" : "s"}`;
  fillWeightChoices(s);
  markSelection();
}

function drawUnits(s) {
  buildDiagram(s);
  const {maps} = forwardGrid(s, SMALL);
  const L = s.layers.length;
  for (const cv of document.querySelectorAll("#nodes canvas")) {
    const [l, j] = cv.dataset.unit.split(":").map(Number);
    if (j < 0 || !maps[l] || !maps[l][j]) continue;
    const sc = l === 0 ? FEATURE_SCALE[s.config.features[j]]
      : (l === L ? outScale(s) : unitScale(s.config.activation));
    paint(cv, maps[l][j], SMALL, sc);
  }
}

function drawLinks(s) {
  for (const p of document.querySelectorAll("#links path")) {
    if (!p._w) p._w = p.dataset.w.split(":").map(Number);
    const [l, j, k] = p._w;
    const w = s.layers[l - 1].W[j][k];
    const width = Math.round(Math.min(8, 0.6 + Math.abs(w) * 1.6) * 4) / 4;
    const key = w >= 0 ? width : -width;
    if (p._key === key) continue;        // touch the DOM only when the picture changes
    p._key = key;
    p.style.strokeWidth = width;
    p.style.stroke = w >= 0 ? "#0877bd" : "#f59322";
  }
}

function drawLoss(s) {
  const c = $("losscurve"), ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  const h = s.history;
  if (h.length < 2) return;
  let top = 0;
  for (const [, a, b] of h) top = Math.max(top, a || 0, b || 0);
  top = top || 1;
  const X = (i) => i / (h.length - 1) * (c.width - 4) + 2;
  const Y = (v) => c.height - 3 - (v / top) * (c.height - 8);
  for (const [idx, col] of [[1, "#777"], [2, "#0877bd"]]) {
    ctx.beginPath();
    h.forEach((row, i) => { const y = Y(row[idx] ?? top); i ? ctx.lineTo(X(i), y) : ctx.moveTo(X(i), y); });
    ctx.strokeStyle = col; ctx.lineWidth = 1.5; ctx.stroke();
  }
}

// ------------------------------------------------------------------ controls
function fillSelect(el, values, fmtv) {
  el.textContent = "";
  for (const v of values) {
    const o = document.createElement("option");
    o.value = String(v); o.textContent = fmtv ? fmtv(v) : String(v);
    el.appendChild(o);
  }
}

function syncControls(c) {
  for (const k of ["mode", "activation", "regularization", "task"]) $(k).value = c[k];
  $("lr").value = String(c.lr);
  $("reg_rate").value = String(c.reg_rate);
  for (const k of ["train_ratio", "noise", "batch_size"]) {
    $(k).value = c[k];
    $(k + "_out").textContent = k === "noise" ? String(c[k] / 100) : String(c[k]);
  }
  $("batch_size").disabled = c.mode !== "minibatch";
  for (const b of document.querySelectorAll("#datasets button")) {
    b.setAttribute("aria-pressed", String(b.dataset.name === c.dataset));
  }
  $("remove-layer").disabled = c.hidden.length === 0;
  $("add-layer").disabled = c.hidden.length >= 6;
  const frag = "#" + encodeConfig(c);
  if (location.hash !== frag) history.replaceState(null, "", frag);
}

async function setConfig(changes) {
  const r = await send({type: "config", ...changes});
  status("");
  return r;
}

function changeNeurons(l, d) {
  const hidden = [...snap.config.hidden];
  hidden[l - 1] = Math.max(1, Math.min(8, hidden[l - 1] + d));
  setConfig({hidden});
}

function initControls() {
  fillSelect($("lr"), LRS);
  fillSelect($("reg_rate"), REGS);
  const ds = $("datasets");
  for (const [name, label, task] of DATASETS) {
    const b = document.createElement("button");
    b.type = "button"; b.dataset.name = name; b.textContent = label;
    b.setAttribute("aria-pressed", "false");
    b.title = task;
    b.addEventListener("click", () => setConfig({dataset: name, task}));
    ds.appendChild(b);
  }
  $("play").addEventListener("click", () => send({type: snap && snap.playing ? "pause" : "play"}));
  $("step").addEventListener("click", () => send({type: "step"}));
  $("reset").addEventListener("click", () => send({type: "reset"}));
  $("regenerate").addEventListener("click", () => setConfig({seed: (snap.config.seed + 1) % 2147483647}));
  for (const k of ["mode", "activation", "regularization"]) {
    $(k).addEventListener("change", () => setConfig({[k]: $(k).value}));
  }
  $("task").addEventListener("change", () => {
    const task = $("task").value;
    setConfig({task, dataset: task === "classification" ? "circle" : "plane"});
  });
  for (const k of ["lr", "reg_rate"]) {
    $(k).addEventListener("change", () => setConfig({[k]: Number($(k).value)}));
  }
  for (const k of ["train_ratio", "noise", "batch_size"]) {
    $(k).addEventListener("change", () => setConfig({[k]: Number($(k).value)}));
    $(k).addEventListener("input", () => {
      $(k + "_out").textContent = k === "noise" ? String($(k).value / 100) : $(k).value;
    });
  }
  $("add-layer").addEventListener("click", () => {
    const h = snap.config.hidden;
    if (h.length < 6) setConfig({hidden: [...h, 2]});
  });
  $("remove-layer").addEventListener("click", () => {
    const h = snap.config.hidden;
    if (h.length) setConfig({hidden: h.slice(0, -1)});
  });
  $("show_test").addEventListener("change", () => { drawn = -1; schedule(); });
  $("discretize").addEventListener("change", () => { drawn = -1; schedule(); });
  $("example").addEventListener("change", () => {
    send({type: "example", index: Number($("example").value)}).then(refreshSelection);
  });
  $("heatmap").addEventListener("click", (ev) => {
    if (!points || !snap) return;
    const c = $("heatmap"), rect = c.getBoundingClientRect();
    const [x0, x1, y0, y1] = snap.domain;
    const px = x0 + (ev.clientX - rect.left) / rect.width * (x1 - x0);
    const py = y1 - (ev.clientY - rect.top) / rect.height * (y1 - y0);
    let best = 0, bd = Infinity;
    points.train.forEach((i, t) => {
      const d = (points.X[i][0] - px) ** 2 + (points.X[i][1] - py) ** 2;
      if (d < bd) { bd = d; best = t; }
    });
    send({type: "example", index: best}).then(refreshSelection);
  });
  $("csv").addEventListener("change", async () => {
    const f = $("csv").files[0];
    if (!f) return;
    const r = await fetch("/api/upload", {method: "POST", headers: {"Content-Type": "text/csv"},
      body: await f.arrayBuffer()});
    const body = await r.json();
    if (!r.ok) status(`CSV not loaded: ${body.error}`, true);
    else status(`Loaded ${body.rows} rows (${body.task}) from your CSV.`);
  });
  $("backward").addEventListener("click", () => backward());
  $("backward-next").addEventListener("click", () => {
    if (back) backwardTo(back.at - 1);
  });
  $("draw-surface").addEventListener("click", () => {
    surface(JSON.parse($("w1").value), JSON.parse($("w2").value));
  });
}

const SUPS = "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079";
const SUBS = "\u2080\u2081\u2082\u2083\u2084\u2085\u2086\u2087\u2088\u2089";
const uname = (w) => `w${SUPS[w[0]]}${SUBS[w[1]]},${SUBS[w[2]]}`;

function fillWeightChoices(s) {
  const opts = [];
  for (let l = 1; l < s.sizes.length; l++) {
    for (let j = 1; j <= s.sizes[l]; j++) {
      for (let k = 1; k <= s.sizes[l - 1]; k++) opts.push([l, j, k]);
    }
  }
  for (const [id, dflt] of [["w1", 0], ["w2", 1]]) {
    const el = $(id), old = el.value;
    el.textContent = "";
    for (const w of opts) {
      const o = document.createElement("option");
      o.value = JSON.stringify(w);
      o.textContent = `${uname(w)}: into node ${w[1]} of layer ${w[0]} from node ${w[2]} of layer ${w[0] - 1}`;
      el.appendChild(o);
    }
    const keep = opts.some((w) => JSON.stringify(w) === old);
    el.value = keep ? old : JSON.stringify(opts[Math.min(dflt, opts.length - 1)]);
  }
}

// ------------------------------------------------------------------ the mathematics
const num = (v, d = 4) => (v === null || v === undefined ? "NaN" : Number(v).toPrecision(d)
  .replace(/\.?0+e/, "e").replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, ""));
function fmt(v, d = 4) { return v === null || v === undefined ? "NaN" : Number(v).toFixed(d); }
const par = (v) => (v < 0 ? `(${num(v)})` : num(v));
const sub = (s) => `<sub>${s}</sub>`, sup = (s) => `<sup>${s}</sup>`;
// a result on the page: rounded to read, and its exact float64 in data-exact for tests
const shown = (q, v) => `<b data-q="${q}" data-exact="${v}">${num(v)}</b>`;
const inName = (r, k) => (r.layer === 1 ? `a${sup(0)}${sub(k)} = ${FEATURE_LABEL[r.features[k - 1]]}`
  : `a${sup(r.layer - 1)}${sub(k)}`);

function sigmaPrimeText(act, z, a) {
  if (act === "tanh") return `1 &minus; a${sup(2)} = 1 &minus; ${par(a)}${sup(2)}`;
  if (act === "sigmoid") return `a(1 &minus; a) = ${num(a)}(1 &minus; ${num(a)})`;
  if (act === "relu") return `[z &gt; 0] (z = ${num(z)})`;
  return "1";
}

function exampleLine(r) {
  const e = r.example;
  return `<p class="ex">Training example #${e.index}: point (x${sub(1)}, x${sub(2)}) = (${
    num(e.point[0])}, ${num(e.point[1])}), label y = ${num(e.y)}. The cost of this one example:
    C = &frac12;(y &minus; a${sup("L")})${sup(2)} = ${num(r.cost_value)} (the text's MSE with m = 1).</p>`;
}

function renderNeuron(r) {
  const l = r.layer, j = r.neuron;
  const terms = r.w.map((w, k) => `${par(w)}&middot;${par(r.a_prev[k])}`).join(" + ");
  const names = r.w.map((_, k) => `w${sup(l)}${sub(`${j},${k + 1}`)}a${sup(l - 1)}${sub(k + 1)}`).join(" + ");
  let delta;
  if (r.equation === "BP1") {
    delta = `<p><b>BP1</b> (output layer): &delta;${sup("L")}${sub(j)} = &part;C/&part;a${sup("L")}${sub(j)} &middot; &sigma;&prime;(z${sup("L")}${sub(j)})</p>
      <p class="num">= (a &minus; y) &middot; &sigma;&prime;(z) = (${num(r.a)} &minus; ${num(r.example.y)}) &middot; ${num(r.sigma_prime)}
      = ${num(r.grad_a)} &middot; ${num(r.sigma_prime)} = ${shown("delta", r.delta)}</p>
      <p class="hint">&sigma;&prime;(z) for ${ACT_TEX[r.activation]}: ${sigmaPrimeText(r.activation, r.z, r.a)} = ${num(r.sigma_prime)}</p>`;
  } else {
    const bt = r.w_next.map((w, i) => `${par(w)}&middot;${par(r.delta_next[i])}`).join(" + ");
    delta = `<p><b>BP2</b> (hidden layer): &delta;${sup(l)}${sub(j)} = (&Sigma;${sub("i")} w${sup(l + 1)}${sub(`i,${j}`)} &delta;${sup(l + 1)}${sub("i")}) &middot; &sigma;&prime;(z${sup(l)}${sub(j)})
      &nbsp; [the j-th entry of ((W${sup(l + 1)})${sup("T")}&delta;${sup(l + 1)}) &#8857; &sigma;&prime;(z${sup(l)})]</p>
      <p class="num">= (${bt}) &middot; ${num(r.sigma_prime)} = ${num(r.back)} &middot; ${num(r.sigma_prime)} = ${shown("delta", r.delta)}</p>
      <p class="hint">&sigma;&prime;(z) for ${ACT_TEX[r.activation]}: ${sigmaPrimeText(r.activation, r.z, r.a)} = ${num(r.sigma_prime)}</p>`;
  }
  const inputs = l === 1 ? `<p class="hint">Inputs: ${r.a_prev.map((v, k) => `${inName(r, k + 1)} = ${num(v)}`).join(", ")}</p>` : "";
  $("equations").innerHTML = `<h3>Neuron ${j} of layer l = ${l}${l === r.L ? " (the output, L)" : ""}</h3>
    ${exampleLine(r)}${inputs}
    <p><b>Forward</b>: z${sup(l)}${sub(j)} = ${names} + b${sup(l)}${sub(j)}</p>
    <p class="num">= ${terms} + ${par(r.b)} = ${shown("z", r.z)}</p>
    <p>a${sup(l)}${sub(j)} = &sigma;(z${sup(l)}${sub(j)}) = ${ACT_TEX[r.activation]}(${num(r.z)}) = ${shown("a", r.a)}</p>
    <p><b>Backward</b>: the error of this node, &delta;${sup(l)}${sub(j)} = &part;C/&part;z${sup(l)}${sub(j)}</p>${delta}
    <p class="hint">BP3: &part;C/&part;b${sup(l)}${sub(j)} = &delta;${sup(l)}${sub(j)} = ${num(r.delta)}. Numbers rounded to 4 digits here;
      window.chainrulePlayground.select(${l}, ${j}) gives them unrounded.</p>`;
}

function renderLink(r) {
  const {layer: l, j, k} = r;
  $("equations").innerHTML = `<h3>Weight w${sup(l)}${sub(`${j},${k}`)}: from node ${k} of layer ${l - 1} into node ${j} of layer ${l}</h3>
    ${exampleLine(r)}
    <p>w${sup(l)}${sub(`${j},${k}`)} = ${num(r.w)}</p>
    <p><b>BP4</b>: &part;C/&part;w${sup(l)}${sub(`${j},${k}`)} = a${sup(l - 1)}${sub(k)} &delta;${sup(l)}${sub(j)}</p>
    <p class="num">= ${par(r.a_prev_k)} &middot; ${par(r.delta_j)} = ${shown("dC_dw", r.dC_dw)}</p>
    <p>Over all ${r.m_train} training points (what GD steps with, BP4 averaged by the 1/m of C):
      &part;C/&part;w = ${num(r.dC_dw_train)}, so one GD step moves this weight by
      &minus;&alpha; &middot; ${num(r.dC_dw_train)} = ${num(-r.lr * r.dC_dw_train)} (&alpha; = ${r.lr}).</p>`;
}

function markSelection() {
  for (const el of document.querySelectorAll(".node.unit, #links path")) el.classList.remove("selected");
  if (!selected) return;
  if (selected.kind === "neuron") {
    const el = document.querySelector(`.node.unit[data-unit="${selected.l}:${selected.j - 1}"]`);
    if (el) el.classList.add("selected");
  } else if (selected.kind === "link") {
    const el = document.querySelector(`#links path[data-w="${selected.l}:${selected.j - 1}:${selected.k - 1}"]`);
    if (el) el.classList.add("selected");
  }
}

async function select(l, j) {
  const r = await send({type: "select", layer: l, neuron: j});
  selected = {kind: "neuron", l, j};
  stopBackward();
  renderNeuron(r);
  markSelection();
  return r;
}

async function selectLink(l, j, k) {
  const r = await send({type: "link", layer: l, j, k});
  selected = {kind: "link", l, j, k};
  stopBackward();
  renderLink(r);
  markSelection();
  return r;
}

function refreshSelection() {
  if (!selected) return;
  if (selected.kind === "neuron") select(selected.l, selected.j);
  else selectLink(selected.l, selected.j, selected.k);
}

// backward mode: one backward pass, layer by layer, as the chain rule (text 1.5.3, 1.5.4)
function stopBackward() {
  if (back && back.timer) clearTimeout(back.timer);
  back = null;
  $("backward-next").disabled = true;
  for (const el of document.querySelectorAll(".node.unit")) el.classList.remove("hot", "done");
  for (const el of document.querySelectorAll("#links path")) el.classList.remove("hot");
}

async function backward(delayMs = 2500) {
  stopBackward();
  const r = await send({type: "backward"});
  selected = null;
  markSelection();
  back = {data: r, at: r.layers.length + 1, delay: delayMs, timer: null};
  backwardTo(r.layers.length);
  return r;
}

function vec(v) { return `[${v.map((x) => num(x)).join(", ")}]`; }

function backwardTo(l) {
  if (!back) return;
  const r = back.data, L = r.layers.length;
  if (l < 1) { stopBackward(); return; }
  if (back.timer) clearTimeout(back.timer);
  back.at = l;
  const rec = r.layers[L - l];
  for (const el of document.querySelectorAll(".node.unit")) {
    const ul = Number(el.dataset.unit.split(":")[0]);
    el.classList.toggle("hot", ul === l);
    el.classList.toggle("done", ul > l);
  }
  for (const el of document.querySelectorAll("#links path")) {
    el.classList.toggle("hot", Number(el.dataset.w.split(":")[0]) === l + 1);
  }
  let body;
  if (rec.equation === "BP1") {
    body = `<p><b>BP1</b>: &delta;${sup("L")} = &nabla;${sub("a")}C &#8857; &sigma;&prime;(z${sup("L")})</p>
      <p class="num">= ${vec(rec.grad_a)} &#8857; ${vec(rec.sigma_prime)} = <b>${vec(rec.delta)}</b></p>
      <p class="hint">The chain rule starts at the cost: &part;C/&part;z${sup("L")} = &part;C/&part;a${sup("L")} &middot;
        &part;a${sup("L")}/&part;z${sup("L")}, two local derivatives multiplied (text 1.5.3).</p>`;
  } else {
    body = `<p><b>BP2</b>: &delta;${sup(l)} = ((W${sup(l + 1)})${sup("T")} &delta;${sup(l + 1)}) &#8857; &sigma;&prime;(z${sup(l)})</p>
      <p class="num">with &delta;${sup(l + 1)} = ${vec(r.layers[L - l - 1].delta)} from the step before and
        &sigma;&prime;(z${sup(l)}) = ${vec(rec.sigma_prime)} (${ACT_TEX[rec.activation]}):</p>
      <p class="num">= ${vec(rec.back)} &#8857; ${vec(rec.sigma_prime)} = <b>${vec(rec.delta)}</b></p>
      <p class="hint">One more link of the chain: &part;C/&part;z${sup(l)} = (&part;z${sup(l + 1)}/&part;a${sup(l)})${sup("T")}
        &part;C/&part;z${sup(l + 1)} &#8857; &part;a${sup(l)}/&part;z${sup(l)}. The Jacobian &part;z${sup(l + 1)}/&part;a${sup(l)} is W${sup(l + 1)}
        and &part;a${sup(l)}/&part;z${sup(l)} is diagonal, hence the Hadamard product (text 1.5.4). The error of layer ${l + 1}
        flows back along the highlighted weights.</p>`;
  }
  $("equations").innerHTML = `<h3>Backward pass: layer l = ${l}${l === L ? " = L (output)" : ""}, step ${L - l + 1} of ${L}</h3>
    <p class="hint">In the network: <span class="hotkey">red</span> the layer whose error &delta;${sup(l)} is computed now,
      <span class="donekey">pink</span> the layers done; the moving dashes are the weights the error flows back along.</p>
    ${exampleLine(r)}${body}
    <p class="hint">With &delta;${sup(l)} known: &part;C/&part;b${sup(l)} = &delta;${sup(l)} (BP3) and
      &part;C/&part;W${sup(l)} = &delta;${sup(l)} (a${sup(l - 1)})${sup("T")} (BP4).
      ${l > 1 ? "Next: layer " + (l - 1) + "." : "Done: every gradient is known, and GD takes the step &Theta; &larr; &Theta; &minus; &alpha;&nabla;C."}</p>`;
  $("backward-next").disabled = l <= 1;
  if (back.delay > 0 && l > 1) back.timer = setTimeout(() => backwardTo(l - 1), back.delay);
}

// the cost surface over two weights (text 3.7), with the path of gradient descent
async function surface(w1, w2, steps = 51) {
  const r = await send({type: "surface", w1, w2, steps});
  surfaceData = r;
  surfaceAt = performance.now();
  $("w1").value = JSON.stringify(w1); $("w2").value = JSON.stringify(w2);
  drawSurface(r);
  return r;
}

function drawSurface(r) {
  const c = $("surface-canvas"), ctx = c.getContext("2d");
  const n = r.u.length, pad = 44, size = c.width - pad - 10;
  const flat = r.cost.flat().filter((v) => v !== null);
  const lo = Math.min(...flat), hi = Math.max(...flat);
  const img = ctx.createImageData(n, n);
  const LEVELS = 14;
  for (let row = 0; row < n; row++) {
    for (let col = 0; col < n; col++) {
      const v = r.cost[n - 1 - row][col];
      const t = v === null ? 1 : (v - lo) / (hi - lo || 1);
      const band = Math.floor(Math.sqrt(t) * LEVELS) / LEVELS;  // contour bands
      const i = 4 * (row * n + col);
      img.data[i] = 40 + 215 * band; img.data[i + 1] = 70 + 150 * band;
      img.data[i + 2] = 150 - 100 * band; img.data[i + 3] = 255;
    }
  }
  const tmp = document.createElement("canvas");
  tmp.width = tmp.height = n;
  tmp.getContext("2d").putImageData(img, 0, 0);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, c.width, c.height);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(tmp, pad, 10, size, size);
  const u0 = r.u[0], u1 = r.u[n - 1], v0 = r.v[0], v1 = r.v[n - 1];
  const X = (u) => pad + (u - u0) / (u1 - u0) * size, Y = (v) => 10 + (v1 - v) / (v1 - v0) * size;
  ctx.save();
  ctx.beginPath(); ctx.rect(pad, 10, size, size); ctx.clip();
  ctx.beginPath();
  r.path.forEach(([u, v], i) => (i ? ctx.lineTo(X(u), Y(v)) : ctx.moveTo(X(u), Y(v))));
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 2; ctx.stroke();
  const [su, sv] = r.path[0];
  ctx.fillStyle = "#1a1"; ctx.beginPath(); ctx.arc(X(su), Y(sv), 5, 0, 7); ctx.fill();
  ctx.fillStyle = "#e11"; ctx.beginPath(); ctx.arc(X(r.now[0]), Y(r.now[1]), 5, 0, 7); ctx.fill();
  ctx.restore();
  ctx.fillStyle = "#222"; ctx.font = "12px sans-serif";
  const name = uname;
  ctx.fillText(`${name(r.w1)} \u2192`, pad + size / 2 - 20, c.height - 6);
  ctx.fillText(num(u0, 3), pad, c.height - 20); ctx.fillText(num(u1, 3), pad + size - 30, c.height - 20);
  ctx.save(); ctx.translate(12, 10 + size / 2 + 20); ctx.rotate(-Math.PI / 2);
  ctx.fillText(`${name(r.w2)} \u2192`, 0, 0); ctx.restore();
  ctx.fillText(num(v1, 3), 2, 20); ctx.fillText(num(v0, 3), 2, 10 + size);
  const modes = {gd: "GD (all points per step)", sgd: "SGD (one point per step)", minibatch: "minibatch SGD"};
  $("surface-caption").innerHTML = `The cost C over the training set as w${sup(r.w1[0])}${sub(`${r.w1[1]},${r.w1[2]}`)}
    (across) and w${sup(r.w2[0])}${sub(`${r.w2[1]},${r.w2[2]}`)} (up) vary, every other weight and bias held at
    its value now (epoch ${r.epoch}). Dark: low cost, light: high (C from ${num(lo, 3)} to ${num(hi, 3)}).
    The white line is the path these two weights took under ${modes[r.mode]}, from the green dot (epoch 0)
    to the red dot (now, C = ${num(r.cost_now, 4)}). Each step goes along &minus;&nabla;C, downhill; the other
    weights moved too, so the path is not confined to this slice.`;
}

// ------------------------------------------------------------------ start
let syncedKey = "";
function onSnapshot(s) {
  if (s.points) points = s.points;
  const layoutChanged = !snap || JSON.stringify(snap.sizes) !== JSON.stringify(s.sizes);
  snap = s;
  // the controls follow the configuration; touched only when it (or the example) changes
  const key = JSON.stringify([s.config, s.example, s.data_version]);
  if (key !== syncedKey) {
    syncedKey = key;
    syncControls(s.config);
    $("example").max = points ? points.train.length - 1 : 0;
    $("example").value = s.example;
  }
  if (layoutChanged) { selected = null; stopBackward(); }
  schedule();
}

let readyResolve;
const ready = new Promise((res) => { readyResolve = res; });

async function start() {
  initControls();
  const hash = decodeConfig(location.hash);
  if (Object.keys(hash).length) {
    try { await setConfig(hash); } catch (e) { status(`The link's configuration was not valid: ${e.message}`, true); }
  }
  const es = new EventSource("/events");
  es.onmessage = (ev) => {
    stats.snapshots++;
    onSnapshot(JSON.parse(ev.data));
    if (readyResolve) {   // ready: the first snapshot drawn, the diagram built
      draw();
      readyResolve();
      readyResolve = null;
    }
  };
  es.onerror = () => status("Lost the connection to the chainrule server (is it still running?)", true);
}

window.chainrulePlayground = Object.freeze({
  ready,
  state: () => (snap ? {
    config: snap.config, epoch: snap.epoch, steps: snap.steps, playing: snap.playing,
    trainLoss: snap.train_loss, testLoss: snap.test_loss, trainAccuracy: snap.train_accuracy,
    testAccuracy: snap.test_accuracy, sizes: snap.sizes, example: snap.example,
    version: snap.version,
  } : null),
  select, selectLink, backward, backwardTo, surface, setConfig,
  play: () => send({type: "play"}), pause: () => send({type: "pause"}),
  step: () => send({type: "step"}), reset: () => send({type: "reset"}),
  stats: () => ({...stats}),
});

start();
