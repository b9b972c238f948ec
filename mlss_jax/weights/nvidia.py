"""NVIDIA's StyleGAN2 network pickles -> this project's configs and variable trees.

Two formats are read (``docs/formats.md`` describes both):

* TensorFlow StyleGAN2: a tuple ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network``
  states; ``Gs`` (the EMA generator) and ``D`` are converted.
* PyTorch stylegan2-ada / stylegan3 (its StyleGAN2 networks): a dict with
  ``G_ema`` and ``D`` ``torch_utils.persistence`` modules.

Every expected array is looked up by name and its shape checked against the
configuration; extra or missing arrays are errors, so an unknown architecture
is never half-converted.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from mlss_jax.networks.config import DiscriminatorConfig, GeneratorConfig
from mlss_jax.weights.tf_format import (TFArray, discriminator_layout, generator_layout,
                                        nchw_rows_to_nhwc, to_ours)
from mlss_jax.weights.safe_pickle import (NetworkPickleError, PersistentModule, TFNetworkState,
                                          load_network_pickle)


class UnsupportedNetworkError(NetworkPickleError):
    """A well-formed pickle of a network this project does not implement."""


@dataclasses.dataclass
class ConvertedNetworks:
    """What a pickle converts to. ``discriminator_*`` are None when D was not converted."""

    source_format: str                       # "tensorflow" or "pytorch"
    generator_config: GeneratorConfig
    generator_vars: dict                     # {'params': ..., 'buffers': ...}
    discriminator_config: DiscriminatorConfig | None
    discriminator_vars: dict | None          # {'params': ...}
    notes: list[str]


# --- shared helpers -------------------------------------------------------------------

def _set(tree: dict, path: str, value: np.ndarray) -> None:
    *parents, leaf = path.split("/")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[leaf] = np.array(value, dtype=np.float32, order="C")


class _ArrayTable:
    """Named source arrays; every read checks the shape, and all must be read once."""

    def __init__(self, arrays: dict[str, np.ndarray], what: str) -> None:
        self.arrays, self.what, self.used = arrays, what, set()

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in self.arrays:
            raise UnsupportedNetworkError(f"{self.what}: missing array {name!r} "
                                          "(not a StyleGAN2 network of the supported layout)")
        value = np.asarray(self.arrays[name])
        if value.dtype.kind not in "fiu" or tuple(value.shape) != tuple(shape):
            raise UnsupportedNetworkError(
                f"{self.what}: {name} has shape {tuple(value.shape)}, expected {tuple(shape)}")
        self.used.add(name)
        return value.astype(np.float32)

    def check_all_used(self, ignore: Callable[[str], bool] = lambda n: False) -> None:
        extra = sorted(n for n in self.arrays if n not in self.used and not ignore(n))
        if extra:
            raise UnsupportedNetworkError(
                f"{self.what}: unexpected arrays {', '.join(extra[:4])}"
                f"{' ...' if len(extra) > 4 else ''} (unsupported architecture)")


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise UnsupportedNetworkError(message)


def _int(value: Any, what: str) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    raise UnsupportedNetworkError(f"{what} is not an integer: {value!r:.40}")


# --- TensorFlow format ----------------------------------------------------------------

def _tf_state(net: Any, what: str) -> dict:
    if not isinstance(net, TFNetworkState):
        raise UnsupportedNetworkError(f"{what} is not a dnnlib.tflib.network.Network")
    state = net.state
    for key, kind in (("static_kwargs", dict), ("components", dict), ("variables", list)):
        if not isinstance(state.get(key), kind):
            raise NetworkPickleError(f"{what}: malformed network state (no {key})")
    return state


def _tf_variables(net: TFNetworkState, what: str, prefix: str = "") -> dict[str, np.ndarray]:
    """Flatten a TF network's own variables and its components' as ``component/name``."""
    state = _tf_state(net, what)
    flat = {}
    for item in state["variables"]:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise NetworkPickleError(f"{what}: malformed variable list")
        flat[prefix + item[0]] = item[1]
    for key, comp in state["components"].items():
        flat.update(_tf_variables(comp, what, f"{prefix}{key}/"))
    return flat


def _tf_generator(gs: TFNetworkState) -> tuple[GeneratorConfig, dict, list[str]]:
    state = _tf_state(gs, "Gs")
    kw = state["static_kwargs"]
    comps = state["components"]
    _require(state.get("version", 0) >= 4,
             f"Gs: TF network version {state.get('version')} is too old (need 4)")
    _require("synthesis" in comps and "mapping" in comps, "Gs has no mapping/synthesis components")
    synth_func = _tf_state(comps["synthesis"], "Gs/synthesis").get("build_func_name")
    _require(synth_func == "G_synthesis_stylegan2",
             f"unsupported generator: synthesis network {synth_func!r} "
             "(only StyleGAN2's G_synthesis_stylegan2 is supported)")
    _require(_int(kw.get("label_size", 0), "label_size") == 0,
             "unsupported generator: conditional model with labels (label_size > 0)")
    arch = kw.get("architecture", "skip")
    _require(arch == "skip", f"unsupported generator architecture {arch!r} (only 'skip')")
    _require(kw.get("normalize_latents", True), "unsupported generator: normalize_latents=False")
    _require(kw.get("resample_kernel", [1, 3, 3, 1]) in ([1, 3, 3, 1], (1, 3, 3, 1)),
             "unsupported generator: resample kernel other than [1,3,3,1]")
    for name, default in (("mapping_nonlinearity", "lrelu"), ("nonlinearity", "lrelu")):
        _require(kw.get(name, default) == "lrelu", f"unsupported generator: {name}={kw.get(name)!r}")

    variables = _tf_variables(gs, "Gs")
    w_dim = _int(kw.get("dlatent_size", 512), "dlatent_size")
    mapping_layers = _int(kw.get("mapping_layers", 8), "mapping_layers")
    cfg = GeneratorConfig(
        resolution=_int(kw.get("resolution", 1024), "resolution"),
        z_dim=_int(kw.get("latent_size", 512), "latent_size"),
        w_dim=w_dim,
        img_channels=_int(kw.get("num_channels", 3), "num_channels"),
        mapping_layers=mapping_layers,
        mapping_hidden=_int(kw.get("mapping_fmaps", w_dim), "mapping_fmaps"),
        mapping_lr_multiplier=float(kw.get("mapping_lrmul", 0.01)),
        channel_base=2 * _int(kw.get("fmap_base", 16 << 10), "fmap_base"),
        channel_max=_int(kw.get("fmap_max", 512), "fmap_max"),
        w_avg_beta=float(kw.get("dlatent_avg_beta", 0.995)),
    )
    table = _ArrayTable(variables, "Gs")
    tree = _read_layout(table, generator_layout(cfg))
    table.check_all_used(ignore=lambda n: n == "lod")
    notes = []
    if "truncation_psi" in kw:
        notes.append(f"the pickle's default truncation_psi={kw['truncation_psi']} is not applied")
    return cfg, tree, notes


def _tf_discriminator(d: TFNetworkState) -> tuple[DiscriminatorConfig, dict]:
    state = _tf_state(d, "D")
    kw = state["static_kwargs"]
    func = state.get("build_func_name")
    _require(func == "D_stylegan2", f"discriminator {func!r} (only D_stylegan2)")
    arch = kw.get("architecture", "resnet")
    _require(arch == "resnet", f"discriminator architecture {arch!r} (only 'resnet')")
    _require(_int(kw.get("label_size", 0), "label_size") == 0, "conditional discriminator")
    cfg = DiscriminatorConfig(
        resolution=_int(kw.get("resolution", 1024), "resolution"),
        img_channels=_int(kw.get("num_channels", 3), "num_channels"),
        channel_base=2 * _int(kw.get("fmap_base", 16 << 10), "fmap_base"),
        channel_max=_int(kw.get("fmap_max", 512), "fmap_max"),
        mbstd_group_size=_int(kw.get("mbstd_group_size", 4), "mbstd_group_size"),
        mbstd_channels=_int(kw.get("mbstd_num_features", 1), "mbstd_num_features"),
    )
    table = _ArrayTable(_tf_variables(d, "D"), "D")
    tree = _read_layout(table, discriminator_layout(cfg))
    table.check_all_used()
    return cfg, tree


def _read_layout(table: _ArrayTable, layout: list[TFArray]) -> dict:
    """Our variable tree from TF arrays, following the shared layout."""
    tree: dict = {}
    for array in layout:
        if array.ours is not None:
            _set(tree, array.ours, to_ours(array, table.get(array.theirs, array.shape)))
    return tree


# --- PyTorch format -------------------------------------------------------------------

def _pt_module(obj: Any, what: str) -> PersistentModule:
    if not isinstance(obj, PersistentModule):
        raise UnsupportedNetworkError(f"{what} is not a torch_utils.persistence module")
    for key in ("_parameters", "_buffers", "_modules"):
        if not isinstance(obj.state.get(key), dict):
            raise NetworkPickleError(f"{what}: malformed module state (no {key})")
    return obj


def _pt_arrays(module: PersistentModule, what: str, prefix: str = "") -> dict[str, np.ndarray]:
    """The module's ``state_dict()``: parameters and buffers of it and its children."""
    state = _pt_module(module, what).state
    flat = {}
    for group in ("_parameters", "_buffers"):
        for name, value in state[group].items():
            if value is not None:
                if not isinstance(value, np.ndarray):
                    raise NetworkPickleError(f"{what}: {prefix}{name} is not a tensor")
                flat[prefix + name] = value
    for name, child in state["_modules"].items():
        if child is not None:
            flat.update(_pt_arrays(child, what, f"{prefix}{name}."))
    return flat


