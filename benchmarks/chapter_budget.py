#!/usr/bin/env python3
"""Measure each chapter's wall time and peak memory, as a reader would run it.

Each chapter is executed from scratch (no cache) in a fresh kernel, as JupyterLab
would run it (jupytext reads it as a notebook, then nbclient runs every cell in a new
kernel started in the chapter's folder), and the median wall time and the peak memory
are printed. The memory is the summed RSS of the kernel and of
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


# Runs in a child process: read the chapter with jupytext, execute it with nbclient (the library behind
# ``jupyter execute`` and nbconvert). ``jupytext --execute`` was not used: under load it sometimes waited
# forever on a kernel that had finished.
RUNNER = """
import sys, jupytext, nbclient
chapter, folder = sys.argv[1], sys.argv[2]
nb = jupytext.read(chapter)
nbclient.NotebookClient(nb, timeout=None, kernel_name="python3",
                        resources={"metadata": {"path": folder}}).execute()
"""


def run_once(chapter: Path, timeout: float) -> tuple[float, float]:
    """Execute one chapter; return (wall seconds, peak GiB of the kernel and its child processes)."""
    cmd = [sys.executable, "-c", RUNNER, str(chapter), str(chapter.parent)]  # the time limit is kept here
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        proc = psutil.Popen(cmd, cwd=chapter.parent, stdout=subprocess.DEVNULL, stderr=errors)
        peak = 0
        while proc.poll() is None:
            if time.perf_counter() - start > timeout:
                for p in [*proc.children(recursive=True), proc]:
                    try:
                        p.kill()
                    except psutil.Error:
                        pass
                proc.wait()
                sys.exit(f"{chapter} did not finish within {timeout:.0f} s; it was stopped "
                         "(raise the limit with --timeout).")
            try:
                # Everything below the runner: the kernel, and the workers and subprocesses it started.
                peak = max(peak, sum(p.memory_info().rss for p in proc.children(recursive=True)))
            except psutil.Error:
                pass
            time.sleep(0.05)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            errors.seek(0)
            sys.exit(f"{chapter} failed:\n{errors.read().decode(errors='replace')[-3000:]}")
    return wall, peak / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds a chapter may run before it is stopped (default 900)")
    args = parser.parse_args()
    chapters = args.chapters or toc_chapters()
    over = []
    print(f"{'chapter':40s} {'runs':>4s} {'median s':>9s} {'min s':>7s} {'max s':>7s} {'peak GiB':>9s}")
    for chapter in chapters:
        chapter = chapter.resolve()
        results = [run_once(chapter, args.timeout) for _ in range(args.runs)]
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
