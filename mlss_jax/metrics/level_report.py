"""What each trained level's clusters capture: C_l's accuracy at recovering the cluster k, and
the normalised mutual information between k and every ground-truth factor of the images.

Samples draw k uniformly and the other levels' latents at random
(:meth:`mlss_jax.method.models.LevelModel.draw`), so a level whose clusters control shape shows
high NMI with shape and none with hue. The factors are read off the uint8 images by ``factors``
(on the demo world, the factor classifier).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from mlss_jax.batching import map_in_batches
from mlss_jax.method.models import LevelModel, classifier_accuracy
from mlss_jax.metrics.nmi import normalized_mutual_information
from mlss_jax.networks.generator import to_uint8
from mlss_jax.networks.stylegan2 import StyleGAN2Generator

Factors = Callable[[np.ndarray], dict[str, np.ndarray]]


def level_images(generator: StyleGAN2Generator, model: LevelModel, num: int, seed: int,
                 batch_size: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """``num`` samples of the level from ``seed``: their clusters [N] and uint8 images."""
    clusters, eps, z_other = model.draw(np.random.default_rng(seed), num)
    images = map_in_batches(
        lambda c, e, z: to_uint8(model.sample(generator.variables, c, e, z)[1]),
        batch_size, clusters, eps, z_other)
    return clusters, images


def level_row(generator: StyleGAN2Generator, model: LevelModel, factors: Factors,
              factor_names: tuple[str, ...], num: int, seed: int) -> dict:
    """One level's row: its inputs, K, step, C_l's accuracy (on samples of ``seed + 1``) and
    the NMI of k with each factor (on samples of ``seed``)."""
    clusters, images = level_images(generator, model, num, seed)
    labels = factors(images)
    nmi = {name: normalized_mutual_information(clusters, labels[name]) for name in factor_names}
    accuracy = classifier_accuracy(model, generator.variables, num, seed=seed + 1)
    return {"level": model.config.level, "ws": list(model.level_range),
            "clusters": model.config.num_clusters, "step": model.step,
            "classifier_accuracy": accuracy, "nmi": nmi}


def markdown_table(rows: list[dict], factor_names: tuple[str, ...]) -> list[str]:
    """The rows as a Markdown table, each level's largest NMI in bold."""
    lines = ["| level | ws | C_l accuracy | " + " | ".join(factor_names) + " |",
             "|---|---|---:|" + "---:|" * len(factor_names)]
    for r in rows:
        best = max(r["nmi"].values())
        cells = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in r["nmi"].values()]
        lines.append(f"| {r['level']} | {r['ws'][0]}:{r['ws'][1]} | {r['classifier_accuracy']:.3f} | "
                     + " | ".join(cells) + " |")
    return lines
