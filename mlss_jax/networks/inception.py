"""The FID Inception-v3 (TensorFlow's 2015-12-05 graph as ported to PyTorch by pytorch-fid),
read from a user's ``pt_inception-2015-12-05-6726825d.pth`` without torch.

It is torchvision's Inception-v3 with the FID graph's differences: average pools
in the A, C and first E blocks exclude padding from their counts, and the last E
block pools its branch with a 3x3 max-pool. Features are the 2048-d average pool
of the last block; inputs (in [-1, 1]) are bilinearly resized to 299x299 first.
Parameter names are the state dict's (``Mixed_5b.branch1x1.conv.weight`` ...).
"""

from __future__ import annotations


import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.errors import InputFileError

INPUT_SIZE = 299
BN_EPS = 1e-3
Pad = tuple[int, int]


class BasicConv(nn.Module):
    """Conv (no bias) -> batch norm with frozen statistics -> ReLU."""

    features: int
    kernel: tuple[int, int]
    stride: int = 1
    padding: Pad = (0, 0)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (*self.kernel, x.shape[-1], self.features))
        stats = {name: self.param(name, nn.initializers.zeros, (self.features,))
                 for name in ("scale", "bias", "mean", "var")}
        pad = tuple((p, p) for p in self.padding)
        x = jax.lax.conv_general_dilated(x, kernel, (self.stride, self.stride), pad,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        x = (x - stats["mean"]) / jnp.sqrt(stats["var"] + BN_EPS) * stats["scale"] + stats["bias"]
        return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
    return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_stride2(x: jax.Array) -> jax.Array:
    return nn.max_pool(x, (3, 3), (2, 2))


class BlockA(nn.Module):
    pool_features: int

    @nn.compact
    def __call__(self, x):
        b1 = BasicConv(64, (1, 1), name="branch1x1")(x)
        b5 = BasicConv(48, (1, 1), name="branch5x5_1")(x)
        b5 = BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
        b3 = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
        b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
        b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
        bp = BasicConv(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class BlockB(nn.Module):
    @nn.compact
    def __call__(self, x):
        b3 = BasicConv(384, (3, 3), stride=2, name="branch3x3")(x)
        bd = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
        bd = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = BasicConv(96, (3, 3), stride=2, name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, _max_pool_3x3_stride2(x)], axis=-1)


class BlockC(nn.Module):
    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c7 = self.channels_7x7
        row, col = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
        b1 = BasicConv(192, (1, 1), name="branch1x1")(x)
        b7 = BasicConv(c7, (1, 1), name="branch7x7_1")(x)
        b7 = BasicConv(c7, **row, name="branch7x7_2")(b7)
        b7 = BasicConv(192, **col, name="branch7x7_3")(b7)
        bd = BasicConv(c7, (1, 1), name="branch7x7dbl_1")(x)
        for i, (width, shape) in enumerate([(c7, col), (c7, row), (c7, col), (192, row)]):
            bd = BasicConv(width, **shape, name=f"branch7x7dbl_{i + 2}")(bd)
        bp = BasicConv(192, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class BlockD(nn.Module):
    @nn.compact
    def __call__(self, x):
        b3 = BasicConv(192, (1, 1), name="branch3x3_1")(x)
        b3 = BasicConv(320, (3, 3), stride=2, name="branch3x3_2")(b3)
        b7 = BasicConv(192, (1, 1), name="branch7x7x3_1")(x)
        b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = BasicConv(192, (3, 3), stride=2, name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, _max_pool_3x3_stride2(x)], axis=-1)


class BlockE(nn.Module):
    max_pool_branch: bool  # the FID graph's last block max-pools its pool branch

    @nn.compact
    def __call__(self, x):
        def split(y, prefix):
            a = BasicConv(384, (1, 3), padding=(0, 1), name=f"{prefix}a")(y)
            b = BasicConv(384, (3, 1), padding=(1, 0), name=f"{prefix}b")(y)
            return jnp.concatenate([a, b], axis=-1)

        b1 = BasicConv(320, (1, 1), name="branch1x1")(x)
        b3 = split(BasicConv(384, (1, 1), name="branch3x3_1")(x), "branch3x3_2")
        bd = BasicConv(448, (1, 1), name="branch3x3dbl_1")(x)
        bd = split(BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd),
                   "branch3x3dbl_3")
        pooled = (nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1))) if self.max_pool_branch
                  else _avg_pool_3x3(x))
        bp = BasicConv(192, (1, 1), name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
    """images [N, H, W, 3] in [-1, 1] -> pool3 features [N, 2048]."""

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        n, _, _, c = images.shape
        x = jax.image.resize(images, (n, INPUT_SIZE, INPUT_SIZE, c), "bilinear", antialias=False)
        x = BasicConv(32, (3, 3), stride=2, name="Conv2d_1a_3x3")(x)
        x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3")(x)
        x = BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
        x = _max_pool_3x3_stride2(x)
        x = BasicConv(80, (1, 1), name="Conv2d_3b_1x1")(x)
        x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3")(x)
        x = _max_pool_3x3_stride2(x)
        x = BlockA(32, name="Mixed_5b")(x)
        x = BlockA(64, name="Mixed_5c")(x)
        x = BlockA(64, name="Mixed_5d")(x)
        x = BlockB(name="Mixed_6a")(x)
        for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
            x = BlockC(c7, name=name)(x)
        x = BlockD(name="Mixed_7a")(x)
        x = BlockE(False, name="Mixed_7b")(x)
        x = BlockE(True, name="Mixed_7c")(x)
        return jnp.mean(x, axis=(1, 2))


_BN_NAMES = {"scale": "bn.weight", "bias": "bn.bias", "mean": "bn.running_mean",
             "var": "bn.running_var"}


def params_from_state_dict(state_dict: dict) -> dict:
    """FIDInceptionV3 params from a torch state dict (numpy arrays); every conv must be there."""
    template = jax.eval_shape(FIDInceptionV3().init, jax.random.key(0),
                              jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3)))["params"]

    def fill(tree: dict, prefix: str) -> dict:
        if "kernel" not in tree:
            return {k: fill(v, f"{prefix}{k}.") for k, v in tree.items()}
        weight = state_dict.get(prefix + "conv.weight")
        if weight is None:
            raise InputFileError(f"the Inception weights lack {prefix}conv.weight")
        out = {"kernel": np.asarray(weight, np.float32).transpose(2, 3, 1, 0)}
        for ours, theirs in _BN_NAMES.items():
            if prefix + theirs not in state_dict:
                raise InputFileError(f"the Inception weights lack {prefix}{theirs}")
            out[ours] = np.asarray(state_dict[prefix + theirs], np.float32)
        for name, leaf in tree.items():
            if out[name].shape != leaf.shape:
                raise InputFileError(f"{prefix}{name}: shape {out[name].shape}, expected {leaf.shape}")
        return out

    return fill(template, "")


def inception_pool_features(params: dict, images: jax.Array) -> jax.Array:
    return FIDInceptionV3().apply({"params": params}, images)
