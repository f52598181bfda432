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
