#!/usr/bin/env python3
"""Throughput and peak memory of converting a TIFF stack to OME-Zarr, against a raw baseline, side by side.

For each size (GiB of uint16), a folder of 2D TIFF planes is first written, untimed,
from a smooth synthetic volume (``data_helpers.synthetic_volume``): one file per z,
``--plane`` x ``--plane`` voxels each (default 2048, 8 MiB a plane). Then each method
runs in its own fresh Python process, one after the other, on the same files:

- ``raw``: the baseline. Reads the planes with tifffile, as many as one chunk is deep
  (128), and writes level 0 alone with zarr-python, with the same chunks and codec as
  ``write_ome_zarr`` (128³, blosc-zstd level 3 with shuffle). No pyramid, no metadata,
  no checks: the speed limit to compare with. Its memory is a slab of 128 planes.
- ``raw-sync`` (only with ``--methods``): the same raw write through zarr-python's synchronous
  codec pipeline, one chunk after the other in the calling thread, which ``write_ome_zarr``
  uses; zarr's default hands each chunk to a pool of cpu_count + 4 threads.
- ``convert``: ``data_helpers.tiff_to_ome_zarr`` with its defaults (a full pyramid,
  written through ``write_ome_zarr``, validated metadata), for voxels of ``--voxel-size``
  (default 1 x 0.5 x 0.5, z coarser than y and x, as from most microscopes).

The table also gives the pyramid's voxels against level 0's, and the ratio that would
follow if compressing voxels were the only cost (level-0 voxels over all voxels): with
a CPU-bound codec on every core, the conversion comes near that ceiling, and can pass it
only because the raw write leaves the cores idle while it reads each slab. When z is
coarser, the first levels halve only y and x, so level 1 holds a quarter of level 0, not
an eighth, and the ceiling drops from about 0.875 to about 0.78.

The clock stops after every written file is flushed to disk (fsync). The table also
gives the ratio round by round (each round runs raw, then convert, so a pair shares the
machine's load), and the same ratio with the clock stopped before the flush: how long the
flush takes depends on how much written data the page cache still held, which varies from
run to run and favours whichever method left less. Throughput is
MB (10^6 bytes) of input per second; memory is the peak RSS of the process minus its
RSS once imports are done (``ru_maxrss``, so no short peak is missed). The children are
started by fork + exec, never vfork: Linux carries the peak RSS of the process whose memory
an exec replaces into ``ru_maxrss``, and with vfork (what ``subprocess`` uses when it can)
that is the parent, whose peak (making the input) would be reported as the child's. Each
child checks that its ``ru_maxrss`` starts near its own RSS. Run on demand:

    .venv/bin/python benchmarks/convert_tiff.py              # 1 GiB
    .venv/bin/python benchmarks/convert_tiff.py 1 4 8        # the sizes of the issue
    .venv/bin/python benchmarks/convert_tiff.py 1 --repeats 3 --plane 1024
    .venv/bin/python benchmarks/convert_tiff.py 4 --voxel-size 0.5 0.5 0.5   # isotropic voxels
    .venv/bin/python benchmarks/convert_tiff.py 1 4 --compression zlib       # planes that must be decoded

The inputs and outputs go to a scratch folder (``--workdir``, default a new temporary
folder) that is deleted at the end; 8 GiB needs about 20 GB of free disk.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import check_own_maxrss, report, run_child

METHODS = ("raw", "raw-sync", "convert")
DEFAULT_METHODS = ("raw", "convert")


def child(method: str, source: Path, out: Path, voxel_size: tuple[float, ...]) -> None:
    """Run one method in this process and print a JSON line of figures."""
    import numpy as np
    import psutil
    import tifffile
    import zarr

    import data_helpers
    from data_helpers.omezarr import _ZARR_PIPELINE as SYNC_PIPELINE
    from data_helpers.omezarr import DEFAULT_CHUNK, DEFAULT_CLEVEL

    check_own_maxrss()
    files = sorted(source.glob("*.tif"))
    first = tifffile.imread(files[0])
    shape, dtype = (len(files), *first.shape), first.dtype
    nbytes = int(np.prod(shape)) * dtype.itemsize
    del first
    baseline = psutil.Process().memory_info().rss
    start = time.perf_counter()
    if method in ("raw", "raw-sync"):
        # raw-sync: the pipeline write_ome_zarr uses; its default of cpu_count threads per write call keeps every
        # core busy here, where one call writes at a time (write_ome_zarr runs one call per dask thread instead)
        sync = {"codec_pipeline.path": SYNC_PIPELINE["codec_pipeline.path"]} if method == "raw-sync" else {}
        with zarr.config.set(sync):
            arr = zarr.create_array(
                out, shape=shape, dtype=dtype, chunks=(DEFAULT_CHUNK,) * 3, fill_value=0,
                compressors=zarr.codecs.BloscCodec(cname="zstd", clevel=DEFAULT_CLEVEL, shuffle="shuffle"),
            )
            slab = np.empty((DEFAULT_CHUNK, *shape[1:]), dtype)
            for z0 in range(0, shape[0], DEFAULT_CHUNK):
                n = min(DEFAULT_CHUNK, shape[0] - z0)
                for i in range(n):
                    slab[i] = tifffile.imread(files[z0 + i])
                arr[z0:z0 + n] = slab[:n]
    elif method == "convert":
        data_helpers.tiff_to_ome_zarr(source, out, voxel_size=voxel_size, unit="micrometer", progress=False)
    else:
        raise SystemExit(f"unknown method {method!r}")
    report(out, start, nbytes, baseline)


def pyramid_voxels(shape: tuple[int, ...], voxel_size: tuple[float, ...]) -> float:
    """All the voxels of the pyramid that ``tiff_to_ome_zarr`` writes, over level 0's."""
    from data_helpers import plan_pyramid
    from data_helpers.omezarr import DEFAULT_CHUNK

    factors = plan_pyramid(shape, "zyx", voxel_size, (DEFAULT_CHUNK,) * 3)
    level0 = math.prod(shape)
    return sum(math.prod(n // f for n, f in zip(shape, fs)) for fs in factors) / level0


def make_stack(gib: float, plane: int, folder: Path, compression: str | None = None) -> Path:
    """Write ``gib`` GiB of uint16 planes, ``plane`` x ``plane`` each, into a new folder (untimed).

    With ``compression`` (a tifffile codec name such as ``zlib``), each plane is compressed, so it cannot be
    memory-mapped: the conversion then decodes whole planes and goes through ``write_ome_zarr``'s
    intermediate copy in thin chunks.
    """
    import numpy as np
    import tifffile

    from data_helpers import synthetic_volume

    n = max(2, round(gib * 2**30 / (plane * plane * 2)))
    path = folder / f"stack-{gib:g}GiB{'-' + compression if compression else ''}"
    if not path.exists():
        path.mkdir()
        volume = synthetic_volume((n, plane, plane), dtype="uint16", chunks=(8, plane, plane))
        width = len(str(n - 1))
        for z0 in range(0, n, 8):
            slab = np.asarray(volume[z0:z0 + 8])
            for i, p in enumerate(slab):
                tifffile.imwrite(path / f"z{z0 + i:0{width}d}.tif", p, compression=compression)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", type=float, nargs="*", default=[1.0], help="stack sizes in GiB (default 1)")
    parser.add_argument("--plane", type=int, default=2048, help="edge of a square plane (default 2048)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each method per size; the median is shown")
    parser.add_argument("--voxel-size", type=float, nargs=3, default=[1.0, 0.5, 0.5], metavar=("Z", "Y", "X"),
                        help="voxel size given to the conversion (default 1 0.5 0.5)")
    parser.add_argument("--compression", help="compress each plane with this tifffile codec (e.g. zlib); "
                        "default: uncompressed, as most microscopes write")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(DEFAULT_METHODS),
                        help="methods to run, in each round in this order (default: raw convert)")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a new temporary folder)")
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "SOURCE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    voxel_size = tuple(args.voxel_size)
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]), voxel_size)
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="convert-tiff-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for gib in args.sizes:
            stack = make_stack(gib, args.plane, work, args.compression)
            n = len(list(stack.glob("*.tif")))
            print(f"{gib:g} GiB: {n} planes of {args.plane} x {args.plane} uint16 in {stack}", flush=True)
            methods = [m for m in METHODS if m in args.methods or m == "raw"]  # raw: the baseline of the ratios
            figures: dict[str, list[dict]] = {m: [] for m in methods}
            for _ in range(args.repeats):
                for method in methods:  # side by side: raw, then the others, in each round
                    out = work / f"out-{method}.zarr"
                    shutil.rmtree(out, ignore_errors=True)
                    result = run_child(__file__, method, str(stack), str(out),  # fork, not vfork
                                       "--voxel-size", *map(str, voxel_size))
                    figures[method].append(result)
                    shutil.rmtree(out, ignore_errors=True)
                    print(f"  {method}: {result['nbytes'] / result['seconds'] / 1e6:.0f} MB/s, "
                          f"peak {result['peak_above_baseline'] / 2**20:.0f} MiB above baseline", flush=True)
            speed = {m: statistics.median(r["nbytes"] / r["seconds"] / 1e6 for r in figures[m]) for m in methods}
            voxels = pyramid_voxels((n, args.plane, args.plane), voxel_size)
            for m in methods:
                peak = max(r["peak_above_baseline"] for r in figures[m]) / 2**20
                paired = {key: paired_ratios(figures, key, m) for key in ("seconds", "seconds_before_fsync")}
                rows.append((f"{gib:g} GiB", m, speed[m], speed[m] / speed["raw"], peak, voxels,
                             None if m == "raw" else paired))
            if "raw-sync" in figures and "convert" in figures:
                print(f"  convert over raw-sync, round by round: "
                      f"{spread(paired_ratios(figures, 'seconds', 'convert', 'raw-sync'))}", flush=True)
            shutil.rmtree(stack)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    planes = f"planes compressed with {args.compression}" if args.compression else "uncompressed planes"
    print(f"voxel size {' x '.join(f'{v:g}' for v in voxel_size)}; {planes}; "
          f"median of {args.repeats} run(s) of each method")
    print("| stack (uint16) | method | MB/s of input | ratio to raw | round by round | without the fsync | "
          "peak RSS above baseline | voxels written, over level 0's | ratio if only compression counted |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for size, method, mbs, ratio, peak, voxels, paired in rows:
        raw = method == "raw"
        label = {"raw": "raw: read planes, write level 0 only",
                 "raw-sync": "raw, zarr's synchronous pipeline",
                 "convert": "`tiff_to_ome_zarr` (full pyramid)"}[method]
        written = voxels if method == "convert" else 1.0
        rounds = "" if raw else spread(paired["seconds"])
        unflushed = "" if raw else spread(paired["seconds_before_fsync"])
        print(f"| {size} | {label} | {mbs:.0f} | {ratio:.2f} | {rounds} | {unflushed} | {peak:.0f} MiB | "
              f"{written:.3f} | {1 / written:.2f} |")
    print("\nratio to raw: of the median speeds. Round by round: the conversion's speed over the raw write's in "
          "the same round (they run one after the other), median and range; without the fsync: the same, with "
          "the clock stopped before the files are flushed to disk.")


def paired_ratios(figures: dict[str, list[dict]], key: str, method: str = "convert",
                  baseline: str = "raw") -> list[float]:
    """``method``'s speed over ``baseline``'s, round by round, timed by ``key``."""
    return [base[key] / run[key] for base, run in zip(figures[baseline], figures[method])]


def spread(ratios: list[float]) -> str:
    """``median (min-max)`` of some ratios, or the one ratio."""
    if len(ratios) == 1:
        return f"{ratios[0]:.2f}"
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


if __name__ == "__main__":
    main()
