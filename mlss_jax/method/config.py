"""The settings of one level's training (``train.py``'s flags)."""

from __future__ import annotations

import dataclasses
from typing import Any

from mlss_jax.errors import ConfigError
from mlss_jax.config import (check_at_least, check_choice, check_finite, check_non_negative,
                             check_positive, check_seed, choices)
from mlss_jax.method.levels import LEVELS, LevelSplit

CLASSIFIER_DOMAINS = ("image", "latent")


@dataclasses.dataclass(frozen=True)
class MLSSConfig:
    """Settings of one level's training. The paper leaves all of these open; see docs/method.md.

    Attributes:
      level: coarse, medium or fine.
      num_clusters: K, Gaussians in the level's mixture.
      beta: weight of the classification loss for the mixture and mapper.
      learning_rate: Adam step of critic and classifier.
      mixture_lr: Adam step of the mixture's means and log standard deviations.
      mapper_lr: Adam step of M_l's raw weights (they run through f's lr multiplier 0.01, as
        in StyleGAN2).
      adam_beta1: Adam's first-moment decay, for every optimiser.
      adam_beta2: Adam's second-moment decay, for every optimiser.
      critic_steps: critic updates per generator step.
      gp_weight: WGAN-GP gradient-penalty weight.
      batch_size: global batch (split over devices).
      steps: generator steps.
      split: level boundaries "b1,b2" (None: the default for the generator's num_ws).
      classifier: 'image' (C_l sees g(ws)) or 'latent' (C_l sees w_l).
      classifier_resolution: images are average-pooled to at most this size for C_l.
      init_mapper_from_f: start M_l from f's weights (else a fresh init).
      sigma_init: initial std of every Gaussian (means start at draws from N(0, I)).
      critic_hidden: units of each hidden layer of the W critic.
      critic_layers: hidden layers of the W critic.
      seed: everything random derives from it and the step number.
      checkpoint_every: steps between checkpoints (each also draws a cluster-grid preview).
      log_every: steps between log lines (and NaN checks).
    """

    level: str = choices(*LEVELS, default="fine")
    num_clusters: int = 10
    beta: float = 10.0
    learning_rate: float = 3e-4
    mixture_lr: float = 1e-2
    mapper_lr: float = 1e-2
    adam_beta1: float = 0.5
    adam_beta2: float = 0.9
    critic_steps: int = 1
    gp_weight: float = 10.0
    batch_size: int = 64
    steps: int = 2000
    split: str | None = None
    classifier: str = choices(*CLASSIFIER_DOMAINS, default="image")
    classifier_resolution: int = 64
    init_mapper_from_f: bool = True
    sigma_init: float = 0.5
    critic_hidden: int = 512
    critic_layers: int = 3
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 25

    def __post_init__(self) -> None:
        check_choice(self, "level", LEVELS)
        check_choice(self, "classifier", CLASSIFIER_DOMAINS)
        check_finite(self)
        check_positive(self, ("batch_size", "steps", "critic_steps", "classifier_resolution",
                              "critic_hidden", "critic_layers", "checkpoint_every", "log_every",
                              "learning_rate", "mixture_lr", "mapper_lr", "sigma_init"))
        check_at_least(self, "num_clusters", 2)
        check_seed(self)
        check_non_negative(self, ("beta", "gp_weight"))
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if self.split is not None:
            LevelSplit.boundaries_of(self.split)
        # split is checked against the generator's number of inputs, which is known only there

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


