"""Put an OME-Zarr image into an object store (S3 and alike), safely.

An object store is not a file system: it has no rename (so no atomic move of a
finished image into place), no append (an object is written whole, every time),
and no folders (a "folder" is a prefix of key names). :func:`write_ome_zarr`
relies on renames to never leave a half-written image behind, so it writes to a
local folder only. :func:`upload_ome_zarr` takes such a finished, valid image and
copies it to a store in the one order that is safe without renames: every chunk
first, then the metadata, the image's root ``zarr.json`` (or ``.zattrs``) last. A
reader that finds the root metadata finds a complete image; an upload that stops
half-way leaves objects that no reader mistakes for an image.

Only the image's own files go up: the Zarr metadata documents of its groups and
arrays, and the files whose names are chunk keys of its arrays. Anything else in
the folder (``.env``, notes, a ``.DS_Store``) stays local and is listed in the
report. Symbolic links are refused, never followed: a link inside an image could
point at a private key, and the bucket may be public.

Of two uploads to one prefix, exactly one gets in. An upload first checks that the prefix
is empty, then claims it with one object at a fixed key, :data:`UPLOAD_CLAIM`, put with a
conditional put (``If-None-Match: *``), which the store accepts only if the key is free: the
second upload's claim is refused at once with :class:`FileExistsError`. The winner lists the
prefix once more (an upload that finished and released its claim in between has left its
image there, and this upload then stops), writes the image, and at the end deletes its claim
object, after checking that it still holds its own id, so the finished prefix holds only the
image. Every object is written the same conditional way, so no upload ever replaces an object.
"""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from data_helpers.omezarr import OmeZarrError
from data_helpers.safety import read_no_follow  # rule 4: never read through a link

__all__ = ["UPLOAD_CLAIM", "UploadReport", "upload_ome_zarr"]

#: The key, under the image's prefix, of the object that claims the prefix while an upload runs.
UPLOAD_CLAIM = ".data_helpers-upload-claim"

_METADATA = frozenset({"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"})

#: Bytes read into memory per batch of concurrent puts (a single larger file is its own batch).
BATCH_BYTES = 64 * 2**20


@dataclass(frozen=True)
class UploadReport:
    """What :func:`upload_ome_zarr` put into the store.

    Attributes
    ----------
    url
        The image's URL in the store.
    n_objects, n_bytes
        Objects written and their total size.
    metadata_last
        The metadata keys, in the order written (the root's last).
    skipped
        Entries of the local folder that are not part of the image (hidden files, notes, files
        whose names are not chunk keys), relative to the folder; they were not uploaded.
    """

    url: str
    n_objects: int
    n_bytes: int
    metadata_last: tuple[str, ...]
    skipped: tuple[str, ...] = ()


@dataclass
class _Plan:
    chunks: list[str]
    metadata: list[str]
    skipped: list[str]
    links: list[str]


def _chunk_key_matcher(doc: dict, v2: bool):
    """Return a function telling whether a path (relative to the array) is one of its chunk keys."""
    shape = doc.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        return lambda rel: False
    ndim = len(shape)
    if v2:
        sep = doc.get("dimension_separator") or "."
        prefix = ""
        grid = doc.get("chunks")
    else:
        enc = doc.get("chunk_key_encoding") or {"name": "default"}
        name = enc.get("name") if isinstance(enc, dict) else None
        conf = (enc.get("configuration") or {}) if isinstance(enc, dict) else {}
        if name == "v2":
            sep, prefix = conf.get("separator", "."), ""
        else:
            sep, prefix = conf.get("separator", "/"), "c"
        cg = doc.get("chunk_grid") or {}
        grid = (cg.get("configuration") or {}).get("chunk_shape") if isinstance(cg, dict) else None
    if sep not in ("/", "."):
        return lambda rel: False
    counts = None
    if isinstance(grid, list) and len(grid) == ndim and all(isinstance(c, int) and c > 0 for c in grid):
        counts = [max(1, math.ceil(n / c)) for n, c in zip(shape, grid)]

    def is_chunk_key(rel: str) -> bool:
        if ndim == 0:
            return rel == ("c" if prefix else "0")
        parts = rel.split(sep) if sep == "." else rel.split("/")
        if sep == "." and "/" in rel:
            return False
        if prefix:
            if not parts or parts[0] != prefix:
                return False
            parts = parts[1:]
        if len(parts) != ndim or not all(re.fullmatch(r"0|[1-9][0-9]*", p) for p in parts):
            return False
        return counts is None or all(int(p) < n for p, n in zip(parts, counts))

    return is_chunk_key


