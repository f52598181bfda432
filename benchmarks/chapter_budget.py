#!/usr/bin/env python3
"""Measure each chapter's wall time and peak memory, as a reader would run it.

Each chapter is executed from scratch (no cache) in a fresh kernel, several
times, and the median wall time and the peak RSS of the kernel process are
printed. Run it on demand; it is not part of the tests:

    .venv/bin/python benchmarks/chapter_budget.py            # every chapter, 3 runs
    .venv/bin/python benchmarks/chapter_budget.py --runs 5 book/creating-chunked-datasets.md

The sample data must be reachable (a warm cache, or DATA_HELPERS_MIRROR).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BUDGET_GIB = 2.0


def run_once(chapter: Path) -> tuple[float, float]:
    """Execute one chapter; return (wall seconds, peak RSS of the kernel in GiB)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.ipynb"
        cmd = [sys.executable, "-m", "jupytext", "--to", "ipynb", "--execute", "--output", str(out),
               "--run-path", str(chapter.parent), chapter.name]
        start = time.perf_counter()
        proc = psutil.Popen(cmd, cwd=chapter.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak = 0
        while proc.poll() is None:
            try:
                tree = [proc, *proc.children(recursive=True)]
                # The kernel is the biggest process in the tree.
                peak = max(peak, max(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.05)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"{chapter} failed:\n{proc.stderr.read().decode()[-3000:]}")
    return wall, peak / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    chapters = args.chapters or sorted(
        p for p in (ROOT / "book").glob("*.md") if "```{code-cell}" in p.read_text()
    )
    print(f"{'chapter':40s} {'runs':>4s} {'median s':>9s} {'min s':>7s} {'max s':>7s} {'peak GiB':>9s}")
    for chapter in chapters:
        chapter = chapter.resolve()
        results = [run_once(chapter) for _ in range(args.runs)]
        walls = [w for w, _ in results]
        peak = max(p for _, p in results)
        flag = "" if peak <= BUDGET_GIB else "  OVER BUDGET"
        print(
            f"{chapter.stem:40s} {args.runs:4d} {statistics.median(walls):9.1f} "
            f"{min(walls):7.1f} {max(walls):7.1f} {peak:9.2f}{flag}",
            flush=True,
        )


if __name__ == "__main__":
    main()
