"""The chapter frame, read from each chapter's own source, for the pages that list the chapters.

Every chapter opens with an admonition "Before you start" holding its learning objectives, its
prerequisites and a time estimate (``**Time.** About 45 minutes to read and run, and 20 more for
the exercises.``), and ends with exercises, key points and "What's next" (see CONTRIBUTING.md).
This module parses that frame, so that

* the home page's chapter map and the workshop outlines take each chapter's time from the chapter
  itself, and the home page lists what a reader can do from each chapter's learning objectives
  (directives ``{chapter-map}``, ``{chapter-objectives}``, ``{workshop-outline}`` and ``{pair-exercises}``), and
* ``tests/test_book.py`` fails when a chapter lacks a part of the frame (:func:`frame_problems`).

It reads ``_toc.yml``, so a chapter added there appears on those pages with no other change.
Pages that are not chapters (the home page, setup, workshop, appendices, glossary, bibliography)
are listed in :data:`NOT_CHAPTERS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

#: Pages in _toc.yml that are not chapters, so have no frame (by file name, without .md).
NOT_CHAPTERS = frozenset({"intro", "setup", "workshop", "appendices", "glossary", "bibliography"})

_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40,
    "forty-five": 45, "fifty": 50, "sixty": 60, "ninety": 90,
}
_NUMBER = r"(\d+(?:\.\d+)?|" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")"
_QUANTITY = re.compile(_NUMBER + r"\s+(minutes?|hours?|more)\b", flags=re.IGNORECASE)
#: Words of a solution that is not one yet.
PLACEHOLDERS = re.compile(
    r"^\s*(\.\.\.|pass|todo\b.*|tbd\b.*|fixme\b.*|# *your (code|answer) here.*|raise NotImplementedError.*"
    r"|solution (to come|follows).*)\s*$",
    flags=re.IGNORECASE,
)
_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```\s*$", flags=re.MULTILINE | re.DOTALL)
_DROPDOWN = re.compile(
    r"^(:::+|```+)\{(?:admonition|dropdown|solution)\}[^\n]*\n(.*?)^\1\s*$", flags=re.MULTILINE | re.DOTALL
)


class FrameError(ValueError):
    """A chapter's frame cannot be read; the message says which part and the form expected."""


@dataclass
class Exercise:
    """One exercise: its heading, its solution's text and its solution's shown code cells."""

    title: str
    prompt: str = ""
    solution_text: str | None = None
    solution_hidden: bool = False
    solution_code: list[str] = field(default_factory=list)
    hidden_code: bool = False


@dataclass
class Frame:
    """What the frame of one chapter says."""

    doc: str  # path in _toc.yml, e.g. book/storing-3d-images
    part: str  # caption of its part in _toc.yml ("" if none)
    title: str
    objectives: list[str]
    prerequisites: list[str]
    time_text: str
    read_minutes: int | None
    exercise_minutes: int | None
    exercises: list[Exercise]
    key_points: list[str]
    whats_next: str

    @property
    def minutes(self) -> int:
        """Reading, running and exercises together."""
        return (self.read_minutes or 0) + (self.exercise_minutes or 0)


