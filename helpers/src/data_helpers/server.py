"""A small local HTTP server, for data mirrors, remote-access lessons and tests.

It serves one folder, read-only, on a loopback address only (127.0.0.1 by
default), from a background thread. It answers ``GET`` and ``HEAD``, including
single byte-range requests (``Range: bytes=a-b``), which remote Zarr readers use.
"""

from __future__ import annotations

import http.server
import ipaddress
import os
import threading
import time
from functools import partial
from pathlib import Path
from types import TracebackType

__all__ = ["LocalServer", "serve_directory"]


class _QuietRangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, with single byte ranges, and no log line per request."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def send_head(self):  # type: ignore[override]
        self._range = None
        log = getattr(self.server, "request_log", None)
        if log is not None:
            log.append((self.command, self.path.split("?", 1)[0], self.headers.get("Range")))
        latency = getattr(self.server, "latency", 0.0)
        if latency:
            time.sleep(latency)  # stands in for a network round trip
        header = self.headers.get("Range")
        if header and header.startswith("bytes=") and "," not in header:
            path = self.translate_path(self.path)
            if os.path.isfile(path):
                size = os.path.getsize(path)
                start_s, _, end_s = header[len("bytes="):].partition("-")
                try:
                    if start_s == "":  # suffix range: the last N bytes
                        start, end = max(0, size - int(end_s)), size - 1
                    else:
                        start = int(start_s)
                        end = min(int(end_s), size - 1) if end_s else size - 1
                except ValueError:
                    self.send_error(400, "Malformed Range header")
                    return None
                if start >= size or start > end:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                f = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
                f.seek(start)
                self._range = (start, end)
                self.send_response(206)
                self.send_header("Content-Type", self.guess_type(path))
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.send_header("Content-Length", str(end - start + 1))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                return f
        return super().send_head()

    def copyfile(self, source, outputfile) -> None:  # type: ignore[override]
        if getattr(self, "_range", None) is None:
            return super().copyfile(source, outputfile)
        remaining = self._range[1] - self._range[0] + 1
        while remaining > 0:
            block = source.read(min(1 << 16, remaining))
            if not block:
                break
            outputfile.write(block)
            remaining -= len(block)

    def end_headers(self) -> None:
        if getattr(self, "_range", None) is None and self.command in ("GET", "HEAD"):
            self.send_header("Accept-Ranges", "bytes")
        super().end_headers()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class LocalServer:
    """Serve a folder over HTTP on a loopback address, in a background thread.

    Use it as a context manager (see :func:`serve_directory`), or call
    :meth:`start` and :meth:`stop`.

    Parameters
    ----------
    directory
        Folder to serve. It must exist. Nothing in it is ever changed.
    host
        A loopback address (``127.0.0.1``, ``::1`` or ``localhost``). Other
        addresses are refused: this server is for local use and tests only.
    port
        TCP port; ``0`` (the default) picks a free one.
    latency
        Seconds to wait before answering each request, to stand in for the
        round trip of a real network (about 0.01-0.1 s to a cloud store). Default 0.
        Requests are served in parallel, so the wait does not add up across
        concurrent requests, as on a real network.

    Examples
    --------
    >>> from data_helpers import LocalServer
    >>> server = LocalServer(".").start()
    >>> server.url.startswith("http://127.0.0.1:")
    True
    >>> import urllib.request
    >>> _ = urllib.request.urlopen(server.url + "/").read()
    >>> server.requests
    [('GET', '/', None)]
    >>> server.stop()
    """

    def __init__(self, directory: str | os.PathLike, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0):
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(
                f"Cannot serve {str(directory)!r}: it is not an existing folder. "
                f"Give the folder that holds the files to serve."
            )
        if host == "localhost":
            host = "127.0.0.1"
        try:
            is_loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            is_loopback = False
        if not is_loopback:
            raise ValueError(
                f"host={host!r} is not a loopback address. This server only listens on "
                f"this machine: use '127.0.0.1' (the default), '::1' or 'localhost'."
            )
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port={port!r} must be an integer from 0 to 65535 (0 picks a free port).")
        if not isinstance(latency, (int, float)) or not 0 <= latency <= 10:
            raise ValueError(f"latency={latency!r} must be a number of seconds from 0 to 10.")
        self.directory = directory.resolve()
        self.host = host
        self.port = port
        self.latency = float(latency)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._requests: list[tuple[str, str, str | None]] = []

    @property
    def requests(self) -> list[tuple[str, str, str | None]]:
        """Every request served so far, oldest first: ``(method, path, Range header or None)``.

        Use it to see what a reader fetched, e.g. which chunks of a remote Zarr
        array; :meth:`clear_requests` starts a new count.
        """
        return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the requests recorded so far."""
        self._requests.clear()

    @property
    def url(self) -> str:
        """Base URL of the running server, without a trailing slash."""
        if self._httpd is None:
            raise RuntimeError("The server is not running: call start() first.")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._httpd.server_address[1]}"

    def start(self) -> "LocalServer":
        """Start serving in a background thread and return ``self``."""
        if self._httpd is not None:
            return self
        handler = partial(_QuietRangeHandler, directory=str(self.directory))
        server_class = _Server
        if ":" in self.host:
            import socket

            class _Server6(_Server):
                address_family = socket.AF_INET6

            server_class = _Server6
        self._httpd = server_class((self.host, self.port), handler)
        self._httpd.request_log = self._requests
        self._httpd.latency = self.latency
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"LocalServer({self.directory})", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the server and free its port."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.url if self._httpd is not None else "stopped"
        return f"LocalServer({str(self.directory)!r}, {state})"


def serve_directory(
    directory: str | os.PathLike, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0
) -> LocalServer:
    """Serve a folder over HTTP on loopback; use it in a ``with`` block.

    Parameters
    ----------
    directory, host, port, latency
        See :class:`LocalServer`.

    Examples
    --------
    >>> import urllib.request
    >>> from data_helpers import serve_directory
    >>> with serve_directory(".") as server:
    ...     status = urllib.request.urlopen(server.url + "/").status
    >>> status
    200
    """
    return LocalServer(directory, host=host, port=port, latency=latency)
