"""Ground truth for generated images of the demo world, from the factor classifier.

The demo generator's quality bar: at least ``BAR_CONFIDENT_SHARE`` of the samples are
confidently one class of every factor, each factor's class frequencies are within total
variation ``BAR_TOTAL_VARIATION`` of the data's, and at psi 1 (k = 3, the demo features)
precision is at least ``BAR_PRECISION`` and recall at least ``BAR_RECALL`` (StyleGAN2 config F
reports about 0.69 and 0.49 on FFHQ).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlss_jax.demo.shapes import DEFAULT_WORLD, world_factors

BAR_CONFIDENT_SHARE = 0.90
BAR_TOTAL_VARIATION = 0.10
BAR_PRECISION = 0.70
BAR_RECALL = 0.50


def precision_recall_shortfalls(precision: float, recall: float) -> list[str]:
    """What keeps precision and recall below the bar, a line each; none when they meet it."""
    return ([f"precision: {precision:.3f} < {BAR_PRECISION:.2f}"] if precision < BAR_PRECISION
            else []) + ([f"recall: {recall:.3f} < {BAR_RECALL:.2f}"] if recall < BAR_RECALL else [])


def class_frequencies(labels: dict[str, np.ndarray], world: int = DEFAULT_WORLD
                      ) -> dict[str, np.ndarray]:
    """Per factor of the world, the share of each class: {factor: [classes]} summing to 1."""
    return {k: np.bincount(np.asarray(labels[k]), minlength=len(classes)) / max(len(labels[k]), 1)
            for k, classes in world_factors(world).items()}


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance between two discrete distributions: 0.5 * sum |p - q|."""
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum())


@dataclasses.dataclass
class FactorQuality:
    """How well generated images carry the demo world's factors.

    Attributes:
      confident_share: share of samples with every factor's top probability >= threshold.
      confident_share_per_factor: the same, factor by factor.
      generated_frequencies, data_frequencies: class shares {factor: [classes]}.
      total_variation: per factor, the distance between the two.
      world: the shapes world version whose factors these are.
    """

    num_samples: int
    threshold: float
    confident_share: float
    confident_share_per_factor: dict[str, float]
    generated_frequencies: dict[str, np.ndarray]
    data_frequencies: dict[str, np.ndarray]
    total_variation: dict[str, float]
    world: int = DEFAULT_WORLD

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for key in ("generated_frequencies", "data_frequencies"):
            out[key] = {k: [round(float(x), 4) for x in v] for k, v in out[key].items()}
        return out

    def table(self) -> list[str]:
        """Markdown: per factor and class, generated vs data share; TV distance per factor."""
        lines = ["| factor | class | generated | data |", "|---|---|---:|---:|"]
        for k, classes in world_factors(self.world).items():
            for i, name in enumerate(classes):
                lines.append(f"| {k if i == 0 else ''} | {name} | "
                             f"{self.generated_frequencies[k][i]:.3f} | {self.data_frequencies[k][i]:.3f} |")
        lines += ["", "| factor | confident (>= %.1f) | total variation |" % self.threshold,
                  "|---|---:|---:|"]
        lines += [f"| {k} | {self.confident_share_per_factor[k]:.3f} | {self.total_variation[k]:.3f} |"
                  for k in self.total_variation]
        lines.append(f"| **all factors** | **{self.confident_share:.3f}** | |")
        return lines

    def bar_shortfalls(self) -> list[str]:
        """What keeps these samples below the quality bar, a line each; none when it is met."""
        short = []
        if self.confident_share < BAR_CONFIDENT_SHARE:
            short.append(f"all factors confident: {self.confident_share:.3f} < {BAR_CONFIDENT_SHARE:.2f}")
        short += [f"{k} total variation: {tv:.3f} > {BAR_TOTAL_VARIATION:.2f}"
                  for k, tv in self.total_variation.items() if tv > BAR_TOTAL_VARIATION]
        return short

    def comparison(self, baseline: dict) -> tuple[list[str], bool]:
        """Markdown rows against an earlier measurement (its ``quality.json``), and whether these
        samples are better on every factor: more often confident and closer to the data's
        frequencies (total variation no larger), with a larger all-factors share."""
        lines = ["| factor | confident: baseline | now | total variation: baseline | now |",
                 "|---|---:|---:|---:|---:|"]
        better = self.confident_share > baseline["confident_share"]
        for k in self.total_variation:
            was_conf = baseline["confident_share_per_factor"][k]
            was_tv = baseline["total_variation"][k]
            now_conf, now_tv = self.confident_share_per_factor[k], self.total_variation[k]
            better = better and now_conf > was_conf and now_tv <= was_tv
            lines.append(f"| {k} | {was_conf:.3f} | {now_conf:.3f} | {was_tv:.3f} | {now_tv:.3f} |")
        lines.append(f"| **all factors** | **{baseline['confident_share']:.3f}** | "
                     f"**{self.confident_share:.3f}** | | |")
        return lines, better


def factor_quality(generated_probs: dict[str, np.ndarray], data_labels: dict[str, np.ndarray],
                   threshold: float = 0.9, world: int = DEFAULT_WORLD) -> FactorQuality:
    """Score generated samples from their classifier probabilities {factor: [N, classes]}."""
    factors = world_factors(world)
    confident = {k: np.asarray(generated_probs[k]).max(-1) >= threshold for k in factors}
    generated = class_frequencies({k: np.asarray(generated_probs[k]).argmax(-1) for k in factors},
                                  world)
    data = class_frequencies(data_labels, world)
    return FactorQuality(
        num_samples=int(len(next(iter(generated_probs.values())))), threshold=threshold,
        confident_share=float(np.all(np.stack(list(confident.values())), axis=0).mean()),
        confident_share_per_factor={k: float(v.mean()) for k, v in confident.items()},
        generated_frequencies=generated, data_frequencies=data,
        total_variation={k: total_variation(generated[k], data[k]) for k in factors}, world=world)
