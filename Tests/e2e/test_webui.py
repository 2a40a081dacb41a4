#!/usr/bin/env python3
"""The web UI in headless Chromium against a running `zimage serve` (the demo model is enough).

Usage: test_webui.py http://127.0.0.1:PORT [--screenshots DIR] [--api-key KEY]

Needs Debian `chromium` + `chromium-driver` and PyPI `selenium`. Checks, through the page only
(the API is read just to confirm what the page showed):
  * the page loads with the system info (model, device, queue) from /api/v1/system;
  * the Hardware panel opens and shows the card and the plan /api/v1/hardware gives (on a CPU-only
    server: that it is CPU-only and the CPU's plan);
  * a prompt with a custom 256x256 size and seed 77 generates: the Current panel goes through
    queued/starting/running with a moving progress bar or a live preview, then the image appears
    in the history gallery and the used seed is shown;
  * the lightbox of that image shows its parameters, and "reuse these parameters" puts the prompt,
    size, steps, CFG and seed back into the form;
  * a LoRA picked with a strength, an image dropped on the drop zone, a mask painted with the brush
    and a strength reach the server's job; "send to img2img" loads a gallery image (the server's
    loras/ folder must hold kohya.safetensors, as scripts/test.sh puts it there);
  * language (English / 简体中文) and theme (dark / light) switch and are remembered; a browser
    whose language is Chinese gets Chinese by default; under 800 px the layout is one column;
  * several jobs queued quickly show in the queue list with positions; cancelling a waiting one
    from the list removes it (status "cancelled"), and Cancel on the Current panel stops the
    running one.
With --screenshots DIR it saves desktop (1440x900) and phone (390x844) screenshots, dark and
light, English and Chinese. Exits 0 on success, 1 with a message on failure.
"""
import argparse
import base64
import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

PROMPT = "a red fox in the snow, watercolor"
QUEUE_PROMPT = "a lighthouse on a cliff at dusk, oil painting"


class Failure(Exception):
    pass


parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("url", help="the server, e.g. http://127.0.0.1:7860")
parser.add_argument("--screenshots", metavar="DIR", help="save screenshots here")
parser.add_argument("--api-key", help="the server's API key, if it has one")
parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for one generation")
args = parser.parse_args()
BASE = args.url.rstrip("/")
AUTH = {"Authorization": "Basic " + base64.b64encode(f"webui:{args.api_key}".encode()).decode()} if args.api_key else {}


# ---------------------------------------------------------------- the API, to confirm what the page showed
def api(path, method="GET"):
    request = urllib.request.Request(f"{BASE}/api/v1/{path}", method=method, headers=AUTH)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            return json.loads(body) if body else None
    except urllib.error.HTTPError as error:
        raise Failure(f"{method} /api/v1/{path} answered {error.code}: {error.read()[:300]!r}")


# ---------------------------------------------------------------- the browser
def new_driver(language="en-US"):
    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,900",
                 f"--lang={language}", "--hide-scrollbars", "--force-color-profile=srgb"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for binary in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]:
        if os.path.exists(binary):
            options.binary_location = binary
            break
    driver_path = next((p for p in ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"] if os.path.exists(p)), None)
    driver = webdriver.Chrome(service=Service(driver_path) if driver_path else Service(), options=options)
    if AUTH:  # every request of the page, EventSource included, carries the key
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": AUTH})
    return driver


driver = None
console = []


def viewport(width, height, mobile=False):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 2 if mobile else 1, "mobile": mobile})


def wait_for(condition, timeout, message, poll=0.05):
    deadline = time.time() + timeout
    last_error = None
    while time.time() < deadline:
        try:
            value = condition()
            if value:
                return value
        except WebDriverException as error:  # a re-rendered element: try again
            last_error = error
        time.sleep(poll)
    raise Failure(f"timed out after {timeout:.0f} s: {message}" + (f" (last error: {last_error.msg})" if last_error else ""))


def tid(name):
    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{name}"]')


def tids(name):
    return driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{name}"]')


def js(script, *arguments):
    return driver.execute_script(script, *arguments)


def value(testid):
    return tid(testid).get_attribute("value")


def type_into(testid, text):
    element = tid(testid)
    element.clear()
    if text != "":
        element.send_keys(str(text))


