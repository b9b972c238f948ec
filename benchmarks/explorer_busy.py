"""The explorer with a large generator: frame time at 256 px, and the page's busy state.

    python benchmarks/explorer_busy.py [--channel-base 32768] [--channel-max 512] [--moves 6]
    python benchmarks/explorer_busy.py --world DIR [--json out.json]

Builds (or reuses, ``--world``) a random 256 px StyleGAN2 generator, config-f's widths by default
(fmap_base 16384, fmap_max 512: 30 M parameters), and three levels trained one step with the
latent classifier (untrained but valid levels: the check is about latency, not image quality).
Then it starts the explorer in-process, renders ``--frames`` frames with the API (frame time:
p50 and max in ms, the JPEG encoding included), opens the page in headless Chromium, presses a
psi slider ``--moves`` times, 0.2 s apart, while a frame takes seconds, and reports whether the
"rendering…" badge showed, the most frame requests the server ever held at once (waiting or
rendering), how many it rendered and dropped, and whether the final image is the last value's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

LEVELS = ("coarse", "medium", "fine")


def make_world(root: Path, channel_base: int = 32768, channel_max: int = 512, z_dim: int = 512,
               num_clusters: int = 2) -> Path:
    """``root``/gen: a random 256 px generator; ``root``/levels: its three levels, one step each
    (latent classifier, small critic). Returns ``root``."""
    import jax

    from mlss_jax.method.config import MLSSConfig
    from mlss_jax.method.training import train_level
    from mlss_jax.networks.config import GeneratorConfig
    from mlss_jax.networks.generator import init_generator
    from mlss_jax.weights.checkpoint import save_networks

    root = Path(root)
    cfg = GeneratorConfig(resolution=256, z_dim=z_dim, w_dim=z_dim, channel_base=channel_base,
                          channel_max=channel_max)
    save_networks(root / "gen", generator_config=cfg,
                  generator_vars=jax.device_get(init_generator(cfg, jax.random.PRNGKey(0))))
    for level in LEVELS:
        config = MLSSConfig(level=level, num_clusters=num_clusters, batch_size=4, steps=1,
                            classifier="latent", critic_hidden=32, critic_layers=1,
                            checkpoint_every=1, log_every=1)
        train_level(config, root / "gen", root / "levels" / level, progress=False)
    return root


def load_busy_explorer(world: Path):
    """The explorer on ``world`` with small start-up sample counts (the PCA, the multimodal
    centres and the cluster Gaussians do not matter to the latency)."""
    from mlss_jax.app.serve import load_explorer
    from mlss_jax.explore.live import ExplorerConfig

    small = ExplorerConfig(samples=200, boundary_samples=200, svm_steps=20, cluster_samples=600,
                           multimodal_k=8)
    explorer = load_explorer(world / "gen", world / "levels", config=small)
    explorer.warm_up()
    return explorer


MAIN_PIXELS = ("(() => { const c = document.querySelector('#main'); return Array.from("
               "c.getContext('2d').getImageData(0, 0, c.width, c.height).data); })()")


def drive(explorer, moves: int = 6, gap_s: float = 0.2, timeout_s: float = 600,
          after_pause: bool = False) -> dict:
    """The page in headless Chromium: ``moves`` presses on the fine psi slider, ``gap_s`` apart,
    then wait for the page to settle. ``after_pause``: then a press on the medium psi slider,
    and another once the images asked for after that frame (methods, thumbnails, readout) are
    being rendered, timed from its input event to its frame drawn. Returns what happened (see
    the module's docstring)."""
    from mlss_jax.app.browser import Chromium
    from PIL import Image

    from mlss_jax.app.serve import BackgroundServer, create_app, encode
    from mlss_jax.explore.view_state import from_query

    app = create_app(explorer)
    renderer = app.state.renderer
    settled = ("window.explorerStats && window.explorerStats.framesDrawn >= {} && "
               "!document.getElementById('stage').classList.contains('busy') && "
               "Object.keys(window.explorerStats.thumbsDrawn).length === 3")
    with BackgroundServer(app) as url, Chromium(width=1280, height=800) as browser:
        def settle(frames: int) -> None:  # the page drew its images, the server is idle
            browser.wait_for(settled.format(frames), timeout_s)
            deadline = time.monotonic() + timeout_s
            while renderer.waiting and time.monotonic() < deadline:
                time.sleep(0.05)
            browser.wait_for(settled.format(frames), timeout_s)

        browser.navigate(url + "/")
        settle(1)
        renderer.reset_peaks()
        browser.evaluate("window.explorerStats.thumbsDrawn = {}")
        frames0, rendered0, dropped0 = (browser.evaluate("window.explorerStats.framesDrawn"),
                                        renderer.rendered, renderer.dropped)
        browser.evaluate("window.explorerStats.busySeen = false; new MutationObserver(() => { if "
                         "(document.getElementById('stage').classList.contains('busy')) "
                         "window.explorerStats.busySeen = true; }).observe("
                         "document.getElementById('stage'), {attributes: true})")
        started = time.perf_counter()
        fractions = np.linspace(0.1, 0.9, moves)[::-1]
        searches = []
        for fraction in fractions:
            browser.click("#p-fine", fraction=float(fraction))
            searches.append(browser.evaluate("location.search"))
            time.sleep(gap_s)
        last = browser.evaluate("location.search")
        busy_visible = browser.evaluate(
            "getComputedStyle(document.getElementById('busy')).display !== 'none'")
        settle(frames0 + 1)
        seconds = time.perf_counter() - started
        drawn = browser.evaluate(MAIN_PIXELS)
        final_search = browser.evaluate("location.search")
        stats = {"moves": moves, "seconds_to_settle": round(seconds, 1),
                 "busy_badge_shown": bool(busy_visible or browser.evaluate("window.explorerStats.busySeen")),
                 "frames_drawn": browser.evaluate("window.explorerStats.framesDrawn") - frames0,
                 "requests_rendered": renderer.rendered - rendered0,
                 "requests_dropped_as_stale": renderer.dropped - dropped0,
                 "max_frame_requests_held": max((n for c, n in renderer.peak_per_channel.items()
                                                 if c.endswith(":frame")), default=0),
                 "max_held_per_channel": dict(renderer.peak_per_channel),
                 "max_waiting": renderer.peak_waiting,
                 "last_query": last[1:], "final_query": final_search[1:]}
        if after_pause:  # a move while the images asked for after a pause are being rendered
            frames = browser.evaluate("window.explorerStats.framesDrawn")
            browser.click("#p-medium", fraction=0.5)
            browser.wait_for(f"window.explorerStats.framesDrawn > {frames}", timeout_s)
            deadline = time.monotonic() + timeout_s
            while renderer.waiting < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            held = renderer.waiting
            browser.click("#p-medium", fraction=0.3)
            browser.wait_for(f"window.explorerStats.framesDrawn > {frames + 1}", timeout_s)
            stats["move_after_pause"] = {
                "requests_held_at_the_move": held,
                "requests_abandoned": renderer.abandoned,
                "input_to_frame_ms": round(browser.evaluate("window.explorerStats.latencies.at(-1)"))}
            settle(frames + 2)
    # the image drawn against the frames of the last and the first slider value (as JPEG, as sent)
    shown = np.asarray(drawn, np.int32).reshape(256, 256, 4)[..., :3]
    stats["slider_values"] = [from_query(q).psi[2] for q in searches]
    for name, query in (("last", last), ("first", searches[0])):
        image = np.asarray(Image.open(io.BytesIO(encode(explorer.frame(from_query(query))[0], "JPEG"))))
        stats[f"final_image_vs_{name}_value_mean_abs_diff"] = round(float(
            np.abs(shown - image.astype(np.int32)).mean()), 2)
    return stats


def frame_times(explorer, frames: int) -> dict:
    """``frames`` frames through the API's renderer (state -> JPEG), each a new psi: ms."""
    from mlss_jax.app.serve import encode
    from mlss_jax.explore.view_state import ViewState

    times = []
    for i in range(frames):
        state = ViewState(psi=(1.0, 1.0, 0.05 + 0.9 * i / max(frames - 1, 1)))
        t0 = time.perf_counter()
        image, _ = explorer.frame(state)
        encode(image, "JPEG")
        times.append((time.perf_counter() - t0) * 1000)
    a = np.asarray(times)
    return {"n": frames, "p50": round(float(np.percentile(a, 50)), 1),
            "max": round(float(a.max()), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, default=None,
                        help="a folder holding gen/ and levels/ (made there when missing)")
    parser.add_argument("--channel-base", type=int, default=32768, help="32768: config-f")
    parser.add_argument("--channel-max", type=int, default=512, help="512: config-f")
    parser.add_argument("--frames", type=int, default=5, help="frames timed through the API (5)")
    parser.add_argument("--moves", type=int, default=6, help="slider presses in the page (6)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    import tempfile

    from mlss_jax.app.browser import find_chromium

    if find_chromium() is None:
        parser.error("needs chromium (apt-get install chromium)")
    world = args.world or Path(tempfile.mkdtemp(prefix="explorer-busy-"))
    t0 = time.perf_counter()
    if not (world / "levels" / "fine").exists():
        make_world(world, args.channel_base, args.channel_max)
        print(f"made {world} in {time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    explorer = load_busy_explorer(world)
    startup_s = round(time.perf_counter() - t0, 1)
    print(f"start-up: {startup_s} s", flush=True)
    g = explorer.generator
    params = sum(np.size(x) for x in __import__("jax").tree_util.tree_leaves(g.variables["params"]))
    frame = frame_times(explorer, args.frames)
    print(f"frame at {g.resolution} px ({params:,} parameters): p50 {frame['p50']} ms, "
          f"max {frame['max']} ms ({frame['n']} frames)", flush=True)
    page = drive(explorer, args.moves, after_pause=True)
    print(json.dumps(page, indent=2), flush=True)
    results = {"device": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "load_average": os.getloadavg(), "generator_parameters": int(params),
               "startup_s": startup_s, "frame_ms": frame, "page": page,
               "date": time.strftime("%Y-%m-%d")}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
