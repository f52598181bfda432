"""LocalS3Server: a loopback S3 API that always stops cleanly."""

from __future__ import annotations

import socket
import threading

import pytest

from data_helpers.s3server import LocalS3Server


def _server_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("LocalS3Server")]


def test_it_serves_a_bucket_and_counts_requests(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b.bin").write_bytes(b"0123456789")
    with LocalS3Server("bucket-one") as s3:
        assert s3.endpoint_url.startswith("http://127.0.0.1:")
        url = s3.upload(tmp_path, "stuff")
        assert url == "s3://bucket-one/stuff"
        s3.clear_requests()
        fs = s3.filesystem()
        assert fs.cat_file("bucket-one/stuff/a/b.bin", start=2, end=5) == b"234"
        gets = [r for r in s3.requests if r[0] == "GET"]
        assert gets == [("GET", "/bucket-one/stuff/a/b.bin", "bytes=2-4")]
    assert "stopped" in repr(s3)


def test_private_buckets_refuse_anonymous_readers(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    with LocalS3Server("closed") as s3:
        s3.upload(tmp_path, "p")
        with pytest.raises(PermissionError):
            s3.filesystem(anon=True).cat_file("closed/p/x.txt")
        assert s3.filesystem().cat_file("closed/p/x.txt") == b"x"
    with LocalS3Server("open", public_read=True) as s3:
        s3.upload(tmp_path, "p")
        assert s3.filesystem(anon=True).cat_file("open/p/x.txt") == b"x"


def test_stop_leaves_no_thread_and_frees_the_port(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    before = _server_threads()
    with LocalS3Server() as s3:
        s3.upload(tmp_path, "p")
        fs = s3.filesystem()
        fs.cat_file("data/p/x.txt")  # leaves a keep-alive connection open
        port = int(s3.endpoint_url.rsplit(":", 1)[1])
        assert len(_server_threads()) > len(before)
    assert _server_threads() == before
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nobody listens there any more


def test_the_server_stops_when_the_block_fails(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with LocalS3Server() as s3:
            port = int(s3.endpoint_url.rsplit(":", 1)[1])
            1 / 0
    assert not _server_threads()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_bad_arguments_say_what_to_give(tmp_path):
    with pytest.raises(ValueError, match="bucket name"):
        LocalS3Server("Bad_Name")
    with pytest.raises(ValueError, match="latency"):
        LocalS3Server(latency=-1)
    with pytest.raises(RuntimeError, match="not running"):
        LocalS3Server().endpoint_url
    with LocalS3Server() as s3:
        with pytest.raises(FileNotFoundError, match="not an existing folder"):
            s3.upload(tmp_path / "missing", "p")
        with pytest.raises(ValueError, match="relative key"):
            s3.upload(tmp_path, "../up")


def test_two_servers_in_one_process_need_different_buckets(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    with LocalS3Server("shared") as first:
        first.upload(tmp_path, "p")
        with pytest.raises(ValueError, match="already served"):
            LocalS3Server("shared").start()
        assert first.filesystem().cat_file("shared/p/x.txt") == b"x"  # the failed start deleted nothing
    with LocalS3Server("shared") as again:  # stop() deleted the bucket: the name is free
        assert again.filesystem().ls("shared") == []


def test_anonymous_writes_are_refused_even_in_a_public_bucket(tmp_path):
    with LocalS3Server("readable", public_read=True) as s3:
        with pytest.raises(PermissionError):
            s3.filesystem(anon=True).pipe_file("readable/new.txt", b"anonymous")
        s3.filesystem().pipe_file("readable/new.txt", b"with keys")
        assert s3.filesystem(anon=True).cat_file("readable/new.txt") == b"with keys"
        with pytest.raises(PermissionError):
            s3.filesystem(anon=True).rm_file("readable/new.txt")


def test_upload_ome_zarr_writes_the_root_metadata_last_and_never_replaces(tmp_path):
    import numpy as np

    from data_helpers import InvalidOmeZarrError, open_ome_zarr, upload_ome_zarr, write_ome_zarr

    volume = np.arange(32 * 32 * 40, dtype=np.uint16).reshape(32, 32, 40)
    local = tmp_path / "img.ome.zarr"
    write_ome_zarr(volume, local, voxel_size=(2.0, 1.0, 1.0), unit="um", chunks=16)
    with LocalS3Server("upl") as s3:
        s3.clear_requests()
        report = upload_ome_zarr(local, "s3://upl/img.ome.zarr", storage_options=s3.storage_options())
        puts = [p for m, p, _ in s3.requests if m == "PUT"]
        assert puts[-1] == "/upl/img.ome.zarr/zarr.json"  # the image appears only when complete
        assert all("/c/" in p for p in puts[: -len(report.metadata_last)])
        assert report.n_objects == len(puts) == sum(1 for p in local.rglob("*") if p.is_file())
        level = open_ome_zarr("s3://upl/img.ome.zarr", storage_options=s3.storage_options())
        np.testing.assert_array_equal(level.data.compute(), volume)
        with pytest.raises(FileExistsError, match="no atomic rename"):
            upload_ome_zarr(local, "s3://upl/img.ome.zarr", storage_options=s3.storage_options())
        (tmp_path / "junk").mkdir()
        with pytest.raises(InvalidOmeZarrError):
            upload_ome_zarr(tmp_path / "junk", "s3://upl/junk", storage_options=s3.storage_options())
        with pytest.raises(ValueError, match="object-store URL"):
            upload_ome_zarr(local, "upl/img2", storage_options=s3.storage_options())
