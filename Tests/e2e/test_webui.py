#!/usr/bin/env python3
"""The web UI in headless Chromium (selenium + Debian chromium/chromium-driver) against a running
`zimage serve` with the demo model: type a prompt, generate, see progress and the image in the
gallery, reuse its parameters, queue several jobs and cancel a queued one.
Usage: test_webui.py http://127.0.0.1:PORT [--screenshots DIR]. Exits non-zero on failure."""
import json
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

url = sys.argv[1].rstrip("/")
shots = sys.argv[sys.argv.index("--screenshots") + 1] if "--screenshots" in sys.argv else None

options = webdriver.ChromeOptions()
for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,900", "--lang=en-US"]:
    options.add_argument(flag)
for binary in ["/usr/bin/chromium", "/usr/bin/chromium-browser"]:
    if os.path.exists(binary):
        options.binary_location = binary
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver") if os.path.exists("/usr/bin/chromedriver") else Service(),
                          options=options)
wait = WebDriverWait(driver, 120, poll_frequency=0.1)
by_id = lambda name: driver.find_element(By.ID, name)
items = lambda testid: driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def api(path):
    return json.load(urllib.request.urlopen(f"{url}/api/v1/{path}"))


def shot(name):
    if shots:
        os.makedirs(shots, exist_ok=True)
        driver.save_screenshot(os.path.join(shots, name + ".png"))


def set_value(element_id, value):
    element = by_id(element_id)
    element.clear()
    element.send_keys(str(value))


try:
    driver.get(url + "/")
    wait.until(lambda d: by_id("generate").is_displayed() and by_id("model-name").text)
    before = len(items("gallery-item"))

    # Generate one image and watch it progress into the gallery.
    by_id("prompt").send_keys("a red fox in the snow, watercolor")
    Select(by_id("size-category")).select_by_value("custom")
    set_value("width", 256)
    set_value("height", 256)
    set_value("seed", 77)
    by_id("generate").click()
    seen_progress = False
    deadline = time.time() + 120
    while time.time() < deadline and len(items("gallery-item")) <= before:
        text = by_id("progress-text").text
        width = driver.execute_script("return parseFloat(getComputedStyle(arguments[0]).width)", by_id("progress-bar"))
        seen_progress = seen_progress or width > 0 or "step" in text.lower() or "done" in text.lower()
        time.sleep(0.05)
    assert len(items("gallery-item")) > before, "the new image never reached the gallery"
    assert seen_progress, "no progress was shown"
    assert by_id("last-seed").text.endswith("77"), by_id("last-seed").text
    shot("desktop-dark-en")

    # Reuse its parameters from the large view.
    by_id("prompt").clear()
    set_value("seed", -1)
    items("gallery-item")[0].click()
    wait.until(lambda d: by_id("lightbox").get_attribute("open") is not None)
    shot("lightbox")
    by_id("lightbox-reuse").click()
    assert by_id("prompt").get_attribute("value") == "a red fox in the snow, watercolor"
    assert by_id("seed").get_attribute("value") == "77", by_id("seed").get_attribute("value")
    assert by_id("width").get_attribute("value") == "256"

    # Queue several slower jobs and cancel a queued one from the queue list.
    set_value("width", 1024)
    set_value("height", 1024)
    for _ in range(3):
        by_id("generate").click()
        time.sleep(0.3)
    # The list re-renders every 2 s, so read and click it in one script each time.
    queued_ids = lambda: driver.execute_script(
        "return [...document.querySelectorAll('[data-testid=queue-item].queued')].map(li => li.dataset.id)")
    listed_ids = lambda: driver.execute_script(
        "return [...document.querySelectorAll('[data-testid=queue-item]')].map(li => li.dataset.id)")
    wait.until(lambda d: len(queued_ids()) >= 1 and len(listed_ids()) >= 2)
    target = queued_ids()[-1]
    driver.execute_script(
        "document.querySelector(`[data-testid=queue-item][data-id='${arguments[0]}'] [data-testid=queue-cancel]`).click()",
        target)
    wait.until(lambda d: target not in listed_ids())
    assert api(f"generations/{target}")["status"] == "cancelled"
    shot("desktop-queue")
    for job in api("queue")["queued"] + ([api("queue")["running"]] if api("queue")["running"] else []):
        urllib.request.urlopen(urllib.request.Request(f"{url}/api/v1/generations/{job['id']}/cancel", method="POST"))

    if shots:
        driver.execute_script("document.getElementById('theme-toggle').click()")
        shot("desktop-light-en")
        Select(by_id("language")).select_by_value("zh-CN")
        wait.until(lambda d: by_id("generate").text == "生成")
        shot("desktop-light-zh")
        # A phone viewport through device emulation (a headless window has a minimum width).
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
        driver.refresh()
        wait.until(lambda d: by_id("generate").is_displayed())
        driver.execute_script("document.getElementById('theme-toggle').click()")
        shot("phone-dark-zh")
        Select(by_id("language")).select_by_value("en")
        wait.until(lambda d: by_id("generate").text == "Generate")
        shot("phone-dark-en")
    print("web UI: generated with progress, image in the gallery, parameters reused, queued job cancelled")
finally:
    driver.quit()