def _read_json(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _plan_upload(folder: Path) -> _Plan:
    """Sort the folder's entries into the image's chunks and metadata, and everything else."""
    plan = _Plan([], [], [], [])

    def visit_node(directory: Path, rel: str) -> None:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
        names = {e.name for e in entries if e.is_file(follow_symlinks=False)}
        kind, doc, v2 = None, None, False
        if "zarr.json" in names:
            doc = _read_json(directory / "zarr.json") or {}
            kind = doc.get("node_type")
        elif ".zarray" in names:
            doc, kind, v2 = _read_json(directory / ".zarray") or {}, "array", True
        elif ".zgroup" in names or ".zattrs" in names:
            kind, v2 = "group", True
        is_chunk_key = _chunk_key_matcher(doc or {}, v2) if kind == "array" else None
        for entry in entries:
            key = rel + entry.name
            if entry.is_symlink():
                plan.links.append(key)
            elif entry.is_file(follow_symlinks=False) and entry.name in _METADATA:
                plan.metadata.append(key)
            elif kind == "array":
                visit_array_entry(entry, key, len(rel), is_chunk_key)
            elif kind == "group" and entry.is_dir(follow_symlinks=False) and _is_node(Path(entry.path)):
                visit_node(Path(entry.path), key + "/")
            else:
                plan.skipped.append(key + ("/" if entry.is_dir(follow_symlinks=False) else ""))

    def visit_array_entry(entry: os.DirEntry, key: str, base: int, is_chunk_key) -> None:
        if entry.is_symlink():
            plan.links.append(key)
        elif entry.is_dir(follow_symlinks=False):
            for child in sorted(os.scandir(entry.path), key=lambda e: e.name):
                visit_array_entry(child, f"{key}/{child.name}", base, is_chunk_key)
        elif entry.is_file(follow_symlinks=False) and is_chunk_key(key[base:]):
            plan.chunks.append(key)
        else:
            plan.skipped.append(key)

    visit_node(folder, "")
    return plan


def _is_node(directory: Path) -> bool:
    return any((directory / name).is_file() and not (directory / name).is_symlink()
               for name in ("zarr.json", ".zarray", ".zgroup", ".zattrs"))


def upload_ome_zarr(folder: str | os.PathLike, url: str, *, storage_options: dict | None = None) -> UploadReport:
    """Copy a valid local OME-Zarr image to an object store: chunks first, root metadata last.

    Only the image's own files are uploaded: the metadata documents of its Zarr groups and
    arrays (``zarr.json``; ``.zgroup``, ``.zarray``, ``.zattrs``, ``.zmetadata``) and, in each
    array, the files whose names are chunk keys of that array (``c/0/0/0``, ``0.0.0``, ...).
    Other entries (hidden files such as ``.env``, notes, folders that are not Zarr nodes) are
    left out and listed in :attr:`UploadReport.skipped`. Symbolic links are never followed.

    Parameters
    ----------
    folder
        A local OME-Zarr image, e.g. written by :func:`data_helpers.write_ome_zarr`. It is
        validated first and never changed.
    url
        Where the image goes, e.g. ``"s3://bucket/images/heart.ome.zarr"``. Nothing may exist
        under it yet: an object store cannot swap an old image for a new one in one step,
        so replacing is refused (delete the old one yourself, knowing readers may see a gap).
    storage_options
        Passed to fsspec, e.g. the endpoint and keys for s3fs.

    Returns
    -------
    UploadReport
        The objects and bytes written, the metadata keys in the order written, and the local
        entries left out.

    Raises
    ------
    data_helpers.InvalidOmeZarrError
        If ``folder`` is not a valid OME-Zarr image (the report lists why).
    data_helpers.OmeZarrError
        If the image's folder holds symbolic links (they are listed), or ``folder`` is not a
        folder.
    FileExistsError
        If objects already exist under ``url``, or another upload to ``url`` claimed it first.
    ValueError
        If ``url`` is not a URL (``scheme://...``).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from data_helpers import write_ome_zarr
    >>> from data_helpers.objectstore import upload_ome_zarr
    >>> from data_helpers.s3server import LocalS3Server
    >>> local = tempfile.mkdtemp() + "/a.ome.zarr"
    >>> _ = write_ome_zarr(np.zeros((32, 32, 32), np.uint8), local, voxel_size=1.0, chunks=16)
    >>> with LocalS3Server("demo") as s3:
    ...     report = upload_ome_zarr(local, "s3://demo/a.ome.zarr", storage_options=s3.storage_options())
    >>> report.metadata_last[-1]
    'zarr.json'
    """
    import fsspec

    from data_helpers.validation import validate_ome_zarr

    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"url={url!r} must be an object-store URL such as 's3://bucket/image.ome.zarr'; "
                         f"for a local folder, use write_ome_zarr or a file copy.")
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a path to a local OME-Zarr folder, not {type(folder).__name__}.")
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        raise OmeZarrError(f"{folder} is not a folder (or is a symbolic link): give the image's own folder.")
    plan = _plan_upload(folder)
    if plan.links:
        shown = ", ".join(plan.links[:10]) + (f" and {len(plan.links) - 10} more" if len(plan.links) > 10 else "")
        raise OmeZarrError(f"{folder} holds symbolic links, which upload_ome_zarr never follows (a link may "
                           f"lead to a private file, and the bucket may be public): {shown}. Replace each "
                           f"link by a copy of the file it stands for, or remove it, then upload again.")
    validate_ome_zarr(folder, check_chunks=True).raise_if_problems()
    fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    root = root.rstrip("/")
    # metadata deepest first: each level's array metadata before the image's root metadata
    meta = sorted(plan.metadata, key=lambda k: (-k.count("/"), k))
    order = sorted(plan.chunks) + meta
    _refuse_existing(fs, root, url)
    claim = _claim(fs, root, url)
    try:
        _refuse_existing(fs, root, url, claim=claim)
        n_bytes = 0
        batch, size = [], 0
        for key in sorted(plan.chunks):  # the chunks, many at once (s3fs puts a dict of objects concurrently)
            batch.append(key)
            size += (folder / key).stat().st_size
            if size >= BATCH_BYTES:
                n_bytes += _put(fs, folder, root, batch, url)
                batch, size = [], 0
        if batch:
            n_bytes += _put(fs, folder, root, batch, url)
        for key in meta:  # then the metadata, one by one, in order
            n_bytes += _put(fs, folder, root, [key], url)
    finally:
        _release(fs, claim)
    return UploadReport(url=url, n_objects=len(order), n_bytes=n_bytes, metadata_last=tuple(meta),
                        skipped=tuple(plan.skipped))


