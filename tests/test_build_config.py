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


@pytest.mark.parametrize("chapter", ["creating-chunked-datasets.md", "multiscale-pyramids.md"])
def test_a_prose_edit_does_not_re_execute_a_chapter(chapter, tmp_path):
    # Re-builds stay fast because the execution cache keys a chapter on its code cells only:
    # an edited sentence reuses the stored outputs, an edited code cell runs the chapter again.
    import jupytext
    import yaml
    from jupyter_cache import get_cache

    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    cache = get_cache(tmp_path / "cache")
    notebook = jupytext.read(REPO / "book" / chapter)
    _, original = cache.create_hashed_notebook(notebook)

    prose = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "markdown" and len(c.source) > 80)
    notebook.cells[prose].source += "\nOne more sentence."
    assert cache.create_hashed_notebook(notebook)[1] == original

    code = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code")
    notebook.cells[code].source += "\n# one more comment"
    assert cache.create_hashed_notebook(notebook)[1] != original
