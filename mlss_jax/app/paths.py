"""Where the repository keeps its bundled assets and where the demo pipeline writes by default."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "assets"
DEMO_PICKLE = ASSETS / "demo" / "stylegan2-shapes-32.pkl"   # TF-format pickle, our exporter
FACTOR_CLASSIFIER = ASSETS / "factor_classifier"
DEMO_CHECKPOINT = Path("checkpoints") / "demo"              # relative to the working directory
