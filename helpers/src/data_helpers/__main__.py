"""Command line: ``python -m data_helpers {download,info,serve,validate,convert,export} ...``.

Examples::

    python -m data_helpers download                  # fetch and verify every sample dataset
    python -m data_helpers download --cache ./cache  # ... into a folder you choose
    python -m data_helpers info heart                # shape, voxel size, licence, citation
    python -m data_helpers serve FOLDER --port 8000  # serve FOLDER on http://127.0.0.1:8000
    python -m data_helpers validate IMAGE.ome.zarr   # errors and warnings; exit 0 ok, 1 errors, 2 unreadable
    python -m data_helpers convert planes/ scan.ome.zarr --voxel-size 2 0.65 0.65 --unit um
    python -m data_helpers convert plate.ome.tif well.ome.zarr --series 1  # one image of a multi-series file
    python -m data_helpers export scan.ome.zarr planes_out/ --region 0:10,:,100:200
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from data_helpers import datasets
from data_helpers.server import LocalServer


def _download(args: argparse.Namespace) -> int:
    if args.cache:
        os.environ[datasets.ENV_CACHE] = str(Path(args.cache).resolve())
    names = args.dataset or list(datasets.DATASETS)
    for name in names:
        datasets.dataset_info(name)  # unknown names fail before any download
    try:
        paths = datasets.download_all(names)
    except datasets.DataUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name}: verified {len(datasets.DATASETS[name].files)} files in {path}")
    print(f"To use this cache elsewhere: copy {datasets.cache_dir()} and set {datasets.ENV_CACHE} to it.")
    return 0


def _info(args: argparse.Namespace) -> int:
    for name in args.dataset or list(datasets.DATASETS):
        print(f"{name}: {datasets.dataset_info(name)}")
    print(f"cache folder: {datasets.cache_dir()}")
    print(f"source: {datasets.data_source()}")
    return 0


def _write_new_file(path: Path, text: str) -> os.stat_result:
    """Write ``text`` to ``path``, which must not exist; it appears whole. Return its identity."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        try:
            os.link(tmp, path)  # atomic, and never replaces an existing file
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system
            with open(path, "x") as f:
                f.write(text)
        return os.stat(path)
    finally:
        os.unlink(tmp)


def _serve(args: argparse.Namespace) -> int:
    url_file = Path(args.url_file) if args.url_file else None
    if url_file is not None and (url_file.exists() or url_file.is_symlink()):
        print(
            f"error: --url-file {url_file} already exists. This command never overwrites a "
            f"file it did not make: remove it, or choose another path.",
            file=sys.stderr,
        )
        return 2
    server = LocalServer(args.folder, host=args.host, port=args.port, list_directories=args.list_directories)
    try:
        server.start()
    except OSError as exc:
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return 2
    written: os.stat_result | None = None
    url_text = server.url + "\n"
    try:
        if url_file is not None:
            try:
                written = _write_new_file(url_file, url_text)
            except OSError as exc:
                print(f"error: cannot write --url-file {url_file}: {exc}", file=sys.stderr)
                return 2
        print(f"Serving {server.directory} at {server.url} (Ctrl+C to stop)", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    finally:
        server.stop()
        if url_file is not None and written is not None:
            try:  # remove the URL file only if it is still the one this command wrote
                now = os.stat(url_file, follow_symlinks=False)
                same = (now.st_dev, now.st_ino) == (written.st_dev, written.st_ino)
                if same and url_file.read_text() == url_text:
                    url_file.unlink()
            except OSError:
                pass
    return 0


def _validate(args: argparse.Namespace) -> int:
    from data_helpers.validation import validate_ome_zarr

    worst = 0
    for path in args.path:  # every path is checked, even after one fails
        try:
            report = validate_ome_zarr(path, check_chunks=not args.no_chunks, strict=args.strict)
        except (FileNotFoundError, OSError, ValueError) as exc:
            print(f"{path}: could not be checked: {exc}", file=sys.stderr)
            worst = 2
            continue
        except Exception as exc:  # a bug of the validator: still check the other paths, and say so
            print(f"{path}: could not be checked: the validator failed with {type(exc).__name__}: {exc} "
                  "(please report this with the metadata that caused it)", file=sys.stderr)
            worst = 2
            continue
        print(report)
        if not report.ok and worst < 2:
            worst = 1
    return worst


_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".nxs", ".nx5")


