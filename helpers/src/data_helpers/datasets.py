"""Sample datasets: download them once, verify every file, open them read-only.

Each dataset is a set of files with pinned SHA-256 hashes (a *registry*, in
`pooch`'s sense). Before a dataset is opened, every one of its files is checked
against its hash. A missing or corrupted file is downloaded again; if that is
impossible, :class:`DataUnavailableError` is raised. Wrong or partial data is
never returned: zarr would silently read a missing chunk file as zeros, so the
check happens before zarr ever sees the folder.

Three environment variables change where data comes from:

``DATA_HELPERS_CACHE``
    Folder of the local cache. Default: the operating system's cache folder
    (``~/.cache/data_helpers`` on Linux), as :func:`pooch.os_cache` gives it.
``DATA_HELPERS_MIRROR``
    Where to download from instead of the public address. Two forms are
    accepted: the base URL of an ``http://`` or ``https://`` mirror, for example
    ``http://127.0.0.1:8000`` when ``python -m data_helpers serve FOLDER`` runs
    (the file ``hoa_heart.zarr/.zarray`` is then fetched from
    ``http://127.0.0.1:8000/hoa_heart.zarr/.zarray``), or ``file:///path/to/FOLDER``,
    an existing folder on this machine that holds ``hoa_heart.zarr/``. Any other
    form (``ftp://``, a bare path) is refused with a :class:`ValueError`.
``DATA_HELPERS_OFFLINE``
    Set to ``1`` to forbid any network use: only a complete, verified cache is
    accepted.

The cache, exactly:

* Each file is downloaded into a temporary file beside its final place,
  verified, and only then renamed into place (an atomic step).
* Processes that fill the same cache at once take turns: the one that holds the
  lock file ``.<folder>.lock`` in the cache folder downloads, the others wait
  (at most :data:`LOCK_TIMEOUT` seconds), then verify what it wrote. A complete
  cache is verified without the lock, so a cache that is not writable (a shared,
  read-only copy) still works.
* Cached files are readable by everyone the umask allows (``0444`` under the
  usual umask ``022``) and, once verified, neither they nor the dataset's folder
  are writable: nothing, not even ``zarr.open(path, mode="r+")``, can change
  the sample by accident. To delete a cache, give write permission back first
  (``chmod -R u+w DIR``). A corrupted cached file is replaced by a fresh,
  verified download; the folder is made writable for that time only.
* A cached file that cannot be read raises :class:`DataUnavailableError`; it is
  never replaced, since it may belong to someone else.
* A mirror must accept the connection within :data:`CONNECT_TIMEOUT` seconds,
  and may stay silent at most :data:`READ_TIMEOUT` seconds at a time (this
  bounds the wait between two pieces of data, not the whole download, so a
  large file over a slow link still arrives). A mirror that does not answer
  is not asked again; a dropped connection or a file that fails its hash is
  tried once more.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pooch

from data_helpers.errors import BookError

if TYPE_CHECKING:  # pragma: no cover
    import dask.array
    import numpy as np
    import zarr

__all__ = [
    "ARRAY_TYPES",
    "DATASETS",
    "DataUnavailableError",
    "DatasetInfo",
    "cache_dir",
    "data_source",
    "dataset_info",
    "download_all",
    "fetch_dataset",
    "heart_data_path",
    "load_dataset",
    "load_heart_data",
]

ENV_CACHE = "DATA_HELPERS_CACHE"
ENV_MIRROR = "DATA_HELPERS_MIRROR"
ENV_OFFLINE = "DATA_HELPERS_OFFLINE"

#: Where the sample data is published: an immutable address (a fixed commit).
CANONICAL_BASE_URL = (
    "https://raw.githubusercontent.com/HEFTIEProject/heftie-textbook/"
    "1d59fbf341a433b327c1459fe217769446da8a8e/book/data/"
)

#: Seconds a mirror has to accept a connection.
CONNECT_TIMEOUT = 5.0
#: Seconds a mirror may stay silent (no byte arrives) before a download is abandoned.
READ_TIMEOUT = 10.0
#: Seconds to wait for another process that is filling the same cache folder.
LOCK_TIMEOUT = 300.0
#: The most bytes one file of a dataset without registered ``sizes`` may have (a download stops there).
MAX_UNREGISTERED_BYTES = 64 * 2**20
#: The forms of ``DATA_HELPERS_MIRROR`` that are accepted.
MIRROR_SCHEMES = ("http://", "https://", "file://")

#: The values accepted by ``array_type``.
ARRAY_TYPES = ("numpy", "zarr", "dask")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class DataUnavailableError(BookError, RuntimeError):
    """A sample dataset is not in the cache and cannot be downloaded.

    The message names the dataset, the file, the cache folder, and the ways
    out: go online, set a mirror, or pre-download into a cache folder.
    """


@dataclass(frozen=True)
class DatasetInfo:
    """What is known about one sample dataset, before it is downloaded.

    Attributes
    ----------
    name
        Short name used by :func:`load_dataset`, e.g. ``"heart"``.
    title
        One-line human description.
    folder
        Name of the Zarr store, relative to the base URL and the cache folder.
    files
        Mapping of file name (inside ``folder``) to its SHA-256 hex digest.
    sizes
        Mapping of file name to its size in bytes: a download stops as soon as a
        mirror sends more than that. ``None``: each file may be at most
        :data:`MAX_UNREGISTERED_BYTES`.
    shape, dtype, chunks
        Array shape, NumPy dtype name and chunk shape, in ``axes`` order.
    axes
        Axis names, slowest-varying first.
    voxel_size
        Physical size of one voxel along each axis, in ``unit``.
    unit
        UDUNITS-2 name of the length unit of ``voxel_size``, as OME-Zarr wants.
    licence, citation, doi, source
        Where the data comes from and how to credit it.
    zarr_format
        Zarr format version of the store (2 or 3).
    """

    name: str
    title: str
    folder: str
    files: dict[str, str]
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    axes: tuple[str, ...]
    voxel_size: tuple[float, ...]
    unit: str
    licence: str
    citation: str
    doi: str = ""
    source: str = ""
    zarr_format: int = 2
    sizes: dict[str, int] | None = None

    def __post_init__(self) -> None:
        if self.sizes is not None and (set(self.sizes) != set(self.files) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in self.sizes.values())):
            raise ValueError(f"sizes of dataset {self.name!r} must give a whole number of bytes for each of its "
                             f"files {sorted(self.files)}, and only for those; got {self.sizes!r:.200}.")

    def max_bytes(self, rel: str) -> int:
        """The most bytes a download of file ``rel`` may write: its registered size."""
        return self.sizes[rel] if self.sizes is not None else MAX_UNREGISTERED_BYTES

    @property
    def nbytes(self) -> int:
        """Size of the uncompressed array in bytes."""
        import numpy as np

        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize

    @property
    def registry(self) -> dict[str, str]:
        """The pooch registry: ``folder/file`` -> ``sha256:<digest>``."""
        return {f"{self.folder}/{f}": f"sha256:{h}" for f, h in self.files.items()}

    def __str__(self) -> str:
        size = " x ".join(str(s) for s in self.shape)
        vox = " x ".join(f"{v:g}" for v in self.voxel_size)
        return (
            f"{self.title}\n"
            f"  shape {size} ({', '.join(self.axes)}), {self.dtype}, chunks {self.chunks}\n"
            f"  voxel size {vox} {self.unit}\n"
            f"  licence {self.licence}\n"
            f"  cite: {self.citation}"
        )


HEART = DatasetInfo(
    name="heart",
    title="Human heart, HiP-CT (Human Organ Atlas), pyramid level 6, 8 bit",
    folder="hoa_heart.zarr",
    files={
        ".zarray": "6e53b6de6ad9d739c489dc18d27b124b9ebc809fe18ff65d58136227a234f6a1",
        "0.0.0": "1ae8ffe6041a39680dfd685e40f590e8de510dc34c378e16b600ddfd6d504945",
        "0.0.1": "dd3bd89017863c2197d65c1a8ee3afdb9350dd4dfd8d35038b675dfac8f505f1",
        "0.0.2": "e83fd3090a03dcc3f24e60527789dc6c0d8bbc33a747e109353081aa151dc857",
        "0.1.0": "afcc2708547b20a1a574d260b2ca24a854a9bc85fae23337eb54b80ddfb1e9ac",
        "0.1.1": "6482a24b48dc43d967ef6255ad390931c631b9455480f8e50fd61f097f37dc72",
        "0.1.2": "b66d241c39c0509f7e681fc15fe93c053e9f81af717d04a2c5226574722e8778",
        "1.0.0": "6fda0ffbf58e84f2b28c78c7c5cae3e916bd9aec13411cfe2dcd36aa563e4ff6",
        "1.0.1": "28680465bd407f591f4d2c9b1b2bc904b9ab05542409eb700495cfffcfddbbbe",
        "1.0.2": "45b184354509c1de0b9c51091b1623d02dabb74a93dd2a0877c6ba50b50efc4b",
        "1.1.0": "50a253223077eca97e418bc5beb62c949fc296930eed01e6c5ce91b0bfb53629",
        "1.1.1": "4606b28fcba611164eac6b4da687faf4ed48d09178688738212bed34efb8428b",
        "1.1.2": "3ffda08e913e2f7501f3e1a0f13b3d14456e81567f525a6fae859a4582042b72",
    },
    sizes={
        ".zarray": 298,
        "0.0.0": 120897,
        "0.0.1": 131135,
        "0.0.2": 25880,
        "0.1.0": 107689,
        "0.1.1": 98452,
        "0.1.2": 21561,
        "1.0.0": 99901,
        "1.0.1": 110858,
        "1.0.2": 20096,
        "1.1.0": 93132,
        "1.1.1": 94511,
        "1.1.2": 17465,
    },
    shape=(120, 120, 139),
    dtype="uint8",
    chunks=(64, 64, 64),
    axes=("z", "y", "x"),
    # HiP-CT pyramids halve every axis at each level: 19.89 um x 2**6.
    voxel_size=(19.89 * 2**6,) * 3,
    unit="micrometer",
    licence="CC-BY-4.0",
    citation=(
        "Walsh, C. L. et al. Imaging intact human organs with local resolution "
        "of cellular structures using hierarchical phase-contrast tomography. "
        "Nature Methods 18, 1532-1541 (2021)."
    ),
    doi="10.1038/s41592-021-01317-x",
    source=(
        "Human Organ Atlas, donor LADAF-2020-27, complete heart, scan "
        "19.89um_complete-organ_bm18; whole of pyramid level 6, clipped to the "
        "1st-99th percentile and rescaled to 8 bit."
    ),
)

#: All sample datasets, by name.
DATASETS: dict[str, DatasetInfo] = {HEART.name: HEART}


# --------------------------------------------------------------------------
# configuration from the environment
# --------------------------------------------------------------------------
def cache_dir() -> Path:
    """Return the folder where sample data is cached.

    ``DATA_HELPERS_CACHE`` if set, else the operating system's cache folder.

    Examples
    --------
    >>> from data_helpers import cache_dir
    >>> cache_dir().name  # doctest: +SKIP
    'data_helpers'
    """
    env = os.environ.get(ENV_CACHE, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    return Path(pooch.os_cache("data_helpers"))


def _offline() -> bool:
    value = os.environ.get(ENV_OFFLINE, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{ENV_OFFLINE}={os.environ[ENV_OFFLINE]!r} is not understood. "
        f"Set it to 1 to forbid network use, or to 0 (or unset it) to allow it."
    )


def data_source() -> str:
    """Return the base URL that sample data is downloaded from.

    ``DATA_HELPERS_MIRROR`` if set, else the canonical public address. A mirror
    is either an ``http://`` or ``https://`` base URL, or ``file:///path`` naming
    an existing folder on this machine (returned as a ``file://`` URL of the
    resolved folder). Both end with ``/``.

    Raises
    ------
    ValueError
        If the mirror is not one of these forms (``ftp://`` and other schemes,
        a bare path, a URL without a host), or a ``file://`` mirror is not an
        existing folder.

    Examples
    --------
    >>> from data_helpers import data_source
    >>> data_source().startswith(("http://", "https://", "file://"))
    True
    """
    mirror = os.environ.get(ENV_MIRROR, "").strip()
    if not mirror:
        return CANONICAL_BASE_URL
    forms = (
        "Give the base URL of an http:// or https:// mirror, such as "
        "http://127.0.0.1:8000, under which 'hoa_heart.zarr/.zarray' is served, "
        "or file:///path/to/FOLDER for a folder on this machine that holds "
        "'hoa_heart.zarr/'."
    )
    scheme, sep, _ = mirror.partition("://")
    scheme = scheme.lower() if sep else ""
    if scheme in ("http", "https"):
        if not urlsplit(mirror).hostname:
            raise ValueError(f"{ENV_MIRROR}={mirror!r} has no host name. {forms}")
        return mirror.rstrip("/") + "/"
    if scheme == "file":
        parts = urlsplit(mirror)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(
                f"{ENV_MIRROR}={mirror!r} names the host {parts.netloc!r}: a file:// "
                f"mirror must be a folder on this machine, as file:///path/to/FOLDER. {forms}"
            )
        folder = Path(url2pathname(parts.path))
        if not folder.is_absolute() or not folder.is_dir():
            raise ValueError(
                f"{ENV_MIRROR}={mirror!r}: {str(folder)!r} is not an existing folder. "
                f"{forms}"
            )
        return folder.resolve().as_uri().rstrip("/") + "/"
    if scheme:
        raise ValueError(
            f"{ENV_MIRROR}={mirror!r}: {scheme}:// mirrors are not supported. {forms}"
        )
    raise ValueError(
        f"{ENV_MIRROR}={mirror!r} is not a URL. {forms} To use files that are "
        f"already verified in a cache folder, set {ENV_CACHE} to it instead."
    )


def dataset_info(name: str = "heart") -> DatasetInfo:
    """Return what is known about a sample dataset, without downloading it.

    Parameters
    ----------
    name
        Name of the dataset; one of the keys of :data:`DATASETS`.

    Examples
    --------
    >>> from data_helpers import dataset_info
    >>> info = dataset_info("heart")
    >>> info.shape, info.dtype, info.unit
    ((120, 120, 139), 'uint8', 'micrometer')
    """
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(
            f"Unknown dataset {name!r}. Choose one of: "
            + ", ".join(repr(n) for n in DATASETS)
            + "."
        ) from None


# --------------------------------------------------------------------------
# fetching and verification
# --------------------------------------------------------------------------
def _sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unavailable(info: DatasetInfo, rel: str, cache: Path, why: str) -> DataUnavailableError:
    return DataUnavailableError(
        f"The sample dataset {info.name!r} cannot be used: the file {rel!r} is not "
        f"verified in the cache, and it could not be downloaded.\n"
        f"  cache folder: {cache}\n"
        f"  reason: {why}\n"
        f"Ways out:\n"
        f"  1. Go online and run this again (or run: python -m data_helpers download).\n"
        f"  2. Point {ENV_MIRROR} at a mirror that serves '{info.folder}/', e.g. "
        f"{ENV_MIRROR}=http://127.0.0.1:8000 with 'python -m data_helpers serve "
        f"FOLDER' running.\n"
        f"  3. Pre-download: on a machine with access run 'python -m data_helpers "
        f"download --cache DIR', copy DIR here and set {ENV_CACHE}=DIR.\n"
        f"No partial or unverified data is ever opened."
    )


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # other systems: set and restore at once
    os.umask(mask)
    return mask


def _check_cache(info: DatasetInfo, cache: Path) -> dict[str, str]:
    """Return ``{file: problem}`` for every file of ``info`` that is missing or corrupted.

    A file that exists but cannot be read is not a problem that a download may
    fix (it may belong to another user): it raises :class:`DataUnavailableError`.
    """
    bad: dict[str, str] = {}
    for rel, digest in info.files.items():
        path = cache / info.folder / rel
        try:
            if not path.is_file():
                bad[rel] = "the file is missing"
            elif _sha256(path) != digest:
                bad[rel] = "the cached file fails its SHA-256 check"
        except OSError as exc:
            raise _unavailable(
                info, f"{info.folder}/{rel}", cache,
                f"the cached file cannot be read ({type(exc).__name__}: "
                f"{exc.strerror or exc}). Make the cache readable (for example "
                f"'chmod -R a+rX {cache}' by its owner), or set {ENV_CACHE} to a "
                f"cache folder of your own.",
            ) from None
    return bad


def _make_read_only(info: DatasetInfo, cache: Path) -> None:
    """Clear the write bits of the verified files of ``info`` and of their folder.

    Best effort: a file or folder of another user, or on a read-only file
    system, is left as it is. Symbolic links are never followed.
    """
    folder = cache / info.folder
    for path in [folder / rel for rel in info.files] + [folder]:
        try:
            st = os.lstat(path)
            if (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) and st.st_mode & 0o222:
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o222)
        except OSError:
            pass


class _SourceError(Exception):
    """Reading from a ``file://`` mirror failed."""


