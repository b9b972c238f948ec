"""Bad input to any command: one line on stderr, the documented exit code, and no file left
behind (the file tree it was pointed at is unchanged)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURES, REPO, run_script

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
    np.save(tmp_path / "zero.npy", np.zeros(8, np.float32))
    np.save(tmp_path / "words.npy", np.asarray(["up"] * 8))
    np.savez(tmp_path / "direction.npz", d=np.ones(8, np.float32))
    image = Image.fromarray(np.full((8, 8, 3), 200, np.uint8))
    image.save(tmp_path / "image.png")
    shutil.copy(tmp_path / "image.png", tmp_path / "image.pkl")   # renamed files
    shutil.copy(tmp_path / "image.png", tmp_path / "image.npy")
    for folder, copies in (("one-image", 1), ("three-copies", 3)):
        (tmp_path / folder).mkdir()
        for i in range(copies):
            image.save(tmp_path / folder / f"{i}.png")
    (tmp_path / "no-images").mkdir()
    return tmp_path, str(demo_sized_world / "gen"), str(demo_sized_world / "levels")


# (script, arguments with {t}: the temporary folder, {g}: a generator, {l}: its levels, {d}: the
#  test fixtures (tf_small.pkl: another 32 px generator; pt_small.pkl: a 16 px one),
#  exit code, a part of the one line on stderr)
OTHER = "were trained for a different generator"
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
    ("explore.py", "control --clusters 0,9,0 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "--clusters: medium cluster 9 is out of range 0..2"),
    # levels of another generator, or one level's directory, whichever command reads them
    ("explore.py", "control --generator {d}/tf_small.pkl --levels-dir {l} --out {t}/o", 1, OTHER),
    ("explore.py", "truncate --generator {d}/pt_small.pkl --levels-dir {l} --out {t}/o", 1, OTHER),
    ("evaluate.py", "--pr-curve --generator {d}/pt_small.pkl --levels-dir {l} --out {t}/o", 1, OTHER),
    ("tools/level_report.py", "--generator {d}/tf_small.pkl --levels-dir {l} --out {t}/o", 1, OTHER),
    ("explore.py", "control --generator {g} --levels-dir {l}/fine --out {t}/o", 1,
     "is the run directory of one level (fine): pass its parent"),
    ("evaluate.py", "--pr-curve --generator {g} --levels-dir {l}/coarse --out {t}/o", 1,
     "is the run directory of one level (coarse): pass its parent"),
    ("tools/level_report.py", "--generator {g} --levels-dir {l}/medium --out {t}/o", 1,
     "pass its parent"),
    ("evaluate.py", "--pr-curve --generator {g} --levels-dir {t}/a-file --out {t}/o", 1,
     "--levels-dir {t}/a-file is a file, not a directory"),
    # sizes: refused before anything is allocated, naming the flag
    ("explore.py", "control --columns 100000000 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "lower --columns"),
    ("explore.py", "tsne --samples 100000000 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "lower --samples"),
    ("explore.py", "interpolate --steps 100000000 --generator {g} --out {t}/o", 2, "lower --steps"),
    ("explore.py", "mix --seeds 0-99999 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "lower --seeds"),
    ("explore.py", "mix --seeds 0-100000 --generator {g} --out {t}/o", 2,
     "lists more than 100000 values"),
    ("explore.py", "edit --interfacegan hue=red --samples 1000000000 --generator {g} --out {t}/o", 2,
     "lower --samples"),
    ("explore.py", "truncate --samples 1000000000 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "lower --samples"),
    ("evaluate.py", "--pr-curve --samples 1000000000 --generator {g} --levels-dir {l} --out {t}/o",
     2, "lower --samples"),
    ("tools/level_report.py", "--samples 10000000000 --generator {g} --levels-dir {l} --out {t}/o",
     2, "lower --samples"),
    ("train.py", "--num-clusters 1000000000 --generator {g} --out {t}/o", 2,
     "lower --num-clusters"),
    # --psi without --sweep-level, or for the level it sweeps
    ("evaluate.py", "--pr-curve --psi coarse=0.5 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "--psi needs --sweep-level"),
    ("evaluate.py", "--pr-curve --sweep-level coarse --psi coarse=0.5 --generator {g} --levels-dir "
     "{l} --out {t}/o", 2, "--psi must leave out coarse"),
    ("evaluate.py", "--pr-curve --sweep-level fine --psi coarse=0.5,coarse=0.7 --generator {g} "
     "--levels-dir {l} --out {t}/o", 2, "psi gives coarse twice"),
    # too few real images for --k
    ("evaluate.py", "--pr-curve --real {t}/one-image --generator {g} --levels-dir {l} --out {t}/o", 1,
     "gives 1 image; precision and recall with --k 3 need at least 4"),
    ("evaluate.py", "--pr-curve --real {t}/three-copies --generator {g} --levels-dir {l} --out {t}/o",
     1, "gives 3 images"),
    ("evaluate.py", "--pr-curve --real {t}/no-images --generator {g} --levels-dir {l} --out {t}/o", 1,
     "no images"),
    # non-finite numbers and empty directions
    ("explore.py", "edit --pca 0 --strengths=nan,1 --generator {g} --out {t}/o", 2,
     "argument --strengths: expected a finite number, got 'nan'"),
    ("explore.py", "edit --pca 0 --strengths= --generator {g} --out {t}/o", 2, "expected numbers"),
    ("explore.py", "tsne --perplexity inf --generator {g} --levels-dir {l} --out {t}/o", 2,
     "expected a finite number"),
    ("explore.py", "edit --direction {t}/zero.npy --generator {g} --out {t}/o", 1, "all zeros"),
    ("explore.py", "edit --direction {t}/words.npy --generator {g} --out {t}/o", 1, "expected numbers"),
    # seeds: integers in 0..2**32-1, refused as the flags are parsed
    ("explore.py", "truncate --seeds=-3,-1 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "argument --seeds: -3 is negative"),
    ("explore.py", "control --seed 99999999999 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "--seed must lie in 0..4294967295, got 99999999999"),
    ("explore.py", "project --seed -1 --generator {g} --out {t}/o", 2,
     "--seed must lie in 0..4294967295"),
    ("evaluate.py", "--pr-curve --seed -1 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "--seed must lie in 0..4294967295"),
    ("train.py", "--seed 4294967296 --generator {g} --out {t}/o", 2, "--seed must lie in"),
    ("tools/level_report.py", "--seed=-1 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "--seed must lie in 0..4294967295"),
    # files that are not what the flag takes
    ("explore.py", "mix --generator {t}/image.pkl --out {t}/o", 1,
     "not a network pickle: the file is a PNG image"),
    ("explore.py", "edit --direction {t}/image.npy --generator {g} --out {t}/o", 1,
     "is not a .npy file"),
    ("explore.py", "edit --direction {t}/direction.npz --generator {g} --out {t}/o", 1,
     "is not a .npy file"),
    ("explore.py", "truncate --centres {t}/none.npz --generator {g} --levels-dir {l} --out {t}/o", 1,
     "no centres file"),
    ("evaluate.py", "--pr-curve --features inception --inception-weights {t}/none.pth "
     "--generator {g} --levels-dir {l} --out {t}/o", 1, "no Inception weights file"),
    ("tools/level_report.py", "--generator {t}/missing --levels-dir {l} --out {t}/o", 1,
     "no generator at"),
    ("tools/level_report.py", "--generator {g} --levels-dir {l} --out {t}/a-file", 1,
     "is a file, not a directory"),
    ("tools/level_report.py", "--generator {d}/pt_small.pkl --levels-dir {t} --out {t}/o", 1,
     "no trained coarse level"),
    # ranges: backwards, or outside what the generator and levels have
    ("explore.py", "edit --pca 0 --layers 5-2 --generator {g} --out {t}/o", 2,
     "range 5-2 runs backwards: write 2-5"),
    ("explore.py", "edit --pca 0 --layers 3-9 --generator {g} --out {t}/o", 2, "outside 0..7"),
    ("explore.py", "edit --pca 8 --generator {g} --out {t}/o", 2, "--pca must be in 0..7"),
    ("explore.py", "edit --pca 5 --samples 3 --generator {g} --out {t}/o", 2,
     "--pca 5 needs more than 3 --samples"),
    ("explore.py", "edit --interfacegan hue=teal --generator {g} --out {t}/o", 2,
     "--interfacegan must name a demo factor's class: unknown attribute hue=teal"),
    ("explore.py", "edit --interfacegan hue=red --generator {d}/pt_small.pkl --out {t}/o", 2,
     "makes 16x16 px images"),
    ("explore.py", "interpolate --steps 1 --generator {g} --out {t}/o", 2,
     "--steps must be at least 2"),
    ("explore.py", "interpolate --seeds 3,3 --generator {g} --out {t}/o", 2, "one seed twice"),
    ("explore.py", "tsne --samples 20 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "--perplexity must be at least 1 and below --samples - 1 (19), got 30"),
    ("explore.py", "control --columns 0 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "--columns must be positive, got 0"),
    ("explore.py", "truncate --multimodal-k 0 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "--multimodal-k must be positive, got 0"),
    ("explore.py", "project --lr-rampup-length 0 --generator {g} --out {t}/o", 2,
     "--lr-rampup-length must be above 0"),
    ("evaluate.py", "--pr-curve --cutoff 9 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "--cutoff must be in 1..8"),
    ("evaluate.py", "--pr-curve --psis 0.5,1,0.5 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "--psis must list each value once, got 0.5 twice"),
    # a flag's bad value is exit 2, wherever it is found
    ("explore.py", "truncate --level-psi coarse=2 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "--level-psi: psi of coarse must lie in [0, 1]"),
    ("explore.py", "truncate --methods stylegan,best --generator {g} --levels-dir {l} --out {t}/o", 2,
     "--methods: unknown truncation method 'best'"),
    ("train.py", "--generator {g} --out {t}/o --split 2,7", 2, "--split 2,7 must satisfy"),
    ("train.py", "--generator {g} --out {t}/o --split x", 2, "--split must be two integers"),
    ("train.py", "--generator {g} --out {t}/o --adam-beta2 1", 2, "--adam-beta2 must lie in [0, 1)"),
    ("train.py", "--generator {g} --out {t}/o --beta -1", 2, "--beta must be >= 0"),
    ("explore.py", "project --seeds 0 --start-candidates -1 --generator {g} --out {t}/o", 2,
     "--start-candidates must be >= 0, got -1"),
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
    # the explorer: its state, its levels, its port; truncate's per-level --psi
    ("explore.py", "render --state p=2,1,1 --out {t}/o", 2, "--state: p must lie in [0, 1]"),
    ("explore.py", "render --state c=1,2 --out {t}/o", 2, "c takes 3 values"),
    ("explore.py", "serve --generator {d}/tf_small.pkl", 1, "made for another generator"),
    ("explore.py", "serve --generator {g} --levels-dir {t}", 1, "no trained coarse level"),
    ("explore.py", "serve --port 70000", 2, "--port must lie in 0..65535, got 70000"),
    ("explore.py", "serve --host=", 2, "--host must name an address"),
    ("explore.py", "truncate --psi coarse=2 --generator {g} --levels-dir {l} --out {t}/o", 2,
     "psi of coarse must lie in [0, 1]"),
    ("explore.py", "truncate --psi fine=0.5 --methods stylegan --generator {g} --levels-dir {l} "
     "--out {t}/o", 2, "--methods must be multilevel with --psi per level"),
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
    ("tools/demo_quality.py", f"--world 2 --classifier {REPO}/assets/factor_classifier-world1 "
                              "--out {t}/o",
     2, "reads world 1, not --world 2"),
    ("tools/train_stylegan2.py", "--out {t}/o --world 3", 2, "invalid choice"),
    ("tools/train_stylegan2.py", "--out {t}/o --batch-size 6", 2,
     "--batch-size must be a multiple of the minibatch-stddev group"),
    ("tools/train_factor_classifier.py", "--out {t}/a-file --steps 1", 1, "is a file, not a dir"),
    ("run.py", "--out {t}/o --real {t}/no-such-folder", 1, "no such image folder"),
    ("run.py", "--out {t}/o --real {t}/no-images", 1, "no images"),
    ("run.py", "--out {t}/o --real shapes/tiny:3.0.0", 1, "unknown shapes version '3.0.0'"),
]
ALL_CASES = CASES + OUTPUT_CASES


@pytest.mark.slow
@pytest.mark.parametrize("script, args, code, message", ALL_CASES,
                         ids=[f"{c[0]}:{c[3]}" for c in ALL_CASES])
def test_bad_input_is_one_line_and_leaves_no_trace(inputs, script, args, code, message):
    folder, generator, levels = inputs
    before = _tree(folder)
    argv = args.format(t=folder, g=generator, l=levels, d=FIXTURES).split()
    got, _, err = run_script(script, *argv)
    assert got == code and message.format(t=folder) in err, err
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


@pytest.mark.slow
def test_levels_of_other_weights_are_refused_and_older_levels_still_load(demo_sized_world, tmp_path):
    import jax

    from mlss_jax.method.runs import load_levels
    from mlss_jax.networks.generator import init_generator
    from mlss_jax.weights.load import load_generator
    from mlss_jax.weights.checkpoint import CheckpointError, save_networks

    levels = tmp_path / "levels"
    shutil.copytree(demo_sized_world / "levels", levels)
    generator = load_generator(demo_sized_world / "gen")
    other = tmp_path / "other"  # the same architecture, other weights
    save_networks(other, generator_config=generator.config, generator_vars=jax.device_get(
        init_generator(generator.config, jax.random.PRNGKey(1))))
    before = _tree(tmp_path)
    code, _, err = run_script("explore.py", "control", "--generator", str(other), "--levels-dir",
                              str(levels), "--out", str(tmp_path / "o"))
    assert code == 1 and f"{OTHER} ({demo_sized_world / 'gen'}: the same architecture, other " \
                         "weights); train them for this one or pass its --levels-dir" in err, err
    code, _, err = run_script("train.py", "--level", "all", "--resume", "--generator", str(other),
                              "--out", str(levels), "--steps", "4")
    assert code == 1 and OTHER in err and "resume them with that generator" in err, err
    assert len(err.strip().splitlines()) == 1 and _tree(tmp_path) == before
    # levels written before the weights' digest was recorded: their generator's config decides
    for level in ("coarse", "medium", "fine"):
        path = levels / level / "config.json"
        saved = json.loads(path.read_text())
        del saved["generator_sha256"]
        path.write_text(json.dumps(saved))
    loaded = load_levels(levels, generator=load_generator(other))
    assert [m.config.level for m in loaded] == ["coarse", "medium", "fine"]
    with pytest.raises(CheckpointError,
                       match=f"{OTHER} .*: resolution 32, .*; this one has resolution 16, "):
        load_levels(levels, generator=load_generator(FIXTURES / "pt_small.pkl"))


def test_real_images_few_or_copied_are_a_warning():
    from mlss_jax.data.real_images import real_image_warnings

    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * np.ones((1, 2, 2, 3), np.uint8)
    assert real_image_warnings(images, 10) == []
    assert real_image_warnings(np.concatenate([images[:9], images[:1]]), 10) == []  # 10%: one copy
    few, copies = real_image_warnings(np.concatenate([images[:8], images[:2]]), 20)
    assert few.startswith("--real gave 10 images, fewer than the 20 generated samples")
    assert copies.startswith("2 of the 10 real images are exact copies of others")


@pytest.mark.slow
def test_copied_real_images_are_reported_and_recorded_with_the_results(demo_sized_world, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    for i in range(6):  # five copies of one image, and one other
        Image.fromarray(np.full((8, 8, 3), 100 if i else 0, np.uint8)).save(real / f"{i}.png")
    out = tmp_path / "out"
    code, _, err = run_script("evaluate.py", "--pr-curve", "--generator", str(demo_sized_world / "gen"),
                              "--levels-dir", str(demo_sized_world / "levels"), "--real", str(real),
                              "--samples", "10", "--psis", "1", "--methods", "stylegan", "--no-lpips",
                              "--bootstrap", "0", "--multimodal-k", "2", "--out", str(out))
    assert code == 0, err
    warnings = [line.removeprefix("warning: ") for line in err.splitlines()
                if line.startswith("warning: ")]
    assert len(warnings) == 2 and warnings[0].startswith("--real gave 6 images, fewer than the 10")
    assert warnings[1].startswith("4 of the 6 real images are exact copies")
    assert json.loads((out / "sweep.json").read_text())["warnings"] == warnings
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["evaluate"]["warnings"] == warnings


@pytest.mark.slow
def test_a_levels_dir_of_mismatched_runs_is_refused(demo_sized_world, tmp_path):
    from mlss_jax.method.runs import load_levels
    from mlss_jax.weights.checkpoint import CheckpointError

    levels = tmp_path / "levels"
    shutil.copytree(demo_sized_world / "levels", levels)
    (levels / "coarse").rename(levels / "swap")  # the coarse and fine runs swapped
    (levels / "fine").rename(levels / "coarse")
    (levels / "swap").rename(levels / "fine")
    code, _, err = run_script("explore.py", "control", "--generator", str(demo_sized_world / "gen"),
                              "--levels-dir", str(levels), "--out", str(tmp_path / "o"))
    assert code == 1 and err.strip() == (f"explore.py: error: {levels / 'coarse'} holds the fine "
                                         "level, not coarse"), err
    shutil.rmtree(levels)
    shutil.copytree(demo_sized_world / "levels", levels)
    path = levels / "fine" / "config.json"  # one level trained with another split
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "mlss": {**saved["mlss"], "split": "1,3"}}))
    with pytest.raises(CheckpointError, match=r"trained with different --split \(coarse 2,4; "
                                              r"medium 2,4; fine 1,3\)"):
        load_levels(levels)
    assert not (tmp_path / "o").exists()
