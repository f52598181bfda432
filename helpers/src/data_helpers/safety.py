"""The safety rules of every writer in ``data_helpers``, in one place.

Every function that writes files (:func:`~data_helpers.write_ome_zarr`, ``write_labels``,
``ome_zarr_to_tiff``, ``tiff_to_ome_zarr``, ``hdf5_to_ome_zarr``, ``upload_ome_zarr``,
``output_dir``) follows four rules, and takes them from here:

1. **Ours only.** An entry may be deleted or replaced only when a marker that this package
   wrote names it by a plain name (no ``/`` or ``\\``, not ``.`` or ``..``, not absolute, not
   hidden), the entry is in the marker's own folder, and its kind, size and modification time
   are those the marker recorded (:func:`owned_entries`). An OME-Zarr image is checked by its
   structure instead (:func:`_replaceable_entries`): each level it names holds one Zarr array
   and nothing else. Nothing else is ever deleted or replaced.
2. **Commit without replacing.** A result is written into a staging folder beside its target
   (:func:`make_staging`) and moved into place by a rename that refuses to replace an existing
   target (:func:`rename_noreplace`: ``renameat2(RENAME_NOREPLACE)`` where the system has it,
   else link-then-unlink for files and an exclusive ``mkdir`` for folders). Of two writers to one
   new target exactly one gets in; the other gets :class:`FileExistsError`. The one rename that
   replaces is :func:`replace_own_file`: a group metadata file that readers must always find is
   replaced in one :func:`os.replace`, after its identity is checked under the commit lock.
3. **Leftovers.** A staging folder records its writer (process id and start time) and its kind
   (``"ome-zarr"``, ``"labels"``, ``"metadata"`` or ``"tiff"``). A killed writer's staging folder
   is removed by the next writer in the same folder once that process is gone
   (:func:`remove_stale_staging`), and only if it holds only what a staging folder of its kind
   holds. Its content is never used.
4. **Links.** No writer follows a symbolic link out of the folder it was given
   (:func:`path_inside`), no file is read through a link (:func:`read_no_follow`), and a lock file
   that is a link or a folder is refused (:func:`open_lock_file`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import re
import shutil
import stat
import tempfile
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from data_helpers.errors import BookError

__all__ = [
    "MARKER_KEY", "NotOursError", "NotWritableError", "UnsafePathError", "commit_lock", "entry_identity",
    "identity_matches", "is_plain_name", "make_staging", "open_lock_file", "owned_entries", "path_inside", "pid_running",
    "read_no_follow", "remove_stale_staging", "remove_staging", "rename_noreplace", "replace_own_file",
]

MARKER_KEY = "data_helpers"  # an attribute or manifest key: this package wrote the entries it names
_MARKER_KEY = MARKER_KEY
STAGING_OWNER = ".data_helpers-staging.json"  # in a staging folder: which process is writing it, and what
_STAGING_OWNER = STAGING_OWNER
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # a direct child: no separator, not hidden, not . or ..
_STAGING_NAME = re.compile(r"\.(?P<target>.+)\.partial-[0-9a-f]{12}")
_GROUP_METADATA = {2: (".zgroup", ".zattrs"), 3: ("zarr.json",)}
_VERSIONS = {"0.4": 2, "0.5": 3, "0.6": 3}  # the OME-Zarr versions written, and the Zarr format of each
_TIFF_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.tiff?")


class NotOursError(BookError, FileExistsError):
    """An entry is in the way and this package cannot show that it wrote it, so it is not replaced."""


class NotWritableError(BookError, PermissionError):
    """The folder a result should go to cannot be written (no permission, a read-only or system folder)."""


class UnsafePathError(BookError, ValueError):
    """A path leaves the folder it must stay in (``..``, an absolute path, or a link out), or a lock is not a file."""


# -- rule 1: what is ours ---------------------------------------------------------------------------------


def is_plain_name(name: object) -> bool:
    """Whether ``name`` names a direct child of a folder: no separator, not absolute, not ``.``/``..``, not hidden.

    Examples
    --------
    >>> from data_helpers.safety import is_plain_name
    >>> is_plain_name("z0000.tif"), is_plain_name("../thesis.tex"), is_plain_name("/etc/passwd")
    (True, False, False)
    """
    return isinstance(name, str) and _PLAIN_NAME.fullmatch(name) is not None


def entry_identity(path: str | os.PathLike) -> dict:
    """What a marker records of an entry it names: its kind, size and modification time (links not followed).

    Parameters
    ----------
    path
        A file or folder that this package has just written.

    Returns
    -------
    dict
        ``{"kind": "file" | "folder" | "link" | "other", "size": bytes, "mtime_ns": int}``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from data_helpers.safety import entry_identity
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = f.write_text("abc")
    >>> entry_identity(f)["kind"], entry_identity(f)["size"]
    ('file', 3)
    """
    st = os.lstat(path)
    kind = ("link" if stat.S_ISLNK(st.st_mode) else "folder" if stat.S_ISDIR(st.st_mode)
            else "file" if stat.S_ISREG(st.st_mode) else "other")
    return {"kind": kind, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def identity_matches(path: str | os.PathLike, recorded: object) -> bool:
    """Whether ``path`` is the entry whose identity (see :func:`entry_identity`) was ``recorded``.

    A link, a device or a missing entry never matches.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from data_helpers.safety import entry_identity, identity_matches
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = f.write_text("abc")
    >>> seen = entry_identity(f)
    >>> _ = f.write_text("abcd")
    >>> identity_matches(f, seen)
    False
    """
    if not isinstance(recorded, Mapping):
        return False
    try:
        now = entry_identity(path)
    except OSError:
        return False
    if now["kind"] in ("link", "other"):
        return False  # a marker never names a link or a device: one that is there now is not ours
    return all(recorded.get(key) == now[key] for key in ("kind", "size", "mtime_ns"))


def owned_entries(folder: str | os.PathLike, record: Mapping[str, object], *, strict: bool = True) -> list[str]:
    """The entries of ``folder`` that a marker's ``record`` shows to be ours, checked on disk.

    An entry is ours only when ``record`` names it by a plain name (see :func:`is_plain_name`), it
    is in ``folder`` (not a link), and its kind, size and modification time equal those recorded
    (see :func:`entry_identity`). Names recorded but absent are skipped (already gone).

    Parameters
    ----------
    folder
        The folder the marker describes.
    record
        ``{name: identity}``, as the writer recorded it with :func:`entry_identity`.
    strict
        Raise :class:`NotOursError` if a recorded name is not plain, or a present entry does not
        match; with ``False`` such entries are left out of the answer instead.

    Returns
    -------
    list of str
        The names that may be deleted or replaced.

    Raises
    ------
    NotOursError
        (``strict=True``) naming the first entry that is not ours; nothing should then be deleted.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from data_helpers.safety import entry_identity, owned_entries
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.tif").write_bytes(b"1")
    >>> owned_entries(d, {"a.tif": entry_identity(d / "a.tif"), "gone.tif": {}})
    ['a.tif']
    """
    folder = Path(folder)
    if not isinstance(record, Mapping):
        raise NotOursError(f"the marker of {folder} does not list entries ({type(record).__name__}); "
                           "nothing in it is replaced. Move the folder away yourself, or choose a new target.")
    ours = []
    for name, recorded in record.items():
        if not is_plain_name(name):
            if strict:
                raise NotOursError(f"the marker of {folder} names {name!r:.80}, which is not a plain name of an "
                                   "entry inside that folder, so nothing is replaced (the marker may have been "
                                   "edited). Move the entries away yourself, or choose a new target.")
            continue
        entry = folder / name
        if not os.path.lexists(entry):
            continue
        if not identity_matches(entry, recorded):
            if strict:
                raise NotOursError(f"{entry} is not what this package wrote there (its kind, size or modification "
                                   "time changed since), so nothing is replaced. Move it away yourself, or "
                                   "choose a new target.")
            continue
        ours.append(name)
    return ours


def _carries_marker(folder: Path) -> bool:
    """Whether the group metadata in ``folder`` carries this package's marker (which is not proof: see below)."""
    try:
        attrs = _read_attrs(folder)
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(attrs, dict) and _MARKER_KEY in attrs