def shot(name, full_page=False):
    if not args.screenshots:
        return
    os.makedirs(args.screenshots, exist_ok=True)
    path = os.path.join(args.screenshots, name + ".png")
    time.sleep(0.35)  # let transitions settle
    if full_page:  # (the phone's sticky Generate bar would float mid-page in a capture beyond the viewport)
        js("const s = document.createElement('style'); s.id = 'shot-style';"
           "s.textContent = '.generate-bar { position: static !important; }'; document.head.append(s);")
        data = driver.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True, "fromSurface": True})
        js("document.getElementById('shot-style').remove()")
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))
    else:
        driver.save_screenshot(path)
    print(f"  screenshot {path}")


def load(path="/"):
    driver.get(BASE + path)
    wait_for(lambda: js("return document.documentElement.dataset.ready === 'true'"), 30,
             "the page never finished loading (html[data-ready] not set)")
    if tid("auth-banner").is_displayed():
        raise Failure("the page shows 'this server needs an API key': pass --api-key")


def collect_console():
    try:
        for entry in driver.get_log("browser"):
            console.append(entry)
    except WebDriverException:
        pass


def stage_snapshot():
    return js("""
        const stage = document.querySelector('[data-testid=stage]');
        const preview = document.querySelector('[data-testid=preview]');
        return {state: stage.dataset.state, job: stage.dataset.jobId || '',
                width: document.querySelector('[data-testid=progress-bar]').style.width,
                text: document.querySelector('[data-testid=progress-text]').textContent,
                preview: !preview.hidden && preview.className === 'is-preview'};""")


def queue_items():
    return js("""return [...document.querySelectorAll('[data-testid=queue-item]')]
                 .filter(li => !li.classList.contains('leaving'))
                 .map(li => ({id: li.dataset.id, status: li.dataset.status}));""")


# ---------------------------------------------------------------- the steps
def step(title):
    print(f"- {title}")


def check_load():
    step("load the page and the system info")
    viewport(1440, 900)
    load()
    wait_for(lambda: tid("model-name").text.strip() and tid("system-info").text.strip(), 20,
             "the model name / system info from /api/v1/system never showed")
    system = api("system")
    if system["model"] not in tid("model-name").text:
        raise Failure(f"model chip shows {tid('model-name').text!r}, /api/v1/system says {system['model']!r}")
    if bool(system.get("demo_model")) != tid("demo-notice").is_displayed():
        raise Failure("the demo-model notice does not match /api/v1/system demo_model")
    if tid("guidance").get_attribute("value") != "0" or tid("steps").get_attribute("value") != "8":
        raise Failure("defaults should be steps 8 and CFG 0")
    label = js("return document.querySelector('label[for=guidance]').textContent")
    if "CFG" not in label or "0" not in label:
        raise Failure(f"the CFG label reads {label!r}")


def check_hardware():
    step("open the Hardware panel: the card and the plan from /api/v1/hardware")
    tid("hardware-open").click()
    wait_for(lambda: tid("hardware-panel").is_displayed(), 5, "the Hardware panel did not open")
    hardware = api("hardware")
    card = hardware["card"]
    wait_for(lambda: card["name"] in tid("hardware-card").text, 10,
             f"the panel never showed the card {card['name']!r} (shows {tid('hardware-card').text!r})")
    summary = tid("hardware-summary").text
    if summary != hardware["summary"]:
        raise Failure(f"the summary reads {summary!r}, /api/v1/hardware says {hardware['summary']!r}")
    plan = tid("hardware-plan").text.strip()
    chosen = hardware["this_build"].get("chosen")
    if hardware["cpu_only"]:
        # CI's server runs on the CPU: said plainly, with the CPU's plan and its time.
        if tid("hardware-card").get_attribute("data-backend") != "cpu" or "CPU only" not in summary:
            raise Failure(f"a CPU-only server must say so: card {tid('hardware-card').text!r}, summary {summary!r}")
        if "fp32" not in plan or "s per image" not in tid("hardware-reason").text:
            raise Failure(f"the CPU plan reads {plan!r} / {tid('hardware-reason').text!r}")
    elif chosen:
        label = f"{chosen['weights']}, {chosen['mode']}"
        if label not in plan:
            raise Failure(f"the plan reads {plan!r}, /api/v1/hardware chose {label!r}")
        rows = tid("hardware-plans").find_elements(By.CSS_SELECTOR, "tbody tr")
        if len(rows) != len(hardware["this_build"]["candidates"]):
            raise Failure(f"the table has {len(rows)} plans, the API {len(hardware['this_build']['candidates'])}")
    elif not plan:
        raise Failure("the panel shows no plan line")
    shot("desktop-hardware")
    tid("hardware-close").click()
    wait_for(lambda: not tid("hardware-panel").is_displayed(), 5, "the Hardware panel did not close")


