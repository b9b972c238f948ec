"""Multi-process runs on one machine: two processes (CPU collectives over gloo) against one.

Each test starts its processes on a port picked free at run time and ends every one of them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from conftest import REPO
from mlss_jax.method.config import MLSSConfig
from mlss_jax.method.runs import load_level
from mlss_jax.networks.config import GeneratorConfig
from mlss_jax.networks.generator import init_generator
from mlss_jax.runtime.distributed import DistributedConfig
from mlss_jax.weights.checkpoint import save_networks
from mlss_jax.weights.nvidia import convert_network_pickle

TWO_DEVICES = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
LEVEL_FLAGS = ["--level", "fine", "--num-clusters", "3", "--batch-size", "8", "--critic-hidden", "16",
               "--critic-layers", "2", "--eval-samples", "16", "--log-every", "2"]
GAN_FLAGS = ["--dataset-config", "tiny", "--z-dim", "8", "--w-dim", "8", "--mapping-layers", "2",
             "--channel-base", "64", "--channel-max", "8", "--batch-size", "8", "--r1-interval", "1",
             "--mbstd-group-size", "4", "--steps", "2", "--snapshot-every", "2", "--log-every", "1"]
PEER_TIMEOUT = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


# JAX's SLURM detection serves the coordinator on port 61440 + SLURM_JOB_ID % 4096
SLURM_PORTS = range(65535 - 2 ** 12 + 1, 65536)


def free_slurm_job_id() -> int:
    for port in np.random.default_rng().permutation(SLURM_PORTS):
        with socket.socket() as s:
            try:
                s.bind(("localhost", int(port)))
            except OSError:
                continue
        return int(port) - SLURM_PORTS.start
    raise AssertionError("no free port for a SLURM job id")


def launch(script: str, args: list[str], processes: int = 2, port: int | None = None,
           slurm: bool = False) -> list[subprocess.Popen]:
    """``processes`` processes of one run: with --coordinator and the process flags, or with
    ``slurm``, as ``srun`` starts them: --distributed and SLURM's variables only."""
    port = port or free_port()
    job = free_slurm_job_id() if slurm else None
    procs = []
    for i in range(processes):
        if slurm:
            env = {**os.environ, "SLURM_JOB_ID": str(job), "SLURM_STEP_NODELIST": "localhost",
                   "SLURM_NTASKS": str(processes), "SLURM_PROCID": str(i),
                   "SLURM_LOCALID": str(i), "SLURM_STEP_NUM_NODES": "1"}
            flags = ["--distributed"]
        else:
            env = None
            flags = ["--coordinator", f"localhost:{port}", "--num-processes", str(processes),
                     "--process-id", str(i)]
        procs.append(subprocess.Popen([sys.executable, str(REPO / script), *args, *flags,
                                       "--peer-timeout", str(PEER_TIMEOUT)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def finish(procs: list[subprocess.Popen], timeout: float = 600) -> list[tuple[int, str, str]]:
    """Wait for every process; any still running at the end is killed."""
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
        return [(p.returncode, *out) for p, out in zip(procs, outputs)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()


def run_alone(script: str, args: list[str]) -> subprocess.CompletedProcess:
    """One process over two (forced host) devices: the reference a two-process run must match."""
    proc = subprocess.run([sys.executable, str(REPO / script), *args], env=TWO_DEVICES,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def endless_level_run(generator: str, out: Path) -> list[subprocess.Popen]:
    """Two processes training a level far longer than any test waits, once both have logged
    twice (so they are past compiling and in their steps)."""
    procs = launch("train.py", ["--generator", generator, "--out", str(out), *LEVEL_FLAGS,
                                "--steps", "100000", "--checkpoint-every", "1000"])
    log, deadline = out / "fine" / "log.jsonl", time.time() + 300
    try:
        while not (log.is_file() and log.read_text().count("\n") >= 2) and time.time() < deadline:
            assert all(p.poll() is None for p in procs), procs[0].communicate()[1][-2000:]
            time.sleep(0.2)
    except BaseException:
        for p in procs:
            p.kill()
            p.communicate()
        raise
    return procs


def log_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory) -> str:
    cfg = GeneratorConfig(resolution=16, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64,
                          channel_max=8)
    out = tmp_path_factory.mktemp("gen") / "tiny"
    save_networks(out, generator_config=cfg,
                  generator_vars=jax.device_get(init_generator(cfg, jax.random.PRNGKey(0))))
    return str(out)


def test_flags_of_a_multi_process_run_are_checked():
    for kwargs, message in [
        (dict(coordinator="localhost:1234", num_processes=2, process_id=2), "in 0..1, got 2"),
        (dict(coordinator="localhost", num_processes=2, process_id=0), "must be HOST:PORT"),
        (dict(coordinator="h:99999", num_processes=2, process_id=0), "must be HOST:PORT"),
        (dict(num_processes=2), "needs --num-processes and --process-id"),
        (dict(coordinator="h:1", num_processes=1, process_id=0, distributed=True), "do not combine"),
        (dict(peer_timeout=0), "peer_timeout must be positive"),
    ]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
            DistributedConfig(**kwargs)
    assert not DistributedConfig().enabled and DistributedConfig(distributed=True).enabled


EXIT_AFTER_LEAVE = """
import sys
from mlss_jax.runtime import distributed
distributed.BEAT_SECONDS = 0.001   # the watchdog is in a call to JAX's client nearly all the time
distributed.join(distributed.DistributedConfig(coordinator=sys.argv[1], num_processes=1,
                                               process_id=0, peer_timeout=10))
distributed.leave()
print(sorted(t.name for t in __import__("threading").enumerate() if t.name.startswith("mlss-")))
"""


def test_a_finished_process_exits_cleanly_with_the_watchdog_busy():
    """After leave() no watchdog thread is left to be unwound by force in JAX's client while
    the interpreter exits, which aborts the process (SIGABRT, "exception not rethrown")."""
    for _ in range(3):
        proc = subprocess.run([sys.executable, "-c", EXIT_AFTER_LEAVE, f"localhost:{free_port()}"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip() == "[]"


@pytest.mark.slow
def test_an_unreachable_coordinator_is_one_line(tiny_generator, tmp_path):
    started = time.time()
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), "--generator", tiny_generator,
                           "--out", str(tmp_path / "run"), "--coordinator", f"localhost:{free_port()}",
                           "--num-processes", "2", "--process-id", "1", "--peer-timeout", "2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        proc.stderr.strip()] and "cannot reach the coordinator at localhost:" in proc.stderr
    assert time.time() - started < 60 and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_distributed_outside_a_cluster_is_one_line(tiny_generator, tmp_path):
    """--distributed where JAX detects no cluster says so, instead of JAX's unrelated
    "coordinator_address should be defined"."""
    cluster_vars = ("SLURM_", "OMPI_", "KUBERNETES_", "TPU_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(cluster_vars)}
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), "--generator", tiny_generator,
                           "--out", str(tmp_path / "run"), "--distributed"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "--distributed found no cluster here" in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_processes_train_a_level_like_one_and_one_process_resumes(tiny_generator, tmp_path):
    alone, shared = tmp_path / "alone", tmp_path / "shared"
    run_alone("train.py", ["--generator", tiny_generator, "--out", str(alone), *LEVEL_FLAGS,
                           "--steps", "8", "--checkpoint-every", "2"])
    results = finish(launch("train.py", ["--generator", tiny_generator, "--out", str(shared),
                                         *LEVEL_FLAGS, "--steps", "4", "--checkpoint-every", "2"]))
    for code, _, err in results:
        assert code == 0, err[-2000:]
    (_, main_out, _), (_, other_out, _) = results
    assert "fine: step 4" in main_out and other_out == ""   # only process 0 reports
    # the same losses as one process over the same number of devices
    for a, b in zip(log_lines(alone / "fine")[:2], log_lines(shared / "fine"), strict=True):
        assert a["step"] == b["step"]
        for key in ("wasserstein", "gp", "adversarial", "classification", "accuracy", "sigma"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-3, atol=1e-6, err_msg=key)
    # the two-process checkpoint resumed by one process reaches the uninterrupted result, to
    # the one-vs-two-device tolerance (tests/test_mlss_training.py explains it)
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), "--generator", tiny_generator,
                           "--out", str(shared), *LEVEL_FLAGS, "--steps", "8",
                           "--checkpoint-every", "2", "--resume"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = load_level(alone / "fine"), load_level(shared / "fine")
    assert a.step == b.step == 8
    diffs = jax.tree_util.tree_leaves(jax.tree_util.tree_map(
        lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))),
        (a.gen, a.classifier), (b.gen, b.classifier)))
    assert max(diffs) <= 2 * MLSSConfig().mapper_lr * 8


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_processes_under_slurm_train_the_gan_like_one(tmp_path):
    """Started as srun starts them (--distributed; JAX reads SLURM's variables)."""
    alone, shared = tmp_path / "alone", tmp_path / "shared"
    run_alone("tools/train_stylegan2.py", ["--out", str(alone), *GAN_FLAGS])
    results = finish(launch("tools/train_stylegan2.py", ["--out", str(shared), *GAN_FLAGS,
                                                         "--snapshot-pickles"], slurm=True))
    for code, _, err in results:
        assert code == 0, err[-2000:]
    assert results[1][1] == ""
    # the snapshot pickle, written by process 0, is the final network at the last snapshot
    assert ((shared / "snapshots" / "network-000002.pkl").read_bytes()
            == (shared / "network.pkl").read_bytes())
    assert not (alone / "snapshots").exists()
    for a, b in zip(log_lines(alone), log_lines(shared), strict=True):
        for key in ("g_loss", "d_loss", "r1", "real_score", "fake_score"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-7, err_msg=key)
    one = convert_network_pickle((alone / "network.pkl").read_bytes())
    two = convert_network_pickle((shared / "network.pkl").read_bytes())
    jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6),
                           (one.generator_vars, one.discriminator_vars),
                           (two.generator_vars, two.discriminator_vars))


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_processes_give_the_sweep_of_one(demo_sized_world, tmp_path):
    args = ["--pr-curve", "--generator", str(demo_sized_world / "gen"), "--levels-dir",
            str(demo_sized_world / "levels"), "--real", "shapes/tiny", "--samples", "40",
            "--methods", "stylegan,multimodal,multilevel", "--multimodal-k", "4", "--no-lpips",
            "--bootstrap", "20", "--psis", "0,1"]
    proc = subprocess.run([sys.executable, str(REPO / "evaluate.py"), *args, "--out",
                           str(tmp_path / "one")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = finish(launch("evaluate.py", [*args, "--out", str(tmp_path / "two")]))
    for code, _, err in results:
        assert code == 0, err[-2000:]
    assert results[1][1] == ""
    one = json.loads((tmp_path / "one" / "sweep.json").read_text())["rows"]
    two = json.loads((tmp_path / "two" / "sweep.json").read_text())["rows"]
    assert len(one) == 6
    for a, b in zip(one, two, strict=True):
        assert a.keys() == b.keys() and a["method"] == b["method"]
        for key in a:
            if key != "method":
                np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_a_killed_process_stops_the_other_within_the_bound(tiny_generator, tmp_path):
    out = tmp_path / "run"
    procs = endless_level_run(tiny_generator, out)
    try:
        procs[1].kill()
        killed = time.time()
        procs[0].wait(timeout=PEER_TIMEOUT + 60)
        waited = time.time() - killed
    finally:
        results = finish(procs, timeout=30)
    code, _, err = results[0]
    assert code == 1
    assert waited < PEER_TIMEOUT + 15
    assert err.strip().splitlines()[-1] == (
        f"train.py: error: lost process 1 of 2: no sign of life for {PEER_TIMEOUT} s; "
        "stopping process 0")
    assert "Traceback" not in err


@pytest.mark.slow
@pytest.mark.multiprocess
def test_a_signal_to_one_process_stops_both_at_the_same_checkpoint(tiny_generator, tmp_path):
    out = tmp_path / "run"
    procs = endless_level_run(tiny_generator, out)
    try:
        procs[1].send_signal(signal.SIGTERM)
        sent = time.time()
        for p in procs:
            p.wait(timeout=60)
        assert time.time() - sent < 30
    finally:
        results = finish(procs, timeout=30)
    steps = set()
    for code, _, err in results:
        assert code == 128 + signal.SIGTERM, err[-2000:]
        last = err.strip().splitlines()[-1]
        assert last.startswith("train.py: stopped by SIGTERM at step "), last
        steps.add(int(last.split("at step ")[1].split(";")[0]))
    (step,) = steps                      # both stopped at the same step, a logging step
    assert step % 2 == 0 and (out / "fine" / "checkpoints" / str(step)).is_dir()
