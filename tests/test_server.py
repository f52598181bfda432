"""data_helpers.server: a read-only loopback HTTP server with byte ranges."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
import requests

from data_helpers import server as server_module
from data_helpers.server import LocalServer, serve_directory


@pytest.fixture
def served(tmp_path):
    (tmp_path / "a.bin").write_bytes(bytes(range(256)) * 4)  # 1024 bytes
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("hello")
    with serve_directory(tmp_path) as server:
        yield server


def test_serves_files(served):
    r = requests.get(f"{served.url}/sub/b.txt", timeout=10)
    assert r.status_code == 200 and r.text == "hello"
    assert r.headers["Accept-Ranges"] == "bytes"


def test_missing_file_is_404(served):
    assert requests.get(f"{served.url}/nope", timeout=10).status_code == 404


@pytest.mark.parametrize(
    ("header", "first", "length"),
    [("bytes=10-19", 10, 10), ("bytes=1000-", 1000, 24), ("bytes=-4", 1020, 4), ("bytes=1020-5000", 1020, 4)],
)
def test_byte_ranges(served, header, first, length):
    r = requests.get(f"{served.url}/a.bin", headers={"Range": header}, timeout=10)
    assert r.status_code == 206
    expected = (bytes(range(256)) * 4)[first : first + length]
    assert r.content == expected
    assert r.headers["Content-Range"] == f"bytes {first}-{first + length - 1}/1024"


def test_unsatisfiable_range_is_416(served):
    r = requests.get(f"{served.url}/a.bin", headers={"Range": "bytes=5000-"}, timeout=10)
    assert r.status_code == 416
    assert r.headers["Content-Range"] == "bytes */1024"


def test_head_request(served):
    r = requests.head(f"{served.url}/a.bin", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Length"] == "1024"


def test_stop_frees_the_port(tmp_path):
    server = LocalServer(tmp_path).start()
    url = server.url
    server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
    with pytest.raises(RuntimeError, match="start"):
        server.url


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.org"])
def test_refuses_non_loopback_hosts(tmp_path, host):
    with pytest.raises(ValueError, match="loopback"):
        LocalServer(tmp_path, host=host)


@pytest.mark.parametrize(
    ("host", "message"),
    [("::1%lo", "zone index"), ("::1%1", "zone index"), ("fe80::1%lo", "zone index"), ("[::1]", "without brackets"),
     ("127.0.0.1:8000", "includes a port"), ("localhost:80", "includes a port"), (" 127.0.0.1", "spaces"),
     ("", "empty"), (None, "must be a string"), (b"127.0.0.1", "must be a string"), (1, "must be a string")],
)
def test_malformed_hosts_get_an_error_that_says_what_to_give(tmp_path, host, message):
    with pytest.raises(ValueError, match=message) as info:
        LocalServer(tmp_path, host=host)
    assert "127.0.0.1" in str(info.value) or "::1" in str(info.value) or "port=" in str(info.value)


@pytest.mark.parametrize(("code", "message"), [("EACCES", "administrator rights"),
                                               ("EADDRNOTAVAIL", "no address"), ("EAFNOSUPPORT", "no address")])
def test_a_port_or_address_the_system_refuses_is_a_clear_error(tmp_path, monkeypatch, code, message):
    import errno

    def refuse(self):
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)))

    monkeypatch.setattr(server_module._Server, "server_bind", refuse)
    with pytest.raises(OSError, match=message) as info:
        LocalServer(tmp_path).start()
    assert info.value.errno == getattr(errno, code)


@pytest.mark.parametrize("host", ["::1", "0:0:0:0:0:0:0:1", "LOCALHOST"])
def test_other_spellings_of_loopback_are_served(tmp_path, host):
    (tmp_path / "a").write_text("x")
    with LocalServer(tmp_path, host=host) as server:
        assert requests.get(f"{server.url}/a", timeout=10).text == "x"


def test_localhost_means_ipv4_loopback(tmp_path):
    with LocalServer(tmp_path, host="localhost") as server:
        assert server.url.startswith("http://127.0.0.1:")


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an existing folder"):
        LocalServer(tmp_path / "missing")


@pytest.mark.parametrize("port", [-1, 70000, "80"])
def test_bad_port_is_refused(tmp_path, port):
    with pytest.raises(ValueError, match="port"):
        LocalServer(tmp_path, port=port)


def test_network_guard_blocks_other_addresses():
    """pytest-socket (pytest.ini) allows 127.0.0.1 only: 127.0.0.2 is still loopback, so safe to try."""
    from pytest_socket import SocketConnectBlockedError

    with pytest.warns(UserWarning, match="127.0.0.2"), pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("127.0.0.2", 9), timeout=1)


def test_requests_are_recorded_with_their_ranges(tmp_path):
    (tmp_path / "chunk").write_bytes(bytes(range(100)))
    with serve_directory(tmp_path) as server:
        requests.get(f"{server.url}/chunk", headers={"Range": "bytes=10-19"}, timeout=5)
        requests.head(f"{server.url}/missing", timeout=5)
        assert server.requests == [("GET", "/chunk", "bytes=10-19"), ("HEAD", "/missing", None)]
        server.clear_requests()
        assert server.requests == []


def test_latency_delays_every_answer(tmp_path):
    """A lower bound only: the server must wait at least this long (no upper bound, so no flaky timing)."""
    import time

    (tmp_path / "a").write_text("x")
    with serve_directory(tmp_path, latency=0.15) as server:
        start = time.perf_counter()
        assert requests.get(f"{server.url}/a", timeout=5).text == "x"
        assert time.perf_counter() - start >= 0.15


@pytest.mark.parametrize("latency", [-1, 11, "slow"])
def test_latency_must_be_a_small_number_of_seconds(tmp_path, latency):
    with pytest.raises(ValueError, match="latency"):
        LocalServer(tmp_path, latency=latency)


def raw_get(server, target: bytes, headers: bytes = b"") -> bytes:
    """Send a request line exactly as given (no client-side clean-up) and return the whole answer."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.0\r\n" + headers + b"\r\n")
        answer = b""
        while block := sock.recv(65536):
            answer += block
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_64_concurrent_range_requests_are_not_stalled(tmp_path):
    """64 clients connect at once. With a listen backlog of 5, connections that do not fit
    wait for the client's retry, 1 s later (Linux's first SYN retransmission), so the batch
    takes at least 1 s + latency; served in parallel, it takes about one latency.
    The bound, 5x latency, is far from both."""
    latency, clients = 0.2, 64
    payload = bytes(range(256)) * 64
    (tmp_path / "chunks.bin").write_bytes(payload)
    answers: list[bytes | None] = [None] * clients
    with serve_directory(tmp_path, latency=latency) as server:

        def fetch(i: int) -> None:
            answers[i] = raw_get(server, b"/chunks.bin", f"Range: bytes={i * 100}-{i * 100 + 99}\r\n".encode())

        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
    for i, answer in enumerate(answers):
        assert answer is not None and status_of(answer) == 206
        assert answer.split(b"\r\n\r\n", 1)[1] == payload[i * 100 : i * 100 + 100]
    assert elapsed < 5 * latency, f"{clients} parallel requests took {elapsed:.2f} s, latency {latency} s"


