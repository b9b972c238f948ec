"""A training run as a few flat files, to carry it between machines that share no disk.

A run directory is deep (orbax writes ``checkpoints/<step>/…`` several folders down) and
holds old checkpoints and snapshot pickles (``snapshots/``) that a resume does not need.
:func:`pack_run` writes what resuming needs, the run's newest checkpoint, its config, log
and small outputs, as a gzipped tar split into parts of at most ``part_bytes``, beside
``pack.json`` (the parts' sizes and SHA-256, the step). Large outputs (``network.pkl``) are
copied beside the parts as plain files: they come back with the pack but need not travel
back, since a resumed run rewrites them. :func:`unpack_run` checks every part before it
writes anything, then restores the run directory, from which ``--resume`` continues exactly
where the packed run stopped.

    pack/pack.json  pack/run.tar.gz.000  pack/run.tar.gz.001  pack/network.pkl
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from mlss_jax.errors import InputFileError
from mlss_jax.runtime.files import mark_dir
from mlss_jax.runtime.run_state import (CHECKPOINTS, LOCK, RUN_CONFIG, RUN_KIND, SNAPSHOTS,
                                        check_run_dir, lock_run_dir)

MANIFEST = "pack.json"
ARCHIVE = "run.tar.gz"
FORMAT = 1
# outputs at least this large are copied beside the parts instead of into them
LOOSE_BYTES = 1 << 20
_CHUNK = 1 << 20


class RunPackError(InputFileError, ValueError):
    """A pack that cannot be read or a run that cannot be packed."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _newest_step(run_dir: Path) -> int:
    steps = [int(p.name) for p in (run_dir / CHECKPOINTS).glob("*")
             if p.is_dir() and p.name.isdigit()]
    if not steps:
        raise RunPackError(f"{run_dir} has no checkpoint to pack")
    return max(steps)


def _run_files(run_dir: Path, step: int) -> tuple[list[Path], list[Path]]:
    """(files for the archive, large files to copy beside it), relative to ``run_dir``."""
    archived, loose = [], []
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if (not path.is_file() or rel.name == LOCK or rel.name.endswith(".tmp")
                or rel.parts[0] == SNAPSHOTS):
            continue
        if rel.parts[0] == CHECKPOINTS:
            if len(rel.parts) > 2 and rel.parts[1] == str(step):
                archived.append(rel)
            continue
        if len(rel.parts) == 1 and path.stat().st_size >= LOOSE_BYTES:
            loose.append(rel)
        elif not rel.parts[0].startswith("corrupt-"):
            archived.append(rel)
    return archived, loose


class _PartWriter(io.RawIOBase):
    """A write-only stream that spreads its bytes over ``stem.000``, ``stem.001``, …"""

    def __init__(self, stem: Path, part_bytes: int) -> None:
        self.stem, self.part_bytes = stem, part_bytes
        self.parts: list[Path] = []
        self._handle = None
        self._left = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        written = view.nbytes
        while view.nbytes:
            if self._left == 0:
                self._next_part()
            n = min(self._left, view.nbytes)
            self._handle.write(view[:n])
            self._left -= n
            view = view[n:]
        return written

    def _next_part(self) -> None:
        if self._handle is not None:
            self._handle.close()
        path = self.stem.with_name(f"{self.stem.name}.{len(self.parts):03d}")
        self._handle = open(path, "wb")
        self.parts.append(path)
        self._left = self.part_bytes

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        super().close()


def pack_run(run_dir: str | Path, dest: str | Path, part_bytes: int = 16 << 20) -> list[Path]:
    """Write ``run_dir``'s newest checkpoint and files into the folder ``dest`` (replacing a
    pack already there); returns the files written, ``pack.json`` first."""
    run_dir, dest = Path(run_dir).absolute(), Path(dest).absolute()
    if part_bytes < 1024:
        raise RunPackError(f"parts must hold at least 1 KiB, got {part_bytes} bytes")
    if not (run_dir / RUN_CONFIG).is_file():
        raise RunPackError(f"{run_dir} is not a run directory (no {RUN_CONFIG})")
    if dest.exists() and (not dest.is_dir() or
                          (any(dest.iterdir()) and not (dest / MANIFEST).is_file())):
        raise RunPackError(f"{dest} exists and is not a pack: choose another destination")
    if dest == run_dir or run_dir in dest.parents:
        raise RunPackError(f"the pack cannot go inside the run it packs ({dest})")
    with lock_run_dir(run_dir):   # a run still training would change under the pack
        return _write_pack(run_dir, dest, part_bytes)