class _TooLargeError(Exception):
    """The mirror sent (or announced) more bytes than the file has."""


class _Capped:
    """A writable file that refuses to grow beyond ``limit`` bytes (before writing the excess)."""

    def __init__(self, out: BinaryIO, limit: int) -> None:
        self.out, self.limit, self.written = out, limit, 0

    def write(self, block: bytes) -> None:
        if self.written + len(block) > self.limit:
            raise _TooLargeError(f"more than the {self.limit} bytes the file has")
        self.out.write(block)
        self.written += len(block)


def _copy_from(base_url: str, rel: str, out: BinaryIO, session: object, limit: int) -> None:
    """Copy the file ``rel`` of the mirror at ``base_url`` into ``out``: at most ``limit`` bytes."""
    out = _Capped(out, limit)  # type: ignore[assignment]
    if base_url.startswith("file://"):
        source = Path(url2pathname(urlsplit(base_url).path)) / rel
        try:
            f = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise _SourceError(f"{type(exc).__name__}: {exc.strerror or exc} ({source})") from None
        with f:
            while True:
                try:
                    block = f.read(1 << 20)
                except OSError as exc:
                    raise _SourceError(f"{type(exc).__name__}: {exc} ({source})") from None
                if not block:
                    return
                out.write(block)
    with session.get(  # type: ignore[attr-defined]
        base_url + rel, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)
    ) as response:
        response.raise_for_status()
        announced = response.headers.get("Content-Length", "")
        if announced.strip().isdigit() and int(announced) > limit:
            raise _TooLargeError(f"{announced} bytes announced, but the file has {limit}")
        for block in response.iter_content(1 << 16):
            out.write(block)


