"""Every chapter works as a notebook that a reader runs, then comes back to, section by section.

For each chapter, one kernel executes every code cell in order (Run All). Then,
in the same kernel, it runs each section again on its own, the last section
first and then the one before it, back to the first, as a reader does who comes
back to an exercise or a section after running the whole chapter. A section is
the code cells under one ``##`` heading (its ``###`` subsections included), in
order; the cells before the first ``##`` heading are the chapter's opening
section. Only cells tagged ``raises-exception`` may fail, and the hidden assert
cells run again, so a section that re-runs on a deleted input or a closed
cluster fails here. This is slow (the chunks chapter alone takes minutes), so
the tests carry the ``notebooks`` marker: ``pytest -m "not notebooks"`` leaves
them out.

The chapters write into ``data/<chapter>/``, as they do for a reader; they
replace only what they wrote there themselves. Timing claims follow the
environment: strict under ``TEXTBOOK_STRICT=1`` (CI), warnings otherwise.
"""

from __future__ import annotations

import re
import time

import jupytext
import nbformat
import pytest

from conftest import REPO, skip_or_fail, toc_files

pytestmark = pytest.mark.notebooks

CHAPTERS = [f for f in toc_files() if "```{code-cell}" in (REPO / f"{f}.md").read_text()]

_FENCE = re.compile(r"^\s*(```|~~~)")


def _headings(markdown: str) -> list[str]:
    """The ``##`` headings of a markdown cell, outside fenced code blocks."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            found.append(line[3:].strip())
    return found


def sections(notebook: nbformat.NotebookNode) -> list[tuple[str, list[int]]]:
    """The chapter's sections: (``##`` heading, indices of its code cells), in order.

    The code cells before the first ``##`` heading form the first section, named
    ``(opening)``. A section without code cells is left out.
    """
    found: list[tuple[str, list[int]]] = [("(opening)", [])]
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            found += [(heading, []) for heading in _headings(cell.source)]
        elif cell.cell_type == "code":
            found[-1][1].append(index)
    return [(heading, cells) for heading, cells in found if cells]


def run_all_then_sections_backwards(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Every code cell in order, then each section's code cells again, the last section first.

    Each cell's metadata says where it comes from (``rerun``: pass, section, cell
    number among the chapter's code cells, and its first line), for the failure message.
    """
    parts = sections(notebook)
    code = [i for _, cells in parts for i in cells]
    number = {index: n + 1 for n, index in enumerate(code)}
    plan = [("Run All", heading, index) for heading, cells in parts for index in cells]
    plan += [("re-run", heading, index) for heading, cells in reversed(parts) for index in cells]
    cells = []
    for step, (phase, heading, index) in enumerate(plan):
        cell = nbformat.from_dict(dict(notebook.cells[index]))
        cell["id"] = f"step-{step}"
        cell.metadata = nbformat.from_dict({
            **cell.metadata,
            "rerun": {"phase": phase, "section": heading, "cell": number[index],
                      "first_line": (cell.source.strip().splitlines() or [""])[0]},
        })
        cells.append(cell)
    return nbformat.from_dict({**notebook, "cells": cells})


_EXAMPLE = """# T

```{code-cell} ipython3
a = 1
```

## One

```python
## not a heading: inside a fence
```

```{code-cell} ipython3
b = 2
```

```{code-cell} ipython3
c = 3
```

## Empty

## Two
### A subsection stays in its section

```{code-cell} ipython3
d = 4
```

```{code-cell} ipython3
e = 5
```
"""


def test_sections_split_code_cells_at_level_two_headings():
    notebook = jupytext.reads(_EXAMPLE, fmt="md:myst")
    found = [(h, [notebook.cells[i].source for i in cells]) for h, cells in sections(notebook)]
    assert found == [("(opening)", ["a = 1"]), ("One", ["b = 2", "c = 3"]), ("Two", ["d = 4", "e = 5"])]


def test_the_plan_runs_all_then_the_sections_last_first():
    plan = run_all_then_sections_backwards(jupytext.reads(_EXAMPLE, fmt="md:myst"))
    assert [c.source for c in plan.cells] == ["a = 1", "b = 2", "c = 3", "d = 4", "e = 5",
                                              "d = 4", "e = 5", "b = 2", "c = 3", "a = 1"]
    assert plan.cells[7].metadata["rerun"] == {"phase": "re-run", "section": "One", "cell": 2,
                                               "first_line": "b = 2"}
    assert len({c["id"] for c in plan.cells}) == len(plan.cells)


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
def test_each_section_runs_again_after_run_all(chapter, sample_data, capsys):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = run_all_then_sections_backwards(jupytext.read(REPO / f"{chapter}.md"))
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
        failed = next((c for c in notebook.cells if _failed(c)), None)
        pytest.fail(f"{chapter}: {_where(failed)} failed:\n{error}")
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n  {chapter}: Run All, then each section again, in {seconds:.0f} s")
    failed = [_where(c) for c in notebook.cells if _failed(c)]
    assert not failed, f"{chapter}: cells with errors: {failed}"
    # The re-runs really ran: the last cell (the opening section's last) has an execution count.
    assert notebook.cells[-1].get("execution_count"), f"{chapter}: the re-runs did not reach their last cell"


def _where(cell) -> str:
    """Which pass, section and cell a planned cell is, in words."""
    if cell is None:
        return "a cell"
    at = cell.metadata.get("rerun", {})
    return (f"in the {at.get('phase')} pass, section '{at.get('section')}', code cell {at.get('cell')} "
            f"(starting {at.get('first_line')!r})")


def _failed(cell) -> bool:
    """An error output in a cell not tagged raises-exception."""
    has_error = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
    return has_error and "raises-exception" not in cell.metadata.get("tags", [])
