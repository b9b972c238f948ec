"""A full config-f TensorFlow pickle at 256 px, built from NVIDIA's variable list.

Names and shapes follow NVIDIA's TF variable list (docs/formats.md), in the order of
creation in NVIDIA's build code; weights are random.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from conftest import run_script
from mlss_jax import load_discriminator, load_generator
from mlss_jax.weights.tf_format import TFNetwork, dumps_tf_networks

R = 256
W = 512


def nf(res: int) -> int:
    """config-f channels of the block at resolution ``res`` (fmap_base 16384, fmap_max 512)."""
    return min(16384 * 2 // res, 512)


def config_f_generator_variables(rng) -> tuple[list, list, list]:
    """(G own, mapping, synthesis) variable lists in NVIDIA's creation order."""
    f32 = lambda *shape: rng.standard_normal(shape, dtype=np.float32)
    own = [("lod", np.zeros((), np.float32)), ("dlatent_avg", f32(W))]
    mapping = []
    for i in range(8):
        mapping += [(f"Dense{i}/weight", f32(W, W)), (f"Dense{i}/bias", f32(W))]
    log2 = int(np.log2(R))
    synthesis = [(f"noise{i}", f32(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)))
                 for i in range(2 * log2 - 3)]

    def conv(scope, c_in, c_out):
        return [(f"{scope}/weight", f32(3, 3, c_in, c_out)), (f"{scope}/mod_weight", f32(W, c_in)),
                (f"{scope}/mod_bias", f32(c_in)), (f"{scope}/noise_strength", f32()),
                (f"{scope}/bias", f32(c_out))]

    def torgb(scope, c_in):
        return [(f"{scope}/weight", f32(1, 1, c_in, 3)), (f"{scope}/mod_weight", f32(W, c_in)),
                (f"{scope}/mod_bias", f32(c_in)), (f"{scope}/bias", f32(3))]

    synthesis += [("4x4/Const/const", f32(1, nf(4), 4, 4))]
    synthesis += conv("4x4/Conv", nf(4), nf(4)) + torgb("4x4/ToRGB", nf(4))
    for res in (2 ** r for r in range(3, log2 + 1)):
        s = f"{res}x{res}"
        synthesis += conv(f"{s}/Conv0_up", nf(res // 2), nf(res)) + conv(f"{s}/Conv1", nf(res), nf(res))
        synthesis += torgb(f"{s}/ToRGB", nf(res))
    return own, mapping, synthesis


def config_f_discriminator_variables(rng) -> list:
    f32 = lambda *shape: rng.standard_normal(shape, dtype=np.float32)
    variables = [(f"{R}x{R}/FromRGB/weight", f32(1, 1, 3, nf(R))), (f"{R}x{R}/FromRGB/bias", f32(nf(R)))]
    for res in (2 ** r for r in range(int(np.log2(R)), 2, -1)):
        s, c, c_out = f"{res}x{res}", nf(res), nf(res // 2)
        variables += [(f"{s}/Conv0/weight", f32(3, 3, c, c)), (f"{s}/Conv0/bias", f32(c)),
                      (f"{s}/Conv1_down/weight", f32(3, 3, c, c_out)),
                      (f"{s}/Conv1_down/bias", f32(c_out)), (f"{s}/Skip/weight", f32(1, 1, c, c_out))]
    variables += [("4x4/Conv/weight", f32(3, 3, 513, 512)), ("4x4/Conv/bias", f32(512)),
                  ("4x4/Dense0/weight", f32(512 * 16, 512)), ("4x4/Dense0/bias", f32(512)),
                  ("Output/weight", f32(512, 1)), ("Output/bias", f32(1))]
    return variables


@pytest.fixture(scope="module")
def config_f_checkpoint(tmp_path_factory):
    rng = np.random.default_rng(0)
    own, mapping, synthesis = config_f_generator_variables(rng)
    kwargs = {"num_channels": 3, "resolution": R, "label_size": 0}
    gs = TFNetwork("Gs", "G_main", kwargs, own, {
        "mapping": TFNetwork("G_mapping", "G_mapping", {**kwargs, "dlatent_broadcast": 14}, mapping),
        "synthesis": TFNetwork("G_synthesis", "G_synthesis_stylegan2", kwargs, synthesis)})
    d_vars = config_f_discriminator_variables(rng)
    d = TFNetwork("D", "D_stylegan2", kwargs, d_vars)
    tmp = tmp_path_factory.mktemp("configf")
    pkl = tmp / "stylegan2-config-f-256.pkl"
    pkl.write_bytes(dumps_tf_networks(dataclasses.replace(gs, name="G"), d, gs))
    out = tmp / "ckpt"
    code, stdout, stderr = run_script("convert/from_pkl.py", "--pkl", str(pkl), "--out", str(out),
                                      "--preview", "0")
    assert code == 0, stderr
    expected_counts = {
        "G": sum(v.size for n, v in mapping + synthesis if not n.startswith("noise")),
        "D": sum(v.size for _, v in d_vars),
    }
    return out, stdout, expected_counts


@pytest.mark.slow
def test_config_f_parameter_counts(config_f_checkpoint):
    out, stdout, expected = config_f_checkpoint
    assert expected["G"] == 30_034_338
    assert "generator      30,034,338 parameters (mapping 2,101,248, synthesis 27,933,090)" in stdout
    assert f"discriminator  {expected['D']:,} parameters" in stdout
    G = load_generator(out)
    assert (G.resolution, G.num_ws, G.z_dim, G.w_dim) == (256, 14, 512, 512)
    assert sum(np.size(x) for x in jax.tree_util.tree_leaves(G.variables["params"])) == 30_034_338


@pytest.mark.slow
def test_config_f_synthesis_on_cpu(config_f_checkpoint):
    out, _, _ = config_f_checkpoint
    G = load_generator(out)
    z = jax.random.normal(jax.random.PRNGKey(0), (1, 512))
    ws = G.mapping(z, truncation_psi=0.5)
    img = np.asarray(G.synthesis(ws, noise_mode="const"))
    assert img.shape == (1, 256, 256, 3) and np.all(np.isfinite(img))
    # The grouped-convolution formulation computes the same image.
    fused = load_generator(out)
    fused.config = dataclasses.replace(G.config, fused_modconv=True)
    np.testing.assert_allclose(np.asarray(fused.synthesis(ws)), img,
                               atol=1e-5 * np.abs(img).max())
    D = load_discriminator(out)
    assert D(np.repeat(img, 4, axis=0)).shape == (4, 1)
