"""``explore.py serve``: the explorer in a browser, a small ASGI app (Starlette, run by uvicorn).

Routes (every image route takes the page's state as its query string, or as a JSON object
posted to it; :mod:`mlss_jax.explore.view_state`):

  GET  /                     the page (static files come only from this package's static/)
  GET  /api/info             levels, clusters, edit directions, defaults, the render command
  GET  /api/frame.jpg        the main image, JPEG
  GET  /api/frame.png        the same at full resolution, PNG, as a download
  GET  /api/methods.jpg      stylegan, cutoff, multimodal, multilevel at psi ``m``, one strip
  GET  /api/clusters.jpg     ``level``'s clusters in the current view, one strip
  GET  /api/readout          each level's typicality and (demo world) the factors' reading

Bad parameters get a 400 with a one-line JSON message (``{"error": ...}``); the server goes on.
One image is rendered at a time. A request naming a channel (header ``X-Channel``, as the page
does: one per image it shows) is dropped with a 409 once a newer request of the same channel
arrives before it is rendered, so only the newest is drawn (the page itself keeps one frame in
flight and one waiting, and cancels stale requests of its other images); a request whose client
has gone when its turn comes is not drawn either (the page cancels its other images' requests
when a new frame is asked for, so a slow generator's frame waits for at most one image already
being drawn, not for every thumbnail strip); at most ``max_waiting`` requests wait, beyond that
a 503.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import errno
import io
import shlex
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Awaitable, Callable

import numpy as np

from mlss_jax.errors import ConfigError, ResourceError

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_PORT = 8765


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """How the explorer listens and answers.

    Attributes:
      host: address to listen on (127.0.0.1: this machine only; anything else must be asked for).
      port: port to listen on (default: 8765, or a free one, printed, when that is taken).
      jpeg_quality: quality of the JPEG frames, 1..95.
      max_waiting: requests that may wait for the renderer; more get a 503.
    """

    host: str = "127.0.0.1"
    port: int | None = None
    jpeg_quality: int = 90
    max_waiting: int = 256

    def __post_init__(self) -> None:
        if self.port is not None and not 0 <= self.port <= 65535:
            raise ConfigError(f"port must lie in 0..65535, got {self.port}")
        if not 1 <= self.jpeg_quality <= 95:
            raise ConfigError(f"jpeg_quality must lie in 1..95, got {self.jpeg_quality}")
        if self.max_waiting < 1:
            raise ConfigError(f"max_waiting must be at least 1, got {self.max_waiting}")
        if not self.host.strip():
            raise ConfigError("host must name an address, e.g. 127.0.0.1")


def encode(images: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    """uint8 images [R, R, C] or [N, R, R, C] (side by side) as JPEG or PNG bytes."""
    from PIL import Image

    strip = images if images.ndim == 3 else np.concatenate(list(images), axis=1)
    buffer = io.BytesIO()
    image = Image.fromarray(strip[..., 0] if strip.shape[-1] == 1 else strip)
    if fmt == "JPEG":  # no chroma subsampling: small images keep their colours
        image.save(buffer, "JPEG", quality=quality, subsampling=0)
    else:
        image.save(buffer, "PNG")
    return buffer.getvalue()


class Renderer:
    """One render at a time, newest first: a lock, and per channel the newest request's number."""

    MAX_CHANNELS = 1024

    def __init__(self, max_waiting: int) -> None:
        self.lock = asyncio.Lock()
        self.newest: collections.OrderedDict[str, int] = collections.OrderedDict()
        self.waiting, self.max_waiting = 0, max_waiting
        self.rendered = self.dropped = self.abandoned = 0
        # requests held at once (waiting for the lock or rendering): the most of all channels
        # together, and per channel (the most recent MAX_CHANNELS channels), since start or
        # reset_peaks(); the page keeps one frame in flight, so its frame channel's peak is 1
        self.held: dict[str, int] = {}
        self.peak_waiting = 0
        self.peak_per_channel: collections.OrderedDict[str, int] = collections.OrderedDict()

    def reset_peaks(self) -> None:
        self.peak_waiting = self.waiting
        self.peak_per_channel = collections.OrderedDict((c, n) for c, n in self.held.items() if n)

    async def run(self, channel: str | None, work: Callable[[], object],
                  gone: Callable[[], Awaitable[bool]] | None = None):
        """``work()`` in a worker thread, or None if a newer request of ``channel`` came first
        or, when its turn comes, ``gone()`` says its client has left. Raises :class:`Busy` when
        too many wait."""
        from starlette.concurrency import run_in_threadpool

        if self.waiting >= self.max_waiting:
            raise Busy(f"{self.waiting} requests are waiting; try again")
        number = None
        if channel:
            number = self.newest.pop(channel, 0) + 1
            self.newest[channel] = number
            while len(self.newest) > self.MAX_CHANNELS:
                self.newest.popitem(last=False)
        self.waiting += 1
        self.peak_waiting = max(self.peak_waiting, self.waiting)
        if channel:
            self.held[channel] = self.held.get(channel, 0) + 1
            peak = max(self.peak_per_channel.pop(channel, 0), self.held[channel])
            self.peak_per_channel[channel] = peak
            while len(self.peak_per_channel) > self.MAX_CHANNELS:
                self.peak_per_channel.popitem(last=False)
        try:
            async with self.lock:
                if channel and self.newest.get(channel) != number:
                    self.dropped += 1
                    return None
                if gone is not None and await gone():
                    self.abandoned += 1
                    return None
                result = await run_in_threadpool(work)
                self.rendered += 1
                return result
        finally:
            self.waiting -= 1
            if channel:
                self.held[channel] -= 1
                if not self.held[channel]:
                    del self.held[channel]


