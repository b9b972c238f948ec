"""A projected discriminator (Sauer, Chitta, Müller and Geiger, "Projected GANs Converge Faster",
NeurIPS 2021), written from the paper's description, for the StyleGAN2 trainer's
``--discriminator projected``.

The discriminator judges an image through a fixed feature network instead of learning its
features from scratch, which is what lets a GAN learn from far fewer images:

1. **Augmentation** (differentiable, the same function for reals and fakes: :func:`augment`):
   a random translation by up to 1/8 of the image (zero padding) and a cutout of a square half
   the image's side, independently per image, as DiffAugment's ``translation,cutout``. No colour
   augmentation: hue and tint are factors of the demo world.
2. **Frozen features**: the encoder of :mod:`mlss_jax.gan.feature_encoder` (a denoising
   autoencoder trained on the world's images, no labels) gives maps at full, half, quarter and
   eighth resolution. Its parameters are an input of the training step, never trained.
3. **Random projections** (fixed at initialisation, never trained: :func:`init_projection`):
   cross-channel mixing, a random 1x1 conv per scale; then cross-scale mixing from coarse to
   fine, each scale adding the next coarser mixed map upsampled (nearest) and passed through
   another random 1x1 conv, the sum scaled by 1/sqrt(2). The paper's point: the random mixing
   spreads every feature over all channels and scales, so that no single head can ignore
   features that a too-strong discriminator would otherwise lean on.
4. **Heads** (the only trainable part: ``GANTrainState.d["params"]``): one small
   discriminator per scale, strided 3x3 convs (equalised learning rate, leaky ReLU) down to
   4x4, a 3x3 conv, and a 1x1 conv to a logit map; a scale's logit is its map's mean, and D's
   logit the sum of the scales' logits, so the trainer's logistic losses apply unchanged. A
   conv at resolution r has ``min(d_channel_base // r, d_channel_max)`` feature maps, the
   StyleGAN2 D's rule.

No R1 penalty: the paper trains its projected discriminator without gradient penalty (the
fixed features and the augmentation regularise it); the trainer skips R1 for this D, whatever
``r1_gamma`` says. The paper's heads also use batch and spectral normalisation; these have
neither (no state to carry, and the StyleGAN2 trainer's equalised learning rate instead).
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from mlss_jax.errors import ConfigError
from mlss_jax.gan.feature_encoder import encode
from mlss_jax.networks.layers import EqualizedConv


@dataclasses.dataclass(frozen=True)
class ProjectedConfig:
    """The projected discriminator of one run (static: hashable).

    ``encoder_channels``: the frozen encoder's feature maps per scale (finest first);
    ``channel_base`` / ``channel_max``: the heads' widths, as the StyleGAN2 D's;
    ``translation``: largest shift, a fraction of the image side; ``cutout``: the side of the
    cut-out square, a fraction of the image side.
    """

    resolution: int
    img_channels: int
    encoder_channels: tuple[int, ...]
    channel_base: int
    channel_max: int
    translation: float = 0.125
    cutout: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "encoder_channels", tuple(self.encoder_channels))
        if self.resolution % 2 ** (len(self.encoder_channels) - 1):
            raise ConfigError(f"the feature encoder's {len(self.encoder_channels)} scales need a "
                              f"resolution divisible by {2 ** (len(self.encoder_channels) - 1)}, "
                              f"got {self.resolution}")

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(self.resolution // 2 ** level for level in range(len(self.encoder_channels)))

    def channels(self, resolution: int) -> int:
        return min(self.channel_base // resolution, self.channel_max)

    def to_dict(self) -> dict:
        # as JSON holds it (a list), so that a resumed run's record compares equal
        return {"kind": "projected", **dataclasses.asdict(self),
                "encoder_channels": list(self.encoder_channels)}


# ----------------------------------------------------------------------------- augmentation

def _augment_one(key: jax.Array, image: jax.Array, translation: float, cutout: float) -> jax.Array:
    h, w, c = image.shape
    k_shift, k_cut = jax.random.split(key)
    pad_h, pad_w = int(h * translation + 0.5), int(w * translation + 0.5)
    if pad_h or pad_w:
        shift = jax.random.randint(k_shift, (2,), -jnp.array([pad_h, pad_w]),
                                   jnp.array([pad_h, pad_w]) + 1)
        padded = jnp.pad(image, ((pad_h, pad_h), (pad_w, pad_w), (0, 0)))
        image = jax.lax.dynamic_slice(padded, (pad_h - shift[0], pad_w - shift[1], 0), (h, w, c))
    size_h, size_w = int(h * cutout + 0.5), int(w * cutout + 0.5)
    if size_h and size_w:
        # the square's top-left corner; it may hang over the border, as DiffAugment's
        top = jax.random.randint(k_cut, (), 0, h + 1 - size_h % 2) - size_h // 2
        left = jax.random.randint(jax.random.fold_in(k_cut, 1), (), 0, w + 1 - size_w % 2) - size_w // 2
        rows, cols = jnp.arange(h), jnp.arange(w)
        inside = (((rows >= top) & (rows < top + size_h))[:, None]
                  & ((cols >= left) & (cols < left + size_w))[None, :])
        image = jnp.where(inside[..., None], 0.0, image)
    return image


def augment(keys: jax.Array, images: jax.Array, translation: float = 0.125,
            cutout: float = 0.5) -> jax.Array:
    """Per image (one key each, ``keys`` [N, ...]): a shift by up to ``translation`` of the side
    (zero padding) and a zeroed square of side ``cutout`` of the side. Differentiable in
    ``images``; the same function for reals and fakes (the same key gives the same transform)."""
    return jax.vmap(lambda k, x: _augment_one(k, x, translation, cutout))(keys, images)


# ----------------------------------------------------------------------------- projections

def init_projection(config: ProjectedConfig, key: jax.Array) -> dict:
    """The fixed random mixing weights: ``ccm`` (a [C_l, C_l] 1x1 conv per scale) and ``csm``
    (a [C_{l+1}, C_l] 1x1 conv from each coarser scale to the finer one), unit-variance
    outputs for unit-variance inputs (He-style scaling, no gain)."""
    chans = config.encoder_channels
    keys = jax.random.split(key, 2 * len(chans))
    ccm = [jax.random.normal(keys[i], (c, c)) / math.sqrt(c) for i, c in enumerate(chans)]
    csm = [jax.random.normal(keys[len(chans) + i], (chans[i + 1], chans[i])) / math.sqrt(chans[i + 1])
           for i in range(len(chans) - 1)]
    return {"ccm": ccm, "csm": csm}


def project(projection: dict, features: list[jax.Array]) -> list[jax.Array]:
    """Cross-channel then cross-scale mixing of the encoder's maps (finest first)."""
    mixed = [jnp.einsum("nhwc,cd->nhwd", f, w) for f, w in zip(features, projection["ccm"],
                                                                 strict=True)]
    out = [mixed[-1]]
    for level in reversed(range(len(mixed) - 1)):
        coarse = out[0]
        n, h, w, c = coarse.shape
        up = jax.image.resize(coarse, (n, 2 * h, 2 * w, c), "nearest")
        out.insert(0, (mixed[level] + jnp.einsum("nhwc,cd->nhwd", up, projection["csm"][level]))
                   * math.sqrt(0.5))
    return out


