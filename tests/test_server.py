"""data_helpers.server: a read-only loopback HTTP server with byte ranges."""

from __future__ import annotations

import socket

import pytest
import requests

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
