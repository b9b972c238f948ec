"""Where the application reads and writes by default (the bundled assets: :mod:`mlss_jax.demo.world`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mlss_jax.runtime.files import check_writable_dir

REPO = Path(__file__).resolve().parents[2]
# One place a user's demo run lives, relative to the working directory: ./run.sh writes it, and
# every single-step command reads (and convert/from_pkl.py and train.py write) the same paths.
DEMO_RUN = Path("runs") / "demo"
DEMO_CHECKPOINT = DEMO_RUN / "generator"
LEVELS_DIR = DEMO_RUN / "levels"


def require_generator(path: Path) -> None:
    """A generator checkpoint or pickle must exist before any work starts."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no generator at {path} (convert one first: "
                                "python convert/from_pkl.py)")


def require_output_dir(path: Path, flag: str = "--out") -> None:
    """An output folder may be missing (it is made) but not be a file, and must be writable."""
    check_writable_dir(path, flag)


@dataclasses.dataclass(frozen=True)
class RunLayout:
    """Where each stage of a run directory writes (the stages and the report share it)."""

    out: Path

    generator = property(lambda self: self.out / "generator")
    levels = property(lambda self: self.out / "levels")
    level_report = property(lambda self: self.out / "level_report")
    evaluate = property(lambda self: self.out / "evaluate")
    control = property(lambda self: self.out / "control")
    logs = property(lambda self: self.out / "logs")
    stages = property(lambda self: self.out / "stages.json")
