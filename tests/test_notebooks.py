"""Every chapter works as a notebook that a reader runs, and re-runs, cell by cell.

For each chapter, one kernel executes every code cell in order, then every code
cell again, in order, as a reader does who re-runs cells. Only cells tagged
``raises-exception`` may fail. This is slow (each chapter runs twice; the chunks
chapter alone takes several minutes), so the tests carry the ``notebooks`` marker:
``pytest -m "not notebooks"`` leaves them out.

The chapters write into ``data/<chapter>/``, as they do for a reader; they
replace only what they wrote there themselves. Timing claims follow the
environment: strict under ``TEXTBOOK_STRICT=1`` (CI), warnings otherwise.
"""

from __future__ import annotations

import time

import jupytext
import nbformat
import pytest

from conftest import REPO, skip_or_fail, toc_files

pytestmark = pytest.mark.notebooks

CHAPTERS = [f for f in toc_files() if "```{code-cell}" in (REPO / f"{f}.md").read_text()]


def twice(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook's code cells, then the same cells again (markdown dropped)."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    again = nbformat.from_dict({**notebook, "cells": [dict(c) for c in code] * 2})
    for i, cell in enumerate(again.cells):
        cell["id"] = f"run{i // len(code) + 1}-{i % len(code)}"
    return again


def test_twice_repeats_every_code_cell_in_order():
    text = "# T\n\n```{code-cell} ipython3\na = 1\n```\n\ntext\n\n```{code-cell} ipython3\nb = 2\n```\n"
    notebook = jupytext.reads(text, fmt="md:myst")
    assert [c.source for c in twice(notebook).cells] == ["a = 1", "b = 2", "a = 1", "b = 2"]


@pytest.fixture(autouse=True)
def loopback_only_kernels(monkeypatch):
    """Kernels start as in the build: a connection outside 127.0.0.1 fails (data_helpers.netguard)."""
    monkeypatch.setenv("DATA_HELPERS_LOOPBACK_ONLY", "1")
    monkeypatch.setenv("PYTHONSTARTUP", str(REPO / "helpers" / "src" / "data_helpers" / "kernel_startup.py"))


@pytest.fixture(scope="module")
def sample_data():
    """The heart sample must be reachable (a loopback mirror or a filled cache)."""
    from data_helpers import fetch_dataset

    try:
        fetch_dataset("heart")
    except Exception as error:  # no mirror, no cache: nothing a chapter could load
        skip_or_fail(f"the sample data is not available ({type(error).__name__}: {error}); "
                     f"set DATA_HELPERS_MIRROR to a loopback mirror")


@pytest.mark.timeout(3600)  # the chunks chapter runs its experiment twice: over 10 minutes on a busy machine
@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.split("/")[-1] for c in CHAPTERS])
def test_every_cell_runs_twice_in_one_kernel(chapter, sample_data, capsys):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = twice(jupytext.read(REPO / f"{chapter}.md"))
    client = NotebookClient(
        notebook,
        timeout=1200,
        kernel_name="python3",
        resources={"metadata": {"path": str(REPO / "book")}},
        allow_errors=False,  # cells tagged raises-exception may still raise
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as error:
        where = next((c["id"] for c in notebook.cells if _failed(c)), "?")
        pytest.fail(f"{chapter}: cell {where} failed (run1 = first pass, run2 = re-run):\n{error}")
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n  {chapter}: every cell twice in {seconds:.0f} s")
    errors = [c["id"] for c in notebook.cells if _failed(c)]
    assert not errors, f"{chapter}: cells with errors: {errors}"
    # The second pass really ran: the last cell of the re-run has outputs or an execution count.
    assert notebook.cells[-1].get("execution_count"), f"{chapter}: the re-run did not reach its last cell"


def _failed(cell) -> bool:
    """An error output in a cell not tagged raises-exception."""
    has_error = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
    return has_error and "raises-exception" not in cell.metadata.get("tags", [])
