// The annotation page: uploads a spectrum file (MGF, MSP, mzML, mzXML) to POST /v1/annotate, draws each spectrum's
// peaks (parsed here from the same file: MGF, mzML, mzXML) as an inline SVG, and lists its ranked candidates with
// RDKit drawings from GET /v1/depict.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

// Peaks of every BEGIN IONS block, in file order (the service numbers spectra the same way).
function parseMgfPeaks(text) {
  const spectra = [];
  let current = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "BEGIN IONS") {
      current = [];
      spectra.push(current);
    } else if (line === "END IONS") {
      current = null;
    } else if (current && /^[+\-.\d]/.test(line)) {
      const [mz, intensity] = line.split(/\s+/).map(Number);
      if (Number.isFinite(mz) && Number.isFinite(intensity)) current.push([mz, intensity]);
    }
  }
  return spectra;
}

// The values of a base64 binary array (zlib-compressed when `zlib`) of 32- or 64-bit floats.
async function decodeFloats(base64, zlib, bits, littleEndian) {
  let bytes = Uint8Array.from(atob(base64.trim()), (c) => c.charCodeAt(0));
  if (zlib) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = bits / 8;
  const values = [];
  for (let offset = 0; offset + size <= bytes.byteLength; offset += size) {
    values.push(bits === 64 ? view.getFloat64(offset, littleEndian) : view.getFloat32(offset, littleEndian));
  }
  return values;
}

// The accessions of the cvParams directly under `node`, with their values.
function cvParams(node) {
  const params = new Map();
  for (const child of node.children) {
    if (child.localName === "cvParam") params.set(child.getAttribute("accession"), child.getAttribute("value"));
  }
  return params;
}

// Peaks of every MS2 scan of an mzML or mzXML file, in file order (the service numbers spectra the same way).
async function parseXmlPeaks(text) {
  const doc = new DOMParser().parseFromString(text, "application/xml");
  if (doc.getElementsByTagName("parsererror").length) return [];
  const spectra = [];
  if (doc.documentElement.localName === "mzXML") {
    for (const scan of doc.getElementsByTagName("scan")) {
      if (scan.getAttribute("msLevel") !== "2") continue;
      const peaks = [...scan.children].find((child) => child.localName === "peaks");
      const values = peaks ? await decodeFloats(peaks.textContent, peaks.getAttribute("compressionType") === "zlib",
        Number(peaks.getAttribute("precision")) || 32, false) : [];
      const pairs = [];
      for (let i = 0; i + 1 < values.length; i += 2) pairs.push([values[i], values[i + 1]]);
      spectra.push(pairs);
    }
    return spectra;
  }
  for (const spectrum of doc.getElementsByTagName("spectrum")) {
    if (cvParams(spectrum).get("MS:1000511") !== "2") continue; // ms level
    const arrays = {};
    for (const array of spectrum.getElementsByTagName("binaryDataArray")) {
      const params = cvParams(array);
      const kind = params.has("MS:1000514") ? "mz" : params.has("MS:1000515") ? "intensity" : null;
      const binary = [...array.children].find((child) => child.localName === "binary");
      if (!kind || !binary) continue;
      arrays[kind] = await decodeFloats(binary.textContent, params.has("MS:1000574"),
        params.has("MS:1000523") ? 64 : 32, true);
    }
    spectra.push((arrays.mz || []).map((mz, i) => [mz, (arrays.intensity || [])[i] ?? 0]));
  }
  return spectra;
}

// Peaks per spectrum index of an uploaded file's text (none for a format the page does not draw).
async function parsePeaks(text) {
  return text.trimStart().startsWith("<") ? parseXmlPeaks(text) : parseMgfPeaks(text);
}

// A stick plot: m/z on x, intensity relative to the base peak on y.
function peakPlot(peaks, precursorMz, width = 420, height = 200) {
  const pad = { left: 36, right: 10, top: 10, bottom: 26 };
  const svg = el("svg:svg", { class: "peaks", width, height, viewBox: `0 0 ${width} ${height}` });
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const maxMz = Math.max(precursorMz || 0, ...peaks.map((p) => p[0]), 1) * 1.05;
  const maxI = Math.max(...peaks.map((p) => p[1]), 1e-12);
  const x = (mz) => pad.left + (mz / maxMz) * plotW;
  const y = (rel) => pad.top + (1 - rel) * plotH;
  svg.append(el("svg:line", { class: "axis", x1: pad.left, y1: y(0), x2: pad.left + plotW, y2: y(0) }));
  svg.append(el("svg:line", { class: "axis", x1: pad.left, y1: y(0), x2: pad.left, y2: y(1) }));
  for (const [mz, intensity] of peaks) {
    svg.append(el("svg:line", { class: "peak", x1: x(mz), y1: y(0), x2: x(mz), y2: y(intensity / maxI) }));
  }
  // tick spacing 1, 2 or 5 times a power of ten, for at most about 6 ticks
  const raw = maxMz / 6;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw);
  for (let tick = 0; tick <= maxMz; tick += step) {
    const label = el("svg:text", { x: x(tick), y: y(0) + 14, "text-anchor": "middle" });
    label.textContent = String(Math.round(tick));
    svg.append(label);
  }
  for (const rel of [0, 0.5, 1]) {
    const label = el("svg:text", { x: pad.left - 4, y: y(rel) + 3, "text-anchor": "end" });
    label.textContent = `${Math.round(rel * 100)}%`;
    svg.append(label);
  }
  const axis = el("svg:text", { x: pad.left + plotW, y: height - 2, "text-anchor": "end" });
  axis.textContent = "m/z";
  svg.append(axis);
  return svg;
}

