"""What every frozen config shares: checks it runs on itself in ``__post_init__``.

Configs raise :class:`~mlss_jax.errors.ConfigError` (a ``ValueError``) naming the field
(``batch_size must be positive``); the command line (:func:`mlss_jax.app.cli.config_from_args`)
says the same with the flag's name.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

from mlss_jax.errors import ConfigError


def check_finite(config: Any) -> None:
    """Every float field (and every float in a tuple field) is a finite number."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        values = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ConfigError(f"{field.name} must be a finite number, got {value}")


def check_positive(config: Any, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(config, name)
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}")


def check_non_negative(config: Any, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(config, name)
        if value is not None and value < 0:
            raise ConfigError(f"{name} must be >= 0, got {value}")


SEED_LIMIT = 2 ** 32


def check_seed(config: Any, name: str = "seed") -> None:
    """A seed is a 32-bit integer, as NVIDIA's: JAX's keys and NumPy's generators take it."""
    value = getattr(config, name)
    if not 0 <= value < SEED_LIMIT:
        raise ConfigError(f"{name} must lie in 0..{SEED_LIMIT - 1}, got {value}")


def check_at_least(config: Any, name: str, minimum: float) -> None:
    value = getattr(config, name)
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")


def check_unit_interval(config: Any, name: str, what: str = "a number") -> None:
    values = getattr(config, name)
    for value in values if isinstance(values, tuple) else (values,):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name} must be {what} in [0, 1], got {value}")


def check_choice(config: Any, name: str, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if getattr(config, name) not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {getattr(config, name)!r}")


def choices(*options: str, default: str) -> Any:
    """A string field limited to ``options`` (the flag builder offers them as choices)."""
    return dataclasses.field(default=default, metadata={"choices": options})


def quote_error(err: BaseException, limit: int = 160) -> str:
    """Another library's exception in one line of at most about ``limit`` characters, cut at a
    word boundary (never mid-word): ``TypeName: first line...``."""
    text = " ".join(str(err).split()) or "no message"
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " ..."
    return f"{type(err).__name__}: {text}"


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named recipe: a config and one line on what it is for (``--preset NAME``)."""

    description: str
    config: Any