def _download(info: DatasetInfo, cache: Path, base_url: str, rel: str, session: object) -> None:
    """Download one file into a temporary file beside its place, verify it, move it in."""
    import requests

    folder = cache / info.folder
    dest = folder / rel
    where = f"{info.folder}/{rel}"
    url = base_url + where
    attempts = 2  # one more try after a dropped connection or a wrong file; none after a timeout
    for attempt in range(1, attempts + 1):
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{rel}.", suffix=".part")
        except OSError as exc:
            why = f"the cache folder cannot be written: {exc}. Set {ENV_CACHE}."
            raise _unavailable(info, where, cache, why) from None
        try:
            try:
                with os.fdopen(fd, "wb") as out:
                    _copy_from(base_url, where, out, session, info.max_bytes(rel))
                got = _sha256(tmp)
                if got != info.files[rel]:
                    why = (
                        f"the file served at {url} is not the expected file (SHA-256 "
                        f"{got}, expected {info.files[rel]}). Check the mirror."
                    )
                    if attempt < attempts:
                        continue
                    raise _unavailable(info, where, cache, why) from None
                os.chmod(tmp, 0o444 & ~_umask())
                if os.path.isfile(dest) and not os.path.islink(dest):
                    # a corrupted file of the package's own cache: replacing a
                    # read-only file needs its write bit back on some systems
                    os.chmod(dest, stat.S_IMODE(os.stat(dest).st_mode) | stat.S_IWUSR)
                os.replace(tmp, dest)
                return
            except requests.Timeout as exc:
                kind = "accept a connection" if isinstance(exc, requests.ConnectTimeout) else "answer"
                limit = CONNECT_TIMEOUT if isinstance(exc, requests.ConnectTimeout) else READ_TIMEOUT
                why = (
                    f"the mirror {base_url} did not {kind} within {limit:g} s when asked "
                    f"for {url}. Check that it runs and answers, or choose another mirror."
                )
                raise _unavailable(info, where, cache, why) from None
            except requests.HTTPError as exc:
                why = f"download from {url} failed: {type(exc).__name__}: {exc}"
                raise _unavailable(info, where, cache, why) from None
            except requests.RequestException as exc:
                if attempt < attempts:
                    continue
                why = f"download from {url} failed: {type(exc).__name__}: {exc}"
                raise _unavailable(info, where, cache, why) from None
            except _SourceError as exc:
                why = f"the mirror folder cannot give {where}: {exc}"
                raise _unavailable(info, where, cache, why) from None
            except _TooLargeError as exc:
                if attempt < attempts:
                    continue
                why = (
                    f"the mirror sent too much for {url} ({exc}), so the download was stopped there and "
                    "nothing was kept. Check the mirror, or choose another one."
                )
                raise _unavailable(info, where, cache, why) from None
            except OSError as exc:
                why = f"the cache folder cannot be written: {exc}. Set {ENV_CACHE}."
                raise _unavailable(info, where, cache, why) from None
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)


