// zimage web UI: plain JavaScript against the native API (/api/v1); no build step, no dependencies.
"use strict";

(() => {
  // Official Z-Image-Turbo demo presets (Tongyi-MAI Space), by resolution category.
  const PRESETS = {
    "1024": ["1024x1024", "1152x896", "896x1152", "1152x864", "864x1152", "1248x832", "832x1248",
             "1280x720", "720x1280", "1344x576", "576x1344"],
    "1280": ["1280x1280", "1440x1120", "1120x1440", "1472x1104", "1104x1472", "1536x1024", "1024x1536",
             "1536x864", "864x1536", "1680x720", "720x1680"],
    "1536": ["1536x1536", "1728x1344", "1344x1728", "1728x1296", "1296x1728", "1872x1248", "1248x1872",
             "2048x1152", "1152x2048", "2016x864", "864x2016"],
  };
  const SIZE = { min: 64, max: 2048, multiple: 16 };  // the server's default limit
  const PER_PAGE = 24;
  const MAX_SEED = 4294967295;
  const TERMINAL = new Set(["done", "failed", "cancelled"]);
  const STORE = { language: "zimage.language", theme: "zimage.theme", form: "zimage.form", lastSeed: "zimage.lastSeed" };

  const $ = (id) => document.getElementById(id);
  const S = {
    strings: {}, fallback: {}, lang: "en",
    category: "1024", size: [1024, 1024],
    lastSeed: null,
    mine: [],               // ids this tab submitted that have not been seen finishing, oldest first
    ours: new Set(),        // every id this tab (session) submitted: marked "yours" in the queue
    jobs: {},               // id -> the latest job object we know
    follow: null,           // the job the Current panel follows through server-sent events
    queue: { running: null, queued: [] }, lastRunningId: null,
    page: 1, pages: 1, total: 0, flat: [], gallerySignature: null, historySeq: 0, historyLoaded: false,
    lightbox: null, system: null, online: null, auth: false, submitting: false,
    stage: { state: "idle", text: null, eta: "", mode: "idle", fraction: 0, message: null, jobId: "" },
    resultMeta: null,
    pollTimer: null,
  };

  // ---------------------------------------------------------------- storage
  const store = {
    get(key, fallback = null) { try { const v = localStorage.getItem(key); return v === null ? fallback : v; } catch (_) { return fallback; } },
    set(key, value) { try { localStorage.setItem(key, value); } catch (_) { /* private mode */ } },
  };

  // ---------------------------------------------------------------- i18n
  function t(key, values = {}) {
    let text = S.strings[key] ?? S.fallback[key] ?? key;
    if (values.count === 1 && (S.strings[key + "_one"] ?? S.fallback[key + "_one"])) {
      text = S.strings[key + "_one"] ?? S.fallback[key + "_one"];
    }
    for (const [name, value] of Object.entries(values)) text = text.split(`{${name}}`).join(String(value));
    return text;
  }
  async function loadStrings(language) {
    const response = await fetch(`i18n/${language}.json`, { cache: "no-cache" });
    if (!response.ok) throw new Error(`i18n/${language}.json: ${response.status}`);
    return response.json();
  }
  async function setLanguage(language) {
    try {
      if (!Object.keys(S.fallback).length) S.fallback = await loadStrings("en");
      S.strings = language === "en" ? S.fallback : await loadStrings(language);
      S.lang = language;
    } catch (_) {
      S.strings = S.fallback;
      S.lang = "en";
    }
    store.set(STORE.language, S.lang);
    document.documentElement.lang = S.lang;
    $("language").value = S.lang;
    applyStrings();
  }
  function applyStrings() {
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
    document.querySelectorAll("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
    document.querySelectorAll("[data-i18n-aria]").forEach((el) => { el.setAttribute("aria-label", t(el.dataset.i18nAria)); });
    renderPresets();
    renderSummary();
    renderPromptCount();
    renderLastSeed();
    renderStage();
    setResultMeta(S.resultMeta);
    renderQueue();
    renderHistoryMeta();
    renderSystem();
    if (S.lightbox && $("lightbox").open) renderLightbox();
  }

  // ---------------------------------------------------------------- formatting
  const gcd = (a, b) => (b ? gcd(b, a % b) : a);
  function ratio(w, h) { const g = gcd(w, h); return `${w / g}:${h / g}`; }
  function megapixels(w, h) { return (w * h / 1e6).toFixed(w * h >= 1e7 ? 0 : 2).replace(/\.?0+$/, ""); }
  function fmtNumber(value, digits = 1) {
    return Number(value).toLocaleString(S.lang, { maximumFractionDigits: digits });
  }
  function fmtSeconds(seconds) {
    if (!isFinite(seconds) || seconds < 0) return "";
    if (seconds < 60) return t("seconds", { n: fmtNumber(seconds, seconds < 10 ? 1 : 0) });
    const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
    return t("minutes", { m, s: String(s).padStart(2, "0") });
  }
  function fmtBytes(bytes) {
    const gib = bytes / 1073741824;
    return gib >= 1 ? `${fmtNumber(gib, 1)} GiB` : `${fmtNumber(bytes / 1048576, 0)} MiB`;
  }
  function fmtDate(unixSeconds) {
    if (!unixSeconds) return "";
    return new Intl.DateTimeFormat(S.lang, { dateStyle: "medium", timeStyle: "short" }).format(new Date(unixSeconds * 1000));
  }
  function fmtCfg(value) { return fmtNumber(Number(value) || 0, 2); }
  // Server URLs are absolute (/api/v1/...); relative ones keep working behind a path prefix.
  function assetUrl(url) { return typeof url === "string" && url.startsWith("/api/") ? url.slice(1) : url; }
  function el(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of [].concat(children)) if (child) node.append(child);
    return node;
  }
  function icon(name, extra = "") {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", `icon ${extra}`.trim());
    svg.setAttribute("aria-hidden", "true");
    const use = document.createElementNS(ns, "use");
    use.setAttribute("href", `#i-${name}`);
    svg.append(use);
    return svg;
  }

  // ---------------------------------------------------------------- toasts
  function toast(message, kind = "info", title = null) {
    const box = $("toasts");
    while (box.children.length >= 4) box.firstElementChild.remove();
    const iconName = kind === "error" ? "alert" : kind === "ok" ? "check" : "info";
    const close = el("button", { type: "button", class: "toast-close", "aria-label": t("close") }, icon("x"));
    const node = el("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status", dataset: { testid: "toast" } }, [
      icon(iconName),
      el("div", {}, [title ? el("div", { class: "toast-title", text: title }) : null,
                     el("div", { class: title ? "toast-body" : "", text: message })]),
      close,
    ]);
    const remove = () => { node.classList.add("out"); setTimeout(() => node.remove(), 200); };
    close.addEventListener("click", remove);
    box.append(node);
    setTimeout(remove, kind === "error" ? 9000 : 4500);
  }
  function toastError(error, title = null) {
    if (error && error.status === 401) return; // the banner says it
    toast(error && error.message ? error.message : String(error), "error", title);
  }

  // ---------------------------------------------------------------- API
  class ApiError extends Error {
    constructor(message, status, code = null, field = null) { super(message); this.status = status; this.code = code; this.field = field; }
  }
  async function api(path, { method = "GET", body } = {}) {
    let response;
    try {
      response = await fetch(`api/v1/${path}`, {
        method, credentials: "same-origin", cache: "no-store",
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      setOnline(false);
      throw new ApiError(t("offline"), 0, "offline");
    }
    if (response.status === 401) {
      showAuth();
      throw new ApiError(t("authTitle"), 401, "unauthorized");
    }
    setOnline(true);
    if (response.status === 204) return null;
    let data = null;
    try { data = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) {
      const e = data && data.error;
      const message = (e && e.message) || (typeof e === "string" ? e : "") || `${response.status} ${response.statusText}`;
      throw new ApiError(message, response.status, e && e.code, e && e.field);
    }
    return data;
  }
  function setOnline(online) {
    if (S.online === online) return;
    const was = S.online;
    S.online = online;
    if (!online) toast(t("offline"), "error");
    else if (was === false) toast(t("backOnline"), "ok");
    renderSystem();
  }
  function showAuth() {
    if (S.auth) return;
    S.auth = true;
    $("auth-banner").hidden = false;
    toast(t("authBody"), "error", t("authTitle"));
    renderSystem();
  }

  // ---------------------------------------------------------------- size
  function findCategory(w, h) {
    const key = `${w}x${h}`;
    for (const [category, list] of Object.entries(PRESETS)) if (list.includes(key)) return category;
    return "custom";
  }
  function snap(value) {
    let v = Math.round(Number(value) / SIZE.multiple) * SIZE.multiple;
    if (!isFinite(v)) v = 1024;
    return Math.min(SIZE.max, Math.max(SIZE.min, v));
  }
  function setCategory(category, { keepSize = false } = {}) {
    S.category = category;
    document.querySelectorAll('input[name="size-category"]').forEach((r) => { r.checked = r.value === category; });
    $("custom-size").hidden = category !== "custom";
    $("size-presets").hidden = category === "custom";
    if (category === "custom") {
      $("width").value = S.size[0];
      $("height").value = S.size[1];
    } else if (!keepSize && !PRESETS[category].includes(`${S.size[0]}x${S.size[1]}`)) {
      // Keep the aspect ratio when moving between categories.
      const index = Math.max(0, PRESETS[category].findIndex((s) => {
        const [w, h] = s.split("x").map(Number);
        return ratio(w, h) === ratio(S.size[0], S.size[1]);
      }));
      S.size = PRESETS[category][index].split("x").map(Number);
    }
    renderPresets();
    renderSummary();
  }
  function setSize(w, h) {
    S.size = [w, h];
    setCategory(findCategory(w, h), { keepSize: true });
    saveForm();
  }
  function renderPresets() {
    const box = $("size-presets");
    box.textContent = "";
    if (S.category === "custom") return;
    for (const size of PRESETS[S.category]) {
      const [w, h] = size.split("x").map(Number);
      const scale = 18 / Math.max(w, h);
      const shape = el("i");
      shape.style.width = `${Math.round(w * scale)}px`;
      shape.style.height = `${Math.round(h * scale)}px`;
      const checked = S.size[0] === w && S.size[1] === h;
      box.append(el("button", {
        type: "button", class: "preset", role: "radio", "aria-checked": String(checked),
        title: `${w} × ${h} (${ratio(w, h)})`, tabindex: checked ? "0" : "-1",
        dataset: { testid: "size-preset", size },
        onclick: () => { S.size = [w, h]; renderPresets(); renderSummary(); saveForm(); },
        onkeydown: presetKeys,
      }, [el("span", { class: "preset-shape" }, shape), el("span", { class: "preset-ratio", text: ratio(w, h) }),
          el("span", { class: "preset-dims", text: `${w}×${h}` })]));
    }
    if (!box.querySelector('[aria-checked="true"]') && box.firstElementChild) box.firstElementChild.tabIndex = 0;
  }
  function presetKeys(event) {
    const keys = { ArrowRight: 1, ArrowDown: 4, ArrowLeft: -1, ArrowUp: -4 };
    if (!(event.key in keys)) return;
    event.preventDefault();
    const buttons = [...$("size-presets").children];
    const index = buttons.indexOf(event.currentTarget);
    const next = buttons[Math.min(buttons.length - 1, Math.max(0, index + keys[event.key]))];
    next.click();
    $("size-presets").querySelector(`[data-size="${next.dataset.size}"]`).focus();
  }
  function currentSize() {
    if (S.category === "custom") {
      const read = (id, fallback) => ($(id).value.trim() === "" ? fallback : snap($(id).value));
      const w = read("width", S.size[0]), h = read("height", S.size[1]);
      $("width").value = w;
      $("height").value = h;
      S.size = [w, h];
    }
    return S.size;
  }
  function renderSummary() {
    const [w, h] = S.category === "custom"
      ? [Number($("width").value) || 0, Number($("height").value) || 0] : S.size;
    $("size-summary").textContent = w && h ? `${w} × ${h} · ${ratio(w, h)} · ${megapixels(w, h)} MP` : "";
  }

  // ---------------------------------------------------------------- form
  function syncRange(range, number) {
    const min = Number(range.min), max = Number(range.max);
    const value = Math.min(max, Math.max(min, Number(number.value) || 0));
    range.value = value;
    range.style.setProperty("--fill", `${((value - min) / (max - min)) * 100}%`);
  }
  function renderPromptCount() {
    const n = $("prompt").value.length;
    $("prompt-count").textContent = n ? t("characters", { count: n }) : "";
  }
  function renderNegativeHint() {
    const off = !(Number($("guidance").value) > 0);
    $("negative").classList.toggle("dim", off);
    $("negative-hint").hidden = !off;
  }
  function setSeedRandom(random) {
    $("seed-random").checked = random;
    if (random) $("seed").value = "";
  }
  function setLastSeed(seed) {
    S.lastSeed = seed;
    store.set(STORE.lastSeed, String(seed));
    renderLastSeed();
  }
  function renderLastSeed() {
    const box = $("last-seed");
    $("seed-reuse").disabled = S.lastSeed === null;
    if (S.lastSeed === null) { box.hidden = true; return; }
    $("seed-reuse").title = `${t("reuseSeed")} (${S.lastSeed})`;
    box.hidden = false;
    box.textContent = "";
    const [before, after] = t("lastSeed", { seed: "\u0000" }).split("\u0000");
    box.append(before, el("button", { type: "button", title: t("copy"), text: String(S.lastSeed),
      onclick: () => copyText(String(S.lastSeed)) }), after || "");
  }
  function saveForm() {
    const form = {
      prompt: $("prompt").value, negative: $("negative").value, category: S.category, size: S.size,
      width: $("width").value, height: $("height").value, steps: $("steps").value, guidance: $("guidance").value,
      batch: $("batch").value, seedRandom: $("seed-random").checked, seed: $("seed").value,
    };
    store.set(STORE.form, JSON.stringify(form));
  }
  let saveTimer = null;
  function saveFormSoon() { clearTimeout(saveTimer); saveTimer = setTimeout(saveForm, 400); }
  function loadForm() {
    let form = null;
    try { form = JSON.parse(store.get(STORE.form, "null")); } catch (_) { form = null; }
    const saved = store.get(STORE.lastSeed);
    S.lastSeed = saved !== null && saved !== "" && isFinite(Number(saved)) ? Number(saved) : null;
    if (!form) { setCategory("1024"); return; }
    $("prompt").value = form.prompt || "";
    $("negative").value = form.negative || "";
    $("steps").value = form.steps || 8;
    $("guidance").value = form.guidance ?? 0;
    $("batch").value = form.batch || 1;
    if (Array.isArray(form.size) && form.size.length === 2) S.size = form.size.map(Number);
    if (form.category === "custom") S.size = [snap(form.width || S.size[0]), snap(form.height || S.size[1])];
    const category = PRESETS[form.category] || form.category === "custom" ? form.category : "1024";
    setCategory(category, { keepSize: true });
    if (S.category !== "custom" && !PRESETS[S.category].includes(`${S.size[0]}x${S.size[1]}`)) setCategory(S.category);
    setSeedRandom(form.seedRandom !== false);
    if (form.seedRandom === false) $("seed").value = form.seed;
  }
  function clampBatch() {
    const v = Math.min(8, Math.max(1, Math.round(Number($("batch").value) || 1)));
    $("batch").value = v;
    $("batch-minus").disabled = v <= 1;
    $("batch-plus").disabled = v >= 8;
    return v;
  }
  const FIELD_INPUT = { prompt: "prompt", negative_prompt: "negative", width: "width", height: "height", steps: "steps",
                        guidance_scale: "guidance", seed: "seed", batch_size: "batch" };
  function markInvalid(id) {
    if ((id === "width" || id === "height") && S.category !== "custom") setCategory("custom");
    const input = $(id);
    if (!input) return;
    input.setAttribute("aria-invalid", "true");
    const target = input.closest(".stepper") || input;
    target.classList.remove("shake");
    void target.offsetWidth;
    target.classList.add("shake");
    input.focus({ preventScroll: false });
  }
  function clearInvalid(input) {
    (input ? [input] : document.querySelectorAll('[aria-invalid="true"]')).forEach((n) => n.removeAttribute("aria-invalid"));
  }

  /** Fill the form from a finished job's parameters, with the seed of the chosen image. */
  function applyParameters(p, image) {
    $("prompt").value = p.prompt || "";
    $("negative").value = p.negative_prompt || "";
    const w = (image && image.width) || p.width, h = (image && image.height) || p.height;
    setSize(w, h);
    $("steps").value = p.steps;
    $("guidance").value = p.guidance_scale;
    syncRange($("steps-range"), $("steps"));
    syncRange($("guidance-range"), $("guidance"));
    const seed = image && image.seed !== undefined ? image.seed : p.seed;
    setSeedRandom(false);
    $("seed").value = seed;
    clearInvalid();
    renderPromptCount();
    renderNegativeHint();
    saveForm();
    const panel = document.querySelector(".panel-form");
    panel.classList.remove("flash");
    void panel.offsetWidth;
    panel.classList.add("flash");
    if (window.matchMedia("(max-width: 799px)").matches) panel.scrollIntoView({ behavior: "smooth", block: "start" });
    toast(t("reused"), "ok");
  }

  // ---------------------------------------------------------------- generate
  async function generate() {
    if (S.submitting) return;
    clearInvalid();
    const prompt = $("prompt").value.trim();
    if (!prompt) {
      markInvalid("prompt");
      toast(t("promptRequired"), "error");
      return;
    }
    const [width, height] = currentSize();
    renderSummary();
    const steps = Math.round(Number($("steps").value));
    const guidance = Number($("guidance").value);
    if (!(steps >= 1)) { markInvalid("steps"); toast(t("invalidSteps"), "error"); return; }
    if (!(guidance >= 0)) { markInvalid("guidance"); toast(t("invalidGuidance"), "error"); return; }
    let seed = -1;
    if (!$("seed-random").checked) {
      const raw = $("seed").value.trim();
      if (raw !== "") {
        seed = Number(raw);
        if (!Number.isInteger(seed) || seed < 0) { markInvalid("seed"); toast(t("invalidSeed"), "error"); return; }
      }
    }
    const body = { prompt, negative_prompt: $("negative").value.trim(), width, height, steps, guidance_scale: guidance,
                   seed, batch_size: clampBatch() };
    if (window.zimageEdit) window.zimageEdit.extend(body);  // LoRAs, init image, mask (edit.js)
    saveForm();
    S.submitting = true;
    const button = $("generate");
    button.classList.add("busy");
    try {
      const created = await api("generations", { method: "POST", body });
      button.classList.remove("pop");
      void button.offsetWidth;
      button.classList.add("pop");
      S.mine.push(created.id);
      S.ours.add(created.id);
      try { sessionStorage.setItem("zimage.ours", JSON.stringify([...S.ours].slice(-200))); } catch (_) { /* private mode */ }
      renderPending();
      S.jobs[created.id] = { id: created.id, status: created.status || "queued", position: created.position,
                             seed: created.seed, parameters: { ...body, seed: created.seed }, images: [] };
      setLastSeed(created.seed);
      // Show it in the queue right away; the poll confirms it.
      if (!S.queue.queued.some((j) => j.id === created.id) && !(S.queue.running && S.queue.running.id === created.id)) {
        S.queue.queued.push(S.jobs[created.id]);
        renderQueue();
      }
      ensureFollowing();
      pollSoon(150);
    } catch (error) {
      if (error.field && FIELD_INPUT[error.field]) markInvalid(FIELD_INPUT[error.field]);
      toastError(error, error.status === 429 ? t("queueFull") : t("generateFailed"));
    } finally {
      S.submitting = false;
      button.classList.remove("busy");
    }
  }

  // ---------------------------------------------------------------- following one job (SSE)
  // One EventSource at a time (browsers allow ~6 connections per host): the oldest of this tab's
  // jobs, else whatever the server is running. The queue list is polled.
  function ensureFollowing() {
    if (S.follow) return;
    const id = S.mine[0] || (S.queue.running && S.queue.running.id) || null;
    if (id) follow(id);
  }
  function follow(id) {
    const f = { id, es: null, started: null, fraction: 0, status: "queued", position: null, retry: null, cancelling: false };
    S.follow = f;
    const known = S.jobs[id] || {};
    f.position = known.position ?? null;
    if (known.status === "running") f.status = "running";
    setStage({ state: known.status === "running" ? "starting" : "queued", mode: "indeterminate", fraction: 0, eta: "",
               text: () => (f.status === "queued" && f.position ? t("waiting", { position: f.position }) : t("starting")),
               message: null });
    $("result-strip").hidden = true;
    setResultMeta(() => describeParameters(known.parameters, known.seed));
    $("cancel-current").hidden = false;
    $("cancel-current").disabled = false;
    open(f);
  }
  function open(f) {
    const es = new EventSource(`api/v1/generations/${encodeURIComponent(f.id)}/events`);
    f.es = es;
    const data = (event) => { try { return JSON.parse(event.data || "{}"); } catch (_) { return {}; } };
    es.addEventListener("queued", (event) => {
      if (S.follow !== f) return;
      f.status = "queued";
      f.position = data(event).position;
      setStage({ state: "queued", mode: "indeterminate", text: () => t("waiting", { position: f.position }), eta: "" });
      renderQueue();
    });
    es.addEventListener("started", () => {
      if (S.follow !== f) return;
      f.status = "running";
      f.started = Date.now();
      setStage({ state: "starting", mode: "indeterminate", text: () => t("starting"), eta: "" });
      pollSoon(100);
    });
    es.addEventListener("progress", (event) => {
      if (S.follow !== f) return;
      const p = data(event);
      f.status = "running";
      if (!f.started) f.started = Date.now();
      const images = Math.max(1, p.images || 1), steps = Math.max(1, p.steps || 1);
      const index = Math.min(Math.max(0, p.image || 0), images - 1); // image is 0-based
      f.fraction = Math.min(1, (index * steps + (p.step || 0)) / (images * steps));
      const elapsed = (Date.now() - f.started) / 1000;
      const eta = f.fraction > 0.04 && f.fraction < 1 && elapsed > 0.8 ? elapsed * (1 - f.fraction) / f.fraction : null;
      setStage({
        state: "running", mode: "determinate", fraction: f.fraction,
        text: () => (images > 1 ? t("imageStep", { image: index + 1, images, step: p.step, steps }) : t("step", { step: p.step, steps })),
        eta: eta === null ? "" : () => t("eta", { time: fmtSeconds(eta) }),
      });
      if (p.preview) showStageImage(p.preview, "preview");
      updateQueueProgress(f.id, f.fraction);
    });
    es.addEventListener("done", (event) => finish(f, "done", data(event)));
    es.addEventListener("failed", (event) => finish(f, "failed", data(event)));
    es.addEventListener("cancelled", () => finish(f, "cancelled", {}));
    es.onerror = () => {
      if (S.follow !== f || f.retry) return;
      // The browser reconnects by itself; if the job ended meanwhile, find out from the job object.
      f.retry = setTimeout(() => { f.retry = null; recover(f); }, es.readyState === EventSource.CLOSED ? 300 : 1500);
    };
  }
  async function recover(f) {
    if (S.follow !== f) return;
    try {
      const job = await api(`generations/${encodeURIComponent(f.id)}`);
      if (S.follow !== f) return;
      if (TERMINAL.has(job.status)) finish(f, job.status, job.status === "failed" ? { error: job.error } : job);
      else if (f.es.readyState === EventSource.CLOSED) open(f);
    } catch (error) {
      if (S.follow !== f) return;
      if (error.status === 404) finish(f, "gone", {});
      else if (error.status !== 401) f.retry = setTimeout(() => { f.retry = null; recover(f); }, 3000);
    }
  }
  function finish(f, status, data) {
    if (S.follow !== f) return;
    f.es.close();
    clearTimeout(f.retry);
    S.follow = null;
    S.stage.jobId = f.id;
    S.mine = S.mine.filter((id) => id !== f.id);
    renderPending();
    $("cancel-current").hidden = true;
    const job = S.jobs[f.id] || {};
    job.status = status;
    if (status === "done") {
      Object.assign(job, data);
      S.jobs[f.id] = job;
      const seconds = data.finished_at && data.started_at ? data.finished_at - data.started_at
        : f.started ? (Date.now() - f.started) / 1000 : null;
      setStage({ state: "done", mode: "done", fraction: 1, eta: "", message: null,
                 text: () => (seconds !== null ? t("doneIn", { time: fmtSeconds(seconds) }) : t("done")) });
      showResult(data);
      if (S.ours.has(f.id) && data.seed !== undefined) setLastSeed(data.images && data.images[0] ? data.images[0].seed : data.seed);
      refreshHistory({ highlight: f.id });
    } else if (status === "failed") {
      const message = data.error || t("unknownError");
      setStage({ state: "failed", mode: "failed", fraction: 1, text: () => t("failed"), eta: "", message: { error: true, text: message } });
      toast(message, "error", t("generationFailed"));
    } else if (status === "cancelled") {
      setStage({ state: "cancelled", mode: "cancelled", fraction: f.fraction, text: () => t("cancelled"), eta: "", message: null });
    } else {
      setStage({ state: "idle", mode: "idle", fraction: 0, text: null, eta: "", message: null });
    }
    updateTitle();
    pollSoon(50);
    setTimeout(ensureFollowing, status === "done" ? 400 : 150);
  }
  async function cancelCurrent() {
    const f = S.follow;
    if (!f) return;
    f.cancelling = true;
    $("cancel-current").disabled = true;
    renderStage();
    try {
      const job = await api(`generations/${encodeURIComponent(f.id)}/cancel`, { method: "POST" });
      if (job && job.status === "running") toast(t("cancelRequested"), "info");
    } catch (error) {
      f.cancelling = false;
      $("cancel-current").disabled = false;
      renderStage();
      toastError(error, t("cancelFailed"));
    }
  }

  // ---------------------------------------------------------------- stage rendering
  function setStage(patch) {
    Object.assign(S.stage, patch);
    renderStage();
  }
  function renderStage() {
    const st = S.stage;
    const stage = $("stage");
    stage.dataset.state = st.state;
    stage.dataset.jobId = S.follow ? S.follow.id : (st.jobId || "");
    const chip = $("stage-state");
    chip.dataset.state = st.state;
    chip.textContent = st.state === "idle" ? "" :
      st.state === "running" ? t("stateRunningPct", { pct: Math.round(st.fraction * 100) }) : t(`state_${st.state}`);
    const progress = $("progress");
    progress.dataset.mode = st.mode;
    progress.setAttribute("aria-valuenow", String(Math.round((st.fraction || 0) * 100)));
    $("progress-bar").style.width = `${Math.round((st.fraction || 0) * 1000) / 10}%`;
    $("progress-text").textContent = typeof st.text === "function" ? st.text() : (st.text || (st.state === "idle" ? t("idle") : ""));
    $("progress-eta").textContent = typeof st.eta === "function" ? st.eta() : (st.eta || "");
    $("cancel-current").querySelector("span").textContent = S.follow && S.follow.cancelling ? t("cancelling") : t("cancel");
    const hasImage = !$("preview").hidden;
    $("stage-empty").hidden = hasImage || st.state !== "idle";
    const msg = $("stage-message");
    msg.textContent = "";
    msg.classList.remove("error");
    if (st.message) {
      msg.hidden = false;
      msg.classList.toggle("error", !!st.message.error);
      msg.append(icon(st.message.error ? "alert" : "info"), el("span", { text: st.message.text }));
    } else if (st.state === "queued" || st.state === "starting") {
      msg.hidden = false;
      msg.append(el("div", { class: "spinner" }), el("span", { text: $("progress-text").textContent }));
    } else if (st.state === "cancelled" && hasImage) {
      msg.hidden = false;
      msg.append(icon("x"), el("span", { text: t("cancelled") }));
    } else {
      msg.hidden = true;
    }
    updateTitle();
  }
  function showStageImage(src, kind, onClick = null) {
    const img = $("preview");
    const wasHidden = img.hidden;
    img.hidden = false;
    img.className = kind === "preview" ? "is-preview" : "is-result";
    img.onclick = onClick;
    if (img.getAttribute("src") !== src) img.src = src;
    if (img.complete) fitImage(img, $("stage"), 14);
    $("stage-empty").hidden = true;
    if (wasHidden) renderStage();
  }
  /** Scale an image to fit its box (small images scale up too), keeping its aspect ratio. */
  function fitImage(img, box, pad) {
    const w = img.naturalWidth, h = img.naturalHeight;
    const W = box.clientWidth - 2 * pad, H = box.clientHeight - 2 * pad;
    if (!w || !h || W <= 0 || H <= 0) return;
    const scale = Math.min(W / w, H / h);
    img.style.width = `${Math.floor(w * scale)}px`;
    img.style.height = `${Math.floor(h * scale)}px`;
  }
  function showResult(job) {
    const images = job.images || [];
    if (!images.length) return;
    const list = images.map((image, index) => ({ job, image, index }));
    const select = (i) => {
      showStageImage(assetUrl(images[i].url), "result", () => openLightbox(list, i));
      $("preview").alt = job.parameters ? job.parameters.prompt : "";
      setResultMeta(() => describeParameters(job.parameters, images[i].seed, images[i]));
      [...$("result-strip").children].forEach((b, j) => b.setAttribute("aria-current", String(j === i)));
    };
    const strip = $("result-strip");
    strip.textContent = "";
    strip.hidden = images.length < 2;
    images.forEach((image, i) => strip.append(el("button", {
      type: "button", title: `${t("seed")} ${image.seed}`, dataset: { testid: "result-thumb" }, onclick: () => select(i),
    }, el("img", { src: assetUrl(image.url), alt: "", loading: "lazy" }))));
    select(0);
  }
  /** On a fresh page, the newest finished image fills the Current panel until something runs. */
  function showLatest() {
    if (S.follow || S.stage.state !== "idle" || !$("preview").hidden || !S.flat.length) return;
    showResult(S.flat[0].job);
    setStage({ text: () => t("latestImage") });
  }
  function setResultMeta(render) {
    S.resultMeta = render;
    $("result-meta").textContent = render ? render() : "";
  }
  function describeParameters(p, seed, image) {
    if (!p) return "";
    const w = (image && image.width) || p.width, h = (image && image.height) || p.height;
    const parts = [`${t("seed")} ${seed ?? p.seed}`, `${w} × ${h}`, t("stepsN", { count: p.steps })];
    if (Number(p.guidance_scale) > 0) parts.push(`CFG ${fmtCfg(p.guidance_scale)}`);
    if (p.batch_size > 1) parts.push(`× ${p.batch_size}`);
    return parts.join(" · ");
  }
  function updateTitle() {
    const st = S.stage;
    document.title = st.state === "running" ? `${Math.round(st.fraction * 100)}% · zimage`
      : st.state === "queued" || st.state === "starting" ? "… zimage" : "zimage";
  }

  // ---------------------------------------------------------------- queue
  async function refreshQueue() {
    let queue;
    try { queue = await api("queue"); } catch (_) { return; }
    S.queue = { running: queue.running || null, queued: queue.queued || [] };
    for (const job of [S.queue.running, ...S.queue.queued]) if (job) S.jobs[job.id] = { ...(S.jobs[job.id] || {}), ...job };
    const runningId = S.queue.running ? S.queue.running.id : null;
    if (S.lastRunningId && S.lastRunningId !== runningId && !(S.follow && S.follow.id === S.lastRunningId)) {
      refreshHistory(); // a job we did not follow finished
    }
    S.lastRunningId = runningId;
    const f = S.follow;
    if (f && f.status === "queued") { // the stream tells the position once; the poll keeps it current
      const waiting = S.queue.queued.find((j) => j.id === f.id);
      if (waiting && waiting.position && waiting.position !== f.position) { f.position = waiting.position; renderStage(); }
    }
    renderQueue();
    renderSystem();
    ensureFollowing();
  }
  function queueItems() {
    return [S.queue.running, ...S.queue.queued].filter(Boolean);
  }
  function renderQueue() {
    const list = $("queue");
    const items = queueItems();
    const existing = new Map([...list.children].map((li) => [li.dataset.id, li]));
    items.forEach((job, index) => {
      let li = existing.get(job.id);
      if (!li) li = createQueueItem(job);
      existing.delete(job.id);
      updateQueueItem(li, job);
      if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
    });
    for (const li of existing.values()) li.remove();
    $("queue-empty").hidden = items.length > 0;
    $("queue-count").textContent = String(items.length);
    $("queue-clear").hidden = S.queue.queued.length < 2;
    renderPending();
  }
  function renderPending() {
    const badge = $("generate-pending");
    const n = S.mine.length;
    badge.hidden = n === 0;
    badge.textContent = String(n);
    badge.title = t("pendingMine", { count: n });
  }
  function createQueueItem(job) {
    const cancel = el("button", { type: "button", class: "icon-btn", dataset: { testid: "queue-cancel" } }, icon("x"));
    const li = el("li", { class: "q-item", dataset: { testid: "queue-item", id: job.id } }, [
      el("span", { class: "q-pos" }),
      el("div", { class: "q-body" }, [el("div", { class: "q-prompt" }), el("div", { class: "q-meta" }),
                                       el("div", { class: "q-bar", hidden: true }, el("i"))]),
      cancel,
    ]);
    cancel.addEventListener("click", () => cancelJob(li.dataset.id, li));
    return li;
  }
  function updateQueueItem(li, job) {
    const running = job.status === "running" || (S.queue.running && S.queue.running.id === job.id);
    li.classList.toggle("running", running);
    li.classList.toggle("queued", !running);
    li.dataset.status = running ? "running" : "queued";
    const pos = li.querySelector(".q-pos");
    if (running) {
      if (!pos.querySelector(".spinner")) { pos.textContent = ""; pos.append(el("span", { class: "spinner small" })); }
      pos.title = t("state_running");
    } else {
      pos.textContent = `#${job.position ?? "…"}`;
      pos.title = t("waiting", { position: job.position ?? "…" });
    }
    const p = job.parameters || {};
    li.querySelector(".q-prompt").textContent = p.prompt || "—";
    li.querySelector(".q-prompt").title = p.prompt || "";
    const meta = li.querySelector(".q-meta");
    meta.textContent = "";
    if (S.ours.has(job.id)) meta.append(el("span", { class: "q-mine", text: t("yours") }), " · ");
    const parts = [`${p.width}×${p.height}`, t("stepsN", { count: p.steps })];
    if (p.batch_size > 1) parts.push(`× ${p.batch_size}`);
    if (Number(p.guidance_scale) > 0) parts.push(`CFG ${fmtCfg(p.guidance_scale)}`);
    meta.append(parts.join(" · "));
    const bar = li.querySelector(".q-bar");
    bar.hidden = !running;
    if (running) {
      let fraction = 0;
      if (S.follow && S.follow.id === job.id) fraction = S.follow.fraction;
      else if (job.progress) {
        const pr = job.progress;
        fraction = ((Math.min(pr.image || 0, (pr.images || 1) - 1)) * pr.steps + pr.step) / ((pr.images || 1) * pr.steps);
      }
      bar.firstElementChild.style.width = `${Math.round(fraction * 100)}%`;
    }
    const cancel = li.querySelector('[data-testid="queue-cancel"]');
    const label = running ? t("cancelRunning") : t("cancelQueued");
    cancel.title = label;
    cancel.setAttribute("aria-label", `${label}: ${p.prompt || job.id}`);
  }
  function updateQueueProgress(id, fraction) {
    const li = $("queue").querySelector(`[data-id="${CSS.escape(id)}"]`);
    if (!li) return;
    if (!li.classList.contains("running") && !(S.queue.running && S.queue.running.id === id)) {
      const job = S.queue.queued.find((j) => j.id === id);
      if (job) {
        S.queue.queued = S.queue.queued.filter((j) => j.id !== id);
        S.queue.running = { ...job, status: "running" };
        renderQueue();
        return;
      }
    }
    const bar = li.querySelector(".q-bar");
    bar.hidden = false;
    bar.firstElementChild.style.width = `${Math.round(fraction * 100)}%`;
  }
  async function cancelJob(id, li) {
    if (li) li.classList.add("leaving");
    try {
      const job = await api(`generations/${encodeURIComponent(id)}/cancel`, { method: "POST" });
      if (job && job.status === "running") {
        if (li) li.classList.remove("leaving");
        if (S.follow && S.follow.id === id) { S.follow.cancelling = true; $("cancel-current").disabled = true; renderStage(); }
        toast(t("cancelRequested"), "info");
      } else {
        S.queue.queued = S.queue.queued.filter((j) => j.id !== id);
        if (!(S.follow && S.follow.id === id)) S.mine = S.mine.filter((x) => x !== id);
        renderQueue();
        toast(t("jobCancelled"), "ok");
      }
    } catch (error) {
      if (li) li.classList.remove("leaving");
      toastError(error, t("cancelFailed"));
    }
    pollSoon(50);
  }
  async function cancelAllQueued() {
    const ids = S.queue.queued.map((j) => j.id);
    $("queue").querySelectorAll(".q-item.queued").forEach((li) => li.classList.add("leaving"));
    const results = await Promise.allSettled(ids.map((id) => api(`generations/${encodeURIComponent(id)}/cancel`, { method: "POST" })));
    const failed = results.filter((r) => r.status === "rejected");
    S.mine = S.mine.filter((id) => !ids.includes(id) || (S.follow && S.follow.id === id));
    renderPending();
    if (failed.length) toastError(failed[0].reason, t("cancelFailed"));
    else toast(t("cancelledN", { count: ids.length }), "ok");
    pollSoon(50);
  }

  // ---------------------------------------------------------------- history
  async function refreshHistory({ highlight = null } = {}) {
    const seq = ++S.historySeq;
    let data;
    try {
      data = await api(`history?page=${S.page}&per_page=${PER_PAGE}`);
    } catch (error) {
      if (!S.historyLoaded) renderGalleryItems([]);
      return;
    }
    if (seq !== S.historySeq) return;
    S.historyLoaded = true;
    S.total = data.total || 0;
    S.pages = Math.max(1, Math.ceil(S.total / PER_PAGE));
    if (S.page > S.pages) { S.page = S.pages; refreshHistory({ highlight }); return; }
    S.flat = [];
    for (const job of data.items || []) {
      S.jobs[job.id] = { ...(S.jobs[job.id] || {}), ...job };
      (job.images || []).forEach((image, index) => S.flat.push({ job, image, index }));
    }
    const signature = S.flat.map((e) => e.image.id).join(",");
    if (signature !== S.gallerySignature) renderGalleryItems(S.flat, highlight);
    S.gallerySignature = signature;
    renderHistoryMeta();
  }
  function renderGalleryItems(flat, highlight = null) {
    const gallery = $("gallery");
    gallery.setAttribute("aria-busy", "false");
    gallery.textContent = "";
    flat.forEach((entry, i) => {
      const { job, image, index } = entry;
      const p = job.parameters || {};
      const img = el("img", { alt: p.prompt || "", loading: "lazy", decoding: "async", src: assetUrl(image.url) });
      img.addEventListener("load", () => img.classList.add("loaded"));
      img.addEventListener("error", () => img.classList.add("loaded"));
      const tile = el("button", {
        type: "button", class: "tile" + (highlight && job.id === highlight ? " fresh" : ""),
        title: p.prompt || "", dataset: { testid: "gallery-item", jobId: job.id, imageId: image.id, seed: String(image.seed) },
        onclick: () => openLightbox(S.flat, i),
      }, [img, el("span", { class: "tile-caption", text: p.prompt || "" }),
          job.images.length > 1 ? el("span", { class: "tile-badge", text: `${index + 1}/${job.images.length}` }) : null]);
      gallery.append(tile);
    });
    if (highlight) setTimeout(() => gallery.querySelectorAll(".tile.fresh").forEach((n) => n.classList.remove("fresh")), 2600);
    $("gallery-empty").hidden = flat.length > 0;
  }
  function renderGallerySkeleton() {
    const gallery = $("gallery");
    gallery.textContent = "";
    for (let i = 0; i < 8; i++) gallery.append(el("div", { class: "tile skeleton", "aria-hidden": "true" }));
  }
  function renderHistoryMeta() {
    const count = $("history-count");
    count.hidden = !S.total;
    count.textContent = String(S.total);
    count.title = t("generationsCount", { count: S.total });
    $("pager").hidden = S.pages <= 1;
    $("page-label").textContent = t("page", { page: S.page, pages: S.pages });
    $("page-prev").disabled = S.page <= 1;
    $("page-next").disabled = S.page >= S.pages;
  }
  function goToPage(page) {
    if (page < 1 || page > S.pages || page === S.page) return;
    S.page = page;
    S.gallerySignature = null;
    renderGallerySkeleton();
    refreshHistory();
    document.querySelector(".panel-history").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  // ---------------------------------------------------------------- lightbox
  function openLightbox(list, index) {
    S.lightbox = { list: list.slice(), index };
    renderLightbox();
    const dialog = $("lightbox");
    if (!dialog.open) dialog.showModal();
    const img = $("lightbox-image");
    if (img.complete) fitImage(img, dialog.querySelector(".lightbox-figure"), 20);
    $("lightbox-reuse").focus();
  }
  function renderLightbox() {
    const lb = S.lightbox;
    if (!lb || !lb.list[lb.index]) return;
    const { job, image, index } = lb.list[lb.index];
    const p = job.parameters || {};
    const img = $("lightbox-image");
    if (img.getAttribute("src") !== assetUrl(image.url)) {
      img.style.width = img.style.height = "";
      img.src = assetUrl(image.url);
    }
    img.alt = p.prompt || "";
    $("lightbox-prompt").textContent = p.prompt || "";
    $("lightbox-negative").textContent = p.negative_prompt || "";
    $("lightbox-negative-wrap").hidden = !p.negative_prompt;
    const meta = $("lightbox-meta");
    meta.textContent = "";
    const rows = [
      [t("size"), `${image.width} × ${image.height}`],
      [t("metaRatio"), ratio(image.width, image.height)],
      [t("seed"), String(image.seed), "seed"],
      [t("steps"), String(p.steps ?? "")],
      [t("metaCfg"), Number(p.guidance_scale) > 0 ? fmtCfg(p.guidance_scale) : t("off")],
    ];
    if ((job.images || []).length > 1) rows.push([t("metaImage"), `${index + 1} / ${job.images.length}`]);
    if (job.started_at && job.finished_at) rows.push([t("metaDuration"), fmtSeconds(job.finished_at - job.started_at)]);
    if (job.created_at) rows.push([t("metaCreated"), fmtDate(job.created_at), null, true]);
    for (const [name, value, testid, wide] of rows) {
      meta.append(el("div", { class: wide ? "wide" : "" }, [el("dt", { text: name }),
        el("dd", { text: value, dataset: testid ? { testid: `lightbox-${testid}` } : {} })]));
    }
    const download = $("lightbox-download");
    download.href = assetUrl(image.url);
    download.setAttribute("download", `zimage-${image.seed}-${String(image.id).slice(0, 8)}.png`);
    $("lightbox-prev").disabled = lb.index <= 0;
    $("lightbox-next").disabled = lb.index >= lb.list.length - 1;
    $("lightbox-counter").textContent = lb.list.length > 1 ? `${lb.index + 1} / ${lb.list.length}` : "";
    resetDelete();
  }
  function stepLightbox(delta) {
    const lb = S.lightbox;
    if (!lb) return;
    const next = lb.index + delta;
    if (next < 0 || next >= lb.list.length) return;
    lb.index = next;
    renderLightbox();
  }
  let deleteTimer = null;
  function resetDelete() {
    clearTimeout(deleteTimer);
    const button = $("lightbox-delete");
    button.classList.remove("confirm");
    button.dataset.confirm = "";
    $("lightbox-delete-label").textContent = t("delete");
  }
  async function deleteCurrent() {
    const lb = S.lightbox;
    if (!lb) return;
    const { job } = lb.list[lb.index];
    const button = $("lightbox-delete");
    if (!button.dataset.confirm) { // first click arms, second click deletes
      button.dataset.confirm = "1";
      button.classList.add("confirm");
      $("lightbox-delete-label").textContent = (job.images || []).length > 1
        ? t("confirmDeleteN", { count: job.images.length }) : t("confirmDelete");
      deleteTimer = setTimeout(resetDelete, 3500);
      return;
    }
    resetDelete();
    try {
      await api(`history/${encodeURIComponent(job.id)}`, { method: "DELETE" });
      toast(t("deleted"), "ok");
      lb.list = lb.list.filter((e) => e.job.id !== job.id);
      if (!lb.list.length) $("lightbox").close();
      else { lb.index = Math.min(lb.index, lb.list.length - 1); renderLightbox(); }
      refreshHistory();
    } catch (error) {
      toastError(error, t("deleteFailed"));
    }
  }
  async function copyText(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) await navigator.clipboard.writeText(text);
      else {
        const area = el("textarea", { style: "position:fixed;opacity:0" });
        area.value = text;
        document.body.append(area);
        area.select();
        document.execCommand("copy");
        area.remove();
      }
      toast(t("copied"), "ok");
    } catch (_) {
      toast(t("copyFailed"), "error");
    }
  }

  // ---------------------------------------------------------------- system + polling
  async function refreshSystem() {
    try {
      S.system = await api("system");
    } catch (_) {
      renderSystem();
      return;
    }
    $("demo-notice").hidden = !S.system.demo_model;
    renderSystem();
  }
  function renderSystem() {
    const s = S.system;
    const pill = $("system-status");
    const queueLength = S.online === false ? null : queueItems().length || (s ? s.queue_length : 0);
    pill.dataset.online = S.auth || S.online === false ? "no" : !s ? "unknown" : queueLength > 0 ? "busy" : "yes";
    pill.title = S.auth ? t("authTitle") : S.online === false ? t("offline") : s ? `${s.version} · ${s.device}` : "";
    $("status-device").textContent = s ? s.device : "";
    $("status-queue").textContent = S.auth ? t("locked") : S.online === false ? t("offlineShort")
      : s ? t("queueN", { count: queueLength }) : "";
    $("model-name").textContent = s ? s.model : "";
    $("model-name").title = s ? `${s.model} · ${s.version}` : "";
    const parts = [];
    if (s) {
      parts.push(s.version, s.model, s.device);
      if (s.memory && s.memory.total) parts.push(t("memory", { used: fmtBytes(s.memory.used), total: fmtBytes(s.memory.total) }));
      parts.push(t("queueN", { count: queueLength }));
    }
    $("system-info").textContent = parts.filter(Boolean).join(" · ");
    renderGPU(s);
  }
  // The live GPU gauge in the header: the first GPU's readings, hidden when the server has none.
  function renderGPU(s) {
    const el = $("status-gpu");
    const gpus = s && Array.isArray(s.gpus) ? s.gpus : [];
    const g = gpus[0];
    el.hidden = !g;
    if (!g) { el.textContent = ""; el.title = ""; return; }
    const line = (x) => {
      const parts = [];
      if (x.utilization_percent != null) parts.push(`${x.utilization_percent} %`);
      if (x.memory_used_bytes != null && x.memory_total_bytes) parts.push(`${fmtBytes(x.memory_used_bytes)} / ${fmtBytes(x.memory_total_bytes)}`);
      if (x.power_draw_watts != null) parts.push(`${Math.round(x.power_draw_watts)} W`);
      if (x.temperature_celsius != null) parts.push(`${x.temperature_celsius} °C`);
      return parts.join(" · ");
    };
    el.textContent = `GPU ${line(g)}`;
    el.title = gpus.map((x) => `${x.index}: ${x.name} — ${line(x)}`).join("\n");
    el.style.setProperty("--gpu-use", `${Math.max(0, Math.min(100, Number(g.utilization_percent) || 0))}%`);
  }
  function pollSoon(delay = 0) {
    clearTimeout(S.pollTimer);
    S.pollTimer = setTimeout(poll, delay);
  }
  let systemCountdown = 0;
  async function poll() {
    clearTimeout(S.pollTimer);
    // Every poll while a job runs (the GPU gauge stays live), every fourth otherwise.
    if (systemCountdown-- <= 0) { systemCountdown = S.follow || queueItems().length > 0 ? 0 : 3; refreshSystem(); }
    await refreshQueue();
    const busy = S.follow || queueItems().length > 0;
    const delay = S.auth ? 15000 : document.hidden ? 10000 : busy ? 1500 : 4000;
    clearTimeout(S.pollTimer);
    S.pollTimer = setTimeout(poll, delay);
  }

  // ---------------------------------------------------------------- hardware
  // The planner's view of this machine (GET /api/v1/hardware, the same advice as `zimage advise --json`).
  function planLabel(p) {
    return `${p.weights}, ${p.mode}, ${p.tiled_decode ? t("hwTiled") : t("hwFull")}`;
  }
  function planLine(p) {
    const seconds = fmtNumber(p.seconds_per_image, 2);
    const fresh = p.seconds_per_image_new_prompt > p.seconds_per_image * 1.02
      ? " " + t("hwNewPrompt", { s: fmtNumber(p.seconds_per_image_new_prompt, 2) }) : "";
    return `${planLabel(p)} · ${t("hwPeak", { peak: fmtBytes(p.peak_bytes) })} · ${t("hwSeconds", { s: seconds })}${fresh}`;
  }
  async function openHardware() {
    const dialog = $("hardware");
    if (!dialog.open) dialog.showModal();
    $("hardware-summary").textContent = t("hwLoading");
    try {
      renderHardware(await api("hardware"));
    } catch (error) {
      $("hardware-summary").textContent = error.message || String(error);
    }
  }
  function renderHardware(h) {
    const card = h.card || {};
    const backend = card.backend === "cuda" ? "CUDA" : card.backend === "cpu" ? t("hwCpuBackend") : t("hwNoBackend");
    $("hardware-card").textContent = `${card.name} · ${fmtBytes(card.memory_bytes)} · ${backend}`
      + (card.compute_capability ? ` · sm ${card.compute_capability}` : "");
    $("hardware-card").dataset.backend = card.backend || "";
    $("hardware-summary").textContent = h.summary || "";
    const facts = $("hardware-facts");
    facts.replaceChildren();
    const fact = (label, value) => { facts.append(el("div", { class: "wide" }, [el("dt", { text: label }), el("dd", { text: value })])); };
    if (h.cpu_only) fact(t("hwMode"), t("hwCpuOnly"));
    if (card.backend === "cuda") fact(t("hwBudget"), `${fmtBytes(h.budget_bytes)} (${h.budget_source === "server" ? t("hwBudgetServer") : t("hwBudgetDefault")})`);
    if (h.note) fact(t("hwNote"), h.note);
    const chosen = h.this_build && h.this_build.chosen;
    $("hardware-plan").textContent = chosen ? planLine(chosen) : h.cpu_only ? t("hwCpuPlan") : t("hwNoPlan");
    $("hardware-plan").dataset.plan = chosen ? planLabel(chosen) : "";
    $("hardware-reason").textContent = h.this_build ? h.this_build.reason : "";
    const later = h.with_all_modes && h.with_all_modes.chosen;
    $("hardware-potential-wrap").hidden = !later || (chosen && planLabel(later) === planLabel(chosen));
    $("hardware-potential").textContent = later ? planLine(later) : "";
    const bigger = h.bigger_budget || [];
    $("hardware-bigger-wrap").hidden = bigger.length === 0;
    $("hardware-bigger").replaceChildren(...bigger.map((p) => el("li", { text: planLine(p) })));
    const plans = (h.this_build && h.this_build.candidates) || [];
    $("hardware-table-wrap").hidden = plans.length === 0;
    $("hardware-plans").tBodies[0].replaceChildren(...plans.map((p) => {
      const fits = p.peak_bytes <= h.budget_bytes;
      const status = !p.runnable ? t("hwNeeds", { what: (p.missing || []).join(", ") }) : fits ? t("hwRuns") : t("hwOverBudget");
      const isChosen = chosen && planLabel(p) === planLabel(chosen);
      return el("tr", { class: [isChosen ? "chosen" : "", p.runnable && fits ? "" : "muted"].join(" ").trim() || null }, [
        el("td", { text: planLabel(p) }), el("td", { text: fmtBytes(p.peak_bytes) }),
        el("td", { text: fmtNumber(p.seconds_per_image, 2) }), el("td", { text: fmtNumber(p.seconds_per_image_new_prompt, 2) }),
        el("td", { text: status }),
      ]);
    }));
    const gpus = Array.isArray(h.gpus) ? h.gpus : [];
    $("hardware-gpus-wrap").hidden = gpus.length === 0;
    $("hardware-gpus").replaceChildren(...gpus.map((g) => {
      const parts = [];
      if (g.utilization_percent != null) parts.push(`${g.utilization_percent} %`);
      if (g.memory_used_bytes != null && g.memory_total_bytes) parts.push(`${fmtBytes(g.memory_used_bytes)} / ${fmtBytes(g.memory_total_bytes)}`);
      if (g.power_draw_watts != null) parts.push(`${Math.round(g.power_draw_watts)} W`);
      if (g.temperature_celsius != null) parts.push(`${g.temperature_celsius} °C`);
      return el("li", { text: `${g.index}: ${g.name} — ${parts.join(" · ")}` });
    }));
  }

  // ---------------------------------------------------------------- theme
  function setTheme(theme) {
    document.documentElement.dataset.theme = theme;
    store.set(STORE.theme, theme);
    const meta = document.querySelector('meta[name="theme-color"]');
    if (meta) meta.content = theme === "light" ? "#f3f4f8" : "#0c0e13";
  }

  // ---------------------------------------------------------------- wiring
  function wire() {
    $("theme-toggle").addEventListener("click", () => setTheme(document.documentElement.dataset.theme === "light" ? "dark" : "light"));
    $("language").addEventListener("change", (e) => { e.target.blur(); setLanguage(e.target.value); });
    $("auth-reload").addEventListener("click", () => location.reload());

    const form = $("gen-form");
    form.addEventListener("submit", (e) => { e.preventDefault(); generate(); });
    form.addEventListener("keydown", (e) => {
      // Enter in a one-line field must not queue a generation; Ctrl/Cmd+Enter does (below).
      if (e.key === "Enter" && e.target.tagName === "INPUT" && !(e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        if (e.target.type === "number") e.target.dispatchEvent(new Event("change", { bubbles: true }));
      }
    });
    form.addEventListener("input", (e) => { clearInvalid(e.target); });
    form.addEventListener("change", saveForm);
    document.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !$("lightbox").open) { e.preventDefault(); generate(); }
    });

    $("prompt").addEventListener("input", () => { renderPromptCount(); saveFormSoon(); });
    $("negative").addEventListener("input", saveFormSoon);

    document.querySelectorAll('input[name="size-category"]').forEach((radio) =>
      radio.addEventListener("change", () => { if (radio.checked) { setCategory(radio.value); saveForm(); } }));
    for (const id of ["width", "height"]) {
      $(id).addEventListener("input", renderSummary);
      $(id).addEventListener("change", () => {
        if ($(id).value.trim() === "") return; // being retyped; Generate fills in a value
        $(id).value = snap($(id).value);
        S.size = [Number($("width").value) || S.size[0], Number($("height").value) || S.size[1]];
        renderSummary();
        saveForm();
      });
    }
    $("size-swap").addEventListener("click", () => {
      const w = $("width").value;
      $("width").value = $("height").value;
      $("height").value = w;
      S.size = [snap($("width").value), snap($("height").value)];
      renderSummary();
      saveForm();
    });

    for (const [rangeId, numberId] of [["steps-range", "steps"], ["guidance-range", "guidance"]]) {
      const range = $(rangeId), number = $(numberId);
      range.addEventListener("input", () => { number.value = range.value; syncRange(range, number); renderNegativeHint(); });
      range.addEventListener("change", saveForm);
      number.addEventListener("input", () => { syncRange(range, number); renderNegativeHint(); });
      syncRange(range, number);
    }
    $("batch-minus").addEventListener("click", () => { $("batch").value = Number($("batch").value) - 1; clampBatch(); saveForm(); });
    $("batch-plus").addEventListener("click", () => { $("batch").value = Number($("batch").value) + 1; clampBatch(); saveForm(); });
    $("batch").addEventListener("change", () => { if ($("batch").value.trim() !== "") clampBatch(); });

    $("seed").addEventListener("input", () => { $("seed-random").checked = $("seed").value.trim() === ""; });
    $("seed-random").addEventListener("change", () => {
      if ($("seed-random").checked) $("seed").value = "";
      else if ($("seed").value === "") $("seed").value = S.lastSeed ?? Math.floor(Math.random() * MAX_SEED);
      saveForm();
    });
    $("seed-dice").addEventListener("click", () => {
      setSeedRandom(false);
      $("seed").value = Math.floor(Math.random() * MAX_SEED);
      saveForm();
    });
    $("seed-reuse").addEventListener("click", () => {
      if (S.lastSeed === null) return;
      setSeedRandom(false);
      $("seed").value = S.lastSeed;
      clearInvalid($("seed"));
      saveForm();
    });

    $("cancel-current").addEventListener("click", cancelCurrent);
    $("queue-clear").addEventListener("click", cancelAllQueued);
    $("page-prev").addEventListener("click", () => goToPage(S.page - 1));
    $("page-next").addEventListener("click", () => goToPage(S.page + 1));

    const hardware = $("hardware");
    $("hardware-open").addEventListener("click", openHardware);
    $("hardware-close").addEventListener("click", () => hardware.close());
    hardware.addEventListener("click", (e) => { if (e.target === hardware) hardware.close(); });

    const dialog = $("lightbox");
    $("lightbox-close").addEventListener("click", () => dialog.close());
    dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); });
    dialog.addEventListener("keydown", (e) => {
      if (e.target.tagName === "INPUT" || e.target.tagName === "TEXTAREA") return;
      if (e.key === "ArrowLeft") { e.preventDefault(); stepLightbox(-1); }
      if (e.key === "ArrowRight") { e.preventDefault(); stepLightbox(1); }
    });
    dialog.addEventListener("close", resetDelete);
    $("lightbox-prev").addEventListener("click", () => stepLightbox(-1));
    $("lightbox-next").addEventListener("click", () => stepLightbox(1));
    let touchX = null;
    const figure = dialog.querySelector(".lightbox-figure");
    figure.addEventListener("touchstart", (e) => { touchX = e.touches[0].clientX; }, { passive: true });
    figure.addEventListener("touchend", (e) => {
      if (touchX === null) return;
      const dx = e.changedTouches[0].clientX - touchX;
      if (Math.abs(dx) > 50) stepLightbox(dx < 0 ? 1 : -1);
      touchX = null;
    });
    $("lightbox-reuse").addEventListener("click", () => {
      const lb = S.lightbox;
      if (!lb) return;
      const { job, image } = lb.list[lb.index];
      dialog.close();
      applyParameters(job.parameters || {}, image);
    });
    $("lightbox-img2img").addEventListener("click", () => {
      const lb = S.lightbox;
      if (!lb || !window.zimageEdit) return;
      const { image } = lb.list[lb.index];
      dialog.close();
      window.zimageEdit.load(`api/v1/images/${encodeURIComponent(image.id)}`);
    });
    document.addEventListener("zimage:image-size", (e) => setSize(e.detail.width, e.detail.height));
    document.addEventListener("zimage:toast", (e) => toast(e.detail.text, e.detail.kind));
    $("lightbox-copy").addEventListener("click", () => {
      const lb = S.lightbox;
      if (lb) copyText((lb.list[lb.index].job.parameters || {}).prompt || "");
    });
    $("lightbox-delete").addEventListener("click", deleteCurrent);

    document.addEventListener("visibilitychange", () => { if (!document.hidden) pollSoon(0); });
    const fitStage = () => { if (!$("preview").hidden) fitImage($("preview"), $("stage"), 14); };
    const fitLightbox = () => fitImage($("lightbox-image"), figure, 20);
    $("preview").addEventListener("load", fitStage);
    $("lightbox-image").addEventListener("load", fitLightbox);
    if (window.ResizeObserver) {
      new ResizeObserver(fitStage).observe($("stage"));
      new ResizeObserver(fitLightbox).observe(figure);
    } else {
      window.addEventListener("resize", () => { fitStage(); fitLightbox(); });
    }
    $("shortcut-mod").textContent = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent) ? "⌘" : "Ctrl";
  }

  async function init() {
    setTheme(store.get(STORE.theme, "dark") === "light" ? "light" : "dark");
    try { S.ours = new Set(JSON.parse(sessionStorage.getItem("zimage.ours") || "[]")); } catch (_) { S.ours = new Set(); }
    loadForm();
    wire();
    clampBatch();
    renderNegativeHint();
    renderGallerySkeleton();
    const saved = store.get(STORE.language);
    const preferred = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
    const language = saved === "en" || saved === "zh-CN" ? saved : preferred.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
    await setLanguage(language);
    setStage({ state: "idle", mode: "idle", fraction: 0, text: null, eta: "", message: null });
    await Promise.all([refreshSystem(), refreshHistory()]);
    showLatest();
    poll();
    document.documentElement.dataset.ready = "true";
  }
  init();
})();
