"""The book's sources follow the house style, and the built site has every page.

Source checks run anywhere. Checks of the built site need ``_build/html`` (run
``python3 tasks.py book`` first; ``python3 tasks.py test`` does).
"""

from __future__ import annotations

import os
import re
import sys

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


# -- the chapter frame, parsed by the same code that builds the chapter map and the workshop outlines --
sys.path.insert(0, str(REPO / "book" / "_ext"))
import chapter_frames  # noqa: E402  (book/_ext/chapter_frames.py)

CHAPTERS = [doc for doc, _part in chapter_frames.toc_chapters(REPO)]


def test_every_page_with_code_is_a_chapter_with_a_frame():
    """A page of the TOC that runs code is a chapter, unless it is listed as one of the book's other pages."""
    assert set(NOTEBOOKS) <= set(CHAPTERS), set(NOTEBOOKS) - set(CHAPTERS)
    assert len(CHAPTERS) >= 3


@pytest.mark.parametrize("file", CHAPTERS)
def test_chapter_frame(file):
    """Objectives, prerequisites, time, >= 2 exercises with hidden executed solutions, key points, what's next."""
    last = file == CHAPTERS[-1]  # its "What's next" has no next chapter to link
    problems = chapter_frames.frame_problems(chapter_frames.parse_frame(REPO, file), last=last)
    assert not problems, f"{file}.md: " + "; ".join(problems)


@pytest.mark.parametrize("file", CHAPTERS)
def test_chapter_frame_is_in_order(file):
    """Title, objectives admonition, exercises, key points, what's next: in that order."""
    text = (REPO / f"{file}.md").read_text()
    positions = []
    for pattern in (r"^# ", r"\*\*Learning objectives", r"\*\*Prerequisites", r"\*\*Time",
                    r"^## Exercises", r"^## Key points", r"^## What's next"):
        match = re.search(pattern, text, flags=re.MULTILINE | re.IGNORECASE)
        assert match, f"{file}: no {pattern!r}"
        positions.append(match.start())
    assert positions == sorted(positions), f"{file}: sections out of order"


@pytest.fixture
def model_chapter() -> str:
    return (REPO / "book" / "creating-chunked-datasets.md").read_text()


def _problems(tmp_path, text: str) -> list[str]:
    (tmp_path / "book").mkdir(exist_ok=True)
    (tmp_path / "book" / "ch.md").write_text(text)
    return chapter_frames.frame_problems(chapter_frames.parse_frame(tmp_path, "book/ch"))


def test_the_frame_check_passes_the_model_chapter(tmp_path, model_chapter):
    assert _problems(tmp_path, model_chapter) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: re.sub(r"\*\*Time\.\*\*[^\n]*\n", "", t), "time estimate"),
        (lambda t: t.replace("**Learning objectives.**", "**Goals.**"), "Learning objectives"),
        (lambda t: t.replace("**Prerequisites.**", "**Before.**"), "Prerequisites"),
        (lambda t: t.replace("(*necessary*)", ""), "not marked"),
        (lambda t: t.replace("## Key points", "## Summary"), "Key points"),
        (lambda t: t.replace("## What's next", "## Next"), "What's next"),
        (lambda t: t.replace(":class: dropdown", ":class: note"), "dropdown"),
        (lambda t: re.sub(r"(### Exercise 2.*?)(?=## Key points)", "", t, flags=re.DOTALL), "at least two"),
        (lambda t: t.replace(":tags: [hide-cell]", ":tags: []", 1), "tag it hide-cell"),
        (lambda t: re.sub(r"(Work it out on paper.*?:::\{admonition\} Solution\n:class: dropdown\n\n).*?\n:::",
                          r"\1TODO\n:::", t, count=1, flags=re.DOTALL), "placeholder"),
        (lambda t: re.sub(r"(:tags: \[hide-cell\]\n\n)import math\n.*?(?=```)", r"\1...\n", t, count=1,
                          flags=re.DOTALL), "placeholder"),
    ],
    ids=["time", "objectives", "prerequisites", "unmarked-prerequisite", "key-points", "whats-next",
         "no-dropdown", "one-exercise", "shown-solution", "placeholder-text", "placeholder-code"],
)
def test_the_frame_check_catches_what_is_missing(tmp_path, model_chapter, change, expected):
    changed = change(model_chapter)
    assert changed != model_chapter, "the test's change did not apply to the model chapter"
    problems = _problems(tmp_path, changed)
    assert any(expected.lower() in p.lower() for p in problems), problems


