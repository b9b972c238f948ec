"""The truncation methods compared on the same latents: the psi sweep behind ``evaluate.py --pr-curve``.

Its parts: the settings (:mod:`sweep_config`), the untruncated samples (:mod:`sweep_samples`),
the centres the clustering methods truncate toward (:mod:`sweep_centres`), the measuring
(here), and the statistics of its rows (:mod:`sweep_curves`).

Every method (:data:`mlss_jax.method.truncation.METHODS`) truncates the *same* latents at every
psi. Each truncated set is embedded by a feature network and compared with real images'
features: improved precision/recall and Fréchet distance, each with a 95% interval, the real
set held fixed (:mod:`mlss_jax.metrics.intervals`: Wilson intervals of precision and recall as
shares, and a bootstrap of the truncated set for FID at this sample count, each resample a full
Fréchet distance). On the demo world, the factor classifier
also says how faithful truncation is: the share of samples whose ground-truth factors are all
unchanged by it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from mlss_jax.errors import ConfigError, InputFileError
from mlss_jax.method.models import LevelModel
from mlss_jax.method.truncation import TruncationTargets, truncate
from mlss_jax.metrics.frechet import frechet_distance, gaussian_stats
from mlss_jax.metrics.intervals import bootstrap_interval, proportion_interval
from mlss_jax.metrics.precision_recall import knn_radii, mutual_membership
from mlss_jax.metrics.sweep_centres import SweepCentres, sweep_centres, truncation_targets
from mlss_jax.metrics.sweep_config import SweepConfig
from mlss_jax.metrics.sweep_samples import nearest_by_image, untruncated_samples
from mlss_jax.networks.sampling import synthesize
from mlss_jax.networks.stylegan2 import StyleGAN2Generator
from mlss_jax.runtime import parallel
from mlss_jax.runtime.parallel import data_mesh


@dataclasses.dataclass
class SweepResult:
    """The sweep's rows and the untruncated samples they came from (for grids of the same latents).

    Attributes:
      rows: one dict per method and psi: method, psi, precision, recall, fid (each with _lo and
        _hi, its 95% interval)[, lpips][, faithful...].
      ws: [N, num_ws, w_dim] untruncated latents.
      targets: where each method truncates each sample toward.
      centres: the clusterings' centres (to save and reuse).
    """

    rows: list[dict]
    ws: np.ndarray
    targets: TruncationTargets
    centres: SweepCentres

    def truncated(self, method: str, psi, count: int | None = None) -> np.ndarray:
        """The first ``count`` samples' ws truncated by ``method`` at ``psi``."""
        n = len(self.ws) if count is None else count
        return np.asarray(truncate(method, self.ws[:n], psi, self.targets.take(n)))


def sweep_size(config: SweepConfig, levels: list[LevelModel]) -> int:
    """How many sets (method and psi) the sweep measures."""
    return len(_jobs(config, levels))


def _jobs(config: SweepConfig, levels: list[LevelModel]) -> list[tuple[str, str, float, object]]:
    """(row name, method, psi, the psi passed to truncate) of every set of the sweep."""
    jobs = [(m, m, p, p) for p in config.psis for m in config.methods]
    if config.sweep_level is not None:
        fixed = dict(config.level_psis)
        names = [m.config.level for m in levels]
        swept = names if config.sweep_level == "all" else [config.sweep_level]
        for level in swept:
            for p in config.psis:
                vector = tuple(p if lv == level else fixed.get(lv, 1.0) for lv in names)
                jobs.append((f"multilevel:{level}", "multilevel", p, vector))
    return jobs


