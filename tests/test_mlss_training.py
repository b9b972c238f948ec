"""Level training (issue 4): level split, mixture, data parallelism, resume after SIGKILL, NaN, CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, run_script
from mlss_jax.errors import ConfigError, InputFileError
from mlss_jax.method.levels import LevelSplit
from mlss_jax.method.models import sample_mixture
from mlss_jax.method.config import MLSSConfig
from mlss_jax.method.models import compose_ws
from mlss_jax.method.runs import load_level
from mlss_jax.method.training import train_level
from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.generator import init_generator
from mlss_jax.runtime.loop import TrainingDiverged
from mlss_jax.runtime.run_state import RunCheckpointer
from mlss_jax.weights.checkpoint import CheckpointError, save_networks

from two_devices import MLSS_TINY


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory) -> str:
    """A random 16 px generator (6 ws inputs: coarse 0:2, medium 2:4, fine 4:5)."""
    cfg = GeneratorConfig(resolution=16, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64,
                          channel_max=8)
    out = tmp_path_factory.mktemp("gen") / "tiny"
    variables = init_generator(cfg, jax.random.PRNGKey(0))
    save_networks(out, generator_config=cfg, generator_vars=jax.device_get(variables))
    return str(out)


def test_level_split_defaults_and_errors():
    small = LevelSplit.default(8)                          # 32 px
    assert [small.range(lv) for lv in ("coarse", "medium", "fine")] == [(0, 2), (2, 4), (4, 7)]
    large = LevelSplit.default(14)                         # 256 px
    assert [large.range(lv) for lv in ("coarse", "medium", "fine")] == [(0, 4), (4, 8), (8, 13)]
    assert LevelSplit.parse("3,5", 8).range("medium") == (3, 5)
    for bad in ("0,4", "4,4", "2,7", "x"):
        with pytest.raises(ConfigError, match="split"):
            LevelSplit.parse(bad, 8)
    with pytest.raises(InputFileError, match="too small"):
        LevelSplit.default(4)


def test_compose_ws_replaces_exactly_the_level():
    f_ws = jnp.zeros((2, 8, 3))
    out = np.asarray(compose_ws(f_ws, jnp.ones((2, 3)), (2, 4)))
    assert np.all(out[:, 2:4] == 1) and np.all(out[:, :2] == 0) and np.all(out[:, 4:] == 0)


def test_mixture_sampling_is_reparameterised():
    mixture = {"mu": jnp.arange(6.0).reshape(3, 2), "log_sigma": jnp.log(jnp.full((3, 2), 2.0))}
    clusters, eps = jnp.asarray([2, 0]), jnp.asarray([[1.0, -1.0], [0.5, 0.0]])
    np.testing.assert_allclose(sample_mixture(mixture, clusters, eps), [[6.0, 3.0], [1.0, 1.0]])
    grads = jax.grad(lambda m: jnp.sum(sample_mixture(m, clusters, eps)))(mixture)
    np.testing.assert_allclose(grads["mu"], [[1, 1], [0, 0], [1, 1]])
    # d/dlog_sigma of sigma * eps = sigma * eps
    np.testing.assert_allclose(grads["log_sigma"], [[1.0, 0.0], [0, 0], [2.0, -2.0]])


@pytest.mark.slow
def test_one_and_two_devices_give_the_same_losses(tiny_generator):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "two_devices.py"), "mlss",
                           tiny_generator], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # Step 0's critic and classifier losses come before any update: equal to rounding.
    first_one, first_two = result["one"][0], result["two"][0]
    for key in ("wasserstein", "gp", "classification", "accuracy"):
        np.testing.assert_allclose(first_two[key], first_one[key], rtol=1e-5, err_msg=key)
    # After Adam updates: Adam divides each gradient element by its own magnitude, so an
    # element whose gradient is zero up to rounding (the two runs sum the batch in a
    # different order) moves by +-lr either way. Losses then agree to ~1e-4, and no state
    # element differs by more than such a step (2 lr per update).
    for one, two in zip(result["one"], result["two"], strict=True):
        for key in one:
            np.testing.assert_allclose(two[key], one[key], rtol=1e-3, atol=1e-6, err_msg=key)
    assert result["max_state_diff"] <= 2 * MLSSConfig().mapper_lr * len(result["one"])


def _train_cmd(generator: str, out, *extra: str) -> list[str]:
    flags = ["--num-clusters", "3", "--batch-size", "8", "--critic-hidden", "16",
             "--critic-layers", "2", "--eval-samples", "16"]
    return [sys.executable, str(REPO / "train.py"), "--generator", generator, "--out", str(out),
            "--level", "fine", *flags, *extra]


def _final_state(run_dir):
    model = load_level(run_dir)
    return model.step, {"gen": model.gen, "classifier": model.classifier}


STEPS = ["--steps", "200", "--checkpoint-every", "20", "--log-every", "20"]


@pytest.fixture(scope="module")
def uninterrupted(tiny_generator, tmp_path_factory):
    """The final (step, state) of a 200-step fine run that nothing interrupted."""
    out = tmp_path_factory.mktemp("full")
    full = subprocess.run(_train_cmd(tiny_generator, out, *STEPS), capture_output=True, text=True,
                          timeout=900)
    assert full.returncode == 0, full.stderr[-2000:]
    return _final_state(out / "fine")


def _start_and_stop(command: list[str], checkpoints, signum: int) -> subprocess.CompletedProcess:
    """Start ``command``, send ``signum`` once its step-40 checkpoint exists, wait for it."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while not (checkpoints / "40").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    sent = time.time()
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert time.time() - sent < 30, "the run took too long to stop"
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_stopped_run_resumes_to_the_uninterrupted_result(tiny_generator, uninterrupted,
                                                           tmp_path, signum):
    stopped = tmp_path / "stopped"
    checkpoints = stopped / "fine" / "checkpoints"
    result = _start_and_stop(_train_cmd(tiny_generator, stopped, *STEPS), checkpoints, signum)
    saved = sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
    assert saved and saved[-1] < 200, "the run ended before it could be stopped"
    if signum == signal.SIGKILL:
        assert result.returncode == -signal.SIGKILL
        # a crash can also leave a damaged checkpoint: damage the newest, so that the resume
        # must set it aside and start from the one before
        assert len(saved) >= 2
        for path in (checkpoints / str(saved[-1])).rglob("*"):
            if path.is_file():
                path.write_bytes(b"damaged")
    else:  # one line, exit 128 + signal, and a checkpoint of the step it stopped at
        assert result.returncode == 128 + signum, result.stderr[-2000:]
        line = result.stderr.strip().splitlines()[-1]
        name = signal.Signals(signum).name
        assert f"stopped by {name} at step {saved[-1]}; checkpoint saved" in line, line
        assert "Traceback" not in result.stderr

    resumed = subprocess.run(_train_cmd(tiny_generator, stopped, *STEPS, "--resume"),
                             capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    if signum == signal.SIGKILL:
        assert f"cannot restore step {saved[-1]}" in resumed.stderr
        assert "resuming from an older step" in resumed.stderr
        assert (stopped / "fine" / "corrupt-checkpoints" / str(saved[-1])).is_dir()  # kept aside
    step_a, state_a = uninterrupted
    step_b, state_b = _final_state(stopped / "fine")
    assert step_a == step_b == 200
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                           state_a, state_b)
    metrics = json.loads((stopped / "fine" / "metrics.json").read_text())
    assert metrics["step"] == 200 and 0.0 <= metrics["classifier_accuracy"] <= 1.0
    assert (stopped / "fine" / "previews" / "clusters-000200.png").exists()
    # the resumed log continues where the checkpoint was: every step once, in order
    logged = [json.loads(line)["step"] for line in (stopped / "fine" / "log.jsonl").open()]
    assert logged == list(range(20, 201, 20))


