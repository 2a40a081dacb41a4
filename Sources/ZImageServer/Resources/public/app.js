// zimage web UI: plain JavaScript against the native API (/api/v1), no build step.
"use strict";

const PRESETS = {
  "1024": ["1024x1024", "1152x896", "896x1152", "1152x864", "864x1152", "1248x832", "832x1248", "1280x720",
           "720x1280", "1344x576", "576x1344"],
  "1280": ["1280x1280", "1440x1120", "1120x1440", "1472x1104", "1104x1472", "1536x1024", "1024x1536", "1536x864",
           "864x1536", "1680x720", "720x1680"],
  "1536": ["1536x1536", "1728x1344", "1344x1728", "1728x1296", "1296x1728", "1872x1248", "1248x1872", "2048x1152",
           "1152x2048", "2016x864", "864x2016"],
};
const PER_PAGE = 12;
const $ = (id) => document.getElementById(id);
const state = { strings: {}, page: 1, pages: 1, lastSeed: null, current: null, source: null, startedAt: 0, history: [] };

// ---------- i18n ----------
function t(key, values = {}) {
  let text = state.strings[key] || key;
  for (const [name, value] of Object.entries(values)) text = text.replaceAll(`{${name}}`, value);
  return text;
}
async function setLanguage(language) {
  const response = await fetch(`i18n/${language}.json`);
  state.strings = await response.json();
  document.documentElement.lang = language;
  localStorage.setItem("zimage.language", language);
  $("language").value = language;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  document.querySelectorAll("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
  renderSeed();
  refreshHistory();
  refreshQueue();
}

// ---------- helpers ----------
function toast(message, ok = false) {
  const el = document.createElement("div");
  el.className = "toast" + (ok ? " ok" : "");
  el.textContent = message;
  $("toasts").appendChild(el);
  setTimeout(() => el.remove(), 6000);
}
async function api(path, options = {}) {
  const response = await fetch(`/api/v1/${path}`, {
    ...options, headers: { "Content-Type": "application/json", ...(options.headers || {}) },
  });
  if (response.status === 401) { toast(t("needsKey")); throw new Error("unauthorized"); }
  if (response.status === 204) return null;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = body.error ? body.error.message : `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return body;
}
function sizeValue() {
  if ($("size-category").value === "custom") return [Number($("width").value), Number($("height").value)];
  return $("size-preset").value.split("x").map(Number);
}
function ratio(w, h) {
  const gcd = (a, b) => (b ? gcd(b, a % b) : a);
  const g = gcd(w, h);
  return `${w / g}:${h / g}`;
}
function fillPresets() {
  const category = $("size-category").value;
  $("custom-size").hidden = category !== "custom";
  $("size-preset").style.display = category === "custom" ? "none" : "";
  if (category === "custom") return;
  $("size-preset").innerHTML = PRESETS[category]
    .map((size) => { const [w, h] = size.split("x").map(Number); return `<option value="${size}">${w} × ${h} (${ratio(w, h)})</option>`; })
    .join("");
}
function selectSize(width, height) {
  const size = `${width}x${height}`;
  for (const [category, list] of Object.entries(PRESETS)) {
    if (list.includes(size)) { $("size-category").value = category; fillPresets(); $("size-preset").value = size; return; }
  }
  $("size-category").value = "custom";
  fillPresets();
  $("width").value = width;
  $("height").value = height;
}
function renderSeed() {
  $("last-seed").textContent = state.lastSeed === null ? "" : t("lastSeed", { seed: state.lastSeed });
}

// ---------- generation ----------
async function generate() {
  const prompt = $("prompt").value.trim();
  if (!prompt) { toast(t("promptRequired")); $("prompt").focus(); return; }
  const [width, height] = sizeValue();
  const request = {
    prompt, negative_prompt: $("negative").value, width, height, steps: Number($("steps").value),
    guidance_scale: Number($("guidance").value), seed: Number($("seed").value), batch_size: Number($("batch").value),
  };
  $("generate").disabled = true;
  try {
    const job = await api("generations", { method: "POST", body: JSON.stringify(request) });
    state.lastSeed = job.seed;
    renderSeed();
    follow(job.id);
    refreshQueue();
  } catch (error) {
    toast(error.message);
  } finally {
    $("generate").disabled = false;
  }
}

function follow(id) {
  if (state.source && state.current && state.current !== id) {
    // Already following a job: the new one is shown in the queue and followed when it starts.
    return;
  }
  state.current = id;
  setProgress(0, t("generating"));
  $("cancel-current").hidden = false;
  const source = new EventSource(`/api/v1/generations/${id}/events`);
  state.source = source;
  source.addEventListener("queued", (e) => setProgress(0, t("waiting", JSON.parse(e.data))));
  source.addEventListener("started", () => { state.startedAt = Date.now(); setProgress(0, t("starting")); refreshQueue(); });
  source.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    const fraction = (p.image * p.steps + p.step) / (p.images * p.steps);
    setProgress(fraction, t("stepOf", { image: p.image + 1, images: p.images, step: p.step, steps: p.steps }));
    if (p.preview) showImage(p.preview, true);
  });
  const finish = (message, isError) => {
    source.close();
    state.source = null;
    state.current = null;
    $("cancel-current").hidden = true;
    setProgress(isError ? 0 : 1, message);
    refreshQueue();
    refreshHistory();
    followNext();
  };
  source.addEventListener("done", (e) => {
    const job = JSON.parse(e.data);
    if (job.images && job.images.length) showImage(job.images[0].url, false);
    const seconds = job.finished_at && job.started_at ? (job.finished_at - job.started_at).toFixed(1) : "?";
    finish(t("done", { seconds }), false);
  });
  source.addEventListener("failed", (e) => { const p = JSON.parse(e.data); toast(t("failed", { error: p.error })); finish(t("failed", { error: p.error }), true); });
  source.addEventListener("cancelled", () => finish(t("cancelled"), true));
  source.onerror = () => { if (source.readyState === EventSource.CLOSED && state.current === id) finish("", true); };
}

async function followNext() {
  try {
    const queue = await api("queue");
    const next = queue.running || queue.queued[0];
    if (next && !state.current) follow(next.id);
  } catch (_) { /* shown elsewhere */ }
}

function setProgress(fraction, text) {
  $("progress-bar").style.width = `${Math.round(Math.max(0, Math.min(1, fraction)) * 100)}%`;
  $("progress-text").textContent = text;
}
function showImage(src, isPreview) {
  const img = $("preview");
  img.src = src;
  img.hidden = false;
  img.classList.toggle("pixelated", isPreview);
  $("stage-empty").hidden = true;
}

async function cancel(id) {
  try { await api(`generations/${id}/cancel`, { method: "POST" }); } catch (error) { toast(error.message); }
  refreshQueue();
}

// ---------- queue ----------
async function refreshQueue() {
  let queue;
  try { queue = await api("queue"); } catch (_) { return; }
  const items = (queue.running ? [queue.running] : []).concat(queue.queued);
  const list = $("queue");
  list.innerHTML = "";
  for (const job of items) {
    const li = document.createElement("li");
    li.className = job.status;
    li.dataset.testid = "queue-item";
    li.dataset.id = job.id;
    const badge = job.status === "running" ? t("running") : t("queued", { position: job.position });
    const p = job.parameters;
    li.innerHTML = `<span class="badge"></span><span class="text"></span><button class="danger" data-testid="queue-cancel"></button>`;
    li.querySelector(".badge").textContent = badge;
    li.querySelector(".text").textContent = `${p.prompt} · ${p.width}×${p.height}`;
    const button = li.querySelector("button");
    button.textContent = t("cancel");
    button.addEventListener("click", () => cancel(job.id));
    list.appendChild(li);
  }
  $("queue-empty").hidden = items.length > 0;
}

// ---------- history ----------
async function refreshHistory() {
  let page;
  try { page = await api(`history?page=${state.page}&per_page=${PER_PAGE}`); } catch (_) { return; }
  state.pages = Math.max(1, Math.ceil(page.total / PER_PAGE));
  if (state.page > state.pages) { state.page = state.pages; return refreshHistory(); }
  state.history = page.items;
  const gallery = $("gallery");
  gallery.innerHTML = "";
  let count = 0;
  for (const job of page.items) {
    for (const image of job.images) {
      const button = document.createElement("button");
      button.className = "thumb";
      button.dataset.testid = "gallery-item";
      button.title = job.parameters.prompt;
      const img = document.createElement("img");
      img.loading = "lazy";
      img.src = image.url;
      img.alt = job.parameters.prompt;
      button.appendChild(img);
      button.addEventListener("click", () => openLightbox(job, image));
      gallery.appendChild(button);
      count += 1;
    }
  }
  $("gallery-empty").hidden = count > 0;
  $("history-count").textContent = page.total ? t("images", { count: page.total }) : "";
  $("page-label").textContent = t("page", { page: state.page, pages: state.pages });
  $("page-prev").disabled = state.page <= 1;
  $("page-next").disabled = state.page >= state.pages;
}

function openLightbox(job, image) {
  const p = job.parameters;
  $("lightbox-image").src = image.url;
  $("lightbox-prompt").textContent = p.prompt;
  const meta = [[t("metaSize"), `${image.width} × ${image.height}`], [t("metaSteps"), p.steps],
                [t("metaCFG"), p.guidance_scale], [t("metaSeed"), image.seed]];
  if (p.negative_prompt) meta.push([t("metaNegative"), p.negative_prompt]);
  const dl = $("lightbox-meta");
  dl.innerHTML = "";
  for (const [name, value] of meta) {
    const dt = document.createElement("dt"); dt.textContent = name;
    const dd = document.createElement("dd"); dd.textContent = value;
    dl.append(dt, dd);
  }
  $("lightbox-download").href = image.url;
  $("lightbox-download").setAttribute("download", `zimage-${image.seed}.png`);
  $("lightbox-reuse").onclick = () => {
    $("prompt").value = p.prompt;
    $("negative").value = p.negative_prompt || "";
    selectSize(image.width, image.height);
    $("steps").value = p.steps;
    $("guidance").value = p.guidance_scale;
    $("seed").value = image.seed;
    $("lightbox").close();
    toast(t("reused"), true);
  };
  $("lightbox-delete").onclick = async () => {
    try { await api(`history/${job.id}`, { method: "DELETE" }); } catch (error) { toast(error.message); }
    $("lightbox").close();
    refreshHistory();
  };
  $("lightbox").showModal();
}

// ---------- system ----------
async function refreshSystem() {
  try {
    const system = await api("system");
    $("model-name").textContent = system.model;
    $("system-status").textContent = t("deviceQueue", { device: system.device, queue: system.queue_length });
    $("demo-notice").hidden = !system.demo_model;
  } catch (_) { /* offline or unauthorized: toasts say so */ }
}

// ---------- wiring ----------
function init() {
  const theme = localStorage.getItem("zimage.theme") || "dark";
  document.documentElement.dataset.theme = theme;
  $("theme-toggle").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("zimage.theme", next);
  });
  $("size-category").addEventListener("change", fillPresets);
  fillPresets();
  $("generate").addEventListener("click", generate);
  document.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) generate(); });
  $("seed-random").addEventListener("click", () => { $("seed").value = -1; });
  $("seed-reuse").addEventListener("click", () => { if (state.lastSeed !== null) $("seed").value = state.lastSeed; });
  $("cancel-current").addEventListener("click", () => { if (state.current) cancel(state.current); });
  $("page-prev").addEventListener("click", () => { if (state.page > 1) { state.page -= 1; refreshHistory(); } });
  $("page-next").addEventListener("click", () => { if (state.page < state.pages) { state.page += 1; refreshHistory(); } });
  $("lightbox-close").addEventListener("click", () => $("lightbox").close());
  $("lightbox").addEventListener("click", (e) => { if (e.target === $("lightbox")) $("lightbox").close(); });
  $("language").addEventListener("change", (e) => setLanguage(e.target.value));
  const saved = localStorage.getItem("zimage.language");
  const language = saved || (navigator.language && navigator.language.toLowerCase().startsWith("zh") ? "zh-CN" : "en");
  setLanguage(language).then(() => { refreshSystem(); followNext(); });
  setInterval(refreshSystem, 5000);
  setInterval(refreshQueue, 2000);
}
init();
