"""What each trained level's clusters capture in the demo world (the NMI table of docs/results.md).

    python tools/level_report.py                 # levels in runs/demo/levels, demo generator

For each level: C_l's accuracy at recovering the cluster k on fresh samples, and
the normalised mutual information between k and every ground-truth factor, read
off the generated images by the shipped factor classifier. Samples draw k
uniformly and the other levels' latents at random, so a level whose clusters
control shape shows high NMI with shape and none with hue. Writes
level_report.json and level_report.md to --out.
"""

from __future__ import annotations

import json
from pathlib import Path


from mlss_jax.errors import InputFileError
from mlss_jax.app import cli
from mlss_jax.app.paths import DEMO_CHECKPOINT, LEVELS_DIR, require_generator, require_output_dir
from mlss_jax.demo.world import FACTOR_CLASSIFIER, is_demo_world


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(prog="level_report.py", description=__doc__.splitlines()[0])
    parser.add_argument("--levels-dir", type=Path, default=LEVELS_DIR,
                        help=f"directory with one level run per subdirectory ({LEVELS_DIR})")
    parser.add_argument("--generator", type=Path, default=DEMO_CHECKPOINT,
                        help=f"generator checkpoint or pickle ({DEMO_CHECKPOINT})")
    parser.add_argument("--samples", type=int, default=5000, help="samples per level (5000)")
    parser.add_argument("--seed", type=cli.seed, default=1, help="seed of the samples (1)")
    parser.add_argument("--classifier", type=Path, default=FACTOR_CLASSIFIER,
                        help="factor classifier directory (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=Path("out/level_report"),
                        help="output directory (out/level_report)")
    args = parser.parse_args(argv)
    if args.samples <= 0:
        parser.error("--samples must be positive")

    import numpy as np

    from mlss_jax.app.manifest import write_outputs
    from mlss_jax.demo.shapes import FACTORS
    from mlss_jax.metrics.nmi import normalized_mutual_information
    from mlss_jax.method.levels import LEVELS
    from mlss_jax.method.models import classifier_accuracy, level_images
    from mlss_jax.method.runs import check_levels_dir, load_level
    from mlss_jax.demo.world import factor_predictor
    from mlss_jax.weights.load import load_generator
    from mlss_jax.networks.generator import to_uint8

    require_generator(args.generator)
    require_output_dir(args.out)
    levels = tuple(lv for lv in LEVELS if (args.levels_dir / lv).is_dir())
    check_levels_dir(args.levels_dir, levels or LEVELS)  # some of the three, not one level's run
    generator = load_generator(args.generator)
    res = generator.resolution
    if not is_demo_world(image_shape=(res, res, generator.img_channels)):
        raise InputFileError(f"{args.generator} makes {res}x{res} px images: the level report reads "
                             "the demo world's factors, whose classifier takes 32x32 RGB images")
    cli.check_fits_in_memory("--samples", f"--samples {args.samples}: {args.samples:,} images "
                             f"of {res}x{res} px",
                             args.samples * (3 * res * res + 8 * generator.z_dim))
    models = [load_level(args.levels_dir / level, generator) for level in levels]
    predictor = factor_predictor(args.classifier)
    rows = []
    for level, model in zip(levels, models):
        rng = np.random.default_rng(args.seed)
        z_dim, k = generator.z_dim, model.config.num_clusters
        clusters = rng.integers(0, k, args.samples)
        eps = rng.standard_normal((args.samples, z_dim)).astype(np.float32)
        z_other = rng.standard_normal((args.samples, z_dim)).astype(np.float32)
        images = np.concatenate([
            to_uint8(np.asarray(level_images(model.config, generator.config, generator.variables,
                                             model.gen, clusters[i:i + 250], eps[i:i + 250],
                                             z_other[i:i + 250])))
            for i in range(0, args.samples, 250)])
        factors = predictor.labels(images)
        nmi = {name: normalized_mutual_information(clusters, factors[name]) for name in FACTORS}
        accuracy = classifier_accuracy(model, generator.variables, args.samples, seed=args.seed + 1)
        rows.append({"level": level, "ws": list(model.level_range), "clusters": k,
                     "step": model.step, "classifier_accuracy": accuracy, "nmi": nmi})

    header = "| level | ws | C_l accuracy | " + " | ".join(FACTORS) + " |"
    lines = [header, "|---|---|---:|" + "---:|" * len(FACTORS)]
    for r in rows:
        best = max(r["nmi"].values())
        cells = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in r["nmi"].values()]
        lines.append(f"| {r['level']} | {r['ws'][0]}:{r['ws'][1]} | {r['classifier_accuracy']:.3f} | "
                     + " | ".join(cells) + " |")
    settings = {"generator": str(args.generator), "samples": args.samples, "seed": args.seed}

    def write(name: str, text: str):
        def writer(folder: Path) -> Path:
            (folder / name).write_text(text)
            return folder / name
        return writer

    written = write_outputs(args.out, "level_report", {
        "level_report": write("level_report.json",
                              json.dumps({**settings, "levels": rows}, indent=2) + "\n"),
        "level_report_md": write("level_report.md", "\n".join(lines) + "\n")}, settings)
    print("\n".join(lines) + "\n")
    for path in written.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    cli.run(main)
