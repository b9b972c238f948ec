"""Training one level: mixture, mapper M_l, classifier C_l and W critic D_l (``docs/method.md``).

Per step ``t`` (all randomness from ``fold_in(seed, t)``, drawn for the global
batch and sharded over the devices; gradients averaged with ``pmean``):

1. ``critic_steps`` critic updates, WGAN-GP: ``E[D(M(z_k))] - E[D(f(z))] + gp * GP``.
2. One joint update of the generator side (mixture and mapper) and the classifier
   from one synthesis pass: images take ``M_l(z_k)`` on the level's inputs and
   ``f(z')`` elsewhere (the last input always ``f(z')``);
   generator side: ``-E[D(M(z_k))] + beta * CE(C(x), k)`` (C held fixed),
   classifier: ``CE(C(x), k)`` (x held fixed), both from one classifier pass.

The generator is frozen; its synthesis uses constant noise. The losses are top-level pure
functions; :func:`train_step` is the jitted step over a :class:`LevelTrainState`, which carries
the level's optimisers.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from mlss_jax.method.config import MLSSConfig
from mlss_jax.method.levels import LevelSplit
from mlss_jax.method.models import (LevelModel, WCritic, apply_mapper, classifier_module, compose_ws,
                                    init_mixture, sample_mixture, save_cluster_grid)
from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.generator import Generator
from mlss_jax.runtime import distributed, parallel
from mlss_jax.runtime.parallel import REPLICATED, SHARDED, check_batch, data_mesh
from mlss_jax.runtime.train_state import optimizer_step, pmean
from mlss_jax.runtime.training_run import training_run

# ---- the level's networks, as the config builds them ----------------------------------


def critic_net(config: MLSSConfig) -> WCritic:
    """D_l, the W critic of the config's size."""
    return WCritic(config.critic_hidden, config.critic_layers)


def level_range(config: MLSSConfig, g_cfg: GeneratorConfig) -> tuple[int, int]:
    """The generator inputs the level drives, ``(start, stop)``."""
    return LevelSplit.parse(config.split, g_cfg.num_ws).range(config.level)


def _f_ws(g_cfg: GeneratorConfig, g_vars: dict, z: jax.Array) -> jax.Array:
    return Generator(g_cfg).apply(g_vars, z, method=Generator.map_latents)


# ---- the train state -----------------------------------------------------------------


class LevelOptimizers(NamedTuple):
    """One Adam per part; critic and classifier share their settings (``learning_rate``)."""

    gen: optax.GradientTransformation          # the mixture's and the mapper's own steps
    critic: optax.GradientTransformation
    classifier: optax.GradientTransformation


@functools.cache
def level_optimizers(config: MLSSConfig) -> LevelOptimizers:
    """The level's optimisers, built once per config: the train state carries them as static
    data, so two states of one config (a fresh one and a restored one) have one structure."""
    adam = lambda lr: optax.adam(lr, b1=config.adam_beta1, b2=config.adam_beta2)
    gen = optax.multi_transform({"mixture": adam(config.mixture_lr), "mapper": adam(config.mapper_lr)},
                                {"mixture": "mixture", "mapper": "mapper"})
    shared = adam(config.learning_rate)
    return LevelOptimizers(gen=gen, critic=shared, classifier=shared)


@struct.dataclass
class LevelTrainState:
    """One level's networks and their Adam states, with the optimisers that update them.

    The optimisers are static (not leaves), so a checkpoint holds the six parameter and Adam
    trees under these field names (the layout of the run directories written before).
    """

    gen: dict             # {"mixture": {"mu", "log_sigma"}, "mapper": f-shaped params}
    critic: dict
    classifier: dict
    gen_opt: optax.OptState
    critic_opt: optax.OptState
    classifier_opt: optax.OptState
    tx: LevelOptimizers = struct.field(pytree_node=False)

    def update_critic(self, grads: dict) -> LevelTrainState:
        critic, critic_opt = optimizer_step(self.tx.critic, self.critic, self.critic_opt, grads)
        return self.replace(critic=critic, critic_opt=critic_opt)

    def update_gen_and_classifier(self, gen_grads: dict, classifier_grads: dict
                                  ) -> LevelTrainState:
        gen, gen_opt = optimizer_step(self.tx.gen, self.gen, self.gen_opt, gen_grads)
        classifier, classifier_opt = optimizer_step(self.tx.classifier, self.classifier,
                                                    self.classifier_opt, classifier_grads)
        return self.replace(gen=gen, gen_opt=gen_opt, classifier=classifier,
                            classifier_opt=classifier_opt)


