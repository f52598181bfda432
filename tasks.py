#!/usr/bin/env python3
"""Build the book and run the tests, with nothing but Python 3.11+ installed.

    python3 tasks.py book      # create .venv if needed, then build the book (strict)
    python3 tasks.py test      # unit tests + strict book build + browser smoke test
    python3 tasks.py preview   # serve the built site on http://127.0.0.1:8000
    python3 tasks.py lab       # open the chapters as notebooks in JupyterLab
    python3 tasks.py env       # only create or update .venv
    python3 tasks.py chapter-times  # how long each chapter took when last executed

The virtual environment lives in .venv/ and is reinstalled from requirements.txt
whenever requirements.txt or helpers/pyproject.toml change.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".requirements-sha256"
BUILD = ROOT / "_build"

if sys.version_info < (3, 11):
    sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.")


def run(*cmd: str | Path, **kwargs) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kwargs)


def ensure_env() -> None:
    """Create .venv and install requirements.txt, unless already up to date."""
    digest = hashlib.sha256()
    for name in ("requirements.txt", "helpers/pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    wanted = digest.hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not PYTHON.exists():
        print(f"Creating the virtual environment {VENV} ...", flush=True)
        venv.create(VENV, with_pip=True)
    start = time.perf_counter()
    if run(PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-r", "requirements.txt") != 0:
        sys.exit("Installing requirements.txt failed: see the pip output above.")
    STAMP.write_text(wanted + "\n")
    print(f"Environment ready in {time.perf_counter() - start:.0f} s.", flush=True)


def build_book() -> int:
    """Build the HTML book; warnings are errors and every chapter is executed."""
    start = time.perf_counter()
    # The chapters' timing claims (data_helpers.claims.check_claim) fail the build instead of warning.
    env = {**os.environ, "DATA_HELPERS_STRICT_CLAIMS": "1"}
    code = run(
        BIN / "jupyter-book", "build", "--warningiserror", "--keep-going", "--builder", "html", ".", env=env,
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
    return 0


def cmd_env(_args) -> int:
    ensure_env()
    return 0


def cmd_book(_args) -> int:
    ensure_env()
    return build_book()


def cmd_test(args) -> int:
    ensure_env()
    build = build_book()
    if build != 0:
        print("The book build failed; the tests still run so that you see everything at once.", flush=True)
    tests = run(PYTHON, "-m", "pytest", *args.pytest_args)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env", help="create or update .venv").set_defaults(func=cmd_env)
    sub.add_parser("book", help="build the book (strict)").set_defaults(func=cmd_book)
    p = sub.add_parser("test", help="build the book, then run every test")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra arguments for pytest")
    p.set_defaults(func=cmd_test)
    p = sub.add_parser("preview", help="serve the built site on 127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_preview)
    sub.add_parser("lab", help="open the chapters in JupyterLab").set_defaults(func=cmd_lab)
    sub.add_parser("chapter-times", help="print each chapter's last execution time").set_defaults(
        func=cmd_chapter_times
    )
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