function candidateTable(candidates) {
  const table = el("table", { class: "candidates" });
  table.append(el("tr", {}, el("th", {}, "rank"), el("th", {}, "structure"), el("th", {}, "SMILES"),
    el("th", {}, "formula"), el("th", {}, "score")));
  for (const c of candidates) {
    const img = el("img", { src: `/v1/depict?smiles=${encodeURIComponent(c.smiles)}&width=240&height=180`,
      alt: c.smiles, loading: "lazy" });
    table.append(el("tr", { class: "candidate" }, el("td", {}, String(c.rank)), el("td", {}, img),
      el("td", { class: "smiles" }, c.smiles), el("td", {}, c.formula), el("td", { class: "score" },
        c.score.toFixed(2))));
  }
  return table;
}

function showResults(body, peaksByIndex) {
  const results = document.getElementById("results");
  results.replaceChildren();
  for (const r of body.results) {
    const card = el("article", { class: "spectrum-result", "data-index": String(r.index) });
    const mz = r.precursor_mz == null ? "?" : r.precursor_mz.toFixed(4);
    card.append(el("h2", {}, r.title || `spectrum ${r.index}`));
    const plural = r.n_candidates === 1 ? "" : "s";
    card.append(el("p", { class: "meta" }, `spectrum ${r.index}, precursor m/z ${mz}, ${r.n_candidates} candidate${plural}`));
    const layout = el("div", { class: "layout" }, peakPlot(peaksByIndex[r.index] || [], r.precursor_mz));
    layout.append(r.candidates.length ? candidateTable(r.candidates)
      : el("p", { class: "note" }, r.note || "no candidates in the window"));
    card.append(layout);
    results.append(card);
  }
  const rejected = document.getElementById("rejected");
  const list = document.getElementById("rejected-list");
  list.replaceChildren(...(body.rejected || []).map((x) => el("li", { class: "rejection" }, describe(x))));
  rejected.hidden = !(body.rejected || []).length;
}

function describe(x) {
  const where = [];
  if (x.index != null) where.push(`spectrum ${x.index}`);
  if (x.title) where.push(`TITLE=${x.title}`);
  if (x.line != null) where.push(`line ${x.line}`);
  return `${where.join(", ")}: ${x.reason}`;
}

// state: "busy" while a request runs, then "done" or "error" (the browser test waits on it)
function setStatus(text, state) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.className = state;
}

async function annotate(event) {
  event.preventDefault();
  const file = document.getElementById("mgf").files[0];
  if (!file) return setStatus("choose a spectrum file first", "error");
  await annotateFile(file);
}

// One click: the shipped example file, annotated as an upload of it would be.
async function annotateExample() {
  try {
    const response = await fetch("/static/example.mgf");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    await annotateFile(new File([await response.blob()], "example.mgf"));
  } catch (error) {
    setStatus(`the example could not be loaded: ${error}`, "error");
  }
}

async function annotateFile(file) {
  setStatus(`annotating ${file.name}...`, "busy");
  document.getElementById("results").replaceChildren();
  const form = new FormData();
  form.append("file", file);
  const params = new URLSearchParams({ top_k: document.getElementById("top-k").value,
    ppm: document.getElementById("ppm").value });
  try {
    const [response, text] = await Promise.all([
      fetch(`/v1/annotate?${params}`, { method: "POST", body: form }),
      file.name.endsWith(".gz") ? Promise.resolve("") : file.text(),
    ]);
    const body = await response.json();
    if (!response.ok) {
      showResults({ results: [], rejected: body.rejected || [] }, []);
      return setStatus(`rejected (HTTP ${response.status}): ${typeof body.detail === "string" ? body.detail
        : JSON.stringify(body.detail)}`, "error");
    }
    showResults(body, await parsePeaks(text));
    setStatus(`${body.results.length} spectra annotated by ${body.model}, ${(body.rejected || []).length} rejected`,
      "done");
  } catch (error) {
    setStatus(`request failed: ${error}`, "error");
  }
}

async function showService() {
  try {
    const health = await (await fetch("/health")).json();
    document.getElementById("service").textContent =
      `model ${health.model} on ${health.device}, ${health.candidates} molecules in the candidate database`;
  } catch (error) {
    document.getElementById("service").textContent = `service unreachable: ${error}`;
  }
}

document.getElementById("upload").addEventListener("submit", annotate);
document.getElementById("example").addEventListener("click", annotateExample);
showService();
