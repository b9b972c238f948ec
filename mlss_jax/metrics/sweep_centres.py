"""Where the clustering methods truncate toward: the multimodal centres of W and each level's
cluster centres, computed from the sweep's own samples or reused from a ``centres.npz``, and
every method's targets for a set of samples."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from mlss_jax.errors import ConfigError, InputFileError
from mlss_jax.method.centres import cluster_centres
from mlss_jax.method.models import LevelModel
from mlss_jax.method.truncation import TruncationTargets, multimodal_centres, nearest_centre
from mlss_jax.metrics.sweep_config import SweepConfig
from mlss_jax.metrics.sweep_samples import untruncated_samples
from mlss_jax.networks.stylegan2 import StyleGAN2Generator


@dataclasses.dataclass(frozen=True)
class SweepCentres:
    """The centres both clustering methods truncate toward, saved as ``centres.npz`` for reuse.

    Attributes:
      modes: [K, w_dim] multimodal centres (k-means of standardised W).
      level_centres: per level, its cluster centres [K_l, w_dim].
      settings: what made them (:func:`centre_settings`), checked when they are reused.
    """

    modes: np.ndarray
    level_centres: tuple[np.ndarray, ...]
    settings: dict = dataclasses.field(default_factory=dict)

    def save(self, path: Path) -> Path:
        np.savez(path, modes=self.modes, settings=np.asarray(json.dumps(self.settings)),
                 **{f"level_{i}": c for i, c in enumerate(self.level_centres)})
        return path

    @classmethod
    def load(cls, path: Path, levels: list[LevelModel], w_dim: int,
             expect: dict | None = None) -> "SweepCentres":
        """Centres from ``save``, checked against the levels, the generator's W, and the
        ``expect``-ed settings they were made with (centre mode, K, seed ...)."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"no centres file {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                modes = data["modes"]
                level_centres = tuple(data[f"level_{i}"] for i in range(len(levels)))
                settings = json.loads(str(data["settings"]))
        except (OSError, ValueError, KeyError) as err:
            raise InputFileError(f"{path} is not a centres file of this evaluation ({err})") from None
        for key, value in (expect or {}).items():
            if settings.get(key) != value:
                raise InputFileError(f"{path} was made with {key} {settings.get(key)!r}, this sweep "
                                     f"asks for {value!r} (match it, or leave out --centres)")
        shapes_ok = modes.ndim == 2 and modes.shape[1] == w_dim and all(
            c.shape == (m.config.num_clusters, w_dim) for c, m in zip(level_centres, levels))
        if not shapes_ok:
            raise InputFileError(f"{path}: centres do not fit this generator and these levels")
        if not all(np.all(np.isfinite(c)) for c in (modes, *level_centres)):
            raise InputFileError(f"{path}: centres with NaN or infinite entries")
        return cls(modes, level_centres, settings)


def sweep_centres(generator: StyleGAN2Generator, levels: list[LevelModel], config: SweepConfig
                  ) -> SweepCentres:
    """Both clusterings from ``num_samples`` f(z) samples of their own seed (``seed + 1``)."""
    ws, _, assignments = untruncated_samples(generator, levels, config.num_samples, config.seed + 1,
                                             config.batch_size)
    w = ws[:, 0]
    level_centres = tuple(cluster_centres(m, w, assignments[:, i], config.centre_mode)
                          for i, m in enumerate(levels))
    k = min(config.multimodal_k, len(w))
    return SweepCentres(multimodal_centres(w, k, config.seed), level_centres,
                        centre_settings(generator, levels, config))


def centre_settings(generator: StyleGAN2Generator, levels: list[LevelModel], config: SweepConfig
                    ) -> dict:
    """What the clusterings depend on, saved with them and checked when they are reused."""
    return {"centre_mode": config.centre_mode, "multimodal_k": config.multimodal_k,
            "samples": config.num_samples, "seed": config.seed, "w_dim": generator.w_dim,
            "level_steps": [m.step for m in levels]}


def truncation_targets(generator: StyleGAN2Generator, levels: list[LevelModel], ws: np.ndarray,
                       assignments: np.ndarray, centres: SweepCentres, cutoff: int | None = None,
                       mode_assignment: np.ndarray | None = None) -> TruncationTargets:
    """Every method's targets for samples ws [N, num_ws, w_dim] with level clusters [N, L]:
    ``cutoff`` defaults to the coarse level's inputs, the multimodal centre to the nearest in W."""
    cutoff = cutoff if cutoff is not None else levels[0].level_range[1]
    if not 0 < cutoff <= generator.num_ws:
        raise ConfigError(f"cutoff must be in 1..{generator.num_ws}, got {cutoff}")
    if mode_assignment is None:
        mode_assignment = np.asarray(nearest_centre(jnp.asarray(ws[:, 0]), jnp.asarray(centres.modes)))
    return TruncationTargets(np.asarray(generator.w_avg), cutoff, centres.modes, mode_assignment,
                             centres.level_centres, np.asarray(assignments),
                             tuple(m.level_range for m in levels))
