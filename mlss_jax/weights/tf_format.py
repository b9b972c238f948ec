"""NVIDIA's TensorFlow StyleGAN2 format: its variable layout, and writing its pickles.

A TF network pickles as a ``dnnlib.tflib.network.Network`` whose state is a dict
(``version``, ``name``, ``static_kwargs``, ``components``, ``build_module_src``,
``build_func_name``, ``variables``); the file is the tuple ``(G, D, Gs)``.

:func:`generator_layout` and :func:`discriminator_layout` list every TF variable
with the path of its counterpart in this project's variable trees; the reader
(:mod:`mlss_jax.weights.nvidia`) and the exporter (:func:`export_tf_pickle`)
both follow them, so the two directions cannot drift apart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import pickle
import sys
import types
from typing import Any, Iterator

import numpy as np

from mlss_jax.errors import ConfigError
from mlss_jax.networks.config import DiscriminatorConfig, GeneratorConfig

# NVIDIA's pickles embed their network source; ours say where they came from instead.
_SOURCE_PLACEHOLDER = "# written by mlss_jax; no network source is included\n"


@dataclasses.dataclass
class TFNetwork:
    """One ``dnnlib.tflib.network.Network``: its own variables and its components."""

    name: str
    build_func_name: str
    static_kwargs: dict[str, Any]
    variables: list[tuple[str, np.ndarray]]
    components: dict[str, "TFNetwork"] = dataclasses.field(default_factory=dict)
    build_module_src: str = _SOURCE_PLACEHOLDER

    def state(self) -> dict[str, Any]:
        return {
            "version": 4, "name": self.name, "static_kwargs": dict(self.static_kwargs),
            "components": dict(self.components), "build_module_src": self.build_module_src,
            "build_func_name": self.build_func_name,
            "variables": [(n, np.asarray(v, np.float32)) for n, v in self.variables],
        }


class _Network:
    """Pickled under the name ``dnnlib.tflib.network.Network``."""

    def __init__(self, state: dict[str, Any]) -> None:
        self._state = state

    def __reduce__(self) -> tuple:
        return (self.__class__, (), self._state)


@contextlib.contextmanager
def named_global(module: str, name: str, obj: Any) -> Iterator[None]:
    """Make ``obj`` picklable as the global ``module.name`` while the block runs.

    pickle checks that a class can be imported under its name; this registers
    temporary stand-in modules and restores ``sys.modules`` afterwards.
    """
    parts = module.split(".")
    saved = {m: sys.modules.get(m) for m in (".".join(parts[:i + 1]) for i in range(len(parts)))}
    old_names = (getattr(obj, "__module__", None), getattr(obj, "__qualname__", None))
    try:
        for mod_name in saved:
            sys.modules[mod_name] = types.ModuleType(mod_name)
        setattr(sys.modules[module], name, obj)
        obj.__module__, obj.__qualname__ = module, name
        yield
    finally:
        obj.__module__, obj.__qualname__ = old_names
        for mod_name, old in saved.items():
            if old is None:
                sys.modules.pop(mod_name, None)
            else:
                sys.modules[mod_name] = old


def dumps_tf_networks(g: TFNetwork, d: TFNetwork, gs: TFNetwork) -> bytes:
    """The bytes of a TF-format pickle ``(G, D, Gs)``."""

    def wrap(net: TFNetwork) -> _Network:
        state = net.state()
        state["components"] = {k: wrap(c) for k, c in net.components.items()}
        return _Network(state)

    buffer = io.BytesIO()
    with named_global("dnnlib.tflib.network", "Network", _Network):
        pickle.dump((wrap(g), wrap(d), wrap(gs)), buffer, protocol=4)
    return buffer.getvalue()


# --- variable layout ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TFArray:
    """One TF variable and where it lives here.

    ``ours`` is a '/'-path into ``{'params': ..., 'buffers': ...}`` (None: no
    counterpart); ``theirs`` is the TF name with its component prefix (as in
    ``mapping/Dense0/weight``); ``kind`` names the value mapping (see ``to_ours``).
    """

    ours: str | None
    theirs: str
    shape: tuple[int, ...]
    kind: str = "same"


def generator_layout(cfg: GeneratorConfig) -> list[TFArray]:
    """Gs's variables in NVIDIA's creation order: own, mapping, then synthesis."""
    layout = [TFArray(None, "lod", (), "unused"),
              TFArray("buffers/mapping/w_avg", "dlatent_avg", (cfg.w_dim,))]
    hidden = cfg.mapping_hidden or cfg.w_dim
    for i in range(cfg.mapping_layers):
        fan_in = cfg.z_dim if i == 0 else hidden
        fan_out = cfg.w_dim if i == cfg.mapping_layers - 1 else hidden
        layout += [TFArray(f"params/mapping/fc{i}/weight", f"mapping/Dense{i}/weight", (fan_in, fan_out)),
                   TFArray(f"params/mapping/fc{i}/bias", f"mapping/Dense{i}/bias", (fan_out,))]

    def conv(ours: str, theirs: str, c_in: int, c_out: int) -> list[TFArray]:
        # TF's up-sampling kernels are kept unflipped (see nets.layers.conv2d).
        return [TFArray(f"params/{ours}/weight", f"{theirs}/weight", (3, 3, c_in, c_out)),
                TFArray(f"params/{ours}/affine/weight", f"{theirs}/mod_weight", (cfg.w_dim, c_in)),
                TFArray(f"params/{ours}/affine/bias", f"{theirs}/mod_bias", (c_in,), "affine_bias"),
                TFArray(f"params/{ours}/noise_strength", f"{theirs}/noise_strength", ()),
                TFArray(f"params/{ours}/bias", f"{theirs}/bias", (c_out,))]

    def torgb(ours: str, theirs: str, c_in: int) -> list[TFArray]:
        return [TFArray(f"params/{ours}/weight", f"{theirs}/weight", (1, 1, c_in, cfg.img_channels)),
                TFArray(f"params/{ours}/affine/weight", f"{theirs}/mod_weight", (cfg.w_dim, c_in)),
                TFArray(f"params/{ours}/affine/bias", f"{theirs}/mod_bias", (c_in,), "affine_bias"),
                TFArray(f"params/{ours}/bias", f"{theirs}/bias", (cfg.img_channels,))]

    # Noise input i belongs to layer i: b4/conv1, then conv0 and conv1 of each block.
    noise_layers = ["b4/conv1"] + [f"b{r}/{c}" for r in cfg.block_resolutions[1:]
                                   for c in ("conv0", "conv1")]
    for i, layer in enumerate(noise_layers):
        res = int(layer.split("/")[0][1:])
        layout.append(TFArray(f"buffers/synthesis/{layer}/noise_const", f"synthesis/noise{i}",
                              (1, 1, res, res), "noise"))
    c4 = cfg.channels(4)
    layout.append(TFArray("params/synthesis/b4/const", "synthesis/4x4/Const/const", (1, c4, 4, 4), "const"))
    layout += conv("synthesis/b4/conv1", "synthesis/4x4/Conv", c4, c4)
    layout += torgb("synthesis/b4/torgb", "synthesis/4x4/ToRGB", c4)
    for res in cfg.block_resolutions[1:]:
        c_in, c_out = cfg.channels(res // 2), cfg.channels(res)
        ours, theirs = f"synthesis/b{res}", f"synthesis/{res}x{res}"
        layout += conv(f"{ours}/conv0", f"{theirs}/Conv0_up", c_in, c_out)
        layout += conv(f"{ours}/conv1", f"{theirs}/Conv1", c_out, c_out)
        layout += torgb(f"{ours}/torgb", f"{theirs}/ToRGB", c_out)
    return layout


def discriminator_layout(cfg: DiscriminatorConfig) -> list[TFArray]:
    """D's variables in NVIDIA's creation order (resnet architecture)."""
    layout = []

    def conv(ours: str, theirs: str, k: int, c_in: int, c_out: int, bias: bool = True) -> None:
        layout.append(TFArray(f"params/{ours}/weight", f"{theirs}/weight", (k, k, c_in, c_out)))
        if bias:
            layout.append(TFArray(f"params/{ours}/bias", f"{theirs}/bias", (c_out,)))

    for i, res in enumerate(cfg.block_resolutions):
        tmp, out = cfg.channels(res), cfg.channels(res // 2)
        ours, theirs = f"b{res}", f"{res}x{res}"
        if i == 0:
            conv(f"{ours}/fromrgb", f"{theirs}/FromRGB", 1, cfg.img_channels, tmp)
        conv(f"{ours}/conv0", f"{theirs}/Conv0", 3, tmp, tmp)
        conv(f"{ours}/conv1", f"{theirs}/Conv1_down", 3, tmp, out)
        conv(f"{ours}/skip", f"{theirs}/Skip", 1, tmp, out, bias=False)
    c4 = cfg.channels(4)
    conv("b4/conv", "4x4/Conv", 3, c4 + cfg.mbstd_channels, c4)
    layout += [TFArray("params/b4/fc/weight", "4x4/Dense0/weight", (c4 * 16, c4), "dense_nchw"),
               TFArray("params/b4/fc/bias", "4x4/Dense0/bias", (c4,)),
               TFArray("params/b4/out/weight", "Output/weight", (c4, 1)),
               TFArray("params/b4/out/bias", "Output/bias", (1,))]
    return layout


def nchw_rows_to_nhwc(weight: np.ndarray) -> np.ndarray:
    """Rows of a dense weight over a flattened 4x4 map: NCHW order (c, h, w) -> NHWC (h, w, c)."""
    c, out = weight.shape[0] // 16, weight.shape[1]
    return weight.reshape(c, 4, 4, out).transpose(1, 2, 0, 3).reshape(-1, out)


def to_ours(array: TFArray, value: np.ndarray) -> np.ndarray:
    """A TF variable's value in this project's convention."""
    if array.kind == "affine_bias":      # TF adds the affine's +1 at run time; we store it
        return value + 1.0
    if array.kind == "const":            # [1, C, 4, 4] -> [4, 4, C]
        return value[0].transpose(1, 2, 0)
    if array.kind == "noise":            # [1, 1, H, W] -> [H, W]
        return value[0, 0]
    if array.kind == "dense_nchw":
        return nchw_rows_to_nhwc(value)
    return value


def to_theirs(array: TFArray, value: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_ours`."""
    value = np.asarray(value, np.float32)
    if array.kind == "affine_bias":
        return value - 1.0
    if array.kind == "const":
        return value.transpose(2, 0, 1)[None]
    if array.kind == "noise":
        return value[None, None]
    if array.kind == "dense_nchw":
        c, out = value.shape[0] // 16, value.shape[1]
        return value.reshape(4, 4, c, out).transpose(2, 0, 1, 3).reshape(-1, out)
    if array.kind == "unused":
        return np.zeros(array.shape, np.float32)
    return value