def init_level_state(config: MLSSConfig, g_cfg: GeneratorConfig, g_vars: dict) -> LevelTrainState:
    """Mixture, mapper (f's weights or fresh), critic, classifier and their Adam states."""
    k_mix, k_map, k_critic, k_cls = jax.random.split(jax.random.PRNGKey(config.seed), 4)
    mixture = init_mixture(k_mix, config.num_clusters, g_cfg.z_dim, config.sigma_init)
    if config.init_mapper_from_f:
        mapper = jax.tree_util.tree_map(jnp.array, g_vars["params"]["mapping"])
    else:
        mapper = Generator(g_cfg).init({"params": k_map}, jnp.zeros((1, g_cfg.z_dim)),
                                       noise_mode="none")["params"]["mapping"]
    critic = critic_net(config).init(k_critic, jnp.zeros((1, g_cfg.w_dim)))["params"]
    probe = (jnp.zeros((1, g_cfg.resolution, g_cfg.resolution, g_cfg.img_channels))
             if config.classifier == "image" else jnp.zeros((1, g_cfg.w_dim)))
    classifier = classifier_module(config).init(k_cls, probe)["params"]
    gen = {"mixture": mixture, "mapper": mapper}
    tx = level_optimizers(config)
    return LevelTrainState(gen=gen, critic=critic, classifier=classifier,
                           gen_opt=tx.gen.init(gen), critic_opt=tx.critic.init(critic),
                           classifier_opt=tx.classifier.init(classifier), tx=tx)


# ---- the losses ----------------------------------------------------------------------


def gradient_penalty(score: Callable[[jax.Array], jax.Array], real_w: jax.Array,
                     fake_w: jax.Array, alpha: jax.Array) -> jax.Array:
    """WGAN-GP: mean ``(|dD/dw| - 1)^2`` at the interpolates ``alpha real + (1 - alpha) fake``.

    ``score`` maps w [N, w_dim] to [N]; ``alpha`` is [N, 1].
    """
    mix = alpha * real_w + (1.0 - alpha) * fake_w
    grads = jax.vmap(jax.grad(lambda w: score(w[None])[0]))(mix)
    # the 1e-12 keeps the norm's gradient finite where the critic's gradient vanishes
    return jnp.mean(jnp.square(jnp.sqrt(jnp.sum(jnp.square(grads), axis=-1) + 1e-12) - 1.0))


def critic_loss(score: Callable[[jax.Array], jax.Array], real_w: jax.Array, fake_w: jax.Array,
                alpha: jax.Array, gp_weight: float) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """WGAN-GP critic loss ``E[D(fake)] - E[D(real)] + gp_weight * GP``, with
    ``(E[D(real)] - E[D(fake)], GP)``: the Wasserstein estimate and the penalty."""
    gp = gradient_penalty(score, real_w, fake_w, alpha)
    distance = jnp.mean(score(real_w)) - jnp.mean(score(fake_w))
    return -distance + gp_weight * gp, (distance, gp)


