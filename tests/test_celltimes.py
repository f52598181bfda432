"""The build's record of each cell's time: written by a real kernel, read back per chapter by tasks.py."""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from conftest import REPO, load_script
from data_helpers import celltimes


def _tasks():
    return load_script("tasks.py", "tasks_for_cells")


def test_a_kernel_started_as_the_build_starts_it_records_each_cell(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    log = tmp_path / "cells.jsonl"
    monkeypatch.setenv("PYTHONSTARTUP", str(_tasks().KERNEL_STARTUP))
    monkeypatch.setenv(celltimes.ENV, str(log))
    cells = ["x = 1", "import time\ntime.sleep(0.6)", "print(x)"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["hash"] for r in records] == [celltimes.source_hash(c) for c in cells]
    assert [r["cell"] for r in records] == [1, 2, 3]
    assert records[1]["first_line"] == "import time"
    assert records[1]["seconds"] >= 0.6 > records[0]["seconds"]
    found = celltimes.slowest_cells(log, {"other": ["y = 2"], "this": cells}, n=1)
    assert list(found) == ["this"] and found["this"][0]["cell"] == 2


def test_without_the_variable_a_kernel_records_nothing(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("PYTHONSTARTUP", str(_tasks().KERNEL_STARTUP))
    count = "from IPython import get_ipython\nprint(len(get_ipython().events.callbacks['post_run_cell']))"
    counts = {}
    for setting in ("", str(tmp_path / "cells.jsonl")):
        monkeypatch.setenv(celltimes.ENV, setting)
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(count)])
        NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
        counts[bool(setting)] = int(notebook.cells[0].outputs[0]["text"])
    assert counts[True] == counts[False] + 1
    assert not celltimes.install_from_environment()  # and outside a kernel, never


def test_the_log_is_read_per_kernel_and_skips_a_torn_line(tmp_path):
    log = tmp_path / "cells.jsonl"
    lines = [{"pid": 7, "cell": 1, "seconds": 1.0, "hash": celltimes.source_hash("a()"), "first_line": "a()"},
             {"pid": 8, "cell": 1, "seconds": 2.0, "hash": celltimes.source_hash("b()"), "first_line": "b()"}]
    log.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"pid": 8, "cel')
    assert {pid: len(rs) for pid, rs in celltimes.read_log(log).items()} == {7: 1, 8: 1}
    found = celltimes.slowest_cells(log, {"A": ["a()"], "B": ["b()"], "C": ["c()"]})
    assert sorted(found) == ["A", "B"]


def test_the_build_sets_the_variable_and_chapter_times_prints_the_slowest_cells(tmp_path, monkeypatch, capsys):
    import jupytext

    tasks = _tasks()
    assert '"DATA_HELPERS_CELL_TIMES": str(CELL_LOG)' in (REPO / "tasks.py").read_text()
    first = next(c.source for c in jupytext.read(REPO / "book" / "visualising.md").cells if c.cell_type == "code")
    log = tmp_path / "cell-times.jsonl"
    log.write_text(json.dumps({"pid": 1, "cell": 4, "seconds": 12.5, "hash": celltimes.source_hash(first),
                               "first_line": "import time"}) + "\n")
    monkeypatch.setattr(tasks, "CELL_LOG", log)
    tasks.report_slowest_cells()
    out = capsys.readouterr().out
    assert "visualising" in out and "12.5 s (cell 4: import time)" in out


def test_bad_input_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="whose folder does not exist"):
        celltimes.install(object(), tmp_path / "no-such-folder" / "cells.jsonl")
    log = tmp_path / "cells.jsonl"
    log.write_text("")
    with pytest.raises(ValueError, match="must be a positive integer, got 0"):
        celltimes.slowest_cells(log, {}, n=0)


def test_a_kernel_records_the_size_of_its_chapter_folder_after_each_cell(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    log = tmp_path / "cells.jsonl"
    monkeypatch.setenv("PYTHONSTARTUP", str(_tasks().KERNEL_STARTUP))
    monkeypatch.setenv(celltimes.ENV, str(log))
    monkeypatch.setenv("DATA_HELPERS_OUTPUT", str(tmp_path / "data"))
    cells = ["from data_helpers import output_dir, output_path\nout = output_dir('chapter')",
             "_ = output_path('chapter', 'big.bin').write_bytes(bytes(3_000_000))",
             "_ = output_path('chapter', 'big.bin')  # removes what the cell before wrote"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["output_folders"] for r in records] == [["chapter"]] * 3
    sizes = [r["output_bytes"] for r in records]
    assert sizes[1] >= 3_000_000 > sizes[0] and sizes[2] < 1_000_000
    found = celltimes.peak_output_bytes(log, {"other": ["y = 2"], "this": cells})
    assert found == {"this": {"peak": sizes[1], "left": sizes[2]}}


def test_a_kernel_without_a_chapter_folder_records_zero_bytes(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    log = tmp_path / "cells.jsonl"
    monkeypatch.setenv("PYTHONSTARTUP", str(_tasks().KERNEL_STARTUP))
    monkeypatch.setenv(celltimes.ENV, str(log))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["output_folders"] == [] and record["output_bytes"] == 0


def test_peak_output_bytes_skips_records_without_a_measurement(tmp_path):
    log = tmp_path / "cells.jsonl"
    rows = [{"pid": 7, "cell": 1, "seconds": 1.0, "hash": celltimes.source_hash("a()"), "first_line": "a()"},
            {"pid": 8, "cell": 1, "seconds": 1.0, "hash": celltimes.source_hash("b()"), "first_line": "b()",
             "output_bytes": 10}]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert celltimes.peak_output_bytes(log, {"A": ["a()"], "B": ["b()"]}) == {"B": {"peak": 10, "left": 10}}


def test_chapter_times_prints_each_chapters_largest_output_folder(tmp_path, monkeypatch, capsys):
    import jupytext

    tasks = _tasks()
    sources = [c.source for c in jupytext.read(REPO / "book" / "visualising.md").cells if c.cell_type == "code"]
    log = tmp_path / "cell-times.jsonl"
    log.write_text("".join(json.dumps({"pid": 1, "cell": i, "seconds": 0.1, "hash": celltimes.source_hash(s),
                                       "first_line": "x", "output_bytes": b}) + "\n"
                           for i, (s, b) in enumerate(zip(sources, [10**8, 15 * 10**8, 2 * 10**8]), 1)))
    monkeypatch.setattr(tasks, "CELL_LOG", log)
    tasks.report_slowest_cells()
    out = capsys.readouterr().out
    assert re.search(r"visualising +1\.50 GB, left +0\.20 GB", out), out