@dataclass(frozen=True)
class _Claim:
    key: str
    token: bytes


def _claim(fs, root: str, url: str) -> _Claim:
    """Put the claim object of ``root`` only if no other upload holds it; it names this upload."""
    token = json.dumps({"writer": "data_helpers", "upload": uuid.uuid4().hex, "pid": os.getpid()}).encode()
    claim = _Claim(f"{root}/{UPLOAD_CLAIM}", token)
    try:
        fs.pipe({claim.key: token}, mode="create")
    except FileExistsError:
        raise FileExistsError(f"{url} is being written by another upload (it holds the claim object "
                              f"{UPLOAD_CLAIM}), so this upload stopped before writing anything. Upload to a new "
                              f"prefix, or wait for the other upload and check what it wrote.") from None
    return claim


def _release(fs, claim: _Claim) -> None:
    """Delete this upload's claim object, only if it still holds this upload's id."""
    fs.invalidate_cache(claim.key.rsplit("/", 1)[0])
    try:
        if fs.cat_file(claim.key) != claim.token:
            return  # not this upload's claim any more: another writer's object is never deleted
    except FileNotFoundError:
        return
    fs.rm_file(claim.key)


def _refuse_existing(fs, root: str, url: str, *, claim: _Claim | None = None) -> None:
    fs.invalidate_cache(root)
    try:
        existing = [k for k in fs.find(root) if claim is None or k != claim.key]
    except FileNotFoundError:
        existing = []
    if not existing:
        return
    if claim is not None:
        raise FileExistsError(f"{url} was written by another upload while this one started (it holds "
                              f"{len(existing)} objects this upload did not write, e.g. {existing[0]}), so this "
                              f"upload stopped before writing anything but its claim, which it removed again. "
                              f"Upload to a new prefix.")
    if f"{root}/{UPLOAD_CLAIM}" in existing:
        raise FileExistsError(f"{url} is claimed by another upload (it holds the claim object {UPLOAD_CLAIM} "
                              f"and {len(existing) - 1} other objects), so this upload wrote nothing. Upload to a "
                              f"new prefix; if no upload is running (one was killed), delete the prefix's objects "
                              f"yourself first.")
    raise FileExistsError(f"{url} already holds {len(existing)} objects. An object store has no atomic "
                          f"rename, so an image cannot be replaced in one step: upload to a new prefix, "
                          f"or delete the old objects first.")


def _put(fs, folder: Path, root: str, keys: list[str], url: str) -> int:
    """Put ``keys`` (read without following links) only where no object exists yet; return the bytes."""
    data = {}
    for key in keys:
        try:
            data[f"{root}/{key}"] = read_no_follow(folder, key)
        except OSError as err:
            raise OmeZarrError(f"could not read {key} of {folder} as a plain file ({err}); it changed during "
                               f"the upload (a link or another kind of entry took its place). The objects "
                               f"uploaded so far are under {url}: check the folder and upload to a new "
                               f"prefix.") from err
    try:
        fs.pipe(data, mode="create")
    except FileExistsError as err:
        raise FileExistsError(f"an object under {url} appeared while this upload was writing ({err}): another "
                              f"writer uses the same prefix. Nothing was replaced; upload to a new "
                              f"prefix.") from err
    return sum(len(v) for v in data.values())
