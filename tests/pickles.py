"""Building network pickles for tests: the fixtures re-written with changes, and by name lists."""

from __future__ import annotations

import io
import pickle

import numpy as np

from conftest import fixture_path
from mlss_jax.weights.safe_pickle import PersistentModule, TFNetworkState, load_network_pickle
from mlss_jax.weights.tf_format import TFNetwork, dumps_tf_networks, named_global


def _tf_network(net: TFNetworkState) -> TFNetwork:
    s = net.state
    return TFNetwork(s["name"], s["build_func_name"], dict(s["static_kwargs"]), list(s["variables"]),
                     {k: _tf_network(c) for k, c in s["components"].items()})


def tf_fixture() -> list[TFNetwork]:
    """The TF fixture as editable [G, D, Gs]."""
    return [_tf_network(n) for n in load_network_pickle(fixture_path("tf_small.pkl").read_bytes())]


def dump_tf(nets: list[TFNetwork]) -> bytes:
    return dumps_tf_networks(*nets)


def pt_fixture() -> dict:
    """The PyTorch fixture as a dict of editable PersistentModule objects."""
    return load_network_pickle(fixture_path("pt_small.pkl").read_bytes())


def _reconstruct(meta):  # pickled as torch_utils.persistence._reconstruct_persistent_obj
    raise AssertionError("never called")


class _PersistentPickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, PersistentModule):
            meta = dict(type="class", version=6, class_name=obj.class_name, state=obj.state,
                        module_src="raise SystemExit('module_src was executed')\n")
            return _reconstruct, (meta,)
        return NotImplemented


def dump_pt(obj: dict) -> bytes:
    """Re-pickle like a stylegan2-ada pickle (tensors become plain numpy arrays)."""
    buffer = io.BytesIO()
    with named_global("torch_utils.persistence", "_reconstruct_persistent_obj", _reconstruct):
        _PersistentPickler(buffer, protocol=4).dump(obj)
    return buffer.getvalue()


def add_param(module: PersistentModule, path: str, value: np.ndarray) -> None:
    """Insert a child module chain and a parameter, e.g. 'input.affine.weight'."""
    *children, leaf = path.split(".")
    for name in children:
        mods = module.state["_modules"]
        if name not in mods:
            mods[name] = PersistentModule("Stub", {"_parameters": {}, "_buffers": {}, "_modules": {}})
        module = mods[name]
    module.state["_parameters"][leaf] = value