def test_the_frame_check_reads_tags_from_a_yaml_options_block(tmp_path, model_chapter):
    """A solution cell with a figure's options carries its tags in a YAML block instead of a ``:tags:`` line."""
    as_yaml = model_chapter.replace(":tags: [hide-cell]\n", "---\ntags: [hide-cell]\nmystnb: {}\n---\n", 1)
    assert as_yaml != model_chapter
    assert _problems(tmp_path, as_yaml) == []
    shown = as_yaml.replace("---\ntags: [hide-cell]\n", "---\ntags: []\n", 1)
    assert any("tag it hide-cell" in p for p in _problems(tmp_path, shown))


def test_a_solutions_code_may_run_just_above_its_text():
    """Code cells right above the dropdown (no prose between) are the solution's; the prompt's own are not."""
    cell = "```{{code-cell}} ipython3\n:tags: [{tags}]\n\n{source}\n```\n\n"
    dropdown = ":::{admonition} Solution\n:class: dropdown\n\nFour chunks.\n:::\n\n"
    section = ("\n### Exercise 1: before\n\nPredict.\n\n" + cell.format(tags="", source="starter = 1")
               + "Now run it.\n\n" + cell.format(tags="hide-cell", source="answer = 4")
               + cell.format(tags="remove-cell", source='glue("n", answer)') + dropdown
               + "### Exercise 2: after\n\nPredict.\n\n" + dropdown + cell.format(tags="hide-cell", source="x = 2"))
    before, after = chapter_frames._exercises(section)
    assert before.solution_code == ["answer = 4"] and before.hidden_code
    assert "starter" not in before.prompt and "answer" not in before.prompt
    assert after.solution_code == ["x = 2"] and after.hidden_code


def test_time_estimates_are_read_in_minutes():
    assert chapter_frames.parse_time("About 45 minutes to read and run, and 20 more for the exercises.") == (45, 20)
    assert chapter_frames.parse_time(
        "About 45 minutes to read and run (the experiment itself takes about two minutes), and 20 more for the "
        "exercises.") == (45, 20)
    assert chapter_frames.parse_time("About an hour to read and run, and 30 minutes for the exercises.") == (60, 30)
    assert chapter_frames.parse_time("A while.") == (None, None)


def test_workshop_outlines_fit_their_day_and_keep_the_chapters_order():
    frames = chapter_frames.chapter_frames(REPO)
    for kind, (start, length, _breaks) in chapter_frames.WORKSHOPS.items():
        rows, later = chapter_frames.schedule(frames, kind)
        hours, minutes = map(int, rows[-1][0].split(":"))
        assert hours * 60 + minutes + rows[-1][2] <= start + length, f"{kind} runs over"
        taught = [f for f in frames if f not in later]
        assert taught == frames[: len(taught)] and taught, kind


def test_workshop_outline_starts_with_its_own_length():
    """The sentence above each timetable is computed from the timetable's rows: start, end, length, pauses."""
    frames = chapter_frames.chapter_frames(REPO)
    for kind in chapter_frames.WORKSHOPS:
        rows, _later = chapter_frames.schedule(frames, kind)
        lines = chapter_frames.workshop_lines(frames, kind)
        hours, minutes = map(int, rows[-1][0].split(":"))
        end = hours * 60 + minutes + rows[-1][2]
        hours, minutes = map(int, rows[0][0].split(":"))
        length = chapter_frames.format_minutes(end - hours * 60 - minutes)
        assert lines[0].startswith(f"From {rows[0][0]} to {end // 60:02d}:{end % 60:02d}, {length} "), lines[0]
        breaks = sum(1 for row in rows if row[1] == "Break")
        assert ("one break" in lines[0]) == (breaks == 1) and ("two breaks" in lines[0]) == (breaks == 2), lines[0]
        assert ("lunch" in lines[0]) == any(row[1] == "Lunch" for row in rows), lines[0]
        assert lines[2].startswith("| Time |"), lines[:3]