def run_sweep(generator: StyleGAN2Generator, levels: list[LevelModel], real_images: np.ndarray,
              embed: Callable[[np.ndarray], np.ndarray], config: SweepConfig,
              factors: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None,
              perceptual: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
              progress: bool | None = None, centres: SweepCentres | None = None,
              skip: int = 0, rng_state: dict | None = None,
              on_row: Callable[[dict, dict], None] | None = None) -> SweepResult:
    """Every method of ``config`` at every psi, on the same latents.

    ``factors``: ground-truth factor predictions of images (the demo world); a row's
    ``faithful`` is the share of samples whose factors truncation left unchanged.
    ``perceptual``: a distance of image pairs (LPIPS); a row's ``lpips`` is its mean
    between truncated and untruncated images. ``centres``: clusterings computed before
    (:meth:`SweepCentres.load`), instead of computing them here.

    To continue an interrupted sweep: ``skip`` its first sets (the result's rows start after
    them) with the bootstrap generator's ``rng_state`` after the last of them. ``on_row(row,
    rng_state)`` is called after each set, to keep both.
    """
    from tqdm import tqdm

    if not levels:
        raise InputFileError("multi-level truncation needs trained levels (python train.py --level all)")
    ws, images, assignments = untruncated_samples(generator, levels, config.num_samples,
                                                  config.seed, config.batch_size)
    centres = centres if centres is not None else sweep_centres(generator, levels, config)
    mode_assignment = None
    if config.multimodal_assign == "lpips":
        if perceptual is None:
            raise ConfigError("multimodal_assign lpips needs a perceptual distance (LPIPS)")
        mode_assignment = nearest_by_image(generator, images, centres.modes, perceptual,
                                           config.batch_size)
    targets = truncation_targets(generator, levels, ws, assignments, centres, config.cutoff,
                                 mode_assignment)
    # the work is shared out by rows: generation and features over processes, the distance
    # tiles of precision/recall over every device
    real_features = parallel.split_rows(embed, real_images).astype(np.float32)
    knn = parallel.row_sharded(lambda queries, support: knn_radii(support, config.k,
                                                                     queries=queries))
    radii = lambda f: knn(f, f)
    real_radii = radii(real_features)
    # one pass over the generated-to-real distances gives precision (by rows) and recall (by
    # columns); the generated rows and their radii are sharded alike
    both_ways = parallel.row_sharded(
        lambda fake, fake_radii, real, real_r: mutual_membership(fake, real, fake_radii, real_r),
        row_args=2, any_of=1)
    # the real set goes to every device once, not once per truncated set
    real_on_devices = parallel.replicate((real_features, real_radii), data_mesh())
    real_stats = gaussian_stats(real_features)
    labels = lambda x: {k: v.astype(np.int32) for k, v in factors(x).items()}
    reference_factors = parallel.split_rows(labels, images) if factors else None
    result = SweepResult([], ws, targets, centres)
    rng = np.random.default_rng(config.seed)
    if rng_state is not None:
        rng.bit_generator.state = rng_state
    jobs = _jobs(config, levels)

    def measure(ws_truncated: np.ndarray, untruncated: np.ndarray) -> dict[str, np.ndarray]:
        truncated = synthesize(generator, ws_truncated, config.batch_size)
        out = {"features": np.asarray(embed(truncated), np.float32)}
        if perceptual is not None:
            out["lpips"] = np.asarray(perceptual(truncated, untruncated), np.float32)
        if factors is not None:
            out.update({f"factor_{k}": v for k, v in labels(truncated).items()})
        return out

    for name, method, psi, psi_arg in tqdm(jobs[skip:], desc="psi sweep", unit="set", initial=skip,
                                           total=len(jobs),
                                           disable=(not progress) if progress is not None else None):
        measured = parallel.split_rows(measure, result.truncated(method, psi_arg), images)
        features = measured["features"]
        fake_in_real, real_in_fake = both_ways(features, radii(features), *real_on_devices)
        fid = lambda f: frechet_distance(*real_stats, *gaussian_stats(f))
        row = {"method": name, "psi": psi,
               "precision": float(fake_in_real.mean()), "recall": float(real_in_fake.mean()),
               "fid": fid(features)}
        # precision: the truncated samples in the real manifold; recall: the real samples in
        # this set's manifold; FID: the truncated set resampled, the real statistics held fixed
        row["precision_lo"], row["precision_hi"] = proportion_interval(fake_in_real)
        row["recall_lo"], row["recall_hi"] = proportion_interval(real_in_fake)
        row["fid_lo"], row["fid_hi"] = bootstrap_interval(features, fid, config.bootstrap, rng)
        if perceptual is not None:
            row["lpips"] = float(np.mean(measured["lpips"]))
        if reference_factors is not None:
            got = {k: measured[f"factor_{k}"] for k in reference_factors}
            same = np.all(np.stack([got[k] == reference_factors[k] for k in got]), axis=0)
            row["faithful"] = float(same.mean())
            row.update({f"faithful_{k}": float(np.mean(got[k] == reference_factors[k])) for k in got})
        result.rows.append(row)
        if on_row is not None:
            on_row(row, rng.bit_generator.state)
    return result