def fetch_dataset(name: str = "heart") -> Path:
    """Make sure every file of a dataset is cached and verified; return its folder.

    Every file is checked against its pinned SHA-256 hash. A missing or
    corrupted file is downloaded (again) into a temporary file, verified, and
    only then moved into place, so an interrupted download never leaves a file
    that could be taken for good data. Processes that fill the same cache at
    once take turns through a lock file; verified files and their folder are
    left read-only (see the module's description for the exact rules).

    Parameters
    ----------
    name
        Name of the dataset; one of the keys of :data:`DATASETS`.

    Returns
    -------
    pathlib.Path
        The local folder of the Zarr store.

    Raises
    ------
    DataUnavailableError
        If a file is missing or corrupted and cannot be downloaded (offline,
        blocked network, unreachable or silent mirror, or the download itself
        is wrong), or a cached file cannot be read.
    ValueError
        If ``DATA_HELPERS_MIRROR`` or ``DATA_HELPERS_OFFLINE`` is not understood.

    Examples
    --------
    >>> from data_helpers import fetch_dataset
    >>> path = fetch_dataset("heart")  # doctest: +SKIP
    >>> sorted(p.name for p in path.iterdir())[:2]  # doctest: +SKIP
    ['.zarray', '0.0.0']
    """
    info = dataset_info(name)
    cache = cache_dir()
    folder = cache / info.folder
    offline = _offline()
    base_url = None if offline else data_source()  # a bad mirror setting is reported at once

    bad = _check_cache(info, cache)
    if not bad:
        _make_read_only(info, cache)
        return folder
    if base_url is None:
        rel, why = next(iter(bad.items()))
        raise _unavailable(
            info, f"{info.folder}/{rel}", cache, f"{why} and network use is off ({ENV_OFFLINE}=1)"
        ) from None

    import filelock
    import requests

    lock_path = cache / f".{info.folder}.lock"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(lock_path, timeout=LOCK_TIMEOUT)
        lock.acquire()
    except filelock.Timeout:
        rel = next(iter(bad))
        why = (
            f"another process has been filling this cache for more than {LOCK_TIMEOUT:g} s "
            f"(it holds {lock_path}). Wait for it, or stop it and run this again."
        )
        raise _unavailable(info, f"{info.folder}/{rel}", cache, why) from None
    except OSError as exc:
        rel = next(iter(bad))
        why = f"the cache folder cannot be written: {exc}. Set {ENV_CACHE}."
        raise _unavailable(info, f"{info.folder}/{rel}", cache, why) from None
    try:
        bad = _check_cache(info, cache)  # another process may have filled it meanwhile
        if bad:
            try:
                folder.mkdir(exist_ok=True)
                mode = stat.S_IMODE(os.stat(folder).st_mode)
                if not mode & stat.S_IWUSR:
                    os.chmod(folder, mode | stat.S_IWUSR)  # sealed after an earlier fill
            except OSError as exc:
                why = f"the cache folder cannot be written: {exc}. Set {ENV_CACHE}."
                raise _unavailable(info, f"{info.folder}/{next(iter(bad))}", cache, why) from None
            with requests.Session() as session:
                for rel in bad:
                    _download(info, cache, base_url, rel, session)
    finally:
        _make_read_only(info, cache)
        lock.release()
    return folder