def test_schedule_summary_counts_the_pauses():
    rows = [("09:00", "Welcome", 15), ("09:15", "Break", 20), ("09:35", "Lunch", 60), ("10:35", "Break", 5),
            ("10:40", "Questions", 10)]
    assert chapter_frames.schedule_summary(rows) == "From 09:00 to 10:50, 1\u00a0h 50\u00a0min with two breaks and lunch."
    assert chapter_frames.schedule_summary(rows[:1]) == "From 09:00 to 09:15, 15\u00a0min, without a break."
    with pytest.raises(chapter_frames.FrameError, match="at least one row"):
        chapter_frames.schedule_summary([])


#: A length of time written out in words ("three and a half hours", "eight hours", "half an hour").
DURATION_IN_WORDS = re.compile(
    r"\b(an?|one|two|three|four|five|six|seven|eight|nine|ten|twelve|half an?)( and a half)?[ -]"
    r"(hours?|minutes?)\b", flags=re.IGNORECASE)


def test_workshop_page_types_no_length_in_words():
    """The outlines state their own length; a length typed into the prose would drift from them."""
    text = (REPO / "book" / "workshop.md").read_text()
    found = [m.group(0) for m in DURATION_IN_WORDS.finditer(text)]
    assert not found, f"book/workshop.md types a length in by hand: {found}; the outline states it"


def test_home_page_lists_every_chapters_objectives():
    """'What you will be able to do' is generated from the chapters' own learning objectives, every chapter's."""
    text = (REPO / "book" / "intro.md").read_text()
    section = text.split("## What you will be able to do", 1)[1].split("\n## ", 1)[0]
    assert "```{chapter-objectives}" in section, "intro.md: the section should be the {chapter-objectives} directive"
    typed = [line for line in section.splitlines() if re.match(r"^\s*([-*]|\d+\.) ", line)]
    assert not typed, f"intro.md: skills typed in by hand, which drift from the chapters: {typed}"
    frames = chapter_frames.chapter_frames(REPO)
    generated = "\n".join(chapter_frames.objectives_lines(frames))
    for frame in frames:
        assert f"<{frame.doc.split('/')[-1]}>`" in generated, frame.doc
        for objective in frame.objectives:
            assert objective.rstrip(";.") in generated, (frame.doc, objective)


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


@pytest.mark.parametrize("file", NOTEBOOKS)
def test_no_cell_draws_into_an_output_widget(file):
    """nbclient, which runs the chapters in the build, answers an Output widget on the kernel's shell channel
    while it waits there for the cell's reply; now and then that reply is then not seen until the cell's
    timeout (600 s in the build). Show a picture in an Image widget instead, as the visualising chapter does."""
    pattern = re.compile(r"\bOutput\(|interactive_output|\binteract(_manual)?\b")
    found = [c.source.splitlines()[0] for c in _cells(file) if c.cell_type == "code" and pattern.search(c.source)]
    assert not found, f"{file}: cells that use an Output widget (directly or through interact): {found}"


#: Longest code line shown on the page; longer ones are cut off at the right of the code box.
MAX_CODE_LINE = 100

#: Sections still to be reworked by their own issue (the validator's verdicts), left out of the checks of
#: code width and absolute paths until then: {file: (markdown heading, its HTML id, the next H2's HTML id)}.
#: Remove the entry when that section uses output_path and relative paths.
PENDING_SECTIONS: dict[str, tuple[str, str, str]] = {}


def _without_pending_section(file: str, text: str, html: bool = False) -> str:
    if file not in PENDING_SECTIONS:
        return text
    heading, section_id, next_id = PENDING_SECTIONS[file]
    if html:
        start, end = text.index(f'<section id="{section_id}">'), text.index(f'<section id="{next_id}">')
        return text[:start] + text[end:]
    start = text.index(f"\n{heading}\n")
    end = text.index("\n## ", start + len(heading) + 2)
    return text[:start] + text[end:]


@pytest.mark.parametrize("file", NOTEBOOKS)
def test_visible_code_lines_fit_the_page(file):
    text = _without_pending_section(file, (REPO / f"{file}.md").read_text())
    too_long = [
        f"{len(line)} characters: {line.strip()[:60]}"
        for cell in jupytext.reads(text, fmt="md:myst").cells
        if cell.cell_type == "code" and "remove-cell" not in cell.metadata.get("tags", [])
        for line in cell.source.splitlines()
        if len(line) > MAX_CODE_LINE
    ]
    assert not too_long, f"{file}: code lines over {MAX_CODE_LINE} characters:\n" + "\n".join(too_long)