class Busy(RuntimeError):
    pass


def create_app(explorer, command: str = "python explore.py render", config: ServeConfig = ServeConfig()):
    """The ASGI app serving ``explorer`` (:class:`~mlss_jax.explore.live.Explorer`);
    ``command`` renders a state from the command line (the page's "copy command")."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from mlss_jax.explore.view_state import (StateError, ViewState, from_params,
                                              params_from_json, to_query)
    from mlss_jax.method.levels import LEVELS

    renderer = Renderer(config.max_waiting)
    directions = list(explorer.directions)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message.splitlines()[0] if message else "error"}, status)

    async def params_of(request: Request) -> dict:
        if request.method == "POST":
            return params_from_json(await request.body())
        params = request.query_params
        repeated = [k for k in params if len(params.getlist(k)) > 1]
        if repeated:
            raise StateError(f"parameter {repeated[0]!r} given twice")
        return dict(params)

    def image_route(draw: Callable[[object, dict], tuple[bytes, str, dict]]):
        async def endpoint(request: Request) -> Response:
            async def gone() -> bool:  # the page cancelled it (or closed): nothing to draw for
                try:
                    await request.body()   # read first, so that the next message is a disconnect
                except ClientDisconnect:
                    return True
                return await request.is_disconnected()

            try:
                params = await params_of(request)
                state = from_params(params)
                explorer.check(state)
                started = time.perf_counter()
                result = await renderer.run(request.headers.get("x-channel"),
                                            lambda: draw(state, params), gone)
            except Busy as err:
                return error(503, str(err))
            except ValueError as err:  # StateError included: a bad parameter
                return error(400, str(err))
            if result is None:
                return error(409, "superseded by a newer request of this channel")
            body, media, headers = result
            ms = (time.perf_counter() - started) * 1000
            return Response(body, media_type=media, headers={
                "Cache-Control": "no-store", "Server-Timing": f"render;dur={ms:.1f}", **headers})
        return endpoint

    def frame_jpeg(state, params):
        image, _ = explorer.frame(state)
        return encode(image, "JPEG", config.jpeg_quality), "image/jpeg", {}

    def frame_png(state, params):
        image, _ = explorer.frame(state)
        name = "explorer-" + "-".join(map(str, state.sample.clusters)) + ".png"
        return encode(image, "PNG"), "image/png", {
            "Content-Disposition": f'attachment; filename="{name}"'}

    def methods_jpeg(state, params):
        return encode(explorer.methods(state), "JPEG", config.jpeg_quality), "image/jpeg", {}

    def clusters_jpeg(state, params):
        level = str(params.get("level", ""))
        if level not in LEVELS:
            raise StateError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
        return encode(explorer.clusters(state, level), "JPEG", config.jpeg_quality), "image/jpeg", {}

    def readout(state, params):
        image, typicality = explorer.frame(state)
        body = {"typicality": typicality, "factors": explorer.factors(image),
                "query": to_query(state)}
        return JSONResponse(body).body, "application/json", {}

    async def info(request: Request) -> Response:
        g = explorer.generator
        return JSONResponse({
            "levels": [{"name": lv, "clusters": k, "inputs": list(r)} for lv, k, r in
                       zip(LEVELS, explorer.num_clusters, explorer.statics.level_ranges)],
            "num_ws": g.num_ws, "resolution": g.resolution, "directions": directions,
            "methods": ["stylegan", "cutoff", "multimodal", "multilevel"],
            "factors": explorer.predictor is not None, "default": to_query(ViewState()),
            "command": command, "stats": {"rendered": renderer.rendered, "dropped": renderer.dropped,
                      "abandoned": renderer.abandoned,
                      "peak_waiting": renderer.peak_waiting,
                      "peak_per_channel": max(renderer.peak_per_channel.values(), default=0)}})

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def not_found(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, exc.detail or "not found")

    methods = ["GET", "POST"]
    routes = [Route("/", page), Route("/api/info", info),
              Route("/api/frame.jpg", image_route(frame_jpeg), methods=methods),
              Route("/api/frame.png", image_route(frame_png), methods=methods),
              Route("/api/methods.jpg", image_route(methods_jpeg), methods=methods),
              Route("/api/clusters.jpg", image_route(clusters_jpeg), methods=methods),
              Route("/api/readout", image_route(readout), methods=methods),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found})
    app.state.renderer = renderer
    return app


def open_socket(host: str, port: int, port_given: bool) -> socket.socket:
    """A listening socket on ``host``:``port``; the default port, when taken, gives way to a
    free one (a port that was asked for is an error instead)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for attempt in (port, 0):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, attempt))
        except OSError as err:
            sock.close()
            if err.errno == errno.EADDRINUSE and not port_given and attempt != 0:
                continue
            if err.errno == errno.EADDRINUSE:
                raise ResourceError(f"--port {port}: the port is in use (leave out --port for a "
                                 "free one)") from None
            raise ConfigError(f"--host {host}: cannot listen there ({err.strerror})") from None
        sock.listen(128)
        return sock
    raise AssertionError("unreachable")


