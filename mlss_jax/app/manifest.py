"""What a stage produced: a small ``manifest.json`` beside its outputs, read by the report.

Each command records the files it wrote under a key (``pr_curve``, ``control-fine`` ...) with
the settings that made them, so that readers ask for "the PR curve of this run", not for a
file name agreed on in two places.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Callable

from mlss_jax.runtime.files import read_json, write_atomic

MANIFEST = "manifest.json"


def read_manifest(out_dir: str | Path) -> dict:
    """The manifest of ``out_dir``: ``{"outputs": {key: file name}, "settings": {producer: ...}}``."""
    return read_json(Path(out_dir) / MANIFEST, {"outputs": {}, "settings": {}})


def record_outputs(out_dir: str | Path, producer: str, outputs: dict[str, Path],
                   settings: dict | None = None) -> Path:
    """Add ``outputs`` (key -> a file inside ``out_dir``) and the ``settings`` that made them."""
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    manifest["outputs"].update({key: Path(path).relative_to(out_dir).as_posix()
                                for key, path in outputs.items()})
    if settings is not None:
        manifest["settings"][producer] = settings
    return write_atomic(out_dir / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")


def output_path(out_dir: str | Path, key: str) -> Path | None:
    """The file recorded under ``key`` in ``out_dir``'s manifest, if it was and still exists."""
    name = read_manifest(out_dir)["outputs"].get(key)
    path = Path(out_dir) / name if name else None
    return path if path is not None and path.is_file() else None


def output_settings(out_dir: str | Path, producer: str) -> dict | None:
    return read_manifest(out_dir)["settings"].get(producer)


def write_outputs(out_dir: str | Path, producer: str,
                  writers: dict[str, Callable[[Path], Path]], settings: dict | None = None
                  ) -> dict[str, Path]:
    """Run each ``key -> writer(folder)`` (it writes one file into the folder and returns its
    path), then move every file into ``out_dir`` and record them in its manifest.

    The writers work in a hidden staging folder, so a failure part-way leaves ``out_dir`` as it
    was (not even created), never with some of the files or a half-written one.
    """
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / f".staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        staged = {key: Path(writer(staging)) for key, writer in writers.items()}
        final = {key: out_dir / path.relative_to(staging) for key, path in staged.items()}
        for key, path in staged.items():
            path.replace(final[key])
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
    staging.rmdir()
    record_outputs(out_dir, producer, final, settings)
    return final
