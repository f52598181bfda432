"""The appendix's version-support table covers every library the appendix lists, in a fixed vocabulary, with sources.

The table answers "which OME-Zarr versions does this tool read and write?". A library added to the
appendix's library table without a row here, a cell outside the vocabulary the page explains, or a row
without a source entry that names the release checked, fails these tests.
"""

from __future__ import annotations

import re

import pytest

from conftest import REPO

APPENDIX = REPO / "book" / "appendices.md"
LIBRARIES_HEADING = "## Python libraries for OME-Zarr"
VERSIONS_HEADING = "## Which OME-Zarr versions each tool reads and writes"
SOURCES_HEADING = "### Sources"
VERSIONS = ("0.4", "0.5", "0.6")
# The words the page defines for a cell: "partial" and "unknown" must say what, or why, in parentheses.
CELL = re.compile(r"^(yes|no|read only|partial \([^()]+\)|unknown \([^()]+\))$")


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    if heading not in lines:
        raise AssertionError(f"{APPENDIX.name} has no heading {heading!r}")
    start = lines.index(heading) + 1
    end = len(lines)
    for i in range(start, len(lines)):
        match = re.match(r"^(#+) ", lines[i])
        if match and len(match.group(1)) <= level:
            end = i
            break
    return "\n".join(lines[start:end])


def _table(section: str) -> tuple[list[str], list[list[str]]]:
    """Header cells and body rows of the first pipe table in ``section``."""
    rows = [line for line in section.splitlines() if line.startswith("|")]
    if len(rows) < 3:
        raise AssertionError("expected a table with a header, a separator and at least one row")
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    header, separator, body = cells[0], cells[1], cells[2:]
    assert all(set(c) <= set("-: ") for c in separator), f"the second table line is not a separator: {rows[1]}"
    return header, body


def _library_names(text: str) -> list[str]:
    """The library names of the appendix's library table: the text of the link in each row's first cell."""
    _, body = _table(_section(text, LIBRARIES_HEADING))
    names = []
    for row in body:
        match = re.match(r"^\[([^\]]+)\]\(", row[0])
        assert match, f"the first cell of a library row should be a link, not {row[0]!r}"
        names.append(match.group(1))
    return names


@pytest.fixture(scope="module")
def text() -> str:
    return APPENDIX.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def version_table(text):
    header, body = _table(_section(text, VERSIONS_HEADING))
    return header, {row[0]: row for row in body}


def test_the_version_table_has_one_column_per_ome_zarr_version(version_table):
    header, _ = version_table
    assert header[0] == "Tool" and header[1] == "Release", header
    assert tuple(header[2:]) == VERSIONS, f"expected the columns {VERSIONS}, found {header[2:]}"


def test_every_library_of_the_appendix_has_a_row(text, version_table):
    _, rows = version_table
    names = _library_names(text)
    assert len(names) >= 7, names
    missing = [name for name in names if name not in rows]
    assert not missing, f"libraries of the appendix with no row in the version table: {missing}"


def test_every_row_names_a_release_and_fills_three_version_cells_from_the_vocabulary(version_table):
    header, rows = version_table
    for tool, row in rows.items():
        assert len(row) == len(header), f"{tool}: {len(row)} cells, the header has {len(header)}"
        assert row[1], f"{tool}: the release checked is missing"
        for version, cell in zip(VERSIONS, row[2:]):
            assert CELL.match(cell), (
                f"{tool}, OME-Zarr {version}: {cell!r} is not one of yes, no, read only, partial (what), unknown (why)"
            )


def test_every_row_has_a_source_entry_with_its_release_and_a_link(text, version_table):
    _, rows = version_table
    sources = _section(text, SOURCES_HEADING)
    entries = re.split(r"\n(?=- )", "\n" + sources.strip())
    by_title = {}
    for entry in entries:
        match = re.match(r"^- \*\*([^*]+)\*\*", entry.strip())
        if match:
            by_title[match.group(1)] = entry
    for tool, row in rows.items():
        titles = [t for t in by_title if t == tool or t.startswith(tool + " ")]
        assert len(titles) == 1, f"{tool}: expected one source entry starting with **{tool}..., found {titles}"
        entry = by_title[titles[0]]
        release = row[1]
        if re.fullmatch(r"\d+(\.\d+)+", release):
            assert titles[0] == f"{tool} {release}", f"{tool}: the source entry should name release {release}"
        assert re.search(r"\]\(https://[^)\s]+\)", entry), f"{tool}: the source entry has no link"
    extra = [t for t in by_title if not any(t == tool or t.startswith(tool + " ") for tool in rows)]
    assert not extra, f"source entries for tools not in the table: {extra}"


def test_the_page_says_when_the_table_was_checked(text):
    section = _section(text, VERSIONS_HEADING)
    assert re.search(r"Checked on \d{1,2} [A-Z][a-z]+ \d{4}", section), "say on which date the table was checked"


def test_the_vocabulary_check_rejects_cells_that_say_nothing():
    for bad in ("maybe", "partial", "partial ()", "unknown", "Yes", "yes (0.6)"):
        assert not CELL.match(bad), bad
    for good in ("yes", "no", "read only", "partial (arrays only)", "unknown (no release)"):
        assert CELL.match(good), good
