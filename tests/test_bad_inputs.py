"""Bad input to any command: one line on stderr, the documented exit code, and no file left
behind (the file tree it was pointed at is unchanged)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO, run_script

PNG = b"\x89PNG\r\n\x1a\n"


def _tree(root) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size if p.is_file() else -1
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def inputs(tmp_path, demo_sized_world):
    """Bad files of every kind, and the tiny world's generator and levels."""
    (tmp_path / "corrupt.pkl").write_bytes(b"\x80\x04 not a pickle")
    (tmp_path / "a-file").write_text("not a directory")
    np.save(tmp_path / "nan.npy", np.full(8, np.nan, np.float32))
    np.save(tmp_path / "short.npy", np.zeros(3, np.float32))
    (tmp_path / "broken.png").write_bytes(PNG + b"truncated")
    (tmp_path / "mine" / "fine").mkdir(parents=True)   # a folder of the user's
    for folder in (tmp_path / "mine", tmp_path / "mine" / "fine"):
        (folder / "notes.txt").write_text("the user's own data")
        (folder / "config.json").write_text("{}")
    return tmp_path, str(demo_sized_world / "gen"), str(demo_sized_world / "levels")


# (script, arguments with {t}: the temporary folder, {g}: a generator, {l}: its levels,
#  exit code, a part of the one line on stderr)
CASES = [
    ("convert/from_pkl.py", "--pkl {t}/missing.pkl --out {t}/o", 1, "no such pickle"),
    ("convert/from_pkl.py", "--pkl {t}/corrupt.pkl --out {t}/o", 1, "corrupt or truncated pickle"),
    ("convert/from_pkl.py", "--pkl {t}/corrupt.pkl --out {t}/a-file", 1, "already exists"),
    ("convert/from_pkl.py", "--pkl {t}/corrupt.pkl --bogus", 2, "unrecognized arguments"),
    ("train.py", "--generator {t}/missing --out {t}/o", 1, "no generator at"),
    ("train.py", "--generator {t}/corrupt.pkl --out {t}/o", 1, "corrupt or truncated pickle"),
    ("train.py", "--generator {g} --out {t}/a-file", 1, "is a file, not a directory"),
    ("train.py", "--generator {g} --out {t}/o --learning-rate nan", 2, "expected a finite number"),
    ("train.py", "--generator {g} --out {t}/o --steps 0", 2, "--steps must be positive"),
    ("train.py", "--generator {g} --out {t}/o --resume --force", 2, "not allowed with argument"),
    ("evaluate.py", "--pr-curve --generator {g} --levels-dir {l} --out {t}/a-file", 1,
     "is a file, not a directory"),
    ("evaluate.py", "--pr-curve --generator {g} --levels-dir {t} --out {t}/o", 1, "no trained coarse level"),
    ("evaluate.py", "--pr-curve --generator {g} --levels-dir {l} --out {t}/o --psis 0,inf", 2,
     "expected a finite number"),
    ("evaluate.py", "--pr-curve --generator {g} --levels-dir {l} --out {t}/o --real {t}/a-file", 1,
     "not a directory of images"),
    ("explore.py", "edit --direction {t}/nan.npy --generator {g} --out {t}/o", 1, "NaN or infinite"),
    ("explore.py", "edit --direction {t}/short.npy --generator {g} --out {t}/o", 1, "expected (8,)"),
    ("explore.py", "edit --direction {t}/none.npy --generator {g} --out {t}/o", 1, "no direction file"),
    ("explore.py", "mix --seeds 5-1 --generator {g} --out {t}/o", 2, "runs backwards: write 1-5"),
    ("explore.py", "interpolate --generator {g} --out {t}/a-file", 1, "is a file, not a directory"),
    ("explore.py", "project --image {t}/broken.png --generator {g} --out {t}/o", 1, "cannot read image"),
    ("explore.py", "control --clusters 0,9,0 --generator {g} --levels-dir {l} --out {t}/o", 1,
     "out of range"),
    ("run.py", "--out {t}/a-file", 1, "is a file, not a directory"),
    ("run.py", "--out {t}/o --steps -1", 2, "--steps must be positive"),
    ("tools/train_stylegan2.py", "--out {t}/a-file", 1, "is a file, not a run directory"),
    ("tools/train_stylegan2.py", "--out {t}/o --ema-rampup 2", 2, "--ema-rampup must be"),
    ("tools/train_stylegan2.py", "--out {t}/o --fresh-discriminator", 2,
     "--fresh-discriminator needs --init-from"),
    ("tools/demo_quality.py", "--baseline {t}/corrupt.pkl --out {t}/o", 1, "not a quality.json"),
    ("tools/demo_quality.py", "--baseline {t}/missing.json --out {t}/o", 1, "No such file"),
    ("tools/demo_quality.py", "--network {t}/missing.pkl --out {t}/o", 1, "no such network"),
    ("tools/demo_quality.py", "--network {g} {t}/gen --out {t}/o", 2, "share a name"),
    ("tools/train_factor_classifier.py", "--out {t}/o --learning-rate -1", 2,
     "--learning-rate must be positive"),
]


