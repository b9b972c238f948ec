"""The compact StyleGAN2 trainer: data-parallel equivalence, resume, divergence, outputs, CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import REPO, run_script
from mlss_jax.errors import ConfigError, InputFileError
from mlss_jax.gan.training import GANTrainConfig, init_train_state, train_gan
from mlss_jax.runtime.loop import TrainingDiverged
from mlss_jax.weights.load import load_generator
from mlss_jax.runtime.parallel import interleave
from mlss_jax.runtime.run_state import RunCheckpointer
from mlss_jax.weights.nvidia import convert_network_pickle

from two_devices import GAN_TINY as TINY


def tiny_images(n: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)


def restored_state(config: GANTrainConfig, run_dir, step: int | None = None) -> tuple[int, dict]:
    template = init_train_state(config, config.generator_config(8, 3),
                                config.discriminator_config(8, 3))
    return RunCheckpointer(run_dir).restore(template, step)


def test_interleave_keeps_minibatch_groups_on_one_device():
    n, group, devices = 16, 4, 2
    layout = np.asarray(interleave(np.arange(n), devices))
    # single-device groups: i ~ j iff i = j (mod n / group)
    for shard in np.split(layout, devices):
        local_groups = shard.reshape(group, -1).T      # the local mbstd layout
        for members in local_groups:
            assert len(set(members % (n // group))) == 1


@pytest.mark.slow
def test_one_and_two_devices_give_the_same_steps():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "two_devices.py"), "gan"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for one, two in zip(result["one"], result["two"], strict=True):
        for key in one:
            np.testing.assert_allclose(two[key], one[key], rtol=1e-4, atol=1e-6, err_msg=key)
    assert result["one"][0]["r1"] > 0                     # the R1 step was among them
    assert result["max_state_diff"] < 1e-5


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_and_writes_its_outputs(tmp_path):
    config = GANTrainConfig(**TINY, steps=4, snapshot_every=2, log_every=1)
    images = tiny_images()
    full = train_gan(config, images, tmp_path / "full", progress=False)
    train_gan(GANTrainConfig(**{**config.to_dict(), "steps": 2}), images, tmp_path / "split",
              progress=False, snapshot_pickles=True)
    resumed = train_gan(config, images, tmp_path / "split", resume=True, progress=False,
                        snapshot_pickles=True)
    assert full.step == resumed.step == 4
    step_a, state_a = restored_state(config, tmp_path / "full")
    step_b, state_b = restored_state(config, tmp_path / "split")
    assert step_a == step_b == 4
    jax.tree_util.tree_map(np.testing.assert_array_equal, state_a, state_b)

    run = tmp_path / "split"
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2, 3, 4]
    full_log = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert [entry["r1"] for entry in log] == [entry["r1"] for entry in full_log]
    # R1 runs at steps 0 and 2 (r1_interval 2); the steps between log the latest penalty
    r1 = [entry["r1"] for entry in log]
    assert r1[0] == r1[1] > 0 and r1[2] == r1[3] > 0 and r1[0] != r1[2]
    assert json.loads((run / "config.json").read_text())["steps"] == 4
    samples = sorted(p.name for p in (run / "samples").iterdir())
    assert samples == ["fakes-000002.png", "fakes-000004.png", "reals.png"]
    # The exported pickle is the EMA generator, readable as an official TF pickle.
    generator = load_generator(resumed.pickle_path)
    jax.tree_util.tree_map(np.testing.assert_array_equal, generator.variables["params"],
                           state_b.g_ema["params"])
    # snapshot pickles: one per snapshot, each that step's EMA generator
    snapshots = sorted(p.name for p in (run / "snapshots").iterdir())
    assert snapshots == ["network-000002.pkl", "network-000004.pkl"]
    assert (run / "snapshots" / snapshots[1]).read_bytes() == resumed.pickle_path.read_bytes()
    _, state_at_2 = restored_state(config, run, step=2)
    at_2 = load_generator(run / "snapshots" / snapshots[0])
    jax.tree_util.tree_map(np.testing.assert_array_equal, at_2.variables["params"],
                           state_at_2.g_ema["params"])
    assert not (tmp_path / "full" / "snapshots").exists()   # only when asked for


@pytest.mark.slow
def test_resume_refuses_a_changed_config(tmp_path):
    config = GANTrainConfig(**TINY, steps=1)
    train_gan(config, tiny_images(), tmp_path / "run", progress=False)
    changed = GANTrainConfig(**{**config.to_dict(), "learning_rate": 0.01, "steps": 2})
    with pytest.raises(ConfigError, match="learning_rate"):
        train_gan(changed, tiny_images(), tmp_path / "run", resume=True, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train_gan(config, tiny_images(), tmp_path / "run", progress=False)


@pytest.mark.slow
def test_divergence_stops_and_keeps_only_finite_checkpoints(tmp_path):
    config = GANTrainConfig(**TINY, steps=8, snapshot_every=1, log_every=1, learning_rate=1e12)
    with pytest.raises(TrainingDiverged) as diverged:
        train_gan(config, tiny_images(), tmp_path / "run", progress=False)
    if not (tmp_path / "run").exists():  # diverged before the first checkpoint: nothing left
        assert "nothing was saved" in str(diverged.value)
        return
    saved = RunCheckpointer(tmp_path / "run").latest_step()
    assert saved is not None     # a run that keeps its directory kept a checkpoint
    assert f"last good checkpoint (step {saved})" in str(diverged.value)
    _, state = restored_state(config, tmp_path / "run")
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(state))
    assert not (tmp_path / "run" / "network.pkl").exists()


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "--batch-size must be positive"),
    (["--style-mixing", "1.5"], "--style-mixing must be a probability"),
    (["--steps", "x"], "invalid int value"),
    (["--preset", "demo-continue"], "--preset demo-continue continues a trained generator: give "
                                    "its pickle with --init-from"),
])
def test_cli_rejects_bad_flags(tmp_path, args, message):
    code, _, err = run_script("tools/train_stylegan2.py", "--out", str(tmp_path / "run"), *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_the_second_stage_preset_changes_only_its_length_seed_and_ema_ramp_up():
    from mlss_jax.gan.training import GAN_PRESETS

    demo, second = GAN_PRESETS["demo"].config, GAN_PRESETS["demo-continue"].config
    # the same recipe (every setting that shapes the networks and their training), so that the
    # two stages are one generator's training; new random draws, and the EMA's full half-life
    assert dataclasses.replace(second, steps=demo.steps, seed=demo.seed,
                               ema_rampup=demo.ema_rampup) == demo
    assert second.seed != demo.seed and second.ema_rampup is None


@pytest.mark.slow
def test_cli_resume_without_a_run_is_a_one_line_error(tmp_path):
    code, _, err = run_script("tools/train_stylegan2.py", "--out", str(tmp_path / "none"),
                              "--resume", "--dataset-config", "tiny")
    assert code == 1
    assert "nothing to resume" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_run_can_start_from_a_pickle(tmp_path):
    config = GANTrainConfig(**TINY, steps=1)
    first = train_gan(config, tiny_images(), tmp_path / "a", progress=False)
    start = GANTrainConfig(**{**config.to_dict(), "steps": 0})
    second = train_gan(start, tiny_images(), tmp_path / "b", progress=False,
                       init_from=first.pickle_path)
    a, b = load_generator(first.pickle_path), load_generator(second.pickle_path)
    jax.tree_util.tree_map(np.testing.assert_array_equal, a.variables, b.variables)
    other = GANTrainConfig(**{**start.to_dict(), "w_dim": 16})
    with pytest.raises(InputFileError, match="differs from this run's"):
        train_gan(other, tiny_images(), tmp_path / "c", progress=False, init_from=first.pickle_path)

    # a wider D: only G comes from the pickle, and only when asked
    wider_d = GANTrainConfig(**{**start.to_dict(), "d_channel_base": 128, "d_channel_max": 16})
    with pytest.raises(InputFileError, match="no discriminator matching.*--fresh-discriminator"):
        train_gan(wider_d, tiny_images(), tmp_path / "d", progress=False, init_from=first.pickle_path)
    third = train_gan(wider_d, tiny_images(), tmp_path / "e", progress=False,
                      init_from=first.pickle_path, fresh_discriminator=True)
    nets = convert_network_pickle(third.pickle_path.read_bytes())
    jax.tree_util.tree_map(np.testing.assert_array_equal, a.variables,
                           load_generator(third.pickle_path).variables)
    assert nets.generator_config.channel_max == 8 and nets.discriminator_config.channel_max == 16
    assert json.loads((tmp_path / "e" / "config.json").read_text())["fresh_discriminator"] is True


def test_a_run_that_recorded_its_data_by_the_earlier_name_keeps_that_name_to_resume(tmp_path):
    import json

    from mlss_jax.app.train_gan import dataset_name

    assert dataset_name("tiny", 2) == "shapes/tiny:2.0.0"       # a new run: the tfds name
    for world, earlier in ((1, "shapes/tiny"), (2, "shapes/tiny@world2")):
        run = tmp_path / f"w{world}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"dataset": earlier}))
        assert dataset_name("tiny", world, run) == earlier
        assert dataset_name("default", world, run).startswith("shapes/default:")  # other data
    assert dataset_name("tiny", 1, tmp_path / "w2") == "shapes/tiny:1.0.0"   # other world


def test_a_resumed_run_keeps_its_world_and_refuses_another(tmp_path):
    """World 1 was the default once: a run made then resumes on world 1 without --world, and
    --world 2 is refused with one line before any data is rendered."""
    import json

    from conftest import run_script
    from mlss_jax.app.train_gan import recorded_world

    for name, world in (("shapes/tiny", 1), ("shapes/default@world2", 2),
                        ("shapes/tiny:1.0.0", 1), ("shapes/default:2.0.0", 2)):
        (tmp_path / name.replace("/", "-")).mkdir()
        (tmp_path / name.replace("/", "-") / "config.json").write_text(json.dumps({"dataset": name}))
        assert recorded_world(tmp_path / name.replace("/", "-")) == world, name
    assert recorded_world(tmp_path / "no-run") is None
    code, _, err = run_script("tools/train_stylegan2.py", "--out", str(tmp_path / "shapes-tiny"),
                              "--resume", "--world", "2", "--dataset-config", "tiny")
    assert code == 1 and err.strip() == (f"train_stylegan2.py: error: {tmp_path / 'shapes-tiny'} was "
                                         "trained on shapes world 1, not --world 2")