def render_command(generator: Path | None, levels_dir: Path | None) -> str:
    """The command line that renders a state as the server does (the page adds ``--state``)."""
    parts = ["python", "explore.py", "render"]
    if generator is not None:
        parts += ["--generator", str(generator)]
    if levels_dir is not None:
        parts += ["--levels-dir", str(levels_dir)]
    return shlex.join(parts)


def load_explorer(generator_path: Path | None, levels_dir: Path | None,
                  progress: Callable[[str], None] = lambda step: None, config=None):
    """The generator (default: the bundled demo) and its levels (default: the bundled ones),
    checked to belong together, as an :class:`~mlss_jax.explore.live.Explorer`."""
    from mlss_jax.app.paths import require_generator
    from mlss_jax.demo.world import DEMO_LEVELS, DEMO_PICKLE, factor_predictor, is_demo_world
    from mlss_jax.explore.live import Explorer, ExplorerConfig
    from mlss_jax.method.bundle import load_any_levels
    from mlss_jax.weights.load import load_generator

    generator_path = generator_path or DEMO_PICKLE
    require_generator(generator_path)
    generator = load_generator(generator_path)
    levels = load_any_levels(levels_dir or DEMO_LEVELS, generator)
    progress(f"loaded {generator_path} and its levels")  # not before: an error is one line
    demo = is_demo_world(image_shape=(generator.resolution, generator.resolution,
                                      generator.img_channels))
    return Explorer(generator, levels, config or ExplorerConfig(),
                    predictor=factor_predictor() if demo else None)


COMPILATION_CACHE = Path.home() / ".cache" / "mlss-jax" / "jax"


def use_compilation_cache() -> None:
    """Keep compiled programs on disk (unless ``JAX_COMPILATION_CACHE_DIR`` names a folder
    already), so the next start skips most of its compilation."""
    import os

    import jax

    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        try:
            COMPILATION_CACHE.mkdir(parents=True, exist_ok=True)
        except OSError:
            return  # no cache: every start compiles
        jax.config.update("jax_compilation_cache_dir", str(COMPILATION_CACHE))


class BackgroundServer:
    """An app served on 127.0.0.1 (a free port) in a thread, for tests and tools:
    ``with BackgroundServer(app) as url: ...``."""

    def __init__(self, app) -> None:
        import threading

        import uvicorn

        self.sock = open_socket("127.0.0.1", 0, True)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def serve(generator_path: Path | None, levels_dir: Path | None, config: ServeConfig,
          prog: str = "explore.py") -> int:
    """Load, compile, then serve until Ctrl-C (which the caller reports: exit 130)."""
    import uvicorn

    started = time.perf_counter()

    def progress(step: str) -> None:
        print(f"{prog}: {step} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    # before the work: a taken port fails fast
    sock = open_socket(config.host, config.port or DEFAULT_PORT, port_given=config.port is not None)
    try:
        use_compilation_cache()
        explorer = load_explorer(generator_path, levels_dir, progress)
        explorer.warm_up(progress)
        app = create_app(explorer, render_command(generator_path, levels_dir), config)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"{prog}: serving http://{shown}:{port}/ (ready in "
              f"{time.perf_counter() - started:.0f} s; Ctrl-C stops)", flush=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                               timeout_graceful_shutdown=2, lifespan="off"))
        server.run(sockets=[sock])  # Ctrl-C: a graceful stop, then SIGINT raised again here
    finally:
        sock.close()
    # only a signal stops the server; where SIGINT was ignored (a background job), raising it
    # again did nothing: end as the signal would have
    if signal.SIGTERM in getattr(server, "_captured_signals", ()):
        from mlss_jax.app.cli import Terminated

        raise Terminated
    raise KeyboardInterrupt
