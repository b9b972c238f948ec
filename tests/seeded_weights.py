"""Deterministic stand-in weights, the same in numpy and in the torch script that made the
reference outputs in tests/data (each array seeded by its state-dict key)."""

from __future__ import annotations

import zlib

import numpy as np


def seeded_array(key: str, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    if key.endswith("conv.weight"):  # He init keeps activations O(1) through the 94 convs
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    if key.endswith(("bn.weight", "bn.running_var")):
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return (0.1 * rng.standard_normal(shape)).astype(np.float32)
