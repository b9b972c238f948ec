"""Shared command-line behaviour: the user's errors in one line with a non-zero exit; a bug keeps
its traceback."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import os
import re
import signal
import sys
import typing
from pathlib import Path
from typing import Callable, NoReturn, Sequence

from mlss_jax.config import SEED_LIMIT, Preset
from mlss_jax.errors import ConfigError, UserError
from mlss_jax.runtime import distributed
from mlss_jax.runtime.loop import RunStopped
from mlss_jax.runtime.memory import OutOfMemory

# Errors the user can fix (mlss_jax.errors, and the OSError family: a missing file, a full disk,
# a folder that cannot be written), reported in one line. Anything else, a ValueError included,
# is a bug and keeps its traceback.
USER_ERRORS = (UserError, OSError)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that ``finally`` blocks run."""


def _raise_terminated(_signum, _frame) -> NoReturn:
    raise Terminated


# Set by a parent (run.py) for its stage commands: they end with it, even if it is killed.
PARENT_ENV = "MLSS_PARENT_PID"


def _die_with_parent() -> None:
    """SIGTERM this process when the process named by ``PARENT_ENV`` ends (Linux's
    PR_SET_PDEATHSIG); if that parent is gone already, stop now."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != int(parent):
        raise Terminated


class UsageError(ConfigError):
    """Options that do not fit together, found past argument parsing: exit 2, like a flag error."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (``prog: error: ... (see --help)``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run(main: Callable[[Sequence[str] | None], int | None],
        argv: Sequence[str] | None = None) -> NoReturn:
    """Run ``main`` and exit; user errors (:data:`USER_ERRORS`) become ``prog: error: message`` on
    stderr, exit 1; any other exception propagates with its traceback.

    Ctrl-C and SIGTERM end the command with one line and exit 130 / 143; a trainer saves a
    checkpoint first (:class:`mlss_jax.runtime.loop.TrainingInterrupted`), a sweep keeps the
    sets it measured. A trainer's ``--time-limit`` ends it with one line and exit 75
    (:class:`~mlss_jax.runtime.loop.TrainingPaused`).
    """
    prog = sys.argv[0].rsplit("/", 1)[-1]
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        _die_with_parent()
        code = main(argv)
    except UsageError as err:
        _stop(2, f"{prog}: error: {err} (see --help)")
    except OutOfMemory as err:
        _stop(1, f"{prog}: error: {flag_message(str(err), err.setting)}")
    except USER_ERRORS as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        _stop(1, f"{prog}: error: {message}")
    except RunStopped as err:
        _stop(err.exit_code, f"{prog}: {err}")
    except Terminated:
        _stop(128 + signal.SIGTERM, f"{_fresh_line()}{prog}: terminated")
    except KeyboardInterrupt:
        _stop(128 + signal.SIGINT, f"{_fresh_line()}{prog}: interrupted")
    except BaseException:
        if distributed.joined():  # keep a bug's traceback, unless a lost process caused it
            import traceback

            _stop(1, f"{traceback.format_exc()}{prog}: error: this process failed (traceback above)")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    sys.exit(code or 0)


def _fresh_line() -> str:
    """On a terminal, a stop's line starts on a line of its own, not after a progress bar."""
    return "\n" if sys.stderr.isatty() else ""


def _stop(code: int, line: str) -> NoReturn:
    """Print ``line`` and exit with ``code``; in a run of several processes, through
    :func:`mlss_jax.runtime.distributed.fail`, which names a lost process instead."""
    if distributed.joined():
        distributed.fail(code, line)
    print(line, file=sys.stderr)
    sys.exit(code)


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