def _read_attrs(path: Path) -> dict | None:
    """The attributes of the Zarr group in ``path`` (v3 or v2), or None if it holds no group metadata."""
    if (path / "zarr.json").is_file():
        return json.loads((path / "zarr.json").read_text()).get("attributes", {})
    if (path / ".zattrs").is_file():
        return json.loads((path / ".zattrs").read_text())
    if (path / ".zgroup").is_file():
        return {}
    return None


def _same_device(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


def _replaceable_entries(folder: Path, written: Sequence[str]) -> tuple[str, ...]:
    """The entries of ``folder`` that overwriting its image may delete: rule 1 for an OME-Zarr image.

    ``folder`` holds an earlier image. The ``data_helpers`` marker in its attributes is data on disk like any
    other (it may have been copied, edited or forged), so it is never trusted on its own. An overwrite may
    delete entries of ``folder`` only if all of this holds:

    1. the group metadata (``zarr.json``; or ``.zgroup`` and ``.zattrs``) are regular files holding one
       OME-Zarr multiscale of a version this package writes in that Zarr format (0.4 in v2; 0.5 or 0.6 in
       v3), no metadata of a collection of images (``scene``, ``plate``, ``well``, ``labels``,
       ``bioformats2raw.layout``), and the marker, a dict whose ``levels`` are exactly that multiscale's
       dataset paths;
    2. every dataset path is a plain name (no ``/`` or ``\\``, not absolute, not ``.``, ``..`` or hidden),
       so it names a direct child of ``folder``; in 0.6, where each level's transformation names the array
       it maps from (``input.path``), that is the dataset's own path;
    3. each such child that exists is a real folder (not a link) holding one Zarr array and nothing else:
       its metadata (``zarr.json``; or ``.zarray`` and ``.zattrs``) and files whose names are chunk keys of
       that array's chunk-key encoding (``c/0/0/0`` or ``c.0.0.0`` in Zarr v3, ``0.0.0`` or ``0/0/0`` in v2);
    4. no entry the new image writes (``written``) is taken by anything else.

    The entries returned are then the group metadata files and those level folders. Any other entry of the
    folder (your notes, a folder of analyses, even one named like a level) is never touched. If a condition
    fails, :class:`FileExistsError` names the entry that broke it, and nothing is deleted.
    """

    def refuse(why: str) -> FileExistsError:
        return FileExistsError(f"{folder} is not replaced: {why}. Nothing was written and nothing was deleted; "
                               "move the entry (or the whole image) away yourself, or write to a new path.")

    zarr_format = 3 if os.path.lexists(folder / "zarr.json") else 2
    metadata = _GROUP_METADATA[zarr_format]
    docs = {}
    for name in metadata:
        file = folder / name
        if file.is_symlink() or not file.is_file():
            raise refuse(f"its group metadata {name} is {'a link' if file.is_symlink() else 'missing'}")
        try:
            docs[name] = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise refuse(f"its group metadata {name} cannot be read as JSON ({error})") from None
        if not isinstance(docs[name], dict):
            raise refuse(f"its group metadata {name} is not a JSON object")
    if zarr_format == 3:
        if docs["zarr.json"].get("node_type") != "group":
            raise refuse("its zarr.json is not the metadata of a Zarr group")
        attrs = docs["zarr.json"].get("attributes", {})
        ome = attrs.get("ome") if isinstance(attrs, dict) else None
        multiscales = ome.get("multiscales") if isinstance(ome, dict) else None
    else:
        attrs = docs[".zattrs"]
        ome = attrs
        multiscales = attrs.get("multiscales")
    marker = attrs.get(_MARKER_KEY) if isinstance(attrs, dict) else None
    if not isinstance(marker, dict):
        raise refuse(f"its attribute {_MARKER_KEY!r} is {type(marker).__name__} {marker!r:.80}, not the record "
                     "this package writes")
    if not isinstance(multiscales, list) or len(multiscales) != 1 or not isinstance(multiscales[0], dict) \
            or not isinstance(multiscales[0].get("datasets"), list):
        raise refuse("its OME-Zarr metadata does not hold exactly one multiscale with a list of datasets")
    version = ome.get("version") if zarr_format == 3 else multiscales[0].get("version")
    if not isinstance(version, str) or _VERSIONS.get(version) != zarr_format:
        known = [v for v, f in _VERSIONS.items() if f == zarr_format]
        raise refuse(f"its OME-Zarr version {version!r:.40} is not one this package writes in Zarr v{zarr_format} "
                     f"({' or '.join(known)})")
    others = sorted(k for k in ("scene", "plate", "well", "labels", "bioformats2raw.layout") if k in ome)
    if others:
        raise refuse(f"its OME-Zarr metadata also holds {', '.join(others)}, which describe other images")
    paths = [ds.get("path") if isinstance(ds, dict) else None for ds in multiscales[0]["datasets"]]
    for p in paths:
        if not isinstance(p, str) or not _PLAIN_NAME.fullmatch(p) or p in ("zarr.json",):
            raise refuse(f"its dataset path {p!r} is not the plain name of a folder inside the image")
    if version == "0.6":
        for p, ds in zip(paths, multiscales[0]["datasets"]):
            transforms = ds.get("coordinateTransformations")
            inputs = [t.get("input") if isinstance(t, dict) else None
                      for t in (transforms if isinstance(transforms, list) else [None])]
            if not inputs or any(not isinstance(i, dict) or i.get("path") != p for i in inputs):
                raise refuse(f"the transformation of its level {p} maps from {inputs!r:.120}, not from its own "
                             f"array {{'path': {p!r}}}")
    if len(set(paths)) != len(paths):
        raise refuse(f"its dataset paths {paths} repeat a name")
    levels = marker.get("levels")
    if not isinstance(levels, list) or sorted(map(str, levels)) != sorted(paths) \
            or not all(isinstance(x, str) for x in levels):
        odd = sorted({repr(x) for x in levels} - {repr(p) for p in paths}) if isinstance(levels, list) else [repr(levels)]
        raise refuse(f"its marker names the levels {levels!r:.200}, which are not the image's dataset paths "
                     f"{paths}{' (odd: ' + ', '.join(odd) + ')' if odd else ''}")
    replace = list(metadata)
    for p in paths:
        node = folder / p
        if not os.path.lexists(node):
            continue  # a level already gone: nothing to delete
        if node.is_symlink() or not node.is_dir():
            raise refuse(f"its level {p} is {'a link' if node.is_symlink() else 'a file'}, not a folder of array chunks")
        problem = _array_node_problem(node)
        if problem is not None:
            raise refuse(f"its level {p} is not only a Zarr array: {problem}")
        replace.append(p)
    for name in written:
        if os.path.lexists(folder / name) and name not in replace:
            raise refuse(f"{name} is in the way: the new image needs that name, and {folder / name} is not part of "
                         "the earlier image (it is not one of its dataset paths)")
    return tuple(replace)


def _array_node_problem(node: Path) -> str | None:
    """What in ``node`` is not part of one Zarr array (its metadata and its chunk keys), or None if nothing is."""
    if (node / "zarr.json").is_file() and not (node / "zarr.json").is_symlink():
        own = {"zarr.json"}
        meta_file = node / "zarr.json"
    elif (node / ".zarray").is_file() and not (node / ".zarray").is_symlink():
        own = {".zarray", ".zattrs"}
        meta_file = node / ".zarray"
    else:
        return f"{node.name}/ has no array metadata (zarr.json or .zarray)"
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta_file.name == "zarr.json" and meta.get("node_type") != "array":
            return f"{node.name}/zarr.json is not the metadata of an array"
        ndim = len(meta["shape"])
        if meta_file.name == "zarr.json":
            encoding = meta.get("chunk_key_encoding", {"name": "default"})
            prefix = "c" if encoding["name"] == "default" else "" if encoding["name"] == "v2" else None
            separator = encoding.get("configuration", {}).get("separator", "/" if prefix == "c" else ".")
        else:
            prefix, separator = "", meta.get("dimension_separator") or "."
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as error:
        return f"its array metadata {node.name}/{meta_file.name} cannot be read ({error!r})"
    if prefix is None or separator not in ("/", ".") or ndim < 1:
        return f"{node.name}/{meta_file.name} has a chunk-key encoding this package does not write"
    sep = re.escape(separator)
    if prefix:
        key = re.compile(rf"c(?:{sep}[0-9]+){{{ndim}}}")
        folder = re.compile(rf"c(?:/[0-9]+){{0,{ndim - 1}}}") if separator == "/" else None
    else:
        key = re.compile(rf"[0-9]+(?:{sep}[0-9]+){{{ndim - 1}}}")
        folder = re.compile(rf"[0-9]+(?:/[0-9]+){{0,{ndim - 2}}}") if separator == "/" and ndim > 1 else None
    pending = [(node, "")]
    while pending:
        here, rel = pending.pop()
        with os.scandir(here) as entries:
            for entry in entries:
                name = rel + entry.name
                if entry.is_symlink():
                    return f"{node.name}/{name} is a link"
                if entry.is_dir(follow_symlinks=False):
                    if folder is None or not folder.fullmatch(name):
                        return f"{node.name}/{name}/ is not a folder of chunk keys"
                    pending.append((Path(entry.path), name + "/"))
                elif not entry.is_file(follow_symlinks=False):
                    return f"{node.name}/{name} is not a regular file"
                elif not (rel == "" and entry.name in own) and not key.fullmatch(name):
                    return f"{node.name}/{name} is not a chunk of the array"
    return None


# -- rule 4: links ----------------------------------------------------------------------------------------


def path_inside(folder: str | os.PathLike, relative: object, what: str = "path") -> Path:
    """``folder / relative``, refusing a path that is absolute, has a ``..`` part, or leads out through a link.

    Parameters
    ----------
    folder
        The folder the path must stay in.
    relative
        A relative path (``"0"``, ``"labels/cells/0"``), as metadata gives it.
    what
        What the path is, for the error message (``"dataset path"``).

    Raises
    ------
    UnsafePathError
        If the path is not a non-empty relative string, has a ``..`` part, or resolves outside ``folder``.

    Examples
    --------
    >>> import tempfile
    >>> from data_helpers.safety import path_inside
    >>> d = tempfile.mkdtemp()
    >>> path_inside(d, "0").name
    '0'
    >>> path_inside(d, "../secret")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    UnsafePathError: ...
    """
    folder = Path(folder)
    if not isinstance(relative, str) or not relative or relative.startswith(("/", "\\")) or "\0" in relative \
            or os.path.isabs(relative) or re.match(r"[A-Za-z]:", relative):
        raise UnsafePathError(f"the {what} {relative!r:.120} in {folder} is not a relative path inside that folder; "
                              "this package never reads or writes outside the folder it was given. Fix the "
                              "metadata, or use a copy whose paths stay inside the folder.")
    parts = re.split(r"[/\\]", relative)
    if any(part in ("..", "") for part in parts):
        raise UnsafePathError(f"the {what} {relative!r:.120} in {folder} has a '..' or empty part, so it could lead "
                              "out of the folder; this package refuses it. Fix the metadata.")
    path = folder.joinpath(*parts)
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        raise UnsafePathError(f"the {what} {relative!r:.120} in {folder} leads out of the folder through a symbolic "
                              f"link (to {path.resolve()}); this package does not follow links out of the "
                              "folder it was given. Use a copy without the link.") from None
    return path


def open_lock_file(lock: str | os.PathLike) -> int:
    """Open (creating it) the lock file ``lock`` for reading and writing, refusing a link or a folder.

    The open does not follow a symbolic link (``O_NOFOLLOW``), so a link placed at the lock's name
    cannot make the writer truncate the file it points to.

    Returns
    -------
    int
        The open file descriptor (close it with :func:`os.close`).

    Raises
    ------
    UnsafePathError
        If ``lock`` is a symbolic link, a folder, or anything but a regular file.

    Examples
    --------
    >>> import os, tempfile
    >>> from data_helpers.safety import open_lock_file
    >>> fd = open_lock_file(os.path.join(tempfile.mkdtemp(), ".x.lock"))
    >>> os.close(fd)
    """
    lock = os.fspath(lock)
    refuse = (f"{lock} must be this package's lock file, a regular file, but it is {{}}; the package does not "
              "follow or write through it. Remove it (it holds nothing of yours if you did not make it), then "
              "run again.")
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if os.path.islink(lock):
        raise UnsafePathError(refuse.format(f"a symbolic link (to {os.readlink(lock)})"))
    try:
        fd = os.open(lock, flags, 0o644)
    except IsADirectoryError:
        raise UnsafePathError(refuse.format("a folder")) from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnsafePathError(refuse.format("a symbolic link")) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafePathError(refuse.format("not a regular file"))
    return fd


def read_no_follow(folder: str | os.PathLike, relative: str) -> bytes:
    """The bytes of the regular file ``folder/relative``, read without following a link in any part of ``relative``.

    Each folder on the way is opened with ``O_NOFOLLOW`` relative to the one before it, so a link put in
    place of a folder or of the file while it is read is refused rather than followed (where the system
    has no ``dir_fd``, as on Windows, each part is checked, then the file is read).

    Parameters
    ----------
    folder
        The folder the file must be in.
    relative
        The file's path inside ``folder``, with ``/`` between its parts (``"0/c/0/0/0"``).

    Raises
    ------
    UnsafePathError
        If ``relative`` is not a relative path inside ``folder`` (absolute, or with a ``..`` or empty part).
    OSError
        If a part of the path is a link, or the file is not a regular file (a folder, a pipe, a device).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from data_helpers.safety import read_no_follow
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "0").mkdir(); _ = (d / "0" / "zarr.json").write_text("{}")
    >>> read_no_follow(d, "0/zarr.json")
    b'{}'
    """
    folder = Path(folder)
    if not isinstance(relative, str) or not relative or relative.startswith("/") or "\0" in relative \
            or os.path.isabs(relative) or any(part in ("", ".", "..") for part in relative.split("/")):
        raise UnsafePathError(f"{relative!r:.120} is not a relative path inside {folder} (absolute, or with a "
                              "'..', '.' or empty part); nothing was read. Give a path such as '0/c/0/0/0'.")
    parts = relative.split("/")
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    if not nofollow or os.open not in os.supports_dir_fd:  # no dir_fd (Windows): check, then open
        path = folder.joinpath(*parts)
        if any(folder.joinpath(*parts[: i + 1]).is_symlink() for i in range(len(parts))):
            raise OSError(f"{relative} is a symbolic link")
        return path.read_bytes()
    fds = []
    try:
        fds.append(os.open(folder, os.O_RDONLY | os.O_DIRECTORY))
        for part in parts[:-1]:
            fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=fds[-1]))
        fd = os.open(parts[-1], os.O_RDONLY | nofollow | getattr(os, "O_NONBLOCK", 0), dir_fd=fds[-1])
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise OSError(f"{relative} is not a regular file")
            return handle.read()
    finally:
        for fd in fds:
            os.close(fd)


