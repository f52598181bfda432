"""upload_ome_zarr: only the image's own files, never through links, never two uploads to one prefix."""

from __future__ import annotations

import os

import fsspec
import numpy as np
import pytest

from data_helpers import OmeZarrError, open_ome_zarr, upload_ome_zarr, validate_ome_zarr, write_ome_zarr
from data_helpers.s3server import LocalS3Server

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")


def _image(path, value=0, shape=(16, 16, 16)):
    volume = np.full(shape, value, dtype=np.uint8)
    volume[0, 0, 0] = value + 1
    write_ome_zarr(volume, path, voxel_size=1.0, unit="um", chunks=8)
    return volume


def _keys(s3, prefix):
    return sorted(k.split(prefix + "/", 1)[1] for k in s3.filesystem().find(f"{s3.bucket}/{prefix}"))


def test_links_are_refused_and_listed_and_nothing_is_uploaded(tmp_path):
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    local = tmp_path / "img.ome.zarr"
    _image(local)
    (local / "key.pem").symlink_to(secret)
    with LocalS3Server("links", public_read=True) as s3:
        with pytest.raises(OmeZarrError, match=r"symbolic links.*key\.pem"):
            upload_ome_zarr(local, "s3://links/img.ome.zarr", storage_options=s3.storage_options())
        assert _keys(s3, "img.ome.zarr") == []


