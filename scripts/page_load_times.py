"""Page-load times of the app in headless Chromium: from navigation to the page's title, and to idle
(Streamlit's status widget gone: the script has finished and every chart is sent).

Usage: ``python scripts/page_load_times.py http://127.0.0.1:8701 [run_id ...]`` against a running
server (``streamlit run app.py --server.port 8701``). Each page is loaded ``--repeat`` times in a
fresh browser tab; the median is printed as a Markdown table. Not a test: the numbers depend on the
machine and its load (print ``uptime`` beside them).
"""

from __future__ import annotations

import argparse
import statistics
import time

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGES = [("Train", "", "Train a Forward-Forward network"), ("Compare", "compare", "Compare FF vs FGFF"),
         ("Significance", "significance", "Significance"), ("Features", "features", "Features (t-SNE)"),
         ("Data", "data", "Data: positive and negative samples"), ("Runs", "runs", "Runs"),
         ("Learn", "learn", "Learn: Forward-Forward in five steps")]
IDLE = "!document.querySelector('[data-testid=\"stStatusWidget\"]')"


def measure(base: str, runs: list[str], repeat: int) -> list[tuple[str, float, float]]:
    from playwright.sync_api import sync_playwright

    query = f"?run={','.join(runs)}" if runs else ""
    out = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name, path, title in PAGES:
            to_title, to_idle = [], []
            for _ in range(repeat):
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                start = time.perf_counter()
                page.goto(f"{base}/{path}{query if path not in ('', 'learn') else ''}")
                page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
                to_title.append(time.perf_counter() - start)
                page.wait_for_timeout(300)  # the status widget appears only once the script runs
                page.wait_for_function(IDLE, timeout=120_000)
                to_idle.append(time.perf_counter() - start)
                page.close()
            out.append((name, statistics.median(to_title), statistics.median(to_idle)))
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the server, e.g. http://127.0.0.1:8701")
    parser.add_argument("runs", nargs="*", help="run ids to open on the run pages")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| page | to title (s) | to idle (s) |\n|---|---|---|")
    for name, title_s, idle_s in measure(args.base.rstrip("/"), args.runs, args.repeat):
        print(f"| {name} | {title_s:.2f} | {idle_s:.2f} |")


if __name__ == "__main__":
    main()
