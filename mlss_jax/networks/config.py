"""Network configurations: explicit, serialisable, with NVIDIA's config-f defaults."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from mlss_jax.errors import ConfigError


def _check_resolution(resolution: int) -> int:
    log2 = int(round(math.log2(resolution))) if resolution > 0 else -1
    if resolution < 4 or 2 ** log2 != resolution:
        raise ConfigError(f"resolution must be a power of two >= 4, got {resolution}")
    return log2


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """StyleGAN2 skip generator (config-f and the stylegan2-ada variants).

    Attributes:
      resolution: output size in pixels, a power of two from 4 to 1024.
      z_dim: size of the input latent z.
      w_dim: size of the intermediate latent w.
      img_channels: channels of the output image.
      mapping_layers: fully connected layers in the mapping network.
      mapping_hidden: width of the mapping's hidden layers (None: w_dim).
      mapping_lr_multiplier: learning-rate multiplier of the mapping layers.
      channel_base, channel_max: block at resolution r has min(channel_base // r, channel_max)
        channels (TF's fmap_base is channel_base / 2).
      conv_clamp: clamp of conv outputs (None: no clamping, as in config-f).
      w_avg_beta: decay of the running W average during GAN training.
      fused_modconv: per-sample kernels (grouped conv) instead of scaled activations;
        the same function, a different speed.
      bf16_resolutions: the number of highest resolutions whose blocks compute in bfloat16
        (NVIDIA's num_fp16_res, with bfloat16 for float16), their conv outputs clamped at
        conv_clamp or else 256; the image is summed in float32. Faster on GPUs, not exact:
        0 (the default) computes everything in float32.
    """

    resolution: int = 256
    z_dim: int = 512
    w_dim: int = 512
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_hidden: int | None = None
    mapping_lr_multiplier: float = 0.01
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = None
    w_avg_beta: float = 0.995
    fused_modconv: bool = False
    bf16_resolutions: int = 0

    def __post_init__(self) -> None:
        _check_resolution(self.resolution)
        if not 0 <= self.bf16_resolutions <= len(self.block_resolutions):
            raise ConfigError(f"bf16_resolutions must lie in [0, {len(self.block_resolutions)}] "
                              f"at {self.resolution} px, got {self.bf16_resolutions}")

    @property
    def num_ws(self) -> int:
        """Number of w inputs of the synthesis network (W+): 2 log2(R) - 2."""
        return 2 * _check_resolution(self.resolution) - 2

    @property
    def block_resolutions(self) -> tuple[int, ...]:
        return tuple(2 ** i for i in range(2, _check_resolution(self.resolution) + 1))

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    def computes_in_bf16(self, res: int) -> bool:
        return res in self.block_resolutions[len(self.block_resolutions) - self.bf16_resolutions:]

    def to_dict(self) -> dict[str, Any]:
        config = dataclasses.asdict(self)
        if not self.bf16_resolutions:  # float32 networks: the config as saved before the option
            del config["bf16_resolutions"]
        return config

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GeneratorConfig":
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
    """StyleGAN2 resnet discriminator with minibatch standard deviation.

    Attributes:
      resolution, img_channels: the input images.
      channel_base, channel_max: as in :class:`GeneratorConfig`.
      mbstd_group_size: samples per minibatch-stddev group (the batch is split into
        groups of min(this, N); N must be divisible by it).
      mbstd_channels: stddev feature maps appended.
      conv_clamp: clamp of conv outputs (None: none).
    """

    resolution: int = 256
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    mbstd_group_size: int = 4
    mbstd_channels: int = 1
    conv_clamp: float | None = None

    def __post_init__(self) -> None:
        if _check_resolution(self.resolution) < 3:
            raise ConfigError(f"discriminator resolution must be >= 8, got {self.resolution}")

    @property
    def block_resolutions(self) -> tuple[int, ...]:
        return tuple(2 ** i for i in range(_check_resolution(self.resolution), 2, -1))

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DiscriminatorConfig":
        return cls(**d)
