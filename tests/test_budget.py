"""data_helpers.budget: peak memory and elapsed time of the process."""

from __future__ import annotations

import numpy as np
import pytest

from data_helpers.budget import MemoryBudgetError, check_memory_budget, elapsed_seconds, peak_memory_bytes


def test_peak_memory_grows_with_a_big_allocation():
    before = peak_memory_bytes()
    block = np.ones(200 * 2**20, dtype=np.uint8)  # 200 MiB, touched
    after = peak_memory_bytes()
    assert block.sum() == block.size
    assert after >= before
    assert after >= 200 * 2**20


def test_check_passes_within_budget():
    figures = check_memory_budget(64.0)
    assert 0 < figures["peak_memory_gib"] < 64
    assert figures["elapsed_s"] == pytest.approx(elapsed_seconds(), abs=60)


def test_check_raises_over_budget():
    with pytest.raises(MemoryBudgetError, match="over its budget"):
        check_memory_budget(1e-6)


@pytest.mark.parametrize("bad", [0, -1, float("nan")])
def test_limit_must_be_positive(bad):
    with pytest.raises(ValueError, match="positive"):
        check_memory_budget(bad)


# -- child processes: the workers of a cluster count too -----------------------------------------------
import subprocess
import sys
import time

from data_helpers import budget
from data_helpers.budget import MemorySampler, process_tree_memory_bytes, watch_process_tree

#: A child that touches N MiB, says so on stdout, then waits to be told to exit (its stdin closes).
CHILD = (
    "import sys, numpy as np\n"
    "block = np.ones(int(sys.argv[1]) * 2**20, dtype=np.uint8)\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
    "print(int(block.sum()))\n"
)


def _start_child(mib: int) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(mib)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


def _stop_child(child: subprocess.Popen, mib: int) -> None:
    out, _ = child.communicate("", timeout=60)
    assert int(out) == mib * 2**20


def test_tree_memory_counts_a_living_child():
    alone = process_tree_memory_bytes(children=False)
    child = _start_child(300)
    try:
        with_child = process_tree_memory_bytes()
        without = process_tree_memory_bytes(children=False)
    finally:
        _stop_child(child, 300)
    assert with_child - without >= 300 * 2**20
    assert without < alone + 100 * 2**20  # the child's memory is not this process's


def test_sampler_sees_a_child_that_allocates_and_exits():
    with MemorySampler(interval=0.01) as sampler:
        child = _start_child(300)
        time.sleep(0.2)  # several samples while it holds its memory
        _stop_child(child, 300)
    assert not sampler.running
    assert sampler.peak_above_baseline_bytes >= 300 * 2**20
    assert sampler.n_samples >= 5
    assert "peak" in repr(sampler)


def test_sampler_without_children_ignores_them():
    with MemorySampler(children=False, interval=0.01) as sampler:
        child = _start_child(300)
        time.sleep(0.2)
        _stop_child(child, 300)
    assert sampler.peak_above_baseline_bytes < 100 * 2**20


def test_sampler_sees_this_process_between_samples():
    # One sample a minute: the allocation comes and goes between the first sample and the last.
    with MemorySampler(children=False, interval=60) as sampler:
        block = np.ones(400 * 2**20, dtype=np.uint8)
        assert block.sum() == block.size
        del block
    assert sampler.n_samples == 2
    if budget.peak_memory_bytes() >= sampler.baseline_bytes + 400 * 2**20:
        assert sampler.peak_above_baseline_bytes >= 300 * 2**20


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "1"])
def test_sampler_interval_must_be_positive(bad):
    with pytest.raises(ValueError, match="interval"):
        MemorySampler(interval=bad)


def test_budget_check_counts_the_children_of_the_watch(monkeypatch):
    monkeypatch.setattr(budget, "_TREE_WATCH", None)
    watch = watch_process_tree(interval=0.01)
    try:
        assert watch_process_tree() is watch  # started once
        child = _start_child(300)
        time.sleep(0.2)
        _stop_child(child, 300)
        figures = check_memory_budget(64.0)
        assert figures["peak_memory_gib"] * 2**30 >= watch.baseline_bytes + 300 * 2**20
        # The same budget, checked on this process alone, would not have seen it.
        own_peak = budget.peak_memory_bytes()
        if own_peak < watch.baseline_bytes + 300 * 2**20:
            assert figures["peak_memory_gib"] * 2**30 > own_peak
        with pytest.raises(MemoryBudgetError, match="child processes"):
            check_memory_budget(watch.peak_bytes / 2**30 - 0.01)
    finally:
        watch.stop()


def test_a_child_reports_its_own_peak_not_its_parents():
    """After fork and exec, ru_maxrss carries the parent's peak over; the child's own peak does not."""
    block = np.ones(400 * 2**20, dtype=np.uint8)  # this process now holds 400 MiB more
    try:
        child = subprocess.run(
            [sys.executable, "-c", "from data_helpers.budget import peak_memory_bytes; print(peak_memory_bytes())"],
            capture_output=True, text=True, check=True,
        )
    finally:
        assert block.sum() == block.size
    assert int(child.stdout) < 300 * 2**20 < budget.peak_memory_bytes()


# -- measure_in_subprocess: one piece of code, alone in a fresh process ----------------------------------
from data_helpers.budget import SubprocessMeasurement, measure_in_subprocess


