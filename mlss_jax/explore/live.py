"""The explorer's renderer: images of a :class:`~mlss_jax.explore.view_state.ViewState`, fast.

Every image the page shows comes from one chain, jitted once per batch shape:

  per level l: w_l = M_l(mu[l, k_l] + sigma[l, k_l] eps_l), truncated toward its cluster's
  centre with psi_l (multi-level truncation); the last input takes f(z) (:func:`sample_ws`);
  then toward the second sample by t on the inputs of ``il``, then the edits (weights times
  directions) on the inputs of ``l`` (:func:`view_ws`); then the generator.

Seeds become latents on the host (``networks.sampling.latents``), and clusters, strengths,
seeds' latents and edit weights enter the jitted functions as arrays, so moving a slider never
compiles anything: only the three batch shapes (one frame, four methods, a level's clusters) do,
once, in :meth:`Explorer.warm_up`.

A level's cluster is a Gaussian in W here: the mean and covariance of M_l(z) over z drawn from
the cluster. Its mean is the centre the level truncates toward (the ``mixture`` centre of
docs/method.md), and the Mahalanobis distance of the image's level latent in it says whether an
edit has left the cluster: beyond the distance that ``typical_quantile`` of the cluster's own
samples stay within, the latent is atypical.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.config import check_positive
from mlss_jax.errors import ConfigError, InputFileError
from mlss_jax.explore.latent_ops import edit_along, layer_mask, pca_directions, svm_boundaries
from mlss_jax.explore.view_state import Sample, ViewState
from mlss_jax.method.levels import LEVELS
from mlss_jax.method.models import LevelModel, apply_mapper, compose_ws, sample_mixture
from mlss_jax.method.truncation import (METHODS, TruncationTargets, multilevel_truncation,
                                        multimodal_centres, nearest_centre, truncate)
from mlss_jax.networks.generator import generator_mapping, generator_synthesis
from mlss_jax.networks.sampling import latents, mapped_w, synthesize


@dataclasses.dataclass(frozen=True)
class ExplorerConfig:
    """What the explorer computes once, at start-up.

    Attributes:
      samples: f(z) samples for the PCA directions and the multimodal centres.
      boundary_samples: the first of them that are drawn and labelled by the factor classifier
        for the InterFaceGAN boundaries (drawing them is most of the start-up's work).
      pca_components: GANSpace directions offered as edits.
      cluster_samples: samples of each cluster's Gaussian in W (its mean and covariance).
      multimodal_k: k-means centres of W for the multimodal truncation.
      svm_steps: optimiser steps of each InterFaceGAN boundary's linear SVM.
      typical_quantile: share of a cluster's own samples that count as typical.
      seed: seed of all these samples.
    """

    samples: int = 2000
    boundary_samples: int = 1000
    pca_components: int = 6
    cluster_samples: int = 512
    multimodal_k: int = 64
    svm_steps: int = 300
    typical_quantile: float = 0.99
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive(self, ("samples", "boundary_samples", "pca_components", "cluster_samples",
                              "multimodal_k", "svm_steps"))
        if max(self.multimodal_k, self.pca_components, self.boundary_samples) > self.samples:
            raise ConfigError("samples must be at least multimodal_k, pca_components and "
                             "boundary_samples")
        if not 0.5 <= self.typical_quantile < 1.0:
            raise ConfigError(f"typical_quantile must lie in [0.5, 1), got {self.typical_quantile}")


@dataclasses.dataclass(frozen=True)
class Statics:
    """What the jitted functions take as static (hashable): the networks' shapes."""

    generator: object            # GeneratorConfig
    level_ranges: tuple[tuple[int, int], ...]
    cutoff: int


def _uint8(images: jax.Array) -> jax.Array:
    """viz.grid.to_uint8 inside jit: NVIDIA's x * 127.5 + 128, clipped."""
    return jnp.clip(images * 127.5 + 128.0, 0, 255).astype(jnp.uint8)


def sample_ws(st: Statics, params: dict, z: jax.Array, eps: jax.Array, clusters: jax.Array,
              psi: jax.Array) -> jax.Array:
    """One sample's ws [num_ws, w_dim]: level l's inputs from cluster ``clusters[l]`` with
    noise ``eps[l]``, truncated toward that cluster's centre by ``psi[l]``; the rest f(z)."""
    ws = generator_mapping(st.generator, params["generator"], z[None])
    for i, level_range in enumerate(st.level_ranges):
        level = params["levels"][i]
        w = apply_mapper(st.generator, level["mapper"],
                         sample_mixture(level["mixture"], clusters[i:i + 1], eps[i:i + 1]))
        ws = compose_ws(ws, w, level_range)
    centres = tuple(level["centres"] for level in params["levels"])
    return multilevel_truncation(ws, centres, clusters[None], st.level_ranges, psi)[0]


def view_ws(st: Statics, params: dict, spec: dict) -> jax.Array:
    """The view's ws [num_ws, w_dim]: sample a, toward sample b by ``t`` on the inputs
    ``along`` (a [num_ws] mask), moved by ``weights @ directions`` on the inputs ``edit_mask``."""
    a = sample_ws(st, params, spec["z"], spec["eps"], spec["clusters"], spec["psi"])
    b = sample_ws(st, params, spec["b_z"], spec["b_eps"], spec["b_clusters"], spec["b_psi"])
    ws = a + (spec["t"] * spec["along"])[:, None] * (b - a)
    direction = spec["weights"] @ params["directions"]
    return edit_along(ws[None], direction, jnp.ones(1), spec["edit_mask"])[0, 0]


def typicality(st: Statics, params: dict, ws: jax.Array, clusters: jax.Array) -> jax.Array:
    """[L] Mahalanobis distance of each level's latent (the mean of its inputs) in the
    Gaussian of its cluster."""
    out = []
    for i, (start, stop) in enumerate(st.level_ranges):
        level = params["levels"][i]
        d = ws[start:stop].mean(0) - level["centres"][clusters[i]]
        out.append(jnp.sqrt(jnp.maximum(d @ level["precision"][clusters[i]] @ d, 0.0)))
    return jnp.stack(out)


@functools.partial(jax.jit, static_argnums=0)
def render_frame(st: Statics, params: dict, spec: dict) -> tuple[jax.Array, jax.Array]:
    """The main image (uint8 [R, R, C]) and its levels' typicality [L]."""
    ws = view_ws(st, params, spec)
    image = generator_synthesis(st.generator, params["generator"], ws[None])[0]
    return _uint8(image), typicality(st, params, ws, spec["clusters"])


@functools.partial(jax.jit, static_argnums=0)
def render_methods(st: Statics, params: dict, spec: dict, psi: jax.Array) -> jax.Array:
    """The view's untruncated latent under each of :data:`METHODS` at ``psi``: [4, R, R, C]."""
    ones = jnp.ones_like(spec["psi"])
    ws = view_ws(st, params, {**spec, "psi": ones, "b_psi": ones})[None]
    mode = nearest_centre(ws[:, 0], params["modes"])
    targets = TruncationTargets(params["w_avg"], st.cutoff, params["modes"], mode,
                                tuple(level["centres"] for level in params["levels"]),
                                spec["clusters"][None], st.level_ranges)
    truncated = jnp.concatenate([truncate(method, ws, psi, targets) for method in METHODS])
    return _uint8(generator_synthesis(st.generator, params["generator"], truncated))


@functools.partial(jax.jit, static_argnums=0)
def render_clusters(st: Statics, params: dict, spec: dict, level: jax.Array) -> jax.Array:
    """The view with level ``level`` (an index, traced) set to each of its clusters in turn:
    [K_max, R, R, C] (clusters past the level's own count repeat its last)."""
    k_max = params["levels"][0]["centres"].shape[0]
    counts = params["counts"]

    def one(k):
        chosen = jnp.where(jnp.arange(len(st.level_ranges)) == level,
                           jnp.minimum(k, counts[level] - 1), spec["clusters"])
        return view_ws(st, params, {**spec, "clusters": chosen})

    ws = jax.vmap(one)(jnp.arange(k_max))
    return _uint8(generator_synthesis(st.generator, params["generator"], ws))


# ---- the host side: start-up work, states to arrays ------------------------------------------

def _cluster_gaussians(model: LevelModel, count: int, seed: int, quantile: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cluster of a level: the mean [K, w_dim] and precision [K, w_dim, w_dim] of M_l(z),
    and the distance [K] within which ``quantile`` of fresh samples lie."""
    k, z_dim = model.config.num_clusters, model.generator_config.z_dim
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(k), count)
    w = np.asarray(model.level_w(clusters, rng.standard_normal((k * count, z_dim), np.float32)))
    fresh = np.asarray(model.level_w(clusters, rng.standard_normal((k * count, z_dim), np.float32)))
    w, fresh = w.reshape(k, count, -1).astype(np.float64), fresh.reshape(k, count, -1)
    means = w.mean(1)
    precisions, limits = [], []
    for c in range(k):
        cov = np.cov(w[c], rowvar=False)
        # shrink toward a multiple of I: count samples estimate a w_dim x w_dim covariance
        cov = 0.9 * cov + 0.1 * np.trace(cov) / len(cov) * np.eye(len(cov))
        precision = np.linalg.inv(cov)
        d = fresh[c] - means[c]
        limits.append(np.quantile(np.sqrt(np.einsum("ni,ij,nj->n", d, precision, d)), quantile))
        precisions.append(precision)
    return means.astype(np.float32), np.stack(precisions).astype(np.float32), np.asarray(limits)


def _pad_clusters(array: np.ndarray, k_max: int) -> np.ndarray:
    """A level's per-cluster array padded to ``k_max`` clusters by repeating its last."""
    return np.concatenate([array, np.repeat(array[-1:], k_max - len(array), axis=0)])


class Explorer:
    """A generator and its trained levels, ready to render :class:`ViewState` s.

    The start-up work (cluster Gaussians, edit directions, multimodal centres) runs when first
    needed; :meth:`warm_up` runs all of it and compiles the three render functions.
    """

    def __init__(self, generator, levels: list[LevelModel], config: ExplorerConfig = ExplorerConfig(),
                 predictor=None) -> None:
        if [m.config.level for m in levels] != list(LEVELS):
            raise InputFileError(f"the explorer needs the levels {', '.join(LEVELS)}, in that order")
        self.generator, self.levels, self.config, self.predictor = generator, levels, config, predictor
        self.num_clusters = tuple(m.config.num_clusters for m in levels)
        self.statics = Statics(generator.config, tuple(m.level_range for m in levels),
                               levels[0].level_range[1])

    # -- start-up work
    @functools.cached_property
    def _w_samples(self) -> np.ndarray:
        return mapped_w(self.generator, latents(self.generator, self.config.samples, self.config.seed))

    @functools.cached_property
    def gaussians(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        cfg = self.config
        return [_cluster_gaussians(m, cfg.cluster_samples, cfg.seed + 1 + i, cfg.typical_quantile)
                for i, m in enumerate(self.levels)]

    @functools.cached_property
    def directions(self) -> dict[str, np.ndarray]:
        """Edit directions in W, each scaled to one standard deviation of W along it: GANSpace's
        ``pca0``...; on the demo world, an InterFaceGAN boundary per factor class (``hue=red``)."""
        w = self._w_samples
        vectors, stds = pca_directions(w, self.config.pca_components)
        out = {f"pca{i}": v * s for i, (v, s) in enumerate(zip(vectors, stds))}
        if self.predictor is not None:
            w = w[:self.config.boundary_samples]
            # one batch: each batch shape would be one more compilation at start-up
            images = synthesize(self.generator, np.repeat(w[:, None], self.generator.num_ws, 1),
                                batch_size=len(w))
            labels = self.predictor.labels(images)
            names, columns = [], []
            for factor, classes in self.predictor.factors.items():
                for index, name in enumerate(classes):
                    positive = labels[factor] == index
                    if positive.any() and not positive.all():  # else no boundary to fit
                        names.append(f"{factor}={name}")
                        columns.append(positive)
            if names:
                normals, _ = svm_boundaries(w, np.stack(columns, 1), steps=self.config.svm_steps)
                out |= {name: n * np.std(w @ n) for name, n in zip(names, normals)}
        return out

    @functools.cached_property
    def params(self) -> dict:
        k_max = max(self.num_clusters)
        levels = []
        for model, (means, precisions, _) in zip(self.levels, self.gaussians):
            levels.append({"mixture": model.gen["mixture"], "mapper": model.gen["mapper"],
                           "centres": _pad_clusters(means, k_max),
                           "precision": _pad_clusters(precisions, k_max)})
        directions = np.stack(list(self.directions.values())).astype(np.float32)
        modes = multimodal_centres(self._w_samples, self.config.multimodal_k, self.config.seed)
        return jax.device_put({"generator": self.generator.variables, "levels": tuple(levels),
                               "directions": directions, "modes": modes.astype(np.float32),
                               "w_avg": np.asarray(self.generator.w_avg),
                               "counts": np.asarray(self.num_clusters, np.int32)})

    def warm_up(self, progress: Callable[[str], None] = lambda step: None) -> None:
        """All start-up work, then each render function compiled (one call of each, at once:
        compilation is most of the start-up, and XLA compiles in parallel threads)."""
        progress("cluster Gaussians")
        _ = self.gaussians   # cached properties: computed here, once
        progress("edit directions")
        _ = self.directions
        progress("multimodal centres")
        _ = self.params
        progress("compiling")
        state = ViewState()
        calls = [lambda: self.frame(state), lambda: self.methods(state),
                 lambda: self.clusters(state, LEVELS[0])]
        if self.predictor is not None:
            calls.append(lambda: self.factors(np.zeros(self.image_shape, np.uint8)))
        with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
            for future in [pool.submit(call) for call in calls]:
                future.result()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        g = self.generator
        return g.resolution, g.resolution, g.img_channels

    # -- states to arrays
    def check(self, state: ViewState) -> None:
        state.check(self.num_clusters, tuple(self.directions), self.generator.num_ws)

    def _sample_arrays(self, sample: Sample, psi) -> dict:
        g = self.generator
        return {"z": latents(g, 1, sample.base)[0],
                "eps": np.stack([latents(g, 1, s)[0] for s in sample.seeds]),
                "clusters": np.asarray(sample.clusters, np.int32),
                "psi": np.asarray(psi, np.float32)}

    def spec(self, state: ViewState) -> dict:
        """The arrays the render functions take for ``state`` (checked first)."""
        self.check(state)
        num_ws = self.generator.num_ws
        a = self._sample_arrays(state.sample, state.psi)
        b = self._sample_arrays(state.partner or state.sample, state.psi)
        if state.along == "all":
            along = np.ones(num_ws, np.float32)
        else:  # a level's inputs start:stop, as layer_mask's inclusive range
            start, stop = self.statics.level_ranges[LEVELS.index(state.along)]
            along = layer_mask(num_ws, (start, stop - 1))
        names = list(self.directions)
        weights = np.zeros(len(names), np.float32)
        for name, weight in state.edits:
            weights[names.index(name)] = weight
        return {**a, **{f"b_{k}": v for k, v in b.items()},
                "t": np.float32(state.t if state.partner is not None else 0.0), "along": along,
                "weights": weights, "edit_mask": layer_mask(num_ws, state.layers)}

    # -- images
    def frame(self, state: ViewState) -> tuple[np.ndarray, list[dict]]:
        """The main image (uint8 [R, R, C]) and each level's typicality."""
        image, distance = render_frame(self.statics, self.params, self.spec(state))
        limits = [g[2][k] for g, k in zip(self.gaussians, state.sample.clusters)]
        return np.asarray(image), [
            {"level": level, "distance": round(float(d), 2), "typical_up_to": round(float(lim), 2),
             "typical": bool(d <= lim)}
            for level, d, lim in zip(LEVELS, np.asarray(distance), limits)]

    def methods(self, state: ViewState) -> np.ndarray:
        """[4, R, R, C]: the view's latent under stylegan, cutoff, multimodal, multilevel."""
        return np.asarray(render_methods(self.statics, self.params, self.spec(state),
                                         np.float32(state.method_psi)))

    def clusters(self, state: ViewState, level: str) -> np.ndarray:
        """[K, R, R, C]: the view with ``level`` set to each of its clusters."""
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r} (one of {', '.join(LEVELS)})")
        index = LEVELS.index(level)
        images = render_clusters(self.statics, self.params, self.spec(state), np.int32(index))
        return np.asarray(images)[:self.num_clusters[index]]

    def factors(self, image: np.ndarray) -> list[dict]:
        """The factor classifier's reading of a demo image: per factor its likeliest class."""
        if self.predictor is None:
            return []
        probabilities = self.predictor.probabilities(image[None])
        return [{"factor": factor, "class": self.predictor.factors[factor][int(p[0].argmax())],
                 "confidence": round(float(p[0].max()), 3)}
                for factor, p in probabilities.items()]
