"""The demo world's factor classifier: a small convnet predicting every ``shapes`` factor.

Its predictions are the ground truth for generated images, and its penultimate
activations (``features``) serve as the demo feature network for precision/recall
and Frechet distance.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Iterator

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from mlss_jax.batching import map_in_batches
from mlss_jax.config import check_finite, check_positive
from mlss_jax.demo.shapes import DEFAULT_WORLD, check_world, world_factors
from mlss_jax.weights.checkpoint import load_params, load_params_meta, save_params_folder


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """Architecture and training of the factor classifier.

    Attributes:
      width: channels of the first conv stage (doubled at each of three stages).
      feature_dim: size of the penultimate (feature) layer.
      learning_rate: Adam step.
      batch_size: images per step.
      steps: training steps.
      seed: initialisation and batch order.
      world: the shapes world version whose factors it reads (its heads follow them).
    """

    width: int = 32
    feature_dim: int = 128
    learning_rate: float = 1e-3
    batch_size: int = 64
    steps: int = 2500
    seed: int = 0
    world: int = DEFAULT_WORLD

    def __post_init__(self) -> None:
        check_finite(self)
        check_positive(self, ("width", "feature_dim", "learning_rate", "batch_size", "steps"))
        check_world(self.world)

    @property
    def factors(self) -> dict[str, tuple[str, ...]]:
        return world_factors(self.world)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class FactorClassifier(nn.Module):
    """images [N, 32, 32, 3] in [-1, 1] -> ({factor: logits [N, classes]}, features [N, D])."""

    width: int = 32
    feature_dim: int = 128
    world: int = DEFAULT_WORLD

    @nn.compact
    def __call__(self, images: jax.Array) -> tuple[dict[str, jax.Array], jax.Array]:
        x = images
        for stage in range(3):
            channels = self.width * 2 ** stage
            x = nn.relu(nn.Conv(channels, (3, 3), name=f"conv{stage}a")(x))
            x = nn.relu(nn.Conv(channels, (3, 3), name=f"conv{stage}b")(x))
            x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        features = nn.relu(nn.Dense(self.feature_dim, name="features")(x.reshape(x.shape[0], -1)))
        logits = {name: nn.Dense(len(classes), name=f"head_{name}")(features)
                  for name, classes in world_factors(self.world).items()}
        return logits, features


def _model(config: ClassifierConfig) -> FactorClassifier:
    return FactorClassifier(config.width, config.feature_dim, config.world)


def init_params(config: ClassifierConfig, rng: jax.Array) -> dict:
    return _model(config).init(rng, jnp.zeros((1, 32, 32, 3)))["params"]


def to_model_input(images_uint8: np.ndarray | jax.Array) -> jax.Array:
    """uint8 images -> float32 in [-1, 1], the generator's range."""
    return jnp.asarray(images_uint8, jnp.float32) / 127.5 - 1.0


@functools.partial(jax.jit, static_argnames=("config",))
def classify(config: ClassifierConfig, params: dict, images: jax.Array
             ) -> tuple[dict[str, jax.Array], jax.Array]:
    """Pure, jitted: images in [-1, 1] -> ({factor: probabilities}, features)."""
    logits, features = _model(config).apply({"params": params}, images)
    return {k: jax.nn.softmax(v) for k, v in logits.items()}, features


def _loss(config: ClassifierConfig, params: dict, images: jax.Array,
          labels: dict[str, jax.Array]) -> jax.Array:
    logits, _ = _model(config).apply({"params": params}, images)
    return sum(optax.softmax_cross_entropy_with_integer_labels(logits[k], labels[k]).mean()
               for k in config.factors)


def _batches(num: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    while True:
        order = rng.permutation(num)
        for start in range(0, num - batch_size + 1, batch_size):
            yield order[start:start + batch_size]


def train_classifier(config: ClassifierConfig, images: np.ndarray,
                     labels: dict[str, np.ndarray], progress: bool = True) -> dict:
    """Train on uint8 images and integer labels; returns the parameters."""
    params = init_params(config, jax.random.PRNGKey(config.seed))
    optimizer = optax.adam(config.learning_rate)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, images, labels):
        loss, grads = jax.value_and_grad(functools.partial(_loss, config))(
            params, to_model_input(images), labels)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    batches = _batches(len(images), config.batch_size, np.random.default_rng(config.seed))
    bar = tqdm(range(config.steps), desc="classifier", disable=None if progress else True)
    for i in bar:
        idx = next(batches)
        params, opt_state, loss = step(params, opt_state, images[idx],
                                       {k: v[idx] for k, v in labels.items()})
        if i % 100 == 0:
            bar.set_postfix(loss=f"{float(loss):.4f}")
    return params


def predict(config: ClassifierConfig, params: dict, images_uint8: np.ndarray,
            batch_size: int = 1000) -> dict[str, np.ndarray]:
    """Class probabilities {factor: [N, classes]} of uint8 images, in batches."""
    probs = map_in_batches(lambda x: classify(config, params, to_model_input(x))[0], batch_size,
                           images_uint8)
    return {k: probs[k] for k in config.factors}


def accuracy(config: ClassifierConfig, params: dict, images: np.ndarray,
             labels: dict[str, np.ndarray]) -> dict[str, float]:
    """Per-factor accuracy, plus ``all``: the share of images with every factor right."""
    probs = predict(config, params, images)
    correct = {k: probs[k].argmax(-1) == labels[k] for k in config.factors}
    result = {k: float(v.mean()) for k, v in correct.items()}
    result["all"] = float(np.all(np.stack(list(correct.values())), axis=0).mean())
    return result


def save_classifier(directory: str | Path, config: ClassifierConfig, params: dict,
                    report: dict) -> Path:
    """Write params (flax msgpack), config and the accuracy report to ``directory``."""
    return save_params_folder(directory, params, {"config": config.to_dict(),
                                                  "factors": config.factors, "report": report})


def load_classifier_config(directory: str | Path) -> ClassifierConfig:
    """The config of the classifier saved in ``directory`` (its world, among others)."""
    saved = load_params_meta(directory, "factor classifier")["config"]
    # a classifier saved before the world was recorded was trained on world 1, the only one then
    return ClassifierConfig(**{"world": 1, **saved})


def load_classifier(directory: str | Path) -> tuple[ClassifierConfig, dict]:
    config = load_classifier_config(directory)
    return config, load_params(directory, "factor classifier",
                               lambda: init_params(config, jax.random.PRNGKey(0)))
