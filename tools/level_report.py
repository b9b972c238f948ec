"""What each trained level's clusters capture in the demo world (the NMI table of docs/results.md).

    python tools/level_report.py                 # levels in runs/demo/levels, demo generator

For each level: C_l's accuracy at recovering the cluster k on fresh samples, and
the normalised mutual information between k and every ground-truth factor, read
off the generated images by the shipped factor classifier. Samples draw k
uniformly and the other levels' latents at random, so a level whose clusters
control shape shows high NMI with shape and none with hue. Writes
level_report.json and level_report.md to --out (mlss_jax/app/level_report.py).
"""

from __future__ import annotations

from mlss_jax.app import cli


def main(argv: list[str] | None = None) -> int:
    from mlss_jax.app.level_report import LevelReportConfig, write_level_report

    parser = cli.ArgumentParser(prog="level_report.py", description=__doc__.splitlines()[0])
    cli.add_config_flags(parser, LevelReportConfig)
    config = cli.config_from_args(parser, LevelReportConfig, parser.parse_args(argv))
    lines, written = write_level_report(config)
    print("\n".join(lines) + "\n")
    for path in written.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    cli.run(main)
