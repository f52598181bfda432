"""A small local HTTP server, for data mirrors, remote-access lessons and tests.

It serves one folder, read-only, on a loopback address only (127.0.0.1 by
default), from a background thread. It answers ``GET`` and ``HEAD``, including
single byte-range requests (``Range: bytes=a-b``), which remote Zarr readers use.

What it serves, exactly:

* Only regular files inside the folder. Symbolic links are followed one step at
  a time, and each step must stay inside the folder: a link whose target, or any
  link on the way to it, lies outside gets ``404`` even if the chain comes back.
  An absolute link target counts as inside only if it starts with the folder's
  real path. Special files (pipes, devices) are not served. A URL that leaves
  the folder (``..``) gets ``404``.
* No hidden names: a path with a part that starts with ``.`` gets ``404``, in
  the URL or in the target of any link on the way (a link ``notes -> .env`` is
  refused too), except Zarr version 2's own metadata files (``.zarray``,
  ``.zattrs``, ``.zgroup``, ``.zmetadata``) as the last part.
* A folder is answered with its ``index.html`` if it has one; otherwise with
  ``403``, unless ``list_directories=True`` asks for a listing (which leaves
  out hidden names and links that lead out of the folder).
* A URL with a NUL byte (``%00``) gets ``400``.

Each request is handled in its own thread, and the operating system queues up
to :data:`LISTEN_BACKLOG` connections that arrive at once, so a reader that
sends many requests in parallel (as zarr does) is not slowed by the server.
"""

from __future__ import annotations

import collections
import email.utils
import errno
import html
import http.server
import ipaddress
import os
import stat
import sys
import threading
import time
import urllib.parse
from functools import partial
from pathlib import Path
from types import TracebackType

__all__ = ["LISTEN_BACKLOG", "REQUEST_LOG_LIMIT", "LocalServer", "serve_directory"]

#: Connections the operating system queues for the server while it is busy
#: accepting others. The old default of 5 made some of 50 parallel requests
#: wait a second or more for a retry of their connection.
LISTEN_BACKLOG = 128
#: The most requests kept in :attr:`LocalServer.requests`; older ones are dropped.
REQUEST_LOG_LIMIT = 10_000
#: Hidden names that are served all the same: the metadata files of Zarr version 2.
ZARR_DOTFILES = frozenset({".zarray", ".zattrs", ".zgroup", ".zmetadata"})


#: The most symbolic links followed for one URL (as the operating system's own limit, ELOOP).
_MAX_LINKS = 40


def _servable_name(name: str, last: bool) -> bool:
    return not name.startswith(".") or (last and name in ZARR_DOTFILES)


def _resolve_inside(root: Path, parts: list[str]) -> Path | None:
    """Follow ``parts`` from ``root`` one name at a time; None if any step leaves ``root`` or is hidden.

    ``root`` must be a real path (no links in it). Every link met is read and its
    target walked the same way, so a link may not lead out of the folder, nor to
    a hidden name inside it, even through a chain of other links.
    """
    root_text = str(root)
    done: list[str] = []  # real names below root, none of them a link
    todo = list(parts)
    links = 0
    while todo:
        name = todo.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            if not done:
                return None  # above the folder
            done.pop()
            continue
        if not _servable_name(name, last=not todo):
            return None
        path = os.path.join(root_text, *done, name)
        try:
            st = os.lstat(path)
        except (OSError, ValueError):  # missing, or a name the system cannot hold
            return None
        if not stat.S_ISLNK(st.st_mode):
            done.append(name)
            continue
        links += 1
        if links > _MAX_LINKS:
            return None  # a loop of links
        try:
            link = os.readlink(path)
        except OSError:
            return None
        if os.path.isabs(link):
            relative = os.path.relpath(link, root_text) if link.startswith(root_text + os.sep) or link == root_text else None
            if relative is None:
                return None  # an absolute target outside the folder
            done = []
            link = "" if relative == "." else relative
        todo = [piece for piece in link.replace(os.sep, "/").split("/") if piece] + todo
    target = Path(root_text, *done)
    if os.path.realpath(target) != str(target):
        return None  # changed while it was walked: serve nothing rather than guess
    return target