def test_listen_backlog_holds_the_concurrency_zarr_uses():
    import zarr

    assert server_module._Server.request_queue_size == server_module.LISTEN_BACKLOG >= 128
    assert server_module.LISTEN_BACKLOG >= zarr.config.get("async.concurrency")


@pytest.fixture
def tricky(tmp_path):
    """A served folder with hidden files, a folder, and links inside and out of it."""
    root = tmp_path / "served"
    (root / "img.zarr").mkdir(parents=True)
    (root / "img.zarr" / ".zarray").write_text("{}")
    (root / "img.zarr" / "0.0").write_bytes(b"chunk")
    (root / ".env").write_text("SECRET=1")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]")
    (root / "sub").mkdir()
    (root / "sub" / "data.bin").write_bytes(b"inside")
    (tmp_path / "outside.txt").write_text("private")
    (tmp_path / "outside-dir").mkdir()
    (tmp_path / "outside-dir" / "x").write_text("private too")
    (root / "link-out").symlink_to(tmp_path / "outside.txt")
    (root / "dir-link-out").symlink_to(tmp_path / "outside-dir")
    (root / "link-in").symlink_to(root / "sub" / "data.bin")
    (root / "loop").symlink_to(root / "loop")
    return root


@pytest.mark.parametrize(
    "path",
    ["/link-out", "/dir-link-out/x", "/loop", "/.env", "/.git/config", "/sub/.hidden", "/%2e%2e/outside.txt"],
)
def test_only_regular_files_inside_the_folder_are_served(tricky, path):
    with serve_directory(tricky) as server:
        answer = raw_get(server, path.encode())
    assert status_of(answer) == 404
    assert b"private" not in answer and b"SECRET" not in answer


