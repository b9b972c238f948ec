"""The batching primitive and the squared-distance helper every layer uses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlss_jax.batching import map_in_batches
from mlss_jax.distances import pairwise_sq_distances


def _counting_jit(fn):
    traces = []

    def traced(*args):
        traces.append([a.shape for a in args])
        return fn(*args)

    return jax.jit(traced), traces


@pytest.mark.parametrize("num", [1, 4, 7, 13])
def test_batches_give_what_one_call_gives(num):
    rng = np.random.default_rng(num)
    x = rng.standard_normal((num, 5)).astype(np.float32)
    labels = rng.integers(0, 3, num)
    fn = jax.jit(lambda x, k: (jnp.tanh(x) * 2.0, {"k": k + 1, "norm": jnp.sum(x * x, 1)}))
    whole = jax.tree.map(np.asarray, fn(x, labels))
    batched = map_in_batches(fn, 4, x, labels)
    assert jax.tree.structure(batched) == jax.tree.structure(whole)
    for got, want in zip(jax.tree.leaves(batched), jax.tree.leaves(whole)):
        assert isinstance(got, np.ndarray) and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_one_compile_for_every_size_at_or_above_the_batch():
    fn, traces = _counting_jit(lambda x: x * 3.0)
    for num in (4, 5, 7, 9, 13):
        x = np.arange(num * 2, dtype=np.float32).reshape(num, 2)
        np.testing.assert_array_equal(map_in_batches(fn, 4, x), x * 3.0)
    assert traces == [[(4, 2)]]


def test_the_last_batch_is_padded_with_valid_rows():
    seen = []

    def fn(index):
        seen.append(np.asarray(index).copy())
        return np.take(np.array([10, 20, 30]), index)   # an out-of-range pad would raise

    np.testing.assert_array_equal(map_in_batches(fn, 2, np.array([0, 1, 2])), [10, 20, 30])
    assert [s.tolist() for s in seen] == [[0, 1], [2, 2]]


def test_empty_input_gives_empty_results_of_the_right_shape():
    out = map_in_batches(lambda x: {"a": x[:, :1] * 2, "b": x.sum(1)}, 8,
                         np.zeros((0, 3), np.float32))
    assert out["a"].shape == (0, 1) and out["b"].shape == (0,)


def test_progress_bar_only_when_asked(capsys):
    x = np.zeros((10, 1), np.float32)
    map_in_batches(lambda x: x, 4, x, progress=False, desc="quiet-batches")
    assert "quiet-batches" not in capsys.readouterr().err
    map_in_batches(lambda x: x, 4, x, progress=True, desc="loud-batches")
    assert "loud-batches" in capsys.readouterr().err


def test_arrays_must_be_aligned():
    with pytest.raises(ValueError, match="same number of rows"):
        map_in_batches(lambda a, b: a, 2, np.zeros((3, 1)), np.zeros((4, 1)))


def test_pairwise_sq_distances_match_the_definition():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((6, 4)), rng.standard_normal((5, 4))
    want = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    got = np.asarray(pairwise_sq_distances(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # a row against itself: rounding of the expansion never goes below 0
    same = np.asarray(pairwise_sq_distances(jnp.asarray(a * 1e3, jnp.float32),
                                            jnp.asarray(a * 1e3, jnp.float32)))
    assert np.all(same >= 0)
