"""StyleGAN truncation vs multi-level truncation: the psi sweep behind ``evaluate.py --pr-curve``.

Both methods truncate the *same* latents at every psi. Each truncated set is
embedded by a feature network and compared with real images' features:
improved precision/recall and Fréchet distance. On the demo world, the factor
classifier also says how faithful truncation is: the share of samples whose
ground-truth factors are all unchanged by it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax.numpy as jnp
import numpy as np

from mlss_jax.metrics.frechet import frechet_distance, gaussian_stats
from mlss_jax.metrics.precision_recall import knn_radii, precision_recall
from mlss_jax.config import check_choice, check_positive, check_unit_interval, choices
from mlss_jax.method.centres import CENTRE_MODES, cluster_centres
from mlss_jax.method.models import LevelModel
from mlss_jax.networks.stylegan2 import StyleGAN2Generator
from mlss_jax.networks.sampling import latents, synthesize
from mlss_jax.method.truncation import METHODS, truncate
from mlss_jax.viz.grid import to_uint8

@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """The psi sweep's settings.

    Attributes:
      num_samples: generated samples per set (and real ones, when that many are available).
      psis: truncation strengths, each in [0, 1].
      k: nearest neighbours of the precision/recall manifolds.
      seed: seed of the latents (the cluster centres use seed + 1).
      batch_size: generation batch.
      centre_mode: assigned (the mean f(z) of each cluster's samples) or mixture.
    """

    num_samples: int = 10_000
    psis: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
    k: int = 3
    seed: int = 0
    batch_size: int = 250
    centre_mode: str = choices(*CENTRE_MODES, default="assigned")

    def __post_init__(self) -> None:
        check_positive(self, ("num_samples", "k", "batch_size"))
        check_unit_interval(self, "psis")
        check_choice(self, "centre_mode", CENTRE_MODES)


def _batched(n: int, batch: int):
    return [(i, min(i + batch, n)) for i in range(0, n, batch)]


def untruncated_samples(generator: StyleGAN2Generator, levels: list[LevelModel], num: int,
                        seed: int, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ws [N, num_ws, w_dim], uint8 images and cluster assignments [N, L] of f(z) samples."""
    z = latents(generator, num, seed)
    ws, images, assignments = [], [], []
    for a, b in _batched(num, batch):
        w = generator.mapping(z[a:b])
        img = generator.synthesis(w)
        ws.append(np.asarray(w))
        images.append(to_uint8(np.asarray(img)))
        assignments.append(np.stack([m.assign(img, w) for m in levels], axis=1)
                           if levels else np.zeros((b - a, 0), np.int64))
    return np.concatenate(ws), np.concatenate(images), np.concatenate(assignments)


def level_centres(generator: StyleGAN2Generator, levels: list[LevelModel], num: int, seed: int,
                  batch: int, mode: str) -> list[np.ndarray]:
    ws, _, assignments = untruncated_samples(generator, levels, num, seed, batch)
    return [cluster_centres(m, ws[:, 0], assignments[:, i], mode) for i, m in enumerate(levels)]


@dataclasses.dataclass
class SweepResult:
    """The sweep's rows and the untruncated samples they came from (for grids of the same latents).

    Attributes:
      rows: one dict per method and psi: method, psi, precision, recall, fid[, lpips][, faithful...].
      ws: [N, num_ws, w_dim] untruncated latents.
      assignments: [N, L] cluster of each sample at each level.
      centres: per level, its cluster centres [K_l, w_dim].
      level_ranges: per level, the (start, stop) of its inputs.
      w_avg: [w_dim] the generator's centre of W.
    """

    rows: list[dict]
    ws: np.ndarray
    assignments: np.ndarray
    centres: list[np.ndarray]
    level_ranges: tuple[tuple[int, int], ...]
    w_avg: np.ndarray

    def truncated(self, method: str, psi: float, count: int | None = None) -> np.ndarray:
        """The first ``count`` samples' ws truncated by ``method`` at ``psi``."""
        n = len(self.ws) if count is None else count
        return np.asarray(truncate(method, jnp.asarray(self.ws[:n]), psi, jnp.asarray(self.w_avg),
                                   tuple(jnp.asarray(c) for c in self.centres),
                                   jnp.asarray(self.assignments[:n]), self.level_ranges))


def run_sweep(generator: StyleGAN2Generator, levels: list[LevelModel], real_images: np.ndarray,
              embed: Callable[[np.ndarray], np.ndarray], config: SweepConfig,
              factors: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None,
              perceptual: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
              progress: bool | None = None) -> SweepResult:
    """Both truncation methods at every psi of ``config``, on the same latents.

    ``factors``: ground-truth factor predictions of images (the demo world); a row's
    ``faithful`` is the share of samples whose factors truncation left unchanged.
    ``perceptual``: a distance of image pairs (LPIPS); a row's ``lpips`` is its mean
    between truncated and untruncated images.
    """
    from tqdm import tqdm

    if not levels:
        raise ValueError("multi-level truncation needs trained levels (python train.py --level all)")
    ws, images, assignments = untruncated_samples(generator, levels, config.num_samples,
                                                  config.seed, config.batch_size)
    centres = level_centres(generator, levels, config.num_samples, config.seed + 1,
                            config.batch_size, config.centre_mode)
    real_features = embed(real_images)
    real_radii = knn_radii(jnp.asarray(real_features), config.k)
    real_stats = gaussian_stats(real_features)
    reference_factors = factors(images) if factors else None
    result = SweepResult([], ws, assignments, centres, tuple(m.level_range for m in levels),
                         np.asarray(generator.w_avg))
    jobs = [(m, p) for p in config.psis for m in METHODS]
    for method, psi in tqdm(jobs, desc="psi sweep", unit="set",
                            disable=(not progress) if progress is not None else None):
        truncated = synthesize(generator, result.truncated(method, psi), config.batch_size)
        features = embed(truncated)
        pr = precision_recall(real_features, features, config.k, real_radii=real_radii)
        row = {"method": method, "psi": psi, "precision": pr.precision, "recall": pr.recall,
               "fid": frechet_distance(*real_stats, *gaussian_stats(features))}
        if perceptual is not None:
            row["lpips"] = float(np.mean(perceptual(truncated, images)))
        if reference_factors is not None:
            got = factors(truncated)
            same = np.all(np.stack([got[k] == reference_factors[k] for k in got]), axis=0)
            row["faithful"] = float(same.mean())
            row.update({f"faithful_{k}": float(np.mean(got[k] == reference_factors[k])) for k in got})
        result.rows.append(row)
    return result


def compare_at_equal(rows: list[dict], x: str) -> dict:
    """Mean precision gap (multilevel - stylegan) at equal ``x`` (recall or fid), by interpolation.

    Each method's precision is linearly interpolated as a function of ``x`` over
    its psi points; the gap is averaged over the range of ``x`` both methods cover.
    """
    curves = {}
    for method in METHODS:
        pts = sorted((r[x], r["precision"]) for r in rows if r["method"] == method)
        curves[method] = (np.asarray([p[0] for p in pts]), np.asarray([p[1] for p in pts]))
    lo = max(c[0].min() for c in curves.values())
    hi = min(c[0].max() for c in curves.values())
    if hi <= lo:
        return {"overlap": None, "mean_gap": None, "multilevel_higher_share": None}
    grid = np.linspace(lo, hi, 50)
    gap = np.interp(grid, *curves["multilevel"]) - np.interp(grid, *curves["stylegan"])
    return {"overlap": [float(lo), float(hi)], "mean_gap": float(gap.mean()),
            "multilevel_higher_share": float(np.mean(gap > 0))}