# -- rule 2: commit without replacing ---------------------------------------------------------------------

_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
_renameat2 = None
if os.name == "posix":
    with contextlib.suppress(OSError, AttributeError, TypeError):
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _renameat2 = _libc.renameat2
        _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        _renameat2.restype = ctypes.c_int


def rename_noreplace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Rename ``src`` to ``dst`` in one step, refusing to replace anything already at ``dst``.

    Uses ``renameat2(RENAME_NOREPLACE)`` where the system has it; elsewhere a file is hard-linked at
    ``dst`` (which fails if ``dst`` exists) and then unlinked from ``src``, and a folder gets an
    exclusive ``mkdir`` of ``dst`` before the rename onto that empty folder. Of two renames onto one
    new ``dst``, exactly one succeeds.

    Raises
    ------
    FileExistsError
        If ``dst`` exists (a file, a folder, or a link, even a dangling one).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from data_helpers.safety import rename_noreplace
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a").write_text("a"); _ = (d / "b").write_text("b")
    >>> rename_noreplace(d / "a", d / "c")
    >>> rename_noreplace(d / "c", d / "b")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    FileExistsError: ...
    """
    src_b, dst_b = os.fsencode(src), os.fsencode(dst)
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, src_b, _AT_FDCWD, dst_b, _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, f"{os.fsdecode(dst)} already exists, so it was not replaced", os.fsdecode(dst))
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), os.fsdecode(src), None, os.fsdecode(dst))
    _rename_noreplace_fallback(os.fsdecode(src), os.fsdecode(dst))


def _rename_noreplace_fallback(src: str, dst: str) -> None:
    """``rename_noreplace`` without ``renameat2``: link-then-unlink for files, mkdir-guard for folders."""
    if os.path.isdir(src) and not os.path.islink(src):
        os.mkdir(dst)  # exclusive: decides who gets in
        try:
            os.rename(src, dst)  # onto the empty folder made just above; fails if something was put in it
        except BaseException:
            with contextlib.suppress(OSError):
                os.rmdir(dst)
            raise
        return
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, f"{dst} already exists, so it was not replaced", dst) from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # no hard links here: an exclusive create reserves the name, then the rename fills it
        fd = os.open(dst, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        os.replace(src, dst)
        return
    os.unlink(src)


@dataclass(frozen=True)
class _Target:
    """What is at the target path before the write: nothing, an empty folder, or an earlier image."""

    path: Path
    state: Literal["new", "empty", "image"]
    replace: tuple[str, ...] = ()  # for "image": the entries the commit replaces (see _replaceable_entries)


def _commit(staging: Path, target: _Target, written: Sequence[str]) -> None:
    """Move a finished OME-Zarr image from ``staging`` into place; of two writes to one path, only one gets in.

    Under a lock file next to the target (held for the few renames of this step): a new path is taken by
    :func:`rename_noreplace` (a second write gets :class:`FileExistsError`). An earlier image's entries,
    checked again by :func:`_replaceable_entries`, are moved aside, the new entries moved in (group metadata
    last), and the old ones deleted only then; if a move fails, everything is moved back, so the old image
    stays complete.
    """
    path = target.path
    with commit_lock(path, staging=staging):  # the lock's record stands for the staging's owner record from here
        (staging / _STAGING_OWNER).unlink()
        if target.state == "new":
            try:
                rename_noreplace(staging, path)  # the one atomic step that decides who wins
            except FileExistsError:
                raise FileExistsError(f"{path} was created by another write while this one ran, so this image "
                                      "was discarded; nothing was written or deleted.") from None
        elif target.state == "empty":
            if path.is_symlink() or not path.is_dir() or any(path.iterdir()):
                raise FileExistsError(f"{path} is no longer an empty folder (something was put there while the "
                                      "image was written), so this image was discarded; nothing was deleted.")
            _move_onto_empty_folder(staging, path)
        else:
            _swap_entries(staging, path, _replaceable_entries(path, written))


def _move_onto_empty_folder(staging: Path, path: Path) -> None:
    if os.name == "posix":
        try:
            os.rename(staging, path)  # replaces the empty folder in one step; fails if it is no longer empty
        except OSError as error:
            raise FileExistsError(f"{path} is no longer an empty folder ({error.strerror}), so this image was "
                                  "discarded; nothing was deleted.") from None
    else:
        for name in _commit_order(staging):
            rename_noreplace(staging / name, path / name)
        staging.rmdir()


def _commit_order(staging: Path) -> list[str]:
    """The entries of a staging folder, level folders first and group metadata last."""
    names = sorted(p.name for p in staging.iterdir())
    return [n for n in names if n not in ("zarr.json", ".zgroup", ".zattrs")] + \
        [n for n in (".zgroup", ".zattrs", "zarr.json") if n in names]


def _swap_entries(staging: Path, path: Path, replace: Sequence[str]) -> None:
    """Replace the entries ``replace`` of ``path`` by those of ``staging``; on failure, put everything back."""
    trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    moved_out: list[str] = []
    moved_in: list[str] = []
    try:
        for name in replace:
            os.rename(path / name, trash / name)
            moved_out.append(name)
        for name in _commit_order(staging):
            try:
                rename_noreplace(staging / name, path / name)
            except FileExistsError:
                raise FileExistsError(f"{path / name} appeared while the image was written; nothing was "
                                      "replaced.") from None
            moved_in.append(name)
    except BaseException:
        for name in reversed(moved_in):
            os.rename(path / name, staging / name)
        for name in reversed(moved_out):
            os.rename(trash / name, path / name)
        trash.rmdir()
        raise
    shutil.rmtree(trash)  # holds only the entries _replaceable_entries allowed
    staging.rmdir()


def replace_own_file(path: str | os.PathLike, content: bytes, recorded: Mapping[str, object], *,
                     lock: bool = True) -> dict:
    """Replace a file this package wrote by ``content`` in one rename, so that readers never miss it.

    ``content`` is written into a staging folder beside ``path`` (:func:`make_staging`, kind
    ``"metadata"``); then, under the commit lock of ``path`` (:func:`commit_lock`), the file is checked
    to still be the one ``recorded`` (:func:`identity_matches`) and replaced by a single
    :func:`os.replace`. A reader sees the old file or the new one, never no file. This is the one
    replacing rename the safety rules allow: the file it replaces is shown to be ours first.

    Parameters
    ----------
    path
        A regular file that this package wrote, e.g. a group's ``zarr.json``; its name must be a
        group metadata name (``zarr.json``, ``.zattrs``, ``.zgroup``).
    content
        The new bytes.
    recorded
        The file's identity as this package recorded it (:func:`entry_identity`).
    lock
        Take the commit lock of ``path``. Pass ``False`` only while holding a commit lock that
        guards the file already (the lock of the folder it is in).

    Returns
    -------
    dict
        The identity of the new file (record it to replace the file again later).

    Raises
    ------
    NotOursError
        If the file is no longer the one recorded (changed, replaced, removed, or a link); nothing
        is replaced then.
    ValueError
        If ``path`` is not named like group metadata, or ``content`` is not bytes.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from data_helpers.safety import entry_identity, replace_own_file
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "zarr.json"
    >>> _ = f.write_text("{}")
    >>> new = replace_own_file(f, b'{"node_type": "group"}', entry_identity(f))
    >>> f.read_text(), new["size"]
    ('{"node_type": "group"}', 22)
    """
    path = Path(path)
    if path.name not in (*_GROUP_METADATA[2], *_GROUP_METADATA[3]):
        raise ValueError(f"replace_own_file replaces group metadata (zarr.json, .zattrs, .zgroup), not "
                         f"{path.name!r}.")
    if not isinstance(content, (bytes, bytearray)):
        raise ValueError(f"content must be bytes, got {type(content).__name__}; encode text first, e.g. "
                         "json.dumps(doc).encode().")
    staging = make_staging(path, kind="metadata")
    try:
        new = staging / path.name
        new.write_bytes(bytes(content))
        with commit_lock(path) if lock else contextlib.nullcontext():
            if not identity_matches(path, recorded):
                raise NotOursError(f"{path} is not the file this package wrote there (it was changed, replaced or "
                                   "removed since), so it was not replaced. Check what changed it, then run again.")
            os.replace(new, path)  # the one step readers see: the old file, then the new one
            identity = entry_identity(path)
    finally:
        remove_staging(staging)
    return identity


@contextlib.contextmanager
def commit_lock(path: str | os.PathLike, *, staging: str | os.PathLike | None = None):
    """Hold ``.<name>.lock`` next to ``path`` while committing to it; a lock left by a process that died is removed.

    Parameters
    ----------
    path
        The target of the commit.
    staging
        The staging folder being committed (from :func:`make_staging`). The lock then records its name
        and kind, so that the staging folder stays recognisable for :func:`remove_stale_staging` after
        its own owner record is removed for the final rename.

    Raises
    ------
    FileExistsError
        If a running process holds the lock (its commit to ``path`` is under way).
    UnsafePathError
        If the lock's name is taken by a link or a folder.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from data_helpers.safety import commit_lock
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with commit_lock(d / "image.ome.zarr"):
    ...     (d / ".image.ome.zarr.lock").exists()
    True
    """
    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    for attempt in (1, 2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o644)
            break
        except FileExistsError:
            if lock.is_symlink() or not lock.is_file():
                raise UnsafePathError(f"{lock} is {'a symbolic link' if lock.is_symlink() else 'not a file'}, not "
                                      f"this package's lock file, so nothing was committed to {path}. Remove "
                                      "it, then run again.") from None
            owner = _read_owner(lock)
            if attempt == 1 and owner is not None and not _owner_alive(owner):
                remove_stale_staging(path.parent)  # a staging folder this lock stands for goes first
                lock.unlink(missing_ok=True)
                warnings.warn(f"removed {lock.name} next to {path}: the lock of a write by process {owner['pid']}, "
                              "which is no longer running.", RuntimeWarning, stacklevel=5)
                continue
            holder = f"process {owner['pid']}" if owner else "another write"
            raise FileExistsError(f"another write to {path} is being committed right now ({holder} holds "
                                  f"{lock}), so this result was discarded and nothing was changed; "
                                  "run it again once that write has finished.") from None
        except PermissionError as error:
            raise _not_writable(path, error) from None
    record = _this_process()
    if staging is not None:
        staging = Path(staging)
        staging_owner = _read_owner(staging / _STAGING_OWNER) or {}
        record.update(staging=staging.name, kind=staging_owner.get("kind", "ome-zarr"))
    with os.fdopen(fd, "w") as file:
        file.write(json.dumps(record) + "\n")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


# -- rule 3: staging and leftovers ------------------------------------------------------------------------


def _not_writable(target: Path, error: OSError) -> NotWritableError:
    return NotWritableError(f"cannot write {target}: {target.parent} is not a folder this process may write to "
                            f"({error.strerror or error}). Choose a target inside a folder of yours (the "
                            "chapter's output folder, your home folder).")


_STAGING_KINDS = ("ome-zarr", "labels", "metadata", "tiff")


def _is_metadata_file(entry: os.DirEntry) -> bool:
    return entry.name in (*_GROUP_METADATA[2], *_GROUP_METADATA[3]) and entry.is_file(follow_symlinks=False)


def _image_staging_entry(entry: os.DirEntry) -> bool:
    """Whether ``entry`` is one a staging image holds: group metadata, level folders, the rechunking copy."""
    if entry.is_symlink():
        return False
    if entry.is_dir(follow_symlinks=False):
        return entry.name.isdigit() or entry.name == "_rechunk.zarr"
    return _is_metadata_file(entry)


def _staging_content_ok(kind: str, staging_name: str = "") -> Callable[[list[os.DirEntry]], bool] | None:
    """What a staging folder of ``kind`` may hold (a test of its list of entries); None for an unknown kind.

    - ``"ome-zarr"`` (``write_ome_zarr``, the converters, a label image added to an existing ``labels/``):
      group metadata, numbered level folders and ``_rechunk.zarr``;
    - ``"labels"`` (``write_labels`` making ``labels/``): group metadata and one folder of a plain name
      that holds what an ``"ome-zarr"`` staging folder holds (the label image);
    - ``"metadata"`` (:func:`replace_own_file`): one group metadata file;
    - ``"tiff"`` (``ome_zarr_to_tiff``): TIFF files and an export manifest.

    A staging folder recorded as ``"ome-zarr"`` whose target is named ``labels`` is read as ``"labels"``
    (``write_labels`` once recorded its new labels group so).
    """

    def others(entries: list[os.DirEntry]) -> list[os.DirEntry]:
        return [e for e in entries if e.name != _STAGING_OWNER]

    def image(entries: list[os.DirEntry]) -> bool:
        return all(_image_staging_entry(e) for e in others(entries))

    def labels(entries: list[os.DirEntry]) -> bool:
        folders = [e for e in others(entries) if not _is_metadata_file(e)]
        if len(folders) > 1:
            return False
        for e in folders:
            if not is_plain_name(e.name) or e.is_symlink() or not e.is_dir(follow_symlinks=False):
                return False
            with os.scandir(e.path) as inside:
                if not all(_image_staging_entry(c) for c in inside):
                    return False
        return True

    def metadata(entries: list[os.DirEntry]) -> bool:
        return len(others(entries)) <= 1 and all(_is_metadata_file(e) for e in others(entries))

    def tiff(entries: list[os.DirEntry]) -> bool:
        return all(e.is_file(follow_symlinks=False) and (_TIFF_NAME.fullmatch(e.name) is not None
                                                         or e.name.endswith(".made-by-data_helpers-export.json"))
                   for e in others(entries))

    if kind == "ome-zarr":
        match = _STAGING_NAME.fullmatch(staging_name)
        if match is not None and match["target"] == "labels":
            return lambda entries: image(entries) or labels(entries)
        return image
    return {"labels": labels, "metadata": metadata, "tiff": tiff}.get(kind)


def make_staging(target: str | os.PathLike, kind: str = "ome-zarr") -> Path:
    """Create the hidden staging folder ``.<name>.partial-<id>/`` beside ``target``, recording its writer.

    First makes the parent folders, and removes stale staging folders in that folder
    (:func:`remove_stale_staging`).

    Parameters
    ----------
    target
        Where the result will go.
    kind
        What the staging folder will hold, so a later clean-up knows its entries: ``"ome-zarr"``
        (group metadata and level folders), ``"labels"`` (a new ``labels/`` group: its metadata and
        one label image), ``"metadata"`` (one group metadata file, see :func:`replace_own_file`) or
        ``"tiff"`` (TIFF files and an export manifest).

    Raises
    ------
    NotWritableError
        If the folder of ``target`` cannot be created or written.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from data_helpers.safety import make_staging, remove_staging
    >>> staging = make_staging(pathlib.Path(tempfile.mkdtemp()) / "a.ome.zarr")
    >>> staging.name.startswith(".a.ome.zarr.partial-")
    True
    >>> remove_staging(staging)
    """
    target = Path(target)
    if _staging_content_ok(kind) is None:
        raise ValueError(f"kind={kind!r}; use one of {', '.join(map(repr, _STAGING_KINDS))}.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise  # a file in the way: the caller's own error
    except OSError as error:
        raise _not_writable(target, error) from None
    remove_stale_staging(target.parent)
    staging = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:12]}"
    try:
        staging.mkdir()
    except OSError as error:
        raise _not_writable(target, error) from None
    (staging / _STAGING_OWNER).write_text(json.dumps({**_this_process(), "kind": kind}) + "\n")
    return staging


def remove_staging(staging: str | os.PathLike) -> None:
    """Remove a staging folder made by this call (after a failure); it holds only what this call wrote.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from data_helpers.safety import make_staging, remove_staging
    >>> s = make_staging(pathlib.Path(tempfile.mkdtemp()) / "x.tif", kind="tiff")
    >>> remove_staging(s); s.exists()
    False
    """
    staging = Path(staging)
    if staging.is_dir() and not staging.is_symlink():
        shutil.rmtree(staging, ignore_errors=True)


_remove_staging = remove_staging


def remove_stale_staging(folder: str | os.PathLike) -> list[Path]:
    """Remove the staging folders in ``folder`` whose recorded writer is no longer running.

    A staging folder is removed only if all of this holds: its name is ``.<name>.partial-<12 hex
    digits>``, it is a real folder (not a link), it holds an owner record that this package wrote
    naming a process that has ended (or whose process id now belongs to a later process; a folder
    whose record was removed for its commit counts when the commit lock of its target names it), and it
    holds only entries a staging folder of its recorded kind holds. Each removal is reported with a
    :class:`RuntimeWarning`. A staging folder of a running writer is never touched.

    Returns
    -------
    list of pathlib.Path
        The folders removed.

    Examples
    --------
    >>> import tempfile
    >>> from data_helpers.safety import remove_stale_staging
    >>> remove_stale_staging(tempfile.mkdtemp())
    []
    """
    folder = Path(folder)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _STAGING_NAME.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        owner = _read_owner(path / _STAGING_OWNER)
        if owner is None and not os.path.lexists(path / _STAGING_OWNER):
            # a writer killed while committing: the commit lock of its target names this folder instead
            held = _read_owner(folder / f".{match['target']}.lock")
            if held is not None and held.get("staging") == entry.name:
                owner = held
        if owner is None or _owner_alive(owner):
            continue
        allowed = _staging_content_ok(owner.get("kind", "ome-zarr"), entry.name)
        try:
            with os.scandir(path) as children:
                if allowed is None or not allowed(list(children)):
                    continue
            shutil.rmtree(path)
        except OSError:
            continue
        removed.append(path)
        warnings.warn(f"removed {entry.name} next to {folder / match['target']}: an unfinished write by process "
                      f"{owner['pid']}, which is no longer running.", RuntimeWarning, stacklevel=3)
    return removed


_make_staging = make_staging
_commit_lock = commit_lock


def _remove_stale_staging(target: Path) -> list[Path]:
    """Remove stale staging folders beside ``target`` (in its folder): see :func:`remove_stale_staging`."""
    return remove_stale_staging(Path(target).parent)


def _this_process() -> dict:
    return {"writer": "data_helpers", "pid": os.getpid(), "started": _process_start(os.getpid())}


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if unknown."""
    try:
        import psutil
    except ImportError:
        return None
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _is_whole_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_owner(file: Path) -> dict | None:
    """The owner record in a staging folder or lock file, or None if it is not one this package wrote."""
    if file.is_symlink():
        return None
    try:
        owner = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(owner, dict) or owner.get("writer") != "data_helpers" or not _is_whole_number(owner.get("pid")) \
            or not isinstance(owner.get("started"), (int, float, type(None))) or owner["pid"] <= 0:
        return None
    return owner


def pid_running(pid: int) -> bool:
    """Whether a process with this id exists (POSIX; one we may not signal counts as running).

    Examples
    --------
    >>> import os
    >>> from data_helpers.safety import pid_running
    >>> pid_running(os.getpid())
    True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _owner_alive(owner: dict) -> bool:
    """Whether the process that wrote ``owner`` is still running (unknown counts as running)."""
    pid, started = owner["pid"], owner["started"]
    if pid == os.getpid():
        now = _process_start(pid)
        return started is None or now is None or abs(now - started) < 1.0
    try:
        import psutil
    except ImportError:
        return os.name != "posix" or pid_running(pid)
    if not psutil.pid_exists(pid):
        return False
    now = _process_start(pid)
    return started is None or now is None or abs(now - started) < 1.0  # else the pid belongs to a later process
