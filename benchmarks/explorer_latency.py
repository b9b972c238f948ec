"""The explorer's speed in a real browser: start-up, slider -> image latency, cluster thumbnails.

    python benchmarks/explorer_latency.py [--moves 60] [--json out.json]
    python benchmarks/explorer_latency.py --generator G --levels-dir L

Starts the explorer in-process (as ``explore.py serve`` does, without the on-disk compilation
cache, so the start-up is a first start's), opens its page in headless Chromium and:

- start-up: loading, the start-up work and compilation, in seconds (wall and this process's CPU);
- slider: ``--moves`` real mouse presses on a psi slider, one after the other's frame is shown;
  the page measures each from the slider's input event to the new frame decoded and drawn
  (p50, p95, max in ms);
- drag: ``--moves`` presses sent as fast as the DevTools protocol allows: how many frames the
  page drew and the server rendered or dropped as stale, and the drawn frames' latency;
- thumbnails: ``--picks`` clicks on cluster thumbnails; for each level, the time from the click
  to its thumbnails of every cluster drawn (p50, max in ms).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np


def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, np.float64)
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 1),
            "p95": round(float(np.percentile(a, 95)), 1), "max": round(float(a.max()), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", type=Path, default=None, help="default: the bundled demo")
    parser.add_argument("--levels-dir", type=Path, default=None, help="default: the bundled levels")
    parser.add_argument("--moves", type=int, default=60, help="slider moves (60)")
    parser.add_argument("--picks", type=int, default=10, help="cluster picks (10)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    from mlss_jax.app.browser import Chromium, find_chromium
    from mlss_jax.app.serve import BackgroundServer, create_app, load_explorer

    if find_chromium() is None:
        parser.error("needs chromium (apt-get install chromium)")
    cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    wall0, cpu0 = time.perf_counter(), cpu()
    explorer = load_explorer(args.generator, args.levels_dir)
    explorer.warm_up()
    startup = {"wall_s": round(time.perf_counter() - wall0, 1), "cpu_s": round(cpu() - cpu0, 1)}
    print(f"start-up: {startup['wall_s']} s wall, {startup['cpu_s']} s CPU", flush=True)

    rng = np.random.default_rng(0)
    app = create_app(explorer)
    with BackgroundServer(app) as url, Chromium(width=1280, height=800) as browser:
        browser.navigate(url + "/")
        browser.wait_for("window.explorerStats && window.explorerStats.framesDrawn >= 1 && "
                         "Object.keys(window.explorerStats.thumbsDrawn).length === 3", 120)
        drawn = lambda: browser.evaluate("window.explorerStats.framesDrawn")
        # slider: one move at a time
        browser.evaluate("window.explorerStats.latencies.length = 0")
        for _ in range(args.moves):
            before = drawn()
            browser.click("#p-fine", fraction=float(rng.uniform(0.02, 0.98)))
            browser.wait_for(f"window.explorerStats.framesDrawn > {before}", 30)
            time.sleep(0.05)
        slider = percentiles(browser.evaluate("window.explorerStats.latencies"))
        # drag: as fast as the protocol sends them
        time.sleep(1.0)
        browser.evaluate("window.explorerStats.latencies.length = 0")
        rendered0, dropped0, frames0 = app.state.renderer.rendered, app.state.renderer.dropped, drawn()
        for i in range(args.moves):
            browser.click("#p-medium", fraction=0.02 + 0.96 * (i % 20) / 19)
        time.sleep(2.0)
        drag = {"moves": args.moves, "frames_drawn": drawn() - frames0,
                "requests_rendered": app.state.renderer.rendered - rendered0,
                "requests_dropped_as_stale": app.state.renderer.dropped - dropped0,
                "latency_ms": percentiles(browser.evaluate("window.explorerStats.latencies"))}
        # thumbnails: from a click on a cluster to every level's thumbnails drawn
        per_level: dict[str, list[float]] = {}
        for i in range(args.picks):
            level = ["coarse", "medium", "fine"][i % 3]
            browser.evaluate("window.explorerStats.thumbsDrawn = {}")
            browser.click(f"#thumbs-{level} canvas:nth-child({1 + int(rng.integers(0, 10))})")
            times = browser.wait_for("Object.keys(window.explorerStats.thumbsDrawn).length === 3 "
                                     "&& window.explorerStats.thumbsDrawn", 30)
            for name, ms in times.items():
                per_level.setdefault(name, []).append(ms)
        thumbnails = {name: percentiles(ms) for name, ms in per_level.items()}
    results = {"device": platform.processor() or platform.machine(), "startup": startup,
               "slider_to_frame_ms": slider, "drag": drag, "thumbnails_ms": thumbnails,
               "date": time.strftime("%Y-%m-%d")}
    print(f"slider -> frame drawn: p50 {slider['p50']} ms, p95 {slider['p95']} ms, "
          f"max {slider['max']} ms ({slider['n']} moves)")
    print(f"drag of {args.moves} moves: {drag['frames_drawn']} frames drawn, "
          f"{drag['requests_rendered']} rendered, {drag['requests_dropped_as_stale']} dropped as stale")
    for name, stats in thumbnails.items():
        print(f"{name} thumbnails after a pick: p50 {stats['p50']} ms, max {stats['max']} ms")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