@pytest.mark.parametrize("file", NOTEBOOKS)
def test_glued_numbers_come_from_hidden_cells(file):
    """glue() prints name = value for notebook readers; on the website only removed cells may do that."""
    for cell in _cells(file):
        if cell.cell_type == "code" and re.search(r"^\s*glue\(", cell.source, flags=re.MULTILINE):
            assert "remove-cell" in cell.metadata.get("tags", []), f"{file}: glue() in a shown cell:\n{cell.source[:200]}"
    imports = "\n".join(c.source for c in _cells(file) if c.cell_type == "code")
    assert "from myst_nb import glue" not in imports, f"{file}: use data_helpers.claims.glue"


#: Patterns in a hidden assert that mean it checks a measured time (or a speed).
TIMING = re.compile(r'seconds|MB/s|\["(write|full read|scroll|unaligned|rewrite one chunk)"\]|\bt_[yzb]\b|_ms\b')


@pytest.mark.parametrize("file", NOTEBOOKS)
def test_timing_claims_go_through_check_claim(file):
    """A bare assert on a timing would stop a reader's Run All on a slow machine; check_claim warns there."""
    for cell in _cells(file):
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            if line.lstrip().startswith("assert ") and TIMING.search(line):
                pytest.fail(f"{file}: a timing assert that should be check_claim(...): {line.strip()}")


#: Words of a lab note, not of what a check guards: a reader opening the notebook sees every hidden cell.
LAB_NOTES = ("seen under load", "seen:", "(seen", "seen at", "failed once", "flaky", "measured:", "measured gaps",
             "on a quiet machine", "on a busy one", "too thin a margin")
#: Lab-note words matched with their case ("CI-3", "CI-only"), so words such as "speci-" do not match.
LAB_NOTES_CASED = ("CI-",)