def heart_data_path() -> Path:
    """Return the local folder of the verified heart sample (a Zarr v2 array).

    Downloads it first if needed. See :func:`fetch_dataset`.

    Examples
    --------
    >>> from data_helpers import heart_data_path
    >>> heart_data_path().name  # doctest: +SKIP
    'hoa_heart.zarr'
    """
    return fetch_dataset("heart")


def download_all(names: list[str] | None = None) -> dict[str, Path]:
    """Download and verify every sample dataset ahead of time.

    Use it to prepare a classroom or an offline laptop: run it once online
    (or ``python -m data_helpers download``), then work with no network.

    Parameters
    ----------
    names
        Datasets to fetch; all of :data:`DATASETS` by default.

    Returns
    -------
    dict
        Dataset name -> local folder.

    Examples
    --------
    >>> from data_helpers import download_all
    >>> download_all()  # doctest: +SKIP
    {'heart': PosixPath('/home/me/.cache/data_helpers/hoa_heart.zarr')}
    """
    if names is None:
        names = list(DATASETS)
    if isinstance(names, str):
        raise TypeError(f"names must be a list of dataset names, not the string {names!r}.")
    return {name: fetch_dataset(name) for name in names}


# --------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------
def load_dataset(
    name: str, array_type: Literal["numpy", "zarr", "dask"] = "numpy"
) -> np.ndarray | zarr.Array | dask.array.Array:
    """Open a verified sample dataset as a NumPy, Zarr or Dask array.

    Parameters
    ----------
    name
        Name of the dataset; one of the keys of :data:`DATASETS`.
    array_type
        ``"numpy"`` loads the whole array into memory (a copy you may change);
        ``"zarr"`` opens the cached store **read-only**; ``"dask"`` wraps that
        read-only store lazily, one dask chunk per Zarr chunk.

    Raises
    ------
    ValueError
        If ``array_type`` or ``name`` is unknown.
    DataUnavailableError
        If the data cannot be fetched and verified.

    Examples
    --------
    >>> from data_helpers import load_dataset
    >>> load_dataset("heart", "zarr").shape  # doctest: +SKIP
    (120, 120, 139)
    """
    if array_type not in ARRAY_TYPES:
        raise ValueError(
            f"Unknown array_type {array_type!r}. Choose one of: "
            + ", ".join(repr(t) for t in ARRAY_TYPES)
            + "."
        )
    info = dataset_info(name)
    path = fetch_dataset(name)

    import zarr
    from zarr.storage import LocalStore

    arr = zarr.open_array(store=LocalStore(path, read_only=True), mode="r", zarr_format=info.zarr_format)
    if arr.shape != info.shape or arr.dtype != info.dtype:  # pragma: no cover - guarded by hashes
        raise DataUnavailableError(
            f"{path} holds a {arr.dtype} array of shape {arr.shape}, but dataset "
            f"{name!r} is {info.dtype} {info.shape}. The registry and data disagree."
        )
    if array_type == "zarr":
        return arr
    if array_type == "dask":
        import dask.array as da

        return da.from_zarr(arr, name=f"{name}-sample")
    return arr[...]


