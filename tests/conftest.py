"""Shared test helpers: where the fixtures are, and running the CLI scripts in-process."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "data"   # see tests/data/README.md


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    if not path.exists():
        pytest.fail(f"missing test fixture {path} (tests/data/README.md lists them)")
    return path


def env_without(*packages: str) -> dict[str, str]:
    """An environment for a subprocess in which ``packages`` are not installed, as far as it can
    tell (``tests/blocked_imports``)."""
    path = [str(REPO / "tests" / "blocked_imports"), os.environ.get("PYTHONPATH")]
    return {**os.environ, "MLSS_BLOCKED_IMPORTS": ",".join(packages),
            "PYTHONPATH": os.pathsep.join(filter(None, path))}


def rel_error(actual, expected) -> float:
    """Largest absolute difference relative to the reference array's largest magnitude."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def run_script(script: str, *args: str) -> tuple[int, str, str]:
    """Run a top-level script's ``main`` through ``mlss_jax.app.cli.run``: (exit code, stdout, stderr)."""
    from mlss_jax.app import cli

    path = REPO / script
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    sys.argv = [str(path)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.run(module.main, list(args))
            except SystemExit as exit_:
                code = exit_.code
    finally:
        sys.argv = old_argv
    return int(code or 0), out.getvalue(), err.getvalue()


# Fixtures that take minutes to build: only tests marked slow may use them, so that the quick
# check (python -m pytest -m "not slow") never builds one.
SLOW_FIXTURES = frozenset({"demo_sized_world", "pipeline_run", "uninterrupted", "tiny_generator",
                           "config_f_checkpoint"})


def pytest_collection_modifyitems(config, items):
    """Keep the tiers honest: a multiprocess test, or one that uses a slow fixture, is slow."""
    for item in items:
        marks = {mark.name for mark in item.iter_markers()}
        slow_fixtures = SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if "slow" not in marks and ("multiprocess" in marks or slow_fixtures):
            why = "is multiprocess" if "multiprocess" in marks else f"uses {min(slow_fixtures)}"
            raise pytest.UsageError(f"{item.nodeid} {why}: mark it @pytest.mark.slow")


@pytest.fixture(scope="session")
def demo_sized_world(tmp_path_factory):
    """A random 32 px generator (the demo's size, tiny widths) and three levels trained 2 steps,
    shared by the evaluation and exploration tests."""
    import jax

    from mlss_jax.method.config import MLSSConfig
    from mlss_jax.method.training import train_level
    from mlss_jax.networks.config import GeneratorConfig
    from mlss_jax.networks.generator import init_generator
    from mlss_jax.weights.checkpoint import save_networks

    root = tmp_path_factory.mktemp("world")
    cfg = GeneratorConfig(resolution=32, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64,
                          channel_max=8)
    save_networks(root / "gen", generator_config=cfg,
                  generator_vars=jax.device_get(init_generator(cfg, jax.random.PRNGKey(0))))
    for level in ("coarse", "medium", "fine"):
        config = MLSSConfig(level=level, num_clusters=3, batch_size=8, steps=2, critic_hidden=16,
                            critic_layers=2, checkpoint_every=2, log_every=1)
        train_level(config, root / "gen", root / "levels" / level, progress=False)
    return root
