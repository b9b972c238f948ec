"""What the trainers' train states share: one optimiser step and the gradient average over the
data axis of a ``shard_map``-ped step (``runtime/parallel.py``)."""

from __future__ import annotations

from typing import Any

import jax
import optax

from mlss_jax.runtime.parallel import DATA_AXIS


def pmean(tree: Any) -> Any:
    """``tree`` averaged over the devices of the data axis (inside the sharded step)."""
    return jax.lax.pmean(tree, axis_name=DATA_AXIS)


def optimizer_step(tx: optax.GradientTransformation, params: Any, opt_state: Any,
                   grads: Any) -> tuple[Any, Any]:
    """``params`` after one step of ``tx`` along ``grads``, and ``tx``'s new state."""
    updates, opt_state = tx.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state
