"""``tools/train_stylegan2.py``: train the compact StyleGAN2 on the demo world's ``shapes``.

The command's work below its flags: check the inputs before any expensive work, join the
processes that share the run, load the training images, train, and copy the network out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mlss_jax.errors import ConfigError
from mlss_jax.gan.training import GANTrainConfig, TrainResult, train_gan
from mlss_jax.runtime import distributed
from mlss_jax.runtime.distributed import DistributedConfig
from mlss_jax.runtime.run_state import check_run_dir


def dataset_name(config: str, world: int, resumed_run: Path | None = None) -> str:
    """The name a run records for its training data: its tfds name, whose version names the
    world (``shapes/default:1.0.0``, ``shapes/default:2.0.0``); ``--real`` reads it too.

    A run being resumed (``resumed_run``) that recorded the same data by its earlier name
    (``shapes/default``, ``shapes/default@world2``) keeps that name, so that it resumes."""
    from mlss_jax.demo.shapes import tfds_name
    from mlss_jax.runtime.files import read_json
    from mlss_jax.runtime.run_state import RUN_CONFIG

    earlier = f"shapes/{config}" + ("" if world == 1 else f"@world{world}")
    if resumed_run is not None and read_json(resumed_run / RUN_CONFIG, {}).get("dataset") == earlier:
        return earlier
    return tfds_name(config, world)


def recorded_world(run_dir: Path) -> int | None:
    """The shapes world a run in ``run_dir`` recorded for its data (None: no run there)."""
    from mlss_jax.demo.shapes import parse_shapes_name
    from mlss_jax.runtime.files import read_json
    from mlss_jax.runtime.run_state import RUN_CONFIG

    name = read_json(run_dir / RUN_CONFIG, {}).get("dataset")
    if name is None:
        return None
    if "@world" in name:          # the earlier name of world 2
        return int(name.rsplit("@world", 1)[1])
    if ":" not in name:           # recorded before worlds had versions: world 1, the only one
        return 1
    return parse_shapes_name(name)[1]


def train_stylegan2(config: GANTrainConfig, out: Path, *, resume: bool = False,
                    force: bool = False, dataset_config: str = "default",
                    data_dir: str | None = None, world: int | None = None,
                    init_from: Path | None = None, fresh_discriminator: bool = False,
                    snapshot_pickles: bool = False, export: Path | None = None,
                    cluster: DistributedConfig = DistributedConfig(),
                    deadline: float | None = None) -> TrainResult:
    """Train (or resume) the run in ``out`` on ``shapes/<dataset_config>`` of ``world`` (default:
    with ``resume``, the world the run recorded, else the default world); with ``export``,
    process 0 also copies the final ``network.pkl`` there.

    ``cluster``: the processes that share the run (every one calls this); this joins them, so
    the trainer below runs on all their devices.
    """
    from mlss_jax.demo.dataset import load_shapes
    from mlss_jax.demo.shapes import DEFAULT_WORLD

    recorded = recorded_world(out) if resume else None
    if world is None:   # a run resumes on its own world, whatever the default is now
        world = recorded or DEFAULT_WORLD
    elif recorded not in (None, world):   # before the data is rendered
        raise ConfigError(f"{out} was trained on shapes world {recorded}, not --world {world}")
    if init_from is not None and not init_from.is_file():
        raise FileNotFoundError(f"no such pickle: {init_from}")
    if config.feature_encoder is not None:   # a missing or broken encoder fails before the data
        from mlss_jax.gan.feature_encoder import load_feature_encoder

        load_feature_encoder(config.feature_encoder)
    check_run_dir(out, resume, force)  # before the data is loaded
    distributed.join(cluster)
    images, _ = load_shapes("train", dataset_config, data_dir, progress=distributed.is_main(),
                            world=world)
    result = train_gan(config, images, out, resume=resume,
                       dataset_name=dataset_name(dataset_config, world, out if resume else None),
                       init_from=init_from,
                       force=force, deadline=deadline, fresh_discriminator=fresh_discriminator,
                       snapshot_pickles=snapshot_pickles)
    if export is not None and distributed.is_main():
        export.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.pickle_path, export)
    distributed.leave()
    return result
