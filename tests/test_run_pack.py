"""Run packs: a run carried as flat files between machines resumes exactly; damaged, missing,
unsafe or misplaced packs are refused before anything is written."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time

import jax
import numpy as np
import pytest

from conftest import run_script
from mlss_jax.gan.training import GANTrainConfig, train_gan
from mlss_jax.runtime.loop import TrainingPaused
from mlss_jax.runtime.run_pack import RunPackError, pack_run, unpack_run
from mlss_jax.runtime.files import mark_dir
from mlss_jax.runtime.run_state import RunDirInUse, lock_run_dir
from test_gan_training import TINY, restored_state, tiny_images


def _tree(root) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def fake_run(tmp_path):
    """A run directory shaped like a trainer's: two checkpoints (deep folders), a log, samples,
    a large network.pkl, snapshot pickles, a lock file, a checkpoint set aside as corrupt and
    the marker that says the project wrote it."""
    run = tmp_path / "run"
    rng = np.random.default_rng(0)
    for step in (2, 4):
        deep = run / "checkpoints" / str(step) / "default" / "ocdbt.process_0" / "d"
        deep.mkdir(parents=True)
        (deep / "abc").write_bytes(rng.bytes(300_000))
        (run / "checkpoints" / str(step) / "_CHECKPOINT_METADATA").write_text(f"step {step}")
    (run / "corrupt-checkpoints" / "6").mkdir(parents=True)
    (run / "corrupt-checkpoints" / "6" / "x").write_bytes(b"damaged")
    (run / "samples").mkdir()
    (run / "samples" / "fakes-000004.png").write_bytes(rng.bytes(5_000))
    (run / "config.json").write_text(json.dumps({"steps": 10}))
    (run / "log.jsonl").write_text('{"step": 4}\n')
    (run / "network.pkl").write_bytes(rng.bytes(1_500_000))
    (run / "snapshots").mkdir()
    (run / "snapshots" / "network-000004.pkl").write_bytes(rng.bytes(1_500_000))
    (run / ".lock").write_text("123\n")
    mark_dir(run, "run")
    return run


def test_a_pack_is_flat_parts_of_the_newest_checkpoint_and_restores_the_run(fake_run, tmp_path):
    part = 64 << 10
    files = pack_run(fake_run, tmp_path / "pack", part_bytes=part)
    pack = tmp_path / "pack"
    assert sorted(f.name for f in pack.iterdir()) == sorted(f.name for f in files)
    assert all(f.parent == pack and f.is_file() for f in files)      # no folders to carry
    parts = [f for f in files if ".tar.gz." in f.name]
    assert len(parts) >= 4 and all(f.stat().st_size <= part for f in parts)
    manifest = json.loads((pack / "pack.json").read_text())
    assert manifest["step"] == 4 and [p["name"] for p in manifest["parts"]] == [f.name for f in parts]
    assert [o["name"] for o in manifest["outputs"]] == ["network.pkl"]   # beside, not inside
    assert (pack / "network.pkl").read_bytes() == (fake_run / "network.pkl").read_bytes()

    run_dir, step = unpack_run(pack, tmp_path / "restored")
    assert step == 4
    expected = {k: v for k, v in _tree(fake_run).items()
                if not k.startswith(("checkpoints/2/", "corrupt-checkpoints/", ".lock",
                                     "snapshots/"))}
    assert _tree(run_dir) == expected
    assert not (tmp_path / "restored.partial").exists()

    # the large output need not travel back: without it the run is restored all the same
    (pack / "network.pkl").unlink()
    run_dir, _ = unpack_run(pack, tmp_path / "without-pickle")
    assert _tree(run_dir) == {k: v for k, v in expected.items() if k != "network.pkl"}


def test_packing_again_replaces_the_pack_and_a_live_run_is_refused(fake_run, tmp_path):
    pack_run(fake_run, tmp_path / "pack", part_bytes=64 << 10)
    files = pack_run(fake_run, tmp_path / "pack", part_bytes=1 << 20)
    assert sorted(f.name for f in (tmp_path / "pack").iterdir()) == sorted(f.name for f in files)
    with lock_run_dir(fake_run):
        with pytest.raises(RunDirInUse):
            pack_run(fake_run, tmp_path / "pack2")
    assert not (tmp_path / "pack2").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(RunPackError, match="not a pack"):
        pack_run(fake_run, tmp_path / "other")
    assert (tmp_path / "other" / "keep.txt").read_text() == "mine"
    with pytest.raises(RunPackError, match="inside the run"):
        pack_run(fake_run, fake_run / "pack")


@pytest.mark.parametrize("damage, message", [
    ("truncate", "is damaged"), ("delete", "is missing"), ("manifest", "is corrupt"),
    ("pickle", "network.pkl) is damaged"),
])
def test_a_damaged_pack_is_one_line_and_writes_nothing(fake_run, tmp_path, damage, message):
    files = pack_run(fake_run, tmp_path / "pack", part_bytes=64 << 10)
    second = files[2]
    if damage == "truncate":
        second.write_bytes(second.read_bytes()[:-10])
    elif damage == "delete":
        second.unlink()
    elif damage == "manifest":
        (tmp_path / "pack" / "pack.json").write_text('{"format": 1, "step": 4, "parts": [{}]}')
    else:
        (tmp_path / "pack" / "network.pkl").write_bytes(b"half a pickle")
    code, out, err = run_script("tools/run_pack.py", "unpack", str(tmp_path / "pack"),
                                str(tmp_path / "restored"))
    assert code == 1 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "restored").exists() and not (tmp_path / "restored.partial").exists()


def test_unsafe_entries_and_existing_runs_are_refused(fake_run, tmp_path):
    pack = tmp_path / "pack"
    pack_run(fake_run, pack)
    with pytest.raises(FileExistsError, match="--force"):
        unpack_run(pack, fake_run)
    with lock_run_dir(fake_run):                                # a run training there
        with pytest.raises(RunDirInUse):
            unpack_run(pack, fake_run, force=True)
    assert (fake_run / "corrupt-checkpoints").is_dir()        # untouched
    run_dir, _ = unpack_run(pack, fake_run, force=True)
    assert not (run_dir / "corrupt-checkpoints").exists()

    # a hostile archive with a correct pack.json: an entry that climbs out of the run
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name, body in (("config.json", b"{}"), ("../escaped.txt", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    (pack / "run.tar.gz.000").write_bytes(data.getvalue())
    manifest = json.loads((pack / "pack.json").read_text())
    manifest["parts"] = [{"name": "run.tar.gz.000", "bytes": len(data.getvalue()),
                          "sha256": hashlib.sha256(data.getvalue()).hexdigest()}]
    (pack / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(RunPackError, match="unsafe entry '../escaped.txt'"):
        unpack_run(pack, tmp_path / "hostile")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "hostile").exists()


@pytest.mark.slow
def test_a_paused_gan_run_carried_as_a_pack_resumes_to_the_uninterrupted_result(tmp_path):
    config = GANTrainConfig(**TINY, steps=4, snapshot_every=2, log_every=1)
    images = tiny_images()
    train_gan(config, images, tmp_path / "full", progress=False)
    with pytest.raises(TrainingPaused) as paused:   # the deadline has passed: pause after a step
        train_gan(config, images, tmp_path / "paused", progress=False, deadline=time.monotonic())
    assert paused.value.step == 1 and paused.value.exit_code == 75
    assert "time limit reached at step 1 of 4" in str(paused.value)
    # a paused run has its outputs for the step reached, like a finished one
    assert (tmp_path / "paused" / "network.pkl").is_file()
    assert (tmp_path / "paused" / "samples" / "fakes-000001.png").is_file()

    pack_run(tmp_path / "paused", tmp_path / "pack", part_bytes=32 << 10)
    unpack_run(tmp_path / "pack", tmp_path / "elsewhere")
    train_gan(config, images, tmp_path / "elsewhere", resume=True, progress=False)
    step_a, state_a = restored_state(config, tmp_path / "full")
    step_b, state_b = restored_state(config, tmp_path / "elsewhere")
    assert step_a == step_b == 4
    jax.tree_util.tree_map(np.testing.assert_array_equal, state_a, state_b)
    assert ((tmp_path / "full" / "network.pkl").read_bytes()
            == (tmp_path / "elsewhere" / "network.pkl").read_bytes())


@pytest.mark.parametrize("args, message", [
    (["pack", "nowhere", "p"], "not a run directory"),
    (["pack", "nowhere", "p", "--part-mib", "0"], "--part-mib must be at least"),
    (["unpack", "nowhere", "r"], "not a run pack"),
    (["repack"], "invalid choice"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    code, _, err = run_script("tools/run_pack.py", *[str(tmp_path / a) if a in ("nowhere", "p", "r")
                                                      else a for a in args])
    assert code in (1, 2) and message in err and len(err.strip().splitlines()) == 1, err
