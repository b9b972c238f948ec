"""The explorer (``explore.py serve``): its state, its bundled levels, its API in-process and over
a real socket, its page in a real Chromium, and its command line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURES, REPO, run_script

from mlss_jax.explore.view_state import Sample, StateError, ViewState, from_query, to_query

PNG = b"\x89PNG\r\n\x1a\n"
# a quick start-up
SMALL = dict(samples=200, boundary_samples=200, svm_steps=20, cluster_samples=64, multimodal_k=8)


# ---- the state ---------------------------------------------------------------------------

def test_view_state_round_trips_through_its_query():
    state = ViewState(sample=Sample((3, 0, 7), (11, 12, 4294967295), 5), psi=(0.5, 0.8, 1.0),
                      method_psi=0.25, edits=(("pca0", 1.5), ("hue=red", -2.0)), layers=(2, 5),
                      partner=Sample((1, 1, 1), (7, 8, 9), 3), t=0.4, along="medium",
                      locked=(True, False, True))
    query = to_query(state)
    assert from_query(query) == state and from_query("?" + query) == state
    assert to_query(ViewState()) == "c=0,0,0&s=1,2,3&z=0"      # defaults are left out
    assert from_query("") == ViewState()


@pytest.mark.parametrize("query, message", [
    ("p=0.5,2,1", "p must lie in [0, 1]"),
    ("p=nan,1,1", "p must be a finite number"),
    ("p=0.5,1", "p takes 3 values"),
    ("m=-0.1", "m must lie in [0, 1]"),
    ("c=1,2,x", "c must be integers"),
    ("c=-1,2,3", "c must be integers"),
    ("s=1,2,4294967296", "seeds lie in 0..4294967295"),
    ("z=99999999999999999999", "seeds lie in"),
    ("e=pca0:11", "edit pca0 must lie in [-10, 10]"),
    ("e=pca0", "direction:weight pairs"),
    ("e=pca0:1,pca0:2", "names a direction twice"),
    ("l=5-2", "runs backwards"),
    ("il=hue", "il must be all or a level"),
    ("t=1.5&bc=0,0,0", "t must lie in [0, 1]"),
    ("c=1,1,1&c=2,2,2", "given twice"),
    ("colour=red", "unknown parameter 'colour'"),
])
def test_view_state_refuses_bad_parameters_in_one_line(query, message):
    with pytest.raises(StateError, match=None) as err:
        from_query(query)
    assert message in str(err.value) and "\n" not in str(err.value)


# ---- the bundled levels ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_generator():
    from mlss_jax.demo.world import DEMO_PICKLE
    from mlss_jax.weights.load import load_generator

    return load_generator(DEMO_PICKLE)


def test_bundled_levels_are_small_inference_only_and_tied_to_the_demo_generator(demo_generator):
    import jax

    from mlss_jax.demo.world import DEMO_LEVELS
    from mlss_jax.method.bundle import load_bundle
    from mlss_jax.networks.stylegan2 import StyleGAN2Generator
    from mlss_jax.weights.load import load_generator
    from mlss_jax.weights.checkpoint import CheckpointError

    assert sum(p.stat().st_size for p in DEMO_LEVELS.iterdir()) <= 10 * 2 ** 20
    for level in ("coarse", "medium", "fine"):
        with np.load(DEMO_LEVELS / f"{level}.npz") as data:
            assert {key.split("/")[0] for key in data.files} == {"gen", "classifier"}
            assert {key.split("/")[1] for key in data.files if key.startswith("gen/")} == {
                "mixture", "mapper"}                  # no critic, no optimiser state
    levels = load_bundle(DEMO_LEVELS, demo_generator)
    assert [m.config.level for m in levels] == ["coarse", "medium", "fine"]
    assert [m.level_range for m in levels] == [(0, 2), (2, 4), (4, 7)]
    # other weights, same architecture: refused in one line
    nudged = StyleGAN2Generator(demo_generator.config, jax.tree_util.tree_map(
        lambda x: x * 1.001, demo_generator.variables))
    with pytest.raises(CheckpointError) as err:
        load_bundle(DEMO_LEVELS, nudged)
    assert "made for another generator (the same architecture, other weights)" in str(err.value)
    with pytest.raises(CheckpointError, match="made for another generator"):
        load_bundle(DEMO_LEVELS, load_generator(FIXTURES / "tf_small.pkl"))


@pytest.mark.slow
def test_a_bundle_draws_what_its_levels_directory_draws(demo_sized_world, tmp_path):
    from mlss_jax.method.bundle import load_any_levels, make_bundle
    from mlss_jax.method.runs import load_levels
    from mlss_jax.weights.load import load_generator

    generator = load_generator(demo_sized_world / "gen")
    index = make_bundle(demo_sized_world / "levels", generator, tmp_path / "bundle")
    assert json.loads(index.read_text())["generator_sha256"] == generator.weights_sha256
    bundled = load_any_levels(tmp_path / "bundle", generator)
    trained = load_levels(demo_sized_world / "levels")
    eps = np.random.default_rng(0).standard_normal((3, generator.z_dim)).astype(np.float32)
    for a, b in zip(bundled, trained, strict=True):
        assert a.config == b.config and a.step == b.step and a.level_range == b.level_range
        np.testing.assert_array_equal(a.level_w(np.arange(3), eps), b.level_w(np.arange(3), eps))
        images = np.asarray(generator.synthesis(generator.mapping(eps)))
        ws = generator.mapping(eps)
        np.testing.assert_array_equal(a.assign(images, ws), b.assign(images, ws))


# ---- stale requests ---------------------------------------------------------------------------

def test_the_renderer_draws_only_the_newest_request_of_a_channel():
    from mlss_jax.app.serve import Busy, Renderer

    async def scenario():
        renderer, drawn = Renderer(max_waiting=8), []
        await renderer.lock.acquire()        # a render in progress
        frames = [asyncio.create_task(renderer.run("tab:frame", lambda i=i: drawn.append(i) or i))
                  for i in range(5)]
        other = asyncio.create_task(renderer.run(None, lambda: "script"))
        await asyncio.sleep(0.05)
        renderer.lock.release()
        results = await asyncio.gather(*frames, other)
        renderer2 = Renderer(max_waiting=1)
        await renderer2.lock.acquire()
        waiting = asyncio.create_task(renderer2.run(None, lambda: 1))
        await asyncio.sleep(0.01)
        with pytest.raises(Busy):
            await renderer2.run(None, lambda: 2)
        renderer2.lock.release()
        return results, drawn, renderer, await waiting

    results, drawn, renderer, waited = asyncio.run(scenario())
    assert results == [None, None, None, None, 4, "script"] and drawn == [4]
    assert (renderer.rendered, renderer.dropped) == (2, 4) and waited == 1
    # the peaks count what was held at once: 5 frames and the script's request
    assert renderer.peak_per_channel == {"tab:frame": 5} and renderer.peak_waiting == 6
    assert renderer.held == {} and renderer.waiting == 0
    renderer.reset_peaks()
    assert (renderer.peak_waiting, dict(renderer.peak_per_channel)) == (0, {})


def test_the_renderer_skips_a_request_whose_client_has_gone():
    from mlss_jax.app.serve import Renderer

    async def scenario():
        renderer, drawn = Renderer(max_waiting=8), []

        async def gone():
            return True

        async def here():
            return False

        skipped = await renderer.run("tab:clusters-fine", lambda: drawn.append("a") or "a", gone)
        kept = await renderer.run("tab:clusters-fine", lambda: drawn.append("b") or "b", here)
        return skipped, kept, drawn, renderer

    skipped, kept, drawn, renderer = asyncio.run(scenario())
    assert (skipped, kept, drawn) == (None, "b", ["b"])
    assert (renderer.rendered, renderer.dropped, renderer.abandoned) == (1, 0, 1)


# ---- the API, in-process ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def explorer():
    from mlss_jax.app.serve import load_explorer

    explorer = load_explorer(None, None)  # the default start-up work, as explore.py serve's
    explorer.warm_up()
    return explorer


@pytest.fixture(scope="module")
def client(explorer):
    from starlette.testclient import TestClient

    from mlss_jax.app.serve import create_app

    return TestClient(create_app(explorer))


def _image(response) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(response.content)))


@pytest.mark.slow
def test_api_images_follow_the_state(client, explorer):
    info = client.get("/api/info").json()
    assert [lv["clusters"] for lv in info["levels"]] == [10, 10, 10] and info["factors"] is True
    assert {"pca0", "pca5", "hue=red"} <= set(info["directions"])
    query = "c=3,0,7&s=1,2,3&z=0&p=0.5,0.8,1"
    frame = client.get(f"/api/frame.jpg?{query}")
    assert frame.headers["content-type"] == "image/jpeg" and _image(frame).shape == (32, 32, 3)
    png = client.get(f"/api/frame.png?{query}")
    assert png.content[:8] == PNG and "attachment" in png.headers["content-disposition"]
    exact, _ = explorer.frame(from_query(query))
    np.testing.assert_array_equal(_image(png), exact)                       # full resolution, lossless
    assert np.abs(_image(frame).astype(int) - exact).mean() < 8             # the JPEG is close
    assert client.get(f"/api/frame.png?{query}").content == png.content     # deterministic
    moved = client.get("/api/frame.png?c=3,0,7&s=1,2,3&z=0&p=0.5,0.8,0.2")
    assert not np.array_equal(_image(moved), exact)                          # psi moves the image
    posted = client.post("/api/frame.png", json={"c": [3, 0, 7], "p": "0.5,0.8,1"})
    np.testing.assert_array_equal(_image(posted), exact)
    # the four methods at m, side by side; psi 1 leaves every method at the untruncated image
    strip = _image(client.get("/api/methods.jpg?c=3,0,7&m=1"))
    assert strip.shape == (32, 4 * 32, 3)
    untruncated, _ = explorer.frame(from_query("c=3,0,7"))
    for i in range(4):
        assert np.abs(strip[:, 32 * i:32 * (i + 1)].astype(int) - untruncated).mean() < 8
    # a level's clusters: the picked one is the frame itself
    clusters = explorer.clusters(from_query(query), "fine")
    assert clusters.shape == (10, 32, 32, 3)
    np.testing.assert_array_equal(clusters[7], exact)
    assert _image(client.get(f"/api/clusters.jpg?{query}&level=fine")).shape == (32, 320, 3)
    # readouts: six factors with confidences; an edit far along a direction leaves the cluster
    readout = client.get(f"/api/readout?{query}").json()
    assert [f["factor"] for f in readout["factors"]] == ["shape", "scale", "position", "texture",
                                                         "hue", "tint"]
    assert all(0 < f["confidence"] <= 1 for f in readout["factors"])
    assert all(t["typical"] for t in readout["typicality"])
    far = client.get(f"/api/readout?{query}&e=pca0:10,pca1:10").json()["typicality"]
    assert not all(t["typical"] for t in far)
    assert far[0]["distance"] > readout["typicality"][0]["distance"]
    # psi 0 puts each level on its cluster's centre: the most typical latent there is
    centred = client.get("/api/readout?c=3,0,7&p=0,0,0").json()["typicality"]
    assert all(t["distance"] < 1e-2 for t in centred)


@pytest.mark.slow
def test_interpolation_and_edits_move_the_right_inputs(explorer):
    from mlss_jax.explore.live import view_ws

    base = from_query("c=1,2,3&s=4,5,6&z=7")
    partner = "bc=9,8,7&bs=1,1,1&bz=2"
    ws = lambda q: np.asarray(view_ws(explorer.statics, explorer.params, explorer.spec(from_query(q))))
    a, b = ws("c=1,2,3&s=4,5,6&z=7"), ws("c=9,8,7&s=1,1,1&z=2")
    np.testing.assert_allclose(ws(f"c=1,2,3&s=4,5,6&z=7&{partner}&t=0&il=all"), a, atol=1e-5)
    np.testing.assert_allclose(ws(f"c=1,2,3&s=4,5,6&z=7&{partner}&t=1&il=all"), b, atol=1e-5)
    half = ws(f"c=1,2,3&s=4,5,6&z=7&{partner}&t=0.5&il=medium")
    np.testing.assert_allclose(half[2:4], (a[2:4] + b[2:4]) / 2, atol=1e-5)   # medium: inputs 2-3
    np.testing.assert_allclose(half[[0, 1, 4, 5, 6, 7]], a[[0, 1, 4, 5, 6, 7]], atol=1e-6)
    edited = ws("c=1,2,3&s=4,5,6&z=7&e=pca0:2&l=2-5")
    step = 2 * explorer.directions["pca0"]
    np.testing.assert_allclose(edited[2:6], a[2:6] + step, atol=1e-5)
    np.testing.assert_allclose(edited[[0, 1, 6, 7]], a[[0, 1, 6, 7]], atol=1e-6)
    assert base.partner is None


@pytest.mark.slow
def test_bad_requests_are_one_line_4xx_and_the_server_goes_on(client):
    good = "/api/frame.jpg?c=1,2,3"
    cases = [("/api/frame.jpg?c=10,0,0", 400, "coarse cluster 10 is out of range 0..9"),
             ("/api/frame.jpg?bc=0,0,99", 400, "bc: fine cluster 99 is out of range"),
             ("/api/frame.jpg?p=1.5,1,1", 400, "p must lie in [0, 1]"),
             ("/api/frame.jpg?p=nan,1,1", 400, "finite"),
             ("/api/methods.jpg?m=inf", 400, "finite"),
             ("/api/frame.jpg?s=1,2,99999999999", 400, "seeds lie in"),
             ("/api/frame.jpg?e=warp9:1", 400, "unknown direction 'warp9'"),
             ("/api/frame.jpg?l=0-99", 400, "outside 0..7"),
             ("/api/clusters.jpg?level=sky", 400, "level must be one of coarse, medium, fine"),
             ("/api/clusters.jpg", 400, "level must be one of"),
             ("/api/frame.jpg?method=best", 400, "unknown parameter 'method'"),
             ("/api/nothing", 404, "Not Found"),
             ("/static/..%2F..%2Fserve.py", 404, "Not Found"),
             ("/static/%2e%2e/serve.py", 404, "Not Found")]
    for url, status, message in cases:
        response = client.get(url)
        assert response.status_code == status, (url, response.text)
        body = response.json()
        assert message in body["error"] and "\n" not in body["error"], (url, body)
        assert client.get(good).status_code == 200
    for body, message in [(b"{not json", "malformed JSON"), (b"[1, 2]", "a JSON object"),
                          (b'{"p": null}', "numbers or strings"), (b'{"c": [1, 2, 3, 4]}', "c takes 3")]:
        response = client.post("/api/frame.jpg", content=body)
        assert response.status_code == 400 and message in response.json()["error"], response.text
    assert client.get("/static/index.html").status_code == 200
    assert client.get("/").text.startswith("<!doctype html>")


@pytest.mark.slow
def test_moving_sliders_compiles_nothing(explorer, client, caplog):
    import jax

    from mlss_jax.explore import live

    functions = (live.render_frame, live.render_methods, live.render_clusters)
    before = [f._cache_size() for f in functions]
    queries = [f"c={k},{(k * 3) % 10},{9 - k}&s={k},{k + 1},{k * 7}&z={k * 11}&p={k / 9:.2f},0.5,1"
               f"&m={k / 10}&e=pca{k % 6}:{k - 4.5},hue=red:{k / 3}&l={k % 3}-{3 + k % 5}"
               f"&bc=0,1,2&bs=5,6,7&bz={k}&t={k / 9:.2f}&il={['all', 'coarse', 'fine'][k % 3]}"
               for k in range(10)]
    with jax.log_compiles(True), caplog.at_level(logging.DEBUG):
        for k, query in enumerate(queries):
            assert client.get(f"/api/frame.jpg?{query}").status_code == 200
            assert client.get(f"/api/methods.jpg?{query}").status_code == 200
            level = ["coarse", "medium", "fine"][k % 3]
            assert client.get(f"/api/clusters.jpg?{query}&level={level}").status_code == 200
            assert client.get(f"/api/readout?{query}").status_code == 200
    compiled = [r.getMessage() for r in caplog.records if "ompil" in r.getMessage()]
    assert compiled == []
    assert [f._cache_size() for f in functions] == before == [1, 1, 1]


@pytest.mark.slow
def test_100_concurrent_requests_are_all_served(explorer):
    from mlss_jax.app.serve import BackgroundServer, create_app

    app = create_app(explorer)
    results: list = []

    def fetch(i: int) -> None:
        url = f"{base}/api/frame.jpg?c={i % 10},0,0&s={i},1,1"
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                results.append((response.status, response.read()[:2]))
        except Exception as err:  # noqa: BLE001 - any failure is the test's finding
            results.append((repr(err), b""))

    with BackgroundServer(app) as base:
        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        with urllib.request.urlopen(f"{base}/api/info", timeout=30) as response:
            stats = json.load(response)["stats"]
    assert results.count((200, b"\xff\xd8")) == 100, [r for r in results if r[0] != 200][:3]
    assert stats["rendered"] >= 100 and stats["dropped"] == 0
    assert app.state.renderer.waiting == 0


# ---- the command line ------------------------------------------------------------------------

@pytest.mark.slow
def test_render_command_gives_the_pixels_the_page_downloads(explorer, client, tmp_path):
    query = "c=3,0,7&s=1,2,3&z=0&p=0.5,0.8,1&e=pca1:1.5&l=2-5"
    command = client.get("/api/info").json()["command"]
    assert command == "python explore.py render"
    code, stdout, err = run_script("explore.py", "render", "--state", query, "--out", str(tmp_path))
    assert code == 0, err
    written = tmp_path / "render-3-0-7.png"
    assert f"wrote {written}" in stdout
    np.testing.assert_array_equal(np.asarray(Image.open(written)),
                                  _image(client.get(f"/api/frame.png?{query}")))


@pytest.mark.slow
def test_truncate_takes_a_strength_per_level(demo_sized_world, tmp_path):
    world = ["--generator", str(demo_sized_world / "gen"), "--levels-dir",
             str(demo_sized_world / "levels"), "--out", str(tmp_path)]
    code, stdout, err = run_script("explore.py", "truncate", "--seeds", "0-2", "--psi",
                                   "coarse=0.5,medium=0.8", "--samples", "40", *world)
    assert code == 0, err
    path = tmp_path / "truncate-psi-coarse0.5-medium0.8-fine1.png"
    assert f"wrote {path}" in stdout
    settings = json.loads((tmp_path / "manifest.json").read_text())["settings"]["explore truncate"]
    assert settings["psi"] == {"coarse": 0.5, "medium": 0.8} and settings["methods"] == ["multilevel"]
    # two rows (untruncated, multilevel) of three 32 px cells, shown 2x
    assert Image.open(path).size[1] == 2 * (2 * (32 + 2) + 2)


@pytest.mark.slow
def test_a_users_levels_dir_is_served(demo_sized_world):
    from starlette.testclient import TestClient

    from mlss_jax.app.serve import create_app, load_explorer
    from mlss_jax.explore.live import ExplorerConfig

    explorer = load_explorer(demo_sized_world / "gen", demo_sized_world / "levels",
                             config=ExplorerConfig(**SMALL))
    client = TestClient(create_app(explorer))
    assert [lv["clusters"] for lv in client.get("/api/info").json()["levels"]] == [3, 3, 3]
    assert client.get("/api/frame.jpg?c=2,1,0").status_code == 200
    assert "out of range 0..2" in client.get("/api/frame.jpg?c=3,1,0").json()["error"]


@pytest.mark.slow
def test_serve_listens_on_localhost_and_stops_on_ctrl_c_with_one_line(demo_sized_world, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "explore.py", "serve", "--generator",
                             str(demo_sized_world / "gen"), "--levels-dir",
                             str(demo_sized_world / "levels")], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("explore.py: serving http://127.0.0.1:"), (line, proc.stderr.read()
                                                                          if not line else "")
        url = line.split()[2]
        with urllib.request.urlopen(url + "api/info", timeout=30) as response:
            assert json.load(response)["command"].endswith(f"--levels-dir {demo_sized_world / 'levels'}")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert code == 130
    assert err.strip().splitlines()[-1] == "explore.py: interrupted"
    assert [line for line in err.splitlines() if not line.startswith("explore.py: ")] == []


# ---- the page, in a real Chromium ------------------------------------------------------------

PIXELS = ("(() => {{ const c = document.querySelector({!r}); return Array.from(c.getContext('2d')"
          ".getImageData(0, 0, c.width, c.height).data); }})()")


SAME_AS_MAIN = ("(() => {{ const px = (s) => {{ const c = document.querySelector(s); return "
                "Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data).join(); }};"
                " return px('#main') === px({!r}); }})()")


@pytest.mark.slow
def test_the_page_picks_moves_and_reloads_to_the_same_image(explorer, tmp_path):
    from mlss_jax.app.browser import Chromium, find_chromium
    from mlss_jax.app.serve import BackgroundServer, create_app

    if find_chromium() is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    settled = ("window.explorerStats && window.explorerStats.framesDrawn >= {} && "
               "Object.keys(window.explorerStats.thumbsDrawn).length === 3")
    with BackgroundServer(create_app(explorer)) as url, Chromium() as browser:
        browser.navigate(url + "/")
        browser.wait_for(settled.format(1), 60)
        assert browser.evaluate("location.search") == "?c=0,0,0&s=1,2,3&z=0"
        first = browser.evaluate(PIXELS.format("#main"))
        # pick the coarse level's cluster 4 by clicking its thumbnail
        browser.click("#thumbs-coarse canvas:nth-child(5)")
        browser.wait_for("location.search.startsWith('?c=4,0,0')")
        browser.wait_for(settled.format(2), 30)
        assert browser.evaluate("document.querySelector('#thumbs-coarse canvas:nth-child(5)')"
                                ".classList.contains('picked')")
        picked = browser.evaluate(PIXELS.format("#main"))
        assert picked != first
        # move the fine level's psi slider with the mouse
        browser.click("#p-fine", fraction=0.2)
        search = browser.wait_for("location.search.includes('&p=') && location.search")
        psi = float(search.split("p=")[1].split("&")[0].split(",")[2])
        assert 0.05 < psi < 0.4, search
        browser.wait_for(settled.format(3), 30)
        # the picked thumbnail of each level shows the main image (the same view), once drawn
        browser.wait_for(SAME_AS_MAIN.format("#thumbs-fine canvas.picked"), 30)
        browser.wait_for(SAME_AS_MAIN.format("#thumbs-coarse canvas.picked"), 30)
        moved = browser.evaluate(PIXELS.format("#main"))
        assert moved != picked
        browser.screenshot(tmp_path / "explorer.png")
        # reloading the URL shows the same image
        browser.navigate(url + "/" + search)
        browser.wait_for(settled.format(1), 60)
        assert browser.evaluate("location.search") == search
        assert browser.evaluate(PIXELS.format("#main")) == moved
        assert browser.evaluate("document.getElementById('error').textContent") == ""
        assert browser.evaluate("document.getElementById('command').value") == (
            f"python explore.py render --state '{search[1:]}'")
    assert (tmp_path / "explorer.png").read_bytes()[:8] == PNG


@pytest.mark.slow
def test_a_slow_256px_generator_shows_busy_and_queues_at_most_one_frame(tmp_path_factory):
    """A random 256 px generator whose frame takes about a second on CPU, driven in real
    Chromium: the fine psi slider pressed 5 times, at most 0.2 s and half a frame apart. The
    "rendering…" badge shows, the server never holds more than one frame request of the page
    (so none waits behind the one rendering; the page keeps its one pending frame itself), the
    stale values are skipped, and the image finally shown is the last value's; a move made while
    the images asked for after a pause are being drawn cancels them rather than waiting for them
    all. The generator has config-f's widths (30 M parameters, random weights; its levels trained
    one step with the latent classifier): about 0.5 to 1 s a frame on 2 CPU cores, where a
    quarter of its widths took 60 ms, too fast to show the badge. benchmarks/explorer_busy.py
    runs the same check and times the frames."""
    import importlib.util

    from mlss_jax.app.browser import find_chromium

    if find_chromium() is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    spec = importlib.util.spec_from_file_location("explorer_busy", REPO / "benchmarks" / "explorer_busy.py")
    busy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(busy)
    world = busy.make_world(tmp_path_factory.mktemp("busy"))
    explorer = busy.load_busy_explorer(world)
    assert explorer.generator.resolution == 256
    frame_ms = busy.frame_times(explorer, 2)["p50"]
    if frame_ms < 250:   # the badge shows after 150 ms: a faster machine cannot show it reliably
        pytest.skip(f"a frame takes {frame_ms:.0f} ms here: too fast to keep the page busy")
    # the presses come twice as fast as the frames, however fast this machine draws them
    stats = busy.drive(explorer, moves=5, gap_s=min(0.2, frame_ms / 2000), after_pause=True)
    print(f"frame {frame_ms:.0f} ms; {stats}")
    assert stats["busy_badge_shown"], stats
    assert stats["max_frame_requests_held"] == 1, stats
    assert len(set(stats["slider_values"])) == 5, stats
    assert stats["frames_drawn"] < 5, stats        # stale values were skipped, not queued
    assert stats["final_query"] == stats["last_query"], stats
    # JPEG decoders differ by a level or two; another psi differs by far more
    assert stats["final_image_vs_last_value_mean_abs_diff"] < 2.0, stats
    assert stats["final_image_vs_first_value_mean_abs_diff"] > 4 * stats[
        "final_image_vs_last_value_mean_abs_diff"] + 1.0, stats
    # a move while the after-pause images (4 methods, 3 x 2 thumbnails, a readout: 11 images)
    # are being drawn waits for the one image request being drawn, not for all of them
    pause = stats["move_after_pause"]
    assert pause["requests_held_at_the_move"] >= 3 and pause["requests_abandoned"] >= 1, stats
    assert pause["input_to_frame_ms"] < 8 * frame_ms, stats   # all of them: about 12


def test_a_port_in_use_is_one_line_before_any_work():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_script("explore.py", "serve", "--port", str(port))
    assert code == 1 and err.strip() == (f"explore.py: error: --port {port}: the port is in use "
                                         "(leave out --port for a free one)")