@pytest.mark.slow
def test_a_time_limited_run_carried_as_a_pack_resumes_to_the_uninterrupted_result(
        tiny_generator, uninterrupted, tmp_path):
    """The workflow of runs longer than one call: pause at --time-limit, pack, carry, unpack
    elsewhere, resume."""
    def train(out, *extra):
        return run_script(*_train_cmd(tiny_generator, out, *STEPS, *extra)[1:])

    code, _, err = train(tmp_path / "call1", "--time-limit", "1e-6")
    assert code == 75, err[-2000:]
    line = err.strip().splitlines()[-1]
    assert line.startswith("train.py: time limit reached at step 1 of 200; checkpoint saved in")
    assert line.endswith("(continue with --resume)") and "Traceback" not in err
    assert (tmp_path / "call1" / "fine" / "previews" / "clusters-000001.png").is_file()
    code, _, err = run_script("tools/run_pack.py", "pack", str(tmp_path / "call1" / "fine"),
                              str(tmp_path / "out" / "pack"))
    assert code == 0, err
    code, _, err = run_script("tools/run_pack.py", "unpack", str(tmp_path / "out" / "pack"),
                              str(tmp_path / "call2" / "fine"))
    assert code == 0, err
    code, _, err = train(tmp_path / "call2", "--resume")
    assert code == 0, err[-2000:]
    step_a, state_a = uninterrupted
    step_b, state_b = _final_state(tmp_path / "call2" / "fine")
    assert step_a == step_b == 200
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                           state_a, state_b)
    code, _, err = train(tmp_path / "call3", "--time-limit", "0")
    assert code == 2 and "--time-limit must be positive" in err


