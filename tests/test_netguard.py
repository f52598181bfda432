"""netguard: the book's kernels reach loopback addresses only."""

from __future__ import annotations

import os
import subprocess
import sys
import socket
import urllib.request

import nbformat
import pytest

from conftest import REPO, load_script
from data_helpers import LocalServer, netguard


@pytest.fixture
def guard():
    was = netguard.installed()
    netguard.install()
    yield
    if not was:
        netguard.uninstall()


def test_outside_addresses_and_names_are_refused(guard):
    with pytest.raises(netguard.OutsideNetworkError, match="192.0.2.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with pytest.raises(netguard.OutsideNetworkError, match="example.org"):
        socket.getaddrinfo("example.org", 443)
    sock = socket.socket()
    with pytest.raises(netguard.OutsideNetworkError):
        sock.connect_ex(("198.51.100.7", 443))
    sock.close()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(netguard.OutsideNetworkError):
        udp.sendto(b"x", ("203.0.113.5", 53))
    udp.close()


def test_loopback_still_works(guard, tmp_path):
    (tmp_path / "a.txt").write_text("hi")
    with LocalServer(tmp_path) as server:
        assert urllib.request.urlopen(f"{server.url}/a.txt").read() == b"hi"
        port = server.url.rsplit(":", 1)[1]
        assert urllib.request.urlopen(f"http://localhost:{port}/a.txt").read() == b"hi"


def test_uninstall_restores_the_socket_module():
    original = socket.socket.connect
    was = netguard.installed()
    netguard.uninstall()
    try:
        plain = socket.socket.connect
        netguard.install()
        assert socket.socket.connect is not plain and netguard.installed()
        netguard.uninstall()
        assert socket.socket.connect is plain and not netguard.installed()
    finally:
        if was:
            netguard.install()
    assert socket.socket.connect is original or was


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

    cells = ["import socket", "socket.create_connection(('192.0.2.1', 80), timeout=2)"]
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
            "    socket.create_connection(('192.0.2.1', 80), timeout=0.5)\n"
            "except Exception as error:\n"
            "    print(type(error).__name__)\n")
    env = {**os.environ, netguard.ENV_LOOPBACK_ONLY: flag}
    env.pop("PYTHONSTARTUP", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (out.stdout.strip() == "OutsideNetworkError") == (flag == "1"), out.stdout