def _write_pack(run_dir: Path, dest: Path, part_bytes: int) -> list[Path]:
    step = _newest_step(run_dir)
    archived, loose = _run_files(run_dir, step)

    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    writer = _PartWriter(staging / ARCHIVE, part_bytes)
    with tarfile.open(fileobj=writer, mode="w|gz") as tar:
        for rel in archived:
            tar.add(run_dir / rel, arcname=rel.as_posix(), recursive=False)
    writer.close()
    for rel in loose:
        shutil.copyfile(run_dir / rel, staging / rel.name)
    manifest = {
        "format": FORMAT, "run": run_dir.name, "step": step,
        "parts": [{"name": p.name, "bytes": p.stat().st_size, "sha256": _sha256(p)}
                  for p in writer.parts],
        "outputs": [{"name": rel.name, "bytes": (staging / rel.name).stat().st_size,
                     "sha256": _sha256(staging / rel.name)} for rel in loose],
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return [dest / MANIFEST] + [dest / p.name for p in writer.parts] + [dest / rel.name for rel in loose]


def read_pack(pack: str | Path) -> dict:
    """``pack.json`` of the folder ``pack``, with every part checked against it."""
    pack = Path(pack)
    path = pack / MANIFEST
    if not path.is_file():
        raise RunPackError(f"{pack} is not a run pack (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
        parts, outputs = manifest["parts"], manifest.get("outputs", [])
        step = int(manifest["step"])
        for entry in parts + outputs:
            entry.update(name=str(entry["name"]), bytes=int(entry["bytes"]),
                         sha256=str(entry["sha256"]))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError,
            AttributeError) as err:
        raise RunPackError(f"{path} is corrupt ({type(err).__name__}: {err})") from None
    if not parts:
        raise RunPackError(f"{path} lists no parts")
    if manifest.get("format") != FORMAT:
        raise RunPackError(f"{path} has format {manifest.get('format')!r}; this version reads "
                           f"format {FORMAT}")
    for i, part in enumerate(parts):
        _check_file(pack, part, f"part {i + 1} of {len(parts)}")
    # outputs need not travel with the pack; one that did must be whole
    manifest["outputs"] = [output for output in outputs
                           if _check_file(pack, output, "output", required=False)]
    manifest["step"] = step
    return manifest


def _check_file(pack: Path, entry: dict, what: str, required: bool = True) -> bool:
    """Whether ``entry``'s file is in ``pack``; raises if it is damaged, or missing and
    ``required``."""
    name = entry["name"]
    file = pack / name
    if PurePosixPath(name).name != name:
        raise RunPackError(f"{pack / MANIFEST} names a file outside the pack: {name!r}")
    if not file.is_file():
        if required:
            raise RunPackError(f"{what} ({name}) is missing from {pack}")
        return False
    if file.stat().st_size != entry["bytes"] or _sha256(file) != entry["sha256"]:
        raise RunPackError(f"{what} ({file}) is damaged: its size or SHA-256 differs from "
                           f"{MANIFEST} (copy it again)")
    return True


def _checked_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The archive's members, refused unless each is a plain file or folder inside the run."""
    members = tar.getmembers()
    for member in members:
        path = PurePosixPath(member.name)
        if (path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir())):
            raise RunPackError(f"the pack holds an unsafe entry {member.name!r}; not unpacked")
    return members


def unpack_run(pack: str | Path, run_dir: str | Path, force: bool = False) -> tuple[Path, int]:
    """Restore the run packed in ``pack`` into ``run_dir`` (new or empty; ``force`` replaces
    a run there); returns ``(run_dir, step of its checkpoint)``."""
    pack, run_dir = Path(pack).absolute(), Path(run_dir).absolute()
    manifest = read_pack(pack)
    check_run_dir(run_dir, resume=False, force=force)
    if run_dir.exists() and any(run_dir.iterdir()) and not force:
        raise FileExistsError(f"{run_dir} is not empty (--force replaces what is there)")
    # (with --force) a run still training there must not be replaced under it
    lock = lock_run_dir(run_dir) if run_dir.is_dir() and any(run_dir.iterdir()) else None
    try:
        return _restore(manifest, pack, run_dir)
    finally:
        if lock is not None:
            lock.close()


def _restore(manifest: dict, pack: Path, run_dir: Path) -> tuple[Path, int]:
    """Extract into a staging folder beside ``run_dir``, then put it in ``run_dir``'s place."""
    staging = run_dir.with_name(run_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with io.BytesIO() as archive:
            for part in manifest["parts"]:
                archive.write((pack / part["name"]).read_bytes())
            archive.seek(0)
            try:
                with tarfile.open(fileobj=archive, mode="r:gz") as tar:
                    for member in _checked_members(tar):
                        target = staging / member.name
                        if member.isdir():
                            target.mkdir(parents=True, exist_ok=True)
                            continue
                        target.parent.mkdir(parents=True, exist_ok=True)
                        with tar.extractfile(member) as src, open(target, "wb") as out:
                            shutil.copyfileobj(src, out)
            except (tarfile.TarError, EOFError, OSError) as err:
                raise RunPackError(f"cannot read the archive in {pack}: {err}") from None
        if not (staging / RUN_CONFIG).is_file():
            raise RunPackError(f"the pack in {pack} holds no {RUN_CONFIG}")
        for output in manifest["outputs"]:
            shutil.copyfile(pack / output["name"], staging / output["name"])
        mark_dir(staging, RUN_KIND)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if run_dir.exists():
        shutil.rmtree(run_dir)
    staging.rename(run_dir)
    return run_dir, manifest["step"]
