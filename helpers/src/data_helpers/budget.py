"""Measure a chapter's own footprint: peak memory and elapsed time, workers included.

Every chapter ends with a hidden cell that checks its peak memory against the
book's budget (2 GiB, the size of a free Binder session), so a chapter that
outgrows it fails the build. Time is reported, never asserted: these machines
are shared and noisy.

A chapter that starts worker processes (a ``dask.distributed`` cluster) must
count them too: the operating system's peak of one process (``ru_maxrss``) does
not see them, and the peak of exited children (``RUSAGE_CHILDREN``) is the
largest single child, not the sum of those alive together. So
:class:`MemorySampler` samples the summed resident memory (RSS) of this process
and all its descendants in a background thread, and :func:`watch_process_tree`
keeps one running for the whole chapter, which :func:`check_memory_budget`
then includes. The sum of RSS counts pages that processes share (the libraries
each worker loads) once per process: it errs on the high side, never the low.

Disk space is measured too: :func:`folder_bytes` gives what a chapter's output
folder takes, which the build logs after each cell (``data_helpers.celltimes``),
and :data:`CHAPTER_DISK_GB` and :data:`FREE_DISK_GB` are the figures that the
pages for readers state.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from data_helpers.errors import BookError

__all__ = [
    "BINDER_MEMORY_GIB",
    "CHAPTER_DISK_GB",
    "FREE_DISK_GB",
    "MemoryBudgetError",
    "MemorySampler",
    "SubprocessMeasurement",
    "check_memory_budget",
    "elapsed_seconds",
    "folder_bytes",
    "measure_in_subprocess",
    "peak_memory_bytes",
    "process_tree_memory_bytes",
    "watch_process_tree",
]

#: Memory of a free Binder session: the budget of every chapter.
BINDER_MEMORY_GIB = 2.0

#: The most disk space, in GB (10⁹ bytes), that one chapter's output folder ``data/<chapter>/`` holds at once:
#: the figure that the README, the home page, the workshop page and the converting chapter state. A test
#: checks it against the build's measurement (``output_bytes`` in ``_build/cell-times.jsonl``).
CHAPTER_DISK_GB = 4.5

#: The free disk space, in GB, that the book needs: the environment in ``.venv/`` and every chapter's folder at
#: its largest, rounded up (so it holds even if each chapter keeps all it writes until it runs again).
FREE_DISK_GB = 9

#: Seconds between two samples of the process tree.
DEFAULT_INTERVAL = 0.02


class MemoryBudgetError(BookError, RuntimeError):
    """The process used more memory than the chapter's budget."""


def folder_bytes(folder: str | os.PathLike) -> int:
    """The disk space that the files under ``folder`` take, in bytes; 0 if it does not exist.

    Allocated blocks are counted where the system reports them (a file shorter than a block takes a block),
    the length of each file elsewhere (Windows). Links are not followed, so nothing outside ``folder`` is
    counted; a file removed while the folder is walked is skipped.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.bin").write_bytes(bytes(100_000))
    >>> folder_bytes(folder) >= 100_000
    True
    >>> folder_bytes(folder / "missing")
    0
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder_bytes measures a folder given by its path (a str or pathlib.Path), "
                        f"got {type(folder).__name__}: pass the folder's path, such as output_dir('converting').")
    total = 0
    stack = [os.fspath(folder)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            blocks = getattr(st, "st_blocks", None)
            total += blocks * 512 if blocks is not None else st.st_size
    return total


def _linux_high_water_mark() -> int | None:
    """VmHWM from /proc/self/status, in bytes: the peak RSS of this process's own memory map."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_memory_bytes() -> int:
    """Peak resident memory (RSS) of this process so far, in bytes (not its children).

    On Linux this is the high-water mark of the process's own memory (``VmHWM``).
    ``ru_maxrss`` is not used there: a process started from a big one (``fork``
    then ``exec``, as ``subprocess`` does) inherits its parent's peak in
    ``ru_maxrss``, so a small child started from a large notebook kernel would
    report the kernel's peak as its own.

    Examples
    --------
    >>> from data_helpers.budget import peak_memory_bytes
    >>> peak_memory_bytes() > 0
    True
    """
    if sys.platform.startswith("linux"):
        peak = _linux_high_water_mark()
        if peak is not None:
            return peak
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return int(psutil.Process().memory_info().peak_wset)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kibibytes, macOS bytes.
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def process_tree_memory_bytes(children: bool = True) -> int:
    """Resident memory (RSS) of this process now, plus that of all its descendants, in bytes.

    Parameters
    ----------
    children
        Include child processes, their children and so on (default). ``False``
        gives this process alone.

    Returns
    -------
    int
        The sum of the RSS of the processes alive at this moment. Processes that
        exit while they are being read are left out.

    Examples
    --------
    >>> from data_helpers.budget import process_tree_memory_bytes
    >>> process_tree_memory_bytes() >= process_tree_memory_bytes(children=False) > 0
    True
    """
    own, others = _tree_rss(children)
    return own + others