def finite_float(text: str) -> float:
    """A float flag: NaN and infinities are refused when the flags are parsed."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


MAX_LIST = 100_000     # values in one list flag (a range like 0-99999 included)


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    """A count flag (samples, columns, steps): an integer >= 1."""
    value = _integer(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def seed(text: str) -> int:
    """A seed flag: an integer in 0..2**32-1."""
    value = _integer(text)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"seeds lie in 0..{SEED_LIMIT - 1}, got {text!r}")
    return value


def int_list(text: str) -> list[int]:
    """A list flag of integers >= 0 below 2**32 (seeds, cluster indices): ``'1,2,5-7'`` ->
    [1, 2, 5, 6, 7], at most :data:`MAX_LIST` values."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if part.startswith("-") and re.fullmatch(r"-\d+", part):
            raise argparse.ArgumentTypeError(f"{part} is negative: values are integers >= 0, "
                                             f"like 1,2,5-7")
        if re.fullmatch(r"\d+-\d+", part):
            a, b = map(int, part.split("-"))
            if a > b:
                raise argparse.ArgumentTypeError(f"range {part} runs backwards: write {b}-{a}")
            values = range(a, b + 1)
        elif re.fullmatch(r"\d+", part):
            values = range(int(part), int(part) + 1)
        else:
            raise argparse.ArgumentTypeError(f"expected integers like 1,2,5-7, got {text!r}")
        if values[-1] >= SEED_LIMIT:
            raise argparse.ArgumentTypeError(f"values lie in 0..{SEED_LIMIT - 1}, got {part}")
        if len(out) + len(values) > MAX_LIST:
            raise argparse.ArgumentTypeError(f"{text} lists more than {MAX_LIST} values")
        out.extend(values)
    return out


