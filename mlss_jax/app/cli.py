"""Shared command-line behaviour: one-line errors and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import typing
from typing import Callable, NoReturn, Sequence

from mlss_jax.weights.checkpoint import CheckpointError
from mlss_jax.weights.safe_pickle import NetworkPickleError

# Errors that mean "bad input", reported in one line. Anything else is a bug and
# keeps its traceback.
USER_ERRORS = (NetworkPickleError, CheckpointError, FileExistsError, FileNotFoundError,
               IsADirectoryError, PermissionError, ValueError)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (``prog: error: ... (see --help)``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run(main: Callable[[Sequence[str] | None], int | None],
        argv: Sequence[str] | None = None) -> NoReturn:
    """Run ``main`` and exit; user errors become ``prog: error: message`` on stderr, exit 1."""
    prog = sys.argv[0].rsplit("/", 1)[-1]
    try:
        code = main(argv)
    except USER_ERRORS as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def attribute_docs(config_class: type) -> dict[str, str]:
    """Field descriptions from a dataclass docstring's ``Attributes:`` section.

    Entries look like ``name: text`` or ``name_a, name_b: text``, continued on
    more deeply indented lines.
    """
    docs: dict[str, str] = {}
    lines = inspect.cleandoc(config_class.__doc__ or "").splitlines()
    if "Attributes:" not in [line.strip() for line in lines]:
        return docs
    start = [line.strip() for line in lines].index("Attributes:") + 1
    names: list[str] = []
    for line in lines[start:]:
        entry = re.match(r"^ {2}([a-z_][a-z0-9_, ]*):\s*(.*)$", line)
        if entry:
            names = [n.strip() for n in entry.group(1).split(",")]
            for name in names:
                docs[name] = entry.group(2)
        elif line.startswith("    ") and names:
            for name in names:
                docs[name] += " " + line.strip()
        elif line.strip():
            break
    return docs


def add_config_flags(parser: argparse.ArgumentParser, config_class: type,
                     skip: tuple[str, ...] = ()) -> None:
    """One flag per dataclass field, with the field's type, default and documented meaning."""
    hints = typing.get_type_hints(config_class)
    docs = attribute_docs(config_class)
    for field in dataclasses.fields(config_class):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        text = f"{docs.get(field.name, '')} (default: {field.default})".strip()
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default,
                                help=text)
        else:
            base = next((t for t in typing.get_args(kind) if t is not type(None)), kind)
            parser.add_argument(flag, type=base, default=field.default, help=text)
