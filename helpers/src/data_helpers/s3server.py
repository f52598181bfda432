"""A local S3-compatible object store on 127.0.0.1, for remote-data lessons and tests.

:class:`LocalS3Server` runs moto's S3 API (the server that ``moto[server]`` provides,
the same one behind ``ThreadedMotoServer``) in a background thread on a free
loopback port, creates a bucket, uploads folders into it, records every request it
answers, and, when stopped, frees its port and ends every connection and thread it
started. Readers use it exactly as they would use AWS: s3fs, boto3 or zarr with an
``s3://`` URL, an ``endpoint_url`` and keys (or anonymous access).

What it checks before moto sees a request, as AWS would:

* A signed request (an ``Authorization`` header, or a presigned URL) must carry a
  valid AWS Signature Version 4 made with this server's keys (:data:`TEST_KEY`,
  :data:`TEST_SECRET`); any other key, a wrong signature or a made-up header gets
  ``403``, whatever the bucket.
* An unsigned (anonymous) request may only read (``GET``, ``HEAD``) a bucket made
  with ``public_read=True``; everything else anonymous gets ``403``.
* Only S3 is served: moto's control endpoints (``/moto-api/...``, which could reset
  every bucket in the process) and its other AWS services are not reachable.

What it does not imitate: the network (add ``latency`` for that), AWS's limits and
prices, clock-skew and expiry checks of signatures, and consistency delays (moto
answers every request from memory at once).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import os
import threading
import urllib.parse
import time
from pathlib import Path
from types import TracebackType

from data_helpers.server import REQUEST_LOG_LIMIT, _ConnectionTracking

__all__ = ["LocalS3Server"]

#: The only keys the server accepts; they are no secret, since the server lives on loopback only.
TEST_KEY = "testing"
TEST_SECRET = "testing"
REGION = "us-east-1"
_SIGV4 = "AWS4-HMAC-SHA256"


def _error_body(code: str, message: str) -> bytes:
    from xml.sax.saxutils import escape

    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error>").encode()


def _wire_headers(environ: dict) -> dict[str, str]:
    """The request's headers from a WSGI environ, by lower-case name."""
    headers = {key[5:].replace("_", "-").lower(): str(value)
               for key, value in environ.items() if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return headers


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _signature_problem(environ: dict) -> tuple[str, str] | None:
    """Check a signed request's AWS Signature Version 4: ``None`` if valid, else ``(code, message)``.

    The canonical request is rebuilt from the request as it came over the wire
    (its raw path and query), as S3 does, and signed with :data:`TEST_SECRET`.
    """
    headers = _wire_headers(environ)
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or urllib.parse.quote(environ.get("PATH_INFO", ""))
    raw_path, _, raw_query = raw.partition("?")
    pairs = [pair.partition("=")[::2] for pair in raw_query.split("&") if pair] if raw_query else []
    authorization = headers.get("authorization")
    if authorization is not None:
        algorithm, _, fields_text = authorization.strip().partition(" ")
        fields = {}
        for field in fields_text.split(","):
            name, _, value = field.strip().partition("=")
            fields[name] = value
        if algorithm != _SIGV4 or not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
            return ("AccessDenied", "Only AWS Signature Version 4 (AWS4-HMAC-SHA256) is accepted")
        credential, signed, signature = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
        timestamp = headers.get("x-amz-date", "")
        payload = headers.get("x-amz-content-sha256")
        if payload is None:  # S3 requires it with header signatures: it stands for the body in the signature
            return ("AccessDenied", "A signed request must carry the x-amz-content-sha256 header")
        query = sorted(pairs)
    else:  # a presigned URL: the signature and its scope are in the query
        values = {urllib.parse.unquote(k): urllib.parse.unquote(v) for k, v in pairs}
        if values.get("X-Amz-Algorithm") != _SIGV4:
            return ("AccessDenied", "Only AWS Signature Version 4 (AWS4-HMAC-SHA256) is accepted: for presigned "
                                    "URLs, make the boto3 client with Config(signature_version='s3v4')")
        credential = values.get("X-Amz-Credential", "")
        signed = values.get("X-Amz-SignedHeaders", "")
        signature = values.get("X-Amz-Signature", "")
        timestamp = values.get("X-Amz-Date", "")
        payload = "UNSIGNED-PAYLOAD"
        query = sorted((k, v) for k, v in pairs if urllib.parse.unquote(k) != "X-Amz-Signature")
    scope = credential.split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or scope[3] != "s3":
        return ("AccessDenied", "The credential scope must be <key>/<date>/<region>/s3/aws4_request")
    if scope[0] != TEST_KEY:
        return ("InvalidAccessKeyId", "The AWS access key id you provided does not exist in our records")
    names = signed.split(";")
    if not timestamp or "host" not in names or any(name not in headers for name in names):
        return ("AccessDenied", "The signed headers must include host and be present in the request")
    canonical = "\n".join([
        environ.get("REQUEST_METHOD", ""),
        raw_path,
        "&".join(f"{k}={v}" for k, v in query),
        "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in names),
        signed,
        payload,
    ])
    to_sign = "\n".join([_SIGV4, timestamp, "/".join(scope[1:]),
                         hashlib.sha256(canonical.encode()).hexdigest()])
    expected = hmac.new(_signing_key(TEST_SECRET, scope[1], scope[2], scope[3]), to_sign.encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return ("SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided")
    return None


class LocalS3Server:
    """An S3-compatible server on 127.0.0.1 with one bucket, in a background thread.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.

    Parameters
    ----------
    bucket
        Name of the bucket to create (3-63 lower-case letters, digits, ``-`` and ``.``).
    public_read
        Attach a bucket policy that lets anyone read and list the bucket without keys,
        as public datasets (the Human Organ Atlas, the IDR) do. Without it, only signed
        requests (with the keys of :meth:`storage_options`) may read. Anonymous writes
        (unsigned ``PUT``, ``POST``, ``DELETE``) are always refused with ``403``, as AWS does.
    latency
        Seconds to wait before answering each request, to stand in for a network round
        trip (real object stores: about 0.02-0.1 s). From 0 to 10; default 0.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from data_helpers.s3server import LocalS3Server
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "hello.txt").write_text("hi")
    >>> with LocalS3Server("demo") as s3:
    ...     url = s3.upload(folder, "greetings")
    ...     fs = s3.filesystem()
    ...     print(url, fs.cat(f"{url}/hello.txt"))
    s3://demo/greetings b'hi'
    """

    def __init__(self, bucket: str = "data", *, public_read: bool = False, latency: float = 0.0):
        import re

        if not isinstance(bucket, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            raise ValueError(f"bucket={bucket!r} is not a valid S3 bucket name: use 3 to 63 lower-case "
                             f"letters, digits, '-' and '.', starting and ending with a letter or digit.")
        if not isinstance(latency, (int, float)) or isinstance(latency, bool) or not 0 <= latency <= 10:
            raise ValueError(f"latency={latency!r} must be a number of seconds from 0 to 10.")
        if not isinstance(public_read, bool):
            raise ValueError(f"public_read={public_read!r} must be True or False.")
        self.bucket = bucket
        self.public_read = public_read
        self.latency = float(latency)
        self._server = None
        self._created = False
        self._thread: threading.Thread | None = None
        self._requests: collections.deque[tuple[str, str, str | None]] = collections.deque(
            maxlen=REQUEST_LOG_LIMIT
        )
        self._bytes_lock = threading.Lock()
        self._bytes_received = 0

    # -- life cycle -------------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """The server's URL, e.g. ``http://127.0.0.1:54321``: give it to S3 clients as ``endpoint_url``."""
        if self._server is None:
            raise RuntimeError("The S3 server is not running: call start() or use it in a with block.")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LocalS3Server":
        """Start the server on a free port of 127.0.0.1, create the bucket, and return ``self``.

        Raises
        ------
        ImportError
            If moto's server is not installed (``pip install "moto[server]"``).
        """
        if self._server is not None:
            return self
        try:
            from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
            from werkzeug.serving import ThreadedWSGIServer
        except ImportError as exc:
            raise ImportError(f"LocalS3Server needs moto's server ({exc}); install it with: "
                              f"pip install \"moto[server]\"") from None

        class _Server(_ConnectionTracking, ThreadedWSGIServer):
            thread_name = "LocalS3Server connection"

        class _QuietHandler(MotoRequestHandler):
            def log(self, type: str, message: str, *args) -> None:  # noqa: A002 - no line per request
                pass

        app = create_backend_app("s3")  # S3 only: no /moto-api/ control endpoints, no other AWS service
        server = _Server("127.0.0.1", 0, self._logged(app), handler=_QuietHandler)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="LocalS3Server", daemon=True)
        self._thread.start()
        try:
            client = self.client()
            if any(b["Name"] == self.bucket for b in client.list_buckets().get("Buckets", [])):
                raise ValueError(f"A bucket named {self.bucket!r} is already served by another LocalS3Server "
                                 f"in this process (they share one store): choose another name.")
            client.create_bucket(Bucket=self.bucket)
            self._created = True
            if self.public_read:
                import json

                # AWS lets s3:GetObject cover HEAD requests too; moto checks a separate "s3:HeadObject"
                policy = {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": "*",
                    "Action": ["s3:GetObject", "s3:HeadObject", "s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{self.bucket}", f"arn:aws:s3:::{self.bucket}/*"]}]}
                client.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(policy))
            client.close()
        except BaseException:
            self.stop()
            raise
        self.clear_requests()
        return self

    def stop(self) -> None:
        """Delete the bucket and its objects, then stop: free the port, end connections and threads."""
        if self._server is None:
            return
        try:
            if self._created:  # never a bucket of another server
                self._delete_bucket()
        except Exception:  # stop() must stop the server whatever state the bucket is in
            pass
        self._created = False
        server, self._server = self._server, None
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
        self.clear_requests()
        try:  # s3fs keeps a client per endpoint: drop it, so no connection to a dead port is reused
            import s3fs

            s3fs.S3FileSystem.clear_instance_cache()
        except ImportError:  # pragma: no cover - s3fs is pinned
            pass

    def _delete_bucket(self) -> None:
        """Delete the bucket and its objects: moto keeps buckets in memory for the whole process."""
        client = self.client()
        try:
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
            client.delete_bucket(Bucket=self.bucket)
        finally:
            client.close()

    def __enter__(self) -> "LocalS3Server":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.endpoint_url if getattr(self, "_server", None) is not None else "stopped"
        return f"LocalS3Server(bucket={getattr(self, 'bucket', None)!r}, {state})"

    # -- requests ---------------------------------------------------------------------------------

    def _logged(self, app):
        def logged_app(environ, start_response):
            self._requests.append((environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""),
                                   environ.get("HTTP_RANGE")))
            try:
                received = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                received = 0
            with self._bytes_lock:
                self._bytes_received += received
            if self.latency:
                time.sleep(self.latency)
            refusal = self._refusal(environ)
            if refusal is not None:
                status, code, message = refusal
                body = _error_body(code, message)
                start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
                return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]  # HEAD answers carry no body
            return app(environ, start_response)

        return logged_app

    def _refusal(self, environ: dict) -> tuple[str, str, str] | None:
        """Why a request may not reach moto, as ``(status, code, message)``, or ``None`` if it may."""
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api") or path == "/favicon.ico":
            # moto's control endpoints (reset every bucket, change its settings) are not part of S3
            return ("404 Not Found", "NoSuchBucket", "This server answers S3 requests only")
        query = environ.get("QUERY_STRING", "")
        signed = "HTTP_AUTHORIZATION" in environ or "X-Amz-Signature" in query or "Signature=" in query
        if signed:
            problem = _signature_problem(environ)
            if problem is not None:
                return ("403 Forbidden", *problem)
            return None
        method = environ.get("REQUEST_METHOD", "")
        own = path == f"/{self.bucket}" or path.startswith(f"/{self.bucket}/")
        if not (self.public_read and own and method in ("GET", "HEAD")):
            # AWS refuses anonymous requests unless a bucket policy grants them; only public_read does
            return ("403 Forbidden", "AccessDenied",
                    "Anonymous requests may only read a public bucket; sign requests with the server's keys")
        return None

    @property
    def requests(self) -> list[tuple[str, str, str | None]]:
        """The requests answered so far, oldest first: ``(method, path, Range header or None)``."""
        return list(self._requests)

    @property
    def bytes_received(self) -> int:
        """Bytes of request bodies (uploads) received since the start or :meth:`clear_requests`."""
        return self._bytes_received

    def clear_requests(self) -> None:
        """Forget the requests recorded so far, and set :attr:`bytes_received` to 0."""
        self._requests.clear()
        with self._bytes_lock:
            self._bytes_received = 0

    # -- clients ----------------------------------------------------------------------------------

    def storage_options(self, anon: bool = False) -> dict:
        """Options for s3fs / fsspec / zarr: the endpoint, and the keys unless ``anon``.

        Examples
        --------
        >>> from data_helpers.s3server import LocalS3Server
        >>> with LocalS3Server() as s3:
        ...     sorted(s3.storage_options(anon=True))
        ['anon', 'client_kwargs']
        """
        options: dict = {"client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": REGION}}
        if anon:
            options["anon"] = True
        else:
            options.update(key=TEST_KEY, secret=TEST_SECRET)
        return options

    def filesystem(self, anon: bool = False):
        """An ``s3fs.S3FileSystem`` for this server (a fresh one, not from s3fs's cache)."""
        import s3fs

        return s3fs.S3FileSystem(skip_instance_cache=True, **self.storage_options(anon))

    def client(self):
        """A boto3 S3 client for this server, with the keys (its presigned URLs use Signature Version 4)."""
        import boto3
        from botocore.config import Config

        # s3v4: presigned URLs too are signed with Signature Version 4, the only one the server accepts
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=TEST_KEY, aws_secret_access_key=TEST_SECRET,
                            config=Config(signature_version="s3v4"))

    def upload(self, folder: str | os.PathLike, prefix: str) -> str:
        """Copy every file under ``folder`` to ``s3://<bucket>/<prefix>/``; return that URL.

        Objects already under the prefix are replaced by the upload's files of the same name;
        others are left. Nothing in ``folder`` is changed.

        Raises
        ------
        FileNotFoundError
            If ``folder`` is not an existing folder.
        ValueError
            If ``prefix`` is empty or not a relative key (no ``..``, no leading ``/``).
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"Cannot upload {str(folder)!r}: it is not an existing folder.")
        prefix = str(prefix).strip("/")
        if not prefix or any(part in ("", ".", "..") for part in prefix.split("/")) or "\\" in prefix:
            raise ValueError(f"prefix={prefix!r} must be a relative key such as 'images/heart.ome.zarr'.")
        client = self.client()
        try:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                key = f"{prefix}/{path.relative_to(folder).as_posix()}"
                client.upload_file(str(path), self.bucket, key)
        finally:
            client.close()
        return f"s3://{self.bucket}/{prefix}"
