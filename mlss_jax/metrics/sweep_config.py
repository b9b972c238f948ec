"""The psi sweep's settings (``evaluate.py``'s and ``run.py``'s sweep flags)."""

from __future__ import annotations

import dataclasses

from mlss_jax.config import check_choice, check_positive, check_seed, choices
from mlss_jax.errors import ConfigError
from mlss_jax.method.centres import CENTRE_MODES
from mlss_jax.method.levels import LEVELS
from mlss_jax.method.truncation import (METHODS, check_psis, format_level_psis, parse_level_psis,
                                        parse_methods)


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """The psi sweep's settings.

    Attributes:
      num_samples: generated (and real) samples per set (None: the command's default; for
        evaluate.py 2000 on the demo's shapes, else 10000).
      psis: psi values of the sweep, comma-separated, each in [0, 1].
      methods: truncation methods to compare, comma-separated (stylegan: toward w_avg; cutoff:
        only the first inputs; multimodal: toward the nearest k-means centre of W; multilevel:
        the paper's).
      k: nearest neighbours of the precision/recall manifolds.
      seed: seed of the latents (the cluster centres use seed + 1).
      batch_size: images generated per batch (lower it if the device runs out of memory).
      lpips: also the mean LPIPS (VGG16) between truncated and untruncated images.
      centre_mode: multi-level cluster centres: the mean f(z) of the samples C_l assigns to a
        cluster (assigned), or the mean M_l(z_k) of its Gaussian (mixture).
      multimodal_k: clusters of W for multimodal truncation.
      multimodal_assign: a sample's multimodal centre: nearest by L2 in W (l2), or the centre
        whose image is nearest in LPIPS (lpips; slow).
      cutoff: inputs the cutoff method truncates (None: the coarse level's).
      sweep_level: also sweep multi-level truncation along this level only (all: each level in
        turn), the others at --psi (rows named multilevel:<level>).
      level_psis: the strengths at which --sweep-level holds the levels it does not sweep, e.g.
        coarse=0.5,medium=0.8 (a level left out: 1); only with --sweep-level, and not for the
        level it sweeps.
      bootstrap: resamples behind FID's 95% interval (0: none; 39 or more for a full 95%);
        precision and recall get Wilson intervals, which need none.
    """

    num_samples: int | None = dataclasses.field(default=None, metadata={"flag": "samples"})
    psis: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
    methods: tuple[str, ...] = dataclasses.field(default=METHODS, metadata={"parse": parse_methods})
    k: int = 3
    seed: int = 0
    batch_size: int = 250
    lpips: bool = True
    centre_mode: str = choices(*CENTRE_MODES, default="assigned")
    multimodal_k: int = 64
    multimodal_assign: str = choices("l2", "lpips", default="l2")
    cutoff: int | None = None
    sweep_level: str | None = None
    level_psis: tuple[tuple[str, float], ...] = dataclasses.field(default=(), metadata={
        "flag": "psi", "parse": lambda text: tuple(parse_level_psis(text, LEVELS).items()),
        "format": format_level_psis})
    bootstrap: int = 50

    def __post_init__(self) -> None:
        check_positive(self, ("num_samples", "k", "batch_size", "multimodal_k", "cutoff"))
        check_psis(self, "psis")
        check_choice(self, "centre_mode", CENTRE_MODES)
        check_choice(self, "multimodal_assign", ("l2", "lpips"))
        parse_methods(",".join(self.methods))
        check_seed(self)
        if self.sweep_level is not None:
            check_choice(self, "sweep_level", (*LEVELS, "all"))
        if self.level_psis:
            parse_level_psis(format_level_psis(self.level_psis), LEVELS)
            if self.sweep_level is None:
                raise ConfigError("level_psis needs --sweep-level: it holds the levels that "
                                  "--sweep-level does not sweep (the methods' rows take --psis)")
            if self.sweep_level in dict(self.level_psis):
                raise ConfigError(f"level_psis must leave out {self.sweep_level}, the level "
                                  f"--sweep-level sweeps (got {format_level_psis(self.level_psis)})")
        if self.bootstrap < 0:
            raise ConfigError(f"bootstrap must be >= 0, got {self.bootstrap}")
        if self.num_samples is not None and self.num_samples <= self.k:
            raise ConfigError(f"num_samples must exceed k ({self.k})")
        if self.multimodal_assign == "lpips" and "multimodal" in self.methods and not self.lpips:
            raise ConfigError("multimodal_assign lpips needs --lpips")
