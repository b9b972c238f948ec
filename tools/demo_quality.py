"""Measure a demo generator against the demo world's ground truth (docs/demo-world.md's quality table).

    python tools/demo_quality.py                       # the bundled demo generator, 10k samples
    python tools/demo_quality.py --network runs/stylegan2-shapes/network.pkl \
        --baseline out/demo_quality/quality.json       # compared with an earlier measurement
    python tools/demo_quality.py --network runs/gan/snapshots/*.pkl --out out/snapshots

Generates samples, labels them with the shipped factor classifier and reports
(a) the share of samples whose every factor is predicted with confidence >=
--threshold, (b) per factor, the class frequencies of the samples next to
those of the training data, with their total variation distance, (c) precision and
recall at psi 1 against --real-samples held-out images (k = 3, the demo features), and
what keeps it below the quality bar. Writes quality.json, quality.md and samples.png to --out;
with several networks, to --out/<pickle name>/ each, and a ranking of them in
--out/ranking.md and ranking.json.
"""

from __future__ import annotations

import json
from pathlib import Path


from mlss_jax.errors import InputFileError
from mlss_jax.app import cli
from mlss_jax.demo.shapes import DEFAULT_WORLD, WORLDS
from mlss_jax.demo.world import DEMO_PICKLE, FACTOR_CLASSIFIERS


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(prog="demo_quality.py", description=__doc__.splitlines()[0])
    parser.add_argument("--network", type=Path, nargs="+", default=[DEMO_PICKLE],
                        help="network pickles or checkpoint directories (default: the bundled "
                             "demo pickle); several are measured on the same latents and ranked")
    parser.add_argument("--samples", type=int, default=10_000, help="generated samples (10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latents (0)")
    parser.add_argument("--threshold", type=float, default=0.9, help="confidence threshold (0.9)")
    parser.add_argument("--batch-size", type=int, default=250, help="generation batch (250)")
    parser.add_argument("--real-samples", type=int, default=10_000,
                        help="held-out images (indices 50,000 on, never trained on) that "
                             "precision and recall compare the samples with (10000)")
    parser.add_argument("--dataset-config", default="default", choices=["default", "tiny"],
                        help="shapes config whose train labels give the data frequencies")
    parser.add_argument("--data-dir", default=None, help="tfds data directory (default: tfds's)")
    parser.add_argument("--world", type=int, default=DEFAULT_WORLD, choices=WORLDS,
                        help=f"shapes world version the generator draws (default: {DEFAULT_WORLD});"
                             " picks the bundled factor classifier and the data frequencies")
    parser.add_argument("--classifier", type=Path, default=None,
                        help="factor classifier directory (default: the bundled one of --world)")
    parser.add_argument("--out", type=Path, default=Path("out/demo_quality"),
                        help="output directory (out/demo_quality)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="an earlier quality.json to compare with, factor by factor")
    args = parser.parse_args(argv)
    if args.samples <= 3 or args.real_samples <= 3 or args.batch_size <= 0:
        parser.error("--samples and --real-samples must be more than k = 3, --batch-size "
                     "positive")
    if not 0.0 < args.threshold <= 1.0:
        parser.error("--threshold must be in (0, 1]")
    networks = args.network
    names = [path.stem if path.suffix == ".pkl" else path.name for path in networks]
    if len(networks) > 1 and len(set(names)) < len(names):
        parser.error("several --network paths share a name; "
                     "their outputs would overwrite each other")
    for path in networks:
        if not path.exists():
            raise FileNotFoundError(f"no such network: {path}")
    from mlss_jax.demo.factor_classifier import load_classifier_config

    if args.classifier is None:
        args.classifier = FACTOR_CLASSIFIERS[args.world]
    world = load_classifier_config(args.classifier).world   # the world the instrument reads
    if world != args.world:
        parser.error(f"--classifier {args.classifier} reads world {world}, not --world "
                     f"{args.world}")
    baseline = None if args.baseline is None else read_baseline(args.baseline, args.threshold,
                                                                 world)

    from mlss_jax.demo.dataset import load_shapes
    from mlss_jax.demo.world import factor_predictor

    from mlss_jax.demo.shapes import render_examples, split_range
    from mlss_jax.metrics.features import demo_features

    predictor = factor_predictor(args.classifier)
    _, data_labels = load_shapes("train", args.dataset_config, args.data_dir, world=world)
    embed = demo_features(args.classifier)
    start = split_range("test", "default")[0]
    real_images, _ = render_examples(start, start + args.real_samples, world=world)
    real_features = embed(real_images)
    reports = []
    for path, name in zip(networks, names):
        out = args.out if len(networks) == 1 else args.out / name
        if len(networks) > 1:
            print(f"== {path}")
        reports.append(measure(path, out, args, predictor, data_labels, baseline,
                               embed, real_features))
    if len(networks) > 1:
        write_ranking(args.out, reports)
    return 0


def measure(network: Path, out: Path, args, predictor, data_labels, baseline: dict | None,
            embed, real_features) -> dict:
    """Measure one generator; write its quality.json, quality.md and samples.png to ``out``."""
    from mlss_jax.demo.quality import factor_quality, precision_recall_shortfalls
    from mlss_jax.metrics.precision_recall import precision_recall
    from mlss_jax.demo.shapes import tfds_name
    from mlss_jax.demo.world import is_demo_world
    from mlss_jax.weights.load import load_generator
    from mlss_jax.networks.sampling import generate_images, latents
    from mlss_jax.viz.grid import save_image_grid

    generator = load_generator(network)
    shape = (generator.resolution, generator.resolution, generator.img_channels)
    if not is_demo_world(image_shape=shape):
        raise InputFileError(f"{network} makes {generator.resolution}x{generator.resolution}x"
                             f"{generator.img_channels} images; the demo world is 32x32x3")
    images = generate_images(generator, latents(generator, args.samples, args.seed),
                             batch_size=args.batch_size)
    quality = factor_quality(predictor.probabilities(images), data_labels, args.threshold,
                             predictor.world)
    pr = precision_recall(real_features, embed(images), k=3)

    out.mkdir(parents=True, exist_ok=True)
    report = {"network": str(network), "samples": args.samples, "seed": args.seed,
              "dataset": tfds_name(args.dataset_config, predictor.world), "classifier": str(args.classifier),
              **quality.to_dict(), "precision": round(pr.precision, 4),
              "recall": round(pr.recall, 4), "real_samples": args.real_samples, "k": 3}
    lines = quality.table()
    if baseline is not None:
        rows, better = quality.comparison(baseline)
        report["baseline"] = {"path": str(args.baseline), "better_on_every_factor": better}
        lines += ["", f"Against {args.baseline} ({baseline['network']}):", "", *rows, "",
                  f"better on every factor: {'yes' if better else 'no'}"]
    lines += ["", f"precision {pr.precision:.3f}, recall {pr.recall:.3f} at psi 1 (k = 3, demo "
              f"features, against {args.real_samples} held-out images)"]
    shortfalls = quality.bar_shortfalls() + precision_recall_shortfalls(pr.precision, pr.recall)
    report["meets_bar"] = not shortfalls
    lines += ["", "quality bar: " + ("met" if not shortfalls else "not met: " + "; ".join(shortfalls))]
    (out / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "quality.md").write_text("\n".join(lines) + "\n")
    save_image_grid(images[:64], out / "samples.png", ncols=8)
    print("\n".join(lines))
    print(f"\nall factors confident (>= {args.threshold}): {quality.confident_share:.3f} of "
          f"{args.samples} samples; largest total variation: "
          f"{max(quality.total_variation.values()):.3f}")
    for name in ("quality.json", "quality.md", "samples.png"):
        print(f"wrote {out / name}")
    return report


def write_ranking(out: Path, reports: list[dict]) -> None:
    """Several networks' results, best first: better than the baseline on every factor (when
    one is given), then the larger share with all factors confident."""
    with_baseline = "baseline" in reports[0]
    ranked = sorted(reports, key=lambda r: (with_baseline
                                            and not r["baseline"]["better_on_every_factor"],
                                            -r["confident_share"]))
    header = ("| network | all factors confident | largest total variation | precision | recall | "
              "meets the bar |")
    rule = "|---|---:|---:|---:|---:|---|"
    if with_baseline:
        header += " better than the baseline on every factor |"
        rule += "---|"
    lines = [header, rule]
    for r in ranked:
        row = (f"| {r['network']} | {r['confident_share']:.3f} | "
               f"{max(r['total_variation'].values()):.3f} | {r['precision']:.3f} | "
               f"{r['recall']:.3f} | {'yes' if r['meets_bar'] else 'no'} |")
        if with_baseline:
            row += f" {'yes' if r['baseline']['better_on_every_factor'] else 'no'} |"
        lines.append(row)
    (out / "ranking.json").write_text(json.dumps(ranked, indent=2) + "\n")
    (out / "ranking.md").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    print(f"wrote {out / 'ranking.md'}\nwrote {out / 'ranking.json'}")


def read_baseline(path: Path, threshold: float, world: int) -> dict:
    """An earlier run's quality.json, checked before any work: one line if it is not one."""
    from mlss_jax.demo.shapes import world_factors

    try:
        baseline = json.loads(path.read_text())
        keys = {"network", "threshold", "confident_share", "confident_share_per_factor",
                "total_variation"}
        if (not isinstance(baseline, dict) or not keys <= baseline.keys()
                or not all(set(world_factors(world)) <= baseline[k].keys()
                           for k in ("confident_share_per_factor", "total_variation"))):
            raise ValueError
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError):
        raise InputFileError(f"{path}: not a quality.json written by demo_quality.py for the "
                             f"factors of world {world}") from None
    if baseline["threshold"] != threshold:
        raise InputFileError(f"{path} was measured at --threshold {baseline['threshold']}, not {threshold}")
    return baseline


if __name__ == "__main__":
    cli.run(main)