def _comments(source: str) -> list[str]:
    """The comments of a code cell's source (IPython magics and shell lines skipped)."""
    import io
    import tokenize

    python = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        return [tok.string for tok in tokenize.generate_tokens(io.StringIO(python + "\n").readline)
                if tok.type == tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return [line[line.index("#"):] for line in python.splitlines() if "#" in line]


def test_comments_reject_lab_notes():
    assert _comments('x = "# not a comment"  # Seen under load: 4.8x\n%time y = 1') == ["# Seen under load: 4.8x"]
    assert not _lab_notes(["# the box gains the most, by more than 3x"])
    assert _lab_notes(["# full reads within 4x (seen: 0.7-2.7x)", "# flaky on CI-2"]) == [
        "# full reads within 4x (seen: 0.7-2.7x)", "# flaky on CI-2"]


def _lab_notes(comments: list[str]) -> list[str]:
    return [c for c in comments if any(w in c.lower() for w in LAB_NOTES) or any(w in c for w in LAB_NOTES_CASED)]


@pytest.mark.parametrize("file", NOTEBOOKS)
def test_cell_comments_say_what_a_check_guards_not_its_history(file):
    """Hidden cells are read in JupyterLab: their comments say what a check guards, not what a run once showed."""
    found = [note for cell in _cells(file) if cell.cell_type == "code" for note in _lab_notes(_comments(cell.source))]
    assert not found, f"{file}: comments that read like lab notes: {found}"


#: Public endpoints that have been shut down or are being shut down, and where their data moved.
RETIRED_ENDPOINTS = {"https://uk1s3.embassy.ebi.ac.uk": "https://livingobjects.ebi.ac.uk"}


def test_public_examples_use_current_endpoints():
    """EMBL-EBI decommissions the Embassy S3 host; the IDR's OME-Zarr samples moved, same bucket and keys."""
    for file in TOC_FILES:
        text = (REPO / f"{file}.md").read_text()
        for old, new in RETIRED_ENDPOINTS.items():
            assert old not in text, f"{file}: {old} is retired; use {new}"
    remote = (REPO / "book" / "remote-data.md").read_text()
    assert "https://livingobjects.ebi.ac.uk/idr/zarr/v0.4/idr0062A/6001240.zarr" in remote
    assert "/idr/zarr/v0.5/" in remote, "offer the OME-Zarr 0.5 copy of the IDR image too"


def test_no_chapter_describes_how_the_book_was_made():
    phrases = ("while this chapter was written", "every build of this book", "the builds of this book",
               "first version of", "Mermaid", "book's environment does not install", "planned next",
               "a later chapter measures", "rest of the book writes")
    for file in TOC_FILES:
        text = (REPO / f"{file}.md").read_text()
        found = [p for p in phrases if p.lower() in text.lower()]
        assert not found, f"{file}: {found}"


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
@pytest.mark.parametrize("file", TOC_FILES)
def test_pages_show_no_absolute_paths_of_the_build_machine(built, file):
    """Outputs show paths relative to the repository or the chapter's folder, never this machine's."""
    from data_helpers import cache_dir

    html = _without_pending_section(file, (built / f"{file}.html").read_text(), html=True)
    for path in {str(REPO), str(REPO.resolve()), str(cache_dir()), str(cache_dir().resolve())}:
        assert path not in html, f"{file}.html shows the absolute path {path}"
    home = os.path.expanduser("~")
    assert f"{home}/" not in html or home == "/", f"{file}.html shows a path in the home folder {home}"


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


# -- the home page, citation, launch buttons, bibliography and intersphinx --------------------------------
CONFIG = yaml.safe_load((REPO / "_config.yml").read_text())


def test_home_page_takes_the_chapter_times_from_the_frames():
    """The chapter map is generated ({chapter-map}); no time is typed into the home page or the workshop page."""
    for page, directive in (("intro", "{chapter-map}"), ("workshop", "{workshop-outline} half-day"),
                            ("workshop", "{workshop-outline} full-day"), ("workshop", "{pair-exercises}")):
        text = (REPO / "book" / f"{page}.md").read_text()
        assert f"```{directive}" in text, f"book/{page}.md lost its {directive} directive"
        if page == "intro":
            text = text.split("## The chapters", 1)[1].split("\n## ", 1)[0]
        assert not re.search(r"\b\d+ (minutes|min|hours?)\b", text), f"book/{page}.md types a time in by hand"


def test_home_page_has_the_readers_sections():
    text = (REPO / "book" / "intro.md").read_text()
    for heading in ("Who this book is for", "What you will be able to do", "The chapters", "How to read it",
                    "How to run it", "The sample data", "How to cite this book", "Feedback"):
        assert re.search(rf"^## {heading}", text, flags=re.MULTILINE), f"intro.md: no section {heading!r}"
    table = text.split("## Who this book is for", 1)[1].split("##", 1)[0]
    assert "| necessary |" in table and "| helpful |" in table, "the prerequisites table marks necessary/helpful"


def test_the_repository_address_is_written_once():
    """Only _config.yml names the repository among the pages; the package and CITATION.cff must agree with it."""
    from data_helpers.errors import BOOK_REPOSITORY

    url = CONFIG["repository"]["url"].rstrip("/")
    assert url.startswith("https://github.com/") and url.count("/") == 4
    assert BOOK_REPOSITORY == url
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["repository-code"].rstrip("/") == url
    for file in TOC_FILES:
        assert url not in (REPO / f"{file}.md").read_text(), f"{file}.md writes the repository address itself"


def test_launch_buttons_come_from_the_one_setting():
    launch = CONFIG["launch_buttons"]
    assert launch["binderhub_url"] == "https://mybinder.org"
    assert CONFIG["html"]["use_download_button"] is True
    for key, value in launch.items():
        assert "github.com" not in str(value), f"launch_buttons.{key} names a repository; use repository.url"


def test_citation_file_is_valid_cff_1_2():
    """The required keys and types of the CFF 1.2.0 schema (cff-version, message, title, authors)."""
    import datetime

    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert isinstance(citation["message"], str) and citation["message"]
    assert isinstance(citation["title"], str) and citation["title"] == CONFIG["title"]
    assert citation["authors"] and all(("name" in a) or ("family-names" in a) for a in citation["authors"])
    assert citation["type"] in ("software", "dataset")
    datetime.date.fromisoformat(citation["date-released"])
    licences = citation["license"] if isinstance(citation["license"], list) else [citation["license"]]
    assert set(licences) <= {"CC-BY-4.0", "BSD-3-Clause"}
    for ref in citation.get("references", []):
        assert ref["title"] and ref["authors"] and ref["type"]


def _requirement_lines(path):
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_binder_environment_matches_requirements():
    assert _requirement_lines(REPO / "binder" / "requirements.txt") == _requirement_lines(REPO / "requirements.txt"), (
        "binder/requirements.txt differs from requirements.txt: cp requirements.txt binder/requirements.txt "
        "(keep its first two comment lines)"
    )
    runtime = (REPO / "binder" / "runtime.txt").read_text().strip()
    major, minor = map(int, runtime.removeprefix("python-").split("."))
    assert (major, minor) >= (3, 12)
    assert os.access(REPO / "binder" / "postBuild", os.X_OK)


BIB = (REPO / "book" / "references.bib").read_text()
BIB_KEYS = set(re.findall(r"^@\w+\{([^,\s]+),", BIB, flags=re.MULTILINE))


def _cited_keys() -> dict[str, set[str]]:
    cited: dict[str, set[str]] = {}
    for file in TOC_FILES:
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", (REPO / f"{file}.md").read_text()):
            for key in group.split(","):
                cited.setdefault(key.strip(), set()).add(file)
    return cited


def test_every_citation_is_in_the_bibliography_and_every_entry_is_cited():
    cited = _cited_keys()
    missing = {key: sorted(files) for key, files in cited.items() if key not in BIB_KEYS}
    assert not missing, f"cited but not in book/references.bib: {missing}"
    assert BIB_KEYS <= set(cited), f"entries no page cites: {sorted(BIB_KEYS - set(cited))}"
    for key in ("moore2021", "moore2023", "walsh2021", "heftie_zarr_benchmarks", "zarr_spec_v3", "ngff_spec_05"):
        assert key in BIB_KEYS, key
    assert "bibtex_bibfiles" in CONFIG and CONFIG["bibtex_bibfiles"] == ["book/references.bib"]


def test_intersphinx_inventories_are_in_the_repository():
    from sphinx.util.inventory import InventoryFile

    mapping = CONFIG["sphinx"]["config"]["intersphinx_mapping"]
    assert set(mapping) == {"python", "numpy", "zarr", "dask"}
    expected = {"python": "pathlib.Path", "numpy": "numpy.ndarray", "zarr": "zarr.Array", "dask": "dask.array.Array"}
    for name, (url, inventory) in mapping.items():
        assert url.startswith("https://") and not inventory.startswith(("http:", "https:"))
        with open(REPO / inventory, "rb") as f:
            data = InventoryFile.load(f, url, lambda base, uri: f"{base}/{uri}")
        assert any(expected[name] in entries for entries in data.values()), f"{inventory} lacks {expected[name]}"


@pytest.mark.book
def test_built_chapter_map_and_workshop_show_each_chapters_own_time(built):
    frames = chapter_frames.chapter_frames(REPO)
    home = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (built / "book" / "intro.html").read_text()))
    for frame in frames:
        row = f"{frame.title} .{{0,400}}? {chapter_frames.format_minutes(frame.read_minutes)} " \
              f"{chapter_frames.format_minutes(frame.exercise_minutes)}".replace("\u00a0", " ")
        assert re.search(row.replace("(", r"\(").replace(")", r"\)"), home), f"the chapter map lacks {frame.title}"
    workshop = (built / "book" / "workshop.html").read_text()
    assert workshop.count("<table") >= 2 and frames[0].title in workshop