def toc_pages(root: Path) -> list[tuple[str, str]]:
    """Every page of _toc.yml as (path without .md, part caption), root first."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pages = [(toc["root"], "")]
    for part in toc.get("parts", []):
        pages += [(ch["file"], part.get("caption", "")) for ch in part.get("chapters", [])]
    pages += [(ch["file"], "") for ch in toc.get("chapters", [])]
    return pages


def toc_chapters(root: Path) -> list[tuple[str, str]]:
    """The pages of _toc.yml that are chapters (and so have a frame), in reading order."""
    return [(doc, part) for doc, part in toc_pages(root) if Path(doc).name not in NOT_CHAPTERS]


def _minutes(number: str, unit: str) -> int:
    value = float(_WORDS.get(number.lower(), 0) or number)
    return round(value * 60) if unit.lower().startswith("hour") else round(value)


def parse_time(text: str) -> tuple[int | None, int | None]:
    """Minutes to read and run, and minutes for the exercises, from the text of a "Time." line.

    ``"About 45 minutes to read and run (the experiment takes two minutes), and 20 more for the
    exercises."`` gives ``(45, 20)``; text in parentheses is ignored. ``(None, None)`` if no time.
    """
    plain = re.sub(r"\([^)]*\)", " ", text)
    read = exercises = None
    for match in _QUANTITY.finditer(plain):
        number, unit = match.groups()
        after = plain[match.end():match.end() + 40].lower()
        if unit.lower() == "more" or "exercise" in after.split(".")[0].split(",")[0]:
            if exercises is None:
                exercises = _minutes(number, "minutes" if unit.lower() == "more" else unit)
        elif read is None:
            read = _minutes(number, unit)
    return read, exercises


def _section(text: str, heading: str) -> str | None:
    """The body of the H2 section ``heading`` (up to the next H2), or None."""
    match = re.search(rf"^## {re.escape(heading)}\s*$", text, flags=re.MULTILINE | re.IGNORECASE)
    if not match:
        return None
    rest = text[match.end():]
    end = re.search(r"^## ", rest, flags=re.MULTILINE)
    return rest[: end.start()] if end else rest


def _bullets(text: str) -> list[str]:
    """Top-level list items of ``text``, continuation lines joined."""
    items: list[str] = []
    for line in text.splitlines():
        if re.match(r"^(- |\* |\d+\. )", line):
            items.append(re.sub(r"^(- |\* |\d+\. )", "", line).strip())
        elif items and line.startswith("  ") and line.strip():
            items[-1] += " " + line.strip()
        elif items and not line.strip():
            items.append("")
    return [item for item in items if item]


def _field(admonition: str, name: str) -> str | None:
    """The text of the bold-labelled part ``**Name.**`` of the opening admonition, up to the next one."""
    match = re.search(rf"\*\*{name}\.?\*\*\.?(.*?)(?=^\*\*[A-Z][^*]*\.?\*\*|\Z)", admonition,
                      flags=re.MULTILINE | re.DOTALL | re.IGNORECASE)
    return match.group(1).strip() if match else None


def _split_options(cell: str) -> tuple[list[str] | None, list[str]]:
    """A code cell's YAML options block (its lines, or None if it has none) and the lines after it."""
    lines = cell.splitlines()
    if lines and lines[0].startswith("---") and "---" in lines[1:]:
        end = lines.index("---", 1)
        return lines[1:end], lines[end + 1:]
    return None, lines


def _tags(cell: str) -> list[str]:
    """A code cell's tags, from ``tags: [...]`` in its YAML options block or from a ``:tags: [...]`` line."""
    header, lines = _split_options(cell)
    pattern = r"^tags:\s*\[([^\]]*)\]" if header is not None else r"^:tags:\s*\[([^\]]*)\]"
    match = re.search(pattern, "\n".join(header if header is not None else lines), flags=re.MULTILINE)
    return [t.strip().strip("'\"") for t in match.group(1).split(",")] if match else []


def _code_body(cell: str) -> str:
    """A code cell's source without its option lines."""
    _, lines = _split_options(cell)
    return "\n".join(line for line in lines if not re.match(r"^:\w[\w-]*:", line)).strip()


def _cells_just_before(text: str) -> list[re.Match]:
    """The code cells at the end of ``text`` with nothing but blank lines between them and after them."""
    cells = list(_CODE_CELL.finditer(text))
    end, kept = len(text), []
    for cell in reversed(cells):
        if text[cell.end():end].strip():
            break
        kept.insert(0, cell)
        end = cell.start()
    return kept


def _exercises(section: str) -> list[Exercise]:
    parts = re.split(r"^### +(.+)$", section, flags=re.MULTILINE)
    exercises = []
    for title, body in zip(parts[1::2], parts[2::2]):
        exercise = Exercise(title.strip())
        first = _DROPDOWN.search(body)
        exercise.prompt = _CODE_CELL.sub("", body[: first.start()] if first else body)
        for match in _DROPDOWN.finditer(body):
            block = match.group(2)
            head = body[match.start():match.start() + 200].splitlines()[0].lower()
            if "dropdown" in head or "solution" in head or ":class: dropdown" in block:
                exercise.solution_hidden = "{dropdown}" in head or bool(
                    re.search(r"^:class:.*\bdropdown\b", block, flags=re.MULTILINE)
                )
                exercise.solution_text = re.sub(r"^:\w+:.*$", "", block, flags=re.MULTILINE).strip()
                # The solution's code runs just before its text (so that the cell above the text prints the
                # numbers it uses: the code cells right above the dropdown, with no prose between) or after it.
                before = _cells_just_before(body[: match.start()])
                for cell in [*before, *_CODE_CELL.finditer(body[match.end():])]:
                    tags = _tags(cell.group(1))
                    if "remove-cell" in tags:
                        continue
                    exercise.solution_code.append(_code_body(cell.group(1)))
                    exercise.hidden_code = exercise.hidden_code or bool(
                        {"hide-cell", "hide-input", "hide-output"} & set(tags)
                    )
                break
        exercises.append(exercise)
    return exercises


