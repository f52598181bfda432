"""Command line: ``python -m data_helpers {download,info,serve,validate} ...``.

Examples::

    python -m data_helpers download                  # fetch and verify every sample dataset
    python -m data_helpers download --cache ./cache  # ... into a folder you choose
    python -m data_helpers info heart                # shape, voxel size, licence, citation
    python -m data_helpers serve FOLDER --port 8000  # serve FOLDER on http://127.0.0.1:8000
    python -m data_helpers validate IMAGE.ome.zarr   # errors and warnings; exit 0 ok, 1 errors, 2 unreadable
"""

from __future__ import annotations

import argparse
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

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
