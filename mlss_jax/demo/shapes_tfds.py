"""The ``shapes`` world as a tensorflow-datasets builder, so it loads like any tfds dataset.

Configs: ``default`` (50,000 train + 5,000 test examples) and ``tiny`` (512 + 128,
for tests and quick runs). Train and test are disjoint index ranges of the same
seeded generator, so the test split is held out. Nothing is downloaded: building
renders every example (about a minute for ``default``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mlss_jax.data.tfds import import_tfds
from mlss_jax.demo.shapes import FACTORS, RESOLUTION, SPLITS, example

tfds = import_tfds()


@dataclasses.dataclass
class ShapesConfig(tfds.core.BuilderConfig):
    num_train: int = 50_000
    num_test: int = 5_000
    seed: int = 0


class Shapes(tfds.core.GeneratorBasedBuilder):
    """32x32 procedural images with shape/scale/position, layout and hue/tint labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First version."}
    BUILDER_CONFIGS = [
        ShapesConfig(name=name, description=f"{train[1]} train, {test[1] - test[0]} test",
                     num_train=train[1], num_test=test[1] - test[0])
        for name, (train, test) in ((name, (s["train"], s["test"])) for name, s in SPLITS.items())
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        features = {"image": tfds.features.Image(shape=(RESOLUTION, RESOLUTION, 3))}
        features.update({name: tfds.features.ClassLabel(names=list(classes))
                         for name, classes in FACTORS.items()})
        # disable_shuffling: split order is index order, so train[i] == example(seed, i).
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict(features),
                                              disable_shuffling=True)

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        return {"train": self._generate_examples(0, cfg.num_train),
                "test": self._generate_examples(cfg.num_train, cfg.num_train + cfg.num_test)}

    def _generate_examples(self, start: int, stop: int):
        seed = self.builder_config.seed
        for index in range(start, stop):
            ex = example(seed, index)
            yield index, {"image": ex.image, **ex.labels}


def load_tfds_shapes(split: str = "train", config: str = "default",
                data_dir: str | Path | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All images [N, 32, 32, 3] uint8 and labels {factor: [N] int} of a split (built if needed)."""
    builder = Shapes(config=config, data_dir=None if data_dir is None else str(data_dir))
    try:
        builder.download_and_prepare()
    except Exception:  # another process built it at the same time and renamed it in first
        builder = Shapes(config=config, data_dir=None if data_dir is None else str(data_dir))
        if not Path(builder.data_dir).is_dir():
            raise
    data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))
    labels = {name: np.asarray(data[name], np.int64) for name in FACTORS}
    return np.asarray(data["image"]), labels