def cluster_cross_entropy(logits: jax.Array, clusters: jax.Array) -> jax.Array:
    """Mean cross-entropy of C_l's logits [N, K] against the clusters drawn [N]."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, clusters).mean()


def scale_gradient(x: jax.Array, scale: float) -> jax.Array:
    """``x`` unchanged, with the gradient that reaches it multiplied by ``scale``.

    The forward value is exact: for finite x, ``x - stop_gradient(x)`` is 0.
    """
    return jax.lax.stop_gradient(x) + scale * (x - jax.lax.stop_gradient(x))


def joint_loss(config: MLSSConfig, g_cfg: GeneratorConfig, gen: dict, classifier: dict,
               critic: dict, g_vars: dict, batch: dict, f_ws: jax.Array
               ) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
    """The mixture's, mapper's and classifier's loss, with ``(adversarial, CE, accuracy)``.

    Its gradient in ``gen`` is that of ``-E[D(M_l(z_k))] + beta * CE(C_l(x), k)`` with C_l
    held fixed, and in ``classifier`` that of ``CE(C_l(x), k)`` with x held fixed. One
    classifier pass gives both: x enters C_l through :func:`scale_gradient` by ``beta``, and
    the classifier's parameters get CE's gradient once.
    """
    level_w = apply_mapper(g_cfg, gen["mapper"], sample_mixture(gen["mixture"], batch["clusters"],
                                                                batch["eps"]))
    adversarial = -jnp.mean(critic_net(config).apply({"params": critic}, level_w))
    if config.classifier == "image":
        ws = compose_ws(f_ws, level_w, level_range(config, g_cfg))
        x = Generator(g_cfg).apply(g_vars, ws, "const", method=Generator.synthesize)
    else:
        x = level_w
    logits = classifier_module(config).apply({"params": classifier}, scale_gradient(x, config.beta))
    ce = cluster_cross_entropy(logits, batch["clusters"])
    accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["clusters"])
    return adversarial + ce, (adversarial, ce, accuracy)


# ---- one step --------------------------------------------------------------------------


def critic_update(config: MLSSConfig, g_cfg: GeneratorConfig, state: LevelTrainState,
                  g_vars: dict, batch: dict) -> tuple[LevelTrainState, tuple[jax.Array, jax.Array]]:
    """One critic step on this device's share of ``batch``; gradients averaged over devices."""
    z_k = sample_mixture(state.gen["mixture"], batch["clusters"], batch["eps"])
    fake_w = jax.lax.stop_gradient(apply_mapper(g_cfg, state.gen["mapper"], z_k))
    real_w = _f_ws(g_cfg, g_vars, batch["z_real"])[:, 0]

    def loss(critic: dict):
        score = lambda w: critic_net(config).apply({"params": critic}, w)
        return critic_loss(score, real_w, fake_w, batch["alpha"], config.gp_weight)

    (_, (distance, gp)), grads = jax.value_and_grad(loss, has_aux=True)(state.critic)
    return state.update_critic(pmean(grads)), (distance, gp)


def local_step(config: MLSSConfig, g_cfg: GeneratorConfig, state: LevelTrainState, g_vars: dict,
               critic_batches: list[dict], gen_batch: dict) -> tuple[LevelTrainState, dict]:
    """One step on this device's share of the batches (inside ``shard_map``)."""
    for batch in critic_batches:
        state, (distance, gp) = critic_update(config, g_cfg, state, g_vars, batch)
    f_ws = _f_ws(g_cfg, g_vars, gen_batch["z_other"])
    (_, (adversarial, ce, accuracy)), (gen_grads, cls_grads) = jax.value_and_grad(
        joint_loss, argnums=(2, 3), has_aux=True)(config, g_cfg, state.gen, state.classifier,
                                                  state.critic, g_vars, gen_batch, f_ws)
    state = state.update_gen_and_classifier(pmean(gen_grads), pmean(cls_grads))
    metrics = {"wasserstein": distance, "gp": gp, "adversarial": adversarial,
               "classification": ce, "accuracy": accuracy,
               "sigma": jnp.mean(jnp.exp(state.gen["mixture"]["log_sigma"]))}
    return state, pmean(metrics)


def draw_batch(config: MLSSConfig, z_dim: int, key: jax.Array, for_critic: bool) -> dict:
    """The global batch of one update: clusters and noise for the mixture, and the critic's
    real latents and interpolation weights, or the other levels' latents."""
    n = config.batch_size
    k1, k2, k3 = jax.random.split(key, 3)
    batch = {"clusters": jax.random.randint(k1, (n,), 0, config.num_clusters),
             "eps": jax.random.normal(k2, (n, z_dim))}
    if for_critic:
        k3, k4 = jax.random.split(k3)
        batch["z_real"] = jax.random.normal(k3, (n, z_dim))
        batch["alpha"] = jax.random.uniform(k4, (n, 1))
    else:
        batch["z_other"] = jax.random.normal(k3, (n, z_dim))
    return batch


