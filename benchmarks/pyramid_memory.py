#!/usr/bin/env python3
"""Peak memory and time of two pyramid writers as the volume grows: write_ome_zarr and ngff-zarr's defaults.

Each writer runs on a lazily generated uint16 volume (``synthetic_volume``, no noise) of depth ``Z`` x 1024 x
1024 voxels, in a fresh process with two dask threads, measured by ``data_helpers.budget.measure_in_subprocess``
(wall time, processor time, peak resident memory above the process's memory at the start). A run is stopped
at ``--limit-mib`` above its start or after ``--timeout`` seconds, so it cannot exhaust the machine; a
stopped run is reported as such. The outputs go to a temporary folder, removed at the end.

Usage::

    .venv/bin/python benchmarks/pyramid_memory.py                  # depths 128, 256, 512 (256 MiB to 1 GiB)
    .venv/bin/python benchmarks/pyramid_memory.py --depths 512 1024 --writers write_ome_zarr --threads 4

It prints figures; it asserts nothing (the machine may be shared and noisy).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from data_helpers.budget import measure_in_subprocess

SETUP = """
import sys
import dask
import ngff_zarr
from data_helpers import synthetic_volume, write_ome_zarr

dask.config.set(scheduler="threads", num_workers=int(sys.argv[3]))
volume = synthetic_volume((int(sys.argv[2]), 1024, 1024), dtype="uint16", chunks=128, noise=0)
voxel = {"z": 2.0, "y": 0.5, "x": 0.5}
units = {axis: "micrometer" for axis in "zyx"}
ngff_zarr.config.cache_store = sys.argv[1] + "-cache"
"""

WRITERS = {
    "write_ome_zarr": "write_ome_zarr(volume, sys.argv[1], voxel_size=(2.0, 0.5, 0.5), unit='um', progress=False)",
    "ngff-zarr": (
        "image = ngff_zarr.to_ngff_image(volume, dims=list('zyx'), scale=voxel, axes_units=units)\n"
        "ngff_zarr.to_ngff_zarr(sys.argv[1], ngff_zarr.to_multiscales(image), version='0.5')\n"
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[128, 256, 512], help="z sizes (x 1024 x 1024)")
    parser.add_argument("--writers", nargs="+", choices=sorted(WRITERS), default=sorted(WRITERS))
    parser.add_argument("--threads", type=int, default=2, help="dask threads (default 2)")
    parser.add_argument("--limit-mib", type=float, default=2048, help="stop a run above this (default 2048)")
    parser.add_argument("--timeout", type=float, default=600, help="stop a run after this (default 600 s)")
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="pyramid-memory-"))
    try:
        print(f"{'writer':15} {'volume':>9} {'wall s':>7} {'cpu s':>7} {'peak MiB':>9}  status")
        for depth in options.depths:
            for name in options.writers:  # interleaved: the writers share the load of each size alike
                target = scratch / f"{name}-{depth}.ome.zarr"
                run = measure_in_subprocess(
                    WRITERS[name], setup=SETUP, args=[str(target), str(depth), str(options.threads)],
                    memory_limit_bytes=options.limit_mib * 2**20, timeout=options.timeout,
                )
                status = "finished" if run.completed else f"stopped ({run.stopped})"
                print(f"{name:15} {depth * 2 * 2**20 / 2**30:7.2f} GiB {run.seconds:7.1f} {run.cpu_seconds:7.1f} "
                      f"{run.peak_above_baseline_mib:9.0f}  {status}", flush=True)
                shutil.rmtree(target, ignore_errors=True)
                shutil.rmtree(f"{target}-cache", ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
