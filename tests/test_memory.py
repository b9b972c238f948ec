"""Out-of-memory errors name the setting to lower, in the command line's words."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from mlss_jax.app.cli import flag_message
from mlss_jax.runtime.memory import OutOfMemory, names_setting, naming_setting

# 2^45 float32 (128 TiB): beyond what any 64-bit process can address, so it fails at once
HUGE = 1 << 45


def _allocate_huge(_images):
    return jax.jit(lambda: jnp.zeros((HUGE,), jnp.float32))().block_until_ready()


def test_an_allocation_the_device_cannot_make_names_the_setting():
    embed = naming_setting(_allocate_huge, "vgg16 features", "feature_batch", 32)
    with pytest.raises(OutOfMemory) as caught:
        embed(None)
    err = caught.value
    assert (err.work, err.setting, err.value) == ("vgg16 features", "feature_batch", 32)
    assert err.detail == f"Out of memory allocating {HUGE * 4} bytes"
    assert str(err) == (f"out of memory on cpu in vgg16 features at feature_batch 32 "
                        f"(Out of memory allocating {HUGE * 4} bytes); lower feature_batch")
    assert flag_message(str(err), err.setting).endswith(
        f"at --feature-batch 32 (Out of memory allocating {HUGE * 4} bytes); lower --feature-batch")


def test_the_innermost_setting_wins_and_other_errors_pass_through():
    with pytest.raises(OutOfMemory, match="lower feature_batch"):
        with names_setting("image generation", "batch_size", 250):
            naming_setting(_allocate_huge, "LPIPS", "feature_batch", 100)(None)
    with pytest.raises(TypeError):   # not an allocation failure: unchanged
        with names_setting("image generation", "batch_size", 250):
            jax.jit(lambda x: x + 1)("text")