def _pt_child(module: PersistentModule, path: str, what: str) -> PersistentModule:
    for name in path.split("."):
        child = _pt_module(module, what).state["_modules"].get(name)
        if child is None:
            raise UnsupportedNetworkError(f"{what}: has no submodule {path!r}")
        module = child
    return _pt_module(module, what)


def _pt_attr(module: PersistentModule, name: str, default: Any = None) -> Any:
    return module.state.get(name, default)


def _pt_generator(g: PersistentModule) -> tuple[GeneratorConfig, dict, list[str]]:
    _pt_module(g, "G_ema")
    _require(g.class_name == "Generator", f"G_ema is a {g.class_name!r}, not a Generator")
    arrays = _pt_arrays(g, "G_ema")
    if any(n.startswith("synthesis.input.") for n in arrays):
        raise UnsupportedNetworkError("unsupported generator: StyleGAN3 (config r/t); "
                                      "only StyleGAN2 generators are supported")
    _require(_int(_pt_attr(g, "c_dim", 0), "c_dim") == 0,
             "unsupported generator: conditional model with labels (c_dim > 0)")
    mapping = _pt_child(g, "mapping", "G_ema")
    synthesis = _pt_child(g, "synthesis", "G_ema")
    resolution = _int(_pt_attr(g, "img_resolution"), "img_resolution")
    blocks = [_pt_child(synthesis, f"b{r}", "G_ema")
              for r in GeneratorConfig(resolution=resolution).block_resolutions]
    for block in blocks:
        arch = _pt_attr(block, "architecture", "skip")
        _require(arch == "skip", f"unsupported generator architecture {arch!r} (only 'skip')")
    layer_state = _pt_child(blocks[0], "conv1", "G_ema").state
    _require(layer_state.get("activation", "lrelu") == "lrelu", "unsupported generator activation")
    conv_clamp = layer_state.get("conv_clamp")
    fc0 = _pt_child(mapping, "fc0", "G_ema")
    num_layers = _int(_pt_attr(mapping, "num_layers", 8), "mapping num_layers")
    hidden = arrays.get("mapping.fc0.weight", np.zeros((0, 0))).shape[0]
    w_dim = _int(_pt_attr(g, "w_dim"), "w_dim")
    syn_kw = _pt_attr(synthesis, "_init_kwargs", {}) or {}
    cfg = GeneratorConfig(
        resolution=resolution,
        z_dim=_int(_pt_attr(g, "z_dim"), "z_dim"),
        w_dim=w_dim,
        img_channels=_int(_pt_attr(g, "img_channels", 3), "img_channels"),
        mapping_layers=num_layers,
        mapping_hidden=hidden if num_layers > 1 else w_dim,
        mapping_lr_multiplier=float(_pt_attr(fc0, "bias_gain", 0.01)),
        channel_base=_int(syn_kw.get("channel_base", 32768), "channel_base"),
        channel_max=_int(syn_kw.get("channel_max", 512), "channel_max"),
        conv_clamp=None if conv_clamp is None else float(conv_clamp),
        w_avg_beta=float(_pt_attr(mapping, "w_avg_beta", 0.995)),
    )
    table = _ArrayTable(arrays, "G_ema")
    tree = _read_pt_layout(table, generator_layout(cfg))
    table.check_all_used(ignore=lambda n: n.endswith("resample_filter"))
    notes = []
    if _pt_attr(synthesis, "num_fp16_res", 0) or syn_kw.get("num_fp16_res", 0):
        notes.append("the network used fp16 in its top layers; it runs in float32 here")
    return cfg, tree, notes


