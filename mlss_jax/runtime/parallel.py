"""Data parallelism over all devices (``shard_map`` over a one-axis mesh).

Training steps draw every per-sample random quantity for the *global* batch and
then shard it, so a run's numbers do not depend on how many devices share the
work. One subtlety: NVIDIA's minibatch-stddev layer groups sample ``i`` of a
batch of ``n`` with the samples ``j = i (mod n / group_size)``. ``interleave``
lays the global batch out so that each device's contiguous shard holds exactly
whole groups of the single-device layout.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from mlss_jax.errors import ConfigError

DATA_AXIS = "data"
REPLICATED = PartitionSpec()
SHARDED = PartitionSpec(DATA_AXIS)


def data_mesh(devices: list | None = None) -> Mesh:
    """A mesh with one axis, ``data``, over ``devices`` (default: every device of every process,
    once this process joined a multi-process run: ``runtime.distributed.join``)."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), (DATA_AXIS,))


def check_batch(batch_size: int, num_devices: int, group_size: int = 1) -> None:
    """Raise ``ValueError`` unless the batch splits into whole minibatch-stddev groups per device."""
    if batch_size % (num_devices * group_size):
        raise ConfigError(f"batch size {batch_size} must be a multiple of {num_devices} device(s) "
                          f"x minibatch group {group_size}")


def interleave(x: jax.Array, num_devices: int) -> jax.Array:
    """Reorder the batch axis so that shard ``d`` (contiguous) holds samples ``d, d + D, ...``.

    With ``D`` devices and ``m = n / group_size`` groups, samples in one
    single-device group are congruent mod ``m``; as ``D`` divides ``m``, they are
    congruent mod ``D`` too and so land on one device, in one local group.
    """
    n = x.shape[0]
    return x.reshape(n // num_devices, num_devices, *x.shape[1:]).swapaxes(0, 1).reshape(x.shape)
