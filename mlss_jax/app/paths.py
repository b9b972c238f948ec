"""Where the application reads and writes by default (the bundled assets: :mod:`mlss_jax.demo.world`)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_CHECKPOINT = Path("checkpoints") / "demo"   # relative to the working directory
LEVELS_DIR = Path("checkpoints") / "mlss"


def require_generator(path: Path) -> None:
    """A generator checkpoint or pickle must exist before any work starts."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no generator at {path} (convert one first: "
                                "python convert/from_pkl.py)")


def require_output_dir(path: Path) -> None:
    """An output folder may be missing (it is made) but not be a file."""
    if Path(path).exists() and not Path(path).is_dir():
        raise NotADirectoryError(f"--out {path} is a file, not a directory")