def parse_frame(root: Path, doc: str, part: str = "") -> Frame:
    """Read the frame of the chapter ``doc`` (a path of _toc.yml, without .md)."""
    path = root / f"{doc}.md"
    text = path.read_text(encoding="utf-8")
    title_match = re.search(r"^# +(.+)$", text, flags=re.MULTILINE)
    if not title_match:
        raise FrameError(f"{doc}.md has no title (a line '# Title').")
    body = text[title_match.end():]
    opening = re.search(r"^(:::+|```+)\{admonition\}[^\n]*\n(.*?)^\1\s*$", body, flags=re.MULTILINE | re.DOTALL)
    admonition = opening.group(2) if opening and opening.start() < 300 else ""
    objectives_text = _field(admonition, "Learning objectives") or ""
    prerequisites_text = _field(admonition, "Prerequisites") or ""
    time_text = " ".join((_field(admonition, "Time") or "").split())
    read, exercise_minutes = parse_time(time_text)
    exercises_section = _section(text, "Exercises") or ""
    key_points_section = _section(text, "Key points") or ""
    whats_next = (_section(text, "What's next") or "").strip()
    whats_next = _CODE_CELL.sub("", whats_next).strip()
    return Frame(
        doc=doc, part=part, title=title_match.group(1).strip(),
        objectives=_bullets(objectives_text), prerequisites=_bullets(prerequisites_text),
        time_text=time_text, read_minutes=read, exercise_minutes=exercise_minutes,
        exercises=_exercises(exercises_section), key_points=_bullets(key_points_section),
        whats_next=whats_next,
    )


def frame_problems(frame: Frame, last: bool = False) -> list[str]:
    """Everything missing from a chapter's frame, each as a sentence saying what to add.

    ``last``: the chapter is the last of the book, so its "What's next" has no next chapter to link.
    """
    problems = []
    if len(frame.objectives) < 3:
        problems.append("the admonition at the top needs '**Learning objectives.**' followed by 3 to 6 bullets")
    if not frame.prerequisites:
        problems.append("the admonition at the top needs '**Prerequisites.**' followed by bullets")
    for item in frame.prerequisites:
        if not re.search(r"\*(necessary|helpful)\*", item):
            problems.append(f"prerequisite not marked *necessary* or *helpful*: {item[:60]!r}")
    if frame.read_minutes is None or frame.exercise_minutes is None:
        problems.append(
            "the admonition at the top needs a time estimate of the form '**Time.** About 45 minutes to read and "
            f"run, and 20 more for the exercises.' (found {frame.time_text!r})"
        )
    if len(frame.exercises) < 2:
        problems.append("'## Exercises' needs at least two exercises, each under a '### ' heading")
    for exercise in frame.exercises:
        where = f"exercise {exercise.title!r}"
        if exercise.solution_text is None:
            problems.append(f"{where} has no solution in a dropdown (':::{{admonition}} Solution' + ':class: dropdown')")
            continue
        if not exercise.solution_hidden:
            problems.append(f"{where}: the solution is shown; hide it in a dropdown (':class: dropdown')")
        if not exercise.solution_text or PLACEHOLDERS.match(exercise.solution_text):
            problems.append(f"{where}: the solution's text is a placeholder: {exercise.solution_text!r}")
        if not exercise.solution_code:
            problems.append(f"{where}: no code cell after the solution, so the build never executes it")
        elif not exercise.hidden_code:
            problems.append(f"{where}: the solution's code cell is shown; tag it hide-cell")
        for code in exercise.solution_code:
            lines = [ln for ln in code.splitlines() if ln.strip() and not ln.strip().startswith("#")]
            if not lines or all(PLACEHOLDERS.match(ln) for ln in lines) or any(
                PLACEHOLDERS.match(ln) for ln in code.splitlines()
            ):
                problems.append(f"{where}: the solution's code is a placeholder: {code[:60]!r}")
    if not 3 <= len(frame.key_points) <= 6:
        problems.append(f"'## Key points' needs 3 to 6 bullets (found {len(frame.key_points)})")
    if not frame.whats_next:
        problems.append("the chapter needs a '## What's next' section")
    elif "{doc}" not in frame.whats_next and not last:
        problems.append("'## What's next' should link the next page with {doc}`...`")
    return problems


