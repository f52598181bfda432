"""The README and the pages for readers describe the book as it is: its chapters, and the disk space it needs."""

from __future__ import annotations

import re

import jupytext
import pytest
import yaml

from conftest import REPO
from data_helpers.budget import CHAPTER_DISK_GB, FREE_DISK_GB
from data_helpers.celltimes import peak_output_bytes

#: The parts of _toc.yml that hold pages around the chapters, not chapters.
NOT_CHAPTERS = {"Getting started", "Reference"}

#: The size of the environment in .venv/, as the README states it.
ENVIRONMENT_GB = 0.9

#: Where each page states the disk space, and the sentence that must state the one figure.
DISK_SENTENCES = {
    "README.md": [rf"about {FREE_DISK_GB} GB of free disk space",
                  rf"the chapters write up to about {CHAPTER_DISK_GB} GB"],
    "book/intro.md": [rf"about {FREE_DISK_GB} GB of free disk space", rf"up to about {CHAPTER_DISK_GB} GB"],
    "book/workshop.md": [rf"About {FREE_DISK_GB} GB", rf"up to about {CHAPTER_DISK_GB} GB"],
    "book/converting-formats.md": [rf"up to about {CHAPTER_DISK_GB} GB"],
}


def _chapters() -> list[str]:
    """The chapter files of _toc.yml, in reading order."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] if part["caption"] not in NOT_CHAPTERS for c in part["chapters"]]


def _title(file: str) -> str:
    text = (REPO / f"{file}.md").read_text()
    return re.search(r"^# (.+)$", text, flags=re.MULTILINE).group(1).strip()


def _readme_chapter_list() -> list[str]:
    """The bold titles of the README's numbered list of chapters."""
    readme = (REPO / "README.md").read_text()
    return re.findall(r"^\d+\. \*\*(.+?)\*\*", readme.split("\n## ", 1)[0], flags=re.MULTILINE)


def test_the_readme_lists_every_chapter_of_the_toc_in_order():
    chapters = _chapters()
    assert len(chapters) >= 8
    assert _readme_chapter_list() == [_title(f) for f in chapters]
    numbers = {8: "eight", 9: "nine", 10: "ten", 11: "eleven", 12: "twelve"}
    assert f"Its {numbers[len(chapters)]} chapters" in (REPO / "README.md").read_text()


def test_the_readme_does_not_promise_chapters_as_future_work():
    readme = (REPO / "README.md").read_text().lower()
    for phrase in ("being written", "not part of the book yet", "coming soon", "will cover"):
        assert phrase not in readme, phrase


@pytest.mark.parametrize("page", sorted(DISK_SENTENCES))
def test_every_page_states_the_one_disk_figure(page):
    text = re.sub(r"\s+", " ", (REPO / page).read_text())
    for sentence in DISK_SENTENCES[page]:
        assert re.search(sentence, text), f"{page} should say {sentence!r}"
    # no other figure of disk space beside the stated ones (the environment's own size aside)
    stated = {float(n) for n in re.findall(r"(\d+(?:\.\d+)?) GB of (?:free disk space|scratch)", text)}
    assert stated <= {float(FREE_DISK_GB), float(CHAPTER_DISK_GB)}, stated


def test_the_free_space_covers_the_environment_and_the_largest_chapter():
    assert FREE_DISK_GB >= ENVIRONMENT_GB + CHAPTER_DISK_GB
    assert f"takes about {ENVIRONMENT_GB} GB" in (REPO / "README.md").read_text()


@pytest.mark.book
def test_the_last_build_stayed_within_the_stated_disk_figures():
    log = REPO / "_build" / "cell-times.jsonl"
    if not log.is_file():
        pytest.skip("no book build yet: run python3 tasks.py book")
    chapters = {f.removeprefix("book/"): [c.source for c in jupytext.read(REPO / f"{f}.md").cells
                                           if c.cell_type == "code"] for f in _chapters()}
    found = peak_output_bytes(log, chapters)
    if not found:
        pytest.skip("the last build executed no chapter (all came from the cache)")
    for name, sizes in found.items():
        assert sizes["peak"] < CHAPTER_DISK_GB * 1e9, (name, sizes)
    # the free space holds the environment and every chapter's folder at its largest, all at once (as if each
    # chapter kept all it wrote until it runs again); of the chapters this build executed
    every_peak = sum(s["peak"] for s in found.values())
    assert ENVIRONMENT_GB + every_peak / 1e9 < FREE_DISK_GB, every_peak
