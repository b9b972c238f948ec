"""Training one level: mixture, mapper M_l, classifier C_l and W critic D_l (``docs/method.md``).

Per step ``t`` (all randomness from ``fold_in(seed, t)``, drawn for the global
batch and sharded over the devices; gradients averaged with ``pmean``):

1. ``critic_steps`` critic updates, WGAN-GP: ``E[D(M(z_k))] - E[D(f(z))] + gp * GP``.
2. One joint update of the generator side (mixture and mapper) and the classifier
   from one synthesis pass: images take ``M_l(z_k)`` on the level's inputs and
   ``f(z')`` elsewhere (the last input always ``f(z')``);
   generator side: ``-E[D(M(z_k))] + beta * CE(C(x), k)`` (C held fixed),
   classifier: ``CE(C(x), k)`` (x held fixed).

The generator is frozen; its synthesis uses constant noise.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlss_jax.method.config import MLSSConfig
from mlss_jax.method.levels import LevelSplit
from mlss_jax.method.models import (LevelModel, WCritic, apply_mapper, classifier_module, compose_ws,
                                    init_mixture, sample_mixture, save_cluster_grid)
from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.generator import Generator
from mlss_jax.runtime import distributed, parallel
from mlss_jax.runtime.parallel import REPLICATED, SHARDED, check_batch, data_mesh

def _adam(config: MLSSConfig, lr: float) -> optax.GradientTransformation:
    return optax.adam(lr, b1=config.adam_beta1, b2=config.adam_beta2)


def _generator_optimizer(config: MLSSConfig) -> optax.GradientTransformation:
    return optax.multi_transform({"mixture": _adam(config, config.mixture_lr),
                                  "mapper": _adam(config, config.mapper_lr)},
                                 {"mixture": "mixture", "mapper": "mapper"})


def init_level_state(config: MLSSConfig, g_cfg: GeneratorConfig, g_vars: dict) -> dict:
    """Mixture, mapper (f's weights or fresh), critic, classifier and their Adam states."""
    k_mix, k_map, k_critic, k_cls = jax.random.split(jax.random.PRNGKey(config.seed), 4)
    mixture = init_mixture(k_mix, config.num_clusters, g_cfg.z_dim, config.sigma_init)
    if config.init_mapper_from_f:
        mapper = jax.tree_util.tree_map(jnp.array, g_vars["params"]["mapping"])
    else:
        mapper = Generator(g_cfg).init({"params": k_map}, jnp.zeros((1, g_cfg.z_dim)),
                                       noise_mode="none")["params"]["mapping"]
    critic = WCritic(config.critic_hidden, config.critic_layers).init(
        k_critic, jnp.zeros((1, g_cfg.w_dim)))["params"]
    probe = (jnp.zeros((1, g_cfg.resolution, g_cfg.resolution, g_cfg.img_channels))
             if config.classifier == "image" else jnp.zeros((1, g_cfg.w_dim)))
    classifier = classifier_module(config).init(k_cls, probe)["params"]
    generator_side = {"mixture": mixture, "mapper": mapper}
    return {"gen": generator_side, "critic": critic, "classifier": classifier,
            "gen_opt": _generator_optimizer(config).init(generator_side),
            "critic_opt": _adam(config, config.learning_rate).init(critic),
            "classifier_opt": _adam(config, config.learning_rate).init(classifier)}



def make_level_step(config: MLSSConfig, g_cfg: GeneratorConfig,
                    mesh: jax.sharding.Mesh | None = None) -> Callable:
    """``step_fn(state, g_vars, step) -> (state, metrics)``, jitted and data-parallel."""
    mesh = mesh if mesh is not None else data_mesh()
    num_devices = mesh.devices.size
    check_batch(config.batch_size, num_devices)
    split = LevelSplit.parse(config.split, g_cfg.num_ws)
    level_range = split.range(config.level)
    generator = Generator(g_cfg)
    critic_net = WCritic(config.critic_hidden, config.critic_layers)
    classifier_net = classifier_module(config)
    critic_opt = _adam(config, config.learning_rate)
    classifier_opt = _adam(config, config.learning_rate)
    gen_opt = _generator_optimizer(config)
    pmean = functools.partial(jax.lax.pmean, axis_name="data")
    n, z_dim = config.batch_size, g_cfg.z_dim

    def f_w(g_vars, z):
        return generator.apply(g_vars, z, method=Generator.map_latents)

    def critic_loss(critic, real_w, fake_w, alpha):
        score = lambda w: critic_net.apply({"params": critic}, w)
        mix = alpha * real_w + (1.0 - alpha) * fake_w
        grads = jax.vmap(jax.grad(lambda w: score(w[None])[0]))(mix)
        gp = jnp.mean(jnp.square(jnp.sqrt(jnp.sum(jnp.square(grads), axis=-1) + 1e-12) - 1.0))
        distance = jnp.mean(score(real_w)) - jnp.mean(score(fake_w))
        return -distance + config.gp_weight * gp, (distance, gp)

    def local_step(state, g_vars, critic_batches, gen_batch):
        critic, c_opt = state["critic"], state["critic_opt"]
        for batch in critic_batches:
            z_k = sample_mixture(state["gen"]["mixture"], batch["clusters"], batch["eps"])
            fake_w = jax.lax.stop_gradient(apply_mapper(g_cfg, state["gen"]["mapper"], z_k))
            real_w = f_w(g_vars, batch["z_real"])[:, 0]
            (_, (distance, gp)), grads = jax.value_and_grad(critic_loss, has_aux=True)(
                critic, real_w, fake_w, batch["alpha"])
            updates, c_opt = critic_opt.update(pmean(grads), c_opt)
            critic = optax.apply_updates(critic, updates)

        clusters = gen_batch["clusters"]
        f_ws = f_w(g_vars, gen_batch["z_other"])

        def joint_loss(gen, classifier):
            z_k = sample_mixture(gen["mixture"], clusters, gen_batch["eps"])
            level_w = apply_mapper(g_cfg, gen["mapper"], z_k)
            adversarial = -jnp.mean(critic_net.apply({"params": critic}, level_w))
            if config.classifier == "image":
                ws = compose_ws(f_ws, level_w, level_range)
                x = generator.apply(g_vars, ws, "const", method=Generator.synthesize)
            else:
                x = level_w
            logits_for_gen = classifier_net.apply({"params": jax.lax.stop_gradient(classifier)}, x)
            logits_for_cls = classifier_net.apply({"params": classifier}, jax.lax.stop_gradient(x))
            ce_gen = optax.softmax_cross_entropy_with_integer_labels(logits_for_gen, clusters).mean()
            ce_cls = optax.softmax_cross_entropy_with_integer_labels(logits_for_cls, clusters).mean()
            accuracy = jnp.mean(jnp.argmax(logits_for_cls, -1) == clusters)
            total = adversarial + config.beta * ce_gen + ce_cls
            return total, (adversarial, ce_gen, accuracy)

        (_, (adversarial, ce, accuracy)), (gen_grads, cls_grads) = jax.value_and_grad(
            joint_loss, argnums=(0, 1), has_aux=True)(state["gen"], state["classifier"])
        gen_updates, g_opt = gen_opt.update(pmean(gen_grads), state["gen_opt"])
        cls_updates, cl_opt = classifier_opt.update(pmean(cls_grads), state["classifier_opt"])
        new_state = {"gen": optax.apply_updates(state["gen"], gen_updates),
                     "critic": critic, "classifier": optax.apply_updates(state["classifier"], cls_updates),
                     "gen_opt": g_opt, "critic_opt": c_opt, "classifier_opt": cl_opt}
        metrics = {"wasserstein": distance, "gp": gp, "adversarial": adversarial,
                   "classification": ce, "accuracy": accuracy,
                   "sigma": jnp.mean(jnp.exp(new_state["gen"]["mixture"]["log_sigma"]))}
        return new_state, pmean(metrics)

    def draw(key, critic_batch: bool):
        k1, k2, k3 = jax.random.split(key, 3)
        batch = {"clusters": jax.random.randint(k1, (n,), 0, config.num_clusters),
                 "eps": jax.random.normal(k2, (n, z_dim))}
        if critic_batch:
            k3, k4 = jax.random.split(k3)
            batch["z_real"] = jax.random.normal(k3, (n, z_dim))
            batch["alpha"] = jax.random.uniform(k4, (n, 1))
        else:
            batch["z_other"] = jax.random.normal(k3, (n, z_dim))
        return batch

    sharded = jax.shard_map(local_step, mesh=mesh,
                            in_specs=(REPLICATED, REPLICATED, SHARDED, SHARDED),
                            out_specs=(REPLICATED, REPLICATED), check_vma=False)

    @functools.partial(jax.jit, donate_argnums=0)
    def step_fn(state, g_vars, step):
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(config.seed), step),
                                config.critic_steps + 1)
        critic_batches = [draw(k, True) for k in keys[:-1]]
        return sharded(state, g_vars, critic_batches, draw(keys[-1], False))

    return step_fn


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
    import time

    from mlss_jax.weights.load import load_generator
    from mlss_jax.runtime.loop import run_training_loop
    from mlss_jax.runtime.run_state import open_run, releasing

    generator = generator if generator is not None else load_generator(generator_path)
    g_cfg, g_vars = generator.config, generator.variables
    split = LevelSplit.parse(config.split, g_cfg.num_ws)
    run_config = {"mlss": config.to_dict(), "level_range": list(split.range(config.level)),
                  "generator_path": str(generator_path), "generator": g_cfg.to_dict(),
                  "generator_sha256": generator.weights_sha256}
    mesh = mesh if mesh is not None else data_mesh()
    run_dir, checkpointer, start, state = open_run(
        run_dir, run_config, resume,
        # a run from before the weights' digest was recorded resumes (train.py checks the digest)
        ("mlss.steps", "mlss.checkpoint_every", "mlss.log_every", "generator_sha256"),
        init_level_state(config, g_cfg, g_vars), force, mesh)
    previews = run_dir / "previews"
    if distributed.is_main():
        previews.mkdir(exist_ok=True)
    step_fn = make_level_step(config, g_cfg, mesh)
    g_vars_on_mesh = parallel.replicate(g_vars, mesh)

    def preview(state: dict, step: int) -> None:  # process 0, on its own devices
        save_cluster_grid(previews / f"clusters-{step:06d}.png", config, g_cfg, g_vars,
                          parallel.to_host(state["gen"]))

    t0 = time.perf_counter()
    # the lock is released when training ends; a new run that fails before its first
    # checkpoint leaves nothing behind
    with releasing(checkpointer):
        state = run_training_loop(
            state=state, start=start, steps=config.steps,
            step_fn=lambda st, step: step_fn(st, g_vars_on_mesh, np.int32(step)),
            checkpointer=checkpointer, run_dir=run_dir, log_every=config.log_every,
            snapshot_every=config.checkpoint_every, on_snapshot=preview,
            postfix=("wasserstein", "classification", "accuracy"), desc=f"train {config.level}",
            progress=progress, items_per_step=config.batch_size, deadline=deadline,
            work="level training")
    seconds = time.perf_counter() - t0
    final = max(start, config.steps)
    done = final - start
    host = parallel.to_host(state)
    return LevelRunResult(run_dir, final, seconds, done / seconds if done else 0.0,
                          previews / f"clusters-{final:06d}.png",
                          LevelModel(config, g_cfg, split, final, host["gen"], host["classifier"]))
