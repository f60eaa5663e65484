"""Level 0's tests run the real chain on small data: notebook -> model.pkl -> score.py."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from level0.notebook import execute
from taxi.generator import generate_month
from taxi.loader import write_parquet

LEVEL = Path(__file__).resolve().parent.parent
NOTEBOOK = LEVEL / "notebook.ipynb"
SCORE_SCRIPT = LEVEL / "score.py"
ROWS = 3000


@pytest.fixture(scope="session")
def executed(tmp_path_factory) -> tuple[nbformat.NotebookNode, Path]:
    """The notebook executed headless on a small hand-downloaded January; returns (notebook, output dir)."""
    work = tmp_path_factory.mktemp("level0")
    data, out = work / "downloads", work / "model-out"
    write_parquet(generate_month("2024-01", rows=ROWS), data / "green_tripdata_2024-01.parquet")
    return execute(NOTEBOOK, work, timeout=120, DATA_DIR=str(data), OUTPUT_DIR=str(out)), out


@pytest.fixture(scope="session")
def february(tmp_path_factory) -> Path:
    return write_parquet(generate_month("2024-02", rows=ROWS), tmp_path_factory.mktemp("feb") / "feb.parquet")
