"""The playground in a real headless Chromium: how fast the page draws while training,
and how little it costs while paused. Optionally writes the docs' screenshots.

    python benchmarks/playground.py                      # the figures
    python benchmarks/playground.py --screenshots docs   # and docs/playground-*.png

Figures (issue 18's must-shows):
- distinct output heat maps drawn per second for a 2-8-8-1 network while it trains
  (the page counts one per snapshot it draws; a snapshot is drawn at most once), over
  ``--seconds`` seconds after a 2 s warm-up;
- CPU used while paused, over 10 s, as a share of one core: the server process (this
  Python process: the HTTP server, its threads and the idle training thread; the
  Playwright client in it is idle too) and every Chromium process, read from /proc.
Needs Playwright and Debian's chromium (or CHAINRULE_CHROMIUM).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

API = "window.chainrulePlayground"
TICK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            parent[int(d)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def _cpu_ticks(pid: int) -> int:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(f[11]) + int(f[12])          # utime + stime


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def cpu_share(seconds: float) -> dict[str, float]:
    """Share of one core used over ``seconds`` by this process and by its Chromium
    descendants (the Playwright driver, node, reported apart)."""
    me = os.getpid()
    kids = _children(me)
    t0 = time.perf_counter()
    p0 = time.process_time()
    k0 = {k: _cpu_ticks(k) for k in kids}
    time.sleep(seconds)
    p1 = time.process_time()
    k1 = {k: _cpu_ticks(k) for k in kids}
    wall = time.perf_counter() - t0
    share = {"server (python)": (p1 - p0) / wall, "chromium": 0.0, "playwright driver": 0.0}
    for k in kids:
        used = (k1[k] - k0[k]) / TICK / wall
        share["playwright driver" if _name(k) == "node" else "chromium"] += used
    return share


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--screenshots", metavar="DIR", help="also write the docs' screenshots")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from chainrule.playground.server import PlaygroundServer

    exe = os.environ.get("CHAINRULE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    app = PlaygroundServer().start()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app.url + "#dataset=spiral&hidden=8,8&features=x1,x2&lr=0.03")
        page.evaluate(f"{API}.ready")
        page.wait_for_function(f"() => {API}.state().sizes.join('-') === '2-8-8-1'")
        page.click("#play")
        time.sleep(2.0)
        h0, e0, t0 = page.evaluate(f"{API}.stats().heatmaps"), page.evaluate(
            f"{API}.state().epoch"), time.perf_counter()
        time.sleep(args.seconds)
        h1, e1, t1 = page.evaluate(f"{API}.stats().heatmaps"), page.evaluate(
            f"{API}.state().epoch"), time.perf_counter()
        page.click("#play")
        page.wait_for_function(f"() => !{API}.state().playing")
        time.sleep(2.0)
        hp = page.evaluate(f"{API}.stats().heatmaps")
        idle = cpu_share(10.0)
        hq = page.evaluate(f"{API}.stats().heatmaps")
        print(f"network {page.evaluate(f'{API}.state().sizes')}, chromium {browser.version}, "
              f"{os.cpu_count()} CPUs")
        print(f"training: {(h1 - h0) / (t1 - t0):.1f} distinct output heat maps drawn per "
              f"second ({h1 - h0} in {t1 - t0:.1f} s; {(e1 - e0) / (t1 - t0):.1f} epochs/s)")
        print(f"paused, 10 s: {hq - hp} heat maps drawn")
        st = page.evaluate(f"{API}.stats()")
        print(f"page: {st['snapshots']} snapshots received, {st['draws']} drawn, "
              f"{st['drawMs'] / max(st['draws'], 1):.1f} ms of script per drawing")
        for k, v in idle.items():
            print(f"paused, 10 s: {k}: {v * 100:.2f}% of a core")
        print(f"paused, 10 s: server + chromium: "
              f"{(idle['server (python)'] + idle['chromium']) * 100:.2f}% of a core")
        if args.screenshots:
            shots(page, Path(args.screenshots))
        browser.close()
    app.stop()
    return 0


def shots(page, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    page.evaluate(f"{API}.setConfig({{dataset: 'xor', hidden: [4, 2], features: ['x1', 'x2'], "
                  f"lr: 0.3, mode: 'minibatch', seed: 1}})")
    page.wait_for_function(f"() => {API}.state().config.dataset === 'xor' && "
                           f"{API}.state().epoch === 0")
    page.click("#play")
    page.wait_for_function(f"() => {API}.state().testAccuracy >= 0.97", timeout=60_000)
    page.click("#play")
    page.wait_for_function(f"() => !{API}.state().playing")
    page.evaluate(f"{API}.select(1, 2)")
    time.sleep(0.5)
    page.screenshot(path=str(out / "playground-main.png"),
                    clip={"x": 0, "y": 0, "width": 1280, "height": 760})
    box = page.locator("#network").bounding_box()
    maths = page.locator("#maths").bounding_box()
    page.screenshot(path=str(out / "playground-neuron.png"), full_page=True,
                    clip={"x": 0, "y": box["y"] - 4, "width": 1280,
                          "height": maths["y"] + maths["height"] - box["y"] + 8})
    page.evaluate(f"{API}.backward(0)")
    page.click("#backward-next")
    time.sleep(0.4)
    page.screenshot(path=str(out / "playground-backward.png"), full_page=True,
                    clip={"x": 0, "y": box["y"] - 4, "width": 1280,
                          "height": maths["y"] + maths["height"] - box["y"] + 8})
    page.evaluate(f"{API}.surface([1, 1, 1], [1, 1, 2])")
    time.sleep(0.3)
    s = page.locator("#surface").bounding_box()
    page.screenshot(path=str(out / "playground-surface.png"), full_page=True,
                    clip={"x": 0, "y": s["y"] - 4, "width": 1280, "height": s["height"] + 8})
    print(f"screenshots in {out}/playground-{{main,neuron,backward,surface}}.png")


if __name__ == "__main__":
    sys.exit(main())
