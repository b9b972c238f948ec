"""The error taxonomy: what the user can fix is one line; a bug keeps its traceback."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO
from mlss_jax.app import cli
from mlss_jax.errors import (CheckpointError, ConfigError, InputFileError, ResourceError,
                             UserError)
from mlss_jax.runtime.distributed import DistributedError
from mlss_jax.runtime.files import NotOurs
from mlss_jax.runtime.loop import TrainingDiverged
from mlss_jax.runtime.memory import OutOfMemory
from mlss_jax.runtime.run_pack import RunPackError
from mlss_jax.runtime.run_state import RunDirInUse
from mlss_jax.weights.nvidia import UnsupportedNetworkError
from mlss_jax.weights.safe_pickle import CorruptPickleError, NetworkPickleError, UnsafePickleError


def test_every_user_error_has_its_kind():
    kinds = {ConfigError: (cli.UsageError, TrainingDiverged),
             InputFileError: (CheckpointError, NetworkPickleError, UnsafePickleError,
                              CorruptPickleError, UnsupportedNetworkError, RunPackError, NotOurs),
             ResourceError: (OutOfMemory, RunDirInUse, DistributedError)}
    for kind, members in kinds.items():
        assert issubclass(kind, UserError)
        for member in members:
            assert issubclass(member, kind), (member, kind)
            others = [k for k in kinds if k is not kind]
            assert not any(issubclass(member, k) for k in others), member
    # what code caught before keeps catching them: flag parsers' ValueError, FileExistsError
    assert issubclass(ConfigError, ValueError) and issubclass(NotOurs, FileExistsError)
    assert issubclass(NetworkPickleError, ValueError) and issubclass(ResourceError, RuntimeError)
    assert cli.USER_ERRORS == (UserError, OSError)


def test_errors_import_nothing_from_the_package():
    """So that every layer may raise them (tests/test_layering.py holds the layers themselves)."""
    tree = ast.parse((REPO / "mlss_jax" / "errors.py").read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names]
    assert not [name for name in imported if name.split(".")[0] == "mlss_jax"], imported


def _run(body: str) -> subprocess.CompletedProcess:
    """``body`` (the inside of a ``main(argv)``) run as a command through ``cli.run``."""
    code = "from mlss_jax.app import cli\nimport numpy as np\n\ndef main(argv):\n" + \
        textwrap.indent(textwrap.dedent(body), "    ") + "\n\ncli.run(main, [])\n"
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("body, line", [
    ("from mlss_jax.errors import ConfigError\nraise ConfigError('steps must be positive')",
     "-c: error: steps must be positive"),
    ("from mlss_jax.errors import InputFileError\nraise InputFileError('x.npy: all zeros')",
     "-c: error: x.npy: all zeros"),
    ("from mlss_jax.runtime.run_state import RunDirInUse\nraise RunDirInUse('runs/a is in use')",
     "-c: error: runs/a is in use"),
    ("open('/no/such/file')", "-c: error: [Errno 2] No such file or directory: '/no/such/file'"),
])
def test_a_user_error_is_one_line_with_exit_1(body, line):
    result = _run(body)
    assert (result.returncode, result.stderr) == (1, line + "\n")


@pytest.mark.parametrize("body, last", [
    ("np.zeros(3).reshape(2)", "ValueError: cannot reshape array of size 3 into shape (2,)"),
    ("raise ValueError('an internal invariant broke')", "ValueError: an internal invariant broke"),
    ("raise RuntimeError('a bug')", "RuntimeError: a bug"),
    ("len(None)", "TypeError: object of type 'NoneType' has no len()"),
])
def test_a_bug_keeps_its_traceback(body, last):
    """A ValueError, RuntimeError or TypeError that is not a UserError is a bug: the command
    does not reword it as a user's error but ends with Python's traceback, naming the line."""
    result = _run(body)
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.rstrip().splitlines()[-1] == last
    assert 'line 5, in main' in result.stderr and "error:" not in result.stderr


@dataclasses.dataclass(frozen=True)
class _Config:
    """Attributes:
      steps: how many
    """
    steps: int = 1

    def __post_init__(self):
        if self.steps == 0:
            raise ConfigError("steps must be positive")
        if self.steps == 13:
            raise ValueError("a bug in the check")


def test_a_config_check_is_a_flag_error_and_a_bug_in_it_is_not(capsys):
    parser = cli.ArgumentParser(prog="tool")
    cli.add_config_flags(parser, _Config)
    with pytest.raises(SystemExit) as stop:
        cli.config_from_args(parser, _Config, parser.parse_args(["--steps", "0"]))
    assert stop.value.code == 2
    assert capsys.readouterr().err == "tool: error: --steps must be positive (see --help)\n"
    with pytest.raises(ValueError, match="a bug in the check") as bug:
        cli.config_from_args(parser, _Config, parser.parse_args(["--steps", "13"]))
    assert type(bug.value) is ValueError