@pytest.mark.book
def test_built_setup_page_has_a_section_for_every_error_and_links_to_other_docs(built):
    from data_helpers import errors

    html = (built / "book" / "setup.html").read_text()
    for cls in (errors.BookError.__subclasses__() + errors.NotedBookError.__subclasses__()):
        assert f'id="{cls.__name__.lower()}"' in html, f"setup.html has no anchor #{cls.__name__.lower()}"
    for site in ("https://docs.python.org/3/", "https://numpy.org/doc/stable/", "https://zarr.readthedocs.io/",
                 "https://docs.dask.org/en/stable/"):
        assert f'href="{site}' in html, f"setup.html has no intersphinx link to {site}"


@pytest.mark.book
def test_built_bibliography_and_download_buttons(built):
    bibliography = (built / "book" / "bibliography.html").read_text()
    for needle in ("Nature Methods", "Histochemistry and Cell Biology", "10.1038/s41592-021-01317-x"):
        assert needle in bibliography
    for file in NOTEBOOKS:
        html = (built / f"{file}.html").read_text()
        for suffix in (".md", ".ipynb"):
            source = built / "_sources" / f"{file}{suffix}"
            assert source.is_file() and f"_sources/{file}{suffix}" in html, f"no {suffix} download for {file}"
        assert "mybinder.org/v2/gh/" in html, f"{file}: no Binder launch button"
