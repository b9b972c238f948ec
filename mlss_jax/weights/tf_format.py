"""Writing pickles in NVIDIA's TensorFlow StyleGAN2 format, without TensorFlow or dnnlib.

A TF network pickles as a ``dnnlib.tflib.network.Network`` whose state is a dict
(``version``, ``name``, ``static_kwargs``, ``components``, ``build_module_src``,
``build_func_name``, ``variables``); the file is the tuple ``(G, D, Gs)``.
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
