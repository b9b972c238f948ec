"""The ``shapes`` world as a tensorflow-datasets builder, so it loads like any tfds dataset.

Configs: ``default`` (50,000 train + 5,000 test examples) and ``tiny`` (512 + 128,
for tests and quick runs). Train and test are disjoint index ranges of the same
seeded generator, so the test split is held out. Nothing is downloaded: building
renders every example (about a minute for ``default``).

Versions: one per world (``shapes.TFDS_VERSIONS``): 1.0.0 is world 1, 2.0.0 world 2
(``shapes/tiny:2.0.0``). ``VERSION``, what a name without a version loads, is DEFAULT_WORLD's;
the other world's version is in ``SUPPORTED_VERSIONS``. Each version has its own directory
under the data directory, so a data directory built before 2.0.0 is read as it is.

tfds builds a builder's ``VERSION`` and its highest version only (an older one it will only
read, from a data directory that has it). So each world is built by a builder whose
``VERSION`` is that world's: the registered ``Shapes`` for the default world, an unregistered
copy of it under the same name for each other world (:func:`world_builder`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mlss_jax.data.tfds import import_tfds
from mlss_jax.demo.shapes import (DEFAULT_WORLD, RESOLUTION, SPLITS, TFDS_VERSIONS, check_world,
                                  example, tfds_world, world_factors)

tfds = import_tfds()


@dataclasses.dataclass
class ShapesConfig(tfds.core.BuilderConfig):
    num_train: int = 50_000
    num_test: int = 5_000
    seed: int = 0


class Shapes(tfds.core.GeneratorBasedBuilder):
    """32x32 procedural images with shape/scale/position, layout (world 1) or texture (world 2)
    and hue/tint labels."""

    VERSION = tfds.core.Version(TFDS_VERSIONS[DEFAULT_WORLD])
    SUPPORTED_VERSIONS = [tfds.core.Version(v) for w, v in sorted(TFDS_VERSIONS.items())
                          if w != DEFAULT_WORLD]
    RELEASE_NOTES = {
        TFDS_VERSIONS[1]: "World 1: every factor discrete, a finite set of 11,520 images.",
        TFDS_VERSIONS[2]: "World 2: the same labels plus continuous variation inside every class "
                          "(size, position, rotation, colour jitter); the medium factor is a "
                          "3.5-4.5 px background 'texture' in place of world 1's 'layout'.",
    }
    BUILDER_CONFIGS = [
        ShapesConfig(name=name, description=f"{train[1]} train, {test[1] - test[0]} test",
                     num_train=train[1], num_test=test[1] - test[0])
        for name, (train, test) in ((name, (s["train"], s["test"])) for name, s in SPLITS.items())
    ]

    @property
    def world(self) -> int:
        """The shapes world this version of the builder holds."""
        return tfds_world(str(self.version))

    def _info(self) -> tfds.core.DatasetInfo:
        features = {"image": tfds.features.Image(shape=(RESOLUTION, RESOLUTION, 3))}
        features.update({name: tfds.features.ClassLabel(names=list(classes))
                         for name, classes in world_factors(self.world).items()})
        # disable_shuffling: split order is index order, so train[i] == example(seed, i).
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict(features),
                                              disable_shuffling=True)

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        return {"train": self._generate_examples(0, cfg.num_train),
                "test": self._generate_examples(cfg.num_train, cfg.num_train + cfg.num_test)}

    def _generate_examples(self, start: int, stop: int):
        seed, world = self.builder_config.seed, self.world
        for index in range(start, stop):
            ex = example(seed, index, world)
            yield index, {"image": ex.image, **ex.labels}


def _version_builder(world: int) -> type[Shapes]:
    """``Shapes`` with ``world``'s version as its ``VERSION``, unregistered (tfds knows one
    ``shapes``), so that tfds builds it."""
    version = tfds.core.Version(TFDS_VERSIONS[world])
    return type(f"ShapesWorld{world}", (Shapes,), {"name": Shapes.name, "VERSION": version,
                                                   "SUPPORTED_VERSIONS": []},
                skip_registration=True)


_WORLD_BUILDERS = {world: Shapes if world == DEFAULT_WORLD else _version_builder(world)
                   for world in TFDS_VERSIONS}


def world_builder(world: int = DEFAULT_WORLD) -> type[Shapes]:
    """The builder class that builds (and reads) ``world``: its ``VERSION`` is the world's."""
    return _WORLD_BUILDERS[check_world(world)]


def load_tfds_shapes(split: str = "train", config: str = "default",
                     data_dir: str | Path | None = None, world: int = DEFAULT_WORLD
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All images [N, 32, 32, 3] uint8 and labels {factor: [N] int} of a split of a world
    (built if needed)."""
    factors = world_factors(world)
    builder_class = world_builder(world)
    make = lambda: builder_class(config=config, version=TFDS_VERSIONS[world],
                          data_dir=None if data_dir is None else str(data_dir))
    builder = make()
    try:
        builder.download_and_prepare()
    except Exception:  # another process built it at the same time and renamed it in first
        builder = make()
        if not Path(builder.data_dir).is_dir():
            raise
    data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))
    labels = {name: np.asarray(data[name], np.int64) for name in factors}
    return np.asarray(data["image"]), labels
