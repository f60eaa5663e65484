"""Hand-off: copy the model file and its metadata to the service (still a copy, still by hand at heart)."""

from __future__ import annotations

import shutil
from pathlib import Path

from level1.settings import Settings
from level1.train import metadata_path_for


class NoModelError(FileNotFoundError):
    """There is no trained model file to hand off."""


def handoff(settings: Settings) -> Path:
    source = settings.model_dir / "model.pkl"
    if not source.exists():
        raise NoModelError(f"no model at {source}: run `make train` first")
    settings.handoff_dir.mkdir(parents=True, exist_ok=True)
    for path in (source, metadata_path_for(source)):
        shutil.copy2(path, settings.handoff_dir / path.name)
    return settings.handoff_dir / source.name