@pytest.mark.slow
def test_a_batch_too_large_for_the_device_is_one_line_naming_the_flag(tiny_generator, tmp_path):
    # 2^17 samples need ~19 GB of temporaries and the process may address 8 GiB (a normal run
    # needs under 4), so the allocation fails at once whatever the machine's memory and
    # overcommit policy. (Batches of 2^24 and up make XLA 0.11's CPU compiler constant-fold
    # batch-sized arrays for minutes, then crash.)
    batch = 1 << 17
    command = _train_cmd(tiny_generator, tmp_path / "run", "--steps", "2", "--batch-size", str(batch))
    limited = ("import resource, runpy, sys; "
               "resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30)); "
               "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", limited, *command[1:]], capture_output=True,
                          text=True, timeout=600)
    err = proc.stderr
    assert proc.returncode == 1 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"train.py: error: out of memory on cpu in level training at "
                          f"--batch-size {batch} (Out of memory allocating")
    assert err.strip().endswith("; lower --batch-size (nothing was saved)")
    # a failed start leaves nothing: a plain rerun is not refused, and no lock is left
    assert not (tmp_path / "run").exists(), sorted((tmp_path / "run").rglob("*"))


@pytest.mark.slow
@pytest.mark.multiprocess
def test_a_run_directory_in_use_is_refused(tiny_generator, tmp_path):
    run = tmp_path / "run"
    busy = subprocess.Popen(_train_cmd(tiny_generator, run, "--steps", "100000",
                                       "--checkpoint-every", "20"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 600
        while not (run / "fine" / "checkpoints" / "20").exists() and time.time() < deadline:
            assert busy.poll() is None, busy.stderr.read()[-2000:]
            time.sleep(0.05)
        second = subprocess.run(_train_cmd(tiny_generator, run, "--resume"), capture_output=True,
                                text=True, timeout=300)
        assert second.returncode == 1
        assert "in use by another process" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    finally:
        busy.terminate()
        busy.communicate(timeout=120)
    assert busy.returncode == 128 + signal.SIGTERM


@pytest.mark.slow
def test_level_all_checks_every_level_before_training(tiny_generator, tmp_path):
    (tmp_path / "x" / "fine").mkdir(parents=True)
    (tmp_path / "x" / "fine" / "config.json").write_text("{}")
    got, _, err = run_script("train.py", "--generator", tiny_generator, "--out",
                             str(tmp_path / "x"), "--level", "all", "--steps", "2")
    assert got == 1 and "fine already holds a run" in err
    assert not (tmp_path / "x" / "coarse").exists()  # nothing was trained


@pytest.mark.slow
def test_nan_stops_the_run_and_keeps_finite_checkpoints(tiny_generator, tmp_path):
    config = MLSSConfig(level="coarse", **{**MLSS_TINY, "steps": 20}, checkpoint_every=1,
                        log_every=1, learning_rate=1e30, mixture_lr=1e30, mapper_lr=1e30)
    with pytest.raises(TrainingDiverged) as diverged:
        train_level(config, tiny_generator, tmp_path / "run", progress=False)
    sane = dataclasses.replace(config, steps=2, learning_rate=3e-4, mixture_lr=1e-2, mapper_lr=1e-2)
    if not (tmp_path / "run").exists():  # diverged before the first checkpoint: nothing left
        assert "nothing was saved" in str(diverged.value)
        train_level(sane, tiny_generator, tmp_path / "run", progress=False)   # a plain rerun
        assert load_level(tmp_path / "run").step == 2
        return
    saved = RunCheckpointer(tmp_path / "run").latest_step()
    assert saved is not None     # a run that keeps its directory kept a checkpoint
    assert f"last good checkpoint (step {saved})" in str(diverged.value)
    model = load_level(tmp_path / "run")
    leaves = jax.tree_util.tree_leaves((model.gen, model.classifier))
    assert all(np.all(np.isfinite(x)) for x in leaves)
    # the directory is not stuck: --force replaces the diverged run
    with pytest.raises(FileExistsError, match="--force replaces it"):
        train_level(sane, tiny_generator, tmp_path / "run", progress=False)
    train_level(sane, tiny_generator, tmp_path / "run", progress=False, force=True)
    assert load_level(tmp_path / "run").step == 2


@pytest.mark.slow
def test_a_checkpoint_in_the_earlier_dict_layout_restores_into_the_train_state(tmp_path):
    # level runs written before the train state was a dataclass saved a dict of the same six
    # trees; they resume and load unchanged
    from mlss_jax.method.training import LevelTrainState, init_level_state

    g_cfg = GeneratorConfig(resolution=16, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64,
                            channel_max=8)
    config = MLSSConfig(level="fine", classifier="latent", init_mapper_from_f=False, **MLSS_TINY)
    state = jax.jit(init_level_state, static_argnums=(0, 1))(config, g_cfg, {})
    fields = ("gen", "critic", "classifier", "gen_opt", "critic_opt", "classifier_opt")
    earlier = {name: getattr(state, name) for name in fields}
    earlier["critic"] = jax.tree_util.tree_map(lambda x: x + 1.0, earlier["critic"])
    checkpointer = RunCheckpointer(tmp_path)
    checkpointer.save(3, earlier)
    step, restored = checkpointer.restore(state)
    checkpointer.close()
    assert step == 3 and isinstance(restored, LevelTrainState)
    for name in fields:
        jax.tree_util.tree_map(np.testing.assert_array_equal, getattr(restored, name), earlier[name])


@pytest.mark.parametrize("args, code, message", [
    (["--level", "everything"], 2, "--level must be one of coarse, medium, fine, all"),
    (["--num-clusters", "1"], 2, "--num-clusters must be at least 2"),
    (["--classifier", "audio"], 2, "--classifier must be one of"),
    (["--generator", "/nonexistent"], 1, "no generator at /nonexistent"),
])
def test_cli_errors_are_one_line(tmp_path, args, code, message):
    got, _, err = run_script("train.py", "--out", str(tmp_path / "x"), *args)
    assert got == code
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_rejects_a_bad_split_and_a_missing_level_checkpoint(tiny_generator, tmp_path):
    got, _, err = run_script("train.py", "--generator", tiny_generator, "--out", str(tmp_path / "x"),
                             "--split", "4,2")
    assert got == 2 and "--split must satisfy 0 < b1 < b2, got 4,2" in err, err
    assert len(err.strip().splitlines()) == 1
    got, _, err = run_script("train.py", "--generator", tiny_generator, "--out", str(tmp_path / "x"),
                             "--split", "2,5")  # 6 inputs: the fine level would have none
    assert got == 2 and "--split 2,5 must satisfy 0 < b1 < b2 < num_ws - 1 = 5" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "x").exists()
    with pytest.raises(CheckpointError, match="not a level checkpoint"):
        load_level(tmp_path / "nothing")


def test_help_documents_every_config_flag_with_its_default():
    code, out, _ = run_script("train.py", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "--num-clusters NUM_CLUSTERS K, Gaussians in the level's mixture. (default: 10)" in text
    assert "--init-mapper-from-f, --no-init-mapper-from-f start M_l from f's weights" in text
    for field in ("--mixture-lr", "--mapper-lr", "--critic-steps", "--split", "--classifier"):
        assert field in text