def _tree_rss(children: bool) -> tuple[int, int]:
    """(RSS of this process, summed RSS of its descendants alive now)."""
    import psutil

    me = psutil.Process()
    own = int(me.memory_info().rss)
    others = 0
    if children:
        try:
            descendants = me.children(recursive=True)
        except psutil.Error:
            descendants = []
        for child in descendants:
            try:
                others += child.memory_info().rss
            except psutil.Error:  # it exited, or is a zombie: it holds no memory now
                pass
    return own, int(others)


class MemorySampler:
    """Sample the memory of this process (and its children) in a background thread; keep the peak.

    Use it as a context manager around the code to measure, or call
    :meth:`start` and :meth:`stop`. The operating system keeps one peak per
    process, from its start, and none for a group of processes; this sampler
    measures any stretch of time, and the sum over processes alive together,
    such as a notebook kernel and the workers of its dask cluster.

    Parameters
    ----------
    children
        Include all descendant processes (default), or only this one.
    interval
        Seconds between samples (default 0.02). A spike shorter than that can
        be missed; for this process alone, :attr:`peak_bytes` also takes the
        operating system's peak when it was set during the measurement.

    Attributes
    ----------
    baseline_bytes
        Memory at the start.
    peak_bytes
        Highest memory seen so far (updated while it runs).
    n_samples
        Samples taken.

    Raises
    ------
    ValueError
        If ``interval`` is not a positive number of seconds.

    Examples
    --------
    >>> import numpy as np
    >>> from data_helpers.budget import MemorySampler
    >>> with MemorySampler() as sampler:
    ...     block = np.ones(50 * 2**20, dtype=np.uint8)  # 50 MiB, touched
    >>> sampler.peak_above_baseline_bytes >= 40 * 2**20
    True
    """

    def __init__(self, children: bool = True, interval: float = DEFAULT_INTERVAL):
        if not (isinstance(interval, (int, float)) and math.isfinite(interval) and interval > 0):
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}.")
        self.children = bool(children)
        self.interval = float(interval)
        self.baseline_bytes = 0
        self.peak_bytes = 0
        self.n_samples = 0
        self._os_peak_seen = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the sampling thread is running."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def peak_above_baseline_bytes(self) -> int:
        """``peak_bytes - baseline_bytes``: what the measured code added at its peak."""
        return max(0, self.peak_bytes - self.baseline_bytes)

    def sample(self) -> int:
        """Take one sample now, update the peak, and return the sample in bytes."""
        own, others = _tree_rss(self.children)
        now = own + others
        # This process's own peak may have been set between two samples: the operating system keeps
        # it, and once it rises above where it stood at the start, it was set during the measurement.
        # Added to the children's memory only when it rose since the last sample, i.e. while the children
        # held about what they hold now; an older peak of this process plus today's children would count
        # memory that was never in use at the same time.
        os_peak = peak_memory_bytes()
        if os_peak > self._os_peak_seen:
            now = max(now, os_peak + others)
            self._os_peak_seen = os_peak
        self.n_samples += 1
        self.peak_bytes = max(self.peak_bytes, now)
        return now

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception:  # a sample failed (process table changing): try again next time
                pass

    def start(self) -> MemorySampler:
        """Start sampling (a no-op if already running); return the sampler."""
        if self.running:
            return self
        self._os_peak_seen = peak_memory_bytes()
        self.baseline_bytes = process_tree_memory_bytes(self.children)
        self.peak_bytes = self.baseline_bytes
        self.n_samples = 1
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="data_helpers-memory-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> MemorySampler:
        """Stop sampling, after one last sample; return the sampler."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.sample()
        return self

    def __enter__(self) -> MemorySampler:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (f"MemorySampler({state}, peak {self.peak_bytes / 2**20:.0f} MiB, "
                f"baseline {self.baseline_bytes / 2**20:.0f} MiB, {self.n_samples} samples)")


_TREE_WATCH: MemorySampler | None = None


def watch_process_tree(interval: float = DEFAULT_INTERVAL) -> MemorySampler:
    """Start (once per process) sampling this process and its children, for :func:`check_memory_budget`.

    Call it at the start of a chapter that starts worker processes. Later calls
    return the same running sampler, so running the cell again does not start
    a second one.

    Parameters
    ----------
    interval
        Seconds between samples; used only by the call that starts it.

    Returns
    -------
    MemorySampler
        The process-wide sampler; its ``peak_bytes`` is the peak so far.

    Examples
    --------
    >>> from data_helpers.budget import watch_process_tree
    >>> watch_process_tree() is watch_process_tree()
    True
    """
    global _TREE_WATCH
    if _TREE_WATCH is None or not _TREE_WATCH.running:
        if _TREE_WATCH is None:
            # Stop sampling before the interpreter shuts down, so that a kernel's shutdown never waits on it.
            atexit.register(_stop_tree_watch)
        _TREE_WATCH = MemorySampler(children=True, interval=interval).start()
    return _TREE_WATCH


def _stop_tree_watch() -> None:
    if _TREE_WATCH is not None and _TREE_WATCH.running:
        _TREE_WATCH._stop.set()


def elapsed_seconds() -> float:
    """Seconds since this process (for a notebook: its kernel) started.

    Examples
    --------
    >>> from data_helpers.budget import elapsed_seconds
    >>> elapsed_seconds() >= 0
    True
    """
    import psutil

    return max(0.0, time.time() - psutil.Process().create_time())


def check_memory_budget(limit_gib: float = BINDER_MEMORY_GIB) -> dict[str, float]:
    """Raise if this process's peak memory, with its children's, exceeded ``limit_gib``; return the figures.

    The peak is the largest of: this process's own peak since it started (the
    operating system's figure), the memory of this process and its children
    now, and, if :func:`watch_process_tree` was started, the peak of the whole
    process tree it has sampled since then. A chapter that starts worker
    processes calls :func:`watch_process_tree` first, so that they count.

    Parameters
    ----------
    limit_gib
        The budget in GiB; 2 GiB by default (a free Binder session).

    Returns
    -------
    dict
        ``peak_memory_gib`` and ``elapsed_s``, for a chapter to glue or print.

    Raises
    ------
    MemoryBudgetError
        If the peak memory is above the budget. Make the chapter work lazily
        (dask, smaller chunks) rather than raising the limit.

    Examples
    --------
    >>> from data_helpers.budget import check_memory_budget
    >>> sorted(check_memory_budget())
    ['elapsed_s', 'peak_memory_gib']
    """
    if not limit_gib > 0:
        raise ValueError(f"limit_gib must be a positive number of GiB, got {limit_gib!r}.")
    candidates = [peak_memory_bytes(), process_tree_memory_bytes()]
    if _TREE_WATCH is not None:
        if _TREE_WATCH.running:
            _TREE_WATCH.sample()
        candidates.append(_TREE_WATCH.peak_bytes)
    peak = max(candidates) / 2**30
    figures = {"peak_memory_gib": peak, "elapsed_s": elapsed_seconds()}
    if peak > limit_gib:
        raise MemoryBudgetError(
            f"This chapter peaked at {peak:.2f} GiB of memory (its process and child processes), over its "
            f"budget of {limit_gib:g} GiB. Process the data lazily (dask) or in smaller pieces, or give "
            f"fewer or smaller workers."
        )
    return figures


# -- one piece of code, measured alone in a fresh Python process ----------------------------------------

#: The program a measuring child runs. It reads its instructions (JSON) from stdin, runs the setup,
#: then runs the code under a :class:`MemorySampler` and a watchdog, and writes its figures (JSON) to
#: the file it was given. The watchdog stops the child, and the processes it started, as soon as the
#: memory above the baseline passes the limit or the time passes the timeout, after writing the
#: figures so far: the child never takes the machine down with it.
_CHILD_PROGRAM = r"""
import json, os, sys, threading, time

