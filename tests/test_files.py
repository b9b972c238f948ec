"""Files written whole or not at all (``mlss_jax.runtime.files``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlss_jax.runtime.files import write_atomic


def test_a_file_is_replaced_whole_or_kept_as_it_was(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    assert write_atomic(target, "old") == target
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]

    def part_then_interrupted(self, data):       # Ctrl-C while the new text is half written
        with open(self, "w") as f:
            f.write(data[:2])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", part_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "newer")
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]


def test_a_run_lock_is_exclusive_and_its_file_goes_with_it(tmp_path):
    from mlss_jax.runtime.run_state import LOCK, RunDirInUse, lock_run_dir

    lock = lock_run_dir(tmp_path)
    assert (tmp_path / LOCK).read_text().strip() == str(__import__("os").getpid())
    with pytest.raises(RunDirInUse, match="in use by another process"):
        lock_run_dir(tmp_path)
    lock.close()
    assert not (tmp_path / LOCK).exists()
    with lock_run_dir(tmp_path):       # free again
        assert (tmp_path / LOCK).exists()
    assert list(tmp_path.iterdir()) == []


def _open_new_run(run_dir, force=False):
    import numpy as np

    from mlss_jax.runtime.run_state import open_run

    return open_run(run_dir, {"lr": 1.0}, resume=False, mutable=(),
                    fresh_state={"w": np.zeros(3, np.float32)}, force=force)


def test_a_new_run_that_fails_before_its_first_checkpoint_leaves_nothing(tmp_path):
    from mlss_jax.runtime.run_state import releasing

    with pytest.raises(RuntimeError, match="out of memory"):
        run_dir, checkpointer, _, _ = _open_new_run(tmp_path / "new" / "run")
        with releasing(checkpointer):
            (run_dir / "log.jsonl").write_text("{}\n")
            raise RuntimeError("out of memory")
    assert list(tmp_path.iterdir()) == [tmp_path / "new"] and not any((tmp_path / "new").iterdir())

    mine = tmp_path / "mine"             # an existing folder: only what the run wrote goes
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    with pytest.raises(RuntimeError):
        _, checkpointer, _, _ = _open_new_run(mine)
        with releasing(checkpointer):
            raise RuntimeError("diverged")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_a_run_that_saved_a_checkpoint_keeps_it_when_it_fails(tmp_path):
    import numpy as np

    from mlss_jax.runtime.files import dir_kind
    from mlss_jax.runtime.run_state import LOCK, releasing

    run_dir, checkpointer, _, _ = _open_new_run(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        with releasing(checkpointer):
            checkpointer.save(5, {"w": np.ones(3, np.float32)})
            raise KeyboardInterrupt
    assert (run_dir / "checkpoints" / "5").is_dir() and not (run_dir / LOCK).exists()
    assert dir_kind(run_dir) == "run"
    # --force replaces it: the project's own run
    run_dir, checkpointer, _, _ = _open_new_run(run_dir, force=True)
    assert checkpointer.latest_step() is None and not (run_dir / "checkpoints" / "5").exists()
    checkpointer.close()


def test_a_corrupt_record_of_the_project_is_one_line_naming_it(tmp_path):
    from mlss_jax.app.manifest import read_manifest
    from mlss_jax.app.pipeline import read_stages
    from mlss_jax.errors import InputFileError

    (tmp_path / "manifest.json").write_text('{"outputs": {"a": ')
    with pytest.raises(InputFileError, match="manifest.json is not valid JSON"):
        read_manifest(tmp_path)
    (tmp_path / "stages.json").write_bytes(b"\xff\xfe")
    with pytest.raises(InputFileError, match="stages.json is not valid JSON"):
        read_stages(tmp_path)
    assert read_manifest(tmp_path / "none") == {"outputs": {}, "settings": {}}


def test_a_log_cut_short_by_a_crash_ends_before_the_cut_when_a_run_resumes(tmp_path):
    from mlss_jax.runtime.loop import trim_log

    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1}\n{"step": 2}\n{"step": 3}\n{"st')
    trim_log(log, 2)
    assert log.read_text() == '{"step": 1}\n{"step": 2}\n'
    log.write_text('{"step": 1}\n{"step": 2}\n{"st')
    trim_log(log, 5)
    assert log.read_text() == '{"step": 1}\n{"step": 2}\n'
