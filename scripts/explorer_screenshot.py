"""Takes the README's screenshot of `jaxae explore`: the shipped weights, the pointer on E3's plane at the
mean code of the test images of 9s (the digit Raschka's lecture decodes a chosen point to).

    python scripts/explorer_screenshot.py [--output docs/figures/explorer.png]

Needs selenium (the dev extra) and Debian's chromium and chromium-driver.
"""

import argparse
import shutil
from pathlib import Path

import numpy as np
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from jaxae import pretrained
from jaxae.explore import LatentSpaces, running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path(__file__).parent.parent / "docs" / "figures" / "explorer.png")
    args = parser.parse_args()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1340",
                     "--hide-scrollbars"):
        options.add_argument(argument)
    with running(LatentSpaces()) as address:
        browser = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
        try:
            point_and_shoot(browser, address, args.output)
        finally:
            browser.quit()
    print(f"wrote {args.output}")


def point_and_shoot(browser, address: str, output: Path) -> None:
    """Loads the page, points at the mean code of the test 9s in E3's plane, waits for its decode, saves."""
    browser.get(address + "/")
    WebDriverWait(browser, 60).until(lambda b: b.execute_script("return document.body.dataset.ready === 'true'"))
    codes, labels = pretrained.test_codes("E3")
    z1, z2 = codes[labels == 9].mean(axis=0)
    overlay = browser.find_element(By.CSS_SELECTOR, "#plane-E3 .overlay")
    left, top, width, height = (float(v) for v in overlay.get_attribute("data-box").split(","))
    x_low, y_low, x_high, y_high = (float(v) for v in overlay.get_attribute("data-bounds").split(","))
    px = left + (z1 - x_low) / (x_high - x_low) * width
    py = top + (y_high - z2) / (y_high - y_low) * height
    centre = overlay.size["width"] / 2
    webdriver.ActionChains(browser).move_to_element_with_offset(overlay, round(px - centre), round(py - centre)).perform()
    decoded = browser.find_element(By.ID, "decoded-E3")
    WebDriverWait(browser, 30).until(lambda _: decoded.get_attribute("data-z") and
                                     np.allclose([float(v) for v in decoded.get_attribute("data-z").split(",")],
                                                 [z1, z2], atol=0.1 * (x_high - x_low)))
    output.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(output))

if __name__ == "__main__":
    main()
