"""Where chapters write their outputs: ``data/<name>/`` in the book's repository.

Each chapter writes into a folder of its own under ``data/``. The rule is simple:
**only what this package wrote is ever deleted**, and it is the first rule of the
safety core (:mod:`data_helpers.safety`): an entry is deleted only when the
folder's manifest names it and its kind, size and modification time are still
those the manifest recorded (:func:`~data_helpers.safety.owned_entries`).

- :func:`output_dir` creates the chapter's folder and a hidden manifest in it. The
  manifest records the folder it belongs to, so a copied or moved folder is not
  taken for the original.
- :func:`output_path` hands out one entry of that folder (``data/<name>/<entry>``)
  and records the entry's name in the manifest. The entry does not exist yet, so
  its identity (:func:`~data_helpers.safety.entry_identity`) is recorded later, by
  the process it was handed out to, each time that process next looks: at its next
  call of :func:`output_dir` or :func:`output_path`, after each notebook cell (in
  IPython or Jupyter), and when the process exits. What a handed-out name holds
  while that process runs is taken to be what the chapter wrote there; what is
  recorded last is the entry as the chapter left it.
- ``output_dir(name, fresh=True)`` and :func:`output_path` delete an entry only if
  it still matches its recorded identity. A file you saved under a handed-out name,
  a file you added to a handed-out folder (which changes the folder's modification
  time), a link, and any entry the manifest does not name are never deleted. An
  entry whose identity was never recorded (its process was killed before it could
  look again) is not deleted either: :func:`output_path` then refuses its name and
  says so, and you delete or move it yourself.
- Changes deep inside a handed-out folder that do not add, remove or rename one of
  its direct children (a chunk file rewritten in place) do not change the folder's
  identity: keep your own work out of ``data/<chapter>/``.
- One process at a time uses a chapter's folder. The first call of
  :func:`output_dir` or :func:`output_path` takes a lock on it (``data/.<name>.lock``)
  that lasts as long as the process. A second notebook kernel, or a book build,
  running the same chapter meanwhile would remove or overwrite the first one's
  outputs while it reads them; it gets an :class:`OutputFolderError` that names
  the process holding the folder instead. The lock goes when that process ends,
  however it ends.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import sys
import uuid
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; folders are then not guarded against a second process
    fcntl = None

from data_helpers.errors import BookError
from data_helpers.safety import UnsafePathError, entry_identity, open_lock_file, owned_entries, pid_running

__all__ = ["OutputFolderError", "display_path", "output_dir", "output_path", "repository_root"]

ENV_OUTPUT = "DATA_HELPERS_OUTPUT"
MARKER = ".made-by-data_helpers"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_HELD: dict[Path, int] = {}  # lock file -> open descriptor, for every folder this process holds
_PENDING: dict[Path, set[str]] = {}  # folder -> entries handed out by this process, whose identity it records
_WATCHING_CELLS = False  # whether an IPython post_run_cell hook records identities after each cell


class OutputFolderError(BookError, RuntimeError):
    """An output folder cannot be used without risking data this package did not write."""


def repository_root(start: str | os.PathLike | None = None) -> Path:
    """Return the book's repository root: the nearest folder up with ``_toc.yml``.

    Parameters
    ----------
    start
        Folder to search from; the current working folder by default.

    Raises
    ------
    FileNotFoundError
        If no parent folder holds ``_toc.yml``.

    Examples
    --------
    >>> from data_helpers import repository_root
    >>> (repository_root() / "_toc.yml").is_file()  # doctest: +SKIP
    True
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file():
            return folder
    raise FileNotFoundError(
        f"No _toc.yml found in {here} or any folder above it, so the book's "
        f"repository cannot be located. Run from inside the repository, or set "
        f"{ENV_OUTPUT} to the folder where outputs should go."
    )


