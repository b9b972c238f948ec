"""Real images for evaluation: a tensorflow-datasets name, a local image folder, or the demo ``shapes``.

Every image is fitted to the generator's square resolution the way NVIDIA's
dataset tool prepares LSUN car: scaled (Lanczos) so that its longer side equals
the resolution, then padded with black, centred, to a square (512x384 -> 512x512).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mlss_jax.errors import ConfigError, InputFileError
from mlss_jax.config import quote_error
from mlss_jax.data.tfds import import_tfds

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def fit_to_square(image: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 [H, W, 3] (or [H, W], grey) -> uint8 [resolution, resolution, 3], aspect kept."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise InputFileError(f"expected an RGB image, got shape {image.shape}")
    image = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]
    h, w = image.shape[:2]
    if (h, w) != (resolution, resolution):
        scale = resolution / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS))
    h, w = image.shape[:2]
    out = np.zeros((resolution, resolution, 3), np.uint8)
    top, left = (resolution - h) // 2, (resolution - w) // 2
    out[top:top + h, left:left + w] = image
    return out


def load_image_file(path: Path, resolution: int) -> np.ndarray:
    """One image file -> uint8 [resolution, resolution, 3]."""
    if not path.is_file():
        raise FileNotFoundError(f"no image {path}")
    try:
        with Image.open(path) as img:
            return fit_to_square(np.asarray(img.convert("RGB")), resolution)
    except (UnidentifiedImageError, OSError) as err:
        raise InputFileError(f"cannot read image {path}: {err}") from None


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder`` (any depth), in sorted order."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                  and p.is_file())


def load_image_folder(folder: Path, resolution: int, num: int) -> np.ndarray:
    files = image_files(folder)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return np.stack([load_image_file(path, resolution) for path in files[:num]])


def duplicate_count(images: np.ndarray) -> int:
    """How many of ``images`` [N, ...] are exact copies of an earlier one."""
    import hashlib

    return len(images) - len({hashlib.sha256(np.ascontiguousarray(image)).digest()
                              for image in images})


def real_image_warnings(images: np.ndarray, wanted: int, copies_matter: bool = True) -> list[str]:
    """What makes a set of real images a weak reference for ``wanted`` generated samples: fewer
    of them, or (if ``copies_matter``) many exact copies (more than 10%). The demo world's
    shapes repeat by design (each a combination of a few discrete factors): there copies do
    not matter."""
    warnings = []
    if len(images) < wanted:
        warnings.append(f"--real gave {len(images)} images, fewer than the {wanted} generated "
                        "samples of each set: precision and recall compare sets of unequal size")
    copies = duplicate_count(images) if copies_matter else 0
    if copies > 0.1 * len(images):
        warnings.append(f"{copies} of the {len(images)} real images are exact copies of others: "
                        "the real manifold is smaller than it looks, and precision reads high")
    return warnings


def load_tfds_images(name: str, resolution: int, num: int, split: str = "train",
                     data_dir: str | Path | None = None) -> np.ndarray:
    """The first ``num`` images of a tfds dataset's split (the builder is prepared if needed, which
    needs the dataset's files or internet access)."""
    tfds = import_tfds()
    try:
        builder = tfds.builder(name, data_dir=None if data_dir is None else str(data_dir))
    except Exception as err:  # tfds raises several types for unknown names and configs
        raise InputFileError(f"--real {name!r} is neither an image folder nor a tfds dataset "
                             f"({quote_error(err)})") from None
    try:
        builder.download_and_prepare()
    except Exception as err:  # no network, missing manual files, ...
        raise InputFileError(f"cannot prepare tfds dataset {name!r} in {builder.data_dir} "
                             f"({quote_error(err)})") from None
    if "image" not in builder.info.features:
        raise InputFileError(f"tfds dataset {name!r} has no 'image' feature")
    # no auto-cache: a cached dataset read only partly (take) makes TensorFlow warn
    dataset = builder.as_dataset(split=split, shuffle_files=False,
                                 read_config=tfds.ReadConfig(try_autocache=False)).take(num)
    images = [fit_to_square(np.asarray(ex["image"]), resolution) for ex in tfds.as_numpy(dataset)]
    if not images:
        raise InputFileError(f"tfds dataset {name!r} split {split!r} is empty")
    return np.stack(images)


def load_real_images(source: str, resolution: int, num: int, split: str = "train",
                     data_dir: str | Path | None = None) -> np.ndarray:
    """uint8 [<=num, resolution, resolution, 3] from an image folder, the demo's
    ``shapes[/config][:version]`` (rendered; the version names the world, none the default
    world) or a tfds name."""
    if num <= 0:
        raise ConfigError("the number of real images must be positive")
    folder = Path(source)
    if folder.is_dir():
        return load_image_folder(folder, resolution, num)
    if folder.exists():
        raise InputFileError(f"--real {source}: not a directory of images")
    from mlss_jax.demo.shapes import is_shapes_name

    if is_shapes_name(source):  # the demo world renders its images here: nothing is built or cached
        from mlss_jax.demo.shapes import parse_shapes_name, render_examples, split_range

        config, world = parse_shapes_name(source)
        start, stop = split_range(split, config)
        images, _ = render_examples(start, min(stop, start + num), world=world)
        return np.stack([fit_to_square(image, resolution) for image in images])
    return load_tfds_images(source, resolution, num, split, data_dir)


def check_real_source(source: str) -> None:
    """Fail in one line, before any work, on a ``--real`` that names nothing usable: a path that
    does not exist or holds no images, an unknown ``shapes`` config or version, or an unknown
    tfds name.
    (A tfds dataset that is known but not yet prepared is found when it is loaded.)"""
    folder = Path(source)
    if folder.is_dir():
        if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.rglob("*")):
            raise FileNotFoundError(f"--real {source}: no images ({', '.join(IMAGE_SUFFIXES)}) "
                                    "in this folder")
        return
    if folder.exists():
        raise InputFileError(f"--real {source}: not a directory of images")
    from mlss_jax.demo.shapes import is_shapes_name, parse_shapes_name

    if is_shapes_name(source):
        parse_shapes_name(source)
        return
    if source.startswith((".", "/", "~")):   # a path, not a tfds name
        raise FileNotFoundError(f"--real {source}: no such image folder")
    tfds = import_tfds()
    try:
        tfds.builder(source)
    except Exception as err:  # tfds raises several types for unknown names and configs
        raise InputFileError(f"--real {source!r} is neither an image folder nor a tfds dataset "
                             f"({quote_error(err)})") from None
