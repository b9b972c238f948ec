"""The demo world as the rest of the package sees it: its bundled assets, one test of whether a
run is in it, and one predictor of its ground-truth factors.

The demo world is the ``shapes`` dataset (32x32 RGB, factors at three levels) and generators
trained on it. Only there does the factor classifier know the truth, so factor faithfulness,
the NMI table and the demo feature network apply only there.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlss_jax.demo.shapes import (DATASET, DEFAULT_WORLD, FACTORS, RESOLUTION, WORLDS,
                                  is_shapes_name, parse_shapes_name)

if TYPE_CHECKING:  # the classifier pulls in JAX; scripts import this module before parsing flags
    from mlss_jax.demo.factor_classifier import ClassifierConfig

ASSETS = Path(__file__).resolve().parents[2] / "assets"
DEMO_PICKLE = ASSETS / "demo" / "stylegan2-shapes-32.pkl"   # TF-format pickle, our exporter
# its trained levels, inference-only (tools/bundle_levels.py): the explorer's default
DEMO_LEVELS = ASSETS / "demo-levels"
# each world's bundled factor classifier (tools/train_factor_classifier.py --world N)
FACTOR_CLASSIFIERS = {world: ASSETS / f"factor_classifier-world{world}" for world in WORLDS}
FACTOR_CLASSIFIER = FACTOR_CLASSIFIERS[DEFAULT_WORLD]   # the default world's


def is_demo_world(real: str | None = None, image_shape: tuple[int, ...] | None = None) -> bool:
    """Whether a run is in the demo world.

    ``real`` names the run's real images (a tfds name such as ``shapes/tiny`` or
    ``shapes/tiny:2.0.0``, or a folder): the demo world when it is the ``shapes`` dataset.
    Without real images (projection of generated targets), ``image_shape`` (H, W, C) of the
    generator's images decides: the factor classifier applies to 32x32 RGB.
    """
    if real is not None:
        return is_shapes_name(real)
    return tuple(image_shape or ()) == (RESOLUTION, RESOLUTION, 3)


@dataclasses.dataclass(frozen=True)
class FactorPredictor:
    """The factor classifier with its weights: uint8 images [N, 32, 32, 3] in, per factor out."""

    config: ClassifierConfig
    params: dict

    @property
    def world(self) -> int:
        """The shapes world version the classifier was trained on."""
        return self.config.world

    @property
    def factors(self) -> dict[str, tuple[str, ...]]:
        return self.config.factors

    def probabilities(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """{factor: class probabilities [N, classes]}."""
        from mlss_jax.demo.factor_classifier import predict

        return predict(self.config, self.params, images)

    def labels(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """{factor: predicted class index [N]}."""
        return {k: p.argmax(-1) for k, p in self.probabilities(images).items()}


def real_world(real: str) -> int:
    """The shapes world a ``--real`` name of the demo world names (``shapes/tiny`` is the
    default world, ``shapes/tiny:2.0.0`` world 2)."""
    return parse_shapes_name(real)[1]


def factor_predictor(classifier_dir: str | Path | None = None) -> FactorPredictor:
    """The bundled factor classifier (or the one in ``classifier_dir``)."""
    from mlss_jax.demo.factor_classifier import load_classifier

    return FactorPredictor(*load_classifier(classifier_dir or FACTOR_CLASSIFIER))


__all__ = ["ASSETS", "DATASET", "DEMO_LEVELS", "DEMO_PICKLE", "FACTOR_CLASSIFIER",
           "FACTOR_CLASSIFIERS", "FACTORS", "FactorPredictor", "factor_predictor", "is_demo_world",
           "real_world"]