class _QuietRangeHandler(http.server.SimpleHTTPRequestHandler):
    """Regular files inside one folder, with single byte ranges, and no log line per request."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _target(self, url_path: str) -> Path | None:
        """The file or folder a URL path names, or None if it may not be served."""
        parts = []
        pieces = url_path.split("/")
        for part in pieces:
            if part in ("", "."):
                continue
            if part == ".." or "\\" in part or (os.altsep and os.altsep in part):
                return None
            parts.append(part)
        return _resolve_inside(Path(self.directory), parts)

    def send_head(self):  # type: ignore[override]
        self._range = None
        log = getattr(self.server, "request_log", None)
        if log is not None:
            log.append((self.command, self.path.split("?", 1)[0], self.headers.get("Range")))
        latency = getattr(self.server, "latency", 0.0)
        if latency:
            time.sleep(latency)  # stands in for a network round trip
        url_path = urllib.parse.unquote(self.path.split("?", 1)[0].split("#", 1)[0])
        if "\x00" in url_path or "\x00" in self.path:
            self.send_error(400, "NUL byte in the URL")
            return None
        target = self._target(url_path)
        if target is None:
            self.send_error(404, "File not found")
            return None
        if target.is_dir():
            if not url_path.endswith("/"):
                parts = urllib.parse.urlsplit(self.path)
                self.send_response(301)
                self.send_header("Location", urllib.parse.urlunsplit(parts._replace(path=parts.path + "/")))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            index = self._target(url_path + "index.html")
            if index is not None and index.is_file():
                target = index
            elif getattr(self.server, "list_directories", False):
                return self._listing(target, url_path)
            else:
                self.send_error(403, "Directory listings are off")
                return None
        try:
            # O_NONBLOCK: opening a named pipe must not wait for a writer; no effect on files
            flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
            f = os.fdopen(os.open(target, flags), "rb")  # closed by the caller (do_GET / do_HEAD)
        except OSError:
            self.send_error(404, "File not found")
            return None
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):  # a pipe or a device: never read
            f.close()
            self.send_error(404, "File not found")
            return None
        size = st.st_size
        header = self.headers.get("Range")
        if header and header.startswith("bytes=") and "," not in header:
            start_s, _, end_s = header[len("bytes="):].partition("-")
            try:
                if start_s == "":  # suffix range: the last N bytes
                    start, end = max(0, size - int(end_s)), size - 1
                else:
                    start = int(start_s)
                    end = min(int(end_s), size - 1) if end_s else size - 1
            except ValueError:
                f.close()
                self.send_error(400, "Malformed Range header")
                return None
            if start >= size or start > end:
                f.close()
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            f.seek(start)
            self._range = (start, end)
            self._count_bytes(end - start + 1)
            self.send_response(206)
            self.send_header("Content-Type", self.guess_type(str(target)))
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            return f
        self._count_bytes(size)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(target)))
        self.send_header("Content-Length", str(size))
        self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
        self.end_headers()
        return f

    def _count_bytes(self, n: int) -> None:
        counter = getattr(self.server, "byte_counter", None)
        if counter is not None and self.command == "GET":
            with counter[0]:
                counter[1][0] += n

    def _listing(self, folder: Path, url_path: str):
        import io

        names = []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            shown = self._target(url_path + entry.name)
            if shown is not None:
                names.append(entry.name + ("/" if shown.is_dir() else ""))
        title = html.escape(f"Listing of {url_path}")
        items = "".join(
            f'<li><a href="{urllib.parse.quote(n)}">{html.escape(n)}</a></li>' for n in names
        )
        body = f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1><ul>{items}</ul></body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

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


class _ConnectionTracking:
    """Mixin for a threading socket server: remember open connections and their threads.

    A reader such as zarr keeps connections open between requests (HTTP keep-alive),
    so the thread serving each one waits for the next request. :meth:`close_connections`
    ends them all and waits for their threads, so a stopped server leaves nothing behind.
    """

    thread_name = "server connection"

    def _tracking(self):
        if not hasattr(self, "_open"):
            self._open_lock = threading.Lock()
            self._open: dict[object, threading.Thread] = {}
        return self._open_lock, self._open

    def process_request(self, request, client_address):  # noqa: D102
        lock, open_ = self._tracking()
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), daemon=True, name=self.thread_name
        )
        with lock:
            open_[request] = thread
        thread.start()

    def _serve_connection(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            lock, open_ = self._tracking()
            with lock:
                open_.pop(request, None)
            self.shutdown_request(request)

    def handle_error(self, request, client_address):  # noqa: D102
        if not isinstance(sys.exc_info()[1], OSError):  # a client that hung up is no error of the server
            super().handle_error(request, client_address)

    def close_connections(self, timeout: float = 5.0) -> None:
        """Hang up on every open connection and wait for the threads that served them."""
        import socket

        lock, open_ = self._tracking()
        with lock:
            items = list(open_.items())
        for request, _thread in items:
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for _request, thread in items:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Server(_ConnectionTracking, http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG
    thread_name = "LocalServer connection"
    # On Windows, SO_REUSEADDR would let a second server take a port in use.
    allow_reuse_address = sys.platform != "win32"


def _loopback_host(host: object) -> str:
    """The address to listen on for ``host``, or a ValueError that says what to give instead."""
    advice = "use '127.0.0.1' (the default), '::1' or 'localhost'"
    if not isinstance(host, str):
        raise ValueError(f"host={host!r} must be a string: {advice}.")
    if not host.strip():
        raise ValueError(f"host={host!r} is empty: {advice}.")
    if host.strip() != host:
        raise ValueError(f"host={host!r} must be an address without spaces around it: {advice}.")
    if host.lower() == "localhost":
        return "127.0.0.1"
    if host.startswith("[") or host.endswith("]"):
        raise ValueError(f"host={host!r}: give the IPv6 address without brackets, e.g. '::1' "
                         f"(the brackets belong in URLs only).")
    if "%" in host:
        raise ValueError(f"host={host!r} has a zone index ('%{host.split('%', 1)[1]}'), which only link-local "
                         f"addresses need; a loopback address takes none: {advice}.")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host.count(":") == 1 and host.rsplit(":", 1)[1].isdigit():
            raise ValueError(f"host={host!r} includes a port: give the address as host= and the port as "
                             f"port= (0 picks a free one).") from None
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(f"host={host!r} is not a loopback address. This server only listens on "
                         f"this machine: {advice}.")
    return host


class LocalServer:
    """Serve a folder over HTTP on a loopback address, in a background thread.

    Use it as a context manager (see :func:`serve_directory`), or call
    :meth:`start` and :meth:`stop`. What is served, and what is refused, is
    described in :mod:`data_helpers.server`.

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
    list_directories
        Answer a folder without ``index.html`` with a listing of its files
        (hidden names left out). Default ``False``: such a folder gets ``403``.

    Examples
    --------
    >>> import pathlib, tempfile, urllib.request
    >>> from data_helpers import LocalServer
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "hello.txt").write_text("hi")
    >>> server = LocalServer(folder).start()
    >>> server.url.startswith("http://127.0.0.1:")
    True
    >>> urllib.request.urlopen(server.url + "/hello.txt").read()
    b'hi'
    >>> server.requests
    [('GET', '/hello.txt', None)]
    >>> server.stop()
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        list_directories: bool = False,
    ):
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(
                f"Cannot serve {str(directory)!r}: it is not an existing folder. "
                f"Give the folder that holds the files to serve."
            )
        host = _loopback_host(host)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port={port!r} must be an integer from 0 to 65535 (0 picks a free port).")
        if not isinstance(latency, (int, float)) or isinstance(latency, bool) or not 0 <= latency <= 10:
            raise ValueError(f"latency={latency!r} must be a number of seconds from 0 to 10.")
        if not isinstance(list_directories, bool):
            raise ValueError(f"list_directories={list_directories!r} must be True or False.")
        self.directory = directory.resolve()
        self.host = host
        self.port = port
        self.latency = float(latency)
        self.list_directories = list_directories
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._requests: collections.deque[tuple[str, str, str | None]] = collections.deque(
            maxlen=REQUEST_LOG_LIMIT
        )
        self._bytes = (threading.Lock(), [0])

    @property
    def bytes_sent(self) -> int:
        """File bytes sent in answers to ``GET`` requests since the start or :meth:`clear_requests`."""
        return self._bytes[1][0]

    @property
    def requests(self) -> list[tuple[str, str, str | None]]:
        """The requests served so far, oldest first: ``(method, path, Range header or None)``.

        Use it to see what a reader fetched, e.g. which chunks of a remote Zarr
        array; :meth:`clear_requests` starts a new count. Only the last
        :data:`REQUEST_LOG_LIMIT` requests are kept, and :meth:`stop` forgets them.
        """
        return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the requests recorded so far, and set :attr:`bytes_sent` to 0."""
        self._requests.clear()
        with self._bytes[0]:
            self._bytes[1][0] = 0

    @property
    def url(self) -> str:
        """Base URL of the running server, without a trailing slash."""
        if self._httpd is None:
            raise RuntimeError("The server is not running: call start() first.")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._httpd.server_address[1]}"

    def start(self) -> "LocalServer":
        """Start serving in a background thread and return ``self``.

        Raises
        ------
        OSError
            If the port is already in use (``errno.EADDRINUSE``), with a message
            that says how to choose another.
        """
        if self._httpd is not None:
            return self
        handler = partial(_QuietRangeHandler, directory=str(self.directory))
        server_class = _Server
        if ":" in self.host:
            import socket

            class _Server6(_Server):
                address_family = socket.AF_INET6

            server_class = _Server6
        try:
            self._httpd = server_class((self.host, self.port), handler)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)):
                raise OSError(
                    exc.errno,
                    f"Port {self.port} on {self.host} is already in use, by another "
                    f"server or program. Stop it, or choose another port (port 0, or "
                    f"--port 0 on the command line, picks a free one).",
                ) from None
            if exc.errno in (errno.EACCES, getattr(errno, "WSAEACCES", errno.EACCES)):
                raise OSError(
                    exc.errno,
                    f"Port {self.port} on {self.host} may not be opened by this user (ports below 1024 "
                    f"need administrator rights on most systems). Choose port 0, which picks a free one.",
                ) from None
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, getattr(errno, "WSAEADDRNOTAVAIL", -1)):
                raise OSError(
                    exc.errno,
                    f"This machine has no address {self.host} to listen on (IPv6 turned off, or a "
                    f"loopback address other than 127.0.0.1 on macOS): use host='127.0.0.1'.",
                ) from None
            raise
        self._httpd.request_log = self._requests
        self._httpd.byte_counter = self._bytes
        self._httpd.latency = self.latency
        self._httpd.list_directories = self.list_directories
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"LocalServer({self.directory})", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the server, free its port, end its open connections and forget the recorded requests.

        No thread of the server is left running when it returns (each gets up to 5 s to finish).
        """
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None
        self.clear_requests()

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
    directory: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 0,
    latency: float = 0.0,
    list_directories: bool = False,
) -> LocalServer:
    """Serve a folder over HTTP on loopback; use it in a ``with`` block.

    Parameters
    ----------
    directory, host, port, latency, list_directories
        See :class:`LocalServer`.

    Examples
    --------
    >>> import pathlib, tempfile, urllib.request
    >>> from data_helpers import serve_directory
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "index.html").write_text("<p>hello</p>")
    >>> with serve_directory(folder) as server:
    ...     status = urllib.request.urlopen(server.url + "/").status
    >>> status
    200
    """
    return LocalServer(directory, host=host, port=port, latency=latency, list_directories=list_directories)
