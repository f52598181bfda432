"""Look at what a Zarr or OME-Zarr store holds on disk."""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["list_files", "show_tree"]


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


def show_tree(folder: str | os.PathLike, max_entries: int = 6, max_depth: int | None = None) -> str:
    """Print a folder as a tree with sizes, folding long runs of chunk files; return the text.

    A store with thousands of chunk files is unreadable as a flat list. This
    shows each folder's metadata files, the first few other entries, and a
    summary line for the rest, with the total size of every folder.

    Symbolic links are shown as links (``name -> target``) and never followed,
    so a link that points back up the tree cannot make the listing endless;
    sizes and file counts are those of the regular files only.

    Parameters
    ----------
    folder
        The folder to show, e.g. a Zarr or OME-Zarr store. It must exist.
    max_entries
        Entries shown per folder before the rest are summarised. At least 1.
    max_depth
        Folders deeper than this are shown as one summary line each (their size
        and number of files), not opened. ``None`` opens every level; ``1``
        shows only what is directly inside ``folder``. Useful for the nested
        ``c/z/y/x`` chunk folders of Zarr version 3.

    Returns
    -------
    str
        The printed tree.

    Raises
    ------
    FileNotFoundError
        If ``folder`` is not an existing folder.
    ValueError
        If ``max_entries`` or ``max_depth`` is below 1.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from data_helpers import show_tree
    >>> tmp = pathlib.Path(tempfile.mkdtemp()) / "image.zarr"
    >>> (tmp / "c").mkdir(parents=True)
    >>> _ = (tmp / "zarr.json").write_text("{}")
    >>> for i in range(10):
    ...     _ = (tmp / "c" / str(i)).write_bytes(b"x" * 100)
    >>> _ = show_tree(tmp, max_entries=3)
    image.zarr/  (1,002 bytes, 11 files)
    ├── zarr.json  (2 bytes)
    └── c/  (1,000 bytes, 10 files)
        ├── 0  (100 bytes)
        ├── 1  (100 bytes)
        ├── 2  (100 bytes)
        └── ... 7 more files  (700 bytes)
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{str(root)!r} is not an existing folder; give the path of a store or folder.")
    if not isinstance(max_entries, int) or max_entries < 1:
        raise ValueError(f"max_entries must be an integer of at least 1, got {max_entries!r}.")
    if max_depth is not None and (not isinstance(max_depth, int) or max_depth < 1):
        raise ValueError(f"max_depth must be None or an integer of at least 1, got {max_depth!r}.")

    def totals(path: Path) -> tuple[int, int]:
        size = count = 0
        for parent, _dirs, names in os.walk(path):  # never descends into linked folders
            for name in names:
                st = os.lstat(os.path.join(parent, name))
                if stat.S_ISREG(st.st_mode):
                    size += st.st_size
                    count += 1
        return size, count

    def natural(p: Path):
        # metadata first, then folders and files in numeric order where names are numbers
        meta = p.name.startswith(".") or p.name.endswith(".json")
        parts = [int(t) if t.isdigit() else t for t in p.name.replace(".", " . ").split()]
        return (not meta, [(0, t) if isinstance(t, int) else (1, t) for t in parts])

    def is_folder(p: Path) -> bool:
        return not p.is_symlink() and p.is_dir()

    def plural(n: int, word: str) -> str:
        return f"{n:,} {word}{'s' if n != 1 else ''}"

    lines: list[str] = []

    def walk(path: Path, prefix: str, depth: int) -> None:
        entries = sorted(path.iterdir(), key=natural)
        shown = [e for e in entries if e.name.startswith(".") or e.name.endswith(".json")]
        rest = [e for e in entries if e not in shown]
        shown += rest[:max_entries]
        hidden = rest[max_entries:]
        for i, entry in enumerate(shown):
            last = i == len(shown) - 1 and not hidden
            branch, indent = ("└── ", "    ") if last else ("├── ", "│   ")
            if entry.is_symlink():
                lines.append(f"{prefix}{branch}{entry.name} -> {os.readlink(entry)}  (link, not followed)")
            elif entry.is_dir():
                size, count = totals(entry)
                lines.append(f"{prefix}{branch}{entry.name}/  ({size:,} bytes, {plural(count, 'file')})")
                if max_depth is None or depth < max_depth:
                    walk(entry, prefix + indent, depth + 1)
            else:
                lines.append(f"{prefix}{branch}{entry.name}  ({entry.lstat().st_size:,} bytes)")
        if hidden:
            n_links = sum(1 for e in hidden if e.is_symlink())
            n_dirs = sum(1 for e in hidden if is_folder(e))
            n_files = len(hidden) - n_dirs - n_links
            size = sum(
                totals(e)[0] if is_folder(e) else e.lstat().st_size
                for e in hidden
                if not e.is_symlink()
            )
            what = ", ".join(
                plural(n, f"more {word}")
                for n, word in ((n_dirs, "folder"), (n_files, "file"), (n_links, "link"))
                if n
            )
            lines.append(f"{prefix}└── ... {what}  ({size:,} bytes)")

    size, count = totals(root)
    lines.append(f"{root.name}/  ({size:,} bytes, {plural(count, 'file')})")
    walk(root, "", 1)
    text = "\n".join(lines)
    print(text)
    return text