def load_heart_data(
    array_type: Literal["numpy", "zarr", "dask"] = "numpy",
) -> np.ndarray | zarr.Array | dask.array.Array:
    """Load the heart CT sample: 120 x 120 x 139 voxels of uint8, (z, y, x).

    A whole human heart imaged by hierarchical phase-contrast tomography
    (HiP-CT) in the Human Organ Atlas, reduced to 1.273 mm voxels. Data:
    CC-BY-4.0; cite Walsh et al., Nature Methods 18, 1532 (2021). The voxel size
    is not stored in the file: get it from ``dataset_info("heart")``.

    Parameters
    ----------
    array_type
        ``"numpy"`` (in memory, a copy), ``"zarr"`` (the cached store opened
        read-only) or ``"dask"`` (lazy, over the read-only store).

    Raises
    ------
    ValueError
        If ``array_type`` is not one of ``"numpy"``, ``"zarr"``, ``"dask"``.
    DataUnavailableError
        If the data cannot be fetched and verified.

    Examples
    --------
    >>> from data_helpers import load_heart_data
    >>> heart = load_heart_data()  # doctest: +SKIP
    >>> heart.shape, heart.dtype  # doctest: +SKIP
    ((120, 120, 139), dtype('uint8'))
    """
    return load_dataset("heart", array_type)