def chapter_frames(root: Path) -> list[Frame]:
    """The frames of every chapter of _toc.yml, in reading order."""
    return [parse_frame(root, doc, part) for doc, part in toc_chapters(root)]


def format_minutes(minutes: int) -> str:
    """``95`` → ``'1 h 35 min'``; ``45`` → ``'45 min'`` (with no-break spaces before the units)."""
    hours, rest = divmod(int(minutes), 60)
    if not hours:
        return f"{rest}\u00a0min"  # no-break spaces: a number and its unit stay on one line
    return f"{hours}\u00a0h" + (f" {rest:02d}\u00a0min" if rest else "")


# -- workshop schedules ---------------------------------------------------------------------------------

#: kind: (start, in minutes after midnight; length of the day, breaks included; breaks as
#: (teaching minutes after which it comes, its length, its name)).
WORKSHOPS = {
    "half-day": (9 * 60, 3 * 60 + 30, [(90, 20, "Break")]),
    "full-day": (9 * 60, 8 * 60, [(90, 20, "Break"), (180, 60, "Lunch"), (300, 15, "Break")]),
}
#: Minutes at the start for a welcome and checking that every laptop runs a first cell.
WELCOME_MINUTES = 15
#: Minutes at the end for questions and where to go next.
WRAP_UP_MINUTES = 10


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def schedule(frames: list[Frame], kind: str) -> tuple[list[tuple[str, str, int]], list[Frame]]:
    """A workshop's timetable: rows (clock time, activity, minutes), and the chapters left for later.

    Chapters are taken in reading order, each with its reading and exercise time, for as long as they fit
    in the day's teaching time; breaks come at the first chapter boundary after their planned minute.
    """
    start, length, breaks = WORKSHOPS[kind]
    budget = length - sum(b[1] for b in breaks) - WELCOME_MINUTES - WRAP_UP_MINUTES
    chosen: list[Frame] = []
    used = 0
    for frame in frames:
        if used + frame.minutes > budget:
            break
        chosen.append(frame)
        used += frame.minutes
    rows: list[tuple[str, str, int]] = []
    clock, taught = start, 0
    pending = list(breaks)

    def add(activity: str, minutes: int) -> None:
        nonlocal clock
        rows.append((_clock(clock), activity, minutes))
        clock += minutes

    add("Welcome; every laptop runs the first cell of the first chapter", WELCOME_MINUTES)
    taught += WELCOME_MINUTES
    for frame in chosen:
        for activity, minutes in (
            (f"{{doc}}`{frame.title} <{Path(frame.doc).name}>`: read and run together", frame.read_minutes or 0),
            (f"Exercises of {{doc}}`{Path(frame.doc).name}`, in pairs where marked below", frame.exercise_minutes or 0),
        ):
            while pending and taught >= pending[0][0]:
                _, pause, name = pending.pop(0)
                add(name, pause)
            add(activity, minutes)
            taught += minutes
    add("Questions, and where to go next", WRAP_UP_MINUTES)
    return rows, frames[len(chosen):]


# -- Sphinx directives ----------------------------------------------------------------------------------

def _markdown_directive(make_lines):
    """A directive class whose content is generated MyST markdown, parsed in place."""
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class _Directive(SphinxDirective):
        has_content = False
        optional_arguments = 1

        def run(self):
            root = Path(self.env.srcdir)
            frames = chapter_frames(root)
            for frame in frames:
                self.env.note_dependency(str(root / f"{frame.doc}.md"))
            self.env.note_dependency(str(root / "_toc.yml"))
            lines = make_lines(frames, self.arguments[0] if self.arguments else None)
            container = nodes.container()
            self.state.nested_parse(StringList(lines, source="generated from the chapters' frames"),
                                    self.content_offset, container)
            return container.children

    return _Directive


