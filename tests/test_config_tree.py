"""One config tree per command: nested configs become flat flags, and back into argv."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mlss_jax.app import cli
from mlss_jax.app.evaluate import EvaluateConfig
from mlss_jax.app.pipeline import PIPELINE_PRESETS, PipelineConfig, stages
from mlss_jax.metrics.features import FeatureConfig
from mlss_jax.metrics.sweep_config import SweepConfig


def parse(config_class, argv, presets=None):
    parser = cli.ArgumentParser(prog="test")
    parser.add_argument("--pr-curve", action="store_true")
    cli.add_config_flags(parser, config_class, presets=presets)
    args = parser.parse_args(argv)
    return cli.config_from_args(parser, config_class, args, presets=presets)


def test_nested_fields_are_flat_flags_that_fill_the_nested_configs():
    config = parse(EvaluateConfig, ["--k", "5", "--samples", "300", "--psis", "0,0.5,1",
                                    "--features", "vgg16", "--no-lpips", "--sweep-level", "fine",
                                    "--psi", "coarse=0.5", "--methods", "multilevel,stylegan"])
    assert config.sweep == SweepConfig(num_samples=300, k=5, psis=(0.0, 0.5, 1.0), lpips=False,
                                       sweep_level="fine", level_psis=(("coarse", 0.5),),
                                       methods=("stylegan", "multilevel"))
    assert config.embedding == FeatureConfig(features="vgg16")


@pytest.mark.parametrize("config", [
    EvaluateConfig(),
    EvaluateConfig(generator=Path("/x/gen"), real="lsun/car", centres=Path("c.npz"),
                   sweep=SweepConfig(num_samples=123, psis=(0.1, 0.7), k=4, lpips=False,
                                     cutoff=3, sweep_level="medium",
                                     level_psis=(("coarse", 0.25), ("fine", 1 / 3))),
                   embedding=FeatureConfig("inception", Path("w.pth"), 8)),
])
def test_a_config_turned_into_flags_parses_back_to_itself(config):
    assert parse(EvaluateConfig, cli.config_argv(config)) == config


def test_a_preset_is_the_base_that_nested_flags_override():
    quick = PIPELINE_PRESETS["quick"].config
    config = parse(PipelineConfig, ["--preset", "quick", "--samples", "40"], PIPELINE_PRESETS)
    assert config.sweep == dataclasses.replace(quick.sweep, num_samples=40)
    assert config.sweep.psis == (0.0, 0.25, 0.5, 0.75, 1.0)   # kept from the preset


def test_the_pipeline_builds_evaluate_py_s_command_with_the_same_flags(tmp_path):
    config = dataclasses.replace(PIPELINE_PRESETS["quick"].config,
                                 sweep=SweepConfig(num_samples=40, psis=(0.0, 1.0), lpips=False,
                                                   sweep_level="fine"))
    stage = {s.name: s for s in stages(config, tmp_path, lambda: None)}["evaluate"]
    (command,) = stage.commands
    assert command[1:3] == ["evaluate.py", "--pr-curve"]
    parsed = parse(EvaluateConfig, command[3:])
    assert parsed.sweep == config.sweep and parsed.embedding == config.embedding
    assert parsed.out == tmp_path / "evaluate" and parsed.real == config.real


def test_a_nested_config_s_error_names_its_flag():
    with pytest.raises(SystemExit):
        parse(EvaluateConfig, ["--samples", "3", "--k", "3"])
    assert cli.flag_message("num_samples must exceed k (3)", EvaluateConfig) == \
        "--samples must exceed k (3)"
    assert cli.flag_message("level_psis needs --sweep-level", PipelineConfig).startswith("--psi ")


def test_each_psi_rule_lives_in_one_place():
    for bad in [(2.0,), (0.5, 0.5), ()]:
        with pytest.raises(ValueError, match="psis"):
            SweepConfig(psis=bad)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        SweepConfig(sweep_level="fine", level_psis=(("coarse", 1.5),))
    with pytest.raises(ValueError, match="inception"):
        FeatureConfig("inception")


def test_two_fields_with_one_flag_are_refused():
    @dataclasses.dataclass(frozen=True)
    class Clash:
        seed: int = 0
        sweep: SweepConfig = SweepConfig()

    with pytest.raises(TypeError, match="seed"):
        cli.config_flags(Clash)


def test_settings_are_recorded_flat_by_flag_name():
    values = cli.config_values(EvaluateConfig(sweep=SweepConfig(k=7)))
    assert values["k"] == 7 and values["features"] == "demo" and values["generator"] == \
        "runs/demo/generator" and values["psis"][-1] == 1.0


def test_every_stage_of_run_py_gets_its_command_line_from_its_config(tmp_path):
    from mlss_jax.app.level_report import LevelReportConfig
    from mlss_jax.app.train import TrainConfig

    config = dataclasses.replace(PIPELINE_PRESETS["quick"].config, steps=7, train_eval_samples=30,
                                 report_samples=40)
    by_name = {s.name: s for s in stages(config, tmp_path, lambda: None)}
    (train,) = by_name["train-medium"].commands
    assert train[1] == "train.py"
    parsed = parse(TrainConfig, train[2:])
    assert (parsed.level, parsed.out, parsed.eval_samples, parsed.training.steps) == \
        ("medium", tmp_path / "levels", 30, 7)
    (report,) = by_name["level-report"].commands
    assert parse(LevelReportConfig, report[2:]) == LevelReportConfig(
        levels_dir=tmp_path / "levels", generator=tmp_path / "generator", samples=40,
        out=tmp_path / "level_report")


def test_a_nested_config_may_leave_fields_without_flags():
    from mlss_jax.app.train import TrainConfig

    names = {flag.name for flag in cli.config_flags(TrainConfig)}
    assert "steps" in names and "level" in names     # level: TrainConfig's own, not training's
    assert parse(TrainConfig, ["--level", "all", "--steps", "5"]).training.level == "fine"


EXPLORE_CONFIGS = [
    ("control", "ControlConfig", dict(level="coarse", clusters=(3, 0, 7), columns=5, seed=9)),
    ("tsne", "TsneConfig", dict(samples=50, perplexity=7.5)),
    ("interpolate", "InterpolateConfig", dict(seeds=(4, 9), space="w", mode="lerp", steps=3)),
    ("mix", "MixConfig", dict(seeds=(1, 5, 6), level="medium")),
    ("edit", "EditConfig", dict(pca=2, layers=(2, 5), strengths=(-1.5, 0.0, 2.0), seeds=(7,))),
    ("edit", "EditConfig", dict(interfacegan="hue=red", samples=300)),
    ("truncate", "TruncateConfig", dict(psi=(("coarse", 0.5), ("medium", 0.8)), seeds=(0, 1))),
    ("truncate", "TruncateConfig", dict(psi=0.25, level_psi=(("fine", 0.0),),
                                        methods=("stylegan", "multilevel"), multimodal_k=4)),
    ("render", "RenderConfig", dict(state="c=3,0,7&p=0.5,0.8,1", out=Path("o"))),
]


@pytest.mark.parametrize("command, name, fields", EXPLORE_CONFIGS)
def test_every_explore_command_is_a_config_that_round_trips_through_its_flags(command, name,
                                                                              fields):
    from mlss_jax.app import explore_config as explore

    config_class = explore.COMMANDS[command].config
    assert config_class.__name__ == name
    config = config_class(**fields)
    assert parse(config_class, cli.config_argv(config)) == config


def test_explore_commands_read_only_the_files_they_use_and_serve_nests_the_server_config():
    from mlss_jax.app import explore_config as explore
    from mlss_jax.app.serve import ServeConfig

    names = lambda command: {f.name for f in cli.config_flags(explore.COMMANDS[command].config)}
    assert "levels_dir" in names("control") and "levels_dir" not in names("edit")
    config = parse(explore.ServeCommandConfig, ["--port", "9000", "--host", "0.0.0.0"])
    assert config.server == ServeConfig(host="0.0.0.0", port=9000)
    assert parse(explore.ServeCommandConfig, []).server.port is None   # 8765, or a free one


@pytest.mark.parametrize("config_class, fields, message", [
    ("ControlConfig", dict(clusters=(0, 1)), "one cluster per level"),
    ("InterpolateConfig", dict(seeds=(3, 3)), "one seed twice"),
    ("InterpolateConfig", dict(space="w", mode="slerp"), "use --mode lerp"),
    ("TsneConfig", dict(samples=20), r"below --samples - 1 \(19\)"),
    ("EditConfig", dict(pca=1, interfacegan="hue=red"), "give one of"),
    ("EditConfig", dict(interfacegan="hue=teal"), "unknown attribute hue=teal"),
    ("TruncateConfig", dict(psi=1.5), r"psi must lie in \[0, 1\]"),
    ("TruncateConfig", dict(psi=(("coarse", 0.5),), methods=("stylegan",)), "must be multilevel"),
    ("TruncateConfig", dict(psi=(("coarse", 0.5),), level_psi=(("fine", 1.0),)), "left out"),
    ("ProjectCommandConfig", dict(image=Path("a.png"), seeds=(1,)), "left out with --seeds"),
])
def test_an_explore_config_checks_its_rules_where_its_fields_are_defined(config_class, fields,
                                                                         message):
    from mlss_jax.app import explore_config as explore
    from mlss_jax.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        getattr(explore, config_class)(**fields)


def test_run_py_draws_its_control_grids_with_explore_py_s_config(tmp_path):
    from mlss_jax.app.explore_config import ControlConfig, ExploreFiles

    by_name = {s.name: s for s in stages(PIPELINE_PRESETS["quick"].config, tmp_path, lambda: None)}
    commands = by_name["control"].commands
    assert all(command[1:3] == ["explore.py", "control"] for command in commands)
    files = ExploreFiles(generator=tmp_path / "generator", levels_dir=tmp_path / "levels",
                         out=tmp_path / "control")
    assert [parse(ControlConfig, command[3:]) for command in commands] == [
        *(ControlConfig(level=level, files=files) for level in ("coarse", "medium", "fine")),
        ControlConfig(clusters=(0, 0, 0), files=files)]