def _pt_discriminator(d: PersistentModule) -> tuple[DiscriminatorConfig, dict]:
    _pt_module(d, "D")
    _require(d.class_name == "Discriminator", f"D is a {d.class_name!r}")
    _require(_int(_pt_attr(d, "c_dim", 0), "c_dim") == 0, "conditional discriminator")
    resolution = _int(_pt_attr(d, "img_resolution"), "img_resolution")
    kw = _pt_attr(d, "_init_kwargs", {}) or {}
    epilogue = _pt_child(d, "b4", "D")
    mbstd = _pt_child(epilogue, "mbstd", "D")
    _require(_pt_attr(epilogue, "architecture", "resnet") == "resnet",
             "discriminator architecture other than 'resnet'")
    conv_clamp = _pt_attr(_pt_child(epilogue, "conv", "D"), "conv_clamp")
    cfg = DiscriminatorConfig(
        resolution=resolution,
        img_channels=_int(_pt_attr(d, "img_channels", 3), "img_channels"),
        channel_base=_int(kw.get("channel_base", 32768), "channel_base"),
        channel_max=_int(kw.get("channel_max", 512), "channel_max"),
        mbstd_group_size=_int(_pt_attr(mbstd, "group_size", 4), "mbstd group_size"),
        mbstd_channels=_int(_pt_attr(mbstd, "num_channels", 1), "mbstd num_channels"),
        conv_clamp=None if conv_clamp is None else float(conv_clamp),
    )
    for res in cfg.block_resolutions:
        arch = _pt_attr(_pt_child(d, f"b{res}", "D"), "architecture", "resnet")
        _require(arch == "resnet", f"discriminator architecture {arch!r} (only 'resnet')")
    table = _ArrayTable(_pt_arrays(d, "D"), "D")
    tree = _read_pt_layout(table, discriminator_layout(cfg))
    table.check_all_used(ignore=lambda n: n.endswith("resample_filter"))
    return cfg, tree


