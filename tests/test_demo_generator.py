"""The bundled demo generator: an official-format pickle, the no-argument defaults, its quality."""

from __future__ import annotations

import json

import pytest

from conftest import run_script
from mlss_jax.demo.world import DEMO_PICKLE
from mlss_jax.weights.nvidia import convert_network_pickle

# The README's quality table: python tools/demo_quality.py (10,000 samples, seed 0).
README_CONFIDENT_SHARE = 0.370


def test_bundled_pickle_is_a_tf_stylegan2_pickle_under_20_mb():
    data = DEMO_PICKLE.read_bytes()
    assert len(data) <= 20 * 2 ** 20
    nets = convert_network_pickle(data)
    assert nets.source_format == "tensorflow"
    cfg = nets.generator_config
    assert (cfg.resolution, cfg.img_channels, cfg.num_ws) == (32, 3, 8)
    assert nets.discriminator_vars is not None


def test_convert_with_no_arguments_writes_checkpoints_demo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_script("convert/from_pkl.py", "--preview", "4")
    assert code == 0, err
    config = json.loads((tmp_path / "checkpoints" / "demo" / "config.json").read_text())
    assert config["generator"]["resolution"] == 32
    assert "checkpoints/demo" in out
    code, _, err = run_script("convert/from_pkl.py")          # a second time: refused, kept
    assert code == 1 and "already exists (use --force" in err
    assert (tmp_path / "checkpoints" / "demo" / "config.json").exists()


def test_quality_matches_the_readme(tmp_path):
    code, out, err = run_script("tools/demo_quality.py", "--samples", "1000",
                                "--dataset-config", "tiny", "--out", str(tmp_path))
    assert code == 0, err
    report = json.loads((tmp_path / "quality.json").read_text())
    # 1,000 samples: the standard error of a share is at most 0.016
    assert report["confident_share"] == pytest.approx(README_CONFIDENT_SHARE, abs=0.05)