def chapter_map_lines(frames: list[Frame], _argument: str | None = None) -> list[str]:
    """Markdown of the chapter map: part, chapter, its first objective, and its times."""
    lines = ["| Part | Chapter | You will, for example, | Read and run | Exercises |", "| --- | --- | --- | --- | --- |"]
    previous_part = None
    for frame in frames:
        first = re.sub(r"[;.]$", "", frame.objectives[0]) if frame.objectives else ""
        part = frame.part if frame.part != previous_part else ""
        previous_part = frame.part
        lines.append(
            f"| {part} | {{doc}}`{Path(frame.doc).name}` | {first} | "
            f"{format_minutes(frame.read_minutes or 0)} | {format_minutes(frame.exercise_minutes or 0)} |"
        )
    total = sum(f.minutes for f in frames)
    lines += ["", f"All {len(frames)} chapters together take about {format_minutes(total)}, exercises included."]
    return lines


_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def _count(number: int, noun: str) -> str:
    return f"{_COUNT_WORDS.get(number, number)} {noun}{'' if number == 1 else 's'}"


def schedule_summary(rows: list[tuple[str, str, int]]) -> str:
    """One sentence on a timetable's length and pauses, from its rows (so it always matches the table).

    ``"From 09:00 to 11:50, 2 h 50 min with one break."``
    """
    if not rows:
        raise FrameError("a workshop timetable needs at least one row to summarise.")
    hours, minutes = map(int, rows[0][0].split(":"))
    start = hours * 60 + minutes
    hours, minutes = map(int, rows[-1][0].split(":"))
    end = hours * 60 + minutes + rows[-1][2]
    breaks = sum(1 for _clock_time, activity, _minutes in rows if activity == "Break")
    lunches = sum(1 for _clock_time, activity, _minutes in rows if activity == "Lunch")
    pauses = [_count(breaks, "break")] if breaks else []
    pauses += ["lunch"] if lunches == 1 else ([_count(lunches, "lunch break")] if lunches else [])
    tail = f" with {' and '.join(pauses)}" if pauses else ", without a break"
    return f"From {_clock(start)} to {_clock(end)}, {format_minutes(end - start)}{tail}."


def workshop_lines(frames: list[Frame], kind: str | None) -> list[str]:
    """Markdown of one workshop's timetable (``half-day`` or ``full-day``), after a sentence on its length."""
    if kind not in WORKSHOPS:
        raise FrameError(f"workshop-outline needs 'half-day' or 'full-day', got {kind!r}.")
    rows, later = schedule(frames, kind)
    lines = [schedule_summary(rows), ""]
    lines += ["| Time | Activity | Minutes |", "| --- | --- | --- |"]
    lines += [f"| {clock} | {activity} | {minutes} |" for clock, activity, minutes in rows]
    if later:
        names = ", ".join(f"{{doc}}`{Path(f.doc).name}`" for f in later)
        lines += ["", f"Left for the participants to read afterwards: {names}."]
    return lines


def objectives_lines(frames: list[Frame], _argument: str | None = None) -> list[str]:
    """Markdown list of what a reader can do after each chapter: its own learning objectives, in reading order."""
    lines = []
    for frame in frames:
        lines.append(f"- After {{doc}}`{frame.title} <{Path(frame.doc).name}>`, you can:")
        for objective in frame.objectives:
            lines.append(f"  - {re.sub(r'[;.]$', '', objective.strip())}")
    return lines


#: Words of an exercise's prompt that make it a good one for two people: one predicts, chooses or argues
#: on paper, the other checks by running code, then they swap.
PAIR_WORDS = ("predict", "choose", "pick", "which", "explain", "compare", "work it out")


def pair_exercise_lines(frames: list[Frame], _argument: str | None = None) -> list[str]:
    """Markdown list of each chapter's exercises, those that suit pairs first."""
    lines = []
    for frame in frames:
        pairs = [e.title for e in frame.exercises if any(w in (e.title + e.prompt).lower() for w in PAIR_WORDS)]
        alone = [e.title for e in frame.exercises if e.title not in pairs]
        text = "; ".join(pairs) if pairs else "none by this rule; do them alone and compare answers"
        lines.append(f"- {{doc}}`{Path(frame.doc).name}`: in pairs: {text.rstrip('.')}" + ("" if text.endswith("?") else "."))
        if alone:
            lines.append(f"  Alone, then compare: {'; '.join(alone)}" + ("" if alone[-1].endswith("?") else "."))
    return lines


def setup(app):
    app.add_directive("chapter-map", _markdown_directive(chapter_map_lines))
    app.add_directive("workshop-outline", _markdown_directive(workshop_lines))
    app.add_directive("pair-exercises", _markdown_directive(pair_exercise_lines))
    app.add_directive("chapter-objectives", _markdown_directive(objectives_lines))
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
