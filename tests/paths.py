"""Settings for a test's own folder, with the repository's packaged models."""

from __future__ import annotations

from pathlib import Path

from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "data" / "models"


def settings_in(base: Path, corpus: Path) -> Settings:
    """``corpus``, the packaged models, and a new index and data folder in ``base``."""
    return Settings(
        corpus_dir=corpus, data_dir=base / "data", db_dir=base / "db", models_dir=MODELS
    )
