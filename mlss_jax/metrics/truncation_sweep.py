"""The truncation methods compared on the same latents: the psi sweep behind ``evaluate.py --pr-curve``.

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
import json
from pathlib import Path
from typing import Callable

import jax.numpy as jnp
import numpy as np

from mlss_jax.errors import ConfigError, InputFileError
from mlss_jax.config import check_choice, check_positive, check_seed, choices
from mlss_jax.method.centres import CENTRE_MODES, cluster_centres
from mlss_jax.method.levels import LEVELS
from mlss_jax.method.models import LevelModel
from mlss_jax.metrics.frechet import frechet_distance, gaussian_stats
from mlss_jax.metrics.intervals import bootstrap_interval, proportion_interval
from mlss_jax.metrics.precision_recall import knn_radii, mutual_membership
from mlss_jax.networks.sampling import latents, synthesize
from mlss_jax.networks.stylegan2 import StyleGAN2Generator
from mlss_jax.runtime import distributed
from mlss_jax.runtime.parallel import data_mesh
from mlss_jax.method.truncation import (METHODS, TruncationTargets, check_psis,
                                        format_level_psis, multimodal_centres, nearest_centre,
                                        parse_level_psis, parse_methods, truncate)
from mlss_jax.networks.generator import to_uint8

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


def _batched(n: int, batch: int):
    return [(i, min(i + batch, n)) for i in range(0, n, batch)]


def untruncated_samples(generator: StyleGAN2Generator, levels: list[LevelModel], num: int,
                        seed: int, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ws [N, num_ws, w_dim], uint8 images and cluster assignments [N, L] of f(z) samples
    (the rows shared out over the processes of a multi-process run)."""
    def samples(z: np.ndarray) -> dict[str, np.ndarray]:
        ws, images, assignments = [], [], []
        for a, b in _batched(len(z), batch):
            w = generator.mapping(z[a:b])
            img = generator.synthesis(w)
            ws.append(np.asarray(w))
            images.append(to_uint8(np.asarray(img)))
            assignments.append(np.stack([m.assign(img, w) for m in levels], axis=1)
                               if levels else np.zeros((b - a, 0), np.int32))
        return {"ws": np.concatenate(ws), "images": np.concatenate(images),
                "assignments": np.concatenate(assignments).astype(np.int32)}

    out = distributed.split_rows(samples, latents(generator, num, seed))
    return out["ws"], out["images"], out["assignments"]


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


def nearest_by_image(generator: StyleGAN2Generator, images: np.ndarray, centres: np.ndarray,
                     perceptual: Callable[[np.ndarray, np.ndarray], np.ndarray],
                     batch_size: int) -> np.ndarray:
    """[N] the centre whose image (its w on every input) is nearest to each image in the
    ``perceptual`` distance, as the Self-Distilled StyleGAN demo assigns centres by LPIPS."""
    centre_ws = np.broadcast_to(centres[:, None], (len(centres), generator.num_ws, centres.shape[1]))
    centre_images = synthesize(generator, centre_ws, batch_size)

    def nearest(part: np.ndarray) -> np.ndarray:
        distances = np.stack([perceptual(part, np.broadcast_to(c, part.shape))
                              for c in centre_images], 1)
        return np.argmin(distances, axis=1).astype(np.int32)

    return distributed.split_rows(nearest, images)


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


def level_tradeoffs(rows: list[dict]) -> list[dict]:
    """For each per-level sweep in the rows: the precision gained and the recall lost between its
    weakest and strongest truncation (psi max -> psi min), and their ratio."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows if r["method"].startswith("multilevel:")):
        series = sorted((r["psi"], r["precision"], r["recall"]) for r in rows if r["method"] == method)
        (_, p_strong, r_strong), (_, p_weak, r_weak) = series[0], series[-1]
        gain, loss = p_strong - p_weak, r_weak - r_strong
        out.append({"level": method.partition(":")[2], "precision_gain": gain, "recall_loss": loss,
                    "gain_per_loss": gain / loss if loss > 0 else None})
    return out


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
    real_features = distributed.split_rows(embed, real_images).astype(np.float32)
    knn = distributed.row_sharded(lambda queries, support: knn_radii(support, config.k,
                                                                     queries=queries))
    radii = lambda f: knn(f, f)
    real_radii = radii(real_features)
    # one pass over the generated-to-real distances gives precision (by rows) and recall (by
    # columns); the generated rows and their radii are sharded alike
    both_ways = distributed.row_sharded(
        lambda fake, fake_radii, real, real_r: mutual_membership(fake, real, fake_radii, real_r),
        row_args=2, any_of=1)
    # the real set goes to every device once, not once per truncated set
    real_on_devices = distributed.replicate((real_features, real_radii), data_mesh())
    real_stats = gaussian_stats(real_features)
    labels = lambda x: {k: v.astype(np.int32) for k, v in factors(x).items()}
    reference_factors = distributed.split_rows(labels, images) if factors else None
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
        measured = distributed.split_rows(measure, result.truncated(method, psi_arg), images)
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


def _curve(rows: list[dict], method: str, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    pts = sorted((r[x], r[y]) for r in rows if r["method"] == method)
    return np.asarray([p[0] for p in pts]), np.asarray([p[1] for p in pts])


def compare_at_equal(rows: list[dict], x: str, a: str = "multilevel", b: str = "stylegan") -> dict:
    """Mean precision gap (a - b) at equal ``x`` (recall or fid), by interpolation.

    Each method's precision (and its interval, where the rows have one) is linearly
    interpolated as a function of ``x`` over its psi points, on the range of ``x`` both cover.
    ``a_higher_share``: where a's precision is higher; ``significant_share``: where the two
    intervals do not overlap.
    """
    ca, cb = _curve(rows, a, x, "precision"), _curve(rows, b, x, "precision")
    if not len(ca[0]) or not len(cb[0]):
        return {"overlap": None, "mean_gap": None, "a_higher_share": None, "significant_share": None}
    lo, hi = max(ca[0].min(), cb[0].min()), min(ca[0].max(), cb[0].max())
    if hi <= lo:
        return {"overlap": None, "mean_gap": None, "a_higher_share": None, "significant_share": None}
    grid = np.linspace(lo, hi, 50)
    gap = np.interp(grid, *ca) - np.interp(grid, *cb)
    result = {"overlap": [float(lo), float(hi)], "mean_gap": float(gap.mean()),
              "a_higher_share": float(np.mean(gap > 0)), "significant_share": None}
    if all("precision_lo" in r for r in rows) and not any(np.isnan(r["precision_lo"]) for r in rows):
        band = lambda m, y: np.interp(grid, *_curve(rows, m, x, y))
        apart = (band(a, "precision_lo") > band(b, "precision_hi")) | \
            (band(b, "precision_lo") > band(a, "precision_hi"))
        result["significant_share"] = float(np.mean(apart))
    return result


def pairwise_summary(rows: list[dict]) -> list[dict]:
    """For each pair of methods in the rows, :func:`compare_at_equal` at equal recall and FID."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    return [{"a": a, "b": b, "x": x, **compare_at_equal(rows, x, a, b)}
            for i, a in enumerate(methods) for b in methods[i + 1:] for x in ("recall", "fid")]
