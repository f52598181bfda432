"""data_helpers.datasets: download, verification, caching, offline use, errors."""

from __future__ import annotations

import errno
import http.server
import multiprocessing
import os
import socket
import stat
import threading

import numpy as np
import pytest
import requests

from conftest import SHARED_DATA, sha256, skip_or_fail
from data_helpers import datasets
from data_helpers.datasets import DataUnavailableError, load_dataset
from data_helpers.server import LocalServer


def writable(path):
    """Give back the write bits the cache takes away, as a user who tampers with it must."""
    for p in (path.parent, path):
        if p.exists():
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    return path


def assert_helpful(err: DataUnavailableError, dataset: str, file: str, cache) -> None:
    """The offline/blocked error names the dataset, file, cache and three ways out."""
    msg = str(err)
    assert repr(dataset) in msg
    assert file in msg
    assert str(cache) in msg
    assert "Go online" in msg
    assert datasets.ENV_MIRROR in msg
    assert "python -m data_helpers download" in msg and datasets.ENV_CACHE in msg
    # One clear error, not a chained requests traceback.
    assert err.__cause__ is None and err.__suppress_context__


# -- happy paths -------------------------------------------------------------
def test_numpy_result_equals_source(tiny):
    arr = load_dataset("tiny", "numpy")
    assert isinstance(arr, np.ndarray)
    np.testing.assert_array_equal(arr, tiny.data)


def test_every_file_is_cached_and_verified(tiny):
    path = datasets.fetch_dataset("tiny")
    assert path == tiny.cache / "tiny.zarr"
    for name, digest in tiny.info.files.items():
        assert sha256(path / name) == digest


def test_zarr_result_is_read_only(tiny):
    arr = load_dataset("tiny", "zarr")
    np.testing.assert_array_equal(arr[...], tiny.data)
    before = {p.name: sha256(p) for p in (tiny.cache / "tiny.zarr").iterdir()}
    with pytest.raises(ValueError, match="read-only"):
        arr[0, 0, 0] = 7
    after = {p.name: sha256(p) for p in (tiny.cache / "tiny.zarr").iterdir()}
    assert before == after


def test_dask_result_is_lazy_and_correct(tiny):
    import dask.array as da

    arr = load_dataset("tiny", "dask")
    assert isinstance(arr, da.Array)
    assert arr.chunksize == (8, 8, 8)
    np.testing.assert_array_equal(arr.compute(), tiny.data)


def test_numpy_copy_can_change_without_touching_cache(tiny):
    arr = load_dataset("tiny", "numpy")
    arr[...] = 0
    np.testing.assert_array_equal(load_dataset("tiny", "numpy"), tiny.data)


def test_download_all_fetches_named_datasets(tiny):
    paths = datasets.download_all(["tiny"])
    assert paths == {"tiny": tiny.cache / "tiny.zarr"}
    with pytest.raises(TypeError, match="list"):
        datasets.download_all("tiny")


def test_complete_cache_works_offline(tiny, monkeypatch):
    datasets.fetch_dataset("tiny")
    tiny.server.stop()
    monkeypatch.setenv(datasets.ENV_OFFLINE, "1")
    np.testing.assert_array_equal(load_dataset("tiny"), tiny.data)


def test_complete_cache_needs_no_server(tiny):
    """A verified cache is used as is: no request is made once every hash matches."""
    datasets.fetch_dataset("tiny")
    tiny.server.stop()
    np.testing.assert_array_equal(load_dataset("tiny"), tiny.data)


# -- bad input ----------------------------------------------------------------
@pytest.mark.parametrize("bad", ["xarray", "NumPy", "", None])
def test_unknown_array_type_lists_choices(tiny, bad):
    with pytest.raises(ValueError) as info:
        load_dataset("tiny", bad)
    for choice in ("'numpy'", "'zarr'", "'dask'"):
        assert choice in str(info.value)


def test_unknown_array_type_fails_before_any_download(tiny):
    with pytest.raises(ValueError):
        datasets.load_heart_data("xarray")
    assert not (tiny.cache / "hoa_heart.zarr").exists()