def test_raw_dot_dot_stays_inside(tricky):
    with serve_directory(tricky / "sub") as server:
        assert status_of(raw_get(server, b"/../outside.txt")) == 404
        assert status_of(raw_get(server, b"/../../outside.txt")) == 404


def test_zarr_v2_metadata_and_links_inside_are_served(tricky):
    with serve_directory(tricky) as server:
        assert requests.get(f"{server.url}/img.zarr/.zarray", timeout=10).text == "{}"
        assert requests.get(f"{server.url}/link-in", timeout=10).content == b"inside"


@pytest.fixture
def linked(tricky):
    """Links inside the served folder that lead to its hidden files, or out of it and back in."""
    outside = tricky.parent
    (tricky / "notes.txt").symlink_to(".env")
    (tricky / "settings").symlink_to(".git/config")
    (tricky / "repo").symlink_to(".git")
    (tricky / "sub" / "up-env").symlink_to("../.env")
    (tricky / "absolute-env").symlink_to(tricky / ".env")
    (tricky / "chain").symlink_to("notes.txt")
    (outside / "back-in").symlink_to(tricky / "sub" / "data.bin")
    (tricky / "out-and-back").symlink_to("../back-in")
    (outside / "back-in-dir").symlink_to(tricky / "sub")
    (tricky / "out-and-back-dir").symlink_to(outside / "back-in-dir")
    (tricky / "metadata").symlink_to("img.zarr/.zarray")
    (tricky / "sub" / "sibling").symlink_to("../sub/data.bin")
    return tricky


@pytest.mark.parametrize("path", ["/notes.txt", "/settings", "/repo/config", "/sub/up-env", "/absolute-env",
                                  "/chain", "/out-and-back", "/out-and-back-dir/data.bin"])
def test_links_to_hidden_files_or_through_the_outside_are_not_served(linked, path):
    with serve_directory(linked) as server:
        answer = raw_get(server, path.encode())
    assert status_of(answer) == 404
    assert b"SECRET" not in answer and b"[core]" not in answer and b"inside" not in answer


def test_links_that_stay_inside_and_reach_zarr_metadata_are_served(linked):
    with serve_directory(linked) as server:
        assert requests.get(f"{server.url}/metadata", timeout=10).text == "{}"
        assert requests.get(f"{server.url}/sub/sibling", timeout=10).content == b"inside"
    with serve_directory(linked, list_directories=True) as server:
        listing = requests.get(server.url + "/", timeout=10).text
    assert ">metadata<" in listing
    for hidden in ("notes.txt", "settings", "repo", "absolute-env", "chain", "out-and-back"):
        assert f">{hidden}" not in listing


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX-only")
def test_special_files_are_not_served(tricky):
    os.mkfifo(tricky / "pipe")  # reading it would block the server thread forever
    with serve_directory(tricky) as server:
        assert status_of(raw_get(server, b"/pipe")) == 404


