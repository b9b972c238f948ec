"""What a stage produced: a small ``manifest.json`` beside its outputs, read by the report.

Each command records the files it wrote under a key (``pr_curve``, ``control-fine`` ...) with
the settings that made them, so that readers ask for "the PR curve of this run", not for a
file name agreed on in two places.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MANIFEST = "manifest.json"


def read_manifest(out_dir: str | Path) -> dict:
    """The manifest of ``out_dir``: ``{"outputs": {key: file name}, "settings": {producer: ...}}``."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return {"outputs": {}, "settings": {}}
    return json.loads(path.read_text())


def record_outputs(out_dir: str | Path, producer: str, outputs: dict[str, Path],
                   settings: dict | None = None) -> Path:
    """Add ``outputs`` (key -> a file inside ``out_dir``) and the ``settings`` that made them."""
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    manifest["outputs"].update({key: Path(path).relative_to(out_dir).as_posix()
                                for key, path in outputs.items()})
    if settings is not None:
        manifest["settings"][producer] = settings
    path = out_dir / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def output_path(out_dir: str | Path, key: str) -> Path | None:
    """The file recorded under ``key`` in ``out_dir``'s manifest, if it was and still exists."""
    name = read_manifest(out_dir)["outputs"].get(key)
    path = Path(out_dir) / name if name else None
    return path if path is not None and path.is_file() else None


def output_settings(out_dir: str | Path, producer: str) -> dict | None:
    return read_manifest(out_dir)["settings"].get(producer)