# --force and fresh runs replace only what the project wrote; outputs must be writable
OUTPUT_CASES = [
    ("convert/from_pkl.py", "--out {t}/mine --force", 1, "was not written by mlss-jax"),
    ("convert/from_pkl.py", "--out {t}/a-file --force", 1, "is a file, not a checkpoint"),
    ("train.py", "--generator {g} --out {t}/mine --level fine --force", 1,
     "was not written by mlss-jax"),
    ("train.py", "--generator {g} --out /proc/mlss-out --level fine", 1, "cannot be written"),
    ("tools/train_stylegan2.py", "--out {t}/mine --force", 1, "was not written by mlss-jax"),
    ("tools/train_stylegan2.py", "--out /proc/mlss-out", 1, "cannot be written"),
    ("run.py", "--out {t}/mine", 1, "which run.py did not write"),
    ("run.py", "--out {t}/mine --force", 1, "which run.py did not write"),
    ("evaluate.py", "--pr-curve --generator {g} --levels-dir {l} --out /proc/mlss-out", 1,
     "cannot be written"),
    ("explore.py", "interpolate --generator {g} --out /proc/mlss-out", 1, "cannot be written"),
    ("tools/demo_quality.py", f"--world 2 --classifier {REPO}/assets/factor_classifier --out {{t}}/o",
     2, "reads world 1, not --world 2"),
    ("tools/train_stylegan2.py", "--out {t}/o --world 3", 2, "invalid choice"),
]
ALL_CASES = CASES + OUTPUT_CASES


@pytest.mark.parametrize("script, args, code, message", ALL_CASES,
                         ids=[f"{c[0]}:{c[3]}" for c in ALL_CASES])
def test_bad_input_is_one_line_and_leaves_no_trace(inputs, script, args, code, message):
    folder, generator, levels = inputs
    before = _tree(folder)
    argv = args.format(t=folder, g=generator, l=levels).split()
    got, _, err = run_script(script, *argv)
    assert got == code and message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert _tree(folder) == before


def test_a_failure_while_writing_leaves_no_partial_outputs(tmp_path):
    from mlss_jax.app.manifest import read_manifest, write_outputs

    def good(folder):
        (folder / "a.txt").write_text("a")
        return folder / "a.txt"

    def failing(folder):
        (folder / "b.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_outputs(tmp_path / "new", "test", {"a": good, "b": failing})
    assert not (tmp_path / "new").exists()
    assert write_outputs(tmp_path / "old", "test", {"a": good}) == {"a": tmp_path / "old" / "a.txt"}
    before = _tree(tmp_path / "old")
    with pytest.raises(OSError, match="disk full"):
        write_outputs(tmp_path / "old", "test", {"a": good, "b": failing})
    assert _tree(tmp_path / "old") == before
    assert read_manifest(tmp_path / "old")["outputs"] == {"a": "a.txt"}
