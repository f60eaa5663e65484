"""Level 0's tests run the real chain on small data: notebook -> model.pkl -> score.py."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from taxi.generator import generate_month
from taxi.loader import write_parquet

LEVEL = Path(__file__).resolve().parent.parent
NOTEBOOK = LEVEL / "notebook.ipynb"
SCORE_SCRIPT = LEVEL / "score.py"
ROWS = 3000


def with_parameters(nb: nbformat.NotebookNode, **params: object) -> nbformat.NotebookNode:
    """Add a cell after the one tagged "parameters" that overrides its values (what papermill does)."""
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{name} = {value!r}" for name, value in params.items())
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    return nb


@pytest.fixture(scope="session")
def executed(tmp_path_factory) -> tuple[nbformat.NotebookNode, Path]:
    """The notebook executed headless on a small hand-downloaded January; returns (notebook, output dir)."""
    work = tmp_path_factory.mktemp("level0")
    data, out = work / "downloads", work / "model-out"
    write_parquet(generate_month("2024-01", rows=ROWS), data / "green_tripdata_2024-01.parquet")
    nb = with_parameters(nbformat.read(NOTEBOOK, as_version=4), DATA_DIR=str(data), OUTPUT_DIR=str(out))
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    return nb, out


@pytest.fixture(scope="session")
def february(tmp_path_factory) -> Path:
    return write_parquet(generate_month("2024-02", rows=ROWS), tmp_path_factory.mktemp("feb") / "feb.parquet")
