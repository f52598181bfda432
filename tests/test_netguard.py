"""netguard: the book's kernels reach loopback addresses only."""

from __future__ import annotations

import _socket
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request

import nbformat
import pytest

from conftest import REPO, load_script, skip_or_fail
from data_helpers import LocalServer, netguard


@pytest.fixture
def guard():
    was = netguard.installed()
    netguard.install()
    yield
    if not was:
        netguard.uninstall()


def _private_network_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


# Each attempt runs with the guard installed, in a child process inside a private network
# namespace (unshare -rn): if the guard let one through, it would reach no network at all.
_ATTEMPTS = {
    "create_connection": "socket.create_connection(('192.0.2.1', 80), timeout=1)",
    "connect_ex": "socket.socket().connect_ex(('198.51.100.7', 443))",
    "_socket.socket.connect": "_socket.socket.connect(socket.socket(), ('192.0.2.1', 80))",
    "__mro__[1].connect": "socket.socket.__mro__[1].connect(socket.socket(), ('192.0.2.1', 80))",
    "__mro__[1].connect_ex": "socket.socket.__mro__[1].connect_ex(socket.socket(), ('192.0.2.1', 80))",
    "ipv6 connect": "socket.socket(socket.AF_INET6).connect(('2001:db8::1', 80))",
    "udp sendto": "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('203.0.113.5', 53))",
    "udp sendto with flags": "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', 0, ('203.0.113.5', 53))",
    "_socket sendto": "_socket.socket.sendto(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), b'x', ('203.0.113.5', 53))",
    "udp sendmsg": "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendmsg([b'x'], [], 0, ('203.0.113.5', 53))",
    "getaddrinfo": "socket.getaddrinfo('example.org', 443)",
    "_socket.getaddrinfo": "_socket.getaddrinfo('example.org', 443)",
    "gethostbyname": "socket.gethostbyname('example.org')",
    "gethostbyname_ex": "socket.gethostbyname_ex('example.org')",
    "gethostbyaddr": "socket.gethostbyaddr('192.0.2.1')",
    "getnameinfo": "socket.getnameinfo(('192.0.2.1', 80), 0)",
    "packet socket": "socket.socket(getattr(socket, 'AF_PACKET', -1), socket.SOCK_RAW)",
}
_ATTEMPT_SCRIPT = """
import json, socket, _socket, sys
from data_helpers import netguard
netguard.install()
results = {}
for name, code in json.loads(sys.argv[1]).items():
    try:
        exec(code)
        results[name] = "not refused"
    except Exception as error:
        results[name] = f"{type(error).__name__}: {error}"
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def attempts_in_a_private_network():
    if not _private_network_available():
        skip_or_fail("unshare -rn (a private network namespace) is not available, so outside connections "
                     "cannot be tried safely")
    env = {**os.environ, netguard.ENV_LOOPBACK_ONLY: "0"}
    env.pop("PYTHONSTARTUP", None)
    out = subprocess.run(["unshare", "-rn", sys.executable, "-c", _ATTEMPT_SCRIPT, json.dumps(_ATTEMPTS)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("attempt", sorted(_ATTEMPTS))
def test_every_way_out_is_refused(attempts_in_a_private_network, attempt):
    result = attempts_in_a_private_network[attempt]
    assert result.startswith("OutsideNetworkError: "), result
    assert "only loopback addresses" in result


def test_loopback_still_works(guard, tmp_path):
    (tmp_path / "a.txt").write_text("hi")
    with LocalServer(tmp_path) as server:
        assert urllib.request.urlopen(f"{server.url}/a.txt").read() == b"hi"
        port = int(server.url.rsplit(":", 1)[1])
        assert urllib.request.urlopen(f"http://localhost:{port}/a.txt").read() == b"hi"
        raw = socket.socket()
        _socket.socket.connect(raw, ("127.0.0.1", port))  # the C method, as the guard sees it
        raw.close()
    with LocalServer(tmp_path, host="::1") as server:
        assert urllib.request.urlopen(f"{server.url}/a.txt").read() == b"hi"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        receiver.bind(("127.0.0.1", 0))
        sender.sendto(b"ping", receiver.getsockname())
        sender.sendmsg([b"pong"], [], 0, receiver.getsockname())
        assert receiver.recv(8) == b"ping" and receiver.recv(8) == b"pong"
    assert socket.getaddrinfo("localhost", 80) and socket.gethostbyname("localhost").startswith("127.")
    assert socket.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)[0] == "127.0.0.1"
    assert socket.getaddrinfo(None, 80, flags=socket.AI_PASSIVE)


def _numeric_lookup_refused() -> bool:
    """Whether the guard refuses a numeric outside address; AI_NUMERICHOST sends nothing in any case."""
    try:
        socket.getaddrinfo("192.0.2.1", 80, flags=socket.AI_NUMERICHOST)
    except netguard.OutsideNetworkError:
        return True
    return False


def test_uninstall_lifts_the_rule_and_install_restores_it():
    was = netguard.installed()
    try:
        netguard.uninstall()
        assert not netguard.installed() and not _numeric_lookup_refused()
        netguard.install()
        netguard.install()  # twice is harmless
        assert netguard.installed() and _numeric_lookup_refused()
        netguard.uninstall()
        assert not netguard.installed() and not _numeric_lookup_refused()
    finally:
        if was:
            netguard.install()


def test_is_loopback():
    assert netguard.is_loopback("127.0.0.5") and netguard.is_loopback("[::1]") and netguard.is_loopback(b"localhost")
    assert not netguard.is_loopback("10.0.0.1") and not netguard.is_loopback("example.org")
    assert not netguard.is_loopback(None)


def test_the_build_turns_the_guard_on_in_every_kernel():
    tasks = load_script("tasks.py", "tasks_for_guard")
    env = tasks.book_env()
    assert env[netguard.ENV_LOOPBACK_ONLY] == "1"
    startup = REPO / env["PYTHONSTARTUP"]
    assert startup.is_file() and "install_from_environment" in startup.read_text()


def _run_cells(cells: list[str], monkeypatch, guard_on: bool):
    from nbclient import NotebookClient

    tasks = load_script("tasks.py", "tasks_for_kernel")
    monkeypatch.setenv("PYTHONSTARTUP", str(tasks.KERNEL_STARTUP))
    monkeypatch.setenv(netguard.ENV_LOOPBACK_ONLY, "1" if guard_on else "0")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    return notebook


def test_a_chapter_that_reaches_outside_fails_in_the_build(monkeypatch):
    from nbclient.exceptions import CellExecutionError

    # A numeric lookup (AI_NUMERICHOST) sends nothing even if the guard failed
    cells = ["import socket, _socket", "_socket.getaddrinfo('192.0.2.1', 80, 0, 0, 0, socket.AI_NUMERICHOST)"]
    with pytest.raises(CellExecutionError, match="OutsideNetworkError"):
        _run_cells(cells, monkeypatch, guard_on=True)


def test_a_kernel_without_the_flag_is_not_guarded(monkeypatch):
    notebook = _run_cells(["from data_helpers import netguard", "print(netguard.installed())"],
                          monkeypatch, guard_on=False)
    assert notebook.cells[1].outputs[0]["text"].strip() == "False"
    notebook = _run_cells(["from data_helpers import netguard", "print(netguard.installed())"],
                          monkeypatch, guard_on=True)
    assert notebook.cells[1].outputs[0]["text"].strip() == "True"


@pytest.mark.parametrize("flag", ["1", "0"])
def test_a_child_process_that_imports_the_package_is_guarded_like_its_kernel(flag):
    # Dask workers and a chapter's child processes inherit the kernel's environment, not its startup file.
    code = ("import socket, data_helpers\n"
            "try:\n"
            "    socket.getaddrinfo('192.0.2.1', 80, flags=socket.AI_NUMERICHOST)\n"
            "    print('allowed')\n"
            "except Exception as error:\n"
            "    print(type(error).__name__)\n")
    env = {**os.environ, netguard.ENV_LOOPBACK_ONLY: flag}
    env.pop("PYTHONSTARTUP", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("OutsideNetworkError" if flag == "1" else "allowed"), out.stdout
