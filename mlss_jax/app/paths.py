"""Where the application reads and writes by default (the bundled assets: :mod:`mlss_jax.demo.world`)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_CHECKPOINT = Path("checkpoints") / "demo"   # relative to the working directory
LEVELS_DIR = Path("checkpoints") / "mlss"