# ----------------------------------------------------------------------------- heads

class ScaleHead(nn.Module):
    """One scale's discriminator: its mixed map [N, r, r, C] -> logits [N]."""

    config: ProjectedConfig
    resolution: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        res = self.resolution
        layer = 0
        while res > 4:
            res //= 2
            x = EqualizedConv(self.config.channels(res), 3, act="lrelu", down=True,
                              name=f"down{layer}")(x)
            layer += 1
        x = EqualizedConv(self.config.channels(res), 3, act="lrelu", name="conv")(x)
        logits = EqualizedConv(1, 1, name="out")(x)
        return jnp.mean(logits, axis=(1, 2, 3))


class ProjectedHeads(nn.Module):
    """The mixed maps of every scale -> D's logits [N, 1] (the sum of the scales')."""

    config: ProjectedConfig

    @nn.compact
    def __call__(self, mixed: list[jax.Array]) -> jax.Array:
        logits = [ScaleHead(self.config, res, name=f"s{res}")(x)
                  for res, x in zip(self.config.resolutions, mixed, strict=True)]
        return jnp.sum(jnp.stack(logits, axis=-1), axis=-1, keepdims=True)


def init_heads(config: ProjectedConfig, rng: jax.Array) -> dict:
    """Fresh ``{"params"}`` of the trainable heads."""
    mixed = [jnp.zeros((1, r, r, c)) for r, c in zip(config.resolutions, config.encoder_channels)]
    return dict(ProjectedHeads(config).init({"params": rng}, mixed))


def projected_logits(config: ProjectedConfig, head_params: dict, frozen: dict,
                     images: jax.Array) -> jax.Array:
    """D's logits [N, 1] of (already augmented) images in [-1, 1]. ``frozen``:
    ``{"encoder": ..., "projection": ...}``, held fixed (no gradient flows into them; the
    gradient to ``images`` flows through them)."""
    frozen = jax.lax.stop_gradient(frozen)
    features = encode(config.encoder_channels, frozen["encoder"], images)
    return ProjectedHeads(config).apply({"params": head_params},
                                        project(frozen["projection"], features))


def frozen_inputs(config: ProjectedConfig, encoder_params: dict, seed: int) -> dict:
    """The step's fixed inputs: the encoder's parameters and the random projections drawn from
    ``seed`` (so that a resumed run draws the same ones)."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 0x70726f6a)    # "proj"
    return {"encoder": encoder_params, "projection": init_projection(config, key)}
