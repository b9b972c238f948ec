"""A small feature network for the projected discriminator, trained without labels.

Projected GANs (Sauer, Chitta, Müller and Geiger, "Projected GANs Converge Faster", NeurIPS
2021) let the discriminator judge images in the feature space of a fixed, separately trained
network at several resolutions. The paper takes an ImageNet EfficientNet; here the network is
trained on the demo world's own training images, self-supervised, and never sees a factor label
(the factor classifier that measures the generators is not involved in any way).

The objective is a denoising autoencoder with a pixel loss: the encoder maps an image with a
little Gaussian noise added to feature maps at full, half, quarter and eighth resolution
(32/16/8/4 px for the 32 px world: ``EncoderConfig.channels``, one stage each, two 3x3 convs
with leaky ReLU, the first of each later stage strided); a small decoder rebuilds the clean
image from the coarsest map alone (nearest upsampling and 3x3 convs, no skips), so every stage
is on the path of the reconstruction and none can be bypassed. A colour-invariant objective
(contrastive learning with colour jitter) would be wrong here: hue and tint are factors of the
world, and the features must keep them.

``tools/train_feature_encoder.py`` trains one and saves ``config.json`` and
``params.msgpack`` (flax msgpack, the factor classifier's layout); the GAN trainer
(``--discriminator projected --feature-encoder DIR``) loads it with
:func:`load_feature_encoder` and keeps it frozen (:mod:`mlss_jax.gan.projected`).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlss_jax.batching import map_in_batches
from mlss_jax.config import check_finite, check_positive, check_seed
from mlss_jax.demo.shapes import DEFAULT_WORLD, check_world
from mlss_jax.errors import ConfigError
from mlss_jax.weights.checkpoint import (PARAMS_FILE, load_params, load_params_meta,
                                         save_params_folder)



@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """Architecture and self-supervised training of the projected discriminator's feature network.

    Attributes:
      channels: feature maps of the encoder's stages, one per scale: the first at the image's
        resolution, each next at half the one before (32/16/8/4 px for 32 px images).
      noise_std: standard deviation of the Gaussian noise added to the inputs (pixels in
        [-1, 1]); the decoder rebuilds the clean image (a denoising autoencoder). 0: a plain one.
      learning_rate: Adam step.
      batch_size: images per step.
      steps: training steps.
      seed: initialisation, batch order and noise.
      world: the shapes world whose training images it learns from (no labels are read).
    """

    channels: tuple[int, ...] = (16, 32, 64, 128)
    noise_std: float = 0.1
    learning_rate: float = 2e-3
    batch_size: int = 64
    steps: int = 1200
    seed: int = 0
    world: int = DEFAULT_WORLD

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))  # a list, read from JSON
        check_finite(self)
        check_positive(self, ("learning_rate", "batch_size", "steps"))
        if not self.channels or any(c <= 0 for c in self.channels):
            raise ConfigError(f"channels must be positive numbers, got {self.channels}")
        if self.noise_std < 0:
            raise ConfigError(f"noise_std must be >= 0, got {self.noise_std}")
        check_seed(self)
        check_world(self.world)

    @property
    def levels(self) -> int:
        return len(self.channels)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class FeatureEncoder(nn.Module):
    """images [N, R, R, C] in [-1, 1] -> feature maps, finest first: [N, R / 2^l, R / 2^l,
    channels[l]] for each level l."""

    channels: tuple[int, ...]

    @nn.compact
    def __call__(self, images: jax.Array) -> list[jax.Array]:
        x, features = images, []
        for level, channels in enumerate(self.channels):
            stride = 1 if level == 0 else 2
            x = nn.leaky_relu(nn.Conv(channels, (3, 3), strides=stride, name=f"conv{level}a")(x), 0.2)
            x = nn.leaky_relu(nn.Conv(channels, (3, 3), name=f"conv{level}b")(x), 0.2)
            features.append(x)
        return features


class Decoder(nn.Module):
    """The coarsest feature map -> an image [N, R, R, img_channels] (training only)."""

    channels: tuple[int, ...]
    img_channels: int = 3

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for level in reversed(range(len(self.channels) - 1)):
            n, h, w, c = x.shape
            x = jax.image.resize(x, (n, 2 * h, 2 * w, c), "nearest")
            x = nn.leaky_relu(nn.Conv(self.channels[level], (3, 3), name=f"up{level}")(x), 0.2)
        return nn.Conv(self.img_channels, (3, 3), name="to_rgb")(x)


class Autoencoder(nn.Module):
    channels: tuple[int, ...]
    img_channels: int = 3

    def setup(self) -> None:
        self.encoder = FeatureEncoder(self.channels)
        self.decoder = Decoder(self.channels, self.img_channels)

    def __call__(self, images: jax.Array) -> jax.Array:
        return self.decoder(self.encoder(images)[-1])


def init_autoencoder(config: EncoderConfig, rng: jax.Array, resolution: int = 32,
                     img_channels: int = 3) -> dict:
    """Fresh ``{"encoder": ..., "decoder": ...}`` parameters."""
    images = jnp.zeros((1, resolution, resolution, img_channels))
    return Autoencoder(config.channels, img_channels).init(rng, images)["params"]


def encode(channels: tuple[int, ...], encoder_params: dict, images: jax.Array) -> list[jax.Array]:
    """The encoder's feature maps of images in [-1, 1], finest first (pure; jit it around)."""
    return FeatureEncoder(channels).apply({"params": encoder_params}, images)