def float_list(text: str) -> list[float]:
    """A list flag of finite numbers: ``'-2,0,2'`` -> [-2.0, 0.0, 2.0]."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"expected numbers like -2,0,2, got {text!r}")
    return [finite_float(part) for part in parts]


def check_fits_in_memory(flag: str, what: str, nbytes: float, device: bool = False) -> None:
    """Refuse work whose arrays would not fit in this machine's memory (the accelerator's too,
    with ``device``), before any of it is allocated: a :class:`UsageError` saying ``what`` the
    work is and to lower ``flag``, which sizes it."""
    from mlss_jax.runtime.memory import memory_limit

    limit = memory_limit(device)
    if nbytes > limit:
        gib = lambda n: f"{n / 2 ** 30:,.1f} GiB"
        raise UsageError(f"{what} would take {gib(nbytes)}, more than this machine's {gib(limit)} "
                         f"of {'device ' if device else ''}memory; lower {flag}")


def add_time_limit_flag(parser: argparse.ArgumentParser) -> None:
    """A trainer's ``--time-limit MINUTES``; read it with :func:`deadline_from_args` right after
    parsing."""
    parser.add_argument("--time-limit", type=finite_float, default=None, metavar="MINUTES",
                        help="pause once this many minutes have passed since the command "
                             "started: save a checkpoint and the outputs of the step reached, "
                             "then exit with status 75 (continue with --resume); for runs "
                             "longer than a job's time slot")


def deadline_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> float | None:
    """``--time-limit`` as a ``time.monotonic()`` deadline, or None."""
    if args.time_limit is None:
        return None
    if args.time_limit <= 0:
        parser.error(f"--time-limit must be positive, got {args.time_limit}")
    import time

    return time.monotonic() + 60 * args.time_limit


def _optional(parse: Callable[[str], object]) -> Callable[[str], object]:
    """A flag of an ``X | None`` field: ``none`` gives None."""
    def parse_optional(text: str) -> object:
        return None if text.lower() == "none" else parse(text)
    parse_optional.__name__ = getattr(parse, "__name__", "value")
    return parse_optional


def _tuple_of(parse: Callable[[str], object]) -> Callable[[str], tuple]:
    """A flag of a tuple field: comma-separated values."""
    def parse_tuple(text: str) -> tuple:
        return tuple(parse(part.strip()) for part in text.split(","))
    parse_tuple.__name__ = "comma-separated list"
    return parse_tuple


_PARSERS = {int: int, float: finite_float, str: str, Path: Path}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_config(kind: object) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


@dataclasses.dataclass(frozen=True)
class ConfigFlag:
    """One flag of a config tree: the field at ``path`` (``("sweep", "k")``) of ``owner``."""

    path: tuple[str, ...]
    field: dataclasses.Field
    kind: object            # the field's type
    owner: type             # the dataclass the field is defined in

    @property
    def name(self) -> str:   # the flag without its dashes, underscores for dashes
        return self.field.metadata.get("flag", self.field.name)

    @property
    def dest(self) -> str:   # where argparse keeps its value
        return ".".join(self.path)


def config_flags(config_class: type, skip: tuple[str, ...] = ()) -> list[ConfigFlag]:
    """The flags of a config and of the configs it holds (``EvaluateConfig.sweep``), one per leaf
    field, flat: a nested field's flag is its own name (or its ``metadata["flag"]``). Two fields
    with one flag are a bug in the configs."""
    flags: list[ConfigFlag] = []

    def walk(cls: type, prefix: tuple[str, ...], left_out: tuple[str, ...]) -> None:
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if field.name in left_out:
                continue
            if _is_config(hints[field.name]):   # its fields in metadata["skip"] get no flag
                walk(hints[field.name], (*prefix, field.name), field.metadata.get("skip", ()))
            else:
                flags.append(ConfigFlag((*prefix, field.name), field, hints[field.name], cls))

    walk(config_class, (), skip)
    names = [flag.name for flag in flags]
    twice = {name for name in names if names.count(name) > 1}
    if twice:
        raise TypeError(f"{config_class.__name__}: several fields give the flag(s) {sorted(twice)}")
    return flags


def _value_at(config: object, path: tuple[str, ...]) -> object:
    for name in path:
        config = getattr(config, name)
    return config


def add_config_flags(parser: argparse.ArgumentParser, config_class: type,
                     skip: tuple[str, ...] = (), presets: dict[str, Preset] | None = None) -> None:
    """One flag per field of a frozen config dataclass, and of the configs it holds: the field's
    type, default and documented meaning (its docstring's ``Attributes:``), and its choices
    (``metadata["choices"]``); a field may name its own flag (``metadata["flag"]``) and parser
    (``metadata["parse"]``).

    Flags left out keep the base config's value: the class defaults, or with ``presets`` the
    preset chosen by ``--preset``. Read the flags back with :func:`config_from_args`, which
    lets the config check itself.
    """
    base = config_class()
    if presets:
        parser.add_argument("--preset", choices=sorted(presets), default=None,
                            help=_literal("a named recipe; other flags override its values ("
                                          + "; ".join(f"{k}: {v.description}"
                                                      for k, v in presets.items()) + ")"))
    for flag in config_flags(config_class, skip):
        field, kind = flag.field, flag.kind
        options = field.metadata.get("choices")
        known = f"one of: {', '.join(options)}; " if options else ""
        default = _value_at(base, flag.path)
        shown = field.metadata.get("format", _format_value)(default) if default is not None else None
        doc = attribute_docs(flag.owner).get(field.name, "")
        # a field whose doc says what its None default means shows no "default: None"
        said = default is None and "default:" in doc
        text = _literal(f"{doc} ({known}default: {shown or None})".strip() if not said else
                        (f"{doc} ({known.rstrip('; ')})" if known else doc))
        if kind is bool:
            parser.add_argument(_flag(flag.name), dest=flag.dest,
                                action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=text)
            continue
        # choices are the config's to check, so that its message is the one the user sees
        parser.add_argument(_flag(flag.name), dest=flag.dest, type=_parser(field, kind),
                            default=argparse.SUPPRESS, metavar=flag.name.upper(), help=text)


def _own_message(parse: Callable[[str], object]) -> Callable[[str], object]:
    """A field's own parser, whose ConfigError message argparse shows as it is (a bug's
    ValueError keeps its traceback)."""
    def parse_with_message(text: str) -> object:
        try:
            return parse(text)
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    parse_with_message.__name__ = getattr(parse, "__name__", "value")
    return parse_with_message


def _parser(field: dataclasses.Field, kind: object) -> Callable[[str], object]:
    """How a flag's text becomes the field's value."""
    args = [t for t in typing.get_args(kind) if t is not type(None)]
    optional = type(None) in typing.get_args(kind)
    if "parse" in field.metadata:
        parse = _own_message(field.metadata["parse"])
    elif typing.get_origin(kind) is tuple:
        parse = _tuple_of(_PARSERS[args[0]])
    else:
        parse = _PARSERS[args[0] if args else kind]
    return _optional(parse) if optional else parse


def _literal(help_text: str) -> str:
    """``help_text`` as argparse prints it: its ``%`` signs are not format codes ("95% interval")."""
    return help_text.replace("%", "%%")


def config_from_args(parser: argparse.ArgumentParser, config_class: type, args: argparse.Namespace,
                     presets: dict[str, Preset] | None = None, **fixed: object):
    """The config the flags describe; its own ``__post_init__`` checks (and those of the configs
    it holds) become one-line flag errors."""
    preset = getattr(args, "preset", None)
    base = presets[preset].config if presets and preset else config_class()

    def build(config: object, prefix: tuple[str, ...], extra: dict) -> object:
        hints = typing.get_type_hints(type(config))
        given = {}
        for field in dataclasses.fields(config):
            path = (*prefix, field.name)
            if _is_config(hints[field.name]):
                given[field.name] = build(getattr(config, field.name), path, {})
            elif hasattr(args, ".".join(path)):
                given[field.name] = getattr(args, ".".join(path))
        return dataclasses.replace(config, **{**given, **extra})

    try:
        return build(base, (), fixed)
    except ConfigError as err:
        parser.error(flag_message(str(err), config_class))


def config_argv(config: object, base: object | None = None) -> list[str]:
    """The flags that give ``config`` when parsed over ``base`` (default: the class defaults):
    one for each field whose value differs, so that a command line is built from a config by
    the same rules that parse it (:func:`config_from_args`)."""
    base = type(config)() if base is None else base
    argv: list[str] = []
    for flag in config_flags(type(config)):
        value = _value_at(config, flag.path)
        if value == _value_at(base, flag.path):
            continue
        if flag.kind is bool:
            argv.append(_flag(flag.name) if value else "--no-" + flag.name.replace("_", "-"))
        else:
            text = ("none" if value is None else
                    flag.field.metadata.get("format", _format_value)(value))
            # argparse would read a value that starts with "-" (-1.5,0,2) as a flag
            argv += [f"{_flag(flag.name)}={text}"] if text.startswith("-") else [_flag(flag.name), text]
    return argv


def config_values(config: object) -> dict[str, object]:
    """A config tree's values, flat and by flag name (``feature_batch``), ready for JSON: the
    settings a command records beside its results."""
    def plain(value: object) -> object:
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        return str(value) if isinstance(value, Path) else value

    return {flag.name: plain(_value_at(config, flag.path)) for flag in config_flags(type(config))}


def _format_value(value: object) -> str:
    """A field's value as its flag's text: tuples comma-separated, floats exactly (repr)."""
    if isinstance(value, tuple):
        return ",".join(_format_value(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def flag_message(message: str, config: type | str) -> str:
    """A config's error in the command line's words: ``field must ...`` becomes ``--flag must ...``
    (for the fields of ``config`` and of the configs it holds); with a field's name for
    ``config``, every mention of that field becomes its flag."""
    if isinstance(config, str):
        return re.sub(rf"\b{re.escape(config)}\b", _flag(config), message)
    name, _, rest = message.partition(" ")
    flags = {flag.field.name: flag.name for flag in config_flags(config)}
    if name in flags and rest.startswith(("must", "needs")):
        return f"{_flag(flags[name])} {rest}"
    return message