def test_a_linked_chunk_or_level_folder_is_refused(tmp_path):
    outside = tmp_path / "outside.ome.zarr"
    _image(outside)
    local = tmp_path / "img.ome.zarr"
    _image(local)
    chunk = next(p for p in (local / "0").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.unlink()
    chunk.symlink_to(tmp_path / "outside.ome.zarr" / chunk.relative_to(local))
    with LocalS3Server("linkedchunk") as s3:
        with pytest.raises(OmeZarrError, match=chunk.relative_to(local).as_posix()):
            upload_ome_zarr(local, "s3://linkedchunk/img.ome.zarr", storage_options=s3.storage_options())
        assert _keys(s3, "img.ome.zarr") == []


def test_hidden_and_foreign_files_stay_local(tmp_path):
    local = tmp_path / "img.ome.zarr"
    volume = _image(local)
    (local / ".env").write_text("AWS_SECRET_ACCESS_KEY=abc")
    (local / "notes.txt").write_text("mine")
    (local / "0" / ".DS_Store").write_bytes(b"x")
    (local / "0" / "c" / "backup.bin").write_bytes(b"x")
    (local / "drafts").mkdir()
    (local / "drafts" / "a.txt").write_text("draft")
    expected = sorted(p.relative_to(local).as_posix() for p in local.rglob("*")
                      if p.is_file() and (p.name in ("zarr.json",) or "/c/" in p.as_posix())
                      and p.name != "backup.bin")
    with LocalS3Server("hidden", public_read=True) as s3:
        report = upload_ome_zarr(local, "s3://hidden/img.ome.zarr", storage_options=s3.storage_options())
        assert _keys(s3, "img.ome.zarr") == expected
        assert report.n_objects == len(expected)
        assert set(report.skipped) == {".env", "notes.txt", "drafts/", "0/.DS_Store", "0/c/backup.bin"}
        level = open_ome_zarr("s3://hidden/img.ome.zarr", storage_options=s3.storage_options(anon=True))
        np.testing.assert_array_equal(level.data.compute(), volume)


def test_a_zarr_v2_image_uploads_its_dot_files(tmp_path):
    local = tmp_path / "v2.ome.zarr"
    volume = np.arange(16 ** 3, dtype=np.uint16).reshape(16, 16, 16)
    write_ome_zarr(volume, local, voxel_size=1.0, unit="um", chunks=8, version="0.4")
    (local / ".env").write_text("secret")
    with LocalS3Server("vtwo") as s3:
        report = upload_ome_zarr(local, "s3://vtwo/v2.ome.zarr", storage_options=s3.storage_options())
        keys = _keys(s3, "v2.ome.zarr")
        assert ".zattrs" in keys and "0/.zarray" in keys and ".env" not in keys
        assert report.skipped == (".env",)
        level = open_ome_zarr("s3://vtwo/v2.ome.zarr", storage_options=s3.storage_options())
        np.testing.assert_array_equal(level.data.compute(), volume)


def test_two_uploads_to_one_prefix_cannot_both_succeed(tmp_path, monkeypatch):
    """The second upload starts after the first checked the prefix, before it wrote anything."""
    first_local, second_local = tmp_path / "a.ome.zarr", tmp_path / "b.ome.zarr"
    _image(first_local, value=10)
    second_volume = _image(second_local, value=20)
    url = "s3://race/img.ome.zarr"
    real_url_to_fs = fsspec.core.url_to_fs
    outcome = {}

    class RacingFS:
        """The first upload's file system: its first write lets the second upload run to the end."""

        def __init__(self, fs):
            self._fs, self._raced = fs, False

        def __getattr__(self, name):
            attr = getattr(self._fs, name)
            if name in {"put", "put_file", "pipe", "pipe_file", "open", "touch"} and not self._raced:
                def racing(*args, **kwargs):
                    self._raced = True
                    try:
                        upload_ome_zarr(second_local, url, storage_options=options)
                        outcome["second"] = "ok"
                    except FileExistsError as err:
                        outcome["second"] = err
                    return attr(*args, **kwargs)
                return racing
            return attr

    calls = []

    def url_to_fs(*args, **kwargs):
        fs, path = real_url_to_fs(*args, **kwargs)
        calls.append(path)
        return (RacingFS(fs) if len(calls) == 1 else fs), path

    with LocalS3Server("race") as s3:
        options = s3.storage_options()
        monkeypatch.setattr(fsspec.core, "url_to_fs", url_to_fs)
        try:
            upload_ome_zarr(first_local, url, storage_options=options)
            outcome["first"] = "ok"
        except FileExistsError as err:
            outcome["first"] = err
        monkeypatch.undo()
        assert sorted(k for k, v in outcome.items() if v == "ok") == ["second"], outcome
        assert "another upload" in str(outcome["first"])
        level = open_ome_zarr(url, storage_options=options)
        np.testing.assert_array_equal(level.data.compute(), second_volume)
        assert _keys(s3, "img.ome.zarr") == sorted(
            p.relative_to(second_local).as_posix() for p in second_local.rglob("*") if p.is_file())


def test_an_existing_object_is_never_replaced(tmp_path):
    local = tmp_path / "img.ome.zarr"
    _image(local)
    with LocalS3Server("exists") as s3:
        s3.filesystem().pipe_file("exists/img.ome.zarr/zarr.json", b"{}")
        with pytest.raises(FileExistsError, match="already holds 1 objects"):
            upload_ome_zarr(local, "s3://exists/img.ome.zarr", storage_options=s3.storage_options())
        assert s3.filesystem().cat_file("exists/img.ome.zarr/zarr.json") == b"{}"


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(TypeError, match="folder must be a path"):
        upload_ome_zarr(3, "s3://b/x")
    with pytest.raises(OmeZarrError, match="is not a folder"):
        upload_ome_zarr(tmp_path / "missing", "s3://b/x")


def test_of_two_concurrent_uploads_to_one_prefix_exactly_one_gets_in(tmp_path, monkeypatch):
    """Both find the prefix empty, and each puts its first object before either goes on.

    Their first chunk keys differ (Zarr v3 and v2), so a conditional put of the first chunk would let both in.
    """
    import threading

    from data_helpers import objectstore

    locals_ = {"v3": tmp_path / "v3.ome.zarr", "v2": tmp_path / "v2.ome.zarr"}
    write_ome_zarr(np.full((16, 16, 16), 3, np.uint8), locals_["v3"], voxel_size=1.0, unit="um", chunks=8)
    write_ome_zarr(np.full((16, 16, 16), 4, np.uint8), locals_["v2"], voxel_size=1.0, unit="um", chunks=8,
                   version="0.4")
    first_keys = {k: min(objectstore._plan_upload(p).chunks) for k, p in locals_.items()}
    assert first_keys["v3"] != first_keys["v2"]
    for path in locals_.values():  # imports the validator's modules here, not in two threads at once
        validate_ome_zarr(path, check_chunks=True).raise_if_problems()
    url = "s3://both/img.ome.zarr"
    barrier = threading.Barrier(2, timeout=120)
    real_check = objectstore._refuse_existing

    def check_then_wait(*args, **kwargs):
        real_check(*args, **kwargs)
        if not kwargs.get("mine") and kwargs.get("claim") is None:  # the check that the prefix is empty
            barrier.wait()

    monkeypatch.setattr(objectstore, "_refuse_existing", check_then_wait)
    written = threading.Barrier(2, timeout=120)
    real_url_to_fs = fsspec.core.url_to_fs

    class WaitAfterFirstPut:
        """An upload's file system: its first put (allowed or refused) waits until the other's is done."""

        def __init__(self, fs):
            self._fs, self._first = fs, True

        def __getattr__(self, name):
            return getattr(self._fs, name)

        def pipe(self, *args, **kwargs):
            try:
                return self._fs.pipe(*args, **kwargs)
            finally:
                if self._first:
                    self._first = False
                    written.wait()

    def url_to_fs(*args, **kwargs):
        fs, path = real_url_to_fs(*args, **kwargs)
        return WaitAfterFirstPut(fs), path

    monkeypatch.setattr(fsspec.core, "url_to_fs", url_to_fs)
    outcome = {}

    def upload(name):
        try:
            upload_ome_zarr(locals_[name], url, storage_options=options)
            outcome[name] = "ok"
        except BaseException as err:  # noqa: BLE001 - the test reports whatever each upload raised
            outcome[name] = err

    with LocalS3Server("both") as s3:
        options = s3.storage_options()
        threads = [threading.Thread(target=upload, args=(name,)) for name in locals_]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        monkeypatch.undo()
        winners = [name for name, result in outcome.items() if result == "ok"]
        losers = [result for result in outcome.values() if result != "ok"]
        assert len(winners) == 1 and len(losers) == 1, outcome
        assert type(losers[0]) is FileExistsError and "another upload" in str(losers[0]), outcome
        winner = locals_[winners[0]]
        assert _keys(s3, "img.ome.zarr") == sorted(p.relative_to(winner).as_posix() for p in winner.rglob("*")
                                                   if p.is_file())
        level = open_ome_zarr(url, storage_options=options)
        assert int(level.data[0, 0, 0].compute()) == (3 if winners[0] == "v3" else 4)


def test_a_claimed_prefix_is_refused_at_once_and_the_claim_kept(tmp_path):
    from data_helpers.objectstore import UPLOAD_CLAIM

    local = tmp_path / "img.ome.zarr"
    _image(local)
    with LocalS3Server("claimed") as s3:
        s3.filesystem().pipe_file(f"claimed/img.ome.zarr/{UPLOAD_CLAIM}", b"another upload")
        s3.clear_requests()
        with pytest.raises(FileExistsError, match="claimed by another upload"):
            upload_ome_zarr(local, "s3://claimed/img.ome.zarr", storage_options=s3.storage_options())
        assert not [m for m, _, _ in s3.requests if m in ("PUT", "POST", "DELETE")]
        assert _keys(s3, "img.ome.zarr") == [UPLOAD_CLAIM]


def test_an_upload_releases_only_its_own_claim(tmp_path, monkeypatch):
    from data_helpers import objectstore

    local = tmp_path / "img.ome.zarr"
    _image(local)
    real_claim = objectstore._claim

    def claim_then_lose_it(fs, root, url):
        claim = real_claim(fs, root, url)
        fs.pipe_file(claim.key, b"someone else's claim")  # this upload's claim no longer holds its id
        return claim

    monkeypatch.setattr(objectstore, "_claim", claim_then_lose_it)
    with LocalS3Server("release") as s3:
        upload_ome_zarr(local, "s3://release/img.ome.zarr", storage_options=s3.storage_options())
        assert s3.filesystem().cat_file(f"release/img.ome.zarr/{objectstore.UPLOAD_CLAIM}") == b"someone else's claim"
        keys = _keys(s3, "img.ome.zarr")
        assert objectstore.UPLOAD_CLAIM in keys and "zarr.json" in keys
