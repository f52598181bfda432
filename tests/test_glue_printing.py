"""In JupyterLab, the hidden cell just above each paragraph prints the numbers that paragraph uses.

JupyterLab cannot fill in ``{glue:text}`name``` placeholders: it shows the name. ``data_helpers.claims.glue``
therefore prints ``name = value``, and ``show_glued`` prints it again for a name glued earlier (the build
accepts each name glued once). The README promises that the cell just above each paragraph prints the names
it uses. This static check holds every page to that: for every paragraph, list or admonition (an exercise's
solution in a dropdown too) that uses a ``{glue}`` role, the nearest code cell above it is a hidden
(``remove-cell``) cell that glues or shows each of those names.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "book" / "_ext"))
import chapter_frames  # noqa: E402  (book/_ext/chapter_frames.py: one reader of a code cell's tags)

#: A glue role in the prose: {glue}`name`, {glue:}`name`, {glue:text}`name:format`, {glue:md}`name`, {glue:any}`name`.
ROLE = re.compile(r"\{glue(?::text|:md|:any|:)?\}`([A-Za-z_]\w*)")
#: A name glued by ``glue("name", ...)`` or, with a pattern, by ``glue(f"name_{key}", ...)`` in a loop.
GLUED = re.compile(r"\bglue\(\s*(f?)([\"'])(.+?)\2")
#: The arguments of ``show_glued(...)``.
SHOWN = re.compile(r"\bshow_glued\(([^)]*)\)")


@dataclass
class Cell:
    line: int
    tags: list[str]
    glued: set[str]
    glued_patterns: list[re.Pattern]
    shown: set[str]

    def prints(self, name: str) -> bool:
        return name in self.glued or name in self.shown or any(p.fullmatch(name) for p in self.glued_patterns)


def _cell(source: str, line: int) -> Cell:
    glued, patterns = set(), []
    for is_f, _quote, text in GLUED.findall(source):
        if is_f and "{" in text:
            patterns.append(re.compile(r"\w+".join(map(re.escape, re.split(r"\{[^}]*\}", text)))))
        else:
            glued.add(text)
    shown = {name for args in SHOWN.findall(source) for name in re.findall(r"[\"']([A-Za-z_]\w*)[\"']", args)}
    return Cell(line, chapter_frames._tags(source), glued, patterns, shown)


def problems(text: str) -> list[str]:
    """Every use of a glued name whose nearest code cell above does not print it, as 'line N: ...'."""
    found = []
    previous: Cell | None = None
    earlier: list[Cell] = []
    position = 0
    for match in [*chapter_frames._CODE_CELL.finditer(text), None]:
        end = match.start() if match else len(text)
        segment_start = text.count("\n", 0, position) + 1
        for offset, segment_line in enumerate(text[position:end].splitlines()):
            names = ROLE.findall(segment_line)
            if not names:
                continue
            where = f"line {segment_start + offset}"
            if previous is None:
                found.append(f"{where}: {names} used before any code cell")
                continue
            missing = sorted({n for n in names if not previous.prints(n)})
            if missing:
                found.append(f"{where}: {missing} not glued or shown by the code cell just above "
                             f"(line {previous.line}); add show_glued({', '.join(map(repr, missing))}) there")
            elif "remove-cell" not in previous.tags:
                found.append(f"{where}: the cell at line {previous.line} that prints {names} is not remove-cell")
        if match is None:
            break
        previous = _cell(match.group(1), text.count("\n", 0, match.start()) + 1)
        for name in sorted(previous.shown):
            if not any(cell.prints(name) for cell in earlier if not cell.shown or name not in cell.shown):
                found.append(f"line {previous.line}: show_glued({name!r}) before any cell glues {name!r}")
        earlier.append(previous)
        position = match.end()
    return found


PAGES = sorted(str(p.relative_to(REPO)) for p in (REPO / "book").glob("*.md") if ROLE.search(p.read_text()))


def test_there_are_pages_with_glued_numbers():
    assert "book/storing-3d-images.md" in PAGES and len(PAGES) >= 5


@pytest.mark.parametrize("page", PAGES)
def test_the_cell_above_each_paragraph_prints_its_glued_numbers(page):
    found = problems((REPO / page).read_text())
    assert not found, f"{page}:\n" + "\n".join(found)


CELL = "```{{code-cell}} ipython3\n:tags: [{tags}]\n\n{source}\n```\n"


def test_the_check_accepts_glue_and_show_glued_just_above():
    text = (CELL.format(tags="remove-cell", source='glue("a", 1)\nfor k in "xy":\n    glue(f"size_{k}", 2)')
            + "\nThe {glue:text}`a:.1f`, {glue:}`a` and {glue:text}`size_x`.\n\n"
            + CELL.format(tags="remove-cell", source='show_glued("a")') + "\n:::{admonition} Solution\n"
            ":class: dropdown\n\nAgain {glue:text}`a`.\n:::\n")
    assert problems(text) == []


@pytest.mark.parametrize("text, expected", [
    # the number is glued two cells up: a visible cell stands in between
    (CELL.format(tags="remove-cell", source='glue("a", 1)') + CELL.format(tags="hide-input", source="x = 1")
     + "\nUses {glue:text}`a`.\n", "['a'] not glued or shown by the code cell just above"),
    # a solution whose code (and glue) comes after its dropdown
    ("Start.\n\n" + CELL.format(tags="remove-cell", source="y = 2")
     + "\n:::{admonition} Solution\n:class: dropdown\n\n{glue:text}`ex1_n` chunks.\n:::\n\n"
     + CELL.format(tags="remove-cell", source='glue("ex1_n", 4)'), "['ex1_n'] not glued or shown"),
    # shown on the website: printed in a cell that is not removed
    (CELL.format(tags="hide-cell", source='glue("a", 1)') + "\nUses {glue:text}`a`.\n", "is not remove-cell"),
    # shown again before anything glued it
    (CELL.format(tags="remove-cell", source='show_glued("a")') + "\nUses {glue:text}`a`.\n",
     "show_glued('a') before any cell glues 'a'"),
    ("Uses {glue:text}`a` first.\n", "used before any code cell"),
])
def test_the_check_finds_a_number_not_printed_just_above(text, expected):
    found = problems(text)
    assert found and expected in found[0], found
