"""Run the notebook headless with parameters, the way papermill does: a cell overriding the values of
the cell tagged "parameters" is added after it, the notebook is executed with nbclient, and the executed
copy (plus an HTML rendering) is written to the output folder.

    python -m level0.notebook notebook.ipynb outputs TRAIN_MONTH=2024-03 DATA_DIR=data
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbconvert import HTMLExporter


def with_parameters(nb: nbformat.NotebookNode, **params: object) -> nbformat.NotebookNode:
    """Add a cell after the one tagged "parameters" that overrides its values."""
    index = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
    if index is None:
        raise ValueError("the notebook has no cell tagged 'parameters'")
    source = "\n".join(f"{name} = {value!r}" for name, value in params.items())
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    return nb


def execute(notebook: Path, workdir: Path, timeout: int = 300, **params: object) -> nbformat.NotebookNode:
    """Execute ``notebook`` in ``workdir`` with ``params``; returns the executed notebook."""
    nb = with_parameters(nbformat.read(notebook, as_version=4), **params)
    # the kernel of this environment; encryption on so ipykernel does not warn about plain-text TCP
    kernel = KernelManager(kernel_name="python3", transport_encryption="auto")
    client = NotebookClient(nb, km=kernel, timeout=timeout, resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    finally:
        if kernel.has_kernel:
            kernel.shutdown_kernel(now=True)
    return nb


def main(argv: list[str]) -> None:
    notebook, out_dir, *assignments = argv
    params = dict(a.split("=", 1) for a in assignments)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nb = execute(Path(notebook), Path.cwd(), **params)
    nbformat.write(nb, out / Path(notebook).name)
    html, _ = HTMLExporter().from_notebook_node(nb)
    (out / Path(notebook).with_suffix(".html").name).write_text(html)
    print(f"executed {notebook} -> {out / Path(notebook).name} (+ .html); its note to the app team says:")
    note = Path(params.get("OUTPUT_DIR", out)) / "model_note.txt"
    for line in note.read_text().splitlines() if note.exists() else ["(no model_note.txt written)"]:
        if line.startswith(("File", "Trained on", "Metric", "Also tried")):
            print(f"   {line}")


if __name__ == "__main__":
    main(sys.argv[1:])
