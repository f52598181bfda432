#!/usr/bin/env python3
"""Build the book and run the tests, with nothing but Python and git installed.

    python3 tasks.py book      # create .venv if needed, then build the book (strict)
    python3 tasks.py test      # unit tests + strict book build + browser smoke test
    python3 tasks.py preview   # serve the built site on http://127.0.0.1:8000
    python3 tasks.py lab       # open the chapters as notebooks in JupyterLab
    python3 tasks.py budget    # each chapter's time and peak memory, run as a reader would
    python3 tasks.py env       # only create or update .venv
    python3 tasks.py chapter-times  # how long each chapter took when last executed

The virtual environment lives in .venv/ and is reinstalled from requirements.txt
whenever requirements.txt or helpers/pyproject.toml change.

The book needs Python 3.12 or newer in .venv; this script itself runs on any
Python 3.8+. It creates .venv with the first interpreter of this list that runs
and is new enough (``python3 tasks.py which-python`` shows the choice):

1. ``$TEXTBOOK_PYTHON``, if set (a command or a path; it must be 3.12+);
2. the Python running this script;
3. ``python3.14``, ``python3.13``, ``python3.12`` on the PATH (on Windows:
   ``py -3.14``, ``py -3.13``, ``py -3.12``);
4. the newest 3.12+ installed by pyenv, when pyenv is there but no version of it
   is selected (its ``python3.12`` shim then answers "command not found").
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".requirements-sha256"
BUILD = ROOT / "_build"

MIN_PYTHON = (3, 12)
ENV_PYTHON = "TEXTBOOK_PYTHON"
if sys.version_info < (3, 8):
    sys.exit(f"tasks.py needs Python 3.8 or newer to run; this is {sys.version.split()[0]}.")


def run(*cmd: str | Path, **kwargs) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kwargs)


def python_version(command: list[str]) -> tuple[int, int] | None:
    """The (major, minor) version of the interpreter ``command``, or None if it does not run."""
    try:
        out = subprocess.run(
            [*command, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.fullmatch(r"(\d+)\.(\d+)", out.stdout.strip())
    return (int(match[1]), int(match[2])) if out.returncode == 0 and match else None


def _pyenv_candidates() -> list[list[str]]:
    """Interpreters installed by pyenv, newest first (whether or not one is selected)."""
    pyenv = shutil.which("pyenv")
    if not pyenv:
        return []
    try:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return []
    versions = []
    for folder in (Path(root) / "versions").glob("3.*"):
        match = re.fullmatch(r"3\.(\d+)\.(\d+)", folder.name)
        if match and (folder / "bin" / "python3").is_file():
            versions.append(((int(match[1]), int(match[2])), [str(folder / "bin" / "python3")]))
    return [command for _, command in sorted(versions, reverse=True)]


def find_python() -> list[str]:
    """The command of the interpreter that .venv is made with (see the module docstring)."""
    wanted = ".".join(map(str, MIN_PYTHON))
    explicit = os.environ.get(ENV_PYTHON, "").strip()
    if explicit:
        found = python_version([explicit])
        if found is None or found < MIN_PYTHON:
            sys.exit(
                f"{ENV_PYTHON}={explicit} is {'not a working Python' if found is None else 'Python %d.%d' % found}; "
                f"the book needs Python {wanted} or newer. Point {ENV_PYTHON} at such an interpreter, or unset it."
            )
        return [explicit]
    if sys.version_info[:2] >= MIN_PYTHON:
        return [sys.executable]
    minors = range(14, MIN_PYTHON[1] - 1, -1)
    if os.name == "nt":
        candidates = [["py", f"-3.{m}"] for m in minors]
    else:
        candidates = [[f"python3.{m}"] for m in minors]
    for command in [*candidates, *_pyenv_candidates()]:
        if (found := python_version(command)) is not None and found >= MIN_PYTHON:
            return command
    sys.exit(
        f"The book needs Python {wanted} or newer, and none was found: this is Python "
        f"{sys.version.split()[0]}, and python3.12 to python3.14 are not on the PATH.\n"
        f"Install one, for example:\n"
        f"  Debian/Ubuntu:  sudo apt install python3.12 python3.12-venv  (or use the deadsnakes PPA)\n"
        f"  macOS:          brew install python@3.13\n"
        f"  Windows:        winget install Python.Python.3.13\n"
        f"  pyenv:          pyenv install 3.13  (then run this command again)\n"
        f"  conda:          conda create -n py313 python=3.13\n"
        f"or point {ENV_PYTHON} at one: {ENV_PYTHON}=/path/to/python3.13 python3 tasks.py ..."
    )


def venv_version() -> tuple[int, int] | None:
    """The Python version .venv was created with (from pyvenv.cfg), or None."""
    cfg = VENV / "pyvenv.cfg"
    if not cfg.is_file():
        return None
    match = re.search(r"^version(?:_info)?\s*=\s*(\d+)\.(\d+)", cfg.read_text(), flags=re.MULTILINE)
    return (int(match[1]), int(match[2])) if match else None


def ensure_env() -> None:
    """Create .venv and install requirements.txt, unless already up to date."""
    digest = hashlib.sha256()
    for name in ("requirements.txt", "helpers/pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    wanted = digest.hexdigest()
    current = venv_version() if PYTHON.exists() else None
    if current is not None and current >= MIN_PYTHON and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if current is None or current < MIN_PYTHON:
        command = find_python()
        if VENV.exists():
            # .venv is made by this script only; one made with too old a Python is replaced.
            print(f"Replacing {VENV}, which was made with Python {'%d.%d' % current if current else 'unknown'}.", flush=True)
            shutil.rmtree(VENV)
        print(f"Creating the virtual environment {VENV} with {' '.join(command)} ...", flush=True)
        if run(*command, "-m", "venv", VENV) != 0:
            sys.exit(f"Creating {VENV} with {' '.join(command)} failed: see the output above.")
    start = time.perf_counter()
    if run(PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-r", "requirements.txt") != 0:
        sys.exit("Installing requirements.txt failed: see the pip output above.")
    STAMP.write_text(wanted + "\n")
    print(f"Environment ready in {time.perf_counter() - start:.0f} s.", flush=True)


#: IPython runs this file when a notebook kernel starts (through PYTHONSTARTUP); with
#: DATA_HELPERS_LOOPBACK_ONLY=1 it refuses connections to anything but 127.0.0.1 / ::1.
KERNEL_STARTUP = ROOT / "helpers" / "src" / "data_helpers" / "kernel_startup.py"


def book_env() -> dict:
    """The environment of the book build and of the tests that run its chapters."""
    return {
        **os.environ,
        # The chapters' timing claims (data_helpers.claims.check_claim) fail the build instead of warning.
        "DATA_HELPERS_STRICT_CLAIMS": "1",
        # No chapter's kernel may reach anything but loopback (data_helpers.netguard).
        "DATA_HELPERS_LOOPBACK_ONLY": "1",
        "PYTHONSTARTUP": str(KERNEL_STARTUP),
    }


#: Each kernel of the build appends a line per cell here (data_helpers.celltimes); chapter-times reads it.
CELL_LOG = BUILD / "cell-times.jsonl"


def build_book() -> int:
    """Build the HTML book; warnings are errors and every chapter is executed."""
    start = time.perf_counter()
    BUILD.mkdir(exist_ok=True)
    CELL_LOG.unlink(missing_ok=True)  # only this build's cells: chapters the cache skips are not listed
    code = run(
        BIN / "jupyter-book", "build", "--warningiserror", "--keep-going", "--builder", "html", ".",
        env={**book_env(), "DATA_HELPERS_CELL_TIMES": str(CELL_LOG)},
    )
    print(f"Book build {'passed' if code == 0 else 'FAILED'} in {time.perf_counter() - start:.0f} s.", flush=True)
    report_chapter_times()
    return code


def report_chapter_times() -> None:
    """Print how long each chapter took when it was last executed (from jupyter-cache)."""
    print("Chapter execution times (last execution, from the cache):", flush=True)
    cmd_chapter_times(None)


def cmd_chapter_times(_args) -> int:
    if Path(sys.prefix).resolve() != VENV.resolve():
        # jupyter-cache lives in .venv: run this command again with its Python.
        ensure_env()
        return subprocess.call([str(PYTHON), __file__, "chapter-times"], cwd=ROOT)
    from jupyter_cache import get_cache

    cache = BUILD / ".jupyter_cache"
    if not cache.is_dir():
        print("  (no execution cache yet)")
        return 0
    latest = {}
    for record in sorted(get_cache(cache).list_cache_records(), key=lambda r: r.created):
        latest[record.uri] = record
    for uri, record in sorted(latest.items()):
        seconds = (record.data or {}).get("execution_seconds", float("nan"))
        print(f"  {Path(uri).stem:40s} {seconds:6.1f} s  (executed {record.created:%Y-%m-%d %H:%M})")
    report_slowest_cells()
    return 0


def report_slowest_cells(n: int = 3) -> None:
    """The slowest cells of each chapter that the last build executed (from CELL_LOG)."""
    if not CELL_LOG.is_file():
        return
    import jupytext

    from data_helpers.celltimes import peak_output_bytes, slowest_cells

    chapters = {}
    for md in sorted((ROOT / "book").glob("*.md")):
        notebook = jupytext.read(md)
        chapters[md.stem] = [c.source for c in notebook.cells if c.cell_type == "code"]
    print(f"Slowest cells of the last build (from {os.path.relpath(CELL_LOG, ROOT)}):", flush=True)
    for name, cells in slowest_cells(CELL_LOG, chapters, n).items():
        shown = ", ".join(f"{c['seconds']:.1f} s (cell {c['cell']}: {c['first_line'][:60]})" for c in cells)
        print(f"  {name:40s} {shown}")
    sizes = peak_output_bytes(CELL_LOG, chapters)
    if sizes:
        print("Largest output folder (data/<chapter>/) of each chapter, and what it left:", flush=True)
        for name, size in sizes.items():
            print(f"  {name:40s} {size['peak'] / 1e9:5.2f} GB, left {size['left'] / 1e9:5.2f} GB")


def cmd_budget(args) -> int:
    """Run every chapter as a reader would (a fresh kernel each) and print its time and peak memory."""
    ensure_env()
    command = [str(PYTHON), str(ROOT / "benchmarks" / "chapter_budget.py"), *args.chapters]
    return subprocess.call(command, cwd=ROOT, env=book_env())


def cmd_env(_args) -> int:
    ensure_env()
    return 0


def cmd_which_python(_args) -> int:
    command = find_python()
    print(" ".join(command), "->", "Python %d.%d" % python_version(command))
    return 0


def cmd_book(_args) -> int:
    ensure_env()
    return build_book()


def cmd_test(args) -> int:
    ensure_env()
    build = build_book()
    if build != 0:
        print("The book build failed; the tests still run so that you see everything at once.", flush=True)
    tests = run(PYTHON, "-m", "pytest", *args.pytest_args, env=book_env())
    if build != 0:
        print("FAILED: the strict book build failed (see above).", flush=True)
        return build
    return tests


def cmd_preview(args) -> int:
    ensure_env()
    html = BUILD / "html"
    if not (html / "index.html").is_file():
        sys.exit("No built book in _build/html. Run: python3 tasks.py book")
    return run(PYTHON, "-m", "data_helpers", "serve", html, "--port", str(args.port))


def cmd_lab(_args) -> int:
    ensure_env()
    return run(BIN / "jupyter", "lab", "book")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env", help="create or update .venv").set_defaults(func=cmd_env)
    sub.add_parser("which-python", help="show the interpreter .venv is made with").set_defaults(
        func=cmd_which_python
    )
    sub.add_parser("book", help="build the book (strict)").set_defaults(func=cmd_book)
    p = sub.add_parser("test", help="build the book, then run every test")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra arguments for pytest")
    p.set_defaults(func=cmd_test)
    p = sub.add_parser("preview", help="serve the built site on 127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_preview)
    sub.add_parser("lab", help="open the chapters in JupyterLab").set_defaults(func=cmd_lab)
    p = sub.add_parser("budget", help="run each chapter in a fresh kernel: wall time and peak memory")
    p.add_argument("chapters", nargs="*", help="chapter files (default: every chapter of _toc.yml)")
    p.set_defaults(func=cmd_budget)
    sub.add_parser("chapter-times", help="print each chapter's last execution time").set_defaults(
        func=cmd_chapter_times
    )
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
