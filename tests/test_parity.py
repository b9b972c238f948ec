"""Converted fixtures reproduce every output of NVIDIA's reference implementation."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from conftest import fixture_path, rel_error, run_script
from mlss_jax import load_discriminator, load_generator

TOLERANCE = 1e-4  # relative to each reference array's largest magnitude (FIXTURES.md)
FIXTURE_NAMES = ["tf_small", "pt_small"]


@pytest.fixture(scope="module", params=FIXTURE_NAMES)
def converted(request, tmp_path_factory):
    """(name, checkpoint dir, reference arrays), converted through the README's command."""
    name = request.param
    out = tmp_path_factory.mktemp(name) / "ckpt"
    code, stdout, stderr = run_script("convert/from_pkl.py", "--pkl",
                                      str(fixture_path(f"{name}.pkl")), "--out", str(out))
    assert code == 0, stderr
    assert str(out) in stdout
    return name, out, dict(np.load(fixture_path(f"{name}.expected.npz")))


def nchw(images) -> np.ndarray:
    return np.asarray(images).transpose(0, 3, 1, 2)


def test_mapping_and_w_avg(converted):
    _, ckpt, ref = converted
    G = load_generator(ckpt)
    assert rel_error(G.w_avg, ref["w_avg"]) < TOLERANCE
    assert rel_error(G.mapping(ref["z"]), ref["ws"]) < TOLERANCE


def test_truncation_with_and_without_cutoff(converted):
    _, ckpt, ref = converted
    G = load_generator(ckpt)
    assert rel_error(G.mapping(ref["z"], truncation_psi=0.7), ref["ws_psi0.7"]) < TOLERANCE
    truncated = G.mapping(ref["z"], truncation_psi=0.5, truncation_cutoff=4)
    assert rel_error(truncated, ref["ws_psi0.5_cutoff4"]) < TOLERANCE
    # Inputs past the cutoff keep the untruncated w (up to float rounding of another XLA program).
    np.testing.assert_allclose(np.asarray(truncated)[:, 4:], np.asarray(G.mapping(ref["z"]))[:, 4:],
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("image_key, ws_key, noise_mode", [
    ("img_const", "ws", "const"),
    ("img_none", "ws", "none"),
    ("img_ws_plus", "ws_plus", "const"),
    ("img_psi0.7", "ws_psi0.7", "const"),
])
def test_synthesis(converted, image_key, ws_key, noise_mode):
    _, ckpt, ref = converted
    G = load_generator(ckpt)
    img = G.synthesis(ref[ws_key], noise_mode=noise_mode)
    assert img.shape == (4, G.resolution, G.resolution, 3)
    assert img.dtype == np.float32
    assert rel_error(nchw(img), ref[image_key]) < TOLERANCE


def test_discriminator_logits(converted):
    _, ckpt, ref = converted
    D = load_discriminator(ckpt)
    logits = D(ref["img_const"].transpose(0, 2, 3, 1))
    assert logits.shape == (4, 1)
    assert rel_error(logits, ref["d_logits"]) < TOLERANCE


def test_checkpoint_config_and_preview(converted):
    name, ckpt, ref = converted
    config = json.loads((ckpt / "config.json").read_text())
    assert config["metadata"]["source_format"] == ("tensorflow" if name.startswith("tf") else "pytorch")
    G = load_generator(ckpt)
    # levels trained on the pickle serve its checkpoint: the weights' digest is the same
    assert G.weights_sha256 == load_generator(fixture_path(f"{name}.pkl")).weights_sha256
    assert (G.z_dim, G.w_dim) == (ref["z"].shape[1], ref["ws"].shape[2])
    assert G.num_ws == ref["ws"].shape[1] == 2 * int(np.log2(G.resolution)) - 2
    from PIL import Image
    preview = Image.open(ckpt / "preview.png")
    assert preview.mode == "RGB" and min(preview.size) >= 4 * G.resolution  # a 4x4 grid


@pytest.mark.slow
def test_random_noise_needs_key_and_is_reproducible(converted):
    _, ckpt, ref = converted
    G = load_generator(ckpt)
    with pytest.raises(ValueError, match="PRNG key"):
        G.synthesis(ref["ws"], noise_mode="random")
    key = jax.random.PRNGKey(3)
    a = np.asarray(G.synthesis(ref["ws"], noise_mode="random", rng=key))
    b = np.asarray(G.synthesis(ref["ws"], noise_mode="random", rng=key))
    c = np.asarray(G.synthesis(ref["ws"], noise_mode="random", rng=jax.random.PRNGKey(4)))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4  # the noise strengths in the fixtures are non-zero


def test_api_rejects_wrong_shapes(converted):
    _, ckpt, ref = converted
    G = load_generator(ckpt)
    with pytest.raises(AssertionError):
        G.mapping(ref["z"][:, :-1])
    with pytest.raises(AssertionError):
        G.synthesis(ref["ws"][:, :-1])
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ref["ws"], noise_mode="sometimes")


@pytest.mark.slow
def test_bfloat16_blocks_are_close_to_float32_and_off_by_default(converted):
    import dataclasses

    from mlss_jax.networks.config import GeneratorConfig

    _, ckpt, ref = converted
    G = load_generator(ckpt)
    assert G.config.bf16_resolutions == 0 and "bf16_resolutions" not in G.config.to_dict()
    blocks = len(G.config.block_resolutions)
    errors = []
    for n in (1, blocks):   # the highest block only, and every block
        G.config = dataclasses.replace(G.config, bf16_resolutions=n)
        assert GeneratorConfig.from_dict(G.config.to_dict()) == G.config
        img = G.synthesis(ref["ws"])
        assert img.dtype == np.float32
        errors.append(rel_error(nchw(img), ref["img_const"]))
    # bfloat16 keeps 8 significant bits (relative step 2^-8 = 0.4%): the error is that of
    # bfloat16, not float32 rounding, and grows with the blocks computed in it
    assert 1e-3 < errors[0] <= errors[1] < 0.03, errors
    with pytest.raises(ValueError, match=rf"bf16_resolutions must lie in \[0, {blocks}\]"):
        dataclasses.replace(G.config, bf16_resolutions=blocks + 1)
