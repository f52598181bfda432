"""Read the files of a Zarr store, on a local disk or behind an ``http(s)://`` or ``s3://`` URL.

The validator and :func:`data_helpers.read_ome_metadata` read only what they
need: a few small metadata files, and, to count chunk files, either a listing
(local folders, S3) or one ``HEAD`` request per expected chunk (HTTP, where no
listing exists). :class:`StoreReader` does that reading, counts the requests it
makes, and never follows a path out of the store.

Nothing here writes: a store is only ever read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from data_helpers.errors import BookError

__all__ = ["MAX_METADATA_BYTES", "StoreAccessError", "StoreReader", "is_url", "open_store"]

#: Metadata documents larger than this are refused (real ones are a few kB).
MAX_METADATA_BYTES = 16 * 2**20
_URL_SCHEMES = ("http://", "https://", "s3://")
_TIMEOUT = (5.0, 30.0)  # connect, read (seconds)


class StoreAccessError(BookError, OSError):
    """A store cannot be read at all (missing folder, refused connection, unknown URL scheme)."""


def is_url(path: str | os.PathLike) -> bool:
    """``True`` for ``http://``, ``https://`` and ``s3://`` strings."""
    return isinstance(path, str) and path.lower().startswith(_URL_SCHEMES)


def clean_key(key: str) -> str | None:
    """``key`` as a relative POSIX path inside the store, or ``None`` if it would leave it.

    Rejects absolute paths, ``..`` parts, backslashes, empty parts and NUL bytes: a
    dataset path comes from metadata, which is data, and must not name a file
    outside the store.
    """
    if not isinstance(key, str) or not key or "\x00" in key or "\\" in key or key.startswith("/"):
        return None
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return "/".join(parts)


class StoreReader:
    """Read-only access to one store; subclasses for local folders, HTTP and S3.

    Attributes
    ----------
    display
        The store's location as the user gave it (used in every message).
    requests
        Number of network requests made so far (always 0 for a local folder).
    """

    remote = False
    can_list = True

    def __init__(self, display: str):
        self.display = display
        self.requests = 0

    def join(self, key: str) -> str:
        """``key`` as the user would see it, e.g. ``image.ome.zarr/0/zarr.json``."""
        return f"{self.display.rstrip('/')}/{key}" if key else self.display

    def read(self, key: str, limit: int = MAX_METADATA_BYTES) -> bytes | None:
        """The bytes of the file ``key``, ``None`` if there is no such file.

        Raises :class:`ValueError` when the file is larger than ``limit``.
        """
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        """``True`` if ``key`` is a file of the store."""
        raise NotImplementedError

    def iter_files(self, prefix: str) -> Iterator[str]:
        """Every file key under ``prefix``, one at a time (never a full list in memory)."""
        raise NotImplementedError


