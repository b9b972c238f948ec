"""A split of the ``shapes`` world, through tensorflow-datasets where it is installed, else
rendered in this process (both give the same arrays)."""

from __future__ import annotations

import numpy as np

from mlss_jax.demo.shapes import DEFAULT_WORLD, check_world, render_examples, split_range


def load_shapes(split: str = "train", config: str = "default", data_dir=None,
                progress: bool | None = None, world: int = DEFAULT_WORLD
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All images and labels of a split of a world: through tensorflow-datasets where it is
    installed (built once into its data directory as ``shapes/<config>:<version>``, one
    version per world: ``shapes.TFDS_VERSIONS``), else rendered here (both give the same
    arrays)."""
    start, stop = split_range(split, config)
    check_world(world)
    try:
        from mlss_jax.demo.shapes_tfds import load_tfds_shapes
    except ImportError:  # no TensorFlow (e.g. a GPU machine): render in-process
        return render_examples(start, stop, progress=progress, world=world)
    return load_tfds_shapes(split, config, data_dir, world)