@functools.partial(jax.jit, static_argnums=(0, 1, 2), donate_argnums=3)
def train_step(config: MLSSConfig, g_cfg: GeneratorConfig, mesh: jax.sharding.Mesh,
               state: LevelTrainState, g_vars: dict, step: jax.Array
               ) -> tuple[LevelTrainState, dict]:
    """Step ``step`` of the level's training, data-parallel over ``mesh``.

    Every random draw comes from ``fold_in(seed, step)`` for the global batch, then is sharded,
    so a resumed run repeats an uninterrupted one. Bind the static settings with
    ``functools.partial(train_step, config, g_cfg, mesh)``.
    """
    check_batch(config.batch_size, mesh.devices.size)
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(config.seed), step),
                            config.critic_steps + 1)
    critic_batches = [draw_batch(config, g_cfg.z_dim, k, True) for k in keys[:-1]]
    gen_batch = draw_batch(config, g_cfg.z_dim, keys[-1], False)
    sharded = jax.shard_map(functools.partial(local_step, config, g_cfg), mesh=mesh,
                            in_specs=(REPLICATED, REPLICATED, SHARDED, SHARDED),
                            out_specs=(REPLICATED, REPLICATED), check_vma=False)
    return sharded(state, g_vars, critic_batches, gen_batch)


@dataclasses.dataclass
class LevelRunResult:
    run_dir: Path
    step: int
    seconds: float
    steps_per_second: float
    preview: Path
    model: LevelModel   # the trained level, as saved in its newest checkpoint


def train_level(config: MLSSConfig, generator_path: str | Path, run_dir: str | Path,
                resume: bool = False, progress: bool | None = None,
                mesh: jax.sharding.Mesh | None = None, generator=None,
                force: bool = False, deadline: float | None = None) -> LevelRunResult:
    """Train (or resume) one level against the frozen generator at ``generator_path``.

    ``generator``: that generator already loaded (``load_generator(generator_path)``),
    so that training several levels reads it once. ``force``: replace a run already in
    ``run_dir``. ``deadline``: a ``time.monotonic()`` time at which to save a checkpoint and
    preview and raise :class:`~mlss_jax.runtime.loop.TrainingPaused`.
    """
    from mlss_jax.weights.load import load_generator

    generator = generator if generator is not None else load_generator(generator_path)
    g_cfg, g_vars = generator.config, generator.variables
    split = LevelSplit.parse(config.split, g_cfg.num_ws)
    run_config = {"mlss": config.to_dict(), "level_range": list(split.range(config.level)),
                  "generator_path": str(generator_path), "generator": g_cfg.to_dict(),
                  "generator_sha256": generator.weights_sha256}
    mesh = mesh if mesh is not None else data_mesh()
    # a run from before the weights' digest was recorded resumes (train.py checks the digest)
    mutable = ("mlss.steps", "mlss.checkpoint_every", "mlss.log_every", "generator_sha256")
    with training_run(run_dir, run_config, resume, mutable, init_level_state(config, g_cfg, g_vars),
                      force, mesh) as run:
        previews = run.run_dir / "previews"
        if distributed.is_main():
            previews.mkdir(exist_ok=True)
        step_fn = functools.partial(train_step, config, g_cfg, mesh)
        g_vars_on_mesh = parallel.replicate(g_vars, mesh)

        def preview(state: LevelTrainState, step: int) -> None:  # process 0, on its own devices
            save_cluster_grid(previews / f"clusters-{step:06d}.png", config, g_cfg, g_vars,
                              parallel.to_host(state.gen))

        trained = run.train(
            run.state, config.steps, lambda st, step: step_fn(st, g_vars_on_mesh, np.int32(step)),
            log_every=config.log_every, snapshot_every=config.checkpoint_every,
            on_snapshot=preview, postfix=("wasserstein", "classification", "accuracy"),
            desc=f"train {config.level}", progress=progress, items_per_step=config.batch_size,
            deadline=deadline, work="level training")
    host = parallel.to_host(trained.state)
    return LevelRunResult(run.run_dir, trained.step, trained.seconds, trained.per_second(),
                          previews / f"clusters-{trained.step:06d}.png",
                          LevelModel(config, g_cfg, split, trained.step, host.gen, host.classifier))