# --- exporter ---------------------------------------------------------------------------

_COMPONENTS = ("mapping", "synthesis")  # sub-networks of G; their names prefix their variables


def _lookup(tree: dict, path: str) -> np.ndarray:
    for key in path.split("/"):
        tree = tree[key]
    return np.asarray(tree)


def _variables(layout: list[TFArray], tree: dict, component: str | None) -> list:
    """(local name, value) of the layout entries that belong to ``component`` (None: own)."""
    out = []
    for array in layout:
        prefix, _, local = array.theirs.partition("/")
        owner = prefix if prefix in _COMPONENTS else None
        if owner == component:
            value = to_theirs(array, _lookup(tree, array.ours) if array.ours else None)
            out.append((local if owner else array.theirs, value))
    return out


def generator_static_kwargs(cfg: GeneratorConfig) -> dict[str, Any]:
    if cfg.conv_clamp is not None or cfg.channel_base % 2:
        raise ConfigError("the TF format has no conv_clamp and needs an even channel_base")
    return {"num_channels": cfg.img_channels, "resolution": cfg.resolution, "label_size": 0,
            "latent_size": cfg.z_dim, "dlatent_size": cfg.w_dim,
            "mapping_layers": cfg.mapping_layers, "mapping_fmaps": cfg.mapping_hidden or cfg.w_dim,
            "mapping_lrmul": cfg.mapping_lr_multiplier, "dlatent_avg_beta": cfg.w_avg_beta,
            "fmap_base": cfg.channel_base // 2, "fmap_max": cfg.channel_max}


def _generator_network(name: str, cfg: GeneratorConfig, variables: dict) -> TFNetwork:
    layout = generator_layout(cfg)
    kwargs = generator_static_kwargs(cfg)
    return TFNetwork(name, "G_main", kwargs, _variables(layout, variables, None), {
        "mapping": TFNetwork("G_mapping", "G_mapping", {**kwargs, "dlatent_broadcast": cfg.num_ws},
                             _variables(layout, variables, "mapping")),
        "synthesis": TFNetwork("G_synthesis", "G_synthesis_stylegan2", kwargs,
                               _variables(layout, variables, "synthesis"))})


def export_tf_pickle(generator_config: GeneratorConfig, generator_vars: dict,
                     discriminator_config: DiscriminatorConfig, discriminator_vars: dict,
                     training_generator_vars: dict | None = None) -> bytes:
    """A TF-format StyleGAN2 pickle ``(G, D, Gs)`` of this project's networks.

    ``generator_vars`` become ``Gs`` (the EMA generator that users sample);
    ``training_generator_vars`` (default: the same) become ``G``.
    """
    if discriminator_config.conv_clamp is not None or discriminator_config.channel_base % 2:
        raise ConfigError("the TF format has no conv_clamp and needs an even channel_base")
    d_kwargs = {"num_channels": discriminator_config.img_channels,
                "resolution": discriminator_config.resolution, "label_size": 0,
                "fmap_base": discriminator_config.channel_base // 2,
                "fmap_max": discriminator_config.channel_max,
                "mbstd_group_size": discriminator_config.mbstd_group_size,
                "mbstd_num_features": discriminator_config.mbstd_channels}
    d = TFNetwork("D", "D_stylegan2", d_kwargs,
                  _variables(discriminator_layout(discriminator_config), discriminator_vars, None))
    gs = _generator_network("Gs", generator_config, generator_vars)
    g = _generator_network("G", generator_config, training_generator_vars or generator_vars)
    return dumps_tf_networks(g, d, gs)