def to_model_input(images_uint8: np.ndarray | jax.Array) -> jax.Array:
    """uint8 images -> float32 in [-1, 1], the generator's range."""
    return jnp.asarray(images_uint8, jnp.float32) / 127.5 - 1.0


def reconstruction_loss(config: EncoderConfig, params: dict, clean: jax.Array,
                        noisy: jax.Array) -> jax.Array:
    """Mean squared error of the decoder's image of ``noisy`` against ``clean``."""
    out = Autoencoder(config.channels, clean.shape[-1]).apply({"params": params}, noisy)
    return jnp.mean(jnp.square(out - clean))


@functools.partial(jax.jit, static_argnames="config")
def reconstruct(config: EncoderConfig, params: dict, images: jax.Array) -> jax.Array:
    """The autoencoder's image of ``images`` (no noise added)."""
    return Autoencoder(config.channels, images.shape[-1]).apply({"params": params}, images)


def reconstruction_error(config: EncoderConfig, params: dict, images_uint8: np.ndarray,
                         batch_size: int = 500) -> float:
    """Mean squared error (pixels in [-1, 1]) of clean images rebuilt by the autoencoder."""
    errors = map_in_batches(
        lambda x: jnp.mean(jnp.square(reconstruct(config, params, to_model_input(x))
                                      - to_model_input(x)), axis=(1, 2, 3)),
        batch_size, images_uint8)
    return float(np.mean(errors))


def train_autoencoder(config: EncoderConfig, images: np.ndarray, progress: bool | None = None
                      ) -> tuple[dict, list[float]]:
    """Train on uint8 images [N, R, R, C] (no labels); returns the autoencoder's parameters and
    the training loss of every step."""
    from tqdm import tqdm

    resolution, img_channels = images.shape[1], images.shape[3]
    if resolution % 2 ** (config.levels - 1):
        raise ConfigError(f"{config.levels} levels need a resolution divisible by "
                          f"{2 ** (config.levels - 1)}, got {resolution}")
    key = jax.random.PRNGKey(config.seed)
    params = init_autoencoder(config, key, resolution, img_channels)
    optimizer = optax.adam(config.learning_rate)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, batch_uint8, noise_key):
        clean = to_model_input(batch_uint8)
        noisy = clean + config.noise_std * jax.random.normal(noise_key, clean.shape)
        loss, grads = jax.value_and_grad(functools.partial(reconstruction_loss, config))(
            params, clean, noisy)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(config.seed)
    batch = min(config.batch_size, len(images))
    order, at, losses = rng.permutation(len(images)), 0, []
    bar = tqdm(range(config.steps), desc="feature encoder", disable=None if progress else True)
    for i in bar:
        if at + batch > len(order):
            order, at = rng.permutation(len(images)), 0
        idx = order[at:at + batch]
        at += batch
        params, opt_state, loss = step(params, opt_state, images[idx],
                                       jax.random.fold_in(key, i))
        losses.append(float(loss))
        if i % 50 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    return params, losses


def save_feature_encoder(directory: str | Path, config: EncoderConfig, params: dict,
                         report: dict) -> Path:
    """Write the encoder's params (flax msgpack; the decoder is dropped), config and report."""
    return save_params_folder(directory, params["encoder"],
                              {"config": config.to_dict(), "report": report})


def load_feature_encoder(directory: str | Path) -> tuple[EncoderConfig, dict]:
    """The config and encoder parameters saved in ``directory`` by :func:`save_feature_encoder`."""
    config = EncoderConfig(**load_params_meta(directory, "feature encoder")["config"])
    resolution = 2 ** (config.levels - 1) * 4    # any valid size: the params do not depend on it
    return config, load_params(directory, "feature encoder", lambda: init_autoencoder(
        config, jax.random.PRNGKey(0), resolution)["encoder"])


def feature_encoder_digest(directory: str | Path) -> str:
    """SHA-256 of the saved parameters: a run records it, so that resuming with another
    encoder in the same folder is refused."""
    import hashlib

    return hashlib.sha256((Path(directory) / PARAMS_FILE).read_bytes()).hexdigest()


def train_feature_encoder(config: EncoderConfig, out: str | Path, dataset_config: str = "default",
                          data_dir: str | None = None, test_images: int = 2000,
                          progress: bool | None = None) -> dict:
    """Train on the training split of ``shapes/<dataset_config>`` of ``config.world`` (images
    only) and save to ``out``; returns the report (held-out reconstruction error, and that of
    predicting the mean image, for scale) that ``config.json`` also holds."""
    from mlss_jax.demo.dataset import load_shapes
    from mlss_jax.runtime.files import check_writable_dir

    check_writable_dir(out)
    train, _ = load_shapes("train", dataset_config, data_dir, progress=progress, world=config.world)
    test, _ = load_shapes("test", dataset_config, data_dir, progress=progress, world=config.world)
    test = test[:test_images]
    params, losses = train_autoencoder(config, train, progress=progress)
    mean_image = to_model_input(train).mean(axis=0)
    report = {"dataset_config": dataset_config, "world": config.world,
              "train_images": int(len(train)), "test_images": int(len(test)),
              "first_train_loss": losses[0], "last_train_loss": float(np.mean(losses[-20:])),
              "test_mse": reconstruction_error(config, params, test),
              "test_mse_of_mean_image": float(jnp.mean(jnp.square(to_model_input(test) - mean_image)))}
    save_feature_encoder(out, config, params, report)
    return report