def test_no_directory_listings_unless_asked(tricky):
    with serve_directory(tricky) as server:
        for path in ("/", "/sub/", "/img.zarr/"):
            assert requests.get(server.url + path, timeout=10).status_code == 403
        redirect = requests.get(server.url + "/sub", timeout=10, allow_redirects=False)
        assert redirect.status_code == 301 and redirect.headers["Location"].endswith("/sub/")
    with serve_directory(tricky, list_directories=True) as server:
        listing = requests.get(server.url + "/", timeout=10)
        assert listing.status_code == 200
        for shown in ("img.zarr/", "sub/", "link-in"):
            assert f">{shown}<" in listing.text
        for hidden in (".env", ".git", "link-out", "dir-link-out", "loop"):
            assert f">{hidden}" not in listing.text


def test_folder_with_index_html_serves_it(tmp_path):
    (tmp_path / "index.html").write_text("<p>book</p>")
    with serve_directory(tmp_path) as server:
        assert requests.get(server.url + "/", timeout=10).text == "<p>book</p>"


@pytest.mark.parametrize("target", [b"/a%00.bin", b"/sub/%00", b"/a\x00.bin"])
def test_nul_byte_in_url_is_400(served, target):
    assert status_of(raw_get(served, target)) == 400


def test_busy_port_is_a_clear_error(tmp_path):
    import errno

    with serve_directory(tmp_path) as first:
        port = int(first.url.rsplit(":", 1)[1])
        with pytest.raises(OSError, match=f"Port {port} on 127.0.0.1 is already in use") as info:
            LocalServer(tmp_path, port=port).start()
        assert info.value.errno == errno.EADDRINUSE
        assert requests.get(first.url + "/nope", timeout=10).status_code == 404  # the first one still serves


def test_request_log_is_bounded_and_cleared_on_stop(tmp_path, monkeypatch):
    monkeypatch.setattr(server_module, "REQUEST_LOG_LIMIT", 3)
    (tmp_path / "a").write_text("x")
    server = LocalServer(tmp_path).start()
    try:
        for i in range(5):
            requests.get(f"{server.url}/a?{i}", headers={"Range": f"bytes=0-{i}"}, timeout=10)
        assert server.requests == [("GET", "/a", f"bytes=0-{i}") for i in (2, 3, 4)]
    finally:
        server.stop()
    assert server.requests == []


def test_list_directories_must_be_a_bool(tmp_path):
    with pytest.raises(ValueError, match="list_directories"):
        LocalServer(tmp_path, list_directories="yes")


def test_stop_ends_kept_alive_connections_and_their_threads(tmp_path):
    """zarr's HTTP client keeps connections open; stop() must still leave no thread behind."""
    import threading

    import numpy as np
    import zarr

    zarr.create_array(store=str(tmp_path / "a.zarr"), data=np.arange(4096, dtype="uint16").reshape(16, 16, 16),
                      chunks=(4, 4, 4))
    before = [t for t in threading.enumerate() if t.name == "LocalServer connection"]
    with LocalServer(tmp_path) as server:
        array = zarr.open_array(f"{server.url}/a.zarr", mode="r")
        assert array[:8, :8, :8].sum() > 0
        assert server.bytes_sent > 0
        # a client that connects and then says nothing keeps one thread of the server waiting
        import socket

        idle = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
        for _ in range(100):
            if [t for t in threading.enumerate() if t.name == "LocalServer connection"] != before:
                break
            time.sleep(0.05)
        assert [t for t in threading.enumerate() if t.name == "LocalServer connection"] != before
        server.clear_requests()
        assert server.bytes_sent == 0 and server.requests == []
    assert [t for t in threading.enumerate() if t.name == "LocalServer connection"] == before
    assert idle.recv(10) == b""  # the server hung up on it
    idle.close()


def test_bytes_sent_counts_ranges_and_whole_files(tmp_path):
    import urllib.request

    (tmp_path / "f.bin").write_bytes(bytes(range(100)))
    with LocalServer(tmp_path) as server:
        urllib.request.urlopen(server.url + "/f.bin").read()
        request = urllib.request.Request(server.url + "/f.bin", headers={"Range": "bytes=10-19"})
        assert urllib.request.urlopen(request).read() == bytes(range(10, 20))
        urllib.request.urlopen(urllib.request.Request(server.url + "/f.bin", method="HEAD")).read()
        assert server.bytes_sent == 100 + 10
