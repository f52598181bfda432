"""The benchmark scripts run, and print what their tables promise (on tiny inputs: figures, not speed)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO, load_script


def _load(name: str):
    return load_script(f"benchmarks/{name}.py", f"{name}_under_test")


@pytest.mark.parametrize("voxel_size, expected", [
    # z twice as coarse: levels 1 and 2 halve only y and x first, 1 + 1/4 + 1/32 + 1/256 + ...
    ((1.0, 0.5, 0.5), 1 + 1 / 4 + 1 / 32 + 1 / 256),
    # isotropic: every level an eighth of the one above
    ((0.5, 0.5, 0.5), 1 + 1 / 8 + 1 / 64 + 1 / 512),
])
def test_the_pyramid_voxel_count_follows_the_plan(voxel_size, expected):
    got = _load("convert_tiff").pyramid_voxels((1024, 2048, 2048), voxel_size)
    assert got == pytest.approx(expected, rel=2e-3)


def test_the_conversion_benchmark_prints_its_table(tmp_path):
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "convert_tiff.py"), "0.00390625", "--plane", "256",
         "--voxel-size", "0.5", "0.5", "0.5", "--compression", "zlib", "--repeats", "2", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("| 0.00390625 GiB")]
    assert len(rows) == 2, out
    raw, convert = ([cell.strip() for cell in row.strip("|").split("|")] for row in rows)
    assert raw[3] == "1.00" and raw[4] == raw[5] == "" and raw[7] == "1.000"
    assert convert[7] == "1.125" and convert[8] == "0.89"  # 32 planes of 256 x 256: one halving, to one chunk
    for paired in convert[4:6]:  # two rounds: the median, then the range
        assert re.fullmatch(r"\d+\.\d\d \(\d+\.\d\d-\d+\.\d\d\)", paired), convert
    assert "voxel size 0.5 x 0.5 x 0.5; planes compressed with zlib" in out
    assert not list(tmp_path.glob("out-*")), "the outputs were left behind"


def test_paired_ratios_take_each_round_on_its_own():
    bench = _load("convert_tiff")
    figures = {"raw": [{"seconds": 10.0}, {"seconds": 20.0}, {"seconds": 12.0}],
               "convert": [{"seconds": 20.0}, {"seconds": 25.0}, {"seconds": 12.0}]}
    ratios = bench.paired_ratios(figures, "seconds")
    assert ratios == [0.5, 0.8, 1.0]  # the ratio of the median times, 12 / 20 = 0.60, mixes rounds
    assert bench.spread(ratios) == "0.80 (0.50-1.00)"
    assert bench.spread([0.756]) == "0.76"


def test_the_write_benchmark_makes_its_scratch_folder_and_leaves_it_empty(tmp_path):
    work = tmp_path / "not" / "yet"  # a --workdir that does not exist yet is made, not a traceback
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "ome_zarr_write.py"), "--sizes", "64", "--methods", "raw",
         "wrapper", "--repeats", "1", "--workdir", str(work)],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("| 64³")]
    assert [row.split("|")[2].strip() for row in rows] == ["raw", "wrapper"], out
    assert work.is_dir() and not list(work.iterdir()), "the run's own folder was left behind"
