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
    from data_helpers.objectstore import UPLOAD_CLAIM

    volume = np.arange(32 * 32 * 40, dtype=np.uint16).reshape(32, 32, 40)
    local = tmp_path / "img.ome.zarr"
    write_ome_zarr(volume, local, voxel_size=(2.0, 1.0, 1.0), unit="um", chunks=16)
    with LocalS3Server("upl") as s3:
        s3.clear_requests()
        report = upload_ome_zarr(local, "s3://upl/img.ome.zarr", storage_options=s3.storage_options())
        writes = [(m, p) for m, p, _ in s3.requests if m in ("PUT", "POST", "DELETE")]
        claim = f"/upl/img.ome.zarr/{UPLOAD_CLAIM}"  # the prefix is claimed while the image is written
        assert writes[0] == ("PUT", claim) and writes[-1] == ("DELETE", claim), writes
        puts = [p for m, p in writes[1:-1] if m == "PUT"]
        assert len(puts) == len(writes) - 2
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


def _denied_code(call) -> str:
    import botocore.exceptions

    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    return info.value.response["Error"]["Code"]


def _other_client(s3: LocalS3Server, service: str = "s3", key: str = "testing", secret: str = "testing"):
    import boto3
    from botocore.config import Config

    return boto3.client(service, endpoint_url=s3.endpoint_url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(signature_version="s3v4"))


def test_a_private_bucket_refuses_wrong_keys_and_made_up_signatures(tmp_path):
    import requests

    (tmp_path / "x.txt").write_text("private")
    with LocalS3Server("keyed") as s3:
        s3.upload(tmp_path, "p")
        wrong_key, wrong_secret = _other_client(s3, key="someone"), _other_client(s3, secret="guessed")
        assert _denied_code(lambda: wrong_key.get_object(Bucket="keyed", Key="p/x.txt")) == "InvalidAccessKeyId"
        assert _denied_code(lambda: wrong_secret.get_object(Bucket="keyed", Key="p/x.txt")) == "SignatureDoesNotMatch"
        assert _denied_code(lambda: wrong_secret.list_objects_v2(Bucket="keyed")) == "SignatureDoesNotMatch"
        made_up = ["AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, "
                   "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64, "AWS testing:abc", "anything"]
        for header in made_up:
            answer = requests.get(f"{s3.endpoint_url}/keyed/p/x.txt", timeout=10,
                                  headers={"Authorization": header, "X-Amz-Date": "20260101T000000Z"})
            assert answer.status_code == 403 and b"private" not in answer.content, header
        with pytest.raises(PermissionError):
            s3.filesystem(anon=True).ls("keyed")
        assert s3.filesystem().cat_file("keyed/p/x.txt") == b"private"


def test_a_made_up_signature_cannot_write_to_a_public_bucket():
    import requests

    with LocalS3Server("open-door", public_read=True) as s3:
        answer = requests.put(f"{s3.endpoint_url}/open-door/planted.txt", data=b"planted", timeout=10,
                              headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x/y/us-east-1/s3/aws4_request"})
        assert answer.status_code == 403
        assert s3.filesystem().ls("open-door") == []


def test_keys_with_spaces_and_accents_and_presigned_urls_pass_the_signature_check(tmp_path):
    import requests

    (tmp_path / "a name+plus é.txt").write_text("odd")
    with LocalS3Server("odd-names") as s3:
        s3.upload(tmp_path, "p q")
        fs = s3.filesystem()
        assert fs.cat_file("odd-names/p q/a name+plus é.txt") == b"odd"
        assert fs.ls("odd-names/p q") == ["odd-names/p q/a name+plus é.txt"]
        url = s3.client().generate_presigned_url("get_object", Params={"Bucket": "odd-names",
                                                                       "Key": "p q/a name+plus é.txt"})
        assert "X-Amz-Signature=" in url  # Signature Version 4, the only one the server accepts
        assert requests.get(url, timeout=10).content == b"odd"
        forged = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
        assert requests.get(forged, timeout=10).status_code == 403


@pytest.mark.parametrize("headers", [{}, {"Authorization": "AWS4-HMAC-SHA256 anything"}])
@pytest.mark.parametrize(("method", "path"), [("POST", "/moto-api/reset"), ("POST", "/moto-api/reset-auth"),
                                              ("GET", "/moto-api/data.json"), ("GET", "/moto-api/")])
def test_moto_control_endpoints_are_unreachable(tmp_path, method, path, headers):
    import requests

    (tmp_path / "x.txt").write_text("kept")
    with LocalS3Server("survivor") as s3:
        s3.upload(tmp_path, "p")
        answer = requests.request(method, s3.endpoint_url + path, data=b"0", headers=headers, timeout=10)
        assert answer.status_code in (403, 404)
        assert s3.filesystem().cat_file("survivor/p/x.txt") == b"kept"


def test_only_s3_is_served_even_with_the_keys():
    with LocalS3Server("s3-only") as s3:
        import botocore.exceptions

        for service, call in (("iam", "list_users"), ("sts", "get_caller_identity")):
            client = _other_client(s3, service=service)
            with pytest.raises(botocore.exceptions.ClientError) as info:
                getattr(client, call)()
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, service
