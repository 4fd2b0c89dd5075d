"""What task containers are built from: Dockerfile templates, the conda-compatible activation shim,
and the bundled task suite (repository histories as patch series plus task definitions).

This package holds data only; the code that builds images lives in ``harness.images``.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent
ENV_DIR = ROOT / "env"
SUITE_DIR = ROOT / "suite"