import psutil

from data_helpers.budget import MemorySampler

spec = json.loads(sys.stdin.read())
sys.argv = ["-c", *spec["args"]]
namespace = {"__name__": "__main__"}
exec(compile(spec["setup"], "<setup>", "exec"), namespace)

process = psutil.Process()
lock = threading.Lock()
done = threading.Event()


def cpu_seconds():
    t = process.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def finish(stopped):
    with lock:
        if done.is_set():
            return False
        done.set()
        seconds = time.perf_counter() - start
        sampler.sample()
        figures = {"seconds": seconds, "cpu_seconds": cpu_seconds() - cpu_start,
                   "peak_above_baseline_bytes": sampler.peak_above_baseline_bytes,
                   "baseline_bytes": sampler.baseline_bytes, "stopped": stopped}
        with open(spec["result"], "w") as result:
            json.dump(figures, result)
        return True


def watchdog():
    limit, timeout = spec["memory_limit_bytes"], spec["timeout"]
    while not done.wait(spec["interval"]):
        stopped = None
        if limit is not None and sampler.peak_bytes - sampler.baseline_bytes > limit:
            stopped = "memory"
        elif timeout is not None and time.perf_counter() - start > timeout:
            stopped = "timeout"
        if stopped and finish(stopped):
            for child in process.children(recursive=True):
                try:
                    child.kill()
                except psutil.Error:
                    pass
            sys.stdout.flush()
            os._exit(0)


