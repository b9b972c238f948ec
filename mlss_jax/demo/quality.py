"""Ground truth for generated images of the demo world, from the factor classifier.

The demo generator's quality bar (issue 3): most samples are confidently one
class of every factor, and each factor's class frequencies match the data's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlss_jax.demo.shapes import FACTORS


def class_frequencies(labels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per factor, the share of each class: {factor: [classes]} summing to 1."""
    return {k: np.bincount(np.asarray(labels[k]), minlength=len(FACTORS[k])) / max(len(labels[k]), 1)
            for k in FACTORS}


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
    """

    num_samples: int
    threshold: float
    confident_share: float
    confident_share_per_factor: dict[str, float]
    generated_frequencies: dict[str, np.ndarray]
    data_frequencies: dict[str, np.ndarray]
    total_variation: dict[str, float]

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for key in ("generated_frequencies", "data_frequencies"):
            out[key] = {k: [round(float(x), 4) for x in v] for k, v in out[key].items()}
        return out

    def table(self) -> list[str]:
        """Markdown: per factor and class, generated vs data share; TV distance per factor."""
        lines = ["| factor | class | generated | data |", "|---|---|---:|---:|"]
        for k, classes in FACTORS.items():
            for i, name in enumerate(classes):
                lines.append(f"| {k if i == 0 else ''} | {name} | "
                             f"{self.generated_frequencies[k][i]:.3f} | {self.data_frequencies[k][i]:.3f} |")
        lines += ["", "| factor | confident (>= %.1f) | total variation |" % self.threshold,
                  "|---|---:|---:|"]
        lines += [f"| {k} | {self.confident_share_per_factor[k]:.3f} | {self.total_variation[k]:.3f} |"
                  for k in FACTORS]
        lines.append(f"| **all factors** | **{self.confident_share:.3f}** | |")
        return lines


def factor_quality(generated_probs: dict[str, np.ndarray], data_labels: dict[str, np.ndarray],
                   threshold: float = 0.9) -> FactorQuality:
    """Score generated samples from their classifier probabilities {factor: [N, classes]}."""
    confident = {k: np.asarray(generated_probs[k]).max(-1) >= threshold for k in FACTORS}
    generated = class_frequencies({k: np.asarray(generated_probs[k]).argmax(-1) for k in FACTORS})
    data = class_frequencies(data_labels)
    return FactorQuality(
        num_samples=int(len(next(iter(generated_probs.values())))), threshold=threshold,
        confident_share=float(np.all(np.stack(list(confident.values())), axis=0).mean()),
        confident_share_per_factor={k: float(v.mean()) for k, v in confident.items()},
        generated_frequencies=generated, data_frequencies=data,
        total_variation={k: total_variation(generated[k], data[k]) for k in FACTORS})
