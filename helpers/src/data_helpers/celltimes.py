"""How long each cell of a notebook kernel took, written to a file: where a slow chapter spends its time.

When ``DATA_HELPERS_CELL_TIMES`` names a file, ``kernel_startup.py`` (which IPython runs as each kernel starts,
see ``tasks.py``) calls :func:`install_from_environment`. Each cell the kernel then runs appends one JSON line
to that file: the kernel's process id, the cell's number in that kernel, its seconds, a hash of its source, its
first line, and the disk space that the chapter's output folders (``data/<chapter>/``, the folders this kernel
holds through :func:`data_helpers.output_dir`) take after the cell. The book's build sets the variable;
``python3 tasks.py chapter-times`` prints the slowest cells of each chapter it executed, found with
:func:`slowest_cells`, and :func:`peak_output_bytes` gives each chapter's largest output folder.

The folder is measured after each cell, not during it: a file that a cell writes and removes before it ends is
not seen, so a figure stated from these measurements keeps a margin.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from data_helpers.budget import folder_bytes

__all__ = ["ENV", "held_output_folders", "install", "install_from_environment", "peak_output_bytes",
           "read_log", "slowest_cells", "source_hash"]

#: The environment variable that names the log file; unset, nothing is recorded.
ENV = "DATA_HELPERS_CELL_TIMES"


def source_hash(source: str) -> str:
    """A short hash of a cell's source, blind to leading and trailing blank space."""
    return hashlib.sha1(source.strip().encode()).hexdigest()[:16]


def held_output_folders() -> list[Path]:
    """The chapter output folders (``data/<chapter>/``) that this process holds, through ``output_dir``.

    Examples
    --------
    >>> held_output_folders()  # no chapter folder asked for in this process yet  # doctest: +SKIP
    []
    """
    from data_helpers import workspace

    # workspace keeps one lock file, ".<name>.lock" beside the folder, for each folder this process holds
    return sorted(lock.parent / lock.name[1:-len(".lock")] for lock in workspace._HELD)


def install(shell, path: str | os.PathLike) -> None:
    """Append a JSON line to ``path`` after each cell that the IPython ``shell`` runs.

    Raises
    ------
    FileNotFoundError
        If the folder of ``path`` does not exist.
    """
    log = Path(path)
    if not log.parent.is_dir():
        raise FileNotFoundError(f"{ENV} names {log}, whose folder does not exist: make the folder first, or set "
                                f"{ENV} to a file in an existing folder (or unset it to record nothing).")
    start = None
    count = 0

    def pre_run_cell(_info) -> None:
        nonlocal start
        start = time.perf_counter()

    def post_run_cell(result) -> None:
        nonlocal start, count
        if start is None:
            return
        seconds, start = time.perf_counter() - start, None
        count += 1
        source = result.info.raw_cell or ""
        first = next((line.strip() for line in source.splitlines() if line.strip()), "")
        folders = held_output_folders()
        record = {"pid": os.getpid(), "cell": count, "seconds": round(seconds, 3),
                  "hash": source_hash(source), "first_line": first[:100],
                  "output_folders": [f.name for f in folders],
                  "output_bytes": sum(folder_bytes(f) for f in folders)}
        with open(log, "a", encoding="utf-8") as f:  # one short write per cell, in append mode
            f.write(json.dumps(record) + "\n")

    shell.events.register("pre_run_cell", pre_run_cell)
    shell.events.register("post_run_cell", post_run_cell)


def install_from_environment() -> bool:
    """Install the recorder in the running IPython kernel if ``DATA_HELPERS_CELL_TIMES`` is set.

    Returns whether it was installed: not without the variable, nor outside IPython.
    """
    path = os.environ.get(ENV)
    if not path:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    install(shell, path)
    return True


def read_log(path: str | os.PathLike) -> dict[int, list[dict]]:
    """The records of the log, grouped by kernel process, in the order they were written.

    A line that is not a whole record (a kernel stopped while writing it) is left out.
    """
    kernels: dict[int, list[dict]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            kernels.setdefault(int(record["pid"]), []).append(record)
        except (ValueError, KeyError, TypeError):
            continue
    return kernels


def slowest_cells(path: str | os.PathLike, chapters: dict[str, list[str]], n: int = 3) -> dict[str, list[dict]]:
    """The ``n`` slowest cells of each chapter that a kernel of the log ran, slowest first.

    Parameters
    ----------
    path
        The log written by the kernels.
    chapters
        Each chapter's name and the sources of its code cells. A kernel belongs to the chapter that holds
        most of the cells it ran; a kernel that ran none of them is left out.
    n
        How many cells to give for each chapter, at least 1.

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "cells.jsonl"
    >>> rows = [(1, "import numpy", 0.5), (1, "slow()", 9.0), (2, "other()", 1.0)]
    >>> _ = log.write_text("".join(json.dumps({"pid": p, "cell": 1, "seconds": s, "hash": source_hash(c),
    ...                                        "first_line": c}) + "\\n" for p, c, s in rows))
    >>> found = slowest_cells(log, {"a": ["import numpy", "slow()"], "b": ["other()"]}, n=1)
    >>> [(name, [c["first_line"] for c in cells]) for name, cells in found.items()]
    [('a', ['slow()']), ('b', ['other()'])]
    """
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n is how many cells to give for each chapter and must be a positive integer, got {n!r}.")
    hashes = {name: {source_hash(s) for s in sources} for name, sources in chapters.items()}
    found: dict[str, list[dict]] = {}
    for records in read_log(path).values():
        ran = [r.get("hash") for r in records]
        name, hits = max(((name, sum(h in own for h in ran)) for name, own in hashes.items()),
                         key=lambda pair: pair[1], default=(None, 0))
        if hits == 0:
            continue
        found[name] = sorted(records, key=lambda r: -float(r.get("seconds", 0)))[:n]
    return found


def peak_output_bytes(path: str | os.PathLike, chapters: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """Each chapter's output folder at its largest, and as the chapter left it, from the log.

    Parameters
    ----------
    path
        The log written by the kernels.
    chapters
        Each chapter's name and the sources of its code cells; a kernel belongs to the chapter that holds most
        of the cells it ran, as in :func:`slowest_cells`. A kernel that ran none of them is left out, and so
        are records without a measurement.

    Returns
    -------
    dict
        For each chapter, ``{"peak": bytes, "left": bytes}``: the largest size after any cell, and the size
        after its last cell.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "cells.jsonl"
    >>> rows = [("write()", 3_000), ("clean()", 500)]
    >>> _ = log.write_text("".join(json.dumps({"pid": 1, "cell": i, "seconds": 0.1, "hash": source_hash(c),
    ...                                        "first_line": c, "output_bytes": b}) + "\\n"
    ...                            for i, (c, b) in enumerate(rows, 1)))
    >>> peak_output_bytes(log, {"a": ["write()", "clean()"]})
    {'a': {'peak': 3000, 'left': 500}}
    """
    hashes = {name: {source_hash(s) for s in sources} for name, sources in chapters.items()}
    found: dict[str, dict[str, int]] = {}
    for records in read_log(path).values():
        ran = [r.get("hash") for r in records]
        name, hits = max(((name, sum(h in own for h in ran)) for name, own in hashes.items()),
                         key=lambda pair: pair[1], default=(None, 0))
        sizes = [int(r["output_bytes"]) for r in records if isinstance(r.get("output_bytes"), int)]
        if hits == 0 or not sizes:
            continue
        found[name] = {"peak": max(sizes), "left": sizes[-1]}
    return found
