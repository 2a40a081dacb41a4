// zimage web UI: LoRA picker, init image (drop, paste, choose, "send to img2img") and mask brush.
// app.js calls window.zimageEdit.extend(body) before it submits, and load(url) from the gallery.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const E = { loras: [], chosen: [], image: null, painted: false, painting: false };

  // ------------------------------------------------------------ LoRAs
  async function refreshLoras() {
    try {
      const response = await fetch("api/v1/loras", { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return;
      E.loras = ((await response.json()).items || []).map((item) => item.name);
    } catch (_) { E.loras = []; }
    renderPicker();
  }
  function label(key, fallback) {
    const node = document.querySelector(`[data-i18n="${key}"]`);
    return (node && node.textContent) || fallback;
  }
  function renderPicker() {
    const select = $("lora-select");
    select.textContent = "";
    const free = E.loras.filter((name) => !E.chosen.some((c) => c.name === name));
    for (const name of free) select.append(new Option(name, name));
    if (!E.loras.length) select.append(new Option(label("noLoras", "no LoRAs on this server"), ""));
    select.disabled = !free.length;
    $("lora-add").disabled = !free.length;
    renderChosen();
  }
  function renderChosen() {
    const list = $("lora-list");
    list.textContent = "";
    for (const lora of E.chosen) {
      const item = document.createElement("li");
      item.className = "lora-item";
      item.dataset.testid = "lora-item";
      item.dataset.name = lora.name;
      const name = document.createElement("span");
      name.className = "lora-name";
      name.textContent = lora.name;
      const range = document.createElement("input");
      Object.assign(range, { type: "range", min: "-2", max: "2", step: "0.05", value: String(lora.strength) });
      range.dataset.testid = "lora-strength";
      range.setAttribute("aria-label", `${lora.name} strength`);
      const number = document.createElement("input");
      Object.assign(number, { type: "number", min: "-10", max: "10", step: "0.05", value: String(lora.strength) });
      number.className = "lora-number";
      number.dataset.testid = "lora-strength-value";
      const sync = (value) => {
        const v = Math.max(-10, Math.min(10, Number(value)));
        if (!Number.isFinite(v)) return;
        lora.strength = v;
        range.value = String(v);
        number.value = String(v);
      };
      range.addEventListener("input", () => sync(range.value));
      number.addEventListener("change", () => sync(number.value));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "icon-btn";
      remove.dataset.testid = "lora-remove";
      remove.setAttribute("aria-label", label("remove", "Remove"));
      remove.innerHTML = '<svg class="icon"><use href="#i-x"/></svg>';
      remove.addEventListener("click", () => {
        E.chosen = E.chosen.filter((c) => c !== lora);
        renderPicker();
      });
      item.append(name, range, number, remove);
      list.append(item);
    }
  }

  // ------------------------------------------------------------ init image and mask
  function showImage(image) {
    E.image = image;
    const [canvas, mask] = [$("init-canvas"), $("mask-canvas")];
    for (const c of [canvas, mask]) { c.width = image.naturalWidth; c.height = image.naturalHeight; }
    canvas.getContext("2d").drawImage(image, 0, 0);
    clearMask();
    $("edit-stage").hidden = false;
    $("edit-tools").hidden = false;
    $("drop-text").hidden = true;
    // The generation takes the image's size (multiples of 16, within the server's 2048).
    const snap = (v) => Math.max(64, Math.min(2048, Math.floor(v / 16) * 16));
    document.dispatchEvent(new CustomEvent("zimage:image-size",
      { detail: { width: snap(image.naturalWidth), height: snap(image.naturalHeight) } }));
  }
  function loadBlob(blob) {
    if (!blob || !(blob.type || "").startsWith("image/")) { complain(); return; }
    const url = URL.createObjectURL(blob);
    const image = new Image();
    image.onload = () => { showImage(image); URL.revokeObjectURL(url); };
    image.onerror = () => { URL.revokeObjectURL(url); complain(); };
    image.src = url;
  }
  function complain() {
    document.dispatchEvent(new CustomEvent("zimage:toast",
      { detail: { text: label("imageUnreadable", "That file is not an image this page can read."), kind: "error" } }));
  }
  function clearImage() {
    E.image = null;
    $("edit-stage").hidden = true;
    $("edit-tools").hidden = true;
    $("drop-text").hidden = false;
    $("image-file").value = "";
  }
  function clearMask() {
    const mask = $("mask-canvas");
    mask.getContext("2d").clearRect(0, 0, mask.width, mask.height);
    E.painted = false;
  }
  function paintAt(event) {
    const mask = $("mask-canvas");
    const box = mask.getBoundingClientRect();
    const x = (event.clientX - box.left) * (mask.width / box.width);
    const y = (event.clientY - box.top) * (mask.height / box.height);
    const radius = (Number($("brush").value) / 2) * (mask.width / box.width);
    const context = mask.getContext("2d");
    context.fillStyle = "rgba(255, 255, 255, 1)";
    context.beginPath();
    context.arc(x, y, radius, 0, Math.PI * 2);
    context.fill();
    E.painted = true;
  }
  /** The mask as the server reads it: black keeps, white repaints (an opaque PNG). */
  function maskPNG() {
    const mask = $("mask-canvas");
    const out = document.createElement("canvas");
    [out.width, out.height] = [mask.width, mask.height];
    const context = out.getContext("2d");
    context.fillStyle = "#000";
    context.fillRect(0, 0, out.width, out.height);
    context.drawImage(mask, 0, 0);
    return out.toDataURL("image/png").split(",")[1];
  }

  // ------------------------------------------------------------ what app.js calls
  window.zimageEdit = {
    /** Adds the LoRAs, init image, strength and mask to a native generation request. */
    extend(body) {
      if (E.chosen.length) body.loras = E.chosen.map((c) => ({ name: c.name, strength: c.strength }));
      if (E.image) {
        body.init_image = $("init-canvas").toDataURL("image/png").split(",")[1];
        body.strength = Math.max(0.05, Math.min(1, Number($("denoise").value) || 0.6));
        if (E.painted) body.mask = maskPNG();
      }
      return body;
    },
    /** "Send to img2img": the gallery image becomes the init image. */
    async load(url) {
      const response = await fetch(url, { credentials: "same-origin" });
      if (response.ok) loadBlob(await response.blob());
    },
    refreshLoras,
  };

  function wire() {
    $("lora-add").addEventListener("click", () => {
      const name = $("lora-select").value;
      if (!name || E.chosen.some((c) => c.name === name)) return;
      E.chosen.push({ name, strength: 1 });
      renderPicker();
    });
    const drop = $("image-drop");
    drop.addEventListener("click", (event) => {
      if (!E.image && event.target !== $("image-file")) $("image-file").click();
    });
    drop.addEventListener("keydown", (event) => {
      if ((event.key === "Enter" || event.key === " ") && !E.image) { event.preventDefault(); $("image-file").click(); }
    });
    $("image-file").addEventListener("change", () => loadBlob($("image-file").files[0]));
    drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("dragging"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("dragging");
      loadBlob(event.dataTransfer && event.dataTransfer.files[0]);
    });
    document.addEventListener("paste", (event) => {
      const item = [...((event.clipboardData && event.clipboardData.items) || [])].find((i) => i.type.startsWith("image/"));
      if (item) { event.preventDefault(); loadBlob(item.getAsFile()); }
    });
    const mask = $("mask-canvas");
    mask.addEventListener("pointerdown", (event) => {
      E.painting = true;
      mask.setPointerCapture(event.pointerId);
      paintAt(event);
    });
    mask.addEventListener("pointermove", (event) => { if (E.painting) paintAt(event); });
    for (const type of ["pointerup", "pointercancel"]) mask.addEventListener(type, () => { E.painting = false; });
    $("mask-clear").addEventListener("click", clearMask);
    $("image-clear").addEventListener("click", clearImage);
    const [range, number] = [$("denoise-range"), $("denoise")];
    range.addEventListener("input", () => { number.value = range.value; });
    number.addEventListener("change", () => { range.value = number.value; });
  }

  document.addEventListener("DOMContentLoaded", () => { wire(); refreshLoras(); });
})();
