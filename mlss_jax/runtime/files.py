"""Files written whole or not at all."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mlss_jax.errors import InputFileError


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a hidden temporary file beside it, renamed over it once
    complete: a crash or a signal leaves the old file or the new one, never part of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_json(path: str | Path, default: object = None) -> object:
    """A JSON file the project wrote (a manifest, a stage record); ``default`` where there is
    none. A file that is not JSON (cut short, edited by hand) is one line naming it."""
    path = Path(path)
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputFileError(f"{path} is not valid JSON ({err}); delete it, or the folder it "
                             f"is in, to start that output again") from None


def check_writable_dir(path: str | Path, flag: str = "--out") -> None:
    """A folder to write may be missing (it is made later) but not be a file, and must be
    writable: checked by a probe file in it, or in its nearest existing parent, before any work.
    Nothing is created but the probe, which is gone at once, so processes that check the same
    folder at the same time do not trip over each other."""
    import tempfile

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{flag} {path} is a file, not a directory")
    base = path
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise NotADirectoryError(f"{flag} {path}: {base} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as err:
        raise PermissionError(f"{flag} {path} cannot be written ({err.strerror or err})") from None


# Directories the project writes carry this marker, and only those may be replaced or emptied
# by --force: a mistaken --out never deletes a folder of the user's.
MARKER = ".mlss-jax"


class NotOurs(InputFileError, FileExistsError):
    """A path that --force (or a fresh run) would replace, but that the project did not write."""


def mark_dir(directory: str | Path, kind: str) -> Path:
    """Mark ``directory`` as one the project wrote, holding a ``kind`` (checkpoint, run ...)."""
    return write_atomic(Path(directory) / MARKER, f'{{"written_by": "mlss-jax", "kind": "{kind}"}}\n')


def dir_kind(directory: str | Path) -> str | None:
    """The kind of project directory ``directory`` is, from its marker; None if it has none."""
    import json

    path = Path(directory) / MARKER
    try:
        marker = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return marker.get("kind") if isinstance(marker, dict) else None


def check_replaceable(path: str | Path, kind: str, what: str,
                      legacy: frozenset[str] = frozenset()) -> None:
    """Refuse, before any work, to replace ``path`` unless the project wrote it as a ``kind``.

    ``what`` names the kind for the message ("a checkpoint directory"). ``legacy``: the names a
    directory of this kind written before markers existed may hold; one with ``config.json`` and
    nothing else is taken as the project's too. Nothing at ``path`` is fine.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        kind_found = "a link" if path.is_symlink() else "a file"
        raise NotOurs(f"{path} is {kind_found}, not {what}; --force replaces only {what} that "
                      "mlss-jax wrote (move it or choose another --out)")
    found = dir_kind(path)
    if found == kind:
        return
    if found is None and legacy and (path / "config.json").is_file() and all(
            entry.name in legacy for entry in path.iterdir()):
        return
    held = f"holds a {found}" if found else "was not written by mlss-jax"
    raise NotOurs(f"{path} {held}, not {what}; --force replaces only {what} that mlss-jax "
                  "wrote (remove it yourself or choose another --out)")
