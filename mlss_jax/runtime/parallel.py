"""Data parallelism over all devices (``shard_map`` over a one-axis mesh).

Training steps draw every per-sample random quantity for the *global* batch and
then shard it, so a run's numbers do not depend on how many devices share the
work. One subtlety: NVIDIA's minibatch-stddev layer groups sample ``i`` of a
batch of ``n`` with the samples ``j = i (mod n / group_size)``. ``interleave``
lays the global batch out so that each device's contiguous shard holds exactly
whole groups of the single-device layout.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from mlss_jax.errors import ConfigError
from mlss_jax.runtime.distributed import multi_process

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


# Arrays over the devices of every process of a run (one process: its own devices).

def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
    """``tree`` (the same on every process) as arrays replicated over every device of ``mesh``."""
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jax.device_put(tree, sharding)


def to_host(tree: Any) -> Any:
    """NumPy copies of replicated arrays, from this process's own devices."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x.addressable_data(0))
                                  if isinstance(x, jax.Array) else np.asarray(x), tree)


def split_rows(fn: Callable[..., Any], *arrays: np.ndarray) -> Any:
    """``fn(*arrays)``, with the rows shared out over the processes: each applies ``fn`` to its
    contiguous part and every process gets the whole result (an array or a dict of arrays,
    row-aligned with the inputs). With one process, just ``fn(*arrays)``."""
    if not multi_process():
        return fn(*arrays)
    from jax.experimental import multihost_utils

    n, count = len(arrays[0]), jax.process_count()
    per = -(-n // count)
    start = min(jax.process_index() * per, n)
    # every process passes ``per`` rows (the tail padded with copies of row 0): the padding
    # lies after row n - 1 of the gathered result, which drops it
    part = [np.concatenate([a[start:start + per],
                            np.repeat(a[:1], per - len(a[start:start + per]), axis=0)])
            for a in arrays]
    gathered = multihost_utils.process_allgather(fn(*part), tiled=True)
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[:n], gathered)


def row_sharded(fn: Callable[..., Any], row_args: int = 1,
                any_of: int = 0) -> Callable[..., Any]:
    """``fn`` for row-wise work, as a function of NumPy arrays whose first ``row_args``
    arguments (row-aligned) are sharded by rows over every device of every process and whose
    others are replicated; every process gets the whole result as NumPy. It compiles once per
    mesh and shapes, so that calling it for each set of a sweep costs no compilation. A
    replicated argument already placed by :func:`replicate` is not copied again.

    ``any_of``: ``fn`` returns a row-wise array followed by ``any_of`` boolean arrays about the
    replicated arguments (each device's over its rows only), which are combined with a logical
    or over every device; the result is then that tuple. (Padding rows repeat the first row, so
    they change no or.)
    """
    from jax.sharding import PartitionSpec

    def body(*args):
        if not any_of:
            return fn(*args)
        row_wise, *combined = fn(*args)
        return (row_wise, *(jax.lax.pmax(x.astype(jnp.int32), DATA_AXIS) > 0 for x in combined))

    row_spec = PartitionSpec(DATA_AXIS)
    out_specs = (row_spec, *(PartitionSpec(),) * any_of) if any_of else row_spec
    compiled: dict[tuple[jax.sharding.Mesh, int], Callable[..., Any]] = {}

    def sharded(*arrays: np.ndarray) -> Any:
        from jax.experimental import multihost_utils
        from jax.sharding import NamedSharding

        mesh = data_mesh()
        rows, shared = arrays[:row_args], arrays[row_args:]
        key = (mesh, len(shared))
        if key not in compiled:
            compiled[key] = jax.jit(jax.shard_map(
                body, mesh=mesh, in_specs=(row_spec,) * row_args + (PartitionSpec(),) * len(shared),
                out_specs=out_specs, check_vma=False))
        n, devices = len(rows[0]), mesh.devices.size
        per = -(-n // devices)
        sharding = NamedSharding(mesh, row_spec)

        def global_rows(a: np.ndarray) -> jax.Array:
            padded = np.concatenate([a, np.repeat(a[:1], per * devices - n, axis=0)])
            return jax.make_array_from_callback(padded.shape, sharding, lambda index: padded[index])

        out = compiled[key](*map(global_rows, rows), *replicate(shared, mesh))
        row_wise, combined = (out[0], out[1:]) if any_of else (out, ())
        if multi_process():
            row_wise = multihost_utils.process_allgather(row_wise, tiled=True)
        row_wise = np.asarray(row_wise)[:n]
        if not any_of:
            return row_wise
        # replicated over every device: this process's copy is the whole value
        return (row_wise, *(np.asarray(x.addressable_data(0)) for x in combined))

    return sharded