def display_path(path: str | os.PathLike) -> str:
    """A local path as a reader should see it printed: relative to the book's repository, or else to a nearby
    working folder.

    A path inside the repository that holds the working folder is shown from the repository's top, as
    ``data/<chapter>/...``, wherever in the repository the chapter runs (``book/`` or the top). Elsewhere
    it is shown relative to the working folder when that is at most one folder up. A path further away,
    on another drive, or a URL is returned unchanged.

    Parameters
    ----------
    path
        A file or folder path, or a URL.

    Examples
    --------
    >>> import os
    >>> display_path(os.path.join(os.getcwd(), "data", "scan.ome.zarr")) == os.path.join("data", "scan.ome.zarr")
    True
    >>> display_path("https://example.org/scan.ome.zarr")
    'https://example.org/scan.ome.zarr'
    """
    text = os.fspath(path)
    if "://" in text:
        return text
    try:
        inside = Path(text).resolve().relative_to(repository_root())
    except (FileNotFoundError, ValueError):  # no repository here, or the path is outside it
        pass
    else:
        return str(inside)
    try:
        shown = os.path.relpath(text)
    except ValueError:  # another drive, on Windows
        return text
    if shown.startswith(os.pardir + os.sep + os.pardir):
        return text
    return shown


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(
            f"{what} {name!r} is not a plain folder name. Use letters, digits, '_', "
            f"'-' or '.' (not first), with no path separators, e.g. 'creating'."
        )
    return name


def _parent() -> Path:
    env = os.environ.get(ENV_OUTPUT, "").strip()
    return Path(env).expanduser().resolve() if env else repository_root() / "data"


def _identity(folder: Path) -> dict:
    st = folder.stat()
    return {"folder": str(folder.resolve()), "device": st.st_dev, "inode": st.st_ino}


def _read_manifest(folder: Path) -> dict | None:
    """The manifest of ``folder``, or None if the folder is not one this package made.

    Its ``entries`` map each handed-out name to the identity recorded for it, or to None while none is
    recorded. Entries given as a list of names give names with no recorded identity.
    """
    marker = folder / MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        manifest = json.loads(marker.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(manifest, dict):
        return None
    entries = manifest.get("entries")
    if isinstance(entries, list):
        entries = dict.fromkeys(entries)  # names only: no identity recorded, so none of them is deleted
    if not isinstance(entries, dict):
        return None
    identity = _identity(folder)
    if any(manifest.get(key) != value for key, value in identity.items()):
        return None  # copied, moved or forged: not ours
    if not all(isinstance(e, str) and _NAME.fullmatch(e) and e != MARKER and (r is None or isinstance(r, dict))
               for e, r in entries.items()):
        return None
    return {**manifest, "entries": entries}


def _write_manifest(folder: Path, entries: dict[str, dict | None]) -> None:
    manifest = {
        "about": "Made by data_helpers.output_dir. An entry listed here is deleted by it only while its kind, "
                 "size and modification time are those recorded here.",
        **_identity(folder),
        "entries": dict(sorted(entries.items())),
    }
    tmp = folder / f"{MARKER}.tmp-{uuid.uuid4().hex[:12]}"
    # a new file of its own: never written through a link or over a file planted at that name
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "w") as file:
        file.write(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, folder / MARKER)


def _record_pending(folder: Path) -> dict | None:
    """Record, in the manifest of ``folder``, the identity of each entry this process handed out there.

    This process is the one that writes those entries, so what they hold now is what it wrote. An entry
    not written yet stays without identity. Returns the manifest as it is afterwards (None if the folder
    is not ours).
    """
    manifest = _read_manifest(folder)
    if manifest is None:
        return None
    entries = manifest["entries"]
    changed = False
    for name in sorted(_PENDING.get(folder, ())):
        if name not in entries:
            continue  # no longer listed (a fresh start dropped it): nothing to record
        try:
            seen = entry_identity(folder / name)
        except OSError:
            continue  # not written yet, or already removed
        if entries[name] != seen:
            entries[name] = seen
            changed = True
    if changed:
        _write_manifest(folder, entries)
    return manifest


def _record_all_pending(*_: object) -> None:
    """Record the identities of all entries this process handed out (at exit, or after a notebook cell).

    Never raises: a folder that is gone or no longer ours is skipped.
    """
    for folder in list(_PENDING):
        with contextlib.suppress(OSError, ValueError):
            _record_pending(folder)


atexit.register(_record_all_pending)


def _watch_cells() -> None:
    """In IPython (a notebook kernel), record the identities after each cell as well as at exit.

    A kernel that is killed runs no exit handlers; after this, only the entries written by the cell that
    was running then stay without identity.
    """
    global _WATCHING_CELLS
    if _WATCHING_CELLS or "IPython" not in sys.modules:
        return
    with contextlib.suppress(Exception):  # an IPython without events: identities are recorded at exit only
        shell = sys.modules["IPython"].get_ipython()
        if shell is not None:
            shell.events.register("post_run_cell", _record_all_pending)
            _WATCHING_CELLS = True


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _forget_held_in_child() -> None:
    """In a forked child: close the inherited lock descriptors, so the lock ends with the process that took it.

    A forked child still uses the folder while its parent holds it (see :func:`_hold`), but a child that
    outlives its parent must not keep the folder locked in the name of a process that is gone. The entries
    the parent handed out are recorded by the parent, not by the child.
    """
    for fd in _HELD.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()
    _PENDING.clear()  # the parent records what it handed out; the child records only what it hands out


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_held_in_child)


