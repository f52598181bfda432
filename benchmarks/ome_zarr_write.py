#!/usr/bin/env python3
"""Throughput and peak memory of writing an OME-Zarr pyramid: data_helpers against ngff-zarr and a raw write.

For each size, a smooth synthetic uint16 volume (``data_helpers.synthetic_volume``)
is first written, untimed, as an uncompressed Zarr array: the input, as if it
came from a scanner or a converted TIFF stack. Then each method runs in its
own fresh Python process, reading that input:

- ``raw``: zarr-python writes level 0 alone, with the same chunks and codec as
  the wrapper (blosc-zstd with shuffle). No pyramid: the speed limit to compare with.
- ``wrapper``: ``data_helpers.write_ome_zarr`` with its defaults (a full pyramid).
- ``ngff-zarr``: ``to_ngff_zarr(to_multiscales(to_ngff_image(...)))`` with ngff-zarr's defaults.

The clock stops after every written file is flushed to disk (fsync). Throughput
is bytes of input per second; memory is the peak RSS of the process minus its
RSS once imports are done and the input is open. Run it on demand, not in the tests:

    .venv/bin/python benchmarks/ome_zarr_write.py                      # 512, 1024, 2048
    .venv/bin/python benchmarks/ome_zarr_write.py --sizes 512 --repeats 5
    .venv/bin/python benchmarks/ome_zarr_write.py --sizes 1024 --planes  # input chunked like a TIFF stack

The outputs go to a scratch folder (``--workdir``, default a new temporary
folder) that is deleted at the end. 2048³ needs about 17 GB of input on disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import report, run_child

METHODS = ("raw", "wrapper", "ngff-zarr")


def child(method: str, source: Path, out: Path) -> None:
    """Run one method in this process and print a JSON line of figures."""
    import dask.array as da
    import psutil
    import zarr

    import data_helpers
    from data_helpers.omezarr import DEFAULT_CHUNK, DEFAULT_CLEVEL

    src = zarr.open_array(source, mode="r")
    nbytes = src.nbytes
    baseline = psutil.Process().memory_info().rss
    start = time.perf_counter()
    if method == "raw":
        arr = zarr.create_array(
            out, shape=src.shape, dtype=src.dtype, chunks=(DEFAULT_CHUNK,) * 3, fill_value=0,
            compressors=zarr.codecs.BloscCodec(cname="zstd", clevel=DEFAULT_CLEVEL, shuffle="shuffle"),
        )
        # rechunk first: writing plane-shaped input straight into 128³ chunks would rewrite each chunk once per plane
        da.store(da.from_zarr(src).rechunk(arr.chunks), arr, lock=False)
    elif method == "wrapper":
        data_helpers.write_ome_zarr(src, out, voxel_size=1.0, progress=False)
    elif method == "ngff-zarr":
        import ngff_zarr

        image = ngff_zarr.to_ngff_image(da.from_zarr(src), dims=("z", "y", "x"))
        ngff_zarr.to_ngff_zarr(out, ngff_zarr.to_multiscales(image), version="0.5")
    else:
        raise SystemExit(f"unknown method {method!r}")
    report(out, start, nbytes, baseline)


def make_input(size: int, folder: Path, planes: bool = False) -> Path:
    import dask.array as da
    import zarr

    from data_helpers import synthetic_volume

    path = folder / f"input-{size}{'-planes' if planes else ''}.zarr"
    if not path.exists():
        vol = synthetic_volume((size,) * 3, dtype="uint16", chunks=128)
        chunks = (1, size, size) if planes else (128,) * 3
        arr = zarr.create_array(path, shape=vol.shape, dtype=vol.dtype, chunks=chunks, compressors=None)
        da.store(vol.rechunk((128, size, size)) if planes else vol, arr, lock=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048], help="edge lengths of the cubes")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each method per size; the median is shown")
    parser.add_argument("--ngff-zarr-max", type=int, default=1024,
                        help="largest size for ngff-zarr's defaults, whose memory grows with the input (default 1024)")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a new temporary folder)")
    parser.add_argument("--planes", action="store_true",
                        help="input chunked in whole z-planes (1 x N x N), like a TIFF stack, instead of 128³")
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "SOURCE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)  # the run's own folder inside it is removed at the end
    work = Path(tempfile.mkdtemp(prefix="ome-zarr-bench-", dir=args.workdir))
    print(f"{os.cpu_count()} CPUs; scratch folder {work}; {args.repeats} runs each, median shown", flush=True)
    rows = []
    try:
        for size in args.sizes:
            t0 = time.perf_counter()
            source = make_input(size, work, args.planes)
            layout = "1 x N x N planes" if args.planes else "128³ chunks"
            print(f"\n{size}³ uint16 ({size**3 * 2 / 1e9:.2f} GB, {layout}) input ready in {time.perf_counter() - t0:.0f} s",
                  flush=True)
            results = {}
            for method in args.methods:
                if method == "ngff-zarr" and size > args.ngff_zarr_max:
                    print(f"  {method:10s} not run above {args.ngff_zarr_max}³ (its peak memory grows with the input)")
                    continue
                runs = []
                for _ in range(args.repeats):
                    out = work / f"out-{method}-{size}"
                    runs.append(run_child(__file__, method, str(source), str(out)))  # fork, not vfork
                    shutil.rmtree(out)
                secs = statistics.median(r["seconds"] for r in runs)
                peak = statistics.median(r["peak_above_baseline"] for r in runs)
                results[method] = dict(mbps=runs[0]["nbytes"] / secs / 1e6, seconds=secs, peak_mib=peak / 2**20,
                                       stored_mb=runs[0]["stored"] / 1e6, all_seconds=[round(r["seconds"], 1) for r in runs])
                r = results[method]
                print(f"  {method:10s} {r['mbps']:7.1f} MB/s  {r['seconds']:7.1f} s (runs {r['all_seconds']})"
                      f"  peak +{r['peak_mib']:6.0f} MiB  {r['stored_mb']:8.1f} MB stored", flush=True)
            raw = results.get("raw")
            for method, r in results.items():
                rows.append((size, method, r, r["mbps"] / raw["mbps"] if raw else float("nan")))
            shutil.rmtree(source)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n| size | method | MB/s of input | ratio to raw | peak RSS above baseline | stored |")
    print("|---|---|---|---|---|---|")
    for size, method, r, ratio in rows:
        print(f"| {size}³ | {method} | {r['mbps']:.0f} | {ratio:.2f} | {r['peak_mib']:.0f} MiB | {r['stored_mb']:.0f} MB |")


if __name__ == "__main__":
    main()
