"""The book's build configuration is strict: a failing cell or a warning fails the build.

Each test builds a one-page book with the repository's own _config.yml into a
temporary folder, so it checks the configuration the real book uses.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"
HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A page
"""


def build(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    shutil.copy(REPO / "_config.yml", tmp_path / "_config.yml")
    shutil.copytree(REPO / "book" / "_ext", tmp_path / "book" / "_ext")
    shutil.copy(REPO / "book" / "references.bib", tmp_path / "book" / "references.bib")  # bibtex_bibfiles
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/page\n")
    (tmp_path / "book" / "page.md").write_text(HEADER + body)
    # The same flags as tasks.py's build_book().
    return subprocess.run(
        [str(JUPYTER_BOOK), "build", "--warningiserror", "--keep-going", "--builder", "html", "."],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )


def cell(source: str, tags: str = "") -> str:
    meta = f":tags: [{tags}]\n\n" if tags else ""
    return f"\n```{{code-cell}} ipython3\n{meta}{source}\n```\n"


def test_clean_page_builds(tmp_path):
    result = build(tmp_path, cell("1 + 1"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_failing_cell_fails_the_build(tmp_path):
    result = build(tmp_path, cell("raise RuntimeError('boom')"))
    assert result.returncode != 0
    assert "boom" in result.stdout + result.stderr


def test_cell_tagged_raises_exception_may_fail(tmp_path):
    result = build(tmp_path, cell("raise RuntimeError('expected')", tags="raises-exception"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_warning_fails_the_build(tmp_path):
    result = build(tmp_path, "\nSee {doc}`no-such-page`.\n" + cell("1 + 1"))
    assert result.returncode != 0
    assert "no-such-page" in result.stdout + result.stderr


def test_missing_glue_fails_the_build(tmp_path):
    result = build(tmp_path, cell("x = 1") + "\nThe value is {glue:text}`never_glued`.\n")
    assert result.returncode != 0