def test_unknown_dataset_lists_choices(clean_env):
    with pytest.raises(ValueError, match="'heart'"):
        datasets.dataset_info("lung")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:8000", "not a URL"),
        ("/some/folder", "not a URL"),
        ("ftp://127.0.0.1/data", "ftp:// mirrors are not supported"),
        ("FTP://127.0.0.1/data", "ftp:// mirrors are not supported"),
        ("s3://bucket/data", "s3:// mirrors are not supported"),
        ("http://", "no host name"),
        ("file:///no/such/folder", "not an existing folder"),
        ("file://otherhost/data", "a folder on this machine"),
    ],
)
def test_mirror_forms_other_than_http_and_file_folder_are_refused(clean_env, monkeypatch, url, message):
    monkeypatch.setenv(datasets.ENV_MIRROR, url)
    with pytest.raises(ValueError, match=message) as info:
        datasets.data_source()
    assert "http://" in str(info.value) and "file:///" in str(info.value)  # says what is accepted


def test_unsupported_mirror_is_refused_before_anything_is_written(tiny, monkeypatch):
    monkeypatch.setenv(datasets.ENV_MIRROR, "ftp://127.0.0.1/data")
    with pytest.raises(ValueError, match="ftp://"):
        load_dataset("tiny")
    assert not tiny.cache.exists()


def test_file_mirror_is_a_folder_on_this_machine(tiny, monkeypatch):
    tiny.server.stop()  # the files come from the folder, not over HTTP
    monkeypatch.setenv(datasets.ENV_MIRROR, tiny.mirror.as_uri())
    assert datasets.data_source() == tiny.mirror.resolve().as_uri() + "/"
    np.testing.assert_array_equal(load_dataset("tiny"), tiny.data)
    for name, digest in tiny.info.files.items():
        assert sha256(tiny.cached(name)) == digest


def test_file_mirror_missing_file_is_named(tiny, monkeypatch):
    tiny.served("1.0.1").unlink()
    monkeypatch.setenv(datasets.ENV_MIRROR, tiny.mirror.as_uri() + "/")
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("tiny")
    assert_helpful(info.value, "tiny", "tiny.zarr/1.0.1", tiny.cache)
    assert "FileNotFoundError" in str(info.value) and "mirror folder" in str(info.value)
    assert not tiny.cached("1.0.1").exists()


def test_offline_value_must_be_understood(clean_env, monkeypatch):
    monkeypatch.setenv(datasets.ENV_OFFLINE, "maybe")
    with pytest.raises(ValueError, match="DATA_HELPERS_OFFLINE"):
        datasets.fetch_dataset("heart")