def _recorded_holder(fd: int) -> int | None:
    """The process id written in a lock file by the process that took it, or None."""
    text = os.pread(fd, 64, 0).decode("ascii", "replace").split()
    return int(text[0]) if text and text[0].isdigit() else None


def _processes_with_open(lock: Path) -> list[int]:
    """The running processes (other than this one) that have ``lock`` open: those that hold its lock."""
    try:
        import psutil
    except ImportError:
        return []
    target = os.stat(lock)
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == os.getpid():
            continue
        try:
            files = proc.open_files()
        except (psutil.Error, OSError):
            continue
        for f in files:
            try:
                st = os.stat(f.path)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                found.append(proc.pid)
                break
    return found


def _hold(parent: Path, name: str) -> None:
    """Lock ``parent/name`` for this process, or say which running process is using it and what to do.

    A forked child of the process that holds the lock shares it. The lock file is opened without
    following links; a link or a folder in its place is refused (:func:`data_helpers.safety.open_lock_file`).
    """
    lock = parent / f".{name}.lock"
    if fcntl is None or lock in _HELD:
        return
    try:
        fd = open_lock_file(lock)
    except UnsafePathError as error:
        raise OutputFolderError(
            f"{name}/ (in {parent}) cannot be locked: {str(error).split(chr(10) + 'Troubleshooting:')[0]}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        recorded = _recorded_holder(fd)
        os.close(fd)
        if recorded is not None and recorded == os.getppid() and recorded != 1:
            return  # a forked child of the holder: it works under its parent's lock
        holders = _processes_with_open(lock)  # the processes that have the lock open hold it
        if recorded in holders:
            holders = [recorded]
        elif not holders and recorded is not None and pid_running(recorded):
            holders = [recorded]
        who = f"pid {', '.join(map(str, holders))}" if holders else "a process that could not be identified"
        raise OutputFolderError(
            f"{name}/ (in {parent}) is in use by another running process ({who}): a notebook "
            f"kernel or a book build running the same chapter. Two runs at once would remove or overwrite "
            f"each other's files. Shut that kernel down or let the build finish, then run again; or set "
            f"{ENV_OUTPUT} to another folder for this run."
        ) from None
    except OSError:  # a file system without locks: go on unguarded, as before
        os.close(fd)
        return
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[lock] = fd


def _managed(name: str) -> tuple[Path, dict]:
    folder = output_dir(name)
    manifest = _read_manifest(folder)
    if manifest is None:
        raise OutputFolderError(
            f"{name}/ (in {folder.parent}) was not made by data_helpers.output_dir, or was "
            f"copied from another place, so nothing in it is replaced or deleted. Move it "
            f"away (or rename it) and run again."
        )
    return folder, manifest


def _ours(folder: Path, entries: dict[str, dict | None]) -> set[str]:
    """The listed entries of ``folder`` that may be deleted: rule 1 of :mod:`data_helpers.safety`."""
    recorded = {name: seen for name, seen in entries.items() if seen is not None}
    return set(owned_entries(folder, recorded, strict=False))


def output_dir(name: str, fresh: bool = False) -> Path:
    """Return the output folder ``data/<name>`` of a chapter, creating it.

    Parameters
    ----------
    name
        A plain folder name, such as ``"creating"``: letters, digits, ``_``,
        ``-`` and ``.``; no path separators.
    fresh
        Remove the entries that :func:`output_path` handed out in this folder
        and that are still as this package left them (same kind, size and
        modification time as recorded), so a re-run starts clean. Files you put
        there yourself stay, and so does an entry you replaced or changed, or
        one whose identity was never recorded (see the module's notes).

    Returns
    -------
    pathlib.Path
        The folder, which exists on return. Its parent is ``$DATA_HELPERS_OUTPUT``
        if set, else ``data/`` at the repository root.

    Raises
    ------
    ValueError
        If ``name`` is not a plain folder name.
    OutputFolderError
        If a file is in the way, if another running process (a second kernel, a
        book build) is using the folder, or if ``fresh=True`` is asked of a folder
        that this function did not make (nothing is deleted then).

    Examples
    --------
    >>> from data_helpers import output_dir
    >>> out = output_dir("creating", fresh=True)  # doctest: +SKIP
    >>> out.name  # doctest: +SKIP
    'creating'
    """
    _check_name(name, "Output folder name")
    parent = _parent()
    folder = parent / name
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise OutputFolderError(
            f"{folder} exists and is not a plain folder. Move it away or pick another name."
        )
    parent.mkdir(parents=True, exist_ok=True)
    _hold(parent, name)
    _record_all_pending()
    try:
        folder.mkdir()
    except FileExistsError:
        pass  # an existing folder: ours only if its manifest says so
    else:
        _write_manifest(folder, {})
        return folder
    if fresh:
        manifest = _read_manifest(folder)
        if manifest is None:
            raise OutputFolderError(
                f"{folder} exists but was not made by data_helpers.output_dir (or was copied "
                f"from elsewhere), so it is not emptied. Move its contents elsewhere, or pick "
                f"another name."
            )
        entries = manifest["entries"]
        ours = _ours(folder, entries)
        for entry in sorted(ours):
            _remove(folder / entry)
        # kept listed: only entries present whose identity was never recorded, so output_path can say why
        # it refuses their names; a changed entry is yours from now on, like any file the manifest never named
        left = {entry: None for entry, seen in entries.items()
                if entry not in ours and seen is None and os.path.lexists(folder / entry)}
        _PENDING.pop(folder, None)
        _write_manifest(folder, left)
    return folder


def output_path(name: str, entry: str) -> Path:
    """Return ``data/<name>/<entry>``, ready to be written, and record it as this package's.

    If the entry exists from an earlier run and is still as this package left
    it (it is listed in the folder's manifest with the kind, size and
    modification time it has now), it is removed first, so the cell that writes
    it can run again. Any other existing entry is never touched: a file you
    saved there, or saved under this name, or changed since.

    The entry's identity is recorded by this process once it has been written:
    at the next call of :func:`output_dir` or :func:`output_path`, after each
    notebook cell, and at exit.

    Parameters
    ----------
    name
        The chapter's output folder name, as for :func:`output_dir`.
    entry
        A plain file or folder name inside it, such as ``"heart.ome.zarr"``.

    Returns
    -------
    pathlib.Path
        A path that does not exist on return; its parent folder does.

    Raises
    ------
    ValueError
        If ``name`` or ``entry`` is not a plain name.
    OutputFolderError
        If the folder was not made by :func:`output_dir`, if another running
        process is using it, or if ``entry`` exists but cannot be shown to be
        what this package wrote there (nothing is deleted then).

    Examples
    --------
    >>> from data_helpers import output_path
    >>> target = output_path("creating", "heart.ome.zarr")  # doctest: +SKIP
    >>> target.exists()  # doctest: +SKIP
    False
    """
    _check_name(entry, "Output entry name")
    if entry == MARKER:
        raise ValueError(f"{entry!r} is reserved for the folder's manifest; pick another name.")
    folder, manifest = _managed(name)
    entries = manifest["entries"]
    target = folder / entry
    if os.path.lexists(target):
        if entry not in entries:
            raise OutputFolderError(
                f"{name}/{entry} exists but was not written through data_helpers, so it is "
                f"not replaced. Move or rename it, or choose another entry name."
            )
        if entries[entry] is None:
            raise OutputFolderError(
                f"{name}/{entry} exists, but the run it was handed out to ended before it could record "
                f"what it wrote there (a kernel that was killed, or a run of a data_helpers older than "
                f"this rule, which recorded names only), so it cannot be told from a file of yours and is "
                f"not replaced. If it is that run's output, delete it yourself; otherwise move or rename "
                f"it. Then run again."
            )
        if entry not in _ours(folder, {entry: entries[entry]}):
            raise OutputFolderError(
                f"{name}/{entry} was written through data_helpers, but its kind, size or modification "
                f"time changed since (you saved or changed something there), so it is not replaced. "
                f"Move or rename it, or choose another entry name."
            )
        _remove(target)
    entries[entry] = None
    _write_manifest(folder, entries)
    _PENDING.setdefault(folder, set()).add(entry)
    _watch_cells()
    return target