def _convert(args: argparse.Namespace) -> int:
    from data_helpers.convert import hdf5_to_ome_zarr, tiff_to_ome_zarr

    options = {"version": args.version, "progress": not args.no_progress, "overwrite": args.overwrite}
    if args.chunks is not None:
        if args.chunks <= 0:
            print(f"error: --chunks {args.chunks}: a chunk is a positive number of voxels per space axis, "
                  "e.g. --chunks 128 (or leave --chunks out for the default).", file=sys.stderr)
            return 2
        options["chunks"] = args.chunks
    size = tuple(args.voxel_size) if args.voxel_size else None
    try:
        if Path(args.source).suffix.lower() in _HDF5_SUFFIXES:
            if not args.dataset:
                print(f"error: {args.source} is an HDF5 file: name the dataset to convert with --dataset PATH",
                      file=sys.stderr)
                return 2
            if args.series is not None:
                print("error: --series is for multi-series TIFF files; an HDF5 file's dataset is chosen with "
                      "--dataset PATH.", file=sys.stderr)
                return 2
            image = hdf5_to_ome_zarr(args.source, args.dataset, args.target, voxel_size=size, unit=args.unit,
                                     **options)
        else:
            image = tiff_to_ome_zarr(args.source, args.target, voxel_size=size, unit=args.unit,
                                     series=args.series, **options)
    except (FileExistsError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(image)
    return 0


def _parse_region(text: str | None) -> tuple | None:
    """``"0:10,:,100:200"`` as voxel slices, or physical (start, stop) pairs of floats."""
    if not text:
        return None
    out = []
    for part in text.split(","):
        bounds = part.split(":")
        if len(bounds) != 2:
            raise ValueError(f"--region {text!r}: give one start:stop per axis, z,y,x, e.g. 0:10,:,100:200.")
        try:
            pair = tuple(float(b) if b.strip() else None for b in bounds)
        except ValueError:
            raise ValueError(f"--region {text!r}: {part!r} is not start:stop with numbers, e.g. 0:10,:,100:200.") from None
        if any(v is not None and not math.isfinite(v) for v in pair):
            raise ValueError(f"--region {text!r}: {part!r} is not finite; give bounds as numbers within the "
                             "image, or leave a bound empty for an open end (100:).")
        out.append(pair)
    return tuple(out)


def _export(args: argparse.Namespace) -> int:
    from data_helpers.convert import ome_zarr_to_tiff

    region = _parse_region(args.region)
    if region is not None and args.coordinates == "voxel":
        for lo, hi in region:
            if any(v is not None and v != int(v) for v in (lo, hi)):
                raise ValueError(f"--region {args.region!r}: voxel bounds are whole numbers "
                                 "(or pass --physical for coordinates in the image's unit).")
        region = tuple(slice(None if lo is None else int(lo), None if hi is None else int(hi)) for lo, hi in region)
    try:
        result = ome_zarr_to_tiff(args.path, args.target, level=args.level, region=region,
                                  coordinates=args.coordinates, multipage=args.multipage, overwrite=args.overwrite)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data_helpers", description="Companion tools of the textbook on enormous 3D images."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("download", help="download and verify sample datasets ahead of time")
    p.add_argument("dataset", nargs="*", help=f"datasets to fetch (default: all of {list(datasets.DATASETS)})")
    p.add_argument("--cache", help=f"cache folder to fill (default: ${datasets.ENV_CACHE} or the OS cache)")
    p.set_defaults(func=_download)

    p = sub.add_parser("info", help="describe sample datasets and where they come from")
    p.add_argument("dataset", nargs="*")
    p.set_defaults(func=_info)

    p = sub.add_parser("serve", help="serve a folder over HTTP on 127.0.0.1 (a data mirror)")
    p.add_argument("folder")
    p.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument(
        "--url-file",
        help="write the server's URL to this new file once it listens (an existing file is refused); "
        "the file is removed when the server stops",
    )
    p.add_argument(
        "--list-directories", action="store_true", help="answer folders with a listing (default: 403)"
    )
    p.set_defaults(func=_serve)

    p = sub.add_parser(
        "validate",
        help="check OME-Zarr data; exit status 0 no errors, 1 errors (or warnings with --strict), 2 could not check",
    )
    p.add_argument("path", nargs="+", help="OME-Zarr folders or http(s):// / s3:// URLs (images, plates, wells, ...)")
    p.add_argument("--no-chunks", action="store_true", help="skip counting the chunk files of each level")
    p.add_argument("--strict", action="store_true", help="warnings count too (exit status 1)")
    p.set_defaults(func=_validate)

    p = sub.add_parser("convert", help="convert a TIFF stack, a multi-page TIFF or an HDF5 dataset to OME-Zarr")
    p.add_argument("source", help="a folder of TIFF planes, a glob pattern (quoted), a TIFF file or an HDF5 file")
    p.add_argument("target", help="the OME-Zarr folder to create")
    p.add_argument("--voxel-size", nargs=3, type=float, metavar=("Z", "Y", "X"),
                   help="voxel size (default: from OME-TIFF or ImageJ metadata; required when there is none)")
    p.add_argument("--unit", help="unit of --voxel-size, e.g. um, nm, micrometer")
    p.add_argument("--version", choices=("0.4", "0.5", "0.6"), default="0.5", help="OME-Zarr version (default 0.5)")
    p.add_argument("--dataset", help="the dataset inside an HDF5 source, e.g. /entry/data/data")
    p.add_argument("--chunks", type=int, help="chunk size per space axis, a positive number (default 128)")
    p.add_argument("--series", type=int,
                   help="which series of a multi-series TIFF file (0, 1, ...); such a file is refused without it")
    p.add_argument("--overwrite", action="store_true", help="replace an image this package wrote at TARGET")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_convert)

    p = sub.add_parser("export", help="export an OME-Zarr level or region to TIFF planes or one BigTIFF")
    p.add_argument("path", help="the OME-Zarr image (z, y, x)")
    p.add_argument("target", help="a new folder of TIFF planes, or a new .tif file with --multipage")
    p.add_argument("--level", type=int, default=0, help="pyramid level (default 0, full resolution)")
    p.add_argument("--region", help="z0:z1,y0:y1,x0:x1 (an empty bound is open: 0:10,:,100:)")
    p.add_argument("--physical", dest="coordinates", action="store_const", const="physical", default="voxel",
                   help="--region is in the image's unit (translation included), not voxel indices")
    p.add_argument("--multipage", action="store_true", help="one multi-page BigTIFF instead of a folder of planes")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export (only the files it wrote)")
    p.set_defaults(func=_export)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
