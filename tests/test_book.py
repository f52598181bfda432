"""The book's sources follow the house style, and the built site has every page.

Source checks run anywhere. Checks of the built site need ``_build/html`` (run
``python3 tasks.py book`` first; ``python3 tasks.py test`` does).
"""

from __future__ import annotations

import re

import jupytext
import pytest
import yaml

from conftest import REPO, skip_or_fail, toc_files

TOC = yaml.safe_load((REPO / "_toc.yml").read_text())
HTML = REPO / "_build" / "html"


TOC_FILES = toc_files()
NOTEBOOKS = [f for f in TOC_FILES if "```{code-cell}" in (REPO / f"{f}.md").read_text()]


def _cells(file: str):
    return jupytext.read(REPO / f"{file}.md").cells


def test_every_toc_entry_exists():
    for file in TOC_FILES:
        assert (REPO / f"{file}.md").is_file(), f"_toc.yml lists {file}, but {file}.md does not exist"


def test_every_chapter_file_is_in_the_toc():
    listed = {f"{f}.md" for f in TOC_FILES}
    for path in (REPO / "book").glob("*.md"):
        assert str(path.relative_to(REPO)) in listed, f"{path.name} is not in _toc.yml"


def test_there_is_a_chapter_with_code():
    assert "book/creating-chunked-datasets" in NOTEBOOKS


@pytest.mark.parametrize("file", NOTEBOOKS)
def test_chapter_opens_as_a_notebook(file):
    text = (REPO / f"{file}.md").read_text()
    header = yaml.safe_load(text.split("---")[1])
    assert header["jupytext"]["text_representation"]["format_name"] == "myst"
    assert header["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("file", NOTEBOOKS)
def test_chapter_frame(file):
    """Title, objectives admonition, exercises, key points, what's next: in that order."""
    text = (REPO / f"{file}.md").read_text()
    positions = []
    for pattern in (r"^# ", r"(?i)learning objectives", r"(?i)prerequisites", r"(?i)time",
                    r"^## Exercises", r"^## Key points", r"^## What's next"):
        match = re.search(pattern, text, flags=re.MULTILINE)
        assert match, f"{file}: no {pattern!r}"
        positions.append(match.start())
    assert positions[:1] + positions[4:] == sorted(positions[:1] + positions[4:]), f"{file}: sections out of order"


@pytest.mark.parametrize("file", NOTEBOOKS)
def test_solutions_are_executed_code(file):
    text = (REPO / f"{file}.md").read_text()
    exercises = text.split("## Exercises", 1)[1].split("## Key points", 1)[0]
    assert exercises.count("```{code-cell}") >= 2, f"{file}: fewer than 2 executed solutions"


@pytest.mark.parametrize("file", NOTEBOOKS)
def test_chapter_checks_its_memory_budget(file):
    sources = [c.source for c in _cells(file) if c.cell_type == "code"]
    assert any("check_memory_budget" in s for s in sources[-3:]), (
        f"{file} should end with a hidden cell calling data_helpers.budget.check_memory_budget()"
    )


@pytest.mark.parametrize("file", NOTEBOOKS)
def test_error_cells_are_tagged_and_few(file):
    cells = [c for c in _cells(file) if c.cell_type == "code"]
    tagged = [c for c in cells if "raises-exception" in c.metadata.get("tags", [])]
    assert len(tagged) <= max(3, len(cells) // 5), f"{file}: too many cells may raise"


# -- the built site -------------------------------------------------------------
@pytest.fixture(scope="module")
def built():
    if not (HTML / "index.html").is_file():
        skip_or_fail("the book is not built (run: python3 tasks.py book)")
    return HTML


@pytest.mark.book
@pytest.mark.parametrize("file", TOC_FILES)
def test_page_was_built(built, file):
    assert (built / f"{file}.html").is_file()


@pytest.mark.book
@pytest.mark.parametrize("file", NOTEBOOKS)
def test_page_shows_executed_outputs_and_figures(built, file):
    html = (built / f"{file}.html").read_text()
    assert html.count("cell_output") >= 5, f"{file}: the page shows almost no outputs; was it executed?"
    assert re.search(r'<img[^>]+alt="[^"]+"[^>]+src="[^"]*_images/', html) or re.search(
        r'<img[^>]+src="[^"]*_images/[^"]*"[^>]+alt="[^"]+"', html
    ), f"{file}: no figure with alt text"


def test_home_page_states_the_sample_as_registered():
    """The home page is not executed, so its numbers are checked here against dataset_info."""
    from data_helpers import dataset_info

    info = dataset_info("heart")
    text = (REPO / "book" / "intro.md").read_text()
    assert " × ".join(str(n) for n in info.shape) in text
    assert f"{info.voxel_size[0] / 1000:.3f} mm" in text
    assert "Walsh" in text and "CC-BY-4.0" in text
