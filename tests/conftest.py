"""Shared test helpers: where the fixtures are, and running the CLI scripts in-process."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures"


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    if not path.exists():
        pytest.fail(f"missing test fixture {path} (../shared must sit beside the repository)")
    return path


def rel_error(actual, expected) -> float:
    """Largest absolute difference relative to the reference array's largest magnitude."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def run_script(script: str, *args: str) -> tuple[int, str, str]:
    """Run a top-level script's ``main`` through ``mlss_jax.cli.run``: (exit code, stdout, stderr)."""
    from mlss_jax import cli

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