def _read_pt_layout(table: _ArrayTable, layout: list[TFArray]) -> dict:
    """Our variable tree from PyTorch arrays, following the shared (TF) layout.

    NVIDIA's PyTorch names are our tree paths with dots (``synthesis.b8.conv0.weight``
    is ``params/synthesis/b8/conv0/weight``); only the value layouts differ.
    """
    tree: dict = {}
    for array in layout:
        if array.ours is None:
            continue
        ours_shape = to_ours(array, np.zeros(array.shape, np.float32)).shape
        name = array.ours.split("/", 1)[1].replace("/", ".")
        if array.kind == "const":       # [4, 4, C] <- [C, 4, 4]
            value = table.get(name, (ours_shape[2], 4, 4)).transpose(1, 2, 0)
        elif array.kind == "noise" or len(ours_shape) < 2:
            value = table.get(name, ours_shape)  # also biases (affine ones include the +1), w_avg
        elif len(ours_shape) == 4:      # conv HWIO <- OIHW
            value = table.get(name, tuple(ours_shape[i] for i in (3, 2, 0, 1))).transpose(2, 3, 1, 0)
            if array.theirs.endswith("Conv0_up/weight"):
                # NVIDIA's converter flips TF's up-sampling kernels; flip back to TF orientation.
                value = value[::-1, ::-1]
        else:                           # dense [in, out] <- [out, in]
            value = table.get(name, ours_shape[::-1]).T
            if array.kind == "dense_nchw":
                value = nchw_rows_to_nhwc(value)
        _set(tree, array.ours, value)
    return tree


# --- entry point ----------------------------------------------------------------------

def _discriminator_or_note(convert: Callable, d: Any, notes: list[str]) -> tuple[Any, Any]:
    if d is None:
        notes.append("the pickle holds no discriminator")
        return None, None
    try:
        return convert(d)
    except UnsupportedNetworkError as err:
        notes.append(f"discriminator not converted: {err}")
        return None, None


def convert_network_pickle(data: bytes, training_generator: bool = False) -> ConvertedNetworks:
    """Convert the bytes of an NVIDIA network pickle (either format).

    The generator is the EMA one users sample (TF ``Gs``, PyTorch ``G_ema``), or with
    ``training_generator`` the one the optimiser updated (``G``), which experiments read.
    """
    obj = load_network_pickle(data)
    notes: list[str] = []
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(o, TFNetworkState) for o in obj):
        tf_g, tf_d, tf_gs = obj
        g_cfg, g_vars, g_notes = _tf_generator(tf_g if training_generator else tf_gs)
        d_cfg, d_vars = _discriminator_or_note(_tf_discriminator, tf_d, notes)
        fmt = "tensorflow"
    elif isinstance(obj, dict) and isinstance(obj.get("G_ema"), PersistentModule):
        if training_generator and not isinstance(obj.get("G"), PersistentModule):
            raise NetworkPickleError("the pickle holds no training generator G")
        g_cfg, g_vars, g_notes = _pt_generator(obj["G"] if training_generator else obj["G_ema"])
        d_cfg, d_vars = _discriminator_or_note(_pt_discriminator, obj.get("D"), notes)
        fmt = "pytorch"
    else:
        raise NetworkPickleError(
            "not a StyleGAN2 network pickle: expected a TensorFlow tuple (G, D, Gs) "
            "or a PyTorch dict with G_ema")
    return ConvertedNetworks(fmt, g_cfg, g_vars, d_cfg, d_vars, g_notes + notes)
