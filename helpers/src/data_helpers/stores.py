"""Look at what a Zarr or OME-Zarr store holds on disk."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["list_files"]


def list_files(folder: str | os.PathLike, show: bool = True) -> list[Path]:
    """List every file under a folder, with its size; return their paths.

    Use it to see what a Zarr store really is on disk: metadata files and one
    file per chunk (or per shard).

    Parameters
    ----------
    folder
        The folder to list, e.g. a Zarr store. It must exist.
    show
        Print one line per file (size in bytes, then the path relative to
        ``folder``) and a total. ``False`` only returns the paths.

    Returns
    -------
    list of pathlib.Path
        The files, sorted by their path relative to ``folder``.

    Raises
    ------
    FileNotFoundError
        If ``folder`` does not exist or is not a folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from data_helpers import list_files
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (tmp / "zarr.json").write_text("{}")
    >>> [p.name for p in list_files(tmp)]  # doctest: +NORMALIZE_WHITESPACE
            2 bytes  zarr.json
            2 bytes  in 1 file
    ['zarr.json']
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{str(root)!r} is not an existing folder; give the path of a store or folder.")
    files = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix())
    if show:
        total = 0
        for path in files:
            size = path.stat().st_size
            total += size
            print(f"{size:>12,} bytes  {path.relative_to(root).as_posix()}")
        print(f"{total:>12,} bytes  in {len(files)} file{'s' if len(files) != 1 else ''}")
    return files
