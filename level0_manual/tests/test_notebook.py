"""The notebook runs top to bottom (so it can't rot) and hands over a model file with its note."""

import pickle
from pathlib import Path

import nbformat

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebook.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the notebook's outputs"
    assert any("parameters" in c.metadata.get("tags", []) for c in code)


def test_notebook_executes_and_writes_model_and_note(executed):
    nb, out = executed
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, "the plots did not render"

    with (out / "model.pkl").open("rb") as f:
        model = pickle.load(f)
    assert hasattr(model, "predict")
    note = (out / "model_note.txt").read_text()
    for fact in ("trip_distance", "miles", "PULocationID", "minutes", "2024-01", "RMSE"):
        assert fact in note
