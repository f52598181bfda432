"""What the benchmark scripts share: flushing written files, and running one method in a fresh child process.

The scripts are run as ``python benchmarks/<name>.py``, so this folder is on ``sys.path`` and they import
this module as ``_common``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder``, and the folder itself, to disk, so the clock includes the writes."""
    for path in [*folder.rglob("*"), folder]:
        if path.is_file() or path == folder:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def check_own_maxrss() -> None:
    """Stop if this process's ``ru_maxrss`` was inherited from its parent (a vfork), not its own."""
    import psutil

    start_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if start_max > psutil.Process().memory_info().rss + 64 * 2**20:
        raise SystemExit(f"ru_maxrss starts at {start_max / 2**20:.0f} MiB, above this process's RSS: it was "
                         "inherited from the parent (vfork), so the peak memory cannot be measured this way.")


def report(out: Path, start: float, nbytes: int, baseline: int) -> None:
    """Flush ``out``, stop the clock started at ``start``, and print a JSON line of figures.

    ``seconds`` runs until every file is on disk; ``seconds_before_fsync`` stops before the flush, whose length
    depends on how much written data the page cache still held at the end, which varies from run to run.
    """
    before_fsync = time.perf_counter() - start
    fsync_tree(out)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    stored = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(json.dumps({"seconds": seconds, "seconds_before_fsync": before_fsync, "nbytes": nbytes,
                      "peak_above_baseline": max(peak - baseline, 0),
                      "baseline": baseline, "stored": stored}))


def run_child(script: str, *args: str) -> dict:
    """Run ``script --child ARGS`` in a fresh Python process and return the figures it printed.

    The child is started by fork + exec, never vfork (``preexec_fn`` makes ``subprocess`` fork): after a
    vfork + exec, Linux carries the parent's peak RSS into the child's ``ru_maxrss``, so the parent's peak
    (making the input) would be reported as the child's.
    """
    proc = subprocess.run([sys.executable, script, "--child", *args], capture_output=True, text=True,
                          preexec_fn=os.getpid)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