def test_measure_sees_what_the_code_allocates_not_the_setup():
    run = measure_in_subprocess(
        "block = np.ones(150 * 2**20, dtype=np.uint8); print(int(block.sum()), sys.argv[1:])",
        setup="import sys\nimport numpy as np\nbig_setup = np.ones(300 * 2**20, dtype=np.uint8)",
        args=["one", "two"],
    )
    assert isinstance(run, SubprocessMeasurement)
    assert run.completed and run.stopped is None
    assert run.output.strip() == f"{150 * 2**20} ['one', 'two']"
    # the code's 150 MiB count; the setup's 300 MiB are in the baseline, not the peak above it
    assert 140 * 2**20 <= run.peak_above_baseline_bytes < 280 * 2**20, run
    assert run.baseline_bytes >= 300 * 2**20
    assert run.peak_above_baseline_mib == run.peak_above_baseline_bytes / 2**20
    assert run.seconds >= 0 and run.cpu_seconds >= 0


def test_measure_counts_the_processor_time_of_the_code():
    busy = measure_in_subprocess("import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass")
    idle = measure_in_subprocess("import time; time.sleep(0.5)")
    assert busy.cpu_seconds >= 0.4 and busy.seconds >= 0.4
    assert idle.seconds >= 0.45 and idle.cpu_seconds < 0.3


def test_measure_stops_code_that_passes_the_memory_limit():
    # 20 MiB more every 10 ms, for up to 4 GiB: the limit of 100 MiB stops it long before
    code = ("import time\nblocks = []\n"
            "for _ in range(200):\n    blocks.append(np.ones(20 * 2**20, np.uint8)); time.sleep(0.01)\n"
            "print('not stopped')")
    run = measure_in_subprocess(code, setup="import numpy as np", memory_limit_bytes=100 * 2**20,
                                interval=0.005)
    assert run.stopped == "memory" and not run.completed
    assert "not stopped" not in run.output
    assert 100 * 2**20 < run.peak_above_baseline_bytes < 1024 * 2**20, run


def test_measure_stops_code_at_the_timeout():
    run = measure_in_subprocess("import time; time.sleep(60); print('not stopped')", timeout=0.5)
    assert run.stopped == "timeout"
    assert 0.5 <= run.seconds < 30
    assert "not stopped" not in run.output


def test_measure_stops_the_processes_the_code_started():
    import psutil

    code = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
            "print(child.pid, flush=True)\ntime.sleep(60)")
    run = measure_in_subprocess(code, timeout=1.0)
    assert run.stopped == "timeout"
    pid = int(run.output.split()[0])
    deadline = time.time() + 10
    while psutil.pid_exists(pid) and time.time() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    assert not alive


def test_measure_reports_the_error_of_failing_code():
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        measure_in_subprocess("1 / 0")
    with pytest.raises(RuntimeError, match="ModuleNotFoundError"):
        measure_in_subprocess("pass", setup="import no_such_module_here")


@pytest.mark.parametrize("kwargs", [
    {"memory_limit_bytes": 0}, {"memory_limit_bytes": -5}, {"timeout": float("nan")}, {"timeout": True},
    {"interval": 0}, {"interval": None}, {"args": "a string"}, {"args": [1, 2]},
])
def test_measure_rejects_bad_limits(kwargs):
    with pytest.raises(ValueError):
        measure_in_subprocess("pass", **kwargs)


def test_measure_wants_source_code():
    with pytest.raises(ValueError, match="source"):
        measure_in_subprocess(print)


def test_an_earlier_peak_of_this_process_is_not_added_to_later_children():
    # This process spikes to +200 MiB and frees it; later a child holds 150 MiB. Never were both in use
    # at once, so the peak is about 200 MiB, not 350. Run in a fresh process so its own peak is known.
    code = (
        "import subprocess, sys, time\nimport numpy as np\n"
        "from data_helpers.budget import MemorySampler\n"
        f"CHILD = {CHILD!r}\n"
        "with MemorySampler(interval=0.05) as sampler:\n"
        "    block = np.ones(200 * 2**20, dtype=np.uint8)\n"
        "    assert block.sum() == block.size\n"
        "    del block\n"
        "    time.sleep(0.3)\n"
        "    child = subprocess.Popen([sys.executable, '-c', CHILD, '150'], stdin=subprocess.PIPE,\n"
        "                             stdout=subprocess.PIPE, text=True)\n"
        "    assert child.stdout.readline().strip() == 'ready'\n"
        "    time.sleep(0.3)\n"
        "    child.communicate('', timeout=60)\n"
        "print(sampler.peak_above_baseline_bytes // 2**20)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    peak_mib = int(out.stdout.split()[-1])
    assert 190 <= peak_mib < 300, peak_mib


def test_folder_bytes_counts_nested_files_and_not_what_a_link_points_to(tmp_path):
    from data_helpers.budget import folder_bytes

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "large.bin").write_bytes(bytes(5_000_000))
    folder = tmp_path / "chapter"
    (folder / "a" / "b").mkdir(parents=True)
    (folder / "a" / "b" / "x.bin").write_bytes(bytes(2_000_000))
    (folder / "y.bin").write_bytes(bytes(1_000_000))
    (folder / "link").symlink_to(outside, target_is_directory=True)
    size = folder_bytes(folder)
    assert 3_000_000 <= size < 4_000_000
    assert folder_bytes(tmp_path / "missing") == 0


def test_folder_bytes_wants_a_path():
    from data_helpers.budget import folder_bytes

    with pytest.raises(TypeError, match="pass the folder's path"):
        folder_bytes(None)
