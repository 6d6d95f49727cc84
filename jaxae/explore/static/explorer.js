// The explorer page: draws the planes and images the server sends, asks it for decodes as the pointer moves.
"use strict";

// matplotlib's tab10, the colours of the figures' latent scatters.
const CLASS_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const PLOT = { size: 330, left: 46, right: 10, top: 10, bottom: 38 };

async function getJson(path, params) {
  const url = path + (params ? "?" + new URLSearchParams(params) : "");
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function showError(error) {
  const status = document.getElementById("status");
  status.textContent = String(error.message || error);
  status.hidden = false;
}

function bytesOf(base64) {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

// Draws uint8 pixels (H, W, C) at one canvas pixel per image pixel; CSS scales it up.
function drawPixels(canvas, pixels, [height, width, channels]) {
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) image.data[4 * i + c] = pixels[channels * i + (channels === 1 ? 0 : c)];
    image.data[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

function drawImage(canvas, image) {
  drawPixels(canvas, bytesOf(image.pixels), image.shape);
}

// Runs `request(value)` for the latest value only: while one is in flight, newer values replace each
// other, and the last one runs when it ends. A failure shows on the page; the next success hides it.
function latestOnly(request) {
  let busy = false;
  let waiting = null;
  return async function ask(value) {
    if (busy) { waiting = { value }; return; }
    busy = true;
    try {
      await request(value);
      document.getElementById("status").hidden = true;
    } catch (error) {
      showError(error);
    } finally {
      busy = false;
    }
    if (waiting) { const next = waiting.value; waiting = null; await ask(next); }
  };
}

function niceTicks(low, high, count) {
  const step = Math.pow(10, Math.floor(Math.log10((high - low) / count)));
  const multiple = [1, 2, 5, 10].find((m) => (high - low) / (m * step) <= count) * step;
  const ticks = [];
  for (let t = Math.ceil(low / multiple) * multiple; t <= high + 1e-9; t += multiple) ticks.push(Number(t.toFixed(10)));
  return ticks;
}

// ---- The 2-D planes ----

function planeAxes(bounds) {
  const [xLow, yLow, xHigh, yHigh] = bounds;
  const width = PLOT.size - PLOT.left - PLOT.right;
  const height = PLOT.size - PLOT.top - PLOT.bottom;
  return {
    toPixel: ([x, y]) => [PLOT.left + (x - xLow) / (xHigh - xLow) * width,
                          PLOT.top + (yHigh - y) / (yHigh - yLow) * height],
    toCode: (px, py) => [xLow + (px - PLOT.left) / width * (xHigh - xLow),
                         yHigh - (py - PLOT.top) / height * (yHigh - yLow)],
    inside: (px, py) => px >= PLOT.left && px <= PLOT.left + width && py >= PLOT.top && py <= PLOT.top + height,
    width, height, bounds,
  };
}

function drawScatter(canvas, plane, axes) {
  canvas.width = canvas.height = PLOT.size;
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, PLOT.size, PLOT.size);
  context.globalAlpha = 0.5;
  plane.codes.forEach((code, i) => {
    const [px, py] = axes.toPixel(code);
    if (!axes.inside(px, py)) return;
    context.fillStyle = CLASS_COLOURS[plane.labels[i] % CLASS_COLOURS.length];
    context.fillRect(px - 1, py - 1, 2, 2);
  });
  context.globalAlpha = 1;
  context.strokeStyle = "#000";
  context.strokeRect(PLOT.left, PLOT.top, axes.width, axes.height);
  context.fillStyle = "#000";
  context.font = "11px DejaVu Sans, sans-serif";
  const [xLow, yLow, xHigh, yHigh] = axes.bounds;
  context.textAlign = "center";
  for (const t of niceTicks(xLow, xHigh, 6)) {
    const [px] = axes.toPixel([t, yLow]);
    context.fillRect(px, PLOT.top + axes.height, 1, 4);
    context.fillText(String(t), px, PLOT.top + axes.height + 15);
  }
  context.textAlign = "right";
  for (const t of niceTicks(yLow, yHigh, 6)) {
    const [, py] = axes.toPixel([xLow, t]);
    context.fillRect(PLOT.left - 4, py, 4, 1);
    context.fillText(String(t), PLOT.left - 6, py + 4);
  }
  context.font = "italic 13px DejaVu Sans, sans-serif";
  context.textAlign = "center";
  context.fillText("z₁", PLOT.left + axes.width / 2, PLOT.size - 4);
  context.save();
  context.translate(12, PLOT.top + axes.height / 2);
  context.rotate(-Math.PI / 2);
  context.fillText("z₂", 0, 0);
  context.restore();
}

function drawMarker(overlay, px, py) {
  const context = overlay.getContext("2d");
  context.clearRect(0, 0, overlay.width, overlay.height);
  context.strokeStyle = "#000";
  context.lineWidth = 1.5;
  context.beginPath();
  context.arc(px, py, 6, 0, 2 * Math.PI);
  context.stroke();
}

async function addPlane(container, entry) {
  const panel = document.createElement("div");
  panel.className = "panel";
  panel.id = `plane-${entry.name}`;
  panel.innerHTML = `<h3></h3><p class="source"></p>
    <div class="plot"><canvas class="scatter"></canvas><canvas class="overlay"></canvas></div>
    <div class="decoded"><canvas class="image" data-state="idle"></canvas><output>point at the plane</output></div>`;
  panel.querySelector("h3").textContent = entry.title;
  panel.querySelector(".source").textContent = entry.source;
  const decoded = panel.querySelector(".decoded canvas");
  const label = panel.querySelector(".decoded output");
  decoded.id = `decoded-${entry.name}`;
  container.append(panel);
  const plane = await getJson("/api/plane", { model: entry.name });
  const axes = planeAxes(plane.bounds);
  const [scatter, overlay] = panel.querySelectorAll(".plot canvas");
  drawScatter(scatter, plane, axes);
  overlay.width = overlay.height = PLOT.size;
  // Where the axes are, for scripts that point at a code: the plot's box in canvas pixels, its bounds in z.
  overlay.dataset.box = [PLOT.left, PLOT.top, axes.width, axes.height].join(",");
  overlay.dataset.bounds = plane.bounds.join(",");
  const depth = plane.depth ? addDepth(panel, entry.name, plane.depth) : null;

  // The point under the pointer, (z1, z2); a code of three numbers takes z3 from the slider.
  let point = [(axes.bounds[0] + axes.bounds[2]) / 2, (axes.bounds[1] + axes.bounds[3]) / 2];
  const decode = latestOnly(async (xy) => {
    decoded.dataset.state = "busy";
    try {
      const z = depth ? [...xy, Number(depth.value)] : xy;
      const answer = await getJson("/api/decode", { model: entry.name, z: z.join(",") });
      drawImage(decoded, answer.image);
      decoded.dataset.z = answer.z.join(",");
      label.textContent = `z = (${answer.z.map((v) => v.toFixed(2)).join(", ")})`;
    } finally {
      decoded.dataset.state = "idle";
    }
  });
  overlay.addEventListener("pointermove", (event) => {
    const rect = overlay.getBoundingClientRect();
    const px = (event.clientX - rect.left) * (overlay.width / rect.width);
    const py = (event.clientY - rect.top) * (overlay.height / rect.height);
    if (!axes.inside(px, py)) return;
    drawMarker(overlay, px, py);
    point = axes.toCode(px, py);
    decode(point);
  });
  if (depth) depth.addEventListener("input", () => decode(point));
  await decode(point);
}

// The slider that sets z3 of a plane whose codes have three numbers, over [low, high], starting midway.
function addDepth(panel, name, [low, high]) {
  const control = document.createElement("label");
  control.className = "depth";
  control.innerHTML = `z<sub>3</sub> <input type="range"><output></output>`;
  const slider = control.querySelector("input");
  slider.id = `depth-${name}`;
  Object.assign(slider, { min: low, max: high, step: (high - low) / 200 });
  slider.value = (low + high) / 2;
  const shown = control.querySelector("output");
  const show = () => { shown.textContent = Number(slider.value).toFixed(2); };
  slider.addEventListener("input", show);
  show();
  panel.append(control);
  return slider;
}

function addLegend(names) {
  const legend = document.getElementById("legend");
  names.forEach((name, k) => {
    const item = document.createElement("span");
    item.textContent = name;
    item.style.setProperty("--colour", CLASS_COLOURS[k % CLASS_COLOURS.length]);
    legend.append(item);
  });
}

// ---- Interpolation ----

const picked = { a: 0, b: 1, next: "a" };
const imageCache = {};

async function datasetImages(dataset) {
  if (!imageCache[dataset]) imageCache[dataset] = getJson("/api/images", { dataset });
  return imageCache[dataset];
}

function interpolationModel() {
  return document.getElementById("interpolation-model").value;
}

const blend = latestOnly(async () => {
  const alpha = document.getElementById("alpha").value;
  const answer = await getJson("/api/interpolate",
                               { model: interpolationModel(), a: picked.a, b: picked.b, alpha });
  drawImage(document.getElementById("blend-pixel"), answer.pixel);
  drawImage(document.getElementById("blend-latent"), answer.latent);
  drawImage(document.getElementById("reconstruction-a"), answer.a);
  drawImage(document.getElementById("reconstruction-b"), answer.b);
  document.getElementById("blend-latent").dataset.alpha = alpha;
});

async function showPicker(entries) {
  const entry = entries.find((e) => e.name === interpolationModel());
  const images = await datasetImages(entry.dataset);
  if (entry.name !== interpolationModel()) return;  // another model was chosen while the images loaded
  const pixels = bytesOf(images.pixels);
  const size = images.shape.reduce((a, b) => a * b, 1);
  const image = (i) => pixels.subarray(i * size, (i + 1) * size);
  const picker = document.getElementById("picker");
  picker.replaceChildren();
  picked.a = Math.min(picked.a, images.count - 1);
  picked.b = Math.min(picked.b, images.count - 1);
  const mark = () => {
    picker.querySelectorAll("canvas").forEach((c, i) => {
      c.classList.toggle("a", i === picked.a);
      c.classList.toggle("b", i === picked.b);
    });
    drawPixels(document.getElementById("image-a"), image(picked.a), images.shape);
    drawPixels(document.getElementById("image-b"), image(picked.b), images.shape);
    document.getElementById("next-pick").textContent = `next click sets ${picked.next.toUpperCase()}`;
  };
  for (let i = 0; i < images.count; i++) {
    const thumbnail = document.createElement("canvas");
    drawPixels(thumbnail, image(i), images.shape);
    thumbnail.title = `test image ${i}: ${images.labels[i]}`;
    thumbnail.addEventListener("click", () => {
      picked[picked.next] = i;
      picked.next = picked.next === "a" ? "b" : "a";
      mark();
      blend();
    });
    picker.append(thumbnail);
  }
  mark();
  await blend();
}

async function addInterpolation(entries) {
  const select = document.getElementById("interpolation-model");
  const groups = {};
  for (const entry of entries) {
    if (!groups[entry.dataset_title]) {
      groups[entry.dataset_title] = document.createElement("optgroup");
      groups[entry.dataset_title].label = entry.dataset_title;
      select.append(groups[entry.dataset_title]);
    }
    groups[entry.dataset_title].append(new Option(entry.title, entry.name));
  }
  select.addEventListener("change", () => showPicker(entries).catch(showError));
  const alpha = document.getElementById("alpha");
  alpha.addEventListener("input", () => {
    document.getElementById("alpha-value").textContent = Number(alpha.value).toFixed(2);
    blend();
  });
  await showPicker(entries);
}

async function main() {
  const catalogue = await getJson("/api/catalogue");
  document.getElementById("sources").textContent =
    `Models: ${[...new Set([...catalogue.planes, ...catalogue.interpolations].map((e) => e.source.split(",")[0]))]
      .join("; ")}. Images: ${catalogue.images_source}.`;
  // The planes' lead text: of E3 and its VAE, or of a run of any model; a section with nothing to show is hidden.
  const shown = catalogue.own_run ? "run" : "seeds";
  document.querySelectorAll("[data-shown]").forEach((lead) => { lead.hidden = lead.dataset.shown !== shown; });
  document.getElementById("planes-section").hidden = !catalogue.planes.length;
  document.getElementById("interpolation-section").hidden = !catalogue.interpolations.length;
  const planes = document.getElementById("planes");
  await Promise.all(catalogue.planes.map((entry) => addPlane(planes, entry)));
  if (catalogue.planes.length) addLegend(catalogue.class_names);
  if (catalogue.interpolations.length) await addInterpolation(catalogue.interpolations);
  document.body.dataset.ready = "true";
}

main().catch(showError);