def test_cache_folder_follows_environment(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv(datasets.ENV_CACHE, str(tmp_path / "elsewhere"))
    assert datasets.cache_dir() == (tmp_path / "elsewhere").resolve()


def test_mirror_follows_environment(clean_env, monkeypatch):
    assert datasets.data_source() == datasets.CANONICAL_BASE_URL
    monkeypatch.setenv(datasets.ENV_MIRROR, "http://127.0.0.1:8000")
    assert datasets.data_source() == "http://127.0.0.1:8000/"


# -- offline, blocked, broken ---------------------------------------------------
def test_offline_with_empty_cache_gives_one_helpful_error(tiny, monkeypatch):
    monkeypatch.setenv(datasets.ENV_OFFLINE, "1")
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("tiny")
    assert_helpful(info.value, "tiny", "tiny.zarr/", tiny.cache)
    assert "DATA_HELPERS_OFFLINE=1" in str(info.value)


def test_offline_with_partial_cache_names_missing_file(tiny, monkeypatch):
    datasets.fetch_dataset("tiny")
    writable(tiny.cached("0.1.0")).unlink()
    monkeypatch.setenv(datasets.ENV_OFFLINE, "1")
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("tiny")
    assert_helpful(info.value, "tiny", "tiny.zarr/0.1.0", tiny.cache)


def test_unreachable_mirror_gives_one_helpful_error(tiny):
    tiny.server.stop()  # the mirror's port now refuses connections
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("tiny")
    assert_helpful(info.value, "tiny", "tiny.zarr/", tiny.cache)
    assert "ConnectionError" in str(info.value)
    assert not isinstance(info.value, requests.RequestException)


def test_file_missing_on_mirror_is_named(tiny):
    tiny.served("1.1.1").unlink()
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("tiny")
    assert_helpful(info.value, "tiny", "tiny.zarr/1.1.1", tiny.cache)
    assert "404" in str(info.value)
    assert not tiny.cached("1.1.1").exists()


def test_corrupted_cached_file_is_downloaded_again(tiny):
    datasets.fetch_dataset("tiny")
    good = tiny.info.files["0.0.1"]
    writable(tiny.cached("0.0.1")).write_bytes(b"not a chunk")
    np.testing.assert_array_equal(load_dataset("tiny"), tiny.data)
    assert sha256(tiny.cached("0.0.1")) == good


def test_corrupted_cached_file_offline_is_refused(tiny, monkeypatch):
    datasets.fetch_dataset("tiny")
    writable(tiny.cached("0.0.1")).write_bytes(b"not a chunk")
    monkeypatch.setenv(datasets.ENV_OFFLINE, "1")
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("tiny")
    assert_helpful(info.value, "tiny", "tiny.zarr/0.0.1", tiny.cache)
    assert "SHA-256" in str(info.value)


def test_corrupted_cache_and_corrupted_mirror_never_give_data(tiny):
    datasets.fetch_dataset("tiny")
    writable(tiny.cached("0.0.1")).write_bytes(b"bad cache")
    tiny.served("0.0.1").write_bytes(b"bad mirror")
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("tiny")
    assert_helpful(info.value, "tiny", "tiny.zarr/0.0.1", tiny.cache)
    assert "not the expected file" in str(info.value)


def test_missing_metadata_file_never_opens_as_empty_array(tiny, monkeypatch):
    """zarr would read missing chunks as fill values: the hash check must stop that first."""
    datasets.fetch_dataset("tiny")
    for chunk in ("0.0.0", "0.0.1"):
        writable(tiny.cached(chunk)).unlink()
    monkeypatch.setenv(datasets.ENV_OFFLINE, "1")
    with pytest.raises(DataUnavailableError):
        load_dataset("tiny", "zarr")


class _TruncatingHandler(http.server.BaseHTTPRequestHandler):
    """Promises the whole file, sends half of it, then drops the connection."""

    payload = b"x" * 100_000

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload[: len(self.payload) // 2])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args):
        pass


def test_interrupted_download_leaves_nothing_behind(tiny, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TruncatingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv(datasets.ENV_MIRROR, f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(DataUnavailableError) as info:
            load_dataset("tiny")
    finally:
        server.shutdown()
        server.server_close()
    assert_helpful(info.value, "tiny", "tiny.zarr/", tiny.cache)
    folder = tiny.cache / "tiny.zarr"
    leftovers = list(folder.iterdir()) if folder.exists() else []
    assert leftovers == [], f"an interrupted download left {leftovers}"


def test_stray_temporary_file_from_killed_download_is_ignored(tiny):
    """A process killed mid-download leaves pooch's tmp file; it is never read as data."""
    folder = tiny.cache / "tiny.zarr"
    folder.mkdir(parents=True)
    (folder / "tmpabc123").write_bytes(b"half a chunk")
    np.testing.assert_array_equal(load_dataset("tiny"), tiny.data)


# -- the real heart sample --------------------------------------------------------
def _shared_sums() -> dict[str, str]:
    sums = SHARED_DATA / "SHA256SUMS"
    if not sums.is_file():
        skip_or_fail(f"the shared sample data is not at {SHARED_DATA}")
    return {name: digest for digest, name in (line.split() for line in sums.read_text().splitlines() if line)}


def test_heart_registry_matches_published_hashes():
    assert datasets.HEART.files == _shared_sums()
    assert len(datasets.HEART.files) == 13


def test_heart_metadata():
    info = datasets.dataset_info("heart")
    assert info.shape == (120, 120, 139) and info.dtype == "uint8"
    assert info.voxel_size == pytest.approx((1272.96,) * 3)
    assert info.unit == "micrometer"
    assert "Walsh" in info.citation and "1532" in info.citation
    assert info.licence == "CC-BY-4.0"
    assert info.nbytes == 120 * 120 * 139


def test_heart_downloads_from_loopback_mirror(clean_env, monkeypatch):
    _shared_sums()
    with LocalServer(SHARED_DATA) as server:
        monkeypatch.setenv(datasets.ENV_MIRROR, server.url)
        heart = datasets.load_heart_data("numpy")
        zarr_heart = datasets.load_heart_data("zarr")
    assert heart.shape == (120, 120, 139) and heart.dtype == np.uint8
    assert zarr_heart.read_only
    assert 0 < heart.mean() < 255  # real image data, not fill values
    assert datasets.heart_data_path() == clean_env / "cache" / "hoa_heart.zarr"


def test_offline_ignores_a_broken_mirror_setting(tiny, monkeypatch):
    """With network use off, the mirror is never consulted, so a bad value cannot matter."""
    datasets.fetch_dataset("tiny")
    monkeypatch.setenv(datasets.ENV_MIRROR, "not a url")
    monkeypatch.setenv(datasets.ENV_OFFLINE, "1")
    np.testing.assert_array_equal(load_dataset("tiny"), tiny.data)


# -- the cache on disk: concurrent fills, permissions, read-only -------------------
def _fill_in_another_process(info, cache_root, mirror, rounds, barrier, results):
    """Run in a spawned process: fill empty caches at the same moment as the other workers."""
    for var in (datasets.ENV_OFFLINE,):
        os.environ.pop(var, None)
    os.environ[datasets.ENV_MIRROR] = mirror
    datasets.DATASETS[info.name] = info
    for r in range(rounds):
        os.environ[datasets.ENV_CACHE] = str(cache_root / f"round-{r}")
        barrier.wait(timeout=120)
        try:
            datasets.fetch_dataset(info.name)
            results.put((r, "ok"))
        except Exception as exc:  # reported to the test, which shows it
            results.put((r, f"{type(exc).__name__}: {exc}"))


def test_concurrent_fills_of_an_empty_cache_all_succeed(tiny, tmp_path):
    """Real processes, started together on the same empty cache, several rounds."""
    workers, rounds = 4, 5
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    procs = [
        ctx.Process(
            target=_fill_in_another_process,
            args=(tiny.info, tmp_path / "shared", tiny.server.url, rounds, barrier, results),
        )
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    try:
        outcomes = [results.get(timeout=300) for _ in range(workers * rounds)]
    finally:
        for proc in procs:
            proc.join(timeout=60)
    failures = [outcome for outcome in outcomes if outcome[1] != "ok"]
    assert failures == [], failures[0][1]
    for r in range(rounds):
        folder = tmp_path / "shared" / f"round-{r}" / "tiny.zarr"
        assert {p.name: sha256(p) for p in folder.iterdir()} == tiny.info.files  # no leftovers


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o444), (0o027, 0o440), (0o077, 0o400)])
def test_cache_files_are_readable_by_others_as_the_umask_allows(tiny, umask, mode):
    old = os.umask(umask)
    try:
        path = datasets.fetch_dataset("tiny")
    finally:
        os.umask(old)
    for name in tiny.info.files:
        assert stat.S_IMODE((path / name).stat().st_mode) == mode, name


def test_verified_cache_is_read_only_on_disk(tiny):
    path = datasets.fetch_dataset("tiny")
    for p in [path, *path.iterdir()]:
        assert stat.S_IMODE(p.stat().st_mode) & 0o222 == 0, f"{p} is writable"


def _write_one_voxel(path) -> str:
    """Try to change one voxel of the cached array; say what happened."""
    import zarr

    array = zarr.open_array(path, mode="r+", zarr_format=2)
    before = array[0, 0, 0]  # reading must work, so a refusal below is about writing
    try:
        array[0, 0, 0] = before + 1
    except PermissionError:
        return "refused"
    return "written"


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_zarr_cannot_change_the_verified_cache(tiny):
    path = datasets.fetch_dataset("tiny")
    if os.geteuid() != 0:
        assert _write_one_voxel(path) == "refused"
    else:
        # Root writes whatever the modes say: try it as an ordinary user (nobody), in a
        # forked child that has zarr loaded already and starts inside the cache folder.
        pid = os.fork()
        if pid == 0:  # the child
            code = 3
            try:
                os.chdir(path)
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                code = {"refused": 0, "written": 1}[_write_one_voxel(".")]
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "an ordinary user could change the cache (1) or not read it (3)"
    np.testing.assert_array_equal(load_dataset("tiny"), tiny.data)


def test_writable_cache_of_an_older_version_is_made_read_only(tiny):
    path = datasets.fetch_dataset("tiny")
    for p in (path, path / "0.0.0"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    datasets.fetch_dataset("tiny")
    assert stat.S_IMODE((path / "0.0.0").stat().st_mode) == 0o444
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0


def test_corrupted_read_only_file_is_replaced(tiny):
    path = datasets.fetch_dataset("tiny")
    writable(path / "0.1.1").write_bytes(b"bit rot")
    (path / "0.1.1").chmod(0o444)
    path.chmod(0o555)
    np.testing.assert_array_equal(load_dataset("tiny"), tiny.data)
    assert sha256(path / "0.1.1") == tiny.info.files["0.1.1"]
    assert stat.S_IMODE((path / "0.1.1").stat().st_mode) & 0o222 == 0
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0
    assert sorted(p.name for p in path.iterdir()) == sorted(tiny.info.files)


def _deny_reads_by_mode(monkeypatch):
    """Root reads any file whatever its mode; make ``open`` in datasets check the mode as it would for a user."""
    if os.name == "posix" and os.geteuid() == 0:
        real_open = open

        def open_as_a_user(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and os.path.isfile(file) and not os.stat(file).st_mode & 0o444:
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(datasets, "open", open_as_a_user, raising=False)


@pytest.mark.parametrize("offline", [True, False])
def test_unreadable_cache_file_is_a_clear_error(tiny, monkeypatch, offline):
    path = datasets.fetch_dataset("tiny")
    target = writable(path / "1.0.1")
    target.chmod(0)
    _deny_reads_by_mode(monkeypatch)
    tiny.server.clear_requests()
    if offline:
        monkeypatch.setenv(datasets.ENV_OFFLINE, "1")
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("tiny")
    assert_helpful(info.value, "tiny", "tiny.zarr/1.0.1", tiny.cache)
    assert "cannot be read" in str(info.value) and "PermissionError" in str(info.value)
    # not replaced: it may be another user's file
    assert stat.S_IMODE(target.stat().st_mode) == 0
    assert [r for r in tiny.server.requests if r[1].endswith("1.0.1")] == []


@pytest.fixture
def silent_mirror():
    """A loopback port that accepts connections and never answers; yields (url, accepted connections)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever():
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_silent_mirror_fails_after_one_read_timeout_and_is_named(tiny, monkeypatch, silent_mirror):
    url, accepted = silent_mirror
    monkeypatch.setenv(datasets.ENV_MIRROR, url)
    monkeypatch.setattr(datasets, "READ_TIMEOUT", 0.5)
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("tiny")
    assert_helpful(info.value, "tiny", "tiny.zarr/", tiny.cache)
    assert f"the mirror {url}/ did not answer within 0.5 s" in str(info.value)
    assert len(accepted) == 1  # a mirror that does not answer is not asked again


def test_default_timeouts_are_seconds_not_minutes():
    assert 1 <= datasets.CONNECT_TIMEOUT <= 10
    assert 1 <= datasets.READ_TIMEOUT <= 30


FLOOD_BLOCK = 1 << 16
FLOOD_BYTES = 8 << 20  # what the flood server sends at most


class _FloodHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with FLOOD_BYTES of zeros, in step with the client's partial file.

    Before each block it waits (briefly) until the client has written what came before, and records the
    largest partial file it saw: so the record is what the client wrote, not what sat in socket buffers.
    """

    announce = False
    cache_folder = None
    largest_part = 0

    def log_message(self, *args):
        pass

    def _part_sizes(self):
        sizes = []
        for p in self.cache_folder.glob(".*.part"):
            try:
                sizes.append(p.stat().st_size)
            except FileNotFoundError:
                pass
        return sizes

    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.send_response(200)
        if self.announce:
            self.send_header("Content-Length", str(FLOOD_BYTES))
        self.end_headers()
        sent = 0
        block = b"\0" * FLOOD_BLOCK
        try:
            while sent < FLOOD_BYTES:
                for _ in range(200):
                    sizes = self._part_sizes()
                    if sizes:
                        type(self).largest_part = max(type(self).largest_part, *sizes)
                    if not sizes or max(sizes) >= sent - 2 * FLOOD_BLOCK:
                        break
                    threading.Event().wait(0.01)
                self.wfile.write(block)
                sent += FLOOD_BLOCK
        except OSError:
            pass  # the client hung up
        self.close_connection = True


@pytest.mark.parametrize("announce", [False, True], ids=["no-length", "announced-length"])
def test_a_flooding_mirror_is_cut_off_at_the_registered_size(tiny, monkeypatch, announce):
    import dataclasses

    sizes = {rel: (tiny.mirror / tiny.info.folder / rel).stat().st_size for rel in tiny.info.files}
    info = dataclasses.replace(tiny.info, sizes=sizes)
    monkeypatch.setitem(datasets.DATASETS, "tiny", info)
    folder = tiny.cache / info.folder
    handler = type("Flood", (_FloodHandler,), {"announce": announce, "cache_folder": folder, "largest_part": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv(datasets.ENV_MIRROR, f"http://127.0.0.1:{server.server_address[1]}/")
        with pytest.raises(DataUnavailableError) as error:
            datasets.fetch_dataset("tiny")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert handler.largest_part <= max(sizes.values()), handler.largest_part
    assert "sent too much" in str(error.value)
    assert not list(folder.glob(".*.part"))  # nothing partial is left
    assert not any((folder / rel).exists() for rel in info.files)


def test_registered_sizes_must_cover_the_files(tiny):
    import dataclasses

    with pytest.raises(ValueError, match="sizes of dataset 'tiny'"):
        dataclasses.replace(tiny.info, sizes={"nope": 1})
    assert datasets.HEART.sizes is not None and set(datasets.HEART.sizes) == set(datasets.HEART.files)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_file_mirror_that_never_ends_is_cut_off_at_the_registered_size(tiny, monkeypatch, tmp_path):
    """A file:// mirror whose file is endless (a link to /dev/zero) writes at most the registered size."""
    import dataclasses
    import shutil

    sizes = {rel: (tiny.mirror / tiny.info.folder / rel).stat().st_size for rel in tiny.info.files}
    info = dataclasses.replace(tiny.info, sizes=sizes)
    monkeypatch.setitem(datasets.DATASETS, "tiny", info)
    mirror = tmp_path / "endless"
    shutil.copytree(tiny.mirror, mirror)
    first = next(iter(info.files))
    (mirror / info.folder / first).unlink()
    (mirror / info.folder / first).symlink_to("/dev/zero")
    monkeypatch.setenv(datasets.ENV_MIRROR, mirror.as_uri())
    with pytest.raises(DataUnavailableError, match="sent too much"):
        datasets.fetch_dataset("tiny")
    folder = tiny.cache / info.folder
    assert not list(folder.glob(".*.part")) and not (folder / first).exists()
