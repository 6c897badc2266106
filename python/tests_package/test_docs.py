"""The README's Python example and the quickstart notebook run as written (so they never go
stale)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import nbclient
import nbformat

from conftest import REPOSITORY


def readme_python_example() -> str:
    readme = (REPOSITORY / "README.md").read_text()
    section = readme.split("\n## Python\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_python_example_runs_and_plots(tmp_path):
    example = readme_python_example()
    assert len(example.strip().splitlines()) <= 10
    full = "examples/paper_phase_diagram.toml"
    assert full in example
    # The same phase diagram with 250 instead of 2000 walkers per variant keeps CI small.
    small = REPOSITORY / "examples" / "small" / "paper_phase_diagram.toml"
    script = example.replace(full, str(small))
    completed = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                               text=True, env={**os.environ, "MPLBACKEND": "Agg"}, timeout=600)
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "p_flat.png").stat().st_size > 10_000
    maximum, backend = completed.stdout.split()
    assert 0.5 < float(maximum) <= 1.0 and backend == "cpu"


def test_quickstart_notebook_executes():
    path = REPOSITORY / "examples" / "notebooks" / "quickstart.ipynb"
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError, naming the cell, when one fails
    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.outputs]
    assert sum(output.output_type == "display_data" for output in outputs) >= 2  # the figures
