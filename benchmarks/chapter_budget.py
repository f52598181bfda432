#!/usr/bin/env python3
"""Measure each chapter's wall time and peak memory, as a reader would run it.

Each chapter is executed from scratch (no cache) in a fresh kernel, as JupyterLab
would run it (jupytext to a notebook, then a new kernel), and the median wall time
and the peak memory are printed. The memory is the summed RSS of the kernel and of
every process it starts (dask workers, subprocesses), sampled every 50 ms. Exits
with status 1 if a chapter goes over the 2 GiB budget. Run it on demand, or through
``python3 tasks.py budget``; it is not part of the tests:

    .venv/bin/python benchmarks/chapter_budget.py            # every chapter of _toc.yml, once
    .venv/bin/python benchmarks/chapter_budget.py --runs 3 book/creating-chunked-datasets.md

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


def toc_chapters() -> list[Path]:
    """The chapters of _toc.yml that have code cells, in the book's order."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [e["file"] for part in toc.get("parts", []) for e in part.get("chapters", [])]
    paths = [ROOT / f"{f}.md" for f in files]
    return [p for p in paths if p.is_file() and "```{code-cell}" in p.read_text()]


def run_once(chapter: Path) -> tuple[float, float]:
    """Execute one chapter; return (wall seconds, peak GiB of the kernel and its child processes)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.ipynb"
        cmd = [sys.executable, "-m", "jupytext", "--to", "ipynb", "--execute", "--output", str(out),
               "--run-path", str(chapter.parent), chapter.name]
        start = time.perf_counter()
        proc = psutil.Popen(cmd, cwd=chapter.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak = 0
        while proc.poll() is None:
            try:
                # Everything below jupytext: the kernel, and the workers and subprocesses it started.
                peak = max(peak, sum(p.memory_info().rss for p in proc.children(recursive=True)))
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
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    chapters = args.chapters or toc_chapters()
    over = []
    print(f"{'chapter':40s} {'runs':>4s} {'median s':>9s} {'min s':>7s} {'max s':>7s} {'peak GiB':>9s}")
    for chapter in chapters:
        chapter = chapter.resolve()
        results = [run_once(chapter) for _ in range(args.runs)]
        walls = [w for w, _ in results]
        peak = max(p for _, p in results)
        flag = "" if peak <= BUDGET_GIB else "  OVER BUDGET"
        if flag:
            over.append(chapter.stem)
        print(
            f"{chapter.stem:40s} {args.runs:4d} {statistics.median(walls):9.1f} "
            f"{min(walls):7.1f} {max(walls):7.1f} {peak:9.2f}{flag}",
            flush=True,
        )
    if over:
        sys.exit(f"over the {BUDGET_GIB} GiB budget: {', '.join(over)}")


if __name__ == "__main__":
    main()
