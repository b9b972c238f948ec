"""Widen a trained generator without changing what it draws (Net2Net-style growth, Chen et al. 2016).

A wider G's extra channels start so that the image is the same function of ``w``:

* a layer's new output channels get fresh random weights (as at initialisation) and a zero bias;
  demodulation scales each output channel to unit norm, so their scale is the usual one;
* every weight by which an existing channel reads a new one (in the next conv, and toRGB's) is
  zero, so the new channels change nothing until training moves those weights, which the
  gradient does at once (it is the new activation times the upstream gradient);
* a new input channel's style (affine) starts as at initialisation (weight N(0, 1), bias 1);
* toRGB has no demodulation and scales its styles by 1/sqrt(input channels), so its old
  weights are scaled by sqrt(new / old) to cancel the larger count.

Demodulation's epsilon (1e-8) is the only thing that differs, far below float32 rounding of
the images. Used to test whether G's width is what limits a trained generator: continue the
widened G with ``tools/train_stylegan2.py --init-from`` (docs/experiment-log.md).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mlss_jax.errors import ConfigError
from mlss_jax.networks.config import GeneratorConfig


def widen_generator(config: GeneratorConfig, variables: dict, channel_base: int,
                    channel_max: int | None = None, seed: int = 0
                    ) -> tuple[GeneratorConfig, dict]:
    """(config, variables) of a generator with ``channel_base`` (and ``channel_max``) that draws
    the same images as ``(config, variables)``; no block may get fewer channels."""
    wide = dataclasses.replace(config, channel_base=channel_base,
                               channel_max=config.channel_max if channel_max is None else channel_max)
    narrow_of = {r: config.channels(r) for r in config.block_resolutions}
    wide_of = {r: wide.channels(r) for r in wide.block_resolutions}
    shrunk = [r for r in narrow_of if wide_of[r] < narrow_of[r]]
    if shrunk:
        raise ConfigError(f"widening would shrink the blocks at {shrunk} px "
                          f"({[narrow_of[r] for r in shrunk]} -> {[wide_of[r] for r in shrunk]} "
                          "channels)")
    rng = np.random.default_rng(seed)
    params = _copy(variables["params"])
    synthesis = params["synthesis"]
    resolutions = config.block_resolutions
    for i, res in enumerate(resolutions):
        block = synthesis[f"b{res}"]
        prev_wide = wide_of[resolutions[i - 1]] if i else wide_of[res]
        if i == 0:
            block["const"] = _grow(block["const"], 2, wide_of[res], rng.standard_normal)
        layers = ["conv1"] if i == 0 else ["conv0", "conv1"]
        for name in layers:
            in_wide = prev_wide if name == "conv0" else wide_of[res]
            layer = block[name]
            weight = _grow(layer["weight"], 2, in_wide, np.zeros)              # read nothing new
            layer["weight"] = _grow(weight, 3, wide_of[res], rng.standard_normal)
            layer["bias"] = _grow(layer["bias"], 0, wide_of[res], np.zeros)
            _grow_affine(layer["affine"], in_wide, rng)
        torgb = block["torgb"]
        scale = math.sqrt(wide_of[res] / narrow_of[res])    # its styles carry 1/sqrt(in)
        torgb["weight"] = _grow(torgb["weight"] * np.float32(scale), 2, wide_of[res], np.zeros)
        _grow_affine(torgb["affine"], wide_of[res], rng)
    return wide, {**variables, "params": params}


def _grow_affine(affine: dict, wide: int, rng: np.random.Generator) -> None:
    affine["weight"] = _grow(affine["weight"], 1, wide, rng.standard_normal)
    affine["bias"] = _grow(affine["bias"], 0, wide, np.ones)


def _grow(array, axis: int, size: int, fill) -> np.ndarray:
    """``array`` extended along ``axis`` to ``size`` with ``fill(shape)`` (float32)."""
    array = np.asarray(array, np.float32)
    extra = size - array.shape[axis]
    if extra == 0:
        return array
    shape = list(array.shape)
    shape[axis] = extra
    return np.concatenate([array, np.asarray(fill(tuple(shape)), np.float32)], axis=axis)


def _copy(tree):
    return {k: _copy(v) for k, v in tree.items()} if isinstance(tree, dict) else np.asarray(tree)