def check_generate():
    step("generate 256x256 with seed 77, watch progress, see it in the gallery")
    type_into("prompt", PROMPT)
    tid("size-cat-custom").click()
    wait_for(lambda: tid("width").is_displayed(), 5, "custom width/height fields did not appear")
    type_into("width", 256)
    type_into("height", 256)
    type_into("seed", 77)
    if tid("seed-random").is_selected():
        raise Failure("typing a seed should switch 'random' off")
    tid("generate").click()

    states, max_width, saw_preview, job = set(), 0.0, False, ""
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        snap = stage_snapshot()
        states.add(snap["state"])
        max_width = max(max_width, float(snap["width"].rstrip("%") or 0))
        saw_preview = saw_preview or snap["preview"]
        job = job or snap["job"]
        if snap["state"] == "failed":
            raise Failure(f"the generation failed: {tid('stage-message').text}")
        errors = js("return [...document.querySelectorAll('[data-testid=toast].error')].map(t => t.textContent)")
        if errors:
            raise Failure(f"the page showed an error: {errors[0]!r}")
        if job and js("return !!document.querySelector(`[data-testid=gallery-item][data-job-id='${arguments[0]}']`)", job):
            break
        time.sleep(0.03)
    else:
        raise Failure(f"the new image never reached the gallery (stage states seen: {sorted(states)})")
    if not states & {"queued", "starting", "running"}:
        raise Failure(f"no queued/running state was shown (states seen: {sorted(states)})")
    if not (max_width > 0 or saw_preview):
        raise Failure("neither the progress bar nor a live preview moved")
    print(f"  states {sorted(states)}, progress bar up to {max_width:.0f}%, live preview {'seen' if saw_preview else 'not seen'}")
    wait_for(lambda: stage_snapshot()["state"] == "done", 10, "the Current panel never said done")
    tile = driver.find_element(By.CSS_SELECTOR, f'[data-testid=gallery-item][data-job-id="{job}"]')
    if tile.get_attribute("data-seed") != "77":
        raise Failure(f"the gallery image has seed {tile.get_attribute('data-seed')}, expected 77")
    if "77" not in tid("last-seed").text or "77" not in tid("result-meta").text:
        raise Failure(f"the used seed is not shown: last-seed {tid('last-seed').text!r}, meta {tid('result-meta').text!r}")
    first = tids("gallery-item")[0].get_attribute("data-job-id")
    if first != job:
        raise Failure("the newest image is not first in the gallery")
    done = api(f"generations/{job}")
    if done["status"] != "done" or done["parameters"]["width"] != 256 or done["seed"] != 77:
        raise Failure(f"the server's job does not match the form: {done['status']} {done['parameters']}")
    shot("desktop-dark-en")
    return job


def check_reuse(job):
    step("open the image, reuse its parameters")
    type_into("prompt", "")
    js("document.querySelector('[data-testid=seed-random]').click()")
    tid("size-cat-1024").click()
    type_into("steps", 12)
    if value("seed") != "" or not tid("seed-random").is_selected():
        raise Failure("'random' did not clear the seed")
    driver.find_element(By.CSS_SELECTOR, f'[data-testid=gallery-item][data-job-id="{job}"]').click()
    wait_for(lambda: tid("lightbox").get_attribute("open") is not None, 5, "the lightbox did not open")
    wait_for(lambda: js("const i = document.querySelector('[data-testid=lightbox-image]'); return i.complete && i.naturalWidth > 0"),
             10, "the lightbox image did not load")
    try:  # (the dialog fades in; selenium reads no text while it is transparent)
        wait_for(lambda: tid("lightbox-prompt").text == PROMPT and tid("lightbox-seed").text == "77", 5, "")
    except Failure:
        raise Failure(f"lightbox shows prompt {tid('lightbox-prompt').text!r}, seed {tid('lightbox-seed').text!r}")
    href = tid("lightbox-download").get_attribute("href")
    if "/api/v1/images/" not in href:
        raise Failure(f"download link is {href!r}")
    shot("desktop-dark-en-lightbox")
    tid("lightbox-reuse").click()
    wait_for(lambda: tid("lightbox").get_attribute("open") is None, 5, "the lightbox did not close after reuse")
    got = {"prompt": value("prompt"), "seed": value("seed"), "width": value("width"), "height": value("height"),
           "steps": value("steps"), "guidance": value("guidance"), "custom": tid("size-cat-custom").is_selected(),
           "random": tid("seed-random").is_selected()}
    want = {"prompt": PROMPT, "seed": "77", "width": "256", "height": "256", "steps": "8", "guidance": "0",
            "custom": True, "random": False}
    if got != want:
        raise Failure(f"reuse filled the form with {got}, expected {want}")


