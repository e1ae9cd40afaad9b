"""Screenshot of optuna-dashboard showing a sweep's study, taken in headless Chromium (the README's picture).

    python tools/dashboard_screenshot.py runs/demo reports/optuna-dashboard.png

Starts `optuna-dashboard SWEEP/study.journal` on a free loopback port, opens the study's trial list, waits until
every trial of the study is listed, saves the PNG, and stops the dashboard."""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a sweep folder holding study.journal")
    parser.add_argument("out", type=Path, help="the PNG to write")
    args = parser.parse_args()
    journal = args.sweep / "study.journal"
    if not journal.is_file():
        sys.exit(f"{args.sweep}: no study.journal (grid sweeps and sweeps on remote storage have none)")
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        sys.exit("needs Debian's chromium and chromium-driver (tools/install-test-browser.sh)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dashboard = subprocess.Popen([str(Path(sys.executable).parent / "optuna-dashboard"), str(journal),
                                  "--host", "127.0.0.1", "--port", str(port)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                studies = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5))
                break
            except OSError:
                time.sleep(0.5)
        else:
            sys.exit("optuna-dashboard did not start")
        study_id = studies["study_summaries"][0]["study_id"]
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
            options.add_argument(flag)
        browser = webdriver.Chrome(service=Service(driver_path), options=options)
        try:
            browser.get(f"http://127.0.0.1:{port}/dashboard/studies/{study_id}/trials")
            for _ in range(120):
                text = browser.find_element("tag name", "body").text
                if " Trials" in text and "Trial 0" in text:
                    break
                time.sleep(0.5)
            time.sleep(2)  # let the charts finish drawing
            args.out.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(args.out))
        finally:
            browser.quit()
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
