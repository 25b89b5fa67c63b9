"""Time a preset's run as a class sees it: Train page, press Start, wait for the final test accuracy.

Usage: ``python scripts/demo_timing.py http://127.0.0.1:8701 [--preset ff-best-mnist-quick]`` against a
running server that can read the preset's dataset (``FGFF_DATA_DIR=../shared/datasets streamlit run app.py
--server.port 8701``). Prints, in seconds from the click on Start: the first epoch on screen and the final
"Test accuracy" metric, with the accuracy shown. With ``--first-epoch`` it stops at the first epoch on screen
and presses Cancel (for the 20-30 minute presets: that they start and stream from the app). With ``--cpu`` it
also prints the CPU seconds of the server, the training workers and Chromium over the measurement. Not a test:
the times depend on the machine and its load (print ``uptime`` beside them).
"""

from __future__ import annotations

import argparse
import re
import time

from cpu_by_process import CpuByProcess
from page_load_times import ARGS, CHROMIUM, IDLE  # the same browser and the same idle test (scripts/)

READY = ("() => { const b = [...document.querySelectorAll('button')].find(x => x.innerText.includes('Start training'));"
         " return (b && !b.disabled) || document.body.innerText.includes('Start it anyway'); }")
FIRST_EPOCH = ("() => { const e = document.querySelector('[data-testid=\"stProgress\"]');"
               " return e && /[1-9]\\d*\\/\\d+ epochs/.test(e.innerText); }")


def measure(base: str, preset: str, timeout_s: float, first_epoch_only: bool = False) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(f"{base}/?preset={preset}")
        page.get_by_role("heading", name="Train a Forward-Forward network").first.wait_for(timeout=120_000)
        page.wait_for_timeout(300)
        page.wait_for_function(IDLE, timeout=120_000)
        page.wait_for_function(READY, timeout=120_000)
        confirm = page.get_by_text("Start it anyway")  # runs longer than the server starts without asking
        if confirm.count():
            confirm.click()
            page.wait_for_timeout(300)
            page.wait_for_function(IDLE, timeout=120_000)
        start = time.perf_counter()
        page.get_by_role("button", name="Start training").click()
        page.wait_for_function(FIRST_EPOCH, timeout=timeout_s * 1000)
        first = time.perf_counter() - start
        progress = page.locator('[data-testid="stProgress"]').first.inner_text().strip()
        run = re.search(r"run=([0-9a-f]+)", page.url)
        result = {"preset": preset, "first_epoch_s": round(first, 1), "progress_shown": progress,
                  "run_id": run.group(1) if run else None}
        if first_epoch_only:
            page.get_by_role("button", name="Cancel").click()
            page.get_by_text("cancelled", exact=False).first.wait_for(timeout=120_000)
            result["cancelled_s"] = round(time.perf_counter() - start, 1)
        else:
            page.get_by_text("Test accuracy", exact=True).filter(visible=True).first.wait_for(timeout=timeout_s * 1000)
            result["final_accuracy_s"] = round(time.perf_counter() - start, 1)
            page.wait_for_function(IDLE, timeout=60_000)
            result["test_accuracy_shown"] = page.locator('[data-testid="stMetricValue"]').first.inner_text().strip()
        browser.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the server, e.g. http://127.0.0.1:8701")
    parser.add_argument("--preset", default="ff-best-mnist-quick")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the result")
    parser.add_argument("--first-epoch", action="store_true", help="cancel the run once its first epoch shows")
    parser.add_argument("--cpu", action="store_true",
                        help="also print the CPU seconds each kind of process used meanwhile (Linux)")
    args = parser.parse_args()
    if not args.cpu:
        print(measure(args.base.rstrip("/"), args.preset, args.timeout, args.first_epoch))
        return
    with CpuByProcess() as cpu:
        result = measure(args.base.rstrip("/"), args.preset, args.timeout, args.first_epoch)
    print({**result, "cpu_seconds": cpu.seconds, "over_seconds": round(cpu.wall, 1)})


if __name__ == "__main__":
    main()
