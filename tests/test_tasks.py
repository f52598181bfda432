"""tasks.py: the interpreter that .venv is made with (Python 3.12+), found explicitly."""

from __future__ import annotations

import sys

import pytest

from conftest import REPO, load_script


@pytest.fixture
def tasks(monkeypatch):
    module = load_script("tasks.py", "tasks_under_test")
    monkeypatch.delenv(module.ENV_PYTHON, raising=False)
    return module


def test_python_version_of_a_real_and_a_missing_interpreter(tasks):
    assert tasks.python_version([sys.executable]) == sys.version_info[:2]
    assert tasks.python_version(["no-such-python-3.99"]) is None


def test_an_explicit_interpreter_wins(tasks, monkeypatch):
    monkeypatch.setenv(tasks.ENV_PYTHON, sys.executable)
    assert tasks.find_python() == [sys.executable]


def test_an_explicit_interpreter_that_does_not_run_stops_with_a_message(tasks, monkeypatch):
    monkeypatch.setenv(tasks.ENV_PYTHON, "no-such-python-3.99")
    with pytest.raises(SystemExit, match="not a working Python"):
        tasks.find_python()


def test_an_explicit_interpreter_that_is_too_old_is_refused(tasks, monkeypatch):
    monkeypatch.setenv(tasks.ENV_PYTHON, sys.executable)
    monkeypatch.setattr(tasks, "MIN_PYTHON", (sys.version_info.major, sys.version_info.minor + 1))
    with pytest.raises(SystemExit, match="needs Python"):
        tasks.find_python()


def test_an_older_running_python_looks_on_the_path_then_stops_with_install_advice(tasks, monkeypatch):
    monkeypatch.setattr(tasks, "MIN_PYTHON", (3, 99))
    monkeypatch.setattr(tasks, "_pyenv_candidates", lambda: [])
    with pytest.raises(SystemExit) as stop:
        tasks.find_python()
    message = str(stop.value)
    assert "Python 3.99 or newer" in message and "TEXTBOOK_PYTHON" in message and "pyenv install" in message


def test_a_pyenv_interpreter_is_found_when_none_is_selected(tasks, monkeypatch):
    here = sys.version_info[:2]
    monkeypatch.setattr(tasks, "MIN_PYTHON", here)
    monkeypatch.setattr(tasks.sys, "version_info", (3, 0, 0))  # pretend the running Python is old
    monkeypatch.setattr(tasks.os, "name", "posix")
    monkeypatch.setattr(tasks, "python_version", lambda c: here if c == ["/pyenv/py"] else None)
    monkeypatch.setattr(tasks, "_pyenv_candidates", lambda: [["/pyenv/py"]])
    assert tasks.find_python() == ["/pyenv/py"]


def test_the_venv_python_version_is_read_from_pyvenv_cfg(tasks, tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "VENV", tmp_path)
    assert tasks.venv_version() is None
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.12.1\n")
    assert tasks.venv_version() == (3, 12)


def _chapter_budget():
    return load_script("benchmarks/chapter_budget.py", "chapter_budget_under_test")


def test_the_budget_report_runs_every_chapter_of_the_toc_in_book_order():
    import yaml

    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    listed = [e["file"] for part in toc["parts"] for e in part["chapters"]]
    chapters = _chapter_budget().toc_chapters()
    names = [f"book/{p.stem}" for p in chapters]
    assert names == [f for f in listed if f in names], "not in the order of _toc.yml"
    assert "book/choosing-chunks-and-compression" in names and "book/processing-with-dask" in names
    assert "book/glossary" not in names  # no code cells, nothing to run


def test_the_budget_command_is_wired_to_the_report(tasks, monkeypatch):
    calls = []
    monkeypatch.setattr(tasks, "ensure_env", lambda: None)
    monkeypatch.setattr(tasks.subprocess, "call", lambda cmd, **kw: calls.append((cmd, kw)) or 0)
    assert tasks.main(["budget", "book/storing-3d-images.md"]) == 0
    (cmd, kw), = calls
    assert cmd[1].endswith("chapter_budget.py") and cmd[2:] == ["book/storing-3d-images.md"]
    assert kw["env"]["DATA_HELPERS_LOOPBACK_ONLY"] == "1"  # the chapters run as in the build


TINY_CHAPTER = """---
jupytext:
  formats: md:myst
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3 (ipykernel)
  language: python
  name: python3
---

# A tiny chapter

```{code-cell} ipython3
import os, subprocess, sys
ballast = b"x" * (200 * 2**20)  # 200 MiB in the kernel, written so that it is resident
child = subprocess.run([sys.executable, "-c", "b = b'x' * (300 * 2**20); import time; time.sleep(1)"])
print(os.getcwd())
```
"""


def test_the_budget_report_counts_the_kernel_and_its_children_and_runs_in_the_chapters_folder(tmp_path):
    chapter = tmp_path / "tiny.md"
    chapter.write_text(TINY_CHAPTER + "\n```{code-cell} ipython3\nassert os.getcwd() == %r\n```\n" % str(tmp_path))
    wall, peak_gib = _chapter_budget().run_once(chapter, timeout=300)
    assert wall > 1  # the child's sleep
    assert peak_gib * 2**30 > 450 * 2**20, f"the kernel's 200 MiB and its child's 300 MiB were not summed: {peak_gib}"


def test_the_budget_report_stops_on_a_failing_or_hanging_chapter(tmp_path):
    failing = tmp_path / "failing.md"
    failing.write_text(TINY_CHAPTER + "\n```{code-cell} ipython3\nraise RuntimeError('a broken cell')\n```\n")
    with pytest.raises(SystemExit, match="a broken cell"):
        _chapter_budget().run_once(failing, timeout=300)
    hanging = tmp_path / "hanging.md"
    hanging.write_text(TINY_CHAPTER.replace("print(os.getcwd())", "import time; time.sleep(600)"))
    with pytest.raises(SystemExit, match="did not finish within 20 s"):
        _chapter_budget().run_once(hanging, timeout=20)