def check_edit(job):
    step("pick a LoRA, drop an image, paint a mask, generate; then send a gallery image to img2img")
    wait_for(lambda: "kohya" in [o.get_attribute("value") for o in tid("lora-select").find_elements(By.TAG_NAME, "option")],
             10, "the LoRA picker does not offer 'kohya' (the server's loras/ folder)")
    Select(tid("lora-select")).select_by_value("kohya")
    tid("lora-add").click()
    wait_for(lambda: len(tids("lora-item")) == 1, 5, "the picked LoRA is not listed")
    js("const r = document.querySelector('[data-testid=lora-strength]'); r.value = '0.7';"
       "r.dispatchEvent(new Event('input'))")
    if value("lora-strength-value") != "0.7":
        raise Failure(f"the strength slider shows {value('lora-strength-value')!r}, expected 0.7")
    # A real drop: a DataTransfer holding a PNG file, dispatched on the drop zone.
    js("""const c = document.createElement('canvas'); c.width = 128; c.height = 96;
          const g = c.getContext('2d'); g.fillStyle = '#3060c0'; g.fillRect(0, 0, 128, 96);
          g.fillStyle = '#f0d020'; g.beginPath(); g.arc(64, 48, 30, 0, 7); g.fill();
          c.toBlob((blob) => { const d = new DataTransfer();
            d.items.add(new File([blob], 'drop.png', { type: 'image/png' }));
            document.querySelector('[data-testid=image-drop]').dispatchEvent(
              new DragEvent('drop', { dataTransfer: d, bubbles: true, cancelable: true })); }, 'image/png');""")
    wait_for(lambda: js("return document.getElementById('edit-stage').hidden === false"), 10, "the dropped image is not shown")
    if (value("width"), value("height")) != ("128", "96"):
        raise Failure(f"the size did not follow the image: {value('width')}x{value('height')}")
    canvas = tid("mask-canvas")
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(driver).move_to_element_with_offset(canvas, -20, -10).click_and_hold().move_by_offset(40, 20) \
        .release().perform()
    painted = js("const c = document.querySelector('[data-testid=mask-canvas]');"
                 "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                 "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;")
    if not painted:
        raise Failure("dragging over the image painted no mask")
    type_into("denoise", "0.8")
    tid("denoise").send_keys("\t")
    type_into("prompt", "a fox, inpainted")
    before = api("history?per_page=1")["items"]
    tid("generate").click()
    deadline, new = time.time() + args.timeout, None
    while time.time() < deadline:
        items = api("history?per_page=1")["items"]
        if items and (not before or items[0]["id"] != before[0]["id"]) and items[0]["status"] in ("done", "failed"):
            new = items[0]
            break
        time.sleep(0.1)
    if not new:
        raise Failure("the img2img job never finished")
    p = new["parameters"]
    if new["status"] != "done" or not p.get("has_init_image") or not p.get("has_mask") or p.get("strength") != 0.8 \
            or p.get("loras") != [{"name": "kohya", "strength": 0.7}] or p["width"] != 128 or p["height"] != 96:
        raise Failure(f"the server's job does not match the page: {new['status']} {new.get('error')} {p}")
    print(f"  job {new['id']}: LoRA kohya at 0.7, init image 128x96, mask ({painted} px painted), strength 0.8")
    shot("desktop-dark-en-edit")
    tid("image-clear").click()
    # "Send to img2img" from the lightbox of the earlier 256x256 image.
    driver.find_element(By.CSS_SELECTOR, f'[data-testid=gallery-item][data-job-id="{job}"]').click()
    wait_for(lambda: tid("lightbox").get_attribute("open") is not None, 5, "the lightbox did not open")
    wait_for(lambda: tid("lightbox-img2img").is_displayed(), 5, "no 'send to img2img' button")
    tid("lightbox-img2img").click()
    wait_for(lambda: js("return document.getElementById('edit-stage').hidden === false && "
                        "document.getElementById('init-canvas').width === 256"), 10, "send to img2img did not load the image")
    tid("image-clear").click()
    tid("lora-remove").click()
    # Back to the first job's parameters (the next checks expect them in the saved form).
    driver.find_element(By.CSS_SELECTOR, f'[data-testid=gallery-item][data-job-id="{job}"]').click()
    wait_for(lambda: tid("lightbox").get_attribute("open") is not None, 5, "the lightbox did not open")
    wait_for(lambda: tid("lightbox-reuse").is_displayed(), 5, "no reuse button")
    tid("lightbox-reuse").click()
    wait_for(lambda: tid("lightbox").get_attribute("open") is None, 5, "the lightbox did not close after reuse")


def check_language_and_theme():
    step("switch language and theme; both are remembered")
    Select(tid("language")).select_by_value("zh-CN")
    wait_for(lambda: tid("generate").text.strip() == "生成", 10, "the Generate button did not turn Chinese")
    if js("return document.documentElement.lang") != "zh-CN":
        raise Failure("html lang is not zh-CN")
    shot("desktop-dark-zh")
    tid("theme-toggle").click()
    wait_for(lambda: js("return document.documentElement.dataset.theme") == "light", 5, "the theme did not switch to light")
    shot("desktop-light-zh")
    load()
    if tid("generate").text.strip() != "生成" or js("return document.documentElement.dataset.theme") != "light":
        raise Failure("language or theme was not remembered across a reload")
    if value("prompt") != PROMPT:
        raise Failure("the form was not remembered across a reload")
    Select(tid("language")).select_by_value("en")
    wait_for(lambda: tid("generate").text.strip() == "Generate", 10, "the Generate button did not turn English")
    shot("desktop-light-en")
    tid("theme-toggle").click()
    wait_for(lambda: js("return document.documentElement.dataset.theme") == "dark", 5, "the theme did not switch back to dark")


def check_default_language():
    step("a Chinese browser gets Chinese by default")
    global driver
    english = driver
    driver = new_driver("zh-CN")
    try:
        viewport(1440, 900)
        load()
        if tid("generate").text.strip() != "生成":
            raise Failure(f"with navigator.language zh-CN the page starts in {js('return document.documentElement.lang')}")
    finally:
        collect_console()
        driver.quit()
        driver = english


def check_phone():
    step("phone layout (390x844): one column")
    viewport(390, 844, mobile=True)
    load()
    boxes = js("""return ['.panel-form', '.panel-current', '.panel-queue', '.panel-history'].map(s => {
                    const r = document.querySelector(s).getBoundingClientRect(); return [r.left, r.top, r.width]; });""")
    lefts = {round(b[0]) for b in boxes}
    tops = [b[1] for b in boxes]
    if len(lefts) != 1 or tops != sorted(tops) or boxes[0][2] > 390:
        raise Failure(f"the phone layout is not a single column: {boxes}")
    if js("return document.documentElement.scrollWidth") > 390:
        raise Failure(f"the page scrolls sideways on a phone ({js('return document.documentElement.scrollWidth')} px)")
    shot("phone-dark-en")
    shot("phone-dark-en-full", full_page=True)
    if tids("gallery-item"):
        js("document.querySelector('[data-testid=gallery-item]').scrollIntoView()")
        tids("gallery-item")[0].click()
        wait_for(lambda: tid("lightbox").get_attribute("open") is not None, 5, "the lightbox did not open on the phone")
        shot("phone-dark-en-lightbox")
        tid("lightbox-close").click()
        wait_for(lambda: tid("lightbox").get_attribute("open") is None, 5, "the lightbox did not close")
    Select(tid("language")).select_by_value("zh-CN")
    wait_for(lambda: tid("generate").text.strip() == "生成", 10, "the phone page did not turn Chinese")
    js("window.scrollTo(0, 0)")
    shot("phone-dark-zh")
    tid("theme-toggle").click()
    shot("phone-light-zh")
    shot("phone-light-zh-full", full_page=True)
    Select(tid("language")).select_by_value("en")
    wait_for(lambda: tid("generate").text.strip() == "Generate", 10, "the phone page did not turn English")
    shot("phone-light-en")
    tid("theme-toggle").click()
    viewport(1440, 900)
    load()


def check_queue_and_cancel():
    step("queue several jobs, cancel a waiting one from the queue list, cancel the running one")
    type_into("prompt", QUEUE_PROMPT)
    tid("size-cat-custom").click()
    type_into("width", 512)
    type_into("height", 512)
    js("const r = document.querySelector('[data-testid=seed-random]'); if (!r.checked) r.click();")
    type_into("batch", 2)
    before = {item["id"] for item in queue_items()}
    for _ in range(4):
        tid("generate").click()
        time.sleep(0.12)
    wait_for(lambda: len([i for i in queue_items() if i["id"] not in before]) >= 3
             and any(i["status"] == "queued" for i in queue_items()), 30,
             "the queue list never showed the new jobs with some of them waiting")
    wait_for(lambda: stage_snapshot()["state"] in ("running", "starting"), args.timeout, "the first queued job never started")
    positions = js("return [...document.querySelectorAll('[data-testid=queue-item].queued .q-pos')].map(e => e.textContent)")
    if not positions or not all(p.startswith("#") for p in positions):
        raise Failure(f"waiting jobs do not show their position: {positions}")
    if args.screenshots:
        try:
            wait_for(lambda: stage_snapshot()["preview"], 20, "no preview")
        except Failure:
            pass
        shot("desktop-dark-en-running")

    target = [i["id"] for i in queue_items() if i["status"] == "queued"][-1]
    count_before = len(queue_items())
    driver.find_element(By.CSS_SELECTOR, f'[data-testid=queue-item][data-id="{target}"] [data-testid=queue-cancel]').click()
    wait_for(lambda: target not in [i["id"] for i in queue_items()], 15, "the cancelled job stayed in the queue list")
    status = api(f"generations/{target}")["status"]
    if status != "cancelled":
        raise Failure(f"the job cancelled from the queue list has status {status!r}")
    if len(queue_items()) >= count_before:
        raise Failure("the queue list did not get shorter")
    print(f"  cancelled waiting job {target}")

    def early_running_job():  # early in a job, so that Cancel lands before its last step
        snap = stage_snapshot()
        return snap["state"] == "running" and float(snap["width"].rstrip("%") or 0) < 50 and snap["job"]
    running = wait_for(early_running_job, args.timeout, "no job was running to cancel")
    tid("cancel-current").click()
    wait_for(lambda: api(f"generations/{running}")["status"] in ("cancelled", "done"), args.timeout,
             "the running job did not stop after Cancel")
    status = api(f"generations/{running}")["status"]
    if status != "cancelled":
        raise Failure(f"the running job finished as {status!r} instead of being cancelled")
    wait_for(lambda: running not in [i["id"] for i in queue_items()], 15, "the cancelled running job stayed in the queue list")
    print(f"  cancelled running job {running}")

    # Clean up: cancel what is left through the page ("cancel all waiting"), then through the API.
    if tid("queue-clear").is_displayed():
        tid("queue-clear").click()
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        queue = api("queue")
        mine = [j for j in ([queue["running"]] if queue["running"] else []) + queue["queued"]
                if j["parameters"]["prompt"] == QUEUE_PROMPT]
        if not mine:
            break
        for j in mine:
            try:
                api(f"generations/{j['id']}/cancel", method="POST")
            except Failure as error:
                # 409: the page's "cancel all waiting" got there first (the job is already ended).
                if "answered 409" not in str(error):
                    raise
        time.sleep(0.5)
    else:
        raise Failure("could not empty the queue after the test")
    wait_for(lambda: not queue_items(), 15, "the queue list did not empty")
    wait_for(lambda: tid("queue-empty").is_displayed(), 5, "the empty-queue message did not come back")


def main():
    global driver
    started = time.time()
    driver = new_driver()
    try:
        check_load()
        check_hardware()
        job = check_generate()
        check_reuse(job)
        check_edit(job)
        check_language_and_theme()
        check_default_language()
        check_phone()
        check_queue_and_cancel()
        collect_console()
        errors = [e for e in console if e.get("level") == "SEVERE" and "Uncaught" in e.get("message", "")]
        if errors:
            raise Failure("JavaScript errors in the console:\n  " + "\n  ".join(e["message"] for e in errors))
        print(f"web UI: OK in {time.time() - started:.1f} s (generate with progress, gallery, reuse, LoRA + drop + "
              "mask + send to img2img, hardware panel, language, theme, phone layout, queue cancel, running cancel)")
        return 0
    except Failure as failure:
        print(f"FAIL: {failure}", file=sys.stderr)
    except Exception:  # a selenium error names the element it could not find
        print("FAIL: unexpected error\n" + traceback.format_exc(), file=sys.stderr)
    try:
        collect_console()
        for entry in console[-15:]:
            print(f"  console {entry.get('level')}: {entry.get('message')}", file=sys.stderr)
        if args.screenshots:
            shot("failure")
    except Exception:
        pass
    return 1


if __name__ == "__main__":
    code = 1
    try:
        code = main()
    finally:
        if driver is not None:
            try:
                driver.quit()
            except Exception:
                pass
    sys.exit(code)
