"""tensorflow-datasets, imported quietly (the one place that imports it)."""

from __future__ import annotations

import os
from types import ModuleType


def import_tfds() -> ModuleType:
    """``tensorflow_datasets``, with TensorFlow's start-up notices off: TensorFlow only decodes
    images here, so its oneDNN notice (four lines on every command) tells a user nothing. A
    user's own settings of these variables win."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import tensorflow_datasets as tfds

    return tfds