sampler = MemorySampler(children=True, interval=spec["interval"])
sampler.start()
cpu_start = cpu_seconds()
start = time.perf_counter()
threading.Thread(target=watchdog, daemon=True).start()
exec(compile(spec["code"], "<measured>", "exec"), namespace)
if finish(None):
    sampler.stop()
"""


@dataclass(frozen=True)
class SubprocessMeasurement:
    """What :func:`measure_in_subprocess` measured: time and peak memory of one piece of code.

    Attributes
    ----------
    seconds
        Wall-clock time of the code (not of starting Python or of the setup).
    cpu_seconds
        Processor time used meanwhile by the child and the processes it waited for,
        summed over threads: less sensitive to other work on the machine than
        ``seconds``.
    peak_above_baseline_bytes
        Peak resident memory (RSS) of the child and its descendants, above the
        baseline.
    baseline_bytes
        Resident memory of the child after the setup, when the code started.
    stopped
        ``None`` if the code ran to its end; ``"memory"`` if it was stopped for
        going over ``memory_limit_bytes``; ``"timeout"`` if it was stopped at
        ``timeout`` seconds. A stopped run's figures are those at the moment it
        was stopped.
    output
        What the code (and the setup) printed on standard output.
    """

    seconds: float
    cpu_seconds: float
    peak_above_baseline_bytes: int
    baseline_bytes: int
    stopped: str | None
    output: str

    @property
    def completed(self) -> bool:
        """Whether the code ran to its end (it was not stopped)."""
        return self.stopped is None

    @property
    def peak_above_baseline_mib(self) -> float:
        """``peak_above_baseline_bytes`` in MiB."""
        return self.peak_above_baseline_bytes / 2**20


def _check_limit(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number or None, got {value!r}.")
    return value


def measure_in_subprocess(
    code: str,
    *,
    setup: str = "",
    args: Sequence[str] = (),
    memory_limit_bytes: int | None = None,
    timeout: float | None = None,
    interval: float = 0.01,
    cwd: str | os.PathLike | None = None,
) -> SubprocessMeasurement:
    """Run Python code in a fresh process; return its wall time and peak memory above its baseline.

    A notebook kernel's own memory holds whatever earlier cells left behind, and
    its peak, once reached, never falls: a figure measured inside it mixes the
    code with its past. A fresh process measures the code alone. The child runs
    ``setup`` first (imports, opening a lazy array: not measured), then samples
    the summed resident memory of itself and its descendants (its worker
    threads' memory included; see :class:`MemorySampler`) while it runs ``code``.

    With ``memory_limit_bytes`` or ``timeout``, a watchdog thread in the child
    stops it (and every process it started) as soon as the memory above the
    baseline or the time passes the limit, and the figures up to that moment
    are returned with ``stopped`` set: a run that would exhaust the machine's
    memory ends early instead. Samples are ``interval`` apart, so memory can
    overshoot the limit by what the code allocates in one interval.

    Parameters
    ----------
    code
        Python source to measure. It runs as a script (``__name__ == "__main__"``)
        in the namespace the setup left, with ``sys.argv[1:]`` set to ``args``.
    setup
        Python source run before the measurement starts, in the same namespace.
    args
        Strings passed as ``sys.argv[1:]`` (for example paths to write to).
    memory_limit_bytes
        Stop the code when the memory above its baseline exceeds this; ``None``
        for no limit.
    timeout
        Stop the code after this many seconds; ``None`` for no limit.
    interval
        Seconds between memory samples (default 0.01).
    cwd
        Working folder of the child (default: this process's).

    Returns
    -------
    SubprocessMeasurement
        Seconds, processor seconds, peak memory above the baseline, the baseline,
        whether it was stopped, and what the code printed.

    Raises
    ------
    ValueError
        If ``code`` is not a string, or a limit or the interval is not a positive number.
    RuntimeError
        If the setup or the code raised an exception in the child; the message ends
        with the child's traceback.

    Examples
    --------
    >>> from data_helpers.budget import measure_in_subprocess
    >>> run = measure_in_subprocess(
    ...     "block = np.ones(100 * 2**20, dtype=np.uint8); print(block.sum())",
    ...     setup="import numpy as np",
    ... )
    >>> run.completed, run.output.strip(), run.peak_above_baseline_bytes >= 90 * 2**20
    (True, '104857600', True)
    >>> capped = measure_in_subprocess("import time; time.sleep(60)", timeout=0.5)
    >>> capped.stopped, capped.seconds < 30
    ('timeout', True)
    """
    if not isinstance(code, str) or not isinstance(setup, str):
        raise ValueError("code and setup must be Python source as strings; to measure a function, write "
                         "the code that imports and calls it.")
    memory_limit_bytes = _check_limit("memory_limit_bytes", memory_limit_bytes)
    timeout = _check_limit("timeout", timeout)
    if _check_limit("interval", interval) is None:
        raise ValueError("interval must be a positive number of seconds, got None.")
    if isinstance(args, str) or not all(isinstance(a, (str, os.PathLike)) for a in args):
        raise ValueError(f"args must be a sequence of strings (or paths), got {args!r}.")
    handle, result_path = tempfile.mkstemp(prefix="data_helpers-measure-", suffix=".json")
    os.close(handle)
    spec = {"setup": setup, "code": code, "args": [os.fspath(a) for a in args], "result": result_path,
            "memory_limit_bytes": memory_limit_bytes, "timeout": timeout, "interval": float(interval)}
    # A last resort if the setup hangs or the child cannot stop itself: the child's own watchdog
    # stops the code at `timeout`; this allows the setup and the interpreter's start some minutes.
    backstop = None if timeout is None else timeout + 300
    try:
        try:
            child = subprocess.run([sys.executable, "-c", _CHILD_PROGRAM], input=json.dumps(spec),
                                   capture_output=True, text=True, cwd=cwd, timeout=backstop)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(
                f"The measuring process did not stop within {backstop:g} s (its setup included) and was "
                f"killed. Make the setup shorter, or the timeout shorter."
            ) from exc
        with open(result_path) as result:
            text = result.read()
        if child.returncode != 0 or not text:
            tail = "\n".join(child.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"The measured code failed in its child process (exit status "
                               f"{child.returncode}). Its error:\n{tail}")
        figures = json.loads(text)
    finally:
        os.unlink(result_path)
    return SubprocessMeasurement(
        seconds=float(figures["seconds"]),
        cpu_seconds=float(figures["cpu_seconds"]),
        peak_above_baseline_bytes=int(figures["peak_above_baseline_bytes"]),
        baseline_bytes=int(figures["baseline_bytes"]),
        stopped=figures["stopped"],
        output=child.stdout,
    )
