"""Which generator layer inputs (ws) each semantic level drives.

The last input always keeps ``f(z)`` (the paper saw artifacts when the fine level
drove it). Defaults (``docs/method.md``): coarse = ws[0:4], medium = ws[4:8],
fine = ws[8:num_ws-1]; generators with fewer than 10 inputs (32 px and below)
use coarse = ws[0:2], medium = ws[2:4], fine = ws[4:num_ws-1].
"""

from __future__ import annotations

import dataclasses

from mlss_jax.errors import ConfigError, InputFileError

LEVELS = ("coarse", "medium", "fine")


@dataclasses.dataclass(frozen=True)
class LevelSplit:
    """Boundaries ``(b1, b2)``: coarse ws[0:b1], medium ws[b1:b2], fine ws[b2:num_ws-1]."""

    num_ws: int
    boundaries: tuple[int, int]

    def __post_init__(self) -> None:
        b1, b2 = self.boundaries
        if not 0 < b1 < b2 < self.num_ws - 1:
            raise ConfigError(f"split {b1},{b2} must satisfy 0 < b1 < b2 < num_ws - 1 = "
                              f"{self.num_ws - 1} (every level needs at least one input)")

    @classmethod
    def default(cls, num_ws: int) -> "LevelSplit":
        if num_ws < 6:
            raise InputFileError(f"a generator with {num_ws} ws inputs is too small for three levels")
        return cls(num_ws, (4, 8) if num_ws >= 10 else (2, 4))

    @staticmethod
    def boundaries_of(text: str) -> tuple[int, int]:
        """``"b1,b2"`` -> (b1, b2), with 0 < b1 < b2 (checked against a generator's inputs by
        :meth:`parse`)."""
        try:
            b1, b2 = (int(part) for part in text.split(","))
        except ValueError:
            raise ConfigError(f"split must be two integers 'b1,b2', got {text!r}") from None
        if not 0 < b1 < b2:
            raise ConfigError(f"split must satisfy 0 < b1 < b2, got {b1},{b2}")
        return b1, b2

    @classmethod
    def parse(cls, text: str | None, num_ws: int) -> "LevelSplit":
        """``"b1,b2"`` or None (the default for ``num_ws``)."""
        if text is None:
            return cls.default(num_ws)
        return cls(num_ws, cls.boundaries_of(text))

    def range(self, level: str) -> tuple[int, int]:
        """``(start, stop)`` of the level's ws inputs."""
        b1, b2 = self.boundaries
        ranges = {"coarse": (0, b1), "medium": (b1, b2), "fine": (b2, self.num_ws - 1)}
        if level not in ranges:
            raise ConfigError(f"unknown level {level!r} (one of {', '.join(LEVELS)})")
        return ranges[level]

    def text(self) -> str:
        return f"{self.boundaries[0]},{self.boundaries[1]}"