class LocalStore(StoreReader):
    """A store in a local folder; symbolic links are followed, but never in a loop."""

    def __init__(self, root: Path, display: str):
        super().__init__(display)
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key if key else self.root

    def read(self, key: str, limit: int = MAX_METADATA_BYTES) -> bytes | None:
        path = self._path(key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:  # a symlink loop (ELOOP), a permission problem
            raise ValueError(f"cannot be read: {exc.strerror or exc}") from None
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                return None
            raise ValueError("is not a regular file")
        if st.st_size > limit:
            raise ValueError(f"is {st.st_size:,} bytes, larger than any plausible metadata document ({limit:,} bytes)")
        try:
            with open(path, "rb") as f:
                return f.read(limit + 1)
        except OSError as exc:
            raise ValueError(f"cannot be read: {exc.strerror or exc}") from None

    def exists(self, key: str) -> bool:
        try:
            return stat.S_ISREG(os.stat(self._path(key)).st_mode)
        except OSError:
            return False

    def iter_files(self, prefix: str) -> Iterator[str]:
        top = self._path(prefix)
        seen: set[tuple[int, int]] = set()
        stack = [(top, "")]
        while stack:
            folder, rel = stack.pop()
            try:
                st = os.stat(folder)
            except OSError:
                continue
            ident = (st.st_dev, st.st_ino)
            if ident in seen:  # a symlink loop, or the same folder linked twice
                continue
            seen.add(ident)
            try:
                entries = os.scandir(folder)
            except OSError:
                continue
            with entries:
                for entry in entries:
                    name = f"{rel}{entry.name}"
                    try:
                        if entry.is_dir():
                            stack.append((Path(entry.path), name + "/"))
                        elif entry.is_file():
                            yield name
                    except OSError:
                        continue


class HttpStore(StoreReader):
    """A store behind an ``http(s)://`` URL: ``GET`` for metadata, ``HEAD`` per chunk file."""

    remote = True
    can_list = False

    def __init__(self, url: str):
        super().__init__(url)
        import requests

        self._session = requests.Session()
        self.base = url.rstrip("/")

    def _url(self, key: str) -> str:
        from urllib.parse import quote

        return f"{self.base}/{quote(key)}" if key else self.base

    def _request(self, method: str, key: str, **kwargs):
        import requests

        self.requests += 1
        try:
            return self._session.request(method, self._url(key), timeout=_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise StoreAccessError(f"{self.join(key)} could not be fetched: {type(exc).__name__}: {exc}") from None

    def read(self, key: str, limit: int = MAX_METADATA_BYTES) -> bytes | None:
        response = self._request("GET", key, stream=True)
        with response:
            if response.status_code in (403, 404, 410):
                return None
            if response.status_code >= 400:
                raise StoreAccessError(f"{self.join(key)}: the server answered HTTP {response.status_code}.")
            data = response.raw.read(limit + 1, decode_content=True)
        if len(data) > limit:
            raise ValueError(f"is larger than any plausible metadata document ({limit:,} bytes)")
        return data

    def exists(self, key: str) -> bool:
        response = self._request("HEAD", key)
        response.close()
        return response.status_code < 400

    def iter_files(self, prefix: str) -> Iterator[str]:  # pragma: no cover - HTTP has no listing
        raise NotImplementedError("an HTTP server offers no listing; check files one by one with exists()")


class S3Store(StoreReader):
    """A store behind an ``s3://bucket/prefix`` URL, read through fsspec (s3fs)."""

    remote = True

    def __init__(self, url: str, storage_options: dict | None = None):
        super().__init__(url)
        try:
            import fsspec
        except ImportError:  # pragma: no cover - fsspec is pinned
            raise StoreAccessError("Reading s3:// URLs needs fsspec and s3fs: pip install s3fs") from None
        try:
            self.fs = fsspec.filesystem("s3", **(storage_options or {}))
        except (ImportError, ValueError) as exc:
            raise StoreAccessError(f"Reading s3:// URLs needs s3fs ({exc}); install it with: pip install s3fs") from None
        self.base = url[len("s3://"):].rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self.base}/{key}" if key else self.base

    def read(self, key: str, limit: int = MAX_METADATA_BYTES) -> bytes | None:
        self.requests += 1
        try:
            data = self.fs.cat_file(self._path(key), start=0, end=limit + 1)
        except FileNotFoundError:
            return None
        except PermissionError:
            return None
        except OSError as exc:
            raise StoreAccessError(f"{self.join(key)} could not be fetched: {exc}") from None
        if len(data) > limit:
            raise ValueError(f"is larger than any plausible metadata document ({limit:,} bytes)")
        return data

    def exists(self, key: str) -> bool:
        self.requests += 1
        try:
            return self.fs.isfile(self._path(key))
        except OSError:
            return False

    def iter_files(self, prefix: str) -> Iterator[str]:
        # walk yields one folder at a time; each step is one listing request (per 1000 keys).
        top = self._path(prefix).rstrip("/")
        self.fs.invalidate_cache()
        self.requests += 1
        for folder, _dirs, files in self.fs.walk(top):
            self.requests += 1
            rel = folder[len(top):].strip("/")
            for name in files:
                yield f"{rel}/{name}" if rel else name


def open_store(path: str | os.PathLike, storage_options: dict | None = None) -> StoreReader:
    """Open a local folder or a URL for reading; the location is kept as the user gave it.

    Parameters
    ----------
    path
        A folder, or an ``http://``, ``https://`` or ``s3://`` URL.
    storage_options
        Passed to fsspec for ``s3://`` URLs (for example ``{"anon": True}`` or
        ``{"endpoint_url": ...}``).

    Returns
    -------
    StoreReader
        An object with ``read``, ``exists`` and ``iter_files`` methods and a
        ``requests`` count.

    Raises
    ------
    StoreAccessError
        If a local path is not an existing folder, or the URL scheme is not supported.

    Examples
    --------
    >>> import tempfile
    >>> from data_helpers.storeaccess import open_store
    >>> store = open_store(tempfile.mkdtemp())
    >>> store.read("zarr.json") is None, store.requests
    (True, 0)
    """
    if isinstance(path, str) and "://" in path:
        if not is_url(path):
            scheme = path.split("://", 1)[0]
            raise StoreAccessError(
                f"{path!r}: the scheme {scheme}:// is not supported; give a local folder or an http://, https:// "
                "or s3:// URL."
            )
        if path.lower().startswith("s3://"):
            return S3Store(path, storage_options)
        return HttpStore(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"expected a folder path or a URL string, got {type(path).__name__} {path!r}.")
    display = os.fspath(path)
    root = Path(path)
    try:
        is_dir = root.is_dir()
    except OSError:
        is_dir = False
    if not is_dir:
        raise StoreAccessError(f"{display!r} is not an existing folder; give the folder of an OME-Zarr image (or a URL).")
    return LocalStore(root, display)


def join_key(*parts: str) -> str:
    """Join store keys with ``/``, skipping empty parts."""
    return str(PurePosixPath(*[p for p in parts if p])) if any(parts) else ""


def read_attributes(url: str, storage_options: dict | None = None) -> tuple[int | None, dict | None]:
    """(Zarr format, group attributes) of the node at ``url``; ``(None, None)`` when there is no node.

    Reads ``zarr.json`` (Zarr v3), else ``.zattrs`` (Zarr v2): one or two requests.

    Raises
    ------
    ValueError
        If the metadata file is not a JSON object.

    Examples
    --------
    >>> import tempfile
    >>> from data_helpers.storeaccess import read_attributes
    >>> read_attributes(tempfile.mkdtemp())
    (None, None)
    """
    import json

    store = open_store(url, storage_options)
    for name, fmt in (("zarr.json", 3), (".zattrs", 2)):
        raw = store.read(name)
        if raw is None:
            continue
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{store.join(name)} is not valid JSON ({exc}); restore it from the data's source.") from None
        attrs = doc.get("attributes", {}) if fmt == 3 and isinstance(doc, dict) else doc
        if not isinstance(attrs, dict):
            raise ValueError(f"{store.join(name)} holds no JSON object of attributes.")
        return fmt, attrs
    if store.read(".zgroup") is not None:
        return 2, {}
    return None, None
